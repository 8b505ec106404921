//! ECDSA P-256 keys in a PKCS#11 token, for a timestamp authority (`cairn-witness tsa`):
//! made with `CKM_EC_KEY_PAIR_GEN` on P-256, found by label, and used through `CKM_ECDSA` over
//! the SHA-256 digest of what is signed, the mechanism every HSM offers. The token answers the
//! raw `r || s` (PKCS#11 §2.3.1); the signature is returned as the DER ECDSA-Sig-Value that CMS
//! and X.509 carry (RFC 5480 §2.2), after it was checked against the key's public half.

use std::fmt;

use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectHandle};
use cryptoki::session::Session;
use p256::ecdsa::signature::Verifier as _;
use sha2::{Digest as _, Sha256};

use super::session::KeySession;
use super::{
    call, find_handles, generate_pair, login, open_token, replaced, Pkcs11Error, Pkcs11Settings,
};

/// DER of the object identifier prime256v1 (1.2.840.10045.3.1.7, RFC 5480): `CKA_EC_PARAMS` of
/// a P-256 key.
pub const P256_EC_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// The operation named in signing errors.
const OPERATION: &str = "C_Sign (ECDSA)";

/// An ECDSA P-256 key pair in a PKCS#11 token.
pub struct Pkcs11EcdsaKey {
    key: KeySession,
    public_key: p256::ecdsa::VerifyingKey,
}

impl Pkcs11EcdsaKey {
    /// Opens the P-256 key pair `settings` names: loads the module, finds the token, logs in,
    /// finds the private key and reads the public key.
    pub fn open(settings: &Pkcs11Settings) -> Result<Pkcs11EcdsaKey, Pkcs11Error> {
        let (module, slot, token_label, pin) = open_token(settings)?;
        let session = login(&module, slot, &token_label, &pin, false)?;
        let (private, public_key) = find_p256_pair(&session, &token_label, &settings.key_label)?;
        Ok(Pkcs11EcdsaKey {
            key: KeySession::new(settings, module, slot, token_label, pin, session, private),
            public_key,
        })
    }

    /// Makes a new P-256 key pair in the token under `settings.key_label` (refusing a label
    /// already taken), then opens it.
    pub fn generate(settings: &Pkcs11Settings) -> Result<Pkcs11EcdsaKey, Pkcs11Error> {
        generate_pair(
            settings,
            &Mechanism::EccKeyPairGen,
            &P256_EC_PARAMS,
            "C_GenerateKeyPair (P-256)",
        )?;
        Pkcs11EcdsaKey::open(settings)
    }

    /// The public key.
    pub fn public_key(&self) -> p256::ecdsa::VerifyingKey {
        self.public_key
    }

    /// Where the key is: module, token and label (never the PIN).
    pub fn location(&self) -> String {
        self.key.location()
    }

    /// The ECDSA signature over SHA-256 of `message`, made in the token, as a DER
    /// ECDSA-Sig-Value; checked against the public key. Blocks for the token's call; one
    /// signature at a time per key.
    pub fn sign_sha256(&self, message: &[u8]) -> Result<Vec<u8>, Pkcs11Error> {
        let token = &self.key.token_label;
        let label = &self.key.settings.key_label;
        let refind = |session: &Session| {
            let (private, public_key) = find_p256_pair(session, token, label)?;
            if public_key != self.public_key {
                return Err(replaced(token, label));
            }
            Ok(private)
        };
        let digest = Sha256::digest(message);
        let raw = self
            .key
            .sign(&Mechanism::Ecdsa, OPERATION, &digest, &refind)?;
        let failed = |detail: String| Pkcs11Error::Call {
            token: token.clone(),
            operation: OPERATION,
            detail,
        };
        let signature = p256::ecdsa::Signature::from_slice(&raw).map_err(|_| {
            failed(format!(
                "{} bytes answered, not the 64 of r || s on P-256",
                raw.len()
            ))
        })?;
        self.public_key.verify(message, &signature).map_err(|_| {
            failed("the signature does not verify under the key's public key".into())
        })?;
        Ok(signature.to_der().as_bytes().to_vec())
    }
}

impl fmt::Debug for Pkcs11EcdsaKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.location())
    }
}

impl cairn_spec::timestamp::ExternalP256Key for Pkcs11EcdsaKey {
    fn verifying_key(&self) -> p256::ecdsa::VerifyingKey {
        self.public_key
    }

    fn sign_sha256(&self, message: &[u8]) -> Result<Vec<u8>, String> {
        Pkcs11EcdsaKey::sign_sha256(self, message).map_err(|error| error.to_string())
    }
}

/// The private key labelled `label` and its public key, both P-256.
fn find_p256_pair(
    session: &Session,
    token: &str,
    label: &str,
) -> Result<(ObjectHandle, p256::ecdsa::VerifyingKey), Pkcs11Error> {
    let (private, public) = find_handles(session, token, label)?;
    let no_key = |detail: String| Pkcs11Error::NoKey {
        token: token.to_owned(),
        detail,
    };
    let attributes = session
        .get_attributes(
            public,
            &[
                AttributeType::KeyType,
                AttributeType::EcParams,
                AttributeType::EcPoint,
            ],
        )
        .map_err(|error| call(token, "C_GetAttributeValue", error))?;
    let (mut key_type, mut params, mut point) = (None, None, None);
    for attribute in attributes {
        match attribute {
            Attribute::KeyType(found) => key_type = Some(found),
            Attribute::EcParams(bytes) => params = Some(bytes),
            Attribute::EcPoint(bytes) => point = Some(bytes),
            _ => {}
        }
    }
    if key_type != Some(KeyType::EC) || params.as_deref() != Some(&P256_EC_PARAMS[..]) {
        return Err(no_key(format!(
            "the key labelled {label:?} is not an ECDSA P-256 key"
        )));
    }
    let point =
        point.ok_or_else(|| no_key(format!("the key labelled {label:?} has no CKA_EC_POINT")))?;
    let public_key = p256_point(&point).ok_or_else(|| {
        no_key(format!(
            "the key labelled {label:?} has a CKA_EC_POINT that is not a P-256 point"
        ))
    })?;
    Ok((private, public_key))
}

/// A P-256 public key from `CKA_EC_POINT`: a DER OCTET STRING holding the uncompressed point
/// (as PKCS#11 v2.40 and SoftHSM2 give it), or the point itself.
fn p256_point(point: &[u8]) -> Option<p256::ecdsa::VerifyingKey> {
    let raw: &[u8] = match point {
        [0x04, 65, rest @ ..] if rest.len() == 65 => rest,
        raw if raw.len() == 65 => raw,
        _ => return None,
    };
    p256::ecdsa::VerifyingKey::from_sec1_bytes(raw).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_point_is_read_wrapped_or_raw_and_anything_else_is_refused() {
        let key = p256::ecdsa::SigningKey::from_slice(&[7; 32]).expect("a scalar");
        let point = key.verifying_key().to_encoded_point(false);
        let mut wrapped = vec![0x04, 65];
        wrapped.extend_from_slice(point.as_bytes());
        assert_eq!(p256_point(&wrapped), Some(*key.verifying_key()));
        assert_eq!(p256_point(point.as_bytes()), Some(*key.verifying_key()));
        assert_eq!(p256_point(&wrapped[..66]), None);
        let mut off_curve = point.as_bytes().to_vec();
        off_curve[64] ^= 1;
        assert_eq!(p256_point(&off_curve), None);
    }
}
