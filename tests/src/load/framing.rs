//! The body of `POST /add-batch`: leaves one after another, each preceded by its length.
//!
//! ```text
//! batch = *( length leaf )        length = 4 bytes, unsigned, big-endian
//! ```
//!
//! Sent with `Content-Type: application/octet-stream`. The framing is the simplest that lets a
//! server find every leaf without copying or scanning it, and check each length against its
//! limits before it touches the bytes; an empty body is an empty batch. The log answers with the
//! index of the first leaf and the count.
//!
//! The generator only writes batches; [`decode_batch`] is here so the framing is specified by
//! code that reads it too, and so tests can check what a server receives.

use bytes::{BufMut, BytesMut};

/// The `Content-Type` of a batch body.
pub const BATCH_CONTENT_TYPE: &str = "application/octet-stream";

/// Bytes of the length that precedes each leaf.
pub const LENGTH_PREFIX_BYTES: usize = 4;

/// Appends one framed leaf to a batch body.
///
/// # Panics
/// If the leaf is longer than `u32::MAX` bytes; the generator's leaves are bounded far below
/// that ([`super::config::MAX_LEAF_BYTES`]).
pub fn put_framed_leaf(batch: &mut BytesMut, leaf: &[u8]) {
    let length = u32::try_from(leaf.len()).expect("leaf sizes are bounded far below 4 GiB");
    batch.put_u32(length);
    batch.put_slice(leaf);
}

/// Bounds on what [`decode_batch`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    /// The most leaves in one batch.
    pub max_leaves: usize,
    /// The largest leaf.
    pub max_leaf_bytes: usize,
}

/// Why a batch body was refused; `offset` is the byte where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FramingError {
    /// The body ends inside a length prefix.
    #[error("batch byte {offset}: expected a 4-byte leaf length, found {remaining} bytes")]
    TruncatedLength {
        /// Where the length starts.
        offset: usize,
        /// The bytes left in the body.
        remaining: usize,
    },
    /// The body ends inside a leaf.
    #[error("batch byte {offset}: expected a leaf of {length} bytes, found {remaining}")]
    TruncatedLeaf {
        /// Where the leaf starts.
        offset: usize,
        /// The length its prefix gives.
        length: usize,
        /// The bytes left in the body.
        remaining: usize,
    },
    /// A leaf is longer than the limit.
    #[error(
        "batch byte {offset}: expected a leaf of at most {max} bytes, found a length of {length}"
    )]
    LeafTooLarge {
        /// Where the length starts.
        offset: usize,
        /// The length given.
        length: usize,
        /// The limit.
        max: usize,
    },
    /// The batch holds more leaves than the limit.
    #[error("batch byte {offset}: expected at most {max} leaves, found more")]
    TooManyLeaves {
        /// Where the leaf past the limit starts.
        offset: usize,
        /// The limit.
        max: usize,
    },
}

/// Splits a batch body into its leaves, checking every length against `limits` first.
pub fn decode_batch(body: &[u8], limits: BatchLimits) -> Result<Vec<&[u8]>, FramingError> {
    let mut leaves = Vec::new();
    let mut offset = 0;
    while offset < body.len() {
        if leaves.len() == limits.max_leaves {
            return Err(FramingError::TooManyLeaves {
                offset,
                max: limits.max_leaves,
            });
        }
        let remaining = body.len() - offset;
        let prefix: [u8; LENGTH_PREFIX_BYTES] = body
            .get(offset..offset + LENGTH_PREFIX_BYTES)
            .and_then(|bytes| bytes.try_into().ok())
            .ok_or(FramingError::TruncatedLength { offset, remaining })?;
        // A u32 always fits in usize on the 32- and 64-bit targets Cairn builds for; saturate
        // rather than trust that, so an oversized length is refused by the limit below.
        let length = usize::try_from(u32::from_be_bytes(prefix)).unwrap_or(usize::MAX);
        if length > limits.max_leaf_bytes {
            return Err(FramingError::LeafTooLarge {
                offset,
                length,
                max: limits.max_leaf_bytes,
            });
        }
        let leaf_start = offset + LENGTH_PREFIX_BYTES;
        let leaf =
            body.get(leaf_start..leaf_start + length)
                .ok_or(FramingError::TruncatedLeaf {
                    offset: leaf_start,
                    length,
                    remaining: body.len() - leaf_start,
                })?;
        leaves.push(leaf);
        offset = leaf_start + length;
    }
    Ok(leaves)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: BatchLimits = BatchLimits {
        max_leaves: 4,
        max_leaf_bytes: 8,
    };

    #[test]
    fn frames_each_leaf_with_a_big_endian_length() {
        let mut batch = BytesMut::new();
        put_framed_leaf(&mut batch, b"abc");
        put_framed_leaf(&mut batch, b"");
        put_framed_leaf(&mut batch, b"z");
        assert_eq!(
            &batch[..],
            b"\x00\x00\x00\x03abc\x00\x00\x00\x00\x00\x00\x00\x01z"
        );
        assert_eq!(
            decode_batch(&batch, LIMITS),
            Ok(vec![&b"abc"[..], &b""[..], &b"z"[..]])
        );
    }

    #[test]
    fn reads_an_empty_body_as_an_empty_batch() {
        assert_eq!(decode_batch(b"", LIMITS), Ok(vec![]));
    }

    #[test]
    fn refuses_a_body_that_ends_inside_a_length() {
        assert_eq!(
            decode_batch(b"\x00\x00\x00\x01a\x00\x00", LIMITS),
            Err(FramingError::TruncatedLength {
                offset: 5,
                remaining: 2
            })
        );
    }

    #[test]
    fn refuses_a_body_that_ends_inside_a_leaf() {
        assert_eq!(
            decode_batch(b"\x00\x00\x00\x05abc", LIMITS),
            Err(FramingError::TruncatedLeaf {
                offset: 4,
                length: 5,
                remaining: 3
            })
        );
    }

    #[test]
    fn refuses_a_leaf_over_the_limit_before_reading_it() {
        assert_eq!(
            decode_batch(b"\xff\xff\xff\xff", LIMITS),
            Err(FramingError::LeafTooLarge {
                offset: 0,
                length: u32::MAX as usize,
                max: 8
            })
        );
    }

    #[test]
    fn refuses_more_leaves_than_the_limit() {
        let mut batch = BytesMut::new();
        for _ in 0..5 {
            put_framed_leaf(&mut batch, b"x");
        }
        assert_eq!(
            decode_batch(&batch, LIMITS),
            Err(FramingError::TooManyLeaves { offset: 20, max: 4 })
        );
    }
}
