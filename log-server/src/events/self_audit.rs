//! Self-audit of reads: every search (`GET /v1/events`), event view (`GET /v1/events/{id}`)
//! and export (`GET /v1/export`) that a principal makes is itself logged, as one audit event
//! per request, before the answer leaves the server.
//!
//! The record is an event of the server's own, under a reserved action ([`READ_SEARCH`],
//! [`READ_EVENT`], [`READ_EXPORT`]), with the reading principal as its actor and submitter.
//! What was asked (the query's values) is personal data, so the record is a schema 2 event:
//! the actor, the resource and the payload enter the leaf only as salted commitments, and
//! their openings are sealed under the data subject's key like any producer's event
//! (spec/docs/event.md, "Schema 2"). The payload is `{"asked": {...}, "answered": N}`: the
//! query parameters given, each cut to [`MAX_RECORDED_VALUE_BYTES`] (the cut ones listed in
//! `"truncated"` with their length), and how many events the answer carried.
//!
//! Why it is sound and bounded:
//! - **Durable with the answer.** The read is done first, then its record is submitted through
//!   the normal group commit, and only once the record is durable is the answer sent, naming
//!   the record (header [`SELF_AUDIT_HEADER`]). If the record cannot be made (overload, a full
//!   disk), the request fails and nothing read is sent. A crash between the read and the
//!   record loses a read that nobody received.
//! - **One record per request.** A request makes exactly one record whatever it asks for,
//!   including a search for self-audit records (whose own record is one more event, not a
//!   cascade). Requests that fail (a bad query, an unknown event) are not recorded: they
//!   disclosed nothing but the error.
//! - **Bounded.** At most 8 query parameters of at most [`MAX_RECORDED_VALUE_BYTES`] each.
//! - **Kept.** Reserved actions are refused to producers, and the payload of an event under a
//!   reserved action is never erased by `DELETE /v1/events/{id}/payload` nor by retention; the
//!   erasure of the principal as a data subject (crypto-shredding) does erase its records'
//!   contents, leaving their commitments, as the law may require.
//!
//! Off (`self_audit = false` in log.toml), nothing is recorded and the answers name no
//! record.

use std::sync::Arc;

use cairn_spec::event::EventInput;
use serde_json::{json, Map, Value};

use super::submit::{now, Events, SubmitError, Submitted};

/// A principal searched events (`GET /v1/events`).
pub const READ_SEARCH: &str = "cairn.read.search";
/// A principal read one event (`GET /v1/events/{id}`).
pub const READ_EVENT: &str = "cairn.read.event";
/// A principal exported events (`GET /v1/export`).
pub const READ_EXPORT: &str = "cairn.read.export";
/// The header of an answer that names the event recording its request.
pub const SELF_AUDIT_HEADER: &str = "cairn-self-audit";
/// Most bytes of one query value a record carries (longer ones are cut, and say so).
pub const MAX_RECORDED_VALUE_BYTES: usize = 512;
/// Most query values a record carries.
const MAX_RECORDED_VALUES: usize = 8;

/// One read to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    action: &'static str,
    resource_type: &'static str,
    resource_id: String,
    asked: Vec<(&'static str, String)>,
    answered: usize,
}

impl ReadRecord {
    /// A search with the query parameters `asked` (name, value), answered with `answered`
    /// events.
    pub fn search(asked: Vec<(&'static str, String)>, answered: usize) -> ReadRecord {
        ReadRecord {
            action: READ_SEARCH,
            resource_type: "cairn.query",
            resource_id: "/v1/events".into(),
            asked,
            answered,
        }
    }

    /// The view of the event `event_id`.
    pub fn event(event_id: &str) -> ReadRecord {
        ReadRecord {
            action: READ_EVENT,
            resource_type: "event",
            resource_id: event_id.to_string(),
            asked: Vec::new(),
            answered: 1,
        }
    }

    /// An export with the query parameters `asked`, carrying `answered` events.
    pub fn export(asked: Vec<(&'static str, String)>, answered: usize) -> ReadRecord {
        ReadRecord {
            action: READ_EXPORT,
            resource_type: "cairn.query",
            resource_id: "/v1/export".into(),
            asked,
            answered,
        }
    }

    /// Its action.
    pub fn action(&self) -> &'static str {
        self.action
    }

    /// The record's payload: what was asked (each value cut to the bound) and how many events
    /// were answered.
    pub fn payload(&self) -> Value {
        let mut asked = Map::new();
        let mut truncated = Map::new();
        for (name, value) in self.asked.iter().take(MAX_RECORDED_VALUES) {
            let kept = cut(value, MAX_RECORDED_VALUE_BYTES);
            if kept.len() < value.len() {
                truncated.insert((*name).to_string(), json!(value.len()));
            }
            asked.insert((*name).to_string(), json!(kept));
        }
        let mut payload = json!({"asked": asked, "answered": self.answered});
        if !truncated.is_empty() {
            payload["truncated"] = Value::Object(truncated);
        }
        payload
    }

    /// The event that records this read by `principal`.
    fn event_input(&self, principal: &str) -> Result<EventInput, SubmitError> {
        let document = json!({
            "timestamp": now().to_rfc3339(),
            "actor": {"id": principal, "type": "principal"},
            "action": self.action,
            "resource": {"type": self.resource_type, "id": self.resource_id},
            "outcome": "success",
            "payload": self.payload(),
            "schema_version": 2,
        });
        EventInput::parse(document.to_string().as_bytes()).map_err(|source| SubmitError::Invalid {
            position: 0,
            source,
        })
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl Events {
    /// Whether reads are recorded.
    pub fn self_audit(&self) -> bool {
        self.self_audit
    }

    /// Records `read` by `principal` as one durable event, or nothing when self-audit is off.
    /// The caller sends its answer only after this returns the record.
    pub async fn record_read(
        self: &Arc<Self>,
        principal: &str,
        read: &ReadRecord,
    ) -> Result<Option<Submitted>, SubmitError> {
        if !self.self_audit {
            return Ok(None);
        }
        let input = read.event_input(principal)?;
        self.submit_own_v2(input, principal).await.map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_carries_what_was_asked_within_its_bound() {
        let long = "é".repeat(MAX_RECORDED_VALUE_BYTES); // 2 bytes each
        let read = ReadRecord::search(
            vec![("actor", "alice".into()), ("resource", long.clone())],
            3,
        );
        let payload = read.payload();
        assert_eq!(payload["asked"]["actor"], "alice");
        assert_eq!(payload["answered"], 3);
        let kept = payload["asked"]["resource"].as_str().expect("a string");
        assert_eq!(kept.len(), MAX_RECORDED_VALUE_BYTES);
        assert!(long.starts_with(kept));
        assert_eq!(payload["truncated"]["resource"], long.len());
        assert!(payload["truncated"].get("actor").is_none());
    }

    #[test]
    fn a_record_is_a_schema_2_event_of_the_principal() {
        let read = ReadRecord::event("0123abcd-ef45-4678-89ab-cdef01234567");
        let input = read.event_input("auditor").expect("valid");
        assert_eq!(input.action, READ_EVENT);
        assert!(super::super::records::is_reserved(&input.action));
        assert_eq!(input.schema_version, Some(2));
        const NAMES: [&str; 10] = ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"];
        let many = NAMES.iter().map(|name| (*name, "x".to_string())).collect();
        let payload = ReadRecord::export(many, 0).payload();
        let asked = payload["asked"].as_object().expect("object");
        assert_eq!(asked.len(), MAX_RECORDED_VALUES);
    }

    #[test]
    fn a_cut_ends_on_a_character_boundary() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("aé", 2), "a");
        assert_eq!(cut("aé", 3), "aé");
    }
}
