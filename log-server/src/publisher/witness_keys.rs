//! The cosignature keys of one witness ([`WitnessKeys`]): every key it may sign with, across a
//! rotation of its key (`[[witnesses]]` in `log.toml`, read by `crate::config`), each of its
//! cosignatures counting once toward the quorum whichever key made it.

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::{CosignatureError, CosignatureVerifier};
use cairn_spec::note::NoteSignature;

/// The most cosignature keys one witness entry may list (a rotation needs two).
pub const MAX_KEYS_PER_WITNESS: usize = 8;

/// The cosignature keys of one witness. A cosignature is checked with the key its name and key
/// ID name; whichever key made it, it is the witness's one cosignature.
#[derive(Clone, Debug)]
pub struct WitnessKeys {
    keys: Vec<CosignatureVerifier>,
}

impl WitnessKeys {
    /// The keys, checked: one to [`MAX_KEYS_PER_WITNESS`], no key ID twice.
    pub fn new(keys: Vec<CosignatureVerifier>) -> Result<WitnessKeys, String> {
        if keys.is_empty() {
            return Err("no vkey: give `vkey` or `vkeys`".into());
        }
        if keys.len() > MAX_KEYS_PER_WITNESS {
            return Err(format!(
                "{} keys, at most {MAX_KEYS_PER_WITNESS}",
                keys.len()
            ));
        }
        for (index, key) in keys.iter().enumerate() {
            if keys[..index]
                .iter()
                .any(|other| other.key_name() == key.key_name() && other.key_id() == key.key_id())
            {
                return Err(format!("{} is listed twice", key.to_vkey()));
            }
        }
        Ok(WitnessKeys { keys })
    }

    /// The keys, in the order given.
    pub fn keys(&self) -> &[CosignatureVerifier] {
        &self.keys
    }

    /// Verifies that `signature` is this witness's cosignature of `checkpoint`, by whichever of
    /// its keys made it; its timestamp.
    pub fn verify_cosignature(
        &self,
        checkpoint: &Checkpoint,
        signature: &NoteSignature,
    ) -> Result<u64, CosignatureError> {
        let named = self
            .keys
            .iter()
            .find(|key| signature.key_name.eq(key.key_name()) && signature.key_id == key.key_id());
        // No key of that name and ID: the first key's answer says which was expected.
        named
            .unwrap_or(&self.keys[0])
            .verify_cosignature(checkpoint, signature)
    }
}

impl From<CosignatureVerifier> for WitnessKeys {
    fn from(key: CosignatureVerifier) -> WitnessKeys {
        WitnessKeys { keys: vec![key] }
    }
}
