//! `cairn-monitor verify-export` throughput, the command line itself (release build) on export
//! files: ten `cairn.export/v1` bundles of [`EVENTS_PER_BUNDLE`] events each ([`EVENTS`], 1 M,
//! in all, in the format's largest bundles), together every event of a log of that many audit
//! events (every other one with its payload), each with its 20-hash inclusion proof into the
//! checkpoint of the whole log.
//!
//! Each bundle is verified twice over, with the trust an auditor gives it:
//!
//! - `policy`: a policy file (the log's key, two of three witnesses, an RFC 3161 TSA): the
//!   checkpoint carries the log's signature, two cosignatures and one Ed25519 TSA token;
//! - `log_key`: only the log's vkey.
//!
//! Run: `cargo bench -p cairn-monitor --bench export`. Prints events/s of each (the best of two
//! runs over the bundles; the first also brings the files into the page cache); every run must
//! verify every bundle (exit code 0). `CAIRN_EXPORT_BENCH_EVENTS` sets the number of events
//! (a multiple of [`EVENTS_PER_BUNDLE`]), `CAIRN_EXPORT_BENCH_BIN` another `cairn-monitor`
//! binary to measure (an older build, as a baseline in the same run), and
//! `CAIRN_EXPORT_BENCH_DIR` a directory to write the bundles and the policy to and keep them
//! there with the log's vkey in `vkey.txt` (to profile one run by hand); by default they go to a temporary directory.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use cairn_spec::event::{EventId, EventInput};
use cairn_spec::example::{world_of, World};
use cairn_spec::export::{ExportBundle, ExportedEvent, EXPORT_FORMAT};
use cairn_spec::time::Instant as EventTime;

const EVENTS: usize = 1_000_000;
const EVENTS_PER_BUNDLE: usize = cairn_spec::export::MAX_EXPORT_EVENTS;

/// Audit events `0..count`, as the log makes their leaves; every other one with its payload.
fn events(count: usize) -> (Vec<Vec<u8>>, Vec<Option<Vec<u8>>>) {
    (0..count)
        .map(|index| {
            let payload = if index % 2 == 0 {
                format!(r#","payload":{{"amount":{index},"currency":"EUR"}}"#)
            } else {
                String::new()
            };
            let json = format!(
                r#"{{"event_id":"00000000-0000-4000-8000-{index:012}","timestamp":"2026-12-07T10:00:00Z","actor":{{"id":"user-{}","type":"user"}},"action":"invoice.pay","resource":{{"type":"invoice","id":"inv-{index}"}},"outcome":"success"{payload}}}"#,
                index % 1000
            );
            let (leaf, payload) = EventInput::parse(json.as_bytes())
                .expect("a valid event")
                .into_leaf(
                    EventId::new_v4([0; 16]),
                    EventTime::from_unix(1_765_101_600, 0),
                    "billing",
                )
                .expect("its leaf");
            (leaf.leaf, payload)
        })
        .unzip()
}

/// The policy of [`World::policy`] (`two` of three witnesses, the TSA), as a file's text.
fn policy_text(world: &World) -> String {
    let mut text = format!("log {}\n", world.log.verifier().to_vkey());
    for (index, witness) in world.witnesses.iter().enumerate() {
        text.push_str(&format!(
            "witness w{index} {}\n",
            witness.verifier().to_vkey()
        ));
    }
    text.push_str("group two 2 w0 w1 w2\nquorum two\n");
    text.push_str(&format!(
        "tsa test {}\n",
        base64::engine::general_purpose::STANDARD.encode(&world.tsa.root_der)
    ));
    text
}

/// Writes the bundles of every event of `world`; returns their files.
fn write_bundles(world: &World, payloads: &[Option<Vec<u8>>], dir: &Path) -> Vec<PathBuf> {
    let size = world.leaves.len();
    // The checkpoint of the whole log, with two cosignatures and a token.
    let whole = world.receipt_at(0, size as u64, &[0, 2]);
    (0..size / EVENTS_PER_BUNDLE)
        .map(|bundle| {
            let first = bundle * EVENTS_PER_BUNDLE;
            let events = (first..first + EVENTS_PER_BUNDLE)
                .map(|index| ExportedEvent {
                    index: index as u64,
                    leaf: world.leaves[index].clone(),
                    payload: payloads[index].clone(),
                    inclusion_proof: cairn_spec::merkle::inclusion_proof(
                        index as u64,
                        size as u64,
                        &world.stored,
                    )
                    .expect("stored hashes"),
                })
                .collect();
            let export = ExportBundle {
                format: EXPORT_FORMAT.to_owned(),
                checkpoint: whole.checkpoint.clone(),
                timestamps: whole.timestamps.clone(),
                events,
            };
            let path = dir.join(format!("export-{bundle:02}.json"));
            std::fs::write(&path, export.to_json()).expect("writes a bundle");
            path
        })
        .collect()
}

/// Runs `verify-export` on each bundle with `trust` (`--policy <file>` or `--log-key <vkey>`):
/// the wall-clock time of them all.
fn run(binary: &str, bundles: &[PathBuf], trust: &[&str]) -> Duration {
    let started = Instant::now();
    for bundle in bundles {
        let status = Command::new(binary)
            .arg("verify-export")
            .arg(bundle)
            .args(trust)
            .stdout(Stdio::null())
            .status()
            .expect("runs cairn-monitor");
        assert!(status.success(), "{} verifies", bundle.display());
    }
    started.elapsed()
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    let count = std::env::var("CAIRN_EXPORT_BENCH_EVENTS")
        .map(|text| text.parse().expect("CAIRN_EXPORT_BENCH_EVENTS is a number"))
        .unwrap_or(EVENTS);
    assert!(
        count >= EVENTS_PER_BUNDLE && count.is_multiple_of(EVENTS_PER_BUNDLE),
        "a multiple of {EVENTS_PER_BUNDLE} events"
    );
    let binary = std::env::var("CAIRN_EXPORT_BENCH_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_cairn-monitor").to_owned());
    let (leaves, payloads) = events(count);
    let world = world_of(leaves);
    let temporary = tempfile::tempdir().expect("tempdir");
    let dir = std::env::var_os("CAIRN_EXPORT_BENCH_DIR")
        .map_or_else(|| temporary.path().to_owned(), PathBuf::from);
    std::fs::create_dir_all(&dir).expect("makes the bundles' directory");
    let policy = dir.join("policy.txt");
    std::fs::write(&policy, policy_text(&world)).expect("writes the policy");
    let bundles = write_bundles(&world, &payloads, &dir);
    let bytes: u64 = bundles
        .iter()
        .map(|path| std::fs::metadata(path).map_or(0, |meta| meta.len()))
        .sum();
    let policy_arg = policy.display().to_string();
    let vkey = world.log.verifier().to_vkey();
    std::fs::write(dir.join("vkey.txt"), &vkey).expect("writes the log's vkey");
    for (name, trust) in [
        ("policy", ["--policy", policy_arg.as_str()]),
        ("log_key", ["--log-key", vkey.as_str()]),
    ] {
        let best = (0..2)
            .map(|_| run(&binary, &bundles, &trust))
            .min()
            .expect("two runs");
        println!(
            "verify-export/{name}: {:.0} events/s ({count} events in {} bundles, {:.0} MB, in \
             {:.3} s); load average {}",
            count as f64 / best.as_secs_f64(),
            bundles.len(),
            bytes as f64 / 1e6,
            best.as_secs_f64(),
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
    }
}
