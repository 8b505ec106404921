//! The accept loop: a connection cap that leaves the overflow in the kernel's backlog, the
//! shedding of idle connections at the cap, back-off on accept errors, and a graceful stop.
//!
//! A slot (a semaphore permit) is taken before `accept`, so at the cap the server does not
//! accept: the kernel completes the handshakes and queues the connections in the listen
//! backlog until a slot frees, instead of the server accepting connections it cannot serve.
//! Idle connections could hold every slot, so at the cap the server is "under pressure" and
//! closes every connection idle for `overload_idle_timeout` (see
//! [`crate::connection::watch_idle`]); the pressure lifts once a sixteenth of the slots is free
//! again. Connections that are handling a request are never shed.
//!
//! Running out of file descriptors (EMFILE, ENFILE) or memory while accepting is the server's
//! problem, not one connection's: the loop pauses (100 ms, doubling to 1 s while it lasts),
//! counts it as pressure too, and logs one warning line per [`WARNING_INTERVAL`] with the
//! number of failures, instead of one per attempt.

use std::future::Future;
use std::io;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::time::Instant;

use crate::connection;
use crate::tls::ClientCertificate;
use crate::EdgeConfig;

/// The shortest pause after an accept error that is not one connection's.
const FIRST_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause.
const LONGEST_PAUSE: Duration = Duration::from_secs(1);
/// At most one warning about failing accepts per this interval.
pub const WARNING_INTERVAL: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` with `config` until `shutdown` completes, then stops accepting,
/// lets every open connection finish the request it is on, and returns when all are closed.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    config: EdgeConfig,
    shutdown: impl Future<Output = ()>,
) {
    let limits = config.limits;
    let tls = config.tls;
    let reloads = tls.clone().map(|tls| tokio::spawn(tls.watch()));
    // At most u32::MAX, so that the stop can wait for every slot at once.
    let max_connections = limits
        .max_connections
        .clamp(1, Semaphore::MAX_PERMITS.min(u32::MAX as usize));
    let slots = Arc::new(Semaphore::new(max_connections));
    let relieved_at = (max_connections / 16).max(1);
    let (pressure, pressure_rx) = watch::channel(false);
    let (stop, stop_rx) = watch::channel(false);
    let builder = Arc::new(connection::builder(&limits));
    let mut failures = AcceptFailures::default();
    let mut shutdown = pin!(shutdown);
    loop {
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                press(&pressure);
                tokio::select! {
                    slot = slots.clone().acquire_owned() => {
                        slot.expect("the semaphore is never closed")
                    }
                    () = &mut shutdown => break,
                }
            }
        };
        // The slot taken is counted as free: it is not used until a connection comes.
        let relieved = || slots.available_permits() + 1 >= relieved_at;
        if *pressure.borrow() && relieved() {
            pressure.send_replace(false);
        }
        let accepted = loop {
            tokio::select! {
                accepted = listener.accept() => break Some(accepted),
                // Once the flood is gone no connection may come to bring the loop back here:
                // look again now and then whether the pressure can be lifted.
                () = tokio::time::sleep(limits.overload_idle_timeout), if *pressure.borrow() => {
                    if relieved() {
                        pressure.send_replace(false);
                    }
                }
                () = &mut shutdown => break None,
            }
        };
        let Some(accepted) = accepted else {
            break;
        };
        let stream = match accepted {
            Ok((stream, _peer)) => {
                failures.recovered();
                stream
            }
            Err(error) if is_connection_error(&error) => continue,
            Err(error) => {
                if is_out_of_resources(&error) {
                    press(&pressure);
                }
                let open = max_connections.saturating_sub(slots.available_permits() + 1);
                let pause = failures.failed(&error, open);
                drop(slot);
                tokio::select! {
                    () = tokio::time::sleep(pause) => continue,
                    () = &mut shutdown => break,
                }
            }
        };
        let (builder, app, mut stop, pressure, tls) = (
            builder.clone(),
            app.clone(),
            stop_rx.clone(),
            pressure_rx.clone(),
            tls.clone(),
        );
        tokio::spawn(async move {
            let _slot = slot;
            let Some(tls) = tls else {
                connection::serve_connection(stream, None, &builder, app, limits, stop, pressure)
                    .await;
                return;
            };
            // The handshake has the header read timeout: a stalled ClientHello is a stalled
            // request head.
            let handshake =
                tokio::time::timeout(limits.header_read_timeout, tls.acceptor().accept(stream));
            let stream = tokio::select! {
                shaken = handshake => match shaken {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(error)) => {
                        tracing::debug!(%error, "TLS handshake failed");
                        return;
                    }
                    Err(_) => {
                        tracing::debug!("TLS handshake timed out");
                        return;
                    }
                },
                () = connection::stopping(&mut stop) => return,
            };
            let client = ClientCertificate::of(stream.get_ref().1.peer_certificates());
            connection::serve_connection(stream, client, &builder, app, limits, stop, pressure)
                .await;
        });
    }
    drop(listener);
    if let Some(reloads) = reloads {
        reloads.abort();
    }
    stop.send_replace(true);
    // Every connection holds a slot: all are back when all connections are closed.
    let all = u32::try_from(max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
    drop(stop_rx);
    drop(pressure);
}

/// Raises the pressure if it is not raised yet (without waking anyone otherwise).
fn press(pressure: &watch::Sender<bool>) {
    pressure.send_if_modified(|pressed| !std::mem::replace(pressed, true));
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

/// Errors that mean the process or the system is out of file descriptors or buffers.
fn is_out_of_resources(error: &io::Error) -> bool {
    const EMFILE: i32 = 24;
    const ENFILE: i32 = 23;
    const ENOBUFS: i32 = 105;
    const ENOMEM: i32 = 12;
    matches!(
        error.raw_os_error(),
        Some(EMFILE | ENFILE | ENOBUFS | ENOMEM)
    )
}

/// Accept failures in a row: the pause before the next attempt, and the warnings, one per
/// [`WARNING_INTERVAL`] with a count.
#[derive(Debug, Default)]
pub(crate) struct AcceptFailures {
    /// The current pause; zero after a success.
    pause: Duration,
    /// When a warning was last written.
    warned_at: Option<Instant>,
    /// Failures since then.
    unreported: u64,
}

impl AcceptFailures {
    /// Notes a failure; returns how long to pause.
    pub(crate) fn failed(&mut self, error: &io::Error, open: usize) -> Duration {
        self.unreported += 1;
        let now = Instant::now();
        if self
            .warned_at
            .is_none_or(|warned| now.duration_since(warned) >= WARNING_INTERVAL)
        {
            tracing::warn!(
                %error,
                failures = self.unreported,
                open_connections = open,
                "accepting connections failed {} time(s) since the last warning; pausing \
                 accepts and closing idle connections",
                self.unreported,
            );
            self.warned_at = Some(now);
            self.unreported = 0;
        }
        self.pause = (self.pause * 2).clamp(FIRST_PAUSE, LONGEST_PAUSE);
        self.pause
    }

    /// Notes a success: the next failure pauses briefly again.
    pub(crate) fn recovered(&mut self) {
        self.pause = Duration::ZERO;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warns_once_per_interval_and_backs_off() {
        let error = io::Error::from_raw_os_error(24);
        assert!(is_out_of_resources(&error));
        let mut failures = AcceptFailures::default();
        let mut pauses = Vec::new();
        for _ in 0..5 {
            pauses.push(failures.failed(&error, 10));
        }
        assert_eq!(
            pauses,
            [100, 200, 400, 800, 1000].map(Duration::from_millis)
        );
        // The first failure warned; the next four wait for the interval.
        assert_eq!(failures.unreported, 4);
        failures.warned_at = failures.warned_at.map(|warned| warned - WARNING_INTERVAL);
        failures.failed(&error, 10);
        assert_eq!(failures.unreported, 0);
        failures.recovered();
        assert_eq!(failures.failed(&error, 10), FIRST_PAUSE);
        assert_eq!(failures.unreported, 1);
    }
}
