//! The size limits a store enforces.

use super::{NewEntry, StoreError};

/// The most payload bytes one read of entries with their payloads
/// ([`SequenceStore::read_entries_with_payloads`](super::SequenceStore::read_entries_with_payloads))
/// may hold, counting each payload at its largest size: 64 MiB.
pub const PAYLOAD_READ_BYTES: u64 = 64 * 1024 * 1024;

/// Size limits a store enforces, so that nothing read from a request or from disk can make it
/// allocate without bound.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreLimits {
    /// The largest leaf, in bytes.
    pub max_leaf_bytes: u32,
    /// The most entries in one append.
    pub max_batch_entries: u32,
    /// The largest payload beside a leaf, in bytes.
    pub max_payload_bytes: u32,
    /// The most leaf and payload bytes in one append.
    pub max_batch_bytes: u64,
    /// The most entries or hashes one read returns.
    pub max_read_count: u64,
}

impl Default for StoreLimits {
    fn default() -> StoreLimits {
        StoreLimits {
            max_leaf_bytes: 64 * 1024,
            max_payload_bytes: 1024 * 1024,
            max_batch_entries: 64 * 1024,
            max_batch_bytes: 64 * 1024 * 1024,
            max_read_count: 64 * 1024,
        }
    }
}

impl StoreLimits {
    /// Checks an append against the limits.
    pub fn check_batch(&self, entries: &[NewEntry]) -> Result<(), StoreError> {
        if entries.len() as u64 > u64::from(self.max_batch_entries) {
            return Err(StoreError::LimitExceeded {
                what: "entries in one append",
                found: entries.len() as u64,
                limit: u64::from(self.max_batch_entries),
            });
        }
        let mut bytes = 0u64;
        for entry in entries {
            self.check_leaf(entry.leaf().len())?;
            if let Some(payload) = entry.payload() {
                self.check_payload(payload.len())?;
            }
            bytes += entry.stored_bytes() as u64;
        }
        if bytes > self.max_batch_bytes {
            return Err(StoreError::LimitExceeded {
                what: "leaf and payload bytes in one append",
                found: bytes,
                limit: self.max_batch_bytes,
            });
        }
        Ok(())
    }

    /// Checks one leaf's size.
    pub fn check_leaf(&self, leaf_bytes: usize) -> Result<(), StoreError> {
        at_most("leaf size in bytes", leaf_bytes, self.max_leaf_bytes)
    }

    /// Checks one payload's size.
    pub fn check_payload(&self, payload_bytes: usize) -> Result<(), StoreError> {
        at_most(
            "payload size in bytes",
            payload_bytes,
            self.max_payload_bytes,
        )
    }

    /// The most entries one read with their payloads takes: no more than `max_read_count`, and
    /// few enough that their payloads, each up to `max_payload_bytes`, fit in
    /// [`PAYLOAD_READ_BYTES`] (at least one).
    pub fn max_read_with_payloads(&self) -> u64 {
        (PAYLOAD_READ_BYTES / u64::from(self.max_payload_bytes).max(1))
            .min(self.max_read_count)
            .max(1)
    }

    /// Checks the length of a read of entries with their payloads.
    pub fn check_read_with_payloads(&self, count: u64) -> Result<(), StoreError> {
        let limit = self.max_read_with_payloads();
        if count > limit {
            return Err(StoreError::LimitExceeded {
                what: "entries in one read with their payloads",
                found: count,
                limit,
            });
        }
        Ok(())
    }

    /// Checks the length of a read.
    pub fn check_read(&self, count: u64) -> Result<(), StoreError> {
        if count > self.max_read_count {
            return Err(StoreError::LimitExceeded {
                what: "items in one read",
                found: count,
                limit: self.max_read_count,
            });
        }
        Ok(())
    }
}

/// `found` bytes of `what`, refused if over `limit`.
fn at_most(what: &'static str, found: usize, limit: u32) -> Result<(), StoreError> {
    if found as u64 > u64::from(limit) {
        return Err(StoreError::LimitExceeded {
            what,
            found: found as u64,
            limit: u64::from(limit),
        });
    }
    Ok(())
}
