//! The payload log: the payloads of audit events, kept beside the log so that they can be
//! erased without touching a leaf.
//!
//! A payload is the one part of a submission that must be durable before the answer besides
//! the leaf (everything else about an event is derived from its leaf). Payloads are appended to
//! segment files `<n>.pay` by one writer thread that takes every request queued while the disk
//! was busy and makes them durable with one `fdatasync` (group commit, as the sequencer does for
//! leaves), so that concurrent submissions share a sync.
//!
//! ```text
//! record: u32 LE payload length · u8 state (1 live, 0 erased) · event_id (36 bytes)
//!         · SHA-256 of the payload (32) · u32 LE CRC-32 of length, event_id and hash
//!         · u32 LE CRC-32 of the payload · payload
//! ```
//!
//! Erasure destroys the bytes where they lie: the payload and its checksum are overwritten with
//! zeros, then the state byte, and the file is synced. The header stays (the event ID and the
//! payload's hash are in the leaf anyway), so the file can still be read record by record.
//! Payloads that never became an event (the submission failed after storing them, or the
//! process died before the leaf was durable) are erased the same way: at once when the failure
//! is seen, at the next open after a crash (see `EventStore::open`).
//!
//! A torn record at the end of the last segment (a write that was never acknowledged) is cut
//! off when the log is opened; a damaged record anywhere else stops it from opening.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

use super::store::EventStoreError;
use crate::storage::embedded::files;
use crate::storage::StoreError;

/// Bytes before the payload in a record.
pub const HEADER_LEN: u64 = 81;
/// Bytes of an event ID in canonical form.
const EVENT_ID_LEN: usize = 36;
const STATE_OFFSET: u64 = 4;
/// Where the header's checksum lies; it covers the bytes before it but the state.
const HEADER_CHECKSUM_OFFSET: usize = 73;
/// Where the payload's checksum lies; erasure zeroes it and everything after.
const CHECKSUM_OFFSET: u64 = 77;
const STATE_LIVE: u8 = 1;
const STATE_ERASED: u8 = 0;
/// Segment size at which the writer starts a new file, by default.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
/// Appends queued for the writer before submissions are refused as overload.
const QUEUE_DEPTH: usize = 4096;
/// Most bytes one group commit writes.
const MAX_GROUP_BYTES: usize = 16 << 20;

/// A place in the payload log: records are appended in this order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PayloadPosition {
    /// The segment file.
    pub segment: u32,
    /// The byte offset in it.
    pub offset: u64,
}

/// Where one payload record lies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PayloadLocation {
    /// The segment file.
    pub segment: u32,
    /// The record's byte offset in it.
    pub offset: u64,
    /// The payload's length (the record is [`HEADER_LEN`] bytes longer).
    pub length: u32,
}

/// A payload to store.
pub struct NewPayload<'a> {
    /// The event it belongs to.
    pub event_id: &'a str,
    /// Its canonical bytes.
    pub bytes: &'a [u8],
}

/// A record found by [`PayloadLog::scan_from`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedPayload {
    /// The event it was stored for.
    pub event_id: String,
    /// SHA-256 of the payload.
    pub hash: [u8; 32],
    /// Where it lies.
    pub location: PayloadLocation,
    /// Whether its bytes are there (not erased, checksum good).
    pub live: bool,
}

struct Append {
    bytes: Vec<u8>,
    lengths: Vec<u32>,
    reply: oneshot::Sender<Result<Vec<PayloadLocation>, EventStoreError>>,
}

struct Segments {
    dir: PathBuf,
    files: RwLock<Vec<Arc<File>>>,
    /// The durable end of the log: appends land at or after it.
    end: Mutex<PayloadPosition>,
}

/// The payload log.
pub struct PayloadLog {
    segments: Arc<Segments>,
    queue: Mutex<Option<mpsc::SyncSender<Append>>>,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

fn segment_path(dir: &Path, segment: u32) -> PathBuf {
    dir.join(format!("{segment:010}.pay"))
}

fn corrupt(path: &Path, offset: u64, detail: impl Into<String>) -> EventStoreError {
    EventStoreError::Files(StoreError::Corrupt {
        path: path.to_path_buf(),
        offset,
        detail: detail.into(),
    })
}

/// The record of `payload` for `event_id`.
fn encode_record(
    out: &mut Vec<u8>,
    event_id: &str,
    payload: &[u8],
) -> Result<u32, EventStoreError> {
    let length = u32::try_from(payload.len()).map_err(|_| EventStoreError::Corrupt {
        what: "payload",
        detail: format!("{} bytes do not fit a record", payload.len()),
    })?;
    if event_id.len() != EVENT_ID_LEN {
        return Err(EventStoreError::Corrupt {
            what: "payload",
            detail: format!("event ID of {} bytes", event_id.len()),
        });
    }
    let hash: [u8; 32] = Sha256::digest(payload).into();
    let start = out.len();
    out.extend_from_slice(&length.to_le_bytes());
    out.push(STATE_LIVE);
    out.extend_from_slice(event_id.as_bytes());
    out.extend_from_slice(&hash);
    let header_crc = header_checksum(&out[start..]);
    out.extend_from_slice(&header_crc.to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    Ok(length)
}

/// CRC-32 of the length, event ID and hash (the state byte is left out: erasure changes it).
fn header_checksum(header: &[u8]) -> u32 {
    let mut crc = crc32fast::Hasher::new();
    crc.update(&header[..4]);
    crc.update(&header[5..HEADER_CHECKSUM_OFFSET]);
    crc.finalize()
}

struct Header {
    length: u32,
    state: u8,
    event_id: [u8; EVENT_ID_LEN],
    hash: [u8; 32],
    payload_crc: u32,
}

fn parse_header(bytes: &[u8; HEADER_LEN as usize]) -> Option<Header> {
    let header_crc = u32::from_le_bytes(bytes[73..77].try_into().ok()?);
    if header_checksum(bytes) != header_crc {
        return None;
    }
    Some(Header {
        length: u32::from_le_bytes(bytes[..4].try_into().ok()?),
        state: bytes[4],
        event_id: bytes[5..41].try_into().ok()?,
        hash: bytes[41..73].try_into().ok()?,
        payload_crc: u32::from_le_bytes(bytes[77..81].try_into().ok()?),
    })
}

impl PayloadLog {
    /// Opens (or creates) the payload log in `dir`: finds the end of the last segment, cutting
    /// off a torn record there, and starts the writer. `segment_bytes` is where a new segment
    /// starts.
    pub fn open(dir: &Path, segment_bytes: u64) -> Result<PayloadLog, EventStoreError> {
        files::ensure_dir(dir)?;
        let mut numbers = Vec::new();
        for item in std::fs::read_dir(dir).map_err(|source| StoreError::io("list", dir, source))? {
            let item = item.map_err(|source| StoreError::io("list", dir, source))?;
            let name = item.file_name();
            let Some(name) = name.to_str() else { continue };
            if let Some(number) = name
                .strip_suffix(".pay")
                .filter(|stem| stem.len() == 10 && stem.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|stem| stem.parse::<u32>().ok())
            {
                numbers.push(number);
            }
        }
        numbers.sort_unstable();
        if numbers.is_empty() {
            numbers.push(0);
        }
        for (expected, found) in numbers.iter().enumerate() {
            if *found as usize != expected {
                return Err(corrupt(
                    &segment_path(dir, expected as u32),
                    0,
                    "payload segment missing",
                ));
            }
        }
        let mut handles = Vec::with_capacity(numbers.len());
        for number in &numbers {
            let path = segment_path(dir, *number);
            handles.push(Arc::new(files::open_rw(&path)?));
        }
        files::sync_dir(dir)?;
        let last = *numbers.last().expect("at least one segment");
        let last_path = segment_path(dir, last);
        let last_file = Arc::clone(handles.last().expect("at least one segment"));
        let valid = valid_end(&last_file, &last_path)?;
        if valid < files::file_len(&last_file, &last_path)? {
            tracing::warn!(path = %last_path.display(), valid, "cutting a torn payload record");
            files::truncate(&last_file, &last_path, valid)?;
        }
        let segments = Arc::new(Segments {
            dir: dir.to_path_buf(),
            files: RwLock::new(handles),
            end: Mutex::new(PayloadPosition {
                segment: last,
                offset: valid,
            }),
        });
        let (sender, receiver) = mpsc::sync_channel(QUEUE_DEPTH);
        let writer = {
            let segments = Arc::clone(&segments);
            std::thread::Builder::new()
                .name("cairn-payloads".into())
                .spawn(move || {
                    crate::os::become_batch_thread();
                    write_loop(&segments, segment_bytes.max(HEADER_LEN), &receiver)
                })
                .map_err(|source| StoreError::io("start the payload writer for", dir, source))?
        };
        Ok(PayloadLog {
            segments,
            queue: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(writer)),
        })
    }

    /// The durable end: every payload appended from now on lies at or after it.
    pub fn end(&self) -> PayloadPosition {
        *self.segments.end.lock()
    }

    /// Stores `payloads` durably (one `fdatasync`, shared with concurrent callers); answers
    /// their locations, in order.
    pub async fn append(
        &self,
        payloads: &[NewPayload<'_>],
    ) -> Result<Vec<PayloadLocation>, EventStoreError> {
        if payloads.is_empty() {
            return Ok(Vec::new());
        }
        let mut bytes = Vec::with_capacity(
            payloads
                .iter()
                .map(|p| p.bytes.len() + HEADER_LEN as usize)
                .sum(),
        );
        let mut lengths = Vec::with_capacity(payloads.len());
        for payload in payloads {
            lengths.push(encode_record(&mut bytes, payload.event_id, payload.bytes)?);
        }
        let (reply, answer) = oneshot::channel();
        {
            let queue = self.queue.lock();
            let sender = queue.as_ref().ok_or(EventStoreError::Closed)?;
            sender
                .try_send(Append {
                    bytes,
                    lengths,
                    reply,
                })
                .map_err(|error| match error {
                    mpsc::TrySendError::Full(_) => EventStoreError::Overloaded,
                    mpsc::TrySendError::Disconnected(_) => EventStoreError::Closed,
                })?;
        }
        answer.await.map_err(|_| EventStoreError::Closed)?
    }

    fn file(&self, segment: u32) -> Result<(Arc<File>, PathBuf), EventStoreError> {
        let path = segment_path(&self.segments.dir, segment);
        let files = self.segments.files.read();
        let file = files
            .get(segment as usize)
            .cloned()
            .ok_or_else(|| corrupt(&path, 0, "no such payload segment"))?;
        Ok((file, path))
    }

    fn header(
        &self,
        location: &PayloadLocation,
        event_id: &str,
    ) -> Result<(Arc<File>, PathBuf, Header), EventStoreError> {
        let (file, path) = self.file(location.segment)?;
        let mut bytes = [0u8; HEADER_LEN as usize];
        files::read_exact_at(&file, &path, &mut bytes, location.offset)?;
        let header = parse_header(&bytes)
            .ok_or_else(|| corrupt(&path, location.offset, "payload header checksum"))?;
        if header.length != location.length || header.event_id != event_id.as_bytes() {
            return Err(corrupt(
                &path,
                location.offset,
                format!("the payload record is not the one of event {event_id}"),
            ));
        }
        Ok((file, path, header))
    }

    /// The payload at `location`, stored for `event_id`; `None` if it was erased.
    pub fn read(
        &self,
        location: &PayloadLocation,
        event_id: &str,
    ) -> Result<Option<Vec<u8>>, EventStoreError> {
        let (file, path, header) = self.header(location, event_id)?;
        if header.state != STATE_LIVE {
            return Ok(None);
        }
        let mut payload = vec![0u8; location.length as usize];
        files::read_exact_at(&file, &path, &mut payload, location.offset + HEADER_LEN)?;
        if crc32fast::hash(&payload) != header.payload_crc {
            return Err(corrupt(
                &path,
                location.offset,
                "payload checksum (an erasure interrupted by a crash? erase it again)",
            ));
        }
        Ok(Some(payload))
    }

    /// Destroys the payload at `location` (stored for `event_id`) durably: zeros over its bytes
    /// and checksum, then the erased state. Returns whether it was live before.
    pub fn erase(
        &self,
        location: &PayloadLocation,
        event_id: &str,
    ) -> Result<bool, EventStoreError> {
        let (file, path, header) = self.header(location, event_id)?;
        let zeros = vec![0u8; 4 + location.length as usize];
        file.write_all_at(&zeros, location.offset + CHECKSUM_OFFSET)
            .and_then(|()| file.write_all_at(&[STATE_ERASED], location.offset + STATE_OFFSET))
            .and_then(|()| file.sync_data())
            .map_err(|source| StoreError::io("erase a payload in", &path, source))?;
        Ok(header.state == STATE_LIVE)
    }

    /// Every record from `from` to the end, in order. Fails on a damaged record.
    pub fn scan_from(&self, from: PayloadPosition) -> Result<Vec<ScannedPayload>, EventStoreError> {
        let end = self.end();
        let mut found = Vec::new();
        let mut position = from;
        while position <= end {
            let (file, path) = self.file(position.segment)?;
            let limit = if position.segment == end.segment {
                end.offset
            } else {
                files::file_len(&file, &path)?
            };
            if position.offset > limit {
                return Err(corrupt(
                    &path,
                    position.offset,
                    format!(
                        "the events index expects payloads up to here; the segment ends at {limit}"
                    ),
                ));
            }
            let mut offset = position.offset;
            while offset < limit {
                let (scanned, next) =
                    read_record(&file, &path, position.segment, offset, limit)?
                        .ok_or_else(|| corrupt(&path, offset, "damaged payload record"))?;
                found.push(scanned);
                offset = next;
            }
            if position.segment == end.segment {
                break;
            }
            position = PayloadPosition {
                segment: position.segment + 1,
                offset: 0,
            };
        }
        Ok(found)
    }

    /// Stops the writer after the queued appends.
    pub fn close(&self) {
        self.queue.lock().take();
        if let Some(writer) = self.writer.lock().take() {
            let _ = writer.join();
        }
    }
}

impl Drop for PayloadLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// The record at `offset` of a segment (which holds valid data below `limit`) and where the
/// next one starts; `None` if it is torn or damaged.
fn read_record(
    file: &File,
    path: &Path,
    segment: u32,
    offset: u64,
    limit: u64,
) -> Result<Option<(ScannedPayload, u64)>, EventStoreError> {
    if offset + HEADER_LEN > limit {
        return Ok(None);
    }
    let mut bytes = [0u8; HEADER_LEN as usize];
    files::read_exact_at(file, path, &mut bytes, offset)?;
    let Some(header) = parse_header(&bytes) else {
        return Ok(None);
    };
    let next = offset + HEADER_LEN + u64::from(header.length);
    if next > limit {
        return Ok(None);
    }
    let Ok(event_id) = String::from_utf8(header.event_id.to_vec()) else {
        return Ok(None);
    };
    let live = header.state == STATE_LIVE && {
        let mut payload = vec![0u8; header.length as usize];
        files::read_exact_at(file, path, &mut payload, offset + HEADER_LEN)?;
        crc32fast::hash(&payload) == header.payload_crc
    };
    Ok(Some((
        ScannedPayload {
            event_id,
            hash: header.hash,
            location: PayloadLocation {
                segment,
                offset,
                length: header.length,
            },
            live,
        },
        next,
    )))
}

/// Where the valid records of a segment end.
fn valid_end(file: &File, path: &Path) -> Result<u64, EventStoreError> {
    let len = files::file_len(file, path)?;
    let mut offset = 0;
    while offset < len {
        match read_record(file, path, 0, offset, len)? {
            Some((_, next)) => offset = next,
            None => break,
        }
    }
    Ok(offset)
}

fn write_loop(segments: &Segments, segment_bytes: u64, queue: &mpsc::Receiver<Append>) {
    let mut failed: Option<String> = None;
    while let Ok(first) = queue.recv() {
        let mut group = vec![first];
        let mut bytes = group[0].bytes.len();
        while bytes < MAX_GROUP_BYTES {
            match queue.try_recv() {
                Ok(next) => {
                    bytes += next.bytes.len();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let result = match &failed {
            Some(reason) => Err(reason.clone()),
            None => commit(segments, segment_bytes, &group).map_err(|error| error.to_string()),
        };
        match result {
            Ok(locations) => {
                for (append, locations) in group.into_iter().zip(locations) {
                    let _ = append.reply.send(Ok(locations));
                }
            }
            Err(reason) => {
                tracing::error!(%reason, "the payload log failed; no more payloads until restart");
                failed = Some(reason.clone());
                for append in group {
                    let _ = append
                        .reply
                        .send(Err(EventStoreError::Files(StoreError::Poisoned(
                            reason.clone(),
                        ))));
                }
            }
        }
    }
}

/// Writes a group of appends and syncs them; rotates to a new segment when one is full.
fn commit(
    segments: &Segments,
    segment_bytes: u64,
    group: &[Append],
) -> Result<Vec<Vec<PayloadLocation>>, EventStoreError> {
    let mut end = *segments.end.lock();
    let mut file = Arc::clone(
        segments
            .files
            .read()
            .last()
            .expect("the payload log has a segment"),
    );
    let mut buffer: Vec<u8> = Vec::new();
    let mut buffer_start = end.offset;
    let mut answers = Vec::with_capacity(group.len());
    for append in group {
        if end.offset > 0 && end.offset + append.bytes.len() as u64 > segment_bytes {
            write_and_sync(&segments.dir, end.segment, &file, &buffer, buffer_start)?;
            buffer.clear();
            end = PayloadPosition {
                segment: end.segment + 1,
                offset: 0,
            };
            let path = segment_path(&segments.dir, end.segment);
            file = Arc::new(files::open_rw(&path)?);
            files::sync_dir(&segments.dir)?;
            segments.files.write().push(Arc::clone(&file));
            buffer_start = 0;
        }
        let mut locations = Vec::with_capacity(append.lengths.len());
        for length in &append.lengths {
            locations.push(PayloadLocation {
                segment: end.segment,
                offset: end.offset,
                length: *length,
            });
            end.offset += HEADER_LEN + u64::from(*length);
        }
        buffer.extend_from_slice(&append.bytes);
        answers.push(locations);
    }
    write_and_sync(&segments.dir, end.segment, &file, &buffer, buffer_start)?;
    *segments.end.lock() = end;
    Ok(answers)
}

/// Writes `bytes` at `offset` of segment `segment` (open as `file`) and syncs them.
fn write_and_sync(
    dir: &Path,
    segment: u32,
    file: &File,
    bytes: &[u8],
    offset: u64,
) -> Result<(), EventStoreError> {
    if bytes.is_empty() {
        return Ok(());
    }
    file.write_all_at(bytes, offset)
        .and_then(|()| file.sync_data())
        .map_err(|source| {
            let path = segment_path(dir, segment);
            EventStoreError::Files(StoreError::io("append payloads to", &path, source))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "5f1b8a0e-2c4d-4e6f-8a9b-0c1d2e3f4a5b";

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
    }

    #[test]
    fn stores_reads_erases_and_rotates_segments() {
        let dir = tempfile::tempdir().expect("dir");
        let log = PayloadLog::open(dir.path(), 300).expect("open");
        let payloads: Vec<Vec<u8>> = (0..10)
            .map(|i| format!("{{\"n\":{i}}}").into_bytes())
            .collect();
        let mut locations = Vec::new();
        for payload in &payloads {
            locations.extend(
                runtime()
                    .block_on(log.append(&[NewPayload {
                        event_id: ID,
                        bytes: payload,
                    }]))
                    .expect("append"),
            );
        }
        assert!(locations.last().expect("some").segment > 0, "rotated");
        for (location, payload) in locations.iter().zip(&payloads) {
            assert_eq!(
                log.read(location, ID).expect("read").as_ref(),
                Some(payload)
            );
        }
        assert!(log.erase(&locations[3], ID).expect("erase"));
        assert_eq!(log.read(&locations[3], ID).expect("read"), None);
        assert!(!log.erase(&locations[3], ID).expect("again"));
        assert!(log
            .read(&locations[4], "00000000-0000-4000-8000-000000000000")
            .is_err());
        let scanned = log.scan_from(PayloadPosition::default()).expect("scan");
        assert_eq!(scanned.len(), 10);
        assert!(!scanned[3].live && scanned[4].live);
        log.close();
        drop(log);
        // The erased bytes are gone from the file itself.
        let file = std::fs::read(segment_path(dir.path(), locations[3].segment)).expect("file");
        let start = (locations[3].offset + HEADER_LEN) as usize;
        assert!(file[start..start + payloads[3].len()]
            .iter()
            .all(|b| *b == 0));
        let log = PayloadLog::open(dir.path(), 300).expect("reopen");
        assert_eq!(
            log.read(&locations[9], ID).expect("read").as_ref(),
            Some(&payloads[9])
        );
    }

    #[test]
    fn cuts_a_torn_tail_and_continues_after_it() {
        let dir = tempfile::tempdir().expect("dir");
        let log = PayloadLog::open(dir.path(), DEFAULT_SEGMENT_BYTES).expect("open");
        let first = runtime()
            .block_on(log.append(&[NewPayload {
                event_id: ID,
                bytes: b"\"kept\"",
            }]))
            .expect("append");
        drop(log);
        let path = segment_path(dir.path(), 0);
        let mut bytes = std::fs::read(&path).expect("read");
        let kept = bytes.len();
        let mut torn = Vec::new();
        encode_record(&mut torn, ID, b"\"torn away\"").expect("encode");
        bytes.extend_from_slice(&torn[..torn.len() - 3]);
        std::fs::write(&path, &bytes).expect("write");
        let log = PayloadLog::open(dir.path(), DEFAULT_SEGMENT_BYTES).expect("reopen");
        assert_eq!(log.end().offset, kept as u64);
        let second = runtime()
            .block_on(log.append(&[NewPayload {
                event_id: ID,
                bytes: b"\"after\"",
            }]))
            .expect("append");
        assert_eq!(second[0].offset, kept as u64);
        assert_eq!(
            log.read(&first[0], ID).expect("read"),
            Some(b"\"kept\"".to_vec())
        );
        assert_eq!(
            log.read(&second[0], ID).expect("read"),
            Some(b"\"after\"".to_vec())
        );
    }
}
