//! Schema 2 leaves: the event committed to without its personal data.
//!
//! The leaf keeps in clear what the log's readers may know (`event_id`, `action`, `outcome`,
//! `timestamp`, `received_at`, `submitted_by`, `schema_version`) and carries each personal
//! field (`actor`, `resource`, `context`, `payload`) only as a salted commitment
//! (`commitment.rs`) in the member `commitments`. The salts and clear values, the field's
//! [`FieldOpening`], stay with the log's events database; whoever holds them recomputes the
//! leaf ([`EventLeafV2::build`]) or opens one field against it
//! ([`EventLeafV2::verify_opening`]). A field whose opening was destroyed still verifies as
//! committed ([`Disclosure::Erased`]).

use std::fmt;

use super::commitment::{commit, Commitment, Disclosure, FieldOpening, PersonalField, Salt};
use super::fields::{invalid, missing, name_field, name_problem, string_field};
use super::{
    event_limits, EventError, EventId, EventInput, LEAF_CAPACITY, MAX_PRINCIPAL_BYTES, OUTCOMES,
};
use crate::hash::Hash;
use crate::jcs::{self, Value};
use crate::time::Instant;

/// Schema version 2: personal fields only as salted commitments.
pub const SCHEMA_VERSION_2: f64 = 2.0;

/// What a schema 2 leaf says in clear: everything but the personal fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearFields {
    /// The event's ID.
    pub event_id: EventId,
    /// The producer's time, as written (RFC 3339).
    pub timestamp: String,
    /// The server's receive time.
    pub received_at: Instant,
    /// The principal that submitted it.
    pub submitted_by: String,
    /// `action`.
    pub action: String,
    /// `outcome`.
    pub outcome: String,
}

impl ClearFields {
    /// Checks every field as a leaf requires; answers the producer's time as an instant.
    fn check(&self) -> Result<Instant, EventError> {
        let time = Instant::parse_rfc3339(&self.timestamp)
            .map_err(|error| invalid("timestamp", error.reason))?;
        if let Some(reason) = name_problem(&self.action) {
            return Err(invalid("action", &reason));
        }
        if !OUTCOMES.contains(&self.outcome.as_str()) {
            return Err(invalid(
                "outcome",
                &format!("must be one of {}", OUTCOMES.join(", ")),
            ));
        }
        if self.submitted_by.is_empty() || self.submitted_by.len() > MAX_PRINCIPAL_BYTES {
            return Err(invalid(
                "submitted_by",
                "the principal must be 1 to 256 bytes",
            ));
        }
        // The leaf holds the receive time as its own RFC 3339 text, which must read back.
        if Instant::parse_rfc3339(&self.received_at.to_rfc3339()) != Ok(self.received_at) {
            return Err(invalid(
                "received_at",
                "must be within the years 0000 to 9999",
            ));
        }
        Ok(time)
    }
}

/// The commitments of a schema 2 leaf, one per personal field the event has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Commitments {
    /// To `actor`.
    pub actor: Commitment,
    /// To `resource`.
    pub resource: Commitment,
    /// To `context`, if the event has one.
    pub context: Option<Commitment>,
    /// To `payload`, if the event has one.
    pub payload: Option<Commitment>,
}

impl Commitments {
    /// The commitment to `field`, if the event has that field.
    pub fn get(&self, field: PersonalField) -> Option<&Commitment> {
        match field {
            PersonalField::Actor => Some(&self.actor),
            PersonalField::Resource => Some(&self.resource),
            PersonalField::Context => self.context.as_ref(),
            PersonalField::Payload => self.payload.as_ref(),
        }
    }
}

/// The salts of one event, one per personal field, each 32 bytes from a cryptographically
/// secure random source. A salt whose field the event lacks is not used (and must not be used
/// for anything else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSalts {
    /// For `actor`.
    pub actor: Salt,
    /// For `resource`.
    pub resource: Salt,
    /// For `context`.
    pub context: Salt,
    /// For `payload`.
    pub payload: Salt,
}

impl EventSalts {
    /// Four salts from 128 random bytes drawn by the caller (`rand::random()`), in the order
    /// actor, resource, context, payload.
    pub fn from_random(random: [[u8; 32]; 4]) -> EventSalts {
        let [actor, resource, context, payload] = random.map(Salt::from_bytes);
        EventSalts {
            actor,
            resource,
            context,
            payload,
        }
    }
}

/// The openings of every personal field of one event: what the events database keeps so that
/// the leaf can be recomputed, and destroys (per field) to erase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventOpenings {
    /// Of `actor`.
    pub actor: FieldOpening,
    /// Of `resource`.
    pub resource: FieldOpening,
    /// Of `context`, if the event has one.
    pub context: Option<FieldOpening>,
    /// Of `payload`, if the event has one.
    pub payload: Option<FieldOpening>,
}

impl EventOpenings {
    /// The opening of `field`, if the event has that field.
    pub fn get(&self, field: PersonalField) -> Option<&FieldOpening> {
        match field {
            PersonalField::Actor => Some(&self.actor),
            PersonalField::Resource => Some(&self.resource),
            PersonalField::Context => self.context.as_ref(),
            PersonalField::Payload => self.payload.as_ref(),
        }
    }

    /// The commitments these openings make for the event `event_id`.
    pub fn commitments(&self, event_id: &EventId) -> Commitments {
        let commit_to = |field: PersonalField, opening: &FieldOpening| {
            commit(event_id, field, &opening.salt, &opening.value)
        };
        Commitments {
            actor: commit_to(PersonalField::Actor, &self.actor),
            resource: commit_to(PersonalField::Resource, &self.resource),
            context: self
                .context
                .as_ref()
                .map(|opening| commit_to(PersonalField::Context, opening)),
            payload: self
                .payload
                .as_ref()
                .map(|opening| commit_to(PersonalField::Payload, opening)),
        }
    }

    /// Every field disclosed, opened.
    pub fn disclose_all(&self) -> EventDisclosure {
        let mut disclosure = EventDisclosure::default();
        for field in PersonalField::ALL {
            if let Some(opening) = self.get(field) {
                disclosure.set(field, Disclosure::Opened(opening.clone()));
            }
        }
        disclosure
    }
}

/// What a holder discloses of an event's personal fields: per field, its opening or "erased".
/// A field the event lacks is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventDisclosure {
    /// Of `actor`.
    pub actor: Option<Disclosure>,
    /// Of `resource`.
    pub resource: Option<Disclosure>,
    /// Of `context`.
    pub context: Option<Disclosure>,
    /// Of `payload`.
    pub payload: Option<Disclosure>,
}

impl EventDisclosure {
    /// The disclosure of `field`.
    pub fn get(&self, field: PersonalField) -> Option<&Disclosure> {
        self.slot(field).as_ref()
    }

    /// Sets the disclosure of `field`.
    pub fn set(&mut self, field: PersonalField, disclosure: Disclosure) {
        *self.slot_mut(field) = Some(disclosure);
    }

    fn slot(&self, field: PersonalField) -> &Option<Disclosure> {
        match field {
            PersonalField::Actor => &self.actor,
            PersonalField::Resource => &self.resource,
            PersonalField::Context => &self.context,
            PersonalField::Payload => &self.payload,
        }
    }

    fn slot_mut(&mut self, field: PersonalField) -> &mut Option<Disclosure> {
        match field {
            PersonalField::Actor => &mut self.actor,
            PersonalField::Resource => &mut self.resource,
            PersonalField::Context => &mut self.context,
            PersonalField::Payload => &mut self.payload,
        }
    }
}

/// What verifying a disclosure against a schema 2 leaf established: which committed fields
/// were opened (and matched) and which are erased (committed, contents gone).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contents {
    /// Fields opened and verified, in [`PersonalField::ALL`] order.
    pub opened: Vec<PersonalField>,
    /// Fields erased, in the same order.
    pub erased: Vec<PersonalField>,
}

impl Contents {
    /// Every committed field was opened.
    pub fn is_complete(&self) -> bool {
        self.erased.is_empty()
    }

    /// No field was opened: the event is committed, its contents erased.
    pub fn is_erased(&self) -> bool {
        self.opened.is_empty()
    }
}

impl fmt::Display for Contents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |fields: &[PersonalField]| {
            fields
                .iter()
                .map(|field| field.name())
                .collect::<Vec<_>>()
                .join(", ")
        };
        if self.is_complete() {
            f.write_str("verified with contents")
        } else if self.is_erased() {
            f.write_str("committed, contents erased")
        } else {
            write!(
                f,
                "verified with contents ({}); committed, contents erased ({})",
                list(&self.opened),
                list(&self.erased)
            )
        }
    }
}

/// A schema 2 leaf: the clear fields, the commitments, and the canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventLeafV2 {
    /// The fields in clear.
    pub clear: ClearFields,
    /// The producer's time, as an instant.
    pub time: Instant,
    /// The commitments to the personal fields.
    pub commitments: Commitments,
    /// The leaf: canonical JSON.
    pub leaf: Vec<u8>,
}

impl EventInput {
    /// The schema 2 logged form: binds the event ID (the producer's, or `generated_id`), the
    /// server's receive time and the submitting principal, and commits to each personal field
    /// under its salt of `salts`.
    ///
    /// Returns the leaf and the openings (to be kept in the events database).
    pub fn into_leaf_v2(
        self,
        generated_id: EventId,
        received_at: Instant,
        submitted_by: &str,
        salts: &EventSalts,
    ) -> Result<(EventLeafV2, EventOpenings), EventError> {
        let open = |salt: &Salt, value: &Value| FieldOpening {
            salt: salt.clone(),
            value: jcs::canonicalize(value).into_bytes(),
        };
        let openings = EventOpenings {
            actor: open(&salts.actor, &self.actor),
            resource: open(&salts.resource, &self.resource),
            context: self
                .context
                .as_ref()
                .map(|context| open(&salts.context, context)),
            payload: self
                .payload
                .as_ref()
                .map(|payload| open(&salts.payload, payload)),
        };
        // An opening must fit where it is checked (an export, `build`): at most the size of
        // an event.
        let limit = event_limits().max_bytes;
        for field in PersonalField::ALL {
            if openings
                .get(field)
                .is_some_and(|opening| opening.value.len() > limit)
            {
                return Err(invalid(
                    field.name(),
                    &format!("its canonical form is larger than {limit} bytes"),
                ));
            }
        }
        let clear = ClearFields {
            event_id: self.event_id.unwrap_or(generated_id),
            timestamp: self.timestamp,
            received_at,
            submitted_by: submitted_by.to_string(),
            action: self.action,
            outcome: self.outcome,
        };
        let commitments = openings.commitments(&clear.event_id);
        let leaf = EventLeafV2::from_commitments(clear, commitments)?;
        Ok((leaf, openings))
    }
}

impl EventLeafV2 {
    /// Recomputes the leaf of an event from its clear fields and the openings of its personal
    /// fields (each checked: canonical, of its field's shape), as whoever holds the event and
    /// its salts does to check it against a receipt.
    pub fn build(clear: ClearFields, openings: &EventOpenings) -> Result<EventLeafV2, EventError> {
        for field in PersonalField::ALL {
            if let Some(opening) = openings.get(field) {
                opening.checked_value(field)?;
            }
        }
        let commitments = openings.commitments(&clear.event_id);
        EventLeafV2::from_commitments(clear, commitments)
    }

    /// The leaf of these clear fields and commitments (checked as a leaf requires).
    pub fn from_commitments(
        clear: ClearFields,
        commitments: Commitments,
    ) -> Result<EventLeafV2, EventError> {
        let time = clear.check()?;
        // The members in RFC 8785 order (ASCII names: the order of their bytes), written out
        // (`v2_leaves_are_the_canonical_form_of_their_members` holds this to the definition).
        let mut leaf = String::with_capacity(LEAF_CAPACITY);
        leaf.push_str("{\"action\":");
        jcs::write_string(&clear.action, &mut leaf);
        leaf.push_str(",\"commitments\":{");
        let in_name_order = [
            (PersonalField::Actor, Some(commitments.actor)),
            (PersonalField::Context, commitments.context),
            (PersonalField::Payload, commitments.payload),
            (PersonalField::Resource, Some(commitments.resource)),
        ];
        let mut first = true;
        for (field, commitment) in in_name_order {
            let Some(commitment) = commitment else {
                continue;
            };
            if !first {
                leaf.push(',');
            }
            first = false;
            leaf.push('"');
            leaf.push_str(field.name());
            leaf.push_str("\":\"");
            leaf.push_str(&commitment.to_hex());
            leaf.push('"');
        }
        leaf.push_str("},\"event_id\":");
        jcs::write_string(clear.event_id.as_str(), &mut leaf);
        leaf.push_str(",\"outcome\":");
        jcs::write_string(&clear.outcome, &mut leaf);
        leaf.push_str(",\"received_at\":\"");
        clear.received_at.write_rfc3339(&mut leaf);
        leaf.push_str("\",\"schema_version\":2,\"submitted_by\":");
        jcs::write_string(&clear.submitted_by, &mut leaf);
        leaf.push_str(",\"timestamp\":");
        jcs::write_string(&clear.timestamp, &mut leaf);
        leaf.push('}');
        Ok(EventLeafV2 {
            clear,
            time,
            commitments,
            leaf: leaf.into_bytes(),
        })
    }

    /// Reads a schema 2 leaf, as a monitor or auditor does: it must be canonical JCS and follow
    /// the schema 2 leaf exactly (event.md).
    pub fn parse(leaf: &[u8]) -> Result<EventLeafV2, EventError> {
        match super::AnyEventLeaf::parse(leaf)? {
            super::AnyEventLeaf::V2(parsed) => Ok(parsed),
            super::AnyEventLeaf::V1(_) => Err(invalid("schema_version", "must be 2")),
        }
    }

    /// [`EventLeafV2::parse`] of a leaf already parsed and found canonical.
    pub(super) fn from_canonical_members(
        members: Vec<(String, Value)>,
        leaf: &[u8],
    ) -> Result<EventLeafV2, EventError> {
        let mut action = None;
        let mut commitments = None;
        let mut event_id = None;
        let mut outcome = None;
        let mut received_at = None;
        let mut schema_version = false;
        let mut submitted_by = None;
        let mut timestamp = None;
        for (name, value) in members {
            match name.as_str() {
                "action" => action = Some(name_field("action", value)?),
                "commitments" => commitments = Some(parse_commitments(value)?),
                "event_id" => {
                    let text = string_field("event_id", &value)?;
                    let id = EventId::parse(&text)?;
                    if id.as_str() != text {
                        return Err(invalid("event_id", "must be lowercase in a leaf"));
                    }
                    event_id = Some(id);
                }
                "outcome" => outcome = Some(string_field("outcome", &value)?),
                "received_at" => {
                    let text = string_field("received_at", &value)?;
                    let instant = Instant::parse_rfc3339(&text)
                        .map_err(|error| invalid("received_at", error.reason))?;
                    if instant.to_rfc3339() != text {
                        return Err(invalid(
                            "received_at",
                            "must be UTC with Z and the fraction in groups of three digits",
                        ));
                    }
                    received_at = Some(instant);
                }
                "schema_version" => {
                    if value != Value::Number(SCHEMA_VERSION_2) {
                        return Err(invalid("schema_version", "must be 2"));
                    }
                    schema_version = true;
                }
                "submitted_by" => submitted_by = Some(string_field("submitted_by", &value)?),
                "timestamp" => timestamp = Some(string_field("timestamp", &value)?),
                other => {
                    return Err(EventError::Unknown {
                        field: other.chars().take(64).collect(),
                    })
                }
            }
        }
        if !schema_version {
            return Err(missing("schema_version"));
        }
        let clear = ClearFields {
            event_id: event_id.ok_or_else(|| missing("event_id"))?,
            timestamp: timestamp.ok_or_else(|| missing("timestamp"))?,
            received_at: received_at.ok_or_else(|| missing("received_at"))?,
            submitted_by: submitted_by.ok_or_else(|| missing("submitted_by"))?,
            action: action.ok_or_else(|| missing("action"))?,
            outcome: outcome.ok_or_else(|| missing("outcome"))?,
        };
        let time = clear.check()?;
        Ok(EventLeafV2 {
            clear,
            time,
            commitments: commitments.ok_or_else(|| missing("commitments"))?,
            leaf: leaf.to_vec(),
        })
    }

    /// The RFC 9162 leaf hash of the leaf: what a receipt states.
    pub fn leaf_hash(&self) -> Hash {
        Hash::of_leaf(&self.leaf)
    }

    /// Checks `opening` against the leaf's commitment to `field`; answers the opened value
    /// (checked: canonical, of the field's shape).
    pub fn verify_opening(
        &self,
        field: PersonalField,
        opening: &FieldOpening,
    ) -> Result<Value, EventError> {
        let commitment = self
            .commitments
            .get(field)
            .ok_or_else(|| invalid(field.name(), "the leaf commits to no such field"))?;
        if !opening.opens(&self.clear.event_id, field, commitment) {
            return Err(EventError::CommitmentMismatch {
                field: field.name().to_string(),
            });
        }
        opening.checked_value(field)
    }

    /// Checks a disclosure of the whole event: every field the leaf commits to must be either
    /// opened (and verify) or marked erased, and no other field disclosed.
    pub fn verify_disclosure(&self, disclosure: &EventDisclosure) -> Result<Contents, EventError> {
        let mut contents = Contents::default();
        for field in PersonalField::ALL {
            match (self.commitments.get(field), disclosure.get(field)) {
                (Some(_), Some(Disclosure::Opened(opening))) => {
                    self.verify_opening(field, opening)?;
                    contents.opened.push(field);
                }
                (Some(_), Some(Disclosure::Erased)) => contents.erased.push(field),
                (Some(_), None) => {
                    return Err(invalid(
                        field.name(),
                        "committed in the leaf, but neither opened nor marked erased",
                    ))
                }
                (None, Some(_)) => {
                    return Err(invalid(
                        field.name(),
                        "disclosed, but the leaf commits to no such field",
                    ))
                }
                (None, None) => {}
            }
        }
        Ok(contents)
    }
}

/// The `commitments` member: an object with `actor` and `resource`, optionally `context` and
/// `payload`, each 64 lowercase hex digits.
fn parse_commitments(value: Value) -> Result<Commitments, EventError> {
    let Value::Object(members) = value else {
        return Err(invalid("commitments", "must be an object"));
    };
    let mut found: [Option<Commitment>; 4] = [None; 4];
    for (name, member) in members {
        let Some(field) = PersonalField::from_name(&name) else {
            return Err(EventError::Unknown {
                field: format!("commitments.{}", name.chars().take(64).collect::<String>()),
            });
        };
        let path = format!("commitments.{name}");
        let text = string_field(&path, &member)?;
        let commitment = Commitment::parse_hex(&text)
            .ok_or_else(|| invalid(&path, "must be 64 lowercase hex digits"))?;
        found[field as usize] = Some(commitment);
    }
    let [actor, resource, context, payload] = found;
    Ok(Commitments {
        actor: actor.ok_or_else(|| missing("commitments.actor"))?,
        resource: resource.ok_or_else(|| missing("commitments.resource"))?,
        context,
        payload,
    })
}
