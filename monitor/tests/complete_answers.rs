//! Issue 29's bar, through the real `cairn-monitor` binary: `verify-export` of a bundle with a
//! completeness proof, and `verify-query` of a saved `GET /v1/events?…&proof=true` answer,
//! each exit 0 for the honest file and 1, with the reason, when one event is dropped, one is
//! added (a real event of the log, with its valid inclusion proof, that does not carry the
//! value) or two are reordered.
//!
//! The log is built here with cairn-spec (twelve events, `login` at every third leaf, signed
//! checkpoint carrying the index root), so every proof in the files is genuine and only the
//! tampering differs.

use std::path::Path;
use std::process::{Command, Output};

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::completeness::{action_key, extension_line, CompletenessProof, IndexMap};
use cairn_spec::completeness::{Item, KeyProof};
use cairn_spec::event::{EventId, EventInput};
use cairn_spec::export::{ExportBundleV2, ExportOpenings, ExportedEventV2, EXPORT_FORMAT_V2};
use cairn_spec::merkle::{self, CompactRange};
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::time::Instant;
use cairn_spec::Hash;
use serde_json::{json, Value};

const ORIGIN: &str = "example.com/complete-answers-test";
const SIZE: u64 = 12;

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [29; 32])
}

fn action_of(index: u64) -> &'static str {
    if index.is_multiple_of(3) {
        "login"
    } else {
        "read"
    }
}

fn event_id(index: u64) -> String {
    format!("00000000-0000-4000-8000-{index:012}")
}

/// The log: every leaf, the tree's stored hashes, and the signed checkpoint with its index
/// line; and the `login` completeness proof over the whole tree.
struct World {
    leaves: Vec<Vec<u8>>,
    stored: Vec<Hash>,
    checkpoint: String,
    proof: CompletenessProof,
}

fn world() -> World {
    let (mut stored, mut range, mut map) = (Vec::new(), CompactRange::new(), IndexMap::new());
    let (mut leaves, mut login) = (Vec::new(), Vec::new());
    for index in 0..SIZE {
        let json = format!(
            r#"{{"event_id":"{}","timestamp":"2026-11-25T10:00:00Z","actor":{{"id":"a","type":"user"}},"action":"{}","resource":{{"type":"t","id":"r"}},"outcome":"success"}}"#,
            event_id(index),
            action_of(index)
        );
        let (leaf, _) = EventInput::parse(json.as_bytes())
            .expect("event")
            .into_leaf(EventId::new_v4([0; 16]), Instant::from_unix(0, 0), "p")
            .expect("leaf");
        let leaf_hash = Hash::of_leaf(&leaf.leaf);
        range
            .append_with(leaf_hash, |_, hash| stored.push(*hash))
            .expect("appends");
        let item = Item {
            leaf_index: index,
            leaf_hash,
        };
        map.add(action_key(action_of(index)), item)
            .expect("in order");
        if action_of(index) == "login" {
            login.push(item);
        }
        leaves.push(leaf.leaf);
    }
    let note = Checkpoint {
        origin: ORIGIN.into(),
        size: SIZE,
        root: merkle::tree_root(SIZE, &stored).expect("root"),
        extensions: vec![extension_line(&map.root())],
    }
    .sign(&signer())
    .expect("signs");
    let key = action_key("login");
    let key_proof = KeyProof::build(key, &map.prove(&key), &login, 0, SIZE).expect("proof");
    World {
        leaves,
        stored,
        checkpoint: String::from_utf8(note.to_bytes().expect("note")).expect("utf-8"),
        proof: CompletenessProof {
            field: "action".into(),
            value: "login".into(),
            from: 0,
            to: SIZE,
            keys: vec![key_proof],
            received: None,
        },
    }
}

impl World {
    /// Leaf `index` as a bundle carries it, with its inclusion proof.
    fn exported(&self, index: u64) -> ExportedEventV2 {
        ExportedEventV2 {
            index,
            leaf: self.leaves[index as usize].clone(),
            payload: None,
            openings: ExportOpenings::default(),
            erased: vec![],
            inclusion_proof: merkle::inclusion_proof(index, SIZE, &self.stored).expect("proof"),
        }
    }

    /// The bundle of the leaves `indices`, in the order given, with the `login` proof.
    fn bundle(&self, indices: &[u64]) -> Value {
        let bundle = ExportBundleV2 {
            format: EXPORT_FORMAT_V2.into(),
            checkpoint: self.checkpoint.clone(),
            timestamps: vec![],
            events: indices.iter().map(|&index| self.exported(index)).collect(),
            completeness: Some(self.proof.clone()),
        };
        serde_json::from_str(&bundle.to_json()).expect("json")
    }

    /// A query answer listing `indices`, its proof the bundle of the same leaves.
    fn answer(&self, indices: &[u64]) -> Value {
        let events: Vec<Value> = indices
            .iter()
            .map(|&index| json!({"index": index, "event_id": event_id(index)}))
            .collect();
        json!({"events": events, "next_cursor": null, "proof": self.bundle(indices)})
    }
}

/// The honest `login` answer: leaves 0, 3, 6, 9.
const HONEST: [u64; 4] = [0, 3, 6, 9];
/// Leaf 6 dropped.
const DROPPED: [u64; 3] = [0, 3, 9];
/// Leaf 4 (a `read`) added in order.
const ADDED: [u64; 5] = [0, 3, 4, 6, 9];
/// Leaves 3 and 6 reordered.
const REORDERED: [u64; 4] = [0, 6, 3, 9];
/// The three tamperings of the honest answer, each with the reason a verifier must give.
const TAMPERED: [(&str, &[u64], &str); 3] = [
    ("dropped", &DROPPED, "leaves out the event at leaf 6"),
    ("added", &ADDED, "holds the event at leaf 4"),
    ("reordered", &REORDERED, "index 3 does not follow index 6"),
];

fn run(command: &str, file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cairn-monitor"))
        .args([command, &file.display().to_string()])
        .args(["--log-key", &signer().verifier().to_vkey()])
        .output()
        .expect("runs")
}

fn said(output: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Writes `value` to `name` in `dir`, runs `command` on it; its exit code and words.
fn check(dir: &Path, command: &str, name: &str, value: &Value) -> (Option<i32>, String) {
    let path = dir.join(name);
    std::fs::write(&path, value.to_string()).expect("writes");
    let output = run(command, &path);
    (output.status.code(), said(&output))
}

/// Writes `value` to `<name>.json` in `dir`, runs `command` on it, and asserts the verdict is
/// a refusal (exit 1) whose words hold `reason`.
fn assert_refused(dir: &Path, command: &str, name: &str, value: &Value, reason: &str) {
    let (code, words) = check(dir, command, &format!("{name}.json"), value);
    assert_eq!(code, Some(1), "{name}: {words}");
    assert!(words.contains(reason), "{name}: {words}");
}

#[test]
fn verify_export_refuses_a_bundle_with_an_event_dropped_added_or_reordered() {
    let world = world();
    let dir = tempfile::tempdir().expect("temporary directory");
    let (code, words) = check(
        dir.path(),
        "verify-export",
        "honest.json",
        &world.bundle(&HONEST),
    );
    assert_eq!(code, Some(0), "{words}");
    assert!(words.contains("complete: these are every event"), "{words}");
    for (name, indices, reason) in TAMPERED {
        let bundle = world.bundle(indices);
        assert_refused(dir.path(), "verify-export", name, &bundle, reason);
    }
}

#[test]
fn verify_query_refuses_an_answer_with_an_event_dropped_added_or_reordered() {
    let world = world();
    let dir = tempfile::tempdir().expect("temporary directory");
    let (code, words) = check(
        dir.path(),
        "verify-query",
        "honest.json",
        &world.answer(&HONEST),
    );
    assert_eq!(code, Some(0), "{words}");
    // Tampered in the listed events and the proof alike: the proof refuses it.
    for (name, indices, reason) in TAMPERED {
        let answer = world.answer(indices);
        assert_refused(dir.path(), "verify-query", name, &answer, reason);
    }
    // Tampered in the listed events only, the proof left honest: the list must be the proof's.
    let honest_proof = world.bundle(&HONEST);
    let listed_only = [
        (
            "dropped-listed",
            &DROPPED[..],
            "lists 3 events, its proof holds 4",
        ),
        (
            "added-listed",
            &ADDED[..],
            "lists 5 events, its proof holds 4",
        ),
        (
            "reordered-listed",
            &REORDERED[..],
            "is not the proof's event 1",
        ),
    ];
    for (name, indices, reason) in listed_only {
        let mut answer = world.answer(indices);
        answer["proof"] = honest_proof.clone();
        assert_refused(dir.path(), "verify-query", name, &answer, reason);
    }
}
