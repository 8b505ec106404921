//! Reading a server's TOML configuration file, written once for `cairn-log`, `cairn-witness` and
//! `cairn-monitor`: a bounded read (a file larger than the limit, or one that keeps growing
//! such as `/dev/zero`, is refused without being read to its end), UTF-8, and TOML parsed into
//! the server's own `serde` type. Every error is a [`ConfigFileError`] that names the file and,
//! for a TOML error, the line and column it is at.
//!
//! The rest of the configuration is each server's: the keys of its file (a `serde` type with
//! `deny_unknown_fields`), and the environment variables and flags that win over the file,
//! which `clap` reads (`CAIRN_<SERVER>_<KEY>`, `--<key>`; the edge's keys through
//! [`settings!`](crate::settings)). The order is the same everywhere: flag, then environment,
//! then file, then default.

use std::io::Read as _;
use std::path::{Path, PathBuf};

/// Lays the keys of `$over` that are set over those of `$base`: each named field, an `Option`
/// in both, is replaced by `$over`'s when that is `Some`. This is how each server lays its
/// flags and environment variables (a `clap::Args` struct) over its file (the same struct
/// read from TOML), so that the order flag, environment, file, default is written once.
///
/// ```
/// #[derive(Clone, Default)]
/// struct Keys { listen: Option<String>, workers: Option<u32> }
/// let mut file = Keys { listen: Some("file".into()), workers: Some(2) };
/// let flags = Keys { listen: Some("flag".into()), workers: None };
/// cairn_edge::overlay!(file, flags, listen, workers);
/// assert_eq!((file.listen.as_deref(), file.workers), (Some("flag"), Some(2)));
/// ```
#[macro_export]
macro_rules! overlay {
    ($base:ident, $over:ident, $($field:ident),+ $(,)?) => {
        $( if $over.$field.is_some() { $base.$field = $over.$field.clone(); } )+
    };
}

/// The largest configuration file read unless a server sets its own limit: room for the ten
/// thousand principals a log may name, and a bound on what a wrong path costs.
pub const MAX_CONFIG_FILE_BYTES: u64 = 16 << 20;

/// Why a configuration file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    /// The file could not be opened or read.
    #[error("reading {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds more than the limit.
    #[error("{} is larger than {limit} bytes, the most read from it", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// The limit, in bytes.
        limit: u64,
    },
    /// The file is not UTF-8 text.
    #[error("{} is not UTF-8 (byte {offset} is not)", path.display())]
    NotUtf8 {
        /// The file.
        path: PathBuf,
        /// The first byte that is not part of a UTF-8 character.
        offset: usize,
    },
    /// The TOML is malformed, or does not have the keys and types the server expects.
    #[error("{}{}: {message}", path.display(), Position::describe(*position))]
    Toml {
        /// The file.
        path: PathBuf,
        /// Where in the file, if the parser said.
        position: Option<Position>,
        /// What is wrong.
        message: String,
    },
}

/// A place in a text file, both counted from 1; the column counts characters, not bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// The line.
    pub line: usize,
    /// The character in the line.
    pub column: usize,
}

impl Position {
    /// The position of byte `offset` of `text` (the end of the text if beyond it).
    fn of(text: &str, offset: usize) -> Position {
        let mut offset = offset.min(text.len());
        while !text.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |newline| newline + 1);
        Position {
            line: before.matches('\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
        }
    }

    /// `", line L, column C"`, or nothing without a position.
    fn describe(position: Option<Position>) -> String {
        match position {
            Some(Position { line, column }) => format!(", line {line}, column {column}"),
            None => String::new(),
        }
    }
}

/// A configuration file read into memory: its path and its text.
#[derive(Clone, Debug)]
pub struct ConfigFile {
    path: PathBuf,
    text: String,
}

impl ConfigFile {
    /// Reads `path`, at most `max_bytes` of it, as UTF-8 text.
    pub fn read(path: &Path, max_bytes: u64) -> Result<ConfigFile, ConfigFileError> {
        let bytes = read_bounded(path, max_bytes)?;
        let text = String::from_utf8(bytes).map_err(|error| ConfigFileError::NotUtf8 {
            path: path.to_owned(),
            offset: error.utf8_error().valid_up_to(),
        })?;
        Ok(ConfigFile {
            path: path.to_owned(),
            text,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text, as read.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text parsed as TOML into `T`.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, ConfigFileError> {
        parse_toml(&self.path, &self.text)
    }
}

/// Reads `path` (at most `max_bytes`) and parses it as TOML into `T`: a server's whole
/// configuration file in one call.
pub fn load<T: serde::de::DeserializeOwned>(
    path: &Path,
    max_bytes: u64,
) -> Result<T, ConfigFileError> {
    ConfigFile::read(path, max_bytes)?.parse()
}

/// Parses `text`, the contents of `path`, as TOML into `T`; an error names `path` and the line
/// and column of the fault.
pub fn parse_toml<T: serde::de::DeserializeOwned>(
    path: &Path,
    text: &str,
) -> Result<T, ConfigFileError> {
    toml::from_str(text).map_err(|error| ConfigFileError::Toml {
        path: path.to_owned(),
        position: error.span().map(|span| Position::of(text, span.start)),
        // One line: the parser's message may have several.
        message: error
            .message()
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty())
            .collect::<Vec<_>>()
            .join("; "),
    })
}

/// The bytes of `path`, refused beyond `max_bytes`. The limit holds while reading, not only by
/// the size the file had when opened, so a file that grows (or a device without a size) costs
/// at most `max_bytes + 1` bytes of memory.
pub fn read_bounded(path: &Path, max_bytes: u64) -> Result<Vec<u8>, ConfigFileError> {
    let failed = |source| ConfigFileError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(failed)?;
    let size_hint = file.metadata().map_or(0, |metadata| metadata.len());
    if size_hint > max_bytes {
        return Err(ConfigFileError::TooLarge {
            path: path.to_owned(),
            limit: max_bytes,
        });
    }
    let mut bytes = Vec::with_capacity(usize::try_from(size_hint).unwrap_or(0));
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(failed)?;
    if bytes.len() as u64 > max_bytes {
        return Err(ConfigFileError::TooLarge {
            path: path.to_owned(),
            limit: max_bytes,
        });
    }
    Ok(bytes)
}
