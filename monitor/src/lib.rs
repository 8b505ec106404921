//! # cairn-monitor
//!
//! The party that makes a log's misbehaviour visible, and the auditor's offline verifier.
//!
//! - [`fetch`]: a bounded HTTP fetcher for the C2SP tlog-tiles read API and witness checkpoints,
//!   and the log source: its HTTP read API or a local directory in the tlog-tiles layout.
//! - [`verify`]: level-0 tiles checked against their entry bundles on every core.
//! - [`hashes`]: the verified tree's hashes in flat files.
//! - [`key_history`]: the log's keys across rotations: its key history fetched, verified from
//!   the pinned key, and the revoked keys' signatures found.
//! - [`pipeline`]: the stages of a growth beside the follower: fetch ahead, verify, commit.
//! - [`follow`]: the follower of one log: checkpoint, witness policy, every tile and entry
//!   bundle re-verified in a pipeline (fetch ahead, verify on every core, commit behind),
//!   consistency from its own frontier, state in SQLite (an interrupted verification resumes),
//!   gossip checks and split-view evidence (`cairn.evidence/v1`, see `cairn_spec::evidence` and
//!   spec/docs/evidence.md).
//! - [`state`]: the monitor's state file (SQLite): verified states, progress, evidence and the
//!   incidents it proves, with their acknowledgements.
//! - [`error`]: the monitor's own failures (storage, location, runtime), apart from the log's.
//! - [`names`]: an origin written as a URL path segment or in a file name.
//! - [`alert`]: alerts as a state (raised, reminded while active, resolved: log lines, a gauge,
//!   webhook notices) and the metrics behind /metrics.
//! - [`export`]: event exports (`cairn.export/v1`) fetched from a log for an auditor.
//! - [`completeness`]: what an export's completeness proof shows, and `verify-query`: a
//!   saved query answer and its proof.
//! - [`index_audit`]: the log's completeness index replayed from its record stream, checked
//!   against every verified checkpoint and re-derived from the verified leaves.
//! - [`daemon`]: the configuration, the poll loop and the HTTP port (/healthz, /metrics,
//!   /gossip, /status), specified in spec/docs/monitor-api.md.
//! - [`status`]: `GET /status`, the last verdicts of each log and its active alerts, for a
//!   dashboard (the web UI's health panel).
//!
//! The binary adds the auditor's commands: `verify-receipt`, `verify-consistency`,
//! `verify-evidence`, `export`, `verify-export`, `verify-query`, `audit` (a whole log re-verified from its
//! tiles, resumable), and the operator's `incidents` and `acknowledge`; what they print and
//! their exit codes are in `src/report.rs` of the binary (spec/docs/monitor-api.md).

#![forbid(unsafe_code)]

pub mod alert;
pub mod clock;
pub mod completeness;
pub mod daemon;
pub mod error;
pub mod export;
pub mod fetch;
pub mod follow;
pub mod hashes;
pub mod index_audit;
pub mod key_history;
pub mod metrics;
pub mod names;
pub mod pipeline;
pub mod state;
pub mod status;
pub mod verify;
