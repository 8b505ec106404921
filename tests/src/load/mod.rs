//! The load generator: many keep-alive HTTP/1.1 connections sending POSTs to one server, and
//! an honest account of what came back.
//!
//! A run is described by a [`LoadConfig`] (checked once, when built), executed by [`run`], and
//! summarised in a [`Report`]. Each connection is a hyper 1 client connection over its own TCP
//! stream, reused for every request it sends, and carries at most one request at a time (HTTP/1.1
//! without pipelining), so a run with N connections never has more than N requests in flight.
//!
//! Two ways to pace requests ([`Pacing`]):
//! - **closed loop**: each connection sends its next request as soon as the previous one was
//!   answered. This finds the throughput ceiling; latency is measured from the moment a request
//!   is sent.
//! - **fixed rate** (open loop): requests are scheduled at a target total rate, spread evenly
//!   over the connections. When the server falls behind, a connection sends its overdue requests
//!   at once, and latency is measured from when each request *should* have been sent. A stalled
//!   server therefore shows up as the latency its callers would have seen, not as a pause in
//!   the measurements ("coordinated omission", as wrk2 corrects it).
//!
//! What the requests carry ([`Workload`]) follows the log's HTTP API: `add` (one leaf per POST),
//! `add-batch` (many leaves per POST, framed as in [`framing`]), `events` (a JSON audit event per
//! POST) and `raw` (a fixed body to any path, for baselines).
//!
//! The generator only talks to the address it is given, and by default only to a loopback
//! address: it is a tool for measuring one's own servers.

pub mod cli;
pub mod config;
pub mod engine;
pub mod framing;
pub mod report;
mod tls;
pub mod workload;

pub use config::{ConfigError, LeafKind, LoadConfig, Pacing, Target, Workload};
pub use engine::{run, LoadError};
pub use report::{Errors, LatencySummary, Report};
