//! Ed25519 checks one at a time or many at once.
//!
//! Every Ed25519 signature that a note, a cosignature or a timestamp token carries is checked
//! through an [`Ed25519Checker`]. [`SingleEd25519`] checks each at once, exactly as
//! ed25519-dalek's `verify` (Go's `crypto/ed25519`: RFC 8032 §5.1.7 without the cofactor,
//! canonical `S`) or `verify_strict` (the same, and neither `R` nor the key of small order) do.
//! [`Ed25519Batch`] answers the same question for many signatures with one multiscalar
//! multiplication, which is what makes verifying many receipts cheap:
//!
//! ```text
//! [Σ zᵢ·sᵢ]B  =  Σ zᵢ·Rᵢ  +  Σ_keys [Σ_{i signed by A} zᵢ·kᵢ]A,      kᵢ = SHA-512(Rᵢ ‖ A ‖ Mᵢ)
//! ```
//!
//! with coefficients `zᵢ = 8·wᵢ` and `wᵢ` 128-bit numbers drawn from a SHA-512 hash of every
//! signature in the batch (so no one can choose them, and a batch is verified the same way
//! every time). Signatures by the same key share one term for that key: a batch of receipts of
//! one log and its witnesses costs about one point per signature (its `R`) instead of two.
//!
//! What a batch accepts, and why the fallback keeps verification exact:
//! - A signature is only deferred to a batch when single verification could accept it: `S`
//!   canonical, `R` a canonical encoding of a point that is not of small order, the key without
//!   a small-order component (checked once per key). Everything else is answered at once,
//!   exactly as single verification answers it.
//! - If a batch fails, the caller bisects it ([`Ed25519Batch::verify_range`]) and re-checks
//!   what failed one signature at a time, so that an error names exactly which signature is
//!   bad, with the single check's verdict.
//! - A batch that passes means, except with probability about 2⁻¹²⁸, that every signature in it
//!   satisfies RFC 8032's cofactored equation `[8·S]B = [8]R + [8·k]A`. Every signature that
//!   single verification accepts does. The converse fails only for a signature whose `R` is a
//!   prime-order point plus a nonzero small-order one: only the holder of the private key can
//!   make one (changing `R` changes `k`), and it proves nothing that key's holder could not
//!   prove with a valid signature. Such a signature is refused one at a time and accepted in a
//!   batch; `spec/docs/receipt.md` says so where it describes batch verification.
//!
//! Why not ed25519-dalek's own `verify_batch` (feature `batch`)? `benches/batch.rs` runs both,
//! and one-at-a-time verification, in one run. On the workload this batch serves, signatures
//! by a few keys (a log's and its witnesses' over many receipts), it is faster: 1.3× at 64
//! signatures by three keys and 1.8× at 512 (6.5 ms against 11.7 ms), because it pays one point
//! per signature where `verify_batch` pays two. With a new key for every signature it is much
//! slower, 2.6× at 64 and 4.4× at 512, slower even than one at a time, because it checks each
//! new key for a small-order part with a full scalar multiplication; a [`ReceiptVerifier`]
//! keeps its batch, and so those checks, across receipts. It also accepts more predictably:
//! - `verify_batch` checks the cofactorless equation `Σ zᵢ·([sᵢ]B − Rᵢ − [kᵢ]Aᵢ) = 0` with
//!   128-bit `zᵢ` from a hash of the batch. The key-holder-made signature above (an `R` with a
//!   small-order part `T`) fails it by `zᵢ·T`, which vanishes when the order of `T` divides
//!   `zᵢ`: it is accepted in some batches and refused in others, by what else is in the batch.
//!   This batch, cofactored, accepts it in every batch.
//! - `verify_batch` has no strict rules: a small-order `R` or key passes it. Here the strict
//!   rules, and the canonical encoding of `R`, are checked before anything is deferred, as
//!   single verification checks them.
//!
//! The tests `a_key_holder_made_r_with_a_small_order_part_passes_a_batch_only` and
//! `ed25519_dalek_s_own_batch_accepts_that_signature_only_by_chance` show both differences.
//!
//! [`ReceiptVerifier`]: crate::receipt::ReceiptVerifier

use std::collections::HashMap;
use std::ops::Range;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use ed25519_dalek::Verifier as _;
use sha2::{Digest, Sha512};

use super::ED25519_SIGNATURE_SIZE;

/// Which Ed25519 verification rules a signature is held to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ed25519Rules {
    /// RFC 8032 §5.1.7 without the cofactor, `S` canonical: ed25519-dalek's `verify`, Go's
    /// `crypto/ed25519.Verify`. Signed notes and cosignatures.
    Cofactorless,
    /// As [`Ed25519Rules::Cofactorless`], and neither `R` nor the key of small order:
    /// ed25519-dalek's `verify_strict`. Timestamp tokens and certificates.
    Strict,
}

/// Something that answers whether an Ed25519 signature is valid: at once ([`SingleEd25519`]),
/// or provisionally, to be confirmed by a batch ([`Ed25519Batch`]).
pub trait Ed25519Checker {
    /// Whether `signature` is `key`'s signature of `message` under `rules`. A batch checker
    /// may answer `true` provisionally; its caller must then verify the batch.
    fn check(
        &mut self,
        key: &ed25519_dalek::VerifyingKey,
        message: &[u8],
        signature: &[u8],
        rules: Ed25519Rules,
    ) -> bool;
}

/// Checks every signature at once, one at a time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleEd25519;

impl Ed25519Checker for SingleEd25519 {
    fn check(
        &mut self,
        key: &ed25519_dalek::VerifyingKey,
        message: &[u8],
        signature: &[u8],
        rules: Ed25519Rules,
    ) -> bool {
        verify_single(key, message, signature, rules)
    }
}

/// One Ed25519 verification, exactly as ed25519-dalek does it under `rules`.
pub fn verify_single(
    key: &ed25519_dalek::VerifyingKey,
    message: &[u8],
    signature: &[u8],
    rules: Ed25519Rules,
) -> bool {
    let Ok(bytes) = <[u8; ED25519_SIGNATURE_SIZE]>::try_from(signature) else {
        return false;
    };
    let signature = ed25519_dalek::Signature::from_bytes(&bytes);
    match rules {
        Ed25519Rules::Cofactorless => key.verify(message, &signature).is_ok(),
        Ed25519Rules::Strict => key.verify_strict(message, &signature).is_ok(),
    }
}

/// Most distinct keys an [`Ed25519Batch`] remembers (each costs a small-order check once).
const MAX_REMEMBERED_KEYS: usize = 4096;

/// Signatures deferred to one batch verification, and the keys seen so far.
#[derive(Debug, Default)]
pub struct Ed25519Batch {
    /// Each key seen (its bytes), with its point if it has no small-order component and so
    /// may take part in a batch.
    keys: HashMap<[u8; 32], Option<EdwardsPoint>>,
    deferred: Vec<Deferred>,
}

#[derive(Debug)]
struct Deferred {
    key: [u8; 32],
    key_point: EdwardsPoint,
    r_bytes: [u8; 32],
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

impl Ed25519Batch {
    /// An empty batch.
    pub fn new() -> Ed25519Batch {
        Ed25519Batch::default()
    }

    /// How many signatures wait for verification.
    pub fn len(&self) -> usize {
        self.deferred.len()
    }

    /// Whether no signature waits.
    pub fn is_empty(&self) -> bool {
        self.deferred.is_empty()
    }

    /// Forgets the waiting signatures (not the keys).
    pub fn clear(&mut self) {
        self.deferred.clear();
    }

    /// Whether every signature deferred at positions `range` (in the order they were checked)
    /// is valid, in one multiscalar multiplication. `false` means at least one is not.
    pub fn verify_range(&self, range: Range<usize>) -> bool {
        let Some(items) = self.deferred.get(range) else {
            return false;
        };
        if items.is_empty() {
            return true;
        }
        let weights = batch_weights(items);
        let mut basepoint_coefficient = Scalar::ZERO;
        let mut key_terms: Vec<([u8; 32], EdwardsPoint, Scalar)> = Vec::new();
        let mut scalars = Vec::with_capacity(items.len() + 8);
        let mut points = Vec::with_capacity(items.len() + 8);
        for (item, weight) in items.iter().zip(&weights) {
            basepoint_coefficient -= weight * item.s;
            let term = weight * item.k;
            match key_terms.iter_mut().find(|(key, _, _)| *key == item.key) {
                Some((_, _, coefficient)) => *coefficient += term,
                None => key_terms.push((item.key, item.key_point, term)),
            }
            scalars.push(*weight);
            points.push(item.r);
        }
        scalars.push(basepoint_coefficient);
        points.push(ED25519_BASEPOINT_POINT);
        for (_, point, coefficient) in key_terms {
            scalars.push(coefficient);
            points.push(point);
        }
        EdwardsPoint::vartime_multiscalar_mul(&scalars, &points).is_identity()
    }

    /// The key's point if it may take part in a batch: no small-order component (an honest
    /// key never has one; a key with one is checked one signature at a time).
    fn batchable_key(&mut self, key: &ed25519_dalek::VerifyingKey) -> Option<EdwardsPoint> {
        let bytes = key.to_bytes();
        if let Some(known) = self.keys.get(&bytes) {
            return *known;
        }
        if self.keys.len() >= MAX_REMEMBERED_KEYS {
            self.keys.clear();
        }
        let point = key.to_edwards();
        let batchable = point.is_torsion_free().then_some(point);
        self.keys.insert(bytes, batchable);
        batchable
    }
}

impl Ed25519Checker for Ed25519Batch {
    fn check(
        &mut self,
        key: &ed25519_dalek::VerifyingKey,
        message: &[u8],
        signature: &[u8],
        rules: Ed25519Rules,
    ) -> bool {
        let Ok(bytes) = <[u8; ED25519_SIGNATURE_SIZE]>::try_from(signature) else {
            return false;
        };
        let (r_part, s_part) = bytes.split_at(32);
        let r_bytes: [u8; 32] = r_part.try_into().expect("split at 32 of 64 bytes");
        let s_bytes: [u8; 32] = s_part.try_into().expect("split at 32 of 64 bytes");
        // Both rule sets refuse a non-canonical S.
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        if rules == Ed25519Rules::Strict && key.is_weak() {
            return false;
        }
        let Some(key_point) = self.batchable_key(key) else {
            return verify_single(key, message, signature, rules);
        };
        // Single verification compares R's bytes with a canonical encoding, so a non-canonical
        // or undecodable R never verifies.
        if !is_canonical_point_encoding(&r_bytes) {
            return false;
        }
        let Some(r) = CompressedEdwardsY(r_bytes).decompress() else {
            return false;
        };
        if r.is_small_order() {
            // Strict rules refuse it; the cofactorless ones accept it for some (key-holder
            // made) signatures, which the batch equation cannot tell apart: check it alone.
            return match rules {
                Ed25519Rules::Strict => false,
                Ed25519Rules::Cofactorless => verify_single(key, message, signature, rules),
            };
        }
        let k = challenge(&r_bytes, key, message);
        self.deferred.push(Deferred {
            key: key.to_bytes(),
            key_point,
            r_bytes,
            r,
            s,
            k,
        });
        true
    }
}

/// RFC 8032's `k = SHA-512(R ‖ A ‖ M)` as a scalar, with `A` as the key's bytes.
fn challenge(r_bytes: &[u8; 32], key: &ed25519_dalek::VerifyingKey, message: &[u8]) -> Scalar {
    let mut hash = Sha512::new();
    hash.update(r_bytes);
    hash.update(key.as_bytes());
    hash.update(message);
    Scalar::from_hash(hash)
}

/// Whether the 32 bytes are the canonical encoding of a y coordinate: y < p = 2²⁵⁵ − 19 once
/// the sign bit is set aside. (The encodings with x = 0 and the sign bit set are points of
/// small order, which are never deferred.)
fn is_canonical_point_encoding(bytes: &[u8; 32]) -> bool {
    // y ≥ p only if bytes 1..31 are all 0xff (byte 31 without its sign bit 0x7f) and byte 0 is
    // at least 0xed.
    let top = bytes[31] & 0x7f;
    !(top == 0x7f && bytes[1..31].iter().all(|&byte| byte == 0xff) && bytes[0] >= 0xed)
}

/// The batch's coefficients `8·wᵢ`, with `wᵢ` 128-bit (odd, so never zero) from SHA-512 of
/// every signature in the batch: fixed by the batch's contents, unpredictable before them.
fn batch_weights(items: &[Deferred]) -> Vec<Scalar> {
    let mut transcript = Sha512::new();
    transcript.update(b"cairn ed25519 batch v1");
    transcript.update((items.len() as u64).to_le_bytes());
    for item in items {
        transcript.update(item.key);
        transcript.update(item.r_bytes);
        transcript.update(item.s.as_bytes());
        transcript.update(item.k.as_bytes());
    }
    let seed = transcript.finalize();
    let eight = Scalar::from(8u8);
    let mut weights = Vec::with_capacity(items.len());
    for block in 0..items.len().div_ceil(4) {
        let mut expand = Sha512::new();
        expand.update(seed);
        expand.update((block as u64).to_le_bytes());
        let output = expand.finalize();
        for chunk in output.chunks_exact(16) {
            if weights.len() == items.len() {
                break;
            }
            let weight = u128::from_le_bytes(chunk.try_into().expect("16-byte chunk")) | 1;
            weights.push(eight * Scalar::from(weight));
        }
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::traits::Identity as _;
    use ed25519_dalek::Signer as _;

    fn key(seed: u8) -> ed25519_dalek::SigningKey {
        ed25519_dalek::SigningKey::from_bytes(&[seed; 32])
    }

    #[test]
    fn a_batch_of_valid_signatures_by_few_keys_verifies() {
        let keys = [key(1), key(2), key(3)];
        let mut batch = Ed25519Batch::new();
        for index in 0..40u32 {
            let signer = &keys[index as usize % 3];
            let message = format!("message {index}");
            let signature = signer.sign(message.as_bytes()).to_bytes();
            let rules = if index % 2 == 0 {
                Ed25519Rules::Cofactorless
            } else {
                Ed25519Rules::Strict
            };
            assert!(batch.check(
                &signer.verifying_key(),
                message.as_bytes(),
                &signature,
                rules
            ));
        }
        assert_eq!(batch.len(), 40);
        assert!(batch.verify_range(0..40));
        assert!(batch.verify_range(3..7));
        assert!(batch.verify_range(5..5));
        assert!(
            !batch.verify_range(30..41),
            "a range past the end is not verified"
        );
    }

    #[test]
    fn one_bad_signature_fails_the_batch_and_bisection_finds_it() {
        let signer = key(9);
        let mut batch = Ed25519Batch::new();
        for index in 0..16u32 {
            let message = format!("message {index}");
            let mut signature = signer.sign(message.as_bytes()).to_bytes();
            if index == 11 {
                // A valid signature of another message: decodes fine, fails the equation.
                signature = signer.sign(b"another message").to_bytes();
            }
            assert!(batch.check(
                &signer.verifying_key(),
                message.as_bytes(),
                &signature,
                Ed25519Rules::Cofactorless
            ));
        }
        assert!(!batch.verify_range(0..16));
        let mut range = 0..16;
        while range.len() > 1 {
            let middle = range.start + range.len() / 2;
            range = if batch.verify_range(range.start..middle) {
                middle..range.end
            } else {
                range.start..middle
            };
        }
        assert_eq!(range, 11..12);
    }

    #[test]
    fn what_single_verification_refuses_for_its_form_is_refused_at_once() {
        let signer = key(4);
        let verifying_key = signer.verifying_key();
        let message = b"message";
        let good = signer.sign(message).to_bytes();
        let mut batch = Ed25519Batch::new();
        // Wrong length.
        assert!(!batch.check(&verifying_key, message, &good[..63], Ed25519Rules::Strict));
        // S not reduced: S + ℓ.
        let mut unreduced = good;
        unreduced[32..].copy_from_slice(&add_order(&good[32..]));
        assert!(!batch.check(
            &verifying_key,
            message,
            &unreduced,
            Ed25519Rules::Cofactorless
        ));
        assert!(!verify_single(
            &verifying_key,
            message,
            &unreduced,
            Ed25519Rules::Cofactorless
        ));
        // R not canonical: y = p + 1 encodes the same point as y = 1 (the identity).
        let mut noncanonical = good;
        noncanonical[..32].copy_from_slice(&non_canonical_one());
        assert!(!batch.check(&verifying_key, message, &noncanonical, Ed25519Rules::Strict));
        // R of small order (the identity) under strict rules.
        let mut identity_r = good;
        identity_r[..32].copy_from_slice(&CompressedEdwardsY::identity().to_bytes());
        assert!(!batch.check(&verifying_key, message, &identity_r, Ed25519Rules::Strict));
        // Under cofactorless rules it is checked alone, and this one is invalid.
        assert!(!batch.check(
            &verifying_key,
            message,
            &identity_r,
            Ed25519Rules::Cofactorless
        ));
        assert!(batch.is_empty(), "nothing was deferred");
    }

    #[test]
    fn a_signature_with_identity_r_that_single_verification_accepts_is_accepted() {
        // With S = k·a, R = [S]B − [k]A is the identity: the cofactorless rules accept the
        // signature (R encoded as the identity), the strict ones do not. Only the key's holder
        // can make one.
        let signer = key(5);
        let verifying_key = signer.verifying_key();
        let message = b"weird but valid";
        let identity = CompressedEdwardsY::identity().to_bytes();
        let k = challenge(&identity, &verifying_key, message);
        let signature = signature_of(&identity, k * signer.to_scalar());
        assert!(verify_single(
            &verifying_key,
            message,
            &signature,
            Ed25519Rules::Cofactorless
        ));
        assert!(!verify_single(
            &verifying_key,
            message,
            &signature,
            Ed25519Rules::Strict
        ));
        let mut batch = Ed25519Batch::new();
        assert!(batch.check(
            &verifying_key,
            message,
            &signature,
            Ed25519Rules::Cofactorless
        ));
        assert!(!batch.check(&verifying_key, message, &signature, Ed25519Rules::Strict));
        assert!(batch.is_empty(), "checked alone, not deferred");
    }

    #[test]
    fn a_key_holder_made_r_with_a_small_order_part_passes_a_batch_only() {
        // The one documented difference: R = [r]B + T with T of order 8 and S = r + k·a for
        // k = H(R ‖ A ‖ M). The cofactorless equation fails by T; the cofactored one holds.
        let signer = key(6);
        let verifying_key = signer.verifying_key();
        let message = b"made by the key's holder";
        let r = Scalar::from_bytes_mod_order([3; 32]);
        let point = EdwardsPoint::mul_base(&r) + curve25519_dalek::constants::EIGHT_TORSION[1];
        let r_bytes = point.compress().to_bytes();
        let k = challenge(&r_bytes, &verifying_key, message);
        let signature = signature_of(&r_bytes, r + k * signer.to_scalar());
        for rules in [Ed25519Rules::Cofactorless, Ed25519Rules::Strict] {
            assert!(!verify_single(&verifying_key, message, &signature, rules));
            let mut batch = Ed25519Batch::new();
            assert!(batch.check(&verifying_key, message, &signature, rules));
            assert!(batch.verify_range(0..1), "cofactored: [8]T vanishes");
        }
    }

    #[test]
    fn ed25519_dalek_s_own_batch_accepts_that_signature_only_by_chance() {
        // ed25519-dalek's verify_batch checks the cofactorless equation with 128-bit weights
        // z: the signature above fails it by z·T, which vanishes only when 8 divides z. Its
        // weights come from the batch's contents, so the same signature passes or fails by
        // what else is in the batch. Cairn's batch, cofactored, accepts it in every batch.
        let signer = key(6);
        let verifying_key = signer.verifying_key();
        let message = b"made by the key's holder";
        let r = Scalar::from_bytes_mod_order([3; 32]);
        let point = EdwardsPoint::mul_base(&r) + curve25519_dalek::constants::EIGHT_TORSION[1];
        let r_bytes = point.compress().to_bytes();
        let k = challenge(&r_bytes, &verifying_key, message);
        let odd = ed25519_dalek::Signature::from_bytes(&signature_of(
            &r_bytes,
            r + k * signer.to_scalar(),
        ));
        let mut dalek_verdicts = Vec::new();
        for companion in 0..64u32 {
            let other = format!("companion {companion}");
            let valid = signer.sign(other.as_bytes());
            let messages: [&[u8]; 2] = [message, other.as_bytes()];
            dalek_verdicts.push(
                ed25519_dalek::verify_batch(
                    &messages,
                    &[odd, valid],
                    &[verifying_key, verifying_key],
                )
                .is_ok(),
            );
            let mut batch = Ed25519Batch::new();
            for (message, signature) in messages.iter().zip([odd, valid]) {
                let bytes = signature.to_bytes();
                assert!(batch.check(&verifying_key, message, &bytes, Ed25519Rules::Cofactorless));
            }
            assert!(batch.verify_range(0..2), "companion {companion}");
        }
        assert!(dalek_verdicts.contains(&true), "accepted in some batches");
        assert!(dalek_verdicts.contains(&false), "refused in others");
        // Valid signatures alone pass both, and single verification refuses the odd one.
        let valid = signer.sign(b"plain");
        assert!(ed25519_dalek::verify_batch(&[b"plain"], &[valid], &[verifying_key]).is_ok());
        assert!(!verify_single(
            &verifying_key,
            message,
            &odd.to_bytes(),
            Ed25519Rules::Cofactorless
        ));
    }

    #[test]
    fn canonical_encodings_are_told_apart() {
        assert!(is_canonical_point_encoding(&[0; 32]));
        let mut p_minus_one = [0xff; 32];
        p_minus_one[0] = 0xec;
        p_minus_one[31] = 0x7f;
        assert!(is_canonical_point_encoding(&p_minus_one));
        let mut p = p_minus_one;
        p[0] = 0xed;
        assert!(!is_canonical_point_encoding(&p));
        p[31] = 0xff; // with the sign bit
        assert!(!is_canonical_point_encoding(&p));
        assert!(!is_canonical_point_encoding(&non_canonical_one()));
    }

    fn signature_of(r_bytes: &[u8; 32], s: Scalar) -> [u8; 64] {
        let mut signature = [0u8; 64];
        signature[..32].copy_from_slice(r_bytes);
        signature[32..].copy_from_slice(&s.to_bytes());
        signature
    }

    /// y = p + 1 = 2²⁵⁵ − 18, little-endian.
    fn non_canonical_one() -> [u8; 32] {
        let mut bytes = [0xff; 32];
        bytes[0] = 0xee;
        bytes[31] = 0x7f;
        bytes
    }

    /// The 32-byte little-endian `s + ℓ`.
    fn add_order(s: &[u8]) -> [u8; 32] {
        let order = Scalar::ZERO - Scalar::ONE; // ℓ − 1
        let mut order_bytes = order.to_bytes();
        order_bytes[0] += 1; // ℓ (the low byte of ℓ − 1 is 0xec)
        let mut out = [0u8; 32];
        let mut carry = 0u16;
        for index in 0..32 {
            let sum = u16::from(s[index]) + u16::from(order_bytes[index]) + carry;
            out[index] = sum as u8;
            carry = sum >> 8;
        }
        out
    }
}
