//! Careful file operations: positioned reads and writes that say which file failed, and the
//! fsync dance that makes a new or renamed file survive a crash (the data, then the directory
//! entry that names it).

use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::storage::StoreError;

/// Reads exactly `buf.len()` bytes at `offset`.
pub fn read_exact_at(
    file: &File,
    path: &Path,
    buf: &mut [u8],
    offset: u64,
) -> Result<(), StoreError> {
    file.read_exact_at(buf, offset)
        .map_err(|source| StoreError::io("read", path, source))
}

/// Reads up to `buf.len()` bytes at `offset`, stopping early only at the end of the file.
/// Returns how many were read.
pub fn read_at_most(
    file: &File,
    path: &Path,
    buf: &mut [u8],
    offset: u64,
) -> Result<usize, StoreError> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(read) => filled += read,
            Err(error) if error.kind() == ErrorKind::Interrupted => {}
            Err(source) => return Err(StoreError::io("read", path, source)),
        }
    }
    Ok(filled)
}

/// Makes the directory entries of `dir` durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|handle| handle.sync_all())
        .map_err(|source| StoreError::io("fsync directory", dir, source))
}

/// Creates `dir` (and its parents) if missing.
pub fn ensure_dir(dir: &Path) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(|source| StoreError::io("create directory", dir, source))
}

/// Opens `path` for reading and writing, creating it if needed.
pub fn open_rw(path: &Path) -> Result<File, StoreError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|source| StoreError::io("open", path, source))
}

/// The length of an open file.
pub fn file_len(file: &File, path: &Path) -> Result<u64, StoreError> {
    file.metadata()
        .map(|metadata| metadata.len())
        .map_err(|source| StoreError::io("stat", path, source))
}

/// Cuts `file` to `len` bytes and makes that durable.
pub fn truncate(file: &File, path: &Path, len: u64) -> Result<(), StoreError> {
    file.set_len(len)
        .and_then(|()| file.sync_all())
        .map_err(|source| StoreError::io("truncate", path, source))
}

/// Replaces `path` with `contents` atomically and durably: a temporary file is written and
/// synced, renamed over `path`, and the directory synced.
pub fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), StoreError> {
    let temporary = path.with_extension("tmp");
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&temporary)
        .map_err(|source| StoreError::io("create", &temporary, source))?;
    let leftover = RemoveOnDrop::new(&temporary);
    file.write_all(contents)
        .and_then(|()| file.sync_all())
        .map_err(|source| StoreError::io("write", &temporary, source))?;
    fs::rename(&temporary, path).map_err(|source| StoreError::io("rename", path, source))?;
    leftover.disarm();
    let dir = path.parent().unwrap_or(Path::new("."));
    sync_dir(dir)
}

/// The name of a file that covers entries `[start, end)`: both as 20 digits, then `.extension`.
pub fn range_file_name(start: u64, end: u64, extension: &str) -> String {
    format!("{start:020}-{end:020}.{extension}")
}

/// Parses a [`range_file_name`] back to its range; `None` unless `start < end`.
pub fn parse_range_file_name(name: &str, extension: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(extension)?.strip_suffix('.')?;
    let (start, end) = stem.split_once('-')?;
    let digits = |text: &str| text.len() == 20 && text.bytes().all(|byte| byte.is_ascii_digit());
    if !digits(start) || !digits(end) {
        return None;
    }
    let range = (start.parse().ok()?, end.parse().ok()?);
    (range.0 < range.1).then_some(range)
}

/// Takes the exclusive lock of the store in `dir` (a `flock` on `<dir>/lock`), held while the
/// returned file is open: a second process, or a second store of this one, is refused at once
/// instead of writing beside the first. Released by the kernel when the holder exits, however
/// it exits.
pub fn lock_dir(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join("lock");
    let file = open_rw(&path)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(StoreError::BadConfig(format!(
            "{} is in use by another cairn-log process (or another store of this one)",
            dir.display()
        ))),
        Err(errno) => Err(StoreError::io("lock", &path, errno.into())),
    }
}

/// Removes a temporary file when dropped, unless [`disarmed`](RemoveOnDrop::disarm): a write
/// that fails half-way leaves nothing behind to take space.
pub struct RemoveOnDrop<'a> {
    path: Option<&'a Path>,
}

impl<'a> RemoveOnDrop<'a> {
    /// Guards `path`.
    pub fn new(path: &'a Path) -> RemoveOnDrop<'a> {
        RemoveOnDrop { path: Some(path) }
    }

    /// Keeps the file.
    pub fn disarm(mut self) {
        self.path = None;
    }
}

impl Drop for RemoveOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(path) = self.path {
            let _ = fs::remove_file(path);
        }
    }
}
