//! The contents record of a schema 2 event: what the log stores beside its leaf, in the
//! payload slot ([`crate::storage::NewEntry::with_payload`]), made durable by the same write.
//!
//! ```text
//! "CSC1"                     4 bytes   magic (no canonical JSON payload starts with it)
//! data key ID               16 bytes   the subject's key that sealed it
//! actor tag                 32 bytes   the index tags (event.md, "Index tags"): what the
//! resource.id tag           32 bytes   events index is rebuilt from, without any key
//! resource.type tag         32 bytes
//! nonce                     12 bytes
//! sealed                    the rest   AES-256-GCM under the data key; associated data: the
//!                                      magic, the event ID and every byte above
//! ```
//!
//! Sealed inside, per personal field in the order actor, resource, context, payload: one byte
//! (0 absent, 1 present), then, if present, the salt (32 bytes), the value's length (4 bytes,
//! big-endian) and the canonical value. Destroying the data key (crypto-shredding) leaves the
//! record unreadable; erasing the slot (an event's contents erased) removes it.

use aes_gcm::aead::{Aead, AeadInPlace, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use cairn_spec::event::{EventId, EventOpenings, FieldOpening, PersonalField, Salt, SALT_SIZE};

use super::keystore::{DekId, DEK_ID_SIZE};

/// The first bytes of every contents record.
pub const MAGIC: &[u8; 4] = b"CSC1";
const HEADER: usize = 4 + DEK_ID_SIZE + 3 * 32;
pub(super) const NONCE: usize = 12;
/// Bytes of AES-GCM's authentication tag, after the ciphertext.
const TAG: usize = 16;

/// AES-256-GCM under `key`.
pub(super) fn cipher(key: &[u8; 32]) -> Aes256Gcm {
    Aes256Gcm::new(&(*key).into())
}

/// A 12-byte nonce.
pub(super) fn nonce(bytes: [u8; NONCE]) -> Nonce<aes_gcm::aead::consts::U12> {
    Nonce::from(bytes)
}

/// The index tags of an event, as its record carries them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tags {
    /// Of `actor.id`.
    pub actor: [u8; 32],
    /// Of `resource.id`.
    pub resource_id: [u8; 32],
    /// Of `resource.type`.
    pub resource_type: [u8; 32],
}

/// A record's header, readable without a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// The data key that sealed the record.
    pub dek_id: DekId,
    /// The event's index tags.
    pub tags: Tags,
}

/// Whether `bytes` (a payload slot) hold a contents record.
pub fn is_record(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Reads the header of a record.
pub fn header(bytes: &[u8]) -> Result<Header, String> {
    if !is_record(bytes) || bytes.len() < HEADER + NONCE + TAG {
        return Err(format!(
            "not a contents record ({} bytes, no magic or too short)",
            bytes.len()
        ));
    }
    let take = |from: usize, to: usize| -> [u8; 32] {
        let mut out = [0u8; 32];
        out.copy_from_slice(&bytes[from..to]);
        out
    };
    let mut dek_id = [0u8; DEK_ID_SIZE];
    dek_id.copy_from_slice(&bytes[4..4 + DEK_ID_SIZE]);
    let at = 4 + DEK_ID_SIZE;
    Ok(Header {
        dek_id,
        tags: Tags {
            actor: take(at, at + 32),
            resource_id: take(at + 32, at + 64),
            resource_type: take(at + 64, at + 96),
        },
    })
}

fn associated(event_id: &EventId, header: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(header.len() + 40);
    data.extend_from_slice(MAGIC);
    data.extend_from_slice(event_id.as_str().as_bytes());
    data.extend_from_slice(header);
    data
}

/// Seals `openings` of the event `event_id` under `key` (ID `dek_id`) with its tags. The
/// fields are written straight into the record and encrypted where they lie: one allocation
/// of the record's exact size, no copy of the plaintext or the ciphertext.
pub fn seal(
    event_id: &EventId,
    openings: &EventOpenings,
    dek_id: &DekId,
    key: &[u8; 32],
    tags: &Tags,
) -> Vec<u8> {
    let sealed_length: usize = PersonalField::ALL
        .into_iter()
        .map(|field| {
            1 + openings
                .get(field)
                .map_or(0, |opening| SALT_SIZE + 4 + opening.value.len())
        })
        .sum();
    let mut record = Vec::with_capacity(HEADER + NONCE + sealed_length + TAG);
    record.extend_from_slice(MAGIC);
    record.extend_from_slice(dek_id);
    record.extend_from_slice(&tags.actor);
    record.extend_from_slice(&tags.resource_id);
    record.extend_from_slice(&tags.resource_type);
    let drawn: [u8; NONCE] = rand::random();
    record.extend_from_slice(&drawn);
    for field in PersonalField::ALL {
        match openings.get(field) {
            None => record.push(0),
            Some(opening) => {
                record.push(1);
                record.extend_from_slice(opening.salt.as_bytes());
                record.extend_from_slice(&(opening.value.len() as u32).to_be_bytes());
                record.extend_from_slice(&opening.value);
            }
        }
    }
    let (head, plain) = record.split_at_mut(HEADER + NONCE);
    let aad = associated(event_id, &head[..HEADER]);
    let tag = cipher(key)
        .encrypt_in_place_detached(&nonce(drawn), &aad, plain)
        .expect("AES-GCM seals any message under 64 GiB");
    record.extend_from_slice(&tag);
    record
}

/// Opens a record of the event `event_id` with `key`: the openings it sealed.
pub fn open(event_id: &EventId, bytes: &[u8], key: &[u8; 32]) -> Result<EventOpenings, String> {
    header(bytes)?;
    let (head, rest) = bytes.split_at(HEADER);
    let (drawn, sealed) = rest.split_at(NONCE);
    let drawn: [u8; NONCE] = drawn.try_into().map_err(|_| "a short nonce".to_string())?;
    let aad = associated(event_id, head);
    let plain = cipher(key)
        .decrypt(
            &nonce(drawn),
            Payload {
                msg: sealed,
                aad: &aad,
            },
        )
        .map_err(|_| "the record does not open under its data key".to_string())?;
    let mut fields: [Option<FieldOpening>; 4] = [None, None, None, None];
    let mut at = 0usize;
    for field in PersonalField::ALL {
        let flag = *plain.get(at).ok_or("the record ends early")?;
        at += 1;
        if flag == 0 {
            continue;
        }
        let salt = plain
            .get(at..at + SALT_SIZE)
            .and_then(Salt::from_slice)
            .ok_or("the record ends in a salt")?;
        at += SALT_SIZE;
        let length = plain
            .get(at..at + 4)
            .and_then(|bytes| <[u8; 4]>::try_from(bytes).ok())
            .map(u32::from_be_bytes)
            .ok_or("the record ends in a length")? as usize;
        at += 4;
        let value = plain
            .get(at..at.saturating_add(length))
            .ok_or("the record ends in a value")?
            .to_vec();
        at += length;
        fields[field as usize] = Some(FieldOpening { salt, value });
    }
    if at != plain.len() {
        return Err("the record has bytes after its last field".into());
    }
    let [actor, resource, context, payload] = fields;
    Ok(EventOpenings {
        actor: actor.ok_or("the record has no actor")?,
        resource: resource.ok_or("the record has no resource")?,
        context,
        payload,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opening(value: &str, salt: u8) -> FieldOpening {
        FieldOpening {
            salt: Salt::from_bytes([salt; 32]),
            value: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn a_record_opens_under_its_key_only_and_binds_its_header_and_event() {
        let id = EventId::parse("0b5e7c1a-3d2f-4e8b-9a6c-1f0e2d3c4b5a").expect("id");
        let other = EventId::parse("1c6f8d2b-4e3a-4f9c-8b7d-2a1f3e4d5c6b").expect("id");
        let openings = EventOpenings {
            actor: opening(r#"{"id":"alice","type":"user"}"#, 1),
            resource: opening(r#"{"id":"r","type":"t"}"#, 2),
            context: None,
            payload: Some(opening(r#"{"n":1}"#, 4)),
        };
        let tags = Tags {
            actor: [7; 32],
            resource_id: [8; 32],
            resource_type: [9; 32],
        };
        let key = [5u8; 32];
        let record = seal(&id, &openings, &[3; 16], &key, &tags);
        assert!(is_record(&record));
        assert_eq!(
            header(&record).expect("header"),
            Header {
                dek_id: [3; 16],
                tags
            }
        );
        assert_eq!(open(&id, &record, &key).expect("opens"), openings);
        assert!(open(&id, &record, &[6u8; 32]).is_err(), "another key");
        assert!(open(&other, &record, &key).is_err(), "another event");
        let mut changed = record.clone();
        changed[30] ^= 1; // a tag
        assert!(open(&id, &changed, &key).is_err(), "a changed header");
        let text = String::from_utf8_lossy(&record);
        assert!(!text.contains("alice"), "the value is not in clear");
        assert!(header(b"{\"n\":1}").is_err());
    }
}
