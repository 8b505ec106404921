//! A table's records in one buffer, sorted by reference and written as a run.

use super::*;

/// (start, key length, value length) of a record in [`Records::arena`].
pub(super) type Span = (usize, usize, usize);

/// The record kinds in the order of their tags, which begin every key: the records of each
/// kind are sorted apart and written one kind after the other.
pub(super) const KINDS: [u8; 6] = [
    TAG_ACTOR,
    TAG_ACTION,
    TAG_ID,
    TAG_RESOURCE,
    TAG_SUMMARY,
    TAG_TIME,
];
const _: () = {
    let mut at = 1;
    while at < KINDS.len() {
        assert!(
            KINDS[at - 1] < KINDS[at],
            "KINDS is in the order of the tags"
        );
        at += 1;
    }
};

/// Index records in one buffer, sorted by reference: a table of 32 Ki events makes 192 Ki
/// records, and a pair of vectors for each would be most of the writer's work. They are kept
/// by kind, added in log order: summaries are then in order already, and the postings of one
/// actor, resource or action, or nearby times, come in ordered runs, which a stable sort
/// merges rather than sorting again (a third of the writer's time went to one sort of all).
pub(super) struct Records {
    pub(super) arena: Vec<u8>,
    /// The spans of each kind, in the order of [`KINDS`].
    pub(super) kinds: [Vec<Span>; 6],
}

impl Records {
    /// Room for the records of `events` events.
    pub(super) fn with_events(events: usize) -> Records {
        Records {
            // About 300 bytes of records an event.
            arena: Vec::with_capacity(events * 320),
            kinds: std::array::from_fn(|_| Vec::with_capacity(events)),
        }
    }

    pub(super) fn add(&mut self, key: &[&[u8]], value: &[&[u8]]) {
        let start = self.arena.len();
        for part in key {
            self.arena.extend_from_slice(part);
        }
        let key_len = self.arena.len() - start;
        for part in value {
            self.arena.extend_from_slice(part);
        }
        let kind = KINDS
            .iter()
            .position(|tag| *tag == key[0][0])
            .expect("a record of one of the six kinds");
        self.kinds[kind].push((start, key_len, self.arena.len() - start - key_len));
    }

    /// The six records of one event.
    pub(super) fn add_event(&mut self, summary: &EventSummary) {
        let index = summary.index.to_be_bytes();
        let time = summary.time_nanos.to_be_bytes();
        let hashes = [
            short_hash(&summary.actor_id).to_le_bytes(),
            short_hash(&summary.resource_id).to_le_bytes(),
            short_hash(&summary.action).to_le_bytes(),
        ];
        let inline: [&[u8]; 4] = [&time, &hashes[0], &hashes[1], &hashes[2]];
        self.add(&[&[TAG_SUMMARY], &index], &[&encode_summary(summary)]);
        self.add(&[&[TAG_ID], summary.event_id.as_bytes()], &[&index]);
        for (tag, value) in [
            (TAG_ACTOR, &summary.actor_id),
            (TAG_RESOURCE, &summary.resource_id),
            (TAG_ACTION, &summary.action),
        ] {
            let length = (value.len() as u16).to_be_bytes();
            self.add(&[&[tag], &length, value.as_bytes(), &index], &inline);
        }
        self.add(
            &[&[TAG_TIME], &sortable_time(summary.time_nanos), &index],
            &[],
        );
    }

    pub(super) fn key(&self, &(start, key_len, _): &Span) -> &[u8] {
        &self.arena[start..start + key_len]
    }

    /// Sorts the records by key and writes them. Each span is sorted with the eight key bytes
    /// after the tag beside it, so that most comparisons are of two integers rather than of
    /// two keys out in the arena (random event IDs sorted that way were a quarter of the
    /// writer's time).
    pub(super) fn write_sorted(mut self, writer: &mut RunWriter) -> Result<(), EventStoreError> {
        for kind in 0..KINDS.len() {
            let mut spans: Vec<(u64, Span)> = std::mem::take(&mut self.kinds[kind])
                .into_iter()
                .map(|span| (key_prefix(self.key(&span)), span))
                .collect();
            spans.sort_by(|(a_prefix, a), (b_prefix, b)| {
                a_prefix
                    .cmp(b_prefix)
                    .then_with(|| self.key(a).cmp(self.key(b)))
            });
            for (_, span) in &spans {
                let (start, key_len, value_len) = *span;
                let value = &self.arena[start + key_len..start + key_len + value_len];
                writer.push(self.key(span), value)?;
            }
        }
        Ok(())
    }
}
