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
mod tests;
