//! Queries: which records to read (the plan), and a page filled from runs and tables in log
//! order.

use super::*;

/// Time postings a query gathers and sorts before it scans summaries instead.
pub(super) const GATHER_LIMIT: usize = 20_000;

/// Time postings in one block, about (8 KiB of 29-byte records).
pub(super) const TIME_POSTINGS_PER_BLOCK: usize = 280;

/// Whether the time and hashes a posting carries may match `filter`.
pub(super) fn posting_may_match(filter: &QueryFilter, inline: &[u8]) -> bool {
    let Some(time) = summary_time(inline) else {
        return true;
    };
    let hash = |at: usize| {
        inline
            .get(at..at + 4)
            .map(|bytes| u32::from_le_bytes(bytes.try_into().expect("4 bytes")))
    };
    filter.from_nanos.is_none_or(|from| time >= from)
        && filter.to_nanos.is_none_or(|to| time < to)
        && filter
            .actor
            .as_deref()
            .is_none_or(|actor| hash(16).is_none_or(|h| h == short_hash(actor)))
        && filter
            .resource
            .as_deref()
            .is_none_or(|resource| hash(20).is_none_or(|h| h == short_hash(resource)))
        && filter
            .action
            .as_deref()
            .is_none_or(|action| hash(24).is_none_or(|h| h == short_hash(action)))
}

/// What a query reads: runs, then tables (frozen, then active), in log order.
pub(super) struct Snapshot {
    pub(super) runs: Vec<Arc<Run>>,
    pub(super) tables: Vec<(Arc<RwLock<Table>>, u64)>,
}

/// A page being filled.
pub(super) struct Page {
    pub(super) events: Vec<EventSummary>,
    pub(super) limit: usize,
    pub(super) max_scan: usize,
    pub(super) scanned: usize,
    pub(super) stopped_at: Option<u64>,
}

impl Page {
    /// Counts one examined event (a match if `found`); true when the page is complete.
    pub(super) fn offer(&mut self, index: u64, found: Option<EventSummary>) -> bool {
        self.scanned += 1;
        if let Some(summary) = found {
            self.events.push(summary);
            if self.events.len() >= self.limit {
                self.stopped_at = Some(index);
                return true;
            }
        }
        if self.scanned >= self.max_scan {
            self.stopped_at = Some(index);
            return true;
        }
        false
    }

    pub(super) fn finish(self) -> QueryPage {
        QueryPage {
            events: self.events,
            next_after: self.stopped_at,
        }
    }
}

pub(super) enum Plan {
    Posting(Vec<u8>),
    Time,
    Summaries,
}

/// The summary of the event at `index` in `run`, if any.
pub(super) fn summary_in(
    run: &Run,
    index: u64,
    cache: &mut BlockCache,
) -> Result<Option<EventSummary>, EventStoreError> {
    run.get(&summary_key(index), cache)?
        .map(|value| decode_summary(index, &value))
        .transpose()
}

/// One query on its way through the runs: each scan answers whether the page is complete.
pub(super) struct Search<'q> {
    pub(super) filter: &'q QueryFilter,
    pub(super) matches: &'q dyn Fn(&EventSummary) -> bool,
    pub(super) page: Page,
    pub(super) cache: BlockCache,
}

impl Search<'_> {
    /// Offers the event at `index` if it matches (`candidate`: its posting may match).
    pub(super) fn offer_indexed(
        &mut self,
        run: &Run,
        index: u64,
        candidate: bool,
    ) -> Result<bool, EventStoreError> {
        let found = if candidate {
            summary_in(run, index, &mut self.cache)?.filter(|summary| (self.matches)(summary))
        } else {
            None
        };
        Ok(self.page.offer(index, found))
    }

    /// By the posting list under `prefix`, in log order.
    pub(super) fn postings(
        &mut self,
        run: &Run,
        prefix: &[u8],
        (low, high): (u64, u64),
    ) -> Result<bool, EventStoreError> {
        let mut cursor = Cursor::seek(run, &with_index(prefix.to_vec(), low))?;
        while let Some((key, inline)) = cursor.get() {
            if key.len() != prefix.len() + 8 || !key.starts_with(prefix) {
                break;
            }
            let index = index_at_end(key).expect("8 bytes checked");
            if index >= high {
                break;
            }
            let candidate = posting_may_match(self.filter, inline);
            if self.offer_indexed(run, index, candidate)? {
                return Ok(true);
            }
            cursor.advance()?;
        }
        Ok(false)
    }

    /// By the time postings of the window, sorted back into log order; for a wide window, by
    /// the summaries.
    pub(super) fn times(
        &mut self,
        run: &Run,
        (low, high): (u64, u64),
    ) -> Result<bool, EventStoreError> {
        let from = time_key(self.filter.from_nanos.unwrap_or(i128::MIN));
        let to = match self.filter.to_nanos {
            Some(to) => time_key(to),
            None => vec![TAG_TIME + 1],
        };
        let mut gathered = Vec::new();
        let mut wide = run.blocks_between(&from, &to) * TIME_POSTINGS_PER_BLOCK > GATHER_LIMIT;
        if !wide {
            let mut cursor = Cursor::seek(run, &from)?;
            while let Some((key, _)) = cursor.get() {
                if key >= to.as_slice() {
                    break;
                }
                let index = index_at_end(key).unwrap_or(u64::MAX);
                if low <= index && index < high {
                    gathered.push(index);
                    if gathered.len() > GATHER_LIMIT {
                        wide = true;
                        break;
                    }
                }
                cursor.advance()?;
            }
        }
        if wide {
            return self.summaries(run, (low, high));
        }
        gathered.sort_unstable();
        for index in gathered {
            if self.offer_indexed(run, index, true)? {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// By the summaries of `[low, high)` in log order, skipping blocks whose event times lie
    /// outside the filter's window.
    pub(super) fn summaries(
        &mut self,
        run: &Run,
        (low, high): (u64, u64),
    ) -> Result<bool, EventStoreError> {
        let from = self.filter.from_nanos.unwrap_or(i128::MIN);
        let to = self.filter.to_nanos.unwrap_or(i128::MAX);
        let end_key = summary_key(high);
        let mut number = run.block_of(&summary_key(low));
        while number < run.fences.len() {
            let fence = &run.fences[number];
            if fence.first_key.as_slice() >= end_key.as_slice() {
                break;
            }
            let (earliest, latest) = fence.times;
            if earliest > latest || latest < from || earliest >= to {
                // No summary, or none in the window.
                if fence.first_key.first() > Some(&TAG_SUMMARY) {
                    break;
                }
                number += 1;
                continue;
            }
            let block = self.cache.block(run, number)?;
            for (key, value) in block.records() {
                match key.first() {
                    Some(&TAG_SUMMARY) => {}
                    Some(tag) if *tag > TAG_SUMMARY => return Ok(false),
                    _ => continue,
                }
                let Some(index) = index_at_end(key) else {
                    continue;
                };
                if index < low {
                    continue;
                }
                if index >= high {
                    return Ok(false);
                }
                let time = summary_time(value).unwrap_or(i128::MIN);
                let found = if time >= from && time < to {
                    Some(decode_summary(index, value)?).filter(|summary| (self.matches)(summary))
                } else {
                    None
                };
                if self.page.offer(index, found) {
                    return Ok(true);
                }
            }
            number += 1;
        }
        Ok(false)
    }
}

/// How to answer `filter`: by the posting list estimated shortest over the runs, by time, or
/// by every summary.
pub(super) fn plan(filter: &QueryFilter, runs: &[Arc<Run>], first: u64, below: u64) -> Plan {
    let candidates: Vec<Vec<u8>> = [
        (TAG_RESOURCE, &filter.resource),
        (TAG_ACTOR, &filter.actor),
        (TAG_ACTION, &filter.action),
    ]
    .into_iter()
    .filter_map(|(tag, value)| value.as_deref().map(|value| posting_prefix(tag, value)))
    .collect();
    if let Some(best) = candidates.into_iter().min_by_key(|prefix| {
        let (low, high) = (
            with_index(prefix.clone(), first),
            with_index(prefix.clone(), below.saturating_sub(1)),
        );
        runs.iter()
            .map(|run| run.blocks_between(&low, &high))
            .sum::<usize>()
    }) {
        return Plan::Posting(best);
    }
    if filter.from_nanos.is_some() || filter.to_nanos.is_some() {
        Plan::Time
    } else {
        Plan::Summaries
    }
}
