//! Sorted run files of the events index.
//!
//! A run holds every index record of the events among log entries `[start, end)`, sorted by
//! key, in blocks of about 8 KiB, each with its own CRC-32. It is written once, synced and
//! renamed into place, so it exists complete or not at all, and its name says the range it
//! covers, so the runs on disk also say, durably and atomically with the data, how far the
//! index reaches. Runs are merged, never changed.
//!
//! ```text
//! header  "CAIRNEVR" · u32 LE version (2) · u64 LE start · u64 LE end · u32 LE CRC-32 of the
//!         header before it
//! blocks  u32 LE length · u32 LE CRC-32 · records (u16 LE key length · u16 LE value length
//!         · key · value), in key order
//! fences  per block: u16 LE first-key length · first key · u64 LE offset · u32 LE length
//!         · i128 LE earliest and latest event time of the summaries in it
//! footer  u64 LE fence offset · u64 LE fence length · u64 LE records · u32 LE CRC-32 of the
//!         fences · u32 LE CRC-32 of the footer before it · "CAIRNEVF"
//! ```
//!
//! The fences stay in memory: a lookup reads one block. Their time bounds let a scan by time
//! skip every block of summaries that cannot hold a match (a block range index).
//!
//! Runs of another version (version 1 located payloads in a payload log of their own) do not
//! open; the index drops them and rebuilds what they held from the log.

use std::collections::hash_map::RandomState;
use std::fs::{self, File};
use std::hash::BuildHasher;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::TAG_SUMMARY;
use crate::events::store::EventStoreError;
use crate::storage::embedded::dedup::bloom::Bloom;
use crate::storage::embedded::files;
use crate::storage::StoreError;

const MAGIC: &[u8; 8] = b"CAIRNEVR";
const FOOTER_MAGIC: &[u8; 8] = b"CAIRNEVF";
const VERSION: u32 = 2;
const HEADER_LEN: u64 = 32;
const FOOTER_LEN: u64 = 40;
const BLOCK_HEADER_LEN: usize = 8;
/// A block is closed once it holds this many bytes of records.
const BLOCK_BYTES: usize = 8 * 1024;
/// The longest key or value (their lengths are u16).
pub const MAX_FIELD_BYTES: usize = u16::MAX as usize;

/// One block's place and bounds.
pub struct Fence {
    /// Its first key.
    pub first_key: Vec<u8>,
    offset: u64,
    length: u32,
    /// Earliest and latest event time of the summaries in it (`MAX`, `MIN` if none).
    pub times: (i128, i128),
}

/// One run file.
pub struct Run {
    /// Its path.
    pub path: PathBuf,
    file: File,
    /// First log index it covers.
    pub start: u64,
    /// One past the last log index it covers.
    pub end: u64,
    /// Records in it.
    pub records: u64,
    /// Its blocks.
    pub fences: Vec<Fence>,
    ids: Bloom,
}

/// The file name of the run covering `[start, end)`.
pub fn run_file_name(start: u64, end: u64) -> String {
    files::range_file_name(start, end, "evr")
}

/// Parses a run file name back to its range.
pub fn parse_run_file_name(name: &str) -> Option<(u64, u64)> {
    files::parse_range_file_name(name, "evr")
}

fn corrupt(path: &Path, offset: u64, detail: impl Into<String>) -> EventStoreError {
    EventStoreError::Files(StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        detail: detail.into(),
    })
}

/// The records of one block.
pub struct Block {
    bytes: Vec<u8>,
}

impl Block {
    /// The record starting at `at`: key and value ranges, and where the next starts.
    fn record(&self, at: usize) -> Option<(Range<usize>, Range<usize>, usize)> {
        let head = self.bytes.get(at..at + 4)?;
        let key_len = u16::from_le_bytes([head[0], head[1]]) as usize;
        let value_len = u16::from_le_bytes([head[2], head[3]]) as usize;
        let key = at + 4..at + 4 + key_len;
        let value = key.end..key.end + value_len;
        (value.end <= self.bytes.len()).then_some((key, value.clone(), value.end))
    }

    /// Every record, in order.
    pub fn records(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        let mut at = 0;
        std::iter::from_fn(move || {
            let (key, value, next) = self.record(at)?;
            at = next;
            Some((&self.bytes[key], &self.bytes[value]))
        })
    }

    fn check(&self, path: &Path, offset: u64) -> Result<(), EventStoreError> {
        let mut at = 0;
        while at < self.bytes.len() {
            at = self
                .record(at)
                .ok_or_else(|| corrupt(path, offset, "a record overruns its block"))?
                .2;
        }
        Ok(())
    }
}

/// Keys of event IDs go through a hash, so that the filter's blocks fill evenly.
pub fn id_key(hasher: &RandomState, event_id: &[u8]) -> u64 {
    hasher.hash_one(event_id)
}

impl Run {
    /// Opens a run file: its header, fences and the filter of its event IDs.
    pub fn open(path: &Path, hasher: &RandomState, seed: u64) -> Result<Run, EventStoreError> {
        let file = File::open(path).map_err(|source| StoreError::io("open", path, source))?;
        let len = files::file_len(&file, path)?;
        if len < HEADER_LEN + FOOTER_LEN {
            return Err(corrupt(
                path,
                0,
                format!("{len} bytes: too short for a run"),
            ));
        }
        let mut header = [0u8; HEADER_LEN as usize];
        files::read_exact_at(&file, path, &mut header, 0)?;
        let word = |bytes: &[u8], at: usize| {
            u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
        };
        let half = |bytes: &[u8], at: usize| {
            u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
        };
        if &header[..8] != MAGIC
            || half(&header, 8) != VERSION
            || crc32fast::hash(&header[..28]) != half(&header, 28)
        {
            return Err(corrupt(
                path,
                0,
                format!("not a version {VERSION} run header"),
            ));
        }
        let (start, end) = (word(&header, 12), word(&header, 20));
        if parse_run_file_name(&path.file_name().unwrap_or_default().to_string_lossy())
            != Some((start, end))
        {
            return Err(corrupt(
                path,
                0,
                "the header's range is not the file name's",
            ));
        }
        let mut footer = [0u8; FOOTER_LEN as usize];
        files::read_exact_at(&file, path, &mut footer, len - FOOTER_LEN)?;
        if &footer[32..] != FOOTER_MAGIC || crc32fast::hash(&footer[..28]) != half(&footer, 28) {
            return Err(corrupt(path, len - FOOTER_LEN, "damaged run footer"));
        }
        let (fence_offset, fence_len, records) =
            (word(&footer, 0), word(&footer, 8), word(&footer, 16));
        if fence_offset < HEADER_LEN || fence_offset.saturating_add(fence_len) != len - FOOTER_LEN {
            return Err(corrupt(path, len - FOOTER_LEN, "fences out of place"));
        }
        let mut table = vec![0u8; fence_len as usize];
        files::read_exact_at(&file, path, &mut table, fence_offset)?;
        if crc32fast::hash(&table) != half(&footer, 24) {
            return Err(corrupt(path, fence_offset, "damaged fences"));
        }
        let fences = parse_fences(&table, fence_offset)
            .ok_or_else(|| corrupt(path, fence_offset, "fences do not parse"))?;
        let mut run = Run {
            path: path.to_path_buf(),
            file,
            start,
            end,
            records,
            fences,
            ids: Bloom::with_capacity(1, seed),
        };
        let mut keys = Vec::new();
        let mut cursor = Cursor::seek(&run, &[super::TAG_ID])?;
        while let Some((key, _)) = cursor.get() {
            if key.first() != Some(&super::TAG_ID) {
                break;
            }
            keys.push(id_key(hasher, &key[1..]));
            cursor.advance()?;
        }
        run.ids = filter_of(&keys, seed);
        Ok(run)
    }

    /// Whether an event ID may be in this run (`false`: certainly not).
    pub fn may_hold_id(&self, key: u64) -> bool {
        self.ids.may_contain(key)
    }

    /// Reads and checks block `number`.
    pub fn block(&self, number: usize) -> Result<Block, EventStoreError> {
        let fence = &self.fences[number];
        let mut bytes = vec![0u8; fence.length as usize];
        files::read_exact_at(&self.file, &self.path, &mut bytes, fence.offset)?;
        let length = u32::from_le_bytes(bytes[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(bytes[4..8].try_into().expect("4 bytes"));
        if length + BLOCK_HEADER_LEN != bytes.len() || crc32fast::hash(&bytes[8..]) != crc {
            return Err(corrupt(&self.path, fence.offset, "damaged block"));
        }
        bytes.drain(..BLOCK_HEADER_LEN);
        let block = Block { bytes };
        block.check(&self.path, fence.offset)?;
        Ok(block)
    }

    /// The block that holds `key` if any does: the last whose first key is not after it.
    pub fn block_of(&self, key: &[u8]) -> usize {
        self.fences
            .partition_point(|fence| fence.first_key.as_slice() <= key)
            .saturating_sub(1)
    }

    /// How many blocks the keys in `[low, high)` may span (an estimate of their count).
    pub fn blocks_between(&self, low: &[u8], high: &[u8]) -> usize {
        if self.fences.is_empty() {
            return 0;
        }
        let first = self.block_of(low);
        let last = self
            .fences
            .partition_point(|fence| fence.first_key.as_slice() < high);
        last.saturating_sub(first)
    }

    /// The value of `key`, read through `cache`.
    pub fn get(
        &self,
        key: &[u8],
        cache: &mut BlockCache,
    ) -> Result<Option<Vec<u8>>, EventStoreError> {
        if self.fences.is_empty() {
            return Ok(None);
        }
        let number = self.block_of(key);
        let block = cache.block(self, number)?;
        let value = block
            .records()
            .find(|(found, _)| *found >= key)
            .filter(|(found, _)| *found == key)
            .map(|(_, value)| value.to_vec());
        Ok(value)
    }
}

/// The last block read, kept for the next lookup (pages read summaries in index order).
#[derive(Default)]
pub struct BlockCache {
    last: Option<(PathBuf, usize, std::rc::Rc<Block>)>,
}

impl BlockCache {
    pub fn block(
        &mut self,
        run: &Run,
        number: usize,
    ) -> Result<std::rc::Rc<Block>, EventStoreError> {
        if let Some((path, cached, block)) = &self.last {
            if *cached == number && *path == run.path {
                return Ok(block.clone());
            }
        }
        let block = std::rc::Rc::new(run.block(number)?);
        self.last = Some((run.path.clone(), number, block.clone()));
        Ok(block)
    }
}

fn filter_of(keys: &[u64], seed: u64) -> Bloom {
    let bloom = Bloom::with_capacity(keys.len() as u64, seed);
    for key in keys {
        bloom.insert(*key);
    }
    bloom
}

fn parse_fences(mut table: &[u8], end: u64) -> Option<Vec<Fence>> {
    let mut fences = Vec::new();
    let take = |count: usize, table: &mut &[u8]| -> Option<Vec<u8>> {
        let (head, rest) = (table.get(..count)?, table.get(count..)?);
        *table = rest;
        Some(head.to_vec())
    };
    let mut previous_end = HEADER_LEN;
    while !table.is_empty() {
        let key_len = u16::from_le_bytes(take(2, &mut table)?.try_into().ok()?) as usize;
        let first_key = take(key_len, &mut table)?;
        let offset = u64::from_le_bytes(take(8, &mut table)?.try_into().ok()?);
        let length = u32::from_le_bytes(take(4, &mut table)?.try_into().ok()?);
        let low = i128::from_le_bytes(take(16, &mut table)?.try_into().ok()?);
        let high = i128::from_le_bytes(take(16, &mut table)?.try_into().ok()?);
        if offset != previous_end || (length as usize) < BLOCK_HEADER_LEN {
            return None;
        }
        previous_end = offset + u64::from(length);
        fences.push(Fence {
            first_key,
            offset,
            length,
            times: (low, high),
        });
    }
    (previous_end == end).then_some(fences)
}

/// A position in a run, record by record in key order.
pub struct Cursor<'r> {
    run: &'r Run,
    block_number: usize,
    block: Option<Block>,
    at: usize,
    current: Option<(Range<usize>, Range<usize>, usize)>,
}

impl<'r> Cursor<'r> {
    /// At the first record whose key is not before `key`.
    pub fn seek(run: &'r Run, key: &[u8]) -> Result<Cursor<'r>, EventStoreError> {
        let mut cursor = Cursor {
            run,
            block_number: run.block_of(key),
            block: None,
            at: 0,
            current: None,
        };
        cursor.load()?;
        while let Some((found, _)) = cursor.get() {
            if found >= key {
                break;
            }
            cursor.advance()?;
        }
        Ok(cursor)
    }

    fn load(&mut self) -> Result<(), EventStoreError> {
        loop {
            if self.block_number >= self.run.fences.len() {
                self.block = None;
                self.current = None;
                return Ok(());
            }
            let block = self.run.block(self.block_number)?;
            self.current = block.record(0);
            self.at = 0;
            self.block = Some(block);
            if self.current.is_some() {
                return Ok(());
            }
            self.block_number += 1;
        }
    }

    /// The record here, if the run is not exhausted.
    pub fn get(&self) -> Option<(&[u8], &[u8])> {
        let block = self.block.as_ref()?;
        let (key, value, _) = self.current.clone()?;
        Some((&block.bytes[key], &block.bytes[value]))
    }

    /// Moves to the next record.
    pub fn advance(&mut self) -> Result<(), EventStoreError> {
        let Some((_, _, next)) = self.current.clone() else {
            return Ok(());
        };
        self.at = next;
        self.current = self.block.as_ref().and_then(|block| block.record(self.at));
        if self.current.is_none() {
            self.block_number += 1;
            self.load()?;
        }
        Ok(())
    }
}

/// Writes a run, record by record in key order.
pub struct RunWriter {
    dir: PathBuf,
    temporary: PathBuf,
    out: BufWriter<File>,
    start: u64,
    end: u64,
    offset: u64,
    block: Vec<u8>,
    block_key: Vec<u8>,
    block_times: (i128, i128),
    last_key: Vec<u8>,
    fences: Vec<Fence>,
    records: u64,
}

impl RunWriter {
    /// Starts the run covering `[start, end)` in `dir`.
    pub fn create(dir: &Path, start: u64, end: u64) -> Result<RunWriter, EventStoreError> {
        let temporary = dir.join(format!("{}.tmp", run_file_name(start, end)));
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&temporary)
            .map_err(|source| StoreError::io("create", &temporary, source))?;
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(MAGIC);
        header.extend_from_slice(&VERSION.to_le_bytes());
        header.extend_from_slice(&start.to_le_bytes());
        header.extend_from_slice(&end.to_le_bytes());
        header.extend_from_slice(&crc32fast::hash(&header).to_le_bytes());
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header)
            .map_err(|source| StoreError::io("write", &temporary, source))?;
        Ok(RunWriter {
            dir: dir.to_path_buf(),
            temporary,
            out,
            start,
            end,
            offset: HEADER_LEN,
            block: Vec::with_capacity(BLOCK_BYTES + 1024),
            block_key: Vec::new(),
            block_times: (i128::MAX, i128::MIN),
            last_key: Vec::new(),
            fences: Vec::new(),
            records: 0,
        })
    }

    /// Adds a record; keys must come in strictly increasing order.
    pub fn push(&mut self, key: &[u8], value: &[u8]) -> Result<(), EventStoreError> {
        if key.len() > MAX_FIELD_BYTES || value.len() > MAX_FIELD_BYTES {
            return Err(corrupt(
                &self.temporary,
                self.offset,
                "an index record is too long",
            ));
        }
        if self.records > 0 && key <= self.last_key.as_slice() {
            return Err(corrupt(
                &self.temporary,
                self.offset,
                "index records out of order",
            ));
        }
        if self.block.is_empty() {
            self.block_key = key.to_vec();
        }
        self.block
            .extend_from_slice(&(key.len() as u16).to_le_bytes());
        self.block
            .extend_from_slice(&(value.len() as u16).to_le_bytes());
        self.block.extend_from_slice(key);
        self.block.extend_from_slice(value);
        if key.first() == Some(&TAG_SUMMARY) {
            if let Some(time) = super::summary_time(value) {
                self.block_times.0 = self.block_times.0.min(time);
                self.block_times.1 = self.block_times.1.max(time);
            }
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.records += 1;
        if self.block.len() >= BLOCK_BYTES {
            self.close_block()?;
        }
        Ok(())
    }

    fn close_block(&mut self) -> Result<(), EventStoreError> {
        if self.block.is_empty() {
            return Ok(());
        }
        let length = u32::try_from(self.block.len()).expect("blocks are small");
        let crc = crc32fast::hash(&self.block);
        self.out
            .write_all(&length.to_le_bytes())
            .and_then(|()| self.out.write_all(&crc.to_le_bytes()))
            .and_then(|()| self.out.write_all(&self.block))
            .map_err(|source| StoreError::io("write", &self.temporary, source))?;
        let total = self.block.len() + BLOCK_HEADER_LEN;
        self.fences.push(Fence {
            first_key: std::mem::take(&mut self.block_key),
            offset: self.offset,
            length: u32::try_from(total).expect("blocks are small"),
            times: self.block_times,
        });
        self.offset += total as u64;
        self.block.clear();
        self.block_times = (i128::MAX, i128::MIN);
        Ok(())
    }

    /// Writes the fences and footer, syncs, renames the run into place and opens it.
    pub fn finish(mut self, hasher: &RandomState, seed: u64) -> Result<Run, EventStoreError> {
        self.close_block()?;
        let mut table = Vec::new();
        for fence in &self.fences {
            table.extend_from_slice(&(fence.first_key.len() as u16).to_le_bytes());
            table.extend_from_slice(&fence.first_key);
            table.extend_from_slice(&fence.offset.to_le_bytes());
            table.extend_from_slice(&fence.length.to_le_bytes());
            table.extend_from_slice(&fence.times.0.to_le_bytes());
            table.extend_from_slice(&fence.times.1.to_le_bytes());
        }
        let mut footer = Vec::with_capacity(FOOTER_LEN as usize);
        footer.extend_from_slice(&self.offset.to_le_bytes());
        footer.extend_from_slice(&(table.len() as u64).to_le_bytes());
        footer.extend_from_slice(&self.records.to_le_bytes());
        footer.extend_from_slice(&crc32fast::hash(&table).to_le_bytes());
        footer.extend_from_slice(&crc32fast::hash(&footer).to_le_bytes());
        footer.extend_from_slice(FOOTER_MAGIC);
        let temporary = self.temporary.clone();
        let io = |source| StoreError::io("write", &temporary, source);
        self.out.write_all(&table).map_err(io)?;
        self.out.write_all(&footer).map_err(io)?;
        let file = self
            .out
            .into_inner()
            .map_err(|error| StoreError::io("write", &temporary, error.into_error()))?;
        file.sync_all().map_err(io)?;
        drop(file);
        let path = self.dir.join(run_file_name(self.start, self.end));
        fs::rename(&self.temporary, &path)
            .map_err(|source| StoreError::io("rename", &path, source))?;
        files::sync_dir(&self.dir)?;
        Run::open(&path, hasher, seed)
    }
}
