//! The static log API of C2SP tlog-tiles: the tree as tiles of 256 hashes, the entries as
//! bundles of 256 entries, and the paths both are served at.
//!
//! Instead of answering proof requests, a tiled log publishes its tree as immutable files. A
//! tile at level `L` holds 256 consecutive hashes of perfect subtrees of height `8·L`: leaf
//! hashes at level 0, roots of full level-0 tiles at level 1, and so on, so that a tile is the
//! bottom row of a subtree of height 8 and the rows inside it are recomputed by hashing. The
//! rightmost tiles of a tree are partial (`.p/<W>`, 1 to 255 hashes) until they fill. Entry
//! bundles hold the entries themselves, each behind a big-endian `uint16` length.
//!
//! - [`path`](Tile::path) / [`TilePath::parse`]: coordinates and canonical paths.
//! - [`encode_tile`], [`decode_tile`], [`encode_entry_bundle`], [`decode_entry_bundle`]: the
//!   bytes of tiles and bundles, decoded with exact lengths and bounded counts.
//! - [`tiles_of_tree`], [`partial_tiles`], [`changed_tiles`], and [`tiles_for_root`],
//!   [`tiles_for_inclusion_proof`], [`tiles_for_consistency_proof`]: which tiles a tree is,
//!   which ones a write changes, which ones a client must fetch.
//! - [`TileHashReader`]: a [`HashReader`](crate::merkle::HashReader) over fetched tiles that
//!   checks every tile against the signed root, so that
//!   [`merkle::inclusion_proof`](crate::merkle::inclusion_proof) and friends work from tiles.
//! - [`TileAppender`]: the integrator's side, the tiles (with data) each batch of leaves
//!   changes, and a restart from the log's own partial tiles.
//!
//! Where Go's `golang.org/x/mod/sumdb/tlog` differs (tile height in the path, `data` tiles),
//! Cairn follows the C2SP spec; `spec/docs/tiles.md` lists the differences.

mod appender;
mod data;
mod path;
mod reader;
mod tree;

pub use appender::{tile_from_level_hashes, TileAppender, TileUpdate};
pub use data::{
    check_entries_against_tile, decode_entry_bundle, decode_tile, encode_entry_bundle, encode_tile,
    EntryBundleError, TileDataError, FULL_TILE_BYTES, MAX_ENTRY_LEN,
};
pub use path::{
    EntryBundle, Tile, TileError, TilePath, TilePathError, MAX_TILE_LEVEL, MAX_TILE_PATH_LEN,
    TILE_HEIGHT, TILE_WIDTH,
};
pub use reader::{TileHashReader, TileNotFound, TileReadError, TileSource};
pub use tree::{
    changed_entry_bundles, changed_tiles, entry_bundles_of_tree, partial_tiles, tile_width_in_tree,
    tiles_for_consistency_proof, tiles_for_inclusion_proof, tiles_for_nodes, tiles_for_root,
    tiles_of_tree, TilePlanError,
};

#[cfg(test)]
mod tests;
