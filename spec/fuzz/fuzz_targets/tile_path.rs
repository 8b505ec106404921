//! Fuzzes the tile path parser: no input may panic, whatever parses must format back to exactly
//! the same text (one spelling per tile), and every tile's path must parse back to the tile.
#![no_main]

use cairn_spec::tiles::{EntryBundle, Tile, TilePath};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match TilePath::parse(text) {
            Ok(path) => {
                assert_eq!(
                    path.to_string(),
                    text,
                    "parse then format must be the identity"
                );
                match path {
                    TilePath::Tile(tile) => assert_eq!(Tile::parse(text), Ok(tile)),
                    TilePath::EntryBundle(bundle) => {
                        assert_eq!(EntryBundle::parse(text), Ok(bundle))
                    }
                }
            }
            Err(_) => {
                assert!(Tile::parse(text).is_err());
                assert!(EntryBundle::parse(text).is_err());
            }
        }
    }
    // The same bytes as coordinates: formatting then parsing is the identity.
    if let Some((head, rest)) = data.split_first_chunk::<11>() {
        let level = head[0] % 64;
        let index = u64::from_be_bytes(head[1..9].try_into().expect("eight bytes"));
        let width = u16::from_be_bytes([head[9], head[10]]) % 256 + 1;
        let tile = Tile::new(level, index, width).expect("level and width are in range");
        assert_eq!(TilePath::parse(&tile.path()), Ok(TilePath::Tile(tile)));
        let bundle = EntryBundle::new(index, width).expect("width is in range");
        assert_eq!(
            TilePath::parse(&bundle.path()),
            Ok(TilePath::EntryBundle(bundle))
        );
        let _ = rest;
    }
});
