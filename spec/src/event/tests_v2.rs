//! Schema 2 leaves, commitments, openings and index tags: the documented vectors (computed
//! independently of this code, see event.md), round trips, and every way an opening can lie.

use super::tests::{json_value, EXAMPLE};
use super::*;
use crate::hash::Hash;
use crate::jcs;

/// The salts of the documented vectors: bytes 0x00..0x1f, 0x20..0x3f, 0x40..0x5f, 0x60..0x7f.
fn documented_salts() -> EventSalts {
    EventSalts::from_random(std::array::from_fn(|field| {
        std::array::from_fn(|byte| (32 * field + byte) as u8)
    }))
}

fn received_at() -> Instant {
    Instant::parse_rfc3339("2025-11-25T08:14:03.5Z").expect("valid time")
}

/// The documented example as a schema 2 leaf, with its openings.
fn logged_v2() -> (EventLeafV2, EventOpenings) {
    EventInput::parse(EXAMPLE.as_bytes())
        .expect("the example is valid")
        .into_leaf_v2(
            EventId::new_v4([0; 16]),
            received_at(),
            "producer:billing",
            &documented_salts(),
        )
        .expect("a valid event")
}

/// The fenced blocks of event.md between the heading `heading` and the next `## ` heading.
fn blocks_under(heading: &str) -> Vec<String> {
    let page = include_str!("../../docs/event.md");
    let start = page.find(heading).expect("the page has the section") + heading.len();
    let section = &page[start..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .split("```")
        .skip(1)
        .step_by(2)
        .map(|block| {
            block
                .split_once('\n')
                .map_or("", |(_, body)| body)
                .to_string()
        })
        .collect()
}

/// `key value...` lines of a block: the words after the first `words` of each line starting
/// with `key`.
fn lines_of<'a>(block: &'a str, key: &str) -> Vec<Vec<&'a str>> {
    block
        .lines()
        .filter(|line| line.split_whitespace().next() == Some(key))
        .map(|line| line.split_whitespace().skip(1).collect())
        .collect()
}

fn hex32(text: &str) -> [u8; 32] {
    fields::parse_hex32(text).expect("64 lowercase hex digits")
}

#[test]
fn the_documented_schema_2_vectors_are_what_the_code_computes() {
    let blocks = blocks_under("## Schema 2 test vectors");
    assert_eq!(blocks.len(), 3, "vectors, leaf, index tags");
    let (leaf, openings) = logged_v2();
    let salts = documented_salts();
    let documented_salts = lines_of(&blocks[0], "salt");
    assert_eq!(documented_salts.len(), 4);
    for words in documented_salts {
        let field = PersonalField::from_name(words[0]).expect("a personal field");
        let salt = match field {
            PersonalField::Actor => &salts.actor,
            PersonalField::Resource => &salts.resource,
            PersonalField::Context => &salts.context,
            PersonalField::Payload => &salts.payload,
        };
        assert_eq!(salt.as_bytes(), &hex32(words[1]), "salt of {field}");
    }
    let documented_commitments = lines_of(&blocks[0], "commitment");
    assert_eq!(documented_commitments.len(), 4);
    for words in documented_commitments {
        let field = PersonalField::from_name(words[0]).expect("a personal field");
        let expected = Commitment(hex32(words[1]));
        assert_eq!(leaf.commitments.get(field), Some(&expected), "{field}");
        let opening = openings.get(field).expect("every field is present");
        assert_eq!(
            commit(&leaf.clear.event_id, field, &opening.salt, &opening.value),
            expected
        );
    }
    assert_eq!(
        String::from_utf8(leaf.leaf.clone()).expect("UTF-8"),
        blocks[1].trim_end()
    );
    let leaf_hash = &lines_of(&blocks[0], "leaf_hash")[0];
    assert_eq!(leaf.leaf_hash(), Hash(hex32(leaf_hash[0])));

    let key_line = &lines_of(&blocks[2], "index_key")[0];
    let key = IndexKey::from_bytes(hex32(key_line[0]));
    let tags = lines_of(&blocks[2], "tag");
    assert_eq!(tags.len(), 3);
    for words in tags {
        let field = [
            IndexedField::ActorId,
            IndexedField::ResourceId,
            IndexedField::ResourceType,
        ]
        .into_iter()
        .find(|field| field.name() == words[0])
        .expect("an indexed field");
        assert_eq!(
            index_tag(&key, field, words[1]).to_hex(),
            words[2],
            "{}",
            words[0]
        );
    }
}

#[test]
fn a_v2_leaf_parses_back_and_is_rebuilt_from_its_openings() {
    let (leaf, openings) = logged_v2();
    assert_eq!(EventLeafV2::parse(&leaf.leaf).expect("parses"), leaf);
    assert_eq!(
        AnyEventLeaf::parse(&leaf.leaf).expect("parses"),
        AnyEventLeaf::V2(leaf.clone())
    );
    let rebuilt = EventLeafV2::build(leaf.clear.clone(), &openings).expect("valid openings");
    assert_eq!(rebuilt, leaf);
    let contents = leaf
        .verify_disclosure(&openings.disclose_all())
        .expect("every opening verifies");
    assert_eq!(contents.opened, PersonalField::ALL.to_vec());
    assert!(contents.is_complete());
    assert_eq!(contents.to_string(), "verified with contents");
    let actor = leaf
        .verify_opening(PersonalField::Actor, &openings.actor)
        .expect("opens");
    assert_eq!(
        jcs::canonicalize(&actor),
        r#"{"id":"alice@example.com","type":"user"}"#
    );
    assert_eq!(
        openings.actor.id_and_type(),
        Some(("alice@example.com".to_string(), "user".to_string()))
    );
}

#[test]
fn a_v2_leaf_holds_no_personal_value_and_no_length_of_one() {
    let (leaf, _) = logged_v2();
    let text = String::from_utf8(leaf.leaf.clone()).expect("UTF-8");
    for personal in [
        "alice",
        "user",
        "INV-2026",
        "invoice\"",
        "192.0.2",
        "r-77",
        "EUR",
        "125000",
    ] {
        assert!(!text.contains(personal), "{personal} is in {text}");
    }
    // A longer actor, context and payload give a leaf of the same length.
    let longer = EXAMPLE
        .replace("alice@example.com", "alice.marie.longname@example.com")
        .replace("192.0.2.10", "2001:db8::1234:5678:9abc")
        .replace(
            r#""currency": "EUR""#,
            r#""currency": "EUR", "note": "a long note""#,
        );
    let (longer_leaf, _) = EventInput::parse(longer.as_bytes())
        .expect("valid")
        .into_leaf_v2(
            EventId::new_v4([0; 16]),
            received_at(),
            "producer:billing",
            &documented_salts(),
        )
        .expect("valid");
    assert_eq!(longer_leaf.leaf.len(), leaf.leaf.len());
    assert_ne!(longer_leaf.commitments, leaf.commitments);
}

#[test]
fn a_tampered_opening_is_rejected() {
    let (leaf, openings) = logged_v2();
    for field in PersonalField::ALL {
        let opening = openings.get(field).expect("present");
        for byte in 0..opening.value.len() {
            for flip in [0x01u8, 0x20] {
                let mut changed = opening.clone();
                changed.value[byte] ^= flip;
                assert!(
                    leaf.verify_opening(field, &changed).is_err(),
                    "{field}: flipping {flip:#04x} at byte {byte} went unnoticed"
                );
            }
        }
        // A valid, canonical value of the right shape, but not the one committed.
        let mut other = opening.clone();
        other.value = match field {
            PersonalField::Actor | PersonalField::Resource => {
                br#"{"id":"mallory","type":"user"}"#.to_vec()
            }
            PersonalField::Context => br#"{"ip":"192.0.2.11"}"#.to_vec(),
            PersonalField::Payload => br#"{"amount_cents":1,"currency":"EUR"}"#.to_vec(),
        };
        assert_eq!(
            leaf.verify_opening(field, &other),
            Err(EventError::CommitmentMismatch {
                field: field.name().to_string()
            })
        );
        let mut disclosure = openings.disclose_all();
        disclosure.set(field, Disclosure::Opened(other));
        assert!(leaf.verify_disclosure(&disclosure).is_err());
    }
}

#[test]
fn a_wrong_salt_is_rejected() {
    let (leaf, openings) = logged_v2();
    let mismatch = |field: PersonalField| {
        Err::<jcs::Value, _>(EventError::CommitmentMismatch {
            field: field.name().to_string(),
        })
    };
    for field in PersonalField::ALL {
        let opening = openings.get(field).expect("present");
        for byte in 0..SALT_SIZE {
            let mut salt = *opening.salt.as_bytes();
            salt[byte] ^= 0x01;
            let changed = FieldOpening {
                salt: Salt::from_bytes(salt),
                value: opening.value.clone(),
            };
            assert_eq!(leaf.verify_opening(field, &changed), mismatch(field));
        }
        // Another field's salt, and this opening presented as another field.
        for other in PersonalField::ALL
            .into_iter()
            .filter(|other| *other != field)
        {
            let swapped = FieldOpening {
                salt: openings.get(other).expect("present").salt.clone(),
                value: opening.value.clone(),
            };
            assert_eq!(leaf.verify_opening(field, &swapped), mismatch(field));
            assert!(leaf.verify_opening(other, opening).is_err());
        }
    }
}

#[test]
fn equal_values_give_unrelated_commitments_across_events_and_fields() {
    let salt = Salt::from_bytes([5; 32]);
    let value = br#"{"id":"alice","type":"user"}"#;
    let first = EventId::new_v4([1; 16]);
    let second = EventId::new_v4([2; 16]);
    // Even with one salt repeated (a broken random source), the event ID and the field name
    // keep the commitments apart.
    let in_first = commit(&first, PersonalField::Actor, &salt, value);
    assert_ne!(
        in_first,
        commit(&second, PersonalField::Actor, &salt, value)
    );
    assert_ne!(
        in_first,
        commit(&first, PersonalField::Resource, &salt, value)
    );
    // And the opening of one event does not open the other's commitment.
    let opening = FieldOpening {
        salt,
        value: value.to_vec(),
    };
    assert!(opening.opens(&first, PersonalField::Actor, &in_first));
    assert!(!opening.opens(&second, PersonalField::Actor, &in_first));
}

#[test]
fn an_erased_field_still_verifies_as_committed() {
    let (leaf, openings) = logged_v2();
    let mut disclosure = openings.disclose_all();
    disclosure.set(PersonalField::Actor, Disclosure::Erased);
    disclosure.set(PersonalField::Payload, Disclosure::Erased);
    let contents = leaf.verify_disclosure(&disclosure).expect("verifies");
    assert_eq!(
        contents,
        Contents {
            opened: vec![PersonalField::Resource, PersonalField::Context],
            erased: vec![PersonalField::Actor, PersonalField::Payload],
        }
    );
    assert_eq!(
        contents.to_string(),
        "verified with contents (resource, context); committed, contents erased (actor, payload)"
    );
    let mut all_erased = EventDisclosure::default();
    for field in PersonalField::ALL {
        all_erased.set(field, Disclosure::Erased);
    }
    let contents = leaf.verify_disclosure(&all_erased).expect("verifies");
    assert!(contents.is_erased());
    assert_eq!(contents.to_string(), "committed, contents erased");
}

#[test]
fn a_field_larger_than_an_event_is_refused() {
    // Parsed as a value (a submitted event is at most 1 MiB, but its payload's canonical form
    // can be larger than its text: escapes of control characters grow).
    let mut input = EventInput::parse(EXAMPLE.as_bytes()).expect("valid");
    input.payload = Some(Value::String("\u{1}".repeat(200_000)));
    let error = input
        .into_leaf_v2(
            EventId::new_v4([0; 16]),
            received_at(),
            "p",
            &documented_salts(),
        )
        .expect_err("a 1.2 MB canonical payload");
    assert!(error.to_string().starts_with("payload"), "{error}");
}

#[test]
fn a_disclosure_covers_exactly_the_committed_fields() {
    let without = EXAMPLE
        .replace(
            r#""context": {"ip": "192.0.2.10", "request_id": "r-77"},"#,
            "",
        )
        .replace(
            r#""payload": {"amount_cents": 125000, "currency": "EUR"},"#,
            "",
        );
    let (leaf, openings) = EventInput::parse(without.as_bytes())
        .expect("valid")
        .into_leaf_v2(
            EventId::new_v4([0; 16]),
            received_at(),
            "p",
            &documented_salts(),
        )
        .expect("valid");
    assert_eq!(leaf.commitments.context, None);
    assert_eq!(leaf.commitments.payload, None);
    assert!(!String::from_utf8_lossy(&leaf.leaf).contains("context"));
    let mut disclosure = openings.disclose_all();
    assert!(leaf.verify_disclosure(&disclosure).is_ok());
    disclosure.set(PersonalField::Context, Disclosure::Erased);
    assert!(leaf.verify_disclosure(&disclosure).is_err());
    let mut missing_actor = openings.disclose_all();
    missing_actor.actor = None;
    assert!(leaf.verify_disclosure(&missing_actor).is_err());
}

#[test]
fn the_v2_leaf_parser_refuses_anything_but_the_exact_schema() {
    let (leaf, _) = logged_v2();
    let text = String::from_utf8(leaf.leaf.clone()).expect("UTF-8");
    let actor = leaf.commitments.actor.to_hex();
    let cases: Vec<(String, &str)> = vec![
        (text.replacen('{', "{ ", 1), "canonical"),
        (
            text.replace(&actor, &actor.to_uppercase()),
            "commitments.actor",
        ),
        (text.replace(&actor, &actor[..62]), "commitments.actor"),
        (
            text.replace(&format!(r#""actor":"{actor}","#), ""),
            "commitments.actor",
        ),
        (
            text.replace(r#""commitments":{"#, r#""commitments":{"account":"00","#),
            "commitments.account",
        ),
        (
            text.replace(
                r#","commitments":"#,
                r#","actor":{"id":"a","type":"u"},"commitments":"#,
            ),
            "actor",
        ),
        (
            text.replace(r#""schema_version":2"#, r#""schema_version":3"#),
            "schema_version",
        ),
        (
            text.replace("2025-11-25T08:14:03.500Z", "2025-11-25T08:14:03.5Z"),
            "received_at",
        ),
        (
            text.replace("2025-11-25T08:14:03.500Z", "2025-11-25T09:14:03.500+01:00"),
            "received_at",
        ),
        (text.replace(r#""success""#, r#""maybe""#), "outcome"),
        (
            text.replace("producer:billing", &"p".repeat(MAX_PRINCIPAL_BYTES + 1)),
            "submitted_by",
        ),
        (
            text.replace(r#""event_id":"0b7c9a2e"#, r#""event_id":"xb7c9a2e"#),
            "event_id",
        ),
        (
            text.replace(r#""event_id":"0b7c9a2e"#, r#""event_id":"0B7C9A2E"#),
            "event_id",
        ),
    ];
    for (changed, expected) in cases {
        let error = EventLeafV2::parse(changed.as_bytes()).expect_err(&changed);
        let message = error.to_string();
        assert!(
            message.contains(expected),
            "{changed}: expected an error about {expected}, got {message}"
        );
    }
}

#[test]
fn any_leaf_reads_both_versions_and_refuses_others() {
    let (v1, _) = EventInput::parse(EXAMPLE.as_bytes())
        .expect("valid")
        .into_leaf(EventId::new_v4([0; 16]), received_at(), "producer:billing")
        .expect("valid");
    let parsed = AnyEventLeaf::parse(&v1.leaf).expect("a schema 1 leaf");
    assert_eq!(parsed.schema_version(), 1);
    assert_eq!(parsed, AnyEventLeaf::V1(v1.clone()));
    assert!(EventLeafV2::parse(&v1.leaf).is_err());
    let (v2, _) = logged_v2();
    assert!(EventLeaf::parse(&v2.leaf).is_err());
    assert_eq!(
        AnyEventLeaf::parse(&v2.leaf).expect("v2").schema_version(),
        2
    );
    assert_eq!(
        AnyEventLeaf::parse(&v2.leaf).expect("v2").event_id(),
        &v2.clear.event_id
    );
    let text = String::from_utf8(v1.leaf).expect("UTF-8");
    for changed in [
        text.replace(r#""schema_version":1"#, r#""schema_version":3"#),
        text.replace(r#""schema_version":1"#, r#""schema_version":"1""#),
        text.replace(r#""schema_version":1,"#, ""),
    ] {
        let error = AnyEventLeaf::parse(changed.as_bytes()).expect_err(&changed);
        assert!(error.to_string().starts_with("schema_version"), "{error}");
    }
}

#[test]
fn a_holder_of_the_event_and_its_salts_checks_it_against_a_receipt() {
    let (leaf, openings) = logged_v2();
    let world = crate::example::world_of(vec![b"other".to_vec(), leaf.leaf.clone()]);
    let policy = world.policy("two", true);
    let mut receipt = world.receipt(1, &[0, 1]);
    // The receipt need not carry the leaf: the holder recomputes it.
    receipt.leaf = None;
    let rebuilt = EventLeafV2::build(leaf.clear.clone(), &openings).expect("valid");
    assert_eq!(rebuilt.leaf_hash(), receipt.leaf_hash);
    assert!(crate::receipt::verify(&receipt, &policy).is_ok());
    // A changed salt recomputes another leaf, which the receipt does not prove.
    let mut wrong = openings.clone();
    wrong.context = Some(FieldOpening {
        salt: Salt::from_bytes([0; 32]),
        value: openings.context.clone().expect("present").value,
    });
    let other = EventLeafV2::build(leaf.clear.clone(), &wrong).expect("well formed");
    assert_ne!(other.leaf_hash(), receipt.leaf_hash);
}

#[test]
fn keys_are_never_printed_and_index_tags_are_keyed_per_field() {
    assert_eq!(format!("{:?}", Salt::from_bytes([0xab; 32])), "Salt(..)");
    assert_eq!(
        format!("{:?}", IndexKey::from_bytes([0xab; 32])),
        "IndexKey(..)"
    );
    let key = IndexKey::from_bytes([1; 32]);
    let other_key = IndexKey::from_bytes([2; 32]);
    let tag = index_tag(&key, IndexedField::ActorId, "alice");
    assert_eq!(tag, index_tag(&key, IndexedField::ActorId, "alice"));
    assert_ne!(tag, index_tag(&other_key, IndexedField::ActorId, "alice"));
    assert_ne!(tag, index_tag(&key, IndexedField::ResourceId, "alice"));
    assert_ne!(tag, index_tag(&key, IndexedField::ActorId, "Alice"));
}

/// A `name` object (`id`, `type` and maybe more), as `actor` and `resource` must be.
fn named_value() -> impl proptest::strategy::Strategy<Value = Value> {
    use proptest::prelude::*;
    (
        "[^\\p{Cc}]{1,20}",
        "[^\\p{Cc}]{1,20}",
        proptest::option::of(json_value()),
    )
        .prop_map(|(id, kind, extra)| {
            let mut members = vec![
                ("id".to_string(), Value::String(id)),
                ("type".to_string(), Value::String(kind)),
            ];
            if let Some(extra) = extra {
                members.push(("extra".to_string(), extra));
            }
            Value::Object(members)
        })
}

proptest::proptest! {
    #[test]
    fn v2_leaves_are_the_canonical_form_of_their_members(
        action in "[^\\p{Cc}]{1,40}",
        outcome in proptest::sample::select(&OUTCOMES[..]),
        submitted_by in "[^\\p{Cc}]{1,40}",
        actor in named_value(),
        resource in named_value(),
        payload in proptest::option::of(json_value()),
        context in proptest::option::of(proptest::collection::vec(("[a-z]{1,8}", json_value()), 0..4)),
        random in proptest::prelude::any::<[[u8; 32]; 4]>(),
        id in proptest::prelude::any::<[u8; 16]>(),
        seconds in 0i64..4_000_000_000,
        nanos in 0u32..1_000_000_000,
    ) {
        let context = context.map(|members| {
            let mut members: Vec<(String, Value)> = members;
            members.sort_by(|a, b| a.0.cmp(&b.0));
            members.dedup_by(|a, b| a.0 == b.0);
            Value::Object(members)
        });
        let received_at = Instant::from_unix(seconds, nanos);
        let input = EventInput {
            event_id: None,
            timestamp: "2026-01-01T00:00:00Z".to_string(),
            time: Instant::from_seconds(1_767_225_600),
            actor: actor.clone(),
            action: action.clone(),
            resource: resource.clone(),
            outcome: outcome.to_string(),
            payload: payload.clone(),
            context: context.clone(),
            schema_version: Some(2),
        };
        let salts = EventSalts::from_random(random);
        let (leaf, openings) = input
            .into_leaf_v2(EventId::new_v4(id), received_at, &submitted_by, &salts)
            .expect("a valid event");
        let event_id = leaf.clear.event_id.clone();
        // The definition: the canonical form of an object of these members, in any order.
        let commitment = |field: PersonalField, salt: &Salt, value: &Value| {
            Value::String(commit(&event_id, field, salt, jcs::canonicalize(value).as_bytes()).to_hex())
        };
        let mut commitments = vec![
            ("resource".to_string(), commitment(PersonalField::Resource, &salts.resource, &resource)),
            ("actor".to_string(), commitment(PersonalField::Actor, &salts.actor, &actor)),
        ];
        if let Some(payload) = &payload {
            commitments.push(("payload".to_string(), commitment(PersonalField::Payload, &salts.payload, payload)));
        }
        if let Some(context) = &context {
            commitments.push(("context".to_string(), commitment(PersonalField::Context, &salts.context, context)));
        }
        let members = vec![
            ("timestamp".to_string(), Value::String("2026-01-01T00:00:00Z".to_string())),
            ("submitted_by".to_string(), Value::String(submitted_by)),
            ("schema_version".to_string(), Value::Number(SCHEMA_VERSION_2)),
            ("received_at".to_string(), Value::String(received_at.to_rfc3339())),
            ("outcome".to_string(), Value::String(outcome.to_string())),
            ("event_id".to_string(), Value::String(event_id.as_str().to_string())),
            ("commitments".to_string(), Value::Object(commitments)),
            ("action".to_string(), Value::String(action)),
        ];
        let expected = jcs::canonicalize(&Value::Object(members));
        proptest::prop_assert_eq!(String::from_utf8(leaf.leaf.clone()).expect("UTF-8"), expected);
        proptest::prop_assert_eq!(&EventLeafV2::parse(&leaf.leaf).expect("parses"), &leaf);
        proptest::prop_assert_eq!(&EventLeafV2::build(leaf.clear.clone(), &openings).expect("valid"), &leaf);
        let contents = leaf.verify_disclosure(&openings.disclose_all()).expect("opens");
        proptest::prop_assert!(contents.is_complete());
    }
}
