//! Fuzzes export parsing and verification: no input may panic; whatever parses must serialise
//! back to JSON that parses to the same bundle; verification by policy and by log key may fail
//! but never panic.
#![no_main]

use std::sync::OnceLock;

use cairn_spec::example::{world, World};
use cairn_spec::export::{verify_export, ExportBundle, ExportTrust};
use cairn_spec::policy::Policy;
use libfuzzer_sys::fuzz_target;

fn example() -> &'static (World, Policy) {
    static EXAMPLE: OnceLock<(World, Policy)> = OnceLock::new();
    EXAMPLE.get_or_init(|| {
        let world = world(16);
        let policy = world.policy("two", true);
        (world, policy)
    })
}

fuzz_target!(|data: &[u8]| {
    let (world, policy) = example();
    if let Ok(bundle) = ExportBundle::from_json(data) {
        let again = ExportBundle::from_json(bundle.to_json().as_bytes()).expect("own JSON parses");
        assert_eq!(again, bundle);
        let _ = verify_export(&bundle, ExportTrust::Policy(policy));
        let key = world.log.verifier();
        let _ = verify_export(&bundle, ExportTrust::LogKey(&key));
    }
});
