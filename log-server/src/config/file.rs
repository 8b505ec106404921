//! Reading the configuration file with cairn-edge's loader ([`cairn_edge::config_file`]:
//! bounded in size, UTF-8, TOML errors with their line and column), hashed (its
//! [`ConfigVersion`]) so that a reload can tell a change; and [`watch_principals`], the task
//! that reads it again on SIGHUP or a change and puts its principals in service.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn_edge::config_file::ConfigFile;

use super::{ConfigError, Settings};
use crate::events::auth::Principals;

impl Settings {
    /// Reads a TOML file.
    pub fn from_file(path: &Path) -> Result<Settings, ConfigError> {
        Settings::read_versioned(path).map(|(settings, _)| settings)
    }

    /// Reads a TOML file, and the version read (for [`watch_principals`] to see a change
    /// from).
    pub fn read_versioned(path: &Path) -> Result<(Settings, ConfigVersion), ConfigError> {
        let file = ConfigFile::read(path, MAX_CONFIG_BYTES)?;
        Ok((file.parse()?, ConfigVersion::of(&file)))
    }
}

/// The largest configuration file (and receipt policy) read: room for the most principals
/// a log names ([`MAX_CREDENTIALS`](crate::events::auth::MAX_CREDENTIALS)).
pub(super) const MAX_CONFIG_BYTES: u64 = cairn_edge::config_file::MAX_CONFIG_FILE_BYTES;

/// Which contents of the configuration file were read (their SHA-256).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigVersion([u8; 32]);

impl ConfigVersion {
    /// The version of the file's contents.
    fn of(file: &ConfigFile) -> ConfigVersion {
        use sha2::Digest as _;
        ConfigVersion(sha2::Sha256::digest(file.text().as_bytes()).into())
    }
}

/// Reads the principals, producers and rate limits of `path` again (with `flags` laid over the
/// file, as at start) and puts them in service, on each of `hangups` (SIGHUP) and whenever the
/// file's contents change (checked every `interval`), until the task is aborted. A file that
/// does not load is reported once per change, in the log and in `/metrics`, and the principals
/// in service stay. Without a file, a SIGHUP is only noted. `file` is the path and the version
/// of it in service.
pub async fn watch_principals(
    file: Option<(PathBuf, ConfigVersion)>,
    flags: Settings,
    principals: Arc<Principals>,
    interval: Duration,
    mut hangups: tokio::signal::unix::Signal,
) {
    let Some((path, loaded)) = file else {
        while hangups.recv().await.is_some() {
            tracing::warn!("SIGHUP: there is no configuration file (--config) to read again");
        }
        return;
    };
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seen = Some(loaded);
    loop {
        let hangup = tokio::select! {
            received = hangups.recv() => match received {
                Some(()) => true,
                None => return,
            },
            _ = ticks.tick() => false,
        };
        let (path, flags, principals) = (path.clone(), flags.clone(), principals.clone());
        let known = seen;
        // File reads and SHA-256: off the runtime's workers.
        let read = tokio::task::spawn_blocking(move || {
            let file = ConfigFile::read(&path, MAX_CONFIG_BYTES);
            let version = file.as_ref().ok().map(ConfigVersion::of);
            if !hangup && version == known {
                return version;
            }
            let why = if hangup { "SIGHUP" } else { "the file changed" };
            let loaded = file.map_err(ConfigError::from).and_then(|file| {
                file.parse::<Settings>()
                    .map_err(ConfigError::from)
                    .and_then(|file| file.overlay(&flags).credentials())
            });
            match loaded {
                Ok(credentials) => {
                    principals.replace(&credentials);
                    tracing::info!(
                        reason = why,
                        credentials =
                            credentials.tokens.len() + credentials.client_certificates.len(),
                        "principals reloaded from {}",
                        path.display()
                    );
                }
                Err(error) => {
                    principals.reload_failed();
                    tracing::error!(
                        reason = why,
                        %error,
                        "the configuration does not load; the principals loaded before stay in \
                         service"
                    );
                }
            }
            version
        });
        match read.await {
            Ok(version) => seen = version,
            Err(error) => tracing::error!(%error, "the configuration reload task failed"),
        }
    }
}
