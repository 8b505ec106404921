//! How the `/v1` routes show a schema 2 event to a reader: its contents opened from the
//! encrypted record (or "erased"), the event in clear rebuilt from the leaf's clear fields and
//! the opened values, and the openings (salt and value) that let the reader check each
//! commitment.

use base64::Engine as _;
use cairn_spec::event::{EventLeafV2, EventOpenings, FieldOpening, PersonalField};
use serde_json::{json, Map, Value};

use crate::events::privacy::Contents;
use crate::http::ApiError;

/// An opened value as JSON (it is canonical JSON: it parses).
fn value_json(opening: &FieldOpening) -> Result<Value, ApiError> {
    serde_json::from_slice(&opening.value)
        .map_err(|error| ApiError::internal(format!("an opened value is not JSON: {error}")))
}

/// `{"actor": {"salt": "<base64>", "value": {...}}, ...}`: every field the event has.
pub(super) fn openings_json(openings: &EventOpenings) -> Result<Value, ApiError> {
    let mut members = Map::new();
    for field in PersonalField::ALL {
        if let Some(opening) = openings.get(field) {
            members.insert(
                field.name().to_string(),
                json!({
                    "salt": base64::engine::general_purpose::STANDARD.encode(opening.salt.as_bytes()),
                    "value": value_json(opening)?,
                }),
            );
        }
    }
    Ok(Value::Object(members))
}

/// The event as the producer submitted it, with what the server bound into it
/// (`received_at`, `submitted_by`): the leaf's clear fields and the opened values.
pub(super) fn event_json(leaf: &EventLeafV2, openings: &EventOpenings) -> Result<Value, ApiError> {
    let clear = &leaf.clear;
    let mut event = json!({
        "event_id": clear.event_id.as_str(),
        "timestamp": clear.timestamp,
        "received_at": clear.received_at.to_rfc3339(),
        "submitted_by": clear.submitted_by,
        "action": clear.action,
        "outcome": clear.outcome,
    });
    for field in PersonalField::ALL {
        if let Some(opening) = openings.get(field) {
            event[field.name()] = value_json(opening)?;
        }
    }
    Ok(event)
}

/// `held` or `erased`.
pub(super) fn status(contents: &Contents) -> &'static str {
    match contents {
        Contents::Held(_) => "held",
        Contents::Erased => "erased",
    }
}

/// The `id` and `type` of an opened `actor` or `resource`.
pub(super) fn id_and_type(contents: &Contents, field: PersonalField) -> (Value, Value) {
    match contents {
        Contents::Held(openings) => match openings.get(field).and_then(FieldOpening::id_and_type) {
            Some((id, kind)) => (Value::String(id), Value::String(kind)),
            None => (Value::Null, Value::Null),
        },
        Contents::Erased => (Value::Null, Value::Null),
    }
}
