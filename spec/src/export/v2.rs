//! `cairn.export/v2`: events of either schema version, with what an auditor needs to recompute
//! each leaf, and which personal fields were erased.
//!
//! An event with a schema 1 leaf is carried as in `cairn.export/v1` (its payload, if still
//! held). An event with a schema 2 leaf carries, for each personal field its leaf commits to,
//! either the field's opening (salt and canonical value) in `openings`, or the field's name in
//! `erased` (salt and value destroyed). [`verify_export_v2`] checks every opening against its
//! commitment and every proof against the checkpoint, and says per event whether it verified
//! with its contents or is committed with its contents erased. [`AnyExport`] reads a bundle of
//! either format; a `cairn.export/v1` bundle verifies under the same rules.

use std::fmt;

use super::complete::{verify_completeness, VerifiedCompleteness};
use super::events::{disclosure_of, verify_events};
use super::parse::{read_parallel, MIN_PARALLEL_BYTES};
use super::proofs::{receipt_of, ProvenLeaf};
use super::{check_json_size, check_sizes, ExportBundle, ExportError, ExportTrust, EXPORT_FORMAT};
use crate::completeness::CompletenessProof;
use crate::event::{
    event_limits, Contents, EventDisclosure, EventId, FieldOpening, PersonalField, Salt, SALT_SIZE,
};
use crate::hash::Hash;
use crate::receipt::{self, Receipt, ReceiptTimestamp};

/// The `format` of a version 2 export bundle.
pub const EXPORT_FORMAT_V2: &str = "cairn.export/v2";

/// A version 2 export bundle, as exchanged in JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportBundleV2 {
    /// Always [`EXPORT_FORMAT_V2`].
    pub format: String,
    /// The checkpoint note every inclusion proof leads to.
    pub checkpoint: String,
    /// RFC 3161 timestamp tokens over the checkpoint.
    #[serde(default)]
    pub timestamps: Vec<ReceiptTimestamp>,
    /// The events, in increasing index order.
    pub events: Vec<ExportedEventV2>,
    /// The proof that the events are every event of one value in a window of the log.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completeness: Option<CompletenessProof>,
}

/// One event of a version 2 export.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportedEventV2 {
    /// Its index in the log.
    pub index: u64,
    /// The leaf, of schema 1 or 2 (base64).
    #[serde(with = "receipt::base64_bytes")]
    pub leaf: Vec<u8>,
    /// Schema 1 leaves only: the canonical payload, if still held (base64).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "receipt::optional_base64"
    )]
    pub payload: Option<Vec<u8>>,
    /// Schema 2 leaves only: the openings of the personal fields still held.
    #[serde(default, skip_serializing_if = "ExportOpenings::is_empty")]
    pub openings: ExportOpenings,
    /// Schema 2 leaves only: the personal fields erased, in the order actor, resource,
    /// context, payload.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub erased: Vec<PersonalField>,
    /// The inclusion proof of the leaf in the checkpoint's tree.
    pub inclusion_proof: Vec<Hash>,
}

/// The openings of a schema 2 event's personal fields, by field.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportOpenings {
    /// Of `actor`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<ExportOpening>,
    /// Of `resource`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<ExportOpening>,
    /// Of `context`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ExportOpening>,
    /// Of `payload`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<ExportOpening>,
}

/// One field's opening in an export: its salt and its canonical value, both base64.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportOpening {
    /// The salt: 32 bytes.
    #[serde(with = "salt_base64")]
    pub salt: [u8; SALT_SIZE],
    /// The field's value, RFC 8785 canonical JSON.
    #[serde(with = "receipt::base64_bytes")]
    pub value: Vec<u8>,
}

impl ExportOpening {
    /// The export form of `opening`.
    pub fn of(opening: &FieldOpening) -> ExportOpening {
        ExportOpening {
            salt: *opening.salt.as_bytes(),
            value: opening.value.clone(),
        }
    }

    /// The opening it carries.
    pub fn to_opening(&self) -> FieldOpening {
        FieldOpening {
            salt: Salt::from_bytes(self.salt),
            value: self.value.clone(),
        }
    }
}

impl ExportOpenings {
    /// No opening at all.
    pub fn is_empty(&self) -> bool {
        PersonalField::ALL
            .into_iter()
            .all(|field| self.get(field).is_none())
    }

    /// The opening of `field`, if carried.
    pub fn get(&self, field: PersonalField) -> Option<&ExportOpening> {
        match field {
            PersonalField::Actor => self.actor.as_ref(),
            PersonalField::Resource => self.resource.as_ref(),
            PersonalField::Context => self.context.as_ref(),
            PersonalField::Payload => self.payload.as_ref(),
        }
    }

    /// Sets the opening of `field`.
    pub fn set(&mut self, field: PersonalField, opening: ExportOpening) {
        let slot = match field {
            PersonalField::Actor => &mut self.actor,
            PersonalField::Resource => &mut self.resource,
            PersonalField::Context => &mut self.context,
            PersonalField::Payload => &mut self.payload,
        };
        *slot = Some(opening);
    }
}

impl ExportedEventV2 {
    /// The disclosure this event makes: its openings and erased fields, which must not
    /// overlap, and `erased` in order without repeats.
    pub fn disclosure(&self) -> Result<EventDisclosure, String> {
        disclosure_of(Some(&self.openings), &self.erased)
    }
}

/// What one verified event of a bundle showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventContents {
    /// A schema 1 leaf: the event is in clear in its leaf. `payload_erased`: the leaf has a
    /// `payload_hash` but the bundle no payload.
    Clear {
        /// The payload was committed to but is not in the bundle.
        payload_erased: bool,
    },
    /// A schema 2 leaf: which personal fields verified with contents, which are erased.
    Committed(Contents),
}

impl EventContents {
    /// Every committed part of the event was shown and verified.
    pub fn is_complete(&self) -> bool {
        match self {
            EventContents::Clear { payload_erased } => !payload_erased,
            EventContents::Committed(contents) => contents.is_complete(),
        }
    }
}

impl fmt::Display for EventContents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventContents::Clear {
                payload_erased: false,
            } => f.write_str("verified with contents"),
            EventContents::Clear {
                payload_erased: true,
            } => f.write_str("verified with contents; payload committed, erased"),
            EventContents::Committed(contents) => contents.fmt(f),
        }
    }
}

/// One verified event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedEvent {
    /// Its index in the log.
    pub index: u64,
    /// Its ID.
    pub event_id: EventId,
    /// Its leaf's schema version.
    pub schema_version: u8,
    /// What was shown of it.
    pub contents: EventContents,
}

impl fmt::Display for VerifiedEvent {
    /// `event 3 (0b7c9a2e-...): committed, contents erased`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "event {} ({}): {}",
            self.index,
            self.event_id.as_str(),
            self.contents
        )
    }
}

/// What a verified bundle (of either format) proves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedExportV2 {
    /// The log's origin.
    pub origin: String,
    /// The checkpoint's tree size.
    pub tree_size: u64,
    /// The checkpoint's root.
    pub root: Hash,
    /// Timestamp tokens present but not checked (trust by log key only).
    pub unchecked_timestamps: usize,
    /// Every event, in bundle order.
    pub events: Vec<VerifiedEvent>,
    /// What the completeness proof showed, if the bundle carries one.
    pub completeness: Option<VerifiedCompleteness>,
}

impl ExportBundleV2 {
    /// Reads a version 2 export from JSON, strictly (unknown fields refused, sizes bounded).
    pub fn from_json(json: &[u8]) -> Result<ExportBundleV2, ExportError> {
        check_json_size(json)?;
        let bundle: ExportBundleV2 =
            serde_json::from_slice(json).map_err(|error| ExportError::Json(error.to_string()))?;
        bundle.check_shape()?;
        Ok(bundle)
    }

    /// The JSON form (compact: every byte is significant).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an export always serialises")
    }

    /// The same events as a version 2 bundle (schema 1 leaves with their payloads).
    pub fn from_v1(bundle: &ExportBundle) -> ExportBundleV2 {
        ExportBundleV2 {
            format: EXPORT_FORMAT_V2.to_string(),
            checkpoint: bundle.checkpoint.clone(),
            timestamps: bundle.timestamps.clone(),
            events: bundle
                .events
                .iter()
                .map(|event| ExportedEventV2 {
                    index: event.index,
                    leaf: event.leaf.clone(),
                    payload: event.payload.clone(),
                    openings: ExportOpenings::default(),
                    erased: Vec::new(),
                    inclusion_proof: event.inclusion_proof.clone(),
                })
                .collect(),
            completeness: None,
        }
    }

    fn check_shape(&self) -> Result<(), ExportError> {
        if self.format != EXPORT_FORMAT_V2 {
            return Err(ExportError::Format {
                found: self.format.chars().take(64).collect(),
                expected: "\"cairn.export/v2\"",
            });
        }
        check_sizes(
            self.events.len(),
            self.timestamps.len(),
            &self.checkpoint,
            self.events.iter().map(|event| event.inclusion_proof.len()),
        )?;
        let limit = event_limits().max_bytes;
        for event in &self.events {
            for field in PersonalField::ALL {
                let found = event
                    .openings
                    .get(field)
                    .map_or(0, |opening| opening.value.len());
                if found > limit {
                    return Err(ExportError::TooLarge {
                        what: "opened value bytes",
                        found,
                        limit,
                    });
                }
            }
        }
        Ok(())
    }

    /// The receipt of the event at `position`, as a `cairn.receipt/v1`.
    pub fn receipt(&self, position: usize) -> Option<Receipt> {
        let event = self.events.get(position)?;
        Some(receipt_of(
            &self.checkpoint,
            &self.timestamps,
            &ProvenLeaf {
                index: event.index,
                leaf: &event.leaf,
                inclusion_proof: &event.inclusion_proof,
            },
        ))
    }
}

/// Verifies every event of `bundle` (each leaf, payload and opening), every proof and the
/// checkpoint against `trust`; says per event what was shown of it.
pub fn verify_export_v2(
    bundle: &ExportBundleV2,
    trust: ExportTrust<'_>,
) -> Result<VerifiedExportV2, ExportError> {
    bundle.check_shape()?;
    let (events, proven) = verify_events(
        &bundle.checkpoint,
        &bundle.timestamps,
        &bundle.events,
        trust,
    )?;
    let completeness = bundle
        .completeness
        .as_ref()
        .map(|proof| verify_completeness(bundle, proof))
        .transpose()?;
    Ok(VerifiedExportV2 {
        origin: proven.origin,
        tree_size: proven.tree_size,
        root: proven.root,
        unchecked_timestamps: proven.unchecked_timestamps,
        events,
        completeness,
    })
}

/// A `cairn.export/v1` bundle verified under the rules of `cairn.export/v2`, in place.
fn verify_v1_as_v2(
    bundle: &ExportBundle,
    trust: ExportTrust<'_>,
) -> Result<VerifiedExportV2, ExportError> {
    bundle.check_shape()?;
    let (events, proven) = verify_events(
        &bundle.checkpoint,
        &bundle.timestamps,
        &bundle.events,
        trust,
    )?;
    Ok(VerifiedExportV2 {
        origin: proven.origin,
        tree_size: proven.tree_size,
        root: proven.root,
        unchecked_timestamps: proven.unchecked_timestamps,
        events,
        completeness: None,
    })
}

/// An export bundle of either format, as an auditor receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnyExport {
    /// `cairn.export/v1`.
    V1(ExportBundle),
    /// `cairn.export/v2`.
    V2(ExportBundleV2),
}

impl AnyExport {
    /// Reads a bundle of either format, by its `format`, strictly.
    /// A large bundle is read on every core (`parse.rs`), with the same answer.
    pub fn from_json(json: &[u8]) -> Result<AnyExport, ExportError> {
        check_json_size(json)?;
        if json.len() >= MIN_PARALLEL_BYTES {
            if let Some(bundle) = read_parallel(json) {
                match &bundle {
                    AnyExport::V1(v1) => v1.check_shape()?,
                    AnyExport::V2(v2) => v2.check_shape()?,
                }
                return Ok(bundle);
            }
        }
        AnyExport::from_json_in_one_piece(json)
    }

    /// [`AnyExport::from_json`] in one thread, one pass: the reference the parallel read
    /// answers as, and where errors get their place in the file.
    pub(super) fn from_json_in_one_piece(json: &[u8]) -> Result<AnyExport, ExportError> {
        check_json_size(json)?;
        #[derive(serde::Deserialize)]
        struct FormatOnly<'a> {
            #[serde(borrow)]
            format: std::borrow::Cow<'a, str>,
        }
        let peek: FormatOnly<'_> =
            serde_json::from_slice(json).map_err(|error| ExportError::Json(error.to_string()))?;
        match peek.format.as_ref() {
            EXPORT_FORMAT => ExportBundle::from_json(json).map(AnyExport::V1),
            EXPORT_FORMAT_V2 => ExportBundleV2::from_json(json).map(AnyExport::V2),
            other => Err(ExportError::Format {
                found: other.chars().take(64).collect(),
                expected: "\"cairn.export/v1\" or \"cairn.export/v2\"",
            }),
        }
    }

    /// Verifies the bundle under the rules of `cairn.export/v2` (which, for a
    /// `cairn.export/v1` bundle, are its own: schema 1 leaves with their payloads).
    pub fn verify(&self, trust: ExportTrust<'_>) -> Result<VerifiedExportV2, ExportError> {
        match self {
            AnyExport::V1(bundle) => verify_v1_as_v2(bundle, trust),
            AnyExport::V2(bundle) => verify_export_v2(bundle, trust),
        }
    }
}

/// A 32-byte salt as standard base64.
mod salt_base64 {
    use super::SALT_SIZE;

    pub fn serialize<S: serde::Serializer>(
        salt: &[u8; SALT_SIZE],
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        crate::receipt::base64_bytes::serialize(salt, serializer)
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<[u8; SALT_SIZE], D::Error> {
        let bytes = crate::receipt::base64_bytes::deserialize(deserializer)?;
        let found = bytes.len();
        bytes.try_into().map_err(|_| {
            serde::de::Error::custom(format!("a salt is {SALT_SIZE} bytes, found {found}"))
        })
    }
}
