//! Cosignatures: the C2SP tlog-cosignature example, transparency-dev vectors, signing and
//! verifying, and one test per malformation.

mod common;

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::{
    signed_message, Cosignature, CosignatureError, CosignatureSigner, CosignatureVerifier,
    COSIGNATURE_SIZE, MAX_TIMESTAMP, SIGNATURE_TYPE_COSIGNATURE_V1,
};
use cairn_spec::note::{
    Ed25519Signer, Ed25519Verifier, KeyError, KeyId, KeyName, Note, NoteError, NoteSignature,
    NoteVerifier, SIGNATURE_TYPE_ED25519,
};
use common::{log_checkpoint, log_signer, witness_cosigner, WITNESS_NAME};

// Example of C2SP tlog-cosignature: a checkpoint with the log's signature and a cosignature by
// witness.example.com/w1, and the signed message for the time 1679315147.
const C2SP_COSIGNED: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n";
const C2SP_SIGNED_MESSAGE: &str = "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

// Vectors of transparency-dev/formats, note/note_cosigv1_test.go: a type-0x04 vkey
// (TestCoSigV1NewVerifier, "native algEd25519CosignatureV1 verifier") and a cosignature whose
// timestamp is 1727964367 (TestCoSigV1Timestamp), next to a plain Ed25519 signature.
const REMORA_VKEY: &str = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";
const TIMESTAMPED_SIGNATURE: &str = "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA==";
const PLAIN_ED25519_SIGNATURE: &str =
    "eQjRQm6eSKzFoiYalgwCPXu2y3ijtg68is9M46JKxuZB+dRfTmeQeDBoXnvxZx2ugnkyV+MUMLXpWs1hPb/W/4xkNQY=";

// Go's sumdb/note/note_test.go signer key (type 0x01).
const PETER_SKEY: &str =
    "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";

fn name(text: &str) -> KeyName {
    KeyName::new(text).expect("valid test key name")
}

fn signature_from_base64(key_name: &str, encoded: &str) -> NoteSignature {
    NoteSignature::parse_line(&format!("— {key_name} {encoded}")).expect("well-formed line")
}

#[test]
fn decodes_c2sp_example_cosignature() {
    let note = Note::parse(C2SP_COSIGNED.as_bytes()).expect("spec example parses");
    let cosignature =
        Cosignature::from_note_signature(&note.signatures()[1]).expect("spec example decodes");
    assert_eq!(cosignature.key_name, name("witness.example.com/w1"));
    assert_eq!(cosignature.key_id, KeyId(0x8d66cf3f));
    assert_eq!(cosignature.timestamp, 1679315147);
    assert_eq!(
        cosignature.to_line(),
        C2SP_COSIGNED.lines().nth(5).expect("line 6").to_owned() + "\n"
    );
}

#[test]
fn signed_message_matches_c2sp_example() {
    let note = Note::parse(C2SP_COSIGNED.as_bytes()).expect("spec example parses");
    assert_eq!(
        signed_message(note.text().as_bytes(), 1679315147),
        C2SP_SIGNED_MESSAGE.as_bytes()
    );
}

#[test]
fn reads_transparency_dev_vectors() {
    let verifier = CosignatureVerifier::from_vkey(REMORA_VKEY).expect("valid type-0x04 vkey");
    assert_eq!(verifier.key_id(), KeyId(0xda77ade7));
    assert_eq!(verifier.to_vkey(), REMORA_VKEY);
    let cosignature =
        Cosignature::from_note_signature(&signature_from_base64("w", TIMESTAMPED_SIGNATURE))
            .expect("a cosignature");
    assert_eq!(cosignature.timestamp, 1727964367);
    assert_eq!(
        Cosignature::from_note_signature(&signature_from_base64("w", PLAIN_ED25519_SIGNATURE)),
        Err(CosignatureError::WrongLength { found: 64 })
    );
}

#[test]
fn key_id_uses_signature_type_0x04() {
    let cosigner = witness_cosigner();
    let public_key = cosigner.verifier().public_key().to_bytes();
    assert_eq!(
        cosigner.key_id(),
        KeyId::compute(
            &name(WITNESS_NAME),
            SIGNATURE_TYPE_COSIGNATURE_V1,
            &public_key
        )
    );
    assert_ne!(
        cosigner.key_id(),
        KeyId::compute(&name(WITNESS_NAME), SIGNATURE_TYPE_ED25519, &public_key)
    );
}

#[test]
fn cosigns_and_verifies_with_the_timestamp() {
    let checkpoint = log_checkpoint(7);
    let cosigner = witness_cosigner();
    let cosignature = cosigner
        .cosign(&checkpoint, 1_764_000_000)
        .expect("cosigns");
    assert_eq!(cosignature.timestamp, 1_764_000_000);
    let line = cosignature.to_note_signature();
    assert_eq!(line.signature.len(), COSIGNATURE_SIZE);
    assert_eq!(&line.signature[..8], &1_764_000_000u64.to_be_bytes());
    assert_eq!(
        cosigner.verifier().verify_cosignature(&checkpoint, &line),
        Ok(1_764_000_000)
    );
    assert_eq!(Cosignature::from_note_signature(&line), Ok(cosignature));
}

#[test]
fn cosignature_covers_every_line_of_the_checkpoint() {
    let mut checkpoint = log_checkpoint(7);
    checkpoint.extensions = vec!["extension".to_owned()];
    let cosigner = witness_cosigner();
    let line = cosigner
        .cosign(&checkpoint, 1_764_000_000)
        .expect("cosigns")
        .to_note_signature();
    let verifier = cosigner.verifier();
    let mut changed = checkpoint.clone();
    changed.extensions = vec!["extensioN".to_owned()];
    let invalid = Err(CosignatureError::InvalidSignature {
        key_name: name(WITNESS_NAME),
        key_id: cosigner.key_id(),
    });
    assert_eq!(verifier.verify_cosignature(&changed, &line), invalid);
    let mut changed = checkpoint.clone();
    changed.size = 8;
    assert_eq!(verifier.verify_cosignature(&changed, &line), invalid);
    let mut changed = checkpoint.clone();
    changed.origin.push('x');
    assert_eq!(verifier.verify_cosignature(&changed, &line), invalid);
    // The timestamp is signed too.
    let mut moved = line.clone();
    moved.signature[7] ^= 1;
    assert_eq!(verifier.verify_cosignature(&checkpoint, &moved), invalid);
}

#[test]
fn rejects_cosignature_by_another_key() {
    let checkpoint = log_checkpoint(7);
    let other = CosignatureSigner::from_seed(name("example.com/other-witness"), [5; 32]);
    let line = other
        .cosign(&checkpoint, 1)
        .expect("cosigns")
        .to_note_signature();
    assert!(matches!(
        witness_cosigner()
            .verifier()
            .verify_cosignature(&checkpoint, &line),
        Err(CosignatureError::WrongKey { .. })
    ));
}

#[test]
fn rejects_timestamps_above_two_to_the_63_minus_one() {
    let checkpoint = log_checkpoint(7);
    let cosigner = witness_cosigner();
    assert_eq!(
        cosigner.cosign(&checkpoint, MAX_TIMESTAMP + 1),
        Err(CosignatureError::TimestampOutOfRange {
            timestamp: MAX_TIMESTAMP + 1
        })
    );
    let mut line = cosigner
        .cosign(&checkpoint, MAX_TIMESTAMP)
        .expect("the largest timestamp is fine")
        .to_note_signature();
    assert_eq!(
        cosigner.verifier().verify_cosignature(&checkpoint, &line),
        Ok(MAX_TIMESTAMP)
    );
    line.signature[0] |= 0x80;
    assert_eq!(
        Cosignature::from_note_signature(&line),
        Err(CosignatureError::TimestampOutOfRange {
            timestamp: u64::MAX
        })
    );
    assert!(!cosigner.verifier().verify(
        checkpoint.to_text().expect("text").as_bytes(),
        &line.signature
    ));
}

#[test]
fn rejects_cosignature_of_the_wrong_length() {
    let cosigner = witness_cosigner();
    for length in [0, 8, 64, 71, 73, 80] {
        let line = NoteSignature {
            key_name: name(WITNESS_NAME),
            key_id: cosigner.key_id(),
            signature: vec![0; length],
        };
        assert_eq!(
            cosigner
                .verifier()
                .verify_cosignature(&log_checkpoint(1), &line),
            Err(CosignatureError::WrongLength { found: length })
        );
    }
}

#[test]
fn checkpoint_note_with_cosignature_verifies_in_one_note_verification() {
    let checkpoint = log_checkpoint(7);
    let mut note = checkpoint.sign(&log_signer()).expect("signs");
    let cosigner = witness_cosigner();
    note.add_signature(
        cosigner
            .cosign(&checkpoint, 1_764_000_000)
            .expect("cosigns")
            .to_note_signature(),
    )
    .expect("fits");
    let bytes = note.to_bytes().expect("formats");
    let log_verifier = log_signer().verifier();
    let witness_verifier = cosigner.verifier();
    let (_, verification) =
        Note::open(&bytes, &[&log_verifier, &witness_verifier]).expect("verifies");
    assert_eq!(verification.verified.len(), 2);
    // The log's own opener sees the cosignature as a signature by an unknown key.
    let signed = Checkpoint::open(&bytes, &log_verifier).expect("opens");
    assert_eq!(signed.verification.unverified.len(), 1);
    assert_eq!(
        witness_verifier.verify_cosignature(&signed.checkpoint, &signed.verification.unverified[0]),
        Ok(1_764_000_000)
    );
    // A cosignature that fails to verify rejects the note when its key is known.
    let mut tampered = note.clone();
    let mut bad = tampered.signatures()[1].clone();
    bad.signature[20] ^= 1;
    tampered.add_signature(bad).expect("replaces");
    let bytes = tampered.to_bytes().expect("formats");
    assert!(matches!(
        Note::open(&bytes, &[&log_verifier, &witness_verifier]),
        Err(NoteError::InvalidSignature { .. })
    ));
}

#[test]
fn a_plain_ed25519_key_cannot_verify_a_cosignature() {
    // The same Ed25519 key as a type-0x01 note key has another key ID, so a cosignature is a
    // signature by an unknown key to it (transparency-dev's TestVKeyToCosignatureV1).
    let cosigner = CosignatureSigner::from_skey(PETER_SKEY).expect("a type-0x01 skey is accepted");
    let plain = Ed25519Signer::from_skey(PETER_SKEY).expect("valid");
    assert_ne!(cosigner.key_id(), plain.key_id());
    let mut note =
        Note::new("test\n123\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n").expect("text");
    let checkpoint = Checkpoint::from_note(&note).expect("a checkpoint");
    note.add_signature(
        cosigner
            .cosign(&checkpoint, 10)
            .expect("cosigns")
            .to_note_signature(),
    )
    .expect("fits");
    let bytes = note.to_bytes().expect("formats");
    assert!(matches!(
        Note::open(&bytes, &[&plain.verifier()]),
        Err(NoteError::NoVerifiedSignature { unverified: 1 })
    ));
    assert!(Note::open(&bytes, &[&cosigner.verifier()]).is_ok());
}

#[test]
fn cosigner_keys_round_trip_as_strings() {
    let cosigner = witness_cosigner();
    let skey = cosigner.to_skey();
    assert!(skey.starts_with("PRIVATE+KEY+example.com/cairn-witness+"));
    let again = CosignatureSigner::from_skey(&skey).expect("parses");
    assert_eq!(again.to_skey(), skey);
    assert_eq!(again.key_id(), cosigner.key_id());
    let vkey = cosigner.verifier().to_vkey();
    assert_eq!(
        CosignatureVerifier::from_vkey(&vkey).expect("parses"),
        cosigner.verifier()
    );
    assert_eq!(vkey.parse::<CosignatureVerifier>(), Ok(cosigner.verifier()));
}

#[test]
fn vkeys_of_the_other_type_are_refused() {
    let peter_vkey = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    assert_eq!(
        CosignatureVerifier::from_vkey(peter_vkey),
        Err(KeyError::UnsupportedSignatureType {
            found: SIGNATURE_TYPE_ED25519,
            expected: SIGNATURE_TYPE_COSIGNATURE_V1
        })
    );
    assert_eq!(
        Ed25519Verifier::from_vkey(REMORA_VKEY),
        Err(KeyError::UnsupportedSignatureType {
            found: SIGNATURE_TYPE_COSIGNATURE_V1,
            expected: SIGNATURE_TYPE_ED25519
        })
    );
    let wrong_id = REMORA_VKEY.replace("da77ade7", "da77ade8");
    assert!(matches!(
        CosignatureVerifier::from_vkey(&wrong_id),
        Err(KeyError::KeyIdMismatch { .. })
    ));
}

#[test]
fn cosigner_skey_id_is_checked() {
    let skey = witness_cosigner().to_skey();
    let (head, tail) = skey.rsplit_once('+').expect("has parts");
    let (prefix, _) = head.rsplit_once('+').expect("has an ID");
    let wrong = format!("{prefix}+00000000+{tail}");
    assert!(matches!(
        CosignatureSigner::from_skey(&wrong),
        Err(KeyError::KeyIdMismatch { .. })
    ));
    // A type other than 0x01 and 0x04 is refused.
    use base64::Engine as _;
    let mut material = base64::engine::general_purpose::STANDARD
        .decode(tail)
        .expect("base64");
    material[0] = 0x02;
    let wrong_type = format!(
        "{head}+{}",
        base64::engine::general_purpose::STANDARD.encode(material)
    );
    assert_eq!(
        CosignatureSigner::from_skey(&wrong_type).unwrap_err(),
        KeyError::UnsupportedSignatureType {
            found: 0x02,
            expected: SIGNATURE_TYPE_COSIGNATURE_V1
        }
    );
}

#[test]
fn cosigner_debug_form_hides_the_private_key() {
    let cosigner = witness_cosigner();
    let debug = format!("{cosigner:?}");
    assert!(debug.contains(WITNESS_NAME));
    let seed_base64 = &cosigner.to_skey()[cosigner.to_skey().len() - 40..];
    assert!(!debug.contains(seed_base64));
}

#[test]
fn one_key_type_keeps_each_kind_apart() {
    // A log's note key and a witness's cosigner key are one type with the kind as a parameter:
    // each kind keeps its name, its type byte and what its signatures sign.
    let cosigner = CosignatureSigner::from_skey(PETER_SKEY).expect("a type-0x01 skey is accepted");
    let plain = Ed25519Signer::from_skey(PETER_SKEY).expect("valid");
    assert!(format!("{plain:?}").starts_with("Ed25519Signer(PeterNeumann+c74f20a3,"));
    assert!(format!("{cosigner:?}").starts_with("CosignatureSigner(PeterNeumann+"));
    assert!(format!("{:?}", plain.verifier()).starts_with("Ed25519Verifier(PeterNeumann+"));
    assert!(format!("{:?}", cosigner.verifier()).starts_with("CosignatureVerifier(PeterNeumann+"));
    assert_eq!(
        plain.verifier().public_key(),
        cosigner.verifier().public_key()
    );
    // A plain signature over the text is no cosignature of it, though the same Ed25519 key
    // made it: a cosigner's signature signs the timestamped message, and is 72 bytes long.
    let mut note =
        Note::new("test\n123\nf+7CoKgXKE/tNys9TTXcr/ad6U/K3xvznmzew9y6SP0=\n").expect("text");
    note.sign(&plain).expect("signs");
    let signature = &note.signatures()[0].signature;
    assert!(plain.verifier().verify(note.text().as_bytes(), signature));
    assert!(!cosigner
        .verifier()
        .verify(note.text().as_bytes(), signature));
}
