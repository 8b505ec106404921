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

use cairn_edge::ConfigFile;
use cairn_keys::{Pkcs11Config, Pkcs11EcdsaKey};
use cairn_spec::timestamp::KeyPair;

use super::{write_durably, TsaError};

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

/// Reads the `[pkcs11]` table of `path` (a file with that table only), with cairn-edge's
/// configuration file loader: at most 64 KiB, UTF-8, and a TOML error that names the file,
/// line and column.
pub fn read_table(path: &Path) -> Result<TokenKeyTable, TsaError> {
    let file = ConfigFile::read(path, MAX_TOKEN_KEY_FILE).map_err(TsaError::TokenKeyFile)?;
    let parsed: TokenKeyFile = file.parse().map_err(TsaError::TokenKeyFile)?;
    parsed
        .pkcs11
        .settings()
        .map_err(|detail| TsaError::BadKey {
            path: path.to_owned(),
            detail,
        })?;
    Ok(TokenKeyTable {
        table: parsed.pkcs11,
        text: file.text().to_owned(),
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `text` written to a file of a fresh directory, and read back as a table.
    fn read_text(
        text: &[u8],
    ) -> (
        tempfile::TempDir,
        std::path::PathBuf,
        Result<TokenKeyTable, TsaError>,
    ) {
        let dir = tempfile::tempdir().expect("temporary directory");
        let path = dir.path().join("token.toml");
        std::fs::write(&path, text).expect("writes");
        let read = read_table(&path);
        (dir, path, read)
    }

    #[test]
    fn a_complete_table_is_read_and_its_text_kept_as_it_is() {
        let text = "# the TSA's key\n[pkcs11]\nmodule = \"/m.so\"\ntoken_label = \"t\"\n\
                    key_label = \"tsa\"\npin_env = \"PIN\"\n";
        let (_dir, _path, read) = read_text(text.as_bytes());
        let table = read.expect("reads");
        assert_eq!(table.text, text);
        assert_eq!(table.table.key_label.as_deref(), Some("tsa"));
    }

    #[test]
    fn a_key_beside_the_table_is_refused_with_its_file_line_and_column() {
        let (_dir, path, read) = read_text(b"[pkcs11]\nmodule = \"/m.so\"\n\n[other]\nkey = 1\n");
        let error = read.expect_err("an unknown table").to_string();
        assert!(error.contains("[pkcs11] table only"), "{error}");
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("line 4, column 2"), "{error}");
        assert!(error.contains("other"), "{error}");
    }

    #[test]
    fn an_incomplete_table_names_what_is_missing() {
        let (_dir, path, read) = read_text(b"[pkcs11]\nmodule = \"/m.so\"\nkey_label = \"k\"\n");
        let error = read.expect_err("no token").to_string();
        assert!(error.contains(&path.display().to_string()), "{error}");
        assert!(error.contains("token_label or slot"), "{error}");
    }

    #[test]
    fn a_file_over_the_limit_or_not_utf8_or_missing_is_refused_with_its_path() {
        let mut large = b"[pkcs11]\n".to_vec();
        large.resize(usize::try_from(MAX_TOKEN_KEY_FILE).expect("fits") + 1, b'#');
        let (_dir, path, read) = read_text(&large);
        let error = read.expect_err("too large").to_string();
        assert!(
            error.contains(&format!("{} is larger than 65536 bytes", path.display())),
            "{error}"
        );

        let (_dir, path, read) = read_text(b"[pkcs11]\nmodule = \"/m\xff.so\"\n");
        let error = read.expect_err("not UTF-8").to_string();
        assert!(
            error.contains(&format!("{} is not UTF-8 (byte 21", path.display())),
            "{error}"
        );

        let missing = Path::new("/nonexistent/token.toml");
        let error = read_table(missing).expect_err("missing").to_string();
        assert!(error.contains("reading /nonexistent/token.toml"), "{error}");
    }
}
