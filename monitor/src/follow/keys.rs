//! The follower's part of key rotation: each poll fetches the log's key history
//! (`crate::key_history`), takes it when it verifies from the pinned key and extends the one
//! held, and raises a `revoked-key` alert for each key the history revoked that signed a
//! checkpoint of its revoked sizes: the log's current one, the last one verified, or one a
//! witness or a peer was shown (gossip). The alert carries `revoked-key` evidence (the
//! checkpoint and the history, spec/docs/evidence.md), so it is an incident kept in the
//! monitor's state: it fails every later `run --once` and `audit` of the log, across restarts,
//! until an operator acknowledges it (`cairn-monitor acknowledge`).

use cairn_spec::evidence::Evidence;

use super::Follower;
use crate::alert::AlertKind;
use crate::fetch::{FetchError, MAX_CHECKPOINT_BYTES};
use crate::key_history::{KEY_HISTORY_PATH, MAX_KEY_HISTORY_BYTES};

/// The alert subject of a key history the log serves and the monitor refuses.
const REFUSED_HISTORY: &str = "key-history";

impl Follower {
    /// Updates the key history from the log, then raises the compromises found on `note` (the
    /// log's checkpoint of this poll) and on the verified state's checkpoint.
    pub(super) async fn check_keys(&mut self, note: &[u8]) {
        match self
            .source
            .get(KEY_HISTORY_PATH, MAX_KEY_HISTORY_BYTES)
            .await
        {
            Ok(bytes) => match self.keys.update(&bytes) {
                Ok(true) => tracing::info!(
                    statements = self.keys.history().len(),
                    "the log's key history grew"
                ),
                Ok(false) => {}
                Err(error) => {
                    self.refused("log");
                    let detail = format!("the log's key history is refused: {error}");
                    self.raise_about(
                        AlertKind::BadSignature,
                        REFUSED_HISTORY.to_owned(),
                        detail,
                        None,
                    )
                    .await;
                }
            },
            // A log that serves no history (an older log, a directory without the file): its
            // pinned key alone, or the history verified before, stays in force.
            Err(FetchError::Status { status: 404, .. } | FetchError::File { .. }) => {}
            Err(error) => {
                tracing::warn!(%error, "the log's key history could not be fetched");
                self.fetch_failed(&error, "log");
            }
        }
        self.check_compromises(note).await;
        let verified = self.state.as_ref().map(|state| state.note.clone());
        if let Some(verified) = verified {
            self.check_compromises(verified.as_bytes()).await;
        }
    }

    /// Raises a `revoked-key` incident for each key revoked at or below the size of `note` (a
    /// checkpoint from the log, a witness or a peer) that signed it; once per key and process
    /// (the incident, kept in the state, stays active after that).
    pub(super) async fn check_compromises(&mut self, note: &[u8]) {
        if note.len() > MAX_CHECKPOINT_BYTES {
            return;
        }
        for compromise in self.keys.compromises(note) {
            if self.compromises.contains_key(&compromise.vkey) {
                continue;
            }
            let detail = compromise.incident_detail();
            let evidence = Evidence::revoked_key(note, &self.keys.history().to_bytes());
            tracing::error!(size = compromise.size, "{}", compromise.detail());
            self.compromises
                .insert(compromise.vkey.clone(), detail.clone());
            self.raise_about(
                AlertKind::RevokedKey,
                compromise.vkey,
                detail,
                Some(evidence),
            )
            .await;
        }
    }
}
