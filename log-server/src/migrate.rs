//! `cairn-log migrate`: copies a log from the embedded store (one machine's `data_dir`) into
//! the scaled backend (PostgreSQL and a bucket), then proves the copy.
//!
//! The copy, in order, each step safe to repeat (a migration that stopped is run again and goes
//! on where it stopped):
//!
//! 1. the integrator lease is taken for the migration, so no front-end may be running (one
//!    that holds the lease is refused; one started meanwhile cannot store a checkpoint);
//! 2. the entries the target already has are compared with the source's, one by one (leaf,
//!    idempotency key, payload); then every further entry is appended at its index with its
//!    idempotency key and payload, and an erased payload is erased again;
//! 3. the tree is grown over the copied entries and its tiles written to the bucket;
//! 4. **the proof**: every hash of every tile level the source holds is read from both stores
//!    and compared (equal tiles give the same root at every tree size), and the root the copy
//!    gives at the source's latest checkpoint is the one that checkpoint signs;
//! 5. that checkpoint is stored with its cosignatures, timestamp tokens and the witnesses'
//!    progress, marked as published for the front-ends, and published to the bucket (entry
//!    bundles, then the `checkpoint` object) if its cosignatures meet the witness quorum.
//!
//! Before these steps `cairn-log migrate` copies the data subjects' keys of the log's audit
//! events into PostgreSQL as they are, wrapped under the same KEK (the scaled configuration's
//! `[privacy] kek_file` must be the old log's KEK: a key it does not open stops the migration
//! before anything is written), so that every contents record sealed before the move opens
//! after it ([`crate::events::privacy::Privacy::copy_subject_keys`]).
//!
//! What is not copied: the events index (the front-ends' shared index is derived from the log:
//! the first flush indexes every event, and the legal holds and erasure marks with them, since
//! they are the log's own admin events), and the cosignatures of checkpoints older than the
//! latest (a receipt at an older size is then answered from a newer checkpoint).

use std::time::Duration;

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::merkle::tree_root;
use cairn_spec::note::Note;

use crate::integrator::Tree;
use crate::publisher::{self, PublisherConfig, ROUND_MARK};
use crate::storage::embedded::EmbeddedStore;
use crate::storage::postgres::LeaseOutcome;
use crate::storage::scaled::ScaledStore;
use crate::storage::StoreHashes;
use crate::storage::{
    justified_hash_count, Entry, NewEntry, SequenceStore, StateStore, StoreError, StoredCheckpoint,
    StoredPayload, TreeStore, MAX_HASH_LEVEL,
};

/// The most entries (or hashes) read, appended or compared at a time.
const CHUNK: u64 = 4096;
/// How long the migration's lease lasts; it is renewed after every chunk.
const LEASE_TERM: Duration = Duration::from_secs(120);
/// The holder name the migration takes the lease as.
const HOLDER: &str = "cairn-log migrate";

/// Why a migration stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The target is not a copy of the source's beginning, or the copy does not prove.
    #[error("{0}")]
    Mismatch(String),
    /// Front-ends are running on the target.
    #[error("{0}")]
    Busy(String),
}

/// What a migration did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    /// The entries in the log (both stores now).
    pub entries: u64,
    /// Of those, copied by this run (the rest were there and compared).
    pub copied: u64,
    /// Tile hashes compared between the two stores.
    pub hashes_compared: u64,
    /// The size of the checkpoint carried over, if the source had one.
    pub checkpoint: Option<u64>,
    /// Whether that checkpoint was published to the bucket (its cosignatures met the quorum).
    pub published: bool,
}

/// Copies `source` into `target` and proves the copy; see the [module](self) documentation.
/// `witnesses` checks the carried cosignatures before the checkpoint is published. Blocking.
pub fn migrate(
    source: &EmbeddedStore,
    target: &ScaledStore,
    witnesses: &PublisherConfig,
    progress: &mut dyn FnMut(&str),
) -> Result<MigrationReport, MigrateError> {
    take_lease(target)?;
    let copied = copy(source, target, progress);
    let result = copied.and_then(|report| finish(source, target, witnesses, report, progress));
    if let Err(error) = target.postgres().release_lease() {
        progress(&format!(
            "could not give the lease up ({error}); it expires by itself"
        ));
    }
    result
}

fn take_lease(target: &ScaledStore) -> Result<(), MigrateError> {
    match target.postgres().acquire_lease(HOLDER, LEASE_TERM)? {
        LeaseOutcome::Granted(_) => Ok(()),
        LeaseOutcome::HeldElsewhere(refusal) => Err(MigrateError::Busy(format!(
            "{} holds the integrator lease (for {:.1} s more): stop every front-end of the \
             target log before migrating into it",
            refusal.holder,
            refusal.expires_in.as_secs_f64()
        ))),
    }
}

/// Steps 2 and 3: compares what the target has, appends the rest, grows the tree.
fn copy(
    source: &EmbeddedStore,
    target: &ScaledStore,
    progress: &mut dyn FnMut(&str),
) -> Result<MigrationReport, MigrateError> {
    let entries = source.entry_count();
    let present = target.entry_count();
    if present > entries {
        return Err(MigrateError::Mismatch(format!(
            "the target holds {present} entries, the source only {entries}: it is another log"
        )));
    }
    let mut start = 0;
    while start < present {
        let count = CHUNK.min(present - start);
        let (ours, theirs) = (
            source.read_entries(start, count)?,
            target.read_entries(start, count)?,
        );
        for (from, to) in ours.iter().zip(&theirs) {
            compare_entry(source, target, from, to)?;
        }
        start += count;
    }
    if present > 0 {
        progress(&format!(
            "{present} entries already in the target match the source"
        ));
    }
    let mut tree = Tree::restore(target).map_err(|e| MigrateError::Mismatch(e.to_string()))?;
    let mut next = present;
    while next < entries {
        let count = CHUNK.min(entries - next);
        let read = source.read_entries(next, count)?;
        let mut batch = Vec::with_capacity(read.len());
        let mut erased = Vec::new();
        for entry in &read {
            let payload = match source.read_payload(entry.index)? {
                Some(StoredPayload::Held(bytes)) => Some(bytes),
                Some(StoredPayload::Erased) => {
                    erased.push(entry.index);
                    Some(Vec::new())
                }
                None => None,
            };
            batch.push(
                NewEntry::new(entry.leaf.clone(), entry.idempotency.clone()).with_payload(payload),
            );
        }
        target.append_entries(next, &batch)?;
        for index in erased {
            target.erase_payload(index)?;
        }
        next += count;
        target.postgres().acquire_lease(HOLDER, LEASE_TERM)?;
        progress(&format!("copied entries up to {next} of {entries}"));
    }
    // The tree over every entry, its tiles in the bucket.
    while tree.size() < entries {
        let count = CHUNK.min(entries - tree.size());
        let hashes: Vec<_> = target
            .read_entries(tree.size(), count)?
            .iter()
            .map(Entry::leaf_hash)
            .collect();
        tree.extend(target, &hashes)
            .map_err(|e| MigrateError::Mismatch(e.to_string()))?;
        target.sync_hashes()?;
    }
    target.sync_hashes()?;
    Ok(MigrationReport {
        entries,
        copied: entries - present,
        ..MigrationReport::default()
    })
}

/// One entry of each store: the same leaf, key and payload. A payload erased in the source
/// and still held in the target (a migration stopped between the two) is erased now.
fn compare_entry(
    source: &EmbeddedStore,
    target: &ScaledStore,
    from: &Entry,
    to: &Entry,
) -> Result<(), MigrateError> {
    if from != to {
        return Err(MigrateError::Mismatch(format!(
            "entry {} differs between the source and the target: another log",
            from.index
        )));
    }
    let (ours, theirs) = (
        source.read_payload(from.index)?,
        target.read_payload(to.index)?,
    );
    match (&ours, &theirs) {
        (Some(StoredPayload::Erased), Some(StoredPayload::Held(_))) => {
            target.erase_payload(to.index)?;
            Ok(())
        }
        _ if ours == theirs => Ok(()),
        _ => Err(MigrateError::Mismatch(format!(
            "the payload of entry {} differs between the source and the target",
            from.index
        ))),
    }
}

/// Steps 4 and 5: the proof, then the checkpoint.
fn finish(
    source: &EmbeddedStore,
    target: &ScaledStore,
    witnesses: &PublisherConfig,
    mut report: MigrationReport,
    progress: &mut dyn FnMut(&str),
) -> Result<MigrationReport, MigrateError> {
    for level in 0..=MAX_HASH_LEVEL {
        let held = source
            .hash_count(level)?
            .min(justified_hash_count(level, report.entries));
        let mut start = 0;
        while start < held {
            let count = CHUNK.min(held - start);
            if source.read_hashes(level, start, count)?
                != target.read_hashes(level, start, count)?
            {
                return Err(MigrateError::Mismatch(format!(
                    "the tiles of level {level} differ between the source and the copy in \
                     hashes {start} to {}",
                    start + count
                )));
            }
            start += count;
            report.hashes_compared += count;
        }
    }
    progress(&format!(
        "proof: the {} tile hashes of the source equal the copy's",
        report.hashes_compared
    ));
    let Some(latest) = source.latest_checkpoint()? else {
        return Ok(report);
    };
    let checkpoint = Note::parse(&latest.note)
        .ok()
        .and_then(|note| Checkpoint::from_note(&note).ok())
        .ok_or_else(|| MigrateError::Mismatch("the source's checkpoint does not parse".into()))?;
    let root = tree_root(checkpoint.size, &StoreHashes::new(target))
        .map_err(|e| MigrateError::Mismatch(e.to_string()))?;
    if root != checkpoint.root || checkpoint.size != latest.size {
        return Err(MigrateError::Mismatch(format!(
            "the copy's root at size {} is not the one the source's checkpoint signs",
            checkpoint.size
        )));
    }
    progress(&format!(
        "proof: the copy's root at size {} is the source's checkpoint's",
        checkpoint.size
    ));
    carry_checkpoint(source, target, &latest)?;
    report.checkpoint = Some(latest.size);
    if let Some(published) = publisher::restore(target, witnesses)? {
        target.publish(&StoredCheckpoint {
            size: published.size,
            note: published.note.into_bytes(),
        })?;
        report.published = true;
        progress(&format!(
            "published the checkpoint of size {} to the bucket",
            published.size
        ));
    } else {
        progress("the checkpoint's cosignatures do not meet the witness quorum: the lease holder publishes it once they do");
    }
    Ok(report)
}

/// Stores `latest` in the target with its cosignatures, timestamp tokens and the witnesses'
/// progress, and marks its round finished (the front-ends serve it as published).
fn carry_checkpoint(
    source: &EmbeddedStore,
    target: &ScaledStore,
    latest: &StoredCheckpoint,
) -> Result<(), StoreError> {
    let stored = target.latest_checkpoint()?;
    if stored
        .as_ref()
        .is_none_or(|stored| stored.size < latest.size)
    {
        target.store_checkpoint(latest)?;
    }
    for (witness, line) in source.cosignatures(latest.size)? {
        target.store_cosignature(latest.size, &witness, &line)?;
        if let Some(size) = source.witness_size(&witness)? {
            if target
                .witness_size(&witness)?
                .is_none_or(|known| known < size)
            {
                target.set_witness_size(&witness, size)?;
            }
        }
    }
    for (authority, token) in source.timestamp_tokens(latest.size)? {
        target.store_timestamp_token(latest.size, &authority, &token)?;
    }
    if target
        .witness_size(ROUND_MARK)?
        .is_none_or(|known| known < latest.size)
    {
        target.set_witness_size(ROUND_MARK, latest.size)?;
    }
    Ok(())
}
