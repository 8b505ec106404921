//! The follower's part of key rotation: each poll fetches the log's key history
//! (`crate::key_history`), takes it when it verifies from the pinned key and extends the one
//! held, and raises a `revoked-key` alert for each key the history revoked that signed a
//! checkpoint of its revoked sizes (the log's current one, or the last one verified). A found
//! compromise stays active for as long as the monitor runs.

use super::Follower;
use crate::alert::AlertKind;
use crate::fetch::FetchError;
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
        let mut found = self.keys.compromises(note);
        if let Some(state) = &self.state {
            found.extend(self.keys.compromises(state.note.as_bytes()));
        }
        for compromise in found {
            self.compromises
                .entry(compromise.vkey.clone())
                .or_insert_with(|| compromise.detail());
        }
        let compromises: Vec<(String, String)> = self
            .compromises
            .iter()
            .map(|(subject, detail)| (subject.clone(), detail.clone()))
            .collect();
        for (subject, detail) in compromises {
            self.raise_about(AlertKind::RevokedKey, subject, detail, None)
                .await;
        }
    }
}
