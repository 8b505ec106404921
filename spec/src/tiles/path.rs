//! Tile and entry-bundle coordinates and their paths (C2SP tlog-tiles, "Merkle Tree" and "Log
//! entries").
//!
//! ```text
//! tile/<L>/<N>[.p/<W>]         hashes: level L, index N, partial width W
//! tile/entries/<N>[.p/<W>]     entry bundle N, partial width W
//! ```
//!
//! `<L>` is decimal 0–63 without leading zeros. `<N>` is written in groups of three digits, all
//! but the last prefixed with `x` (1234067 → `x001/x234/067`), with no leading all-zero group.
//! `.p/<W>` is present only for partial tiles, `<W>` decimal 1–255 without leading zeros.
//! Parsing accepts exactly the canonical form: every path has one spelling, so a cache or a
//! file system never holds two copies of one tile.

use std::fmt;

/// Tile height: each tile spans 8 levels of the tree (C2SP tlog-tiles).
pub const TILE_HEIGHT: u32 = 8;

/// Hashes in a full tile, and entries in a full bundle: 2^[`TILE_HEIGHT`].
pub const TILE_WIDTH: u16 = 256;

/// The highest level a tile path may name (C2SP tlog-tiles: "between 0 and 63").
pub const MAX_TILE_LEVEL: u8 = 63;

/// The longest canonical path: `tile/entries/` (13), seven groups for a `u64` index (27), and
/// `.p/255` (6) is 46 bytes. Anything longer is refused before it is looked at.
pub const MAX_TILE_PATH_LEN: usize = 64;

/// The coordinates of a tile of hashes: its level, its index within the level, and how many
/// hashes it holds (256 for a full tile, 1–255 for a partial one).
///
/// The tile at level `L` and index `N` holds the hashes of the perfect subtrees of height `8·L`
/// with indices `256·N` to `256·N + width − 1`: leaf hashes at level 0, roots of full level-0
/// tiles at level 1, and so on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    level: u8,
    index: u64,
    width: u16,
}

/// The coordinates of an entry bundle: the entries whose leaf hashes the level-0 tile with the
/// same index and width holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EntryBundle {
    index: u64,
    width: u16,
}

/// Anything a tile path can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TilePath {
    /// `tile/<L>/<N>[.p/<W>]`
    Tile(Tile),
    /// `tile/entries/<N>[.p/<W>]`
    EntryBundle(EntryBundle),
}

/// Coordinates that no tile can have.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    /// The level is over [`MAX_TILE_LEVEL`].
    #[error("tile level must be at most {MAX_TILE_LEVEL}, found {level}")]
    LevelTooHigh {
        /// The level given.
        level: u8,
    },
    /// The width is 0 or over 256.
    #[error("tile width must be 1 to {TILE_WIDTH}, found {width}")]
    BadWidth {
        /// The width given.
        width: u16,
    },
}

fn check_width(width: u16) -> Result<(), TileError> {
    if width == 0 || width > TILE_WIDTH {
        return Err(TileError::BadWidth { width });
    }
    Ok(())
}

impl Tile {
    /// The tile at `level` and `index` holding `width` hashes.
    pub fn new(level: u8, index: u64, width: u16) -> Result<Tile, TileError> {
        if level > MAX_TILE_LEVEL {
            return Err(TileError::LevelTooHigh { level });
        }
        check_width(width)?;
        Ok(Tile {
            level,
            index,
            width,
        })
    }

    /// Builds a tile the caller has already proven valid.
    pub(crate) fn inside_tree(level: u8, index: u64, width: u16) -> Tile {
        debug_assert!(Tile::new(level, index, width).is_ok());
        Tile {
            level,
            index,
            width,
        }
    }

    /// The level: the hashes it holds are of perfect subtrees of height `8 · level`.
    pub fn level(self) -> u8 {
        self.level
    }

    /// The index within its level.
    pub fn index(self) -> u64 {
        self.index
    }

    /// How many hashes it holds.
    pub fn width(self) -> u16 {
        self.width
    }

    /// Whether it holds all 256 hashes. A full tile never changes again.
    pub fn is_full(self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The same tile with all 256 hashes.
    pub fn to_full(self) -> Tile {
        Tile {
            width: TILE_WIDTH,
            ..self
        }
    }

    /// The tree height of the hashes it holds: `8 · level`.
    pub fn hash_height(self) -> u32 {
        TILE_HEIGHT * u32::from(self.level)
    }

    /// The index, among the perfect subtrees of height `8 · level`, of its first hash, or `None`
    /// if that does not fit a `u64` (no such tile is in any tree).
    pub fn first_hash_index(self) -> Option<u64> {
        self.index.checked_mul(u64::from(TILE_WIDTH))
    }

    /// The level-0 tile's entry bundle, with the same index and width.
    pub fn entry_bundle(self) -> Option<EntryBundle> {
        (self.level == 0).then_some(EntryBundle {
            index: self.index,
            width: self.width,
        })
    }

    /// The path, `tile/<L>/<N>[.p/<W>]`.
    pub fn path(self) -> String {
        self.to_string()
    }

    /// Reads a hash-tile path; an entry-bundle path is an error.
    pub fn parse(path: &str) -> Result<Tile, TilePathError> {
        match TilePath::parse(path)? {
            TilePath::Tile(tile) => Ok(tile),
            TilePath::EntryBundle(_) => Err(TilePathError::NotAHashTile),
        }
    }
}

impl EntryBundle {
    /// The bundle at `index` holding `width` entries.
    pub fn new(index: u64, width: u16) -> Result<EntryBundle, TileError> {
        check_width(width)?;
        Ok(EntryBundle { index, width })
    }

    /// The index.
    pub fn index(self) -> u64 {
        self.index
    }

    /// How many entries it holds.
    pub fn width(self) -> u16 {
        self.width
    }

    /// Whether it holds all 256 entries.
    pub fn is_full(self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The index of its first entry, or `None` if that does not fit a `u64`.
    pub fn first_entry(self) -> Option<u64> {
        self.index.checked_mul(u64::from(TILE_WIDTH))
    }

    /// The level-0 tile that holds the leaf hashes of its entries.
    pub fn leaf_tile(self) -> Tile {
        Tile {
            level: 0,
            index: self.index,
            width: self.width,
        }
    }

    /// The path, `tile/entries/<N>[.p/<W>]`.
    pub fn path(self) -> String {
        self.to_string()
    }

    /// Reads an entry-bundle path; a hash-tile path is an error.
    pub fn parse(path: &str) -> Result<EntryBundle, TilePathError> {
        match TilePath::parse(path)? {
            TilePath::EntryBundle(bundle) => Ok(bundle),
            TilePath::Tile(_) => Err(TilePathError::NotAnEntryBundle),
        }
    }
}

/// Why a path is not a canonical tile path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TilePathError {
    /// Longer than any canonical path.
    #[error("tile path is {length} bytes, longer than the limit of {MAX_TILE_PATH_LEN}")]
    TooLong {
        /// Its length.
        length: usize,
    },
    /// Does not start with `tile/`.
    #[error("tile path must start with \"tile/\": {path:?}")]
    MissingPrefix {
        /// The path.
        path: String,
    },
    /// The level is not decimal 0–63 without leading zeros.
    #[error("tile level must be decimal 0 to 63 without leading zeros, found {found:?}")]
    BadLevel {
        /// The level element.
        found: String,
    },
    /// An element of the index is malformed.
    #[error(
        "tile index element {position} must be {expected}, found {found:?} \
         (N is written x123/x456/789)"
    )]
    BadIndexElement {
        /// Which element, from 0.
        position: usize,
        /// What it should have been.
        expected: &'static str,
        /// What it was.
        found: String,
    },
    /// The index has a leading `x000` group (1 is `001`, not `x000/001`).
    #[error("tile index has a leading x000 group; the canonical form has none")]
    LeadingZeroGroup,
    /// The index does not fit a `u64`.
    #[error("tile index does not fit 64 bits")]
    IndexTooLarge,
    /// The width after `.p/` is not decimal 1–255 without leading zeros.
    #[error("partial tile width must be decimal 1 to 255 without leading zeros, found {found:?}")]
    BadWidth {
        /// The width element.
        found: String,
    },
    /// The path names an entry bundle where a hash tile was expected.
    #[error("expected a hash tile path, found an entry bundle path")]
    NotAHashTile,
    /// The path names a hash tile where an entry bundle was expected.
    #[error("expected an entry bundle path, found a hash tile path")]
    NotAnEntryBundle,
}

/// The most `x`-groups plus the last group a `u64` needs: 20 digits.
const MAX_INDEX_GROUPS: usize = 7;

fn is_canonical_decimal(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|byte| byte.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'))
}

fn parse_index(elements: &[&str]) -> Result<u64, TilePathError> {
    if elements.len() > MAX_INDEX_GROUPS {
        return Err(TilePathError::IndexTooLarge);
    }
    let mut index: u64 = 0;
    for (position, element) in elements.iter().enumerate() {
        let last = position + 1 == elements.len();
        let digits = if last {
            Some(*element)
        } else {
            element.strip_prefix('x')
        };
        let digits = match digits {
            Some(digits) if digits.len() == 3 && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits
            }
            _ => {
                return Err(TilePathError::BadIndexElement {
                    position,
                    expected: if last {
                        "three digits"
                    } else {
                        "x and three digits"
                    },
                    found: (*element).to_owned(),
                })
            }
        };
        if position == 0 && !last && digits == "000" {
            return Err(TilePathError::LeadingZeroGroup);
        }
        let group = digits
            .bytes()
            .fold(0u64, |value, digit| value * 10 + u64::from(digit - b'0'));
        index = index
            .checked_mul(1000)
            .and_then(|value| value.checked_add(group))
            .ok_or(TilePathError::IndexTooLarge)?;
    }
    Ok(index)
}

/// Splits `<N>[.p/<W>]` into the index elements and the width.
fn parse_index_and_width(rest: &str) -> Result<(u64, u16), TilePathError> {
    let mut elements: Vec<&str> = rest.split('/').collect();
    let mut width = TILE_WIDTH;
    if elements.len() >= 2 {
        let marked = elements[elements.len() - 2];
        if let Some(last_group) = marked.strip_suffix(".p") {
            let found = elements[elements.len() - 1];
            width = match found.parse::<u16>() {
                Ok(width) if is_canonical_decimal(found) && (1..TILE_WIDTH).contains(&width) => {
                    width
                }
                _ => {
                    return Err(TilePathError::BadWidth {
                        found: found.to_owned(),
                    })
                }
            };
            elements.pop();
            let last = elements.len() - 1;
            elements[last] = last_group;
        }
    }
    Ok((parse_index(&elements)?, width))
}

impl TilePath {
    /// Reads a tile or entry-bundle path (without the log's URL prefix or a leading slash).
    /// Only the canonical form is accepted.
    pub fn parse(path: &str) -> Result<TilePath, TilePathError> {
        if path.len() > MAX_TILE_PATH_LEN {
            return Err(TilePathError::TooLong { length: path.len() });
        }
        let Some(rest) = path.strip_prefix("tile/") else {
            return Err(TilePathError::MissingPrefix {
                path: path.to_owned(),
            });
        };
        let (kind, rest) = rest.split_once('/').unwrap_or((rest, ""));
        let (index, width) = parse_index_and_width(rest)?;
        if kind == "entries" {
            return Ok(TilePath::EntryBundle(EntryBundle { index, width }));
        }
        let level = match kind.parse::<u8>() {
            Ok(level) if is_canonical_decimal(kind) && level <= MAX_TILE_LEVEL => level,
            _ => {
                return Err(TilePathError::BadLevel {
                    found: kind.to_owned(),
                })
            }
        };
        Ok(TilePath::Tile(Tile {
            level,
            index,
            width,
        }))
    }
}

/// Writes `<N>[.p/<W>]`.
fn write_index_and_width(
    formatter: &mut fmt::Formatter<'_>,
    index: u64,
    width: u16,
) -> fmt::Result {
    let mut groups = [0u16; MAX_INDEX_GROUPS];
    let mut count = 0;
    let mut rest = index;
    loop {
        groups[count] = (rest % 1000) as u16;
        count += 1;
        rest /= 1000;
        if rest == 0 {
            break;
        }
    }
    for group in groups[1..count].iter().rev() {
        write!(formatter, "x{group:03}/")?;
    }
    write!(formatter, "{:03}", groups[0])?;
    if width != TILE_WIDTH {
        write!(formatter, ".p/{width}")?;
    }
    Ok(())
}

/// The path, `tile/<L>/<N>[.p/<W>]`.
impl fmt::Display for Tile {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "tile/{}/", self.level)?;
        write_index_and_width(formatter, self.index, self.width)
    }
}

/// The path, `tile/entries/<N>[.p/<W>]`.
impl fmt::Display for EntryBundle {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("tile/entries/")?;
        write_index_and_width(formatter, self.index, self.width)
    }
}

impl std::str::FromStr for TilePath {
    type Err = TilePathError;
    fn from_str(path: &str) -> Result<TilePath, TilePathError> {
        TilePath::parse(path)
    }
}

impl std::str::FromStr for Tile {
    type Err = TilePathError;
    fn from_str(path: &str) -> Result<Tile, TilePathError> {
        Tile::parse(path)
    }
}

impl std::str::FromStr for EntryBundle {
    type Err = TilePathError;
    fn from_str(path: &str) -> Result<EntryBundle, TilePathError> {
        EntryBundle::parse(path)
    }
}

impl fmt::Display for TilePath {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TilePath::Tile(tile) => tile.fmt(formatter),
            TilePath::EntryBundle(bundle) => bundle.fmt(formatter),
        }
    }
}

#[cfg(test)]
mod tests {
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
}
