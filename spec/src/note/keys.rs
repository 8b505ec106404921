//! Ed25519 keys in signed notes, and keys as they travel.
//!
//! A verifier key (vkey) is `<name>+<hex key ID>+base64(type || public key)` and a signer key is
//! the same after `PRIVATE+KEY+` with the 32-byte seed in place of the public key, exactly as
//! Go's `note.NewVerifier`, `note.NewSigner` and `note.GenerateKey` write them.
//!
//! Cairn has two kinds of Ed25519 key, and one type for both: a log's note key signs the note
//! text with plain Ed25519 (signature type 0x01), a witness's cosigner key signs a timestamped
//! message about a checkpoint (`cosignature/v1`, type 0x04, [`crate::cosignature`]). Everything
//! but what a signature signs is the same: a name, a key ID derived from name, type and key, the
//! key strings, the checks. So [`VerifierKey`] and [`SignerKey`] hold that once, and their kind
//! ([`Ed25519Kind`]: [`PlainEd25519`] or [`crate::cosignature::CosignatureV1`]) is a type
//! parameter: the signature type byte and the signed message come from it, and the compiler
//! keeps a witness's key from being taken for a log's. [`Ed25519Verifier`], [`Ed25519Signer`],
//! [`crate::cosignature::CosignatureVerifier`] and [`crate::cosignature::CosignatureSigner`] are
//! the four names they go by.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::str::FromStr;

use ed25519_dalek::Signer as _;
use rand_core::CryptoRngCore;

use super::{
    decode_base64, encode_base64, Ed25519Checker, Ed25519Rules, KeyError, KeyId, KeyName, Note,
    NoteSignature, NoteVerifier, SingleEd25519, ED25519_KEY_SIZE, ED25519_SIGNATURE_SIZE,
    MAX_KEY_STRING_SIZE, PRIVATE_KEY_PREFIX, SIGNATURE_TYPE_ED25519,
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
fn format_vkey(key_name: &KeyName, key_id: KeyId, signature_type: u8, key: &[u8]) -> String {
    let mut material = Vec::with_capacity(1 + key.len());
    material.push(signature_type);
    material.extend_from_slice(key);
    format!("{key_name}+{key_id}+{}", encode_base64(&material))
}

/// The parts of a signer key string `PRIVATE+KEY+<name>+<hex ID>+base64(type || seed)`, with
/// the stated ID not yet checked (it is the ID of the public key, which must be derived first).
struct SkeyParts {
    key_name: KeyName,
    key_id: KeyId,
    signature_type: u8,
    seed: [u8; ED25519_KEY_SIZE],
}

/// Reads an Ed25519-seed signer key string.
fn parse_ed25519_skey(skey: &str) -> Result<SkeyParts, KeyError> {
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
fn format_skey(
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
fn random_seed<R: CryptoRngCore + ?Sized>(rng: &mut R) -> Result<[u8; ED25519_KEY_SIZE], KeyError> {
    let mut seed = [0u8; ED25519_KEY_SIZE];
    rng.try_fill_bytes(&mut seed)
        .map_err(|error| KeyError::Random(error.to_string()))?;
    Ok(seed)
}

/// A kind of Ed25519 key in signed notes: the signature type byte that its key strings and key
/// ID carry, and what its signatures sign.
pub trait Ed25519Kind {
    /// The signature type byte of this kind's vkeys, signer keys and key IDs.
    const SIGNATURE_TYPE: u8;
    /// What `Debug` calls it: `Ed25519` or `Cosignature` (`Ed25519Verifier(…)`).
    const NAME: &'static str;

    /// Whether a signer key string of `signature_type` is one this kind reads. Its key ID is
    /// checked against that type; the key then signs under [`Ed25519Kind::SIGNATURE_TYPE`].
    fn reads_signer_type(signature_type: u8) -> bool {
        signature_type == Self::SIGNATURE_TYPE
    }

    /// The Ed25519 message and signature that `signature` (the bytes after the key ID of a
    /// signature line) stands for over the note text `text`; `None` if the bytes do not have
    /// this kind's form.
    fn signed_parts<'a>(text: &'a [u8], signature: &'a [u8]) -> Option<(Cow<'a, [u8]>, &'a [u8])>;
}

/// Plain Ed25519 over the note text, signature type 0x01: a log's checkpoint key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainEd25519;

impl Ed25519Kind for PlainEd25519 {
    const SIGNATURE_TYPE: u8 = SIGNATURE_TYPE_ED25519;
    const NAME: &'static str = "Ed25519";

    fn signed_parts<'a>(text: &'a [u8], signature: &'a [u8]) -> Option<(Cow<'a, [u8]>, &'a [u8])> {
        Some((Cow::Borrowed(text), signature))
    }
}

/// The public half of an Ed25519 note key of kind `K`: verifies its signatures.
pub struct VerifierKey<K: Ed25519Kind> {
    key_name: KeyName,
    key_id: KeyId,
    public_key: ed25519_dalek::VerifyingKey,
    kind: PhantomData<K>,
}

/// The public half of a plain Ed25519 note key (type 0x01): a log's checkpoint key.
pub type Ed25519Verifier = VerifierKey<PlainEd25519>;

/// The private half of a plain Ed25519 note key (type 0x01).
pub type Ed25519Signer = SignerKey<PlainEd25519>;

impl<K: Ed25519Kind> VerifierKey<K> {
    /// The verifier for `public_key` under `key_name`, with the recommended key ID.
    pub fn new(key_name: KeyName, public_key: ed25519_dalek::VerifyingKey) -> VerifierKey<K> {
        let key_id = KeyId::compute(&key_name, K::SIGNATURE_TYPE, public_key.as_bytes());
        VerifierKey {
            key_name,
            key_id,
            public_key,
            kind: PhantomData,
        }
    }

    /// Reads a vkey `<name>+<hex ID>+base64(type || 32-byte public key)` of this kind's type,
    /// checking the ID.
    pub fn from_vkey(vkey: &str) -> Result<VerifierKey<K>, KeyError> {
        let parts = Vkey::parse(vkey)?;
        let public_key = parts.ed25519_public_key(K::SIGNATURE_TYPE)?;
        Ok(VerifierKey {
            key_name: parts.key_name,
            key_id: parts.key_id,
            public_key,
            kind: PhantomData,
        })
    }

    /// The vkey string, as Go's `note.NewEd25519VerifierKey` writes it (with this kind's type).
    pub fn to_vkey(&self) -> String {
        format_vkey(
            &self.key_name,
            self.key_id,
            K::SIGNATURE_TYPE,
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

/// A note verifier: checks this kind's signatures over the note text, so that a checkpoint note
/// with its log signature and cosignatures is verified in one [`Note::verify`] call.
impl<K: Ed25519Kind> NoteVerifier for VerifierKey<K> {
    fn key_name(&self) -> &KeyName {
        &self.key_name
    }
    fn key_id(&self) -> KeyId {
        self.key_id
    }
    fn verify(&self, text: &[u8], signature: &[u8]) -> bool {
        self.verify_with(text, signature, &mut SingleEd25519)
    }
    fn verify_with(&self, text: &[u8], signature: &[u8], checker: &mut dyn Ed25519Checker) -> bool {
        let Some((message, ed25519)) = K::signed_parts(text, signature) else {
            return false;
        };
        checker.check(
            &self.public_key,
            &message,
            ed25519,
            Ed25519Rules::Cofactorless,
        )
    }
}

impl<K: Ed25519Kind> Clone for VerifierKey<K> {
    fn clone(&self) -> VerifierKey<K> {
        VerifierKey {
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            public_key: self.public_key,
            kind: PhantomData,
        }
    }
}

impl<K: Ed25519Kind> PartialEq for VerifierKey<K> {
    fn eq(&self, other: &VerifierKey<K>) -> bool {
        self.key_name == other.key_name
            && self.key_id == other.key_id
            && self.public_key == other.public_key
    }
}

impl<K: Ed25519Kind> Eq for VerifierKey<K> {}

impl<K: Ed25519Kind> fmt::Display for VerifierKey<K> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(&self.to_vkey())
    }
}

impl<K: Ed25519Kind> fmt::Debug for VerifierKey<K> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}Verifier({})", K::NAME, self.to_vkey())
    }
}

impl<K: Ed25519Kind> FromStr for VerifierKey<K> {
    type Err = KeyError;
    fn from_str(vkey: &str) -> Result<VerifierKey<K>, KeyError> {
        VerifierKey::from_vkey(vkey)
    }
}

/// The private half of an Ed25519 note key of kind `K`. What it signs is its kind's: see
/// [`Ed25519Signer::sign`] and [`crate::cosignature::CosignatureSigner::cosign`].
///
/// Its `Debug` form shows the name and ID, never the seed.
pub struct SignerKey<K: Ed25519Kind> {
    key_name: KeyName,
    key_id: KeyId,
    signing_key: ed25519_dalek::SigningKey,
    kind: PhantomData<K>,
}

impl<K: Ed25519Kind> SignerKey<K> {
    /// The signer whose Ed25519 private key is `seed` (RFC 8032's 32-byte secret key).
    pub fn from_seed(key_name: KeyName, seed: [u8; ED25519_KEY_SIZE]) -> SignerKey<K> {
        let signing_key = ed25519_dalek::SigningKey::from_bytes(&seed);
        let key_id = KeyId::compute(
            &key_name,
            K::SIGNATURE_TYPE,
            signing_key.verifying_key().as_bytes(),
        );
        SignerKey {
            key_name,
            key_id,
            signing_key,
            kind: PhantomData,
        }
    }

    /// A new key pair from a caller-supplied cryptographic random source (Go's
    /// `note.GenerateKey`).
    pub fn generate<R: CryptoRngCore + ?Sized>(
        key_name: KeyName,
        rng: &mut R,
    ) -> Result<SignerKey<K>, KeyError> {
        Ok(SignerKey::from_seed(key_name, random_seed(rng)?))
    }

    /// Reads `PRIVATE+KEY+<name>+<hex ID>+base64(type || 32-byte seed)` of a type this kind
    /// reads ([`Ed25519Kind::reads_signer_type`]), checking that the ID is the one of the
    /// derived public key under that type.
    pub fn from_skey(skey: &str) -> Result<SignerKey<K>, KeyError> {
        let parts = parse_ed25519_skey(skey)?;
        if !K::reads_signer_type(parts.signature_type) {
            return Err(KeyError::UnsupportedSignatureType {
                found: parts.signature_type,
                expected: K::SIGNATURE_TYPE,
            });
        }
        let signer = SignerKey::<K>::from_seed(parts.key_name, parts.seed);
        let computed = KeyId::compute(
            &signer.key_name,
            parts.signature_type,
            signer.signing_key.verifying_key().as_bytes(),
        );
        if computed != parts.key_id {
            return Err(KeyError::KeyIdMismatch {
                stated: parts.key_id,
                computed,
            });
        }
        Ok(signer)
    }

    /// The signer key string, with this kind's type. It holds the private key: keep it secret.
    pub fn to_skey(&self) -> String {
        format_skey(
            &self.key_name,
            self.key_id,
            K::SIGNATURE_TYPE,
            self.signing_key.as_bytes(),
        )
    }

    /// The matching verifier.
    pub fn verifier(&self) -> VerifierKey<K> {
        VerifierKey {
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            public_key: self.signing_key.verifying_key(),
            kind: PhantomData,
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

    /// The Ed25519 signature of `message`, for this kind's signing methods and for a signer
    /// that assembles them itself (a key that may also live in hardware). Sign only what this
    /// kind signs: a note's text, or a cosignature's signed message.
    pub fn sign_bytes(&self, message: &[u8]) -> [u8; ED25519_SIGNATURE_SIZE] {
        self.signing_key.sign(message).to_bytes()
    }
}

impl SignerKey<PlainEd25519> {
    /// This key's signature of the note's text.
    pub fn sign(&self, note: &Note) -> NoteSignature {
        NoteSignature {
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            signature: self.sign_bytes(note.text().as_bytes()).to_vec(),
        }
    }
}

impl<K: Ed25519Kind> Clone for SignerKey<K> {
    fn clone(&self) -> SignerKey<K> {
        SignerKey {
            key_name: self.key_name.clone(),
            key_id: self.key_id,
            signing_key: self.signing_key.clone(),
            kind: PhantomData,
        }
    }
}

impl<K: Ed25519Kind> fmt::Debug for SignerKey<K> {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            formatter,
            "{}Signer({}+{}, private key elided)",
            K::NAME,
            self.key_name,
            self.key_id
        )
    }
}
