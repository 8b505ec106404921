//! Which tiles a tree consists of, which ones change as it grows, and which ones a root or a
//! proof needs (C2SP tlog-tiles, "Merkle Tree" and "Partial Tiles").
//!
//! A tree of `n` leaves has `n >> 8L` hashes at height `8·L` (the perfect subtrees of that
//! height complete at size `n`). Level `L` holds them 256 to a tile: full tiles, then one
//! partial tile of `(n >> 8L) mod 256` hashes if that is not zero. For example (the spec's),
//! a tree of 70,000 leaves is 273 full level-0 tiles, a level-0 tile of width 112, a full
//! level-1 tile, a level-1 tile of width 17 and a level-2 tile of width 1.
//!
//! The partial tiles are exactly what the root needs: every perfect subtree of the binary
//! decomposition of `n` whose height is in `[8L, 8L + 8)` is the hash of a run of hashes in
//! the partial tile of level `L`. Every other tile is full, and the root of a full tile (the
//! perfect subtree of height `8L + 8` it spans) is a hash in its parent tile. So any tile is
//! authenticated by a chain of parents that ends in a partial tile, and the partial tiles by
//! the root: [`tiles_for_nodes`] lists a tile's chain before the tile, which is the order the
//! tile hash reader checks them in.

use std::collections::BTreeSet;

use crate::merkle::{
    consistency_proof_nodes, inclusion_proof_nodes, tree_root_nodes, NodeId, RangeError,
    MAX_TREE_SIZE,
};

use super::path::{EntryBundle, Tile, TILE_HEIGHT, TILE_WIDTH};

/// How many hashes a tree of `tree_size` leaves has at tile level `level`.
fn hashes_at_level(level: u32, tree_size: u64) -> u64 {
    tree_size.checked_shr(TILE_HEIGHT * level).unwrap_or(0)
}

/// The width that the tile at `level` and `index` has in a tree of `tree_size` leaves, or
/// `None` if the tree has no hash in it yet.
pub fn tile_width_in_tree(level: u8, index: u64, tree_size: u64) -> Option<u16> {
    let available = hashes_at_level(u32::from(level), tree_size);
    let first = index.checked_mul(u64::from(TILE_WIDTH))?;
    let width = available.checked_sub(first).filter(|&width| width > 0)?;
    Some(width.min(u64::from(TILE_WIDTH)) as u16)
}

impl Tile {
    /// The tile at `level` and `index` as it is in a tree of `tree_size` leaves (full, or partial
    /// with the width the tree gives it), or `None` if the tree has no hash in it yet.
    pub fn in_tree(level: u8, index: u64, tree_size: u64) -> Option<Tile> {
        if level > super::path::MAX_TILE_LEVEL {
            return None;
        }
        let width = tile_width_in_tree(level, index, tree_size)?;
        Some(Tile::inside_tree(level, index, width))
    }

    /// The tile one level up that holds this tile's root, with the position of that root in it,
    /// as that tile is in a tree of `tree_size` leaves. `None` unless this tile is full in that
    /// tree: a partial tile is never hashed into the level above.
    pub fn parent_in_tree(self, tree_size: u64) -> Option<(Tile, u16)> {
        if !self.is_full()
            || tile_width_in_tree(self.level(), self.index(), tree_size)? != TILE_WIDTH
        {
            return None;
        }
        let parent = Tile::in_tree(
            self.level().checked_add(1)?,
            self.index() >> TILE_HEIGHT,
            tree_size,
        )?;
        Some((parent, (self.index() % u64::from(TILE_WIDTH)) as u16))
    }
}

/// Every tile of a tree, level by level, left to right: the full tiles and, at each level where
/// the count of hashes is not a multiple of 256, one partial tile.
pub fn tiles_of_tree(tree_size: u64) -> impl Iterator<Item = Tile> {
    (0..=super::path::MAX_TILE_LEVEL)
        .take_while(move |&level| hashes_at_level(u32::from(level), tree_size) > 0)
        .flat_map(move |level| {
            let count = hashes_at_level(u32::from(level), tree_size);
            let tiles = count.div_ceil(u64::from(TILE_WIDTH));
            (0..tiles).map(move |index| {
                Tile::in_tree(level, index, tree_size).expect("index below the tile count")
            })
        })
}

/// Every entry bundle of a tree, left to right (the level-0 tiles' bundles).
pub fn entry_bundles_of_tree(tree_size: u64) -> impl Iterator<Item = EntryBundle> {
    let tiles = tree_size.div_ceil(u64::from(TILE_WIDTH));
    (0..tiles).map(move |index| {
        Tile::in_tree(0, index, tree_size)
            .and_then(Tile::entry_bundle)
            .expect("index below the bundle count")
    })
}

/// The partial tiles of a tree, lowest level first: at most one per level, and exactly the
/// tiles its root is computed from.
pub fn partial_tiles(tree_size: u64) -> Vec<Tile> {
    tiles_of_level_edges(tree_size)
        .filter(|tile| !tile.is_full())
        .collect()
}

/// The rightmost tile of every level.
fn tiles_of_level_edges(tree_size: u64) -> impl Iterator<Item = Tile> {
    (0..=super::path::MAX_TILE_LEVEL)
        .take_while(move |&level| hashes_at_level(u32::from(level), tree_size) > 0)
        .map(move |level| {
            let count = hashes_at_level(u32::from(level), tree_size);
            let last = (count - 1) / u64::from(TILE_WIDTH);
            Tile::in_tree(level, last, tree_size).expect("the last tile holds a hash")
        })
}

/// The tiles of height `height` that differ between trees of `old_size` and `new_size` leaves
/// (every tile of the new tree that is new or wider), level by level, left to right, as
/// `(level, index, width)`. This is the arithmetic of Go's `tlog.NewTiles`, kept general in the
/// height so Go's vectors, which use other heights, can check it.
pub(super) fn changed_tiles_of_height(
    height: u32,
    old_size: u64,
    new_size: u64,
) -> Vec<(u8, u64, u64)> {
    let full_width = 1u64 << height;
    let mut tiles = Vec::new();
    for level in 0u8..=super::path::MAX_TILE_LEVEL {
        let shift = height * u32::from(level);
        let new_count = new_size.checked_shr(shift).unwrap_or(0);
        if new_count == 0 {
            break;
        }
        let old_count = old_size.checked_shr(shift).unwrap_or(0).min(new_count);
        if old_count == new_count {
            continue;
        }
        // Tiles that were partial or absent at the old size and are full now.
        for index in old_count / full_width..new_count / full_width {
            tiles.push((level, index, full_width));
        }
        let partial_width = new_count % full_width;
        if partial_width > 0 {
            tiles.push((level, new_count / full_width, partial_width));
        }
    }
    tiles
}

/// The tiles a log must write when its tree grows from `old_size` to `new_size` leaves: every
/// tile that is new or wider, level by level, left to right. Full tiles appear once, when they
/// fill; the partial tile of a level appears whenever that level gained hashes. Nothing changes
/// if `new_size <= old_size`.
pub fn changed_tiles(old_size: u64, new_size: u64) -> Vec<Tile> {
    changed_tiles_of_height(TILE_HEIGHT, old_size, new_size)
        .into_iter()
        .map(|(level, index, width)| Tile::inside_tree(level, index, width as u16))
        .collect()
}

/// The entry bundles a log must write when its tree grows from `old_size` to `new_size`.
pub fn changed_entry_bundles(old_size: u64, new_size: u64) -> Vec<EntryBundle> {
    changed_tiles(old_size, new_size)
        .into_iter()
        .filter_map(Tile::entry_bundle)
        .collect()
}

/// Where a perfect subtree's hash is found: the tile (as it is in the tree) and the run of
/// positions in it whose hashes it is the subtree hash of (one position when its height is a
/// multiple of 8).
pub(crate) fn locate(node: NodeId, tree_size: u64) -> Option<(Tile, std::ops::Range<usize>)> {
    let level = u32::from(node.height()) / TILE_HEIGHT;
    let height_in_tile = u32::from(node.height()) % TILE_HEIGHT;
    let first = node.index() << height_in_tile;
    let tile = Tile::in_tree(level as u8, first >> TILE_HEIGHT, tree_size)?;
    let start = (first % u64::from(TILE_WIDTH)) as usize;
    let end = start + (1 << height_in_tile);
    (end <= usize::from(tile.width())).then_some((tile, start..end))
}

/// Why tiles for some nodes cannot be planned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TilePlanError {
    /// The tree size is over the limit.
    #[error("tree size {tree_size} is over the limit of {MAX_TREE_SIZE} leaves")]
    TreeTooLarge {
        /// The size asked for.
        tree_size: u64,
    },
    /// A node is not complete in the tree.
    #[error(
        "the subtree at height {} index {} is not complete in a tree of {tree_size} leaves",
        node.height(), node.index()
    )]
    NodeOutsideTree {
        /// The node.
        node: NodeId,
        /// The tree size.
        tree_size: u64,
    },
}

/// The tiles a tile hash reader for a tree of `tree_size` leaves reads to return the hashes of
/// `nodes`: the partial tiles (they authenticate against the root), then for each node the
/// chain of full tiles from the first one already listed down to the node's own tile. Every
/// tile comes after the tile that authenticates it, and none is listed twice.
pub fn tiles_for_nodes(nodes: &[NodeId], tree_size: u64) -> Result<Vec<Tile>, TilePlanError> {
    if tree_size > MAX_TREE_SIZE {
        return Err(TilePlanError::TreeTooLarge { tree_size });
    }
    let mut plan = partial_tiles(tree_size);
    let mut listed: BTreeSet<Tile> = plan.iter().copied().collect();
    for &node in nodes {
        let outside = TilePlanError::NodeOutsideTree { node, tree_size };
        if node.end_leaf() > tree_size {
            return Err(outside);
        }
        let (mut tile, _) = locate(node, tree_size).ok_or(outside)?;
        let mut chain = Vec::new();
        while !listed.contains(&tile) {
            chain.push(tile);
            // A tile that is not partial is full, and a full tile has a parent in the tree.
            let (parent, _) = tile
                .parent_in_tree(tree_size)
                .expect("a full tile of the tree has a parent tile in it");
            tile = parent;
        }
        for tile in chain.into_iter().rev() {
            listed.insert(tile);
            plan.push(tile);
        }
    }
    Ok(plan)
}

/// The tiles needed to compute the root of a tree of `tree_size` leaves: its partial tiles.
pub fn tiles_for_root(tree_size: u64) -> Result<Vec<Tile>, RangeError> {
    tree_root_nodes(tree_size)?;
    Ok(partial_tiles(tree_size))
}

/// The tiles needed to build (and authenticate) the inclusion proof of `leaf_index` in the tree
/// of `tree_size` leaves, and to read the leaf hash itself.
pub fn tiles_for_inclusion_proof(leaf_index: u64, tree_size: u64) -> Result<Vec<Tile>, RangeError> {
    let mut nodes = inclusion_proof_nodes(leaf_index, tree_size)?;
    nodes.push(NodeId::leaf(leaf_index).expect("the leaf is inside the tree"));
    Ok(tiles_for_nodes(&nodes, tree_size).expect("proof nodes lie inside the tree"))
}

/// The tiles needed to build the consistency proof from `old_size` to `new_size` leaves,
/// authenticated against the newer tree.
pub fn tiles_for_consistency_proof(old_size: u64, new_size: u64) -> Result<Vec<Tile>, RangeError> {
    let nodes = consistency_proof_nodes(old_size, new_size)?;
    Ok(tiles_for_nodes(&nodes, new_size).expect("proof nodes lie inside the tree"))
}
