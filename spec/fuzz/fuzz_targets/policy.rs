//! Fuzzes the policy parser: no input may panic, and a parsed policy's quorum evaluation over
//! any subset of its witnesses is total.
#![no_main]

use std::collections::BTreeSet;

use cairn_spec::policy::Policy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(policy) = Policy::parse(data) else {
        return;
    };
    let names: Vec<String> = policy.witnesses.iter().map(|w| w.name.clone()).collect();
    for mask in 0..(1u32 << names.len().min(8)) {
        let cosigned: BTreeSet<String> = names
            .iter()
            .enumerate()
            .filter(|(index, _)| mask & (1 << index) != 0)
            .map(|(_, name)| name.clone())
            .collect();
        let _ = policy.quorum_met(&cosigned);
    }
});
