//! TLS with rustls (the `ring` provider, the one reqwest already brings), from a certificate
//! chain and a private key in PEM files, reloaded without a restart, and optionally a CA whose
//! client certificates the server requires (mTLS).
//!
//! Certificates are renewed often (ACME: every few weeks), so the files are watched: every
//! `reload_interval` a task compares their modification times and sizes with what it loaded,
//! and on a change loads both again. A new pair that does not load (half written, a key that
//! does not match the certificate) is refused with an error line and the old pair stays in
//! service; the next change is tried again. The handshake itself only reads the current pair
//! behind a lock, never the disk.
//!
//! The handshake has the header read timeout: a client that opens a connection and stalls its
//! `ClientHello` is cut off like one that stalls its request head.
//!
//! With mTLS, the certificate a client presented (and rustls verified against the client CA)
//! is known to the handling of each request on that connection as a [`ClientCertificate`]:
//! the SHA-256 of its DER encoding, read with [`client_certificate`]. A server maps it to a
//! principal; the edge itself only proves that the client holds the certificate's key.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_rustls::TlsAcceptor;

use crate::config_file::{read_bounded, ConfigFileError};

/// The client certificate of the connection a request came on: the SHA-256 of the end-entity
/// certificate's DER encoding (what `openssl x509 -noout -fingerprint -sha256` prints), set
/// only once rustls has verified the chain to a configured client CA and the client's
/// signature in the handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientCertificate {
    /// SHA-256 of the certificate's DER encoding.
    pub sha256: [u8; 32],
}

impl ClientCertificate {
    /// The identity of a verified chain's end-entity certificate.
    pub(crate) fn of(chain: Option<&[CertificateDer<'_>]>) -> Option<ClientCertificate> {
        use sha2::Digest as _;
        let end_entity = chain?.first()?;
        Some(ClientCertificate {
            sha256: sha2::Sha256::digest(end_entity.as_ref()).into(),
        })
    }
}

tokio::task_local! {
    /// The client certificate of the request being handled (set around each request's future
    /// by the edge; `None` on plain HTTP and for a client that presented none).
    static CLIENT_CERTIFICATE: Option<ClientCertificate>;
}

/// The verified client certificate of the connection the current request came on, if any.
///
/// It is set around the future of each request's handling, so it is seen by the handler and
/// everything it awaits, but not by a task the handler spawns (there, and outside a request,
/// it is `None`: a check that needs it fails closed).
pub fn client_certificate() -> Option<ClientCertificate> {
    CLIENT_CERTIFICATE.try_with(|client| *client).ok().flatten()
}

/// `future` with `client` as its [`client_certificate`]: what the edge does around each request
/// (public for tests of code that reads the client certificate).
pub fn with_client_certificate<F: std::future::Future>(
    client: Option<ClientCertificate>,
    future: F,
) -> tokio::task::futures::TaskLocalFuture<Option<ClientCertificate>, F> {
    CLIENT_CERTIFICATE.scope(client, future)
}

/// The largest PEM file read: a chain of a few certificates is a few KiB.
const MAX_PEM_BYTES: u64 = 1 << 20;

/// Where the server's TLS material is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM, the server's certificate first.
    pub cert_chain: PathBuf,
    /// The private key of the server's certificate, PEM (PKCS #8, PKCS #1 or SEC 1).
    pub key: PathBuf,
    /// PEM certificates of the CAs whose client certificates are accepted (read once, at
    /// start); when set, every client must present one, unless `client_cert_optional`.
    pub client_ca: Option<PathBuf>,
    /// With `client_ca`: a client may also connect without a certificate (and authenticate
    /// otherwise, with a bearer token); one it presents must still verify.
    pub client_cert_optional: bool,
    /// How often the certificate and key files are checked for a change.
    pub reload_interval: Duration,
}

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// A file is not what it should be.
    #[error("{path}: {detail}")]
    Content {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Config(#[from] tokio_rustls::rustls::Error),
}

/// The server's TLS: the acceptor, and the pair it serves, reloadable.
#[derive(Clone)]
pub struct Tls {
    acceptor: TlsAcceptor,
    current: Arc<CurrentPair>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Tls")
            .field("files", &self.current.files)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Loads the files; any problem is an error, so that a server does not start with a TLS
    /// configuration it cannot serve.
    pub fn load(files: TlsFiles) -> Result<Tls, TlsError> {
        let provider = Arc::new(default_provider());
        let (pair, stamp) = load_pair(&files, &provider)?;
        let current = Arc::new(CurrentPair {
            files,
            provider: provider.clone(),
            pair: RwLock::new((Arc::new(pair), stamp)),
        });
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?;
        let builder = match &current.files.client_ca {
            Some(path) => {
                let mut roots = RootCertStore::empty();
                for certificate in read_certificates(path)? {
                    roots.add(certificate).map_err(|error| TlsError::Content {
                        path: path.clone(),
                        detail: format!("not a usable CA certificate: {error}"),
                    })?;
                }
                let mut verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                if current.files.client_cert_optional {
                    verifier = verifier.allow_unauthenticated();
                }
                let verifier = verifier.build().map_err(|error| TlsError::Content {
                    path: path.clone(),
                    detail: error.to_string(),
                })?;
                builder.with_client_cert_verifier(verifier)
            }
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(current.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
            current,
        })
    }

    /// The acceptor of handshakes.
    pub(crate) fn acceptor(&self) -> &TlsAcceptor {
        &self.acceptor
    }

    /// Checks the files every reload interval and loads a changed pair, forever (the caller
    /// aborts it).
    pub(crate) async fn watch(self) {
        let mut ticks = tokio::time::interval(self.current.files.reload_interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let current = self.current.clone();
            // File reads: off the runtime's workers.
            let _ = tokio::task::spawn_blocking(move || current.reload_if_changed()).await;
        }
    }

    /// Loads the pair again now if its files changed; whether a new pair is in service.
    pub fn reload_if_changed(&self) -> bool {
        self.current.reload_if_changed()
    }
}

/// When and how large the two files were when loaded: a change of either means a reload.
type Stamp = [(Option<SystemTime>, u64); 2];

/// The pair in service, behind a lock that handshakes only read.
struct CurrentPair {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    pair: RwLock<(Arc<CertifiedKey>, Stamp)>,
}

impl fmt::Debug for CurrentPair {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("CurrentPair")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl CurrentPair {
    fn reload_if_changed(&self) -> bool {
        let known = match self.pair.read() {
            Ok(pair) => pair.1,
            Err(poisoned) => poisoned.into_inner().1,
        };
        if stamp(&self.files) == known {
            return false;
        }
        match load_pair(&self.files, &self.provider) {
            Ok((pair, stamp)) => {
                let mut current = match self.pair.write() {
                    Ok(current) => current,
                    Err(poisoned) => poisoned.into_inner(),
                };
                *current = (Arc::new(pair), stamp);
                tracing::info!(
                    certificate = %self.files.cert_chain.display(),
                    "TLS certificate reloaded"
                );
                true
            }
            Err(error) => {
                // Keep serving the old pair; note the new stamp so that the same broken files
                // are reported once, and the next change is tried.
                let mut current = match self.pair.write() {
                    Ok(current) => current,
                    Err(poisoned) => poisoned.into_inner(),
                };
                current.1 = stamp(&self.files);
                tracing::error!(%error, "the changed TLS certificate or key does not load; the previous one stays in service");
                false
            }
        }
    }
}

impl ResolvesServerCert for CurrentPair {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let pair = match self.pair.read() {
            Ok(pair) => pair,
            Err(poisoned) => poisoned.into_inner(),
        };
        Some(pair.0.clone())
    }
}

fn stamp(files: &TlsFiles) -> Stamp {
    [&files.cert_chain, &files.key].map(|path| match std::fs::metadata(path) {
        Ok(metadata) => (metadata.modified().ok(), metadata.len()),
        Err(_) => (None, 0),
    })
}

/// Reads the certificate chain and the key, checks that they belong together.
fn load_pair(
    files: &TlsFiles,
    provider: &CryptoProvider,
) -> Result<(CertifiedKey, Stamp), TlsError> {
    // Stamped before reading: a change while reading is seen at the next check.
    let stamp = stamp(files);
    let chain = read_certificates(&files.cert_chain)?;
    let key_pem = read_pem(&files.key)?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|error| TlsError::Content {
        path: files.key.clone(),
        detail: format!("no private key in PEM: {error}"),
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| TlsError::Content {
            path: files.key.clone(),
            detail: format!("unusable private key: {error}"),
        })?;
    let pair = CertifiedKey::new(chain, signing_key);
    pair.keys_match().map_err(|error| TlsError::Content {
        path: files.key.clone(),
        detail: format!(
            "is not the key of the certificate in {}: {error}",
            files.cert_chain.display()
        ),
    })?;
    Ok((pair, stamp))
}

/// The PEM text of a CA file a client is told to trust (its certificates checked, its size
/// bounded): what `reqwest::Certificate::from_pem_bundle` and rustls' root stores take.
pub fn read_ca_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    read_certificates(path)?;
    read_pem(path)
}

/// Every certificate of a PEM file; at least one.
fn read_certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| TlsError::Content {
            path: path.to_path_buf(),
            detail: format!("bad PEM: {error}"),
        })?;
    if certificates.is_empty() {
        return Err(TlsError::Content {
            path: path.to_path_buf(),
            detail: "holds no CERTIFICATE".into(),
        });
    }
    Ok(certificates)
}

/// The bytes of a PEM file, at most [`MAX_PEM_BYTES`] of them, read with the one bounded read
/// of the crate ([`read_bounded`]: the limit holds while reading, so a file that grows costs
/// no more).
fn read_pem(path: &Path) -> Result<Vec<u8>, TlsError> {
    read_bounded(path, MAX_PEM_BYTES).map_err(|error| match error {
        ConfigFileError::Read { path, source } => TlsError::Read { path, source },
        ConfigFileError::TooLarge { path, limit } => TlsError::Content {
            path,
            detail: format!(
                "is larger than {limit} bytes, more than a PEM file of keys and certificates"
            ),
        },
        other => TlsError::Content {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    })
}
