//! The proof that an answer holds every event of one value within a window of leaf indices
//! (completeness.md §3.3), in the JSON form that query answers and export bundles carry, and
//! its verifier.
//!
//! A value may have more than one index key (an actor's tag under its data key for schema 2
//! events, and under the log's index key for schema 1 leaves): the proof holds one
//! [`KeyProof`] per key, and the answer is the union of their lists' items in the window.
//! For each key the proof is its map proof (§3.1) and, if the key is present, a run of its
//! list with a range proof (§3.2) that reaches one item beyond the window on each side
//! (unless the list ends first), so that the verifier sees nothing of the window was left out.

use super::received::{ProvenReceived, ReceivedRange};
use super::{
    item_hashes, map::PathEnd, range_proof, verify_range, Item, ListHead, MapKey, MapProof,
    RangeError,
};
use crate::hash::Hash;

/// Most keys one answer rests on.
pub const MAX_ANSWER_KEYS: usize = 4;
/// Most items of one run (an export's 10,000 events and their two neighbours fit).
pub const MAX_RUN_ITEMS: usize = 1 << 20;

/// The completeness proof of an answer: the window it covers and one proof per index key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompletenessProof {
    /// What was asked: `actor` (actor.id), `resource` (resource.id), `resource_type` or
    /// `action`.
    pub field: String,
    /// The value asked for.
    pub value: String,
    /// The first leaf index of the window.
    pub from: u64,
    /// One past the window's last leaf index.
    pub to: u64,
    /// One proof per index key of the value.
    pub keys: Vec<KeyProof>,
    /// For a receive-time range (§3.5): the range and the leaves that bound the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<ReceivedRange>,
}

/// One key's part of a completeness proof.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyProof {
    /// The index key, 64 hex digits.
    #[serde(with = "key_hex")]
    pub key: MapKey,
    /// The map siblings along the key's path, the deepest first.
    pub siblings: Vec<Hash>,
    /// Where the path ends.
    pub end: WireEnd,
    /// The run of the key's list around the window; absent when the key is absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<Run>,
}

/// The end of a map path, as JSON.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum WireEnd {
    /// The key's own leaf.
    Present {
        /// Items in its list.
        count: u64,
        /// Its list root.
        list_root: Hash,
    },
    /// An empty subtree.
    AbsentEmpty,
    /// Another key's leaf.
    AbsentOther {
        /// That key.
        #[serde(with = "key_hex")]
        key: MapKey,
        /// Items in its list.
        count: u64,
        /// Its list root.
        list_root: Hash,
    },
}

/// A run of a key's list: the items at positions `[start, start + items.len())`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Run {
    /// The first item's position in the list.
    pub start: u64,
    /// The items.
    pub items: Vec<WireItem>,
    /// The range proof.
    pub proof: Vec<Hash>,
}

/// One item, as JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WireItem {
    /// The leaf index.
    pub index: u64,
    /// The leaf hash.
    pub leaf_hash: Hash,
}

impl From<Item> for WireItem {
    fn from(item: Item) -> WireItem {
        WireItem {
            index: item.leaf_index,
            leaf_hash: item.leaf_hash,
        }
    }
}

impl From<WireItem> for Item {
    fn from(item: WireItem) -> Item {
        Item {
            leaf_index: item.index,
            leaf_hash: item.leaf_hash,
        }
    }
}

impl KeyProof {
    /// The proof for `key` from its map proof and, if present, the run of its list around the
    /// window.
    pub fn new(key: MapKey, map_proof: &MapProof, run: Option<Run>) -> KeyProof {
        let end = match map_proof.end {
            PathEnd::Present(head) => WireEnd::Present {
                count: head.count,
                list_root: head.root,
            },
            PathEnd::AbsentEmpty => WireEnd::AbsentEmpty,
            PathEnd::AbsentOther(other, head) => WireEnd::AbsentOther {
                key: other,
                count: head.count,
                list_root: head.root,
            },
        };
        KeyProof {
            key,
            siblings: map_proof.siblings.clone(),
            end,
            run,
        }
    }

    /// The map proof it carries.
    pub fn map_proof(&self) -> MapProof {
        let end = match &self.end {
            WireEnd::Present { count, list_root } => PathEnd::Present(ListHead {
                count: *count,
                root: *list_root,
            }),
            WireEnd::AbsentEmpty => PathEnd::AbsentEmpty,
            WireEnd::AbsentOther {
                key,
                count,
                list_root,
            } => PathEnd::AbsentOther(
                *key,
                ListHead {
                    count: *count,
                    root: *list_root,
                },
            ),
        };
        MapProof {
            siblings: self.siblings.clone(),
            end,
        }
    }
}

/// The positions `[start, end)` of a list's run around the window `[from, to)`: every item in
/// the window, and the items just before and after it. `indices` are the list's leaf indices,
/// increasing; `None` if the list is empty.
pub fn run_bounds(indices: &[u64], from: u64, to: u64) -> Option<(u64, u64)> {
    if indices.is_empty() {
        return None;
    }
    let first_in = indices.partition_point(|&index| index < from);
    let first_after = indices.partition_point(|&index| index < to);
    let start = first_in.saturating_sub(1);
    let end = (first_after + 1).min(indices.len());
    Some((start as u64, end as u64))
}

impl KeyProof {
    /// The proof for `key`, whose list is `list` (every item, in order), around the window
    /// `[from, to)`; `map_proof` is the key's proof against the map root.
    pub fn build(
        key: MapKey,
        map_proof: &MapProof,
        list: &[Item],
        from: u64,
        to: u64,
    ) -> Result<KeyProof, RangeError> {
        let indices: Vec<u64> = list.iter().map(|item| item.leaf_index).collect();
        let run = match run_bounds(&indices, from, to) {
            None => None,
            Some((start, end)) => {
                let proof = range_proof(&item_hashes(list), start, end)?;
                Some(Run {
                    start,
                    items: list[start as usize..end as usize]
                        .iter()
                        .copied()
                        .map(WireItem::from)
                        .collect(),
                    proof,
                })
            }
        };
        Ok(KeyProof::new(key, map_proof, run))
    }
}

/// Why a completeness proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompletenessError {
    /// The window is not inside the checkpoint's tree.
    #[error("the window [{from}, {to}) is not within the tree of {size} leaves")]
    BadWindow {
        /// Its start.
        from: u64,
        /// Its end.
        to: u64,
        /// The tree size.
        size: u64,
    },
    /// No key, too many, or one twice.
    #[error("a completeness proof rests on 1 to {MAX_ANSWER_KEYS} distinct keys, found {0}")]
    Keys(String),
    /// A key's map proof failed.
    #[error("key {key}: {reason}")]
    Key {
        /// The key, in hex.
        key: String,
        /// What failed.
        reason: String,
    },
    /// An event of the window is not in the answer.
    #[error("the answer leaves out the event at leaf {0}, which the index lists")]
    Missing(u64),
    /// The answer holds an event the index does not list in the window.
    #[error("the answer holds the event at leaf {0}, which the index does not list for this value in the window")]
    Unexpected(u64),
    /// The answer's events are not in strictly increasing leaf order (one moved or repeated).
    #[error("the answer's event at leaf {0} is not after the one before it: an answer is in increasing leaf order, each event once")]
    NotIncreasing(u64),
    /// Two of the value's keys list one leaf with different leaf hashes.
    #[error("two keys of the value list leaf {0} with different leaf hashes")]
    Conflict(u64),
    /// The answer's leaf differs from the one the index binds.
    #[error("the event at leaf {0} is not the leaf the index lists there")]
    WrongLeaf(u64),
    /// The receive-time range or its edge leaves are not right.
    #[error("receive-time range: {0}")]
    Received(String),
}

/// What a verified completeness proof shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenComplete {
    /// The window's start.
    pub from: u64,
    /// One past its end.
    pub to: u64,
    /// How many keys it rested on.
    pub keys: usize,
    /// How many events the window holds: all of them are in the answer.
    pub events: usize,
    /// For a receive-time range, what it covers.
    pub received: Option<ProvenReceived>,
}

fn key_error(key: &MapKey, reason: impl ToString) -> CompletenessError {
    CompletenessError::Key {
        key: hex(&key.0),
        reason: reason.to_string(),
    }
}

impl CompletenessProof {
    /// Checks the proof against the map root of a checkpoint of `tree_size` leaves, and that
    /// `answer` (the answer's events as (leaf index, leaf hash)) is exactly the events the index
    /// lists for the value in the window, in strictly increasing index order: an answer with an
    /// event left out, added, moved or repeated is refused. Linear in the run's items and the
    /// answer's events (one pass over each, item hashes computed side by side).
    pub fn verify(
        &self,
        map_root: &Hash,
        tree_size: u64,
        answer: &[(u64, Hash)],
    ) -> Result<ProvenComplete, CompletenessError> {
        let (from, to) = (self.from, self.to);
        if from > to || to > tree_size {
            return Err(CompletenessError::BadWindow {
                from,
                to,
                size: tree_size,
            });
        }
        let mut distinct: Vec<MapKey> = self.keys.iter().map(|proof| proof.key).collect();
        distinct.sort();
        distinct.dedup();
        if self.keys.is_empty()
            || self.keys.len() > MAX_ANSWER_KEYS
            || distinct.len() != self.keys.len()
        {
            return Err(CompletenessError::Keys(self.keys.len().to_string()));
        }
        check_increasing(answer)?;
        let mut listed: Vec<(u64, Hash)> = Vec::new();
        let mut edges = Vec::with_capacity(self.keys.len());
        for proof in &self.keys {
            let (items, edge) = proof.verify(map_root, tree_size, from, to)?;
            edges.push(edge);
            listed.extend(items.iter().map(|item| (item.leaf_index, item.leaf_hash)));
        }
        if self.keys.len() > 1 {
            // Each key's items are increasing; their union is sorted once, and a leaf two keys
            // list must be the same leaf in both.
            listed.sort_unstable_by_key(|&(index, _)| index);
            if let Some(pair) = listed
                .windows(2)
                .find(|pair| pair[0].0 == pair[1].0 && pair[0].1 != pair[1].1)
            {
                return Err(CompletenessError::Conflict(pair[0].0));
            }
            listed.dedup_by_key(|&mut (index, _)| index);
        }
        compare(&listed, answer)?;
        let received = self
            .received
            .as_ref()
            .map(|range| range.cover(&edges, (from, to), tree_size))
            .transpose()?;
        Ok(ProvenComplete {
            from,
            to,
            keys: self.keys.len(),
            events: listed.len(),
            received,
        })
    }
}

/// Refuses an answer whose leaf indices are not strictly increasing.
fn check_increasing(answer: &[(u64, Hash)]) -> Result<(), CompletenessError> {
    match answer.windows(2).find(|pair| pair[0].0 >= pair[1].0) {
        Some(pair) => Err(CompletenessError::NotIncreasing(pair[1].0)),
        None => Ok(()),
    }
}

/// Checks that `answer` is exactly `listed` (both strictly increasing): one pass over both,
/// naming the first leaf left out, added, or bound to another hash.
fn compare(listed: &[(u64, Hash)], answer: &[(u64, Hash)]) -> Result<(), CompletenessError> {
    let (mut listed, mut answer) = (listed.iter().peekable(), answer.iter().peekable());
    loop {
        match (listed.peek(), answer.peek()) {
            (None, None) => return Ok(()),
            (Some(&&(index, _)), None) => return Err(CompletenessError::Missing(index)),
            (None, Some(&&(index, _))) => return Err(CompletenessError::Unexpected(index)),
            (Some(&&(want, want_hash)), Some(&&(given, given_hash))) => {
                if want < given {
                    return Err(CompletenessError::Missing(want));
                }
                if given < want {
                    return Err(CompletenessError::Unexpected(given));
                }
                if want_hash != given_hash {
                    return Err(CompletenessError::WrongLeaf(want));
                }
                listed.next();
                answer.next();
            }
        }
    }
}

impl KeyProof {
    /// Checks this key's map proof and run; the items of its list inside the window, and
    /// the items just before and after it.
    fn verify(
        &self,
        map_root: &Hash,
        tree_size: u64,
        from: u64,
        to: u64,
    ) -> Result<(Vec<Item>, Edges), CompletenessError> {
        let key = &self.key;
        let head = self
            .map_proof()
            .verify(key, map_root)
            .map_err(|error| key_error(key, error))?;
        let (head, run) = match (head, &self.run) {
            (None, None) => return Ok((Vec::new(), (None, None))),
            (None, Some(_)) => return Err(key_error(key, "absent from the map, yet given a run")),
            (Some(_), None) => return Err(key_error(key, "in the map, yet given no run")),
            (Some(head), Some(run)) => (head, run),
        };
        if run.items.len() > MAX_RUN_ITEMS {
            return Err(key_error(
                key,
                format!(
                    "a run of {} items, more than {MAX_RUN_ITEMS}",
                    run.items.len()
                ),
            ));
        }
        let items: Vec<Item> = run.items.iter().copied().map(Item::from).collect();
        let hashes = item_hashes(&items);
        verify_range(head.count, run.start, &hashes, &run.proof, &head.root)
            .map_err(|error: RangeError| key_error(key, error))?;
        if !items
            .windows(2)
            .all(|pair| pair[0].leaf_index < pair[1].leaf_index)
        {
            return Err(key_error(key, "its items are not in increasing leaf order"));
        }
        // verify_range refused an empty run, so there is a first and a last item.
        let (first, last) = (items[0], items[items.len() - 1]);
        if last.leaf_index >= tree_size {
            return Err(key_error(
                key,
                format!("it lists leaf {}, beyond the tree", last.leaf_index),
            ));
        }
        let end = run.start + items.len() as u64;
        if run.start > 0 && first.leaf_index >= from {
            return Err(key_error(
                key,
                "the run starts inside the window: items before it are not shown",
            ));
        }
        if end < head.count && last.leaf_index < to {
            return Err(key_error(
                key,
                "the run ends inside the window: items after it are not shown",
            ));
        }
        let before = (first.leaf_index < from).then_some(first);
        let after = (last.leaf_index >= to).then_some(last);
        Ok((
            items
                .into_iter()
                .filter(|item| (from..to).contains(&item.leaf_index))
                .collect(),
            (before, after),
        ))
    }
}

/// A key's items just before and just after a window, if its list has them.
type Edges = (Option<Item>, Option<Item>);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A map key as 64 lowercase hex digits.
mod key_hex {
    use super::MapKey;

    pub fn serialize<S: serde::Serializer>(key: &MapKey, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::hex(&key.0))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> Result<MapKey, D::Error> {
        let text: std::borrow::Cow<'de, str> = serde::Deserialize::deserialize(deserializer)?;
        let bytes = text.as_bytes();
        let lower_hex = |byte: &u8| byte.is_ascii_digit() || (b'a'..=b'f').contains(byte);
        if bytes.len() != 64 || !bytes.iter().all(lower_hex) {
            return Err(serde::de::Error::custom("a key is 64 lowercase hex digits"));
        }
        let mut key = [0u8; 32];
        for (index, pair) in bytes.chunks_exact(2).enumerate() {
            let digits = std::str::from_utf8(pair).map_err(serde::de::Error::custom)?;
            key[index] = u8::from_str_radix(digits, 16)
                .map_err(|_| serde::de::Error::custom("a key is 64 hex digits"))?;
        }
        Ok(MapKey(key))
    }
}
