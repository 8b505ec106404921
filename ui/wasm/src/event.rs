//! The verdict of an event page: the event as the log's events API serves it
//! (`GET /v1/events/{id}`), checked against its receipt (`GET /v1/events/{id}/proof`) and the
//! auditor's policy. The receipt is verified completely; then the event the server shows must be
//! exactly the leaf the receipt proves, and the payload it shows must hash to the leaf's
//! `payload_hash`. An erased payload is shown as erased, with the leaf's proof intact.

use cairn_spec::event::AnyEventLeaf;
use cairn_spec::jcs::{self, Limits, Value};
use cairn_spec::receipt;
use serde_json::json;

use crate::verdict::{parse_policy, parse_receipt, refusal, verified_receipt_json};

/// Bounds on the events API's answer: a leaf (at most 64 KiB) and a payload (at most 1 MiB,
/// 16 levels deep), inside a small object.
fn answer_limits() -> Limits {
    Limits {
        max_bytes: 2 << 20,
        max_depth: 20,
        max_string_bytes: 64 * 1024,
        max_container_len: 10_000,
    }
}

/// One check of the answer against the proven leaf.
struct Check {
    name: &'static str,
    ok: bool,
    detail: String,
}

fn member<'a>(members: &'a [(String, Value)], name: &str) -> Option<&'a Value> {
    members
        .iter()
        .find(|(member, _)| member == name)
        .map(|(_, value)| value)
}

/// Verifies an event page: the receipt against the policy, then the answer against the leaf.
pub fn verify_event(answer: &[u8], receipt_json: &[u8], policy: &[u8]) -> String {
    let policy = match parse_policy(policy) {
        Ok(policy) => policy,
        Err(error) => return refusal("event", error),
    };
    let receipt = match parse_receipt(receipt_json) {
        Ok(receipt) => receipt,
        Err(error) => return refusal("event", format!("receipt: {error}")),
    };
    let verified = match receipt::verify(&receipt, &policy) {
        Ok(verified) => verified,
        Err(error) => return refusal("event", format!("receipt: {error}")),
    };
    let Some(leaf) = receipt.leaf.as_deref() else {
        return refusal(
            "event",
            "the receipt carries no leaf to compare the event with",
        );
    };
    let event = match AnyEventLeaf::parse(leaf) {
        Ok(event) => event,
        Err(error) => {
            return refusal(
                "event",
                format!("the proven leaf is no audit event: {error}"),
            )
        }
    };
    let members = match jcs::parse(answer, answer_limits()) {
        Ok(Value::Object(members)) => members,
        Ok(_) => return refusal("event", "the events API's answer is not a JSON object"),
        Err(error) => return refusal("event", format!("the events API's answer: {error}")),
    };
    let checks = check_answer(&members, &event, receipt.index);
    let payload = payload_status(&members);
    let failed: Vec<String> = checks
        .iter()
        .filter(|check| !check.ok)
        .map(|check| format!("{}: {}", check.name, check.detail))
        .collect();
    let mut verdict = json!({
        "ok": failed.is_empty(),
        "kind": "event",
        "receipt": verified_receipt_json(&receipt, &verified),
        "event": {
            "schema_version": event.schema_version(),
            "event_id": event.event_id().as_str(),
            "canonical": std::str::from_utf8(leaf).ok(),
        },
        "payload": payload,
        "checks": checks.iter().map(|check| json!({
            "name": check.name, "ok": check.ok, "detail": check.detail,
        })).collect::<Vec<_>>(),
    });
    if !failed.is_empty() {
        verdict["error"] = json!(failed.join("; "));
    }
    verdict.to_string()
}

/// What the answer says of the payload: its status, and its canonical form if shown.
fn payload_status(members: &[(String, Value)]) -> serde_json::Value {
    let status = match member(members, "payload_status") {
        Some(Value::String(status)) => status.clone(),
        _ => "unknown".to_string(),
    };
    let shown = match (status.as_str(), member(members, "payload")) {
        ("held", Some(payload)) => Some(jcs::canonicalize(payload)),
        _ => None,
    };
    let erased_by = match member(members, "erased_by") {
        Some(Value::String(by)) => Some(by.clone()),
        _ => None,
    };
    json!({"status": status, "canonical": shown, "erased_by": erased_by})
}

/// The checks of the answer against the proven leaf at `index`.
fn check_answer(members: &[(String, Value)], event: &AnyEventLeaf, index: u64) -> Vec<Check> {
    let mut checks = Vec::new();
    let shown = member(members, "event").map(jcs::canonicalize);
    checks.push(match shown {
        Some(shown) if shown.as_bytes() == event.leaf() => Check {
            name: "event",
            ok: true,
            detail: "the event shown is exactly the proven leaf".into(),
        },
        Some(_) => Check {
            name: "event",
            ok: false,
            detail: "the event shown differs from the leaf the receipt proves".into(),
        },
        None => Check {
            name: "event",
            ok: false,
            detail: "the answer has no event".into(),
        },
    });
    let id_ok = matches!(member(members, "event_id"),
        Some(Value::String(id)) if id == event.event_id().as_str());
    checks.push(Check {
        name: "event_id",
        ok: id_ok,
        detail: if id_ok {
            "the event ID is the leaf's".into()
        } else {
            format!(
                "the answer's event_id is not the leaf's {}",
                event.event_id().as_str()
            )
        },
    });
    let index_ok = matches!(member(members, "index"),
        Some(Value::Number(number)) if *number == index as f64);
    checks.push(Check {
        name: "index",
        ok: index_ok,
        detail: if index_ok {
            format!("index {index}, as the receipt proves")
        } else {
            format!("the answer's index is not the receipt's {index}")
        },
    });
    checks.push(check_payload(members, event));
    checks
}

/// The payload shown, or its absence, against the leaf's commitment to it.
fn check_payload(members: &[(String, Value)], event: &AnyEventLeaf) -> Check {
    let status = match member(members, "payload_status") {
        Some(Value::String(status)) => status.as_str(),
        _ => "",
    };
    let leaf = match event {
        AnyEventLeaf::V1(leaf) => leaf,
        AnyEventLeaf::V2(_) => {
            return Check {
                name: "payload",
                ok: true,
                detail: "schema 2 leaf: personal fields and payload are salted commitments; \
                         the proof covers the commitments, the openings are not checked here"
                    .into(),
            }
        }
    };
    let committed = leaf.payload_hash.is_some();
    let check = |ok: bool, detail: &str| Check {
        name: "payload",
        ok,
        detail: detail.to_string(),
    };
    match (status, committed) {
        ("held", true) => {
            let Some(payload) = member(members, "payload") else {
                return check(false, "the payload is said to be held but is not shown");
            };
            match leaf.payload_matches(jcs::canonicalize(payload).as_bytes()) {
                Ok(true) => check(true, "the payload shown hashes to the leaf's payload_hash"),
                Ok(false) => check(
                    false,
                    "the payload shown does not hash to the leaf's payload_hash",
                ),
                Err(error) => check(false, &format!("the payload shown is not valid: {error}")),
            }
        }
        ("erased", true) => check(
            true,
            "erased: the leaf keeps its payload_hash, and its proof is intact",
        ),
        ("none", false) => check(true, "the event has no payload"),
        ("none", true) => check(
            false,
            "the leaf commits to a payload the answer says it never had",
        ),
        (_, false) => check(
            false,
            "the answer shows a payload the leaf does not commit to",
        ),
        (other, true) => check(false, &format!("unknown payload_status {other:?}")),
    }
}
