//! Privacy by design for audit events (issue 27): what keeps personal data out of the public
//! log, encrypted at rest, and erasable by subject.
//!
//! - Events are logged as schema 2 leaves (cairn-spec `event::v2`): the leaf holds only salted
//!   commitments to `actor`, `resource`, `context` and `payload`. The salts and clear values
//!   (the openings) go in a contents record beside the leaf ([`record`]), encrypted with
//!   AES-256-GCM under the data key of the event's data subject (its `actor.id` by default,
//!   `resource.id` if configured).
//! - Data keys are random, one per subject, wrapped by the key-encryption key (KEK) read from
//!   a file (mode 0600) and kept in [`keystore`]. Erasing a subject destroys its data keys
//!   (crypto-shredding): every contents record of that subject becomes unreadable at once,
//!   while leaves, roots and proofs stay valid.
//! - The events index holds index tags instead of identifiers (cairn-spec `index_tag`): the
//!   subject's tags are keyed by a key derived from the subject's data key, so they become
//!   meaningless once it is destroyed; other fields' tags are keyed by the server's index key,
//!   derived from the KEK.

pub mod keystore;
pub mod record;

use std::path::{Path, PathBuf};

use cairn_spec::event::{index_tag, IndexKey, IndexedField};
use sha2::{Digest, Sha256};

use self::keystore::{hex, DataKey, DekId, KeyStore, SubjectId};
pub use self::record::Tags;
use crate::events::model::EventStoreError;

/// How a tag is written where the index keeps identifiers: `tag:` and 64 hex digits.
pub const TAG_PREFIX: &str = "tag:";

/// Which field of an event names its data subject.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubjectField {
    /// `actor.id` (the default).
    #[default]
    Actor,
    /// `resource.id`.
    Resource,
}

/// Where the KEK is and whose data keys events are sealed under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivacySettings {
    /// The KEK file (32 random bytes as 64 hex digits, mode 0600).
    pub kek_file: PathBuf,
    /// Whether to make the KEK file if it does not exist (the default location only).
    pub create_kek: bool,
    /// The subject field.
    pub subject: SubjectField,
    /// Whether `/tile/entries` is served without a token.
    pub public_entries: bool,
}

impl PrivacySettings {
    /// The default: a KEK made at `<events dir>/kek` on first start, subjects by actor.
    pub fn in_dir(events_dir: &Path) -> PrivacySettings {
        PrivacySettings {
            kek_file: events_dir.join("kek"),
            create_kek: true,
            subject: SubjectField::Actor,
            public_entries: false,
        }
    }
}

fn corrupt(what: &'static str, detail: impl std::fmt::Display) -> EventStoreError {
    EventStoreError::Corrupt {
        what,
        detail: detail.to_string(),
    }
}

/// Reads the KEK file: 64 hex digits (a trailing newline allowed), mode 0600 or stricter.
/// Makes one if it is missing and `create` is set.
pub fn read_kek(path: &Path, create: bool) -> Result<[u8; 32], EventStoreError> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    let problem = |detail: String| corrupt("key-encryption key", detail);
    if create && !path.exists() {
        let key: [u8; 32] = rand::random();
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| problem(format!("making {}: {e}", path.display())))?;
        file.write_all(format!("{}\n", hex(&key)).as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| problem(format!("writing {}: {e}", path.display())))?;
        if let Some(parent) = path.parent() {
            std::fs::File::open(parent)
                .and_then(|dir| dir.sync_all())
                .map_err(|e| problem(format!("syncing {}: {e}", parent.display())))?;
        }
        tracing::warn!(
            path = %path.display(),
            "made a new key-encryption key for audit events' contents; keep it apart from \
             the data (and backed up): without it no contents can be read"
        );
    }
    let metadata =
        std::fs::metadata(path).map_err(|e| problem(format!("reading {}: {e}", path.display())))?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(problem(format!(
            "{} has mode {mode:o}: group and others must have no access (chmod 600)",
            path.display()
        )));
    }
    if metadata.len() > 1024 {
        return Err(problem(format!(
            "{} is {} bytes, not a key",
            path.display(),
            metadata.len()
        )));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| problem(format!("reading {}: {e}", path.display())))?;
    let text = text.trim();
    let bytes: Option<Vec<u8>> = (text.len() == 64)
        .then(|| {
            (0..32)
                .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                .collect()
        })
        .flatten();
    bytes
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| {
            problem(format!(
                "{} must hold 32 bytes as 64 hex digits",
                path.display()
            ))
        })
}

/// A key derived from `secret` for `purpose`.
fn derive(secret: &[u8; 32], purpose: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"cairn-log key derivation\0");
    hash.update(purpose.as_bytes());
    hash.update([0]);
    hash.update(secret);
    hash.finalize().into()
}

/// What a contents record read back holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Contents {
    /// The openings.
    Held(Box<cairn_spec::event::EventOpenings>),
    /// The subject's data key is destroyed, or the record erased: committed, contents erased.
    Erased,
}

/// Encryption at rest, index tags and crypto-shredding of the events' contents.
pub struct Privacy {
    public_entries: bool,
    index_key: IndexKey,
    /// Keys the subject key IDs (apart from the index tags, so that neither reveals the other).
    subject_id_key: IndexKey,
    subject: SubjectField,
    keys: KeyStore,
}

impl Privacy {
    /// Opens the subject key store in `events_dir` under the KEK of `settings`. Blocking.
    pub fn open(events_dir: &Path, settings: &PrivacySettings) -> Result<Privacy, EventStoreError> {
        Privacy::open_with(events_dir, settings, None)
    }

    /// [`Privacy::open`], with the subject keys in `shared_keys` (the scaled backend's
    /// PostgreSQL) instead of `events_dir`, if given. Blocking.
    pub fn open_with(
        events_dir: &Path,
        settings: &PrivacySettings,
        shared_keys: Option<Box<dyn keystore::KeyRows>>,
    ) -> Result<Privacy, EventStoreError> {
        std::fs::create_dir_all(events_dir)
            .map_err(|e| corrupt("events directory", format!("{}: {e}", events_dir.display())))?;
        let kek = read_kek(&settings.kek_file, settings.create_kek)?;
        let wrapping = derive(&kek, "wrap subject keys");
        let keys = match shared_keys {
            Some(rows) => KeyStore::with_rows(rows, &wrapping)?,
            None => KeyStore::open(&events_dir.join("subjects.sqlite"), &wrapping)?,
        };
        Ok(Privacy {
            public_entries: settings.public_entries,
            index_key: IndexKey::from_bytes(derive(&kek, "index tags")),
            subject_id_key: IndexKey::from_bytes(derive(&kek, "subject key ids")),
            subject: settings.subject,
            keys,
        })
    }

    /// Copies the subject keys of an embedded log's events directory `source_events_dir` into
    /// `target` (the scaled backend's shared rows), unchanged: `settings` must name the KEK the
    /// source's keys are wrapped under (it is never made here). Answers how many keys the
    /// target holds of the source's (0 if the source has no key store). Blocking.
    pub fn copy_subject_keys(
        source_events_dir: &Path,
        settings: &PrivacySettings,
        target: Box<dyn keystore::KeyRows>,
    ) -> Result<usize, EventStoreError> {
        let path = source_events_dir.join("subjects.sqlite");
        if !path.exists() {
            return Ok(0);
        }
        let rows = keystore::SqliteKeyRows::open(&path)?.all_rows()?;
        let kek = read_kek(&settings.kek_file, false)?;
        let keys = KeyStore::with_rows(target, &derive(&kek, "wrap subject keys"))?;
        keys.copy_rows(&rows)
    }

    /// Whether `/tile/entries` is served without a token.
    pub fn public_entries(&self) -> bool {
        self.public_entries
    }

    /// The subject field.
    pub fn subject_field(&self) -> SubjectField {
        self.subject
    }

    /// The subject's key ID: a keyed hash of the subject (never stored in clear).
    pub fn subject_id(&self, subject: &str) -> SubjectId {
        index_tag(&self.subject_id_key, IndexedField::ActorId, subject).0
    }

    /// The data keys of `subjects` if every one is in memory (then sealing needs no database
    /// read), else `None`. Each subject's key ID is computed once, here, rather than once to
    /// ask and again to fetch.
    pub fn cached_keys(&self, subjects: &[&str]) -> Option<Vec<DataKey>> {
        subjects
            .iter()
            .map(|subject| self.keys.cached(&self.subject_id(subject)))
            .collect()
    }

    /// The data keys of `subjects`, made (durably) for those that have none. Blocking for a
    /// subject not in memory.
    pub fn keys_for(&self, subjects: &[&str]) -> Result<Vec<DataKey>, EventStoreError> {
        let ids: Vec<SubjectId> = subjects.iter().map(|s| self.subject_id(s)).collect();
        self.keys.find_or_create(&ids)
    }

    /// The tag of `value` of `field` for an event sealed under `key` (the subject's field is
    /// keyed by the data key, the others by the server's index key).
    fn tag(&self, field: IndexedField, value: &str, key: &DataKey) -> [u8; 32] {
        let subject_field = match self.subject {
            SubjectField::Actor => IndexedField::ActorId,
            SubjectField::Resource => IndexedField::ResourceId,
        };
        if field == subject_field {
            let subject_key = IndexKey::from_bytes(derive(&key.key, "subject index tags"));
            index_tag(&subject_key, field, value).0
        } else {
            index_tag(&self.index_key, field, value).0
        }
    }

    /// The tag of `value` of `field` under the log's index key (a schema 1 leaf's fields).
    pub fn log_tag(&self, field: IndexedField, value: &str) -> [u8; 32] {
        index_tag(&self.index_key, field, value).0
    }

    /// The tags of an event with these identifiers, sealed under `key`.
    pub fn tags(
        &self,
        actor_id: &str,
        resource_type: &str,
        resource_id: &str,
        key: &DataKey,
    ) -> Tags {
        Tags {
            actor: self.tag(IndexedField::ActorId, actor_id, key),
            resource_id: self.tag(IndexedField::ResourceId, resource_id, key),
            resource_type: self.tag(IndexedField::ResourceType, resource_type, key),
        }
    }

    /// The form an identifier takes in the index of schema 2 events, for a query or a hold:
    /// `None` when the value is the subject's and the subject has no data key (never seen, or
    /// shredded: no event can match). Blocking for a subject not in memory.
    pub fn query_tag(
        &self,
        field: IndexedField,
        value: &str,
    ) -> Result<Option<String>, EventStoreError> {
        let subject_field = match self.subject {
            SubjectField::Actor => IndexedField::ActorId,
            SubjectField::Resource => IndexedField::ResourceId,
        };
        let tag = if field == subject_field {
            match self.keys.find(&self.subject_id(value))? {
                Some(key) => self.tag(field, value, &key),
                None => return Ok(None),
            }
        } else {
            index_tag(&self.index_key, field, value).0
        };
        Ok(Some(tag_text(&tag)))
    }

    /// Seals the openings of one event with the data key `key`.
    pub fn seal(
        &self,
        event_id: &cairn_spec::event::EventId,
        openings: &cairn_spec::event::EventOpenings,
        key: &DataKey,
        tags: &Tags,
    ) -> Vec<u8> {
        record::seal(event_id, openings, &key.id, &key.key, tags)
    }

    /// Opens a contents record. Blocking (once per data key: then cached).
    pub fn open_record(
        &self,
        event_id: &cairn_spec::event::EventId,
        bytes: &[u8],
    ) -> Result<Contents, EventStoreError> {
        let header = record::header(bytes).map_err(|e| corrupt("contents record", e))?;
        match self.keys.key(&header.dek_id)? {
            None => Ok(Contents::Erased),
            Some(key) => record::open(event_id, bytes, &key)
                .map(|openings| Contents::Held(Box::new(openings)))
                .map_err(|e| {
                    corrupt(
                        "contents record",
                        format!("of event {}: {e}", event_id.as_str()),
                    )
                }),
        }
    }

    /// The IDs of every data key of `subject`, as text, for the record of a shredding.
    /// Blocking.
    pub fn subject_keys(&self, subject: &str) -> Result<Vec<String>, EventStoreError> {
        Ok(self
            .keys
            .key_ids(&self.subject_id(subject))?
            .iter()
            .map(|id| hex(id))
            .collect())
    }

    /// Destroys the data keys with these IDs (as [`Privacy::subject_keys`] wrote them).
    /// Blocking. Returns how many were there to destroy.
    pub fn destroy_keys(&self, ids: &[String]) -> Result<usize, EventStoreError> {
        let parsed: Vec<DekId> = ids
            .iter()
            .map(|text| {
                (text.len() == 32)
                    .then(|| {
                        (0..16)
                            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                            .collect::<Option<Vec<u8>>>()
                    })
                    .flatten()
                    .and_then(|bytes| DekId::try_from(bytes).ok())
                    .ok_or_else(|| corrupt("shredding record", format!("key ID {text:?}")))
            })
            .collect::<Result<_, _>>()?;
        self.keys.destroy(&parsed)
    }

    /// The subject key ID as text, which a shredding record names instead of the subject.
    pub fn subject_text(&self, subject: &str) -> String {
        tag_text(&self.subject_id(subject))
    }
}

/// `tag:` and 64 hex digits. Made three times an event on the submission path: written
/// digit by digit into one string of the right size rather than through `format!` per byte.
pub fn tag_text(tag: &[u8; 32]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(TAG_PREFIX.len() + 2 * tag.len());
    text.push_str(TAG_PREFIX);
    for byte in tag {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_written_as_its_prefix_and_lowercase_hex() {
        let mut tag = [0u8; 32];
        for (at, byte) in tag.iter_mut().enumerate() {
            *byte = (at as u8).wrapping_mul(37).wrapping_add(5);
        }
        assert_eq!(tag_text(&tag), format!("{TAG_PREFIX}{}", hex(&tag)));
        assert_eq!(
            tag_text(&[0xff; 32]),
            format!("tag:{}", "ff".repeat(32)),
            "the top digit"
        );
    }
}
