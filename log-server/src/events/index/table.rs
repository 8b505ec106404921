//! The in-memory tables: events of a contiguous range of log indices, in log order, before
//! they are written out as a run.

use super::*;

/// Events of log indices `[start, …)` in memory.
pub(super) struct Table {
    pub(super) start: u64,
    pub(super) events: Summaries,
    /// Log index by event ID (as [`id_bits`]).
    pub(super) ids: HashMap<u128, u64>,
}

impl Table {
    /// A table from log index `start`, with room for `events` events: a table that grows its
    /// ID map as it fills rehashes it a dozen times (a quarter of an insert's time), and one
    /// that grows its summaries copies them each time (6% of the server's CPU under batches).
    pub(super) fn new(start: u64, events: usize) -> Table {
        Table {
            start,
            events: Summaries(Vec::with_capacity(events)),
            ids: HashMap::with_capacity(events),
        }
    }
}

/// Event summaries in log order. They arrive nearly in order (each after its batch's durable
/// write), so adding one is a push, or a short move near the end (a B-tree of them allocated
/// and split nodes of large values: 2% of the server's CPU under single-event submissions).
#[derive(Default)]
pub(super) struct Summaries(pub(super) Vec<EventSummary>);

/// How far from the end of a table a new summary's place is looked for one by one.
pub(super) const LATE_SEARCH: usize = 256;

impl Summaries {
    /// Adds `summary`, replacing one at the same index.
    pub(super) fn insert(&mut self, summary: EventSummary) {
        let index = summary.index;
        let at = self.place(index);
        if self.0.get(at).is_some_and(|known| known.index == index) {
            self.0[at] = summary;
        } else {
            self.0.insert(at, summary);
        }
    }

    /// Adds `run`, summaries of strictly increasing indices (one submission's events). When
    /// no summary known lies between its first and last index, as when its indices were given
    /// to it alone, it goes in with one move of what follows it; else one by one.
    pub(super) fn insert_run(&mut self, run: Vec<EventSummary>) {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return;
        };
        let (first, last) = (first.index, last.index);
        let increasing = run.windows(2).all(|pair| pair[0].index < pair[1].index);
        let at = self.place(first);
        let clear = self.0.get(at).is_none_or(|known| known.index > last);
        if increasing && clear {
            self.0.splice(at..at, run);
        } else {
            run.into_iter().for_each(|summary| self.insert(summary));
        }
    }

    /// Where a summary of `index` goes: the first summary not below it.
    fn place(&self, index: u64) -> usize {
        // Looked for from the end, where the summaries are in the cache: a binary search over
        // a whole table touches a cold line at each step.
        let tail = self.0.len().saturating_sub(LATE_SEARCH);
        match self.0[tail..].iter().rposition(|known| known.index < index) {
            Some(offset) => tail + offset + 1,
            None => self.0[..tail].partition_point(|known| known.index < index),
        }
    }

    pub(super) fn get(&self, index: u64) -> Option<&EventSummary> {
        let at = self
            .0
            .binary_search_by_key(&index, |known| known.index)
            .ok()?;
        self.0.get(at)
    }

    /// The summaries of indices `[low, high)`, in log order.
    pub(super) fn range(&self, low: u64, high: u64) -> &[EventSummary] {
        let from = self.0.partition_point(|known| known.index < low);
        let to = self.0.partition_point(|known| known.index < high).max(from);
        &self.0[from..to]
    }

    pub(super) fn len(&self) -> usize {
        self.0.len()
    }
}

/// A table cut at `end`, being written out.
#[derive(Clone)]
pub(super) struct Frozen {
    pub(super) table: Arc<RwLock<Table>>,
    pub(super) end: u64,
}

pub(super) struct Tables {
    pub(super) active: Arc<RwLock<Table>>,
    /// Oldest first, contiguous after the runs.
    pub(super) frozen: Vec<Frozen>,
    /// Contiguous from log index 0, oldest first.
    pub(super) runs: Vec<Arc<Run>>,
}

#[derive(Default)]
pub(super) struct InFlight {
    pub(super) next: u64,
    pub(super) open: BTreeMap<u64, u64>,
}
