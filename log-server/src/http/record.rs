//! The layer around every route: it makes sure an error answer is JSON ([`ensure_json`]), then
//! counts and times the request by its route and status.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use tower::{Layer, Service};

use super::error::ensure_json;
use crate::metrics::Metrics;

/// Gives an error answer JSON if it has none, and counts and times each request by its route
/// and status: a tower layer rather than `middleware::from_fn`, which boxes each request's
/// future and a clone of the service stack behind it (about 6% of the server's time under
/// single events, by perf samples).
#[derive(Clone)]
pub(crate) struct RecordLayer(pub(crate) Arc<Metrics>);

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
pub(crate) struct Record<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for Record<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Recorded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Recorded<S::Future> {
        // A clone of the matched path shares its string.
        let route = request.extensions().get::<MatchedPath>().cloned();
        Recorded {
            started: Instant::now(),
            inner: self.inner.call(request),
            route,
            metrics: self.metrics.clone(),
        }
    }
}

/// A request's answer to come, and what to record when it does.
pub(crate) struct Recorded<F> {
    inner: F,
    route: Option<MatchedPath>,
    started: Instant,
    metrics: Arc<Metrics>,
}

impl<F> Future for Recorded<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let Ok(response) = ready!(Pin::new(&mut this.inner).poll(cx));
        let response = ensure_json(response);
        this.metrics.record_request(
            this.route.as_ref().map_or("unmatched", MatchedPath::as_str),
            response.status().as_u16(),
            this.started.elapsed(),
        );
        Poll::Ready(Ok(response))
    }
}
