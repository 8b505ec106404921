//! What the follower keeps of one log between polls, in its sled tree: the verified state (the
//! last checkpoint it verified, with the compact-range frontier of that tree) and the progress of
//! an interrupted growth.
//!
//! The two are kept apart on purpose. A verified state names a tree whose root the log signed
//! and the monitor recomputed; progress names leaves hashed from tiles that no signed root
//! covers yet. Only the end of a growth turns progress into a verified state, in one flushed
//! batch, so a crash leaves either the old state with resumable progress or the new state.

use cairn_spec::merkle::CompactRange;
use cairn_spec::tiles::TILE_WIDTH;
use cairn_spec::Hash;
use serde::{Deserialize, Serialize};

use super::Follower;
use crate::error::FollowError;

/// What the monitor has verified of one log, persisted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifiedState {
    /// The last verified checkpoint note, as served.
    pub note: String,
    /// Its tree size.
    pub size: u64,
    /// Its root.
    pub root: String,
    /// The compact-range frontier of that tree, base64, largest subtree first.
    pub frontier: Vec<String>,
    /// Unix seconds when the size last grew.
    pub grown_at: u64,
    /// The next full tile to fetch again.
    pub recheck_cursor: u64,
}

impl VerifiedState {
    pub(super) fn range(&self) -> Option<CompactRange> {
        range_of(self.size, &self.frontier)
    }

    pub(super) fn root_hash(&self) -> Option<Hash> {
        Hash::from_base64(&self.root).ok()
    }
}

/// The key of an interrupted growth's progress in the state tree.
pub(super) const PROGRESS_KEY: &str = "progress";

/// How far an interrupted growth got: the compact range of the leaves hashed from tiles, beyond
/// the verified tree, at a tile boundary.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    size: u64,
    frontier: Vec<String>,
}

/// The compact range of a tree of `size` from its frontier as stored (base64, largest subtree
/// first); `None` if the stored frontier is not one.
fn range_of(size: u64, frontier: &[String]) -> Option<CompactRange> {
    let frontier = frontier
        .iter()
        .map(|value| Hash::from_base64(value).ok())
        .collect::<Option<Vec<_>>>()?;
    CompactRange::from_frontier(size, frontier).ok()
}

/// The progress record of a range that ends on a tile boundary, as committed.
pub(super) fn progress_record(range: &CompactRange) -> Vec<u8> {
    let progress = Progress {
        size: range.tree_size(),
        frontier: range.frontier().iter().map(Hash::to_base64).collect(),
    };
    serde_json::to_vec(&progress).expect("progress serialises")
}

impl Follower {
    /// Where an interrupted growth stopped, if it can be resumed towards a tree of `size`: the
    /// compact range of the leaves hashed from tiles so far. Those leaves are not verified yet
    /// (no signed root covers them until the growth ends), which is why this is kept apart from
    /// the verified state.
    pub(super) fn resumable_progress(&self, size: u64) -> Option<CompactRange> {
        let verified_size = self.state.as_ref().map_or(0, |state| state.size);
        let bytes = self.state_tree.get(PROGRESS_KEY).ok()??;
        let progress: Progress = serde_json::from_slice(&bytes).ok()?;
        let usable = progress.size > verified_size
            && progress.size <= size
            && progress.size.is_multiple_of(u64::from(TILE_WIDTH));
        if !usable {
            return None;
        }
        range_of(progress.size, &progress.frontier)
    }

    /// Commits a verified state (its hashes are already synced), and with it, in one flushed
    /// sled batch, forgets the progress of the growth that led to it when `grown`.
    pub(super) fn persist(&mut self, state: VerifiedState, grown: bool) -> Result<(), FollowError> {
        let mut batch = sled::Batch::default();
        batch.insert(
            "verified",
            serde_json::to_vec(&state).expect("state serialises"),
        );
        if grown {
            batch.remove(PROGRESS_KEY);
        }
        self.state_tree.apply_batch(batch)?;
        self.state_tree.flush()?;
        self.state = Some(state);
        Ok(())
    }
}
