//! The byte layout of segment files: batches of entry records.
//!
//! A segment file is a sequence of batches, each written with one `write` and made durable
//! with one `fdatasync`:
//!
//! ```text
//! batch header (24 bytes):
//!   u32 LE  BATCH_MAGIC
//!   u32 LE  entry count
//!   u64 LE  index of the first entry
//!   u32 LE  length of the records that follow, in bytes
//!   u32 LE  CRC-32 of the 20 bytes above
//! record (one per entry):
//!   u32 LE  body length
//!   body:   u64 LE index · u8 flags · [u8 producer length · producer · u8 key length · key]
//!           · [u32 LE payload length] · leaf bytes
//!           · [payload region: u8 state · u32 LE CRC-32 of the payload · payload]
//!   u32 LE  CRC-32 of the body length and the body, the payload region left out
//! ```
//!
//! Flag bit 0 says an idempotency key is present, bit 1 that a payload is; the other bits are
//! zero. A record's body is never longer than [`MAX_RECORD_BODY`], which is below
//! [`BATCH_MAGIC`] read as a number, so the first four bytes at any position tell a batch header
//! from a record. Each record carries its own index and checksum, so a read of any single entry
//! is checked, and the batch header lets recovery tell a torn last write (the batch runs past
//! the end of the file, or fails its checksums, and nothing valid follows) from corruption in
//! the middle.
//!
//! A payload is data kept beside a leaf (an audit event's payload): durable with it, never part
//! of the tree, and destroyed where it lies when it is erased, which is why the record's
//! checksum leaves its region out and the region has a checksum and a state of its own. Its
//! state is [`PAYLOAD_HELD`] when written; erasure first sets it to [`PAYLOAD_ERASED`], durably,
//! then overwrites the checksum and the payload with zeros. So a held payload always matches
//! its checksum, and one that does not was torn in a crash (or damaged since).

use crate::storage::{Entry, IdempotencyKey, NewEntry};

/// The first four bytes of every batch header.
pub const BATCH_MAGIC: u32 = 0xCA1B_BA7C;
/// Length of a batch header.
pub const BATCH_HEADER_LEN: usize = 24;
/// Bytes a record adds around its leaf, at most: length, index, flags, two names, checksum.
pub const MAX_RECORD_OVERHEAD: usize = 4 + 8 + 1 + 2 + 2 * 255 + 4;
/// The largest leaf any store accepts, whatever its configuration.
pub const HARD_MAX_LEAF_BYTES: u32 = 16 * 1024 * 1024;
/// The largest payload any store accepts beside a leaf, whatever its configuration.
pub const HARD_MAX_PAYLOAD_BYTES: u32 = 16 * 1024 * 1024;
/// Bytes of a payload region before the payload: its state and checksum.
pub const PAYLOAD_REGION_HEADER: usize = 1 + 4;
/// Bytes a payload adds to its record besides itself: its length, state and checksum.
pub const PAYLOAD_OVERHEAD: usize = 4 + PAYLOAD_REGION_HEADER;
/// The longest record body.
pub const MAX_RECORD_BODY: u32 =
    HARD_MAX_LEAF_BYTES + HARD_MAX_PAYLOAD_BYTES + (MAX_RECORD_OVERHEAD + PAYLOAD_OVERHEAD) as u32;
/// The longest run of records in one batch, whatever the configuration.
pub const HARD_MAX_BATCH_BODY: u32 = 1 << 30;

const FLAG_IDEMPOTENCY: u8 = 0x01;
const FLAG_PAYLOAD: u8 = 0x02;
/// The state of a payload as written.
pub const PAYLOAD_HELD: u8 = 1;
/// The state of an erased payload (its checksum and bytes are zeros, or are being zeroed).
pub const PAYLOAD_ERASED: u8 = 2;

/// A decoded batch header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BatchHeader {
    /// How many records follow.
    pub entry_count: u32,
    /// The index of the first.
    pub first_index: u64,
    /// How many bytes they take.
    pub body_len: u32,
}

/// Why bytes could not be decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The bytes end before the item does.
    Truncated {
        /// How many bytes the item needs in all.
        needed: usize,
    },
    /// The bytes are not a valid item.
    Invalid(String),
}

/// Appends the header of a batch to `out`.
pub fn encode_batch_header(header: &BatchHeader, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&BATCH_MAGIC.to_le_bytes());
    out.extend_from_slice(&header.entry_count.to_le_bytes());
    out.extend_from_slice(&header.first_index.to_le_bytes());
    out.extend_from_slice(&header.body_len.to_le_bytes());
    let crc = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&crc.to_le_bytes());
}

/// Reads a batch header from the start of `bytes`.
pub fn decode_batch_header(bytes: &[u8]) -> Result<BatchHeader, DecodeError> {
    if bytes.len() < BATCH_HEADER_LEN {
        return Err(DecodeError::Truncated {
            needed: BATCH_HEADER_LEN,
        });
    }
    let magic = read_u32(bytes, 0);
    if magic != BATCH_MAGIC {
        return Err(DecodeError::Invalid(format!(
            "expected batch magic {BATCH_MAGIC:#010x}, found {magic:#010x}"
        )));
    }
    let stored_crc = read_u32(bytes, 20);
    let crc = crc32fast::hash(&bytes[..20]);
    if crc != stored_crc {
        return Err(DecodeError::Invalid(format!(
            "batch header checksum {stored_crc:#010x} does not match its bytes ({crc:#010x})"
        )));
    }
    let header = BatchHeader {
        entry_count: read_u32(bytes, 4),
        first_index: read_u64(bytes, 8),
        body_len: read_u32(bytes, 16),
    };
    if header.body_len > HARD_MAX_BATCH_BODY {
        return Err(DecodeError::Invalid(format!(
            "batch of {} bytes is over the limit of {HARD_MAX_BATCH_BODY}",
            header.body_len
        )));
    }
    Ok(header)
}

/// The encoded length of an entry's record.
pub fn record_len(entry: &NewEntry) -> usize {
    4 + body_len(entry) + 4
}

fn body_len(entry: &NewEntry) -> usize {
    8 + 1
        + entry
            .idempotency()
            .map_or(0, |key| 2 + key.producer().len() + key.key().len())
        + entry.leaf().len()
        + entry
            .payload()
            .map_or(0, |payload| PAYLOAD_OVERHEAD + payload.len())
}

/// Appends the record of `entry`, at `index`, to `out`.
pub fn encode_record(index: u64, entry: &NewEntry, out: &mut Vec<u8>) {
    let start = out.len();
    let body_len = body_len(entry) as u32;
    out.extend_from_slice(&body_len.to_le_bytes());
    out.extend_from_slice(&index.to_le_bytes());
    let flags_at = out.len();
    out.push(0);
    if let Some(key) = entry.idempotency() {
        out[flags_at] |= FLAG_IDEMPOTENCY;
        // IdempotencyKey guarantees each part is 1 to 255 bytes.
        out.push(key.producer().len() as u8);
        out.extend_from_slice(key.producer().as_bytes());
        out.push(key.key().len() as u8);
        out.extend_from_slice(key.key().as_bytes());
    }
    if let Some(payload) = entry.payload() {
        out[flags_at] |= FLAG_PAYLOAD;
        // The store's limits keep a payload far below 4 GiB.
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(entry.leaf());
    let mut crc = crc32fast::Hasher::new();
    crc.update(&out[start..]);
    if let Some(payload) = entry.payload() {
        out.push(PAYLOAD_HELD);
        out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
        out.extend_from_slice(payload);
    }
    out.extend_from_slice(&crc.finalize().to_le_bytes());
}

/// How many bytes the item at the start of `bytes` takes, from its first four bytes: a batch
/// header or a record. `None` if fewer than four bytes are given.
pub fn item_len(bytes: &[u8]) -> Result<Option<ItemKind>, DecodeError> {
    if bytes.len() < 4 {
        return Ok(None);
    }
    let first = read_u32(bytes, 0);
    if first == BATCH_MAGIC {
        return Ok(Some(ItemKind::BatchHeader));
    }
    if first > MAX_RECORD_BODY {
        return Err(DecodeError::Invalid(format!(
            "record body of {first} bytes is over the limit of {MAX_RECORD_BODY}"
        )));
    }
    Ok(Some(ItemKind::Record {
        len: 4 + first as usize + 4,
    }))
}

/// What starts at a position of a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// A batch header, [`BATCH_HEADER_LEN`] bytes.
    BatchHeader,
    /// A record of `len` bytes in all.
    Record {
        /// Its length including the length field and the checksum.
        len: usize,
    },
}

/// Where a record's payload region lies, from the start of the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PayloadSpan {
    /// Offset of the state byte; the checksum follows, then the payload.
    pub offset: usize,
    /// The payload's length.
    pub len: u32,
}

impl PayloadSpan {
    /// Bytes of the region: state, checksum, payload.
    pub fn region_len(&self) -> usize {
        PAYLOAD_REGION_HEADER + self.len as usize
    }

    /// Where the region lies in its record's bytes.
    pub fn region(&self) -> std::ops::Range<usize> {
        self.offset..self.offset + self.region_len()
    }
}

/// What a payload region holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayloadState {
    /// The payload (the region's bytes after [`PAYLOAD_REGION_HEADER`]), matching its
    /// checksum.
    Held,
    /// It was erased.
    Erased,
    /// A held payload that does not match its checksum, or an unknown state.
    Damaged(String),
}

/// Reads a payload region (state, checksum, payload).
pub fn payload_state(region: &[u8]) -> PayloadState {
    if region.len() < PAYLOAD_REGION_HEADER {
        return PayloadState::Damaged(format!("a payload region of {} bytes", region.len()));
    }
    match region[0] {
        PAYLOAD_ERASED => PayloadState::Erased,
        PAYLOAD_HELD => {
            let payload = &region[PAYLOAD_REGION_HEADER..];
            let stored_crc = read_u32(region, 1);
            let crc = crc32fast::hash(payload);
            if crc == stored_crc {
                PayloadState::Held
            } else {
                PayloadState::Damaged(format!(
                    "payload checksum {stored_crc:#010x} does not match its bytes ({crc:#010x})"
                ))
            }
        }
        other => PayloadState::Damaged(format!("unknown payload state {other}")),
    }
}

/// A decoded record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedRecord {
    /// The entry.
    pub entry: Entry,
    /// The record's length in bytes.
    pub len: usize,
    /// Its payload region, if it has one (not checked: see [`payload_state`]).
    pub payload: Option<PayloadSpan>,
}

/// Decodes the record at the start of `bytes`: checks its checksum, which covers everything
/// but the payload region.
pub fn decode_record(bytes: &[u8]) -> Result<DecodedRecord, DecodeError> {
    let len = match item_len(bytes)? {
        None => return Err(DecodeError::Truncated { needed: 4 }),
        Some(ItemKind::BatchHeader) => {
            return Err(DecodeError::Invalid(
                "expected a record, found a batch header".into(),
            ))
        }
        Some(ItemKind::Record { len }) => len,
    };
    if bytes.len() < len {
        return Err(DecodeError::Truncated { needed: len });
    }
    let body = &bytes[4..len - 4];
    if body.len() < 9 {
        return Err(DecodeError::Invalid(format!(
            "record body of {} bytes is shorter than its 9-byte header",
            body.len()
        )));
    }
    let index = read_u64(body, 0);
    let flags = body[8];
    if flags & !(FLAG_IDEMPOTENCY | FLAG_PAYLOAD) != 0 {
        return Err(DecodeError::Invalid(format!(
            "record flags {flags:#04x} have unknown bits"
        )));
    }
    let mut rest = &body[9..];
    let idempotency = if flags & FLAG_IDEMPOTENCY != 0 {
        let producer = take_name(&mut rest, "producer")?;
        let key = take_name(&mut rest, "idempotency key")?;
        Some((producer, key))
    } else {
        None
    };
    let mut payload = None;
    if flags & FLAG_PAYLOAD != 0 {
        let Some((length, tail)) = rest.split_first_chunk::<4>() else {
            return Err(DecodeError::Invalid(
                "record ends before its payload length".into(),
            ));
        };
        let payload_len = u32::from_le_bytes(*length);
        let region = PAYLOAD_REGION_HEADER + payload_len as usize;
        if tail.len() < region {
            return Err(DecodeError::Invalid(format!(
                "a payload of {payload_len} bytes runs past the record"
            )));
        }
        rest = &tail[..tail.len() - region];
        payload = Some(PayloadSpan {
            offset: len - 4 - region,
            len: payload_len,
        });
    }
    let covered = len - 4 - payload.map_or(0, |span| span.region_len());
    let stored_crc = read_u32(bytes, len - 4);
    let crc = crc32fast::hash(&bytes[..covered]);
    if crc != stored_crc {
        return Err(DecodeError::Invalid(format!(
            "record checksum {stored_crc:#010x} does not match its bytes ({crc:#010x})"
        )));
    }
    let idempotency = idempotency
        .map(|(producer, key)| {
            IdempotencyKey::new(producer, key)
                .map_err(|error| DecodeError::Invalid(error.to_string()))
        })
        .transpose()?;
    Ok(DecodedRecord {
        entry: Entry {
            index,
            leaf: rest.to_vec(),
            idempotency,
        },
        len,
        payload,
    })
}

fn take_name(rest: &mut &[u8], what: &str) -> Result<String, DecodeError> {
    let Some((&len, tail)) = rest.split_first() else {
        return Err(DecodeError::Invalid(format!(
            "record ends before its {what}"
        )));
    };
    let len = usize::from(len);
    if tail.len() < len {
        return Err(DecodeError::Invalid(format!(
            "{what} of {len} bytes runs past the record"
        )));
    }
    let (name, tail) = tail.split_at(len);
    *rest = tail;
    String::from_utf8(name.to_vec())
        .map_err(|_| DecodeError::Invalid(format!("{what} is not UTF-8")))
}

fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes were sliced"))
}

fn read_u64(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes were sliced"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(idempotent: bool, payload: bool) -> NewEntry {
        let key = idempotent.then(|| IdempotencyKey::new("producer", "key-1").expect("valid"));
        NewEntry::new(b"a leaf".to_vec(), key)
            .with_payload(payload.then(|| b"a payload beside it".to_vec()))
    }

    fn samples() -> impl Iterator<Item = NewEntry> {
        [(false, false), (true, false), (false, true), (true, true)]
            .into_iter()
            .map(|(idempotent, payload)| sample(idempotent, payload))
    }

    #[test]
    fn record_round_trips_with_and_without_idempotency_key_and_payload() {
        for entry in samples() {
            let mut bytes = Vec::new();
            encode_record(42, &entry, &mut bytes);
            assert_eq!(bytes.len(), record_len(&entry));
            let decoded = decode_record(&bytes).expect("valid record");
            assert_eq!(decoded.len, bytes.len());
            assert_eq!(decoded.entry.index, 42);
            assert_eq!(decoded.entry.leaf, entry.leaf());
            assert_eq!(decoded.entry.idempotency.as_ref(), entry.idempotency());
            match (decoded.payload, entry.payload()) {
                (None, None) => {}
                (Some(span), Some(payload)) => {
                    let region = &bytes[span.region()];
                    assert_eq!(payload_state(region), PayloadState::Held);
                    assert_eq!(&region[PAYLOAD_REGION_HEADER..], payload);
                }
                (found, expected) => panic!("payload {found:?}, expected {expected:?}"),
            }
        }
    }

    #[test]
    fn a_record_without_payload_is_laid_out_as_before_payloads_existed() {
        // A version without payloads wrote records as length · index · flags · [key] · leaf ·
        // checksum, flags 0 or 1: those segments read as they are.
        let mut bytes = Vec::new();
        encode_record(9, &sample(false, false), &mut bytes);
        let mut expected = (8u32 + 1 + 6).to_le_bytes().to_vec();
        expected.extend_from_slice(&9u64.to_le_bytes());
        expected.push(0);
        expected.extend_from_slice(b"a leaf");
        let crc = crc32fast::hash(&expected);
        expected.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(bytes, expected);
    }

    #[test]
    fn every_flipped_bit_in_a_record_is_detected() {
        for entry in samples() {
            let mut bytes = Vec::new();
            encode_record(7, &entry, &mut bytes);
            let region = decode_record(&bytes)
                .expect("valid")
                .payload
                .map_or(0..0, |span| span.region());
            for bit in 0..bytes.len() * 8 {
                let mut damaged = bytes.clone();
                damaged[bit / 8] ^= 1 << (bit % 8);
                let noticed = match decode_record(&damaged) {
                    Err(_) => true,
                    // The payload region has its own checksum and state.
                    Ok(decoded) => {
                        assert!(region.contains(&(bit / 8)), "bit {bit} flip went unnoticed");
                        assert_eq!(decoded.payload.map(|span| span.offset), Some(region.start));
                        matches!(
                            payload_state(&damaged[region.clone()]),
                            PayloadState::Damaged(_)
                        )
                    }
                };
                assert!(noticed, "bit {bit} flip went unnoticed");
            }
        }
    }

    #[test]
    fn an_erased_payload_leaves_a_valid_record() {
        let mut bytes = Vec::new();
        encode_record(7, &sample(true, true), &mut bytes);
        let span = decode_record(&bytes)
            .expect("valid")
            .payload
            .expect("a payload");
        bytes[span.offset] = PAYLOAD_ERASED;
        let decoded = decode_record(&bytes).expect("still a valid record");
        assert_eq!(decoded.entry.leaf, b"a leaf");
        // Erased before its zeros were written, and after.
        assert_eq!(payload_state(&bytes[span.region()]), PayloadState::Erased);
        bytes[span.offset + 1..span.offset + span.region_len()].fill(0);
        assert!(decode_record(&bytes).is_ok());
        assert_eq!(payload_state(&bytes[span.region()]), PayloadState::Erased);
    }

    #[test]
    fn every_prefix_of_a_record_is_truncated_or_invalid() {
        for entry in samples() {
            let mut bytes = Vec::new();
            encode_record(7, &entry, &mut bytes);
            for cut in 0..bytes.len() {
                assert!(decode_record(&bytes[..cut]).is_err());
            }
        }
    }

    #[test]
    fn batch_header_round_trips_and_detects_damage() {
        let header = BatchHeader {
            entry_count: 3,
            first_index: 1 << 40,
            body_len: 999,
        };
        let mut bytes = Vec::new();
        encode_batch_header(&header, &mut bytes);
        assert_eq!(bytes.len(), BATCH_HEADER_LEN);
        assert_eq!(decode_batch_header(&bytes), Ok(header));
        for bit in 32..bytes.len() * 8 {
            let mut damaged = bytes.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_batch_header(&damaged).is_err());
        }
    }

    #[test]
    fn record_length_field_never_looks_like_a_batch_header() {
        const { assert!(MAX_RECORD_BODY < BATCH_MAGIC) };
        let mut bytes = BATCH_MAGIC.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 20]);
        assert_eq!(item_len(&bytes), Ok(Some(ItemKind::BatchHeader)));
        assert!(decode_record(&bytes).is_err());
    }

    #[test]
    fn rejects_record_claiming_a_huge_body_before_reading_it() {
        let bytes = (MAX_RECORD_BODY + 1).to_le_bytes();
        assert!(matches!(item_len(&bytes), Err(DecodeError::Invalid(_))));
    }
}
