//! The `[pkcs11]` table of a server's configuration file, as the log and the witness read it:
//!
//! ```toml
//! [pkcs11]
//! module = "/usr/lib/softhsm/libsofthsm2.so"  # the PKCS#11 library
//! token_label = "cairn"                        # or: slot = 0
//! key_label = "log"                            # the key pair's CKA_LABEL
//! pin_file = "/etc/cairn/token.pin"            # or: pin_env = "CAIRN_TOKEN_PIN"
//! ```
//!
//! The PIN never comes from a flag or from this file itself: a file of its own (mode 0600)
//! or an environment variable.

use std::path::PathBuf;

use crate::pkcs11::{Pin, Pkcs11Settings, TokenChoice};

/// The `[pkcs11]` table.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pkcs11Config {
    /// The PKCS#11 module (a shared library).
    pub module: Option<PathBuf>,
    /// The token's label.
    pub token_label: Option<String>,
    /// The token's slot, instead of its label.
    pub slot: Option<u64>,
    /// The key pair's label.
    pub key_label: Option<String>,
    /// A file (mode 0600) whose first line is the user PIN.
    pub pin_file: Option<PathBuf>,
    /// An environment variable holding the user PIN.
    pub pin_env: Option<String>,
}

impl Pkcs11Config {
    /// The settings, checked: every key present that must be, and one of each pair.
    pub fn settings(&self) -> Result<Pkcs11Settings, String> {
        let module = self
            .module
            .clone()
            .ok_or("pkcs11.module (the PKCS#11 library's path) is required")?;
        let token = match (&self.token_label, self.slot) {
            (Some(label), None) => TokenChoice::Label(label.clone()),
            (None, Some(slot)) => TokenChoice::Slot(slot),
            (None, None) => return Err("pkcs11 needs token_label or slot".into()),
            (Some(_), Some(_)) => return Err("pkcs11 takes token_label or slot, not both".into()),
        };
        let key_label = self
            .key_label
            .clone()
            .ok_or("pkcs11.key_label (the key pair's label) is required")?;
        let pin = match (&self.pin_file, &self.pin_env) {
            (Some(file), None) => Pin::File(file.clone()),
            (None, Some(name)) => Pin::Env(name.clone()),
            (None, None) => {
                return Err("pkcs11 needs pin_file or pin_env (never the PIN itself)".into())
            }
            (Some(_), Some(_)) => return Err("pkcs11 takes pin_file or pin_env, not both".into()),
        };
        Ok(Pkcs11Settings {
            module,
            token,
            key_label,
            pin,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Pkcs11Settings, String> {
        toml::from_str::<Pkcs11Config>(text)
            .map_err(|error| error.to_string())?
            .settings()
    }

    #[test]
    fn a_complete_table_reads_and_each_missing_or_doubled_choice_is_named() {
        let settings = parse(
            "module = \"/m.so\"\ntoken_label = \"t\"\nkey_label = \"k\"\npin_env = \"PIN\"\n",
        )
        .expect("reads");
        assert_eq!(settings.token, TokenChoice::Label("t".into()));
        assert_eq!(settings.pin, Pin::Env("PIN".into()));
        let error = parse("module = \"/m.so\"\nkey_label = \"k\"\npin_env = \"P\"\n")
            .expect_err("no token");
        assert!(error.contains("token_label or slot"), "{error}");
        let error = parse(
            "module = \"/m.so\"\nslot = 1\ntoken_label = \"t\"\nkey_label = \"k\"\npin_env = \"P\"\n",
        )
        .expect_err("both");
        assert!(error.contains("not both"), "{error}");
        let error = parse("module = \"/m.so\"\nslot = 1\nkey_label = \"k\"\n").expect_err("no PIN");
        assert!(error.contains("pin_file or pin_env"), "{error}");
        let error = parse("module = \"/m.so\"\nslot = 1\nkey_label = \"k\"\npin = \"1234\"\n")
            .expect_err("a PIN in the file is refused");
        assert!(error.contains("pin"), "{error}");
    }
}
