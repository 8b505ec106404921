//! Fuzzes tile decoding and the checking tile hash reader.
//!
//! The first part decodes arbitrary bytes as a tile. The second serves the honest tiles of a
//! 70,000-leaf log, except one tile chosen by the input whose bytes the input supplies, and
//! builds an inclusion proof through the reader: it must never panic, a proof it returns must
//! verify against the signed root, and a tile whose hashes differ from the honest ones must be
//! refused (a monitor relies on this to catch a rewritten tile).
#![no_main]

use std::borrow::Cow;
use std::cell::Cell;
use std::sync::OnceLock;

use cairn_spec::merkle::{inclusion_proof, verify_inclusion, CompactRange};
use cairn_spec::tiles::{
    decode_tile, encode_tile, tile_from_level_hashes, tiles_for_inclusion_proof, Tile,
    TileHashReader, TileNotFound, TileSource,
};
use cairn_spec::Hash;
use libfuzzer_sys::fuzz_target;

const LOG_SIZE: u64 = 70_000;

struct Log {
    leaves: Vec<Hash>,
    levels: Vec<Vec<Hash>>,
    roots: Vec<Hash>,
}

fn log() -> &'static Log {
    static LOG: OnceLock<Log> = OnceLock::new();
    LOG.get_or_init(|| {
        let leaves: Vec<Hash> = (0..LOG_SIZE)
            .map(|index| Hash::of_leaf(&index.to_be_bytes()))
            .collect();
        let mut levels = vec![Vec::new(); 3];
        let mut range = CompactRange::new();
        let mut roots = vec![range.root()];
        for leaf in &leaves {
            range
                .append_with(*leaf, |node, hash| {
                    if node.height() % 8 == 0 {
                        levels[usize::from(node.height() / 8)].push(*hash);
                    }
                })
                .expect("small log");
            roots.push(range.root());
        }
        Log {
            leaves,
            levels,
            roots,
        }
    })
}

struct OneTileReplaced<'a> {
    log: &'a Log,
    replaced: Tile,
    data: &'a [u8],
    served: Cell<bool>,
}

impl TileSource for OneTileReplaced<'_> {
    type Error = TileNotFound;
    fn read_tile(&self, tile: Tile) -> Result<Cow<'_, [u8]>, TileNotFound> {
        if tile == self.replaced {
            self.served.set(true);
            return Ok(Cow::Borrowed(self.data));
        }
        let level = &self.log.levels[usize::from(tile.level())];
        tile_from_level_hashes(tile, level)
            .map(Cow::Owned)
            .ok_or(TileNotFound { tile })
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, tile_bytes)) = data.split_first_chunk::<9>() else {
        return;
    };

    // Decoding: exact lengths, and decode then encode is the identity.
    let width = u16::from(head[0]) + 1;
    let tile = Tile::new(head[1] % 64, 0, width).expect("level and width in range");
    if let Ok(hashes) = decode_tile(tile, tile_bytes) {
        assert_eq!(hashes.len(), usize::from(width));
        assert_eq!(encode_tile(&hashes).expect("1 to 256 hashes"), tile_bytes);
    }

    // The reader with one tile of the proof replaced by the input.
    let log = log();
    let tree_size =
        1 + u64::from(u32::from_be_bytes([head[2], head[3], head[4], head[5]])) % LOG_SIZE;
    let leaf_index = u64::from(u16::from_be_bytes([head[6], head[7]])) * 2 % tree_size;
    let tiles = tiles_for_inclusion_proof(leaf_index, tree_size).expect("leaf in tree");
    let replaced = tiles[usize::from(head[8]) % tiles.len()];
    let honest = tile_from_level_hashes(replaced, &log.levels[usize::from(replaced.level())])
        .expect("tile of the log");
    let source = OneTileReplaced {
        log,
        replaced,
        data: tile_bytes,
        served: Cell::new(false),
    };
    let root = log.roots[tree_size as usize];
    let reader = TileHashReader::new(tree_size, root, &source).expect("small tree");
    match inclusion_proof(leaf_index, tree_size, &reader) {
        Ok(proof) => {
            let leaf = log.leaves[leaf_index as usize];
            assert_eq!(
                verify_inclusion(leaf_index, tree_size, &leaf, &proof, &root),
                Ok(())
            );
            assert!(
                !source.served.get()
                    || (tile_bytes.len() >= honest.len()
                        && tile_bytes[..honest.len()] == honest[..]),
                "a rewritten tile {replaced} was accepted"
            );
        }
        Err(_) => {}
    }
});
