//! The root of a tree recomputed from all of its leaves, as fast as SHA-256 allows.
//!
//! A monitor that re-verifies a log hashes every leaf and every interior node: about two SHA-256
//! compressions per short leaf and two per node. The sequential path takes 256 leaves at a time,
//! hashes them and then each level above them side by side ([`Hash::of_leaves`],
//! [`Hash::of_nodes`]), and folds the subtree roots through a fixed-size carry stack (no
//! allocation, each hash touched once). The parallel path splits
//! the leaves into perfect subtrees of equal size, hands them to scoped threads from a shared
//! counter (so a busy core does not hold the others back), and folds the subtree roots and the
//! ragged tail exactly as the sequential path would.
//!
//! No thread outlives a call: the crate does no I/O and keeps no threads of its own.

use std::sync::atomic::{AtomicUsize, Ordering};

use crate::hash::Hash;

use super::reader::fold_subtree_roots;

/// The smallest piece of work handed to a thread: small enough to balance two busy cores, large
/// enough that the shared counter costs nothing.
const MIN_CHUNK_LEAVES: usize = 1 << 12;

/// How many pieces each thread gets on average, so that one slow core costs little.
const CHUNKS_PER_THREAD: usize = 8;

/// A carry stack over hashes at one height: pushing a hash merges it with the perfect subtrees
/// of the trailing one bits of the count so far, like [`CompactRange`](super::CompactRange)
/// without the bookkeeping.
struct CarryStack {
    hashes: [Hash; CarryStack::CAPACITY],
    len: usize,
    count: u64,
}

impl CarryStack {
    /// One hash per bit of the count: enough for any number of pushes.
    const CAPACITY: usize = u64::BITS as usize;

    fn new() -> CarryStack {
        CarryStack {
            hashes: [Hash::default(); CarryStack::CAPACITY],
            len: 0,
            count: 0,
        }
    }

    fn push(&mut self, hash: Hash) {
        let mut hash = hash;
        let mut carries = self.count;
        while carries & 1 == 1 {
            self.len -= 1;
            hash = Hash::of_node(&self.hashes[self.len], &hash);
            carries >>= 1;
        }
        self.hashes[self.len] = hash;
        self.len += 1;
        self.count += 1;
    }

    /// The roots of the perfect subtrees pushed so far, largest first.
    fn frontier(&self) -> &[Hash] {
        &self.hashes[..self.len]
    }
}

/// Leaves hashed and folded a perfect subtree at a time, level by level, so that each level's
/// nodes are hashed side by side ([`Hash::of_nodes`]).
const LEVEL_LEAVES: usize = 256;

/// Leaf hashes of a run of items, written to a slice of the same length.
trait LeafHashes<T>: Fn(&[T], &mut [Hash]) {}
impl<T, F: Fn(&[T], &mut [Hash])> LeafHashes<T> for F {}

/// The root of the tree over `level` (RFC 9162 MTH, not empty), computed level by level: pairs
/// are hashed and a last node without a sibling goes up as it is, which gives the same tree as
/// RFC 9162's split at the largest power of two. `scratch` holds half of `level`, rounded up.
fn level_root(level: &mut [Hash], scratch: &mut [Hash]) -> Hash {
    let (mut from, mut to) = (level, scratch);
    let mut len = from.len();
    while len > 1 {
        let pairs = len / 2;
        Hash::of_nodes(&from[..2 * pairs], &mut to[..pairs]);
        let mut next = pairs;
        if len % 2 == 1 {
            to[pairs] = from[len - 1];
            next += 1;
        }
        std::mem::swap(&mut from, &mut to);
        len = next;
    }
    from[0]
}

fn root_sequential<T>(items: &[T], leaf_hashes: &impl LeafHashes<T>) -> Hash {
    let mut level = [Hash::default(); LEVEL_LEAVES];
    let mut scratch = [Hash::default(); LEVEL_LEAVES / 2];
    let mut above = CarryStack::new();
    let mut chunks = items.chunks_exact(LEVEL_LEAVES);
    for chunk in &mut chunks {
        leaf_hashes(chunk, &mut level);
        above.push(level_root(&mut level, &mut scratch));
    }
    let tail = chunks.remainder();
    if tail.is_empty() {
        return fold_subtree_roots(above.frontier());
    }
    let tail_level = &mut level[..tail.len()];
    leaf_hashes(tail, tail_level);
    // The tail's own root stands for its perfect subtrees in the frontier: folding them is what
    // computes it.
    let mut frontier = [Hash::default(); CarryStack::CAPACITY + 1];
    let above = above.frontier();
    frontier[..above.len()].copy_from_slice(above);
    frontier[above.len()] = level_root(tail_level, &mut scratch);
    fold_subtree_roots(&frontier[..=above.len()])
}

fn root_parallel<T: Sync>(
    items: &[T],
    threads: usize,
    leaf_hashes: &(impl LeafHashes<T> + Sync),
) -> Hash {
    let threads = threads.max(1);
    let wanted_chunks = threads * CHUNKS_PER_THREAD;
    if threads == 1 || items.len() < 2 * MIN_CHUNK_LEAVES {
        return root_sequential(items, leaf_hashes);
    }
    // Chunks must be perfect subtrees, so their size is a power of two: the largest one that
    // still gives each thread several chunks, but not below the minimum.
    let target = items.len() / wanted_chunks;
    let chunk_leaves = if target <= MIN_CHUNK_LEAVES {
        MIN_CHUNK_LEAVES
    } else {
        1 << (usize::BITS - 1 - target.leading_zeros())
    };
    let full_chunks = items.len() / chunk_leaves;
    let next_chunk = AtomicUsize::new(0);
    let work = || {
        let mut roots = Vec::new();
        loop {
            let chunk = next_chunk.fetch_add(1, Ordering::Relaxed);
            if chunk >= full_chunks {
                return roots;
            }
            let leaves = &items[chunk * chunk_leaves..(chunk + 1) * chunk_leaves];
            roots.push((chunk, root_sequential(leaves, leaf_hashes)));
        }
    };
    let mut chunk_roots = std::thread::scope(|scope| {
        let workers: Vec<_> = (1..threads).map(|_| scope.spawn(work)).collect();
        let mut roots = work();
        for worker in workers {
            match worker.join() {
                Ok(more) => roots.extend(more),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        roots
    });
    chunk_roots.sort_unstable_by_key(|&(chunk, _)| chunk);

    let mut above = CarryStack::new();
    for (_, root) in chunk_roots {
        above.push(root);
    }
    let tail = &items[full_chunks * chunk_leaves..];
    let mut frontier = above.frontier().to_vec();
    if !tail.is_empty() {
        frontier.push(root_sequential(tail, leaf_hashes));
    }
    fold_subtree_roots(&frontier)
}

fn copy_hashes(hashes: &[Hash], out: &mut [Hash]) {
    out.copy_from_slice(hashes);
}

/// The root of the tree whose leaf hashes are `leaf_hashes`, in order.
pub fn root_from_leaf_hashes(leaf_hashes: &[Hash]) -> Hash {
    root_sequential(leaf_hashes, &copy_hashes)
}

/// The root of the tree whose leaves are `leaves`, in order: each is hashed as a leaf
/// (SHA-256(0x00 || leaf)) first.
pub fn root_from_leaves<L: AsRef<[u8]>>(leaves: &[L]) -> Hash {
    root_sequential(leaves, &Hash::of_leaves::<L>)
}

/// [`root_from_leaf_hashes`] on `threads` threads (the calling thread is one of them; 0 counts
/// as 1). Small inputs are done on the calling thread alone.
pub fn root_from_leaf_hashes_parallel(leaf_hashes: &[Hash], threads: usize) -> Hash {
    root_parallel(leaf_hashes, threads, &copy_hashes)
}

/// [`root_from_leaves`] on `threads` threads (the calling thread is one of them; 0 counts as 1).
/// Small inputs are done on the calling thread alone.
pub fn root_from_leaves_parallel<L: AsRef<[u8]> + Sync>(leaves: &[L], threads: usize) -> Hash {
    root_parallel(leaves, threads, &Hash::of_leaves::<L>)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::reference::{reference_root, sample_leaves};

    #[test]
    fn sequential_roots_equal_the_rfc_9162_root() {
        let leaves: Vec<Vec<u8>> = (0..600u32).map(|i| i.to_be_bytes().to_vec()).collect();
        let hashes: Vec<Hash> = leaves.iter().map(|leaf| Hash::of_leaf(leaf)).collect();
        for size in 0..=leaves.len() {
            let expected = reference_root(&hashes[..size]);
            assert_eq!(root_from_leaf_hashes(&hashes[..size]), expected);
            assert_eq!(root_from_leaves(&leaves[..size]), expected);
        }
    }

    #[test]
    fn parallel_roots_equal_sequential_roots_at_chunk_boundaries() {
        let hashes = sample_leaves(5 * MIN_CHUNK_LEAVES + 17);
        let sizes = [
            0,
            1,
            2 * MIN_CHUNK_LEAVES - 1,
            2 * MIN_CHUNK_LEAVES,
            2 * MIN_CHUNK_LEAVES + 1,
            3 * MIN_CHUNK_LEAVES,
            4 * MIN_CHUNK_LEAVES,
            5 * MIN_CHUNK_LEAVES + 17,
        ];
        for size in sizes {
            let expected = root_from_leaf_hashes(&hashes[..size]);
            for threads in [0, 1, 2, 3, 7] {
                assert_eq!(
                    root_from_leaf_hashes_parallel(&hashes[..size], threads),
                    expected,
                    "size {size} threads {threads}"
                );
            }
        }
    }

    #[test]
    fn parallel_root_from_leaves_hashes_them_as_leaves() {
        let leaves: Vec<[u8; 100]> = (0..(3 * MIN_CHUNK_LEAVES + 5))
            .map(|i| {
                let mut leaf = [0u8; 100];
                leaf[..8].copy_from_slice(&(i as u64).to_be_bytes());
                leaf
            })
            .collect();
        let hashes: Vec<Hash> = leaves.iter().map(|leaf| Hash::of_leaf(leaf)).collect();
        assert_eq!(
            root_from_leaves_parallel(&leaves, 2),
            root_from_leaf_hashes(&hashes)
        );
    }
}
