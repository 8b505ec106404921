//! A front-end of a shared log that does not hold the integrator lease publishes what the
//! holder published, without asking the witnesses to cosign: once the holder marked a round
//! ([`super::ROUND_MARK`]) at least as large as the checkpoint this front-end's integrator
//! announced, it serves that checkpoint with the cosignatures the holder stored (checked with
//! the witnesses' keys and against the quorum), and its receipts carry the timestamp tokens the
//! holder stored. It asks a witness only for timestamp tokens, and only when a receipt that
//! waits for a policy lacks some (as the holder does).

use std::ops::ControlFlow;
use std::sync::Arc;

use tokio::sync::watch;

use super::{cosigned, witnesses, Published, PublisherConfig, Role, TokenRounds, ROUND_MARK};
use crate::metrics::Metrics;
use crate::storage::{LogStore, StoreError, StoredCheckpoint};

/// What a follower remembers between steps.
#[derive(Debug, Default)]
pub(super) struct Follower {
    /// Reading the holder's round fails (the database is down): said once per run of failures.
    failing: bool,
}

impl Follower {
    /// Publishes the checkpoint the integrator announced if the holder's round covers it, then
    /// waits for a new announcement, one poll interval, or a receipt's ask for more tokens.
    /// Breaks when the integrator is gone.
    pub(super) async fn step(
        &mut self,
        store: &Arc<dyn LogStore>,
        signed: &mut watch::Receiver<Option<StoredCheckpoint>>,
        config: &PublisherConfig,
        (published, tokens): (&watch::Sender<Option<Published>>, &Arc<TokenRounds>),
        metrics: &Arc<Metrics>,
        (client, role): (&reqwest::Client, &Role),
    ) -> ControlFlow<()> {
        let announced = signed.borrow_and_update().clone();
        let known = published.borrow().as_ref().map(|p| p.size);
        if let Some(announced) = announced.filter(|c| known.is_none_or(|size| size < c.size)) {
            match self.holders_round(store, announced, config).await {
                Ok(Some(done)) => {
                    let size = done.size;
                    metrics.set_published(size);
                    published.send_replace(Some(done));
                    tokens.done(size);
                }
                Ok(None) => {}
                Err(error) => {
                    if !std::mem::replace(&mut self.failing, true) {
                        tracing::warn!(%error, "cannot read the lease holder's publication; retrying");
                    }
                }
            }
        }
        tokio::select! {
            changed = signed.changed() => if changed.is_err() { return ControlFlow::Break(()); },
            () = role.poll() => {}
            () = tokens.wanted.notified() => {
                tokio::time::sleep(super::ROUND_PAUSE).await;
                let latest = published.borrow().clone();
                if let Some(latest) = latest {
                    witnesses::fetch_tokens(store, latest.size, latest.note.as_bytes(), config, client)
                        .await;
                    tokens.done(latest.size);
                }
            }
        }
        ControlFlow::Continue(())
    }

    /// `announced` as the holder published it, if the holder finished a round at least that
    /// large and the cosignatures stored for it meet the quorum.
    async fn holders_round(
        &mut self,
        store: &Arc<dyn LogStore>,
        announced: StoredCheckpoint,
        config: &PublisherConfig,
    ) -> Result<Option<Published>, StoreError> {
        let (store, config) = (Arc::clone(store), config.clone());
        let found = tokio::task::spawn_blocking(move || {
            let round = store.witness_size(ROUND_MARK)?.unwrap_or(0);
            if round < announced.size {
                return Ok(None);
            }
            cosigned(store.as_ref(), &announced, &config)
        })
        .await
        .unwrap_or_else(|error| {
            Err(StoreError::Poisoned(format!(
                "the follower's task failed: {error}"
            )))
        })?;
        if std::mem::take(&mut self.failing) {
            tracing::info!("the lease holder's publication can be read again");
        }
        Ok(found)
    }
}
