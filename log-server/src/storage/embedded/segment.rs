//! Append-only segment files of sequenced entries.
//!
//! Entries live in files named by the index of their first entry (`00000000000000000000.seg`),
//! each a run of batches (see [`super::record`]). A batch is written with one positioned write
//! and made durable with one `fdatasync`; when the active segment reaches its size limit, the
//! next batch starts a new one, so a batch never spans two files.
//!
//! The active segment is zero-filled ahead of its end ([`SegmentLog`]'s `preallocate_bytes`),
//! as PostgreSQL does with its WAL segments: a batch then lands in blocks the file already owns,
//! so its `fdatasync` writes data and flushes the disk cache but needs no journal commit for a
//! new file size or new blocks (ext4, XFS). That commit is paid once per preallocated chunk
//! rather than once per batch, and other files' metadata traffic stops delaying the log's
//! acknowledgements. Recovery tells that zero tail from a torn batch; sealing cuts it off. The
//! segments after the first of a process start fully zero-filled: a spare made in the background
//! ([`super::spare`]) becomes the next segment at the seal.
//!
//! So that reading entry `i` never scans the log, each segment keeps the byte offset of every
//! entry whose index is a multiple of 256 (the first entry of each C2SP tlog-tiles entry
//! bundle): a read seeks there and parses at most 255 records forward. When a segment is
//! sealed its offsets are written, synced, to a `.idx` file beside it, so that opening the
//! store reads only the active segment in full.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use super::files;
use super::record::{self, BatchHeader, PayloadState, BATCH_HEADER_LEN};
use super::seal::{self, BUNDLE_SIZE};
use super::segment_read::{PayloadRead, ReadPlan};
use super::spare::{Spares, DIRECT_ALIGN};
use crate::storage::{Entry, NewEntry, StoreError, StoredPayload};

/// One segment file and what is known about its contents.
#[derive(Clone, Debug)]
pub struct Segment {
    pub path: PathBuf,
    pub file: Arc<File>,
    pub first_index: u64,
    pub entry_count: u64,
    /// Where the batches end.
    pub byte_len: u64,
    /// The file's length: `byte_len`, or more when zeros were written ahead of the batches.
    pub file_len: u64,
    /// Offsets of the entries `first_aligned(first_index) + 256·k`.
    pub bundle_offsets: Vec<u64>,
}

impl Segment {
    /// The plan to read entries `[from, to)`, which lie inside this segment.
    pub fn plan(&self, from: u64, to: u64) -> ReadPlan {
        let (offset, skip) = self.seek(from);
        ReadPlan {
            path: self.path.clone(),
            file: Arc::clone(&self.file),
            from,
            to,
            offset,
            skip,
            bound: self.bound_for(to),
        }
    }

    /// Writes, synced, this segment's seal: it will not grow any more.
    pub fn write_seal(&self) -> Result<(), StoreError> {
        seal::write_seal(
            &self.path,
            self.first_index,
            self.entry_count,
            self.byte_len,
            &self.bundle_offsets,
        )
    }

    pub fn end_index(&self) -> u64 {
        self.first_index + self.entry_count
    }

    /// The first index at or after `first_index` that starts a bundle.
    pub fn first_aligned(&self) -> u64 {
        self.first_index.div_ceil(BUNDLE_SIZE) * BUNDLE_SIZE
    }

    /// Where to start parsing to reach entry `index`, and how many records to skip there.
    fn seek(&self, index: u64) -> (u64, u64) {
        let aligned = self.first_aligned();
        if index < aligned {
            return (0, index - self.first_index);
        }
        let bundle = ((index - aligned) / BUNDLE_SIZE) as usize;
        (self.bundle_offsets[bundle], (index - aligned) % BUNDLE_SIZE)
    }

    /// The byte offset below which the entries before `end_index` all lie: the offset of the
    /// next bundle start after them, or the end of the segment.
    fn bound_for(&self, end_index: u64) -> u64 {
        let aligned = self.first_aligned();
        if end_index <= aligned {
            return self
                .bundle_offsets
                .first()
                .copied()
                .unwrap_or(self.byte_len);
        }
        let bundle = (end_index - aligned).div_ceil(BUNDLE_SIZE) as usize;
        self.bundle_offsets
            .get(bundle)
            .copied()
            .unwrap_or(self.byte_len)
    }
}

/// The file name of the segment starting at `first_index`.
pub fn segment_file_name(first_index: u64) -> String {
    format!("{first_index:020}.seg")
}

/// Parses a segment file name back to its first index.
pub fn parse_segment_file_name(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".seg")?;
    if digits.len() != 20 || !digits.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments of a log and the single writer that appends to the last one.
pub struct SegmentLog {
    dir: PathBuf,
    segment_max_bytes: u64,
    preallocate_bytes: u64,
    /// Whole zero-filled segments made ahead, when zeros are written ahead at all.
    spares: Option<Spares>,
    segments: RwLock<Vec<Segment>>,
    writer: Mutex<Writer>,
}

struct Active {
    path: PathBuf,
    file: Arc<File>,
    entry_count: u64,
    byte_len: u64,
    file_len: u64,
}

/// Zeros to write ahead of the batches, from a buffer this large.
static ZEROS: [u8; 64 * 1024] = [0; 64 * 1024];

/// Writes zeros over `[from, to)` of `file` (nothing if `to <= from`).
fn write_zeros(file: &File, path: &Path, from: u64, to: u64) -> Result<(), StoreError> {
    let mut offset = from;
    while offset < to {
        let length = ZEROS.len().min((to - offset) as usize);
        file.write_all_at(&ZEROS[..length], offset)
            .map_err(|source| StoreError::io("zero-fill", path, source))?;
        offset += length as u64;
    }
    Ok(())
}

struct Writer {
    buffer: Vec<u8>,
    /// Set when a write or sync failed: what is on disk past the last durable batch is then
    /// unknown, and no append is taken until [`SegmentLog::heal`] has undone it.
    poisoned: Option<String>,
    /// The bytes a batch write may have changed, from before the write until it is durable.
    dirty: Option<Dirty>,
    /// The active segment and the end of the batch whose zeros could not be written ahead
    /// (a full disk): healing makes that room first.
    wanted: Option<(PathBuf, u64)>,
}

/// Where a batch was being written: `[from, to)` of one segment file, which held zeros there
/// (or nothing, past `file_len`) before.
struct Dirty {
    path: PathBuf,
    file: Arc<File>,
    from: u64,
    to: u64,
    file_len: u64,
}

impl SegmentLog {
    /// A log over recovered segments (at least one; the last is the active one), which
    /// zero-fills the active segment `preallocate_bytes` at a time and keeps a whole spare
    /// segment zero-filled in the background (0: neither).
    pub fn new(
        dir: PathBuf,
        segment_max_bytes: u64,
        preallocate_bytes: u64,
        segments: Vec<Segment>,
    ) -> Result<SegmentLog, StoreError> {
        let spares = if preallocate_bytes > 0 {
            Some(Spares::start(&dir, segment_max_bytes)?)
        } else {
            None
        };
        Ok(SegmentLog {
            dir,
            segment_max_bytes,
            preallocate_bytes,
            spares,
            segments: RwLock::new(segments),
            writer: Mutex::new(Writer {
                buffer: Vec::new(),
                poisoned: None,
                dirty: None,
                wanted: None,
            }),
        })
    }

    /// How many entries the segments hold.
    pub fn entry_count(&self) -> u64 {
        self.segments.read().last().map_or(0, Segment::end_index)
    }

    /// Appends one batch durably: one write, one `fdatasync`. The caller checked the limits.
    /// Returns the byte length written.
    pub fn append(&self, first_index: u64, entries: &[NewEntry]) -> Result<u64, StoreError> {
        let mut writer = self.writer.lock();
        if let Some(reason) = &writer.poisoned {
            return Err(StoreError::Poisoned(reason.clone()));
        }
        let expected = self.entry_count();
        if first_index != expected {
            return Err(StoreError::NotAtEnd {
                expected,
                found: first_index,
            });
        }
        if entries.is_empty() {
            return Ok(0);
        }
        let result = self.write_batch(&mut writer, first_index, entries);
        if let Err(error) = &result {
            writer.poisoned = Some(error.to_string());
        }
        result
    }

    /// After a failed append, undoes what it may have left on disk and takes appends again:
    /// the bytes the failed batch may have written are zeroed (or cut off) and synced, so that
    /// neither a later batch nor recovery after a crash can find part of it. Pages whose
    /// `fdatasync` failed may be marked clean by the kernel with or without their data; writing
    /// them again is the only way to know what the disk holds. `Ok` once appends are taken
    /// again; an error leaves the log refusing them, to be healed later.
    pub fn heal(&self) -> Result<(), StoreError> {
        let mut writer = self.writer.lock();
        if writer.poisoned.is_none() {
            return Ok(());
        }
        if let Some(dirty) = &writer.dirty {
            write_zeros(
                &dirty.file,
                &dirty.path,
                dirty.from,
                dirty.to.min(dirty.file_len),
            )?;
            if dirty.to > dirty.file_len {
                // The batch grew the file: cut it back (set_len and its metadata, synced).
                files::truncate(&dirty.file, &dirty.path, dirty.file_len.max(dirty.from))?;
            } else {
                dirty
                    .file
                    .sync_data()
                    .map_err(|source| StoreError::io("fdatasync", &dirty.path, source))?;
            }
        }
        writer.dirty = None;
        if let Some((path, end)) = &writer.wanted {
            // Room for the batch that found the disk full, or the fault is still there.
            let active = self.active();
            if active.path == *path && *end > active.file_len {
                write_zeros(&active.file, &active.path, active.file_len, *end)?;
                active
                    .file
                    .sync_data()
                    .map_err(|source| StoreError::io("fdatasync", &active.path, source))?;
                if let Some(last) = self.segments.write().last_mut() {
                    last.file_len = last.file_len.max(*end);
                }
            }
        }
        writer.wanted = None;
        tracing::info!(
            reason = writer.poisoned.as_deref().unwrap_or(""),
            "segment appends resume after a failed write"
        );
        writer.poisoned = None;
        Ok(())
    }

    fn write_batch(
        &self,
        writer: &mut Writer,
        first_index: u64,
        entries: &[NewEntry],
    ) -> Result<u64, StoreError> {
        let buffer = &mut writer.buffer;
        let mut active = self.active();
        if active.byte_len >= self.segment_max_bytes && active.entry_count > 0 {
            self.rotate()?;
            active = self.active();
        }
        buffer.clear();
        let body_len: usize = entries.iter().map(record::record_len).sum();
        let header = BatchHeader {
            entry_count: entries.len() as u32,
            first_index,
            body_len: u32::try_from(body_len).expect("batch limits keep a batch under 4 GiB"),
        };
        buffer.reserve(BATCH_HEADER_LEN + body_len);
        record::encode_batch_header(&header, buffer);
        let mut new_offsets = Vec::new();
        for (position, entry) in entries.iter().enumerate() {
            let index = first_index + position as u64;
            if index.is_multiple_of(BUNDLE_SIZE) {
                new_offsets.push(active.byte_len + buffer.len() as u64);
            }
            record::encode_record(index, entry, buffer);
        }
        let end = active.byte_len + buffer.len() as u64;
        let file_len = match self.zero_fill_ahead(&active, end) {
            Ok(file_len) => file_len,
            Err(error) => {
                writer.wanted = Some((active.path.clone(), end));
                return Err(error);
            }
        };
        // Within zeros, the write runs on to the end of its last page: a write into part of a
        // page that is not cached (a spare's zeros were written past the page cache) would read
        // it from the disk first. The extra bytes are zeros over zeros.
        let page_end = end.next_multiple_of(DIRECT_ALIGN as u64).min(file_len);
        let data_len = buffer.len();
        buffer.resize(data_len + (page_end.max(end) - end) as usize, 0);
        writer.dirty = Some(Dirty {
            path: active.path.clone(),
            file: Arc::clone(&active.file),
            from: active.byte_len,
            to: page_end.max(end),
            // Zeros lay there before the write; without preallocation the file ended there.
            file_len: if self.preallocate_bytes > 0 {
                file_len
            } else {
                active.file_len
            },
        });
        let buffer = &mut writer.buffer;
        active
            .file
            .write_all_at(buffer, active.byte_len)
            .map_err(|source| StoreError::io("write", &active.path, source))?;
        buffer.truncate(data_len);
        // One fdatasync covers the batch and any zeros written ahead of it.
        active
            .file
            .sync_data()
            .map_err(|source| StoreError::io("fdatasync", &active.path, source))?;
        let written = buffer.len() as u64;
        // Keep a huge batch's buffer from pinning memory for the life of the store.
        if buffer.capacity() > 8 * 1024 * 1024 {
            *buffer = Vec::new();
        }
        let mut segments = self.segments.write();
        let last = segments
            .last_mut()
            .expect("a segment log always has an active segment");
        last.entry_count += entries.len() as u64;
        last.byte_len += written;
        last.file_len = file_len.max(last.byte_len);
        last.bundle_offsets.extend(new_offsets);
        let half_full = 2 * last.byte_len >= self.segment_max_bytes;
        drop(segments);
        writer.dirty = None;
        if let (true, Some(spares)) = (half_full, &self.spares) {
            spares.want();
        }
        Ok(written)
    }

    /// Writes zeros past `end` when a batch ending there would leave the zero-filled part of
    /// the active segment: a chunk as long as the file already is, between 64 KiB and
    /// `preallocate_bytes` (so a small log writes few zeros, and a busy one few chunks), never
    /// past the segment's size limit. Returns the file's length after it.
    fn zero_fill_ahead(&self, active: &Active, end: u64) -> Result<u64, StoreError> {
        if self.preallocate_bytes == 0 || end <= active.file_len {
            return Ok(active.file_len.max(end));
        }
        let chunk = active
            .file_len
            .clamp(64 * 1024, self.preallocate_bytes.max(64 * 1024));
        let target = (end + chunk).min(self.segment_max_bytes.max(end));
        write_zeros(&active.file, &active.path, end.max(active.file_len), target)?;
        Ok(target.max(end))
    }

    /// Where the next batch goes.
    fn active(&self) -> Active {
        let segments = self.segments.read();
        let last = segments
            .last()
            .expect("a segment log always has an active segment");
        Active {
            path: last.path.clone(),
            file: Arc::clone(&last.file),
            entry_count: last.entry_count,
            byte_len: last.byte_len,
            file_len: last.file_len,
        }
    }

    /// Seals the full active segment and starts a new, empty one after it.
    fn rotate(&self) -> Result<(), StoreError> {
        let first_index = {
            let segments = self.segments.read();
            let full = segments
                .last()
                .expect("a segment log always has an active segment");
            // A sealed segment ends where its batches end: cut the zeros written ahead.
            if full.file_len > full.byte_len {
                files::truncate(&full.file, &full.path, full.byte_len)?;
            }
            full.write_seal()?;
            full.end_index()
        };
        let path = self.dir.join(segment_file_name(first_index));
        let spare_len = match &self.spares {
            Some(spares) => spares.take_as(&path)?,
            None => None,
        };
        let file = files::open_rw(&path)?;
        if spare_len.is_none() {
            file.sync_all()
                .map_err(|source| StoreError::io("fsync", &path, source))?;
        }
        files::sync_dir(&self.dir)?;
        let segment = Segment {
            path,
            file: Arc::new(file),
            first_index,
            entry_count: 0,
            byte_len: 0,
            file_len: spare_len.unwrap_or(0),
            bundle_offsets: Vec::new(),
        };
        let mut segments = self.segments.write();
        if let Some(full) = segments.last_mut() {
            full.file_len = full.byte_len;
        }
        segments.push(segment);
        drop(segments);
        tracing::debug!(first_index, "started a new segment");
        Ok(())
    }

    /// The plan to read the one entry `index`, which must exist.
    fn plan_one(&self, index: u64) -> Result<ReadPlan, StoreError> {
        Ok(self
            .plans(index, 1)?
            .pop()
            .expect("one existing entry lies in one segment"))
    }

    /// The payload beside entry `index`, which must exist: `None` if it has none.
    pub fn read_payload(&self, index: u64) -> Result<Option<StoredPayload>, StoreError> {
        let plan = self.plan_one(index)?;
        // A read that overlaps an erasure of the same payload can see its state before the
        // erasure and some of its zeros after: it is read again, and then sees it erased.
        let mut tries = 0;
        loop {
            tries += 1;
            let (offset, record, bytes) = plan.record()?;
            let Some(span) = record.payload else {
                return Ok(None);
            };
            let region = &bytes[span.region()];
            match record::payload_state(region) {
                PayloadState::Held => {
                    return Ok(Some(StoredPayload::Held(
                        region[record::PAYLOAD_REGION_HEADER..].to_vec(),
                    )))
                }
                PayloadState::Erased => return Ok(Some(StoredPayload::Erased)),
                PayloadState::Damaged(_) if tries < 2 => {}
                PayloadState::Damaged(detail) => {
                    return Err(StoreError::corrupt(
                        &plan.path,
                        offset + span.offset as u64,
                        format!("the payload of entry {index}: {detail}"),
                    ))
                }
            }
        }
    }

    /// Destroys the payload beside entry `index` where it lies: first its state becomes
    /// erased, durably (from then on it is never served, and recovery cannot take the zeros
    /// that follow for a torn write), then zeros go over its checksum and bytes, durably.
    /// Returns whether its bytes were there (held, or damaged); erasing again finishes an
    /// erasure a crash interrupted. The segment's writer is not involved: records once written
    /// never move, and the writer only writes past them.
    pub fn erase_payload(&self, index: u64) -> Result<bool, StoreError> {
        let plan = self.plan_one(index)?;
        let (offset, record, bytes) = plan.record()?;
        let Some(span) = record.payload else {
            return Ok(false);
        };
        let region = &bytes[span.region()];
        let state_at = offset + span.offset as u64;
        let sync = || {
            plan.file
                .sync_data()
                .map_err(|source| StoreError::io("fdatasync", &plan.path, source))
        };
        if region[0] != record::PAYLOAD_ERASED {
            plan.file
                .write_all_at(&[record::PAYLOAD_ERASED], state_at)
                .map_err(|source| StoreError::io("mark a payload erased in", &plan.path, source))?;
            sync()?;
        }
        let zeros = vec![0u8; span.region_len() - 1];
        plan.file
            .write_all_at(&zeros, state_at + 1)
            .map_err(|source| StoreError::io("erase a payload in", &plan.path, source))?;
        sync()?;
        Ok(!matches!(
            record::payload_state(region),
            PayloadState::Erased
        ))
    }

    /// Reads entries `[start, start + count)`, which must all exist.
    pub fn read(&self, start: u64, count: u64) -> Result<Vec<Entry>, StoreError> {
        let plans = self.plans(start, count)?;
        let mut out = Vec::with_capacity(count as usize);
        for plan in &plans {
            plan.read(&mut out)?;
        }
        Ok(out)
    }

    /// Entries `[start, start + count)`, which must all exist, each with its payload, read in
    /// one pass; a payload found damaged is read again alone ([`SegmentLog::read_payload`]).
    pub fn read_with_payloads(
        &self,
        start: u64,
        count: u64,
    ) -> Result<Vec<(Entry, Option<StoredPayload>)>, StoreError> {
        let plans = self.plans(start, count)?;
        let mut read = Vec::with_capacity(count as usize);
        for plan in &plans {
            plan.read_with_payloads(&mut read)?;
        }
        read.into_iter()
            .map(|(entry, payload)| {
                let payload = match payload {
                    PayloadRead::None => None,
                    PayloadRead::Held(bytes) => Some(StoredPayload::Held(bytes)),
                    PayloadRead::Erased => Some(StoredPayload::Erased),
                    PayloadRead::Damaged => self.read_payload(entry.index)?,
                };
                Ok((entry, payload))
            })
            .collect()
    }

    /// The plans to read entries `[start, start + count)`, which must all exist: one a
    /// segment they lie in, taken under the lock so that the disk is read without it.
    fn plans(&self, start: u64, count: u64) -> Result<Vec<ReadPlan>, StoreError> {
        let end = start.checked_add(count).ok_or(StoreError::OutOfRange {
            what: "entries".into(),
            start,
            count,
            available: self.entry_count(),
        })?;
        let segments = self.segments.read();
        let available = segments.last().map_or(0, Segment::end_index);
        if end > available {
            return Err(StoreError::OutOfRange {
                what: "entries".into(),
                start,
                count,
                available,
            });
        }
        let first = segments.partition_point(|segment| segment.end_index() <= start);
        Ok(segments[first..]
            .iter()
            .take_while(|segment| segment.first_index < end)
            .map(|segment| {
                segment.plan(start.max(segment.first_index), end.min(segment.end_index()))
            })
            .collect())
    }
}
