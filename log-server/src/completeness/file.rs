//! The index's durable form: one append-only file of records, `<events dir>/completeness.idx`.
//!
//! ```text
//! item record  'I'  leaf index (8, BE)  leaf hash (32)  key count (1)  keys (32 each)
//! mark record  'M'  size (8, BE)        map root (32)
//! ```
//!
//! A run of the integrator appends the item records of the leaves it indexed, then one mark
//! (the index covers the leaves below `size`, and its root is `map root`), and syncs the file
//! before the checkpoint that carries the root is signed and stored. On open the records are
//! read back up to the last whole mark; anything after it (a run a crash cut short) is cut
//! off, and those leaves are indexed again from the log. Each mark's root is checked against
//! the root recomputed from the items before it, so a damaged file is refused, not trusted.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use cairn_spec::completeness::{Item, MapKey, MAP_KEY_SIZE};
use cairn_spec::Hash;

use super::IndexError;

/// Most keys one leaf carries (action, actor.id, resource.id, resource.type).
pub const MAX_KEYS_PER_LEAF: usize = 4;

/// One record read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A leaf and the keys it carries.
    Item(Item, Vec<MapKey>),
    /// The index covers `size` leaves and has this root.
    Mark(u64, Hash),
}

/// The record file, open for appending.
pub struct IndexFile {
    path: PathBuf,
    file: File,
    pending: Vec<u8>,
    /// The file's length up to its last mark.
    committed: u64,
}

fn io(path: &Path, what: &str, error: std::io::Error) -> IndexError {
    IndexError::File(format!("{what} {}: {error}", path.display()))
}

/// Reads one record, `None` at a clean or torn end.
fn read_record(reader: &mut impl Read) -> std::io::Result<Option<(Record, usize)>> {
    let mut tag = [0u8; 1];
    if reader.read(&mut tag)? == 0 {
        return Ok(None);
    }
    let mut fixed = [0u8; 40];
    if !read_full(reader, &mut fixed)? {
        return Ok(None);
    }
    let number = u64::from_be_bytes(fixed[..8].try_into().unwrap_or_default());
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&fixed[8..]);
    match tag[0] {
        b'M' => Ok(Some((Record::Mark(number, Hash(hash)), 41))),
        b'I' => {
            let mut count = [0u8; 1];
            if !read_full(reader, &mut count)? {
                return Ok(None);
            }
            let count = usize::from(count[0]);
            if count > MAX_KEYS_PER_LEAF {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("an item record with {count} keys"),
                ));
            }
            let mut keys = Vec::with_capacity(count);
            for _ in 0..count {
                let mut key = [0u8; MAP_KEY_SIZE];
                if !read_full(reader, &mut key)? {
                    return Ok(None);
                }
                keys.push(MapKey(key));
            }
            let item = Item {
                leaf_index: number,
                leaf_hash: Hash(hash),
            };
            Ok(Some((Record::Item(item, keys), 42 + count * MAP_KEY_SIZE)))
        }
        other => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("a record of unknown kind {other:#04x}"),
        )),
    }
}

/// Fills `buffer`; `false` if the file ends first.
fn read_full(reader: &mut impl Read, buffer: &mut [u8]) -> std::io::Result<bool> {
    let mut filled = 0;
    while filled < buffer.len() {
        let read = reader.read(&mut buffer[filled..])?;
        if read == 0 {
            return Ok(false);
        }
        filled += read;
    }
    Ok(true)
}

impl IndexFile {
    /// Opens (or creates) the file at `path` and gives every record up to its last mark to
    /// `replay`, in order; cuts off what follows that mark.
    pub fn open(
        path: &Path,
        mut replay: impl FnMut(Record) -> Result<(), IndexError>,
    ) -> Result<IndexFile, IndexError> {
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|e| io(path, "opening", e))?;
        let mut reader = BufReader::new(&file);
        let (mut offset, mut marked) = (0u64, 0u64);
        let mut since_mark: Vec<Record> = Vec::new();
        loop {
            let record = read_record(&mut reader).map_err(|e| {
                IndexError::File(format!(
                    "{} at byte {offset}: {e}; the file is damaged (move it away to rebuild the \
                     index from the log)",
                    path.display()
                ))
            })?;
            let Some((record, length)) = record else {
                break;
            };
            offset += length as u64;
            let is_mark = matches!(record, Record::Mark(..));
            since_mark.push(record);
            if is_mark {
                for record in since_mark.drain(..) {
                    replay(record)?;
                }
                marked = offset;
            }
        }
        drop(reader);
        let length = file.metadata().map_err(|e| io(path, "reading", e))?.len();
        if length > marked {
            tracing::info!(
                path = %path.display(),
                cut = length - marked,
                "cutting off the completeness index's unfinished last run"
            );
            file.set_len(marked)
                .and_then(|()| file.sync_all())
                .map_err(|e| io(path, "truncating", e))?;
        }
        Ok(IndexFile {
            path: path.to_owned(),
            file,
            pending: Vec::new(),
            committed: marked,
        })
    }

    /// Queues an item record.
    pub fn push_item(&mut self, item: &Item, keys: &[MapKey]) {
        self.pending.push(b'I');
        self.pending
            .extend_from_slice(&item.leaf_index.to_be_bytes());
        self.pending.extend_from_slice(&item.leaf_hash.0);
        // At most MAX_KEYS_PER_LEAF keys: the caller never gives more.
        self.pending.push(keys.len().min(MAX_KEYS_PER_LEAF) as u8);
        for key in keys.iter().take(MAX_KEYS_PER_LEAF) {
            self.pending.extend_from_slice(&key.0);
        }
    }

    /// Appends the queued records and a mark, and syncs the file. On failure the file is cut
    /// back to its last mark (what a reopen would read).
    pub fn commit(&mut self, size: u64, root: &Hash) -> Result<(), IndexError> {
        self.pending.push(b'M');
        self.pending.extend_from_slice(&size.to_be_bytes());
        self.pending.extend_from_slice(&root.0);
        let written = self.pending.len() as u64;
        let result = self
            .file
            .write_all(&self.pending)
            .and_then(|()| self.file.sync_data());
        self.pending.clear();
        match result {
            Ok(()) => {
                self.committed += written;
                Ok(())
            }
            Err(error) => {
                // Best effort: a reopen cuts the unfinished run off anyway.
                let _ = self.file.set_len(self.committed);
                Err(io(&self.path, "writing", error))
            }
        }
    }

    /// The file's length up to its last mark: the bytes an auditor may read.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// Drops the queued records (a run that failed before its mark).
    pub fn discard(&mut self) {
        self.pending.clear();
    }
}
