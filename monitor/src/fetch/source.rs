//! [`LogSource`], where a log's checkpoint, tiles and entry bundles are read from: its HTTP read
//! API through the [`Fetcher`], or a local directory in the same layout (`checkpoint`,
//! `tile/<L>/<N>[.p/<W>]`, `tile/entries/<N>[.p/<W>]`), as any static mirror of the log holds
//! it; and the reading of level-0 tiles with their entry bundles in batches, many at once.

use std::io::Read as _;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use cairn_spec::tiles::{EntryBundle, Tile, TILE_WIDTH};

use super::{
    join, FetchError, Fetcher, CONCURRENT_FETCHES, MAX_BUNDLE_BYTES, MAX_TILE_BYTES, READER_THREADS,
};
use crate::verify::FetchedTile;

/// Where a log's checkpoint, tiles and entry bundles are read from.
#[derive(Debug, Clone)]
pub enum LogSource {
    /// The log's HTTP read API at a base URL.
    Http {
        /// The fetcher.
        fetcher: Fetcher,
        /// The base URL.
        base: String,
    },
    /// A local directory in the tlog-tiles layout (a static mirror of the log).
    Dir(PathBuf),
}

/// A log location that is neither an HTTP(S) URL nor a `file://` URL of an absolute path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("log location {0:?}: expected an http://, https:// or file:///absolute/path URL")]
pub struct BadLocation(pub String);

impl LogSource {
    /// The source a log URL names: `http://` and `https://` are read with `fetcher`,
    /// `file:///path` (percent-encoded as URLs are) from the directory at that path.
    pub fn from_url(url: &str, fetcher: Fetcher) -> Result<LogSource, BadLocation> {
        let bad = || BadLocation(url.to_owned());
        let lowercase = url.to_ascii_lowercase();
        if lowercase.starts_with("http://") || lowercase.starts_with("https://") {
            return Ok(LogSource::Http {
                fetcher,
                base: url.to_owned(),
            });
        }
        let path = lowercase
            .starts_with("file://")
            .then(|| &url["file://".len()..])
            .filter(|path| path.starts_with('/'))
            .ok_or_else(bad)?;
        Ok(LogSource::Dir(PathBuf::from(
            percent_decode(path).ok_or_else(bad)?,
        )))
    }

    /// Reads the file at `path` (relative, as in tlog-tiles: `checkpoint`, `tile/0/000`),
    /// refusing more than `limit` bytes.
    pub async fn get(&self, path: &str, limit: usize) -> Result<Vec<u8>, FetchError> {
        match self {
            LogSource::Http { fetcher, base } => fetcher.get(&join(base, path), limit).await,
            LogSource::Dir(dir) => {
                let (dir, path) = (dir.clone(), path.to_owned());
                let full = dir.join(&path);
                tokio::task::spawn_blocking(move || {
                    let mut data = Vec::new();
                    read_file(&dir, &path, limit, &mut data).map(|()| data)
                })
                .await
                .unwrap_or_else(|_| {
                    Err(FetchError::File {
                        path: full,
                        source: std::io::Error::other("the reading thread panicked"),
                    })
                })
            }
        }
    }
}

/// The level-0 tiles of a batch as fetched: those before the first that could not be fetched,
/// in order, and why that one could not.
#[derive(Debug)]
pub struct Level0Batch {
    /// Tiles `start..` of the batch, up to the first failure.
    pub tiles: Vec<FetchedTile>,
    /// Why the batch stopped early, if it did.
    pub failure: Option<FetchError>,
}

impl Level0Batch {
    /// The fetched prefix of per-tile results in tile order.
    fn prefix(results: impl IntoIterator<Item = Result<FetchedTile, FetchError>>) -> Level0Batch {
        let mut tiles = Vec::new();
        for result in results {
            match result {
                Ok(fetched) => tiles.push(fetched),
                Err(error) => {
                    return Level0Batch {
                        tiles,
                        failure: Some(error),
                    }
                }
            }
        }
        Level0Batch {
            tiles,
            failure: None,
        }
    }
}

/// The level-0 tiles (and bundles, if `entries`) of `tiles` at the widths a tree of `size` gives
/// them.
fn level0_plan(tiles: Range<u64>, size: u64) -> Vec<(Tile, EntryBundle)> {
    let width = u64::from(TILE_WIDTH);
    tiles
        .map(|index| {
            let tile_width = u16::try_from((size - index * width).min(width)).expect("<= 256");
            (
                Tile::new(0, index, tile_width).expect("a level-0 tile of a tree of that size"),
                EntryBundle::new(index, tile_width).expect("its entry bundle"),
            )
        })
        .collect()
}

impl LogSource {
    /// Fetches the level-0 tiles `tiles` of a tree of `size` (each below its size) and, if
    /// `entries`, their entry bundles: concurrently over HTTP, from several threads from a
    /// directory.
    /// Buffers for files read from a directory come from `buffers`.
    pub async fn fetch_level0(
        &self,
        tiles: Range<u64>,
        size: u64,
        entries: bool,
        buffers: &Arc<BufferPool>,
    ) -> Level0Batch {
        let plan = level0_plan(tiles, size);
        match self {
            LogSource::Http { fetcher, base } => {
                // A few workers, each fetching one tile (and bundle) after another over its
                // keep-alive connection: fewer tasks and wake-ups than a task a tile.
                let plan = Arc::new(plan);
                let next = Arc::new(AtomicUsize::new(0));
                let mut workers = tokio::task::JoinSet::new();
                for _ in 0..CONCURRENT_FETCHES.min(plan.len()) {
                    let (fetcher, base) = (fetcher.clone(), base.clone());
                    let (plan, next) = (plan.clone(), next.clone());
                    workers.spawn(async move {
                        let mut done = Vec::new();
                        while let Some(&(tile, bundle)) =
                            plan.get(next.fetch_add(1, Ordering::Relaxed))
                        {
                            let result = fetch_one(&fetcher, &base, tile, bundle, entries).await;
                            let failed = result.is_err();
                            done.push((tile.index(), result));
                            if failed {
                                // Tiles after a failure are not used: stop claiming them.
                                next.store(plan.len(), Ordering::Relaxed);
                            }
                        }
                        done
                    });
                }
                let mut results = Vec::new();
                while let Some(joined) = workers.join_next().await {
                    results.extend(
                        joined
                            .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic())),
                    );
                }
                results.sort_unstable_by_key(|(index, _)| *index);
                Level0Batch::prefix(results.into_iter().map(|(_, result)| result))
            }
            LogSource::Dir(dir) => {
                let dir = dir.clone();
                let buffers = buffers.clone();
                tokio::task::spawn_blocking(move || read_level0(&dir, &plan, entries, &buffers))
                    .await
                    .unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()))
            }
        }
    }
}

/// Fetches one tile and, if `entries`, its bundle over HTTP.
async fn fetch_one(
    fetcher: &Fetcher,
    base: &str,
    tile: Tile,
    bundle: EntryBundle,
    entries: bool,
) -> Result<FetchedTile, FetchError> {
    let data = fetcher
        .get(&join(base, &tile.path()), MAX_TILE_BYTES)
        .await?;
    let entries = if entries {
        Some(
            fetcher
                .get(&join(base, &bundle.path()), MAX_BUNDLE_BYTES)
                .await?,
        )
    } else {
        None
    };
    Ok(FetchedTile {
        tile,
        data,
        entries,
    })
}

/// Buffers for tiles and bundles read from a directory, handed back once their bytes are
/// checked and written: reused, they stay in memory, where fresh ones would be faulted in page
/// by page and given back to the kernel by the allocator, batch after batch. It keeps only as
/// many as it lent (none for bodies fetched over HTTP), and at most [`POOLED_BUFFERS`].
#[derive(Debug, Default)]
pub struct BufferPool(std::sync::Mutex<Pooled>);

#[derive(Debug, Default)]
struct Pooled {
    idle: Vec<Vec<u8>>,
    lent: usize,
}

/// The most buffers a pool keeps: a few batches' worth.
const POOLED_BUFFERS: usize = 2048;

impl BufferPool {
    /// An empty buffer of at least `capacity` bytes.
    pub fn take(&self, capacity: usize) -> Vec<u8> {
        let pooled = self.0.lock().ok().and_then(|mut pool| {
            pool.lent += 1;
            pool.idle.pop()
        });
        let mut buffer = pooled.unwrap_or_default();
        buffer.clear();
        buffer.reserve(capacity);
        buffer
    }

    /// Hands a buffer back for reuse.
    pub fn give(&self, buffer: Vec<u8>) {
        if let Ok(mut pool) = self.0.lock() {
            if pool.lent > 0 && pool.idle.len() < POOLED_BUFFERS {
                pool.lent -= 1;
                pool.idle.push(buffer);
            }
        }
    }
}

/// Reads the planned tiles (and bundles) from `dir` on [`READER_THREADS`] threads.
fn read_level0(
    dir: &Path,
    plan: &[(Tile, EntryBundle)],
    entries: bool,
    buffers: &BufferPool,
) -> Level0Batch {
    let next = AtomicUsize::new(0);
    let read = |(tile, bundle): &(Tile, EntryBundle)| -> Result<FetchedTile, FetchError> {
        // Sized for the tile, so that it is read in one call (and one more that finds the end).
        let mut data = buffers.take(usize::from(tile.width()) * 32 + 1);
        read_file(dir, &tile.path(), MAX_TILE_BYTES, &mut data)?;
        let entries = if entries {
            // Sized for entries of 100 bytes; larger ones grow it.
            let mut bundle_data = buffers.take(usize::from(bundle.width()) * 102 + 1);
            read_file(dir, &bundle.path(), MAX_BUNDLE_BYTES, &mut bundle_data)?;
            Some(bundle_data)
        } else {
            None
        };
        Ok(FetchedTile {
            tile: *tile,
            data,
            entries,
        })
    };
    let work = || {
        let mut done = Vec::new();
        while let Some(planned) = plan.get(next.fetch_add(1, Ordering::Relaxed)) {
            let result = read(planned);
            let failed = result.is_err();
            done.push((planned.0.index(), result));
            if failed {
                // Tiles after a failure are not used: stop claiming them.
                next.store(plan.len(), Ordering::Relaxed);
            }
        }
        done
    };
    let mut results = std::thread::scope(|scope| {
        let readers: Vec<_> = (1..READER_THREADS).map(|_| scope.spawn(work)).collect();
        let mut results = work();
        for reader in readers {
            results.extend(
                reader
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            );
        }
        results
    });
    results.sort_unstable_by_key(|(index, _)| *index);
    Level0Batch::prefix(results.into_iter().map(|(_, result)| result))
}

/// Reads `dir/path` into `data` (cleared first), refusing files over `limit` bytes while it
/// reads, so that no more than `limit + 1` bytes are ever held.
pub fn read_file(
    dir: &Path,
    path: &str,
    limit: usize,
    data: &mut Vec<u8>,
) -> Result<(), FetchError> {
    let full = dir.join(path.trim_start_matches('/'));
    let failed = |source| FetchError::File {
        path: full.clone(),
        source,
    };
    let file = std::fs::File::open(&full).map_err(failed)?;
    data.clear();
    file.take(limit as u64 + 1)
        .read_to_end(data)
        .map_err(failed)?;
    if data.len() > limit {
        return Err(FetchError::TooLarge {
            url: full.display().to_string(),
            limit,
        });
    }
    Ok(())
}

/// Decodes `%XX` escapes; `None` for a malformed escape or bytes that are not UTF-8.
fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut position = 0;
    while position < bytes.len() {
        if bytes[position] == b'%' {
            let digits = bytes.get(position + 1..position + 3)?;
            if !digits.iter().all(u8::is_ascii_hexdigit) {
                return None;
            }
            let digits = std::str::from_utf8(digits).expect("hex digits are ASCII");
            decoded.push(u8::from_str_radix(digits, 16).expect("two hex digits"));
            position += 3;
        } else {
            decoded.push(bytes[position]);
            position += 1;
        }
    }
    String::from_utf8(decoded).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn source(url: &str) -> Result<LogSource, BadLocation> {
        LogSource::from_url(url, Fetcher::new(Duration::from_secs(1)))
    }

    #[test]
    fn log_locations_are_http_urls_or_file_urls_of_absolute_paths() {
        assert!(matches!(
            source("http://127.0.0.1:1/log"),
            Ok(LogSource::Http { .. })
        ));
        assert!(matches!(
            source("HTTPS://example.com"),
            Ok(LogSource::Http { .. })
        ));
        let dir = |url| match source(url) {
            Ok(LogSource::Dir(path)) => Some(path),
            _ => None,
        };
        assert_eq!(dir("file:///srv/log"), Some(PathBuf::from("/srv/log")));
        assert_eq!(
            dir("file:///srv/my%20log"),
            Some(PathBuf::from("/srv/my log"))
        );
        for refused in [
            "/srv/log",
            "srv/log",
            "file://srv/log",
            "file:///srv/%zz",
            "file:///srv/%+f",
            "file:///srv/%2",
            "file:///srv/%ff",
            "ftp://example.com",
            "",
        ] {
            assert_eq!(
                source(refused).err(),
                Some(BadLocation(refused.to_owned())),
                "{refused}"
            );
        }
    }

    #[test]
    fn buffer_pool_keeps_only_what_it_lent() {
        let pool = BufferPool::default();
        pool.give(Vec::with_capacity(100));
        let first = pool.take(10);
        assert!(
            first.capacity() >= 10 && first.capacity() < 100,
            "kept a buffer it never lent"
        );
        let pointer = first.as_ptr();
        pool.give(first);
        let again = pool.take(5);
        assert_eq!(again.as_ptr(), pointer, "the lent buffer is reused");
        assert!(again.is_empty());
    }

    #[test]
    fn local_files_are_read_within_their_limit() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("tile/0")).expect("mkdir");
        std::fs::write(dir.path().join("tile/0/000"), [7u8; 64]).expect("writes");
        let mut data = vec![1, 2, 3];
        read_file(dir.path(), "tile/0/000", 64, &mut data).expect("reads");
        assert_eq!(data, vec![7u8; 64]);
        assert!(matches!(
            read_file(dir.path(), "tile/0/000", 63, &mut data),
            Err(FetchError::TooLarge { limit: 63, .. })
        ));
        assert!(matches!(
            read_file(dir.path(), "tile/0/001", 64, &mut data),
            Err(FetchError::File { .. })
        ));
    }
}
