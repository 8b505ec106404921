//! The rules one field follows (names, objects with `id` and `type`, the payload hash), and the
//! errors that name the field.

use super::{EventError, Value, MAX_NAME_CHARS};

/// `sha256:` and 64 lowercase hex digits.
pub fn format_payload_hash(hash: &[u8; 32]) -> String {
    let mut text = String::with_capacity(7 + 64);
    push_payload_hash(&mut text, hash);
    text
}

/// Appends [`format_payload_hash`] of `hash` to `text`.
pub(super) fn push_payload_hash(text: &mut String, hash: &[u8; 32]) {
    text.push_str("sha256:");
    for byte in hash {
        push_hex(text, *byte);
    }
}

/// Two lowercase hex digits (`format!` per byte is a measurable cost on the submission path).
pub(super) fn push_hex(text: &mut String, byte: u8) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    text.push(char::from(DIGITS[usize::from(byte >> 4)]));
    text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
}

pub(super) fn parse_payload_hash(text: &str) -> Result<[u8; 32], EventError> {
    text.strip_prefix("sha256:")
        .and_then(parse_hex32)
        .ok_or_else(|| {
            invalid(
                "payload_hash",
                "must be sha256: and 64 lowercase hex digits",
            )
        })
}

/// Exactly 64 lowercase hex digits, as 32 bytes.
pub(super) fn parse_hex32(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let digit = |byte: u8| match byte {
        b'0'..=b'9' => Some(byte - b'0'),
        b'a'..=b'f' => Some(byte - b'a' + 10),
        _ => None,
    };
    let mut out = [0u8; 32];
    for (index, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
        out[index] = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(out)
}

pub(super) fn missing(field: &str) -> EventError {
    EventError::Missing {
        field: field.to_string(),
    }
}

pub(super) fn invalid(field: &str, reason: &str) -> EventError {
    EventError::Invalid {
        field: field.to_string(),
        reason: reason.to_string(),
    }
}

pub(super) fn str_field<'a>(field: &str, value: &'a Value) -> Result<&'a str, EventError> {
    match value {
        Value::String(text) => Ok(text),
        _ => Err(invalid(field, "must be a string")),
    }
}

pub(super) fn string_field(field: &str, value: &Value) -> Result<String, EventError> {
    str_field(field, value).map(str::to_string)
}

/// The string `value` holds, moved out of it.
pub(super) fn into_string(field: &str, value: Value) -> Result<String, EventError> {
    match value {
        Value::String(text) => Ok(text),
        _ => Err(invalid(field, "must be a string")),
    }
}

/// Why `text` is not a short, printable name (1 to [`MAX_NAME_CHARS`] characters, no control
/// characters), if it is not.
pub(super) fn name_problem(text: &str) -> Option<String> {
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
pub(super) fn name_field(field: &str, value: Value) -> Result<String, EventError> {
    let text = into_string(field, value)?;
    match name_problem(&text) {
        Some(reason) => Err(invalid(field, &reason)),
        None => Ok(text),
    }
}

/// An object with string `id` and `type` members.
pub(super) fn named_object(field: &str, value: Value) -> Result<Value, EventError> {
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
pub(super) fn id_and_type(value: Value) -> (String, String) {
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
