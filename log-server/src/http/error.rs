//! Error answers: every one is JSON `{"error": "<code>", "detail": "<what and why>"}` with the
//! status of its code (spec/docs/log-api.md, "Errors").
//!
//! The codes are one table, [`ErrorCode`]: a client may branch on a code, so a code never
//! changes its meaning or status, and the spec lists exactly these (a test compares the two).
//! A detail is for people: it says what was expected and what was found, and never names a
//! file of the server (storage errors go whole to the server's own log instead).
//!
//! Errors reach a client by four ways, all of which end here: a handler's `Result`, an
//! extractor's rejection ([`super::extract`]), the router's fallbacks for an unknown path or
//! method ([`not_found`], [`method_not_allowed`]), and, for anything a layer below the
//! handlers answers by itself, [`ensure_json`], which gives such an answer the JSON of its
//! status.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

use crate::events::auth::AuthError;
use crate::sequencer::SequencerError;
use crate::storage::{FailureKind, StoreError};

/// Declares [`ErrorCode`] from one table: variant, code, status, and the `Retry-After` it
/// carries (seconds), so that the list of codes cannot drift from their statuses.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal, $status:ident, $retry:expr; )*) => {
        /// The `error` member of an error answer.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code, in the order of the spec's table.
            pub const ALL: &'static [ErrorCode] = &[$( ErrorCode::$variant, )*];

            /// The code as it appears on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $( ErrorCode::$variant => $code, )*
                }
            }

            /// The HTTP status every answer with this code has.
            pub const fn status(self) -> StatusCode {
                match self {
                    $( ErrorCode::$variant => StatusCode::$status, )*
                }
            }

            /// The `Retry-After` (seconds) an answer with this code carries by default.
            pub const fn retry_after(self) -> Option<u64> {
                match self {
                    $( ErrorCode::$variant => $retry, )*
                }
            }
        }
    };
}

error_codes! {
    /// The request is malformed or asks for something that cannot be (the detail says what).
    BadRequest = "bad_request", BAD_REQUEST, None;
    /// An audit event (or a batch of them) does not follow the event schema.
    InvalidEvent = "invalid_event", BAD_REQUEST, None;
    /// No usable bearer token.
    Unauthorized = "unauthorized", UNAUTHORIZED, None;
    /// The principal's role does not allow this.
    Forbidden = "forbidden", FORBIDDEN, None;
    /// No such endpoint, tile, leaf, event or hold.
    NotFound = "not_found", NOT_FOUND, None;
    /// The path exists, the method does not (the `Allow` header lists those that do).
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED, None;
    /// The request body arrived too slowly (answered by the edge, which then closes the
    /// connection).
    RequestTimeout = "request_timeout", REQUEST_TIMEOUT, None;
    /// An event ID already logged with another content, or a hold already set.
    Conflict = "conflict", CONFLICT, None;
    /// The principal's rate limit is spent for now (`Retry-After` says when to come back).
    RateLimited = "rate_limited", TOO_MANY_REQUESTS, Some(1);
    /// A legal hold forbids erasing this payload.
    Held = "held", CONFLICT, None;
    /// A body, leaf or batch beyond its limit.
    TooLarge = "too_large", PAYLOAD_TOO_LARGE, None;
    /// A fault of the server; the operator has the details in its log.
    Internal = "internal", INTERNAL_SERVER_ERROR, None;
    /// The sequencer's queue (or the events index's writer) is full: retry.
    Overloaded = "overloaded", SERVICE_UNAVAILABLE, Some(1);
    /// The log is stopping.
    ShuttingDown = "shutting_down", SERVICE_UNAVAILABLE, Some(5);
    /// No checkpoint has been published yet.
    NoCheckpoint = "no_checkpoint", SERVICE_UNAVAILABLE, Some(1);
    /// The log's storage fails a write for now; nothing was stored; it heals by itself.
    StorageUnavailable = "storage_unavailable", SERVICE_UNAVAILABLE, Some(5);
    /// The leaf or event is durable, but no published checkpoint covers it yet.
    NotYetPublished = "not_yet_published", ACCEPTED, Some(1);
}

impl ErrorCode {
    /// The code of an answer a layer below the handlers made with `status`: the first code of
    /// the table with that status, else `bad_request` or `internal` by its class.
    pub fn for_status(status: StatusCode) -> ErrorCode {
        ErrorCode::ALL
            .iter()
            .copied()
            .find(|code| code.status() == status)
            .unwrap_or(if status.is_server_error() {
                ErrorCode::Internal
            } else {
                ErrorCode::BadRequest
            })
    }
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) code: ErrorCode,
    pub(crate) detail: String,
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    /// An answer with `code`, its status and its default `Retry-After`.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            code,
            detail: detail.into(),
            retry_after: code.retry_after(),
        }
    }

    /// Its code.
    pub fn code(&self) -> ErrorCode {
        self.code
    }

    pub(crate) fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, detail)
    }

    pub(crate) fn too_large(detail: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::TooLarge, detail)
    }

    pub(crate) fn invalid_event(detail: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::InvalidEvent, detail)
    }

    pub(crate) fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::Internal, detail)
    }

    /// The answer while the log's storage fails. It names no file: the server's own log has
    /// the whole error, for the operator.
    pub(crate) fn storage_unavailable() -> ApiError {
        ApiError::new(
            ErrorCode::StorageUnavailable,
            "the log's storage is failing for now (a full disk or an I/O error); nothing was \
             stored; the log heals by itself once the fault clears: retry later",
        )
    }
}

/// The JSON of an error answer.
#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'static str,
    detail: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.as_str(),
            detail: &self.detail,
        };
        let mut response = (self.code.status(), Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> ApiError {
        // The whole error, with its file, goes to the server's log; the answer names no path.
        tracing::error!(%error, "a storage call failed");
        match error.kind() {
            FailureKind::Unavailable => ApiError::storage_unavailable(),
            FailureKind::Corrupt => ApiError::internal(
                "the log's storage reports damaged data; the operator has the details",
            ),
            FailureKind::Refused => match error {
                StoreError::BadConfig(_) => {
                    ApiError::internal("the log's storage refused the call")
                }
                refused => ApiError::internal(refused.to_string()),
            },
        }
    }
}

impl From<SequencerError> for ApiError {
    fn from(error: SequencerError) -> ApiError {
        let detail = error.to_string();
        match error {
            SequencerError::Overloaded { .. } => ApiError::new(ErrorCode::Overloaded, detail),
            SequencerError::TooLarge { .. } => ApiError::too_large(detail),
            SequencerError::ShuttingDown => ApiError::new(ErrorCode::ShuttingDown, detail),
            SequencerError::StorageUnavailable => ApiError::storage_unavailable(),
            SequencerError::StoreFailed(reason) => {
                tracing::error!(%reason, "the sequencer's store failed");
                ApiError::internal("the log's storage failed; the operator has the details")
            }
            SequencerError::BadConfig(_) => ApiError::internal(detail),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        match error {
            AuthError::Unauthenticated(detail) => ApiError::new(ErrorCode::Unauthorized, detail),
            AuthError::Forbidden { .. } => ApiError::new(ErrorCode::Forbidden, error.to_string()),
            AuthError::RateLimited {
                retry_after_seconds,
                ..
            } => ApiError {
                retry_after: Some(retry_after_seconds),
                ..ApiError::new(ErrorCode::RateLimited, error.to_string())
            },
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> ApiError {
        ApiError::new(
            ErrorCode::for_status(rejection.status()),
            rejection.body_text(),
        )
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> ApiError {
        ApiError::new(
            ErrorCode::for_status(rejection.status()),
            rejection.body_text(),
        )
    }
}

/// The router's answer to a path no route has.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found("no such endpoint")
}

/// The router's answer to a method the path's route does not have; the router adds the
/// `Allow` header.
pub(crate) async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        format!("{method} is not allowed here; the Allow header lists the methods that are"),
    )
}

/// Gives an error answer that is not JSON (one a layer below the handlers made by itself) the
/// JSON of its status, keeping its status and headers and dropping its body, which could say
/// anything. Any other answer passes untouched; this reads the status of every answer and the
/// content type of error answers only.
pub(crate) fn ensure_json(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes() == b"application/json");
    if is_json {
        return response;
    }
    let (parts, _) = response.into_parts();
    let detail = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("error")
    );
    let mut answer = ApiError::new(ErrorCode::for_status(status), detail).into_response();
    *answer.status_mut() = status;
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashSet};
    use std::path::PathBuf;

    use super::*;

    /// spec/docs/log-api.md.
    fn log_api_doc() -> String {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../spec/docs/log-api.md");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// The rows of the doc's table of error codes: code → status.
    fn documented_codes(doc: &str) -> BTreeMap<String, u16> {
        let section = doc
            .split("\n## Errors\n")
            .nth(1)
            .expect("log-api.md has a section `## Errors`");
        let section = section.split("\n#").next().unwrap_or(section);
        let mut codes = BTreeMap::new();
        for row in section.lines().filter(|line| line.starts_with("| `")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            if cells[2] == "status" {
                continue;
            }
            let code = cells[1].trim_matches('`').to_string();
            let status: u16 = cells[2]
                .parse()
                .unwrap_or_else(|_| panic!("status of `{code}` in `{row}`"));
            assert!(
                codes.insert(code.clone(), status).is_none(),
                "`{code}` is listed twice"
            );
        }
        codes
    }

    #[test]
    fn the_spec_lists_exactly_the_codes_of_the_code() {
        let documented = documented_codes(&log_api_doc());
        let coded: BTreeMap<String, u16> = ErrorCode::ALL
            .iter()
            .map(|code| (code.as_str().to_string(), code.status().as_u16()))
            .collect();
        assert_eq!(
            documented, coded,
            "spec/docs/log-api.md's table of errors and ErrorCode disagree"
        );
        let unique: HashSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(
            unique.len(),
            ErrorCode::ALL.len(),
            "a code is declared twice"
        );
    }

    /// Wherever the doc's prose names a status and a code (``409 `held` ``), the pair is the
    /// code's.
    #[test]
    fn the_spec_prose_names_each_code_with_its_status() {
        let doc = log_api_doc();
        let words: Vec<&str> = doc.split_whitespace().collect();
        let mut checked = 0;
        for pair in words.windows(2) {
            let (Ok(status), Some(code)) = (
                pair[0].trim_start_matches('(').parse::<u16>(),
                pair[1]
                    .strip_prefix('`')
                    .and_then(|rest| rest.split('`').next()),
            ) else {
                continue;
            };
            let is_name =
                !code.is_empty() && code.bytes().all(|b| b.is_ascii_lowercase() || b == b'_');
            if !(200..600).contains(&status) || !is_name {
                continue;
            }
            let known = ErrorCode::ALL
                .iter()
                .find(|known| known.as_str() == code)
                .unwrap_or_else(|| panic!("the doc names `{status} {code}`, no such code"));
            assert_eq!(
                known.status().as_u16(),
                status,
                "the doc says {status} `{code}`"
            );
            checked += 1;
        }
        assert!(
            checked >= 5,
            "only {checked} status-code pairs found in the doc"
        );
    }

    #[test]
    fn every_status_of_a_layer_gets_a_code_of_its_class() {
        assert_eq!(
            ErrorCode::for_status(StatusCode::METHOD_NOT_ALLOWED),
            ErrorCode::MethodNotAllowed
        );
        assert_eq!(
            ErrorCode::for_status(StatusCode::CONFLICT),
            ErrorCode::Conflict
        );
        assert_eq!(
            ErrorCode::for_status(StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ErrorCode::BadRequest
        );
        assert_eq!(
            ErrorCode::for_status(StatusCode::GATEWAY_TIMEOUT),
            ErrorCode::Internal
        );
    }

    #[test]
    fn a_plain_error_from_below_becomes_json_and_keeps_status_and_headers() {
        let plain = (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            [(header::RETRY_AFTER, "3")],
            "Expected request with `Content-Type: application/json` at /srv/cairn/src/x.rs",
        )
            .into_response();
        let answer = ensure_json(plain);
        assert_eq!(answer.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
        assert_eq!(answer.headers()[header::CONTENT_TYPE], "application/json");
        assert_eq!(answer.headers()[header::RETRY_AFTER], "3");
        let ok = ensure_json((StatusCode::OK, "fine").into_response());
        assert_eq!(
            ok.headers()[header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn storage_errors_answer_without_the_servers_paths() {
        let path = PathBuf::from("/var/lib/cairn/log/segments/000001");
        for error in [
            StoreError::Io {
                operation: "write",
                path: path.clone(),
                source: std::io::Error::other("No space left on device"),
            },
            StoreError::Corrupt {
                path: path.clone(),
                offset: 7,
                detail: "bad checksum".into(),
            },
            StoreError::Database {
                path: path.clone(),
                detail: "disk I/O error".into(),
                transient: false,
            },
            StoreError::BadConfig(format!("{} is not a directory", path.display())),
        ] {
            let answer = ApiError::from(error);
            assert!(!answer.detail.contains("/var/lib"), "{}", answer.detail);
        }
    }
}
