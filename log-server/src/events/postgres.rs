//! The events database of the scaled backend over PostgreSQL, in the database of the log's
//! sequence ([`crate::storage::postgres`]), shared by every front-end: the events index
//! ([`index`]) and the data subjects' keys ([`keys`]). They implement the seams of this module
//! ([`super::EventIndexStore`], [`super::privacy::keystore::KeyRows`]), so they sit here, above
//! storage, rather than in it.

pub mod index;
pub mod keys;

pub use index::PostgresEventIndex;
pub use keys::PostgresKeyRows;
