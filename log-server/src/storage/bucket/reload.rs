//! Learning the tree again from the bucket, for a front-end that shares the bucket with others.
//!
//! Several front-ends open one bucket, and only the one holding the integrator lease writes
//! tiles (see [`crate::storage::scaled`]). The others learn what it wrote with
//! [`BucketTree::reload`]: the same bounded search over the bucket as an open, after which
//! their reads serve the new tiles. A front-end that takes the lease reloads too before it
//! writes, so that it continues the tree where the last writer left it.

use super::{open_level, publish, BucketTree, Level, Ops, TILE};
use crate::storage::{check_level, justified_hash_count, StoreError, MAX_HASH_LEVEL};

impl BucketTree {
    /// Learns each level's length (and the published checkpoint's size) from the bucket again,
    /// as [`BucketTree::open`] does, dropping every hash appended here and not yet synced (the
    /// integrator restores its frontier from the store afterwards). Full tiles cached stay:
    /// they never change. Blocking; waits for a sync in progress.
    pub fn reload(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.syncing.lock();
        let entry_count = (self.entries)();
        let mut levels = Vec::with_capacity(usize::from(MAX_HASH_LEVEL) + 1);
        for level in 0..=MAX_HASH_LEVEL {
            let justified = justified_hash_count(level, entry_count);
            levels.push(if justified == 0 {
                Level::default()
            } else {
                open_level(&self.bucket, level, justified)?
            });
        }
        let published = self
            .bucket
            .call(async |ops: &Ops| publish::published_size(ops).await)?;
        {
            let mut state = self.state.lock();
            state.levels = levels;
            state.pending = 0;
        }
        let mut known = self.published.lock();
        *known = (*known).max(published);
        Ok(())
    }

    /// How many hashes of `level` are in the bucket (written and verified): a checkpoint may
    /// cover no more leaves than level 0 has there.
    pub fn synced_count(&self, level: u8) -> Result<u64, StoreError> {
        check_level(level)?;
        let state = self.state.lock();
        let stored = &state.levels[usize::from(level)];
        Ok(stored.full * TILE + stored.synced_tail as u64)
    }
}
