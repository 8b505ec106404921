//! Fuzzes the add-checkpoint wire formats and the witness's decision: no input may panic, a
//! parsed request formats back to the same bytes, and an accepted request yields the
//! checkpoint's own size and root as the new state with a cosignature that verifies.
//!
//! Inputs starting with 0x01 are read as (old size, proof, checkpoint text) and signed with the
//! log key first, so the fuzzer reaches the consistency checks behind the signature check.
#![no_main]

use std::sync::OnceLock;

use cairn_spec::cosignature::CosignatureSigner;
use cairn_spec::hash::Hash;
use cairn_spec::note::{Ed25519Signer, KeyName, Note, NoteVerifier};
use cairn_spec::witness::{
    add_checkpoint, parse_conflict_body, parse_cosignature_response, AddCheckpointRequest,
    TreeState,
};
use libfuzzer_sys::fuzz_target;

fn log_key() -> &'static Ed25519Signer {
    static SIGNER: OnceLock<Ed25519Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let name = KeyName::new("fuzz.example/log").expect("valid name");
        Ed25519Signer::from_seed(name, [7u8; 32])
    })
}

fn cosigner() -> &'static CosignatureSigner {
    static SIGNER: OnceLock<CosignatureSigner> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let name = KeyName::new("fuzz.example/witness").expect("valid name");
        CosignatureSigner::from_seed(name, [9u8; 32])
    })
}

fn decide_all_ways(request: &AddCheckpointRequest) {
    let verifier = log_key().verifier();
    let keys: [&dyn NoteVerifier; 1] = [&verifier];
    let states = [
        None,
        Some(TreeState {
            size: 0,
            root: Hash::empty_tree(),
        }),
        Some(TreeState {
            size: request.old_size,
            root: request.proof.first().copied().unwrap_or_default(),
        }),
        Some(TreeState {
            size: request.checkpoint.size,
            root: request.checkpoint.root,
        }),
    ];
    for state in states {
        match add_checkpoint(state, request, Some(&keys), cosigner(), 1_700_000_000) {
            Ok(cosigned) => {
                assert_eq!(cosigned.new_state.size, request.checkpoint.size);
                assert_eq!(cosigned.new_state.root, request.checkpoint.root);
                assert!(cosigned.new_state.size >= state.map_or(0, |state| state.size));
                let timestamp = cosigner()
                    .verifier()
                    .verify_cosignature(
                        &request.checkpoint,
                        &cosigned.cosignature.to_note_signature(),
                    )
                    .expect("the witness's cosignature verifies");
                assert_eq!(timestamp, 1_700_000_000);
                let lines = parse_cosignature_response(cosigned.response_body().as_bytes())
                    .expect("the witness's response parses");
                assert_eq!(lines.len(), 1);
            }
            Err(refusal) => {
                let status = refusal.http_status();
                assert!(matches!(status, 400 | 403 | 404 | 409 | 422 | 500));
                assert_eq!(refusal.conflict_body().is_some(), status == 409);
            }
        }
    }
    assert_eq!(
        add_checkpoint(None, request, None, cosigner(), 1_700_000_000)
            .unwrap_err()
            .http_status(),
        404
    );
}

fuzz_target!(|data: &[u8]| {
    let _ = parse_cosignature_response(data);
    let _ = parse_conflict_body(data);
    if let Some((&1, rest)) = data.split_first() {
        if rest.len() < 3 {
            return;
        }
        let old_size = u64::from(u16::from_be_bytes([rest[0], rest[1]]));
        let proof_len = usize::from(rest[2] % 8);
        let rest = &rest[3..];
        if rest.len() < proof_len * 32 {
            return;
        }
        let proof: Vec<Hash> = rest[..proof_len * 32]
            .chunks_exact(32)
            .map(|chunk| Hash::from_slice(chunk).expect("32 bytes"))
            .collect();
        let Ok(text) = std::str::from_utf8(&rest[proof_len * 32..]) else {
            return;
        };
        let Ok(mut note) = Note::new(text) else {
            return;
        };
        note.sign(log_key()).expect("one signature fits");
        let Ok(request) = AddCheckpointRequest::new(note, old_size, proof) else {
            return;
        };
        let body = request.to_bytes().expect("a built request can be written");
        let parsed = AddCheckpointRequest::parse(&body).expect("a written request parses");
        assert_eq!(parsed, request);
        decide_all_ways(&request);
        return;
    }
    let Ok(request) = AddCheckpointRequest::parse(data) else {
        return;
    };
    assert_eq!(
        request.to_bytes().expect("a parsed request can be written"),
        data,
        "parse then format must be the identity"
    );
    decide_all_ways(&request);
});
