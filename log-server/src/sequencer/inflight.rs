//! Dedup of entries that are sequenced but not yet durable.
//!
//! The store answers for entries whose append has returned; the entries of the batch being
//! written, and of the batch being filled, are known only here. Each is kept under its leaf
//! hash and, if it has one, its idempotency digest, exactly (full 32 bytes), until the store has
//! it. The map holds at most two batches, so it is bounded by the batch limits.

use std::collections::{HashMap, VecDeque};

use cairn_spec::Hash;

/// Entries sequenced but not yet durable, by dedup digest.
#[derive(Default)]
pub struct InFlight {
    by_digest: HashMap<[u8; 32], (u64, Hash)>,
    order: VecDeque<(u64, [u8; 32])>,
}

impl InFlight {
    /// The entry with this digest, if one is in flight.
    pub fn get(&self, digest: &[u8; 32]) -> Option<(u64, Hash)> {
        self.by_digest.get(digest).copied()
    }

    /// Records that entry `index` (with `leaf_hash`) is known by `digest`.
    pub fn insert(&mut self, digest: [u8; 32], index: u64, leaf_hash: Hash) {
        if let std::collections::hash_map::Entry::Vacant(vacant) = self.by_digest.entry(digest) {
            vacant.insert((index, leaf_hash));
            self.order.push_back((index, digest));
        }
    }

    /// Forgets entries below `durable`: the store answers for them now.
    pub fn forget_below(&mut self, durable: u64) {
        while let Some(&(index, digest)) = self.order.front() {
            if index >= durable {
                break;
            }
            self.by_digest.remove(&digest);
            self.order.pop_front();
        }
    }
}
