//! Writing the RFC 8785 canonical form: members sorted by the UTF-16 code units of their names,
//! strings with the minimal escapes, numbers as ECMAScript writes an IEEE 754 double.

use std::fmt::Write as _;

use super::{Value, MAX_SAFE_INTEGER};

/// Objects with at most this many members are sorted without an allocation (member numbers
/// fit in a byte).
const SMALL_OBJECT: usize = 32;

/// Appends the RFC 8785 canonical form of `value` to `out`.
pub(crate) fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(number) => write_number(*number, out),
        Value::String(text) => write_string(text, out),
        Value::Array(items) => {
            out.push('[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::Object(members) => {
            // RFC 8785 §3.2.3: sort by the names' UTF-16 code units, compared as unsigned numbers.
            // A small object (nearly every one) is sorted as member numbers on the stack.
            let by_name =
                |left: &(String, Value), right: &(String, Value)| utf16_order(&left.0, &right.0);
            out.push('{');
            if members.len() <= SMALL_OBJECT {
                // Member numbers below SMALL_OBJECT (32) fit in a byte.
                let mut order: [u8; SMALL_OBJECT] = std::array::from_fn(|number| number as u8);
                let order = &mut order[..members.len()];
                order.sort_by(|&left, &right| {
                    by_name(&members[usize::from(left)], &members[usize::from(right)])
                });
                write_members(
                    order.iter().map(|&number| &members[usize::from(number)]),
                    out,
                );
            } else {
                let mut sorted: Vec<&(String, Value)> = members.iter().collect();
                sorted.sort_by(|left, right| by_name(left, right));
                write_members(sorted.into_iter(), out);
            }
            out.push('}');
        }
    }
}

/// Writes sorted object members, without the braces.
fn write_members<'a>(members: impl Iterator<Item = &'a (String, Value)>, out: &mut String) {
    for (index, (name, member)) in members.enumerate() {
        if index > 0 {
            out.push(',');
        }
        write_string(name, out);
        out.push(':');
        write_canonical(member, out);
    }
}

/// The order of RFC 8785 §3.2.3: by UTF-16 code units, compared as unsigned numbers. For two
/// ASCII names (nearly all of them) that is the order of their bytes.
pub(super) fn utf16_order(left: &str, right: &str) -> std::cmp::Ordering {
    if left.is_ascii() && right.is_ascii() {
        left.as_bytes().cmp(right.as_bytes())
    } else {
        left.encode_utf16().cmp(right.encode_utf16())
    }
}

/// The bytes a JSON string escapes: the quote, the backslash and the control characters (a
/// table, as the hot loops over strings look each byte up).
pub(super) const ESCAPED: [bool; 256] = {
    let mut escaped = [false; 256];
    let mut byte = 0;
    while byte < 0x20 {
        escaped[byte] = true;
        byte += 1;
    }
    escaped[b'"' as usize] = true;
    escaped[b'\\' as usize] = true;
    escaped
};

/// RFC 8785 §3.2.2.2: strings with only the escapes JSON requires, in their short forms.
pub(crate) fn write_string(text: &str, out: &mut String) {
    out.push('"');
    // Every byte that needs an escape is ASCII, so the runs between them are whole characters
    // and are copied as they are.
    let bytes = text.as_bytes();
    let mut run_start = 0;
    while let Some(offset) = bytes[run_start..]
        .iter()
        .position(|&byte| ESCAPED[usize::from(byte)])
    {
        let position = run_start + offset;
        out.push_str(&text[run_start..position]);
        match bytes[position] {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            0x08 => out.push_str("\\b"),
            0x0c => out.push_str("\\f"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            control => {
                let _ = write!(out, "\\u{control:04x}");
            }
        }
        run_start = position + 1;
    }
    out.push_str(&text[run_start..]);
    out.push('"');
}

/// RFC 8785 §3.2.2.3: the ECMAScript Number-to-String algorithm (ECMA-262 Number::toString),
/// including its tie rule (of two equally close shortest digit strings, the even one), which
/// Rust's own float formatting does not follow.
pub(super) fn write_number(number: f64, out: &mut String) {
    if number.fract() == 0.0 && number.abs() <= MAX_SAFE_INTEGER {
        // Every integer up to 2^53 − 1 is a double, so no shorter digit string denotes this
        // one: the algorithm writes its digits, as an integer type does (and both zeros "0").
        let _ = write!(out, "{}", number as i64);
        return;
    }
    out.push_str(ryu_js::Buffer::new().format_finite(number));
}
