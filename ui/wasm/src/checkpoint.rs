//! Verdicts over checkpoints, for the log's health at a glance: who signed the latest
//! checkpoint and when each witness cosigned it, checked against the auditor's policy; and
//! whether a newer checkpoint extends an older one (RFC 9162 consistency), so that a page left
//! open notices a log that rewrites or forks its history.

use std::collections::BTreeSet;

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::Cosignature;
use cairn_spec::hash::Hash;
use cairn_spec::merkle;
use cairn_spec::note::{Note, NoteSignature, NoteVerifier, SingleEd25519};
use cairn_spec::policy::Policy;
use serde_json::{json, Value};

use crate::verdict::{parse_policy, refusal};

/// Most bytes of a `/proof/consistency` answer (a proof has at most 64 hashes).
const MAX_PROOF_ANSWER_BYTES: usize = 64 * 1024;

/// A checkpoint read from its note: the note and the checkpoint it signs.
fn read_checkpoint(note: &[u8]) -> Result<(Note, Checkpoint), String> {
    let note = Note::parse(note).map_err(|error| format!("checkpoint note: {error}"))?;
    let checkpoint =
        Checkpoint::from_note(&note).map_err(|error| format!("checkpoint: {error}"))?;
    Ok((note, checkpoint))
}

/// The cosigning time a signature claims, if it has the shape of a cosignature.
fn claimed_cosignature_time(signature: &NoteSignature) -> Option<u64> {
    Cosignature::from_note_signature(signature)
        .ok()
        .map(|cosignature| cosignature.timestamp)
}

/// What a checkpoint's signatures prove under a policy.
struct Signed {
    /// Per witness of the policy: its name and when it cosigned (None: it did not).
    witnesses: Vec<(String, Option<u64>)>,
    quorum_met: bool,
    unknown_signatures: usize,
}

/// Checks a checkpoint's signatures against the policy: the log's signature is required, every
/// signature by a key the policy knows must verify, and the witnesses that cosigned are named.
fn check_signatures(
    note: &Note,
    checkpoint: &Checkpoint,
    policy: &Policy,
) -> Result<Signed, String> {
    let log = policy.log(&checkpoint.origin).ok_or_else(|| {
        format!(
            "the policy trusts no log with origin {:?}",
            checkpoint.origin
        )
    })?;
    let mut verifiers: Vec<&dyn NoteVerifier> = vec![&log.key];
    verifiers.extend(
        policy
            .witnesses
            .iter()
            .map(|witness| &witness.key as &dyn NoteVerifier),
    );
    let verification = note
        .verify_with(&verifiers, &mut SingleEd25519)
        .map_err(|error| format!("checkpoint signatures: {error}"))?;
    if !verification.is_signed_by(log.key.key_name(), log.key.key_id()) {
        return Err(format!(
            "checkpoint signatures: no signature by the log key {}",
            log.key.to_vkey()
        ));
    }
    let mut witnesses = Vec::with_capacity(policy.witnesses.len());
    let mut cosigned = BTreeSet::new();
    for witness in &policy.witnesses {
        let time = verification
            .verified
            .iter()
            .find(|signature| {
                signature.key_name == *witness.key.key_name()
                    && signature.key_id == witness.key.key_id()
            })
            .and_then(claimed_cosignature_time);
        if time.is_some() {
            cosigned.insert(witness.name.clone());
        }
        witnesses.push((witness.name.clone(), time));
    }
    Ok(Signed {
        quorum_met: policy.quorum_met(&cosigned),
        witnesses,
        unknown_signatures: verification.unverified.len(),
    })
}

/// Reads a checkpoint note and, if a policy is given, verifies it: the log's signature, each
/// witness's cosignature (with its time) and the quorum. `"verified": false` says no policy was
/// given and only the note's claims are shown; `"ok": false` says a check failed (a bad or
/// missing signature, an unknown log, the quorum not met).
pub fn verify_checkpoint(note: &[u8], policy: &[u8]) -> String {
    let (note, checkpoint) = match read_checkpoint(note) {
        Ok(read) => read,
        Err(error) => return refusal("checkpoint", error),
    };
    let mut verdict = json!({
        "kind": "checkpoint",
        "origin": checkpoint.origin,
        "tree_size": checkpoint.size,
        "root": checkpoint.root.to_base64(),
        "signatures": note.signatures().iter().map(|signature| json!({
            "key_name": signature.key_name.to_string(),
            "key_id": signature.key_id.to_string(),
            "claimed_cosigned_at": claimed_cosignature_time(signature),
        })).collect::<Vec<_>>(),
    });
    if policy.iter().all(u8::is_ascii_whitespace) {
        verdict["ok"] = json!(true);
        verdict["verified"] = json!(false);
        return verdict.to_string();
    }
    let checked =
        parse_policy(policy).and_then(|policy| check_signatures(&note, &checkpoint, &policy));
    verdict["verified"] = json!(true);
    match checked {
        Ok(signed) => {
            verdict["ok"] = json!(signed.quorum_met);
            verdict["quorum_met"] = json!(signed.quorum_met);
            verdict["unknown_signatures"] = json!(signed.unknown_signatures);
            verdict["witnesses"] = Value::Array(
                signed
                    .witnesses
                    .iter()
                    .map(|(name, time)| json!({"name": name, "cosigned_at": time}))
                    .collect(),
            );
            if !signed.quorum_met {
                verdict["error"] = json!("the witness quorum of the policy is not met");
            }
        }
        Err(error) => {
            verdict["ok"] = json!(false);
            verdict["error"] = json!(error);
        }
    }
    verdict.to_string()
}

/// The log's `/proof/consistency` answer.
#[derive(serde::Deserialize)]
struct ConsistencyAnswer {
    old: u64,
    new: u64,
    proof: Vec<Hash>,
}

/// Verifies that the newer checkpoint extends the older one: both signed by the log the policy
/// trusts (same origin), and the log's consistency proof between their sizes leads from the old
/// root to the new one.
pub fn verify_consistency(old_note: &[u8], new_note: &[u8], proof: &[u8], policy: &[u8]) -> String {
    match check_consistency(old_note, new_note, proof, policy) {
        Ok(verdict) => verdict.to_string(),
        Err(error) => refusal("consistency", error),
    }
}

fn check_consistency(
    old_note: &[u8],
    new_note: &[u8],
    proof: &[u8],
    policy: &[u8],
) -> Result<Value, String> {
    let policy = parse_policy(policy)?;
    let (old_note, old) = read_checkpoint(old_note).map_err(|error| format!("older {error}"))?;
    let (new_note, new) = read_checkpoint(new_note).map_err(|error| format!("newer {error}"))?;
    if old.origin != new.origin {
        return Err(format!(
            "the checkpoints are of two logs: {:?} and {:?}",
            old.origin, new.origin
        ));
    }
    check_signatures(&old_note, &old, &policy).map_err(|error| format!("older {error}"))?;
    check_signatures(&new_note, &new, &policy).map_err(|error| format!("newer {error}"))?;
    if proof.len() > MAX_PROOF_ANSWER_BYTES {
        return Err(format!(
            "the consistency proof answer has {} bytes, more than {MAX_PROOF_ANSWER_BYTES}",
            proof.len()
        ));
    }
    let answer: ConsistencyAnswer = serde_json::from_slice(proof)
        .map_err(|error| format!("the consistency proof answer: {error}"))?;
    if (answer.old, answer.new) != (old.size, new.size) {
        return Err(format!(
            "the consistency proof is from size {} to {}, the checkpoints are of sizes {} and {}",
            answer.old, answer.new, old.size, new.size
        ));
    }
    merkle::verify_consistency(old.size, new.size, &old.root, &new.root, &answer.proof).map_err(
        |error| {
            format!(
                "tree size {} is not an extension of tree size {}: {error}",
                new.size, old.size
            )
        },
    )?;
    Ok(json!({
        "ok": true,
        "kind": "consistency",
        "origin": new.origin,
        "old_size": old.size,
        "new_size": new.size,
        "old_root": old.root.to_base64(),
        "new_root": new.root.to_base64(),
    }))
}
