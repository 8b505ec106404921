//! The verified state of one log as the state file keeps it: the last checkpoint the monitor
//! verified, with the compact-range frontier of that tree. It is defined beside the store that
//! persists it, so that the store does not depend on the follower ([`crate::follow`]) that
//! makes it.

use cairn_spec::merkle::CompactRange;
use cairn_spec::Hash;
use serde::{Deserialize, Serialize};

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
