//! Reading a segment: items (batch headers and records) forward from an offset, a buffered chunk
//! at a time, and the plan of a read of entries that lie in one segment.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::files;
use super::record::{
    self, BatchHeader, DecodeError, DecodedRecord, ItemKind, PayloadState, BATCH_HEADER_LEN,
};
use crate::storage::{Entry, StoreError};
/// Reads items (batch headers and records) forward from an offset of a segment, a buffered
/// chunk at a time; no item larger than the format's hard limits is ever buffered.
pub struct ItemReader<'a> {
    file: &'a File,
    path: &'a Path,
    buffer: Vec<u8>,
    /// File offset of `buffer[0]`.
    buffer_offset: u64,
    /// Position of the next item within `buffer`.
    cursor: usize,
    /// Never read at or past this offset.
    end: u64,
}

/// The next thing an [`ItemReader`] found.
pub enum Item {
    Header(BatchHeader),
    /// A record whose checksum holds; its payload, if any, is not checked (see
    /// [`ItemReader::previous_item`]).
    Record(DecodedRecord),
}

/// Why an [`ItemReader`] stopped before its end.
pub enum ReadStop {
    /// The item at `offset` runs past the end.
    Truncated { offset: u64 },
    /// The bytes at `offset` are not a valid item.
    Invalid { offset: u64, detail: String },
    /// The disk failed.
    Io(StoreError),
}

const READ_CHUNK: usize = 256 * 1024;

impl<'a> ItemReader<'a> {
    pub fn new(file: &'a File, path: &'a Path, start: u64, end: u64) -> ItemReader<'a> {
        ItemReader {
            file,
            path,
            buffer: Vec::new(),
            buffer_offset: start,
            cursor: 0,
            end,
        }
    }

    /// The file offset of the next item.
    pub fn offset(&self) -> u64 {
        self.buffer_offset + self.cursor as u64
    }

    /// Makes sure `needed` bytes from the cursor are buffered, if the file has them before
    /// `end`. Returns how many are available (at most `needed` is guaranteed meaningful).
    fn fill(&mut self, needed: usize) -> Result<usize, StoreError> {
        let available = self.buffer.len() - self.cursor;
        if available >= needed {
            return Ok(available);
        }
        let offset = self.offset();
        let remaining = self.end.saturating_sub(offset);
        let want = (needed.max(READ_CHUNK) as u64).min(remaining) as usize;
        if want <= available {
            return Ok(available);
        }
        self.buffer.drain(..self.cursor);
        self.buffer_offset = offset;
        self.cursor = 0;
        let old = self.buffer.len();
        self.buffer.resize(want, 0);
        let read = files::read_at_most(
            self.file,
            self.path,
            &mut self.buffer[old..],
            offset + old as u64,
        )?;
        self.buffer.truncate(old + read);
        Ok(self.buffer.len())
    }

    /// Steps over the next item without decoding or checking it (the item a caller wants is
    /// checked when it is read, including its index). Returns what it stepped over.
    pub fn skip_item(&mut self) -> Result<Option<ItemKind>, ReadStop> {
        let offset = self.offset();
        if offset >= self.end {
            return Ok(None);
        }
        let available = self.fill(4).map_err(ReadStop::Io)?;
        let kind = match record::item_len(&self.buffer[self.cursor..self.cursor + available.min(4)])
        {
            Ok(Some(kind)) => kind,
            Ok(None) | Err(DecodeError::Truncated { .. }) => {
                return Err(ReadStop::Truncated { offset })
            }
            Err(DecodeError::Invalid(detail)) => return Err(ReadStop::Invalid { offset, detail }),
        };
        let len = match kind {
            ItemKind::BatchHeader => BATCH_HEADER_LEN,
            ItemKind::Record { len } => len,
        };
        if self.fill(len).map_err(ReadStop::Io)? < len {
            return Err(ReadStop::Truncated { offset });
        }
        self.cursor += len;
        Ok(Some(kind))
    }

    /// The next item, `Ok(None)` exactly at `end`.
    pub fn next_item(&mut self) -> Result<Option<Item>, ReadStop> {
        let offset = self.offset();
        if offset >= self.end {
            return Ok(None);
        }
        let available = self.fill(4).map_err(ReadStop::Io)?;
        let kind = match record::item_len(&self.buffer[self.cursor..self.cursor + available.min(4)])
        {
            Ok(Some(kind)) => kind,
            Ok(None) => return Err(ReadStop::Truncated { offset }),
            Err(DecodeError::Invalid(detail)) => return Err(ReadStop::Invalid { offset, detail }),
            Err(DecodeError::Truncated { .. }) => return Err(ReadStop::Truncated { offset }),
        };
        let len = match kind {
            ItemKind::BatchHeader => BATCH_HEADER_LEN,
            ItemKind::Record { len } => len,
        };
        let available = self.fill(len).map_err(ReadStop::Io)?;
        if available < len {
            return Err(ReadStop::Truncated { offset });
        }
        let bytes = &self.buffer[self.cursor..self.cursor + len];
        let item = match kind {
            ItemKind::BatchHeader => record::decode_batch_header(bytes).map(Item::Header),
            ItemKind::Record { .. } => record::decode_record(bytes).map(Item::Record),
        };
        match item {
            Ok(item) => {
                self.cursor += len;
                Ok(Some(item))
            }
            Err(DecodeError::Truncated { .. }) => Err(ReadStop::Truncated { offset }),
            Err(DecodeError::Invalid(detail)) => Err(ReadStop::Invalid { offset, detail }),
        }
    }
}

impl ItemReader<'_> {
    /// The bytes of the item [`ItemReader::next_item`] just returned, `len` long.
    pub fn previous_item(&self, len: usize) -> &[u8] {
        &self.buffer[self.cursor - len..self.cursor]
    }
}

impl ReadStop {
    /// The stop as an error, for reads of data that recovery already validated.
    pub fn into_error(self, path: &Path) -> StoreError {
        match self {
            ReadStop::Truncated { offset } => {
                StoreError::corrupt(path, offset, "an entry runs past the end of its segment")
            }
            ReadStop::Invalid { offset, detail } => StoreError::corrupt(path, offset, detail),
            ReadStop::Io(error) => error,
        }
    }
}

/// What a read of entries `[from, to)` inside one segment needs, taken under the lock so that
/// the disk is read without it.
pub struct ReadPlan {
    pub(super) path: PathBuf,
    pub(super) file: Arc<File>,
    pub(super) from: u64,
    pub(super) to: u64,
    pub(super) offset: u64,
    pub(super) skip: u64,
    pub(super) bound: u64,
}

/// A payload as one pass over a segment found it.
pub enum PayloadRead {
    /// The entry was appended without one.
    None,
    /// Its bytes, their checksum checked.
    Held(Vec<u8>),
    /// It was erased.
    Erased,
    /// Its state or checksum does not hold (or an erasure was under way): read it again alone.
    Damaged,
}

impl ReadPlan {
    /// Reads the planned entries, appending them to `out`.
    pub fn read(&self, out: &mut Vec<Entry>) -> Result<(), StoreError> {
        self.walk(|record, _| {
            out.push(record.entry);
        })
    }

    /// Reads the planned entries with the payload beside each, in the same pass, appending
    /// them to `out`. A payload found damaged is answered as such, for the caller to read again
    /// on its own (a read that overlaps an erasure can see part of it).
    pub fn read_with_payloads(
        &self,
        out: &mut Vec<(Entry, PayloadRead)>,
    ) -> Result<(), StoreError> {
        self.walk(|record, bytes| {
            let payload = match record.payload {
                None => PayloadRead::None,
                Some(span) => {
                    let region = &bytes[span.region()];
                    match record::payload_state(region) {
                        PayloadState::Held => {
                            PayloadRead::Held(region[record::PAYLOAD_REGION_HEADER..].to_vec())
                        }
                        PayloadState::Erased => PayloadRead::Erased,
                        PayloadState::Damaged(_) => PayloadRead::Damaged,
                    }
                }
            };
            out.push((record.entry, payload));
        })
    }

    /// Walks the planned records in order, giving each (decoded, and its bytes) to `each`.
    fn walk(&self, mut each: impl FnMut(DecodedRecord, &[u8])) -> Result<(), StoreError> {
        let mut reader = self.skip_to_first()?;
        let mut next = self.from;
        while next < self.to {
            let item_offset = reader.offset();
            match reader.next_item() {
                Ok(Some(Item::Header(_))) => {}
                Ok(Some(Item::Record(record))) => {
                    if record.entry.index != next {
                        return Err(StoreError::corrupt(
                            &self.path,
                            item_offset,
                            format!("expected entry {next}, found entry {}", record.entry.index),
                        ));
                    }
                    next += 1;
                    let len = record.len;
                    each(record, reader.previous_item(len));
                }
                Ok(None) => {
                    return Err(StoreError::corrupt(
                        &self.path,
                        item_offset,
                        format!("segment ends before entry {next}"),
                    ))
                }
                Err(stop) => return Err(stop.into_error(&self.path)),
            }
        }
        Ok(())
    }

    /// A reader at the planned offset, past the records before the first planned one.
    fn skip_to_first(&self) -> Result<ItemReader<'_>, StoreError> {
        let mut reader = ItemReader::new(&self.file, &self.path, self.offset, self.bound);
        let mut skip = self.skip;
        while skip > 0 {
            let item_offset = reader.offset();
            match reader.skip_item() {
                Ok(Some(ItemKind::Record { .. })) => skip -= 1,
                Ok(Some(ItemKind::BatchHeader)) => {}
                Ok(None) => {
                    return Err(StoreError::corrupt(
                        &self.path,
                        item_offset,
                        format!("segment ends before entry {}", self.from),
                    ))
                }
                Err(stop) => return Err(stop.into_error(&self.path)),
            }
        }
        Ok(reader)
    }

    /// Reads the one planned record: its byte offset in the segment, the record decoded, and
    /// its bytes.
    pub(super) fn record(&self) -> Result<(u64, DecodedRecord, Vec<u8>), StoreError> {
        let mut reader = self.skip_to_first()?;
        loop {
            let item_offset = reader.offset();
            match reader.next_item() {
                Ok(Some(Item::Header(_))) => {}
                Ok(Some(Item::Record(record))) => {
                    if record.entry.index != self.from {
                        return Err(StoreError::corrupt(
                            &self.path,
                            item_offset,
                            format!(
                                "expected entry {}, found entry {}",
                                self.from, record.entry.index
                            ),
                        ));
                    }
                    let bytes = reader.previous_item(record.len).to_vec();
                    return Ok((item_offset, record, bytes));
                }
                Ok(None) => {
                    return Err(StoreError::corrupt(
                        &self.path,
                        item_offset,
                        format!("segment ends before entry {}", self.from),
                    ))
                }
                Err(stop) => return Err(stop.into_error(&self.path)),
            }
        }
    }
}
