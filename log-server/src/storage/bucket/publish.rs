//! The published side of the bucket, for monitors and mirrors: the entry bundles
//! `tile/entries/<N>[.p/<W>]` (C2SP tlog-tiles, byte for byte what `GET /tile/entries/...`
//! serves) and the checkpoint object `checkpoint`.

use cairn_spec::checkpoint::parse_tree_size;
use cairn_spec::tiles::{encode_entry_bundle, encode_tile, EntryBundle, TilePath};

use super::client::{Ops, WriteMode};
use super::{all_ok, bad_tile, tile_key, BucketTree, TILE};
use crate::storage::{
    justified_hash_count, SequenceStore, StoreError, MAX_CHECKPOINT_BYTES, MAX_HASH_LEVEL,
};

/// The key of the published checkpoint.
pub const CHECKPOINT_KEY: &str = "checkpoint";

/// How many entry bundles are read from the sequence and written at a time, so that a
/// publication far behind holds at most this many (256 entries each) in memory.
const BUNDLES_AT_A_TIME: u64 = 64;

/// What the `checkpoint` object in the bucket covers (0 if there is none).
pub(super) async fn published_size(ops: &Ops) -> Result<u64, StoreError> {
    match ops.get(CHECKPOINT_KEY, MAX_CHECKPOINT_BYTES as u64).await? {
        None => Ok(0),
        Some(note) => note_size(&note).ok_or_else(|| {
            StoreError::corrupt(
                ops.url(CHECKPOINT_KEY),
                0,
                "the checkpoint object is not a checkpoint with a tree size",
            )
        }),
    }
}

/// The tree size on a checkpoint note's second line (C2SP tlog-checkpoint).
fn note_size(note: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(note).ok()?;
    parse_tree_size(text.split('\n').nth(1)?).ok()
}

/// What a level must have synced for a checkpoint, in [`StoreError::CheckpointAhead`].
const SYNCED_AT_LEVEL: [&str; MAX_HASH_LEVEL as usize + 1] = [
    "hashes synced to the bucket at level 0",
    "hashes synced to the bucket at level 1",
    "hashes synced to the bucket at level 2",
    "hashes synced to the bucket at level 3",
    "hashes synced to the bucket at level 4",
    "hashes synced to the bucket at level 5",
    "hashes synced to the bucket at level 6",
    "hashes synced to the bucket at level 7",
];

impl BucketTree {
    /// The tree size the bucket's `checkpoint` object covers (0 before the first publication).
    pub fn published_size(&self) -> u64 {
        *self.published.lock()
    }

    /// Publishes the checkpoint `note` of a tree of `size` leaves for mirrors, in this order:
    ///
    /// 1. the hash tiles of the tree of `size`: its full tiles are already in the bucket (they
    ///    must have been synced: [`StoreError::CheckpointAhead`] otherwise), and the partial
    ///    tile of each level at this size is written unless its tile is full by now (a client
    ///    falls back to the full tile);
    /// 2. the entry bundles the last publication did not cover (read from `entries`, the log's
    ///    sequence): every new full bundle and the partial one at `size`;
    /// 3. only once all of them are written and verified, the `checkpoint` object (replaced,
    ///    read back and compared).
    ///
    /// The published size never goes back: a `size` below it, or below the size of the
    /// `checkpoint` object found in the bucket just before replacing it (another writer), is
    /// refused with [`StoreError::CheckpointGoesBack`]. Publishing the same size again writes
    /// what a failed or interrupted publication left out. The note must be the checkpoint of
    /// `size` (its second line), at most [`MAX_CHECKPOINT_BYTES`]. Blocking; one publication at
    /// a time.
    pub fn publish(
        &self,
        size: u64,
        note: &[u8],
        entries: &dyn SequenceStore,
    ) -> Result<(), StoreError> {
        if note.len() > MAX_CHECKPOINT_BYTES {
            return Err(StoreError::LimitExceeded {
                what: "checkpoint note size in bytes",
                found: note.len() as u64,
                limit: MAX_CHECKPOINT_BYTES as u64,
            });
        }
        let noted = note_size(note);
        if noted != Some(size) {
            return Err(StoreError::BadConfig(format!(
                "the checkpoint to publish is not a checkpoint of size {size} (its size line \
                 reads {noted:?})"
            )));
        }
        let mut published = self.published.lock();
        let covered = *published;
        if size < covered {
            return Err(StoreError::CheckpointGoesBack {
                stored: covered,
                offered: size,
            });
        }
        let durable = entries.entry_count();
        if durable < size {
            return Err(StoreError::CheckpointAhead {
                size,
                durable,
                what: "durable entries",
            });
        }

        // 1. The partial hash tiles at this size.
        let mut tiles = Vec::new();
        {
            let state = self.state.lock();
            for level in 0..=MAX_HASH_LEVEL {
                let count = justified_hash_count(level, size);
                if count == 0 {
                    break;
                }
                let stored = &state.levels[usize::from(level)];
                let synced = stored.full * TILE + stored.synced_tail as u64;
                if synced < count {
                    return Err(StoreError::CheckpointAhead {
                        size,
                        durable: synced,
                        what: SYNCED_AT_LEVEL[usize::from(level)],
                    });
                }
                let (index, width) = (count / TILE, (count % TILE) as u16);
                if width > 0 && index == stored.full && !stored.partials.contains(&width) {
                    let data = encode_tile(&stored.tail[..usize::from(width)])
                        .map_err(|error| bad_tile(&error))?;
                    tiles.push((level, index, width, data));
                }
            }
        }
        let jobs: Vec<(String, Vec<u8>)> = tiles
            .iter()
            .map(|(level, index, width, data)| {
                Ok((tile_key(*level, *index, u64::from(*width))?, data.clone()))
            })
            .collect::<Result<_, StoreError>>()?;
        all_ok(self.bucket.for_each(jobs, |ops, (key, data)| async move {
            ops.write_verified(&key, data, WriteMode::Once).await
        }))?;
        {
            let mut state = self.state.lock();
            for (level, index, width, _) in &tiles {
                let stored = &mut state.levels[usize::from(*level)];
                if stored.full == *index {
                    stored.partials.insert(*width);
                }
            }
        }

        // 2. The entry bundles, a bounded number at a time.
        let bundles = size.div_ceil(TILE);
        let mut next = covered / TILE;
        while next < bundles {
            let end = bundles.min(next + BUNDLES_AT_A_TIME);
            let mut jobs = Vec::new();
            for index in next..end {
                let first = index * TILE;
                let width = (size - first).min(TILE);
                let bundle = EntryBundle::new(index, width as u16).map_err(|e| bad_tile(&e))?;
                let read = entries.read_entries(first, width)?;
                let leaves: Vec<&[u8]> = read.iter().map(|entry| entry.leaf.as_slice()).collect();
                let data = encode_entry_bundle(&leaves).map_err(|error| bad_tile(&error))?;
                jobs.push((bundle.path(), data));
            }
            all_ok(self.bucket.for_each(jobs, |ops, (key, data)| async move {
                ops.write_verified(&key, data, WriteMode::Once).await
            }))?;
            next = end;
        }

        // 3. The checkpoint, last, and never back.
        let note = note.to_vec();
        self.bucket.call(async |ops: &Ops| {
            let found = published_size(ops).await?;
            if found > size {
                return Err(StoreError::CheckpointGoesBack {
                    stored: found,
                    offered: size,
                });
            }
            ops.write_verified(CHECKPOINT_KEY, note, WriteMode::Replace)
                .await
        })?;
        *published = size;
        drop(published);

        // The partial bundles of a bundle that is full now are garbage.
        if !covered.is_multiple_of(TILE) && size / TILE > covered / TILE {
            let full = EntryBundle::new(covered / TILE, 256).map_err(|error| bad_tile(&error))?;
            let prefix = format!("{}.p", full.path());
            match self
                .bucket
                .call(async |ops: &Ops| ops.list(&prefix, 255).await)
            {
                Ok(keys) => {
                    let partials = keys
                        .into_iter()
                        .filter(|key| {
                            matches!(TilePath::parse(key), Ok(TilePath::EntryBundle(bundle))
                                if bundle.index() == full.index() && !bundle.is_full())
                        })
                        .collect();
                    self.delete_quietly(partials);
                }
                Err(error) => {
                    tracing::warn!(%error, "could not list the partial bundles of a full one")
                }
            }
        }
        Ok(())
    }
}
