//! The verdict of an event page: the event as the log's events API serves it
//! (`GET /v1/events/{id}`), checked against its receipt (`GET /v1/events/{id}/proof`) and the
//! auditor's policy. The receipt is verified completely; then the event the server shows must be
//! exactly the leaf the receipt proves, and the payload it shows must hash to the leaf's
//! `payload_hash`. An erased payload is shown as erased, with the leaf's proof intact.
//!
//! A schema 2 leaf holds its personal fields only as salted commitments (spec/docs/event.md):
//! the answer's `leaf` must be the proven leaf, every opening the answer gives (salt and value)
//! must open the leaf's commitment, every committed field must be opened (or the whole contents
//! be erased), and the event shown in clear must be exactly the leaf's clear fields and the
//! opened values. Only then is the clear event called verified.

use base64::Engine as _;
use cairn_spec::event::{
    AnyEventLeaf, Disclosure, EventDisclosure, EventLeaf, EventLeafV2, FieldOpening, PersonalField,
    Salt,
};
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
    let (checks, payload, opened) = match &event {
        AnyEventLeaf::V1(leaf) => (
            check_answer(&members, leaf, receipt.index),
            payload_status(&members),
            None,
        ),
        AnyEventLeaf::V2(leaf) => check_answer_v2(&members, leaf, receipt.index),
    };
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
            "opened": opened,
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

/// The answer's `event_id` and `index` against the proven leaf's.
fn check_identity(members: &[(String, Value)], event_id: &str, index: u64) -> [Check; 2] {
    let id_ok = matches!(member(members, "event_id"),
        Some(Value::String(id)) if id == event_id);
    let index_ok = matches!(member(members, "index"),
        Some(Value::Number(number)) if *number == index as f64);
    [
        Check {
            name: "event_id",
            ok: id_ok,
            detail: if id_ok {
                "the event ID is the leaf's".into()
            } else {
                format!("the answer's event_id is not the leaf's {event_id}")
            },
        },
        Check {
            name: "index",
            ok: index_ok,
            detail: if index_ok {
                format!("index {index}, as the receipt proves")
            } else {
                format!("the answer's index is not the receipt's {index}")
            },
        },
    ]
}

/// The checks of a schema 2 answer against the proven leaf at `index`, what it says of the
/// contents, and the event in clear (canonical JSON) once every opening checked.
fn check_answer_v2(
    members: &[(String, Value)],
    leaf: &EventLeafV2,
    index: u64,
) -> (Vec<Check>, serde_json::Value, Option<String>) {
    let mut checks = Vec::new();
    let shown = member(members, "leaf").map(jcs::canonicalize);
    let leaf_ok = shown.as_deref().map(str::as_bytes) == Some(leaf.leaf.as_slice());
    checks.push(Check {
        name: "event",
        ok: leaf_ok,
        detail: if leaf_ok {
            "the leaf shown is exactly the proven leaf".into()
        } else {
            "the event shown differs from the leaf the receipt proves".into()
        },
    });
    checks.extend(check_identity(members, leaf.clear.event_id.as_str(), index));
    let erased_by = match member(members, "erased_by") {
        Some(Value::String(by)) => Some(by.clone()),
        _ => None,
    };
    let has_payload = leaf.commitments.get(PersonalField::Payload).is_some();
    let status = match member(members, "contents") {
        Some(Value::String(status)) => status.clone(),
        _ => String::new(),
    };
    match status.as_str() {
        "held" => match open_v2(members, leaf) {
            Ok((disclosure, opened)) => {
                let payload = disclosure
                    .payload
                    .as_ref()
                    .and_then(|payload| match payload {
                        Disclosure::Opened(opening) => {
                            String::from_utf8(opening.value.clone()).ok()
                        }
                        Disclosure::Erased => None,
                    });
                checks.push(Check {
                    name: "contents",
                    ok: true,
                    detail: format!(
                        "{} opened, each checked against the leaf's salted commitment; the event \
                         shown in clear is the leaf's clear fields and those values",
                        PersonalField::ALL
                            .iter()
                            .filter(|field| disclosure.get(**field).is_some())
                            .map(|field| field.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
                let payload = json!({
                    "status": if has_payload { "held" } else { "none" },
                    "canonical": payload,
                    "erased_by": erased_by,
                });
                (checks, payload, Some(opened))
            }
            Err(reason) => {
                checks.push(Check {
                    name: "contents",
                    ok: false,
                    detail: reason,
                });
                let payload =
                    json!({"status": "unknown", "canonical": null, "erased_by": erased_by});
                (checks, payload, None)
            }
        },
        "erased" => {
            let shown_nothing = matches!(member(members, "event"), None | Some(Value::Null))
                && matches!(member(members, "openings"), None | Some(Value::Null));
            checks.push(Check {
                name: "contents",
                ok: shown_nothing,
                detail: if shown_nothing {
                    "erased: the leaf keeps its commitments, and its proof is intact".into()
                } else {
                    "the contents are said to be erased, but the answer shows some".into()
                },
            });
            let payload = json!({"status": "erased", "canonical": null, "erased_by": erased_by});
            (checks, payload, None)
        }
        other => {
            checks.push(Check {
                name: "contents",
                ok: false,
                detail: format!("unknown contents status {other:?}"),
            });
            let payload = json!({"status": "unknown", "canonical": null, "erased_by": erased_by});
            (checks, payload, None)
        }
    }
}

/// Checks the answer's openings against `leaf` and the event it shows in clear against them;
/// answers the disclosure and the clear event's canonical JSON, or why not.
fn open_v2(
    members: &[(String, Value)],
    leaf: &EventLeafV2,
) -> Result<(EventDisclosure, String), String> {
    let Some(Value::Object(openings)) = member(members, "openings") else {
        return Err("the contents are said to be held, but no openings are shown".into());
    };
    let mut disclosure = EventDisclosure::default();
    let mut opened = Vec::new();
    for (name, opening) in openings {
        let field = PersonalField::from_name(name)
            .ok_or_else(|| format!("an opening of an unknown field {name:?}"))?;
        let Value::Object(parts) = opening else {
            return Err(format!("the opening of {name} is not an object"));
        };
        let salt = match member(parts, "salt") {
            Some(Value::String(text)) => base64::engine::general_purpose::STANDARD
                .decode(text)
                .ok()
                .and_then(|bytes: Vec<u8>| Salt::from_slice(&bytes)),
            _ => None,
        }
        .ok_or_else(|| format!("the opening of {name} has no valid salt"))?;
        let value =
            member(parts, "value").ok_or_else(|| format!("the opening of {name} has no value"))?;
        let opening = FieldOpening {
            salt,
            value: jcs::canonicalize(value).into_bytes(),
        };
        leaf.verify_opening(field, &opening)
            .map_err(|error| format!("{name}: {error}"))?;
        opened.push((field, value.clone()));
        disclosure.set(field, Disclosure::Opened(opening));
    }
    leaf.verify_disclosure(&disclosure)
        .map_err(|error| error.to_string())?;
    let clear = &leaf.clear;
    let mut expected = vec![
        (
            "event_id".to_string(),
            Value::String(clear.event_id.as_str().to_string()),
        ),
        (
            "timestamp".to_string(),
            Value::String(clear.timestamp.clone()),
        ),
        (
            "received_at".to_string(),
            Value::String(clear.received_at.to_rfc3339()),
        ),
        (
            "submitted_by".to_string(),
            Value::String(clear.submitted_by.clone()),
        ),
        ("action".to_string(), Value::String(clear.action.clone())),
        ("outcome".to_string(), Value::String(clear.outcome.clone())),
    ];
    for (field, value) in opened {
        expected.push((field.name().to_string(), value));
    }
    let expected = jcs::canonicalize(&Value::Object(expected));
    match member(members, "event").map(jcs::canonicalize) {
        Some(shown) if shown == expected => Ok((disclosure, expected)),
        Some(_) => Err(
            "the event shown in clear is not the leaf's clear fields and the opened values".into(),
        ),
        None => Err("the contents are said to be held, but no event is shown".into()),
    }
}

/// The checks of the answer against the proven leaf at `index`.
fn check_answer(members: &[(String, Value)], event: &EventLeaf, index: u64) -> Vec<Check> {
    let mut checks = Vec::new();
    let shown = member(members, "event").map(jcs::canonicalize);
    checks.push(match shown {
        Some(shown) if shown.as_bytes() == event.leaf.as_slice() => Check {
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
    checks.extend(check_identity(members, event.event_id.as_str(), index));
    checks.push(check_payload(members, event));
    checks
}

/// The payload shown, or its absence, against the leaf's commitment to it.
fn check_payload(members: &[(String, Value)], leaf: &EventLeaf) -> Check {
    let status = match member(members, "payload_status") {
        Some(Value::String(status)) => status.as_str(),
        _ => "",
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
