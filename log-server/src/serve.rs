//! The HTTP/1.1 accept loop: the router served by hyper directly rather than by `axum::serve`,
//! whose connections cannot be configured.
//!
//! The one setting that matters is half-closed connections. Without it, hyper reads the socket
//! once more while each request is in flight, to notice a client that went away; that read
//! finds nothing, and it first makes room in a read buffer that the request still shares, so
//! each request also costs a fresh 8 KiB buffer. Nothing here needs to notice early: event
//! submissions finish in their own task whatever the client does (`Events::submit`), a raw
//! leaf's sequencing is bounded by the group commit, and a `wait=checkpoint` by its timeout.

use std::io;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

/// How long accepting pauses after an error that is not one connection's (too many open
/// files, for one), so that the loop does not spin on it.
const ACCEPT_PAUSE: Duration = Duration::from_millis(200);

/// Serves `app` on `listener` until `stop` turns true (or its sender is gone), then stops
/// accepting, lets every open connection finish the request it is on, and returns when all
/// are closed.
pub(crate) async fn serve(listener: TcpListener, app: Router, mut stop: watch::Receiver<bool>) {
    // Every connection task holds a receiver; the sender sees them all gone when they are.
    let (open_tx, open_rx) = watch::channel(());
    let mut builder = http1::Builder::new();
    builder
        .half_close(true)
        // No timer is set, so no header timeout (hyper would warn about its default).
        .header_read_timeout(None);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) if is_connection_error(&error) => continue,
                Err(error) => {
                    tracing::warn!(%error, "accepting a connection failed");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
            () = stopping(&mut stop) => break,
        };
        let connection =
            builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let mut stop = stop.clone();
        let open = open_rx.clone();
        tokio::spawn(async move {
            let _open = open;
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopping(&mut stop) => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    drop(open_rx);
    open_tx.closed().await;
}

/// Returns once `stop` is true or its sender is gone (the guard it gives is not kept: it is not
/// `Send`).
async fn stopping(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|stop| *stop).await;
}

/// Errors of one connection that was already gone when accepted: the next accept is fine.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
