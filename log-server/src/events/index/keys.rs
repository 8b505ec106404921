//! The keys and values of index records: their tags, how times, event IDs and summaries are
//! encoded so that keys sort as the queries need.

use super::*;

pub(crate) const TAG_ACTOR: u8 = b'a';

pub(crate) const TAG_ACTION: u8 = b'c';

pub(crate) const TAG_ID: u8 = b'i';

pub(crate) const TAG_RESOURCE: u8 = b'r';

pub(crate) const TAG_SUMMARY: u8 = b's';

pub(crate) const TAG_TIME: u8 = b't';

pub(super) fn sortable_time(time: i128) -> [u8; 16] {
    ((time as u128) ^ (1 << 127)).to_be_bytes()
}

pub(super) fn short_hash(text: &str) -> u32 {
    crc32fast::hash(text.as_bytes())
}

pub(super) fn summary_key(index: u64) -> [u8; 9] {
    let mut key = [TAG_SUMMARY; 9];
    key[1..].copy_from_slice(&index.to_be_bytes());
    key
}

pub(super) fn posting_prefix(tag: u8, value: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(3 + value.len() + 8);
    key.push(tag);
    key.extend_from_slice(&(value.len() as u16).to_be_bytes());
    key.extend_from_slice(value.as_bytes());
    key
}

pub(super) fn with_index(mut prefix: Vec<u8>, index: u64) -> Vec<u8> {
    prefix.extend_from_slice(&index.to_be_bytes());
    prefix
}

pub(super) fn time_key(time: i128) -> Vec<u8> {
    let mut key = Vec::with_capacity(25);
    key.push(TAG_TIME);
    key.extend_from_slice(&sortable_time(time));
    key
}

/// The 128 bits of an event ID in canonical text (lowercase 8-4-4-4-12 hex, as every logged
/// event ID is), the in-memory tables' key: no allocation, and a short hash. Other text has
/// none; such an ID is never in a table (and is looked for in the runs by its text).
pub(super) fn id_bits(text: &str) -> Option<u128> {
    let bytes = text.as_bytes();
    if bytes.len() != 36 {
        return None;
    }
    let mut bits = 0u128;
    for (at, &byte) in bytes.iter().enumerate() {
        let digit = match byte {
            b'-' if matches!(at, 8 | 13 | 18 | 23) => continue,
            b'0'..=b'9' if !matches!(at, 8 | 13 | 18 | 23) => byte - b'0',
            b'a'..=b'f' if !matches!(at, 8 | 13 | 18 | 23) => byte - b'a' + 10,
            _ => return None,
        };
        bits = bits << 4 | u128::from(digit);
    }
    Some(bits)
}

pub(super) fn index_at_end(key: &[u8]) -> Option<u64> {
    let tail = key.get(key.len().checked_sub(8)?..)?;
    Some(u64::from_be_bytes(tail.try_into().ok()?))
}

pub(super) fn check_text(what: &'static str, text: &str) -> Result<(), EventStoreError> {
    if text.len() > run::MAX_FIELD_BYTES / 8 {
        return Err(EventStoreError::Corrupt {
            what,
            detail: format!("{} bytes: too long to index", text.len()),
        });
    }
    Ok(())
}

/// [`check_text`] of every text field of `summary` the index keeps.
pub(super) fn check_summary_text(summary: &EventSummary) -> Result<(), EventStoreError> {
    for (what, text) in [
        ("event ID", &summary.event_id),
        ("actor", &summary.actor_id),
        ("resource type", &summary.resource_type),
        ("resource", &summary.resource_id),
        ("action", &summary.action),
    ] {
        check_text(what, text)?;
    }
    Ok(())
}

/// The event time a summary record begins with.
pub(crate) fn summary_time(value: &[u8]) -> Option<i128> {
    Some(i128::from_be_bytes(value.get(..16)?.try_into().ok()?))
}

/// The `s` value of a summary: times, whether it has a payload, then the strings.
pub(super) fn encode_summary(summary: &EventSummary) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + summary.event_id.len() + summary.actor_id.len() * 4);
    out.extend_from_slice(&summary.time_nanos.to_be_bytes());
    out.extend_from_slice(&summary.received_nanos.to_be_bytes());
    out.push(u8::from(summary.has_payload));
    for text in [
        &summary.event_id,
        &summary.actor_id,
        &summary.resource_type,
        &summary.resource_id,
        &summary.action,
    ] {
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out
}

pub(super) fn decode_summary(index: u64, bytes: &[u8]) -> Result<EventSummary, EventStoreError> {
    let bad = |detail: &str| EventStoreError::Corrupt {
        what: "summary",
        detail: format!("index {index}: {detail}"),
    };
    let mut rest = bytes;
    let mut take = |count: usize| -> Result<&[u8], EventStoreError> {
        if rest.len() < count {
            return Err(bad("truncated"));
        }
        let (head, tail) = rest.split_at(count);
        rest = tail;
        Ok(head)
    };
    let time_nanos = i128::from_be_bytes(take(16)?.try_into().expect("16 bytes"));
    let received_nanos = i128::from_be_bytes(take(16)?.try_into().expect("16 bytes"));
    let has_payload = match take(1)?[0] {
        0 => false,
        1 => true,
        _ => return Err(bad("unknown payload flag")),
    };
    let mut strings = Vec::with_capacity(5);
    for _ in 0..5 {
        let length = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes")) as usize;
        let text = String::from_utf8(take(length)?.to_vec()).map_err(|_| bad("not UTF-8"))?;
        strings.push(text);
    }
    if !rest.is_empty() {
        return Err(bad("bytes left over"));
    }
    let mut strings = strings.into_iter();
    let mut next = || strings.next().expect("five strings");
    Ok(EventSummary {
        index,
        event_id: next(),
        time_nanos,
        received_nanos,
        actor_id: next(),
        resource_type: next(),
        resource_id: next(),
        action: next(),
        has_payload,
    })
}

/// Bytes 1 to 8 of `key` (after its tag), big-endian and padded with zeros: two keys of one
/// kind whose prefixes differ are in the order of their prefixes.
pub(super) fn key_prefix(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    let tail = key.get(1..).unwrap_or_default();
    let n = tail.len().min(8);
    bytes[..n].copy_from_slice(&tail[..n]);
    u64::from_be_bytes(bytes)
}
