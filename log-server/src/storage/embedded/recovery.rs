//! Opening the segment files after a clean stop or a crash.
//!
//! A batch is acknowledged only after its `fdatasync` returned, and each batch is written only
//! after the one before it was synced, so a crash can damage only the last batch of the last
//! segment: it may run past the end of the file, or some of its pages may hold old or zero
//! bytes (in a record, or in a payload beside one: a held payload must match its checksum). That batch was never acknowledged, and recovery cuts the file back to where it began.
//! The active segment may also end in zeros written ahead of its batches (see
//! [`super::segment`]): where the batches stop and only zeros follow, the log simply ends, and
//! the zeros are kept for the batches to come.
//! Anything else that fails its checks (a sealed segment, a batch that is followed by a valid
//! one, a gap in the indices) means acknowledged data was damaged: the store refuses to open
//! and says where, rather than serve or extend a log with a hole in it.
//!
//! Sealed segments are not read in full on open: their sparse offsets come from the `.idx` file
//! written, synced, when they were sealed. If that file is missing or damaged, the segment is
//! scanned (strictly) and the file written again.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files;
use super::record::{self, PayloadState, BATCH_HEADER_LEN, BATCH_MAGIC};
use super::seal::{load_seal, seal_path, BUNDLE_SIZE};
use super::segment::{parse_segment_file_name, segment_file_name, Segment};
use super::segment_read::{Item, ItemReader, ReadStop};
use crate::storage::StoreError;

/// Opens (or creates) the segments in `dir`, recovering the tail of the last one.
pub fn open_segments(dir: &Path) -> Result<Vec<Segment>, StoreError> {
    files::ensure_dir(dir)?;
    let mut firsts = Vec::new();
    let listing = std::fs::read_dir(dir).map_err(|source| StoreError::io("list", dir, source))?;
    for item in listing {
        let item = item.map_err(|source| StoreError::io("list", dir, source))?;
        let name = item.file_name();
        if let Some(first) = name.to_str().and_then(parse_segment_file_name) {
            firsts.push(first);
        }
    }
    firsts.sort_unstable();
    if firsts.is_empty() {
        let path = dir.join(segment_file_name(0));
        let file = files::open_rw(&path)?;
        file.sync_all()
            .map_err(|source| StoreError::io("fsync", &path, source))?;
        files::sync_dir(dir)?;
        return Ok(vec![empty_segment(path, file, 0)]);
    }
    let mut segments = Vec::with_capacity(firsts.len());
    let mut expected_first = 0;
    for (position, &first) in firsts.iter().enumerate() {
        let path = dir.join(segment_file_name(first));
        if first != expected_first {
            return Err(StoreError::corrupt(
                &path,
                0,
                format!("expected the segment starting at entry {expected_first}: entries are missing or overlap"),
            ));
        }
        let file = files::open_rw(&path)?;
        let is_last = position + 1 == firsts.len();
        let segment = if is_last {
            open_tail_segment(path, file, first)?
        } else {
            open_sealed_segment(path, file, first)?
        };
        expected_first = segment.end_index();
        segments.push(segment);
    }
    Ok(segments)
}

fn empty_segment(path: PathBuf, file: File, first_index: u64) -> Segment {
    Segment {
        path,
        file: Arc::new(file),
        first_index,
        entry_count: 0,
        byte_len: 0,
        file_len: 0,
        bundle_offsets: Vec::new(),
    }
}

fn open_sealed_segment(path: PathBuf, file: File, first: u64) -> Result<Segment, StoreError> {
    let file_len = files::file_len(&file, &path)?;
    let mut segment = empty_segment(path, file, first);
    segment.file_len = file_len;
    if let Some(seal) = load_seal(&seal_path(&segment.path), first, file_len)? {
        segment.entry_count = seal.entry_count;
        segment.byte_len = file_len;
        segment.bundle_offsets = seal.bundle_offsets;
    } else {
        match scan(&segment, file_len)? {
            Scan::Clean(scanned) => {
                segment.entry_count = scanned.entry_count;
                segment.byte_len = file_len;
                segment.bundle_offsets = scanned.bundle_offsets;
            }
            Scan::Broken { at, detail, .. } => {
                return Err(StoreError::corrupt(
                    &segment.path,
                    at,
                    format!("sealed segment is damaged: {detail}"),
                ))
            }
        }
        tracing::warn!(path = %segment.path.display(), "rebuilt the offset index of a sealed segment");
        segment.write_seal()?;
    }
    if segment.entry_count == 0 {
        return Err(StoreError::corrupt(
            &segment.path,
            0,
            "a sealed segment holds no entries",
        ));
    }
    Ok(segment)
}

fn open_tail_segment(path: PathBuf, file: File, first: u64) -> Result<Segment, StoreError> {
    let file_len = files::file_len(&file, &path)?;
    let mut segment = empty_segment(path, file, first);
    segment.file_len = file_len;
    let scanned = match scan(&segment, file_len)? {
        Scan::Clean(scanned) => scanned,
        Scan::Broken { at, valid, .. } if only_zeros(&segment, at, file_len)? => {
            tracing::debug!(
                path = %segment.path.display(),
                offset = at,
                zeros = file_len - at,
                "the active segment ends in zeros written ahead"
            );
            valid
        }
        Scan::Broken {
            at,
            detail,
            batch_end,
            valid,
        } => {
            // Inside a batch whose header is sound, leaf bytes could imitate a batch header:
            // look for a later batch only after it.
            let search_from = batch_end.unwrap_or(at + 1);
            if let Some(later) =
                find_batch_header(&segment, search_from, file_len, valid.next_index)?
            {
                return Err(StoreError::corrupt(
                    &segment.path,
                    at,
                    format!("{detail}, yet a valid batch follows at byte {later}: acknowledged entries are damaged"),
                ));
            }
            tracing::warn!(
                path = %segment.path.display(),
                offset = at,
                cut = file_len - at,
                %detail,
                "cut a torn, unacknowledged batch from the end of the log"
            );
            files::truncate(&segment.file, &segment.path, at)?;
            segment.file_len = at;
            valid
        }
    };
    segment.entry_count = scanned.entry_count;
    segment.byte_len = scanned.byte_len;
    segment.bundle_offsets = scanned.bundle_offsets;
    Ok(segment)
}

struct Scanned {
    entry_count: u64,
    next_index: u64,
    byte_len: u64,
    bundle_offsets: Vec<u64>,
}

enum Scan {
    Clean(Scanned),
    Broken {
        /// Where the damaged batch starts.
        at: u64,
        detail: String,
        /// Where it ends, if its header could be read.
        batch_end: Option<u64>,
        /// Everything before it.
        valid: Scanned,
    },
}

/// Reads every batch of `segment` up to `file_len`, checking every header, record, checksum
/// and index, and stops at the first batch that fails.
fn scan(segment: &Segment, file_len: u64) -> Result<Scan, StoreError> {
    let mut valid = Scanned {
        entry_count: 0,
        next_index: segment.first_index,
        byte_len: 0,
        bundle_offsets: Vec::new(),
    };
    let mut reader = ItemReader::new(&segment.file, &segment.path, 0, file_len);
    loop {
        let batch_start = reader.offset();
        let broken = |detail: String, batch_end: Option<u64>, valid: Scanned| Scan::Broken {
            at: batch_start,
            detail,
            batch_end,
            valid,
        };
        let header = match reader.next_item() {
            Ok(None) => return Ok(Scan::Clean(valid)),
            Ok(Some(Item::Header(header))) => header,
            Ok(Some(Item::Record(_))) => {
                return Ok(broken(
                    "expected a batch header, found a record".into(),
                    None,
                    valid,
                ))
            }
            Err(ReadStop::Io(error)) => return Err(error),
            Err(ReadStop::Truncated { .. }) => {
                return Ok(broken(
                    "the batch header runs past the end".into(),
                    None,
                    valid,
                ))
            }
            Err(ReadStop::Invalid { detail, .. }) => return Ok(broken(detail, None, valid)),
        };
        let batch_end = batch_start + BATCH_HEADER_LEN as u64 + u64::from(header.body_len);
        if header.first_index != valid.next_index || header.entry_count == 0 {
            return Ok(broken(
                format!(
                    "expected a batch starting at entry {} with entries, found one of {} at {}",
                    valid.next_index, header.entry_count, header.first_index
                ),
                Some(batch_end),
                valid,
            ));
        }
        if batch_end > file_len {
            return Ok(broken(
                format!("the batch runs {} bytes past the end", batch_end - file_len),
                Some(batch_end),
                valid,
            ));
        }
        let mut offsets = Vec::new();
        let mut batch_reader = ItemReader::new(
            &segment.file,
            &segment.path,
            batch_start + BATCH_HEADER_LEN as u64,
            batch_end,
        );
        for position in 0..u64::from(header.entry_count) {
            let index = header.first_index + position;
            let offset = batch_reader.offset();
            match batch_reader.next_item() {
                Ok(Some(Item::Record(record))) if record.entry.index == index => {
                    if let Some(span) = record.payload {
                        let bytes = batch_reader.previous_item(record.len);
                        let region = &bytes[span.region()];
                        // A held payload always matches its checksum (erasure changes the
                        // state first): one that does not was torn, or damaged since.
                        if let PayloadState::Damaged(detail) = record::payload_state(region) {
                            return Ok(broken(
                                format!("the payload of entry {index} at byte {offset}: {detail}"),
                                Some(batch_end),
                                valid,
                            ));
                        }
                    }
                    if index % BUNDLE_SIZE == 0 {
                        offsets.push(offset);
                    }
                }
                Ok(Some(Item::Record(record))) => {
                    return Ok(broken(
                        format!(
                            "expected entry {index} at byte {offset}, found entry {}",
                            record.entry.index
                        ),
                        Some(batch_end),
                        valid,
                    ))
                }
                Ok(Some(Item::Header(_))) | Ok(None) => {
                    return Ok(broken(
                        format!(
                            "the batch holds fewer than its {} entries",
                            header.entry_count
                        ),
                        Some(batch_end),
                        valid,
                    ))
                }
                Err(ReadStop::Io(error)) => return Err(error),
                Err(ReadStop::Truncated { offset }) => {
                    return Ok(broken(
                        format!("the record at byte {offset} runs past the end of its batch"),
                        Some(batch_end),
                        valid,
                    ))
                }
                Err(ReadStop::Invalid { offset, detail }) => {
                    return Ok(broken(
                        format!("the record at byte {offset} is damaged: {detail}"),
                        Some(batch_end),
                        valid,
                    ))
                }
            }
        }
        if batch_reader.offset() != batch_end {
            return Ok(broken(
                format!(
                    "the batch's records end at byte {}, its header says {batch_end}",
                    batch_reader.offset()
                ),
                Some(batch_end),
                valid,
            ));
        }
        valid.entry_count += u64::from(header.entry_count);
        valid.next_index += u64::from(header.entry_count);
        valid.byte_len = batch_end;
        valid.bundle_offsets.extend(offsets);
        reader = ItemReader::new(&segment.file, &segment.path, batch_end, file_len);
    }
}

/// The offset of a valid batch header for an entry at or after `min_index`, found at or after
/// byte `from`.
/// Whether the bytes `[from, file_len)` of a segment are all zero.
fn only_zeros(segment: &Segment, from: u64, file_len: u64) -> Result<bool, StoreError> {
    const CHUNK: usize = 1 << 20;
    let mut chunk = vec![0u8; CHUNK];
    let mut start = from;
    while start < file_len {
        let len = ((file_len - start) as usize).min(CHUNK);
        files::read_exact_at(&segment.file, &segment.path, &mut chunk[..len], start)?;
        if chunk[..len].iter().any(|&byte| byte != 0) {
            return Ok(false);
        }
        start += len as u64;
    }
    Ok(true)
}

fn find_batch_header(
    segment: &Segment,
    from: u64,
    file_len: u64,
    min_index: u64,
) -> Result<Option<u64>, StoreError> {
    const CHUNK: usize = 1 << 20;
    let magic = BATCH_MAGIC.to_le_bytes();
    let mut chunk = vec![0u8; CHUNK + BATCH_HEADER_LEN];
    let mut start = from;
    while start + BATCH_HEADER_LEN as u64 <= file_len {
        let len = ((file_len - start) as usize).min(chunk.len());
        files::read_exact_at(&segment.file, &segment.path, &mut chunk[..len], start)?;
        let window = &chunk[..len];
        for position in 0..=len.saturating_sub(BATCH_HEADER_LEN) {
            if window[position..position + 4] == magic {
                if let Ok(header) = record::decode_batch_header(&window[position..]) {
                    if header.first_index >= min_index {
                        return Ok(Some(start + position as u64));
                    }
                }
            }
        }
        start += (len - BATCH_HEADER_LEN + 1) as u64;
    }
    Ok(None)
}
