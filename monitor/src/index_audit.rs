//! The index auditor (spec/docs/completeness.md §2): replays a log's completeness index from
//! its record stream, checks that it gives the `cairn-index/v1` root of every checkpoint the
//! monitor verifies, and re-derives the `action` lists from the leaves it verified, so that an
//! index that leaves an event out of its action's list, or lists one under an action it does
//! not carry, is found, with evidence (`index-omits`, `index-invents`) built from the replayed
//! index, which then is the one the checkpoint signs.
//!
//! - **Append-only** (rule 3): the replay only ever appends items, and every mark of the
//!   stream and every signed root must be the replayed root at its size; a log that rewrote
//!   its index between two checkpoints gives a root the replay cannot reach.
//! - **Ordered and bound** (rule 1): items come in increasing leaf order (the map refuses
//!   others) and each binds the leaf hash the monitor verified.
//! - **Whole, for `action`** (rule 2): every event leaf is in the list of its action, and no
//!   list of an action holds a leaf of another. The keyed fields' tags cannot be checked
//!   without the log's index key; an auditor who holds it replays those too.
//! - **Receive times** (rule 4): no leaf's `received_at` lies more than the skew before an
//!   earlier leaf's, which time-range proofs rest on.
//!
//! The replay lives in memory (about 40 bytes an item, four items an event, for at most
//! [`MAX_AUDITED_LEAVES`] leaves) and is rebuilt from the stream when the monitor restarts.

use std::collections::{BTreeMap, HashMap};

use cairn_spec::completeness::received::{received_at, MAX_RECEIVE_SKEW_SECS};
use cairn_spec::completeness::records::Record;
use cairn_spec::completeness::{action_key, CompletenessProof, IndexMap, Item, KeyProof, MapKey};
use cairn_spec::evidence::index::action_of;
use cairn_spec::time::Instant;
use cairn_spec::Hash;

/// Most leaves one audit replays.
pub const MAX_AUDITED_LEAVES: u64 = 1 << 22;
/// Most items read from the stream and not yet closed by a mark.
pub const MAX_PENDING_ITEMS: usize = 1 << 20;
const NO_ACTION: u32 = u32::MAX;

/// Something wrong with the log's index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// An event leaf is not in the list of its action.
    Omits {
        /// The leaf.
        leaf_index: u64,
        /// Its action.
        action: String,
    },
    /// The list of an action holds a leaf that carries another action, or an item binds
    /// another leaf hash than the leaf's (`listed_under` then is the leaf's own action).
    Invents {
        /// The leaf.
        leaf_index: u64,
        /// The action whose list holds it.
        listed_under: String,
    },
    /// The stream does not replay to the signed root, or is not a stream of the index: no
    /// evidence (the stream is not signed), an alert all the same.
    Stream(String),
    /// A leaf's `received_at` lies more than the skew before an earlier leaf's (rule 4).
    Skew {
        /// The leaf.
        leaf_index: u64,
        /// Its receive time.
        received: String,
        /// The latest receive time before it.
        latest: String,
    },
}

impl Finding {
    /// What tells this finding apart from others of the log.
    pub fn subject(&self) -> String {
        match self {
            Finding::Omits { leaf_index, .. } => format!("index-omits/{leaf_index}"),
            Finding::Invents { leaf_index, .. } => format!("index-invents/{leaf_index}"),
            Finding::Stream(_) => "index-stream".to_owned(),
            Finding::Skew { leaf_index, .. } => format!("received-skew/{leaf_index}"),
        }
    }

    /// A sentence for the alert.
    pub fn detail(&self) -> String {
        match self {
            Finding::Omits { leaf_index, action } => format!(
                "the log's completeness index leaves the event at leaf {leaf_index} out of the \
                 list of its action {action:?}"
            ),
            Finding::Invents {
                leaf_index,
                listed_under,
            } => format!(
                "the log's completeness index lists the leaf {leaf_index} under the action \
                 {listed_under:?}, which it does not carry as the log holds it"
            ),
            Finding::Stream(reason) => format!("the log's completeness index: {reason}"),
            Finding::Skew {
                leaf_index,
                received,
                latest,
            } => format!(
                "the event at leaf {leaf_index} was received at {received}, more than \
                 {MAX_RECEIVE_SKEW_SECS} s before an earlier event ({latest}): time-range \
                 proofs of this log are not sound"
            ),
        }
    }
}

/// The replayed index and what the audit knows of the leaves.
#[derive(Default)]
pub struct IndexAudit {
    map: IndexMap,
    lists: HashMap<MapKey, Vec<Item>>,
    /// Bytes of the stream read (pending items included).
    read: u64,
    /// Items read since the last mark.
    pending: Vec<(Item, Vec<MapKey>)>,
    /// Leaves the replayed index covers, and its root there.
    covered: u64,
    root: Hash,
    /// The records of the leaves replayed and not yet re-derived.
    unchecked: BTreeMap<u64, (Hash, Vec<MapKey>)>,
    /// Per leaf re-derived: its action's number, or [`NO_ACTION`].
    leaf_actions: Vec<u32>,
    actions: Vec<String>,
    action_numbers: HashMap<MapKey, u32>,
    latest_received: Option<Instant>,
    /// Roots signed at sizes the replay has not reached yet (a checkpoint verified before a
    /// restart): the replay must give them.
    expected: BTreeMap<u64, Hash>,
}

impl IndexAudit {
    /// A new audit, from the start of the stream.
    pub fn new() -> IndexAudit {
        IndexAudit {
            root: cairn_spec::completeness::EMPTY,
            ..IndexAudit::default()
        }
    }

    /// Expects the replay to give `root` at `size` (a checkpoint the monitor verified before).
    pub fn expect(&mut self, size: u64, root: Hash) {
        if size >= self.covered {
            self.expected.insert(size, root);
        }
    }

    /// The byte of the stream to read next.
    pub fn stream_offset(&self) -> u64 {
        self.read
    }

    /// The leaves the replayed index covers.
    pub fn covered(&self) -> u64 {
        self.covered
    }

    /// The leaves re-derived so far.
    pub fn derived(&self) -> u64 {
        self.leaf_actions.len() as u64
    }

    /// The replayed root.
    pub fn root(&self) -> Hash {
        self.root
    }

    /// Replays `bytes` (whole records, from [`stream_offset`](Self::stream_offset)) up to and
    /// including the mark of `target` leaves; returns whether it was reached. Bytes after it
    /// are left to be read again.
    pub fn replay(&mut self, bytes: &[u8], target: u64) -> Result<bool, Finding> {
        let mut offset = 0;
        loop {
            let parsed = Record::parse(&bytes[offset..])
                .map_err(|error| Finding::Stream(format!("at byte {}: {error}", self.read)))?;
            let Some((record, length)) = parsed else {
                return Ok(false);
            };
            offset += length;
            self.read += length as u64;
            match record {
                Record::Item(item, keys) => {
                    if self.pending.len() >= MAX_PENDING_ITEMS {
                        return Err(Finding::Stream(format!(
                            "more than {MAX_PENDING_ITEMS} items without a mark"
                        )));
                    }
                    self.pending.push((item, keys));
                }
                Record::Mark(size, root) => {
                    self.apply(size, root)?;
                    if size == target {
                        return Ok(true);
                    }
                    if size > target {
                        return Err(Finding::Stream(format!(
                            "its records have no mark at the checkpoint's size {target} (the \
                             next is at {size})"
                        )));
                    }
                }
            }
        }
    }

    /// Closes the pending items with the mark of `size` leaves and `root`.
    fn apply(&mut self, size: u64, root: Hash) -> Result<(), Finding> {
        if size < self.covered || size > MAX_AUDITED_LEAVES {
            return Err(Finding::Stream(format!(
                "a mark at size {size} after one at {} (or beyond the audit's {} leaves)",
                self.covered, MAX_AUDITED_LEAVES
            )));
        }
        for (item, keys) in std::mem::take(&mut self.pending) {
            if item.leaf_index < self.covered || item.leaf_index >= size {
                return Err(Finding::Stream(format!(
                    "an item of leaf {} in the run of leaves [{}, {size})",
                    item.leaf_index, self.covered
                )));
            }
            for key in &keys {
                self.map.add(*key, item).map_err(|error| {
                    Finding::Stream(format!("leaf {}: {error}", item.leaf_index))
                })?;
                self.lists.entry(*key).or_default().push(item);
            }
            if self
                .unchecked
                .insert(item.leaf_index, (item.leaf_hash, keys))
                .is_some()
            {
                return Err(Finding::Stream(format!(
                    "two item records of leaf {}",
                    item.leaf_index
                )));
            }
        }
        let replayed = self.map.root();
        if replayed != root {
            return Err(Finding::Stream(format!(
                "its records replay to the root {replayed} at size {size}, its mark says {root}"
            )));
        }
        if let Some((&missed, _)) = self.expected.range(..size).next() {
            return Err(Finding::Stream(format!(
                "its records have no mark at size {missed}, which a checkpoint verified before \
                 covers"
            )));
        }
        if let Some(signed) = self.expected.remove(&size) {
            if signed != replayed {
                return Err(Finding::Stream(format!(
                    "its records replay to the root {replayed} at size {size}, where a \
                     checkpoint verified before carries {signed}: the index was rewritten"
                )));
            }
        }
        self.covered = size;
        self.root = replayed;
        Ok(())
    }

    /// The number of `action`, made if new; a new one's list must hold no leaf of another.
    fn number_of(&mut self, action: &str, findings: &mut Vec<Finding>) -> u32 {
        let key = action_key(action);
        if let Some(&number) = self.action_numbers.get(&key) {
            return number;
        }
        let number = self.actions.len() as u32;
        self.actions.push(action.to_owned());
        self.action_numbers.insert(key, number);
        for item in self.lists.get(&key).into_iter().flatten() {
            let carried = self.leaf_actions.get(item.leaf_index as usize).copied();
            if carried.is_some_and(|carried| carried != number) {
                findings.push(Finding::Invents {
                    leaf_index: item.leaf_index,
                    listed_under: action.to_owned(),
                });
            }
        }
        number
    }

    /// Re-derives the next leaf (its index is [`derived`](Self::derived)), whose verified
    /// bytes are `leaf`, against the replayed records; what is wrong with its listing.
    pub fn check_leaf(&mut self, leaf: &[u8]) -> Vec<Finding> {
        let leaf_index = self.derived();
        let mut findings = Vec::new();
        let record = self.unchecked.remove(&leaf_index);
        let action = action_of(leaf);
        let number = match &action {
            Some(action) => self.number_of(action, &mut findings),
            None => NO_ACTION,
        };
        if let Some(at) = received_at(leaf) {
            if let Some(latest) = self.latest_received {
                let skew = i128::from(MAX_RECEIVE_SKEW_SECS) * 1_000_000_000;
                if at.unix_nanos() < latest.unix_nanos() - skew {
                    findings.push(Finding::Skew {
                        leaf_index,
                        received: at.to_rfc3339(),
                        latest: latest.to_rfc3339(),
                    });
                }
            }
            self.latest_received = Some(self.latest_received.map_or(at, |latest| latest.max(at)));
        }
        let keys = record.as_ref().map_or(&[][..], |(_, keys)| keys.as_slice());
        if let Some(action) = &action {
            if !keys.contains(&action_key(action)) {
                findings.push(Finding::Omits {
                    leaf_index,
                    action: action.clone(),
                });
            }
        }
        if let Some((hash, keys)) = &record {
            if *hash != Hash::of_leaf(leaf) {
                if let Some(action) = action.as_ref().filter(|a| keys.contains(&action_key(a))) {
                    findings.push(Finding::Invents {
                        leaf_index,
                        listed_under: action.clone(),
                    });
                } else {
                    findings.push(Finding::Stream(format!(
                        "its item of leaf {leaf_index} binds another leaf hash"
                    )));
                }
            }
            for key in keys {
                match self.action_numbers.get(key) {
                    Some(&listed) if listed != number => findings.push(Finding::Invents {
                        leaf_index,
                        listed_under: self.actions[listed as usize].clone(),
                    }),
                    _ => {}
                }
            }
        }
        self.leaf_actions.push(number);
        findings
    }

    /// The index's proof for `action` over the window of leaf `leaf_index` alone, against the
    /// replayed root: the heart of `index-omits` and `index-invents` evidence.
    pub fn proof_for(&mut self, action: &str, leaf_index: u64) -> Option<CompletenessProof> {
        let key = action_key(action);
        let map_proof = self.map.prove(&key);
        let list = self.lists.get(&key).map_or(&[][..], Vec::as_slice);
        let window = leaf_index.checked_add(1)?;
        let proof = KeyProof::build(key, &map_proof, list, leaf_index, window).ok()?;
        Some(CompletenessProof {
            field: "action".to_owned(),
            value: action.to_owned(),
            from: leaf_index,
            to: window,
            keys: vec![proof],
            received: None,
        })
    }
}
