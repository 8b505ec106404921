//! Where Cairn's signing keys live, and the one signer the log and the witness sign with.
//!
//! A note key (the log's checkpoint key, a witness's cosignature key) is an Ed25519 private key
//! held either
//! - in a **key file**: a signed-note private key string (`PRIVATE+KEY+…`), mode 0600, as
//!   `cairn-log keygen` and `cairn-witness keygen` write it, read (and its mode checked) by
//!   the server's own configuration and handed over with [`NoteSigner::from_key`]; or
//! - in a **PKCS#11 token** (an HSM, or SoftHSM2 for tests): found by its label in a token
//!   chosen by label or slot, used through `CKM_EDDSA`, never leaving the token
//!   ([`pkcs11`]).
//!
//! A timestamp authority's key may also live in a token: an ECDSA P-256 key
//! ([`Pkcs11EcdsaKey`], `CKM_ECDSA`), which `cairn_spec::timestamp::TsaSigner` signs tokens
//! with.
//!
//! [`NoteSigner`] puts a name on either and signs what its kind signs: a checkpoint note's text
//! ([`NoteSigner::sign`]) or a cosignature ([`NoteSigner::cosign`]). Verification stays in
//! `cairn-spec` and needs only the public key ([`NoteSigner::verifier`]).
//!
//! Signing a file key costs microseconds; a token's signature is a call into its module that
//! may block for milliseconds or fail (a token removed, a session lost, a PIN changed). Every
//! signing call here is synchronous and may block: async callers make it off the runtime's
//! workers (`spawn_blocking` or a thread of their own), and handle its error as "publication
//! waits", never as a reason to stop sequencing.

mod config;
pub mod pkcs11;
mod signer;
#[cfg(feature = "test-token")]
pub mod test_token;

pub use config::Pkcs11Config;
pub use pkcs11::ecdsa::Pkcs11EcdsaKey;
pub use pkcs11::{Pin, Pkcs11Error, Pkcs11Key, Pkcs11Settings, TokenChoice};
pub use signer::{KeyError, NoteSigner};
