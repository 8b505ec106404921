//! The witness's HTTP API (axum). `spec/docs/witness-api.md` describes every route.
//!
//! - `POST /add-checkpoint`: C2SP tlog-witness.
//! - `GET /checkpoint/<origin>`: the latest checkpoint cosigned for the log, for monitors.
//! - `GET /timestamps/<origin>/<size>`: the RFC 3161 tokens of a cosigned checkpoint (JSON).
//! - `GET /healthz` (live), `GET /readyz` (ready: [`crate::health`]), `GET /metrics`
//!   (Prometheus text).
//!
//! Every error is JSON `{"error": "<code>", "detail": "<what and why>"}` with its status, from
//! one place ([`ApiError`]), rejections of the request itself, unknown routes and methods
//! included. The one exception is the protocol's own: a 409 to add-checkpoint is the known size
//! as `text/x.tlog.size`, as C2SP tlog-witness requires. No answer names a server path: a
//! storage failure goes to the witness's log with its file, and to the client as a code.

use crate::service::{refusal_reason, AddError, Witness};
use crate::store::StoreError;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use cairn_spec::checkpoint::parse_tree_size;
use cairn_spec::witness::{MAX_REQUEST_SIZE, TREE_SIZE_CONTENT_TYPE};
use serde_json::json;
use std::sync::Arc;

/// How long a client is asked to wait before retrying while the storage fails.
const STORAGE_RETRY_AFTER_SECONDS: u64 = 5;

/// The witness's routes.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route(
            cairn_spec::witness::ADD_CHECKPOINT_PATH,
            post(add_checkpoint).layer(DefaultBodyLimit::max(MAX_REQUEST_SIZE)),
        )
        .route("/checkpoint/{*origin}", get(latest_checkpoint))
        .route("/timestamps/{*origin_and_size}", get(timestamps))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(|| async { not_found() })
        .method_not_allowed_fallback(|| async { method_not_allowed() })
        .with_state(witness)
}

/// The answer to a route the server does not have.
pub(crate) fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// The answer to a method a route does not take.
pub(crate) fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}

/// An error answer: its status, a stable code, a detail for people, and a Retry-After when
/// retrying later may succeed.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    detail: String,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error answer without Retry-After.
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// A 503 with Retry-After: what failed may heal by itself (a key in a token that cannot
    /// sign for now).
    pub(crate) fn unavailable(code: &'static str, detail: impl Into<String>) -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code,
            detail: detail.into(),
            retry_after: Some(STORAGE_RETRY_AFTER_SECONDS),
        }
    }

    /// A request body that could not be read: larger than `limit` (413) or broken (400).
    pub(crate) fn body(rejection: &BytesRejection, limit: usize) -> ApiError {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("the request body is larger than {limit} bytes"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                rejection.body_text(),
            )
        }
    }

    /// A path that could not be read (not UTF-8 once percent-decoded).
    fn path(rejection: &PathRejection) -> ApiError {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            rejection.body_text(),
        )
    }

    /// A failed storage call: 503 with Retry-After while the storage is unavailable (a full
    /// disk, an I/O error), 500 otherwise. The error itself, with its file, goes to the log.
    fn storage(error: &StoreError, doing: &str) -> ApiError {
        tracing::error!("{doing}: {error}");
        if error.is_unavailable() {
            ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "storage_unavailable",
                detail: "the witness's storage is failing for now (a full disk or an I/O error); \
                         nothing was cosigned; the witness heals by itself once the fault \
                         clears: retry later"
                    .into(),
                retry_after: Some(STORAGE_RETRY_AFTER_SECONDS),
            }
        } else {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "storage_failed",
                "the witness's storage failed; nothing was cosigned; the operator has the details",
            )
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.code, "detail": self.detail}));
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

fn text(body: impl Into<String>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body.into(),
    )
        .into_response()
}

async fn add_checkpoint(
    State(witness): State<Arc<Witness>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return ApiError::body(&rejection, MAX_REQUEST_SIZE).into_response(),
    };
    match witness.add_checkpoint(&body).await {
        Ok(issued) => {
            if let Some(anchored) = issued.anchored {
                // Timestamps may arrive after the cosignature; the log fetches them later.
                let _ = tokio::time::timeout(witness.anchor_wait, anchored).await;
            }
            text(issued.response_body)
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
                None => ApiError::new(status, refusal_reason(&refusal), refusal.to_string())
                    .into_response(),
            }
        }
        // A full disk or an I/O error: nothing was cosigned; the log retries later, and the
        // witness takes writes again once the fault clears.
        Err(AddError::Store(error)) => {
            ApiError::storage(&error, "add-checkpoint failed").into_response()
        }
        // The key (in a token) cannot sign now: logged where it failed, with the token.
        Err(AddError::Key(_)) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "key_unavailable",
            detail: "the witness's key cannot sign for now; nothing was cosigned: retry later"
                .into(),
            retry_after: Some(STORAGE_RETRY_AFTER_SECONDS),
        }
        .into_response(),
    }
}

async fn latest_checkpoint(
    State(witness): State<Arc<Witness>>,
    origin: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(origin) = origin.map_err(|rejection| ApiError::path(&rejection))?;
    if !witness.witnesses(&origin) {
        return Err(unknown_origin());
    }
    match witness.store().latest(&origin) {
        Ok(Some(record)) => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            record.note,
        )
            .into_response()),
        Ok(None) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_cosigned",
            "the witness cosigned no checkpoint of this log yet",
        )),
        Err(error) => Err(ApiError::storage(
            &error,
            &format!("reading the state of {origin:?}"),
        )),
    }
}

fn unknown_origin() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_origin",
        "this witness witnesses no log of that origin",
    )
}

async fn timestamps(
    State(witness): State<Arc<Witness>>,
    origin_and_size: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(origin_and_size) = origin_and_size.map_err(|rejection| ApiError::path(&rejection))?;
    let bad_request =
        |detail: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail);
    let Some((origin, size)) = origin_and_size.rsplit_once('/') else {
        return Err(bad_request(
            "expected /timestamps/<origin>/<size>".to_owned(),
        ));
    };
    let size = parse_tree_size(size).map_err(|error| bad_request(format!("size: {error}")))?;
    if !witness.witnesses(origin) {
        return Err(unknown_origin());
    }
    let found = witness
        .store()
        .checkpoint_body(origin, size)
        .and_then(|body| {
            Ok(match body {
                Some(body) => Some((body, witness.store().tokens(origin, size)?)),
                None => None,
            })
        })
        .map_err(|error| {
            ApiError::storage(
                &error,
                &format!("reading timestamps of {origin:?} at {size}"),
            )
        })?;
    let Some((body, tokens)) = found else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_cosigned",
            "the witness did not cosign a checkpoint of that size",
        ));
    };
    let tokens: Vec<serde_json::Value> = tokens
        .iter()
        .map(|token| {
            json!({
                "tsa": token.tsa,
                "token": base64::engine::general_purpose::STANDARD.encode(&token.token_der),
            })
        })
        .collect();
    Ok(Json(json!({
        "origin": origin,
        "size": size,
        "checkpoint": String::from_utf8_lossy(&body),
        "tokens": tokens,
    }))
    .into_response())
}

/// Liveness: the process answers. Says nothing of storage or timestamps: see `/readyz`.
async fn healthz() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Readiness: 200 when the witness does its job now, 503 with the reasons when it does not.
async fn readyz(State(witness): State<Arc<Witness>>) -> Response {
    let readiness = witness.readiness();
    let status = if readiness.is_ready() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = json!({
        "status": if readiness.is_ready() { "ready" } else { "not_ready" },
        "problems": readiness.problems,
    });
    (status, Json(body)).into_response()
}

async fn metrics(State(witness): State<Arc<Witness>>) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, cairn_edge::metrics::CONTENT_TYPE)],
        witness.metrics().render(&witness.readiness()),
    )
        .into_response()
}
