//! Cairn audit events and the leaves they become.
//!
//! A producer submits an event as JSON. Cairn validates it against the schema below, binds the
//! server's receive time and the authenticated principal that submitted it into it, replaces the
//! payload by the SHA-256 of the payload's canonical form, and logs the RFC 8785 canonical JSON
//! of the result as the leaf. The payload is stored beside the log, so it can be erased (where
//! law requires) without changing any leaf, root or proof: whoever still holds the payload can
//! show it matches `payload_hash`.
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
//! | `schema_version` | number | optional, and `1` if present |
//!
//! The leaf adds `received_at` (the server's time, RFC 3339 UTC), `submitted_by` (the principal)
//! and `payload_hash` (`sha256:` and 64 lowercase hex digits, only when there is a payload), and
//! always carries `schema_version: 1`. `spec/docs/event.md` has an example.

use sha2::{Digest, Sha256};

use crate::jcs::{self, JsonError, Limits, Value};
use crate::time::Instant;

/// The only schema version there is.
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
}

/// A UUID in canonical text form.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventId(String);

impl EventId {
    /// Reads a UUID in the canonical lowercase 8-4-4-4-12 hex form (uppercase is lowered).
    pub fn parse(text: &str) -> Result<EventId, EventError> {
        EventId::check(text)?;
        Ok(EventId(text.to_ascii_lowercase()))
    }

    /// [`EventId::parse`] of a string already owned, lowered where it is.
    fn from_string(mut text: String) -> Result<EventId, EventError> {
        EventId::check(&text)?;
        text.make_ascii_lowercase();
        Ok(EventId(text))
    }

    fn check(text: &str) -> Result<(), EventError> {
        let invalid = |reason: &str| EventError::Invalid {
            field: "event_id".to_string(),
            reason: reason.to_string(),
        };
        if text.len() != 36 {
            return Err(invalid("a UUID is 36 characters (8-4-4-4-12 hex digits)"));
        }
        for (index, byte) in text.bytes().enumerate() {
            let dash = matches!(index, 8 | 13 | 18 | 23);
            if dash != (byte == b'-') || (!dash && !byte.is_ascii_hexdigit()) {
                return Err(invalid("a UUID is 8-4-4-4-12 hex digits"));
            }
        }
        Ok(())
    }

    /// A version 4 (random) UUID from 16 random bytes supplied by the caller.
    pub fn new_v4(mut random: [u8; 16]) -> EventId {
        random[6] = (random[6] & 0x0f) | 0x40;
        random[8] = (random[8] & 0x3f) | 0x80;
        let mut text = String::with_capacity(36);
        for (index, byte) in random.iter().enumerate() {
            if matches!(index, 4 | 6 | 8 | 10) {
                text.push('-');
            }
            push_hex(&mut text, *byte);
        }
        EventId(text)
    }

    /// The canonical text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The canonical text, owned.
    pub fn into_string(self) -> String {
        self.0
    }
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
}

/// An event as logged: the leaf's fields, its canonical bytes, and the canonical payload.
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

impl EventInput {
    /// Parses and validates a submitted event.
    pub fn parse(json: &[u8]) -> Result<EventInput, EventError> {
        // The event's member names are only compared, so they are borrowed from `json`.
        match jcs::parse_object(json, event_limits(), EVENT_FIELDS)? {
            Some(members) => EventInput::from_members(members),
            None => Err(EventError::NotAnObject),
        }
    }

    /// Validates a submitted event that was already parsed as strict JSON (a member of a
    /// batch, parsed with the batch: parsing it again would cost as much as the rest of its
    /// submission).
    pub fn from_value(value: Value) -> Result<EventInput, EventError> {
        let Value::Object(members) = value else {
            return Err(EventError::NotAnObject);
        };
        EventInput::from_members(members)
    }

    /// Validates the members of a submitted event, named by owned or borrowed strings.
    fn from_members<Name: AsRef<str>>(
        members: Vec<(Name, Value)>,
    ) -> Result<EventInput, EventError> {
        let mut event_id = None;
        let mut timestamp = None;
        let mut actor = None;
        let mut action = None;
        let mut resource = None;
        let mut outcome = None;
        let mut payload = None;
        let mut context = None;
        for (name, value) in members {
            match name.as_ref() {
                "event_id" => {
                    event_id = Some(EventId::from_string(into_string("event_id", value)?)?)
                }
                "timestamp" => timestamp = Some(into_string("timestamp", value)?),
                "actor" => actor = Some(named_object("actor", value)?),
                "action" => action = Some(name_field("action", value)?),
                "resource" => resource = Some(named_object("resource", value)?),
                "outcome" => {
                    let text = into_string("outcome", value)?;
                    if !OUTCOMES.contains(&text.as_str()) {
                        return Err(EventError::Invalid {
                            field: "outcome".to_string(),
                            reason: format!("must be one of {}", OUTCOMES.join(", ")),
                        });
                    }
                    outcome = Some(text);
                }
                "payload" => payload = Some(value),
                "context" => {
                    if !matches!(value, Value::Object(_)) {
                        return Err(invalid("context", "must be an object"));
                    }
                    context = Some(value);
                }
                "schema_version" => {
                    if value != Value::Number(SCHEMA_VERSION) {
                        return Err(invalid("schema_version", "must be 1"));
                    }
                }
                // The server binds these; a producer may not choose them.
                "received_at" | "submitted_by" | "payload_hash" => {
                    return Err(invalid(
                        name.as_ref(),
                        "is set by the server, not the producer",
                    ))
                }
                other => {
                    return Err(EventError::Unknown {
                        field: other.chars().take(64).collect(),
                    })
                }
            }
        }
        let timestamp = timestamp.ok_or_else(|| missing("timestamp"))?;
        let time = Instant::parse_rfc3339(&timestamp)
            .map_err(|error| invalid("timestamp", error.reason))?;
        Ok(EventInput {
            event_id,
            timestamp,
            time,
            actor: actor.ok_or_else(|| missing("actor"))?,
            action: action.ok_or_else(|| missing("action"))?,
            resource: resource.ok_or_else(|| missing("resource"))?,
            outcome: outcome.ok_or_else(|| missing("outcome"))?,
            payload,
            context,
        })
    }

    /// The logged form: binds the event ID (the producer's, or `generated_id`), the server's
    /// receive time and the submitting principal, and hashes the payload.
    ///
    /// Returns the leaf and the canonical payload bytes (to be stored beside the log).
    pub fn into_leaf(
        self,
        generated_id: EventId,
        received_at: Instant,
        submitted_by: &str,
    ) -> Result<(EventLeaf, Option<Vec<u8>>), EventError> {
        if submitted_by.is_empty() || submitted_by.len() > MAX_PRINCIPAL_BYTES {
            return Err(invalid(
                "submitted_by",
                "the principal must be 1 to 256 bytes",
            ));
        }
        let event_id = self.event_id.unwrap_or(generated_id);
        let mut leaf = String::with_capacity(LEAF_CAPACITY);
        let canonical_payload = self
            .payload
            .as_ref()
            .map(|payload| canonicalize_in(payload, &mut leaf));
        let payload_hash = canonical_payload
            .as_ref()
            .map(|bytes| <[u8; 32]>::from(Sha256::digest(bytes)));
        // The leaf's members written out in RFC 8785 order (their names are ASCII without
        // escapes, so the order of their bytes): the bytes canonicalizing an object of them
        // gives, without building that object (`leaves_are_the_canonical_form_of_their_members`
        // holds this to the definition).
        leaf.push_str("{\"action\":");
        jcs::write_string(&self.action, &mut leaf);
        leaf.push_str(",\"actor\":");
        jcs::write_canonical(&self.actor, &mut leaf);
        if let Some(context) = &self.context {
            leaf.push_str(",\"context\":");
            jcs::write_canonical(context, &mut leaf);
        }
        leaf.push_str(",\"event_id\":");
        jcs::write_string(event_id.as_str(), &mut leaf);
        leaf.push_str(",\"outcome\":");
        jcs::write_string(&self.outcome, &mut leaf);
        if let Some(hash) = &payload_hash {
            // `sha256:` and hex digits need no escape.
            leaf.push_str(",\"payload_hash\":\"");
            push_payload_hash(&mut leaf, hash);
            leaf.push('"');
        }
        leaf.push_str(",\"received_at\":");
        leaf.push('"');
        received_at.write_rfc3339(&mut leaf);
        leaf.push('"');
        leaf.push_str(",\"resource\":");
        jcs::write_canonical(&self.resource, &mut leaf);
        leaf.push_str(",\"schema_version\":");
        jcs::write_canonical(&Value::Number(SCHEMA_VERSION), &mut leaf);
        leaf.push_str(",\"submitted_by\":");
        jcs::write_string(submitted_by, &mut leaf);
        leaf.push_str(",\"timestamp\":");
        jcs::write_string(&self.timestamp, &mut leaf);
        leaf.push('}');
        let leaf = leaf.into_bytes();
        let (actor_id, actor_type) = id_and_type(self.actor);
        let (resource_id, resource_type) = id_and_type(self.resource);
        Ok((
            EventLeaf {
                event_id,
                time: self.time,
                received_at,
                submitted_by: submitted_by.to_string(),
                actor_id,
                actor_type,
                action: self.action,
                resource_type,
                resource_id,
                outcome: self.outcome,
                payload_hash,
                leaf,
            },
            canonical_payload,
        ))
    }
}

/// The canonical form of `payload`, written in `scratch` (the leaf's empty buffer, left empty)
/// and copied out at its size: one allocation instead of a growing buffer's several. A payload
/// that outgrew the buffer leaves in it, and the leaf gets a new one.
fn canonicalize_in(payload: &Value, scratch: &mut String) -> Vec<u8> {
    let room = scratch.capacity();
    jcs::write_canonical(payload, scratch);
    if scratch.capacity() != room {
        return std::mem::replace(scratch, String::with_capacity(room)).into_bytes();
    }
    let bytes = scratch.as_bytes().to_vec();
    scratch.clear();
    bytes
}

impl EventLeaf {
    /// Reads a logged event leaf, as a monitor or auditor does: it must be canonical JCS and
    /// follow the leaf schema.
    pub fn parse(leaf: &[u8]) -> Result<EventLeaf, EventError> {
        let value = jcs::parse(leaf, event_limits())?;
        if jcs::canonicalize(&value).as_bytes() != leaf {
            return Err(EventError::NotCanonical);
        }
        let Value::Object(members) = value else {
            return Err(EventError::NotAnObject);
        };
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
        let input =
            EventInput::parse(jcs::canonicalize(&Value::Object(producer_members)).as_bytes())?;
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

/// `sha256:` and 64 lowercase hex digits.
pub fn format_payload_hash(hash: &[u8; 32]) -> String {
    let mut text = String::with_capacity(7 + 64);
    push_payload_hash(&mut text, hash);
    text
}

/// Appends [`format_payload_hash`] of `hash` to `text`.
fn push_payload_hash(text: &mut String, hash: &[u8; 32]) {
    text.push_str("sha256:");
    for byte in hash {
        push_hex(text, *byte);
    }
}

/// Two lowercase hex digits (`format!` per byte is a measurable cost on the submission path).
fn push_hex(text: &mut String, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    text.push(char::from(DIGITS[usize::from(byte >> 4)]));
    text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
}

fn parse_payload_hash(text: &str) -> Result<[u8; 32], EventError> {
    let bad = || {
        invalid(
            "payload_hash",
            "must be sha256: and 64 lowercase hex digits",
        )
    };
    let hex = text.strip_prefix("sha256:").ok_or_else(bad)?;
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(bad());
    }
    let mut out = [0u8; 32];
    for (index, chunk) in hex.as_bytes().chunks_exact(2).enumerate() {
        let pair = std::str::from_utf8(chunk).map_err(|_| bad())?;
        out[index] = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

fn missing(field: &str) -> EventError {
    EventError::Missing {
        field: field.to_string(),
    }
}

fn invalid(field: &str, reason: &str) -> EventError {
    EventError::Invalid {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

fn str_field<'a>(field: &str, value: &'a Value) -> Result<&'a str, EventError> {
    match value {
        Value::String(text) => Ok(text),
        _ => Err(invalid(field, "must be a string")),
    }
}

fn string_field(field: &str, value: &Value) -> Result<String, EventError> {
    str_field(field, value).map(str::to_string)
}

/// The string `value` holds, moved out of it.
fn into_string(field: &str, value: Value) -> Result<String, EventError> {
    match value {
        Value::String(text) => Ok(text),
        _ => Err(invalid(field, "must be a string")),
    }
}

/// Why `text` is not a short, printable name (1 to [`MAX_NAME_CHARS`] characters, no control
/// characters), if it is not.
fn name_problem(text: &str) -> Option<String> {
    let chars = text.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Some(format!("must be 1 to {MAX_NAME_CHARS} characters"));
    }
    if text.chars().any(char::is_control) {
        return Some("must not contain control characters".to_string());
    }
    None
}

/// A short, printable name (see [`name_problem`]).
fn name_field(field: &str, value: Value) -> Result<String, EventError> {
    let text = into_string(field, value)?;
    match name_problem(&text) {
        Some(reason) => Err(invalid(field, &reason)),
        None => Ok(text),
    }
}

/// An object with string `id` and `type` members.
fn named_object(field: &str, value: Value) -> Result<Value, EventError> {
    let Value::Object(members) = &value else {
        return Err(invalid(field, "must be an object with id and type"));
    };
    for required in ["id", "type"] {
        // Named only when something is wrong, so that a valid event costs no formatting.
        let member_name = || format!("{field}.{required}");
        match members.iter().find(|(name, _)| name == required) {
            Some((_, Value::String(text))) => {
                if let Some(reason) = name_problem(text) {
                    return Err(invalid(&member_name(), &reason));
                }
            }
            Some(_) => return Err(invalid(&member_name(), "must be a string")),
            None => return Err(missing(&member_name())),
        }
    }
    Ok(value)
}

/// The `id` and `type` strings of an object (empty where it has none), moved out of it.
fn id_and_type(value: Value) -> (String, String) {
    let mut id = String::new();
    let mut kind = String::new();
    if let Value::Object(members) = value {
        for (name, member) in members {
            if let Value::String(text) = member {
                match name.as_str() {
                    "id" => id = text,
                    "type" => kind = text,
                    _ => {}
                }
            }
        }
    }
    (id, kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{
        "event_id": "0b7c9a2e-5c1d-4f8a-9e3b-2d6f1a4c8e90",
        "timestamp": "2026-11-25T09:14:03.120+01:00",
        "actor": {"id": "alice@example.com", "type": "user"},
        "action": "invoice.approve",
        "resource": {"type": "invoice", "id": "INV-2026-0042"},
        "outcome": "success",
        "payload": {"amount_cents": 125000, "currency": "EUR"},
        "context": {"ip": "192.0.2.10", "request_id": "r-77"},
        "schema_version": 1
    }"#;

    fn logged() -> (EventLeaf, Option<Vec<u8>>) {
        EventInput::parse(EXAMPLE.as_bytes())
            .expect("the example is valid")
            .into_leaf(
                EventId::new_v4([7; 16]),
                Instant::from_unix(1_764_058_443, 500_000_000),
                "producer:billing",
            )
            .expect("a valid principal")
    }

    #[test]
    fn logs_the_canonical_event_with_server_fields_and_payload_hash() {
        let (leaf, payload) = logged();
        let text = String::from_utf8(leaf.leaf.clone()).expect("JSON is UTF-8");
        let payload_hash = format_payload_hash(&<[u8; 32]>::from(Sha256::digest(
            br#"{"amount_cents":125000,"currency":"EUR"}"#,
        )));
        let expected = [
            r#"{"action":"invoice.approve","actor":{"id":"alice@example.com","type":"user"},"#,
            r#""context":{"ip":"192.0.2.10","request_id":"r-77"},"#,
            r#""event_id":"0b7c9a2e-5c1d-4f8a-9e3b-2d6f1a4c8e90","outcome":"success","#,
            &format!(r#""payload_hash":"{payload_hash}","#),
            r#""received_at":"2025-11-25T08:14:03.500Z","#,
            r#""resource":{"id":"INV-2026-0042","type":"invoice"},"schema_version":1,"#,
            r#""submitted_by":"producer:billing","timestamp":"2026-11-25T09:14:03.120+01:00"}"#,
        ]
        .concat();
        assert_eq!(text, expected);
        assert_eq!(
            payload.as_deref(),
            Some(&br#"{"amount_cents":125000,"currency":"EUR"}"#[..])
        );
        assert_eq!(leaf.actor_id, "alice@example.com");
        assert_eq!(leaf.resource_type, "invoice");
    }

    #[test]
    fn a_logged_leaf_parses_back_to_the_same_event() {
        let (leaf, _) = logged();
        let parsed = EventLeaf::parse(&leaf.leaf).expect("leaves parse");
        assert_eq!(parsed, leaf);
        assert!(parsed
            .payload_matches(br#"{ "currency": "EUR", "amount_cents": 125000 }"#)
            .expect("valid JSON"));
        assert!(!parsed
            .payload_matches(br#"{"currency":"EUR","amount_cents":125001}"#)
            .expect("valid JSON"));
    }

    #[test]
    fn generates_a_v4_id_when_the_producer_gives_none() {
        let json = EXAMPLE.replace(r#""event_id": "0b7c9a2e-5c1d-4f8a-9e3b-2d6f1a4c8e90","#, "");
        let (leaf, _) = EventInput::parse(json.as_bytes())
            .expect("valid")
            .into_leaf(EventId::new_v4([0xff; 16]), Instant::from_unix(0, 0), "p")
            .expect("valid principal");
        assert_eq!(
            leaf.event_id.as_str(),
            "ffffffff-ffff-4fff-bfff-ffffffffffff"
        );
    }

    #[test]
    fn schema_errors_name_the_field() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"}}"#,
                "outcome",
            ),
            (
                r#"{"timestamp":"yesterday","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success"}"#,
                "timestamp",
            ),
            (
                r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success"}"#,
                "actor.type",
            ),
            (
                r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"","resource":{"type":"t","id":"i"},"outcome":"success"}"#,
                "action",
            ),
            (
                r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"maybe"}"#,
                "outcome",
            ),
            (
                r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success","colour":"red"}"#,
                "colour",
            ),
            (
                r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success","submitted_by":"me"}"#,
                "submitted_by",
            ),
            (
                r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success","event_id":"nope"}"#,
                "event_id",
            ),
            (
                r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success","schema_version":2}"#,
                "schema_version",
            ),
            (
                r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success","context":[]}"#,
                "context",
            ),
        ];
        for (json, field) in cases {
            let error = EventInput::parse(json.as_bytes()).expect_err(json);
            assert!(
                error.to_string().starts_with(field),
                "{json}: expected an error naming {field}, got {error}"
            );
        }
    }

    #[test]
    fn a_parsed_value_validates_as_its_text_does() {
        let value = jcs::parse(EXAMPLE.as_bytes(), event_limits()).expect("JSON");
        assert_eq!(
            EventInput::from_value(value).expect("valid"),
            EventInput::parse(EXAMPLE.as_bytes()).expect("valid")
        );
        assert!(matches!(
            EventInput::from_value(Value::Array(Vec::new())),
            Err(EventError::NotAnObject)
        ));
    }

    #[test]
    fn refuses_non_json_and_non_objects() {
        assert!(matches!(
            EventInput::parse(b"[1]"),
            Err(EventError::NotAnObject)
        ));
        assert!(matches!(
            EventInput::parse(b"{\"a\":1,\"a\":2}"),
            Err(EventError::Json(JsonError::DuplicateName { .. }))
        ));
        let deep = format!(r#"{{"payload":{}{}}}"#, "[".repeat(40), "]".repeat(40));
        assert!(matches!(
            EventInput::parse(deep.as_bytes()),
            Err(EventError::Json(JsonError::TooDeep { .. }))
        ));
    }

    #[test]
    fn refuses_leaves_that_are_not_canonical_or_carry_a_payload() {
        let (leaf, _) = logged();
        let mut spaced = String::from_utf8(leaf.leaf.clone()).expect("UTF-8");
        spaced.insert(1, ' ');
        assert_eq!(
            EventLeaf::parse(spaced.as_bytes()),
            Err(EventError::NotCanonical)
        );
        let with_payload = r#"{"action":"x","actor":{"id":"a","type":"u"},"event_id":"0b7c9a2e-5c1d-4f8a-9e3b-2d6f1a4c8e90","outcome":"success","payload":1,"received_at":"2026-01-01T00:00:00Z","resource":{"id":"i","type":"t"},"schema_version":1,"submitted_by":"p","timestamp":"2026-01-01T00:00:00Z"}"#;
        assert!(EventLeaf::parse(with_payload.as_bytes()).is_err());
    }

    #[test]
    fn the_documented_example_is_what_the_code_logs() {
        let page = include_str!("../docs/event.md");
        let block = |fence: &str| -> String {
            let start = page.find(fence).expect("the page has the block") + fence.len();
            let end = start + page[start..].find("```").expect("the block is closed");
            page[start..end].to_string()
        };
        let input = block("```json\n");
        let leaf = block("```text\n");
        let (logged, _) = EventInput::parse(input.as_bytes())
            .expect("the documented input is valid")
            .into_leaf(
                EventId::new_v4([0; 16]),
                Instant::parse_rfc3339("2025-11-25T08:14:03.5Z").expect("valid time"),
                "producer:billing",
            )
            .expect("valid principal");
        assert_eq!(
            String::from_utf8(logged.leaf).expect("UTF-8"),
            leaf.trim_end()
        );
    }

    /// What `EventInput::parse` must answer: `from_value` of what `jcs::parse` reads.
    fn parsed_as_a_value(json: &[u8]) -> Result<EventInput, EventError> {
        EventInput::from_value(jcs::parse(json, event_limits())?)
    }

    #[test]
    fn parse_reads_an_event_as_from_value_reads_its_parsed_json() {
        let escaped_names = EXAMPLE
            .replace(r#""action""#, r#""\u0061ction""#)
            .replace(r#""id""#, r#""i\u0064""#);
        let twice = EXAMPLE.replace(r#""outcome""#, r#""\u0061ction": "x", "outcome""#);
        let many: String = (0..30).map(|i| format!(r#","k{i}":{i}"#)).collect();
        let many_twice = format!(r#"{{"k0":0{many}}}"#);
        let unknown_then_bad_json = r#"{"colour":"red","timestamp":}"#;
        let documents = [
            EXAMPLE,
            &escaped_names,
            &twice,
            &many_twice,
            unknown_then_bad_json,
            r#"{"submitted\u005fby":"me"}"#,
            r#"{"\u00e9vent":1}"#,
            "[1]",
            "[1,",
            r#""event""#,
            "",
            "{}",
        ];
        for json in documents {
            assert_eq!(
                EventInput::parse(json.as_bytes()),
                parsed_as_a_value(json.as_bytes()),
                "{json}"
            );
        }
    }

    #[test]
    fn a_payload_larger_than_the_leaf_buffer_is_logged_whole() {
        let note = "x".repeat(3 * LEAF_CAPACITY);
        let json = EXAMPLE.replace(
            r#""currency": "EUR""#,
            &format!(r#""currency": "EUR", "note": "{note}""#),
        );
        let (leaf, payload) = EventInput::parse(json.as_bytes())
            .expect("valid")
            .into_leaf(EventId::new_v4([7; 16]), Instant::from_unix(0, 0), "p")
            .expect("a valid principal");
        let expected = format!(r#"{{"amount_cents":125000,"currency":"EUR","note":"{note}"}}"#);
        assert_eq!(payload.as_deref(), Some(expected.as_bytes()));
        assert_eq!(EventLeaf::parse(&leaf.leaf).expect("leaves parse"), leaf);
        assert!(leaf.payload_matches(expected.as_bytes()).expect("JSON"));
        assert!(leaf.leaf.len() < LEAF_CAPACITY);
    }

    /// A member name: an event's (or one the server sets), or any string.
    fn member_name() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        const FIELDS: [&str; 10] = [
            "event_id",
            "timestamp",
            "actor",
            "action",
            "resource",
            "outcome",
            "payload",
            "context",
            "schema_version",
            "received_at",
        ];
        prop_oneof![
            proptest::sample::select(&FIELDS[..]).prop_map(str::to_string),
            any::<String>(),
        ]
    }

    /// A JSON value of a few levels, with any names and strings (not only ASCII).
    fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
        use proptest::prelude::*;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            (-1e15f64..1e15).prop_map(Value::Number),
            any::<String>().prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                proptest::collection::btree_map(any::<String>(), inner, 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn parse_answers_as_from_value_of_the_parsed_json(
            members in proptest::collection::vec((member_name(), json_value()), 0..12),
            cut in proptest::option::of(0usize..400),
        ) {
            // Written by hand, so that a name may come twice.
            let mut json = String::from("{");
            for (index, (name, value)) in members.iter().enumerate() {
                if index > 0 {
                    json.push(',');
                }
                jcs::write_string(name, &mut json);
                json.push(':');
                jcs::write_canonical(value, &mut json);
            }
            json.push('}');
            let json = match cut {
                Some(cut) => json.get(..cut).unwrap_or(&json),
                None => &json,
            };
            proptest::prop_assert_eq!(
                EventInput::parse(json.as_bytes()),
                parsed_as_a_value(json.as_bytes())
            );
        }

        #[test]
        fn leaves_are_the_canonical_form_of_their_members(
            action in proptest::prelude::any::<String>(),
            outcome in proptest::prelude::any::<String>(),
            timestamp in proptest::prelude::any::<String>(),
            submitted_by in "\\PC{1,40}",
            actor in json_value(),
            resource in json_value(),
            payload in proptest::option::of(json_value()),
            context in proptest::option::of(json_value()),
            seconds in 0i64..4_000_000_000,
            nanos in 0u32..1_000_000_000,
        ) {
            let received_at = Instant::from_unix(seconds, nanos);
            let event_id = EventId::new_v4([9; 16]);
            let input = EventInput {
                event_id: None,
                timestamp: timestamp.clone(),
                time: Instant::from_unix(seconds / 2, 0),
                actor: actor.clone(),
                action: action.clone(),
                resource: resource.clone(),
                outcome: outcome.clone(),
                payload: payload.clone(),
                context: context.clone(),
            };
            let (leaf, canonical_payload) = input
                .into_leaf(event_id.clone(), received_at, &submitted_by)
                .expect("a valid principal");
            // The definition: the canonical form of an object of these members, in any order.
            let mut members = vec![
                ("timestamp".to_string(), Value::String(timestamp)),
                ("submitted_by".to_string(), Value::String(submitted_by)),
                ("schema_version".to_string(), Value::Number(SCHEMA_VERSION)),
                ("resource".to_string(), resource),
                ("received_at".to_string(), Value::String(received_at.to_rfc3339())),
                ("outcome".to_string(), Value::String(outcome)),
                ("event_id".to_string(), Value::String(event_id.as_str().to_string())),
                ("actor".to_string(), actor),
                ("action".to_string(), Value::String(action)),
            ];
            if let Some(context) = context {
                members.push(("context".to_string(), context));
            }
            let expected_payload = payload.as_ref().map(|payload| jcs::canonicalize(payload).into_bytes());
            if let Some(bytes) = &expected_payload {
                let hash = <[u8; 32]>::from(Sha256::digest(bytes));
                members.push(("payload_hash".to_string(), Value::String(format_payload_hash(&hash))));
            }
            let expected = jcs::canonicalize(&Value::Object(members));
            proptest::prop_assert_eq!(String::from_utf8(leaf.leaf).expect("UTF-8"), expected);
            proptest::prop_assert_eq!(canonical_payload, expected_payload);
        }
    }
}
