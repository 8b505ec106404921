//! The log's witness policy: the `[[witnesses]]` entries of `log.toml`, each a witness asked to
//! cosign, with every cosignature key it may sign with. Across a witness's key rotation
//! (`cairn-witness rotate-key`) an entry lists both its old and its new vkey:
//!
//! ```toml
//! [[witnesses]]
//! name = "witness.example"
//! url = "https://witness.example"
//! vkeys = ["witness.example+abcd1234+AQ...", "witness.example+5e6f7a8b+BK..."]
//! ```
//!
//! A cosignature by any of an entry's keys counts once, for that witness, toward the quorum:
//! the witness can switch keys while the log runs, and the log keeps publishing. The keys of an
//! entry, once read, are the publisher's [`WitnessKeys`].

use cairn_spec::cosignature::CosignatureVerifier;
use serde::Deserialize;

pub use crate::publisher::{WitnessKeys, MAX_KEYS_PER_WITNESS};

/// A witness to ask for cosignatures, as `log.toml` gives it.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessConfig {
    /// Its name in the log's state and metrics.
    pub name: String,
    /// Its base URL.
    pub url: String,
    /// Its cosignature verifier key (C2SP tlog-cosignature vkey).
    #[serde(default)]
    pub vkey: Option<String>,
    /// More of its cosignature keys (across a rotation: the old and the new one).
    #[serde(default)]
    pub vkeys: Vec<String>,
}

impl WitnessConfig {
    /// The entry's keys, checked: at least one, at most [`MAX_KEYS_PER_WITNESS`], each a
    /// cosignature vkey, no key twice.
    pub fn keys(&self) -> Result<WitnessKeys, String> {
        let mut keys = Vec::new();
        for vkey in self.vkey.iter().chain(&self.vkeys) {
            keys.push(
                CosignatureVerifier::from_vkey(vkey)
                    .map_err(|error| format!("of `{}`: {error}", self.name))?,
            );
        }
        WitnessKeys::new(keys).map_err(|error| format!("of `{}`: {error}", self.name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_spec::checkpoint::Checkpoint;
    use cairn_spec::cosignature::CosignatureSigner;
    use cairn_spec::hash::Hash;
    use cairn_spec::note::KeyName;

    fn signer(seed: u8) -> CosignatureSigner {
        CosignatureSigner::from_seed(KeyName::new("witness.example").expect("a name"), [seed; 32])
    }

    fn entry(vkey: Option<String>, vkeys: Vec<String>) -> WitnessConfig {
        WitnessConfig {
            name: "w".into(),
            url: "http://w".into(),
            vkey,
            vkeys,
        }
    }

    #[test]
    fn a_cosignature_by_any_listed_key_verifies_and_an_unlisted_key_is_refused() {
        let (old, new, other) = (signer(1), signer(2), signer(3));
        let keys = entry(
            None,
            vec![old.verifier().to_vkey(), new.verifier().to_vkey()],
        )
        .keys()
        .expect("two keys");
        let checkpoint = Checkpoint {
            origin: "example.com/log".into(),
            size: 7,
            root: Hash([5; 32]),
            extensions: Vec::new(),
        };
        for key in [&old, &new] {
            let cosignature = key.cosign(&checkpoint, 1_700_000_000).expect("cosigns");
            assert_eq!(
                keys.verify_cosignature(&checkpoint, &cosignature.to_note_signature())
                    .expect("verifies"),
                1_700_000_000
            );
        }
        let stranger = other.cosign(&checkpoint, 1_700_000_000).expect("cosigns");
        assert!(keys
            .verify_cosignature(&checkpoint, &stranger.to_note_signature())
            .is_err());
    }

    #[test]
    fn an_entry_needs_one_to_eight_distinct_keys() {
        let vkey = signer(1).verifier().to_vkey();
        let error = entry(None, Vec::new()).keys().expect_err("no key");
        assert!(error.contains("no vkey"), "{error}");
        let error = entry(Some(vkey.clone()), vec![vkey.clone()])
            .keys()
            .expect_err("a key twice");
        assert!(error.contains("twice"), "{error}");
        let many = (1..=9)
            .map(|seed| signer(seed).verifier().to_vkey())
            .collect();
        let error = entry(None, many).keys().expect_err("too many");
        assert!(error.contains("at most 8"), "{error}");
        let error = entry(Some("not a vkey".into()), Vec::new())
            .keys()
            .expect_err("a bad vkey");
        assert!(error.contains("of `w`"), "{error}");
    }
}
