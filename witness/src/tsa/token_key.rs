//! A TSA key inside a PKCS#11 token: `tsa init --pkcs11 FILE` makes an ECDSA P-256 key pair in
//! the token that FILE's `[pkcs11]` table names (or, with `--existing-key`, uses the one
//! already there under that label), certifies its public half with the TSA's root, and copies
//! the table into the TSA directory as `tsa-key.toml`, where `tsa serve` finds it instead of a
//! `tsa.key` file. The private key never leaves the token; every timestamp is one `CKM_ECDSA`
//! signature in it ([`cairn_keys::Pkcs11EcdsaKey`]).
//!
//! The table names the PIN's source (`pin_file` or `pin_env`), never the PIN.

use std::path::Path;
use std::sync::Arc;

use cairn_keys::{Pkcs11Config, Pkcs11EcdsaKey};
use cairn_spec::timestamp::KeyPair;

use super::{io_error, write_durably, TsaError};

/// The file of a TSA directory that names the TSA's key in a token.
pub const TOKEN_KEY_FILE: &str = "tsa-key.toml";

/// The largest token key file read, in bytes.
const MAX_TOKEN_KEY_FILE: u64 = 64 * 1024;

/// A file holding only a `[pkcs11]` table.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenKeyFile {
    pkcs11: Pkcs11Config,
}

/// A token key file as read: its `[pkcs11]` table, checked, and its text.
#[derive(Clone, Debug)]
pub struct TokenKeyTable {
    /// The table.
    pub table: Pkcs11Config,
    /// The file's text, copied as it is into a TSA directory.
    pub text: String,
}

/// Reads the `[pkcs11]` table of `path` (a file with that table only).
pub fn read_table(path: &Path) -> Result<TokenKeyTable, TsaError> {
    let bad = |detail: String| TsaError::BadKey {
        path: path.to_owned(),
        detail,
    };
    let metadata = std::fs::metadata(path).map_err(io_error(path))?;
    if metadata.len() > MAX_TOKEN_KEY_FILE {
        return Err(bad(format!(
            "{} bytes, at most {MAX_TOKEN_KEY_FILE}",
            metadata.len()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(io_error(path))?;
    let file: TokenKeyFile = toml::from_str(&text)
        .map_err(|error| bad(format!("expected a [pkcs11] table only: {error}")))?;
    file.pkcs11.settings().map_err(bad)?;
    Ok(TokenKeyTable {
        table: file.pkcs11,
        text,
    })
}

/// Writes the token key file `table` into the TSA directory `dir` as [`TOKEN_KEY_FILE`].
pub fn write_table(dir: &Path, table: &TokenKeyTable) -> Result<(), TsaError> {
    write_durably(&dir.join(TOKEN_KEY_FILE), table.text.as_bytes())
}

/// Opens the P-256 key `table` names, as the TSA's signing key.
pub fn open(table: &Pkcs11Config) -> Result<KeyPair, TsaError> {
    let settings = table.settings().map_err(TsaError::Token)?;
    let key =
        Pkcs11EcdsaKey::open(&settings).map_err(|error| TsaError::Token(error.to_string()))?;
    Ok(KeyPair::ExternalP256(Arc::new(key)))
}

/// Makes the P-256 key `table` names in its token (a label already taken is refused), or with
/// `existing` opens the one already there.
pub fn make_or_open(table: &Pkcs11Config, existing: bool) -> Result<KeyPair, TsaError> {
    if existing {
        return open(table);
    }
    let settings = table.settings().map_err(TsaError::Token)?;
    let key =
        Pkcs11EcdsaKey::generate(&settings).map_err(|error| TsaError::Token(error.to_string()))?;
    Ok(KeyPair::ExternalP256(Arc::new(key)))
}
