//! The events of a bundle of either format verified where they lie: a `cairn.export/v1` bundle
//! is checked under the rules of `cairn.export/v2` (schema 1 leaves with their payloads)
//! without first copying it into v2 structures, which for a bundle of 100,000 events cost as
//! much as parsing it.
//!
//! [`BundleEvent`] is what the checks read of one event of either format; [`verify_events`]
//! checks every event (its leaf, its payload or openings) on every core, then the checkpoint
//! against the trust given and every inclusion proof (`proofs.rs`).

use super::parallel::check_all;
use super::proofs::{verify_proofs, Proven, ProvenLeaf};
use super::v2::{EventContents, ExportOpenings, ExportedEventV2, VerifiedEvent};
use super::{check_order, check_payload, ExportError, ExportTrust, ExportedEvent};
use crate::event::{AnyEventLeaf, Disclosure, EventDisclosure, PersonalField};
use crate::hash::Hash;
use crate::receipt::ReceiptTimestamp;

/// What the checks read of one event of a bundle.
pub(super) struct EventParts<'a> {
    pub(super) index: u64,
    pub(super) leaf: &'a [u8],
    /// Schema 1 leaves only: the canonical payload.
    pub(super) payload: Option<&'a [u8]>,
    /// Schema 2 leaves only: the openings (none in a `cairn.export/v1` event).
    pub(super) openings: Option<&'a ExportOpenings>,
    /// Schema 2 leaves only: the fields erased.
    pub(super) erased: &'a [PersonalField],
    pub(super) inclusion_proof: &'a [Hash],
}

/// An event of a bundle of either format.
pub(super) trait BundleEvent: Sync {
    /// Its parts, borrowed.
    fn parts(&self) -> EventParts<'_>;
}

impl BundleEvent for ExportedEvent {
    fn parts(&self) -> EventParts<'_> {
        EventParts {
            index: self.index,
            leaf: &self.leaf,
            payload: self.payload.as_deref(),
            openings: None,
            erased: &[],
            inclusion_proof: &self.inclusion_proof,
        }
    }
}

impl BundleEvent for ExportedEventV2 {
    fn parts(&self) -> EventParts<'_> {
        EventParts {
            index: self.index,
            leaf: &self.leaf,
            payload: self.payload.as_deref(),
            openings: Some(&self.openings),
            erased: &self.erased,
            inclusion_proof: &self.inclusion_proof,
        }
    }
}

/// The disclosure an event makes: its openings and erased fields, which must not overlap, and
/// `erased` in order without repeats.
pub(super) fn disclosure_of(
    openings: Option<&ExportOpenings>,
    erased: &[PersonalField],
) -> Result<EventDisclosure, String> {
    if !erased.windows(2).all(|pair| pair[0] < pair[1]) {
        return Err(
            "erased must list fields once each, in the order actor, resource, context, payload"
                .to_string(),
        );
    }
    let mut disclosure = EventDisclosure::default();
    for field in PersonalField::ALL {
        let is_erased = erased.contains(&field);
        match (openings.and_then(|openings| openings.get(field)), is_erased) {
            (Some(_), true) => return Err(format!("{field} is both opened and erased")),
            (Some(opening), false) => {
                disclosure.set(field, Disclosure::Opened(opening.to_opening()))
            }
            (None, true) => disclosure.set(field, Disclosure::Erased),
            (None, false) => {}
        }
    }
    Ok(disclosure)
}

/// One event on its own: its leaf, and its payload (schema 1) or openings (schema 2).
fn check_event(position: usize, event: &EventParts<'_>) -> Result<VerifiedEvent, ExportError> {
    let bad = |reason: String| ExportError::Event {
        position,
        index: event.index,
        reason,
    };
    let leaf = AnyEventLeaf::parse(event.leaf).map_err(|e| bad(format!("leaf: {e}")))?;
    let opened = event.openings.is_some_and(|openings| !openings.is_empty());
    let contents = match &leaf {
        AnyEventLeaf::V1(v1) => {
            if opened || !event.erased.is_empty() {
                return Err(bad(
                    "a schema 1 leaf has no openings or erased fields (its payload goes in payload)"
                        .into(),
                ));
            }
            if let Some(payload) = event.payload {
                check_payload(v1, payload).map_err(bad)?;
            }
            EventContents::Clear {
                payload_erased: v1.payload_hash.is_some() && event.payload.is_none(),
            }
        }
        AnyEventLeaf::V2(v2) => {
            if event.payload.is_some() {
                return Err(bad(
                    "a schema 2 leaf's payload is opened in openings.payload, not given as payload"
                        .into(),
                ));
            }
            let disclosure = disclosure_of(event.openings, event.erased).map_err(bad)?;
            EventContents::Committed(
                v2.verify_disclosure(&disclosure)
                    .map_err(|e| bad(e.to_string()))?,
            )
        }
    };
    Ok(VerifiedEvent {
        index: event.index,
        event_id: leaf.event_id().clone(),
        schema_version: leaf.schema_version(),
        contents,
    })
}

/// Verifies every event of a bundle (in increasing index order, each leaf with its payload or
/// openings), then the checkpoint against `trust` and every inclusion proof against its root.
/// The first failure is the error: an event's, in bundle order, before the checkpoint's or a
/// proof's.
pub(super) fn verify_events<E: BundleEvent>(
    checkpoint: &str,
    timestamps: &[ReceiptTimestamp],
    events: &[E],
    trust: ExportTrust<'_>,
) -> Result<(Vec<VerifiedEvent>, Proven), ExportError> {
    check_order(events.iter().map(|event| event.parts().index))?;
    // Each event on its own, on every core; the first that fails is the error.
    let verified = check_all(events, |position, event| {
        check_event(position, &event.parts())
    })?;
    let leaves: Vec<ProvenLeaf<'_>> = events
        .iter()
        .map(|event| {
            let parts = event.parts();
            ProvenLeaf {
                index: parts.index,
                leaf: parts.leaf,
                inclusion_proof: parts.inclusion_proof,
            }
        })
        .collect();
    let proven = verify_proofs(checkpoint, timestamps, &leaves, trust)?;
    Ok((verified, proven))
}
