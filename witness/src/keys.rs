//! Key files: the witness's signed-note private key (`PRIVATE+KEY+<name>+<id>+<key>`, C2SP
//! signed-note) and the TSA's keys, each in a file only its owner may read.
//!
//! A key file readable or writable by group or others is refused rather than used: a witness
//! key that others can read is a key others can cosign with.

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The largest key file read.
pub const MAX_KEY_FILE_SIZE: u64 = 16 * 1024;

/// Why a key file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    /// The file could not be read or written.
    #[error("key file {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// The file's permissions let others than its owner in.
    #[error("key file {path} has mode {mode:04o}; it must be 0600 (chmod 600 {path})")]
    TooOpen {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The file is larger than [`MAX_KEY_FILE_SIZE`] or not UTF-8.
    #[error("key file {path} is not a key: {detail}")]
    NotAKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

/// Reads a key file's text, trimmed, after checking its mode is 0600 (or stricter).
pub fn read_key_file(path: &Path) -> Result<String, KeyFileError> {
    let io = |error| KeyFileError::Io {
        path: path.to_owned(),
        error,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let metadata = file.metadata().map_err(io)?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::TooOpen {
            path: path.to_owned(),
            mode,
        });
    }
    if metadata.len() > MAX_KEY_FILE_SIZE {
        return Err(KeyFileError::NotAKey {
            path: path.to_owned(),
            detail: format!("{} bytes, at most {MAX_KEY_FILE_SIZE}", metadata.len()),
        });
    }
    let mut text = String::new();
    file.take(MAX_KEY_FILE_SIZE)
        .read_to_string(&mut text)
        .map_err(|error| KeyFileError::NotAKey {
            path: path.to_owned(),
            detail: error.to_string(),
        })?;
    Ok(text.trim().to_owned())
}

/// Writes a new key file with mode 0600, refusing to overwrite one, and fsyncs it.
pub fn write_key_file(path: &Path, text: &str) -> Result<(), KeyFileError> {
    let io = |error| KeyFileError::Io {
        path: path.to_owned(),
        error,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.write_all(b"\n").map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_key_file_readable_by_others() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        write_key_file(&path, "secret").expect("writes");
        assert_eq!(read_key_file(&path).expect("reads"), "secret");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        assert!(matches!(
            read_key_file(&path),
            Err(KeyFileError::TooOpen { mode: 0o644, .. })
        ));
    }

    #[test]
    fn never_overwrites_a_key_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("key");
        write_key_file(&path, "one").expect("writes");
        assert!(write_key_file(&path, "two").is_err());
        assert_eq!(read_key_file(&path).expect("reads"), "one");
    }
}
