//! Reading a tree's hashes from its tiles, checking every tile against the signed root.
//!
//! A monitor, a witness or a receipt verifier that builds a proof from a log's tiles must not
//! trust the tiles: they come from the log (or a cache, or a mirror). [`TileHashReader`] is a
//! [`HashReader`] for one tree, given its size and its signed root. For every call it reads the
//! tiles that [`tiles_for_nodes`] lists, recomputes the root from the partial tiles and compares
//! it with the signed root, checks each full tile against the hash its parent holds for it, and
//! only then answers. A rewritten tile anywhere on those paths is an error that names the tile;
//! a monitor turns it into evidence.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use crate::hash::{Hash, HASH_SIZE};
use crate::merkle::{
    fold_subtree_roots, root_from_leaf_hashes, tree_root_nodes, HashReader, NodeId, RangeError,
    MAX_TREE_SIZE,
};

use super::path::{Tile, TILE_WIDTH};
use super::tree::{locate, tiles_for_nodes, TilePlanError};

/// Where tiles come from: a map, a disk cache, tiles fetched ahead of time.
pub trait TileSource {
    /// Why a tile could not be read.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The data of `tile`: `width` hashes of 32 bytes. A wider version of the same tile (the full
    /// tile for a partial one, say) may be returned instead; only the first `width` hashes are
    /// used. Anything else is an error of the reader, not of the source.
    fn read_tile(&self, tile: Tile) -> Result<Cow<'_, [u8]>, Self::Error>;
}

impl<S: TileSource + ?Sized> TileSource for &S {
    type Error = S::Error;
    fn read_tile(&self, tile: Tile) -> Result<Cow<'_, [u8]>, Self::Error> {
        (**self).read_tile(tile)
    }
}

/// A tile is not in the map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("tile {tile} is not available (nor its full version)")]
pub struct TileNotFound {
    /// The tile asked for.
    pub tile: Tile,
}

/// Tiles by coordinates. A partial tile that is missing is served by its full version if the map
/// has it, as C2SP tlog-tiles lets clients fall back to.
impl<H: BuildHasher> TileSource for HashMap<Tile, Vec<u8>, H> {
    type Error = TileNotFound;
    fn read_tile(&self, tile: Tile) -> Result<Cow<'_, [u8]>, TileNotFound> {
        self.get(&tile)
            .or_else(|| self.get(&tile.to_full()))
            .map(|data| Cow::Borrowed(data.as_slice()))
            .ok_or(TileNotFound { tile })
    }
}

/// Tiles by coordinates, with the same fallback as the `HashMap` source.
impl TileSource for BTreeMap<Tile, Vec<u8>> {
    type Error = TileNotFound;
    fn read_tile(&self, tile: Tile) -> Result<Cow<'_, [u8]>, TileNotFound> {
        self.get(&tile)
            .or_else(|| self.get(&tile.to_full()))
            .map(|data| Cow::Borrowed(data.as_slice()))
            .ok_or(TileNotFound { tile })
    }
}

/// Why hashes could not be read from tiles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileReadError<E> {
    /// The tree size is over [`MAX_TREE_SIZE`].
    #[error("tree size {tree_size} is over the limit of {MAX_TREE_SIZE} leaves")]
    TreeTooLarge {
        /// The size given.
        tree_size: u64,
    },
    /// A node asked for is not complete in the tree.
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
    /// The source could not provide a tile.
    #[error("could not read tile {tile}: {source}")]
    Source {
        /// The tile.
        tile: Tile,
        /// Why.
        #[source]
        source: E,
    },
    /// The source returned data of the wrong length.
    #[error(
        "tile {tile} must be {expected} bytes (or a wider version of it, a multiple of 32 \
         up to 8192), found {found}"
    )]
    WrongLength {
        /// The tile.
        tile: Tile,
        /// `32 · width`.
        expected: usize,
        /// The data's length.
        found: usize,
    },
    /// The partial tiles do not lead to the signed root: one of them was rewritten, or they
    /// belong to another tree.
    #[error(
        "tiles {tiles:?} give root {computed} for tree size {tree_size}, \
         but the signed root is {expected}"
    )]
    RootMismatch {
        /// The tree size.
        tree_size: u64,
        /// The signed root.
        expected: Hash,
        /// The root the tiles lead to.
        computed: Hash,
        /// The tiles the root was computed from.
        tiles: Vec<Tile>,
    },
    /// A full tile does not hash to the hash its parent tile holds for it: it was rewritten (the
    /// parent is already checked against the signed root).
    #[error(
        "tile {tile} hashes to {computed}, but its parent tile {parent} holds {expected} \
         for it"
    )]
    TileMismatch {
        /// The tile that does not match.
        tile: Tile,
        /// Its parent tile.
        parent: Tile,
        /// The hash its parent holds.
        expected: Hash,
        /// The hash of the tile.
        computed: Hash,
    },
}

impl<E> From<TilePlanError> for TileReadError<E> {
    fn from(error: TilePlanError) -> TileReadError<E> {
        match error {
            TilePlanError::TreeTooLarge { tree_size } => TileReadError::TreeTooLarge { tree_size },
            TilePlanError::NodeOutsideTree { node, tree_size } => {
                TileReadError::NodeOutsideTree { node, tree_size }
            }
        }
    }
}

/// Reads `tiles` from `source`, each as the hashes it has in the tree, and checks them: the
/// partial tiles against `root`, every other tile against its parent. `tiles` must come in the
/// order of [`tiles_for_nodes`]: partial tiles first, parents before children.
pub(crate) fn read_checked_tiles<S: TileSource + ?Sized>(
    tree_size: u64,
    root: &Hash,
    source: &S,
    tiles: &[Tile],
) -> Result<BTreeMap<Tile, Vec<Hash>>, TileReadError<S::Error>> {
    if tree_size > MAX_TREE_SIZE {
        return Err(TileReadError::TreeTooLarge { tree_size });
    }
    let mut checked: BTreeMap<Tile, Vec<Hash>> = BTreeMap::new();
    let mut fetched = Vec::with_capacity(tiles.len());
    for &tile in tiles {
        fetched.push((tile, read_tile_hashes(source, tile)?));
    }

    // The partial tiles first: they must give the signed root.
    let mut partial = Vec::new();
    for (tile, hashes) in &fetched {
        if !tile.is_full() {
            partial.push(*tile);
            checked.insert(*tile, hashes.clone());
        }
    }
    let nodes = tree_root_nodes(tree_size).expect("tree size checked above");
    let mut frontier = Vec::with_capacity(nodes.len());
    for node in nodes {
        frontier.push(hash_in_checked_tiles(&checked, node, tree_size));
    }
    let computed = fold_subtree_roots(&frontier);
    if computed != *root {
        return Err(TileReadError::RootMismatch {
            tree_size,
            expected: *root,
            computed,
            tiles: partial,
        });
    }

    // Then each full tile against its parent, which comes before it.
    for (tile, hashes) in fetched {
        if !tile.is_full() {
            continue;
        }
        let (parent, position) = tile
            .parent_in_tree(tree_size)
            .expect("a full tile of the tree has a parent tile in it");
        let expected = checked
            .get(&parent)
            .map(|parent_hashes| parent_hashes[usize::from(position)])
            .expect("tiles are planned parents first");
        let computed = root_from_leaf_hashes(&hashes);
        if computed != expected {
            return Err(TileReadError::TileMismatch {
                tile,
                parent,
                expected,
                computed,
            });
        }
        checked.insert(tile, hashes);
    }
    Ok(checked)
}

/// The first `width` hashes of a tile from the source.
fn read_tile_hashes<S: TileSource + ?Sized>(
    source: &S,
    tile: Tile,
) -> Result<Vec<Hash>, TileReadError<S::Error>> {
    let data = source
        .read_tile(tile)
        .map_err(|source| TileReadError::Source { tile, source })?;
    let expected = usize::from(tile.width()) * HASH_SIZE;
    let wide_enough = data.len() >= expected
        && data.len() <= usize::from(TILE_WIDTH) * HASH_SIZE
        && data.len() % HASH_SIZE == 0;
    if !wide_enough {
        return Err(TileReadError::WrongLength {
            tile,
            expected,
            found: data.len(),
        });
    }
    Ok(data[..expected]
        .chunks_exact(HASH_SIZE)
        .map(|chunk| Hash(chunk.try_into().expect("chunks are 32 bytes")))
        .collect())
}

/// The hash of `node` from a checked tile that holds it.
pub(crate) fn hash_in_checked_tiles(
    checked: &BTreeMap<Tile, Vec<Hash>>,
    node: NodeId,
    tree_size: u64,
) -> Hash {
    let (tile, positions) = locate(node, tree_size).expect("planned nodes are in the tree");
    let hashes = checked.get(&tile).expect("planned tiles were read");
    root_from_leaf_hashes(&hashes[positions])
}

/// A [`HashReader`] over the tiles of one tree, trusting nothing but the tree's size and signed
/// root (see the module documentation).
#[derive(Debug, Clone)]
pub struct TileHashReader<S> {
    tree_size: u64,
    root: Hash,
    source: S,
}

impl<S: TileSource> TileHashReader<S> {
    /// A reader for the tree of `tree_size` leaves with the signed root `root`, reading tiles
    /// from `source` (pass a reference to share a source).
    pub fn new(tree_size: u64, root: Hash, source: S) -> Result<TileHashReader<S>, RangeError> {
        if tree_size > MAX_TREE_SIZE {
            return Err(RangeError::TreeTooLarge {
                tree_size,
                limit: MAX_TREE_SIZE,
            });
        }
        Ok(TileHashReader {
            tree_size,
            root,
            source,
        })
    }

    /// The size of the tree it reads.
    pub fn tree_size(&self) -> u64 {
        self.tree_size
    }

    /// The signed root it checks tiles against.
    pub fn root(&self) -> Hash {
        self.root
    }
}

impl<S: TileSource> HashReader for TileHashReader<S> {
    type Error = TileReadError<S::Error>;

    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, Self::Error> {
        let plan = tiles_for_nodes(nodes, self.tree_size)?;
        let checked = read_checked_tiles(self.tree_size, &self.root, &self.source, &plan)?;
        Ok(nodes
            .iter()
            .map(|&node| hash_in_checked_tiles(&checked, node, self.tree_size))
            .collect())
    }
}
