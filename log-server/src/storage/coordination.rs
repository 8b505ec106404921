//! The seam between a log shared by several front-ends and the parts that must run in one of
//! them at a time (the integrator, the witnesses' rounds): [`Coordination`], kept by the
//! scaled backend's lease ([`super::scaled::lease`]).

use super::StoreError;

/// For a log shared by several front-ends: whether this one integrates now, and how it learns
/// what another wrote.
pub trait Coordination: Send + Sync + 'static {
    /// The fencing token of the integrator lease this process holds now, or `None` if it does
    /// not hold it (it then follows the checkpoint stored by the holder).
    fn lease(&self) -> Option<u64>;

    /// Learns the tree's stored hashes again, as another process may have written some since.
    /// Blocking.
    fn reload_tree(&self) -> Result<(), StoreError>;
}
