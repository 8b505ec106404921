//! The window of a receive-time range (completeness.md §3.5): the leaf indices whose events of
//! one value may have been received in `[t0, t1)`, bounded on each side, per key, by an item
//! received well outside the range (more than the skew of rule 4 away), and the leaves of
//! those bounding items, which the proof carries.
//!
//! The window is found by a binary search of each key's list on receive times (read from the
//! leaves), then widened until every key's item just outside it bounds it: receive times
//! follow log order only up to the skew, so the search is a first guess, and the widening
//! makes the edges right whatever the times are. Each step reads one leaf.

use cairn_spec::completeness::received::{bounds_after, bounds_before, received_at, EdgeLeaf};
use cairn_spec::time::Instant;

use super::IndexError;
use crate::storage::LogStore;

/// Most leaves read to place one window (each search and widening step reads one).
pub const MAX_TIME_READS: usize = 1 << 16;

/// Reads the receive times of leaves, counting the reads.
struct Times<'a> {
    store: &'a dyn LogStore,
    reads: usize,
}

impl Times<'_> {
    fn leaf(&mut self, index: u64) -> Result<Vec<u8>, IndexError> {
        self.reads += 1;
        if self.reads > MAX_TIME_READS {
            return Err(IndexError::Unavailable(format!(
                "placing the time range read more than {MAX_TIME_READS} leaves"
            )));
        }
        self.store
            .read_entries(index, 1)?
            .pop()
            .map(|entry| entry.leaf)
            .ok_or_else(|| IndexError::Corrupt(format!("the log has no leaf at {index}")))
    }

    fn at(&mut self, index: u64) -> Result<Instant, IndexError> {
        let leaf = self.leaf(index)?;
        received_at(&leaf).ok_or_else(|| {
            IndexError::Corrupt(format!("the indexed leaf at {index} is no audit event"))
        })
    }
}

/// The first position of `list[low..]` whose time fails `holds`, by binary search (exact when
/// times are sorted, a guess otherwise).
fn search(
    times: &mut Times<'_>,
    list: &[u64],
    mut low: usize,
    holds: impl Fn(Instant) -> bool,
) -> Result<usize, IndexError> {
    let mut high = list.len();
    while low < high {
        let middle = low + (high - low) / 2;
        if holds(times.at(list[middle])?) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    Ok(low)
}

/// The window `[start, end)` (within `[from, size)`) of the range `[t0, t1)` over the keys'
/// lists (leaf indices, increasing).
pub fn window(
    store: &dyn LogStore,
    lists: &[&[u64]],
    from: u64,
    size: u64,
    (t0, t1): (Instant, Instant),
) -> Result<(u64, u64), IndexError> {
    let mut times = Times { store, reads: 0 };
    let (mut start, mut end) = (size, from);
    for list in lists {
        let list = &list[..list.partition_point(|&index| index < size)];
        let first = list.partition_point(|&index| index < from);
        // The first item not received before t0 − skew: the window starts there at the latest.
        let position = search(&mut times, list, first, |at| bounds_before(at, t0))?;
        start = start.min(list.get(position).copied().unwrap_or(size));
        // The first item received at or after t1 + skew: the window ends there at the earliest.
        let position = search(&mut times, list, first, |at| !bounds_after(at, t1))?;
        end = end.max(list.get(position).copied().unwrap_or(size));
    }
    let mut changed = true;
    while changed {
        changed = false;
        for list in lists {
            let list = &list[..list.partition_point(|&index| index < size)];
            let before = list.partition_point(|&index| index < start);
            if before > 0 && list[before - 1] >= from {
                let index = list[before - 1];
                if !bounds_before(times.at(index)?, t0) {
                    start = index;
                    changed = true;
                }
            }
            let after = list.partition_point(|&index| index < end);
            if let Some(&index) = list.get(after) {
                if !bounds_after(times.at(index)?, t1) {
                    end = index + 1;
                    changed = true;
                }
            }
        }
    }
    Ok((start.min(end), end))
}

/// The leaves at `indices` (each key's items just outside the window), for the proof.
pub fn edge_leaves(store: &dyn LogStore, indices: &[u64]) -> Result<Vec<EdgeLeaf>, IndexError> {
    let mut times = Times { store, reads: 0 };
    let mut edges: Vec<EdgeLeaf> = Vec::with_capacity(indices.len());
    for &index in indices {
        if edges.iter().any(|edge| edge.index == index) {
            continue;
        }
        edges.push(EdgeLeaf {
            index,
            leaf: times.leaf(index)?,
        });
    }
    Ok(edges)
}
