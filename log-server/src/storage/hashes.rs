//! Any node of the tree, read from the stored hash levels ([`StoreHashes`]): what proofs, the
//! integrator's restore and receipts read the tree through. A node at height `8·L + r` is the
//! root of the `2^r` consecutive hashes below it at level `L`, so nothing but the levels is
//! stored.

use cairn_spec::merkle::{HashReader, NodeId};

use super::{Hash, LogStore, StoreError, TILE_HEIGHT};

/// Reads any node of the tree from the store's hash levels: a node at height `8·L + r` is the
/// root of the `2^r` consecutive hashes below it at level `L`.
pub struct StoreHashes<'a> {
    store: &'a dyn LogStore,
}

impl<'a> StoreHashes<'a> {
    /// A reader over `store`.
    pub fn new(store: &'a dyn LogStore) -> StoreHashes<'a> {
        StoreHashes { store }
    }

    fn read_node(&self, node: NodeId) -> Result<Hash, StoreError> {
        let level = (u32::from(node.height()) / TILE_HEIGHT) as u8;
        let rest = u32::from(node.height()) % TILE_HEIGHT;
        let start = node.index() << rest;
        let hashes = self.store.read_hashes(level, start, 1u64 << rest)?;
        Ok(fold_perfect(hashes))
    }
}

/// The root of a perfect subtree from its `2^k` bottom hashes.
pub fn fold_perfect(mut hashes: Vec<Hash>) -> Hash {
    while hashes.len() > 1 {
        hashes = hashes
            .chunks_exact(2)
            .map(|pair| Hash::of_node(&pair[0], &pair[1]))
            .collect();
    }
    hashes.pop().unwrap_or_else(Hash::empty_tree)
}

impl HashReader for StoreHashes<'_> {
    type Error = StoreError;
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        nodes.iter().map(|node| self.read_node(*node)).collect()
    }
}
