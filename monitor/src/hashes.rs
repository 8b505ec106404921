//! The hashes of the verified tree, as the monitor keeps them to answer for it later: every leaf
//! hash (the level-0 tiles it verified, concatenated) and the root of every full level-0 tile,
//! each in one flat file where the hash of leaf `i` (of tile `t`) sits at byte `32·i` (`32·t`).
//!
//! Those are what the prefix proofs of gossip checks, the evidence of rewritten tiles and the
//! recheck of old tiles are computed from; nodes above height 8 are folded from tile roots.
//! They used to be keys of a B-tree database, one per tile; a flat file costs one `pwrite` per
//! batch of tiles instead of a B-tree insert per key, which kept the audit below half a million
//! leaves a second.
//!
//! Durability follows the state that names a size: hashes are written past the committed size,
//! [`HashFiles::sync`]ed, and only then is a progress record or verified state naming the larger
//! size committed (in the state file, [`crate::state`]). A crash leaves at most bytes past the committed size, which
//! nothing reads (every read is bounded by the size the caller verified) and the next growth
//! overwrites.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use cairn_spec::merkle::CompactRange;
use cairn_spec::Hash;

/// Tile roots read at once while folding a node above height 8: bounds the memory a node of any
/// height needs.
const FOLD_CHUNK: u64 = 1 << 14;

/// The two hash files of one log.
#[derive(Debug)]
pub struct HashFiles {
    leaves: File,
    tiles: File,
    leaves_path: PathBuf,
    tiles_path: PathBuf,
}

/// A file name for `origin` that no other origin maps to: its readable part, and a digest of the
/// whole origin, since the readable part folds every unusual character to `_`.
fn file_stem(origin: &str) -> String {
    let readable: String = crate::names::sanitize(origin).chars().take(64).collect();
    let digest = Hash::of_leaf(origin.as_bytes()).to_hex();
    format!("{readable}-{}", &digest[..16])
}

impl HashFiles {
    /// Opens (creating) the hash files of `origin` in `dir`.
    pub fn open(dir: &Path, origin: &str) -> io::Result<HashFiles> {
        std::fs::create_dir_all(dir)?;
        let stem = file_stem(origin);
        let leaves_path = dir.join(format!("{stem}.leaves"));
        let tiles_path = dir.join(format!("{stem}.tiles"));
        let open = |path: &Path| {
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
        };
        let files = HashFiles {
            leaves: open(&leaves_path)?,
            tiles: open(&tiles_path)?,
            leaves_path,
            tiles_path,
        };
        // A file just created exists after a crash only once its directory entry is synced.
        File::open(dir)?.sync_all()?;
        Ok(files)
    }

    /// Writes the leaf hashes (32 bytes each) of leaves `first_leaf..`.
    pub fn write_leaf_hashes(&self, first_leaf: u64, hashes: &[u8]) -> io::Result<()> {
        self.leaves.write_all_at(hashes, first_leaf * 32)
    }

    /// Writes the roots of full tiles `first_tile..`.
    pub fn write_tile_roots(&self, first_tile: u64, roots: &[Hash]) -> io::Result<()> {
        let bytes: Vec<u8> = roots.iter().flat_map(|root| root.0).collect();
        self.tiles.write_all_at(&bytes, first_tile * 32)
    }

    /// Makes everything written so far durable.
    pub fn sync(&self) -> io::Result<()> {
        self.leaves.sync_data()?;
        self.tiles.sync_data()
    }

    /// The hashes of leaves `first_leaf..first_leaf + count`, which the caller verified.
    pub fn leaf_hashes(&self, first_leaf: u64, count: usize) -> io::Result<Vec<Hash>> {
        Ok(as_hashes(&self.leaf_hash_bytes(first_leaf, count)?))
    }

    /// The same, as the bytes of a level-0 tile.
    pub fn leaf_hash_bytes(&self, first_leaf: u64, count: usize) -> io::Result<Vec<u8>> {
        read_bytes(&self.leaves, &self.leaves_path, first_leaf, count)
    }

    /// The root of full tile `tile`, which the caller verified.
    pub fn tile_root(&self, tile: u64) -> io::Result<Hash> {
        Ok(as_hashes(&read_bytes(&self.tiles, &self.tiles_path, tile, 1)?)[0])
    }

    /// The root of the perfect subtree over full tiles `first_tile..first_tile + count`
    /// (`count` a power of two), folded in bounded chunks.
    pub fn subtree_of_tiles(&self, first_tile: u64, count: u64) -> io::Result<Hash> {
        let mut range = CompactRange::new();
        let mut next = first_tile;
        while next < first_tile + count {
            let chunk = FOLD_CHUNK.min(first_tile + count - next);
            let count = usize::try_from(chunk).expect("a chunk fits memory");
            let roots = as_hashes(&read_bytes(&self.tiles, &self.tiles_path, next, count)?);
            range
                .extend(&roots)
                .map_err(|error| io::Error::other(error.to_string()))?;
            next += chunk;
        }
        Ok(range.root())
    }

    /// How many leaf hashes and tile roots the files hold, whether verified or not.
    pub fn lengths(&self) -> io::Result<(u64, u64)> {
        Ok((
            self.leaves.metadata()?.len() / 32,
            self.tiles.metadata()?.len() / 32,
        ))
    }
}

/// Hashes `first..first + count` of a hash file, as bytes.
fn read_bytes(file: &File, path: &Path, first: u64, count: usize) -> io::Result<Vec<u8>> {
    let mut bytes = vec![0u8; count * 32];
    file.read_exact_at(&mut bytes, first * 32)
        .map_err(|error| {
            io::Error::new(
                error.kind(),
                format!(
                    "{}: hashes {first}..{}: {error}",
                    path.display(),
                    first + count as u64
                ),
            )
        })?;
    Ok(bytes)
}

fn as_hashes(bytes: &[u8]) -> Vec<Hash> {
    bytes
        .chunks_exact(32)
        .map(|chunk| Hash(chunk.try_into().expect("chunks of 32 bytes")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_spec::merkle::root_from_leaf_hashes;

    fn hash(n: u64) -> Hash {
        Hash::of_leaf(&n.to_be_bytes())
    }

    #[test]
    fn hashes_are_read_back_where_they_were_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let files = HashFiles::open(dir.path(), "example.com/log").expect("opens");
        let leaves: Vec<Hash> = (0..600).map(hash).collect();
        let bytes: Vec<u8> = leaves.iter().flat_map(|h| h.0).collect();
        files
            .write_leaf_hashes(0, &bytes[..300 * 32])
            .expect("writes");
        files
            .write_leaf_hashes(300, &bytes[300 * 32..])
            .expect("writes");
        files.sync().expect("syncs");
        assert_eq!(
            files.leaf_hashes(256, 300).expect("reads"),
            leaves[256..556]
        );
        assert!(files.leaf_hashes(590, 11).is_err(), "read past the end");
        let roots: Vec<Hash> = (0..40).map(|n| hash(1000 + n)).collect();
        files.write_tile_roots(0, &roots).expect("writes");
        assert_eq!(files.tile_root(39).expect("reads"), roots[39]);
        assert_eq!(
            files.subtree_of_tiles(32, 8).expect("folds"),
            root_from_leaf_hashes(&roots[32..40])
        );
        assert_eq!(files.lengths().expect("lengths"), (600, 40));
        drop(files);
        let reopened = HashFiles::open(dir.path(), "example.com/log").expect("reopens");
        assert_eq!(reopened.leaf_hashes(0, 600).expect("reads"), leaves);
    }

    #[test]
    fn origins_never_share_files() {
        assert_ne!(file_stem("example.com/log"), file_stem("example.com_log"));
        assert!(file_stem(&"x".repeat(1000)).len() < 100);
        assert!(!file_stem("../../etc/passwd").contains('/'));
    }
}
