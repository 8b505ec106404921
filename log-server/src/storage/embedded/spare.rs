//! The spare segment: a zero-filled file, made ahead by a background thread, that becomes the
//! next segment when the active one is sealed.
//!
//! Zeros written ahead of the batches spare the batches' `fdatasync` a metadata commit (see
//! [`super::segment`]), but writing them inline, a chunk at a time, holds up the batch that
//! needs the next chunk. A whole segment's zeros, written and synced in the background into a
//! file of its own, cost the appending thread nothing: at the seal, the spare is renamed into
//! place and the new segment starts fully zero-filled. Only the segment a store opens with
//! falls back to inline chunks. A spare is asked for once the active segment is half full, so a
//! small log never writes one.
//!
//! The spare's zeros are written with `O_DIRECT` where the file system allows it: through the
//! page cache they cost a page allocation per 4 KiB, as much CPU as a busy log's own appends.
//! Written that way, the spare's pages are not cached, and a write covering part of an uncached
//! page would first read it from the disk: the segment writer pads every batch to a page boundary
//! with zeros ([`super::segment`]), so it only ever writes whole new pages.
//!
//! The spare lives in the segments directory as `spare.tmp`. It is not part of the log: a store
//! that opens deletes any spare it finds and makes a new one.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use super::files;
use crate::storage::StoreError;

/// The spare's file name in the segments directory.
pub const SPARE_FILE_NAME: &str = "spare.tmp";
/// Zeros are written this much at a time.
const WRITE_CHUNK: usize = 1 << 20;
/// `O_DIRECT` writes start and end on multiples of this (the page size, and a multiple of
/// every logical block size in use).
pub const DIRECT_ALIGN: usize = 4096;
/// And synced every this many bytes, so that the disk never holds a long backlog of them that
/// would delay the batches' own syncs.
const SYNC_EVERY: u64 = 32 << 20;

#[derive(Debug, PartialEq, Eq)]
enum State {
    /// None is needed yet.
    Idle,
    /// A spare should be made.
    Wanted,
    /// A spare is being made.
    Making,
    /// A spare of this many bytes is ready.
    Ready(u64),
    /// Making one failed; asked for again at the next seal.
    Failed,
    /// The store is closing.
    Stopped,
}

struct Shared {
    path: PathBuf,
    length: u64,
    state: Mutex<State>,
    changed: Condvar,
}

/// The maker of spare segments.
pub struct Spares {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl Spares {
    /// Deletes any spare left in `dir` and starts the thread that makes spares of `length`
    /// bytes when asked ([`Spares::want`]).
    pub fn start(dir: &Path, length: u64) -> Result<Spares, StoreError> {
        let path = dir.join(SPARE_FILE_NAME);
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(StoreError::io("remove", &path, source)),
        }
        let shared = Arc::new(Shared {
            path,
            length,
            state: Mutex::new(State::Idle),
            changed: Condvar::new(),
        });
        let thread = {
            let shared = Arc::clone(&shared);
            std::thread::Builder::new()
                .name("cairn-seg-spare".into())
                .spawn(move || make_spares(&shared))
                .map_err(|source| {
                    StoreError::io("start the spare-segment thread for", dir, source)
                })?
        };
        Ok(Spares {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Asks for a spare, unless one is ready or being made.
    pub fn want(&self) {
        let mut state = self.shared.state.lock();
        if matches!(*state, State::Idle | State::Failed) {
            *state = State::Wanted;
            self.shared.changed.notify_all();
        }
    }

    /// Renames the ready spare, if one is ready, to `to` (the new segment's path) and returns
    /// its length. Without one, returns `None`. The caller syncs the directory.
    pub fn take_as(&self, to: &Path) -> Result<Option<u64>, StoreError> {
        let mut state = self.shared.state.lock();
        let State::Ready(length) = *state else {
            return Ok(None);
        };
        // Renamed under the lock: the thread cannot start the next spare over this one.
        std::fs::rename(&self.shared.path, to)
            .map_err(|source| StoreError::io("rename the spare segment to", to, source))?;
        *state = State::Idle;
        Ok(Some(length))
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        *self.shared.state.lock() = State::Stopped;
        self.shared.changed.notify_all();
        if let Some(thread) = self.thread.lock().take() {
            if thread.join().is_err() {
                tracing::error!("the spare-segment thread panicked");
            }
        }
    }
}

fn make_spares(shared: &Shared) {
    loop {
        {
            let mut state = shared.state.lock();
            while *state != State::Wanted {
                if *state == State::Stopped {
                    return;
                }
                shared.changed.wait(&mut state);
            }
            *state = State::Making;
        }
        let made = make_one(shared);
        let mut state = shared.state.lock();
        if *state == State::Stopped {
            return;
        }
        *state = match made {
            Ok(Some(length)) => State::Ready(length),
            // Stopped half-way: leave the partial file for the next open to delete.
            Ok(None) => return,
            Err(error) => {
                tracing::warn!(%error, "could not make a spare segment; the next segment is zero-filled as it grows");
                // Asked for again when the active segment next grows.
                State::Failed
            }
        };
    }
}

/// Writes the spare in full and syncs it; returns its length (`shared.length`, rounded up to
/// whole pages when written with `O_DIRECT`), or `None` if the store began closing meanwhile.
fn make_one(shared: &Shared) -> Result<Option<u64>, StoreError> {
    let path = &shared.path;
    let (file, direct) = create(path)?;
    // A zeroed buffer with an aligned window in it, as O_DIRECT needs; safe code cannot ask the
    // allocator for the alignment itself.
    let buffer = vec![0u8; WRITE_CHUNK + DIRECT_ALIGN];
    let start = buffer.as_ptr().align_offset(DIRECT_ALIGN);
    let zeros = buffer
        .get(start..start + WRITE_CHUNK)
        .ok_or_else(|| StoreError::BadConfig("no aligned window in the zero buffer".into()))?;
    let length = if direct {
        shared.length.next_multiple_of(DIRECT_ALIGN as u64)
    } else {
        shared.length
    };
    let mut offset = 0u64;
    while offset < length {
        if *shared.state.lock() == State::Stopped {
            return Ok(None);
        }
        let chunk = WRITE_CHUNK.min((length - offset) as usize);
        file.write_all_at(&zeros[..chunk], offset)
            .map_err(|source| StoreError::io("zero-fill", path, source))?;
        offset += chunk as u64;
        if !direct && offset.is_multiple_of(SYNC_EVERY) {
            file.sync_data()
                .map_err(|source| StoreError::io("fdatasync", path, source))?;
        }
    }
    file.sync_all()
        .map_err(|source| StoreError::io("fsync", path, source))?;
    files::sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    Ok(Some(length))
}

/// Creates the spare, with `O_DIRECT` if the file system takes it (tmpfs does not). Returns the
/// file and whether it bypasses the page cache.
fn create(path: &Path) -> Result<(File, bool), StoreError> {
    let options = |direct: bool| {
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        if direct {
            options.custom_flags(rustix::fs::OFlags::DIRECT.bits() as i32);
        }
        options
    };
    match options(true).open(path) {
        Ok(file) => Ok((file, true)),
        Err(_) => options(false)
            .open(path)
            .map(|file| (file, false))
            .map_err(|source| StoreError::io("create", path, source)),
    }
}
