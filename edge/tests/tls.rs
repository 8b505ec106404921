//! TLS on loopback with certificates made in the test by the `openssl` command (which Cairn's
//! tests already need): a round trip, a replaced certificate served without a restart, a broken
//! replacement refused while the old one stays, client certificates required by a CA, and the
//! identity of a client's certificate seen by the handler (or none, where certificates are
//! optional).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use axum::routing;
use axum::Router;
use cairn_edge::{EdgeConfig, Limits, Tls, TlsFiles};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

const BOUND: Duration = Duration::from_secs(10);

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (it is needed by Cairn's tests)");
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A CA (`ca.pem`, `ca.key`) in `dir`.
fn make_ca(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=cairn test CA",
        ],
    );
}

/// A certificate for `name` issued by the CA: `<name>.pem`, `<name>.key`; for 127.0.0.1 and
/// localhost, as a server or a client.
fn issue(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (key, csr, pem) = (
        format!("{name}.key"),
        format!("{name}.csr"),
        format!("{name}.pem"),
    );
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            &key,
            "-out",
            &csr,
            "-subj",
            &format!("/CN={name}"),
        ],
    );
    let extensions = dir.join(format!("{name}.ext"));
    std::fs::write(
        &extensions,
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .expect("writes the extensions");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            &pem,
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
    (dir.join(pem), dir.join(key))
}

fn certificates(path: &Path) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_file_iter(path)
        .expect("reads the PEM")
        .collect::<Result<_, _>>()
        .expect("parses the PEM")
}

/// A client that trusts the test CA, with a client certificate if given.
fn connector(dir: &Path, client: Option<(&Path, &Path)>) -> TlsConnector {
    let mut roots = RootCertStore::empty();
    for certificate in certificates(&dir.join("ca.pem")) {
        roots.add(certificate).expect("a CA certificate");
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let mut config = match client {
        Some((pem, key)) => builder
            .with_client_auth_cert(
                certificates(pem),
                PrivateKeyDer::from_pem_file(key).expect("a client key"),
            )
            .expect("a client certificate"),
        None => builder.with_no_client_auth(),
    };
    // Every connection a full handshake: a resumed session shows the certificate of the session
    // it resumes, not the one the server has now.
    config.resumption = Resumption::disabled();
    TlsConnector::from(Arc::new(config))
}

/// GET /healthz over TLS: the answer and the certificate the server presented.
async fn healthz(
    addr: SocketAddr,
    connector: &TlsConnector,
) -> std::io::Result<(String, CertificateDer<'static>)> {
    get(addr, connector, "/healthz").await
}

/// GET `path` over TLS: the answer and the certificate the server presented.
async fn get(
    addr: SocketAddr,
    connector: &TlsConnector,
    path: &str,
) -> std::io::Result<(String, CertificateDer<'static>)> {
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("localhost").expect("a name");
    let mut stream = connector.connect(name, tcp).await?;
    let presented = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .expect("the server presents a certificate")
        .clone()
        .into_owned();
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut answer = Vec::new();
    // A server that refuses the client's certificate ends the connection with an alert, which
    // surfaces here.
    stream.read_to_end(&mut answer).await?;
    Ok((String::from_utf8_lossy(&answer).into_owned(), presented))
}

async fn start(tls: Tls) -> (SocketAddr, oneshot::Sender<()>) {
    let app = Router::new()
        .route("/healthz", routing::get(|| async { "ok\n" }))
        .route(
            "/whoami",
            routing::get(|| async {
                match cairn_edge::client_certificate() {
                    Some(client) => hex(&client.sha256),
                    None => "none".to_string(),
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("an address");
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(cairn_edge::serve(
        listener,
        app,
        EdgeConfig {
            limits: Limits::default(),
            tls: Some(tls),
        },
        async move {
            let _ = stopped.await;
        },
    ));
    (addr, stop)
}

fn files(dir: &Path, client_ca: bool) -> TlsFiles {
    TlsFiles {
        cert_chain: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca: client_ca.then(|| dir.join("ca.pem")),
        client_cert_optional: false,
        reload_interval: Duration::from_millis(100),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_https_and_a_replaced_certificate_without_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_ca(dir.path());
    issue(dir.path(), "server");
    let first = certificates(&dir.path().join("server.pem")).remove(0);
    let (addr, _stop) = start(Tls::load(files(dir.path(), false)).expect("loads")).await;
    let client = connector(dir.path(), None);
    let (answer, presented) = healthz(addr, &client).await.expect("a TLS round trip");
    assert!(answer.starts_with("HTTP/1.1 200"), "answered {answer:?}");
    assert!(answer.ends_with("ok\n"), "answered {answer:?}");
    assert_eq!(presented, first);

    // A broken replacement (a key that is not the certificate's) is refused; the first pair
    // stays in service.
    issue(dir.path(), "other");
    std::fs::copy(dir.path().join("other.key"), dir.path().join("server.key")).expect("copies");
    tokio::time::sleep(Duration::from_millis(600)).await;
    let (_, presented) = healthz(addr, &client).await.expect("still served");
    assert_eq!(presented, first, "the broken pair was not put in service");

    // A good replacement is served once the files are seen to change.
    issue(dir.path(), "server");
    let second = certificates(&dir.path().join("server.pem")).remove(0);
    assert_ne!(first, second);
    let deadline = tokio::time::Instant::now() + BOUND;
    loop {
        let (answer, presented) = healthz(addr, &client).await.expect("a TLS round trip");
        assert!(answer.starts_with("HTTP/1.1 200"), "answered {answer:?}");
        if presented == second {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the replaced certificate is not served after {BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_ca_lets_only_clients_with_its_certificates_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_ca(dir.path());
    issue(dir.path(), "server");
    let (client_pem, client_key) = issue(dir.path(), "producer");
    let (addr, _stop) = start(Tls::load(files(dir.path(), true)).expect("loads")).await;

    let with_certificate = connector(dir.path(), Some((&client_pem, &client_key)));
    let (answer, _) = tokio::time::timeout(BOUND, healthz(addr, &with_certificate))
        .await
        .expect("answers in time")
        .expect("a client with a certificate is served");
    assert!(answer.starts_with("HTTP/1.1 200"), "answered {answer:?}");

    let without = connector(dir.path(), None);
    let refused = tokio::time::timeout(BOUND, healthz(addr, &without))
        .await
        .expect("refuses in time");
    assert!(
        refused
            .as_ref()
            .map_or(true, |(answer, _)| !answer.starts_with("HTTP/1.1 200")),
        "a client without a certificate was served: {refused:?}"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_knows_the_verified_client_certificate_and_none_without_one() {
    use sha2::Digest as _;
    let dir = tempfile::tempdir().expect("tempdir");
    make_ca(dir.path());
    issue(dir.path(), "server");
    let (client_pem, client_key) = issue(dir.path(), "producer");
    let mut optional = files(dir.path(), true);
    optional.client_cert_optional = true;
    let (addr, _stop) = start(Tls::load(optional).expect("loads")).await;

    let with_certificate = connector(dir.path(), Some((&client_pem, &client_key)));
    let (answer, _) = tokio::time::timeout(BOUND, get(addr, &with_certificate, "/whoami"))
        .await
        .expect("answers in time")
        .expect("served");
    let expected = hex(&sha2::Sha256::digest(certificates(&client_pem)[0].as_ref()));
    assert!(answer.starts_with("HTTP/1.1 200"), "answered {answer:?}");
    assert!(
        answer.ends_with(&expected),
        "answered {answer:?}, expected {expected}"
    );

    // Certificates are optional here: a client without one is served, and known as none.
    let without = connector(dir.path(), None);
    let (answer, _) = tokio::time::timeout(BOUND, get(addr, &without, "/whoami"))
        .await
        .expect("answers in time")
        .expect("served without a certificate");
    assert!(answer.ends_with("\r\n\r\nnone"), "answered {answer:?}");

    // A certificate from another CA is still refused.
    let stranger_dir = tempfile::tempdir().expect("tempdir");
    make_ca(stranger_dir.path());
    let (stranger_pem, stranger_key) = issue(stranger_dir.path(), "stranger");
    let stranger = connector(dir.path(), Some((&stranger_pem, &stranger_key)));
    let refused = tokio::time::timeout(BOUND, get(addr, &stranger, "/whoami"))
        .await
        .expect("refuses in time");
    assert!(
        refused
            .as_ref()
            .map_or(true, |(answer, _)| !answer.starts_with("HTTP/1.1 200")),
        "a certificate of another CA was accepted: {refused:?}"
    );
}

#[test]
fn refuses_to_start_with_a_key_that_is_not_the_certificates() {
    let dir = tempfile::tempdir().expect("tempdir");
    make_ca(dir.path());
    issue(dir.path(), "server");
    issue(dir.path(), "other");
    let mut mismatched = files(dir.path(), false);
    mismatched.key = dir.path().join("other.key");
    let error = Tls::load(mismatched).expect_err("a mismatched key is refused");
    assert!(
        error
            .to_string()
            .contains("is not the key of the certificate"),
        "{error}"
    );
    let mut missing = files(dir.path(), false);
    missing.cert_chain = dir.path().join("absent.pem");
    assert!(Tls::load(missing).is_err());
}

#[test]
fn a_pem_file_over_the_limit_is_refused_without_being_read_to_its_end() {
    let dir = tempfile::tempdir().expect("tempdir");
    let large = dir.path().join("large.pem");
    std::fs::write(&large, vec![b'#'; (1 << 20) + 1]).expect("writes");
    let error = cairn_edge::read_ca_pem(&large).expect_err("too large");
    assert!(
        error
            .to_string()
            .contains("is larger than 1048576 bytes, more than a PEM file"),
        "{error}"
    );
    assert!(error.to_string().contains("large.pem"), "{error}");
    // A source with no size that never ends: the limit holds while reading.
    let error = cairn_edge::read_ca_pem(Path::new("/dev/zero")).expect_err("endless");
    assert!(
        error.to_string().contains("is larger than 1048576 bytes"),
        "{error}"
    );
}
