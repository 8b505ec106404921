//! The edge's settings as each server takes them: a TOML table, environment variables with the
//! server's prefix, and flags, all written once in [`settings!`](crate::settings).
//!
//! Each key is an `Option`, so that a server can lay the command line over the file
//! (`overlay`) before the defaults of [`Limits`](crate::Limits) fill what is left (`resolve`).

/// Why the edge's settings are unusable.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// TLS files that do not load.
    #[error(transparent)]
    Tls(#[from] crate::TlsError),
    /// Keys that go together, apart.
    #[error("{0}")]
    Inconsistent(&'static str),
    /// A value is out of range.
    #[error("`{key}` must be {expected}, found {found}")]
    Value {
        /// The key.
        key: &'static str,
        /// What it must be.
        expected: &'static str,
        /// What it is.
        found: String,
    },
}

/// Checks that `value` (of `key`) is at least 1.
#[doc(hidden)]
pub fn positive(key: &'static str, value: u64) -> Result<u64, SettingsError> {
    if value == 0 {
        return Err(SettingsError::Value {
            key,
            expected: "at least 1",
            found: value.to_string(),
        });
    }
    Ok(value)
}

/// Defines `$name`, the edge's settings of one server: a `clap::Args` (flags `--<key>` and
/// environment variables `<$prefix><KEY>`) and a `serde::Deserialize` TOML table with the same
/// keys, every one optional. `overlay` lays one over another (the command line over the file)
/// and `resolve` checks them and fills the defaults into an [`EdgeConfig`](crate::EdgeConfig).
/// The crate using it depends on `clap` (derive, env) and `serde` (derive).
///
/// ```ignore
/// cairn_edge::settings!(
///     /// The HTTP edge of the log (`[http]` in log.toml).
///     pub struct HttpSettings, "CAIRN_LOG_"
/// );
/// ```
#[macro_export]
macro_rules! settings {
    ($(#[$meta:meta])* $vis:vis struct $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, serde::Deserialize, clap::Args)]
        #[serde(deny_unknown_fields)]
        #[command(next_help_heading = "HTTP edge (the [http] table of a configuration file)")]
        $vis struct $name {
            /// Longest wait for a request's head, ms; also bounds a keep-alive connection's
            /// wait for its next request [default: 10000].
            #[arg(long, env = concat!($prefix, "HEADER_READ_TIMEOUT_MS"))]
            pub header_read_timeout_ms: Option<u64>,
            /// Time a request body gets beyond its size at the minimum rate, ms, counted from
            /// when it is first waited for; a slower body is answered 408 [default: 10000].
            #[arg(long, env = concat!($prefix, "BODY_READ_TIMEOUT_MS"))]
            pub body_read_timeout_ms: Option<u64>,
            /// The slowest average rate of a request body, bytes a second [default: 4096].
            #[arg(long, env = concat!($prefix, "BODY_MIN_BYTES_PER_SEC"))]
            pub body_min_bytes_per_sec: Option<u64>,
            /// A connection with no request in flight that moves no byte for this long is
            /// closed (checked once per timeout: after one to two times it), ms [default: 5000].
            #[arg(long, env = concat!($prefix, "IDLE_TIMEOUT_MS"))]
            pub idle_timeout_ms: Option<u64>,
            /// The most connections open at once; more wait in the kernel's backlog [default:
            /// three quarters of the open-files limit].
            #[arg(long, env = concat!($prefix, "MAX_CONNECTIONS"))]
            pub max_connections: Option<usize>,
            /// While max_connections are open, a connection idle this long is closed to make
            /// room, ms [default: 250].
            #[arg(long, env = concat!($prefix, "OVERLOAD_IDLE_TIMEOUT_MS"))]
            pub overload_idle_timeout_ms: Option<u64>,
            /// PEM certificate chain (the server's certificate first): with tls_key_file, the
            /// server speaks only HTTPS, and loads the pair again when the files change.
            #[arg(long, env = concat!($prefix, "TLS_CERT_FILE"))]
            pub tls_cert_file: Option<std::path::PathBuf>,
            /// PEM private key of tls_cert_file.
            #[arg(long, env = concat!($prefix, "TLS_KEY_FILE"))]
            pub tls_key_file: Option<std::path::PathBuf>,
            /// PEM CA certificates: when set, every client must present a certificate one of
            /// them issued (mTLS).
            #[arg(long, env = concat!($prefix, "TLS_CLIENT_CA_FILE"))]
            pub tls_client_ca_file: Option<std::path::PathBuf>,
            /// With tls_client_ca_file: let clients without a certificate connect too (they
            /// authenticate otherwise, e.g. with a bearer token; public reads need nothing); a
            /// certificate presented must still verify [default: false].
            #[arg(long, env = concat!($prefix, "TLS_CLIENT_CERT_OPTIONAL"))]
            pub tls_client_cert_optional: Option<bool>,
            /// How often the certificate and key files are checked for a change, ms [default:
            /// 5000].
            #[arg(long, env = concat!($prefix, "TLS_RELOAD_INTERVAL_MS"))]
            pub tls_reload_interval_ms: Option<u64>,
        }

        impl $name {
            /// `self` with every value `over` sets replacing it.
            pub fn overlay(mut self, over: &$name) -> $name {
                $crate::overlay!(
                    self,
                    over,
                    header_read_timeout_ms,
                    body_read_timeout_ms,
                    body_min_bytes_per_sec,
                    idle_timeout_ms,
                    max_connections,
                    overload_idle_timeout_ms,
                    tls_cert_file,
                    tls_key_file,
                    tls_client_ca_file,
                    tls_client_cert_optional,
                    tls_reload_interval_ms
                );
                self
            }

            /// Checks the values and fills in the defaults.
            pub fn resolve(&self) -> Result<$crate::EdgeConfig, $crate::SettingsError> {
                let defaults = $crate::Limits::default();
                let millis = |key: &'static str, value: Option<u64>, default: std::time::Duration| {
                    value
                        .map(|value| $crate::__positive(key, value).map(std::time::Duration::from_millis))
                        .unwrap_or(Ok(default))
                };
                let limits = $crate::Limits {
                    header_read_timeout: millis(
                        "header_read_timeout_ms",
                        self.header_read_timeout_ms,
                        defaults.header_read_timeout,
                    )?,
                    body_read_timeout: millis(
                        "body_read_timeout_ms",
                        self.body_read_timeout_ms,
                        defaults.body_read_timeout,
                    )?,
                    body_min_bytes_per_sec: self
                        .body_min_bytes_per_sec
                        .map(|value| $crate::__positive("body_min_bytes_per_sec", value))
                        .unwrap_or(Ok(defaults.body_min_bytes_per_sec))?,
                    idle_timeout: millis("idle_timeout_ms", self.idle_timeout_ms, defaults.idle_timeout)?,
                    max_connections: match self.max_connections {
                        Some(value) => {
                            $crate::__positive("max_connections", value as u64)?;
                            value
                        }
                        None => defaults.max_connections,
                    },
                    overload_idle_timeout: millis(
                        "overload_idle_timeout_ms",
                        self.overload_idle_timeout_ms,
                        defaults.overload_idle_timeout,
                    )?,
                };
                let reload_interval = millis(
                    "tls_reload_interval_ms",
                    self.tls_reload_interval_ms,
                    std::time::Duration::from_secs(5),
                )?;
                let tls = match (&self.tls_cert_file, &self.tls_key_file) {
                    (Some(_), Some(_))
                        if self.tls_client_cert_optional.is_some()
                            && self.tls_client_ca_file.is_none() =>
                    {
                        return Err($crate::SettingsError::Inconsistent(
                            "tls_client_cert_optional needs tls_client_ca_file",
                        ));
                    }
                    (Some(cert_chain), Some(key)) => Some($crate::Tls::load($crate::TlsFiles {
                        cert_chain: cert_chain.clone(),
                        key: key.clone(),
                        client_ca: self.tls_client_ca_file.clone(),
                        client_cert_optional: self.tls_client_cert_optional.unwrap_or(false),
                        reload_interval,
                    })?),
                    (None, None)
                        if self.tls_client_ca_file.is_some()
                            || self.tls_client_cert_optional.is_some() =>
                    {
                        return Err($crate::SettingsError::Inconsistent(
                            "tls_client_ca_file and tls_client_cert_optional need tls_cert_file \
                             and tls_key_file",
                        ));
                    }
                    (None, None) => None,
                    _ => {
                        return Err($crate::SettingsError::Inconsistent(
                            "tls_cert_file and tls_key_file are set together or not at all",
                        ));
                    }
                };
                Ok($crate::EdgeConfig { limits, tls })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    crate::settings!(
        /// Test settings.
        struct TestSettings, "CAIRN_EDGE_TEST_"
    );

    #[test]
    fn fills_defaults_and_lays_flags_over_the_file() {
        let file: TestSettings =
            toml::from_str("header_read_timeout_ms = 1500\nmax_connections = 7\n").expect("parses");
        let flags = TestSettings {
            max_connections: Some(9),
            ..TestSettings::default()
        };
        let limits = file.overlay(&flags).resolve().expect("valid").limits;
        assert_eq!(limits.header_read_timeout, Duration::from_millis(1500));
        assert_eq!(limits.max_connections, 9);
        assert_eq!(limits.idle_timeout, crate::Limits::default().idle_timeout);
    }

    #[test]
    fn refuses_zero_and_unknown_keys() {
        let zero: TestSettings = toml::from_str("idle_timeout_ms = 0").expect("parses");
        let error = zero.resolve().expect_err("zero is refused");
        assert!(error.to_string().contains("idle_timeout_ms"), "{error}");
        assert!(toml::from_str::<TestSettings>("idle_timeout = 5").is_err());
    }
}
