//! Fuzzes export parsing and verification, both formats: no input may panic; whatever parses
//! must serialise back to JSON that parses to the same bundle; verification by policy and by
//! log key may fail but never panic, and a v1 bundle verifies under the v2 rules exactly when
//! it verifies under its own.
#![no_main]

use std::sync::OnceLock;

use cairn_spec::example::{world, World};
use cairn_spec::export::{verify_export, AnyExport, ExportBundle, ExportBundleV2, ExportTrust};
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
    let key = world.log.verifier();
    if let Ok(bundle) = ExportBundle::from_json(data) {
        let again = ExportBundle::from_json(bundle.to_json().as_bytes()).expect("own JSON parses");
        assert_eq!(again, bundle);
        let by_policy = verify_export(&bundle, ExportTrust::Policy(policy));
        let by_key = verify_export(&bundle, ExportTrust::LogKey(&key));
        let any = AnyExport::V1(bundle);
        assert_eq!(
            any.verify(ExportTrust::Policy(policy)).is_ok(),
            by_policy.is_ok()
        );
        assert_eq!(
            any.verify(ExportTrust::LogKey(&key)).is_ok(),
            by_key.is_ok()
        );
    }
    if let Ok(AnyExport::V2(bundle)) = AnyExport::from_json(data) {
        let again =
            ExportBundleV2::from_json(bundle.to_json().as_bytes()).expect("own JSON parses");
        assert_eq!(again, bundle);
        let any = AnyExport::V2(bundle);
        let _ = any.verify(ExportTrust::Policy(policy));
        let _ = any.verify(ExportTrust::LogKey(&key));
    }
});
