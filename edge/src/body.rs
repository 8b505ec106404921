//! A request body with a deadline that grows with what has arrived: a minimum average rate.
//!
//! A fixed timeout on the whole body either cuts off a large body on a slow but honest link or
//! lets a small one trickle in for as long as the timeout; a minimum rate bounds both. The
//! deadline is `body_read_timeout` plus `received / body_min_bytes_per_sec` after the first
//! time the handler had to wait, so a client that sends one byte every few seconds is cut off
//! after about `body_read_timeout`, and an 8 MiB batch at a few MiB/s is never bothered.
//!
//! The usual body costs nothing more than hyper's: it is already in the buffer when the handler
//! reads it, and the clock is read and a timer made only the first time the handler must wait.
//! When the deadline passes the body fails with [`BodyError::TooSlow`] and the connection is
//! marked, so that the answer becomes 408 whatever the handler made of the failed read
//! ([`crate::connection`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::activity::Activity;

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The connection failed or closed.
    #[error("reading the request body: {0}")]
    Read(#[from] hyper::Error),
    /// The body arrived slower than the minimum rate.
    #[error(
        "the request body arrived too slowly: {received} bytes in {waited_ms} ms, \
         less than {min_bytes_per_sec} bytes a second after {grace_ms} ms"
    )]
    TooSlow {
        /// Bytes received before the deadline.
        received: u64,
        /// Milliseconds since the handler first waited.
        waited_ms: u128,
        /// The minimum rate.
        min_bytes_per_sec: u64,
        /// The grace before the rate applies.
        grace_ms: u128,
    },
}

/// The two numbers of the body's deadline (from [`crate::Limits`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct BodyPace {
    pub(crate) grace: Duration,
    pub(crate) min_bytes_per_sec: u64,
}

impl BodyPace {
    /// How long `received` bytes may have taken: the grace plus their time at the minimum rate.
    fn allowance(self, received: u64) -> Duration {
        let rate = self.min_bytes_per_sec.max(1);
        let millis = u128::from(received) * 1000 / u128::from(rate);
        self.grace + Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }
}

/// hyper's request body, cut off when it arrives slower than its [`BodyPace`].
pub struct PacedBody {
    inner: Incoming,
    activity: Arc<Activity>,
    pace: BodyPace,
    received: u64,
    /// When the handler first had to wait for bytes.
    waiting_since: Option<Instant>,
    /// Made the first time the handler waits; boxed because `Sleep` is not `Unpin`.
    timer: Option<Pin<Box<Sleep>>>,
    timed_out: bool,
}

impl PacedBody {
    pub(crate) fn new(inner: Incoming, activity: Arc<Activity>, pace: BodyPace) -> PacedBody {
        PacedBody {
            inner,
            activity,
            pace,
            received: 0,
            waiting_since: None,
            timer: None,
            timed_out: false,
        }
    }

    /// Pending until the deadline for what has arrived so far; then the error.
    fn poll_deadline(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        let deadline = since + self.pace.allowance(self.received);
        let timer = match &mut self.timer {
            Some(timer) => {
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => self
                .timer
                .insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        if timer.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        self.timed_out = true;
        self.activity.mark_body_too_slow();
        Poll::Ready(Some(Err(BodyError::TooSlow {
            received: self.received,
            waited_ms: since.elapsed().as_millis(),
            min_bytes_per_sec: self.pace.min_bytes_per_sec,
            grace_ms: self.pace.grace.as_millis(),
        })))
    }
}

impl Body for PacedBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        if this.timed_out {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(BodyError::Read(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => this.poll_deadline(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.timed_out || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowance_is_the_grace_plus_the_bytes_at_the_minimum_rate() {
        let pace = BodyPace {
            grace: Duration::from_secs(2),
            min_bytes_per_sec: 1000,
        };
        assert_eq!(pace.allowance(0), Duration::from_secs(2));
        assert_eq!(pace.allowance(500), Duration::from_millis(2500));
        assert_eq!(
            pace.allowance(8 << 20),
            Duration::from_millis(2000 + 8_388_608)
        );
        let stalled = BodyPace {
            grace: Duration::ZERO,
            min_bytes_per_sec: 0,
        };
        assert_eq!(stalled.allowance(3), Duration::from_millis(3000));
        assert!(pace.allowance(u64::MAX) > Duration::from_secs(1 << 40));
    }
}
