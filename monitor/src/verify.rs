//! Level-0 tiles checked against their entry bundles on every core: each entry's leaf hash is
//! recomputed and compared with the tile (RFC 9162 §2.1.1, C2SP tlog-tiles), and each full tile's
//! subtree root is recomputed, on the verifier threads rather than the one that folds the tree.
//!
//! This is the audit's hot path, so it holds nothing but hashing: a tile's hashes are decoded once
//! into one vector, a bundle's entries are slices of the bundle as fetched, and tiles are handed
//! to the threads one at a time from a shared counter, so that a core busy with fetching or with
//! another process does not hold the other back.

use std::sync::atomic::{AtomicUsize, Ordering};

use cairn_spec::merkle::root_from_leaf_hashes;
use cairn_spec::tiles::{
    check_entries_against_tile, decode_entry_bundle, decode_tile, EntryBundle, Tile, TILE_WIDTH,
};
use cairn_spec::Hash;

/// One level-0 tile as served, with its entry bundle when entries are checked.
#[derive(Debug, Clone)]
pub struct FetchedTile {
    /// Which tile (its width is the one the checkpoint's size implies).
    pub tile: Tile,
    /// The tile's bytes.
    pub data: Vec<u8>,
    /// The entry bundle's bytes, if fetched.
    pub entries: Option<Vec<u8>>,
}

/// What checking one tile found: the root of its subtree when it is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedTile {
    /// The root of the tile's 256 leaves, for a full tile.
    pub subtree: Option<Hash>,
}

/// Checks a batch of tiles (and bundles) on `threads` threads: every entry hashes to its tile's
/// leaf hash, and event logs hold valid events. On failure, the problem of the first bad tile.
pub fn verify_batch(
    fetched: &[FetchedTile],
    event_log: bool,
    threads: usize,
) -> Result<Vec<VerifiedTile>, String> {
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let position = next.fetch_add(1, Ordering::Relaxed);
            let Some(item) = fetched.get(position) else {
                return done;
            };
            let verified = verify_one(item, event_log);
            let failed = verified.is_err();
            done.push((position, verified));
            if failed {
                // The others stop at their next tile: one bad tile fails the batch.
                next.store(fetched.len(), Ordering::Relaxed);
                return done;
            }
        }
    };
    let mut results = std::thread::scope(|scope| {
        let helpers: Vec<_> = (1..threads.max(1)).map(|_| scope.spawn(work)).collect();
        let mut results = work();
        for helper in helpers {
            match helper.join() {
                Ok(more) => results.extend(more),
                Err(_) => results.push((0, Err("verifier thread panicked".to_owned()))),
            }
        }
        results
    });
    results.sort_unstable_by_key(|(position, _)| *position);
    let verified: Result<Vec<_>, _> = results.into_iter().map(|(_, result)| result).collect();
    let verified = verified?;
    if verified.len() != fetched.len() {
        return Err("verification stopped early".to_owned());
    }
    Ok(verified)
}

/// Checks one tile: its length, every entry of its bundle against its leaf hash, and (event logs)
/// every entry as an event; then its subtree root if it is full.
pub fn verify_one(
    FetchedTile {
        tile,
        data,
        entries,
    }: &FetchedTile,
    event_log: bool,
) -> Result<VerifiedTile, String> {
    let hashes = decode_tile(*tile, data).map_err(|error| format!("{}: {error}", tile.path()))?;
    if let Some(entries) = entries {
        let bundle = EntryBundle::new(tile.index(), tile.width()).map_err(|e| e.to_string())?;
        let decoded = decode_entry_bundle(bundle, entries)
            .map_err(|error| format!("{}: {error}", bundle.path()))?;
        check_entries_against_tile(&decoded, &hashes)
            .map_err(|error| format!("{}: {error}", bundle.path()))?;
        if event_log {
            for (position, entry) in decoded.iter().enumerate() {
                cairn_spec::event::AnyEventLeaf::parse(entry).map_err(|error| {
                    format!(
                        "{} entry {position}: not a valid event: {error}",
                        bundle.path()
                    )
                })?;
            }
        }
    }
    let subtree = (tile.width() == TILE_WIDTH).then(|| root_from_leaf_hashes(&hashes));
    Ok(VerifiedTile { subtree })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_spec::tiles::{encode_entry_bundle, encode_tile};

    fn fetched(index: u64, width: usize, tag: &str) -> (FetchedTile, Vec<Hash>) {
        let leaves: Vec<Vec<u8>> = (0..width)
            .map(|n| format!("{tag} {index} {n}").into_bytes())
            .collect();
        let hashes: Vec<Hash> = leaves.iter().map(|leaf| Hash::of_leaf(leaf)).collect();
        let tile = Tile::new(0, index, u16::try_from(width).expect("width")).expect("tile");
        let item = FetchedTile {
            tile,
            data: encode_tile(&hashes).expect("encodes"),
            entries: Some(encode_entry_bundle(&leaves).expect("encodes")),
        };
        (item, hashes)
    }

    #[test]
    fn honest_tiles_verify_on_any_number_of_threads() {
        let mut batch = Vec::new();
        let mut roots = Vec::new();
        for index in 0..9 {
            let (item, hashes) = fetched(index, 256, "honest");
            roots.push(Some(root_from_leaf_hashes(&hashes)));
            batch.push(item);
        }
        let (last, _) = fetched(9, 17, "honest");
        batch.push(last);
        roots.push(None);
        for threads in [1, 2, 3, 16] {
            let verified = verify_batch(&batch, false, threads).expect("verifies");
            let subtrees: Vec<_> = verified.iter().map(|tile| tile.subtree).collect();
            assert_eq!(subtrees, roots, "{threads} threads");
        }
    }

    #[test]
    fn a_flipped_byte_anywhere_fails_the_batch() {
        let batch: Vec<FetchedTile> = (0..4).map(|index| fetched(index, 256, "x").0).collect();
        let (item, _) = fetched(0, 256, "x");
        for position in [0, 31, 4000, item.data.len() - 1] {
            let mut tampered = batch.clone();
            tampered[2].data[position] ^= 1;
            let problem = verify_batch(&tampered, false, 2).expect_err("tampered tile");
            assert!(problem.contains("tile/entries/002"), "{problem}");
        }
        let bundle_len = item.entries.as_ref().expect("bundle").len();
        for position in [0, 1, 2, bundle_len / 2, bundle_len - 1] {
            let mut tampered = batch.clone();
            tampered[3].entries.as_mut().expect("bundle")[position] ^= 1;
            let problem = verify_batch(&tampered, false, 2).expect_err("tampered bundle");
            assert!(problem.contains("tile/entries/003"), "{problem}");
        }
        let mut truncated = batch.clone();
        truncated[1].data.pop();
        let problem = verify_batch(&truncated, false, 2).expect_err("short tile");
        assert!(problem.contains("tile/0/001"), "{problem}");
        let mut truncated = batch;
        truncated[0].entries.as_mut().expect("bundle").pop();
        let problem = verify_batch(&truncated, false, 2).expect_err("short bundle");
        assert!(problem.contains("tile/entries/000"), "{problem}");
    }

    #[test]
    fn tiles_only_checks_the_tile_length() {
        let (mut item, hashes) = fetched(5, 256, "y");
        item.entries = None;
        assert_eq!(
            verify_one(&item, false),
            Ok(VerifiedTile {
                subtree: Some(root_from_leaf_hashes(&hashes))
            })
        );
        item.data.extend_from_slice(&[0; 32]);
        assert!(verify_one(&item, false).is_err());
    }
}
