//! Fuzzes the reader of event leaves of either schema version: no input may panic; a schema 2
//! leaf that parses is written back byte for byte from its clear fields and commitments, and
//! reads the same through every reader; an arbitrary opening never panics, and verifies only
//! against a commitment it made.
#![no_main]

use cairn_spec::event::{
    AnyEventLeaf, Disclosure, EventDisclosure, EventLeaf, EventLeafV2, FieldOpening, PersonalField,
    Salt,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match AnyEventLeaf::parse(data) {
        Ok(AnyEventLeaf::V2(leaf)) => {
            assert_eq!(leaf.leaf, data);
            let rebuilt = EventLeafV2::from_commitments(leaf.clear.clone(), leaf.commitments)
                .expect("a parsed leaf's fields are valid");
            assert_eq!(rebuilt, leaf, "parse then write is not the identity");
            assert_eq!(EventLeafV2::parse(data).as_ref(), Ok(&leaf));
            assert!(EventLeaf::parse(data).is_err());
            let mut erased = EventDisclosure::default();
            for field in PersonalField::ALL {
                if leaf.commitments.get(field).is_some() {
                    erased.set(field, Disclosure::Erased);
                }
            }
            assert!(leaf
                .verify_disclosure(&erased)
                .expect("all erased")
                .is_erased());
            let opening = FieldOpening {
                salt: Salt::from_bytes([0x5a; 32]),
                value: data.to_vec(),
            };
            for field in PersonalField::ALL {
                let made = opening.commitment(&leaf.clear.event_id, field);
                let verdict = leaf.verify_opening(field, &opening);
                if leaf.commitments.get(field) != Some(&made) {
                    assert!(verdict.is_err());
                }
            }
        }
        Ok(AnyEventLeaf::V1(leaf)) => {
            assert_eq!(EventLeaf::parse(data).as_ref(), Ok(&leaf));
            assert!(EventLeafV2::parse(data).is_err());
        }
        Err(_) => {
            assert!(EventLeaf::parse(data).is_err());
            assert!(EventLeafV2::parse(data).is_err());
        }
    }
});
