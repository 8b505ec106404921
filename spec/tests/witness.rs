//! The add-checkpoint protocol: the C2SP tlog-witness examples, every branch of the witness's
//! decision, exhaustive acceptance on small trees, and one test per malformed body.

mod common;

use cairn_spec::checkpoint::{Checkpoint, CheckpointError, TreeSizeError};
use cairn_spec::cosignature::{CosignatureSigner, MAX_TIMESTAMP};
use cairn_spec::hash::{Hash, HashError};
use cairn_spec::merkle::ProofError;
use cairn_spec::note::{Ed25519Signer, KeyId, KeyName, Note, NoteError, NoteVerifier};
use cairn_spec::witness::{
    add_checkpoint, format_add_checkpoint_request, format_conflict_body,
    format_cosignature_response, parse_conflict_body, parse_cosignature_response,
    AddCheckpointRequest, Cosigned, Refusal, RequestError, ResponseError, TreeState,
    MAX_PROOF_LINES, MAX_REQUEST_SIZE, TREE_SIZE_CONTENT_TYPE,
};
use common::{
    consistency_proof, leaf_hashes, log_checkpoint, log_signer, root, witness_cosigner, LOG_ORIGIN,
};
use proptest::prelude::*;

// Example request body of C2SP tlog-witness, "add-checkpoint".
const C2SP_REQUEST: &str = "old 20852014
PlRNCrwHpqhGrupue0L7gxbjbMiKA9temvuZZDDpkaw=
jrJZDmY8Y7SyJE0MWLpLozkIVMSMZcD5kvuKxPC3swk=
5+pKlUdi2LeF/BcMHBn+Ku6yhPGNCswZZD1X/6QgPd8=
/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0=

example.com/behind-the-sofa
20852163
CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=

— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=
— example.com/behind-the-sofa opLqBQsREYCgu6xQkYQwJr9fo45a62DN9EdmHXnZdXNqlcVGlCum2Wks+49/V6267UEjw6QUXTS5Rovnzv++qbSzm9Q=
";

// Example response body of C2SP tlog-witness, "add-checkpoint".
const C2SP_RESPONSE: &str = "— witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5G2HgLatVs0pWh6Up69HVOw==
— witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh9ChdMkP1vi/lCAsmlw==
— witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJlqU3rXXvpysAdyP3wQ==
";

const NOW: u64 = 1_764_000_000;

/// A request from the example log for its checkpoint at `size`, claiming the witness last
/// cosigned `old_size`, with the true consistency proof between them.
fn request(old_size: u64, size: u64) -> AddCheckpointRequest {
    let note = log_checkpoint(size).sign(&log_signer()).expect("signs");
    let proof = consistency_proof(old_size, &leaf_hashes(size));
    AddCheckpointRequest::new(note, old_size, proof).expect("valid request")
}

fn state(size: u64) -> Option<TreeState> {
    Some(TreeState {
        size,
        root: root(&leaf_hashes(size)),
    })
}

fn decide(state: Option<TreeState>, request: &AddCheckpointRequest) -> Result<Cosigned, Refusal> {
    let log_key = log_signer().verifier();
    add_checkpoint(state, request, Some(&[&log_key]), &witness_cosigner(), NOW)
}

fn assert_accepted(state: Option<TreeState>, request: &AddCheckpointRequest) {
    let cosigned = decide(state, request).expect("the witness accepts");
    assert_eq!(cosigned.new_state.size, request.checkpoint.size);
    assert_eq!(cosigned.new_state.root, request.checkpoint.root);
    assert_eq!(
        witness_cosigner().verifier().verify_cosignature(
            &request.checkpoint,
            &cosigned.cosignature.to_note_signature()
        ),
        Ok(NOW)
    );
}

#[test]
fn accepts_first_checkpoint_with_old_size_zero() {
    assert_accepted(None, &request(0, 7));
}

#[test]
fn accepts_consistent_checkpoint() {
    assert_accepted(state(4), &request(4, 7));
}

#[test]
fn accepts_the_same_checkpoint_again() {
    assert_accepted(state(7), &request(7, 7));
}

#[test]
fn accepts_growth_from_a_cosigned_empty_tree() {
    assert_accepted(state(0), &request(0, 5));
}

#[test]
fn accepts_the_empty_checkpoint() {
    assert_accepted(None, &request(0, 0));
}

#[test]
fn accepts_every_consistent_pair_of_sizes_up_to_sixteen() {
    for new_size in 0..=16u64 {
        for old_size in 0..=new_size {
            let known = if old_size == 0 { None } else { state(old_size) };
            assert_accepted(known, &request(old_size, new_size));
        }
    }
}

#[test]
fn refuses_every_altered_proof_hash_up_to_sixteen() {
    for new_size in 2..=16u64 {
        for old_size in 1..new_size {
            let good = request(old_size, new_size);
            for index in 0..good.proof.len() {
                let mut bad = good.clone();
                bad.proof[index].0[0] ^= 1;
                let refusal = decide(state(old_size), &bad).unwrap_err();
                assert!(
                    matches!(refusal, Refusal::InconsistentProof { .. }),
                    "{old_size}->{new_size} hash {index}: {refusal:?}"
                );
                assert_eq!(refusal.http_status(), 422);
            }
        }
    }
}

#[test]
fn refuses_unknown_origin_with_404() {
    let refusal = add_checkpoint(None, &request(0, 3), None, &witness_cosigner(), NOW).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::UnknownOrigin {
            origin: LOG_ORIGIN.to_owned()
        }
    );
    assert_eq!(refusal.http_status(), 404);
}

#[test]
fn refuses_checkpoint_not_signed_by_the_log_key_with_403() {
    let other =
        Ed25519Signer::from_seed(KeyName::new("example.com/other").expect("valid"), [8; 32]);
    let other_key = other.verifier();
    let refusal = add_checkpoint(
        None,
        &request(0, 3),
        Some(&[&other_key]),
        &witness_cosigner(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        refusal,
        Refusal::NotSignedByLog {
            origin: LOG_ORIGIN.to_owned(),
            error: NoteError::NoVerifiedSignature { unverified: 1 }
        }
    );
    assert_eq!(refusal.http_status(), 403);
    // No trusted key at all for a known origin: nothing can verify.
    let refusal =
        add_checkpoint(None, &request(0, 3), Some(&[]), &witness_cosigner(), NOW).unwrap_err();
    assert_eq!(refusal.http_status(), 403);
}

#[test]
fn refuses_checkpoint_with_invalid_log_signature_with_403() {
    let mut bad = request(0, 3);
    let mut signature = bad.note.signatures()[0].clone();
    signature.signature[0] ^= 1;
    bad.note.add_signature(signature).expect("replaces");
    let refusal = decide(None, &bad).unwrap_err();
    assert!(matches!(
        refusal,
        Refusal::NotSignedByLog {
            error: NoteError::InvalidSignature { .. },
            ..
        }
    ));
    assert_eq!(refusal.http_status(), 403);
}

#[test]
fn accepts_checkpoint_signed_by_any_trusted_log_key() {
    // Key rotation: the witness trusts the old and the new key of the origin.
    let old_key = Ed25519Signer::from_seed(KeyName::new(LOG_ORIGIN).expect("valid"), [4; 32]);
    let old_verifier = old_key.verifier();
    let new_verifier = log_signer().verifier();
    let keys: [&dyn NoteVerifier; 2] = [&old_verifier, &new_verifier];
    let cosigned = add_checkpoint(None, &request(0, 3), Some(&keys), &witness_cosigner(), NOW)
        .expect("accepts");
    assert_eq!(cosigned.new_state.size, 3);
}

#[test]
fn refuses_old_size_above_checkpoint_size_with_400() {
    let mut bad = request(0, 7);
    bad.old_size = 9;
    let refusal = decide(state(4), &bad).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::OldSizeAboveCheckpointSize {
            old_size: 9,
            checkpoint_size: 7
        }
    );
    assert_eq!(refusal.http_status(), 400);
}

#[test]
fn rejects_checkpoint_that_goes_back() {
    let mut back = request(0, 4);
    back.old_size = 7;
    let refusal = decide(state(7), &back).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::CheckpointGoesBack {
            known_size: 7,
            checkpoint_size: 4
        }
    );
    assert_eq!(refusal.http_status(), 400);
    // Asked with another old size, the witness first tells the log what it knows.
    let refusal = decide(state(7), &request(2, 4)).unwrap_err();
    assert_eq!(refusal.http_status(), 409);
    assert_eq!(refusal.conflict_body().as_deref(), Some("7\n"));
}

#[test]
fn refuses_old_size_other_than_the_cosigned_size_with_409_and_the_known_size() {
    let refusal = decide(state(4), &request(5, 7)).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::OldSizeMismatch {
            old_size: 5,
            known_size: 4
        }
    );
    assert_eq!(refusal.http_status(), 409);
    assert_eq!(refusal.conflict_body().as_deref(), Some("4\n"));
    // A witness that never cosigned knows size 0.
    let refusal = decide(None, &request(3, 7)).unwrap_err();
    assert_eq!(refusal.conflict_body().as_deref(), Some("0\n"));
    // A log that starts from 0 with a witness that knows more learns the witness's size.
    let refusal = decide(state(4), &request(0, 7)).unwrap_err();
    assert_eq!(refusal.conflict_body().as_deref(), Some("4\n"));
    assert_eq!(decide(state(4), &request(4, 7)).map(|_| ()), Ok(()));
}

#[test]
fn refuses_empty_checkpoint_with_a_root_other_than_the_empty_tree_with_422() {
    let checkpoint = Checkpoint {
        origin: LOG_ORIGIN.to_owned(),
        size: 0,
        root: Hash::of_leaf(b"not empty"),
        extensions: Vec::new(),
    };
    let note = checkpoint.sign(&log_signer()).expect("signs");
    let bad = AddCheckpointRequest::new(note, 0, Vec::new()).expect("well-formed");
    let refusal = decide(None, &bad).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::BadEmptyTreeRoot {
            root: Hash::of_leaf(b"not empty")
        }
    );
    assert_eq!(refusal.http_status(), 422);
}

#[test]
fn refuses_a_proof_from_old_size_zero_with_422() {
    let mut bad = request(0, 7);
    bad.proof = vec![Hash::of_leaf(b"x")];
    for known in [None, state(0)] {
        let refusal = decide(known, &bad).unwrap_err();
        assert_eq!(refusal, Refusal::ProofFromEmptyTree { proof_len: 1 });
        assert_eq!(refusal.http_status(), 422);
    }
}

#[test]
fn refuses_a_fork_at_the_cosigned_size_with_422_as_evidence() {
    let fork = Checkpoint {
        origin: LOG_ORIGIN.to_owned(),
        size: 7,
        root: Hash::of_leaf(b"another history"),
        extensions: Vec::new(),
    };
    let note = fork.sign(&log_signer()).expect("signs");
    let bad = AddCheckpointRequest::new(note, 7, Vec::new()).expect("well-formed");
    let refusal = decide(state(7), &bad).unwrap_err();
    assert_eq!(
        refusal,
        Refusal::Fork {
            size: 7,
            known_root: root(&leaf_hashes(7)),
            checkpoint_root: Hash::of_leaf(b"another history")
        }
    );
    assert_eq!(refusal.http_status(), 422);
    assert!(refusal.is_fork());
    assert!(!Refusal::BadClock { timestamp: 0 }.is_fork());
}

#[test]
fn refuses_a_proof_for_a_tree_the_witness_did_not_see_with_422() {
    // The log proves consistency from its own size-4 tree, but the witness cosigned another
    // size-4 root.
    let other_history: Vec<Hash> = (0..4).map(|index| Hash::of_leaf(&[index])).collect();
    let known = Some(TreeState {
        size: 4,
        root: root(&other_history),
    });
    let refusal = decide(known, &request(4, 7)).unwrap_err();
    assert!(matches!(
        refusal,
        Refusal::InconsistentProof {
            old_size: 4,
            checkpoint_size: 7,
            error: ProofError::RootMismatch { .. }
        }
    ));
}

#[test]
fn refuses_a_proof_of_the_wrong_length_with_422() {
    let mut short = request(4, 7);
    short.proof.pop();
    assert!(matches!(
        decide(state(4), &short),
        Err(Refusal::InconsistentProof {
            error: ProofError::WrongProofLength { .. },
            ..
        })
    ));
    let mut same_size = request(7, 7);
    same_size.proof = vec![Hash::of_leaf(b"x")];
    assert!(matches!(
        decide(state(7), &same_size),
        Err(Refusal::InconsistentProof { .. })
    ));
}

#[test]
fn refuses_to_cosign_with_a_clock_outside_the_timestamp_range() {
    let log_key = log_signer().verifier();
    for bad_time in [0, MAX_TIMESTAMP + 1, u64::MAX] {
        let refusal = add_checkpoint(
            None,
            &request(0, 3),
            Some(&[&log_key]),
            &witness_cosigner(),
            bad_time,
        )
        .unwrap_err();
        assert_eq!(
            refusal,
            Refusal::BadClock {
                timestamp: bad_time
            }
        );
        assert_eq!(refusal.http_status(), 500);
    }
}

#[test]
fn checks_come_in_the_spec_order() {
    // Unknown origin before anything else, even a bad signature.
    let mut unsigned = request(0, 3);
    unsigned.old_size = 5;
    unsigned.note = log_checkpoint(3).to_note().expect("text");
    unsigned
        .note
        .add_signature(cairn_spec::note::NoteSignature {
            key_name: KeyName::new(LOG_ORIGIN).expect("valid"),
            key_id: log_signer().key_id(),
            signature: vec![0; 64],
        })
        .expect("fits");
    assert_eq!(
        add_checkpoint(state(9), &unsigned, None, &witness_cosigner(), NOW)
            .unwrap_err()
            .http_status(),
        404
    );
    // The signature before the sizes.
    assert_eq!(decide(state(9), &unsigned).unwrap_err().http_status(), 403);
    // The size order (400) before the known size (409).
    let mut above = request(0, 3);
    above.old_size = 5;
    assert_eq!(decide(state(9), &above).unwrap_err().http_status(), 400);
}

#[test]
fn response_body_is_the_cosignature_line() {
    let cosigned = decide(None, &request(0, 3)).expect("accepts");
    let body = cosigned.response_body();
    assert_eq!(body, cosigned.cosignature.to_line());
    let lines = parse_cosignature_response(body.as_bytes()).expect("parses");
    assert_eq!(lines, vec![cosigned.cosignature.to_note_signature()]);
}

#[test]
fn parses_c2sp_example_request() {
    let request = AddCheckpointRequest::parse(C2SP_REQUEST.as_bytes()).expect("spec example");
    assert_eq!(request.old_size, 20852014);
    assert_eq!(request.proof.len(), 4);
    assert_eq!(
        request.proof[3].to_base64(),
        "/6WVhPs2CwSsb5rYBH5cjHV/wSmA79abXAwhXw3Kj/0="
    );
    assert_eq!(request.checkpoint.origin, "example.com/behind-the-sofa");
    assert_eq!(request.checkpoint.size, 20852163);
    assert_eq!(request.note.signatures().len(), 2);
    assert_eq!(
        request.to_bytes().expect("formats"),
        C2SP_REQUEST.as_bytes()
    );
}

#[test]
fn parses_c2sp_example_response() {
    let lines = parse_cosignature_response(C2SP_RESPONSE.as_bytes()).expect("spec example");
    assert_eq!(lines.len(), 3);
    assert_eq!(
        lines[2].key_name,
        KeyName::new("witness.example/w2").expect("valid")
    );
    assert_eq!(lines[0].key_id, KeyId(0x08ca7ee8));
    let written: String = lines.iter().map(|line| line.to_line()).collect();
    assert_eq!(written, C2SP_RESPONSE);
}

#[test]
fn builds_the_log_side_request_and_the_witness_reads_it_back() {
    let note = log_checkpoint(7).sign(&log_signer()).expect("signs");
    let proof = consistency_proof(4, &leaf_hashes(7));
    let body = format_add_checkpoint_request(&note, 4, &proof).expect("builds");
    let text = String::from_utf8(body.clone()).expect("UTF-8");
    assert!(text.starts_with("old 4\n"));
    let expected_header: String = proof
        .iter()
        .map(|hash| format!("{}\n", hash.to_base64()))
        .collect();
    assert_eq!(
        body,
        [
            format!("old 4\n{expected_header}\n").into_bytes(),
            note.to_bytes().expect("formats")
        ]
        .concat()
    );
    let parsed = AddCheckpointRequest::parse(&body).expect("parses");
    assert_eq!(parsed.old_size, 4);
    assert_eq!(parsed.proof, proof);
    assert_eq!(parsed.note, note);
    assert_accepted(state(4), &parsed);
}

#[test]
fn log_side_builder_refuses_requests_a_witness_must_refuse() {
    let note = log_checkpoint(7).sign(&log_signer()).expect("signs");
    assert_eq!(
        format_add_checkpoint_request(&note, 8, &[]),
        Err(RequestError::OldSizeAboveCheckpointSize {
            old_size: 8,
            checkpoint_size: 7
        })
    );
    assert_eq!(
        format_add_checkpoint_request(&note, 4, &vec![Hash::empty_tree(); MAX_PROOF_LINES + 1]),
        Err(RequestError::TooManyProofLines {
            limit: MAX_PROOF_LINES
        })
    );
    let unsigned = log_checkpoint(7).to_note().expect("text");
    assert_eq!(
        format_add_checkpoint_request(&unsigned, 4, &[]),
        Err(RequestError::Note(NoteError::MissingSignatures))
    );
    let not_a_checkpoint = Note::new("hello\n").expect("text");
    assert!(matches!(
        format_add_checkpoint_request(&not_a_checkpoint, 0, &[]),
        Err(RequestError::Checkpoint(_))
    ));
}

#[test]
fn end_to_end_log_and_witness_grow_a_tree() {
    let log_key = log_signer().verifier();
    let cosigner = witness_cosigner();
    let mut witness_state: Option<TreeState> = None;
    let mut log_believes = 0;
    for size in [0u64, 1, 2, 5, 8, 13, 13, 21] {
        let note = log_checkpoint(size).sign(&log_signer()).expect("signs");
        let body = format_add_checkpoint_request(
            &note,
            log_believes,
            &consistency_proof(log_believes, &leaf_hashes(size)),
        )
        .expect("builds");
        let request = AddCheckpointRequest::parse(&body).expect("parses");
        let cosigned = add_checkpoint(
            witness_state,
            &request,
            Some(&[&log_key]),
            &cosigner,
            NOW + size,
        )
        .expect("accepts");
        witness_state = Some(cosigned.new_state);
        log_believes = size;
        // The log adds the response's lines to its note and verifies them with the witness key.
        let mut cosigned_note = note.clone();
        for line in parse_cosignature_response(cosigned.response_body().as_bytes()).expect("parses")
        {
            cosigned_note.add_signature(line).expect("fits");
        }
        let witness_key = cosigner.verifier();
        let bytes = cosigned_note.to_bytes().expect("formats");
        let (_, verification) = Note::open(&bytes, &[&log_key, &witness_key]).expect("verifies");
        assert_eq!(verification.verified.len(), 2);
    }
    assert_eq!(witness_state.map(|state| state.size), Some(21));
}

#[test]
fn conflict_body_round_trips() {
    assert_eq!(TREE_SIZE_CONTENT_TYPE, "text/x.tlog.size");
    for size in [0, 1, 20852014, u64::MAX] {
        let body = format_conflict_body(size);
        assert_eq!(parse_conflict_body(body.as_bytes()), Ok(size));
    }
    assert_eq!(format_conflict_body(20852014), "20852014\n");
}

#[test]
fn rejects_malformed_conflict_bodies() {
    for body in [
        "",
        "5",
        "05\n",
        " 5\n",
        "5\n\n",
        "5\r\n",
        "-1\n",
        "18446744073709551616\n",
    ] {
        assert!(
            matches!(
                parse_conflict_body(body.as_bytes()),
                Err(ResponseError::ConflictBody(_))
            ),
            "{body:?} must be refused"
        );
    }
    assert!(matches!(
        parse_conflict_body(&[b'1'; 40]),
        Err(ResponseError::TooLarge { .. })
    ));
    assert!(parse_conflict_body(b"\xff\n").is_err());
}

#[test]
fn rejects_malformed_response_bodies() {
    assert_eq!(
        parse_cosignature_response(b""),
        Err(ResponseError::SignatureLines(NoteError::MissingSignatures))
    );
    let unterminated = C2SP_RESPONSE.trim_end();
    assert_eq!(
        parse_cosignature_response(unterminated.as_bytes()),
        Err(ResponseError::SignatureLines(
            NoteError::UnterminatedSignatureLine
        ))
    );
    assert!(matches!(
        parse_cosignature_response(b"\xff\n"),
        Err(ResponseError::InvalidUtf8 { offset: 0 })
    ));
    assert!(matches!(
        parse_cosignature_response(b"\t\n"),
        Err(ResponseError::SignatureLines(
            NoteError::ControlCharacter { .. }
        ))
    ));
    assert!(matches!(
        parse_cosignature_response(b"not a signature\n"),
        Err(ResponseError::SignatureLines(NoteError::SignatureLine {
            line: 1,
            ..
        }))
    ));
    let huge = C2SP_RESPONSE.repeat(10_000);
    assert!(matches!(
        parse_cosignature_response(huge.as_bytes()),
        Err(ResponseError::TooLarge { .. })
    ));
    let many: String = C2SP_RESPONSE.lines().next().expect("a line").to_owned() + "\n";
    assert!(matches!(
        parse_cosignature_response(many.repeat(101).as_bytes()),
        Err(ResponseError::SignatureLines(
            NoteError::TooManySignatures { .. }
        ))
    ));
}

#[test]
fn response_formatting_round_trips() {
    let cosigner = witness_cosigner();
    let cosignatures = vec![
        cosigner.cosign(&log_checkpoint(3), 1).expect("cosigns"),
        CosignatureSigner::from_seed(KeyName::new("w2").expect("valid"), [6; 32])
            .cosign(&log_checkpoint(3), 2)
            .expect("cosigns"),
    ];
    let body = format_cosignature_response(&cosignatures);
    let lines = parse_cosignature_response(body.as_bytes()).expect("parses");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], cosignatures[1].to_note_signature());
}

fn body_with(header: &str) -> Vec<u8> {
    body_with_bytes(header.as_bytes())
}

fn body_with_bytes(header: &[u8]) -> Vec<u8> {
    let note = request(0, 3).note.to_bytes().expect("formats");
    [header, note.as_slice()].concat()
}

#[test]
fn rejects_request_without_old_line() {
    for header in ["new 5\n\n", "Old 5\n\n", "old\n\n", "\n"] {
        assert!(
            matches!(
                AddCheckpointRequest::parse(&body_with(header)),
                Err(RequestError::MissingOldLine { .. })
            ),
            "{header:?} must be refused"
        );
    }
    assert!(matches!(
        AddCheckpointRequest::parse(b"old 5"),
        Err(RequestError::MissingOldLine { .. })
    ));
    assert!(matches!(
        AddCheckpointRequest::parse(b""),
        Err(RequestError::MissingOldLine { .. })
    ));
}

#[test]
fn rejects_non_canonical_old_size() {
    let cases = [
        (
            "old 05\n\n",
            TreeSizeError::LeadingZero { found: "05".into() },
        ),
        (
            "old -1\n\n",
            TreeSizeError::NotDecimal { found: "-1".into() },
        ),
        (
            "old  5\n\n",
            TreeSizeError::NotDecimal { found: " 5".into() },
        ),
        (
            "old 5\r\n\n",
            TreeSizeError::NotDecimal {
                found: "5\r".into(),
            },
        ),
        ("old \n\n", TreeSizeError::Empty),
        (
            "old 99999999999999999999\n\n",
            TreeSizeError::TooLarge {
                found: "99999999999999999999".into(),
            },
        ),
    ];
    for (header, expected) in cases {
        assert_eq!(
            AddCheckpointRequest::parse(&body_with(header)),
            Err(RequestError::OldSize(expected)),
            "{header:?}"
        );
    }
}

#[test]
fn rejects_bad_proof_lines() {
    let header = "old 4\nnot base64\n\n";
    assert!(matches!(
        AddCheckpointRequest::parse(&body_with(header)),
        Err(RequestError::ProofLine {
            line: 2,
            error: HashError::Base64(_)
        })
    ));
    let header = format!("old 4\n{}\nAAAA\n\n", Hash::empty_tree().to_base64());
    assert!(matches!(
        AddCheckpointRequest::parse(&body_with(&header)),
        Err(RequestError::ProofLine { line: 3, .. })
    ));
}

#[test]
fn rejects_more_than_63_proof_lines() {
    let line = format!("{}\n", Hash::empty_tree().to_base64());
    let header = format!("old 4\n{}\n", line.repeat(MAX_PROOF_LINES + 1));
    assert_eq!(
        AddCheckpointRequest::parse(&body_with(&header)),
        Err(RequestError::TooManyProofLines {
            limit: MAX_PROOF_LINES
        })
    );
    let header = format!("old 4\n{}\n", line.repeat(MAX_PROOF_LINES));
    let request = AddCheckpointRequest::parse(&body_with(&header)).expect("63 lines are fine");
    assert_eq!(request.proof.len(), MAX_PROOF_LINES);
}

#[test]
fn rejects_request_without_blank_line() {
    let header = format!("old 4\n{}\n", Hash::empty_tree().to_base64());
    assert_eq!(
        AddCheckpointRequest::parse(header.as_bytes()),
        Err(RequestError::MissingBlankLine)
    );
    // Without the blank line the checkpoint's lines are read as proof lines.
    let request = request(0, 3);
    let note = request.note.to_bytes().expect("formats");
    let body = [b"old 0\n".as_slice(), note.as_slice()].concat();
    assert!(matches!(
        AddCheckpointRequest::parse(&body),
        Err(RequestError::ProofLine { line: 2, .. })
    ));
}

#[test]
fn rejects_request_with_malformed_note_or_checkpoint() {
    let body = b"old 0\n\nexample.com/cairn-log\n3\n".to_vec();
    assert_eq!(
        AddCheckpointRequest::parse(&body),
        Err(RequestError::Note(NoteError::MissingBlankLine))
    );
    let mut note = Note::new("example.com/cairn-log\n03\nroot\n").expect("text");
    note.sign(&log_signer()).expect("signs");
    let body = [b"old 0\n\n".as_slice(), &note.to_bytes().expect("formats")].concat();
    assert!(matches!(
        AddCheckpointRequest::parse(&body),
        Err(RequestError::Checkpoint(CheckpointError::TreeSize(_)))
    ));
}

#[test]
fn rejects_invalid_utf8_in_the_header() {
    assert_eq!(
        AddCheckpointRequest::parse(&body_with_bytes(b"old 4\n\xff\n\n")),
        Err(RequestError::InvalidUtf8 { line: 2 })
    );
}

#[test]
fn rejects_oversized_request() {
    let body = vec![b'a'; MAX_REQUEST_SIZE + 1];
    assert_eq!(
        AddCheckpointRequest::parse(&body),
        Err(RequestError::TooLarge {
            size: MAX_REQUEST_SIZE + 1,
            limit: MAX_REQUEST_SIZE
        })
    );
}

#[test]
fn malformed_request_maps_to_400() {
    let error = AddCheckpointRequest::parse(b"nonsense").unwrap_err();
    assert_eq!(Refusal::from(error).http_status(), 400);
}

proptest! {
    #[test]
    fn request_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let _ = AddCheckpointRequest::parse(&bytes);
        let _ = parse_cosignature_response(&bytes);
        let _ = parse_conflict_body(&bytes);
    }

    #[test]
    fn requests_round_trip(old_size in 0u64..50, extra in 0u64..50) {
        let request = request(old_size, old_size + extra);
        let body = request.to_bytes().expect("formats");
        prop_assert_eq!(AddCheckpointRequest::parse(&body), Ok(request));
    }
}
