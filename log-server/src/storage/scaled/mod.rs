//! The scaled backend (`storage = "scaled"`): one log shared by several `cairn-log`
//! front-ends, its sequence and small state in PostgreSQL ([`PostgresStore`]) and its tree in an
//! S3-compatible bucket ([`BucketTree`]), where monitors read it at the C2SP tlog-tiles paths.
//!
//! - **Sequencing** is linearizable: every front-end accepts writes and appends its batches with
//!   [`SequenceStore::append_at_end`]; PostgreSQL places each batch at the end of the log under
//!   one row lock, so batches of all front-ends commit one after another. The dedup index is the
//!   database's: a leaf (or idempotency key) already durable is found by every front-end. Two
//!   front-ends that receive the same new leaf at the same moment may both append it (each
//!   looked before either committed): both submitters get a valid index with an inclusion
//!   proof, and every later submission of that leaf answers the first.
//! - **Integration and signing** run in one process at a time, the holder of the integrator
//!   lease ([`lease`]); its fencing token is checked in the transaction that stores each
//!   checkpoint, so a process that lost the lease (stopped past its term, say) stores nothing.
//!   The others follow: they serve the checkpoint stored in PostgreSQL and the tiles in the
//!   bucket, and keep asking for the lease.
//! - **Publication** ([`crate::publisher::publication`], above this module: it reports to the
//!   readiness and the metrics): the holder syncs the tiles a checkpoint covers before
//!   storing it (this store refuses a checkpoint that covers more leaf hashes than the bucket
//!   holds), and writes the entry bundles and the `checkpoint` object after the state commit,
//!   the object last. A bucket that fails delays publication only: sequencing goes on.

pub mod lease;

use std::sync::Arc;

use super::bucket::{BucketConfig, BucketTree, EntryCount};
use super::postgres::{PostgresConfig, PostgresStore};
use super::{
    DedupKey, DuplicateHit, Entry, Hash, NewEntry, SequenceStore, StateStore, StoreError,
    StoreLimits, StoredCheckpoint, StoredPayload, TreeStore,
};

/// A log's storage shared by several front-ends: the sequence and state in PostgreSQL, the tree
/// in a bucket. See the [module](self) documentation.
pub struct ScaledStore {
    sequence: Arc<PostgresStore>,
    tree: BucketTree,
}

impl std::fmt::Debug for ScaledStore {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ScaledStore")
            .field("sequence", &self.sequence)
            .field("tree", &self.tree)
            .finish()
    }
}

impl ScaledStore {
    /// Connects to the database (creating the log's schema if missing) and opens the tree in the
    /// bucket, learning its levels from the bucket. Blocking.
    pub fn open(postgres: PostgresConfig, bucket: BucketConfig) -> Result<ScaledStore, StoreError> {
        let sequence = Arc::new(PostgresStore::open(postgres)?);
        let counter = Arc::clone(&sequence);
        let entries: EntryCount = Arc::new(move || counter.entry_count());
        let tree = BucketTree::open(bucket, entries)?;
        Ok(ScaledStore { sequence, tree })
    }

    /// The PostgreSQL half: the lease is taken there.
    pub fn postgres(&self) -> &PostgresStore {
        &self.sequence
    }

    /// The bucket half.
    pub fn bucket(&self) -> &BucketTree {
        &self.tree
    }

    /// Publishes the stored checkpoint `checkpoint` to the bucket: entry bundles, then the
    /// `checkpoint` object ([`BucketTree::publish`]). Blocking.
    pub fn publish(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        self.tree
            .publish(checkpoint.size, &checkpoint.note, self.sequence.as_ref())
    }
}

impl SequenceStore for ScaledStore {
    fn limits(&self) -> &StoreLimits {
        self.sequence.limits()
    }

    fn entry_count(&self) -> u64 {
        self.sequence.entry_count()
    }

    fn append_entries(&self, first_index: u64, entries: &[NewEntry]) -> Result<(), StoreError> {
        self.sequence.append_entries(first_index, entries)
    }

    fn heal(&self) -> Result<(), StoreError> {
        SequenceStore::heal(self.sequence.as_ref())
    }

    fn background_failures(&self) -> (Option<String>, u64) {
        self.sequence.background_failures()
    }

    fn shared_by_front_ends(&self) -> bool {
        true
    }

    fn append_at_end(&self, entries: &[NewEntry]) -> Result<u64, StoreError> {
        self.sequence.append_at_end(entries)
    }

    fn read_entries(&self, start: u64, count: u64) -> Result<Vec<Entry>, StoreError> {
        self.sequence.read_entries(start, count)
    }

    fn read_payload(&self, index: u64) -> Result<Option<StoredPayload>, StoreError> {
        self.sequence.read_payload(index)
    }

    fn read_entries_with_payloads(
        &self,
        start: u64,
        count: u64,
    ) -> Result<Vec<(Entry, Option<StoredPayload>)>, StoreError> {
        self.sequence.read_entries_with_payloads(start, count)
    }

    fn erase_payload(&self, index: u64) -> Result<bool, StoreError> {
        self.sequence.erase_payload(index)
    }

    fn find_duplicates(
        &self,
        keys: &[DedupKey<'_>],
    ) -> Result<Vec<Option<DuplicateHit>>, StoreError> {
        self.sequence.find_duplicates(keys)
    }
}

impl TreeStore for ScaledStore {
    fn hash_count(&self, level: u8) -> Result<u64, StoreError> {
        self.tree.hash_count(level)
    }

    fn append_hashes(&self, level: u8, start: u64, hashes: &[Hash]) -> Result<(), StoreError> {
        self.tree.append_hashes(level, start, hashes)
    }

    fn read_hashes(&self, level: u8, start: u64, count: u64) -> Result<Vec<Hash>, StoreError> {
        self.tree.read_hashes(level, start, count)
    }

    fn sync_hashes(&self) -> Result<(), StoreError> {
        self.tree.sync_hashes()
    }
}

impl StateStore for ScaledStore {
    fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, StoreError> {
        self.sequence.latest_checkpoint()
    }

    /// Refuses a checkpoint that covers more leaf hashes than the bucket holds, then stores it in
    /// PostgreSQL, where the lease's fencing token, the durable entries and the size that never
    /// goes back are checked in one transaction.
    fn store_checkpoint(&self, checkpoint: &StoredCheckpoint) -> Result<(), StoreError> {
        let synced = self.tree.synced_count(0)?;
        if checkpoint.size > synced {
            return Err(StoreError::CheckpointAhead {
                size: checkpoint.size,
                durable: synced,
                what: "leaf hashes synced to the bucket",
            });
        }
        self.sequence.store_checkpoint(checkpoint)
    }

    fn witness_size(&self, witness: &str) -> Result<Option<u64>, StoreError> {
        self.sequence.witness_size(witness)
    }

    fn set_witness_size(&self, witness: &str, size: u64) -> Result<(), StoreError> {
        self.sequence.set_witness_size(witness, size)
    }

    fn store_cosignature(
        &self,
        size: u64,
        witness: &str,
        cosignature: &[u8],
    ) -> Result<(), StoreError> {
        self.sequence.store_cosignature(size, witness, cosignature)
    }

    fn cosignatures(&self, size: u64) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.sequence.cosignatures(size)
    }

    fn store_timestamp_token(
        &self,
        size: u64,
        authority: &str,
        token: &[u8],
    ) -> Result<(), StoreError> {
        self.sequence.store_timestamp_token(size, authority, token)
    }

    fn timestamp_tokens(&self, size: u64) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        self.sequence.timestamp_tokens(size)
    }
}
