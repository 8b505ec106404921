//! Keeping the integrator lease: which front-end integrates, signs and publishes.
//!
//! [`LeaseKeeper::run`] asks PostgreSQL for the lease every quarter of its term, whether it
//! holds it (a renewal) or not (a takeover once the holder let it expire: killed, stopped or cut
//! off). The keeper counts the lease as held only until three quarters of the term after it
//! asked, by this machine's monotonic clock: a renewal that does not come through in time lets
//! the integrator stop before the database would let another take over. That is a courtesy,
//! not the safety: the fencing token checked in the transaction that stores a checkpoint
//! ([`crate::storage::postgres::lease`]) refuses a holder whose lease was taken over, however
//! late it wakes up.

use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::sync::watch;

use super::ScaledStore;
use crate::storage::postgres::LeaseOutcome;
use crate::storage::{Coordination, StoreError};

/// The shortest and longest lease term a log may be configured with.
pub const LEASE_TERMS: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(500)..=Duration::from_secs(600);

/// The lease as this process knows it.
#[derive(Clone, Copy, Debug)]
struct Holding {
    token: u64,
    /// Held until then, by this machine's clock (three quarters of the term after asking).
    until: Instant,
}

/// Asks for the integrator lease and knows whether this process holds it; see the
/// [module](self) documentation.
pub struct LeaseKeeper {
    store: Arc<ScaledStore>,
    holder: String,
    term: Duration,
    held: Mutex<Option<Holding>>,
}

impl LeaseKeeper {
    /// A keeper that asks for the lease in `store` as `holder` (a name for operators: host,
    /// process, address) for `term` at a time.
    pub fn new(
        store: Arc<ScaledStore>,
        holder: String,
        term: Duration,
    ) -> Result<LeaseKeeper, StoreError> {
        if !LEASE_TERMS.contains(&term) {
            return Err(StoreError::BadConfig(format!(
                "a lease term of {} ms is outside {} ms to {} ms",
                term.as_millis(),
                LEASE_TERMS.start().as_millis(),
                LEASE_TERMS.end().as_millis()
            )));
        }
        Ok(LeaseKeeper {
            store,
            holder,
            term,
            held: Mutex::new(None),
        })
    }

    /// Asks for the lease once (takes, renews, or learns who holds it) and answers the token
    /// if this process holds it now. Blocking.
    pub fn ask(&self) -> Result<Option<u64>, StoreError> {
        let asked = Instant::now();
        let outcome = self.store.postgres().acquire_lease(&self.holder, self.term);
        let mut held = self.held.lock();
        let before = *held;
        match outcome {
            Ok(LeaseOutcome::Granted(grant)) => {
                let until = asked + grant.term.min(self.term) * 3 / 4;
                *held = Some(Holding {
                    token: grant.token,
                    until,
                });
                if !grant.renewed || before.map(|held| held.token) != Some(grant.token) {
                    tracing::info!(
                        token = grant.token,
                        holder = %self.holder,
                        "took the integrator lease: this process integrates, signs and publishes"
                    );
                }
                Ok(Some(grant.token))
            }
            Ok(LeaseOutcome::HeldElsewhere(refusal)) => {
                *held = None;
                if before.is_some() {
                    tracing::warn!(
                        holder = %refusal.holder,
                        token = refusal.token,
                        "lost the integrator lease to another process; following it"
                    );
                }
                Ok(None)
            }
            // What was held stays held until its time is up: the database may be back before.
            Err(error) => Err(error),
        }
    }

    /// The token of the lease this process holds now, if it does.
    pub fn token(&self) -> Option<u64> {
        let held = *self.held.lock();
        held.filter(|held| Instant::now() < held.until)
            .map(|held| held.token)
    }

    /// Gives the lease up at once (a clean stop), so that another front-end takes it without
    /// waiting for it to expire. Blocking.
    pub fn release(&self) -> Result<bool, StoreError> {
        self.held.lock().take();
        self.store.postgres().release_lease()
    }

    /// Asks for the lease every quarter of its term until `stop`, then gives it up.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let pause = self.term / 4;
        let mut failing = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.wait_for(|stop| *stop) => break,
            }
            let keeper = Arc::clone(&self);
            match tokio::task::spawn_blocking(move || keeper.ask()).await {
                Ok(Ok(_)) => {
                    if std::mem::take(&mut failing) {
                        tracing::info!("the integrator lease can be asked for again");
                    }
                }
                Ok(Err(error)) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::error!(%error, "asking for the integrator lease fails; retrying");
                    }
                }
                Err(error) => tracing::error!(%error, "the lease task failed"),
            }
        }
        let keeper = Arc::clone(&self);
        match tokio::task::spawn_blocking(move || keeper.release()).await {
            Ok(Ok(true)) => tracing::info!("gave the integrator lease up"),
            Ok(Ok(false)) => {}
            Ok(Err(error)) => {
                tracing::warn!(%error, "could not give the integrator lease up; it expires by itself")
            }
            Err(error) => tracing::warn!(%error, "the lease release task failed"),
        }
    }
}

impl Coordination for LeaseKeeper {
    fn lease(&self) -> Option<u64> {
        self.token()
    }

    fn reload_tree(&self) -> Result<(), StoreError> {
        self.store.bucket().reload()
    }
}
