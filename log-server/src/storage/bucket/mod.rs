//! The tree in an S3-compatible bucket, at its C2SP tlog-tiles paths, so that monitors and
//! mirrors read the log straight from the bucket (or a CDN in front of it).
//!
//! [`BucketTree`] is a [`TreeStore`]: hash level `L` is the hash tiles `tile/<L>/<N>[.p/<W>]`.
//! Appended hashes wait in memory until [`sync_hashes`](TreeStore::sync_hashes), which writes
//! every tile they complete (a full tile is written once and never again) and the partial tile
//! at the end of each level that changed (`.p/<W>`); once its tile is full, that tile's partial
//! objects are deleted (C2SP tlog-tiles lets a client fall back to the full tile). [`publish`]
//! (`BucketTree::publish`) adds the entry bundles `tile/entries/<N>[.p/<W>]` and the checkpoint
//! object `checkpoint`, the latter only after every tile and bundle it covers is written and
//! verified.
//!
//! Every write is idempotent and verified: what is already at the path is read first, the same
//! bytes being a write made before and other bytes a refusal ([`StoreError::Corrupt`]: a second
//! writer or a fork, never overwritten); the object is then written with `If-None-Match: *`
//! and read back and compared. Some servers ignore `If-None-Match` (Garage accepts it and
//! overwrites), so nothing here relies on it: a log has one writer, and that is coordinated
//! outside the bucket (the lease in PostgreSQL), the checks above catching a second one.
//!
//! Reads are served from the hashes not yet written, then from a bounded cache of full tiles
//! (first in, first out), then from the bucket. On open, each level's length is learned from
//! the bucket with a bounded number of requests: an exponential then binary search over
//! `HEAD`s of its full tiles (about 2·log2 of their count), a check of the last
//! [`BucketConfig::concurrency`] tiles below the end found (tiles are written that many at a
//! time, so a crash can leave gaps only there), and one listing of the partial tiles of the
//! first tile that is not full (at most 255 objects). A level never grows beyond what the
//! entries justify: the store asks its log's entry count ([`EntryCount`]) for every append and
//! on open.
//!
//! Every call blocks on a runtime of the store's own; every request has a connect and a request
//! timeout and is retried with exponential backoff a bounded number of times
//! ([`BucketConfig`]), and a whole operation is bounded by
//! [`BucketConfig::operation_timeout`]. A bucket that does not answer is
//! [`StoreError::Io`] (unavailable: the same call may succeed later); bytes that are not what
//! they must be are [`StoreError::Corrupt`].

mod client;
mod publish;
mod reload;

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use cairn_spec::tiles::{decode_tile, encode_tile, Tile, TilePath};
use parking_lot::Mutex;

use self::client::{Bucket, Ops, WriteMode};
use super::{check_level, justified_hash_count, Hash, StoreError, TreeStore, MAX_HASH_LEVEL};

/// Hashes in one full tile.
const TILE: u64 = 256;

/// The most hashes one [`TreeStore::read_hashes`] returns: 4,096 tiles, 32 MiB.
pub const MAX_READ_HASHES: u64 = 1 << 20;

/// The most hashes appended and not yet synced, over all levels: 32 MiB.
pub const MAX_PENDING_HASHES: usize = 1 << 20;

/// How many entries the log holds, durably: its [`SequenceStore`](super::SequenceStore)'s
/// `entry_count`. A level never grows beyond what that justifies.
pub type EntryCount = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Where the bucket is and how the store talks to it.
#[derive(Clone)]
pub struct BucketConfig {
    /// The S3 endpoint, `https://host[:port]` (or `http://` on loopback, see
    /// [`allow_http`](BucketConfig::allow_http)). Requests are path-style:
    /// `<endpoint>/<bucket>/<key>`.
    pub endpoint: String,
    /// The bucket, which must exist.
    pub bucket: String,
    /// A prefix every key is put under (`logs/audit` puts the checkpoint at
    /// `logs/audit/checkpoint`), or empty for the bucket's root.
    pub prefix: String,
    /// The region the requests are signed for (`us-east-1` for most S3-compatible servers).
    pub region: String,
    /// The access key id.
    pub access_key_id: String,
    /// The secret access key (never printed).
    pub secret_access_key: String,
    /// Whether an `http://` endpoint is allowed: by default only on a loopback address.
    pub allow_http: bool,
    /// How long one request may take, body included.
    pub request_timeout: Duration,
    /// How long connecting may take.
    pub connect_timeout: Duration,
    /// How many times a failed request is tried again.
    pub max_retries: usize,
    /// The first pause before a retry; doubled after each, up to `max_backoff`.
    pub initial_backoff: Duration,
    /// The longest pause between two tries.
    pub max_backoff: Duration,
    /// No request is retried after this long since its first try.
    pub retry_timeout: Duration,
    /// How long one operation (a request with all its retries) may take in all.
    pub operation_timeout: Duration,
    /// How many requests are in flight at once (1 to 64).
    pub concurrency: usize,
    /// How many full tiles the read cache holds (8 KiB each).
    pub cache_tiles: usize,
}

impl std::fmt::Debug for BucketConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketConfig")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("allow_http", &self.allow_http)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .field("retry_timeout", &self.retry_timeout)
            .field("operation_timeout", &self.operation_timeout)
            .field("concurrency", &self.concurrency)
            .field("cache_tiles", &self.cache_tiles)
            .finish()
    }
}

impl BucketConfig {
    /// A bucket at `endpoint` with these credentials and the default limits: requests of at
    /// most 10 s (connecting 2 s), 3 retries from 50 ms to 1 s apart within 10 s, 30 s for an
    /// operation, 16 requests at once, 4,096 cached tiles (32 MiB). Plain HTTP is allowed if
    /// the endpoint's host is a loopback address.
    pub fn new(
        endpoint: impl Into<String>,
        bucket: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> BucketConfig {
        let endpoint = endpoint.into();
        let allow_http = is_loopback_http(&endpoint);
        BucketConfig {
            endpoint,
            bucket: bucket.into(),
            prefix: String::new(),
            region: "us-east-1".to_owned(),
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            allow_http,
            request_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            max_retries: 3,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(1),
            retry_timeout: Duration::from_secs(10),
            operation_timeout: Duration::from_secs(30),
            concurrency: 16,
            cache_tiles: 4096,
        }
    }

    fn check(&self) -> Result<(), StoreError> {
        let bad = |why: String| Err(StoreError::BadConfig(format!("bucket: {why}")));
        if self.bucket.is_empty() {
            return bad("the bucket name is empty".to_owned());
        }
        if !(self.endpoint.starts_with("https://") || self.endpoint.starts_with("http://")) {
            return bad(format!(
                "the endpoint {:?} is not an http(s) URL",
                self.endpoint
            ));
        }
        if self.endpoint.starts_with("http://") && !self.allow_http {
            return bad(format!(
                "the endpoint {} is plain HTTP, allowed only on loopback or with allow_http",
                self.endpoint
            ));
        }
        if !(1..=64).contains(&self.concurrency) {
            return bad(format!(
                "concurrency must be 1 to 64, found {}",
                self.concurrency
            ));
        }
        if !(1..=1 << 20).contains(&self.cache_tiles) {
            return bad(format!(
                "cache_tiles must be 1 to {}, found {}",
                1 << 20,
                self.cache_tiles
            ));
        }
        for (name, value) in [
            ("request_timeout", self.request_timeout),
            ("connect_timeout", self.connect_timeout),
            ("retry_timeout", self.retry_timeout),
            ("operation_timeout", self.operation_timeout),
            ("initial_backoff", self.initial_backoff),
        ] {
            if value.is_zero() {
                return bad(format!("{name} must not be zero"));
            }
        }
        if self.max_retries > 20 {
            return bad(format!(
                "max_retries must be at most 20, found {}",
                self.max_retries
            ));
        }
        Ok(())
    }
}

/// Whether `endpoint` is `http://` to a loopback host.
fn is_loopback_http(endpoint: &str) -> bool {
    let Some(rest) = endpoint.strip_prefix("http://") else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(bracketed) => bracketed.split(']').next().unwrap_or(""),
        None => authority
            .rsplit_once(':')
            .map_or(authority, |(host, _)| host),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// One hash level as the store knows it.
#[derive(Default)]
struct Level {
    /// Full tiles written and verified: the hashes `[0, 256·full)` are in the bucket.
    full: u64,
    /// The hashes from `256·full` on, in order: the full tiles not yet written, then the start
    /// of the first tile that is not full.
    tail: Vec<Hash>,
    /// How many of `tail` are in the bucket as the partial tile `full.p/<synced_tail>` (0 when
    /// none are, or when a full tile of the tail is not yet written).
    synced_tail: usize,
    /// The widths of the partial tiles of tile `full` that are in the bucket: deleted once it
    /// is full.
    partials: BTreeSet<u16>,
}

impl Level {
    fn len(&self) -> u64 {
        self.full * TILE + self.tail.len() as u64
    }
}

/// Full tiles read or written, first in first out.
struct TileCache {
    tiles: HashMap<(u8, u64), Arc<Vec<Hash>>>,
    order: VecDeque<(u8, u64)>,
    capacity: usize,
}

impl TileCache {
    fn get(&self, level: u8, index: u64) -> Option<Arc<Vec<Hash>>> {
        self.tiles.get(&(level, index)).cloned()
    }

    fn insert(&mut self, level: u8, index: u64, hashes: Arc<Vec<Hash>>) {
        if self.tiles.insert((level, index), hashes).is_none() {
            self.order.push_back((level, index));
        }
        while self.order.len() > self.capacity {
            if let Some(oldest) = self.order.pop_front() {
                self.tiles.remove(&oldest);
            }
        }
    }
}

struct State {
    levels: Vec<Level>,
    pending: usize,
    cache: TileCache,
}

/// A [`TreeStore`] in an S3-compatible bucket (see the module documentation).
pub struct BucketTree {
    bucket: Bucket,
    entries: EntryCount,
    state: Mutex<State>,
    /// One sync at a time.
    syncing: Mutex<()>,
    /// What the `checkpoint` object covers; one publication at a time.
    published: Mutex<u64>,
}

impl std::fmt::Debug for BucketTree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BucketTree")
            .field("bucket", &self.bucket.url(""))
            .finish_non_exhaustive()
    }
}

/// The key of the tile at `level`, `index` of `width` hashes.
fn tile_key(level: u8, index: u64, width: u64) -> Result<String, StoreError> {
    let width = u16::try_from(width).map_err(|_| bad_tile(&"a tile is at most 256 wide"))?;
    Ok(Tile::new(level, index, width)
        .map_err(|error| bad_tile(&error))?
        .path())
}

fn bad_tile(error: &dyn std::fmt::Display) -> StoreError {
    StoreError::BadConfig(format!("a tile could not be made: {error}"))
}

/// What one sync writes for one level.
struct LevelWrite {
    level: u8,
    /// Index of the first full tile written.
    first: u64,
    /// How many full tiles.
    full_tiles: u64,
    /// The width of the partial tile after them, if one is written.
    partial: Option<u16>,
}

impl BucketTree {
    /// Opens the tree in the bucket `config` names, learning each level's length from the
    /// bucket (see the module documentation). `entries` is the log's entry count.
    pub fn open(config: BucketConfig, entries: EntryCount) -> Result<BucketTree, StoreError> {
        let bucket = Bucket::connect(&config)?;
        let entry_count = entries();
        let mut levels = Vec::new();
        for level in 0..=MAX_HASH_LEVEL {
            let justified = justified_hash_count(level, entry_count);
            levels.push(if justified == 0 {
                Level::default()
            } else {
                open_level(&bucket, level, justified)?
            });
        }
        let published = bucket.call(async |ops: &Ops| publish::published_size(ops).await)?;
        Ok(BucketTree {
            bucket,
            entries,
            state: Mutex::new(State {
                levels,
                pending: 0,
                cache: TileCache {
                    tiles: HashMap::new(),
                    order: VecDeque::new(),
                    capacity: config.cache_tiles,
                },
            }),
            syncing: Mutex::new(()),
            published: Mutex::new(published),
        })
    }

    /// Reads full tiles `indices` of `level` from the bucket (in that order), and caches them.
    fn fetch_tiles(&self, level: u8, indices: Vec<u64>) -> Result<Vec<Arc<Vec<Hash>>>, StoreError> {
        let results = self
            .bucket
            .for_each(indices.clone(), move |ops, index| async move {
                let key = tile_key(level, index, TILE)?;
                let data = ops.get(&key, TILE * 32).await?.ok_or_else(|| {
                    StoreError::corrupt(ops.url(&key), 0, "a full tile the bucket held is gone")
                })?;
                let tile = Tile::new(level, index, 256).map_err(|error| bad_tile(&error))?;
                decode_tile(tile, &data)
                    .map_err(|error| StoreError::corrupt(ops.url(&key), 0, error.to_string()))
            });
        let hashes = all_ok(results)?;
        let mut state = self.state.lock();
        Ok(indices
            .into_iter()
            .zip(hashes)
            .map(|(index, hashes)| {
                let hashes = Arc::new(hashes);
                state.cache.insert(level, index, hashes.clone());
                hashes
            })
            .collect())
    }
}

/// The results of [`Bucket::for_each`], or the first failure among them.
fn all_ok<T>(results: Vec<Option<Result<T, StoreError>>>) -> Result<Vec<T>, StoreError> {
    results
        .into_iter()
        .map(|result| {
            result.unwrap_or_else(|| {
                Err(StoreError::Poisoned(
                    "a request was not made after an earlier one failed".to_owned(),
                ))
            })
        })
        .collect()
}

/// Learns a level's length from the bucket: its full tiles, then its widest partial tile.
fn open_level(bucket: &Bucket, level: u8, justified: u64) -> Result<Level, StoreError> {
    let max_full = justified / TILE;
    let window = bucket.concurrency as u64;
    bucket.call(async |ops: &Ops| {
        let exists = async |index: u64| -> Result<bool, StoreError> {
            if index >= max_full {
                return Ok(false);
            }
            ops.exists(&tile_key(level, index, TILE)?).await
        };
        // Exponential, then binary search for the end of the full tiles.
        let mut full = 0;
        if exists(0).await? {
            let (mut present, mut step) = (0u64, 1u64);
            while exists(present + step).await? {
                present += step;
                step = step.saturating_mul(2);
            }
            let mut absent = present.saturating_add(step).min(max_full);
            while absent - present > 1 {
                let middle = present + (absent - present) / 2;
                if exists(middle).await? {
                    present = middle;
                } else {
                    absent = middle;
                }
            }
            full = present + 1;
            // Tiles are written `window` at a time, so a crash leaves gaps only in the last
            // window: the level ends at the first one missing there.
            for index in full.saturating_sub(window)..full {
                if !exists(index).await? {
                    full = index;
                    break;
                }
            }
        }
        let mut found = Level {
            full,
            ..Level::default()
        };
        let room = justified - full * TILE;
        if room == 0 {
            return Ok(found);
        }
        let prefix = format!("{}.p", tile_key(level, full, TILE)?);
        for key in ops.list(&prefix, 255).await? {
            match TilePath::parse(&key) {
                Ok(TilePath::Tile(tile))
                    if tile.level() == level && tile.index() == full && !tile.is_full() =>
                {
                    found.partials.insert(tile.width());
                }
                _ => {
                    return Err(StoreError::corrupt(
                        ops.url(&key),
                        0,
                        format!("not a partial tile of {prefix}"),
                    ))
                }
            }
        }
        let widest = found
            .partials
            .iter()
            .rev()
            .find(|&&width| u64::from(width) <= room)
            .copied();
        if let Some(width) = widest {
            let key = tile_key(level, full, u64::from(width))?;
            let data = ops.get(&key, u64::from(width) * 32).await?.ok_or_else(|| {
                StoreError::corrupt(ops.url(&key), 0, "a listed partial tile is gone")
            })?;
            let tile = Tile::new(level, full, width).map_err(|error| bad_tile(&error))?;
            found.tail = decode_tile(tile, &data)
                .map_err(|error| StoreError::corrupt(ops.url(&key), 0, error.to_string()))?;
            found.synced_tail = found.tail.len();
        }
        Ok(found)
    })
}

impl TreeStore for BucketTree {
    fn hash_count(&self, level: u8) -> Result<u64, StoreError> {
        check_level(level)?;
        Ok(self.state.lock().levels[usize::from(level)].len())
    }

    fn append_hashes(&self, level: u8, start: u64, hashes: &[Hash]) -> Result<(), StoreError> {
        check_level(level)?;
        let entries = (self.entries)();
        let mut state = self.state.lock();
        let length = state.levels[usize::from(level)].len();
        if start != length {
            return Err(StoreError::HashesNotAtEnd {
                level,
                expected: length,
                found: start,
            });
        }
        let found = length.saturating_add(hashes.len() as u64);
        let justified = justified_hash_count(level, entries);
        if found > justified {
            return Err(StoreError::HashesBeyondEntries {
                level,
                found,
                entries,
                justified,
            });
        }
        if state.pending + hashes.len() > MAX_PENDING_HASHES {
            return Err(StoreError::LimitExceeded {
                what: "hashes appended and not yet synced",
                found: (state.pending + hashes.len()) as u64,
                limit: MAX_PENDING_HASHES as u64,
            });
        }
        state.pending += hashes.len();
        state.levels[usize::from(level)]
            .tail
            .extend_from_slice(hashes);
        Ok(())
    }

    fn read_hashes(&self, level: u8, start: u64, count: u64) -> Result<Vec<Hash>, StoreError> {
        check_level(level)?;
        if count > MAX_READ_HASHES {
            return Err(StoreError::LimitExceeded {
                what: "hashes read at once",
                found: count,
                limit: MAX_READ_HASHES,
            });
        }
        let (in_tiles, from_tail, mut cached, missing) = {
            let state = self.state.lock();
            let stored = &state.levels[usize::from(level)];
            let available = stored.len();
            let end = start.checked_add(count).filter(|&end| end <= available);
            let Some(end) = end else {
                return Err(StoreError::OutOfRange {
                    what: format!("hashes at level {level}"),
                    start,
                    count,
                    available,
                });
            };
            let written = stored.full * TILE;
            let in_tiles = start.min(written)..end.min(written);
            let tail_start = (start.max(written) - written) as usize;
            let tail_end = (end.max(written) - written) as usize;
            let from_tail = stored.tail[tail_start..tail_end].to_vec();
            let mut cached = HashMap::new();
            let mut missing = Vec::new();
            if !in_tiles.is_empty() {
                for index in in_tiles.start / TILE..in_tiles.end.div_ceil(TILE) {
                    match state.cache.get(level, index) {
                        Some(hashes) => {
                            cached.insert(index, hashes);
                        }
                        None => missing.push(index),
                    }
                }
            }
            (in_tiles, from_tail, cached, missing)
        };
        if !missing.is_empty() {
            let fetched = self.fetch_tiles(level, missing.clone())?;
            cached.extend(missing.into_iter().zip(fetched));
        }
        let mut hashes = Vec::with_capacity(count as usize);
        let mut position = in_tiles.start;
        while position < in_tiles.end {
            let index = position / TILE;
            let tile = &cached[&index];
            let from = (position - index * TILE) as usize;
            let to = (in_tiles.end.min((index + 1) * TILE) - index * TILE) as usize;
            hashes.extend_from_slice(&tile[from..to]);
            position = index * TILE + to as u64;
        }
        hashes.extend_from_slice(&from_tail);
        Ok(hashes)
    }

    fn sync_hashes(&self) -> Result<(), StoreError> {
        let _one_at_a_time = self.syncing.lock();
        // What to write: the full tiles of each tail, then its partial tile if new. Only this
        // sync changes `full` and the tail's start, so they hold until it commits.
        let mut plan = Vec::new();
        let mut objects: Vec<(String, Vec<u8>)> = Vec::new();
        {
            let state = self.state.lock();
            for (level, stored) in state.levels.iter().enumerate() {
                let level = level as u8;
                let full_tiles = stored.tail.len() as u64 / TILE;
                let rest = stored.tail.len() % TILE as usize;
                let partial = (rest > 0 && (full_tiles > 0 || rest != stored.synced_tail))
                    .then_some(rest as u16);
                if full_tiles == 0 && partial.is_none() {
                    continue;
                }
                for tile in 0..full_tiles {
                    let hashes = &stored.tail[(tile * TILE) as usize..((tile + 1) * TILE) as usize];
                    objects.push((
                        tile_key(level, stored.full + tile, TILE)?,
                        encode_tile(hashes).map_err(|error| bad_tile(&error))?,
                    ));
                }
                if let Some(width) = partial {
                    let hashes = &stored.tail[(full_tiles * TILE) as usize..];
                    objects.push((
                        tile_key(level, stored.full + full_tiles, u64::from(width))?,
                        encode_tile(hashes).map_err(|error| bad_tile(&error))?,
                    ));
                }
                plan.push(LevelWrite {
                    level,
                    first: stored.full,
                    full_tiles,
                    partial,
                });
            }
        }
        if plan.is_empty() {
            return Ok(());
        }
        let results = self
            .bucket
            .for_each(objects, |ops, (key, data)| async move {
                ops.write_verified(&key, data, WriteMode::Once).await
            });
        // Commit, level by level, the full tiles written without a gap from the level's end,
        // and the partial tile if every full tile before it was written.
        let mut first_error = None;
        let mut obsolete = Vec::new();
        let mut results = results.into_iter();
        let mut state = self.state.lock();
        for write in &plan {
            let mut done = 0;
            let mut whole = true;
            for _ in 0..write.full_tiles {
                match results.next().flatten() {
                    Some(Ok(())) if whole => done += 1,
                    Some(Ok(())) => {}
                    Some(Err(error)) => {
                        whole = false;
                        first_error.get_or_insert(error);
                    }
                    None => whole = false,
                }
            }
            let partial_written = match write.partial {
                None => false,
                Some(_) => match results.next().flatten() {
                    Some(Ok(())) => whole,
                    Some(Err(error)) => {
                        first_error.get_or_insert(error);
                        false
                    }
                    None => false,
                },
            };
            let State {
                levels,
                cache,
                pending,
            } = &mut *state;
            let stored = &mut levels[usize::from(write.level)];
            if done > 0 {
                for width in std::mem::take(&mut stored.partials) {
                    obsolete.push(tile_key(write.level, write.first, u64::from(width))?);
                }
                let written: Vec<Hash> = stored.tail.drain(..(done * TILE) as usize).collect();
                *pending = pending.saturating_sub(written.len());
                for (offset, chunk) in written.chunks(TILE as usize).enumerate() {
                    cache.insert(
                        write.level,
                        write.first + offset as u64,
                        Arc::new(chunk.to_vec()),
                    );
                }
                stored.full += done;
                stored.synced_tail = 0;
            }
            if let (true, Some(width)) = (partial_written, write.partial) {
                stored.synced_tail = usize::from(width);
                stored.partials.insert(width);
            }
        }
        drop(state);
        if let Some(error) = first_error {
            return Err(error);
        }
        self.delete_quietly(obsolete);
        Ok(())
    }
}

impl BucketTree {
    /// Deletes objects nothing needs any more (the partial versions of a full tile or bundle);
    /// a failure leaves garbage, not damage, so it is logged and not returned.
    fn delete_quietly(&self, keys: Vec<String>) {
        if keys.is_empty() {
            return;
        }
        let results = self
            .bucket
            .for_each(keys, |ops, key| async move { ops.delete(&key).await });
        if let Err(error) = all_ok(results) {
            tracing::warn!(%error, "could not delete partial objects made obsolete by a full one");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_is_allowed_by_default_only_on_loopback() {
        for endpoint in [
            "http://127.0.0.1:9000",
            "http://127.8.0.1",
            "http://localhost:9000/",
            "http://[::1]:9000",
        ] {
            assert!(is_loopback_http(endpoint), "{endpoint}");
        }
        for endpoint in [
            "https://127.0.0.1:9000",
            "http://10.0.0.1:9000",
            "http://s3.example.com",
            "http://localhost.example.com",
            "http://[::2]:9000",
        ] {
            assert!(!is_loopback_http(endpoint), "{endpoint}");
        }
    }

    #[test]
    fn configurations_that_cannot_work_are_refused_before_any_request() {
        let never = || -> EntryCount { Arc::new(|| 0) };
        let base = BucketConfig::new("http://127.0.0.1:9", "logs", "key", "secret");
        let cases: Vec<(BucketConfig, &str)> = vec![
            (
                BucketConfig::new("http://s3.example.com", "logs", "key", "secret"),
                "plain HTTP",
            ),
            (
                BucketConfig::new("ftp://127.0.0.1", "logs", "key", "secret"),
                "not an http(s) URL",
            ),
            (
                BucketConfig {
                    bucket: String::new(),
                    ..base.clone()
                },
                "empty",
            ),
            (
                BucketConfig {
                    concurrency: 0,
                    ..base.clone()
                },
                "concurrency",
            ),
            (
                BucketConfig {
                    operation_timeout: Duration::ZERO,
                    ..base.clone()
                },
                "operation_timeout",
            ),
        ];
        for (config, why) in cases {
            match BucketTree::open(config, never()) {
                Err(StoreError::BadConfig(message)) => assert!(message.contains(why), "{message}"),
                other => panic!("expected a refusal naming {why}, got {other:?}"),
            }
        }
        assert!(
            !format!("{base:?}").contains("secret\""),
            "the secret is never printed"
        );
    }
}
