//! Cairn audit events and the leaves they become.
//!
//! A producer submits an event as JSON. Cairn validates it against the schema below, binds the
//! server's receive time and the authenticated principal that submitted it into it, and logs the
//! RFC 8785 canonical JSON of the result as the leaf: with the payload replaced by its SHA-256
//! (schema 1), or with every personal field replaced by a salted commitment (schema 2). What the
//! leaf does not hold is stored beside the log, so it can be erased (where law requires) without
//! changing any leaf, root or proof.
//!
//! Event fields (all others are refused, naming the field):
//!
//! | field | type | rule |
//! |---|---|---|
//! | `event_id` | string | a UUID in canonical lowercase 8-4-4-4-12 form; generated (v4) if absent |
//! | `timestamp` | string | RFC 3339, the producer's time of the event |
//! | `actor` | object | `id` and `type`: non-empty strings; other members allowed |
//! | `action` | string | 1 to 128 characters, no control characters |
//! | `resource` | object | `type` and `id`: non-empty strings; other members allowed |
//! | `outcome` | string | `success`, `failure`, `denied`, `error` or `unknown` |
//! | `payload` | any | optional; logged only as `payload_hash` |
//! | `context` | object | optional (ip, session, request id, ...) |
//! | `schema_version` | number | optional; `1`, or `2` to require a schema 2 leaf |
//!
//! An event becomes a leaf of one of two schema versions (`spec/docs/event.md` has both, with
//! examples and test vectors):
//!
//! - **Schema 1** ([`EventInput::into_leaf`], [`EventLeaf`]): the event in clear. The leaf adds
//!   `received_at` (the server's time, RFC 3339 UTC), `submitted_by` (the principal) and
//!   `payload_hash` (`sha256:` and 64 lowercase hex digits, only when there is a payload), and
//!   carries `schema_version: 1`.
//! - **Schema 2** ([`EventInput::into_leaf_v2`], [`EventLeafV2`]): no personal data in the
//!   leaf. `actor`, `resource`, `context` and `payload` enter it only as salted HMAC-SHA-256
//!   commitments ([`commit`]); the salts and clear values ([`EventOpenings`]) stay in the events
//!   database, and whoever holds them recomputes the leaf or opens a field against it. A field
//!   whose opening was destroyed still verifies as committed ([`Disclosure::Erased`]).
//!
//! [`AnyEventLeaf::parse`] reads a leaf of either version. Queries by actor or resource use
//! keyed index tags ([`index_tag`]), not the identifiers themselves.
//!
//! Where each part lives: the schema's constants, limits, errors and the input and schema 1
//! types here; checking a submitted event and writing its schema 1 leaf in `input.rs`; reading a
//! leaf back (schema 1, or either version) in `leaf.rs`; the rule of each kind of field in
//! `fields.rs`; event IDs in `id.rs`; commitments, salts and openings in `commitment.rs`; the
//! schema 2 leaf (writer, reader, opening) in `v2.rs`; index tags in `index.rs`.

mod commitment;
mod fields;
mod id;
mod index;
mod input;
mod leaf;
mod v2;

pub use commitment::{
    commit, Commitment, Disclosure, FieldOpening, PersonalField, Salt, COMMITMENT_DOMAIN, SALT_SIZE,
};
pub use fields::format_payload_hash;
pub use id::EventId;
pub use index::{index_tag, IndexKey, IndexTag, IndexedField, INDEX_DOMAIN, INDEX_KEY_SIZE};
pub use leaf::AnyEventLeaf;
pub use v2::{
    ClearFields, Commitments, Contents, EventDisclosure, EventLeafV2, EventOpenings, EventSalts,
    SCHEMA_VERSION_2,
};

use crate::jcs::{JsonError, Limits, Value};
use crate::time::Instant;

/// Schema version 1: the event in clear in its leaf.
pub const SCHEMA_VERSION: f64 = 1.0;
/// Most characters of `action`, `actor.id`, `resource.id` and the like.
pub const MAX_NAME_CHARS: usize = 256;
/// Most bytes of a principal name bound into a leaf.
pub const MAX_PRINCIPAL_BYTES: usize = 256;
/// The buffer a leaf (and, before it, the canonical payload) is written into starts this large:
/// most leaves fit without its growing.
const LEAF_CAPACITY: usize = 1024;
/// The members an event may have: the fields of the table above.
const EVENT_FIELDS: usize = 9;
/// The outcomes an event may report.
pub const OUTCOMES: [&str; 5] = ["success", "failure", "denied", "error", "unknown"];

/// Limits for events: 1 MiB, 16 levels deep.
pub fn event_limits() -> Limits {
    Limits {
        max_bytes: 1 << 20,
        max_depth: 16,
        max_string_bytes: 64 * 1024,
        max_container_len: 4096,
    }
}

/// Why an event or an event leaf was refused. `field` names the member (dotted path).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Not strict JSON.
    #[error("invalid JSON: {0}")]
    Json(#[from] JsonError),
    /// The document is not an object.
    #[error("an event must be a JSON object")]
    NotAnObject,
    /// A required member is missing.
    #[error("{field}: required")]
    Missing {
        /// Which member.
        field: String,
    },
    /// A member that the schema does not have.
    #[error("{field}: unknown field")]
    Unknown {
        /// Which member.
        field: String,
    },
    /// A member with a wrong type or value.
    #[error("{field}: {reason}")]
    Invalid {
        /// Which member.
        field: String,
        /// What is wrong.
        reason: String,
    },
    /// A leaf whose bytes are not its own canonical form.
    #[error("event leaf is not in RFC 8785 canonical form")]
    NotCanonical,
    /// An opening (salt and value) that does not open the leaf's commitment to its field.
    #[error("{field}: the salt and value do not match the leaf's commitment")]
    CommitmentMismatch {
        /// Which field.
        field: String,
    },
}

/// A validated event as submitted.
#[derive(Debug, Clone, PartialEq)]
pub struct EventInput {
    /// The producer's event ID, if given.
    pub event_id: Option<EventId>,
    /// The producer's time, as written.
    pub timestamp: String,
    /// The producer's time, as an instant.
    pub time: Instant,
    /// `actor` (with `id` and `type`).
    pub actor: Value,
    /// `action`.
    pub action: String,
    /// `resource` (with `type` and `id`).
    pub resource: Value,
    /// `outcome`.
    pub outcome: String,
    /// `payload`, if any.
    pub payload: Option<Value>,
    /// `context`, if any.
    pub context: Option<Value>,
    /// The `schema_version` the producer gave, if any: `1`, or `2` (then only a schema 2 leaf
    /// may be written: [`EventInput::into_leaf`] refuses it).
    pub schema_version: Option<u8>,
}

/// An event as logged in a schema 1 leaf: the leaf's fields, its canonical bytes, and the canonical payload.
#[derive(Debug, Clone, PartialEq)]
pub struct EventLeaf {
    /// The event's ID.
    pub event_id: EventId,
    /// The producer's time.
    pub time: Instant,
    /// The server's receive time.
    pub received_at: Instant,
    /// The principal that submitted it.
    pub submitted_by: String,
    /// `actor.id`.
    pub actor_id: String,
    /// `actor.type`.
    pub actor_type: String,
    /// `action`.
    pub action: String,
    /// `resource.type`.
    pub resource_type: String,
    /// `resource.id`.
    pub resource_id: String,
    /// `outcome`.
    pub outcome: String,
    /// SHA-256 of the canonical payload, if the event had one.
    pub payload_hash: Option<[u8; 32]>,
    /// The leaf: the canonical JSON of the logged event.
    pub leaf: Vec<u8>,
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_v2;
