//! What the follower keeps of one log between polls, in the monitor's state file
//! ([`crate::state`]): the verified state (the last checkpoint it verified, with the
//! compact-range frontier of that tree) and the progress of an interrupted growth.
//!
//! The two are kept apart on purpose. A verified state names a tree whose root the log signed
//! and the monitor recomputed; progress names leaves hashed from tiles that no signed root
//! covers yet. Only the end of a growth turns progress into a verified state, in one
//! transaction, so a crash leaves either the old state with resumable progress or the new
//! state.

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
    pub(crate) fn range(&self) -> Option<CompactRange> {
        range_of(self.size, &self.frontier)
    }

    pub(crate) fn root_hash(&self) -> Option<Hash> {
        Hash::from_base64(&self.root).ok()
    }
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

impl Follower {
    /// Where an interrupted growth stopped, if it can be resumed towards a tree of `size`: the
    /// compact range of the leaves hashed from tiles so far. Those leaves are not verified yet
    /// (no signed root covers them until the growth ends), which is why this is kept apart from
    /// the verified state.
    pub(super) fn resumable_progress(&self, size: u64) -> Option<CompactRange> {
        let verified_size = self.state.as_ref().map_or(0, |state| state.size);
        // Progress that cannot be read is not resumed: the growth starts again from the
        // verified tree, which only costs time.
        let progress = match self.store.progress(self.settings.origin()) {
            Ok(progress) => progress?,
            Err(error) => {
                tracing::warn!(%error, "the progress of an interrupted verification is not read");
                return None;
            }
        };
        let usable = progress.tree_size() > verified_size
            && progress.tree_size() <= size
            && progress.tree_size().is_multiple_of(u64::from(TILE_WIDTH));
        usable.then_some(progress)
    }

    /// Commits a verified state (its hashes are already synced), and with it, in one
    /// transaction, forgets the progress of the growth that led to it when `grown`.
    pub(super) fn persist(&mut self, state: VerifiedState, grown: bool) -> Result<(), FollowError> {
        self.store
            .commit_verified(self.settings.origin(), &state, grown)?;
        self.state = Some(state);
        Ok(())
    }
}
