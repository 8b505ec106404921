//! The witness's HTTP API (axum). `spec/docs/witness-api.md` describes every route.
//!
//! - `POST /add-checkpoint`: C2SP tlog-witness.
//! - `GET /checkpoint/<origin>`: the latest checkpoint cosigned for the log, for monitors.
//! - `GET /timestamps/<origin>/<size>`: the RFC 3161 tokens of a cosigned checkpoint (JSON).
//! - `GET /healthz`, `GET /metrics` (Prometheus text).

use crate::service::{AddError, Witness};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::Engine;
use cairn_spec::checkpoint::parse_tree_size;
use cairn_spec::witness::{MAX_REQUEST_SIZE, TREE_SIZE_CONTENT_TYPE};
use std::sync::Arc;

const TEXT: &str = "text/plain; charset=utf-8";

/// The witness's routes.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route(
            cairn_spec::witness::ADD_CHECKPOINT_PATH,
            post(add_checkpoint).layer(DefaultBodyLimit::max(MAX_REQUEST_SIZE)),
        )
        .route("/checkpoint/{*origin}", get(latest_checkpoint))
        .route("/timestamps/{*origin_and_size}", get(timestamps))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/metrics", get(metrics))
        .with_state(witness)
}

fn text(status: StatusCode, body: impl Into<String>) -> Response {
    (status, [(header::CONTENT_TYPE, TEXT)], body.into()).into_response()
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    match witness.add_checkpoint(&body).await {
        Ok(issued) => {
            if let Some(anchored) = issued.anchored {
                // Timestamps may arrive after the cosignature; the log fetches them later.
                let _ = tokio::time::timeout(witness.anchor_wait, anchored).await;
            }
            text(StatusCode::OK, issued.response_body)
        }
        Err(AddError::Refused(refusal)) => {
            let status = StatusCode::from_u16(refusal.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            match refusal.conflict_body() {
                Some(body) => (
                    status,
                    [(header::CONTENT_TYPE, TREE_SIZE_CONTENT_TYPE)],
                    body,
                )
                    .into_response(),
                None => text(status, format!("{refusal}\n")),
            }
        }
        Err(AddError::Store(error)) if error.is_unavailable() => {
            // A full disk or an I/O error: nothing was cosigned; the log retries later, and the
            // witness takes writes again once the fault clears.
            tracing::error!("add-checkpoint failed: {error}");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                "the witness's storage is unavailable; nothing was cosigned; retry later\n",
            )
                .into_response()
        }
        Err(AddError::Store(error)) => {
            tracing::error!("add-checkpoint failed: {error}");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the witness could not persist its state\n",
            )
        }
    }
}

async fn latest_checkpoint(
    State(witness): State<Arc<Witness>>,
    Path(origin): Path<String>,
) -> Response {
    if !witness.witnesses(&origin) {
        return text(StatusCode::NOT_FOUND, "unknown log origin\n");
    }
    match witness.store().latest(&origin) {
        Ok(Some(record)) => {
            (StatusCode::OK, [(header::CONTENT_TYPE, TEXT)], record.note).into_response()
        }
        Ok(None) => text(StatusCode::NOT_FOUND, "no checkpoint cosigned yet\n"),
        Err(error) => {
            tracing::error!("reading the state of {origin:?}: {error}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "storage error\n")
        }
    }
}

async fn timestamps(
    State(witness): State<Arc<Witness>>,
    Path(origin_and_size): Path<String>,
) -> Response {
    let Some((origin, size)) = origin_and_size.rsplit_once('/') else {
        return text(
            StatusCode::BAD_REQUEST,
            "expected /timestamps/<origin>/<size>\n",
        );
    };
    let size = match parse_tree_size(size) {
        Ok(size) => size,
        Err(error) => return text(StatusCode::BAD_REQUEST, format!("size: {error}\n")),
    };
    if !witness.witnesses(origin) {
        return text(StatusCode::NOT_FOUND, "unknown log origin\n");
    }
    let found = witness
        .store()
        .checkpoint_body(origin, size)
        .and_then(|body| {
            Ok(match body {
                Some(body) => Some((body, witness.store().tokens(origin, size)?)),
                None => None,
            })
        });
    match found {
        Ok(Some((body, tokens))) => {
            let tokens: Vec<serde_json::Value> = tokens
                .iter()
                .map(|token| {
                    serde_json::json!({
                        "tsa": token.tsa,
                        "token": base64::engine::general_purpose::STANDARD.encode(&token.token_der),
                    })
                })
                .collect();
            let document = serde_json::json!({
                "origin": origin,
                "size": size,
                "checkpoint": String::from_utf8_lossy(&body),
                "tokens": tokens,
            });
            (
                StatusCode::OK,
                [(header::CONTENT_TYPE, "application/json")],
                document.to_string(),
            )
                .into_response()
        }
        Ok(None) => text(
            StatusCode::NOT_FOUND,
            "the witness did not cosign a checkpoint of that size\n",
        ),
        Err(error) => {
            tracing::error!("reading timestamps of {origin:?} at {size}: {error}");
            text(StatusCode::INTERNAL_SERVER_ERROR, "storage error\n")
        }
    }
}

async fn metrics(State(witness): State<Arc<Witness>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        witness.metrics().render(),
    )
        .into_response()
}
