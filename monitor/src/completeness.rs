//! Complete answers, for an auditor (spec/docs/completeness.md §3.3): what `verify-export`
//! says of a bundle's completeness proof, and `verify-query`, which checks a saved answer of
//! `GET /v1/events?…&proof=true`: its proof (a `cairn.export/v2` bundle with a completeness
//! proof) verifies, and the events the answer lists are exactly the bundle's, in order, so
//! that an answer with an event dropped, added or moved fails.

use std::collections::BTreeSet;

use cairn_spec::export::{AnyExport, ExportBundleV2, ExportTrust, VerifiedExportV2};
use serde_json::{json, Value};

/// Most bytes of a saved query answer.
pub const MAX_ANSWER_BYTES: usize = cairn_spec::export::MAX_EXPORT_BYTES;

/// The lines `verify-export` adds about completeness.
pub fn describe(verified: &VerifiedExportV2) -> String {
    match &verified.completeness {
        None => "  not proven complete: the bundle carries no completeness proof (other events \
                 of the same query may exist)\n"
            .to_owned(),
        Some(complete) => {
            let mut text = format!(
                "  complete: these are every event with {} {:?} among leaves [{}, {}) of the \
                 checkpoint, proven against its cairn-index/v1 root ({} index key{})\n",
                complete.field,
                complete.value,
                complete.from,
                complete.to,
                complete.keys,
                if complete.keys == 1 { "" } else { "s" }
            );
            if let Some((range, inside)) = &complete.received {
                let whole = range.covers_from == 0 && range.covers_to >= complete.to;
                text.push_str(&format!(
                    "  received in [{}, {}): {} of them; every such event of the value among \
                     leaves [{}, {}){}\n",
                    range.from.to_rfc3339(),
                    range.to.to_rfc3339(),
                    inside.len(),
                    range.covers_from,
                    range.covers_to,
                    if whole {
                        ", that is, in the whole checkpoint"
                    } else {
                        " (a page: the cursor's pages cover the rest)"
                    }
                ));
            }
            if complete.value_erased > 0 {
                text.push_str(&format!(
                    "  ({} of them have the asked field erased: listed by the index, their \
                     value no longer shown)\n",
                    complete.value_erased
                ));
            }
            text
        }
    }
}

/// The `completeness` member of `verify-export --json`.
pub fn json(verified: &VerifiedExportV2) -> Value {
    match &verified.completeness {
        None => Value::Null,
        Some(complete) => json!({
            "field": complete.field,
            "value": complete.value,
            "from": complete.from,
            "to": complete.to,
            "keys": complete.keys,
            "value_checked": complete.value_checked,
            "value_erased": complete.value_erased,
            "received": complete.received.as_ref().map(|(range, inside)| json!({
                "from": range.from.to_rfc3339(),
                "to": range.to.to_rfc3339(),
                "covers_from": range.covers_from,
                "covers_to": range.covers_to,
                "events": inside,
            })),
        }),
    }
}

/// A verified query answer.
#[derive(Debug)]
pub struct VerifiedQuery {
    /// Its proof, verified.
    pub verified: VerifiedExportV2,
    /// The cursor of the next page, if the answer had one.
    pub next_cursor: Option<String>,
}

/// Checks a saved answer of `GET /v1/events?…&proof=true` under `trust`.
pub fn verify_query(answer: &[u8], trust: ExportTrust<'_>) -> Result<VerifiedQuery, String> {
    if answer.len() > MAX_ANSWER_BYTES {
        return Err(format!(
            "the answer is larger than {MAX_ANSWER_BYTES} bytes"
        ));
    }
    let value: Value =
        serde_json::from_slice(answer).map_err(|error| format!("the answer: {error}"))?;
    let proof = value
        .get("proof")
        .ok_or("the answer carries no proof: ask with proof=true")?;
    let bundle: ExportBundleV2 = serde_json::from_value(proof.clone())
        .map_err(|error| format!("the answer's proof: {error}"))?;
    let bundle = ExportBundleV2::from_json(bundle.to_json().as_bytes())
        .map_err(|error| format!("the answer's proof: {error}"))?;
    if bundle.completeness.is_none() {
        return Err("the answer's proof carries no completeness proof".to_owned());
    }
    let verified = AnyExport::V2(bundle.clone())
        .verify(trust)
        .map_err(|error| format!("the answer's proof does not verify: {error}"))?;
    let listed = value
        .get("events")
        .and_then(Value::as_array)
        .ok_or("the answer has no events list")?;
    // A time range's proof holds its window's events; the answer lists those received in it
    // (a set, so that a long answer is checked in n log n, not n²).
    let inside: Option<BTreeSet<u64>> = verified
        .completeness
        .as_ref()
        .and_then(|complete| complete.received.as_ref())
        .map(|(_, inside)| inside.iter().copied().collect());
    let in_range = |index: u64| inside.as_ref().is_none_or(|inside| inside.contains(&index));
    let expected: Vec<_> = verified
        .events
        .iter()
        .filter(|event| in_range(event.index))
        .collect();
    if listed.len() != expected.len() {
        return Err(format!(
            "the answer lists {} events, its proof holds {}",
            listed.len(),
            expected.len()
        ));
    }
    for (position, (shown, proven)) in listed.iter().zip(expected).enumerate() {
        let index = shown.get("index").and_then(Value::as_u64);
        let event_id = shown.get("event_id").and_then(Value::as_str);
        if index != Some(proven.index) || event_id != Some(proven.event_id.as_str()) {
            return Err(format!(
                "event {position} of the answer ({index:?}, {event_id:?}) is not the proof's \
                 event {position} (leaf {}, {})",
                proven.index,
                proven.event_id.as_str()
            ));
        }
    }
    Ok(VerifiedQuery {
        verified,
        next_cursor: value
            .get("next_cursor")
            .and_then(Value::as_str)
            .map(str::to_owned),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_spec::checkpoint::Checkpoint;
    use cairn_spec::completeness::{action_key, extension_line, CompletenessProof, IndexMap};
    use cairn_spec::completeness::{Item, KeyProof};
    use cairn_spec::event::{EventId, EventInput};
    use cairn_spec::export::{ExportOpenings, ExportedEventV2, EXPORT_FORMAT_V2};
    use cairn_spec::merkle::{self, CompactRange};
    use cairn_spec::note::{Ed25519Signer, KeyName};
    use cairn_spec::time::Instant;
    use cairn_spec::Hash;

    const ORIGIN: &str = "example.com/monitor-query-test";

    fn key() -> Ed25519Signer {
        Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [3; 32])
    }

    /// A log of 6 events (`login` at even leaves) and the proven answer for `login`.
    fn answer() -> Value {
        let (mut stored, mut range, mut map) = (Vec::new(), CompactRange::new(), IndexMap::new());
        let (mut leaves, mut list) = (Vec::new(), Vec::new());
        let login = action_key("login");
        for index in 0..6u64 {
            let action = if index.is_multiple_of(2) {
                "login"
            } else {
                "read"
            };
            let json = format!(
                r#"{{"event_id":"00000000-0000-4000-8000-{index:012}","timestamp":"2026-11-25T10:00:00Z","actor":{{"id":"a","type":"user"}},"action":"{action}","resource":{{"type":"t","id":"r"}},"outcome":"success"}}"#
            );
            let (leaf, _) = EventInput::parse(json.as_bytes())
                .expect("event")
                .into_leaf(EventId::new_v4([0; 16]), Instant::from_unix(0, 0), "p")
                .expect("leaf");
            let leaf_hash = Hash::of_leaf(&leaf.leaf);
            range
                .append_with(leaf_hash, |_, hash| stored.push(*hash))
                .expect("appends");
            let item = Item {
                leaf_index: index,
                leaf_hash,
            };
            map.add(action_key(action), item).expect("in order");
            if action == "login" {
                list.push(item);
            }
            leaves.push(leaf);
        }
        let note = Checkpoint {
            origin: ORIGIN.into(),
            size: 6,
            root: merkle::tree_root(6, &stored).expect("root"),
            extensions: vec![extension_line(&map.root())],
        }
        .sign(&key())
        .expect("signs");
        let proof = KeyProof::build(login, &map.prove(&login), &list, 0, 6).expect("proof");
        let bundle = ExportBundleV2 {
            format: EXPORT_FORMAT_V2.into(),
            checkpoint: String::from_utf8(note.to_bytes().expect("note")).expect("utf-8"),
            timestamps: vec![],
            events: list
                .iter()
                .map(|item| ExportedEventV2 {
                    index: item.leaf_index,
                    leaf: leaves[item.leaf_index as usize].leaf.clone(),
                    payload: None,
                    openings: ExportOpenings::default(),
                    erased: vec![],
                    inclusion_proof: merkle::inclusion_proof(item.leaf_index, 6, &stored)
                        .expect("proof"),
                })
                .collect(),
            completeness: Some(CompletenessProof {
                field: "action".into(),
                value: "login".into(),
                from: 0,
                to: 6,
                keys: vec![proof],
                received: None,
            }),
        };
        let events: Vec<Value> = list
            .iter()
            .map(|item| {
                json!({
                    "index": item.leaf_index,
                    "event_id": format!("00000000-0000-4000-8000-{:012}", item.leaf_index),
                })
            })
            .collect();
        json!({
            "events": events,
            "next_cursor": null,
            "proof": serde_json::from_str::<Value>(&bundle.to_json()).expect("json"),
        })
    }

    fn verify(answer: &Value) -> Result<VerifiedQuery, String> {
        let key = key().verifier();
        verify_query(answer.to_string().as_bytes(), ExportTrust::LogKey(&key))
    }

    #[test]
    fn a_proven_answer_verifies_and_one_with_an_event_dropped_does_not() {
        let answer = answer();
        let verified = verify(&answer).expect("verifies");
        assert_eq!(verified.verified.events.len(), 3);
        assert!(describe(&verified.verified).contains("complete: these are every event"));
        // Dropped from the list shown, kept in the proof.
        let mut listed = answer.clone();
        listed["events"].as_array_mut().expect("events").remove(1);
        assert!(verify(&listed)
            .expect_err("refused")
            .contains("lists 2 events"));
        // Dropped from both: the completeness proof catches it.
        let mut both = listed.clone();
        both["proof"]["events"]
            .as_array_mut()
            .expect("events")
            .remove(1);
        let error = verify(&both).expect_err("refused");
        assert!(error.contains("leaves out the event at leaf 2"), "{error}");
        // Two events swapped in the list shown.
        let mut moved = answer.clone();
        moved["events"].as_array_mut().expect("events").swap(0, 1);
        assert!(verify(&moved)
            .expect_err("refused")
            .contains("is not the proof's"));
    }
}
