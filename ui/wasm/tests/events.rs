//! Event pages, export bundles, checkpoints and consistency through the module's exported
//! functions, called natively exactly as the browser calls them, over an example log of audit
//! events made by cairn-spec: valid inputs verify, erased payloads show as erased with their
//! proofs intact, and every tampering is refused.

mod support;

use cairn_spec::export::{ExportBundle, ExportedEvent, EXPORT_FORMAT};
use cairn_spec::merkle;
use cairn_ui_wasm::{
    cairn_verify_checkpoint, cairn_verify_consistency, cairn_verify_event, cairn_verify_export,
};
use serde_json::Value;
use support::{call, event_answer, event_world, policy_text};

fn verify_event(answer: &str, receipt: &str, policy: &str) -> Value {
    call(
        // SAFETY: the inputs are what cairn_alloc gave (support::call).
        |[(a, al), (r, rl), (p, pl)]| unsafe { cairn_verify_event(a, al, r, rl, p, pl) },
        [answer.as_bytes(), receipt.as_bytes(), policy.as_bytes()],
    )
}

fn check<'a>(verdict: &'a Value, name: &str) -> &'a Value {
    verdict["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|check| check["name"] == name)
        .expect("the check is listed")
}

#[test]
fn an_event_page_verifies_with_its_payload_and_shows_an_erased_one_as_erased() {
    let (world, payloads) = event_world(6);
    let policy = policy_text(&world, "two", true);
    let receipt = world.receipt(2, &[0, 1]).to_json();

    let verdict = verify_event(
        &event_answer(&world, &payloads, 2, false),
        &receipt,
        &policy,
    );
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["payload"]["status"], "held");
    assert_eq!(
        verdict["payload"]["canonical"],
        r#"{"amount":2.5,"note":"é ü"}"#
    );
    assert_eq!(
        verdict["event"]["canonical"],
        std::str::from_utf8(&world.leaves[2]).expect("UTF-8")
    );
    assert_eq!(verdict["receipt"]["ok"], true);
    assert!(verdict["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .all(|check| check["ok"] == true));

    let erased = verify_event(&event_answer(&world, &payloads, 2, true), &receipt, &policy);
    assert_eq!(erased["ok"], true, "{erased}");
    assert_eq!(erased["payload"]["status"], "erased");
    assert_eq!(
        erased["payload"]["erased_by"],
        "00000000-0000-4000-8000-999999999999"
    );
    assert!(check(&erased, "payload")["detail"]
        .as_str()
        .expect("detail")
        .contains("proof is intact"));

    // Event 3 has no payload.
    let none = verify_event(
        &event_answer(&world, &payloads, 3, false),
        &world.receipt(3, &[0, 1]).to_json(),
        &policy,
    );
    assert_eq!(none["ok"], true, "{none}");
    assert_eq!(none["payload"]["status"], "none");
}

#[test]
fn an_event_page_that_differs_from_its_proof_is_refused() {
    let (world, payloads) = event_world(6);
    let policy = policy_text(&world, "two", true);
    let receipt = world.receipt(2, &[0, 1]).to_json();
    let answer = event_answer(&world, &payloads, 2, false);

    let payload = answer.replace(r#""amount":2.5"#, r#""amount":3.5"#);
    let verdict = verify_event(&payload, &receipt, &policy);
    assert_eq!(verdict["ok"], false);
    assert_eq!(check(&verdict, "payload")["ok"], false);
    assert_eq!(check(&verdict, "event")["ok"], true);

    let event = answer.replacen(r#""action":"invoice.pay""#, r#""action":"invoice.void""#, 1);
    let verdict = verify_event(&event, &receipt, &policy);
    assert_eq!(check(&verdict, "event")["ok"], false, "{verdict}");
    assert!(verdict["error"]
        .as_str()
        .expect("why")
        .contains("differs from the leaf"));

    let index = answer.replacen(r#""index":2"#, r#""index":4"#, 1);
    assert_eq!(
        check(&verify_event(&index, &receipt, &policy), "index")["ok"],
        false
    );

    // Another event's receipt: the event shown is not the leaf proven.
    let other = world.receipt(4, &[0, 1]).to_json();
    let verdict = verify_event(&answer, &other, &policy);
    assert_eq!(check(&verdict, "event")["ok"], false);
    assert_eq!(check(&verdict, "event_id")["ok"], false);

    // "erased" for a payload the leaf does not commit to.
    let no_payload = event_answer(&world, &payloads, 3, false)
        .replace(r#""payload_status":"none""#, r#""payload_status":"erased""#);
    let verdict = verify_event(&no_payload, &world.receipt(3, &[0, 1]).to_json(), &policy);
    assert_eq!(check(&verdict, "payload")["ok"], false, "{verdict}");

    // A bad receipt refuses the whole page, whatever the answer.
    let lonely = world.receipt(2, &[1]).to_json();
    let verdict = verify_event(&answer, &lonely, &policy);
    assert_eq!(verdict["ok"], false);
    assert!(verdict["receipt"].is_null());
    assert!(verdict["error"].as_str().expect("why").contains("quorum"));

    let verdict = verify_event("[1,2]", &receipt, &policy);
    assert!(verdict["error"]
        .as_str()
        .expect("why")
        .contains("not a JSON object"));
}

/// An export of `exported` events of the example log, against its checkpoint of the whole tree.
fn export(exported: &[usize], erase: &[usize]) -> (ExportBundle, String) {
    let (world, payloads) = event_world(8);
    let receipt = world.receipt(0, &[0, 1, 2]);
    let size = world.leaves.len() as u64;
    let bundle = ExportBundle {
        format: EXPORT_FORMAT.to_string(),
        checkpoint: receipt.checkpoint.clone(),
        timestamps: receipt.timestamps.clone(),
        events: exported
            .iter()
            .map(|&index| ExportedEvent {
                index: index as u64,
                leaf: world.leaves[index].clone(),
                payload: if erase.contains(&index) {
                    None
                } else {
                    payloads[index].clone()
                },
                inclusion_proof: merkle::inclusion_proof(index as u64, size, &world.stored)
                    .expect("a proof"),
            })
            .collect(),
    };
    (bundle, policy_text(&world, "two", true))
}

fn verify_export(bundle: &str, policy: &str) -> Value {
    call(
        // SAFETY: the inputs are what cairn_alloc gave (support::call).
        |[(b, bl), (p, pl)]| unsafe { cairn_verify_export(b, bl, p, pl) },
        [bundle.as_bytes(), policy.as_bytes()],
    )
}

#[test]
fn an_export_verifies_and_lists_erased_payloads_as_erased() {
    let (bundle, policy) = export(&[0, 2, 3, 6], &[6]);
    let verdict = verify_export(&bundle.to_json(), &policy);
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["format"], "cairn.export/v1");
    assert_eq!(verdict["tree_size"], 8);
    assert_eq!(verdict["event_count"], 4);
    let events = verdict["events"].as_array().expect("events");
    let erased: Vec<u64> = events
        .iter()
        .filter(|event| event["erased"] == true)
        .map(|event| event["index"].as_u64().expect("an index"))
        .collect();
    assert_eq!(erased, [6]);
    assert_eq!(
        events[3]["contents"],
        "verified with contents; payload committed, erased"
    );
    assert_eq!(
        events[1]["event_id"],
        "00000000-0000-4000-8000-000000000002"
    );
}

#[test]
fn a_tampered_export_is_refused() {
    let (mut bundle, policy) = export(&[1, 2], &[]);
    bundle.events[1].payload = Some(br#"{"amount":99,"note":"x"}"#.to_vec());
    let verdict = verify_export(&bundle.to_json(), &policy);
    assert_eq!(verdict["ok"], false, "{verdict}");

    let (mut bundle, policy) = export(&[1, 2], &[]);
    bundle.events[0].inclusion_proof.pop();
    assert_eq!(verify_export(&bundle.to_json(), &policy)["ok"], false);

    let (bundle, _) = export(&[1], &[]);
    let (world, _) = event_world(8);
    let every = policy_text(&world, "every", true);
    assert_eq!(
        verify_export(&bundle.to_json(), &every)["ok"],
        true,
        "all three cosigned"
    );
    let verdict = verify_export(r#"{"format":"cairn.export/v9"}"#, &every);
    assert!(verdict["error"].as_str().expect("why").contains("format"));
}

fn verify_checkpoint(note: &str, policy: &str) -> Value {
    call(
        // SAFETY: the inputs are what cairn_alloc gave (support::call).
        |[(n, nl), (p, pl)]| unsafe { cairn_verify_checkpoint(n, nl, p, pl) },
        [note.as_bytes(), policy.as_bytes()],
    )
}

#[test]
fn a_checkpoint_shows_each_witness_and_its_cosignature_time() {
    let (world, _) = event_world(5);
    let note = world.receipt(0, &[0, 2]).checkpoint;
    let verdict = verify_checkpoint(&note, &policy_text(&world, "two", true));
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["verified"], true);
    assert_eq!(verdict["tree_size"], 5);
    assert_eq!(verdict["quorum_met"], true);
    let witnesses = verdict["witnesses"].as_array().expect("witnesses");
    assert_eq!(witnesses.len(), 3);
    assert_eq!(witnesses[0]["cosigned_at"], 1_764_000_000u64);
    assert!(witnesses[1]["cosigned_at"].is_null(), "w1 did not cosign");
    assert_eq!(witnesses[2]["cosigned_at"], 1_764_000_002u64);

    // Without a policy: read, not verified, the cosignature times only claimed.
    let read = verify_checkpoint(&note, "");
    assert_eq!(read["ok"], true);
    assert_eq!(read["verified"], false);
    assert_eq!(read["signatures"].as_array().expect("signatures").len(), 3);
    assert_eq!(
        read["signatures"][1]["claimed_cosigned_at"],
        1_764_000_000u64
    );

    let short = verify_checkpoint(
        &world.receipt(0, &[1]).checkpoint,
        &policy_text(&world, "two", true),
    );
    assert_eq!(short["ok"], false);
    assert_eq!(short["quorum_met"], false);

    let forged = note.replacen("\n5\n", "\n6\n", 1);
    let verdict = verify_checkpoint(&forged, &policy_text(&world, "two", true));
    assert_eq!(verdict["ok"], false);
    assert!(verdict["error"]
        .as_str()
        .expect("why")
        .contains("signature"));
    assert_eq!(verify_checkpoint("not a note", "")["ok"], false);
}

#[test]
fn consistency_between_two_checkpoints_is_proved_and_a_fork_is_caught() {
    let (world, _) = event_world(9);
    let policy = policy_text(&world, "two", true);
    let old = world.receipt_at(0, 3, &[0, 1]).checkpoint;
    let new = world.receipt_at(0, 9, &[0, 1]).checkpoint;
    let proof = merkle::consistency_proof(3, 9, &world.stored).expect("a proof");
    let answer = serde_json::json!({"old": 3, "new": 9, "proof": proof}).to_string();
    let consistency = |old: &str, new: &str, answer: &str| {
        call(
            // SAFETY: the inputs are what cairn_alloc gave (support::call).
            |[(o, ol), (n, nl), (a, al), (p, pl)]| unsafe {
                cairn_verify_consistency(o, ol, n, nl, a, al, p, pl)
            },
            [
                old.as_bytes(),
                new.as_bytes(),
                answer.as_bytes(),
                policy.as_bytes(),
            ],
        )
    };
    let verdict = consistency(&old, &new, &answer);
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(
        (verdict["old_size"].clone(), verdict["new_size"].clone()),
        (3.into(), 9.into())
    );

    // A proof for other sizes, a proof with a wrong hash, and the checkpoints swapped.
    let other = serde_json::json!({"old": 4, "new": 9, "proof": proof}).to_string();
    assert!(consistency(&old, &new, &other)["error"]
        .as_str()
        .expect("why")
        .contains("sizes 3 and 9"));
    let mut bent = proof.clone();
    bent[0] = cairn_spec::Hash::of_leaf(b"fork");
    let bent = serde_json::json!({"old": 3, "new": 9, "proof": bent}).to_string();
    assert!(consistency(&old, &new, &bent)["error"]
        .as_str()
        .expect("why")
        .contains("not an extension"));
    assert_eq!(consistency(&new, &old, &answer)["ok"], false);

    // The same log key signs a tree whose leaf 5 was rewritten (a fork): its own proof from
    // size 6 to 9 does not lead from the root of size 6 this page saw before.
    let mut leaves = world.leaves.clone();
    leaves[5] = b"rewritten history".to_vec();
    let forked = cairn_spec::example::world_of(leaves);
    let seen = world.receipt_at(0, 6, &[0, 1]).checkpoint;
    let fork_note = forked.receipt_at(0, 9, &[0, 1]).checkpoint;
    let fork_proof = merkle::consistency_proof(6, 9, &forked.stored).expect("a proof");
    let fork_answer = serde_json::json!({"old": 6, "new": 9, "proof": fork_proof}).to_string();
    let verdict = consistency(&seen, &fork_note, &fork_answer);
    assert_eq!(verdict["ok"], false, "{verdict}");
    assert!(verdict["error"]
        .as_str()
        .expect("why")
        .contains("not an extension"));
    // The forked tree is consistent with itself: the proof was not simply wrong.
    let own = forked.receipt_at(0, 6, &[0, 1]).checkpoint;
    assert_eq!(consistency(&own, &fork_note, &fork_answer)["ok"], true);
}

/// A schema 2 event of the example log, and the events API's answer for it (built as cairn-log's
/// `GET /v1/events/{id}` builds it: the leaf, the event in clear and the openings).
fn event_v2_world() -> (cairn_spec::example::World, String) {
    use base64::Engine as _;
    use cairn_spec::event::{EventId, EventInput, EventSalts, PersonalField};
    use cairn_spec::time::Instant;
    let input = support::event_json(2).replace(
        r#""outcome":"success""#,
        r#""outcome":"success","context":{"ip":"192.0.2.7"}"#,
    );
    let (leaf, openings) = EventInput::parse(input.as_bytes())
        .expect("a valid event")
        .into_leaf_v2(
            EventId::new_v4([0; 16]),
            Instant::from_unix(1_764_064_800, 0),
            "billing",
            &EventSalts::from_random(std::array::from_fn(|field| [field as u8 + 1; 32])),
        )
        .expect("a schema 2 leaf");
    let mut event = serde_json::json!({
        "event_id": leaf.clear.event_id.as_str(),
        "timestamp": leaf.clear.timestamp,
        "received_at": leaf.clear.received_at.to_rfc3339(),
        "submitted_by": leaf.clear.submitted_by,
        "action": leaf.clear.action,
        "outcome": leaf.clear.outcome,
    });
    let mut shown = serde_json::Map::new();
    for field in PersonalField::ALL {
        if let Some(opening) = openings.get(field) {
            let value: Value = serde_json::from_slice(&opening.value).expect("JSON");
            event[field.name()] = value.clone();
            shown.insert(
                field.name().to_string(),
                serde_json::json!({
                    "salt": base64::engine::general_purpose::STANDARD.encode(opening.salt.as_bytes()),
                    "value": value,
                }),
            );
        }
    }
    let world = cairn_spec::example::world_of(vec![
        b"first".to_vec(),
        leaf.leaf.clone(),
        b"third".to_vec(),
    ]);
    let answer = format!(
        r#"{{"event_id":"{}","index":1,"leaf_hash":"{}","schema_version":2,"contents":"held","erased_by":null,"leaf":{},"event":{},"openings":{}}}"#,
        leaf.clear.event_id.as_str(),
        leaf.leaf_hash().to_base64(),
        std::str::from_utf8(&leaf.leaf).expect("UTF-8"),
        event,
        Value::Object(shown),
    );
    (world, answer)
}

#[test]
fn a_schema_2_event_page_verifies_each_opening_and_refuses_a_changed_one() {
    let (world, answer) = event_v2_world();
    let policy = policy_text(&world, "two", true);
    let receipt = world.receipt(1, &[0, 1]).to_json();

    let verdict = verify_event(&answer, &receipt, &policy);
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["payload"]["status"], "held");
    assert_eq!(
        verdict["payload"]["canonical"],
        r#"{"amount":2.5,"note":"é ü"}"#
    );
    let opened = verdict["event"]["opened"]
        .as_str()
        .expect("the event in clear");
    assert!(opened.contains(r#""ip":"192.0.2.7""#), "{opened}");
    assert!(check(&verdict, "contents")["detail"]
        .as_str()
        .expect("detail")
        .contains("actor, resource, context, payload opened"));

    // An opened value changed (in the opening and in the event shown alike): its commitment
    // does not open.
    let changed = answer.replace("192.0.2.7", "192.0.2.8");
    let verdict = verify_event(&changed, &receipt, &policy);
    assert_eq!(verdict["ok"], false);
    assert_eq!(check(&verdict, "contents")["ok"], false, "{verdict}");
    assert_eq!(check(&verdict, "event")["ok"], true);

    // The event shown in clear differs from the openings (which still open).
    let shown: Value = serde_json::from_str(&answer).expect("JSON");
    let mut lying = shown.clone();
    lying["event"]["actor"]["id"] = Value::String("mallory".into());
    let verdict = verify_event(&lying.to_string(), &receipt, &policy);
    assert_eq!(check(&verdict, "contents")["ok"], false, "{verdict}");

    // An opening left out: every committed field must be opened.
    let mut partial = shown.clone();
    partial["openings"]
        .as_object_mut()
        .expect("openings")
        .remove("context");
    partial["event"]
        .as_object_mut()
        .expect("event")
        .remove("context");
    let verdict = verify_event(&partial.to_string(), &receipt, &policy);
    assert_eq!(check(&verdict, "contents")["ok"], false, "{verdict}");

    // Erased contents: nothing shown, the commitments and the proof intact.
    let mut erased = shown.clone();
    erased["contents"] = Value::String("erased".into());
    erased["event"] = Value::Null;
    erased["openings"] = Value::Null;
    let verdict = verify_event(&erased.to_string(), &receipt, &policy);
    assert_eq!(verdict["ok"], true, "{verdict}");
    assert_eq!(verdict["payload"]["status"], "erased");
    assert!(verdict["event"]["opened"].is_null());

    // "Erased", but still showing the contents: refused.
    let mut both = shown;
    both["contents"] = Value::String("erased".into());
    let verdict = verify_event(&both.to_string(), &receipt, &policy);
    assert_eq!(check(&verdict, "contents")["ok"], false, "{verdict}");
}
