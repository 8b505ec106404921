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

mod canonical;
mod parser;

pub(crate) use canonical::{write_canonical, write_string};
pub use parser::parse;
pub(crate) use parser::parse_object;

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

#[cfg(test)]
mod tests;
