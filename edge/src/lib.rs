//! # cairn-edge
//!
//! The edge of every Cairn server: the one accept loop that serves an axum [`Router`] over
//! HTTP/1.1 for `cairn-log`, `cairn-witness`, `cairn-witness tsa` and `cairn-monitor`, so that
//! what protects a server exposed to anyone is written, configured and tested once.
//!
//! A client that is slow on purpose costs a server a connection (a file descriptor, a task, a
//! buffer) for as long as the server waits for it. So every wait has a bound ([`Limits`]):
//!
//! - **headers**: a request's head must arrive within `header_read_timeout` (hyper's own
//!   timer, which also runs while a keep-alive connection waits for its next request);
//! - **body**: once a handler waits for the body, it gets `body_read_timeout` plus the time the
//!   bytes already received would take at `body_min_bytes_per_sec`; a body that trickles in
//!   slower is cut off and answered 408 ([`body`]);
//! - **idle**: a connection with no request in flight that reads and writes nothing for
//!   `idle_timeout` is closed ([`connection`]);
//! - **connections**: at most `max_connections` are open. At the cap the server stops
//!   accepting, so new connections wait in the kernel's backlog instead of being accepted and
//!   failed, and it sheds the connections that hold a slot without using it: while at the cap,
//!   a connection idle for `overload_idle_timeout` is closed ([`accept`]). Running out of file
//!   descriptors anyway (EMFILE) backs off and says so in one line per interval, not one per
//!   attempt.
//!
//! With a certificate and key ([`tls`]) the server speaks only HTTPS (rustls), reloads the pair
//! when its files change, and can ask for client certificates from a CA (mTLS); the handling
//! of each request knows the certificate its client presented ([`client_certificate`]).
//!
//! [`settings!`] makes the `clap` and TOML settings that configure all of this in each server,
//! and [`log`] sets up every binary's log lines the same way (filter, JSON, no colours off a
//! terminal, no floods); [`metrics`] writes every server's `GET /metrics` text.
//! [`config_file`] reads every server's TOML configuration file the same way: bounded, UTF-8,
//! and an error that names the file, line and column.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod accept;
mod activity;
pub mod body;
pub mod config_file;
pub mod connection;
pub mod log;
pub mod metrics;
mod settings;
pub mod tls;

use std::time::Duration;

pub use accept::serve;
pub use axum::Router;
pub use config_file::{ConfigFile, ConfigFileError};
#[doc(hidden)]
pub use settings::positive as __positive;
pub use settings::SettingsError;
pub use tls::{client_certificate, read_ca_pem, ClientCertificate, Tls, TlsError, TlsFiles};

/// How long a server waits for a client, and how many clients it holds at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest wait for a request's head (request line and headers), counted from the
    /// connection's start or the end of the previous response.
    pub header_read_timeout: Duration,
    /// Time a request body gets beyond what its size needs at `body_min_bytes_per_sec`,
    /// counted from when the handler first waits for it.
    pub body_read_timeout: Duration,
    /// The slowest a request body may arrive, on average, after `body_read_timeout`.
    pub body_min_bytes_per_sec: u64,
    /// Longest time a connection with no request in flight may read and write nothing. It is
    /// checked once per `idle_timeout`, so an idle connection is closed after one to two times
    /// this.
    pub idle_timeout: Duration,
    /// The most connections open at once.
    pub max_connections: usize,
    /// While `max_connections` are open, a connection idle this long is closed to make room.
    pub overload_idle_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            body_min_bytes_per_sec: 4096,
            idle_timeout: Duration::from_secs(5),
            max_connections: default_max_connections(),
            overload_idle_timeout: Duration::from_millis(250),
        }
    }
}

/// The fewest files a server keeps for itself when its connection cap is derived from its
/// open-files limit.
const RESERVED_FILES: u64 = 256;

/// The default connection cap: three quarters of the process's open-files limit
/// (`RLIMIT_NOFILE`, soft), leaving at least [`RESERVED_FILES`] to the server's own files
/// (storage, outgoing connections) and allowing at least 16; 1 << 20 when there is no limit.
pub fn default_max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    let connections = match limit {
        Some(files) => files
            .saturating_sub((files / 4).max(RESERVED_FILES))
            .max(16),
        None => 1 << 20,
    };
    usize::try_from(connections.min(1 << 20)).unwrap_or(1 << 20)
}

/// Everything the edge needs to serve: the limits, and TLS if the server speaks it.
#[derive(Clone, Debug, Default)]
pub struct EdgeConfig {
    /// Timeouts and the connection cap.
    pub limits: Limits,
    /// The certificate and key to serve HTTPS with; plain HTTP without.
    pub tls: Option<Tls>,
}
