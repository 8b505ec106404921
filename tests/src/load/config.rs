//! What one load run does: where it sends, what, how fast, and for how long.
//!
//! Everything is checked when a [`LoadConfig`] is built ([`LoadConfig::validate`]), so the engine
//! never meets a value it cannot honour. Every run is bounded: at most [`MAX_DURATION`] of
//! measurement after at most [`MAX_WARMUP`] of warm-up, at most [`MAX_RATE`] requests per second,
//! at most [`MAX_CONNECTIONS`] connections, and bodies of at most [`MAX_BODY_BYTES`].
//!
//! The target is an address, never a name to look up (except `localhost`), and must be a loopback
//! address unless the caller says otherwise: the generator is for one's own servers.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;

/// The longest measured period a run may last.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);
/// The longest warm-up a run may have.
pub const MAX_WARMUP: Duration = Duration::from_secs(600);
/// The highest total rate a fixed-rate run may ask for, in requests per second.
pub const MAX_RATE: f64 = 10_000_000.0;
/// The most connections a run may open at once.
pub const MAX_CONNECTIONS: usize = 4096;
/// The most servers one run spreads its connections over (`--target` and `--also-target`).
pub const MAX_TARGETS: usize = 64;
/// The largest leaf the generator builds.
pub const MAX_LEAF_BYTES: usize = 16 << 20;
/// The most leaves in one `add-batch` request.
pub const MAX_LEAVES_PER_BATCH: usize = 100_000;
/// The most events in one `events-batch` request (the log's own limit is 1,000 by default).
pub const MAX_EVENTS_PER_BATCH: usize = 10_000;
/// The largest request body the generator sends.
pub const MAX_BODY_BYTES: usize = 64 << 20;
/// The longest a single request may wait for its answer.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// The longest path the generator sends.
pub const MAX_PATH_BYTES: usize = 2048;
/// The longest bearer token the generator sends.
pub const MAX_TOKEN_BYTES: usize = 4096;
/// The smallest unique leaf: an 8-byte run prefix followed by an 8-byte counter.
pub const MIN_UNIQUE_LEAF_BYTES: usize = 16;

/// Why a load run was refused before it started.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// The target is not an `http://` URL with an address (and optional port) and no path.
    #[error("target {found:?}: expected http://ADDRESS[:PORT] (an IP address or localhost, no path): {reason}")]
    BadTarget {
        /// The target as given.
        found: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The target is not a loopback address and remote targets were not allowed.
    #[error(
        "target {0} is not a loopback address; pass --allow-remote if it is a server of your own"
    )]
    RemoteTargetRefused(SocketAddr),
    /// A count or size is outside its bounds.
    #[error("{what}: expected {min} to {max}, found {found}")]
    OutOfRange {
        /// Which setting.
        what: &'static str,
        /// The smallest accepted value.
        min: u64,
        /// The largest accepted value.
        max: u64,
        /// The value given.
        found: u64,
    },
    /// A duration is outside its bounds.
    #[error("{what}: expected {min:?} to {max:?}, found {found:?}")]
    DurationOutOfRange {
        /// Which setting.
        what: &'static str,
        /// The shortest accepted duration.
        min: Duration,
        /// The longest accepted duration.
        max: Duration,
        /// The duration given.
        found: Duration,
    },
    /// The fixed rate is not a number above zero and at most [`MAX_RATE`].
    #[error("rate: expected more than 0 and at most {MAX_RATE} requests/s, found {0}")]
    BadRate(f64),
    /// The request path is not an absolute path of visible ASCII.
    #[error("path {found:?}: expected an absolute path of visible ASCII (at most {MAX_PATH_BYTES} bytes)")]
    BadPath {
        /// The path as given.
        found: String,
    },
    /// The bearer token is not a visible ASCII string without spaces.
    #[error(
        "bearer token: expected 1 to {MAX_TOKEN_BYTES} visible ASCII characters without spaces"
    )]
    BadToken,
    /// The content type is not a visible ASCII string.
    #[error("content type {found:?}: expected visible ASCII")]
    BadContentType {
        /// The content type as given.
        found: String,
    },
    /// An https:// target without a CA file, or a CA file that does not load.
    #[error("TLS: {0}")]
    Tls(String),
    /// A duration given on the command line could not be read.
    #[error("duration {found:?}: expected a number followed by ms, s, m or h (seconds if none)")]
    BadDuration {
        /// The text as given.
        found: String,
    },
}

/// The server a run talks to: one socket address, and the authority sent in `Host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Where every connection goes.
    pub addr: SocketAddr,
    /// The `Host` header: the host and port as given.
    pub authority: String,
    /// Whether connections speak TLS (`https://`).
    pub tls: bool,
}

impl Target {
    /// Reads `http://ADDRESS[:PORT]` or `https://ADDRESS[:PORT]` (the scheme may be left out for
    /// http; the port defaults to 80 or 443).
    /// ADDRESS is an IPv4 address, a bracketed IPv6 address, or `localhost` (127.0.0.1); no other
    /// name is looked up. Unless `allow_remote`, the address must be a loopback address.
    pub fn parse(url: &str, allow_remote: bool) -> Result<Target, ConfigError> {
        let bad = |reason| ConfigError::BadTarget {
            found: url.to_owned(),
            reason,
        };
        let (authority, tls) = match url.split_once("://") {
            Some(("http", rest)) => (rest, false),
            Some(("https", rest)) => (rest, true),
            Some(_) => return Err(bad("only http:// and https:// are spoken")),
            None => (url, false),
        };
        let authority = authority.strip_suffix('/').unwrap_or(authority);
        if authority.is_empty() {
            return Err(bad("no address"));
        }
        if authority.contains(['/', '?', '#', '@']) {
            return Err(bad(
                "the target is an address only; give the path with --path",
            ));
        }
        let addr = parse_authority(authority, if tls { 443 } else { 80 })
            .ok_or_else(|| bad("not an address"))?;
        if addr.ip().is_unspecified() {
            return Err(bad("the unspecified address is not a target"));
        }
        if addr.port() == 0 {
            return Err(bad("port 0 is not a target"));
        }
        if !allow_remote && !addr.ip().is_loopback() {
            return Err(ConfigError::RemoteTargetRefused(addr));
        }
        Ok(Target {
            addr,
            authority: authority.to_owned(),
            tls,
        })
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{}", self.authority)
    }
}

fn parse_authority(authority: &str, default_port: u16) -> Option<SocketAddr> {
    if let Ok(addr) = authority.parse::<SocketAddr>() {
        return Some(addr);
    }
    let (host, port) = match authority.rsplit_once(':') {
        // A bare IPv6 address has colons but no port: only the bracketed form takes one.
        Some((host, port)) if !host.contains(':') || host.ends_with(']') => {
            (host, port.parse::<u16>().ok()?)
        }
        _ => (authority, default_port),
    };
    let ip = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        IpAddr::V6(inner.parse().ok()?)
    } else {
        host.parse().ok()?
    };
    Some(SocketAddr::new(ip, port))
}

/// Whether leaves differ from request to request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeafKind {
    /// Every leaf is new: a random prefix chosen per run, then a counter, then filler. A log
    /// with deduplication sequences each one.
    Unique,
    /// Every leaf is the same bytes: a log with deduplication answers with the first index.
    Duplicate,
}

/// What each request carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Workload {
    /// `POST /add`: one leaf per request, the body is the leaf.
    Add {
        /// Bytes in each leaf.
        leaf_size: usize,
        /// Unique or repeated leaves.
        leaf_kind: LeafKind,
    },
    /// `POST /add-batch`: several leaves per request, framed as in [`super::framing`].
    AddBatch {
        /// Bytes in each leaf.
        leaf_size: usize,
        /// Leaves in each request.
        leaves_per_batch: usize,
        /// Unique or repeated leaves.
        leaf_kind: LeafKind,
    },
    /// `POST /v1/events`: one generated audit event per request, in the `cairn.event` v1 schema.
    Events,
    /// `POST /v1/events/batch`: a JSON array of generated audit events per request.
    EventsBatch {
        /// Events in each request.
        events_per_batch: usize,
    },
    /// The same body, to any path: the baseline against a no-op server.
    Raw {
        /// The body of every request.
        body: Bytes,
        /// Its `Content-Type`.
        content_type: String,
    },
}

impl Workload {
    /// The path this workload is sent to unless the caller names another.
    pub fn default_path(&self) -> &'static str {
        match self {
            Workload::Add { .. } => "/add",
            Workload::AddBatch { .. } => "/add-batch",
            Workload::Events => "/v1/events",
            Workload::EventsBatch { .. } => "/v1/events/batch",
            Workload::Raw { .. } => "/",
        }
    }

    /// The name of the mode on the command line.
    pub fn mode_name(&self) -> &'static str {
        match self {
            Workload::Add { .. } => "add",
            Workload::AddBatch { .. } => "add-batch",
            Workload::Events => "events",
            Workload::EventsBatch { .. } => "events-batch",
            Workload::Raw { .. } => "raw",
        }
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let check_leaf = |leaf_size: usize, leaf_kind: LeafKind| {
            let min = match leaf_kind {
                LeafKind::Unique => MIN_UNIQUE_LEAF_BYTES,
                LeafKind::Duplicate => 1,
            };
            in_range("leaf size (bytes)", leaf_size, min, MAX_LEAF_BYTES)
        };
        match self {
            Workload::Add {
                leaf_size,
                leaf_kind,
            } => check_leaf(*leaf_size, *leaf_kind),
            Workload::AddBatch {
                leaf_size,
                leaves_per_batch,
                leaf_kind,
            } => {
                check_leaf(*leaf_size, *leaf_kind)?;
                in_range(
                    "leaves per batch",
                    *leaves_per_batch,
                    1,
                    MAX_LEAVES_PER_BATCH,
                )?;
                let body = leaves_per_batch.saturating_mul(leaf_size.saturating_add(4));
                in_range("batch body (bytes)", body, 1, MAX_BODY_BYTES)
            }
            Workload::Events => Ok(()),
            Workload::EventsBatch { events_per_batch } => in_range(
                "events per batch",
                *events_per_batch,
                1,
                MAX_EVENTS_PER_BATCH,
            ),
            Workload::Raw { body, content_type } => {
                in_range("body size (bytes)", body.len(), 0, MAX_BODY_BYTES)?;
                if content_type.is_empty() || !is_visible_ascii(content_type, true) {
                    return Err(ConfigError::BadContentType {
                        found: content_type.clone(),
                    });
                }
                Ok(())
            }
        }
    }
}

/// How requests are spaced in time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Each connection sends its next request when the previous one was answered.
    ClosedLoop,
    /// Requests are scheduled at this total rate (requests per second) over all connections.
    FixedRate {
        /// The target total rate.
        requests_per_second: f64,
    },
}

/// One load run, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadConfig {
    /// The server.
    pub target: Target,
    /// Further servers of the same log (front-ends of a scaled log): the connections are
    /// spread over `target` and these, round robin. Plain http:// only.
    pub also_targets: Vec<Target>,
    /// The request path (an absolute path, with an optional query).
    pub path: String,
    /// What each request carries.
    pub workload: Workload,
    /// Keep-alive connections, each with at most one request in flight.
    pub connections: usize,
    /// How requests are spaced.
    pub pacing: Pacing,
    /// How long to measure, after the warm-up.
    pub duration: Duration,
    /// Stop after this many measured requests (the duration still bounds the run).
    pub max_requests: Option<u64>,
    /// How long to send before measuring: what is answered for requests sent in this period is
    /// not counted.
    pub warmup: Duration,
    /// How long one request (connecting included) may take before it counts as a timeout.
    pub timeout: Duration,
    /// Sent as `Authorization: Bearer <token>` when present.
    pub bearer_token: Option<String>,
    /// PEM CA certificates an https:// target's certificate must chain to (the load generator
    /// trusts no public root: its targets are one's own servers).
    pub ca_file: Option<std::path::PathBuf>,
}

impl LoadConfig {
    /// A closed-loop run of `workload` against `target` on its default path, 10 s, no warm-up.
    pub fn new(target: Target, workload: Workload) -> LoadConfig {
        LoadConfig {
            target,
            also_targets: Vec::new(),
            path: workload.default_path().to_owned(),
            workload,
            connections: 1,
            pacing: Pacing::ClosedLoop,
            duration: Duration::from_secs(10),
            max_requests: None,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(10),
            bearer_token: None,
            ca_file: None,
        }
    }

    /// Checks every bound; the engine relies on them.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.workload.validate()?;
        if self.target.tls && self.ca_file.is_none() {
            return Err(ConfigError::Tls(
                "an https:// target needs --ca-file: the CA its certificate chains to".into(),
            ));
        }
        if self.also_targets.len() > MAX_TARGETS - 1 {
            return Err(ConfigError::OutOfRange {
                what: "targets",
                min: 1,
                max: MAX_TARGETS as u64,
                found: self.also_targets.len() as u64 + 1,
            });
        }
        if self.also_targets.iter().any(|target| target.tls) {
            return Err(ConfigError::Tls(
                "--also-target takes http:// servers only (one CA and server name per run)".into(),
            ));
        }
        if !self.path.starts_with('/')
            || self.path.len() > MAX_PATH_BYTES
            || !is_visible_ascii(&self.path, false)
        {
            return Err(ConfigError::BadPath {
                found: self.path.clone(),
            });
        }
        in_range("connections", self.connections, 1, MAX_CONNECTIONS)?;
        if let Pacing::FixedRate {
            requests_per_second,
        } = self.pacing
        {
            if !(requests_per_second > 0.0 && requests_per_second <= MAX_RATE) {
                return Err(ConfigError::BadRate(requests_per_second));
            }
        }
        duration_in_range(
            "duration",
            self.duration,
            Duration::from_millis(1),
            MAX_DURATION,
        )?;
        duration_in_range("warm-up", self.warmup, Duration::ZERO, MAX_WARMUP)?;
        duration_in_range(
            "timeout",
            self.timeout,
            Duration::from_millis(1),
            MAX_TIMEOUT,
        )?;
        if let Some(max_requests) = self.max_requests {
            if max_requests == 0 {
                return Err(ConfigError::OutOfRange {
                    what: "requests",
                    min: 1,
                    max: u64::MAX,
                    found: 0,
                });
            }
        }
        if let Some(token) = &self.bearer_token {
            if token.is_empty() || token.len() > MAX_TOKEN_BYTES || !is_visible_ascii(token, false)
            {
                return Err(ConfigError::BadToken);
            }
        }
        Ok(())
    }
}

fn in_range(what: &'static str, found: usize, min: usize, max: usize) -> Result<(), ConfigError> {
    if (min..=max).contains(&found) {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            what,
            min: min as u64,
            max: max as u64,
            found: found as u64,
        })
    }
}

fn duration_in_range(
    what: &'static str,
    found: Duration,
    min: Duration,
    max: Duration,
) -> Result<(), ConfigError> {
    if (min..=max).contains(&found) {
        Ok(())
    } else {
        Err(ConfigError::DurationOutOfRange {
            what,
            min,
            max,
            found,
        })
    }
}

fn is_visible_ascii(text: &str, allow_space: bool) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_graphic() || (allow_space && b == b' '))
}

/// Reads a duration such as `10s`, `250ms`, `1.5m` or `1h`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, ConfigError> {
    let bad = || ConfigError::BadDuration {
        found: text.to_owned(),
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let seconds_per_unit = match unit {
        "" | "s" => 1.0,
        "ms" => 0.001,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let number: f64 = number.parse().map_err(|_| bad())?;
    let seconds = number * seconds_per_unit;
    // Bounds are checked by the caller against its own limits; this only refuses what cannot be
    // a duration at all (a day is far beyond every limit).
    if !seconds.is_finite() || seconds > 86_400.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests;
