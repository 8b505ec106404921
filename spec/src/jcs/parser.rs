//! The strict JSON parser: one pass over UTF-8 input, bounded by [`Limits`], refusing what
//! I-JSON (RFC 7493) refuses.

use std::borrow::Cow;

use super::canonical::ESCAPED;
use super::{JsonError, Limits, Value, MAX_SAFE_INTEGER};

/// Objects with fewer members than this are searched for a duplicate name member by member.
pub(super) const LINEAR_DUPLICATE_SEARCH: usize = 16;

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
