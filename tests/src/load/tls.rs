//! The client side of TLS for an https:// target: a rustls connector (the `ring` provider, as
//! reqwest builds it) that trusts only the CA file given, and the stream a connection runs on,
//! plain or TLS. The handshake is part of connecting, so it is inside the request's latency and
//! timeout like the TCP handshake.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::crypto::ring::default_provider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};
use tokio_rustls::TlsConnector;

use super::config::{ConfigError, Target};

/// The largest CA file read.
const MAX_CA_BYTES: u64 = 1 << 20;

/// What a TLS connection to the target needs.
#[derive(Clone)]
pub(crate) struct ClientTls {
    connector: TlsConnector,
    name: ServerName<'static>,
}

impl ClientTls {
    /// A connector that trusts the certificates of `ca_file`, for `target` (checked against its
    /// certificate: `localhost`, or its IP address).
    pub(crate) fn load(ca_file: &Path, target: &Target) -> Result<ClientTls, ConfigError> {
        let problem = |detail: String| ConfigError::Tls(format!("{}: {detail}", ca_file.display()));
        let length = std::fs::metadata(ca_file)
            .map_err(|error| problem(error.to_string()))?
            .len();
        if length > MAX_CA_BYTES {
            return Err(problem(format!("{length} bytes is not a CA file")));
        }
        let pem = std::fs::read(ca_file).map_err(|error| problem(error.to_string()))?;
        let mut roots = RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(&pem) {
            let certificate = certificate.map_err(|error| problem(error.to_string()))?;
            roots
                .add(certificate)
                .map_err(|error| problem(error.to_string()))?;
        }
        if roots.is_empty() {
            return Err(problem("holds no certificate".into()));
        }
        let mut config = ClientConfig::builder_with_provider(Arc::new(default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|error| problem(error.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let host =
            target
                .authority
                .rsplit_once(':')
                .map_or(target.authority.as_str(), |(host, port)| {
                    if port.parse::<u16>().is_ok() && !host.is_empty() {
                        host
                    } else {
                        target.authority.as_str()
                    }
                });
        let name = if host.eq_ignore_ascii_case("localhost") {
            ServerName::try_from("localhost").map_err(|error| problem(error.to_string()))?
        } else {
            ServerName::IpAddress(target.addr.ip().into())
        };
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            name,
        })
    }
}

/// A connection's socket: plain TCP, or TLS over it.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

/// Connects to `addr`, with a TLS handshake when `tls` is given.
pub(crate) async fn connect(addr: SocketAddr, tls: Option<&ClientTls>) -> io::Result<Stream> {
    let stream = TcpStream::connect(addr).await?;
    // Requests are small and each waits for its answer: Nagle's algorithm would only add delay.
    stream.set_nodelay(true)?;
    match tls {
        None => Ok(Stream::Plain(stream)),
        Some(tls) => {
            let stream = tls.connector.connect(tls.name.clone(), stream).await?;
            Ok(Stream::Tls(Box::new(stream)))
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_read(cx, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write(cx, buf),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_write_vectored(cx, bufs),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(stream) => stream.is_write_vectored(),
            Stream::Tls(stream) => stream.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_flush(cx),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(stream) => Pin::new(stream).poll_shutdown(cx),
            Stream::Tls(stream) => Pin::new(stream.as_mut()).poll_shutdown(cx),
        }
    }
}
