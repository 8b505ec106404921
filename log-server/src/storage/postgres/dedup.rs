//! The dedup lookup of the PostgreSQL store: which of a group of leaf hashes and idempotency
//! keys the log already holds, and at which index each first appears.
//!
//! One statement per kind of key answers a whole group of submissions (a round trip to the
//! database costs about the same for one key and for thousands), and each key in it is one
//! probe of an index of `entries`, so a lookup costs the same however long the log is. A hit
//! that another front-end committed and has not flushed yet is answered only once it is on
//! disk ([`sequence`](super::sequence)).

use std::collections::HashMap;

use super::{from_sql_int, PostgresStore};
use crate::storage::{DedupKey, DuplicateHit, Hash, StoreError};

/// The most keys one dedup lookup statement carries; longer lookups are split.
const LOOKUP_CHUNK: usize = 8192;

/// The first entry of each leaf hash in `$1`: one probe of the `(leaf_hash, idx)` index per
/// hash, whatever the planner believes of the table. Written as `leaf_hash = ANY($1)`, the
/// lookup's plan rested on estimates: on a table not analyzed yet (a new log, or one grown
/// since autovacuum last ran) PostgreSQL assumes each hash matches 0.5% of the rows, and
/// for a few dozen hashes or more it scanned the whole index or table for every lookup, which
/// held three front-ends to a few thousand leaves a second (docs/scaling.md). A hash that is
/// in `$1` twice gives two equal rows.
const LOOKUP_LEAF_HASHES: &str = "
SELECT wanted.leaf_hash, first.idx
FROM UNNEST($1::bytea[]) AS wanted(leaf_hash)
CROSS JOIN LATERAL (
    SELECT idx FROM entries WHERE entries.leaf_hash = wanted.leaf_hash ORDER BY idx LIMIT 1
) AS first";

/// The first entry of each idempotency key digest in `$1`, with the key it was stored with:
/// one probe of the `(key_digest, idx)` index per digest, as in [`LOOKUP_LEAF_HASHES`].
const LOOKUP_KEY_DIGESTS: &str = "
SELECT first.key_digest, first.idx, first.leaf_hash, first.producer, first.idempotency_key
FROM UNNEST($1::bytea[]) AS wanted(key_digest)
CROSS JOIN LATERAL (
    SELECT key_digest, idx, leaf_hash, producer, idempotency_key FROM entries
    WHERE entries.key_digest = wanted.key_digest ORDER BY idx LIMIT 1
) AS first";

impl PostgresStore {
    /// [`SequenceStore::find_duplicates`](crate::storage::SequenceStore::find_duplicates): the
    /// first index of each key of `keys` in the log, if any, in the order of `keys`.
    pub(super) fn look_up_duplicates(
        &self,
        keys: &[DedupKey<'_>],
    ) -> Result<Vec<Option<DuplicateHit>>, StoreError> {
        let leaf_hashes: Vec<&[u8]> = keys
            .iter()
            .filter_map(|key| match key {
                DedupKey::Leaf(hash) => Some(hash.as_bytes().as_slice()),
                DedupKey::Idempotency(_) => None,
            })
            .collect();
        let digests: Vec<&[u8]> = keys
            .iter()
            .filter_map(|key| match key {
                DedupKey::Idempotency(key) => Some(key.digest().as_slice()),
                DedupKey::Leaf(_) => None,
            })
            .collect();
        let place = &self.place;
        let mut by_leaf: HashMap<[u8; 32], (u64, Hash)> = HashMap::new();
        let mut by_key: HashMap<[u8; 32], KeyHit> = HashMap::new();
        for chunk in leaf_hashes.chunks(LOOKUP_CHUNK) {
            let rows = self.call("looking up leaf hashes", |client| async move {
                let statement = client.prepare_cached(LOOKUP_LEAF_HASHES).await?;
                Ok(client.query(&statement, &[&chunk]).await?)
            })?;
            for row in rows {
                let hash = hash_of(row.get(0), place)?;
                let index = from_sql_int(row.get(1), place, "an entry index")?;
                by_leaf.insert(*hash.as_bytes(), (index, hash));
            }
        }
        for chunk in digests.chunks(LOOKUP_CHUNK) {
            let rows = self.call("looking up idempotency keys", |client| async move {
                let statement = client.prepare_cached(LOOKUP_KEY_DIGESTS).await?;
                Ok(client.query(&statement, &[&chunk]).await?)
            })?;
            for row in rows {
                let digest = hash_of(row.get(0), place)?;
                let index = from_sql_int(row.get(1), place, "an entry index")?;
                let leaf_hash = hash_of(row.get(2), place)?;
                by_key.insert(
                    *digest.as_bytes(),
                    KeyHit {
                        index,
                        leaf_hash,
                        producer: row.get(3),
                        key: row.get(4),
                    },
                );
            }
        }
        // A hit may be another front-end's append that is committed and not yet flushed: it
        // is answered only once it is on disk.
        let highest_hit = by_leaf
            .values()
            .map(|&(index, _)| index)
            .chain(by_key.values().map(|hit| hit.index))
            .max();
        if let Some(highest) = highest_hit {
            self.flushed_through(highest + 1)?;
        }
        Ok(keys
            .iter()
            .map(|key| match key {
                DedupKey::Leaf(hash) => by_leaf
                    .get(hash.as_bytes())
                    .map(|&(index, leaf_hash)| DuplicateHit { index, leaf_hash }),
                DedupKey::Idempotency(wanted) => by_key
                    .get(wanted.digest())
                    .filter(|hit| {
                        // Equal digests of different keys would be a SHA-256 collision; the
                        // stored key decides.
                        hit.producer.as_deref() == Some(wanted.producer())
                            && hit.key.as_deref() == Some(wanted.key())
                    })
                    .map(|hit| DuplicateHit {
                        index: hit.index,
                        leaf_hash: hit.leaf_hash,
                    }),
            })
            .collect())
    }
}

/// The first entry of an idempotency key's digest, with the key it was stored with.
struct KeyHit {
    index: u64,
    leaf_hash: Hash,
    producer: Option<String>,
    key: Option<String>,
}

/// A 32-byte column as a hash; anything else is damage (the schema forbids it).
fn hash_of(bytes: Vec<u8>, place: &std::path::Path) -> Result<Hash, StoreError> {
    let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        StoreError::corrupt(place, 0, format!("a stored hash of {} bytes", bytes.len()))
    })?;
    Ok(Hash(array))
}
