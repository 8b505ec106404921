//! A SoftHSM2 token of a test's own (feature `test-token`, for tests only): a token directory
//! and configuration in a temporary directory, one initialised token, and a PIN file of mode
//! 0600. Processes started with [`TestToken::env`] see the token; `softhsm2-util` runs
//! against it with [`TestToken::util`].
//!
//! SoftHSM2 reads `SOFTHSM2_CONF` once per process, when the module is initialised: a test
//! that uses the module in its own process must set it before the first use, once.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Where Debian's `softhsm2` package puts the PKCS#11 module.
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The user PIN of every test token.
pub const TEST_PIN: &str = "246810";

/// A SoftHSM2 token directory with one token.
pub struct TestToken {
    dir: tempfile::TempDir,
    label: String,
}

impl TestToken {
    /// Makes the directory and initialises a token labelled `label`. Panics with the install
    /// command when SoftHSM2 is missing.
    pub fn init(label: &str) -> TestToken {
        assert!(
            Path::new(SOFTHSM2_MODULE).is_file(),
            "SoftHSM2 is not installed ({SOFTHSM2_MODULE} is missing): apt-get install softhsm2"
        );
        let dir = tempfile::tempdir().expect("a temporary directory");
        let tokens = dir.path().join("tokens");
        std::fs::create_dir(&tokens).expect("makes the token directory");
        std::fs::write(
            dir.path().join("softhsm2.conf"),
            format!(
                "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                tokens.display()
            ),
        )
        .expect("writes the SoftHSM2 configuration");
        let token = TestToken {
            dir,
            label: label.to_owned(),
        };
        token
            .util(&["--init-token", "--free", "--label", label])
            .expect("softhsm2-util --init-token");
        token.write_pin_file("pin", TEST_PIN);
        token
    }

    /// The token's label.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// The SoftHSM2 configuration file.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("softhsm2.conf")
    }

    /// The environment a process needs to see the token.
    pub fn env(&self) -> (&'static str, OsString) {
        ("SOFTHSM2_CONF", self.conf().into_os_string())
    }

    /// The PIN file (mode 0600) holding [`TEST_PIN`].
    pub fn pin_file(&self) -> PathBuf {
        self.dir.path().join("pin")
    }

    /// Writes a PIN file `name` (mode 0600) holding `pin`; returns its path.
    pub fn write_pin_file(&self, name: &str, pin: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt as _;
        let path = self.dir.path().join(name);
        std::fs::write(&path, format!("{pin}\n")).expect("writes the PIN file");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        path
    }

    /// A `[pkcs11]` table for the key `key_label` in this token.
    pub fn config_table(&self, key_label: &str) -> String {
        format!(
            "[pkcs11]\nmodule = {SOFTHSM2_MODULE:?}\ntoken_label = {:?}\nkey_label = {key_label:?}\npin_file = {:?}\n",
            self.label,
            self.pin_file()
        )
    }

    /// Runs `softhsm2-util args…` against this directory (`--pin` and `--so-pin` are added to
    /// `--init-token`); its stderr on failure.
    pub fn util(&self, args: &[&str]) -> Result<(), String> {
        let mut command = Command::new("softhsm2-util");
        command.env("SOFTHSM2_CONF", self.conf()).args(args);
        if args.contains(&"--init-token") {
            command.args(["--pin", TEST_PIN, "--so-pin", "13579"]);
        }
        let output = command
            .output()
            .map_err(|error| format!("softhsm2-util: {error} (apt-get install softhsm2)"))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }

    /// Deletes the token, as pulling a hardware token out would.
    pub fn remove(&self) {
        self.util(&["--delete-token", "--token", &self.label])
            .expect("softhsm2-util --delete-token");
    }
}
