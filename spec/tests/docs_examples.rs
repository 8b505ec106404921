//! The examples in `spec/docs/merkle.md` and `spec/docs/tiles.md` are what the code computes.

use cairn_spec::merkle::{
    consistency_proof, inclusion_proof, tree_root, CompactRange, NodeId, MAX_TREE_SIZE,
};
use cairn_spec::tiles::{tiles_for_inclusion_proof, tiles_of_tree, EntryBundle, Tile};
use cairn_spec::Hash;

const MERKLE_DOC: &str = include_str!("../docs/merkle.md");
const TILES_DOC: &str = include_str!("../docs/tiles.md");

fn assert_documented(doc: &str, text: &str) {
    assert!(doc.contains(text), "the doc page should say:\n{text}");
}

#[test]
fn merkle_doc_example_tree_of_a_b_c() {
    let leaves = [
        Hash::of_leaf(b"a"),
        Hash::of_leaf(b"b"),
        Hash::of_leaf(b"c"),
    ];
    let mut range = CompactRange::new();
    let mut stored = Vec::new();
    range
        .extend_with(&leaves, |_, hash| stored.push(*hash))
        .expect("three leaves");
    let pair = Hash::of_node(&leaves[0], &leaves[1]);
    let root = Hash::of_node(&pair, &leaves[2]);
    assert_eq!(range.root(), root);
    assert_eq!(tree_root(3, &stored), Ok(root));
    assert_eq!(stored, vec![leaves[0], leaves[1], pair, leaves[2]]);
    assert_eq!(
        inclusion_proof(1, 3, &stored),
        Ok(vec![leaves[0], leaves[2]])
    );
    assert_eq!(consistency_proof(2, 3, &stored), Ok(vec![leaves[2]]));

    for (name, hash) in [
        ("leaf hash a  = ", leaves[0]),
        ("leaf hash b  = ", leaves[1]),
        ("leaf hash c  = ", leaves[2]),
        ("root (a, b)  = ", pair),
        ("root         = ", root),
    ] {
        assert_documented(MERKLE_DOC, &format!("{name}{}", hash.to_hex()));
    }
    assert_documented(
        MERKLE_DOC,
        "inclusion proof of b (index 1, size 3)  = [leaf hash a, leaf hash c]",
    );
    assert_documented(
        MERKLE_DOC,
        "consistency proof from 2 to 3           = [leaf hash c]",
    );
    assert_documented(
        MERKLE_DOC,
        "stored hashes, in order                 = leaf a, leaf b, root (a, b), leaf c",
    );
    assert_eq!(MAX_TREE_SIZE, 1 << 62);
    assert_documented(MERKLE_DOC, "| `MAX_TREE_SIZE` | 2^62 leaves |");
    assert_eq!(NodeId::new(62, 1), None);
}

#[test]
fn tiles_doc_example_paths() {
    let examples = [
        (
            "level 0, index 1234067, full        ",
            Tile::new(0, 1_234_067, 256).expect("valid").path(),
        ),
        (
            "level 2, index 5, width 17          ",
            Tile::new(2, 5, 17).expect("valid").path(),
        ),
        (
            "entry bundle 1000, width 3          ",
            EntryBundle::new(1000, 3).expect("valid").path(),
        ),
    ];
    for (label, path) in examples {
        assert_documented(TILES_DOC, &format!("{label}{path}"));
    }
}

#[test]
fn tiles_doc_example_tree_of_70000_leaves() {
    let tiles: Vec<Tile> = tiles_of_tree(70_000).collect();
    let full_level_0 = tiles
        .iter()
        .filter(|tile| tile.level() == 0 && tile.is_full())
        .count();
    assert_eq!(full_level_0, 273);
    assert_documented(TILES_DOC, "273 full level-0 tiles");
    let rest: Vec<String> = tiles
        .iter()
        .filter(|tile| !(tile.level() == 0 && tile.is_full()))
        .map(|tile| tile.path())
        .collect();
    assert_documented(TILES_DOC, &format!("```text\n{}\n```", rest.join("\n")));

    let read_order: Vec<String> = tiles_for_inclusion_proof(0, 70_000)
        .expect("leaf 0 is in the tree")
        .iter()
        .map(|tile| tile.path())
        .collect();
    assert_eq!(
        read_order,
        [
            "tile/0/273.p/112",
            "tile/1/001.p/17",
            "tile/2/000.p/1",
            "tile/1/000",
            "tile/0/000"
        ]
    );
    assert_documented(
        TILES_DOC,
        "then `tile/1/000` (checked against `tile/2/000.p/1`)",
    );
    assert_documented(TILES_DOC, "`tile/0/000` (checked against `tile/1/000`)");
}
