//! Sorted runs of the dedup index on disk.
//!
//! A run holds the dedup keys of the entries `[start, end)`: pairs (64-bit key prefix, entry
//! index) sorted by key, written once, synced, and renamed into place, so a run file exists
//! complete or not at all. Its name says the range it covers, so the runs on disk also say,
//! durably and atomically with the data, how far the index reaches (the "indexed through"
//! watermark). Runs are merged, never changed.
//!
//! ```text
//! "CAIRNDDP" · u64 LE start · u64 LE end · u64 LE pair count · pairs (u64 LE key, u64 LE index)
//! · u32 LE CRC-32 of everything before
//! ```
//!
//! The key of every 256th pair stays in memory (the fences), so a lookup reads one 4 KiB block.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::bloom::Bloom;
use crate::storage::embedded::files;
use crate::storage::StoreError;

const MAGIC: &[u8; 8] = b"CAIRNDDP";
const HEADER_LEN: u64 = 32;
const PAIR_LEN: u64 = 16;
const BLOCK_PAIRS: u64 = 256;

/// One run file.
pub struct Run {
    pub path: PathBuf,
    file: File,
    pub start: u64,
    pub end: u64,
    pub pairs: u64,
    fences: Vec<u64>,
}

/// The file name of the run covering `[start, end)`.
pub fn run_file_name(start: u64, end: u64) -> String {
    files::range_file_name(start, end, "run")
}

/// Parses a run file name back to its range.
pub fn parse_run_file_name(name: &str) -> Option<(u64, u64)> {
    files::parse_range_file_name(name, "run")
}

impl Run {
    /// Writes a run of `pairs` (sorted here) covering `[start, end)` into `dir`, durably.
    pub fn write(
        dir: &Path,
        start: u64,
        end: u64,
        pairs: &mut [(u64, u64)],
    ) -> Result<Run, StoreError> {
        pairs.sort_unstable();
        write_sorted(
            dir,
            start,
            end,
            pairs.len() as u64,
            pairs.iter().copied().map(Ok),
        )
    }

    /// Opens a run file, checking its checksum, and adds its keys to `bloom` if given.
    pub fn open(path: &Path, bloom: Option<&Bloom>) -> Result<Run, StoreError> {
        let file = File::open(path).map_err(|source| StoreError::io("open", path, source))?;
        let len = files::file_len(&file, path)?;
        let mut reader = BufReader::with_capacity(1 << 20, &file);
        let mut header = [0u8; HEADER_LEN as usize];
        reader
            .read_exact(&mut header)
            .map_err(|source| StoreError::io("read", path, source))?;
        let field = |at: usize| u64::from_le_bytes(header[at..at + 8].try_into().expect("8 bytes"));
        let (start, end, pairs) = (field(8), field(16), field(24));
        if &header[..8] != MAGIC || len != HEADER_LEN + pairs.saturating_mul(PAIR_LEN) + 4 {
            return Err(StoreError::corrupt(
                path,
                0,
                "not a complete dedup run file",
            ));
        }
        let mut crc = crc32fast::Hasher::new();
        crc.update(&header);
        let mut fences = Vec::with_capacity(pairs.div_ceil(BLOCK_PAIRS) as usize);
        let mut pair = [0u8; PAIR_LEN as usize];
        let mut previous = None;
        for position in 0..pairs {
            reader
                .read_exact(&mut pair)
                .map_err(|source| StoreError::io("read", path, source))?;
            crc.update(&pair);
            let key = u64::from_le_bytes(pair[..8].try_into().expect("8 bytes"));
            let index = u64::from_le_bytes(pair[8..].try_into().expect("8 bytes"));
            if previous.is_some_and(|previous| previous > (key, index))
                || index < start
                || index >= end
            {
                return Err(StoreError::corrupt(
                    path,
                    HEADER_LEN + position * PAIR_LEN,
                    "dedup run is out of order or names an entry outside its range",
                ));
            }
            previous = Some((key, index));
            if position % BLOCK_PAIRS == 0 {
                fences.push(key);
            }
            if let Some(bloom) = bloom {
                bloom.insert(key);
            }
        }
        let mut stored = [0u8; 4];
        reader
            .read_exact(&mut stored)
            .map_err(|source| StoreError::io("read", path, source))?;
        if crc.finalize().to_le_bytes() != stored {
            return Err(StoreError::corrupt(
                path,
                len - 4,
                "dedup run checksum does not match",
            ));
        }
        Ok(Run {
            path: path.to_path_buf(),
            file,
            start,
            end,
            pairs,
            fences,
        })
    }

    /// The indices stored under `key`, appended to `out`.
    pub fn lookup(&self, key: u64, out: &mut Vec<u64>) -> Result<(), StoreError> {
        let first_block = self
            .fences
            .partition_point(|&fence| fence < key)
            .saturating_sub(1);
        let mut block = [0u8; (BLOCK_PAIRS * PAIR_LEN) as usize];
        for (number, &fence) in self.fences.iter().enumerate().skip(first_block) {
            if fence > key {
                break;
            }
            let first_pair = number as u64 * BLOCK_PAIRS;
            let count = (self.pairs - first_pair).min(BLOCK_PAIRS);
            let bytes = &mut block[..(count * PAIR_LEN) as usize];
            files::read_exact_at(
                &self.file,
                &self.path,
                bytes,
                HEADER_LEN + first_pair * PAIR_LEN,
            )?;
            for pair in bytes.chunks_exact(PAIR_LEN as usize) {
                let pair_key = u64::from_le_bytes(pair[..8].try_into().expect("8 bytes"));
                if pair_key == key {
                    out.push(u64::from_le_bytes(pair[8..].try_into().expect("8 bytes")));
                }
            }
        }
        Ok(())
    }

    /// Every pair, in order.
    fn pairs(
        &self,
    ) -> Result<impl Iterator<Item = Result<(u64, u64), StoreError>> + '_, StoreError> {
        let file =
            File::open(&self.path).map_err(|source| StoreError::io("open", &self.path, source))?;
        let mut reader = BufReader::with_capacity(1 << 20, file);
        let mut header = [0u8; HEADER_LEN as usize];
        reader
            .read_exact(&mut header)
            .map_err(|source| StoreError::io("read", &self.path, source))?;
        Ok((0..self.pairs).map(move |_| {
            let mut pair = [0u8; PAIR_LEN as usize];
            reader
                .read_exact(&mut pair)
                .map_err(|source| StoreError::io("read", &self.path, source))?;
            Ok((
                u64::from_le_bytes(pair[..8].try_into().expect("8 bytes")),
                u64::from_le_bytes(pair[8..].try_into().expect("8 bytes")),
            ))
        }))
    }

    /// Every key, for rebuilding a filter.
    pub fn add_keys_to(&self, bloom: &Bloom) -> Result<(), StoreError> {
        for pair in self.pairs()? {
            bloom.insert(pair?.0);
        }
        Ok(())
    }

    /// Merges contiguous runs (sorted by range) into one new run file in `dir`.
    pub fn merge(dir: &Path, runs: &[&Run]) -> Result<Run, StoreError> {
        let start = runs.first().map_or(0, |run| run.start);
        let end = runs.last().map_or(0, |run| run.end);
        let total = runs.iter().map(|run| run.pairs).sum();
        let mut sources = Vec::with_capacity(runs.len());
        for run in runs {
            sources.push(run.pairs()?.peekable());
        }
        let merged = std::iter::from_fn(move || {
            let mut best: Option<(usize, (u64, u64))> = None;
            for (position, source) in sources.iter_mut().enumerate() {
                match source.peek() {
                    Some(Ok(pair)) if best.is_none_or(|(_, best)| *pair < best) => {
                        best = Some((position, *pair))
                    }
                    Some(Err(_)) => return source.next(),
                    _ => {}
                }
            }
            let (position, _) = best?;
            sources[position].next()
        });
        write_sorted(dir, start, end, total, merged)
    }

    /// Deletes the run's file.
    pub fn remove(&self) -> Result<(), StoreError> {
        fs::remove_file(&self.path).map_err(|source| StoreError::io("remove", &self.path, source))
    }
}

fn write_sorted(
    dir: &Path,
    start: u64,
    end: u64,
    count: u64,
    pairs: impl Iterator<Item = Result<(u64, u64), StoreError>>,
) -> Result<Run, StoreError> {
    let path = dir.join(run_file_name(start, end));
    let temporary = path.with_extension("tmp");
    let file =
        File::create(&temporary).map_err(|source| StoreError::io("create", &temporary, source))?;
    // A write that fails (a full disk) gives its space back at once, not at the next open.
    let leftover = files::RemoveOnDrop::new(&temporary);
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut crc = crc32fast::Hasher::new();
    let mut put = |writer: &mut BufWriter<File>, bytes: &[u8]| {
        crc.update(bytes);
        writer.write_all(bytes)
    };
    let mut header = Vec::with_capacity(HEADER_LEN as usize);
    header.extend_from_slice(MAGIC);
    for field in [start, end, count] {
        header.extend_from_slice(&field.to_le_bytes());
    }
    put(&mut writer, &header).map_err(|source| StoreError::io("write", &temporary, source))?;
    let mut written = 0u64;
    let mut fences = Vec::with_capacity(count.div_ceil(BLOCK_PAIRS) as usize);
    for pair in pairs {
        let (key, index) = pair?;
        if written.is_multiple_of(BLOCK_PAIRS) {
            fences.push(key);
        }
        let mut bytes = [0u8; PAIR_LEN as usize];
        bytes[..8].copy_from_slice(&key.to_le_bytes());
        bytes[8..].copy_from_slice(&index.to_le_bytes());
        put(&mut writer, &bytes).map_err(|source| StoreError::io("write", &temporary, source))?;
        written += 1;
    }
    if written != count {
        return Err(StoreError::corrupt(
            &temporary,
            0,
            format!("merge produced {written} pairs, expected {count}"),
        ));
    }
    let crc = crc.finalize();
    writer
        .write_all(&crc.to_le_bytes())
        .map_err(|source| StoreError::io("write", &temporary, source))?;
    let file = writer
        .into_inner()
        .map_err(|error| StoreError::io("write", &temporary, error.into_error()))?;
    file.sync_all()
        .map_err(|source| StoreError::io("fsync", &temporary, source))?;
    drop(file);
    fs::rename(&temporary, &path).map_err(|source| StoreError::io("rename", &path, source))?;
    leftover.disarm();
    files::sync_dir(dir)?;
    let file = File::open(&path).map_err(|source| StoreError::io("open", &path, source))?;
    Ok(Run {
        path,
        file,
        start,
        end,
        pairs: count,
        fences,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_every_key_including_repeats_across_blocks() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut pairs: Vec<(u64, u64)> = (0..2000u64).map(|index| (index / 3, index)).collect();
        let run = Run::write(dir.path(), 0, 2000, &mut pairs).expect("write");
        for key in 0..667u64 {
            let mut found = Vec::new();
            run.lookup(key, &mut found).expect("lookup");
            let expected: Vec<u64> = (key * 3..(key * 3 + 3).min(2000)).collect();
            assert_eq!(found, expected, "key {key}");
        }
        let mut found = Vec::new();
        run.lookup(5000, &mut found).expect("lookup");
        assert!(found.is_empty());
    }

    #[test]
    fn merge_keeps_every_pair_in_order() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut first: Vec<(u64, u64)> = (0..1000u64)
            .map(|index| (index * 7 % 1000, index))
            .collect();
        let mut second: Vec<(u64, u64)> = (1000..1500u64)
            .map(|index| (index * 7 % 1000, index))
            .collect();
        let a = Run::write(dir.path(), 0, 1000, &mut first).expect("write");
        let b = Run::write(dir.path(), 1000, 1500, &mut second).expect("write");
        let merged = Run::merge(dir.path(), &[&a, &b]).expect("merge");
        assert_eq!((merged.start, merged.end, merged.pairs), (0, 1500, 1500));
        let reopened = Run::open(&merged.path, None).expect("reopen");
        let mut found = Vec::new();
        reopened
            .lookup(7 * 1200 % 1000, &mut found)
            .expect("lookup");
        assert!(found.contains(&1200));
    }

    #[test]
    fn refuses_a_damaged_run() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut pairs: Vec<(u64, u64)> = (0..100u64).map(|index| (index, index)).collect();
        let run = Run::write(dir.path(), 0, 100, &mut pairs).expect("write");
        let mut bytes = fs::read(&run.path).expect("read");
        bytes[100] ^= 1;
        fs::write(&run.path, &bytes).expect("write");
        assert!(Run::open(&run.path, None).is_err());
    }

    #[test]
    fn run_file_names_round_trip() {
        assert_eq!(parse_run_file_name(&run_file_name(3, 99)), Some((3, 99)));
        assert_eq!(
            parse_run_file_name("00000000000000000003-00000000000000000003.run"),
            None
        );
        assert_eq!(parse_run_file_name("x.run"), None);
    }
}
