//! Fuzzes entry-bundle decoding: no input may panic or allocate beyond the bundle's width, and
//! whatever decodes must encode back to exactly the same bytes.
#![no_main]

use cairn_spec::tiles::{decode_entry_bundle, encode_entry_bundle, EntryBundle};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bundle_data)) = data.split_first() else {
        return;
    };
    let width = u16::from(selector) + 1;
    let bundle = EntryBundle::new(0, width).expect("1 to 256");
    if let Ok(entries) = decode_entry_bundle(bundle, bundle_data) {
        assert_eq!(entries.len(), usize::from(width));
        let encoded = encode_entry_bundle(&entries).expect("decoded entries fit a bundle");
        assert_eq!(
            encoded, bundle_data,
            "decode then encode must be the identity"
        );
    }
});
