//! The log's keys across rotations ([`LogKeys`]): its configured key, and, when a key history
//! directory is configured, every key the history introduced whose private key the directory
//! holds. A checkpoint of size `n` is signed by every held key the verified history makes valid
//! at `n`: during an overlap it carries two signatures, and a retired or revoked key signs no
//! more. The history (spec/docs/key-history.md) is read again whenever its file changes, so
//! `cairn-log rotate-key` takes effect without a restart; [`log_statements`] logs each statement
//! as a leaf, and `GET /key-history` ([`crate::api`]) serves the history.
//!
//! The directory (`key_history_dir`), written by `cairn-log rotate-key`, `retire-key` and
//! `revoke-key` (log-server/src/key_commands.rs):
//!
//! - `pinned.vkey`: the log's first key, the one policies pin (the configured key at the first
//!   rotation);
//! - `history`: the statements, in their canonical encoding, replaced atomically;
//! - `<key ID>.key`: the private key of an introduced key (mode 0600), or `<key ID>.pkcs11`:
//!   the path of a TOML file whose `[pkcs11]` table names the introduced key in a token.

mod files;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn_keys::{KeyError, NoteSigner};
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::key_history::{KeyHistory, KeyStatus};
use cairn_spec::note::{Ed25519Signer, Ed25519Verifier, KeyName, Note, NoteVerifier, PlainEd25519};
use parking_lot::Mutex;
use tokio::sync::watch;

use crate::sequencer::Sequencer;
use crate::storage::{IdempotencyKey, NewEntry};

pub use files::{HistoryDir, HistoryError, KeyReaders};

/// The idempotency namespace of logged statements: a space keeps it apart from every
/// producer's name, so each statement is logged once however often it is submitted.
const STATEMENT_PRODUCER: &str = "cairn-log key history";

/// How often the history file is checked for a change when nothing signs (for logging).
const WATCH_INTERVAL: Duration = Duration::from_millis(500);

/// The log's checkpoint keys, in key files or PKCS#11 tokens, across rotations
/// ([`LogKeys`]): signing may block (a token's call), so it is made off the runtime's
/// workers.
pub type LogSigner = Arc<LogKeys>;

/// The log's signing keys: one, or the held keys of a verified key history.
pub struct LogKeys {
    primary: Arc<NoteSigner<PlainEd25519>>,
    rotation: Option<Rotation>,
}

struct Rotation {
    dir: HistoryDir,
    loaded: Mutex<Loaded>,
}

/// What was read from the directory, and the file stamp it was read at.
struct Loaded {
    stamp: Option<files::Stamp>,
    history: Arc<KeyHistory>,
    /// Held keys besides the primary, each in the history.
    signers: Vec<Arc<NoteSigner<PlainEd25519>>>,
}

impl LogKeys {
    /// One key, no history: every checkpoint is signed by it.
    pub fn single(primary: NoteSigner<PlainEd25519>) -> LogKeys {
        LogKeys {
            primary: Arc::new(primary),
            rotation: None,
        }
    }

    /// The configured key and the key history in `dir` (whose keys `readers` read), verified
    /// now: a history that does not verify, or a configured key that is not in it, is refused.
    pub fn with_history(
        primary: NoteSigner<PlainEd25519>,
        dir: &Path,
        readers: KeyReaders,
    ) -> Result<LogKeys, HistoryError> {
        let dir = HistoryDir::new(dir.to_path_buf(), primary.key_name().clone(), readers);
        let loaded = dir.load(&primary.verifier())?;
        let keys = LogKeys {
            primary: Arc::new(primary),
            rotation: Some(Rotation {
                dir,
                loaded: Mutex::new(loaded),
            }),
        };
        let history = keys.history().ok_or(HistoryError::NotConfigured)?;
        let primary = keys.primary.verifier();
        if history.key(primary.key_name(), primary.key_id()).is_none() {
            return Err(HistoryError::Invalid(format!(
                "the configured key {} is not in the key history",
                primary.to_vkey()
            )));
        }
        Ok(keys)
    }

    /// The log's key name: its origin.
    pub fn key_name(&self) -> &KeyName {
        self.primary.key_name()
    }

    /// Where the configured key is, for logs and errors: never the key.
    pub fn location(&self) -> String {
        self.primary.location()
    }

    /// The configured key's verifier.
    pub fn verifier(&self) -> Ed25519Verifier {
        self.primary.verifier()
    }

    /// The verified history, read again first if its file changed; `None` without one.
    pub fn history(&self) -> Option<Arc<KeyHistory>> {
        let rotation = self.rotation.as_ref()?;
        let mut loaded = rotation.loaded.lock();
        match rotation.dir.stamp() {
            Ok(stamp) if stamp == loaded.stamp => {}
            Ok(_) | Err(_) => match rotation.dir.load(&self.primary.verifier()) {
                Ok(fresh) => *loaded = fresh,
                // The history in force stays: a bad file never takes a key away.
                Err(error) => {
                    tracing::error!(%error, "the key history could not be read again; the one read before stays in force")
                }
            },
        }
        Some(Arc::clone(&loaded.history))
    }

    /// Opens a checkpoint note this log signed (a receipt's, say): with a key history, by any
    /// key the verified history introduced, one of them valid at the checkpoint's size (a
    /// retired key's later signature, or a revoked key's from its revocation size on, does
    /// not count, and any signature by a history key that does not verify refuses the note);
    /// without one, by the configured key. May read the history file again.
    pub fn open_checkpoint(&self, note: &[u8]) -> Result<Checkpoint, String> {
        let Some(history) = self.history() else {
            return Checkpoint::open(note, &self.verifier())
                .map(|opened| opened.checkpoint)
                .map_err(|error| error.to_string());
        };
        let keys: Vec<Ed25519Verifier> = history
            .keys()
            .iter()
            .map(|key| Ed25519Verifier::new(key.key_name.clone(), key.public_key))
            .collect();
        let verifiers: Vec<&dyn NoteVerifier> =
            keys.iter().map(|key| key as &dyn NoteVerifier).collect();
        let opened = Checkpoint::open_with_origin(note, self.key_name().as_str(), &verifiers)
            .map_err(|error| error.to_string())?;
        let size = opened.checkpoint.size;
        let valid = history.keys().iter().any(|key| {
            opened.verification.is_signed_by(&key.key_name, key.key_id)
                && key.status(size) == KeyStatus::Valid
        });
        if valid {
            Ok(opened.checkpoint)
        } else {
            Err(format!(
                "no key of this log valid at size {size} by its key history signed it"
            ))
        }
    }

    /// `checkpoint` signed by every held key valid at its size. May block on a token.
    pub fn sign_checkpoint(&self, checkpoint: &Checkpoint) -> Result<Note, KeyError> {
        let Some(history) = self.history() else {
            return self.primary.sign_checkpoint(checkpoint);
        };
        let signers: Vec<Arc<NoteSigner<PlainEd25519>>> = {
            let loaded = self
                .rotation
                .as_ref()
                .map(|rotation| rotation.loaded.lock());
            let mut all = vec![Arc::clone(&self.primary)];
            if let Some(loaded) = loaded {
                all.extend(loaded.signers.iter().cloned());
            }
            all
        };
        let mut note: Option<Note> = None;
        for signer in signers {
            let valid = history
                .key(signer.key_name(), signer.key_id())
                .is_some_and(|key| key.status(checkpoint.size) == KeyStatus::Valid);
            if !valid {
                continue;
            }
            match &mut note {
                None => note = Some(signer.sign_checkpoint(checkpoint)?),
                Some(note) => {
                    let signature = signer.sign(note)?;
                    note.add_signature(signature)
                        .map_err(|error| KeyError::Note(error.to_string()))?;
                }
            }
        }
        note.ok_or_else(|| {
            KeyError::Note(format!(
                "no key the log holds may sign size {} by its key history",
                checkpoint.size
            ))
        })
    }
}

impl From<Ed25519Signer> for LogKeys {
    fn from(key: Ed25519Signer) -> LogKeys {
        LogKeys::single(NoteSigner::from_key(key))
    }
}

impl std::fmt::Debug for LogKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogKeys")
            .field("primary", &self.primary)
            .field("history", &self.rotation.as_ref().map(|r| r.dir.path()))
            .finish()
    }
}

/// Logs every statement of the history as a leaf, and each new one as it appears, until
/// `stopped`. Each is submitted with an idempotency key of its hash, so a restart or a retry
/// logs none twice.
pub async fn log_statements(
    keys: Arc<LogKeys>,
    sequencer: Arc<Sequencer>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut logged = 0usize;
    loop {
        let history = {
            let keys = Arc::clone(&keys);
            tokio::task::spawn_blocking(move || keys.history())
                .await
                .ok()
                .flatten()
        };
        if let Some(history) = history {
            while logged < history.len() {
                let bytes = history.statements()[logged].clone();
                let digest = cairn_spec::Hash::of_leaf(&bytes).to_hex();
                let entry = IdempotencyKey::new(STATEMENT_PRODUCER, digest)
                    .map(|key| NewEntry::new(bytes, Some(key)));
                let result = match entry {
                    Ok(entry) => sequencer.add(entry).await.map_err(|e| e.to_string()),
                    Err(error) => Err(error.to_string()),
                };
                match result {
                    Ok(sequenced) => {
                        tracing::info!(
                            statement = logged,
                            index = sequenced.index,
                            "logged a key history statement"
                        );
                        logged += 1;
                    }
                    Err(error) => {
                        tracing::warn!(statement = logged, %error, "a key history statement is not logged yet; retrying");
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(WATCH_INTERVAL) => {}
            _ = stopped.wait_for(|stop| *stop) => return,
        }
    }
}

/// The path of a key history directory's files, for the commands and tests.
pub fn history_file(dir: &Path) -> PathBuf {
    dir.join(files::HISTORY_FILE)
}
