//! The data directory: its process lock, and the files of an older Cairn it refuses.

use std::fs::File;
use std::path::Path;

use crate::open::Error;

/// The exclusive lock of a data directory, held while this value lives, and released by the
/// kernel however its process exits.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

/// Takes the exclusive lock of `dir` (a `flock` on `<dir>/lock`, created if missing): a second
/// process on the same state is refused at once ([`Error::Locked`]) instead of writing beside
/// the first.
pub fn lock_dir(dir: &Path) -> Result<DirLock, Error> {
    let path = dir.join("lock");
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| Error::Io {
            operation: "open",
            path: path.clone(),
            source,
        })?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(DirLock { _file: file }),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(Error::Locked {
            dir: dir.to_path_buf(),
        }),
        Err(errno) => Err(Error::Io {
            operation: "flock",
            path,
            source: errno.into(),
        }),
    }
}

/// Whether `dir` holds a sled 0.34 database (its `conf` and `db` files), the state of a Cairn
/// older than its SQLite files. Servers refuse such a directory with their reason: they never
/// read it, and starting afresh beside it would forget what it holds.
pub fn holds_sled(dir: &Path) -> bool {
    dir.join("conf").is_file() && dir.join("db").is_file()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Failure;

    #[test]
    fn a_second_lock_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = lock_dir(dir.path()).expect("locks");
        let refused = lock_dir(dir.path()).expect_err("held");
        assert!(matches!(refused, Error::Locked { .. }));
        assert_eq!(refused.failure(), Failure::Refused);
        drop(first);
        lock_dir(dir.path()).expect("locks again");
    }

    #[test]
    fn sled_files_are_recognised() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!holds_sled(dir.path()));
        std::fs::write(dir.path().join("conf"), b"segment_size: 524288\n").expect("writes");
        assert!(!holds_sled(dir.path()));
        std::fs::write(dir.path().join("db"), b"").expect("writes");
        assert!(holds_sled(dir.path()));
    }
}
