//! Grows a log to many leaves through the sequencer and prints the process's resident memory
//! as it goes, then how long reopening takes: a check that memory stays bounded as the log
//! grows and that opening does not read the whole log.
//!
//! `cargo run --release -p cairn-log --example fill -- <dir> [leaves, default 10000000]`

use std::sync::Arc;
use std::time::Instant;

use cairn_log::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::{LogStore, NewEntry, SequenceStore};
use cairn_log::{Sequencer, SequencerConfig};

fn resident_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|line| line.starts_with("VmRSS:"))
                .and_then(|line| {
                    line.split_whitespace()
                        .nth(1)
                        .and_then(|kib| kib.parse().ok())
                })
        })
        .unwrap_or(0)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut arguments = std::env::args().skip(1);
    let dir = arguments.next().ok_or("usage: fill <dir> [leaves]")?;
    let target: u64 = arguments
        .next()
        .map_or(Ok(10_000_000), |text| text.parse())?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let store = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(&dir))?);
    let start_count = store.entry_count();
    let dyn_store: Arc<dyn LogStore> = store.clone();
    let sequencer = Arc::new(Sequencer::start(dyn_store, SequencerConfig::default())?);
    let started = Instant::now();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..8u64)
            .map(|task| {
                let sequencer = Arc::clone(&sequencer);
                tokio::spawn(async move {
                    let mut round = 0u64;
                    loop {
                        let entries: Vec<NewEntry> = (0..1000u64)
                            .map(|number| {
                                let mut leaf = vec![b'.'; 256];
                                leaf[..24].copy_from_slice(&[start_count.to_le_bytes(), task.to_le_bytes(), (round * 1000 + number).to_le_bytes()].concat());
                                NewEntry::new(leaf, None)
                            })
                            .collect();
                        let answers = sequencer.add_batch(entries).await.expect("sequenced");
                        if answers.last().is_some_and(|answer| answer.index >= start_count + target) {
                            return;
                        }
                        round += 1;
                    }
                })
            })
            .collect();
        let mut durable = sequencer.durable_size();
        let mut next_report = start_count + 1_000_000;
        while *durable.borrow() < start_count + target {
            if durable.changed().await.is_err() {
                break;
            }
            let size = *durable.borrow();
            if size >= next_report {
                println!(
                    "{size:>10} leaves  {:>7.1} s  {:>8.0} leaves/s  resident {:>7} KiB  dedup index {:>6} KiB",
                    started.elapsed().as_secs_f64(),
                    (size - start_count) as f64 / started.elapsed().as_secs_f64(),
                    resident_kib(),
                    store.dedup_memory_bytes() / 1024
                );
                next_report += 1_000_000;
            }
        }
        for task in tasks {
            task.await.expect("task");
        }
    });
    runtime.block_on(sequencer.shutdown())?;
    drop(sequencer);
    let store = Arc::try_unwrap(store).map_err(|_| "the sequencer still holds the store")?;
    store.close()?;
    let reopened = Instant::now();
    let store = EmbeddedStore::open(EmbeddedConfig::new(&dir))?;
    println!(
        "reopened {} entries in {:.2?}; resident {} KiB",
        store.entry_count(),
        reopened.elapsed(),
        resident_kib()
    );
    Ok(())
}
