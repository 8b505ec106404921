//! A submitted event: validated against the schema, then made into its leaf with the
//! server's receive time and the submitting principal bound in.

use sha2::{Digest, Sha256};

use super::fields::{
    id_and_type, into_string, invalid, missing, name_field, named_object, push_payload_hash,
};
use super::{
    event_limits, EventError, EventId, EventInput, EventLeaf, EVENT_FIELDS, LEAF_CAPACITY,
    MAX_PRINCIPAL_BYTES, OUTCOMES, SCHEMA_VERSION, SCHEMA_VERSION_2,
};
use crate::jcs::{self, Value};
use crate::time::Instant;

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
    pub(super) fn from_members<Name: AsRef<str>>(
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
        let mut schema_version = None;
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
                    schema_version = Some(match value {
                        Value::Number(number) if number == SCHEMA_VERSION => 1,
                        Value::Number(number) if number == SCHEMA_VERSION_2 => 2,
                        _ => return Err(invalid("schema_version", "must be 1 or 2")),
                    });
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
            schema_version,
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
        if self.schema_version == Some(2) {
            // The producer asked that its event's personal fields never be logged in clear.
            return Err(invalid(
                "schema_version",
                "2 asks for a schema 2 leaf (personal fields committed, not in clear), which this leaf writer does not make",
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
