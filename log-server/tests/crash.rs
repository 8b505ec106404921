//! SIGKILL at any moment loses no acknowledged leaf, and the store restarts cleanly.
//!
//! The test runs itself again as a child process that sequences leaves from many tasks and
//! prints each acknowledgement (index and leaf) only after the sequencer answered it. The parent
//! kills the child with SIGKILL at an arbitrary moment, reopens the store, and checks that every
//! acknowledged leaf is at its index; then it starts the next child on the same store.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_log::storage::embedded::{DedupConfig, EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::{LogStore, NewEntry, SequenceStore};
use cairn_log::{Sequencer, SequencerConfig};

const CHILD_DIR: &str = "CAIRN_CRASH_TEST_DIR";
const CHILD_ROUND: &str = "CAIRN_CRASH_TEST_ROUND";

fn config(dir: &std::path::Path) -> EmbeddedConfig {
    let mut config = EmbeddedConfig::new(dir);
    // Small segments and dedup tables, so kills land in rotations and flushes too.
    config.segment_max_bytes = 64 * 1024;
    config.dedup = DedupConfig {
        table_keys: 500,
        max_runs: 3,
        initial_filter_keys: 1024,
    };
    config
}

fn leaf(round: u64, task: u64, number: u64) -> Vec<u8> {
    format!("round {round} task {task} leaf {number}").into_bytes()
}

/// The child: sequence leaves until killed, printing "index round task number" per answer.
fn child(dir: &str, round: u64) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store: Arc<dyn LogStore> = Arc::new(
            EmbeddedStore::open(config(dir.as_ref())).expect("the store reopens after a kill"),
        );
        let sequencer =
            Arc::new(Sequencer::start(store, SequencerConfig::default()).expect("start"));
        let stdout = Arc::new(std::sync::Mutex::new(std::io::stdout()));
        let tasks: Vec<_> = (0..64u64)
            .map(|task| {
                let (sequencer, stdout) = (Arc::clone(&sequencer), Arc::clone(&stdout));
                tokio::spawn(async move {
                    for number in 0.. {
                        let batch = if task % 8 == 0 { 20 } else { 1 };
                        let entries = (0..batch)
                            .map(|offset| {
                                NewEntry::new(leaf(round, task, number * 100 + offset), None)
                            })
                            .collect();
                        let answers = sequencer.add_batch(entries).await.expect("sequenced");
                        let mut out = stdout.lock().expect("stdout");
                        for (offset, answer) in answers.iter().enumerate() {
                            writeln!(
                                out,
                                "{} {round} {task} {}",
                                answer.index,
                                number * 100 + offset as u64
                            )
                            .expect("print");
                        }
                        out.flush().expect("flush");
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.expect("task");
        }
    });
}

#[test]
fn sigkill_loses_no_acknowledged_leaf() {
    if let (Ok(dir), Ok(round)) = (std::env::var(CHILD_DIR), std::env::var(CHILD_ROUND)) {
        child(&dir, round.parse().expect("round"));
        return;
    }
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut acknowledged: Vec<(u64, Vec<u8>)> = Vec::new();
    for round in 0..6u64 {
        let mut child = Command::new(std::env::current_exe().expect("test binary"))
            .args([
                "--exact",
                "sigkill_loses_no_acknowledged_leaf",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_DIR, dir.path())
            .env(CHILD_ROUND, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the child");
        let stdout = child.stdout.take().expect("piped stdout");
        // Kill after a varying number of acknowledgements, so the kill lands at different points.
        let kill_after = 500 + round * 1500;
        let started = Instant::now();
        let mut lines = BufReader::new(stdout).lines();
        let mut seen = 0;
        while seen < kill_after && started.elapsed() < Duration::from_secs(60) {
            let Some(Ok(line)) = lines.next() else { break };
            let fields: Vec<u64> = line
                .split(' ')
                .filter_map(|field| field.parse().ok())
                .collect();
            if let [index, round, task, number] = fields[..] {
                acknowledged.push((index, leaf(round, task, number)));
                seen += 1;
            }
        }
        child.kill().expect("SIGKILL the child");
        child.wait().expect("reap the child");
        assert!(seen > 0, "round {round}: the child acknowledged nothing");
        let store = EmbeddedStore::open(config(dir.path())).expect("the store opens after SIGKILL");
        let count = store.entry_count();
        for (index, bytes) in &acknowledged {
            assert!(
                *index < count,
                "acknowledged entry {index} is missing: the log holds {count}"
            );
            let entry = store.read_entries(*index, 1).expect("read");
            assert_eq!(&entry[0].leaf, bytes, "acknowledged entry {index} changed");
        }
    }
}
