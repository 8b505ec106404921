//! The published tree as immutable objects, at their C2SP tlog-tiles paths: `checkpoint`,
//! `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`, byte for byte what `cairn-log`
//! serves. Any static file server, or a bucket behind a CDN, can serve a copy of the directory
//! as the log's whole read API, and monitors and mirrors can read the log from it without
//! `cairn-log` running.
//!
//! Each publication writes the tiles and entry bundles that the new tree has and the last
//! published one lacked (every new full one, and the partial ones at the new size), then
//! syncs the file system, then replaces `checkpoint`: a checkpoint object is never visible
//! before the tiles it covers. Full tiles are written once and never change (a full tile that
//! exists is left alone, and the partial tiles under its `.p/` are removed); every file is
//! written under a temporary name and renamed, so a crash leaves whole files or none. A start
//! publishes its restored checkpoint again, which writes whatever a crash left out.
//!
//! They are derived data: the store's entries and hash levels are the source, and deleting the
//! directory only makes the next publication write more.

use std::fs;
use std::path::{Path, PathBuf};

use cairn_spec::tiles::{encode_entry_bundle, encode_tile, EntryBundle, Tile};
use parking_lot::Mutex;

use super::embedded::files;
use super::{justified_hash_count, LogStore, StoreError, MAX_HASH_LEVEL};

/// Hashes (or entries) in one full tile.
const TILE_WIDTH: u64 = 256;

/// A directory of the published tree's objects.
pub struct ObjectDir {
    dir: PathBuf,
    /// The tree size the objects cover (that of the `checkpoint` object).
    covered: Mutex<u64>,
}

impl ObjectDir {
    /// Opens (or creates) the directory; the objects cover the size its `checkpoint` says.
    pub fn open(dir: &Path) -> Result<ObjectDir, StoreError> {
        files::ensure_dir(dir)?;
        let checkpoint = dir.join("checkpoint");
        let covered = match fs::read(&checkpoint) {
            Ok(note) => checkpoint_size(&note).ok_or_else(|| {
                StoreError::corrupt(&checkpoint, 0, "not a checkpoint with a tree size")
            })?,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => 0,
            Err(source) => return Err(StoreError::io("read", &checkpoint, source)),
        };
        Ok(ObjectDir {
            dir: dir.to_path_buf(),
            covered: Mutex::new(covered),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes the objects of the tree of `size` that the covered tree lacked, from `store`,
    /// then `note` (the published checkpoint, of that size) as `checkpoint`. A size below the
    /// covered one is refused: the published checkpoint never goes back. Blocking.
    pub fn publish(&self, store: &dyn LogStore, size: u64, note: &[u8]) -> Result<(), StoreError> {
        let mut covered = self.covered.lock();
        if size < *covered {
            return Err(StoreError::CheckpointGoesBack {
                stored: *covered,
                offered: size,
            });
        }
        // Level L holds the roots of the complete subtrees of 256^L leaves: its last tile is
        // partial when their count is not a multiple of 256.
        for level in 0..=MAX_HASH_LEVEL {
            if justified_hash_count(level, size) == 0 {
                break;
            }
            self.write_level(store, level, *covered, size)?;
        }
        // Every tile and bundle above is on disk before the checkpoint that covers them.
        let sync_target = fs::File::open(&self.dir)
            .map_err(|source| StoreError::io("open", &self.dir, source))?;
        rustix::fs::syncfs(&sync_target)
            .map_err(|errno| StoreError::io("syncfs", &self.dir, errno.into()))?;
        files::write_atomically(&self.dir.join("checkpoint"), note)?;
        *covered = size;
        Ok(())
    }

    /// Writes the tiles of `level` (and, at level 0, the entry bundles) that the tree of `size`
    /// has and the tree of `covered` did not have in full.
    fn write_level(
        &self,
        store: &dyn LogStore,
        level: u8,
        covered: u64,
        size: u64,
    ) -> Result<(), StoreError> {
        let full_before = justified_hash_count(level, covered) / TILE_WIDTH;
        let hashes = justified_hash_count(level, size);
        let tiles = hashes.div_ceil(TILE_WIDTH);
        for index in full_before..tiles {
            let first = index * TILE_WIDTH;
            let width = (hashes - first).min(TILE_WIDTH);
            let width16 = u16::try_from(width).expect("a tile is at most 256 wide");
            let tile = Tile::new(level, index, width16).map_err(|error| bad_tile(&error))?;
            if !self.is_written(&tile.path())? {
                let data = encode_tile(&store.read_hashes(level, first, width)?)
                    .map_err(|error| bad_tile(&error))?;
                self.write(&tile.path(), &data, tile.is_full())?;
            }
            if level == 0 {
                let bundle = EntryBundle::new(index, width16).map_err(|error| bad_tile(&error))?;
                if !self.is_written(&bundle.path())? {
                    let entries = store.read_entries(first, width)?;
                    let leaves: Vec<&[u8]> = entries.iter().map(|e| e.leaf.as_slice()).collect();
                    let data = encode_entry_bundle(&leaves).map_err(|error| bad_tile(&error))?;
                    self.write(&bundle.path(), &data, bundle.is_full())?;
                }
            }
        }
        Ok(())
    }

    fn is_written(&self, path: &str) -> Result<bool, StoreError> {
        let path = self.dir.join(path);
        match fs::metadata(&path) {
            Ok(metadata) => Ok(metadata.is_file()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(source) => Err(StoreError::io("stat", &path, source)),
        }
    }

    /// Writes one object under a temporary name and renames it into place (synced later, with
    /// the whole publication); a full tile's partial tiles are removed after it.
    fn write(&self, path: &str, data: &[u8], full: bool) -> Result<(), StoreError> {
        let path = self.dir.join(path);
        let parent = path.parent().unwrap_or(&self.dir);
        files::ensure_dir(parent)?;
        let temporary = path.with_extension("tmp");
        let leftover = files::RemoveOnDrop::new(&temporary);
        fs::write(&temporary, data)
            .map_err(|source| StoreError::io("write", &temporary, source))?;
        fs::rename(&temporary, &path).map_err(|source| StoreError::io("rename", &path, source))?;
        leftover.disarm();
        if full {
            let partials = PathBuf::from(format!("{}.p", path.display()));
            match fs::remove_dir_all(&partials) {
                Ok(()) => {}
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::io("remove", &partials, source)),
            }
        }
        Ok(())
    }
}

fn bad_tile(error: &dyn std::fmt::Display) -> StoreError {
    StoreError::BadConfig(format!("a tile could not be made: {error}"))
}

/// The tree size on a checkpoint note's second line.
fn checkpoint_size(note: &[u8]) -> Option<u64> {
    std::str::from_utf8(note).ok()?.lines().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrator::Tree;
    use crate::storage::embedded::{EmbeddedConfig, EmbeddedStore};
    use crate::storage::{NewEntry, SequenceStore, TreeStore};
    use cairn_spec::tiles::decode_tile;
    use cairn_spec::Hash;

    /// A store of `count` entries with their hash levels, written by the integrator's tree.
    fn store_of(dir: &Path, count: u64) -> EmbeddedStore {
        let store = EmbeddedStore::open(EmbeddedConfig::new(dir)).expect("store");
        let mut tree = Tree::restore(&store).expect("tree");
        for start in (0..count).step_by(10_000) {
            let entries: Vec<NewEntry> = (start..count.min(start + 10_000))
                .map(|n| NewEntry::new(format!("leaf {n}").into_bytes(), None))
                .collect();
            store.append_entries(start, &entries).expect("append");
            let hashes: Vec<Hash> = entries.iter().map(|entry| *entry.leaf_hash()).collect();
            tree.extend(&store, &hashes).expect("extend");
        }
        store.sync_hashes().expect("sync");
        store
    }

    fn note(size: u64) -> Vec<u8> {
        format!("example.com/log\n{size}\nroot\n\n— sig\n").into_bytes()
    }

    #[test]
    fn writes_new_tiles_then_the_checkpoint_and_drops_partials_once_full() {
        let dir = tempfile::tempdir().expect("dir");
        let store = store_of(&dir.path().join("log"), 70_000);
        let objects = ObjectDir::open(&dir.path().join("objects")).expect("open");
        let object = |path: &str| std::fs::read(dir.path().join("objects").join(path));

        objects
            .publish(&store, 300, &note(300))
            .expect("publish 300");
        assert_eq!(object("checkpoint").expect("checkpoint"), note(300));
        assert!(object("tile/0/000").is_ok());
        assert!(object("tile/0/001.p/44").is_ok());
        assert!(object("tile/entries/001.p/44").is_ok());
        assert!(object("tile/1/000.p/1").is_ok());
        let leaves = decode_tile(
            Tile::new(0, 0, 256).expect("tile"),
            &object("tile/0/000").expect("tile"),
        )
        .expect("decodes");
        assert_eq!(leaves, store.read_hashes(0, 0, 256).expect("hashes"));

        objects
            .publish(&store, 512, &note(512))
            .expect("publish 512");
        assert!(object("tile/0/001").is_ok());
        assert!(
            !dir.path().join("objects/tile/0/001.p").exists(),
            "the partials of a full tile are removed"
        );
        assert!(object("tile/1/000.p/2").is_ok());

        objects
            .publish(&store, 70_000, &note(70_000))
            .expect("publish 70000");
        assert!(
            object("tile/2/000.p/1").is_ok(),
            "a level-2 tile at 65,536 leaves"
        );
        assert!(object("tile/0/272").is_ok());
        assert!(object("tile/0/273.p/112").is_ok());
        assert!(object("tile/1/000").is_ok());
        assert!(object("tile/1/001.p/17").is_ok());
        assert!(matches!(
            objects.publish(&store, 600, &note(600)),
            Err(StoreError::CheckpointGoesBack { .. })
        ));

        // Reopened, it knows what it covers.
        drop(objects);
        let objects = ObjectDir::open(&dir.path().join("objects")).expect("reopen");
        assert_eq!(*objects.covered.lock(), 70_000);
    }
}
