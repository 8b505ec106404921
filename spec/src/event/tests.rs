use sha2::{Digest, Sha256};

use super::*;
use crate::jcs;

pub(super) const EXAMPLE: &str = r#"{
    "event_id": "0b7c9a2e-5c1d-4f8a-9e3b-2d6f1a4c8e90",
    "timestamp": "2026-11-25T09:14:03.120+01:00",
    "actor": {"id": "alice@example.com", "type": "user"},
    "action": "invoice.approve",
    "resource": {"type": "invoice", "id": "INV-2026-0042"},
    "outcome": "success",
    "payload": {"amount_cents": 125000, "currency": "EUR"},
    "context": {"ip": "192.0.2.10", "request_id": "r-77"},
    "schema_version": 1
}"#;

fn logged() -> (EventLeaf, Option<Vec<u8>>) {
    EventInput::parse(EXAMPLE.as_bytes())
        .expect("the example is valid")
        .into_leaf(
            EventId::new_v4([7; 16]),
            Instant::from_unix(1_764_058_443, 500_000_000),
            "producer:billing",
        )
        .expect("a valid principal")
}

#[test]
fn logs_the_canonical_event_with_server_fields_and_payload_hash() {
    let (leaf, payload) = logged();
    let text = String::from_utf8(leaf.leaf.clone()).expect("JSON is UTF-8");
    let payload_hash = format_payload_hash(&<[u8; 32]>::from(Sha256::digest(
        br#"{"amount_cents":125000,"currency":"EUR"}"#,
    )));
    let expected = [
        r#"{"action":"invoice.approve","actor":{"id":"alice@example.com","type":"user"},"#,
        r#""context":{"ip":"192.0.2.10","request_id":"r-77"},"#,
        r#""event_id":"0b7c9a2e-5c1d-4f8a-9e3b-2d6f1a4c8e90","outcome":"success","#,
        &format!(r#""payload_hash":"{payload_hash}","#),
        r#""received_at":"2025-11-25T08:14:03.500Z","#,
        r#""resource":{"id":"INV-2026-0042","type":"invoice"},"schema_version":1,"#,
        r#""submitted_by":"producer:billing","timestamp":"2026-11-25T09:14:03.120+01:00"}"#,
    ]
    .concat();
    assert_eq!(text, expected);
    assert_eq!(
        payload.as_deref(),
        Some(&br#"{"amount_cents":125000,"currency":"EUR"}"#[..])
    );
    assert_eq!(leaf.actor_id, "alice@example.com");
    assert_eq!(leaf.resource_type, "invoice");
}

#[test]
fn a_logged_leaf_parses_back_to_the_same_event() {
    let (leaf, _) = logged();
    let parsed = EventLeaf::parse(&leaf.leaf).expect("leaves parse");
    assert_eq!(parsed, leaf);
    assert!(parsed
        .payload_matches(br#"{ "currency": "EUR", "amount_cents": 125000 }"#)
        .expect("valid JSON"));
    assert!(!parsed
        .payload_matches(br#"{"currency":"EUR","amount_cents":125001}"#)
        .expect("valid JSON"));
}

#[test]
fn generates_a_v4_id_when_the_producer_gives_none() {
    let json = EXAMPLE.replace(r#""event_id": "0b7c9a2e-5c1d-4f8a-9e3b-2d6f1a4c8e90","#, "");
    let (leaf, _) = EventInput::parse(json.as_bytes())
        .expect("valid")
        .into_leaf(EventId::new_v4([0xff; 16]), Instant::from_unix(0, 0), "p")
        .expect("valid principal");
    assert_eq!(
        leaf.event_id.as_str(),
        "ffffffff-ffff-4fff-bfff-ffffffffffff"
    );
}

#[test]
fn schema_errors_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (
            r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"}}"#,
            "outcome",
        ),
        (
            r#"{"timestamp":"yesterday","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success"}"#,
            "timestamp",
        ),
        (
            r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success"}"#,
            "actor.type",
        ),
        (
            r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"","resource":{"type":"t","id":"i"},"outcome":"success"}"#,
            "action",
        ),
        (
            r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"maybe"}"#,
            "outcome",
        ),
        (
            r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success","colour":"red"}"#,
            "colour",
        ),
        (
            r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success","submitted_by":"me"}"#,
            "submitted_by",
        ),
        (
            r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success","event_id":"nope"}"#,
            "event_id",
        ),
        (
            r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success","schema_version":3}"#,
            "schema_version",
        ),
        (
            r#"{"timestamp":"2026-01-01T00:00:00Z","actor":{"id":"a","type":"u"},"action":"x","resource":{"type":"t","id":"i"},"outcome":"success","context":[]}"#,
            "context",
        ),
    ];
    for (json, field) in cases {
        let error = EventInput::parse(json.as_bytes()).expect_err(json);
        assert!(
            error.to_string().starts_with(field),
            "{json}: expected an error naming {field}, got {error}"
        );
    }
}

#[test]
fn the_schema_1_writer_refuses_an_event_that_asks_for_schema_2() {
    let json = EXAMPLE.replace(r#""schema_version": 1"#, r#""schema_version": 2"#);
    let input = EventInput::parse(json.as_bytes()).expect("2 is a valid request");
    assert_eq!(input.schema_version, Some(2));
    let error = input
        .into_leaf(EventId::new_v4([7; 16]), Instant::from_unix(0, 0), "p")
        .expect_err("a schema 1 leaf would hold the personal fields in clear");
    assert!(error.to_string().starts_with("schema_version"), "{error}");
}

#[test]
fn a_parsed_value_validates_as_its_text_does() {
    let value = jcs::parse(EXAMPLE.as_bytes(), event_limits()).expect("JSON");
    assert_eq!(
        EventInput::from_value(value).expect("valid"),
        EventInput::parse(EXAMPLE.as_bytes()).expect("valid")
    );
    assert!(matches!(
        EventInput::from_value(Value::Array(Vec::new())),
        Err(EventError::NotAnObject)
    ));
}

#[test]
fn refuses_non_json_and_non_objects() {
    assert!(matches!(
        EventInput::parse(b"[1]"),
        Err(EventError::NotAnObject)
    ));
    assert!(matches!(
        EventInput::parse(b"{\"a\":1,\"a\":2}"),
        Err(EventError::Json(JsonError::DuplicateName { .. }))
    ));
    let deep = format!(r#"{{"payload":{}{}}}"#, "[".repeat(40), "]".repeat(40));
    assert!(matches!(
        EventInput::parse(deep.as_bytes()),
        Err(EventError::Json(JsonError::TooDeep { .. }))
    ));
}

#[test]
fn refuses_leaves_that_are_not_canonical_or_carry_a_payload() {
    let (leaf, _) = logged();
    let mut spaced = String::from_utf8(leaf.leaf.clone()).expect("UTF-8");
    spaced.insert(1, ' ');
    assert_eq!(
        EventLeaf::parse(spaced.as_bytes()),
        Err(EventError::NotCanonical)
    );
    let with_payload = r#"{"action":"x","actor":{"id":"a","type":"u"},"event_id":"0b7c9a2e-5c1d-4f8a-9e3b-2d6f1a4c8e90","outcome":"success","payload":1,"received_at":"2026-01-01T00:00:00Z","resource":{"id":"i","type":"t"},"schema_version":1,"submitted_by":"p","timestamp":"2026-01-01T00:00:00Z"}"#;
    assert!(EventLeaf::parse(with_payload.as_bytes()).is_err());
}

#[test]
fn the_documented_example_is_what_the_code_logs() {
    let page = include_str!("../../docs/event.md");
    let block = |fence: &str| -> String {
        let start = page.find(fence).expect("the page has the block") + fence.len();
        let end = start + page[start..].find("```").expect("the block is closed");
        page[start..end].to_string()
    };
    let input = block("```json\n");
    let leaf = block("```text\n");
    let (logged, _) = EventInput::parse(input.as_bytes())
        .expect("the documented input is valid")
        .into_leaf(
            EventId::new_v4([0; 16]),
            Instant::parse_rfc3339("2025-11-25T08:14:03.5Z").expect("valid time"),
            "producer:billing",
        )
        .expect("valid principal");
    assert_eq!(
        String::from_utf8(logged.leaf).expect("UTF-8"),
        leaf.trim_end()
    );
}

/// What `EventInput::parse` must answer: `from_value` of what `jcs::parse` reads.
fn parsed_as_a_value(json: &[u8]) -> Result<EventInput, EventError> {
    EventInput::from_value(jcs::parse(json, event_limits())?)
}

#[test]
fn parse_reads_an_event_as_from_value_reads_its_parsed_json() {
    let escaped_names = EXAMPLE
        .replace(r#""action""#, r#""\u0061ction""#)
        .replace(r#""id""#, r#""i\u0064""#);
    let twice = EXAMPLE.replace(r#""outcome""#, r#""\u0061ction": "x", "outcome""#);
    let many: String = (0..30).map(|i| format!(r#","k{i}":{i}"#)).collect();
    let many_twice = format!(r#"{{"k0":0{many}}}"#);
    let unknown_then_bad_json = r#"{"colour":"red","timestamp":}"#;
    let documents = [
        EXAMPLE,
        &escaped_names,
        &twice,
        &many_twice,
        unknown_then_bad_json,
        r#"{"submitted\u005fby":"me"}"#,
        r#"{"\u00e9vent":1}"#,
        "[1]",
        "[1,",
        r#""event""#,
        "",
        "{}",
    ];
    for json in documents {
        assert_eq!(
            EventInput::parse(json.as_bytes()),
            parsed_as_a_value(json.as_bytes()),
            "{json}"
        );
    }
}

#[test]
fn a_payload_larger_than_the_leaf_buffer_is_logged_whole() {
    let note = "x".repeat(3 * LEAF_CAPACITY);
    let json = EXAMPLE.replace(
        r#""currency": "EUR""#,
        &format!(r#""currency": "EUR", "note": "{note}""#),
    );
    let (leaf, payload) = EventInput::parse(json.as_bytes())
        .expect("valid")
        .into_leaf(EventId::new_v4([7; 16]), Instant::from_unix(0, 0), "p")
        .expect("a valid principal");
    let expected = format!(r#"{{"amount_cents":125000,"currency":"EUR","note":"{note}"}}"#);
    assert_eq!(payload.as_deref(), Some(expected.as_bytes()));
    assert_eq!(EventLeaf::parse(&leaf.leaf).expect("leaves parse"), leaf);
    assert!(leaf.payload_matches(expected.as_bytes()).expect("JSON"));
    assert!(leaf.leaf.len() < LEAF_CAPACITY);
}

/// A member name: an event's (or one the server sets), or any string.
fn member_name() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    const FIELDS: [&str; 10] = [
        "event_id",
        "timestamp",
        "actor",
        "action",
        "resource",
        "outcome",
        "payload",
        "context",
        "schema_version",
        "received_at",
    ];
    prop_oneof![
        proptest::sample::select(&FIELDS[..]).prop_map(str::to_string),
        any::<String>(),
    ]
}

/// A JSON value of a few levels, with any names and strings (not only ASCII).
pub(super) fn json_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-1e15f64..1e15).prop_map(Value::Number),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(any::<String>(), inner, 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

proptest::proptest! {
    #[test]
    fn parse_answers_as_from_value_of_the_parsed_json(
        members in proptest::collection::vec((member_name(), json_value()), 0..12),
        cut in proptest::option::of(0usize..400),
    ) {
        // Written by hand, so that a name may come twice.
        let mut json = String::from("{");
        for (index, (name, value)) in members.iter().enumerate() {
            if index > 0 {
                json.push(',');
            }
            jcs::write_string(name, &mut json);
            json.push(':');
            jcs::write_canonical(value, &mut json);
        }
        json.push('}');
        let json = match cut {
            Some(cut) => json.get(..cut).unwrap_or(&json),
            None => &json,
        };
        proptest::prop_assert_eq!(
            EventInput::parse(json.as_bytes()),
            parsed_as_a_value(json.as_bytes())
        );
    }

    #[test]
    fn leaves_are_the_canonical_form_of_their_members(
        action in proptest::prelude::any::<String>(),
        outcome in proptest::prelude::any::<String>(),
        timestamp in proptest::prelude::any::<String>(),
        submitted_by in "\\PC{1,40}",
        actor in json_value(),
        resource in json_value(),
        payload in proptest::option::of(json_value()),
        context in proptest::option::of(json_value()),
        seconds in 0i64..4_000_000_000,
        nanos in 0u32..1_000_000_000,
    ) {
        let received_at = Instant::from_unix(seconds, nanos);
        let event_id = EventId::new_v4([9; 16]);
        let input = EventInput {
            event_id: None,
            timestamp: timestamp.clone(),
            time: Instant::from_unix(seconds / 2, 0),
            actor: actor.clone(),
            action: action.clone(),
            resource: resource.clone(),
            outcome: outcome.clone(),
            payload: payload.clone(),
            context: context.clone(),
            schema_version: None,
        };
        let (leaf, canonical_payload) = input
            .into_leaf(event_id.clone(), received_at, &submitted_by)
            .expect("a valid principal");
        // The definition: the canonical form of an object of these members, in any order.
        let mut members = vec![
            ("timestamp".to_string(), Value::String(timestamp)),
            ("submitted_by".to_string(), Value::String(submitted_by)),
            ("schema_version".to_string(), Value::Number(SCHEMA_VERSION)),
            ("resource".to_string(), resource),
            ("received_at".to_string(), Value::String(received_at.to_rfc3339())),
            ("outcome".to_string(), Value::String(outcome)),
            ("event_id".to_string(), Value::String(event_id.as_str().to_string())),
            ("actor".to_string(), actor),
            ("action".to_string(), Value::String(action)),
        ];
        if let Some(context) = context {
            members.push(("context".to_string(), context));
        }
        let expected_payload = payload.as_ref().map(|payload| jcs::canonicalize(payload).into_bytes());
        if let Some(bytes) = &expected_payload {
            let hash = <[u8; 32]>::from(Sha256::digest(bytes));
            members.push(("payload_hash".to_string(), Value::String(format_payload_hash(&hash))));
        }
        let expected = jcs::canonicalize(&Value::Object(members));
        proptest::prop_assert_eq!(String::from_utf8(leaf.leaf).expect("UTF-8"), expected);
        proptest::prop_assert_eq!(canonical_payload, expected_payload);
    }
}
