//! The `[privacy]` table of `log.toml`: where the key-encryption key of audit events' contents
//! is, which field names an event's data subject, and whether entry bundles are public.
//!
//! ```toml
//! [privacy]
//! kek_file = "/etc/cairn/events.kek"   # 64 hex digits, mode 0600 [default: <data_dir>/events/kek,
//!                                      # made on first start; with storage = "scaled",
//!                                      # the same file on every front-end]
//! data_subject = "actor"               # or "resource": whose data key seals an event
//! public_entries = false               # true: /tile/entries without a token (raw-leaf logs)
//! ```

use std::path::Path;

use serde::Deserialize;

use super::ConfigError;
use crate::events::privacy::{PrivacySettings, SubjectField};

/// The `[privacy]` table.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyConfig {
    /// The KEK file; without it, `<data_dir>/events/kek`, made on first start.
    pub kek_file: Option<std::path::PathBuf>,
    /// `actor` (default) or `resource`.
    pub data_subject: Option<SubjectField>,
    /// Whether `/tile/entries` is served without a token [default: false: the reader role].
    pub public_entries: Option<bool>,
}

impl PrivacyConfig {
    /// The settings of the events database under `data_dir`. A configured KEK file must exist
    /// (it is never made where the operator put it).
    pub fn resolve(&self, data_dir: &Path) -> Result<PrivacySettings, ConfigError> {
        let mut settings = PrivacySettings::in_dir(&data_dir.join("events"));
        if let Some(path) = &self.kek_file {
            if !path.is_file() {
                return Err(ConfigError::Value {
                    key: "privacy.kek_file",
                    detail: format!(
                        "{} does not exist (make one: `openssl rand -hex 32 > {0}; chmod 600 {0}`)",
                        path.display()
                    ),
                });
            }
            settings.kek_file = path.clone();
            settings.create_kek = false;
        }
        settings.subject = self.data_subject.unwrap_or_default();
        settings.public_entries = self.public_entries.unwrap_or(false);
        Ok(settings)
    }
}
