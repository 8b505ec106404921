//! `cairn-witness rotate-key`: the witness's key history (spec/docs/key-history.md), the same
//! format as a log's, with cosignature keys. A directory holds `pinned.vkey` (the witness's first
//! key, the one policies name on its `witness` line) and `history` (the statements, replaced
//! atomically). A rotation makes a new key file (mode 0600), and writes the statement
//! introducing it, signed by the current key and the new one; policies then list the new key on
//! a `witness-key` line beside the old one, so receipts cosigned by either verify.

use std::io::{Read as _, Write as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use cairn_keys::NoteSigner;
use cairn_spec::cosignature::{CosignatureSigner, CosignatureV1};
use cairn_spec::key_history::{statement_signature, Action, KeyHistory, MAX_HISTORY_BYTES};

use crate::keys::write_key_file;

const HISTORY_FILE: &str = "history";
const PINNED_FILE: &str = "pinned.vkey";

/// What a rotation did: the new key's vkey, and the policy line that adds it.
#[derive(Debug, Clone)]
pub struct Rotated {
    /// The new key's vkey.
    pub vkey: String,
    /// The statement written, as text.
    pub statement: String,
}

/// Reads the witness's verified key history from `dir`; before the first rotation, the history
/// of `current` alone.
pub fn read_history(dir: &Path, current: &str) -> anyhow::Result<KeyHistory> {
    let pinned = match read_bounded(&dir.join(PINNED_FILE), 8192) {
        Ok(bytes) => String::from_utf8(bytes)
            .context("pinned.vkey is not UTF-8")?
            .trim()
            .to_owned(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => current.to_owned(),
        Err(error) => return Err(error).context(format!("reading {}", dir.display())),
    };
    let bytes = match read_bounded(&dir.join(HISTORY_FILE), MAX_HISTORY_BYTES as u64) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(error) => return Err(error).context(format!("reading {}", dir.display())),
    };
    KeyHistory::verify(&pinned, &bytes).context("the witness's key history does not verify")
}

/// Introduces a new cosignature key, written to `new_key_file`, valid from tree size `from`,
/// endorsed by `current` (which must be a current key of the history in `dir`).
pub fn rotate(
    dir: &Path,
    current: &NoteSigner<CosignatureV1>,
    new_key_file: &Path,
    from: u64,
) -> anyhow::Result<Rotated> {
    let history = read_history(dir, &current.verifier().to_vkey())?;
    let held = history
        .key(current.key_name(), current.key_id())
        .context("the witness's key is not in its key history")?;
    if !held.is_current() {
        bail!("the witness's key {} is retired or revoked", held.vkey);
    }
    let pinned = history
        .keys()
        .first()
        .map(|key| key.vkey.clone())
        .context("the history has no key")?;
    let new = CosignatureSigner::generate(current.key_name().clone(), &mut rand::rngs::OsRng)
        .context("generating the new witness key")?;
    let vkey = new.verifier().to_vkey();
    let mut note = history
        .next_statement(Action::Introduce {
            vkey: vkey.clone(),
            from,
        })
        .to_note()?;
    let endorsement = current.sign_statement(&note)?;
    note.add_signature(endorsement)?;
    let own = statement_signature(
        new.key_name(),
        new.verifier().public_key(),
        new.sign_bytes(note.text().as_bytes()),
    );
    note.add_signature(own)?;
    let bytes = note.to_bytes()?;
    let mut updated = history.clone();
    updated
        .append(&bytes)
        .context("the new statement is refused")?;
    // The key first: a history never names a key whose file was not written.
    write_key_file(new_key_file, &new.to_skey())?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let pinned_path = dir.join(PINNED_FILE);
    if !pinned_path.exists() {
        write_new(&pinned_path, format!("{pinned}\n").as_bytes())?;
    }
    replace(dir, &updated.to_bytes())?;
    Ok(Rotated {
        vkey,
        statement: String::from_utf8_lossy(&bytes).into_owned(),
    })
}

/// Replaces the history file atomically: a new file, synced, renamed over the old one.
fn replace(dir: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let temporary: PathBuf = dir.join(format!("{HISTORY_FILE}.new"));
    let _ = std::fs::remove_file(&temporary);
    write_new(&temporary, bytes)?;
    std::fs::rename(&temporary, dir.join(HISTORY_FILE))
        .with_context(|| format!("replacing the history in {}", dir.display()))?;
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}

fn write_new(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limit + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} is larger than {limit} bytes", path.display()),
        ));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_spec::checkpoint::Checkpoint;
    use cairn_spec::cosignature::CosignatureVerifier;
    use cairn_spec::note::KeyName;

    fn witness() -> NoteSigner<CosignatureV1> {
        let name = KeyName::new("witness.example").expect("name");
        NoteSigner::from_key(CosignatureSigner::from_seed(name, [0x21; 32]))
    }

    #[test]
    fn two_rotations_chain_and_each_new_key_cosigns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let history_dir = dir.path().join("history");
        let first = witness();
        let second_file = dir.path().join("second.key");
        let rotated = rotate(&history_dir, &first, &second_file, 0).expect("first rotation");
        let second_key = CosignatureSigner::from_skey(
            &crate::keys::read_key_file(&second_file).expect("0600 key file"),
        )
        .expect("skey");
        assert_eq!(second_key.verifier().to_vkey(), rotated.vkey);
        let second = NoteSigner::from_key(second_key);
        let third_file = dir.path().join("third.key");
        rotate(&history_dir, &second, &third_file, 0)
            .expect("second rotation, endorsed by the second key");
        let history =
            read_history(&history_dir, "unused after the first rotation").expect("verifies");
        assert_eq!(history.keys().len(), 3);
        assert_eq!(history.keys()[0].vkey, first.verifier().to_vkey());
        // The new key's cosignatures verify under the vkey the history holds.
        let verifier = CosignatureVerifier::from_vkey(&history.keys()[1].vkey).expect("vkey");
        let checkpoint = Checkpoint {
            origin: "log.example".into(),
            size: 3,
            root: cairn_spec::Hash([1; 32]),
            extensions: vec![],
        };
        let cosignature = second.cosign(&checkpoint, 1_764_000_000).expect("cosigns");
        assert!(verifier
            .verify_cosignature(&checkpoint, &cosignature.to_note_signature())
            .is_ok());
        // The key file is never overwritten, and nothing is written when it exists.
        let before = std::fs::read(history_dir.join(HISTORY_FILE)).expect("history");
        assert!(rotate(&history_dir, &second, &third_file, 0).is_err());
        assert_eq!(
            std::fs::read(history_dir.join(HISTORY_FILE)).expect("history"),
            before
        );
    }

    #[test]
    fn a_key_outside_the_history_cannot_rotate() {
        let dir = tempfile::tempdir().expect("tempdir");
        let history_dir = dir.path().join("history");
        rotate(&history_dir, &witness(), &dir.path().join("new.key"), 0).expect("rotation");
        let stranger = NoteSigner::from_key(CosignatureSigner::from_seed(
            KeyName::new("witness.example").expect("name"),
            [0x22; 32],
        ));
        assert!(rotate(&history_dir, &stranger, &dir.path().join("other.key"), 0).is_err());
    }

    #[test]
    fn a_cosignature_key_signs_no_text_but_a_statement() {
        let note =
            cairn_spec::note::Note::new("cosignature/v1\ntime 1\nlog.example\n").expect("note");
        assert!(witness().sign_statement(&note).is_err());
    }
}
