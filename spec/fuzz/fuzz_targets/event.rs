//! Fuzzes strict JSON, RFC 8785 canonicalisation and the event schema: no input may panic; a
//! canonical form parses back to itself; an accepted event becomes a leaf of either schema
//! version that parses back to the same event (the schema 1 writer refusing exactly the events
//! that ask for schema 2), and its schema 2 openings open it, field by field.
#![no_main]

use cairn_spec::event::{
    AnyEventLeaf, EventId, EventInput, EventLeaf, EventLeafV2, EventSalts, PersonalField,
};
use cairn_spec::jcs;
use cairn_spec::time::Instant;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = jcs::parse(data, jcs::Limits::default()) {
        let canonical = jcs::canonicalize(&value);
        let again = jcs::canonicalize_bytes(canonical.as_bytes(), jcs::Limits::default())
            .expect("a canonical form is valid JSON");
        assert_eq!(again, canonical);
    }
    if let Ok(input) = EventInput::parse(data) {
        let asks_for_v2 = input.schema_version == Some(2);
        match input
            .clone()
            .into_leaf(EventId::new_v4([9; 16]), Instant::from_unix(0, 0), "fuzz")
        {
            Ok((leaf, _)) => {
                assert!(
                    !asks_for_v2,
                    "a schema 1 leaf for an event that asked for 2"
                );
                let parsed = EventLeaf::parse(&leaf.leaf).expect("a leaf parses back");
                assert_eq!(parsed, leaf);
            }
            Err(_) => assert!(asks_for_v2, "a valid event refused by the schema 1 writer"),
        }
        let salts = EventSalts::from_random([[1; 32], [2; 32], [3; 32], [4; 32]]);
        let (leaf, openings) = input
            .into_leaf_v2(
                EventId::new_v4([9; 16]),
                Instant::from_unix(0, 0),
                "fuzz",
                &salts,
            )
            .expect("a valid event makes a schema 2 leaf");
        assert_eq!(EventLeafV2::parse(&leaf.leaf).as_ref(), Ok(&leaf));
        let contents = leaf
            .verify_disclosure(&openings.disclose_all())
            .expect("its own openings open it");
        assert!(contents.is_complete());
        for field in PersonalField::ALL {
            let opening = openings.get(field);
            assert_eq!(opening.is_some(), leaf.commitments.get(field).is_some());
            if let Some(opening) = opening {
                assert!(leaf.verify_opening(field, opening).is_ok());
            }
        }
    }
    let _ = EventLeaf::parse(data);
    let _ = AnyEventLeaf::parse(data);
});
