//! A receive-time range within one value (completeness.md §3.5): "every event of the value
//! whose `received_at` lies in `[t0, t1)`".
//!
//! Receive times are stamped when a request arrives, before the leaf is sequenced, so they
//! follow log order only up to a bounded skew: rule 4 of §2 says no leaf's `received_at` is
//! more than [`MAX_RECEIVE_SKEW_SECS`] earlier than that of a leaf before it (the monitor checks
//! it on every leaf). So every leaf before one received before `t0 − skew` was received
//! before `t0`, and every leaf after one received at or after `t1 + skew` was received at or
//! after `t1`. A time-range answer is a window of leaf indices
//! whose edges are such leaves: per key, the item just before the window (received before
//! `t0 − skew`) and the item just after it (received at or after `t1 + skew`), carried as
//! their leaves ([`EdgeLeaf`]) and checked against the items' leaf hashes. The answer holds
//! every event of the window, and the verifier keeps those received in `[t0, t1)`.

use super::{CompletenessError, Item};
use crate::event::AnyEventLeaf;
use crate::time::Instant;

/// Most seconds a leaf's `received_at` may lie before that of an earlier leaf (rule 4).
pub const MAX_RECEIVE_SKEW_SECS: i64 = 60;
const SKEW_NANOS: i128 = MAX_RECEIVE_SKEW_SECS as i128 * 1_000_000_000;

/// Most edge leaves one proof carries: two per key.
pub const MAX_EDGES: usize = 2 * super::MAX_ANSWER_KEYS;
/// Most bytes of one edge leaf (an event leaf is far smaller).
pub const MAX_EDGE_LEAF_BYTES: usize = 1 << 20;

/// The receive-time range of an answer and the leaves that bound its window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceivedRange {
    /// The first instant of the range (RFC 3339, inclusive).
    pub from: String,
    /// The end of the range (RFC 3339, exclusive).
    pub to: String,
    /// The leaves of the items just outside the window, per key.
    #[serde(default)]
    pub edges: Vec<EdgeLeaf>,
}

/// The leaf of an item just outside the window.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeLeaf {
    /// Its leaf index.
    pub index: u64,
    /// The leaf (base64).
    #[serde(with = "crate::receipt::base64_bytes")]
    pub leaf: Vec<u8>,
}

/// What a verified time range shows: every event of the value received in `[from, to)` among
/// the leaves `[covers_from, covers_to)` is among the window's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProvenReceived {
    /// The range's start.
    pub from: Instant,
    /// Its end.
    pub to: Instant,
    /// The first leaf the proof covers: 0 when it shows that no earlier event is in range.
    pub covers_from: u64,
    /// One past the last leaf it covers: the tree size when it shows no later one is.
    pub covers_to: u64,
}

/// The `received_at` of an audit event leaf of either schema.
pub fn received_at(leaf: &[u8]) -> Option<Instant> {
    match AnyEventLeaf::parse(leaf).ok()? {
        AnyEventLeaf::V1(v1) => Some(v1.received_at),
        AnyEventLeaf::V2(v2) => Some(v2.clear.received_at),
    }
}

/// Whether a leaf received at `at` may end a window on the left: received before
/// `from − skew`, so that every earlier leaf was received before `from`.
pub fn bounds_before(at: Instant, from: Instant) -> bool {
    at.unix_nanos() < from.unix_nanos() - SKEW_NANOS
}

/// Whether a leaf received at `at` may end a window on the right: received at or after
/// `to + skew`, so that every later leaf was received at or after `to`.
pub fn bounds_after(at: Instant, to: Instant) -> bool {
    at.unix_nanos() >= to.unix_nanos() + SKEW_NANOS
}

fn bad(reason: impl Into<String>) -> CompletenessError {
    CompletenessError::Received(reason.into())
}

impl ReceivedRange {
    /// The range's two instants, checked.
    pub fn instants(&self) -> Result<(Instant, Instant), CompletenessError> {
        let parse = |text: &str| {
            Instant::parse_rfc3339(text).map_err(|error| {
                bad(format!(
                    "{text:?} is not an RFC 3339 time: {}",
                    error.reason
                ))
            })
        };
        let (from, to) = (parse(&self.from)?, parse(&self.to)?);
        if from > to {
            return Err(bad("the range ends before it starts"));
        }
        Ok((from, to))
    }

    /// The receive time of the edge leaf at `item`, checked against the item's leaf hash;
    /// `None` if the proof carries no leaf there.
    fn edge_time(&self, item: &Item) -> Result<Option<Instant>, CompletenessError> {
        let Some(edge) = self.edges.iter().find(|edge| edge.index == item.leaf_index) else {
            return Ok(None);
        };
        if crate::hash::Hash::of_leaf(&edge.leaf) != item.leaf_hash {
            return Err(bad(format!(
                "the edge leaf at {} is not the leaf the index lists there",
                item.leaf_index
            )));
        }
        received_at(&edge.leaf).map(Some).ok_or_else(|| {
            bad(format!(
                "the edge leaf at {} is no audit event",
                item.leaf_index
            ))
        })
    }

    /// What the window `[from, to)` of a tree of `size` leaves covers, given each key's items
    /// just before and after it (`None`: the key's list has none there).
    pub(super) fn cover(
        &self,
        edges: &[(Option<Item>, Option<Item>)],
        window: (u64, u64),
        size: u64,
    ) -> Result<ProvenReceived, CompletenessError> {
        if self.edges.len() > MAX_EDGES {
            return Err(bad(format!("more than {MAX_EDGES} edge leaves")));
        }
        if self
            .edges
            .iter()
            .any(|edge| edge.leaf.len() > MAX_EDGE_LEAF_BYTES)
        {
            return Err(bad("an edge leaf is too large"));
        }
        let (from, to) = self.instants()?;
        let (mut covers_from, mut covers_to) = (0, size);
        for (before, after) in edges {
            if let Some(item) = before {
                let bounded = self
                    .edge_time(item)?
                    .is_some_and(|at| bounds_before(at, from));
                if !bounded {
                    covers_from = covers_from.max(window.0);
                }
            }
            if let Some(item) = after {
                let bounded = self.edge_time(item)?.is_some_and(|at| bounds_after(at, to));
                if !bounded {
                    covers_to = covers_to.min(window.1);
                }
            }
        }
        Ok(ProvenReceived {
            from,
            to,
            covers_from,
            covers_to,
        })
    }
}
