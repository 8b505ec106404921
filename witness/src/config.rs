//! The witness's configuration: a TOML file whose scalar keys the command line and
//! `CAIRN_WITNESS_*` environment variables override (see `cairn-witness serve --help`). The
//! logs witnessed (`[[log]]`) and the TSAs used (`[[tsa]]`) come from the file only; without
//! a `[[log]]` the witness refuses every checkpoint (404), without a `[[tsa]]` it anchors
//! nothing. The file is read by cairn-edge's loader ([`cairn_edge::config_file`]), at most
//! [`MAX_CONFIG_SIZE`] bytes; unknown keys are refused.
//!
//! ```toml
//! listen = "127.0.0.1:7380"
//! data_dir = "/var/lib/cairn-witness"
//! key_file = "/etc/cairn-witness/witness.key"
//! # or the key in a PKCS#11 token, named by key_name:
//! # key_name = "witness.example.com/w1"
//! # [pkcs11]
//! # module = "/usr/lib/softhsm/libsofthsm2.so"
//! # token_label = "cairn"                # or: slot = 0
//! # key_label = "witness"
//! # pin_file = "/etc/cairn-witness/token.pin"   # or: pin_env = "CAIRN_TOKEN_PIN"
//! anchor_wait_ms = 250
//! tsa_timeout_ms = 10000
//! tsa_max_attempts = 6
//! tsa_initial_backoff_ms = 500
//! anchor_queue = 4096
//!
//! # The HTTP edge (cairn-edge): timeouts and the connection cap; each key also
//! # CAIRN_WITNESS_<KEY> and --<key> (see `cairn-witness serve --help`).
//! [http]
//! header_read_timeout_ms = 10000
//! idle_timeout_ms = 5000
//! max_connections = 15000
//!
//! [[log]]
//! origin = "example.com/log"
//! vkey = "example.com/log+1a2b3c4d+AbCd..."
//!
//! [[tsa]]
//! name = "tsa-1"
//! url = "http://127.0.0.1:7390/"
//! trust_anchor = "/etc/cairn-witness/tsa-1-root.pem"
//! # policy = "1.3.6.1.4.1.99999.1"
//! # ca_file = "/etc/cairn-witness/private-ca.pem"   # an https:// TSA behind a private CA
//! ```

use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The largest configuration file read (the witness's file names a few logs and TSAs).
pub const MAX_CONFIG_SIZE: u64 = 1 << 20;

/// The configuration: every key of the file, the scalar ones also flags (`--<key>`) and
/// environment variables (`CAIRN_WITNESS_<KEY>`) of `cairn-witness serve`, which
/// [`overlay`](Config::overlay) lays over the file.
#[derive(Debug, Clone, Default, Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on [default: 127.0.0.1:7380].
    #[arg(long, env = "CAIRN_WITNESS_LISTEN")]
    pub listen: Option<String>,
    /// Directory of the witness database.
    #[arg(long, env = "CAIRN_WITNESS_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// The witness's private key file (mode 0600).
    #[arg(long, env = "CAIRN_WITNESS_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// The name of a key in a PKCS#11 token (file only; a key file carries its own name).
    #[arg(skip)]
    pub key_name: Option<String>,
    /// The witness key in a PKCS#11 token, instead of `key_file` (file only).
    #[arg(skip)]
    pub pkcs11: Option<cairn_keys::Pkcs11Config>,
    /// Longest wait for timestamps before answering add-checkpoint, ms [default: 250].
    #[arg(long, env = "CAIRN_WITNESS_ANCHOR_WAIT_MS")]
    pub anchor_wait_ms: Option<u64>,
    /// Timeout of one TSA exchange, ms [default: 10000].
    #[arg(long, env = "CAIRN_WITNESS_TSA_TIMEOUT_MS")]
    pub tsa_timeout_ms: Option<u64>,
    /// Attempts per checkpoint and TSA [default: 6].
    #[arg(long, env = "CAIRN_WITNESS_TSA_MAX_ATTEMPTS")]
    pub tsa_max_attempts: Option<u32>,
    /// First wait between TSA attempts, doubled each time up to 30 s, ms [default: 500].
    #[arg(long, env = "CAIRN_WITNESS_TSA_INITIAL_BACKOFF_MS")]
    pub tsa_initial_backoff_ms: Option<u64>,
    /// Checkpoints that may wait for anchoring [default: 4096].
    #[arg(long, env = "CAIRN_WITNESS_ANCHOR_QUEUE")]
    pub anchor_queue: Option<usize>,
    /// The HTTP edge: timeouts and the connection cap.
    #[command(flatten)]
    #[serde(default)]
    pub http: HttpSettings,
    /// The logs witnessed (file only).
    #[arg(skip)]
    #[serde(default, rename = "log")]
    pub logs: Vec<LogConfig>,
    /// The TSAs used (file only).
    #[arg(skip)]
    #[serde(default, rename = "tsa")]
    pub tsas: Vec<TsaConfig>,
}

cairn_edge::settings!(
    /// The HTTP edge's keys of the witness (`[http]` in the file, `CAIRN_WITNESS_<KEY>`,
    /// `--<key>`).
    pub struct HttpSettings, "CAIRN_WITNESS_"
);

cairn_edge::settings!(
    /// The HTTP edge's keys of `cairn-witness tsa serve` (`CAIRN_WITNESS_TSA_<KEY>`,
    /// `--<key>`).
    pub struct TsaHttpSettings, "CAIRN_WITNESS_TSA_"
);

/// One witnessed log.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Its origin line.
    pub origin: String,
    /// Its signed-note verifier key (one or more, as `vkey` or `vkeys`).
    #[serde(default)]
    pub vkey: Option<String>,
    /// More keys (rotation).
    #[serde(default)]
    pub vkeys: Vec<String>,
}

/// One TSA.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TsaConfig {
    /// Name its tokens are served under.
    pub name: String,
    /// URL to POST timestamp queries to.
    pub url: String,
    /// PEM file of the root certificate(s) its certificate must chain to.
    pub trust_anchor: PathBuf,
    /// Policy OID to request, if any.
    #[serde(default)]
    pub policy: Option<String>,
    /// PEM CA certificates trusted for its https:// URL beside the public roots (a private
    /// CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

impl Config {
    /// `self` (the file) with every scalar key `over` (the flags and environment) sets
    /// replacing it; the file-only keys stay the file's.
    pub fn overlay(mut self, over: &Config) -> Config {
        cairn_edge::overlay!(
            self,
            over,
            listen,
            data_dir,
            key_file,
            anchor_wait_ms,
            tsa_timeout_ms,
            tsa_max_attempts,
            tsa_initial_backoff_ms,
            anchor_queue
        );
        self.http = self.http.overlay(&over.http);
        self
    }

    /// Reads a configuration file (at most [`MAX_CONFIG_SIZE`] bytes) with cairn-edge's
    /// loader: an error names the file, and the line and column of a TOML fault.
    pub fn load(path: &Path) -> Result<Config, cairn_edge::ConfigFileError> {
        cairn_edge::config_file::load(path, MAX_CONFIG_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, cairn_edge::ConfigFileError> {
        cairn_edge::config_file::parse_toml(Path::new("witness.toml"), text)
    }

    #[test]
    fn reads_logs_and_tsas() {
        let config = parse(
            r#"
listen = "127.0.0.1:0"
[[log]]
origin = "a/b"
vkey = "k"
[[log]]
origin = "c"
vkeys = ["k1", "k2"]
[http]
idle_timeout_ms = 2000
[[tsa]]
name = "t"
url = "http://x/"
trust_anchor = "root.pem"
"#,
        )
        .expect("parses");
        assert_eq!(config.listen.as_deref(), Some("127.0.0.1:0"));
        assert_eq!(config.logs.len(), 2);
        assert_eq!(config.logs[1].vkeys, ["k1", "k2"]);
        assert_eq!(config.tsas[0].name, "t");
        assert_eq!(config.http.idle_timeout_ms, Some(2000));
    }

    #[test]
    fn refuses_unknown_keys() {
        assert!(parse("listn = \"x\"\n").is_err());
    }
}
