use super::*;

fn tile(level: u8, index: u64, width: u16) -> Tile {
    Tile::new(level, index, width).expect("valid test tile")
}

fn bundle(index: u64, width: u16) -> EntryBundle {
    EntryBundle::new(index, width).expect("valid test bundle")
}

// C2SP tlog-tiles, "Merkle Tree": "index 1234067 will be encoded as x001/x234/067".
#[test]
fn c2sp_example_index_1234067() {
    assert_eq!(tile(0, 1_234_067, 256).path(), "tile/0/x001/x234/067");
    assert_eq!(
        Tile::parse("tile/0/x001/x234/067"),
        Ok(tile(0, 1_234_067, 256))
    );
    assert_eq!(
        EntryBundle::parse("tile/entries/x001/x234/067.p/5"),
        Ok(bundle(1_234_067, 5))
    );
}

// Go's golang.org/x/mod/sumdb/tlog tlog_test.go, tilePaths. Go's paths carry the tile
// height as their first element (tile/H/L/N) and name entry tiles "data"; C2SP paths have
// no height (it is always 8) and say "entries". The vectors are adapted by dropping the
// height element; Go's full widths 2^H become 256 or the .p/W form.
#[test]
fn go_tlog_tile_path_vectors_without_the_height_element() {
    let valid = [
        ("tile/0/001", TilePath::Tile(tile(0, 1, 256))),
        ("tile/0/001.p/5", TilePath::Tile(tile(0, 1, 5))),
        (
            "tile/5/x123/x456/078",
            TilePath::Tile(tile(5, 123_456_078, 256)),
        ),
        (
            "tile/5/x123/x456/078.p/2",
            TilePath::Tile(tile(5, 123_456_078, 2)),
        ),
        (
            "tile/0/x003/x057/500",
            TilePath::Tile(tile(0, 3_057_500, 256)),
        ),
        (
            "tile/entries/x003/x057/500",
            TilePath::EntryBundle(bundle(3_057_500, 256)),
        ),
    ];
    for (path, expected) in valid {
        assert_eq!(TilePath::parse(path), Ok(expected), "{path}");
        assert_eq!(expected.to_string(), path);
    }
    // Go's invalid vectors: index groups without "x", and a negative level.
    assert!(TilePath::parse("tile/5/123/456/078").is_err());
    assert!(TilePath::parse("tile/-1/123/456/078").is_err());
}

#[test]
fn formats_indexes_in_groups_of_three_digits() {
    let cases = [
        (0, "tile/0/000"),
        (999, "tile/0/999"),
        (1000, "tile/0/x001/000"),
        (123_456_789, "tile/0/x123/x456/789"),
        (u64::MAX, "tile/0/x018/x446/x744/x073/x709/x551/615"),
    ];
    for (index, path) in cases {
        assert_eq!(tile(0, index, 256).path(), path);
        assert_eq!(Tile::parse(path), Ok(tile(0, index, 256)));
    }
    assert_eq!(tile(63, 7, 255).path(), "tile/63/007.p/255");
    assert_eq!(bundle(7, 1).path(), "tile/entries/007.p/1");
}

#[test]
fn rejects_non_canonical_and_malformed_paths() {
    let rejected = [
        "",
        "tile",
        "tile/",
        "tile/0",
        "tile/0/",
        "/tile/0/001",
        "tiles/0/001",
        "tile/00/001",
        "tile/01/001",
        "tile/+1/001",
        "tile/64/001",
        "tile/256/001",
        "tile/x/001",
        "tile/0/1",
        "tile/0/01",
        "tile/0/0001",
        "tile/0/x001",
        "tile/0/001/",
        "tile/0//001",
        "tile/0/x000/001",
        "tile/0/x000/x000/001",
        "tile/0/X001/000",
        "tile/0/x01/000",
        "tile/0/x0001/000",
        "tile/0/001.p",
        "tile/0/001.p/",
        "tile/0/001.p/0",
        "tile/0/001.p/05",
        "tile/0/001.p/256",
        "tile/0/001.p/+5",
        "tile/0/001.p/5/",
        "tile/0/001.p/5.p/5",
        "tile/0/x001.p/005",
        "tile/0/x001.p/5",
        "tile/0/.p/5",
        "tile/0/00a",
        "tile/0/x018/x446/x744/x073/x709/x551/616",
        "tile/0/x001/x018/x446/x744/x073/x709/x551/615",
        "tile/entries/1",
        "tile/entries/001.p/256",
        "tile/entries",
        "tile/data/001",
        "tile/8/0/001",
        "tile/0/١٢٣",
    ];
    for path in rejected {
        assert!(TilePath::parse(path).is_err(), "accepted {path:?}");
    }
    assert_eq!(
        TilePath::parse(&format!("tile/0/{}", "x001/".repeat(20))),
        Err(TilePathError::TooLong { length: 107 })
    );
    assert_eq!(
        TilePath::parse("tile/0/x000/001"),
        Err(TilePathError::LeadingZeroGroup)
    );
}

#[test]
fn kind_specific_parsers_refuse_the_other_kind() {
    assert_eq!(
        Tile::parse("tile/entries/001"),
        Err(TilePathError::NotAHashTile)
    );
    assert_eq!(
        EntryBundle::parse("tile/0/001"),
        Err(TilePathError::NotAnEntryBundle)
    );
    assert_eq!("tile/1/002.p/3".parse::<Tile>(), Ok(tile(1, 2, 3)));
    assert_eq!(
        "tile/entries/002".parse::<EntryBundle>(),
        Ok(bundle(2, 256))
    );
    assert_eq!(
        "tile/entries/002".parse::<TilePath>(),
        Ok(TilePath::EntryBundle(bundle(2, 256)))
    );
}

#[test]
fn coordinates_outside_the_spec_cannot_be_built() {
    assert_eq!(
        Tile::new(64, 0, 256),
        Err(TileError::LevelTooHigh { level: 64 })
    );
    assert_eq!(Tile::new(0, 0, 0), Err(TileError::BadWidth { width: 0 }));
    assert_eq!(
        Tile::new(0, 0, 257),
        Err(TileError::BadWidth { width: 257 })
    );
    assert_eq!(
        EntryBundle::new(0, 0),
        Err(TileError::BadWidth { width: 0 })
    );
    assert!(Tile::new(63, u64::MAX, 1).is_ok());
    assert_eq!(tile(1, u64::MAX, 256).first_hash_index(), None);
    assert_eq!(tile(1, 3, 256).first_hash_index(), Some(768));
    assert_eq!(tile(0, 3, 9).entry_bundle(), Some(bundle(3, 9)));
    assert_eq!(tile(1, 3, 9).entry_bundle(), None);
    assert_eq!(bundle(3, 9).leaf_tile(), tile(0, 3, 9));
}
