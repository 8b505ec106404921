//! `cairn-witness tsa`: a small RFC 3161 timestamp authority for private deployments and
//! tests. `init` makes a root CA and a TSA certificate (critical EKU id-kp-timeStamping,
//! RFC 3161 §2.3) with cairn-spec; `serve` answers `application/timestamp-query` POSTs with
//! `application/timestamp-reply` (RFC 3161 §3.4) made by `cairn_spec::timestamp::issue_response`.
//!
//! Serial numbers must be unique per TSA (RFC 3161 §2.4.2), also across restarts. The TSA
//! reserves them in blocks: before it hands out any serial of a block it durably records the
//! end of the block in the `serial` file (write, fsync, rename, fsync the directory), so a
//! crash at any point can skip serials but never repeat one.
//!
//! Files in the TSA directory: `root.pem` and `tsa.pem` (PEM certificates: what
//! `openssl ts -verify -CAfile root.pem -untrusted tsa.pem` and a witness's `trust_anchor`
//! take), `root.key` and `tsa.key` (keys as `ed25519 <hex seed>` or `p256 <hex scalar>`, mode
//! 0600), `serial`. With `init --pkcs11`, the TSA's key is an ECDSA P-256 key in a PKCS#11
//! token and `tsa-key.toml` names it instead of `tsa.key` ([`token_key`]); `root.key` is needed
//! only to certify a new TSA key, and may then be kept offline.
//!
//! Signing may block (a token's call): the server makes each timestamp off the runtime's
//! workers. A key that cannot sign (a token removed, a PIN changed) is answered with HTTP 503
//! `key_unavailable` and Retry-After, not with a timestamp, and logged with the token's error.
//!
//! P-256 (the default of `tsa init`) is what OpenSSL can check: OpenSSL 3.0 verifies
//! timestamps through its PKCS #7 code, which has no Ed25519, so Ed25519 tokens verify with
//! cairn-spec only. `witness/tests/openssl_interop.rs` runs `openssl ts` against this TSA.

use crate::anchor::TIMESTAMP_REPLY_TYPE;
use crate::http::ApiError;
use crate::keys::{read_key_file, write_key_file, KeyFileError};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use cairn_edge::ConfigFile;
use cairn_spec::time::Instant;
use cairn_spec::timestamp::{
    certificate_to_pem, certificates_from_pem, issue_response, make_root_certificate,
    make_tsa_certificate, rejection_response, Accuracy, CertificateSpec, FailureInfo, KeyPair,
    ObjectIdentifier, TimestampError, TimestampGrant, TimestampRequest, TsaSigner,
    MAX_REQUEST_SIZE,
};
use rand::RngCore;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

pub mod token_key;
pub use token_key::TOKEN_KEY_FILE;

/// Serials reserved per durable write.
pub const SERIAL_BLOCK: u64 = 4096;

/// The policy OID a Cairn TSA uses unless told otherwise (a private-use example arc; set
/// your organisation's own with `--policy`).
pub const DEFAULT_POLICY: &str = "1.3.6.1.4.1.99999.1";

/// The signature algorithm of a TSA's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyAlgorithm {
    /// Ed25519 (RFC 8419).
    Ed25519,
    /// ECDSA P-256 with SHA-256.
    P256,
}

/// Why a TSA operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TsaError {
    /// A file could not be read or written.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        error: std::io::Error,
    },
    /// A key file.
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    /// A key file's content.
    #[error("key file {path}: {detail}")]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// Certificates or signer.
    #[error(transparent)]
    Timestamp(#[from] TimestampError),
    /// The serial file.
    #[error("serial file {path}: {detail}")]
    BadSerial {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A file of the TSA directory could not be read: missing, larger than its bound, or not
    /// UTF-8 (the error names the file).
    #[error(transparent)]
    File(cairn_edge::ConfigFileError),
    /// A token key file (`--pkcs11 FILE`, `tsa-key.toml`) could not be read or parsed.
    #[error("TSA token key file (a [pkcs11] table only): {0}")]
    TokenKeyFile(cairn_edge::ConfigFileError),
    /// A key in a PKCS#11 token could not be made or opened.
    #[error("TSA key in a PKCS#11 token: {0}")]
    Token(String),
    /// The TSA's key could not sign now (a token removed, a session lost, a PIN changed).
    #[error("{0}")]
    KeyUnavailable(String),
    /// The TSA directory names two keys.
    #[error("{dir} holds both tsa.key and tsa-key.toml: keep the one that names the TSA's key")]
    TwoKeys {
        /// The TSA directory.
        dir: PathBuf,
    },
    /// The TSA directory already holds a TSA.
    #[error("{path} already exists; refusing to overwrite a TSA")]
    Exists {
        /// The file.
        path: PathBuf,
    },
}

pub(crate) fn io_error(path: &Path) -> impl Fn(std::io::Error) -> TsaError + '_ {
    move |error| TsaError::Io {
        path: path.to_owned(),
        error,
    }
}

fn now() -> Instant {
    let elapsed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    Instant {
        seconds: i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX),
        nanos: elapsed.subsec_nanos(),
    }
}

fn generate_key(algorithm: KeyAlgorithm) -> (KeyPair, String) {
    let mut rng = rand::rngs::OsRng;
    loop {
        let mut secret = [0u8; 32];
        rng.fill_bytes(&mut secret);
        let encoded = hex(&secret);
        match algorithm {
            KeyAlgorithm::Ed25519 => {
                return (
                    KeyPair::ed25519_from_seed(secret),
                    format!("ed25519 {encoded}"),
                )
            }
            // A random 256-bit value is at or above the group order with probability ~2^-32.
            KeyAlgorithm::P256 => {
                if let Ok(key) = KeyPair::p256_from_scalar(&secret) {
                    return (key, format!("p256 {encoded}"));
                }
            }
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 || !text.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (index, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&text[2 * index..2 * index + 2], 16).ok()?;
    }
    Some(out)
}

/// Reads a TSA key file (`ed25519 <hex>` or `p256 <hex>`, mode 0600).
pub fn read_key(path: &Path) -> Result<KeyPair, TsaError> {
    let text = read_key_file(path)?;
    let bad = |detail: &str| TsaError::BadKey {
        path: path.to_owned(),
        detail: detail.to_owned(),
    };
    let (kind, secret) = text
        .split_once(' ')
        .ok_or_else(|| bad("expected \"ed25519 <hex>\" or \"p256 <hex>\""))?;
    let secret = unhex32(secret).ok_or_else(|| bad("expected 64 hex digits"))?;
    match kind {
        "ed25519" => Ok(KeyPair::ed25519_from_seed(secret)),
        "p256" => KeyPair::p256_from_scalar(&secret).map_err(TsaError::from),
        _ => Err(bad("unknown key type; expected ed25519 or p256")),
    }
}

fn random_serial() -> [u8; 8] {
    let mut serial = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut serial);
    // Positive and of full length.
    serial[0] = (serial[0] & 0x7f) | 0x40;
    serial
}

/// Where `init` puts the TSA's own key.
#[derive(Clone, Debug)]
pub enum TsaKeyPlace {
    /// A new key file `tsa.key` of the root's algorithm.
    File,
    /// An ECDSA P-256 key in the PKCS#11 token the table names: made there, or with
    /// `existing` the one already there under its label.
    Token {
        /// The `[pkcs11]` table (copied into the directory as [`TOKEN_KEY_FILE`]).
        table: token_key::TokenKeyTable,
        /// Use the key already in the token instead of making one.
        existing: bool,
    },
}

/// `tsa init`: makes the root and TSA keys and certificates in `dir` for a TSA named `name`;
/// the TSA's key goes where `place` says (a key in a token is P-256, and so must the root be).
pub fn init(
    dir: &Path,
    name: &str,
    algorithm: KeyAlgorithm,
    validity_days: u32,
    place: &TsaKeyPlace,
) -> Result<(), TsaError> {
    if matches!(place, TsaKeyPlace::Token { .. }) && algorithm != KeyAlgorithm::P256 {
        return Err(TsaError::Token(
            "a TSA key in a token is ECDSA P-256: use --algorithm p256".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(io_error(dir))?;
    for file in [
        "root.pem",
        "root.key",
        "tsa.pem",
        "tsa.key",
        TOKEN_KEY_FILE,
        "serial",
    ] {
        let path = dir.join(file);
        if path.exists() {
            return Err(TsaError::Exists { path });
        }
    }
    let not_before = now();
    let not_after = Instant::from_seconds(not_before.seconds + i64::from(validity_days) * 86_400);
    let not_before = Instant::from_seconds(not_before.seconds - 60);
    let (root_key, root_key_text) = generate_key(algorithm);
    let (tsa_key, tsa_key_text) = match place {
        TsaKeyPlace::File => {
            let (key, text) = generate_key(algorithm);
            (key, Some(text))
        }
        TsaKeyPlace::Token { table, existing } => {
            (token_key::make_or_open(&table.table, *existing)?, None)
        }
    };
    let tsa_key_table = match place {
        TsaKeyPlace::Token { table, .. } => Some(table),
        TsaKeyPlace::File => None,
    };
    let root_subject = format!("CN={name} Root,O=Cairn");
    let tsa_subject = format!("CN={name},O=Cairn");
    let root_certificate = make_root_certificate(
        &root_key,
        &CertificateSpec {
            subject: &root_subject,
            serial_number: &random_serial(),
            not_before,
            not_after,
        },
    )?;
    let tsa_certificate = make_tsa_certificate(
        &root_key,
        &root_certificate,
        &tsa_key.public_key_info_der(),
        &CertificateSpec {
            subject: &tsa_subject,
            serial_number: &random_serial(),
            not_before,
            not_after,
        },
    )?;
    // Refuse now, not at serve time, what verifiers would refuse.
    TsaSigner::new(
        tsa_key,
        tsa_certificate.clone(),
        vec![root_certificate.clone()],
    )?;
    write_key_file(&dir.join("root.key"), &root_key_text)?;
    if let Some(text) = &tsa_key_text {
        write_key_file(&dir.join("tsa.key"), text)?;
    }
    if let Some(table) = tsa_key_table {
        token_key::write_table(dir, table)?;
    }
    write_durably(
        &dir.join("root.pem"),
        certificate_to_pem(&root_certificate).as_bytes(),
    )?;
    write_durably(
        &dir.join("tsa.pem"),
        certificate_to_pem(&tsa_certificate).as_bytes(),
    )?;
    write_durably(&dir.join("serial"), b"1\n")?;
    Ok(())
}

/// The largest serial file read: a decimal `u64` and a newline need 21 bytes.
const MAX_SERIAL_FILE_BYTES: u64 = 64;

/// The largest certificate file (`tsa.pem`, `root.pem`) read: one certificate is about 1 KiB.
const MAX_CERTIFICATE_FILE_BYTES: u64 = 64 * 1024;

/// The text of the file `path`, read with cairn-edge's one bounded read: at most `max_bytes`
/// (the bound holds while reading), UTF-8.
fn read_text(path: &Path, max_bytes: u64) -> Result<String, TsaError> {
    let file = ConfigFile::read(path, max_bytes).map_err(TsaError::File)?;
    Ok(file.text().to_owned())
}

/// Writes `contents` to `path` atomically and durably: a temporary file, fsync, rename, fsync
/// of the directory.
pub(crate) fn write_durably(path: &Path, contents: &[u8]) -> Result<(), TsaError> {
    let temporary = path.with_extension("tmp");
    let mut file = std::fs::File::create(&temporary).map_err(io_error(&temporary))?;
    file.write_all(contents).map_err(io_error(&temporary))?;
    file.sync_all().map_err(io_error(&temporary))?;
    std::fs::rename(&temporary, path).map_err(io_error(path))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(io_error(dir))
}

/// Hands out serial numbers that are unique across restarts (see the module doc).
pub struct SerialCounter {
    path: PathBuf,
    next: u64,
    reserved_end: u64,
}

impl SerialCounter {
    /// Opens the counter file (`serial`: the first serial not yet reserved, decimal).
    pub fn open(path: &Path) -> Result<SerialCounter, TsaError> {
        let bad = |detail: String| TsaError::BadSerial {
            path: path.to_owned(),
            detail,
        };
        let text = read_text(path, MAX_SERIAL_FILE_BYTES)?;
        let next: u64 = text
            .trim()
            .parse()
            .map_err(|error| bad(format!("not a decimal number: {error}")))?;
        if next == 0 || next > u64::MAX / 2 {
            return Err(bad(format!("{next} is out of range")));
        }
        Ok(SerialCounter {
            path: path.to_owned(),
            next,
            reserved_end: next,
        })
    }

    /// The next serial number, reserving a new block durably when needed.
    pub fn next_serial(&mut self) -> Result<u64, TsaError> {
        if self.next == self.reserved_end {
            let end = self.reserved_end + SERIAL_BLOCK;
            write_durably(&self.path, format!("{end}\n").as_bytes())?;
            self.reserved_end = end;
        }
        let serial = self.next;
        self.next += 1;
        Ok(serial)
    }
}

/// A running TSA's signer, serial counter and grant parameters.
pub struct Authority {
    signer: TsaSigner,
    serials: Mutex<SerialCounter>,
    policy: ObjectIdentifier,
    accuracy: Option<Accuracy>,
}

impl Authority {
    /// Loads the TSA in `dir` (made by [`init`]).
    pub fn load(
        dir: &Path,
        policy: ObjectIdentifier,
        accuracy: Option<Accuracy>,
    ) -> Result<Authority, TsaError> {
        let key_file = dir.join("tsa.key");
        let token_file = dir.join(TOKEN_KEY_FILE);
        let key = match (key_file.exists(), token_file.exists()) {
            (true, true) => {
                return Err(TsaError::TwoKeys {
                    dir: dir.to_owned(),
                })
            }
            (false, true) => token_key::open(&token_key::read_table(&token_file)?.table)?,
            (_, false) => read_key(&key_file)?,
        };
        let read_pem = |file: &str| -> Result<Vec<u8>, TsaError> {
            let path = dir.join(file);
            let text = read_text(&path, MAX_CERTIFICATE_FILE_BYTES)?;
            let mut certificates = certificates_from_pem(&text)?;
            if certificates.len() != 1 {
                return Err(TsaError::BadKey {
                    path,
                    detail: format!("{} certificates, 1 expected", certificates.len()),
                });
            }
            Ok(certificates.remove(0))
        };
        let signer = TsaSigner::new(key, read_pem("tsa.pem")?, vec![read_pem("root.pem")?])?;
        Ok(Authority {
            signer,
            serials: Mutex::new(SerialCounter::open(&dir.join("serial"))?),
            policy,
            accuracy,
        })
    }

    /// The DER TimeStampResp for a DER TimeStampReq (a rejection for a bad request), or
    /// [`TsaError::KeyUnavailable`] when the key cannot sign now. May block on a token.
    pub fn answer(&self, request_der: &[u8]) -> Result<Vec<u8>, TsaError> {
        let request = match TimestampRequest::from_der(request_der) {
            Ok(request) => request,
            Err(error) => {
                return Ok(rejection_response(
                    FailureInfo::BadDataFormat,
                    &error.to_string(),
                ))
            }
        };
        let serial = self
            .serials
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .next_serial()?;
        let serial = serial.to_be_bytes();
        let first = serial.iter().position(|&byte| byte != 0).unwrap_or(7);
        let grant = TimestampGrant {
            serial_number: &serial[first..],
            gen_time: now(),
            policy: self.policy,
            accuracy: self.accuracy,
        };
        match issue_response(&request, &self.signer, &grant) {
            Ok(response) => Ok(response),
            Err(TimestampError::RequestRefused { fail_info, reason }) => {
                Ok(rejection_response(fail_info, &reason))
            }
            Err(error @ TimestampError::SigningFailed { .. }) => {
                Err(TsaError::KeyUnavailable(error.to_string()))
            }
            Err(other) => Ok(rejection_response(
                FailureInfo::SystemFailure,
                &other.to_string(),
            )),
        }
    }
}

/// The TSA's routes: POST of a timestamp query to `/` (or any path). A query it cannot honour
/// is answered with an RFC 3161 rejection; what is not a query at all (a body too large or
/// broken, another method) is answered in JSON, as the witness's own errors are
/// ([`crate::http::ApiError`]).
pub fn router(authority: Arc<Authority>) -> Router {
    Router::new()
        .route("/", post(timestamp))
        .route("/{*path}", post(timestamp))
        .layer(DefaultBodyLimit::max(MAX_REQUEST_SIZE))
        .fallback(|| async { crate::http::not_found() })
        .method_not_allowed_fallback(|| async { crate::http::method_not_allowed() })
        .with_state(authority)
}

async fn timestamp(
    State(authority): State<Arc<Authority>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return ApiError::body(&rejection, MAX_REQUEST_SIZE).into_response(),
    };
    // Off the runtime's workers: a key in a token blocks for its call.
    let answered = tokio::task::spawn_blocking(move || authority.answer(&body)).await;
    let answered = answered.unwrap_or_else(|error| {
        Err(TsaError::KeyUnavailable(format!(
            "the signing task failed: {error}"
        )))
    });
    match answered {
        Ok(reply) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, TIMESTAMP_REPLY_TYPE)],
            reply,
        )
            .into_response(),
        Err(TsaError::KeyUnavailable(detail)) => {
            tracing::error!("timestamp not made: {detail}");
            ApiError::unavailable(
                "key_unavailable",
                "the TSA's key cannot sign for now; no timestamp was made: retry later",
            )
            .into_response()
        }
        Err(error) => {
            tracing::error!("timestamp failed: {error}");
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "timestamp_failed",
                "the TSA could not make a timestamp; the operator has the details",
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_never_repeat_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("serial");
        std::fs::write(&path, "1\n").expect("writes");
        let mut first = SerialCounter::open(&path).expect("opens");
        let a = first.next_serial().expect("serial");
        let b = first.next_serial().expect("serial");
        drop(first);
        let mut second = SerialCounter::open(&path).expect("reopens");
        let c = second.next_serial().expect("serial");
        assert_eq!((a, b), (1, 2));
        assert_eq!(c, 1 + SERIAL_BLOCK);
    }

    #[test]
    fn a_serial_file_or_certificate_over_its_bound_is_refused_naming_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("serial");
        std::fs::write(&path, format!("{}1\n", "0".repeat(64))).expect("writes");
        let error = SerialCounter::open(&path)
            .err()
            .expect("too large")
            .to_string();
        assert!(
            error.contains(&format!("{} is larger than 64 bytes", path.display())),
            "{error}"
        );

        let tsa_dir = dir.path().join("tsa");
        init(&tsa_dir, "t", KeyAlgorithm::P256, 30, &TsaKeyPlace::File).expect("init");
        let certificate = tsa_dir.join("tsa.pem");
        let mut pem = std::fs::read_to_string(&certificate).expect("reads");
        pem.push_str(&"\n".repeat(64 * 1024));
        std::fs::write(&certificate, pem).expect("writes");
        let policy = ObjectIdentifier::new(DEFAULT_POLICY).expect("oid");
        let error = Authority::load(&tsa_dir, policy, None)
            .err()
            .expect("too large")
            .to_string();
        assert!(
            error.contains(&format!(
                "{} is larger than 65536 bytes",
                certificate.display()
            )),
            "{error}"
        );
    }

    #[test]
    fn init_refuses_to_overwrite_a_tsa() {
        let dir = tempfile::tempdir().expect("tempdir");
        init(
            dir.path(),
            "t",
            KeyAlgorithm::Ed25519,
            30,
            &TsaKeyPlace::File,
        )
        .expect("init");
        assert!(matches!(
            init(
                dir.path(),
                "t",
                KeyAlgorithm::Ed25519,
                30,
                &TsaKeyPlace::File
            ),
            Err(TsaError::Exists { .. })
        ));
        let policy = ObjectIdentifier::new(DEFAULT_POLICY).expect("oid");
        Authority::load(dir.path(), policy, None).expect("loads");
    }
}
