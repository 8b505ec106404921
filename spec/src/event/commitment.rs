//! Salted commitments to the personal fields of a schema 2 event, and their openings.
//!
//! A schema 2 leaf carries each personal field (`actor`, `resource`, `context`, `payload`) only
//! as a commitment: HMAC-SHA-256 keyed by a salt of 32 random bytes drawn for that one field of
//! that one event, over a domain label, the event's ID, the field's name and the field's
//! RFC 8785 canonical form:
//!
//! ```text
//! commitment = HMAC-SHA-256(key = salt,
//!                           "cairn.event/v2 commitment" 0x00 event_id 0x00 field 0x00 canonical value)
//! ```
//!
//! Hiding rests on HMAC being a pseudorandom function under a secret key (the salt): without
//! the salt, the 32 bytes say nothing about the value, not even its length, and a dictionary of
//! likely values (e-mail addresses) is of no use. Binding rests on SHA-256's collision
//! resistance: the key has a fixed length (so no two salts pad to one HMAC key), and the message
//! decodes one way only (the label, the 36-byte event ID and the field name are fixed or contain
//! no 0x00; the value is the rest). The event ID and the field name in the message, and a fresh
//! salt per field, mean that equal values in two fields or two events give unrelated
//! commitments, even if a salt were ever repeated. `spec/docs/event.md` states the construction
//! with test vectors.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::fields::{named_object, parse_hex32, push_hex};
use super::{event_limits, EventError, EventId};
use crate::jcs::{self, Value};

/// The label that opens every commitment's message.
pub const COMMITMENT_DOMAIN: &str = "cairn.event/v2 commitment";
/// Bytes of a salt.
pub const SALT_SIZE: usize = 32;

/// A personal field of an event: in a schema 2 leaf only as a commitment.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum PersonalField {
    /// `actor`: who acted.
    Actor,
    /// `resource`: what was acted on.
    Resource,
    /// `context`: IP address, session, request ID and the like.
    Context,
    /// `payload`: the event's details.
    Payload,
}

impl PersonalField {
    /// Every personal field, in the order a bundle lists them.
    pub const ALL: [PersonalField; 4] = [
        PersonalField::Actor,
        PersonalField::Resource,
        PersonalField::Context,
        PersonalField::Payload,
    ];

    /// The member name, as in the event and in the commitment's message.
    pub fn name(self) -> &'static str {
        match self {
            PersonalField::Actor => "actor",
            PersonalField::Resource => "resource",
            PersonalField::Context => "context",
            PersonalField::Payload => "payload",
        }
    }

    /// The field named `name`, if it is one.
    pub fn from_name(name: &str) -> Option<PersonalField> {
        PersonalField::ALL
            .into_iter()
            .find(|field| field.name() == name)
    }

    /// Whether the field must be present in every event (`actor`, `resource`).
    pub fn is_required(self) -> bool {
        matches!(self, PersonalField::Actor | PersonalField::Resource)
    }

    /// Checks that `value` may be this field's value (the rules of event.md): `actor` and
    /// `resource` are objects with `id` and `type`, `context` an object, `payload` anything.
    pub fn check_value(self, value: Value) -> Result<Value, EventError> {
        match self {
            PersonalField::Actor | PersonalField::Resource => named_object(self.name(), value),
            PersonalField::Context => match value {
                Value::Object(_) => Ok(value),
                _ => Err(super::fields::invalid("context", "must be an object")),
            },
            PersonalField::Payload => Ok(value),
        }
    }
}

impl fmt::Display for PersonalField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The salt of one field of one event: 32 bytes from a cryptographically secure random source,
/// never used for another field or event. Whoever holds it (with the value) can open the
/// commitment; destroying it (with the value) leaves the commitment meaningless.
#[derive(Clone, PartialEq, Eq)]
pub struct Salt([u8; SALT_SIZE]);

impl Salt {
    /// A salt of these bytes (the caller draws them: cairn-spec has no randomness of its own).
    pub fn from_bytes(bytes: [u8; SALT_SIZE]) -> Salt {
        Salt(bytes)
    }

    /// A salt from a slice, which must be [`SALT_SIZE`] bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Salt> {
        bytes.try_into().ok().map(Salt)
    }

    /// Its bytes.
    pub fn as_bytes(&self) -> &[u8; SALT_SIZE] {
        &self.0
    }
}

impl fmt::Debug for Salt {
    /// A salt is a secret: it is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Salt(..)")
    }
}

/// A commitment to one field: 32 bytes, written in a leaf as 64 lowercase hex digits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Commitment(pub [u8; 32]);

impl Commitment {
    /// 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        let mut text = String::with_capacity(64);
        for byte in self.0 {
            push_hex(&mut text, byte);
        }
        text
    }

    /// Reads 64 lowercase hex digits (nothing else: a leaf has one form only).
    pub fn parse_hex(text: &str) -> Option<Commitment> {
        parse_hex32(text).map(Commitment)
    }
}

/// The commitment to `canonical_value` (the RFC 8785 form of the field's value) as the field
/// `field` of the event `event_id`, under `salt`.
pub fn commit(
    event_id: &EventId,
    field: PersonalField,
    salt: &Salt,
    canonical_value: &[u8],
) -> Commitment {
    Commitment(
        commitment_mac(event_id, field, salt, canonical_value)
            .finalize()
            .into_bytes()
            .into(),
    )
}

/// The HMAC of a commitment, all but finalised.
fn commitment_mac(
    event_id: &EventId,
    field: PersonalField,
    salt: &Salt,
    canonical_value: &[u8],
) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(salt.as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(COMMITMENT_DOMAIN.as_bytes());
    mac.update(&[0]);
    mac.update(event_id.as_str().as_bytes());
    mac.update(&[0]);
    mac.update(field.name().as_bytes());
    mac.update(&[0]);
    mac.update(canonical_value);
    mac
}

/// What opens one commitment: the salt and the field's value in RFC 8785 canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldOpening {
    /// The field's salt.
    pub salt: Salt,
    /// The field's value, canonical JSON (UTF-8).
    pub value: Vec<u8>,
}

impl FieldOpening {
    /// The commitment this opening makes as field `field` of event `event_id`.
    pub fn commitment(&self, event_id: &EventId, field: PersonalField) -> Commitment {
        commit(event_id, field, &self.salt, &self.value)
    }

    /// Whether this opening opens `commitment` (compared in constant time, though nothing
    /// compared here is secret from the verifier).
    pub fn opens(&self, event_id: &EventId, field: PersonalField, commitment: &Commitment) -> bool {
        commitment_mac(event_id, field, &self.salt, &self.value)
            .verify_slice(&commitment.0)
            .is_ok()
    }

    /// The value, checked: strict JSON within the event limits, in canonical form byte for
    /// byte, and of the shape the field requires.
    pub fn checked_value(&self, field: PersonalField) -> Result<Value, EventError> {
        let value = jcs::parse(&self.value, event_limits()).map_err(|error| {
            super::fields::invalid(field.name(), &format!("opened value: {error}"))
        })?;
        if jcs::canonicalize(&value).as_bytes() != self.value.as_slice() {
            return Err(super::fields::invalid(
                field.name(),
                "opened value is not in RFC 8785 canonical form",
            ));
        }
        field.check_value(value)
    }

    /// The `id` and `type` of an opened `actor` or `resource` (`None` if the value has no
    /// such strings): what the log indexes and shows.
    pub fn id_and_type(&self) -> Option<(String, String)> {
        let value = jcs::parse(&self.value, event_limits()).ok()?;
        let (id, kind) = super::fields::id_and_type(value);
        (!id.is_empty() && !kind.is_empty()).then_some((id, kind))
    }
}

/// What a holder discloses of one committed field: its opening, or that it was erased (its
/// salt and value destroyed: only the commitment is left).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Disclosure {
    /// The salt and value.
    Opened(FieldOpening),
    /// Erased: committed, contents gone.
    Erased,
}
