//! Dedup of entries that are sequenced but not yet durable.
//!
//! The store answers for entries whose append has returned; the entries of the batch being
//! written, and of the batch being filled, are known only here. Each is kept under its leaf
//! hash and, if it has one, its idempotency digest, exactly (full 32 bytes), until the store has
//! it. It keeps two generations of bounded size, so it is bounded by the batch limits.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};

use cairn_spec::Hash;

/// Hashes a 32-byte digest by its first eight bytes, mixed with a per-process seed: digests are
/// already uniform, SipHash over all 32 bytes was a tenth of the committer's time, and the seed
/// keeps ground leaves from piling into one bucket.
#[derive(Clone, Copy)]
struct DigestKeys(u64);

struct DigestHasher {
    seed: u64,
    value: u64,
}

impl BuildHasher for DigestKeys {
    type Hasher = DigestHasher;
    fn build_hasher(&self) -> DigestHasher {
        DigestHasher {
            seed: self.0,
            value: 0,
        }
    }
}

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        (self.value ^ self.seed)
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .rotate_left(29)
    }
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        let take = bytes.len().min(8);
        word[..take].copy_from_slice(&bytes[..take]);
        self.value ^= u64::from_le_bytes(word);
    }
    // The length prefix of the array carries nothing.
    fn write_usize(&mut self, _: usize) {}
}

/// Entries sequenced but not yet durable, by dedup digest, in two generations: new entries go
/// into the current one, and the previous one is dropped whole (its memory kept) once every
/// entry in it is durable. Removing keys one by one cost more than all the lookups.
pub struct InFlight {
    current: Generation,
    previous: Generation,
    /// Entries per generation before it becomes the previous one.
    generation_entries: u64,
}

struct Generation {
    by_digest: HashMap<[u8; 32], (u64, Hash), DigestKeys>,
    /// One past the highest index inserted.
    end: u64,
    entries: u64,
}

impl Generation {
    fn new(seed: u64) -> Generation {
        Generation {
            by_digest: HashMap::with_hasher(DigestKeys(seed)),
            end: 0,
            entries: 0,
        }
    }
}

impl InFlight {
    /// A map whose generations hold about `generation_entries` entries each.
    pub fn new(generation_entries: usize) -> InFlight {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x1f1a_u64);
        InFlight {
            current: Generation::new(seed),
            previous: Generation::new(seed),
            generation_entries: generation_entries.max(1) as u64,
        }
    }

    /// The entry with this digest, if one is in flight.
    pub fn get(&self, digest: &[u8; 32]) -> Option<(u64, Hash)> {
        self.current
            .by_digest
            .get(digest)
            .or_else(|| self.previous.by_digest.get(digest))
            .copied()
    }

    /// Records that entry `index` (with `leaf_hash`) is known by `digest`. Indices arrive in
    /// increasing order.
    pub fn insert(&mut self, digest: [u8; 32], index: u64, leaf_hash: Hash) {
        if self.get(&digest).is_some() {
            return;
        }
        if index >= self.current.end {
            self.current.entries += 1;
            self.current.end = index + 1;
        }
        self.current.by_digest.insert(digest, (index, leaf_hash));
    }

    /// Forgets every entry: after a failed append, entries past the durable end will never be
    /// written, and those before it are the store's to answer for.
    pub fn clear(&mut self) {
        for generation in [&mut self.current, &mut self.previous] {
            generation.by_digest.clear();
            generation.end = 0;
            generation.entries = 0;
        }
    }

    /// Forgets entries below `durable` when a whole generation is below it: the store answers
    /// for them now. Entries may stay a little longer; that only costs memory, which the
    /// generation size bounds.
    pub fn forget_below(&mut self, durable: u64) {
        for generation in [&mut self.previous, &mut self.current] {
            if generation.end <= durable && !generation.by_digest.is_empty() {
                generation.by_digest.clear();
                generation.entries = 0;
            }
        }
        if self.current.entries >= self.generation_entries && self.previous.by_digest.is_empty() {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.end = self.previous.end;
            if self.previous.end <= durable {
                self.previous.by_digest.clear();
                self.previous.entries = 0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(number: u64) -> [u8; 32] {
        Hash::of_leaf(&number.to_le_bytes()).0
    }

    #[test]
    fn keeps_entries_until_durable_and_forgets_them_after() {
        let mut in_flight = InFlight::new(10);
        for index in 0..25u64 {
            in_flight.insert(digest(index), index, Hash::of_leaf(b"x"));
            in_flight.forget_below(index.saturating_sub(3));
            for recent in index.saturating_sub(3)..=index {
                assert_eq!(
                    in_flight.get(&digest(recent)).map(|(found, _)| found),
                    Some(recent)
                );
            }
        }
        in_flight.forget_below(25);
        in_flight.forget_below(25);
        assert!((0..25).all(|index| in_flight.get(&digest(index)).is_none()));
    }

    #[test]
    fn the_first_index_of_a_digest_wins() {
        let mut in_flight = InFlight::new(10);
        in_flight.insert(digest(1), 5, Hash::of_leaf(b"x"));
        in_flight.insert(digest(1), 6, Hash::of_leaf(b"y"));
        assert_eq!(in_flight.get(&digest(1)).map(|(index, _)| index), Some(5));
    }
}
