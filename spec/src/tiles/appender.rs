//! What the log's integrator needs: the tiles that change as the tree grows, with their data.
//!
//! [`TileAppender`] is a [`CompactRange`] that also keeps, for each tile level, the hashes of
//! that level's rightmost, not yet full tile. Appending leaf hashes completes perfect subtrees;
//! those at heights that are multiples of 8 are the hashes tiles hold, and they go into the
//! edge of their level. A full edge becomes a full tile; what is left becomes the level's new
//! partial tile. The result is exactly the tiles of [`changed_tiles`](super::changed_tiles),
//! with their bytes, ready to write.
//!
//! All the state is in the tiles it writes: after a restart, [`TileAppender::restore`] reads the
//! partial tiles of the last size back, checks them against the last signed root, and goes on.

use crate::hash::{Hash, HASH_SIZE};
use crate::merkle::{tree_root_nodes, CompactRange, CompactRangeError};

use super::path::{Tile, TILE_HEIGHT, TILE_WIDTH};
use super::reader::{hash_in_checked_tiles, read_checked_tiles, TileReadError, TileSource};
use super::tree::partial_tiles;

/// A tile to write: its coordinates (with its new width) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileUpdate {
    /// The tile.
    pub tile: Tile,
    /// Its hashes, concatenated.
    pub data: Vec<u8>,
}

/// The tree state of a log's integrator: the compact range and the edge of every tile level.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TileAppender {
    range: CompactRange,
    /// `edges[L]` holds the `(n >> 8L) mod 256` hashes of level `L`'s partial tile.
    edges: Vec<Vec<Hash>>,
}

fn concatenate(hashes: &[Hash]) -> Vec<u8> {
    let mut data = Vec::with_capacity(hashes.len() * HASH_SIZE);
    for hash in hashes {
        data.extend_from_slice(hash.as_bytes());
    }
    data
}

impl TileAppender {
    /// The state of an empty log.
    pub fn new() -> TileAppender {
        TileAppender::default()
    }

    /// The state of a log of `tree_size` leaves whose last signed root is `root`, from its
    /// partial tiles (those [`tiles_for_root`](super::tiles_for_root) lists). Tiles that do not
    /// lead to `root` are refused: the log must not build on a state it never signed.
    pub fn restore<S: TileSource>(
        tree_size: u64,
        root: &Hash,
        source: S,
    ) -> Result<TileAppender, TileReadError<S::Error>> {
        let plan = partial_tiles(tree_size);
        let checked = read_checked_tiles(tree_size, root, &source, &plan)?;
        let mut edges = Vec::new();
        for tile in &plan {
            let level = usize::from(tile.level());
            if edges.len() <= level {
                edges.resize(level + 1, Vec::new());
            }
            edges[level] = checked
                .get(tile)
                .expect("every planned tile was read")
                .clone();
        }
        let frontier = tree_root_nodes(tree_size)
            .expect("tree size checked by the reader")
            .into_iter()
            .map(|node| hash_in_checked_tiles(&checked, node, tree_size))
            .collect();
        let range = CompactRange::from_frontier(tree_size, frontier)
            .expect("one frontier hash per root node");
        Ok(TileAppender { range, edges })
    }

    /// How many leaves the tree has.
    pub fn tree_size(&self) -> u64 {
        self.range.tree_size()
    }

    /// The root of the tree.
    pub fn root(&self) -> Hash {
        self.range.root()
    }

    /// The compact range of the tree.
    pub fn compact_range(&self) -> &CompactRange {
        &self.range
    }

    /// Appends leaf hashes and returns every tile that is new or wider, ordered by level, then
    /// index. Either all leaves are appended or, past [`MAX_TREE_SIZE`], none.
    ///
    /// [`MAX_TREE_SIZE`]: crate::merkle::MAX_TREE_SIZE
    pub fn append(&mut self, leaf_hashes: &[Hash]) -> Result<Vec<TileUpdate>, CompactRangeError> {
        let old_size = self.range.tree_size();
        let TileAppender { range, edges } = self;
        let mut updates = Vec::new();
        range.extend_with(leaf_hashes, |node, hash| {
            if u32::from(node.height()) % TILE_HEIGHT != 0 {
                return;
            }
            let level = usize::from(node.height()) / TILE_HEIGHT as usize;
            if edges.len() <= level {
                edges.resize(level + 1, Vec::new());
            }
            let edge = &mut edges[level];
            edge.push(*hash);
            if edge.len() == usize::from(TILE_WIDTH) {
                updates.push(TileUpdate {
                    tile: Tile::inside_tree(level as u8, node.index() >> TILE_HEIGHT, TILE_WIDTH),
                    data: concatenate(edge),
                });
                edge.clear();
            }
        })?;
        let new_size = range.tree_size();
        for (level, edge) in edges.iter().enumerate() {
            let shift = TILE_HEIGHT * level as u32;
            if edge.is_empty() || old_size >> shift == new_size >> shift {
                continue;
            }
            updates.push(TileUpdate {
                tile: Tile::inside_tree(
                    level as u8,
                    new_size >> shift >> TILE_HEIGHT,
                    edge.len() as u16,
                ),
                data: concatenate(edge),
            });
        }
        updates.sort_unstable_by_key(|update| update.tile);
        Ok(updates)
    }
}

/// The data of `tile` cut from all the hashes of its level (the hashes at height `8 · level`, in
/// order), for a log that stores hashes per level rather than tiles. `None` if the level does
/// not have the hashes the tile holds.
pub fn tile_from_level_hashes(tile: Tile, level_hashes: &[Hash]) -> Option<Vec<u8>> {
    let first = usize::try_from(tile.first_hash_index()?).ok()?;
    let end = first.checked_add(usize::from(tile.width()))?;
    Some(concatenate(level_hashes.get(first..end)?))
}
