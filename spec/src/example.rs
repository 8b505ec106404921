//! Deterministic example material: a log, witnesses, a private TSA and receipts, all from fixed
//! seeds. Used by the documentation examples, tests and benchmarks of Cairn's crates; not a
//! protocol module, and nothing here is meant for production keys.

use base64::Engine as _;

use crate::checkpoint::Checkpoint;
use crate::cosignature::CosignatureSigner;
use crate::hash::Hash;
use crate::merkle::{self, CompactRange};
use crate::note::{Ed25519Signer, KeyName};
use crate::policy::Policy;
use crate::receipt::{Receipt, ReceiptTimestamp, RECEIPT_FORMAT};
use crate::time::Instant;
use crate::timestamp::{
    self, make_root_certificate, make_tsa_certificate, respond, verify_response, CertificateSpec,
    Expectation, KeyPair, ObjectIdentifier, TimestampGrant, TimestampRequest, TsaSigner,
};

/// The origin of the example log.
pub const ORIGIN: &str = "example.com/audit";

/// A private TSA made with Cairn's own certificate and token issuer.
pub struct TestTsa {
    /// The root certificate, DER.
    pub root_der: Vec<u8>,
    /// The TSA's signer.
    pub signer: TsaSigner,
}

/// A private TSA (root and TSA certificate, Ed25519 keys) from a seed.
pub fn test_tsa(seed: u8) -> TestTsa {
    let root_key = KeyPair::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed; 32]));
    let tsa_key = KeyPair::Ed25519(ed25519_dalek::SigningKey::from_bytes(&[seed ^ 0x5a; 32]));
    test_tsa_with_keys(root_key, tsa_key)
}

/// A private TSA with P-256 keys (root and TSA) from a seed: what `cairn-witness tsa init`
/// makes by default.
pub fn test_tsa_p256(seed: u8) -> TestTsa {
    let scalar = |byte: u8| {
        let mut scalar = [byte; 32];
        scalar[0] = 0x01; // far below the group order
        KeyPair::p256_from_scalar(&scalar).expect("a valid P-256 scalar")
    };
    test_tsa_with_keys(scalar(seed), scalar(seed ^ 0x5a))
}

fn test_tsa_with_keys(root_key: KeyPair, tsa_key: KeyPair) -> TestTsa {
    let validity = |serial: &'static [u8], subject: &'static str| CertificateSpec {
        subject,
        serial_number: serial,
        not_before: Instant::from_seconds(1_700_000_000),
        not_after: Instant::from_seconds(2_000_000_000),
    };
    let root_der = make_root_certificate(&root_key, &validity(&[1], "CN=Test Root"))
        .expect("root certificate");
    let tsa_der = make_tsa_certificate(
        &root_key,
        &root_der,
        &tsa_key.public_key_info_der(),
        &validity(&[2], "CN=Test TSA"),
    )
    .expect("TSA certificate");
    let signer = TsaSigner::new(tsa_key, tsa_der, vec![]).expect("TSA signer");
    TestTsa { root_der, signer }
}

impl TestTsa {
    /// A token over a checkpoint note body, at a fixed time.
    pub fn token_over(&self, note_body: &str, serial: u8) -> Vec<u8> {
        let imprint = timestamp::checkpoint_imprint(note_body.as_bytes());
        let request = TimestampRequest::for_imprint(imprint, 42, None);
        let grant = TimestampGrant {
            serial_number: &[serial],
            gen_time: Instant::from_seconds(1_764_000_000),
            policy: ObjectIdentifier::new_unwrap("1.3.6.1.4.1.99999.1"),
            accuracy: None,
        };
        let response = respond(&request.to_der(), &self.signer, &grant);
        let expectation = Expectation {
            imprint,
            nonce: Some(42),
            trust_anchors: None,
        };
        verify_response(&response, &expectation)
            .expect("the test TSA's response verifies")
            .token_der
    }
}

/// An example log with its leaves, keys, three witnesses and a TSA.
pub struct World {
    /// The leaves, `event <index>`.
    pub leaves: Vec<Vec<u8>>,
    /// The tree's hashes in stored-hash order.
    pub stored: Vec<Hash>,
    /// The log's key.
    pub log: Ed25519Signer,
    /// Three witnesses, w0.example to w2.example.
    pub witnesses: Vec<CosignatureSigner>,
    /// The TSA.
    pub tsa: TestTsa,
}

/// An example log of `leaf_count` leaves.
pub fn world(leaf_count: usize) -> World {
    world_of(
        (0..leaf_count)
            .map(|index| format!("event {index}").into_bytes())
            .collect(),
    )
}

/// An example log of these leaves.
pub fn world_of(leaves: Vec<Vec<u8>>) -> World {
    let mut stored = Vec::new();
    let mut range = CompactRange::new();
    for leaf in &leaves {
        range
            .append_with(Hash::of_leaf(leaf), |_, hash| stored.push(*hash))
            .expect("small trees fit");
    }
    World {
        leaves,
        stored,
        log: Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid"), [1; 32]),
        witnesses: (0..3)
            .map(|index| {
                CosignatureSigner::from_seed(
                    KeyName::new(format!("w{index}.example")).expect("valid"),
                    [10 + index; 32],
                )
            })
            .collect(),
        tsa: test_tsa(7),
    }
}

impl World {
    /// A policy trusting this log and its witnesses (groups `two` = 2 of 3, `every` = all 3),
    /// with the quorum named, and the TSA if asked.
    pub fn policy(&self, quorum: &str, with_tsa: bool) -> Policy {
        let mut text = format!("log {}\n", self.log.verifier().to_vkey());
        for (index, witness) in self.witnesses.iter().enumerate() {
            text.push_str(&format!(
                "witness w{index} {}\n",
                witness.verifier().to_vkey()
            ));
        }
        text.push_str("group two 2 w0 w1 w2\n");
        text.push_str("group every all w0 w1 w2\n");
        text.push_str(&format!("quorum {quorum}\n"));
        if with_tsa {
            text.push_str(&format!(
                "tsa test {}\n",
                base64::engine::general_purpose::STANDARD.encode(&self.tsa.root_der)
            ));
        }
        Policy::parse(text.as_bytes()).expect("valid test policy")
    }

    /// A receipt for `index` in the whole tree, cosigned by `cosigners`, with one token.
    pub fn receipt(&self, index: usize, cosigners: &[usize]) -> Receipt {
        self.receipt_at(index, self.leaves.len() as u64, cosigners)
    }

    /// A receipt for `index` in the tree of the first `tree_size` leaves (its own checkpoint and
    /// token), cosigned by `cosigners`.
    pub fn receipt_at(&self, index: usize, tree_size: u64, cosigners: &[usize]) -> Receipt {
        let checkpoint = Checkpoint {
            origin: ORIGIN.to_string(),
            size: tree_size,
            root: merkle::tree_root(tree_size, &self.stored).expect("stored hashes"),
            extensions: vec![],
        };
        let mut note = checkpoint.sign(&self.log).expect("signs");
        for &cosigner in cosigners {
            let cosignature = self.witnesses[cosigner]
                .cosign(&checkpoint, 1_764_000_000 + cosigner as u64)
                .expect("cosigns");
            note.add_signature(cosignature.to_note_signature())
                .expect("room for signatures");
        }
        let token = self.tsa.token_over(note.text(), 1);
        Receipt {
            format: RECEIPT_FORMAT.to_string(),
            index: index as u64,
            leaf: Some(self.leaves[index].clone()),
            leaf_hash: Hash::of_leaf(&self.leaves[index]),
            inclusion_proof: merkle::inclusion_proof(index as u64, tree_size, &self.stored)
                .expect("stored hashes"),
            checkpoint: String::from_utf8(note.to_bytes().expect("signed note"))
                .expect("notes are UTF-8"),
            timestamps: vec![ReceiptTimestamp { token }],
        }
    }
}
