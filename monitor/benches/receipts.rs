//! `cairn-monitor verify-receipt` throughput, the command line itself (release build) on
//! receipt files, pinned to one core (`taskset -c 1` when there is one):
//!
//! - `one_process_a_receipt`: the command run once per receipt, as before it took several: the
//!   baseline (measured on the first [`BASELINE_RECEIPTS`] files, as a rate);
//! - `one_process`: the command given the whole directory.
//!
//! Two sets of receipts, each of a leaf of a tree of about 2^20 leaves (a 20-hash inclusion
//! proof), the log's signature, two of three witnesses' cosignatures and one RFC 3161 token
//! (Ed25519 TSA) whose certificate chains to the policy's root:
//!
//! - `auditor`: [`AUDITOR_RECEIPTS`] receipts over [`AUDITOR_CHECKPOINTS`] checkpoints (a log
//!   signs about one a second, so many receipts share one), interleaved;
//! - `cold`: [`COLD_RECEIPTS`] receipts each with its own checkpoint and token: nothing repeats
//!   but the TSA's certificate.
//!
//! Run: `cargo bench -p cairn-monitor --bench receipts`. Prints receipts/s of each and the
//! ratio to the baseline; every run must verify every receipt (exit code 0).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use cairn_spec::example::{world, World};
use cairn_spec::receipt::Receipt;

const TREE_SIZE: u64 = 1 << 20;
const AUDITOR_RECEIPTS: usize = 20_000;
const AUDITOR_CHECKPOINTS: usize = 100;
const COLD_RECEIPTS: usize = 4_096;
const BASELINE_RECEIPTS: usize = 200;

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

fn auditor_receipts(world: &World) -> Vec<Receipt> {
    let templates: Vec<Receipt> = (0..AUDITOR_CHECKPOINTS)
        .map(|checkpoint| world.receipt_at(0, TREE_SIZE - checkpoint as u64, &[0, 2]))
        .collect();
    (0..AUDITOR_RECEIPTS)
        .map(|n| {
            let template = &templates[n % AUDITOR_CHECKPOINTS];
            let tree_size = TREE_SIZE - (n % AUDITOR_CHECKPOINTS) as u64;
            let index = (n * 7919 + 3) % tree_size as usize;
            Receipt {
                index: index as u64,
                leaf: Some(world.leaves[index].clone()),
                leaf_hash: cairn_spec::Hash::of_leaf(&world.leaves[index]),
                inclusion_proof: cairn_spec::merkle::inclusion_proof(
                    index as u64,
                    tree_size,
                    &world.stored,
                )
                .expect("stored hashes"),
                ..template.clone()
            }
        })
        .collect()
}

fn cold_receipts(world: &World) -> Vec<Receipt> {
    (0..COLD_RECEIPTS)
        .map(|n| {
            let tree_size = TREE_SIZE - n as u64;
            world.receipt_at((n * 997 + 7) % tree_size as usize, tree_size, &[0, 2])
        })
        .collect()
}

fn write_receipts(dir: &Path, receipts: &[Receipt]) {
    std::fs::create_dir(dir).expect("makes the receipts' directory");
    for (n, receipt) in receipts.iter().enumerate() {
        std::fs::write(dir.join(format!("{n:06}.json")), receipt.to_json()).expect("writes");
    }
}

/// The command line, on one core when `taskset` is there.
fn command() -> Command {
    let binary = env!("CARGO_BIN_EXE_cairn-monitor");
    let pinned = Command::new("taskset")
        .args(["-c", "1", "true"])
        .status()
        .is_ok_and(|status| status.success());
    let mut command = if pinned {
        let mut command = Command::new("taskset");
        command.args(["-c", "1", binary]);
        command
    } else {
        Command::new(binary)
    };
    command.stdout(Stdio::null()).stderr(Stdio::inherit());
    command
}

/// Runs `verify-receipt` on `receipts` (files or a directory): its wall-clock time.
fn run(receipts: &[&Path], policy: &Path) -> Duration {
    let started = Instant::now();
    let status = command()
        .arg("verify-receipt")
        .args(receipts)
        .arg("--policy")
        .arg(policy)
        .status()
        .expect("runs cairn-monitor");
    let elapsed = started.elapsed();
    assert!(status.success(), "every receipt verifies");
    elapsed
}

fn measure(name: &str, dir: &Path, count: usize, policy: &Path) {
    let started = Instant::now();
    for n in 0..BASELINE_RECEIPTS {
        run(&[&dir.join(format!("{n:06}.json"))], policy);
    }
    let baseline = BASELINE_RECEIPTS as f64 / started.elapsed().as_secs_f64();
    // Twice, the best of both: the first also brings the files into the page cache.
    let best = (0..2).map(|_| run(&[dir], policy)).min().expect("two runs");
    let rate = count as f64 / best.as_secs_f64();
    println!(
        "verify-receipt/{name}: one_process {rate:.0} receipts/s ({count} receipts in {:.3} s); \
         one_process_a_receipt {baseline:.0} receipts/s; ratio {:.1}; load average {}",
        best.as_secs_f64(),
        rate / baseline,
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
}

fn main() {
    if std::env::args().any(|argument| argument == "--list") {
        return;
    }
    let world = world(TREE_SIZE as usize);
    let dir = tempfile::tempdir().expect("tempdir");
    let policy = dir.path().join("policy.txt");
    std::fs::write(&policy, policy_text(&world)).expect("writes the policy");
    let auditor = dir.path().join("auditor");
    write_receipts(&auditor, &auditor_receipts(&world));
    let cold = dir.path().join("cold");
    write_receipts(&cold, &cold_receipts(&world));
    measure("auditor", &auditor, AUDITOR_RECEIPTS, &policy);
    measure("cold", &cold, COLD_RECEIPTS, &policy);
}
