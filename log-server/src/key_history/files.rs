//! The key history directory on disk: reading it (bounded, the history verified, the held keys
//! opened and matched against it) and writing it (the history replaced atomically, new key files
//! never overwritten).

use std::io::{Read as _, Write as _};
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cairn_keys::{NoteSigner, Pkcs11Key};
use cairn_spec::key_history::{KeyHistory, MAX_HISTORY_BYTES};
use cairn_spec::note::{Ed25519Signer, Ed25519Verifier, KeyId, KeyName, PlainEd25519};

use super::Loaded;

/// The history's file in the directory.
pub(super) const HISTORY_FILE: &str = "history";
/// The pinned first key's vkey.
const PINNED_FILE: &str = "pinned.vkey";
/// The longest vkey file or pkcs11 pointer file read.
const MAX_SMALL_FILE: u64 = 8192;

/// Why the key history directory could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// No key history directory is configured.
    #[error("no key_history_dir is configured")]
    NotConfigured,
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The history, or a file beside it, is not what it should be.
    #[error("key history: {0}")]
    Invalid(String),
    /// A held key could not be opened.
    #[error("key history key: {0}")]
    Key(String),
}

/// What a file looked like when read: a change of any of these means it was replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamp {
    inode: u64,
    length: u64,
    modified_ns: i64,
}

/// A key history directory of the log whose key name is `subject`.
#[derive(Debug, Clone)]
pub struct HistoryDir {
    path: PathBuf,
    subject: KeyName,
    readers: KeyReaders,
}

/// How the private keys a directory holds are read: a key file, and the key in a token that a
/// configuration file's `[pkcs11]` table names. Both are formats of the configuration
/// (`crate::config` gives them); the history only finds the files.
#[derive(Clone, Copy, Debug)]
pub struct KeyReaders {
    /// Reads a key file (an Ed25519 signed-note private key, mode 0600).
    pub key_file: fn(&Path) -> Result<Ed25519Signer, String>,
    /// Opens the key in the token that the `[pkcs11]` table of this configuration file names.
    pub token: fn(&Path) -> Result<Pkcs11Key, String>,
}

impl HistoryDir {
    /// The directory at `path`, for keys named `subject`, whose keys `readers` read.
    pub fn new(path: PathBuf, subject: KeyName, readers: KeyReaders) -> HistoryDir {
        HistoryDir {
            path,
            subject,
            readers,
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn io(&self, file: &str) -> impl Fn(std::io::Error) -> HistoryError {
        let path = self.path.join(file);
        move |source| HistoryError::Io {
            path: path.clone(),
            source,
        }
    }

    /// The history file's stamp; `None` while there is none.
    pub(super) fn stamp(&self) -> Result<Option<Stamp>, HistoryError> {
        match std::fs::metadata(self.path.join(HISTORY_FILE)) {
            Ok(metadata) => Ok(Some(Stamp {
                inode: metadata.ino(),
                length: metadata.len(),
                modified_ns: metadata
                    .mtime()
                    .saturating_mul(1_000_000_000)
                    .saturating_add(metadata.mtime_nsec()),
            })),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(self.io(HISTORY_FILE)(error)),
        }
    }

    /// The pinned key's vkey; before the first rotation (no file yet), `current`'s.
    pub fn pinned(&self, current: &Ed25519Verifier) -> Result<String, HistoryError> {
        match read_small(&self.path.join(PINNED_FILE), MAX_SMALL_FILE) {
            Ok(bytes) => String::from_utf8(bytes)
                .map(|text| text.trim().to_owned())
                .map_err(|_| HistoryError::Invalid(format!("{PINNED_FILE} is not UTF-8"))),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(current.to_vkey()),
            Err(error) => Err(self.io(PINNED_FILE)(error)),
        }
    }

    /// The verified history (empty before the first rotation).
    pub fn verified(&self, current: &Ed25519Verifier) -> Result<KeyHistory, HistoryError> {
        let pinned = self.pinned(current)?;
        let bytes = match read_small(&self.path.join(HISTORY_FILE), MAX_HISTORY_BYTES as u64) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(error) => return Err(self.io(HISTORY_FILE)(error)),
        };
        let history = KeyHistory::verify(&pinned, &bytes)
            .map_err(|error| HistoryError::Invalid(error.to_string()))?;
        if *history.subject() != self.subject {
            return Err(HistoryError::Invalid(format!(
                "the pinned key is named {:?}, the log's origin is {:?}",
                history.subject().as_str(),
                self.subject.as_str()
            )));
        }
        Ok(history)
    }

    /// Reads everything: the history, verified, and every key of it the directory holds.
    pub(super) fn load(&self, current: &Ed25519Verifier) -> Result<Loaded, HistoryError> {
        let stamp = self.stamp()?;
        let history = self.verified(current)?;
        let mut signers = Vec::new();
        for key in history.keys() {
            if key.key_id == current.key_id() {
                continue;
            }
            if let Some(signer) = self.held_key(key.key_id)? {
                if signer.verifier().public_key() != &key.public_key {
                    return Err(HistoryError::Key(format!(
                        "the key held for {} is another key",
                        key.vkey
                    )));
                }
                signers.push(Arc::new(signer));
            }
        }
        Ok(Loaded {
            stamp,
            history: Arc::new(history),
            signers,
        })
    }

    /// The private key with this ID in the directory, from a key file or through a pointer to
    /// a configuration with a `[pkcs11]` table; `None` if the directory holds neither.
    pub fn held_key(
        &self,
        key_id: KeyId,
    ) -> Result<Option<NoteSigner<PlainEd25519>>, HistoryError> {
        let file = self.path.join(format!("{key_id}.key"));
        if file.exists() {
            let key = (self.readers.key_file)(&file).map_err(HistoryError::Key)?;
            return Ok(Some(NoteSigner::from_key(key)));
        }
        let pointer = format!("{key_id}.pkcs11");
        let bytes = match read_small(&self.path.join(&pointer), MAX_SMALL_FILE) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(self.io(&pointer)(error)),
        };
        let config = PathBuf::from(
            String::from_utf8(bytes)
                .map_err(|_| HistoryError::Invalid(format!("{pointer} is not UTF-8")))?
                .trim(),
        );
        let key = (self.readers.token)(&config).map_err(HistoryError::Key)?;
        Ok(Some(NoteSigner::from_token(
            self.subject.clone(),
            Arc::new(key),
        )))
    }

    /// Makes the directory if it is missing: mode 0700, since it holds private keys (an
    /// existing directory's mode is left as its owner set it).
    fn create(&self) -> Result<(), HistoryError> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.path)
            .map_err(self.io(""))
    }

    /// Writes the pinned key's vkey, if it is not written yet.
    pub fn pin(&self, vkey: &str) -> Result<(), HistoryError> {
        self.create()?;
        let path = self.path.join(PINNED_FILE);
        if path.exists() {
            return Ok(());
        }
        write_new(&path, format!("{vkey}\n").as_bytes(), 0o644).map_err(self.io(PINNED_FILE))
    }

    /// Stores a new key file for the key with this ID (mode 0600, never overwriting).
    pub fn store_key_file(&self, key_id: KeyId, skey: &str) -> Result<PathBuf, HistoryError> {
        self.create()?;
        let name = format!("{key_id}.key");
        let path = self.path.join(&name);
        write_new(&path, format!("{skey}\n").as_bytes(), 0o600).map_err(self.io(&name))?;
        Ok(path)
    }

    /// Records that the key with this ID is in the token `config`'s `[pkcs11]` table names.
    pub fn store_token_pointer(&self, key_id: KeyId, config: &Path) -> Result<(), HistoryError> {
        self.create()?;
        let name = format!("{key_id}.pkcs11");
        let config = std::path::absolute(config).map_err(self.io(&name))?;
        write_new(
            &self.path.join(&name),
            format!("{}\n", config.display()).as_bytes(),
            0o644,
        )
        .map_err(self.io(&name))
    }

    /// Replaces the history file with `history` atomically (a new file renamed over it, both
    /// synced), so a reader sees the old history or the new one, never part of one.
    pub fn replace_history(&self, history: &KeyHistory) -> Result<(), HistoryError> {
        let temporary = format!("{HISTORY_FILE}.new");
        let path = self.path.join(&temporary);
        let _ = std::fs::remove_file(&path);
        write_new(&path, &history.to_bytes(), 0o644).map_err(self.io(&temporary))?;
        std::fs::rename(&path, self.path.join(HISTORY_FILE)).map_err(self.io(HISTORY_FILE))?;
        std::fs::File::open(&self.path)
            .and_then(|dir| dir.sync_all())
            .map_err(self.io(""))
    }
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Reads at most `limit` bytes; a longer file is an error.
fn read_small(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}
