//! Reading the configuration file: bounded in size, hashed (its [`ConfigVersion`]) so that a
//! reload can tell a change, parsed as TOML; and [`watch_principals`], the task that reads it
//! again on SIGHUP or a change and puts its principals in service.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

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
        let bytes = read_bounded(path)?;
        let version = ConfigVersion(sha256(&bytes));
        Ok((parse_config(path, bytes)?, version))
    }
}

/// The largest configuration file read.
const MAX_CONFIG_BYTES: u64 = 16 << 20;

/// Which contents of the configuration file were read (their SHA-256).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigVersion([u8; 32]);

fn parse_config(path: &Path, bytes: Vec<u8>) -> Result<Settings, ConfigError> {
    let text = String::from_utf8(bytes).map_err(|_| ConfigError::Toml {
        path: path.to_path_buf(),
        detail: "is not UTF-8".into(),
    })?;
    toml::from_str(&text).map_err(|error| ConfigError::Toml {
        path: path.to_path_buf(),
        detail: error.to_string(),
    })
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
    let mut seen = Some(loaded.0);
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
            let bytes = read_bounded(&path);
            let digest = bytes.as_ref().ok().map(|bytes| sha256(bytes));
            if !hangup && digest == known {
                return digest;
            }
            let why = if hangup { "SIGHUP" } else { "the file changed" };
            let loaded = bytes.and_then(|bytes| {
                parse_config(&path, bytes).and_then(|file| file.overlay(&flags).credentials())
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
            digest
        });
        match read.await {
            Ok(digest) => seen = digest,
            Err(error) => tracing::error!(%error, "the configuration reload task failed"),
        }
    }
}

pub(super) fn read_bounded(path: &Path) -> Result<Vec<u8>, ConfigError> {
    let read = |source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    };
    let length = std::fs::metadata(path).map_err(read)?.len();
    if length > MAX_CONFIG_BYTES {
        return Err(ConfigError::Toml {
            path: path.to_path_buf(),
            detail: format!("is {length} bytes; a configuration is at most {MAX_CONFIG_BYTES}"),
        });
    }
    std::fs::read(path).map_err(read)
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes).into()
}
