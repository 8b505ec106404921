//! Audit events on the log (spec/docs/log-api.md, "/v1"): structured events submitted as JSON
//! (cairn-spec `event`), their payloads kept in the log beside their leaves so that they can be
//! erased without breaking a proof, secondary indexes to query them, legal holds, retention,
//! export, and the roles that guard all of it.
//!
//! - [`auth`]: principals, their roles, bearer-token authentication.
//! - [`store`]: the database beside the log: indexes, holds, erasure marks, all derived from
//!   the log (payloads are stored in the log, beside their leaves).
//! - [`records`]: legal holds and erasure marks, read back from the log's admin events.
//! - [`privacy`]: schema 2 contents encrypted under per-subject data keys, index tags,
//!   crypto-shredding.
//! - [`index`]: the events index (in-memory tables and sorted runs, derived from the log);
//!   [`postgres`]: the scaled backend's events index and subjects' keys in PostgreSQL.
//! - [`submit`]: how events (the producers' and the server's own, self-audit) become leaves.
//! - [`admin`]: erasure, legal holds and retention erasures, each recorded as an event first.
//! - [`retention`]: the background task that erases expired payloads.
//! - [`self_audit`]: every search, event view and export recorded as an event of the reader.
//! - `conformance` (with the feature of that name, for tests): the suite every events index
//!   ([`EventIndexStore`]) passes.
//!
//! The `/v1` routes are above this module, in [`crate::routes::events`], so that nothing here
//! depends on HTTP.

pub mod admin;
pub mod auth;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod index;
pub mod model;
pub mod postgres;
pub mod privacy;
pub mod records;
pub mod retention;
pub mod self_audit;
pub mod store;
pub mod submit;

use std::collections::HashMap;
use std::time::Duration;

pub use auth::{Principal, Role};
pub use model::EventIndexStore;
pub use retention::RetentionRule;
pub use store::{
    EventStore, EventStoreConfig, EventStoreError, EventSummary, Hold, HoldTarget, QueryFilter,
};
pub use submit::{Events, Submitted};

/// Most events in one `POST /v1/events/batch`, by default.
pub const DEFAULT_MAX_BATCH_EVENTS: usize = 1000;

/// The event part of the server's settings.
#[derive(Clone, Debug)]
pub struct EventSettings {
    /// Principals by the SHA-256 of their bearer token (producers of the `producers` list are
    /// added here with role producer).
    pub principals: HashMap<[u8; 32], Principal>,
    /// Payload retention rules.
    pub retention: Vec<RetentionRule>,
    /// Time between retention runs.
    pub maintenance_interval: Duration,
    /// Most events in one batch.
    pub max_batch_events: usize,
    /// Sizes of the events database (index tables and runs).
    pub store: EventStoreConfig,
    /// Whether the log keeps the completeness index and carries its root in every checkpoint
    /// (`crate::completeness`); off for a log of raw leaves.
    pub completeness_index: bool,
    /// Whether every search, event view and export is recorded as an event
    /// ([`self_audit`]).
    pub self_audit: bool,
}

impl Default for EventSettings {
    fn default() -> EventSettings {
        EventSettings {
            principals: HashMap::new(),
            retention: Vec::new(),
            maintenance_interval: Duration::from_secs(60),
            max_batch_events: DEFAULT_MAX_BATCH_EVENTS,
            store: EventStoreConfig::default(),
            completeness_index: true,
            self_audit: true,
        }
    }
}
