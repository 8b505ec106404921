//! A logged event leaf, read back as a monitor or auditor does (of schema 1, or of either
//! version), and a payload checked against a schema 1 leaf.

use sha2::{Digest, Sha256};

use super::fields::{id_and_type, invalid, missing, parse_payload_hash, string_field};
use super::v2::{EventLeafV2, SCHEMA_VERSION_2};
use super::{event_limits, EventError, EventId, EventInput, EventLeaf, SCHEMA_VERSION};
use crate::jcs::{self, Value};
use crate::time::Instant;

impl EventLeaf {
    /// Reads a logged event leaf, as a monitor or auditor does: it must be canonical JCS and
    /// follow the leaf schema.
    pub fn parse(leaf: &[u8]) -> Result<EventLeaf, EventError> {
        EventLeaf::from_canonical_members(canonical_members(leaf)?, leaf)
    }

    /// [`EventLeaf::parse`] of a leaf already parsed and found canonical.
    fn from_canonical_members(
        members: Vec<(String, Value)>,
        leaf: &[u8],
    ) -> Result<EventLeaf, EventError> {
        let mut producer_members = Vec::new();
        let mut received_at = None;
        let mut submitted_by = None;
        let mut payload_hash = None;
        let mut schema_version = false;
        for (name, value) in members {
            match name.as_str() {
                "received_at" => {
                    let text = string_field("received_at", &value)?;
                    received_at = Some(
                        Instant::parse_rfc3339(&text)
                            .map_err(|error| invalid("received_at", error.reason))?,
                    );
                }
                "submitted_by" => submitted_by = Some(string_field("submitted_by", &value)?),
                "payload_hash" => {
                    payload_hash = Some(parse_payload_hash(&string_field("payload_hash", &value)?)?)
                }
                "schema_version" => {
                    if value != Value::Number(SCHEMA_VERSION) {
                        return Err(invalid("schema_version", "must be 1"));
                    }
                    schema_version = true;
                }
                "payload" => return Err(invalid("payload", "a leaf carries payload_hash only")),
                _ => producer_members.push((name, value)),
            }
        }
        if !schema_version {
            return Err(missing("schema_version"));
        }
        let submitted_by = submitted_by.ok_or_else(|| missing("submitted_by"))?;
        let received_at = received_at.ok_or_else(|| missing("received_at"))?;
        // The producer's members were parsed with the leaf, under the same limits (which a
        // subset of a leaf's members always keeps): they are validated as they are, not
        // written out and parsed a second time.
        let input = EventInput::from_members(producer_members)?;
        let event_id = input.event_id.clone().ok_or_else(|| missing("event_id"))?;
        let (actor_id, actor_type) = id_and_type(input.actor);
        let (resource_id, resource_type) = id_and_type(input.resource);
        Ok(EventLeaf {
            event_id,
            time: input.time,
            received_at,
            submitted_by,
            actor_id,
            actor_type,
            action: input.action,
            resource_type,
            resource_id,
            outcome: input.outcome,
            payload_hash,
            leaf: leaf.to_vec(),
        })
    }

    /// Whether `payload` (any JSON form of it) is the payload this leaf committed to.
    pub fn payload_matches(&self, payload: &[u8]) -> Result<bool, EventError> {
        let Some(expected) = self.payload_hash else {
            return Ok(false);
        };
        let canonical = jcs::canonicalize(&jcs::parse(payload, event_limits())?);
        Ok(<[u8; 32]>::from(Sha256::digest(canonical.as_bytes())) == expected)
    }
}

/// The members of `leaf`, which must be strict JSON, an object, and its own canonical form.
fn canonical_members(leaf: &[u8]) -> Result<Vec<(String, Value)>, EventError> {
    let value = jcs::parse(leaf, event_limits())?;
    if !is_canonical_form(&value, leaf) {
        return Err(EventError::NotCanonical);
    }
    match value {
        Value::Object(members) => Ok(members),
        _ => Err(EventError::NotAnObject),
    }
}

/// Whether `text` is the canonical form of `value`, written in a buffer each thread keeps
/// (a verifier checks leaves by the million: no allocation a leaf).
fn is_canonical_form(value: &Value, text: &[u8]) -> bool {
    /// The buffer is kept only while it stays this small (a leaf is usually under 1 KiB).
    const KEPT_CAPACITY: usize = 64 << 10;
    thread_local! {
        static CANONICAL: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    CANONICAL.with(|buffer| {
        let Ok(mut buffer) = buffer.try_borrow_mut() else {
            return jcs::canonicalize(value).as_bytes() == text;
        };
        buffer.clear();
        jcs::write_canonical(value, &mut buffer);
        let same = buffer.as_bytes() == text;
        if buffer.capacity() > KEPT_CAPACITY {
            *buffer = String::new();
        }
        same
    })
}

/// An event leaf of either schema version: what a verifier of a log that holds both reads.
#[derive(Debug, Clone, PartialEq)]
pub enum AnyEventLeaf {
    /// Schema 1: the event in clear.
    V1(EventLeaf),
    /// Schema 2: personal fields as commitments.
    V2(EventLeafV2),
}

impl AnyEventLeaf {
    /// Reads a leaf of either version, by its `schema_version` (one JSON parse).
    pub fn parse(leaf: &[u8]) -> Result<AnyEventLeaf, EventError> {
        let members = canonical_members(leaf)?;
        let version = members
            .iter()
            .find(|(name, _)| name == "schema_version")
            .map(|(_, value)| value);
        match version {
            Some(Value::Number(number)) if *number == SCHEMA_VERSION => {
                EventLeaf::from_canonical_members(members, leaf).map(AnyEventLeaf::V1)
            }
            Some(Value::Number(number)) if *number == SCHEMA_VERSION_2 => {
                EventLeafV2::from_canonical_members(members, leaf).map(AnyEventLeaf::V2)
            }
            Some(_) => Err(invalid("schema_version", "must be 1 or 2")),
            None => Err(missing("schema_version")),
        }
    }

    /// The event's ID.
    pub fn event_id(&self) -> &EventId {
        match self {
            AnyEventLeaf::V1(leaf) => &leaf.event_id,
            AnyEventLeaf::V2(leaf) => &leaf.clear.event_id,
        }
    }

    /// The leaf's bytes.
    pub fn leaf(&self) -> &[u8] {
        match self {
            AnyEventLeaf::V1(leaf) => &leaf.leaf,
            AnyEventLeaf::V2(leaf) => &leaf.leaf,
        }
    }

    /// Its schema version: 1 or 2.
    pub fn schema_version(&self) -> u8 {
        match self {
            AnyEventLeaf::V1(_) => 1,
            AnyEventLeaf::V2(_) => 2,
        }
    }
}
