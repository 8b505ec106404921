//! `cairn-log rotate-key`, `retire-key` and `revoke-key`: each writes one statement, signed by
//! the keys its rules need (spec/docs/key-history.md), into the configured key history
//! directory. The statement is verified against the history before anything is written; a
//! running log reads the new history within a second and logs the statement as a leaf.
//!
//! The history's files are [`crate::key_history`]'s; the keys and the configuration these
//! commands read are [`crate::config`]'s, so the commands sit above both.

use std::path::PathBuf;
use std::sync::Arc;

use cairn_keys::NoteSigner;
use cairn_spec::key_history::{Action, KeyHistory};
use cairn_spec::note::{Ed25519Signer, Note, PlainEd25519, Vkey};

use crate::config::{open_token_key, read_key_file, Settings, KEY_READERS};
use crate::key_history::HistoryDir;

/// What to do to the history.
#[derive(Debug, Clone)]
pub enum HistoryCommand {
    /// Introduce a new key from a tree size.
    Rotate {
        /// Where the new key comes from.
        new_key: NewKey,
        /// The smallest tree size it signs.
        from: u64,
    },
    /// Retire a key after a tree size.
    Retire {
        /// The key.
        vkey: String,
        /// The largest tree size it signs.
        last: u64,
    },
    /// Revoke a key from a tree size.
    Revoke {
        /// The key.
        vkey: String,
        /// The first tree size whose signature by it is a compromise.
        from: u64,
    },
}

/// The new key of a rotation.
#[derive(Debug, Clone)]
pub enum NewKey {
    /// Made now, stored in the directory (mode 0600).
    Generate,
    /// Read from this key file, and a copy stored in the directory (mode 0600).
    File(PathBuf),
    /// The key in the token that this configuration file's `[pkcs11]` table names (made before
    /// with `keygen --pkcs11`); the directory records the file's path.
    Token(PathBuf),
}

/// Runs `command` against the history of the log configured by `settings`; returns what to
/// print (the statement, and for a rotation the new vkey).
pub fn run(settings: &Settings, command: HistoryCommand) -> Result<String, String> {
    let dir_path = settings
        .key_history_dir
        .clone()
        .ok_or("the configuration has no key_history_dir")?;
    let primary = settings.resolve_primary().map_err(|e| e.to_string())?;
    let dir = HistoryDir::new(dir_path, primary.key_name().clone(), KEY_READERS);
    let history = dir
        .verified(&primary.verifier())
        .map_err(|e| e.to_string())?;
    // The first key of a verified history is the pinned one.
    let pinned = history
        .keys()
        .first()
        .map(|key| key.vkey.clone())
        .ok_or("the key history has no key")?;
    let held = held_current_keys(&dir, &history, primary)?;
    match command {
        HistoryCommand::Rotate { new_key, from } => {
            let (new, store): (NoteSigner<PlainEd25519>, Store) = match new_key {
                NewKey::Generate => {
                    let key =
                        Ed25519Signer::generate(history.subject().clone(), &mut rand::rngs::OsRng)
                            .map_err(|e| e.to_string())?;
                    let skey = key.to_skey();
                    (NoteSigner::from_key(key), Store::KeyFile(skey))
                }
                NewKey::File(path) => {
                    let key = read_key_file(&path).map_err(|e| e.to_string())?;
                    let skey = key.to_skey();
                    (NoteSigner::from_key(key), Store::KeyFile(skey))
                }
                NewKey::Token(config) => {
                    let key = open_token_key(&config)?;
                    let signer = NoteSigner::from_token(history.subject().clone(), Arc::new(key));
                    (signer, Store::Token(config))
                }
            };
            let endorser = held
                .first()
                .ok_or("the directory holds no current key to endorse the new one")?;
            let new_vkey = new.verifier().to_vkey();
            let action = Action::Introduce {
                vkey: new_vkey.clone(),
                from,
            };
            let updated = sign_and_check(&history, action, &[endorser, &new])?;
            match store {
                Store::KeyFile(skey) => {
                    dir.store_key_file(new.key_id(), &skey)
                        .map_err(|e| e.to_string())?;
                }
                Store::Token(config) => {
                    dir.store_token_pointer(new.key_id(), &config)
                        .map_err(|e| e.to_string())?;
                }
            }
            finish(&dir, &pinned, &updated, Some(&new_vkey))
        }
        HistoryCommand::Retire { vkey, last } => {
            let signer = held
                .first()
                .ok_or("the directory holds no current key to sign with")?;
            let updated = sign_and_check(&history, Action::Retire { vkey, last }, &[signer])?;
            finish(&dir, &pinned, &updated, None)
        }
        HistoryCommand::Revoke { vkey, from } => {
            let target = Vkey::parse(&vkey).map_err(|e| format!("--vkey: {e}"))?;
            let signer = held
                .iter()
                .find(|signer| {
                    signer.verifier().public_key().as_bytes()[..] != target.public_key[..]
                })
                .ok_or("the directory holds no current key other than the revoked one")?;
            let updated = sign_and_check(&history, Action::Revoke { vkey, from }, &[signer])?;
            finish(&dir, &pinned, &updated, None)
        }
    }
}

enum Store {
    KeyFile(String),
    Token(PathBuf),
}

/// The held keys that are current in the history, newest first: the configured key and the
/// keys the directory holds.
fn held_current_keys(
    dir: &HistoryDir,
    history: &KeyHistory,
    primary: NoteSigner<PlainEd25519>,
) -> Result<Vec<NoteSigner<PlainEd25519>>, String> {
    let mut held = Vec::new();
    let mut primary = Some(primary);
    for key in history.keys().iter().rev() {
        if !key.is_current() {
            continue;
        }
        if primary.as_ref().is_some_and(|p| p.key_id() == key.key_id) {
            held.extend(primary.take());
        } else if let Some(signer) = dir.held_key(key.key_id).map_err(|e| e.to_string())? {
            held.push(signer);
        }
    }
    Ok(held)
}

/// The statement doing `action`, signed by `signers`, appended to a copy of `history` (which
/// verifies it).
fn sign_and_check(
    history: &KeyHistory,
    action: Action,
    signers: &[&NoteSigner<PlainEd25519>],
) -> Result<KeyHistory, String> {
    let mut note: Note = history
        .next_statement(action)
        .to_note()
        .map_err(|e| e.to_string())?;
    for signer in signers {
        let signature = signer.sign(&note).map_err(|e| e.to_string())?;
        note.add_signature(signature).map_err(|e| e.to_string())?;
    }
    let mut updated = history.clone();
    updated
        .append(&note.to_bytes().map_err(|e| e.to_string())?)
        .map_err(|e| format!("the statement is refused: {e}"))?;
    Ok(updated)
}

fn finish(
    dir: &HistoryDir,
    pinned: &str,
    updated: &KeyHistory,
    new_vkey: Option<&str>,
) -> Result<String, String> {
    dir.pin(pinned).map_err(|e| e.to_string())?;
    dir.replace_history(updated).map_err(|e| e.to_string())?;
    let statement = updated
        .statements()
        .last()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
        .unwrap_or_default();
    let mut report = String::new();
    if let Some(vkey) = new_vkey {
        report.push_str(&format!("new key: {vkey}\n"));
    }
    report.push_str(&format!(
        "statement {} written to {}:\n{statement}",
        updated.len() - 1,
        dir.path().display()
    ));
    let summary: Vec<String> = updated
        .keys()
        .iter()
        .map(|key| {
            let state = match (key.last, key.revoked_from) {
                (_, Some(from)) => format!("revoked from size {from}"),
                (Some(last), None) => format!("signs sizes {} to {last}", key.from),
                (None, None) => format!("signs sizes from {}", key.from),
            };
            format!("{} {state}", key.vkey)
        })
        .collect();
    report.push_str(&format!("keys:\n{}\n", summary.join("\n")));
    Ok(report)
}
