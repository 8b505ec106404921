//! The log's signing key: a key file or a key in a PKCS#11 token, and making either; with a
//! key history directory, the keys of its rotations beside it (crate::key_history).

use super::*;
use crate::key_history::{KeyReaders, LogKeys};
use cairn_spec::note::PlainEd25519;

impl Settings {
    /// The log's keys: the configured key, and with `key_history_dir` the keys its verified
    /// history introduced that the directory holds.
    pub(super) fn resolve_signer(&self) -> Result<LogSigner, ConfigError> {
        let primary = self.resolve_primary()?;
        let keys = match &self.key_history_dir {
            None => LogKeys::single(primary),
            Some(dir) => LogKeys::with_history(primary, dir, KEY_READERS).map_err(|error| {
                ConfigError::Value {
                    key: "key_history_dir",
                    detail: error.to_string(),
                }
            })?,
        };
        Ok(Arc::new(keys))
    }

    /// The configured key: the key file, or the key in the `[pkcs11]` token (named after
    /// `origin`), opened.
    pub fn resolve_primary(&self) -> Result<NoteSigner<PlainEd25519>, ConfigError> {
        match (&self.key_file, &self.pkcs11) {
            (Some(path), None) => Ok(NoteSigner::from_key(read_key_file(path)?)),
            (None, Some(table)) => {
                let value = |detail: String| ConfigError::Value {
                    key: "pkcs11",
                    detail,
                };
                let origin = self.origin.as_deref().ok_or_else(|| {
                    value("a key in a token needs `origin`, which names it".into())
                })?;
                let key_name = KeyName::new(origin).map_err(|error| ConfigError::Value {
                    key: "origin",
                    detail: error.to_string(),
                })?;
                let settings = table.settings().map_err(value)?;
                let key = Pkcs11Key::open(&settings).map_err(|error| value(error.to_string()))?;
                Ok(NoteSigner::from_token(key_name, Arc::new(key)))
            }
            (None, None) => Err(ConfigError::Value {
                key: "key_file",
                detail: "is required (or a [pkcs11] table for a key in a token)".into(),
            }),
            (Some(_), Some(_)) => Err(ConfigError::Value {
                key: "key_file",
                detail: "and [pkcs11] name two keys: keep one".into(),
            }),
        }
    }
}

/// Reads the signing key, refusing a file that group or others may read.
pub fn read_key_file(path: &Path) -> Result<Ed25519Signer, ConfigError> {
    use std::os::unix::fs::PermissionsExt as _;
    let metadata = std::fs::metadata(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(ConfigError::LooseKeyMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    if metadata.len() > 8192 {
        return Err(ConfigError::Value {
            key: "key_file",
            detail: format!("{} is {} bytes, not a key", path.display(), metadata.len()),
        });
    }
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    Ed25519Signer::from_skey(text.trim()).map_err(|error| ConfigError::Value {
        key: "key_file",
        detail: format!("{}: {error}", path.display()),
    })
}

/// How the key history reads the keys its directory holds, in this module's formats: key
/// files ([`read_key_file`]) and `[pkcs11]` tables ([`open_token_key`]).
pub const KEY_READERS: KeyReaders = KeyReaders {
    key_file: read_key_file_for_history,
    token: open_token_key,
};

fn read_key_file_for_history(path: &Path) -> Result<Ed25519Signer, String> {
    read_key_file(path).map_err(|error| error.to_string())
}

/// Opens the key in the token that the `[pkcs11]` table of the configuration file `config`
/// names.
pub fn open_token_key(config: &Path) -> Result<Pkcs11Key, String> {
    let table = Settings::from_file(config)
        .map_err(|error| error.to_string())?
        .pkcs11
        .ok_or_else(|| format!("{} has no [pkcs11] table", config.display()))?;
    Pkcs11Key::open(&table.settings()?).map_err(|error| error.to_string())
}

/// Makes a new signing key for `origin` inside the token that the `[pkcs11]` table of the
/// configuration file `config` names, and returns its vkey.
pub fn new_token_key(origin: &str, config: &Path) -> Result<String, ConfigError> {
    let name = KeyName::new(origin).map_err(|error| ConfigError::Value {
        key: "origin",
        detail: error.to_string(),
    })?;
    let settings = Settings::from_file(config)?;
    let table = settings.pkcs11.ok_or_else(|| ConfigError::Value {
        key: "pkcs11",
        detail: format!("{} has no [pkcs11] table", config.display()),
    })?;
    let value = |detail: String| ConfigError::Value {
        key: "pkcs11",
        detail,
    };
    let key = Pkcs11Key::generate(&table.settings().map_err(value)?)
        .map_err(|error| value(error.to_string()))?;
    let signer = NoteSigner::<cairn_spec::note::PlainEd25519>::from_token(name, Arc::new(key));
    Ok(signer.verifier().to_vkey())
}

/// Writes a new signing key for `origin` to `path` with mode 0600 (refusing to overwrite) and
/// returns its vkey.
pub fn write_new_key(origin: &str, path: &Path) -> Result<String, ConfigError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let name = cairn_spec::note::KeyName::new(origin).map_err(|error| ConfigError::Value {
        key: "origin",
        detail: error.to_string(),
    })?;
    let signer = Ed25519Signer::generate(name, &mut rand::rngs::OsRng).map_err(|error| {
        ConfigError::Value {
            key: "origin",
            detail: error.to_string(),
        }
    })?;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    file.write_all(format!("{}\n", signer.to_skey()).as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(signer.verifier().to_vkey())
}
