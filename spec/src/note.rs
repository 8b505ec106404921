//! Signed notes: text signed by one or more keys (C2SP signed-note v1.0.0), with the key
//! encodings of Go's `golang.org/x/mod/sumdb/note`.
//!
//! A signed note is a text that ends in a newline, a blank line, then one or more signature
//! lines:
//!
//! ```text
//! <text, any number of lines, each ending in U+000A>
//!
//! — <key name> base64(4-byte big-endian key ID || signature)
//! ```
//!
//! The whole note is UTF-8 with no ASCII control characters other than newline. The text is
//! separated from the signatures by the *last* blank line, so the text itself may contain blank
//! lines. Every signature is over the text, final newline included, blank line excluded.
//!
//! A key is identified by its name and a 32-bit key ID, by default the first four bytes of
//! `SHA-256(key name || 0x0A || signature type || public key)` (signed-note, "Signatures").
//! Verifying a note against a set of known keys follows the spec's rules: signatures whose
//! (name, ID) pair is unknown are ignored but kept and reported; every signature by a known key
//! is verified and a bad one rejects the whole note; a note with no verified signature by a known
//! key is rejected.
//!
//! Keys travel as text: a verifier key (vkey) is `<name>+<hex key ID>+base64(type || public key)`
//! and an Ed25519 signer key is `PRIVATE+KEY+<name>+<hex key ID>+base64(0x01 || 32-byte seed)`,
//! exactly the forms Go's `note.NewVerifier`, `note.NewSigner` and `note.GenerateKey` use.
//!
//! The grammar is strict and bounded: a note is at most [`MAX_NOTE_SIZE`] bytes with at most
//! [`MAX_SIGNATURES`] signature lines, base64 must be canonical, and key IDs in key strings are
//! lowercase hex. `spec/docs/note.md` lists every choice Cairn makes where the spec leaves room.
//!
//! One concern a file: who signed ([`KeyName`], [`KeyId`]), signature lines
//! ([`NoteSignature`]), the note and its verification ([`Note`]), key strings and the Ed25519
//! keys of every kind, a log's and a witness's ([`Vkey`], [`VerifierKey`], [`SignerKey`]),
//! deferred Ed25519 checks
//! ([`Ed25519Batch`]), and the errors of all of them ([`NoteError`], [`KeyError`]).

use base64::Engine as _;

mod batch;
mod error;
mod keys;
mod name;
mod signature;
mod signed_note;

pub use batch::{verify_single, Ed25519Batch, Ed25519Checker, Ed25519Rules, SingleEd25519};
pub use error::{KeyError, NoteError, SignatureLineError};
pub use keys::{
    Ed25519Kind, Ed25519Signer, Ed25519Verifier, PlainEd25519, SignerKey, VerifierKey, Vkey,
};
pub use name::{KeyId, KeyName, KeyNameError};
pub use signature::{format_signature_lines, parse_signature_lines, NoteSignature};
pub use signed_note::{Note, NoteVerifier, Verification};

/// The largest signed note Cairn reads or writes, in bytes (1 MiB).
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// The most signature lines a note may carry (the limit Go's `note.Open` applies; the spec asks
/// verifiers to accept at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// The longest verifier or signer key string Cairn reads, in bytes.
pub const MAX_KEY_STRING_SIZE: usize = 8192;

/// Signature type byte of plain Ed25519 note signatures (signed-note, "Signature types").
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;

/// Length of an Ed25519 public key or seed, in bytes.
pub const ED25519_KEY_SIZE: usize = 32;

/// Length of an Ed25519 signature, in bytes.
pub const ED25519_SIGNATURE_SIZE: usize = 64;

/// What every signature line starts with: an em dash (U+2014) and a space.
pub const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";

/// What every signer key string starts with.
pub const PRIVATE_KEY_PREFIX: &str = "PRIVATE+KEY+";

/// Standard base64 with padding, canonical on decoding (RFC 4648 §4 and §3.5).
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Decodes standard, padded, canonical base64; anything else is refused.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|error| error.to_string())
}

/// Cuts `text` to at most `limit` bytes at a character boundary, for quoting input in errors.
pub(crate) fn excerpt(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.to_owned();
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}
