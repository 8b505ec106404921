//! Event IDs: UUIDs in their canonical lowercase text form.

use super::fields::push_hex;
use super::EventError;

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
    pub(super) fn from_string(mut text: String) -> Result<EventId, EventError> {
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
