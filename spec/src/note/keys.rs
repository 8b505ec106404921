//! Keys as they travel, and the Ed25519 note key. A verifier key (vkey) is
//! `<name>+<hex key ID>+base64(type || public key)` and a signer key is the same after
//! `PRIVATE+KEY+` with the 32-byte seed in place of the public key, exactly as Go's
//! `note.NewVerifier`, `note.NewSigner` and `note.GenerateKey` write them. The grammar is shared
//! by every kind of key; the signature type byte says which kind, and each kind refuses the
//! others'.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::Signer as _;
use rand_core::CryptoRngCore;

use super::{
    decode_base64, encode_base64, verify_single, Ed25519Checker, Ed25519Rules, KeyError, KeyId,
    KeyName, Note, NoteSignature, NoteVerifier, ED25519_KEY_SIZE, MAX_KEY_STRING_SIZE,
    PRIVATE_KEY_PREFIX, SIGNATURE_TYPE_ED25519,
};

/// The three `+`-separated parts of a verifier key string, with the key material decoded but not
/// interpreted: what every kind of vkey shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vkey {
    /// The key name.
    pub key_name: KeyName,
    /// The key ID as written in the string (not checked against the key).
    pub key_id: KeyId,
    /// The signature type byte, the first byte of the key material.
    pub signature_type: u8,
    /// The public key, the key material after the type byte.
    pub public_key: Vec<u8>,
}

impl Vkey {
    /// Reads `<name>+<8 lowercase hex digits>+<base64(type || public key)>`.
    pub fn parse(vkey: &str) -> Result<Vkey, KeyError> {
        if vkey.len() > MAX_KEY_STRING_SIZE {
            return Err(KeyError::TooLong {
                length: vkey.len(),
                limit: MAX_KEY_STRING_SIZE,
            });
        }
        let (name, rest) = vkey
            .split_once('+')
            .ok_or(KeyError::MissingPart { part: "key ID" })?;
        let (id, material) = rest.split_once('+').ok_or(KeyError::MissingPart {
            part: "key material",
        })?;
        let key_name = KeyName::new(name)?;
        let key_id = KeyId::from_hex(id)?;
        let material = decode_base64(material).map_err(|reason| KeyError::Base64 { reason })?;
        let (&signature_type, public_key) =
            material.split_first().ok_or(KeyError::EmptyKeyMaterial)?;
        Ok(Vkey {
            key_name,
            key_id,
            signature_type,
            public_key: public_key.to_vec(),
        })
    }

    /// Checks that the written key ID is the recommended one for this name, type and key.
    pub fn check_key_id(&self) -> Result<(), KeyError> {
        let computed = KeyId::compute(&self.key_name, self.signature_type, &self.public_key);
        if computed != self.key_id {
            return Err(KeyError::KeyIdMismatch {
                stated: self.key_id,
                computed,
            });
        }
        Ok(())
    }

    /// Checks the type byte and reads a 32-byte Ed25519 public key.
    pub(crate) fn ed25519_public_key(
        &self,
        expected_type: u8,
    ) -> Result<ed25519_dalek::VerifyingKey, KeyError> {
        if self.signature_type != expected_type {
            return Err(KeyError::UnsupportedSignatureType {
                found: self.signature_type,
                expected: expected_type,
            });
        }
        let bytes: [u8; ED25519_KEY_SIZE] =
            self.public_key
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::WrongKeyLength {
                    expected: ED25519_KEY_SIZE,
                    found: self.public_key.len(),
                })?;
        self.check_key_id()?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| KeyError::InvalidPublicKey)
    }
}

/// Writes `<name>+<hex key ID>+base64(type || key)`.
pub(crate) fn format_vkey(
    key_name: &KeyName,
    key_id: KeyId,
    signature_type: u8,
    key: &[u8],
) -> String {
    let mut material = Vec::with_capacity(1 + key.len());
    material.push(signature_type);
    material.extend_from_slice(key);
    format!("{key_name}+{key_id}+{}", encode_base64(&material))
}

/// The parts of a signer key string `PRIVATE+KEY+<name>+<hex ID>+base64(type || seed)`, with
/// the stated ID not yet checked (it is the ID of the public key, which must be derived first).
pub(crate) struct SkeyParts {
    pub(crate) key_name: KeyName,
    pub(crate) key_id: KeyId,
    pub(crate) signature_type: u8,
    pub(crate) seed: [u8; ED25519_KEY_SIZE],
}

/// Reads an Ed25519-seed signer key string.
pub(crate) fn parse_ed25519_skey(skey: &str) -> Result<SkeyParts, KeyError> {
    if skey.len() > MAX_KEY_STRING_SIZE {
        return Err(KeyError::TooLong {
            length: skey.len(),
            limit: MAX_KEY_STRING_SIZE,
        });
    }
    let rest = skey
        .strip_prefix(PRIVATE_KEY_PREFIX)
        .ok_or(KeyError::NotPrivateKey)?;
    // The public and private forms share their grammar after the prefix.
    let parts = Vkey::parse(rest)?;
    let seed: [u8; ED25519_KEY_SIZE] =
        parts
            .public_key
            .as_slice()
            .try_into()
            .map_err(|_| KeyError::WrongKeyLength {
                expected: ED25519_KEY_SIZE,
                found: parts.public_key.len(),
            })?;
    Ok(SkeyParts {
        key_name: parts.key_name,
        key_id: parts.key_id,
        signature_type: parts.signature_type,
        seed,
    })
}

/// Writes `PRIVATE+KEY+<name>+<hex key ID>+base64(type || seed)`.
pub(crate) fn format_skey(
    key_name: &KeyName,
    key_id: KeyId,
    signature_type: u8,
    seed: &[u8; ED25519_KEY_SIZE],
) -> String {
    format!(
        "{PRIVATE_KEY_PREFIX}{}",
        format_vkey(key_name, key_id, signature_type, seed)
    )
}

/// Fills a 32-byte seed from a caller-supplied random source.
pub(crate) fn random_seed<R: CryptoRngCore + ?Sized>(
    rng: &mut R,
) -> Result<[u8; ED25519_KEY_SIZE], KeyError> {
    let mut seed = [0u8; ED25519_KEY_SIZE];
    rng.try_fill_bytes(&mut seed)
        .map_err(|error| KeyError::Random(error.to_string()))?;
    Ok(seed)
}

/// Checks an Ed25519 signature the way Go's `crypto/ed25519.Verify` does (RFC 8032,
/// cofactorless, canonical S).
pub(crate) fn verify_ed25519(
    public_key: &ed25519_dalek::VerifyingKey,
    message: &[u8],
    signature: &[u8],
) -> bool {
    verify_single(public_key, message, signature, Ed25519Rules::Cofactorless)
}

/// The public half of an Ed25519 note key: verifies plain Ed25519 note signatures (type 0x01).
#[derive(Clone, PartialEq, Eq)]
pub struct Ed25519Verifier {
    key_name: KeyName,
    key_id: KeyId,
    public_key: ed25519_dalek::VerifyingKey,
}

impl Ed25519Verifier {
    /// The verifier for `public_key` under `key_name`, with the recommended key ID.
    pub fn new(key_name: KeyName, public_key: ed25519_dalek::VerifyingKey) -> Ed25519Verifier {
        let key_id = KeyId::compute(&key_name, SIGNATURE_TYPE_ED25519, public_key.as_bytes());
        Ed25519Verifier {
            key_name,
            key_id,
            public_key,
        }
    }

    /// Reads a vkey `<name>+<hex ID>+base64(0x01 || 32-byte public key)`, checking the ID.
    pub fn from_vkey(vkey: &str) -> Result<Ed25519Verifier, KeyError> {
        let parts = Vkey::parse(vkey)?;
        let public_key = parts.ed25519_public_key(SIGNATURE_TYPE_ED25519)?;
        Ok(Ed25519Verifier {
            key_name: parts.key_name,
            key_id: parts.key_id,
            public_key,
        })
    }

    /// The vkey string, as Go's `note.NewEd25519VerifierKey` writes it.
    pub fn to_vkey(&self) -> String {
        format_vkey(
            &self.key_name,
            self.key_id,
            SIGNATURE_TYPE_ED25519,
            self.public_key.as_bytes(),
        )
    }

    /// The Ed25519 public key.
    pub fn public_key(&self) -> &ed25519_dalek::VerifyingKey {
        &self.public_key
    }

    /// Name of the key.
    pub fn key_name(&self) -> &KeyName {
        &self.key_name
    }

    /// ID of the key.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }
}

impl NoteVerifier for Ed25519Verifier {
    fn key_name(&self) -> &KeyName {
        &self.key_name
    }
    fn key_id(&self) -> KeyId {
        self.key_id
    }
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        verify_ed25519(&self.public_key, text, signature)
    }
    fn verify_with(&self, text: &[u8], signature: &[u8], checker: &mut dyn Ed25519Checker) -> bool {
        checker.check(
            &self.public_key,
            text,
            signature,
            Ed25519Rules::Cofactorless,
        )
    }
}

impl fmt::Display for Ed25519Verifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_vkey())
    }
}

impl fmt::Debug for Ed25519Verifier {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "Ed25519Verifier({})", self.to_vkey())
    }
}

impl FromStr for Ed25519Verifier {
    type Err = KeyError;
    fn from_str(vkey: &str) -> Result<Ed25519Verifier, KeyError> {
        Ed25519Verifier::from_vkey(vkey)
    }
}

/// The private half of an Ed25519 note key: signs notes with plain Ed25519 (type 0x01).
///
/// Its `Debug` form shows the name and ID, never the seed.
#[derive(Clone)]
pub struct Ed25519Signer {
    key_name: KeyName,
    key_id: KeyId,
    signing_key: ed25519_dalek::SigningKey,
}

impl Ed25519Signer {
    /// The signer whose Ed25519 private key is `seed` (RFC 8032's 32-byte secret key).
    pub fn from_seed(key_name: KeyName, seed: [u8; ED25519_KEY_SIZE]) -> Ed25519Signer {
        let signing_key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let key_id = KeyId::compute(
            &key_name,
            SIGNATURE_TYPE_ED25519,
            signing_key.verifying_key().as_bytes(),
        );
        Ed25519Signer {
            key_name,
            key_id,
            signing_key,
        }
    }

    /// A new key pair from a caller-supplied cryptographic random source (Go's
    /// `note.GenerateKey`).
    pub fn generate<R: CryptoRngCore + ?Sized>(
        key_name: KeyName,
        rng: &mut R,
    ) -> Result<Ed25519Signer, KeyError> {
        Ok(Ed25519Signer::from_seed(key_name, random_seed(rng)?))
    }

    /// Reads `PRIVATE+KEY+<name>+<hex ID>+base64(0x01 || 32-byte seed)`, checking that the ID is
    /// the one of the derived public key.
    pub fn from_skey(skey: &str) -> Result<Ed25519Signer, KeyError> {
        let parts = parse_ed25519_skey(skey)?;
        if parts.signature_type != SIGNATURE_TYPE_ED25519 {
            return Err(KeyError::UnsupportedSignatureType {
                found: parts.signature_type,
                expected: SIGNATURE_TYPE_ED25519,
            });
        }
        let signer = Ed25519Signer::from_seed(parts.key_name, parts.seed);
        if signer.key_id != parts.key_id {
            return Err(KeyError::KeyIdMismatch {
                stated: parts.key_id,
                computed: signer.key_id,
            });
        }
        Ok(signer)
    }

    /// The signer key string. It holds the private key: keep it secret.
    pub fn to_skey(&self) -> String {
        format_skey(
            &self.key_name,
            self.key_id,
            SIGNATURE_TYPE_ED25519,
            self.signing_key.as_bytes(),
        )
    }

    /// The matching verifier.
    pub fn verifier(&self) -> Ed25519Verifier {
        Ed25519Verifier {
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            public_key: self.signing_key.verifying_key(),
        }
    }

    /// Name of the key.
    pub fn key_name(&self) -> &KeyName {
        &self.key_name
    }

    /// ID of the key.
    pub fn key_id(&self) -> KeyId {
        self.key_id
    }

    /// This key's signature of the note's text.
    pub fn sign(&self, note: &Note) -> NoteSignature {
        NoteSignature {
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            signature: self
                .signing_key
                .sign(note.text().as_bytes())
                .to_bytes()
                .to_vec(),
        }
    }
}

impl fmt::Debug for Ed25519Signer {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "Ed25519Signer({}+{}, private key elided)",
            self.key_name, self.key_id
        )
    }
}
