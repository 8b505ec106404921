//! The seal of a segment that will not grow any more: `<segment>.idx`, the byte offset of every
//! bundle of [`BUNDLE_SIZE`] entries in it, so that opening the log does not scan sealed
//! segments again. A seal that does not match its segment is ignored (the segment is scanned).
//!
//! ```text
//! "CAIRNIDX" | first index u64 | entry count u64 | byte length u64 | offsets n u64
//!            | n × offset u64 | CRC-32 of all before, u32          (little-endian)
//! ```

use std::path::{Path, PathBuf};

use super::files;
use crate::storage::StoreError;

/// Entries in one entry bundle (C2SP tlog-tiles): a seal keeps where each bundle begins.
pub const BUNDLE_SIZE: u64 = 256;

const SEAL_MAGIC: &[u8; 8] = b"CAIRNIDX";
const SEAL_HEADER_LEN: usize = 8 + 4 * 8;

pub(super) fn seal_path(segment_path: &Path) -> PathBuf {
    segment_path.with_extension("idx")
}

pub(super) struct Seal {
    pub(super) entry_count: u64,
    pub(super) bundle_offsets: Vec<u64>,
}

/// Writes, synced, the offset index of the segment at `segment_path`, which will not grow any
/// more: it holds `entry_count` entries from `first_index` in `byte_len` bytes, and
/// `bundle_offsets` are where each bundle of [`BUNDLE_SIZE`] entries begins in it.
pub(super) fn write_seal(
    segment_path: &Path,
    first_index: u64,
    entry_count: u64,
    byte_len: u64,
    bundle_offsets: &[u64],
) -> Result<(), StoreError> {
    let mut bytes = Vec::with_capacity(SEAL_HEADER_LEN + 8 * bundle_offsets.len() + 4);
    bytes.extend_from_slice(SEAL_MAGIC);
    bytes.extend_from_slice(&first_index.to_le_bytes());
    bytes.extend_from_slice(&entry_count.to_le_bytes());
    bytes.extend_from_slice(&byte_len.to_le_bytes());
    bytes.extend_from_slice(&(bundle_offsets.len() as u64).to_le_bytes());
    for offset in bundle_offsets {
        bytes.extend_from_slice(&offset.to_le_bytes());
    }
    let crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&crc.to_le_bytes());
    files::write_atomically(&seal_path(segment_path), &bytes)
}

/// Reads a seal file, if there is one that matches the segment; anything that does not match
/// is ignored (the segment is then scanned instead).
pub(super) fn load_seal(
    path: &Path,
    first_index: u64,
    file_len: u64,
) -> Result<Option<Seal>, StoreError> {
    let bytes = match std::fs::metadata(path) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(StoreError::io("stat", path, source)),
        // A seal holds one offset per 256 entries of at least 17 bytes each: never more than
        // the segment's own length.
        Ok(metadata) if metadata.len() > file_len / 256 + 64 => return Ok(None),
        Ok(_) => std::fs::read(path).map_err(|source| StoreError::io("read", path, source))?,
    };
    if bytes.len() < SEAL_HEADER_LEN + 4 || &bytes[..8] != SEAL_MAGIC {
        return Ok(None);
    }
    let (body, crc) = bytes.split_at(bytes.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Ok(None);
    }
    let field = |at: usize| u64::from_le_bytes(body[at..at + 8].try_into().expect("8 bytes"));
    let (first, entry_count, byte_len, offsets) = (field(8), field(16), field(24), field(32));
    let expected_offsets =
        (first_index + entry_count).div_ceil(BUNDLE_SIZE) - first_index.div_ceil(BUNDLE_SIZE);
    if first != first_index
        || byte_len != file_len
        || offsets != expected_offsets
        || body.len() as u64 != SEAL_HEADER_LEN as u64 + 8 * offsets
    {
        return Ok(None);
    }
    let bundle_offsets = body[SEAL_HEADER_LEN..]
        .chunks_exact(8)
        .map(|chunk| u64::from_le_bytes(chunk.try_into().expect("8 bytes")))
        .collect();
    Ok(Some(Seal {
        entry_count,
        bundle_offsets,
    }))
}
