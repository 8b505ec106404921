//! What tiles and entry bundles contain (C2SP tlog-tiles).
//!
//! A tile is its hashes concatenated, 32 bytes each, nothing else: a full tile is 8,192 bytes.
//! An entry bundle is its entries in order, each a big-endian `uint16` length followed by that
//! many bytes; so an entry is at most 65,535 bytes, and a bundle at most 256 of them. Decoding
//! is given the width the path promises and must consume the data exactly.

use crate::hash::{Hash, HASH_SIZE};

use super::path::{EntryBundle, Tile, TILE_WIDTH};

/// The longest entry an entry bundle can hold: its length is a big-endian `uint16`.
pub const MAX_ENTRY_LEN: usize = u16::MAX as usize;

/// Bytes in a full tile: 256 hashes of 32 bytes.
pub const FULL_TILE_BYTES: usize = TILE_WIDTH as usize * HASH_SIZE;

/// Tile data that does not match its tile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileDataError {
    /// The data is not `32 · width` bytes.
    #[error("tile {tile} must be {expected} bytes ({} hashes), found {found}", tile.width())]
    WrongLength {
        /// The tile.
        tile: Tile,
        /// `32 · width`.
        expected: usize,
        /// The data's length.
        found: usize,
    },
    /// The hashes do not fit one tile.
    #[error("a tile holds 1 to {TILE_WIDTH} hashes, found {found}")]
    BadHashCount {
        /// How many hashes were given.
        found: usize,
    },
}

/// The data of a tile holding `hashes`, in order.
pub fn encode_tile(hashes: &[Hash]) -> Result<Vec<u8>, TileDataError> {
    if hashes.is_empty() || hashes.len() > usize::from(TILE_WIDTH) {
        return Err(TileDataError::BadHashCount {
            found: hashes.len(),
        });
    }
    Ok(hashes.iter().flat_map(|hash| hash.0).collect())
}

/// The hashes in the data of `tile`, which must be exactly `32 · width` bytes.
pub fn decode_tile(tile: Tile, data: &[u8]) -> Result<Vec<Hash>, TileDataError> {
    let expected = usize::from(tile.width()) * HASH_SIZE;
    if data.len() != expected {
        return Err(TileDataError::WrongLength {
            tile,
            expected,
            found: data.len(),
        });
    }
    Ok(data
        .chunks_exact(HASH_SIZE)
        .map(|chunk| Hash(chunk.try_into().expect("chunks are 32 bytes")))
        .collect())
}

/// An entry bundle that cannot be encoded, or bytes that are not the bundle they claim to be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryBundleError {
    /// No entries, or more than 256.
    #[error("an entry bundle holds 1 to {TILE_WIDTH} entries, found {found}")]
    BadEntryCount {
        /// How many entries were given.
        found: usize,
    },
    /// An entry is too long for its `uint16` length prefix.
    #[error("entry {position} is {length} bytes, over the limit of {MAX_ENTRY_LEN}")]
    EntryTooLong {
        /// Its position in the bundle.
        position: usize,
        /// Its length.
        length: usize,
    },
    /// The data ends inside an entry or its length prefix.
    #[error(
        "entry bundle {bundle} ends inside entry {position} at byte {offset}: \
         needed {needed} more bytes, {available} are left"
    )]
    Truncated {
        /// The bundle being read.
        bundle: EntryBundle,
        /// Which entry.
        position: usize,
        /// Where in the data it starts.
        offset: usize,
        /// How many bytes it needs.
        needed: usize,
        /// How many are left.
        available: usize,
    },
    /// Bytes are left after the last entry the bundle's width promises.
    #[error("entry bundle {bundle} has {extra} bytes after its last entry")]
    TrailingBytes {
        /// The bundle being read.
        bundle: EntryBundle,
        /// How many bytes are left over.
        extra: usize,
    },
    /// The entries and the leaf hashes of the level-0 tile differ in number.
    #[error("entry bundle has {entries} entries but the tile has {hashes} leaf hashes")]
    CountMismatch {
        /// Entries in the bundle.
        entries: usize,
        /// Hashes in the tile.
        hashes: usize,
    },
    /// An entry does not hash to the leaf hash the level-0 tile holds for it.
    #[error("entry {position} hashes to {computed}, the tile holds {expected}")]
    EntryMismatch {
        /// Its position in the bundle.
        position: usize,
        /// The leaf hash in the tile.
        expected: Hash,
        /// The leaf hash of the entry.
        computed: Hash,
    },
}

/// The data of an entry bundle holding `entries`, in order.
pub fn encode_entry_bundle<E: AsRef<[u8]>>(entries: &[E]) -> Result<Vec<u8>, EntryBundleError> {
    if entries.is_empty() || entries.len() > usize::from(TILE_WIDTH) {
        return Err(EntryBundleError::BadEntryCount {
            found: entries.len(),
        });
    }
    let mut total = 0;
    for (position, entry) in entries.iter().enumerate() {
        let length = entry.as_ref().len();
        if length > MAX_ENTRY_LEN {
            return Err(EntryBundleError::EntryTooLong { position, length });
        }
        total += 2 + length;
    }
    let mut data = Vec::with_capacity(total);
    for entry in entries {
        let entry = entry.as_ref();
        let length = u16::try_from(entry.len()).expect("checked above");
        data.extend_from_slice(&length.to_be_bytes());
        data.extend_from_slice(entry);
    }
    Ok(data)
}

/// The entries in the data of `bundle`: exactly `width` of them, with no byte left over. The
/// entries borrow from `data`; nothing is allocated but the list.
pub fn decode_entry_bundle(
    bundle: EntryBundle,
    data: &[u8],
) -> Result<Vec<&[u8]>, EntryBundleError> {
    let width = usize::from(bundle.width());
    let mut entries = Vec::with_capacity(width);
    let mut offset = 0;
    for position in 0..width {
        let rest = &data[offset..];
        let truncated = |needed: usize| EntryBundleError::Truncated {
            bundle,
            position,
            offset,
            needed,
            available: rest.len(),
        };
        let Some((prefix, after)) = rest.split_first_chunk::<2>() else {
            return Err(truncated(2));
        };
        let length = usize::from(u16::from_be_bytes(*prefix));
        let Some(entry) = after.get(..length) else {
            return Err(truncated(2 + length));
        };
        entries.push(entry);
        offset += 2 + length;
    }
    if offset != data.len() {
        return Err(EntryBundleError::TrailingBytes {
            bundle,
            extra: data.len() - offset,
        });
    }
    Ok(entries)
}

/// Checks that each entry hashes (RFC 9162 leaf hash) to the leaf hash the level-0 tile holds
/// for it, as a monitor must before it trusts a bundle.
pub fn check_entries_against_tile(
    entries: &[&[u8]],
    leaf_hashes: &[Hash],
) -> Result<(), EntryBundleError> {
    if entries.len() != leaf_hashes.len() {
        return Err(EntryBundleError::CountMismatch {
            entries: entries.len(),
            hashes: leaf_hashes.len(),
        });
    }
    // Hashed a tile's worth at a time, side by side, then compared.
    const RUN: usize = TILE_WIDTH as usize;
    let mut computed = [Hash::default(); RUN];
    for (run, (entries, expected)) in entries.chunks(RUN).zip(leaf_hashes.chunks(RUN)).enumerate() {
        let computed = &mut computed[..entries.len()];
        Hash::of_leaves(entries, computed);
        if let Some(offset) = computed.iter().zip(expected).position(|(a, b)| a != b) {
            return Err(EntryBundleError::EntryMismatch {
                position: run * RUN + offset,
                expected: expected[offset],
                computed: computed[offset],
            });
        }
    }
    Ok(())
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

    #[test]
    fn tile_data_is_the_hashes_concatenated() {
        let hashes: Vec<Hash> = (0..3u8).map(|i| Hash::of_leaf(&[i])).collect();
        let data = encode_tile(&hashes).expect("three hashes fit");
        assert_eq!(data.len(), 96);
        assert_eq!(&data[32..64], hashes[1].as_bytes());
        assert_eq!(decode_tile(tile(0, 4, 3), &data), Ok(hashes));
        let full = encode_tile(&[Hash::empty_tree(); 256]).expect("a full tile");
        assert_eq!(full.len(), FULL_TILE_BYTES);
        assert_eq!(
            decode_tile(tile(2, 0, 256), &full).map(|hashes| hashes.len()),
            Ok(256)
        );
    }

    #[test]
    fn tile_data_must_match_the_width_exactly() {
        let data = vec![0u8; 96];
        for width in [2, 4] {
            assert_eq!(
                decode_tile(tile(0, 0, width), &data),
                Err(TileDataError::WrongLength {
                    tile: tile(0, 0, width),
                    expected: 32 * usize::from(width),
                    found: 96
                })
            );
        }
        assert!(decode_tile(tile(0, 0, 3), &data[..95]).is_err());
        assert_eq!(
            encode_tile(&[]),
            Err(TileDataError::BadHashCount { found: 0 })
        );
        assert_eq!(
            encode_tile(&[Hash::empty_tree(); 257]),
            Err(TileDataError::BadHashCount { found: 257 })
        );
    }

    #[test]
    fn entry_bundle_is_length_prefixed_entries() {
        let entries: [&[u8]; 3] = [b"ab", b"", &[7; 300]];
        let data = encode_entry_bundle(&entries).expect("small entries");
        assert_eq!(&data[..4], &[0, 2, b'a', b'b']);
        assert_eq!(&data[4..6], &[0, 0]);
        assert_eq!(&data[6..8], &[0x01, 0x2c]);
        assert_eq!(data.len(), 2 + 2 + 2 + 2 + 300);
        assert_eq!(
            decode_entry_bundle(bundle(0, 3), &data),
            Ok(entries.to_vec())
        );
    }

    #[test]
    fn entry_bundle_limits() {
        let longest = vec![1u8; MAX_ENTRY_LEN];
        let data = encode_entry_bundle(&[&longest]).expect("65535 bytes fit");
        assert_eq!(&data[..2], &[0xff, 0xff]);
        assert_eq!(
            decode_entry_bundle(bundle(0, 1), &data),
            Ok(vec![&longest[..]])
        );
        assert_eq!(
            encode_entry_bundle(&[vec![0u8; MAX_ENTRY_LEN + 1]]),
            Err(EntryBundleError::EntryTooLong {
                position: 0,
                length: 65536
            })
        );
        assert_eq!(
            encode_entry_bundle::<&[u8]>(&[]),
            Err(EntryBundleError::BadEntryCount { found: 0 })
        );
        assert_eq!(
            encode_entry_bundle(&vec![b"x"; 257]),
            Err(EntryBundleError::BadEntryCount { found: 257 })
        );
        let full = encode_entry_bundle(&vec![b"x"; 256]).expect("256 entries fit");
        assert_eq!(
            decode_entry_bundle(bundle(9, 256), &full).map(|entries| entries.len()),
            Ok(256)
        );
    }

    #[test]
    fn entry_bundle_must_be_consumed_exactly() {
        let data = encode_entry_bundle(&[b"abc", b"def"]).expect("small");
        assert_eq!(
            decode_entry_bundle(bundle(0, 1), &data),
            Err(EntryBundleError::TrailingBytes {
                bundle: bundle(0, 1),
                extra: 5
            })
        );
        assert_eq!(
            decode_entry_bundle(bundle(0, 3), &data),
            Err(EntryBundleError::Truncated {
                bundle: bundle(0, 3),
                position: 2,
                offset: 10,
                needed: 2,
                available: 0
            })
        );
        assert_eq!(
            decode_entry_bundle(bundle(0, 2), &data[..9]),
            Err(EntryBundleError::Truncated {
                bundle: bundle(0, 2),
                position: 1,
                offset: 5,
                needed: 5,
                available: 4
            })
        );
        assert!(decode_entry_bundle(bundle(0, 1), &[0]).is_err());
        assert!(decode_entry_bundle(bundle(0, 1), &[]).is_err());
        // A length prefix that promises more than there is allocates nothing.
        assert!(decode_entry_bundle(bundle(0, 1), &[0xff, 0xff, 1, 2, 3]).is_err());
    }

    #[test]
    fn entries_are_checked_against_their_leaf_hashes() {
        let entries: Vec<&[u8]> = vec![b"one", b"two"];
        let hashes: Vec<Hash> = entries.iter().map(|e| Hash::of_leaf(e)).collect();
        assert_eq!(check_entries_against_tile(&entries, &hashes), Ok(()));
        let swapped = vec![hashes[1], hashes[0]];
        assert!(matches!(
            check_entries_against_tile(&entries, &swapped),
            Err(EntryBundleError::EntryMismatch { position: 0, .. })
        ));
        assert_eq!(
            check_entries_against_tile(&entries, &hashes[..1]),
            Err(EntryBundleError::CountMismatch {
                entries: 2,
                hashes: 1
            })
        );
    }
}
