//! Tests of the tiles of whole trees: which tiles exist and change, proofs built through the
//! tile hash reader, tampering detection, and the integrator's appender.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::sync::OnceLock;

use proptest::prelude::*;

use super::tree::changed_tiles_of_height;
use super::*;
use crate::hash::Hash;
use crate::merkle::{
    consistency_proof, inclusion_proof, tree_root, verify_consistency, verify_inclusion,
    CompactRange, NodeId,
};

fn tile(level: u8, index: u64, width: u16) -> Tile {
    Tile::new(level, index, width).expect("valid test tile")
}

/// Every hash a tile can hold, per level, for a log of [`UNIVERSE`] leaves: the source of the
/// tiles of any smaller tree, as a log that stores hashes per level would have them.
struct Universe {
    leaves: Vec<Hash>,
    levels: Vec<Vec<Hash>>,
    /// `roots[n]` is the root of the first `n` leaves.
    roots: Vec<Hash>,
}

/// Large enough for three tile levels (level 2 starts at 65,536 leaves).
const UNIVERSE: usize = 70_000 + 300;

fn universe() -> &'static Universe {
    static CELL: OnceLock<Universe> = OnceLock::new();
    CELL.get_or_init(|| {
        let leaves = crate::merkle::reference::sample_leaves(UNIVERSE);
        let mut levels: Vec<Vec<Hash>> = vec![Vec::new(); 3];
        let mut range = CompactRange::new();
        let mut roots = vec![range.root()];
        for leaf in &leaves {
            range
                .append_with(*leaf, |node, hash| {
                    if node.height() % 8 == 0 {
                        levels[usize::from(node.height() / 8)].push(*hash);
                    }
                })
                .expect("small tree");
            roots.push(range.root());
        }
        Universe {
            leaves,
            levels,
            roots,
        }
    })
}

/// Serves the tiles of the tree of `tree_size` leaves from the universe's level hashes, and
/// records what was asked for.
struct LevelSource<'a> {
    universe: &'a Universe,
    tree_size: u64,
    requests: RefCell<Vec<Tile>>,
    /// Tiles to serve with one bit changed.
    tampered: Option<Tile>,
}

impl<'a> LevelSource<'a> {
    fn new(universe: &'a Universe, tree_size: u64) -> LevelSource<'a> {
        LevelSource {
            universe,
            tree_size,
            requests: RefCell::new(Vec::new()),
            tampered: None,
        }
    }
}

impl TileSource for LevelSource<'_> {
    type Error = TileNotFound;
    fn read_tile(&self, tile: Tile) -> Result<Cow<'_, [u8]>, TileNotFound> {
        self.requests.borrow_mut().push(tile);
        let in_tree = Tile::in_tree(tile.level(), tile.index(), self.tree_size);
        if in_tree.is_none_or(|in_tree| in_tree.width() < tile.width()) {
            return Err(TileNotFound { tile });
        }
        let level = self
            .universe
            .levels
            .get(usize::from(tile.level()))
            .ok_or(TileNotFound { tile })?;
        let mut data = tile_from_level_hashes(tile, level).ok_or(TileNotFound { tile })?;
        if self.tampered == Some(tile) {
            data[17] ^= 0x40;
        }
        Ok(Cow::Owned(data))
    }
}

// C2SP tlog-tiles, "Partial Tiles": "a tree of size 70,000 will be represented by 273 full
// level 0 tiles, one partial level 0 tile of width 112, one full level 1 tile, one partial
// level 1 tile of width 17, and one partial level 2 tile of width 1".
#[test]
fn c2sp_example_tree_of_70000_leaves() {
    let tiles: Vec<Tile> = tiles_of_tree(70_000).collect();
    let full_level_0 = tiles
        .iter()
        .filter(|t| t.level() == 0 && t.is_full())
        .count();
    assert_eq!(full_level_0, 273);
    let rest: Vec<Tile> = tiles
        .iter()
        .copied()
        .filter(|t| !(t.level() == 0 && t.is_full()))
        .collect();
    assert_eq!(
        rest,
        vec![
            tile(0, 273, 112),
            tile(1, 0, 256),
            tile(1, 1, 17),
            tile(2, 0, 1)
        ]
    );
    assert_eq!(
        partial_tiles(70_000),
        vec![tile(0, 273, 112), tile(1, 1, 17), tile(2, 0, 1)]
    );
    assert_eq!(entry_bundles_of_tree(70_000).count(), 274);
}

// C2SP tlog-tiles, "Partial Tiles": "a tree of size 256 will be represented by a full level 0
// tile and a partial level 1 tile of width 1".
#[test]
fn c2sp_example_tree_of_256_leaves() {
    assert_eq!(
        tiles_of_tree(256).collect::<Vec<_>>(),
        vec![tile(0, 0, 256), tile(1, 0, 1)]
    );
    assert_eq!(partial_tiles(256), vec![tile(1, 0, 1)]);
}

// Go's golang.org/x/mod/sumdb/tlog tile_test.go, TestNewTilesForSize: how many tiles of height
// 10 NewTiles(10, old, new) returns. Cairn's tiles have height 8; the same arithmetic, kept
// general in the height, is checked with Go's height.
#[test]
fn go_new_tiles_for_size_vectors_at_height_10() {
    let vectors = [
        (1, 1, 0),
        (100, 101, 1),
        (1023, 1025, 3),
        (1024, 1030, 1),
        (1030, 2000, 1),
        (1030, 10000, 10),
        (49_516_517, 49_516_586, 3),
    ];
    for (old_size, new_size, count) in vectors {
        assert_eq!(
            changed_tiles_of_height(10, old_size, new_size).len(),
            count,
            "{old_size} -> {new_size}"
        );
    }
}

#[test]
fn changed_tiles_are_the_tiles_that_are_new_or_wider() {
    for old_size in 0..=600u64 {
        for new_size in [old_size, old_size + 1, old_size + 7, old_size + 255, 1000] {
            if new_size < old_size {
                continue;
            }
            let before: BTreeSet<Tile> = tiles_of_tree(old_size).collect();
            let expected: Vec<Tile> = tiles_of_tree(new_size)
                .filter(|tile| !before.contains(tile))
                .collect();
            let mut changed = changed_tiles(old_size, new_size);
            changed.sort();
            let mut expected_sorted = expected.clone();
            expected_sorted.sort();
            assert_eq!(changed, expected_sorted, "{old_size} -> {new_size}");
            assert_eq!(
                changed_entry_bundles(old_size, new_size).len(),
                expected.iter().filter(|tile| tile.level() == 0).count()
            );
        }
    }
    assert!(changed_tiles(10, 5).is_empty());
    assert_eq!(
        changed_tiles(65_535, 65_536),
        vec![tile(0, 255, 256), tile(1, 0, 256), tile(2, 0, 1)]
    );
}

#[test]
fn tile_width_in_tree_and_parents() {
    assert_eq!(tile_width_in_tree(0, 0, 0), None);
    assert_eq!(tile_width_in_tree(0, 0, 5), Some(5));
    assert_eq!(tile_width_in_tree(0, 1, 300), Some(44));
    assert_eq!(tile_width_in_tree(0, 2, 300), None);
    assert_eq!(tile_width_in_tree(1, 0, 300), Some(1));
    assert_eq!(tile_width_in_tree(63, 0, u64::MAX), None);
    assert_eq!(tile_width_in_tree(0, u64::MAX, u64::MAX), None);
    assert_eq!(
        tile(0, 1, 256).parent_in_tree(70_000),
        Some((tile(1, 0, 256), 1))
    );
    assert_eq!(
        tile(0, 272, 256).parent_in_tree(70_000),
        Some((tile(1, 1, 17), 16))
    );
    assert_eq!(tile(0, 273, 112).parent_in_tree(70_000), None);
    assert_eq!(tile(0, 273, 256).parent_in_tree(70_000), None);
    assert_eq!(Tile::in_tree(64, 0, 70_000), None);
}

#[test]
fn tiles_for_a_proof_list_parents_before_children() {
    // Leaf 0 of 70,000: its level-0 tile, authenticated by the full level-1 tile, which the
    // partial level-2 tile authenticates.
    assert_eq!(
        tiles_for_inclusion_proof(0, 70_000),
        Ok(vec![
            tile(0, 273, 112),
            tile(1, 1, 17),
            tile(2, 0, 1),
            tile(1, 0, 256),
            tile(0, 0, 256)
        ])
    );
    assert_eq!(
        tiles_for_root(70_000),
        Ok(vec![tile(0, 273, 112), tile(1, 1, 17), tile(2, 0, 1)])
    );
    assert_eq!(tiles_for_root(0), Ok(vec![]));
    assert!(tiles_for_inclusion_proof(5, 5).is_err());
    assert!(tiles_for_consistency_proof(6, 5).is_err());
    let outside = NodeId::new(1, 2).expect("small");
    assert_eq!(
        tiles_for_nodes(&[outside], 5),
        Err(TilePlanError::NodeOutsideTree {
            node: outside,
            tree_size: 5
        })
    );
}

/// Everything a tile hash reader of a tree of `tree_size` leaves must answer, checked against
/// the reference tree and against the tiles planned.
fn check_tree_through_tiles(tree_size: u64, leaf_indexes: &[u64], old_sizes: &[u64]) {
    let universe = universe();
    let root = universe.roots[tree_size as usize];
    let source = LevelSource::new(universe, tree_size);
    let reader = TileHashReader::new(tree_size, root, &source).expect("small tree");
    assert_eq!(tree_root(tree_size, &reader), Ok(root), "size {tree_size}");
    for &leaf_index in leaf_indexes {
        source.requests.borrow_mut().clear();
        let proof = inclusion_proof(leaf_index, tree_size, &reader).expect("leaf in tree");
        let leaf = universe.leaves[leaf_index as usize];
        assert_eq!(
            verify_inclusion(leaf_index, tree_size, &leaf, &proof, &root),
            Ok(()),
            "leaf {leaf_index} of {tree_size}"
        );
        // Every tile fetched was planned; the plan may also name the leaf's own tile.
        let planned: BTreeSet<Tile> = tiles_for_inclusion_proof(leaf_index, tree_size)
            .expect("leaf in tree")
            .into_iter()
            .collect();
        let fetched: BTreeSet<Tile> = source.requests.borrow().iter().copied().collect();
        assert!(fetched.is_subset(&planned), "{fetched:?} vs {planned:?}");
        let leaf_node = NodeId::leaf(leaf_index).expect("small");
        assert_eq!(
            crate::merkle::HashReader::read_hashes(&reader, &[leaf_node]),
            Ok(vec![leaf])
        );
    }
    for &old_size in old_sizes {
        source.requests.borrow_mut().clear();
        let proof = consistency_proof(old_size, tree_size, &reader).expect("sizes in order");
        let old_root = universe.roots[old_size as usize];
        assert_eq!(
            verify_consistency(old_size, tree_size, &old_root, &root, &proof),
            Ok(()),
            "{old_size} -> {tree_size}"
        );
        let planned = tiles_for_consistency_proof(old_size, tree_size).expect("ordered");
        if old_size == 0 || old_size == tree_size {
            assert!(
                source.requests.borrow().is_empty(),
                "empty proofs read nothing"
            );
        } else {
            assert_eq!(
                *source.requests.borrow(),
                planned,
                "{old_size} -> {tree_size}"
            );
        }
    }
}

#[test]
fn proofs_through_tiles_verify_for_every_small_tree() {
    for tree_size in 1..=600u64 {
        let leaves: Vec<u64> = (0..tree_size).step_by(23).chain([tree_size - 1]).collect();
        let olds: Vec<u64> = (0..=tree_size).step_by(19).chain([tree_size]).collect();
        check_tree_through_tiles(tree_size, &leaves, &olds);
    }
}

#[test]
fn proofs_through_tiles_verify_across_three_levels() {
    for tree_size in [65_535u64, 65_536, 65_537, 65_792, 70_000, UNIVERSE as u64] {
        let leaves = [0, 1, 255, 256, 65_535, tree_size - 1];
        let olds = [1, 255, 256, 257, 65_535, 65_536, tree_size - 1, tree_size];
        let leaves: Vec<u64> = leaves.into_iter().filter(|&i| i < tree_size).collect();
        let olds: Vec<u64> = olds.into_iter().filter(|&o| o <= tree_size).collect();
        check_tree_through_tiles(tree_size, &leaves, &olds);
    }
}

#[test]
fn a_rewritten_tile_is_detected_and_named() {
    let universe = universe();
    let tree_size = 70_000;
    let root = universe.roots[tree_size as usize];
    let leaf_index = 300;
    let tiles = tiles_for_inclusion_proof(leaf_index, tree_size).expect("leaf in tree");
    for rewritten in tiles {
        let mut source = LevelSource::new(universe, tree_size);
        source.tampered = Some(rewritten);
        let reader = TileHashReader::new(tree_size, root, &source).expect("small tree");
        let error = inclusion_proof(leaf_index, tree_size, &reader)
            .expect_err("a rewritten tile must not give a proof");
        match error {
            crate::merkle::TreeError::Read(TileReadError::TileMismatch { tile, .. }) => {
                assert_eq!(tile, rewritten);
            }
            crate::merkle::TreeError::Read(TileReadError::RootMismatch { tiles, .. }) => {
                assert!(!rewritten.is_full());
                assert!(tiles.contains(&rewritten));
            }
            other => panic!("unexpected error for {rewritten}: {other}"),
        }
    }
    // The wrong root: the partial tiles are blamed.
    let source = LevelSource::new(universe, tree_size);
    let reader =
        TileHashReader::new(tree_size, universe.roots[69_999], &source).expect("small tree");
    assert!(matches!(
        tree_root(tree_size, &reader),
        Err(crate::merkle::TreeError::Read(
            TileReadError::RootMismatch { .. }
        ))
    ));
}

#[test]
fn missing_and_malformed_tiles_are_errors() {
    let universe = universe();
    let tree_size = 1000u64;
    let root = universe.roots[tree_size as usize];
    let mut tiles: HashMap<Tile, Vec<u8>> = HashMap::new();
    let reader = TileHashReader::new(tree_size, root, &tiles).expect("small tree");
    assert!(matches!(
        tree_root(tree_size, &reader),
        Err(crate::merkle::TreeError::Read(TileReadError::Source {
            source: TileNotFound { .. },
            ..
        }))
    ));
    for tile in tiles_of_tree(tree_size) {
        let level = &universe.levels[usize::from(tile.level())];
        let data = tile_from_level_hashes(tile, level).expect("in universe");
        tiles.insert(tile, data);
    }
    let reader = TileHashReader::new(tree_size, root, &tiles).expect("small tree");
    assert_eq!(tree_root(tree_size, &reader), Ok(root));

    // A partial tile that is gone is served by its full version (tree of 1000 within 1024).
    let partial = tile(0, 3, 232);
    let full_data = tile_from_level_hashes(partial.to_full(), &universe.levels[0]).expect("ok");
    let mut fallback = tiles.clone();
    fallback.remove(&partial);
    fallback.insert(partial.to_full(), full_data);
    let reader = TileHashReader::new(tree_size, root, &fallback).expect("small tree");
    let proof = inclusion_proof(999, tree_size, &reader).expect("full tile stands in");
    assert_eq!(
        verify_inclusion(999, tree_size, &universe.leaves[999], &proof, &root),
        Ok(())
    );

    // Data of the wrong length.
    let mut short = tiles.clone();
    short.insert(partial, vec![0; 31 * 32 + 1]);
    let reader = TileHashReader::new(tree_size, root, &short).expect("small tree");
    assert!(matches!(
        tree_root(tree_size, &reader),
        Err(crate::merkle::TreeError::Read(TileReadError::WrongLength {
            expected: 7424,
            found: 993,
            ..
        }))
    ));
    assert!(TileHashReader::new(u64::MAX, root, &tiles).is_err());
}

#[test]
fn appender_writes_exactly_the_changed_tiles_with_their_data() {
    let universe = universe();
    let mut appender = TileAppender::new();
    let mut written: HashMap<Tile, Vec<u8>> = HashMap::new();
    let batches = [1usize, 1, 3, 250, 1, 255, 256, 600, 65_000, 1, 3900];
    let mut size = 0usize;
    for batch in batches {
        let updates = appender
            .append(&universe.leaves[size..size + batch])
            .expect("small tree");
        let tiles: Vec<Tile> = updates.iter().map(|update| update.tile).collect();
        assert_eq!(tiles, changed_tiles(size as u64, (size + batch) as u64));
        for update in updates {
            let level = &universe.levels[usize::from(update.tile.level())];
            assert_eq!(
                Some(&update.data),
                tile_from_level_hashes(update.tile, level).as_ref(),
                "{}",
                update.tile
            );
            written.insert(update.tile, update.data);
        }
        size += batch;
        assert_eq!(appender.tree_size(), size as u64);
        assert_eq!(appender.root(), universe.roots[size]);

        // A restart from what was written continues identically.
        let restored = TileAppender::restore(size as u64, &universe.roots[size], &written)
            .expect("the log's own tiles");
        assert_eq!(restored, appender);
    }
}

#[test]
fn appender_refuses_to_restore_from_tiles_of_another_root() {
    let universe = universe();
    let mut appender = TileAppender::new();
    let mut written: HashMap<Tile, Vec<u8>> = HashMap::new();
    for update in appender.append(&universe.leaves[..700]).expect("small") {
        written.insert(update.tile, update.data);
    }
    assert!(matches!(
        TileAppender::restore(700, &universe.roots[699], &written),
        Err(TileReadError::RootMismatch { .. })
    ));
    assert!(TileAppender::restore(701, &universe.roots[701], &written).is_err());
    assert_eq!(
        TileAppender::restore(0, &Hash::empty_tree(), &written),
        Ok(TileAppender::new())
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn proofs_built_through_the_tile_reader_verify(
        tree_size in 1..=UNIVERSE as u64,
        leaf_seeds in proptest::collection::vec(any::<u64>(), 4),
        old_seeds in proptest::collection::vec(any::<u64>(), 4),
    ) {
        let leaves: Vec<u64> = leaf_seeds.iter().map(|seed| seed % tree_size).collect();
        let olds: Vec<u64> = old_seeds.iter().map(|seed| seed % (tree_size + 1)).collect();
        check_tree_through_tiles(tree_size, &leaves, &olds);
    }

    #[test]
    fn restoring_the_appender_anywhere_then_appending_equals_appending_from_the_start(
        split in 0..=UNIVERSE as u64 - 1000,
        batch in 1..1000usize,
    ) {
        let universe = universe();
        let split_at = split as usize;
        let source = LevelSource::new(universe, split);
        let mut restored = TileAppender::restore(split, &universe.roots[split_at], &source)
            .expect("tiles of the universe");
        let updates = restored
            .append(&universe.leaves[split_at..split_at + batch])
            .expect("small tree");
        prop_assert_eq!(restored.root(), universe.roots[split_at + batch]);
        let tiles: Vec<Tile> = updates.iter().map(|update| update.tile).collect();
        prop_assert_eq!(tiles, changed_tiles(split, split + batch as u64));
    }
}
