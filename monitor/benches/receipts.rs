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
//! Run: `cargo bench -p cairn-monitor --bench receipts`. Prints receipts/s of each (by the
//! wall clock, and per CPU-second of the command: on a busy machine the wall clock also counts
//! the time it waits for a core) and the ratio to the baseline; every run must verify every
//! receipt (exit code 0). `CAIRN_RECEIPTS_BENCH_BIN` names another `cairn-monitor` binary (an
//! older build) to measure on the same receipts, alternating with this one, for an A/B ratio
//! in the same run.

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

/// The command line `binary`, on one core when `taskset` is there.
fn command(binary: &Path) -> Command {
    let pinned = Command::new("taskset")
        .args(["-c", "1", "true"])
        .status()
        .is_ok_and(|status| status.success());
    let mut command = if pinned {
        let mut command = Command::new("taskset");
        command.arg("-c").arg("1").arg(binary);
        command
    } else {
        Command::new(binary)
    };
    command.stdout(Stdio::null()).stderr(Stdio::inherit());
    command
}

/// The CPU time (user and system) of this process's children that have ended, from
/// `/proc/self/stat` (`cutime` and `cstime`, in clock ticks of 10 ms); zero where there is none.
fn children_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which is in parentheses and may hold spaces).
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17 of the line; the first field after the name is
    // field 3 (the state), so they are 13 and 14 after the name.
    let ticks: u64 = [13, 14]
        .iter()
        .filter_map(|&index| {
            fields
                .get(index)
                .and_then(|field| field.parse::<u64>().ok())
        })
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Runs `binary verify-receipt` on `receipts` (files or a directory): its wall-clock time and
/// its CPU time.
fn run(binary: &Path, receipts: &[&Path], policy: &Path) -> (Duration, Duration) {
    let cpu_before = children_cpu();
    let started = Instant::now();
    let status = command(binary)
        .arg("verify-receipt")
        .args(receipts)
        .arg("--policy")
        .arg(policy)
        .status()
        .expect("runs cairn-monitor");
    let elapsed = started.elapsed();
    assert!(status.success(), "every receipt verifies");
    (elapsed, children_cpu().saturating_sub(cpu_before))
}

/// The wall-clock and CPU rates of one run of `binary` on the directory.
fn rates(binary: &Path, dir: &Path, count: usize, policy: &Path) -> (f64, f64) {
    let (wall, cpu) = run(binary, &[dir], policy);
    (
        count as f64 / wall.as_secs_f64(),
        count as f64 / cpu.as_secs_f64().max(0.01),
    )
}

fn measure(name: &str, dir: &Path, count: usize, policy: &Path, baseline: Option<&Path>) {
    let binary = Path::new(env!("CARGO_BIN_EXE_cairn-monitor"));
    let started = Instant::now();
    for n in 0..BASELINE_RECEIPTS {
        run(binary, &[&dir.join(format!("{n:06}.json"))], policy);
    }
    let one_a_process = BASELINE_RECEIPTS as f64 / started.elapsed().as_secs_f64();
    // The first run also brings the files into the page cache; then this binary and the
    // baseline's in turn, twice, the best of each.
    run(binary, &[dir], policy);
    let mut this = (0.0f64, 0.0f64);
    let mut base = (0.0f64, 0.0f64);
    for _ in 0..2 {
        let (wall, cpu) = rates(binary, dir, count, policy);
        this = (this.0.max(wall), this.1.max(cpu));
        if let Some(baseline) = baseline {
            let (wall, cpu) = rates(baseline, dir, count, policy);
            base = (base.0.max(wall), base.1.max(cpu));
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "verify-receipt/{name}: one_process {:.0} receipts/s wall, {:.0} per CPU-second \
         ({count} receipts); one_process_a_receipt {one_a_process:.0} receipts/s; ratio {:.1}; \
         load average {}",
        this.0,
        this.1,
        this.0 / one_a_process,
        load.trim()
    );
    if baseline.is_some() {
        println!(
            "verify-receipt/{name}: baseline binary {:.0} receipts/s wall, {:.0} per CPU-second; \
             this ÷ baseline: wall {:.2}, CPU {:.2}",
            base.0,
            base.1,
            this.0 / base.0,
            this.1 / base.1
        );
    }
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
    let baseline = std::env::var_os("CAIRN_RECEIPTS_BENCH_BIN").map(std::path::PathBuf::from);
    measure(
        "auditor",
        &auditor,
        AUDITOR_RECEIPTS,
        &policy,
        baseline.as_deref(),
    );
    measure("cold", &cold, COLD_RECEIPTS, &policy, baseline.as_deref());
}
