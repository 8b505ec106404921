//! What the follower keeps of one log between polls, in the monitor's state file
//! ([`crate::state`]): the verified state (the last checkpoint it verified, with the
//! compact-range frontier of that tree, [`VerifiedState`]) and the progress of an interrupted
//! growth.
//!
//! The two are kept apart on purpose. A verified state names a tree whose root the log signed
//! and the monitor recomputed; progress names leaves hashed from tiles that no signed root
//! covers yet. Only the end of a growth turns progress into a verified state, in one
//! transaction, so a crash leaves either the old state with resumable progress or the new
//! state.

use cairn_spec::merkle::CompactRange;
use cairn_spec::tiles::TILE_WIDTH;

use super::Follower;
use crate::error::FollowError;
pub use crate::state::VerifiedState;

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
