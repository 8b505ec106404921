//! Verdicts over the documents an auditor holds: a `cairn.receipt/v1` or C2SP tlog-proof, a
//! `cairn.export/v1` or `/v2` bundle, each checked completely by cairn-spec against the
//! auditor's policy. Every verdict is a JSON object with `"ok"`; a refusal carries cairn-spec's
//! own reason in `"error"`.

use cairn_spec::event::AnyEventLeaf;
use cairn_spec::export::{AnyExport, EventContents, ExportTrust};
use cairn_spec::policy::{Policy, Quorum};
use cairn_spec::receipt::{self, Receipt, VerifiedReceipt, TLOG_PROOF_HEADER};
use serde_json::{json, Value};

/// Most events of an export whose leaves a verdict lists (all are verified; the count says how
/// many there were).
pub const MAX_LISTED_EVENTS: usize = 1000;

/// A refusal: `{"ok": false, "kind": kind, "error": reason}`.
pub(crate) fn refusal(kind: &str, error: impl std::fmt::Display) -> String {
    json!({"ok": false, "kind": kind, "error": error.to_string()}).to_string()
}

/// The auditor's policy, or why it is not one.
pub(crate) fn parse_policy(policy: &[u8]) -> Result<Policy, String> {
    if policy.iter().all(u8::is_ascii_whitespace) {
        return Err("no policy given: paste or drop the policy file to verify against".into());
    }
    Policy::parse(policy).map_err(|error| format!("policy: {error}"))
}

/// What a leaf shows: its text if UTF-8, and, if it is an audit event leaf, its schema and ID.
pub(crate) fn leaf_json(leaf: Option<&[u8]>) -> Value {
    let Some(leaf) = leaf else {
        return json!({"present": false});
    };
    let text = std::str::from_utf8(leaf).ok();
    let event = match AnyEventLeaf::parse(leaf) {
        Ok(event) => json!({
            "schema_version": event.schema_version(),
            "event_id": event.event_id().as_str(),
        }),
        Err(error) => json!({"not_an_event": error.to_string()}),
    };
    json!({"present": true, "text": text, "bytes": leaf.len(), "event": event})
}

/// The JSON of a verified receipt.
pub(crate) fn verified_receipt_json(receipt: &Receipt, verified: &VerifiedReceipt) -> Value {
    json!({
        "ok": true,
        "kind": "receipt",
        "origin": verified.origin,
        "index": verified.index,
        "leaf_hash": verified.leaf_hash.to_base64(),
        "tree_size": verified.tree_size,
        "root": verified.root.to_base64(),
        "witnesses": verified.witnesses.iter().map(|(name, time)| json!({
            "name": name, "cosigned_at": time,
        })).collect::<Vec<_>>(),
        "timestamps": verified.timestamps.iter().map(|(tsa, time)| json!({
            "tsa": tsa, "time": time.to_rfc3339(),
        })).collect::<Vec<_>>(),
        "unknown_signatures": verified.unknown_signatures,
        "inclusion_proof": receipt.inclusion_proof.iter().map(|hash| hash.to_base64())
            .collect::<Vec<_>>(),
        "checkpoint": receipt.checkpoint,
        "leaf": leaf_json(receipt.leaf.as_deref()),
    })
}

/// Reads a receipt from its JSON form or a C2SP tlog-proof (which carries the leaf in its
/// `extra` line, and no timestamps).
pub(crate) fn parse_receipt(document: &[u8]) -> Result<Receipt, String> {
    let is_tlog_proof = document.starts_with(TLOG_PROOF_HEADER.as_bytes());
    if is_tlog_proof {
        let text = std::str::from_utf8(document).map_err(|_| "a tlog-proof must be UTF-8")?;
        Receipt::from_tlog_proof(text, None).map_err(|error| error.to_string())
    } else {
        Receipt::from_json(document).map_err(|error| error.to_string())
    }
}

/// Verifies a receipt (`cairn.receipt/v1` JSON or a C2SP tlog-proof) against a policy: the log's
/// signature, the witness quorum, every timestamp token and the TSA quorum, the leaf hash and
/// the inclusion proof.
pub fn verify_receipt(document: &[u8], policy: &[u8]) -> String {
    let policy = match parse_policy(policy) {
        Ok(policy) => policy,
        Err(error) => return refusal("receipt", error),
    };
    let receipt = match parse_receipt(document) {
        Ok(receipt) => receipt,
        Err(error) => return refusal("receipt", error),
    };
    match receipt::verify(&receipt, &policy) {
        Ok(verified) => verified_receipt_json(&receipt, &verified).to_string(),
        Err(error) => refusal("receipt", error),
    }
}

/// Verifies an export bundle (`cairn.export/v1` or `/v2`) against a policy: every leaf, payload
/// or opening, inclusion proof, the checkpoint's signatures and witnesses, the timestamps.
/// Events whose payload or personal fields were erased verify as committed, contents erased.
pub fn verify_export(bundle: &[u8], policy: &[u8]) -> String {
    let policy = match parse_policy(policy) {
        Ok(policy) => policy,
        Err(error) => return refusal("export", error),
    };
    let export = match AnyExport::from_json(bundle) {
        Ok(export) => export,
        Err(error) => return refusal("export", error),
    };
    let verified = match export.verify(ExportTrust::Policy(&policy)) {
        Ok(verified) => verified,
        Err(error) => return refusal("export", error),
    };
    let (format, checkpoint, leaves): (&str, &str, Vec<&[u8]>) = match &export {
        AnyExport::V1(bundle) => (
            &bundle.format,
            &bundle.checkpoint,
            bundle
                .events
                .iter()
                .map(|event| event.leaf.as_slice())
                .collect(),
        ),
        AnyExport::V2(bundle) => (
            &bundle.format,
            &bundle.checkpoint,
            bundle
                .events
                .iter()
                .map(|event| event.leaf.as_slice())
                .collect(),
        ),
    };
    let events: Vec<Value> = verified
        .events
        .iter()
        .zip(leaves)
        .take(MAX_LISTED_EVENTS)
        .map(|(event, leaf)| {
            let erased = match &event.contents {
                EventContents::Clear { payload_erased } => *payload_erased,
                EventContents::Committed(contents) => !contents.erased.is_empty(),
            };
            json!({
                "index": event.index,
                "event_id": event.event_id.as_str(),
                "schema_version": event.schema_version,
                "contents": event.contents.to_string(),
                "complete": event.contents.is_complete(),
                "erased": erased,
                "leaf": std::str::from_utf8(leaf).ok(),
            })
        })
        .collect();
    json!({
        "ok": true,
        "kind": "export",
        "format": format,
        "origin": verified.origin,
        "tree_size": verified.tree_size,
        "root": verified.root.to_base64(),
        "unchecked_timestamps": verified.unchecked_timestamps,
        "event_count": verified.events.len(),
        "events_listed": events.len(),
        "events": events,
        "checkpoint": checkpoint,
    })
    .to_string()
}

/// What a document is, by its first bytes and, for JSON, its `format`.
enum DocumentKind {
    Receipt,
    Export,
    Unknown(String),
}

fn document_kind(document: &[u8]) -> DocumentKind {
    if document.starts_with(TLOG_PROOF_HEADER.as_bytes()) {
        return DocumentKind::Receipt;
    }
    #[derive(serde::Deserialize)]
    struct FormatOnly {
        format: String,
    }
    match serde_json::from_slice::<FormatOnly>(document) {
        Ok(peek) if peek.format == receipt::RECEIPT_FORMAT => DocumentKind::Receipt,
        Ok(peek) if peek.format.starts_with("cairn.export/") => DocumentKind::Export,
        Ok(peek) => DocumentKind::Unknown(format!(
            "unknown document format {:?}: expected {}, cairn.export/v1 or cairn.export/v2, \
             or a {TLOG_PROOF_HEADER}",
            peek.format.chars().take(64).collect::<String>(),
            receipt::RECEIPT_FORMAT,
        )),
        Err(error) => DocumentKind::Unknown(format!(
            "not a receipt, an export bundle or a {TLOG_PROOF_HEADER}: {error}"
        )),
    }
}

/// Verifies whatever the auditor dropped: a receipt, a tlog-proof or an export bundle.
pub fn verify_document(document: &[u8], policy: &[u8]) -> String {
    match document_kind(document) {
        DocumentKind::Receipt => verify_receipt(document, policy),
        DocumentKind::Export => verify_export(document, policy),
        DocumentKind::Unknown(error) => refusal("unknown", error),
    }
}

/// Reads a policy and says what it trusts: the logs by origin, the witnesses by name, the
/// quorum, the TSAs and how many must have timestamped a checkpoint.
pub fn check_policy(policy: &[u8]) -> String {
    let policy = match parse_policy(policy) {
        Ok(policy) => policy,
        Err(error) => return refusal("policy", error),
    };
    let quorum = match &policy.quorum {
        Quorum::None => None,
        Quorum::Named(name) => Some(name.as_str()),
    };
    json!({
        "ok": true,
        "kind": "policy",
        "logs": policy.logs.iter().map(|log| log.key.key_name().to_string()).collect::<Vec<_>>(),
        "witnesses": policy.witnesses.iter().map(|witness| &witness.name).collect::<Vec<_>>(),
        "quorum": quorum,
        "tsas": policy.tsas.iter().map(|tsa| &tsa.name).collect::<Vec<_>>(),
        "tsa_quorum": policy.tsa_quorum,
    })
    .to_string()
}
