//! One connection: hyper's HTTP/1.1 connection around the router, and what watches it.
//!
//! Three small pieces share one [`Activity`] per connection (atomics, no lock):
//!
//! - the socket is wrapped in [`Tracked`], which notes that bytes moved;
//! - the service ([`EdgeService`]) notes when a request is in flight, hands the router a
//!   [`PacedBody`], and turns the answer into 408 when that body was too slow;
//! - [`watch_idle`] closes the connection when it has had no request in flight and moved no
//!   byte for the idle timeout, or the shorter overload timeout while the server is at its
//!   connection cap.
//!
//! Half-closed connections are allowed (`half_close(true)`). Without it, hyper reads the socket
//! once more while each request is in flight, to notice a client that went away; that read finds
//! nothing, and it first makes room in a read buffer that the request still shares, so each
//! request also costs a fresh 8 KiB buffer. Cairn's handlers need no early notice: they finish
//! in bounded time whatever the client does.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::routing::future::RouteFuture;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::task::futures::TaskLocalFuture;
use tokio::time::Instant;

pub use crate::activity::Activity;
use crate::body::{BodyPace, PacedBody};
use crate::tls::{with_client_certificate, ClientCertificate};
use crate::Limits;

/// A socket that notes in its [`Activity`] that bytes moved.
#[derive(Debug)]
pub struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S> Tracked<S> {
    fn moved(&self, bytes: usize) {
        if bytes > 0 {
            self.activity.mark_moved();
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        this.moved(buf.filled().len() - before);
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.inner).poll_write(cx, buf))?;
        this.moved(written);
        Poll::Ready(Ok(written))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = ready!(Pin::new(&mut this.inner).poll_write_vectored(cx, bufs))?;
        this.moved(written);
        Poll::Ready(Ok(written))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

/// The router as hyper's service: each request's body paced, its answer watched.
#[derive(Clone, Debug)]
pub struct EdgeService {
    app: Router,
    activity: Arc<Activity>,
    pace: BodyPace,
    client: Option<ClientCertificate>,
}

impl hyper::service::Service<Request<Incoming>> for EdgeService {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Answer;

    fn call(&self, request: Request<Incoming>) -> Answer {
        self.activity.begin_request();
        let request = request.map(|body| PacedBody::new(body, self.activity.clone(), self.pace));
        // A router is always ready (its `poll_ready` is `Ready(Ok(()))`), so it is called
        // without asking, as hyper-util's adapter would after asking.
        let mut app = self.app.clone();
        Answer {
            inner: with_client_certificate(self.client, tower::Service::call(&mut app, request)),
            activity: self.activity.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The router's answer to one request, made 408 if the request's body was too slow.
    pub struct Answer {
        #[pin]
        inner: TaskLocalFuture<Option<ClientCertificate>, RouteFuture<Infallible>>,
        activity: Arc<Activity>,
    }
}

impl Future for Answer {
    type Output = Result<Response<Body>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let answer = ready!(this.inner.poll(cx));
        if this.activity.end_request() {
            return Poll::Ready(Ok(body_too_slow()));
        }
        Poll::Ready(answer)
    }
}

/// The answer to a request whose body arrived too slowly; the connection is closed after it,
/// since the rest of the body is still on its way.
fn body_too_slow() -> Response<Body> {
    let mut response = Response::new(Body::from(
        r#"{"error":"request_timeout","detail":"the request body arrived too slowly"}"#,
    ));
    *response.status_mut() = StatusCode::REQUEST_TIMEOUT;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The most of a request's head (request line and headers) the connection buffers, in bytes:
/// a head whose end has not come by then is answered 431 by the HTTP layer, with no body, and
/// the connection closed. It is also the most the connection buffers of a body at a time.
pub const MAX_REQUEST_HEAD_BYTES: usize = 64 * 1024;

/// hyper's connection settings for `limits`.
pub(crate) fn builder(limits: &Limits) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .half_close(true)
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(MAX_REQUEST_HEAD_BYTES);
    builder
}

/// Serves one connection until it ends, it idles out, or `stop` turns true (then it finishes
/// the request it is on and closes). `client` is the certificate the client presented in the
/// TLS handshake, if any.
#[allow(clippy::too_many_arguments)] // one call site per transport, in `accept`
pub(crate) async fn serve_connection<S>(
    stream: S,
    client: Option<ClientCertificate>,
    builder: &http1::Builder,
    app: Router,
    limits: Limits,
    mut stop: watch::Receiver<bool>,
    pressure: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::default());
    let service = EdgeService {
        app,
        activity: activity.clone(),
        pace: BodyPace {
            grace: limits.body_read_timeout,
            min_bytes_per_sec: limits.body_min_bytes_per_sec,
        },
        client,
    };
    let io = TokioIo::new(Tracked {
        inner: stream,
        activity: activity.clone(),
    });
    let mut connection = pin!(builder.serve_connection(io, service));
    let result = tokio::select! {
        result = connection.as_mut() => result,
        () = stopping(&mut stop) => {
            connection.as_mut().graceful_shutdown();
            connection.await
        }
        () = watch_idle(&activity, &limits, pressure) => {
            // No request is in flight: dropping the connection closes it.
            tracing::debug!("closing an idle connection");
            return;
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "connection ended with an error");
    }
}

/// Returns once `stop` is true or its sender is gone (the guard it gives is not kept: it is not
/// `Send`).
pub(crate) async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Returns once the connection has been idle (no request in flight, no byte moved) for the
/// idle timeout, or the overload timeout while `pressure` is true. Activity is seen at each
/// check, so idleness is counted from the check that last saw some: a connection is closed
/// after one to two times the timeout.
pub(crate) async fn watch_idle(
    activity: &Activity,
    limits: &Limits,
    mut pressure: watch::Receiver<bool>,
) {
    let mut idle_since = Instant::now();
    let mut pressure_known = true;
    loop {
        let timeout = |pressed: bool| {
            if pressed {
                limits.overload_idle_timeout.min(limits.idle_timeout)
            } else {
                limits.idle_timeout
            }
        };
        let deadline = idle_since + timeout(*pressure.borrow_and_update());
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            changed = pressure.changed(), if pressure_known => {
                // The server is stopping: its stop signal ends the connection.
                pressure_known = changed.is_ok();
            }
        }
        let now = Instant::now();
        if activity.take_activity() {
            idle_since = now;
        } else if now >= idle_since + timeout(*pressure.borrow()) {
            return;
        }
    }
}
