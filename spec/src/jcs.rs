//! Strict JSON parsing and the JSON Canonicalization Scheme of RFC 8785 (JCS).
//!
//! An audit event becomes a leaf only in its canonical form, so that the same event always
//! hashes to the same leaf, whoever serialised it. JCS fixes the form: object members sorted by
//! the UTF-16 code units of their names, no whitespace, strings with the minimal escapes, and
//! numbers written as ECMAScript writes an IEEE 754 double.
//!
//! The parser is stricter than RFC 8259 where ambiguity would let two parties disagree on what
//! was logged (I-JSON, RFC 7493): duplicate member names, unpaired surrogates, invalid UTF-8,
//! and integers beyond ±(2^53 − 1) are refused when written as integers (a double would silently
//! change them) or when their canonical form would be an integer (`1e20`), so that every
//! canonical form parses back to itself. Depth,
//! size, string length and member counts are bounded by [`Limits`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// A parsed JSON value. Objects keep their members in input order; [`canonicalize`] sorts them.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A number, as the IEEE 754 double it denotes.
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object: member names are unique.
    Object(Vec<(String, Value)>),
}

/// Bounds on what [`parse`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of input.
    pub max_bytes: usize,
    /// Deepest nesting of arrays and objects.
    pub max_depth: usize,
    /// Most bytes of one string after unescaping.
    pub max_string_bytes: usize,
    /// Most elements of one array or members of one object.
    pub max_container_len: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: 1 << 20,
            max_depth: 32,
            max_string_bytes: 64 * 1024,
            max_container_len: 10_000,
        }
    }
}

/// Why a JSON text was refused; `offset` is the byte where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JsonError {
    /// The input is larger than the limit.
    #[error("JSON is {found} bytes, more than the limit of {limit}")]
    TooLarge {
        /// Its size.
        found: usize,
        /// The limit.
        limit: usize,
    },
    /// The input is not UTF-8.
    #[error("invalid UTF-8 at byte {offset}")]
    InvalidUtf8 {
        /// Where.
        offset: usize,
    },
    /// Something other than what the grammar allows here.
    #[error("at byte {offset}: expected {expected}, found {found}")]
    Unexpected {
        /// Where.
        offset: usize,
        /// What the grammar allows.
        expected: &'static str,
        /// What was there.
        found: String,
    },
    /// Nested deeper than the limit.
    #[error("at byte {offset}: nested deeper than {limit} levels")]
    TooDeep {
        /// Where.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// A string, array or object larger than its limit.
    #[error("at byte {offset}: {what} larger than the limit of {limit}")]
    TooLong {
        /// Where.
        offset: usize,
        /// Which kind of value.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// An object names the same member twice.
    #[error("at byte {offset}: duplicate member name {name:?}")]
    DuplicateName {
        /// Where.
        offset: usize,
        /// The name.
        name: String,
    },
    /// A `\u` escape that leaves a surrogate unpaired.
    #[error("at byte {offset}: unpaired UTF-16 surrogate")]
    LoneSurrogate {
        /// Where.
        offset: usize,
    },
    /// A number that no double can hold exactly enough (too large, or an integer past 2^53).
    #[error("at byte {offset}: number {text} {reason}")]
    BadNumber {
        /// Where.
        offset: usize,
        /// The number as written.
        text: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// The largest integer every JSON implementation that uses doubles holds exactly (I-JSON).
pub const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Objects with at most this many members are sorted without an allocation (member numbers
/// fit in a byte).
const SMALL_OBJECT: usize = 32;

/// Objects with fewer members than this are searched for a duplicate name member by member.
const LINEAR_DUPLICATE_SEARCH: usize = 16;

/// Parses one JSON text strictly (see the module documentation).
pub fn parse(input: &[u8], limits: Limits) -> Result<Value, JsonError> {
    parse_with(input, limits, |parser| parser.value(0))
}

/// The members of an object, their names borrowed from the input where they have no escapes.
pub(crate) type BorrowedMembers<'a> = Vec<(Cow<'a, str>, Value)>;

/// Parses one JSON text strictly, as [`parse`] does, and returns the members of the object it
/// is (`None` if it is another value): for a document whose member names are only looked at,
/// not kept. `capacity` is how many members to make room for at once.
pub(crate) fn parse_object(
    input: &[u8],
    limits: Limits,
    capacity: usize,
) -> Result<Option<BorrowedMembers<'_>>, JsonError> {
    parse_with(input, limits, |parser| match parser.peek() {
        // At depth 1, as `value(0)` would read it.
        Some(b'{') => parser.members(1, capacity).map(Some),
        _ => parser.value(0).map(|_| None),
    })
}

/// Checks the size and UTF-8 of `input`, and that `read` takes all of it but whitespace.
fn parse_with<'a, T>(
    input: &'a [u8],
    limits: Limits,
    read: impl FnOnce(&mut Parser<'a>) -> Result<T, JsonError>,
) -> Result<T, JsonError> {
    if input.len() > limits.max_bytes {
        return Err(JsonError::TooLarge {
            found: input.len(),
            limit: limits.max_bytes,
        });
    }
    let text = std::str::from_utf8(input).map_err(|error| JsonError::InvalidUtf8 {
        offset: error.valid_up_to(),
    })?;
    let mut parser = Parser {
        bytes: text.as_bytes(),
        text,
        position: 0,
        limits,
    };
    parser.skip_whitespace();
    let parsed = read(&mut parser)?;
    parser.skip_whitespace();
    if parser.position != parser.bytes.len() {
        return Err(parser.unexpected("end of input"));
    }
    Ok(parsed)
}

/// The RFC 8785 canonical form of `value`.
pub fn canonicalize(value: &Value) -> String {
    let mut out = String::new();
    write_canonical(value, &mut out);
    out
}

/// Parses `input` strictly and returns its canonical form.
pub fn canonicalize_bytes(input: &[u8], limits: Limits) -> Result<String, JsonError> {
    parse(input, limits).map(|value| canonicalize(&value))
}

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
fn utf16_order(left: &str, right: &str) -> std::cmp::Ordering {
    if left.is_ascii() && right.is_ascii() {
        left.as_bytes().cmp(right.as_bytes())
    } else {
        left.encode_utf16().cmp(right.encode_utf16())
    }
}

/// The bytes a JSON string escapes: the quote, the backslash and the control characters (a
/// table, as the hot loops over strings look each byte up).
const ESCAPED: [bool; 256] = {
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
fn write_number(number: f64, out: &mut String) {
    if number.fract() == 0.0 && number.abs() <= MAX_SAFE_INTEGER {
        // Every integer up to 2^53 − 1 is a double, so no shorter digit string denotes this
        // one: the algorithm writes its digits, as an integer type does (and both zeros "0").
        let _ = write!(out, "{}", number as i64);
        return;
    }
    out.push_str(ryu_js::Buffer::new().format_finite(number));
}

struct Parser<'a> {
    bytes: &'a [u8],
    text: &'a str,
    position: usize,
    limits: Limits,
}

impl<'a> Parser<'a> {
    fn value(&mut self, depth: usize) -> Result<Value, JsonError> {
        match self.peek() {
            Some(b'{') => self.object(depth + 1),
            Some(b'[') => self.array(depth + 1),
            Some(b'"') => Ok(Value::String(self.string("string")?.into_owned())),
            Some(b't') => self.literal("true", Value::Bool(true)),
            Some(b'f') => self.literal("false", Value::Bool(false)),
            Some(b'n') => self.literal("null", Value::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => Err(self.unexpected("a JSON value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.members(depth, 0).map(Value::Object)
    }

    /// The members of an object, with room for `capacity` of them to begin with; the names
    /// owned (`String`) or borrowed from the input where they can be (`Cow`).
    fn members<Name>(
        &mut self,
        depth: usize,
        capacity: usize,
    ) -> Result<Vec<(Name, Value)>, JsonError>
    where
        Name: From<Cow<'a, str>> + Into<String> + Clone + Eq + std::hash::Hash,
    {
        self.check_depth(depth)?;
        self.position += 1;
        let mut members: Vec<(Name, Value)> = Vec::with_capacity(capacity);
        // Duplicate names: looked for among the members themselves while the object is small
        // (no allocation, no hashing), in a set of the names once it is not.
        let mut names: Option<std::collections::HashSet<Name>> = None;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.position += 1;
            return Ok(members);
        }
        loop {
            self.skip_whitespace();
            if self.peek() != Some(b'"') {
                return Err(self.unexpected("a member name in double quotes"));
            }
            let name_offset = self.position;
            let name = Name::from(self.string("member name")?);
            let duplicate = match &mut names {
                Some(names) => !names.insert(name.clone()),
                None => {
                    let duplicate = members.iter().any(|(known, _)| *known == name);
                    if !duplicate && members.len() + 1 >= LINEAR_DUPLICATE_SEARCH {
                        let mut set: std::collections::HashSet<Name> =
                            members.iter().map(|(known, _)| known.clone()).collect();
                        set.insert(name.clone());
                        names = Some(set);
                    }
                    duplicate
                }
            };
            if duplicate {
                return Err(JsonError::DuplicateName {
                    offset: name_offset,
                    name: name.into(),
                });
            }
            self.skip_whitespace();
            self.expect(b':', "':' after a member name")?;
            self.skip_whitespace();
            let value = self.value(depth)?;
            if members.len() >= self.limits.max_container_len {
                return Err(JsonError::TooLong {
                    offset: self.position,
                    what: "object",
                    limit: self.limits.max_container_len,
                });
            }
            members.push((name, value));
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.position += 1,
                Some(b'}') => {
                    self.position += 1;
                    return Ok(members);
                }
                _ => return Err(self.unexpected("',' or '}' in an object")),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Value, JsonError> {
        self.check_depth(depth)?;
        self.position += 1;
        let mut items = Vec::new();
        self.skip_whitespace();
        if self.peek() == Some(b']') {
            self.position += 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_whitespace();
            let item = self.value(depth)?;
            if items.len() >= self.limits.max_container_len {
                return Err(JsonError::TooLong {
                    offset: self.position,
                    what: "array",
                    limit: self.limits.max_container_len,
                });
            }
            items.push(item);
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.position += 1,
                Some(b']') => {
                    self.position += 1;
                    return Ok(Value::Array(items));
                }
                _ => return Err(self.unexpected("',' or ']' in an array")),
            }
        }
    }

    /// A string, borrowed from the input when it has no escapes (nearly every string), else
    /// unescaped into one allocation.
    fn string(&mut self, what: &'static str) -> Result<Cow<'a, str>, JsonError> {
        self.position += 1; // the opening quote
        let first_run = self.run(what, 0)?;
        if self.peek() == Some(b'"') {
            self.position += 1;
            return Ok(Cow::Borrowed(first_run));
        }
        let mut out = String::with_capacity(self.escaped_capacity(first_run.len()));
        out.push_str(first_run);
        loop {
            match self.peek() {
                Some(b'"') => {
                    self.position += 1;
                    return Ok(Cow::Owned(out));
                }
                Some(b'\\') => {
                    self.position += 1;
                    self.escape(&mut out)?;
                }
                Some(_) => return Err(self.unexpected("no raw control character in a string")),
                None => return Err(self.unexpected("'\"' to close the string")),
            }
            let run = self.run(what, out.len())?;
            out.push_str(run);
        }
    }

    /// The characters of a string up to its next quote, backslash or control character, which
    /// follow `before` bytes of it (unescaped): refused if they take it past the limit.
    fn run(&mut self, what: &'static str, before: usize) -> Result<&'a str, JsonError> {
        let start = self.position;
        let rest = &self.bytes[start..];
        self.position += rest
            .iter()
            .position(|&byte| ESCAPED[usize::from(byte)])
            .unwrap_or(rest.len());
        if before + (self.position - start) > self.limits.max_string_bytes {
            return Err(JsonError::TooLong {
                offset: start,
                what,
                limit: self.limits.max_string_bytes,
            });
        }
        // The input is valid UTF-8 and the scan stops only at ASCII bytes, so this slice is on
        // character boundaries.
        let text: &'a str = self.text;
        Ok(&text[start..self.position])
    }

    /// Room for a string that goes on past its first run, `before` bytes into it: no escape is
    /// shorter than what it stands for, so its text up to the closing quote (or the end of the
    /// input) is enough, and the limit bounds it.
    fn escaped_capacity(&self, before: usize) -> usize {
        let mut end = self.position;
        while let Some(&byte) = self.bytes.get(end) {
            match byte {
                b'"' => break,
                b'\\' => end += 2,
                _ => end += 1,
            }
        }
        let rest = end.min(self.bytes.len()) - self.position;
        (before + rest).min(self.limits.max_string_bytes)
    }

    fn escape(&mut self, out: &mut String) -> Result<(), JsonError> {
        let escaped = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{08}',
            Some(b'f') => '\u{0c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                let offset = self.position - 1;
                self.position += 1;
                let unit = self.hex4()?;
                let code_point = match unit {
                    0xD800..=0xDBFF => {
                        if self.bytes.get(self.position..self.position + 2) != Some(b"\\u") {
                            return Err(JsonError::LoneSurrogate { offset });
                        }
                        self.position += 2;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return Err(JsonError::LoneSurrogate { offset });
                        }
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return Err(JsonError::LoneSurrogate { offset }),
                    other => u32::from(other),
                };
                let character =
                    char::from_u32(code_point).ok_or(JsonError::LoneSurrogate { offset })?;
                out.push(character);
                return Ok(());
            }
            _ => {
                return Err(
                    self.unexpected("a valid escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)")
                )
            }
        };
        self.position += 1;
        out.push(escaped);
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, JsonError> {
        let digits = self
            .bytes
            .get(self.position..self.position + 4)
            .ok_or_else(|| self.unexpected("four hex digits"))?;
        let mut unit: u16 = 0;
        for digit in digits {
            let value = (*digit as char)
                .to_digit(16)
                .ok_or_else(|| self.unexpected("four hex digits"))?;
            unit = (unit << 4) | value as u16;
        }
        self.position += 4;
        Ok(unit)
    }

    fn number(&mut self) -> Result<Value, JsonError> {
        let start = self.position;
        if self.peek() == Some(b'-') {
            self.position += 1;
        }
        match self.peek() {
            Some(b'0') => self.position += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.unexpected("a digit")),
        }
        let mut integer_literal = true;
        if self.peek() == Some(b'.') {
            integer_literal = false;
            self.position += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.unexpected("a digit after the decimal point"));
            }
            self.digits();
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            integer_literal = false;
            self.position += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.position += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.unexpected("a digit in the exponent"));
            }
            self.digits();
        }
        let text = &self.text[start..self.position];
        if text.len() > 64 {
            return Err(JsonError::BadNumber {
                offset: start,
                text: text[..64].to_string(),
                reason: "is longer than 64 characters",
            });
        }
        let number: f64 = text.parse().map_err(|_| JsonError::BadNumber {
            offset: start,
            text: text.to_string(),
            reason: "is not a number",
        })?;
        if !number.is_finite() {
            return Err(JsonError::BadNumber {
                offset: start,
                text: text.to_string(),
                reason: "is too large for a double",
            });
        }
        // An integer past 2^53 − 1 is refused when it is written as an integer (a double would
        // silently change it) or when its canonical form would be one (`1e20` is written
        // `100000000000000000000`), so that canonical forms always parse back to themselves.
        let canonical_integer = number.abs() < 1e21;
        if number.fract() == 0.0
            && number.abs() > MAX_SAFE_INTEGER
            && (integer_literal || canonical_integer)
        {
            return Err(JsonError::BadNumber {
                offset: start,
                text: text.to_string(),
                reason: "is an integral value beyond ±(2^53 − 1), which not every parser holds exactly; send it as a string",
            });
        }
        Ok(Value::Number(number))
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.position += 1;
        }
    }

    fn literal(&mut self, word: &'static str, value: Value) -> Result<Value, JsonError> {
        if self.bytes[self.position..].starts_with(word.as_bytes()) {
            self.position += word.len();
            Ok(value)
        } else {
            Err(self.unexpected(word))
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), JsonError> {
        if depth > self.limits.max_depth {
            return Err(JsonError::TooDeep {
                offset: self.position,
                limit: self.limits.max_depth,
            });
        }
        Ok(())
    }

    fn expect(&mut self, byte: u8, expected: &'static str) -> Result<(), JsonError> {
        if self.peek() == Some(byte) {
            self.position += 1;
            Ok(())
        } else {
            Err(self.unexpected(expected))
        }
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.position += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.position).copied()
    }

    fn unexpected(&self, expected: &'static str) -> JsonError {
        let found = match self.text[self.position..].chars().next() {
            None => "end of input".to_string(),
            Some(character) => format!("{character:?}"),
        };
        JsonError::Unexpected {
            offset: self.position,
            expected,
            found,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn canonical(input: &str) -> String {
        canonicalize_bytes(input.as_bytes(), Limits::default()).expect("valid JSON")
    }

    // RFC 8785 Appendix B: IEEE 754 doubles (as bit patterns) and their canonical text.
    #[test]
    fn numbers_match_rfc8785_appendix_b() {
        let vectors: &[(u64, &str)] = &[
            (0x0000000000000000, "0"),
            (0x8000000000000000, "0"),
            (0x0000000000000001, "5e-324"),
            (0x8000000000000001, "-5e-324"),
            (0x7fefffffffffffff, "1.7976931348623157e+308"),
            (0xffefffffffffffff, "-1.7976931348623157e+308"),
            (0x4340000000000000, "9007199254740992"),
            (0xc340000000000000, "-9007199254740992"),
            (0x4430000000000000, "295147905179352830000"),
            (0x44b52d02c7e14af5, "9.999999999999997e+22"),
            (0x44b52d02c7e14af6, "1e+23"),
            (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
            (0x444b1ae4d6e2ef4e, "999999999999999700000"),
            (0x444b1ae4d6e2ef4f, "999999999999999900000"),
            (0x444b1ae4d6e2ef50, "1e+21"),
            (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
            (0x3eb0c6f7a0b5ed8d, "0.000001"),
            (0x41b3de4355555553, "333333333.3333332"),
            (0x41b3de4355555554, "333333333.33333325"),
            (0x41b3de4355555555, "333333333.3333333"),
            (0x41b3de4355555556, "333333333.3333334"),
            (0x41b3de4355555557, "333333333.33333343"),
            (0xbecbf647612f3696, "-0.0000033333333333333333"),
            (0x43143ff3c1cb0959, "1424953923781206.2"),
        ];
        for (bits, expected) in vectors {
            let mut out = String::new();
            write_number(f64::from_bits(*bits), &mut out);
            assert_eq!(&out, expected, "bits {bits:#018x}");
        }
    }

    // RFC 8785 §3.2.2 example (the "numbers", "string" and "literals" object) and its output.
    #[test]
    fn canonicalizes_rfc8785_section_3_2_2_example() {
        let input = r#"{
  "numbers": [333333333.33333329, 1E30, 4.50,
              2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"#;
        let expected = concat!(
            r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"#,
            r#""string":"€$\u000f\nA'B\"\\\\\"/"}"#
        );
        assert_eq!(canonical(input), expected);
    }

    // RFC 8785 §3.2.3: sorting by UTF-16 code units, including a name outside the BMP.
    #[test]
    fn sorts_member_names_by_utf16_code_units_as_rfc8785_section_3_2_3() {
        let input = r#"{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"#;
        let value = parse(input.as_bytes(), Limits::default()).expect("valid JSON");
        let canonical = canonicalize(&value);
        let order: Vec<&str> = [
            "Carriage Return",
            "One",
            "Control",
            "Latin Small Letter O With Diaeresis",
            "Euro Sign",
            "Emoji: Grinning Face",
            "Hebrew Letter Dalet With Dagesh",
        ]
        .to_vec();
        let mut last = 0;
        for name in order {
            let at = canonical.find(name).expect("every member is kept");
            assert!(at >= last, "{name} out of order in {canonical}");
            last = at;
        }
    }

    #[test]
    fn canonical_form_is_a_fixed_point() {
        let once = canonical(r#"{ "b" : [1, 2.50, {"z":null, "a":"\u00e9"}], "a": -0 }"#);
        assert_eq!(once, r#"{"a":0,"b":[1,2.5,{"a":"é","z":null}]}"#);
        assert_eq!(canonical(&once), once);
    }

    #[test]
    fn refuses_duplicate_member_names() {
        let error = parse(br#"{"a":1,"b":2,"a":3}"#, Limits::default()).unwrap_err();
        assert!(matches!(error, JsonError::DuplicateName { ref name, .. } if name == "a"));
        // Names equal after unescaping are duplicates too.
        assert!(matches!(
            parse(br#"{"a":1,"\u0061":2}"#, Limits::default()),
            Err(JsonError::DuplicateName { .. })
        ));
    }

    #[test]
    fn finds_duplicate_names_in_small_and_large_objects() {
        for count in [
            1,
            LINEAR_DUPLICATE_SEARCH - 1,
            LINEAR_DUPLICATE_SEARCH,
            LINEAR_DUPLICATE_SEARCH + 1,
            40,
        ] {
            let members: Vec<String> = (0..count).map(|i| format!(r#""k{i}":{i}"#)).collect();
            let object = format!("{{{}}}", members.join(","));
            match parse(object.as_bytes(), Limits::default()) {
                Ok(Value::Object(parsed)) => assert_eq!(parsed.len(), count),
                other => panic!("{count} distinct members: {other:?}"),
            }
            for again in [0, count / 2, count - 1] {
                let object = format!("{{{},\"k{again}\":true}}", members.join(","));
                assert!(
                    matches!(
                        parse(object.as_bytes(), Limits::default()),
                        Err(JsonError::DuplicateName { ref name, .. }) if *name == format!("k{again}")
                    ),
                    "k{again} twice among {count}"
                );
            }
        }
    }

    #[test]
    fn refuses_invalid_utf8_and_lone_surrogates() {
        assert!(matches!(
            parse(b"\"\xff\"", Limits::default()),
            Err(JsonError::InvalidUtf8 { offset: 1 })
        ));
        for input in [r#""\ud800""#, r#""\udc00""#, r#""\ud800\u0041""#] {
            assert!(
                matches!(
                    parse(input.as_bytes(), Limits::default()),
                    Err(JsonError::LoneSurrogate { .. })
                ),
                "{input}"
            );
        }
    }

    #[test]
    fn refuses_integers_a_double_cannot_hold_and_non_finite_numbers() {
        assert!(parse(b"9007199254740991", Limits::default()).is_ok());
        assert!(matches!(
            parse(b"9007199254740993", Limits::default()),
            Err(JsonError::BadNumber { .. })
        ));
        assert!(matches!(
            parse(b"1e400", Limits::default()),
            Err(JsonError::BadNumber { .. })
        ));
        assert!(matches!(
            parse(b"1e20", Limits::default()),
            Err(JsonError::BadNumber { .. })
        ));
        assert!(parse(b"1.5e20", Limits::default()).is_err());
        assert!(parse(b"1e21", Limits::default()).is_ok());
        assert!(parse(b"1000000000000000000000", Limits::default()).is_err());
        assert!(parse(b"1.5e-20", Limits::default()).is_ok());
        for bad in ["01", "1.", ".5", "-", "+1", "1e", "NaN", "Infinity", "0x10"] {
            assert!(parse(bad.as_bytes(), Limits::default()).is_err(), "{bad}");
        }
    }

    #[test]
    fn enforces_depth_size_and_length_limits() {
        let deep = "[".repeat(33) + &"]".repeat(33);
        assert!(matches!(
            parse(deep.as_bytes(), Limits::default()),
            Err(JsonError::TooDeep { limit: 32, .. })
        ));
        let ok_depth = "[".repeat(32) + &"]".repeat(32);
        assert!(parse(ok_depth.as_bytes(), Limits::default()).is_ok());
        let limits = Limits {
            max_bytes: 100,
            max_depth: 4,
            max_string_bytes: 5,
            max_container_len: 3,
        };
        assert!(matches!(
            parse(&[b' '; 101], limits),
            Err(JsonError::TooLarge { .. })
        ));
        assert!(matches!(
            parse(br#""abcdef""#, limits),
            Err(JsonError::TooLong { what: "string", .. })
        ));
        assert!(matches!(
            parse(b"[1,2,3,4]", limits),
            Err(JsonError::TooLong { what: "array", .. })
        ));
        assert!(matches!(
            parse(br#"{"a":1,"b":2,"c":3,"d":4}"#, limits),
            Err(JsonError::TooLong { what: "object", .. })
        ));
    }

    #[test]
    fn refuses_malformed_documents_with_the_offset() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\"}",
            "{\"a\":1,}",
            "{a:1}",
            "\"\t\"",
            "[1] [2]",
            "tru",
            "\"\\x\"",
            "\"abc",
        ] {
            let error = parse(bad.as_bytes(), Limits::default());
            assert!(error.is_err(), "{bad:?} was accepted");
        }
        assert_eq!(
            parse(b"[1, x]", Limits::default()),
            Err(JsonError::Unexpected {
                offset: 4,
                expected: "a JSON value",
                found: "'x'".to_string()
            })
        );
    }

    // Strings without an escape are borrowed from the input, the others unescaped into a buffer
    // sized beforehand: both are held to the same limit, counted after unescaping, and refused
    // at the run of characters that crosses it.
    #[test]
    fn strings_read_the_same_with_or_without_escapes_up_to_the_limit() {
        let limits = Limits {
            max_string_bytes: 8,
            ..Limits::default()
        };
        let read = |json: &str| parse(json.as_bytes(), limits);
        let accepted: &[(&str, &str)] = &[
            (r#""abcdefgh""#, "abcdefgh"),
            (r#""""#, ""),
            (r#""abcdefg\n""#, "abcdefg\n"),
            (r#""\u00e9\u00e9\u00e9\u00e9""#, "éééé"),
            (r#""ab\ud83d\ude00cd""#, "ab😀cd"),
            (r#""\\\\\\\\\\\\\\\\""#, r"\\\\\\\\"),
            (r#""éééé""#, "éééé"),
        ];
        for (json, text) in accepted {
            assert_eq!(read(json), Ok(Value::String(text.to_string())), "{json}");
        }
        let too_long = |offset: usize, what: &'static str| {
            Err(JsonError::TooLong {
                offset,
                what,
                limit: 8,
            })
        };
        assert_eq!(read(r#""abcdefghi""#), too_long(1, "string"));
        assert_eq!(read(r#""ééééé""#), too_long(1, "string"));
        assert_eq!(read(r#""\u0061bcdefghi""#), too_long(7, "string"));
        assert_eq!(read(r#""abcdefgh\n""#), too_long(11, "string"));
        assert_eq!(read(r#""abcdefgh\n"#), too_long(11, "string"));
        assert!(read(r#"{"abcdefgh":1}"#).is_ok());
        assert_eq!(read(r#"{"abcdefghi":1}"#), too_long(2, "member name"));
        assert_eq!(read(r#"{"a\u0062cdefghi":1}"#), too_long(9, "member name"));
    }

    #[test]
    fn an_object_read_with_borrowed_names_is_the_object_parse_reads() {
        let large: Vec<String> = (0..40).map(|i| format!(r#""k\u00{i:02}":{i}"#)).collect();
        let large_again = format!(r#"{{{},"k\u0010":0}}"#, large.join(","));
        let large = format!("{{{}}}", large.join(","));
        let documents = [
            r#" {"a": 1, "b\u0063": [true, {"d": null}], "\n": "e"} "#,
            "{}",
            r#"{"a":1,"\u0061":2}"#,
            r#"{"\u0061":1,"a":2}"#,
            r#"[{"a":1}]"#,
            r#""not an object""#,
            r#"{"a":1} x"#,
            r#"{"a":1"#,
            r#"{"a":[1,]}"#,
            &large,
            &large_again,
        ];
        for document in documents {
            let borrowed = parse_object(document.as_bytes(), Limits::default(), 4).map(|members| {
                members.map(|members| {
                    let owned = members
                        .into_iter()
                        .map(|(name, value)| (name.into(), value));
                    Value::Object(owned.collect())
                })
            });
            match parse(document.as_bytes(), Limits::default()) {
                Ok(value @ Value::Object(_)) => assert_eq!(borrowed, Ok(Some(value)), "{document}"),
                Ok(_) => assert_eq!(borrowed, Ok(None), "{document}"),
                Err(error) => assert_eq!(borrowed, Err(error), "{document}"),
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn canonical_numbers_read_back_as_the_same_double(bits in proptest::prelude::any::<u64>()) {
            let number = f64::from_bits(bits);
            proptest::prop_assume!(number.is_finite());
            let mut text = String::new();
            write_number(number, &mut text);
            let back: f64 = text.parse().expect("canonical numbers are valid JSON numbers");
            proptest::prop_assert!(back == number, "{} -> {} -> {}", number, text, back);
        }

        // Integers a double holds exactly are written without ryu-js, as it would write them.
        #[test]
        fn safe_integers_are_written_as_the_ecmascript_algorithm_writes_them(
            integer in -9_007_199_254_740_991i64..=9_007_199_254_740_991,
            digits in 0u32..16,
        ) {
            for number in [integer as f64, (integer % 10i64.pow(digits)) as f64] {
                if number != 0.0 {
                    let mut written = String::new();
                    write_number(number, &mut written);
                    let mut ryu = ryu_js::Buffer::new();
                    proptest::prop_assert_eq!(written.as_str(), ryu.format_finite(number));
                }
            }
        }

        #[test]
        fn strings_and_name_order_follow_their_definitions(
            left in proptest::prelude::any::<String>(),
            right in "[\\x00-\\x7f]{0,8}|\\PC{0,8}",
        ) {
            // The escapes of RFC 8785 §3.2.2.2, one character at a time.
            let mut expected = String::from("\"");
            for character in left.chars() {
                match character {
                    '"' => expected.push_str("\\\""),
                    '\\' => expected.push_str("\\\\"),
                    '\u{08}' => expected.push_str("\\b"),
                    '\u{0c}' => expected.push_str("\\f"),
                    '\n' => expected.push_str("\\n"),
                    '\r' => expected.push_str("\\r"),
                    '\t' => expected.push_str("\\t"),
                    control if (control as u32) < 0x20 => {
                        expected.push_str(&format!("\\u{:04x}", control as u32))
                    }
                    other => expected.push(other),
                }
            }
            expected.push('"');
            let mut written = String::new();
            write_string(&left, &mut written);
            proptest::prop_assert_eq!(&written, &expected);
            let back: String = serde_json::from_str(&written).expect("a JSON string");
            proptest::prop_assert_eq!(&back, &left);
            for (a, b) in [(&left, &right), (&right, &left), (&right, &right)] {
                proptest::prop_assert_eq!(
                    utf16_order(a, b),
                    a.encode_utf16().cmp(b.encode_utf16())
                );
            }
        }

        #[test]
        fn canonicalization_is_idempotent(text in "[ -~]{0,64}", number in -1e300f64..1e300) {
            let document = format!(
                r#"{{"x":{:e},"s":{},"n":[{:e},{{"b":true,"a":null}}]}}"#,
                number,
                serde_json::to_string(&text).expect("a string serialises"),
                number / 3.0
            );
            let once = canonical(&document);
            proptest::prop_assert_eq!(canonical(&once), once);
        }
    }
}
