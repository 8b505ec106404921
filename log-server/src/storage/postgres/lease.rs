//! The integrator lease: which one of several front-ends integrates the tree and signs
//! checkpoints, with a fencing token so that a process that lost the lease cannot publish.
//!
//! The lease is one row (`leases`, name `integrator`): holder, token and expiry, all judged by
//! the database's clock, never a front-end's. [`PostgresStore::acquire_lease`] takes it when
//! nobody holds it or its holder let it expire, raising the token by one, and renews it (same
//! token) for the store that holds it while it has not expired. A lapsed lease is never renewed,
//! even when nobody took it in between: its holder gets a new token, and a caller that sees the
//! token change knows that another may have published meanwhile and reads the state again.
//!
//! The fence: [`StateStore::store_checkpoint`](crate::storage::StateStore::store_checkpoint)
//! reads the row `FOR SHARE` in the transaction that writes the checkpoint and refuses unless
//! the row still carries this store's token and has not expired. A takeover must lock the row
//! `FOR UPDATE`, so it waits for that transaction, and the checkpoint is written either wholly
//! before the takeover or not at all. A process stopped past its lease (SIGSTOP) and woken up
//! finds another token or an expired lease and stores nothing. A store that never took the
//! lease may store a checkpoint only while nobody holds it (a log with one front-end needs no
//! lease); once a store took it, it stays fenced by its token for as long as it is open.

use std::path::Path;
use std::time::Duration;

use super::{from_sql_int, DbError, PostgresStore};
use crate::storage::{check_name, StoreError};

/// The name of the integrator's lease row.
const INTEGRATOR: &str = "integrator";

/// The shortest and longest lease.
const LEASE_TERMS: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(100)..=Duration::from_secs(3600);

/// The lease a store took: the token it fences its checkpoints with.
#[derive(Clone, Debug)]
pub(super) struct Held {
    token: i64,
}

/// The lease was granted (taken or renewed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseGrant {
    /// The fencing token: larger than every token granted before to anyone.
    pub token: u64,
    /// Whether this renews the lease this store held (same token), rather than taking it.
    pub renewed: bool,
    /// How long it lasts from now, by the database's clock.
    pub term: Duration,
}

/// The lease is held by another, and has not expired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRefusal {
    /// Who holds it.
    pub holder: String,
    /// With which token.
    pub token: u64,
    /// How long until it expires, unless renewed.
    pub expires_in: Duration,
}

/// What asking for the lease gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// This store holds it now.
    Granted(LeaseGrant),
    /// Another holds it.
    HeldElsewhere(LeaseRefusal),
}

/// The lease row as read under its lock.
struct LeaseRow {
    holder: String,
    token: i64,
    live: bool,
    /// Seconds until expiry (negative once expired).
    remaining: f64,
}

async fn read_row(
    transaction: &tokio_postgres::Transaction<'_>,
    lock: &str,
) -> Result<LeaseRow, DbError> {
    let row = transaction
        .query_opt(
            &format!(
                "SELECT holder, token, expires_at > clock_timestamp(),
                        EXTRACT(EPOCH FROM (expires_at - clock_timestamp()))::float8
                 FROM leases WHERE name = $1 {lock}"
            ),
            &[&INTEGRATOR],
        )
        .await?
        .ok_or_else(|| {
            StoreError::BadConfig(
                "the leases table has no integrator row: the schema is damaged".into(),
            )
        })?;
    Ok(LeaseRow {
        holder: row.get(0),
        token: row.get(1),
        live: row.get(2),
        remaining: row.get(3),
    })
}

fn seconds(value: f64) -> Duration {
    Duration::from_secs_f64(value.clamp(0.0, 1e9))
}

/// Refuses unless `held` is the current, unexpired lease (or, with `held` none, unless nobody
/// holds one). Locks the row `FOR SHARE` until `transaction` ends.
pub(super) async fn fence(
    transaction: &tokio_postgres::Transaction<'_>,
    held: Option<&Held>,
    place: &Path,
) -> Result<(), DbError> {
    let row = read_row(transaction, "FOR SHARE").await?;
    let refusal = match held {
        Some(held) if row.token != held.token => Some(format!(
            "this store's integrator lease (token {}) was taken over by {} (token {}): it may not store a checkpoint",
            held.token, row.holder, row.token
        )),
        Some(held) if !row.live => Some(format!(
            "this store's integrator lease (token {}) expired {:.3} s ago: it may not store a checkpoint before renewing it",
            held.token, -row.remaining
        )),
        None if row.live => Some(format!(
            "{} holds the integrator lease (token {}, {:.3} s left): a store without it may not store a checkpoint",
            row.holder, row.token, row.remaining
        )),
        _ => None,
    };
    match refusal {
        None => Ok(()),
        // Transient: the caller may get the lease again, and then store.
        Some(detail) => Err(StoreError::Database {
            path: place.to_path_buf(),
            detail,
            transient: true,
        }
        .into()),
    }
}

impl PostgresStore {
    /// Takes or renews the integrator lease for `term`, as `holder` (a name for operators:
    /// host and process, say; 1 to 256 bytes). Renewing keeps the token and needs the lease not
    /// to have expired; taking it (nobody held it, or its holder let it expire) raises the
    /// token. From the first call on, this store's checkpoints are fenced by its token.
    pub fn acquire_lease(&self, holder: &str, term: Duration) -> Result<LeaseOutcome, StoreError> {
        check_name(holder)?;
        if !LEASE_TERMS.contains(&term) {
            return Err(StoreError::BadConfig(format!(
                "a lease term of {} ms is outside {} ms to {} ms",
                term.as_millis(),
                LEASE_TERMS.start().as_millis(),
                LEASE_TERMS.end().as_millis()
            )));
        }
        let mut held = self.lease.lock();
        let mine = held.as_ref().map(|held| held.token);
        let term_ms = term.as_millis() as f64;
        let place = &self.place;
        let (outcome, token) =
            self.call("taking the integrator lease", |mut client| async move {
                let transaction = client.transaction().await?;
                let row = read_row(&transaction, "FOR UPDATE").await?;
                let renew = row.live && Some(row.token) == mine;
                if row.live && !renew {
                    return Ok((
                        LeaseOutcome::HeldElsewhere(LeaseRefusal {
                            holder: row.holder,
                            token: from_sql_int(row.token, place, "the lease token")?,
                            expires_in: seconds(row.remaining),
                        }),
                        None,
                    ));
                }
                let token = if renew { row.token } else { row.token + 1 };
                let remaining: f64 = transaction
                    .query_one(
                        "UPDATE leases SET holder = $2, token = $3,
                         expires_at = clock_timestamp() + $4 * interval '1 millisecond'
                     WHERE name = $1
                     RETURNING EXTRACT(EPOCH FROM (expires_at - clock_timestamp()))::float8",
                        &[&INTEGRATOR, &holder, &token, &term_ms],
                    )
                    .await?
                    .get(0);
                transaction.commit().await?;
                Ok((
                    LeaseOutcome::Granted(LeaseGrant {
                        token: from_sql_int(token, place, "the lease token")?,
                        renewed: renew,
                        term: seconds(remaining),
                    }),
                    Some(token),
                ))
            })?;
        if let Some(token) = token {
            *held = Some(Held { token });
        }
        Ok(outcome)
    }

    /// Gives the lease up at once, if this store still holds it, so that another front-end
    /// takes it without waiting for it to expire. Returns whether it was held. The store stays
    /// fenced: it stores no checkpoint until it takes the lease again.
    pub fn release_lease(&self) -> Result<bool, StoreError> {
        let Some(token) = self.lease.lock().as_ref().map(|held| held.token) else {
            return Ok(false);
        };
        self.call("releasing the integrator lease", |client| async move {
            let released = client
                .execute(
                    "UPDATE leases SET expires_at = clock_timestamp()
                     WHERE name = $1 AND token = $2 AND expires_at > clock_timestamp()",
                    &[&INTEGRATOR, &token],
                )
                .await?;
            Ok(released > 0)
        })
    }

    /// The token of the lease this store last took, if it ever took one (whether or not it
    /// still holds it).
    pub fn lease_token(&self) -> Option<u64> {
        self.lease
            .lock()
            .as_ref()
            .and_then(|held| u64::try_from(held.token).ok())
    }
}
