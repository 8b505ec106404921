//! How an origin is written where it must be one name: a URL path segment, a file name.
//!
//! An origin is free text (`example.com/log`, spaces, any Unicode), and the monitor puts it in
//! two places that give some characters a meaning: the path of a witness's
//! `GET /checkpoint/<origin>` and the names of its hash and evidence files. Both encodings live
//! here so that the follower and the hash files, which both need them, depend on neither.

/// Percent-encodes every byte but RFC 3986 unreserved characters, so that an origin with `/`
/// travels as one path segment (`GET /checkpoint/<origin>` of tlog-witness monitors).
pub fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

/// `origin` with every character but ASCII letters and digits replaced by `_`, for file names.
pub(crate) fn sanitize(origin: &str) -> String {
    origin
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}
