//! What the verdict tests share: the exported functions called exactly as the browser calls
//! them (inputs copied into memory from `cairn_alloc`, the length-prefixed JSON result read back
//! and freed), and an example log of audit events with receipts, made by cairn-spec's own
//! example material.

#![allow(dead_code)]

use cairn_spec::event::{EventId, EventInput};
use cairn_spec::example::{self, World};
use cairn_spec::time::Instant;
use cairn_ui_wasm::{cairn_alloc, cairn_free};
use serde_json::Value;

/// A verdict function of the module's ABI with `N` inputs.
pub fn call<const N: usize>(
    function: impl FnOnce([(*const u8, usize); N]) -> *mut u8,
    inputs: [&[u8]; N],
) -> Value {
    let reserved: Vec<(*mut u8, usize)> = inputs
        .iter()
        .map(|input| {
            let ptr = cairn_alloc(input.len());
            assert!(!ptr.is_null(), "cairn_alloc({})", input.len());
            // SAFETY: cairn_alloc gave `input.len()` bytes at `ptr`.
            unsafe { std::ptr::copy_nonoverlapping(input.as_ptr(), ptr, input.len()) };
            (ptr, input.len())
        })
        .collect();
    let mut args = [(std::ptr::null::<u8>(), 0usize); N];
    for (arg, (ptr, len)) in args.iter_mut().zip(&reserved) {
        *arg = (*ptr as *const u8, *len);
    }
    let result = function(args);
    assert!(!result.is_null());
    // SAFETY: a verdict is a u32 length and that many bytes, freed once below.
    let json = unsafe {
        let mut length = [0u8; 4];
        std::ptr::copy_nonoverlapping(result, length.as_mut_ptr(), 4);
        let length = u32::from_le_bytes(length) as usize;
        let bytes = std::slice::from_raw_parts(result.add(4), length).to_vec();
        cairn_free(result, 4 + length);
        bytes
    };
    for (ptr, len) in reserved {
        // SAFETY: each came from cairn_alloc(len).
        unsafe { cairn_free(ptr, len) };
    }
    serde_json::from_slice(&json).expect("every verdict is JSON")
}

/// The event `index` of the example log: every other one with a payload.
pub fn event_json(index: usize) -> String {
    let payload = if index.is_multiple_of(2) {
        format!(r#","payload":{{"amount":{index}.5,"note":"é ü"}}"#)
    } else {
        String::new()
    };
    format!(
        r#"{{"event_id":"00000000-0000-4000-8000-{index:012}","timestamp":"2026-11-25T10:00:00Z","actor":{{"id":"alice","type":"user"}},"action":"invoice.pay","resource":{{"type":"invoice","id":"inv-{index}"}},"outcome":"success"{payload}}}"#
    )
}

/// An example log of `count` audit events (cairn-spec's example keys, witnesses and TSA), and
/// the canonical payloads beside it.
pub fn event_world(count: usize) -> (World, Vec<Option<Vec<u8>>>) {
    let mut leaves = Vec::new();
    let mut payloads = Vec::new();
    for index in 0..count {
        let (leaf, payload) = EventInput::parse(event_json(index).as_bytes())
            .expect("a valid event")
            .into_leaf(
                EventId::new_v4([0; 16]),
                Instant::from_unix(1_764_064_800, 0),
                "billing",
            )
            .expect("a leaf");
        leaves.push(leaf.leaf);
        payloads.push(payload);
    }
    (example::world_of(leaves), payloads)
}

/// The policy text the example world's `policy("two", true)` parses from: its log, three
/// witnesses (quorum two of them) and its TSA.
pub fn policy_text(world: &World, quorum: &str, with_tsa: bool) -> String {
    use base64::Engine as _;
    let mut text = format!("log {}\n", world.log.verifier().to_vkey());
    for (index, witness) in world.witnesses.iter().enumerate() {
        text.push_str(&format!(
            "witness w{index} {}\n",
            witness.verifier().to_vkey()
        ));
    }
    text.push_str("group two 2 w0 w1 w2\ngroup every all w0 w1 w2\n");
    text.push_str(&format!("quorum {quorum}\n"));
    if with_tsa {
        text.push_str(&format!(
            "tsa test {}\n",
            base64::engine::general_purpose::STANDARD.encode(&world.tsa.root_der)
        ));
    }
    text
}

/// The events API's answer for event `index`, built as cairn-log builds it: the leaf and the
/// payload embedded as their exact canonical bytes.
pub fn event_answer(
    world: &World,
    payloads: &[Option<Vec<u8>>],
    index: usize,
    erased: bool,
) -> String {
    let leaf = std::str::from_utf8(&world.leaves[index]).expect("UTF-8");
    let id = format!("00000000-0000-4000-8000-{index:012}");
    let (status, payload) = match (&payloads[index], erased) {
        (Some(_), true) => ("erased", "null".to_string()),
        (Some(payload), false) => ("held", String::from_utf8(payload.clone()).expect("UTF-8")),
        (None, _) => ("none", "null".to_string()),
    };
    let erased_by = if erased {
        r#""00000000-0000-4000-8000-999999999999""#
    } else {
        "null"
    };
    format!(
        r#"{{"event_id":"{id}","index":{index},"leaf_hash":"{}","payload_status":"{status}","erased_by":{erased_by},"event":{leaf},"payload":{payload}}}"#,
        cairn_spec::Hash::of_leaf(&world.leaves[index]).to_base64()
    )
}
