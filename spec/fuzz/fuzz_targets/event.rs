//! Fuzzes strict JSON, RFC 8785 canonicalisation and the event schema: no input may panic; a
//! canonical form parses back to itself; an accepted event becomes a leaf that parses back to
//! the same event.
#![no_main]

use cairn_spec::event::{EventId, EventInput, EventLeaf};
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
        let (leaf, _) = input
            .into_leaf(EventId::new_v4([9; 16]), Instant::from_unix(0, 0), "fuzz")
            .expect("a fixed principal is valid");
        let parsed = EventLeaf::parse(&leaf.leaf).expect("a leaf parses back");
        assert_eq!(parsed, leaf);
    }
    let _ = EventLeaf::parse(data);
});
