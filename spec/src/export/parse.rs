//! A large bundle read on every core: one pass over the JSON finds its parts and the bytes of
//! each event (serde_json's `RawValue`, which checks the syntax but builds nothing), then the
//! events are read into their structures in parallel, a contiguous run per thread.
//!
//! The answer is always the one reading the bundle in one piece gives, because the fast path
//! answers only when it read a whole bundle: the outline has the same fields with the same
//! strictness, each event is read by the same `Deserialize` as in place, and the one field the
//! outline would accept that `cairn.export/v1` does not (`completeness`) sends the bundle to the
//! reader in one piece. On anything it does not read, the fast path answers nothing and the
//! bundle is read in one piece, which gives the error with its place in the file.

use serde_json::value::RawValue;

use super::parallel::check_all;
use super::v2::{AnyExport, ExportBundleV2, ExportedEventV2, EXPORT_FORMAT_V2};
use super::{ExportBundle, ExportedEvent, EXPORT_FORMAT};
use crate::completeness::CompletenessProof;
use crate::receipt::ReceiptTimestamp;

/// Bundles smaller than this are read in one piece: the outline's pass would cost more than
/// the threads save.
pub(super) const MIN_PARALLEL_BYTES: usize = 1 << 20;

/// A bundle of either format with its events still JSON text.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Outline<'a> {
    format: String,
    checkpoint: String,
    #[serde(default)]
    timestamps: Vec<ReceiptTimestamp>,
    #[serde(borrow)]
    events: Vec<&'a RawValue>,
    /// `Some` when the member is present at all (even `null`): a v1 bundle must not have it.
    #[serde(default, deserialize_with = "present")]
    completeness: Option<Option<CompletenessProof>>,
}

/// A member that may be `null`, wrapped in `Some` when it is present.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

/// The bundle `json` holds, read on every core; `None` when it is not a bundle read whole
/// (the caller then reads it in one piece, for the same answer or the exact error).
pub(super) fn read_parallel(json: &[u8]) -> Option<AnyExport> {
    let outline: Outline<'_> = serde_json::from_slice(json).ok()?;
    match outline.format.as_str() {
        EXPORT_FORMAT => {
            if outline.completeness.is_some() {
                return None;
            }
            let events = read_events::<ExportedEvent>(&outline.events)?;
            Some(AnyExport::V1(ExportBundle {
                format: outline.format,
                checkpoint: outline.checkpoint,
                timestamps: outline.timestamps,
                events,
            }))
        }
        EXPORT_FORMAT_V2 => {
            let events = read_events::<ExportedEventV2>(&outline.events)?;
            Some(AnyExport::V2(ExportBundleV2 {
                format: outline.format,
                checkpoint: outline.checkpoint,
                timestamps: outline.timestamps,
                events,
                completeness: outline.completeness.flatten(),
            }))
        }
        _ => None,
    }
}

/// Each event's JSON read into `T`, on every core; `None` if one does not read.
fn read_events<T>(events: &[&RawValue]) -> Option<Vec<T>>
where
    T: serde::de::DeserializeOwned + Send,
{
    check_all(events, |_, raw| serde_json::from_str::<T>(raw.get())).ok()
}
