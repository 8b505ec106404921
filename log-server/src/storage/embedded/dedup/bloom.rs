//! A blocked Bloom filter over 64-bit keys: one 512-bit block (one cache line) per key, seven
//! bits set in it, about 1% false positives at ten bits per key. It answers "certainly not
//! indexed" for almost every new leaf with one memory access, so the sorted runs on disk are
//! read only for real duplicates and rare false positives.
//!
//! Keys are prefixes of SHA-256 outputs, so a key's top bits choose its block directly: keys
//! inserted in sorted order (as runs hold them) sweep the filter front to back instead of
//! missing the cache on every insert. The bits within the block go through a per-process random
//! seed, so ground leaves can at worst crowd one block, raising false positives for the keys of
//! that block alone.

use std::sync::atomic::{AtomicU64, Ordering};

const WORDS_PER_BLOCK: usize = 8;
const BITS_PER_KEY: u64 = 10;
const PROBES: u32 = 7;

/// The filter. Queries may run concurrently with inserts, but inserts come from one thread at a
/// time (the index's flusher); an insert is visible to queries that synchronise with the
/// inserting thread afterwards (here: through the index's lock).
pub struct Bloom {
    words: Vec<AtomicU64>,
    blocks: u64,
    capacity: u64,
    seed: u64,
}

fn mix(mut value: u64) -> u64 {
    // The finaliser of SplitMix64: a cheap bijection with full avalanche.
    value ^= value >> 30;
    value = value.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value ^= value >> 27;
    value = value.wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

impl Bloom {
    /// A filter sized for `capacity` keys.
    pub fn with_capacity(capacity: u64, seed: u64) -> Bloom {
        let capacity = capacity.max(1024);
        let blocks = (capacity * BITS_PER_KEY).div_ceil(64 * WORDS_PER_BLOCK as u64);
        let words = (0..blocks as usize * WORDS_PER_BLOCK)
            .map(|_| AtomicU64::new(0))
            .collect();
        Bloom {
            words,
            blocks,
            capacity,
            seed,
        }
    }

    /// How many keys it was sized for.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Its memory, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.words.len() * 8
    }

    fn probes(&self, key: u64) -> (usize, u64) {
        let block = ((u128::from(key) * u128::from(self.blocks)) >> 64) as usize;
        (block * WORDS_PER_BLOCK, mix(key ^ self.seed))
    }

    /// Adds `key`. Only one thread may insert at a time: with a single writer a plain load and
    /// store replace the much slower atomic read-modify-write.
    pub fn insert(&self, key: u64) {
        let (base, mut bits) = self.probes(key);
        let mut masks = [0u64; WORDS_PER_BLOCK];
        for _ in 0..PROBES {
            let bit = bits & 511;
            bits >>= 9;
            masks[(bit / 64) as usize] |= 1 << (bit % 64);
        }
        for (word, mask) in self.words[base..base + WORDS_PER_BLOCK].iter().zip(masks) {
            if mask != 0 {
                word.store(word.load(Ordering::Relaxed) | mask, Ordering::Relaxed);
            }
        }
    }

    /// Loads the blocks of `keys` into the cache. Every probe of a large filter misses the
    /// cache; loads that do not depend on each other are overlapped by the CPU, so touching a
    /// submission's blocks first and probing them after costs about one miss, not one per key.
    pub fn touch(&self, keys: impl Iterator<Item = u64>) {
        let mut seen = 0u64;
        for key in keys {
            let (base, _) = self.probes(key);
            seen ^= self.words[base].load(Ordering::Relaxed);
        }
        std::hint::black_box(seen);
    }

    /// Whether `key` may have been added (`false`: it certainly was not).
    pub fn may_contain(&self, key: u64) -> bool {
        let (base, mut bits) = self.probes(key);
        for _ in 0..PROBES {
            let bit = bits & 511;
            bits >>= 9;
            if self.words[base + (bit / 64) as usize].load(Ordering::Relaxed) & (1 << (bit % 64))
                == 0
            {
                return false;
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_forgets_an_inserted_key_and_rarely_claims_others() {
        let bloom = Bloom::with_capacity(100_000, 12345);
        let mut keys: Vec<u64> = (0..100_000u64).map(mix).collect();
        keys.sort_unstable();
        for &key in &keys {
            bloom.insert(key);
        }
        assert!((0..100_000u64).all(|key| bloom.may_contain(mix(key))));
        let false_positives = (100_000..200_000u64)
            .filter(|&key| bloom.may_contain(mix(key)))
            .count();
        assert!(
            false_positives < 2_500,
            "{false_positives} false positives in 100000"
        );
    }
}
