//! The no-op server: answers every POST, on any path, with a small fixed JSON body once it has
//! read the whole request body.
//!
//! It is what a log server costs minus everything the log does: axum 0.8 over hyper, keep-alive
//! HTTP/1.1, one body read per request. Driven by the same load on the same machine in the same
//! run, it is the baseline a log server's throughput and latency are compared against.

use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Router;
use tokio::net::TcpListener;

/// The body of every answer to a POST.
pub const NOOP_ANSWER: &str = r#"{"ok":true}"#;

/// The largest request body read; larger ones are answered with 413, as a log would.
pub const MAX_REQUEST_BYTES: usize = 64 << 20;

/// The no-op service: every POST is read and answered with [`NOOP_ANSWER`]; other methods get 405.
pub fn router() -> Router {
    Router::new()
        .fallback(answer)
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
}

async fn answer(method: Method, body: Bytes) -> Response {
    if method != Method::POST {
        return (StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response();
    }
    // The body was read in full by the extractor; that read is the work a baseline must do.
    drop(body);
    ([(header::CONTENT_TYPE, "application/json")], NOOP_ANSWER).into_response()
}

/// Serves [`router`] on `listener` until `shutdown` completes, then drains open requests.
pub async fn serve(
    listener: TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown)
        .await
}
