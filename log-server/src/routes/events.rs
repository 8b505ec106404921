//! The `/v1` routes of the log (spec/docs/log-api.md, "Audit events"): thin handlers over
//! [`Events`](crate::events::Events) and the event store, with the role each route needs.
//!
//! Here: submitting events, reading one and its proof, and how the events' errors answer.
//! Searches, event views and exports are recorded before they are answered
//! ([`crate::events::self_audit`]), and the answer names the record (`Cairn-Self-Audit`).
//! [`query`]: queries and exports; [`verify`]: `POST /v1/verify`; [`admin`]: erasure, legal
//! holds and the erasure of data subjects; [`contents`]: how a schema 2 event is shown.

mod admin;
mod contents;
mod query;
mod verify;

use std::fmt::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use cairn_spec::event::{event_limits, AnyEventLeaf, EventId, EventInput, EventLeafV2};
use cairn_spec::jcs::{self, Limits, Value};
use cairn_spec::Hash;
use serde::Deserialize;
use serde_json::json;

use crate::events::admin::AdminError;
use crate::events::auth::{authorize, Principal, Role};
use crate::events::privacy::Contents;
use crate::events::self_audit::{ReadRecord, SELF_AUDIT_HEADER};
use crate::events::store::{EventStoreError, EventSummary};
use crate::events::submit::{SubmitError, Submitted};
use crate::http::body::{json_response, read_body};
use crate::http::extract::Path;
use crate::http::receipt::{build_receipt, wait_for_checkpoint, wait_for_receipt};
use crate::http::state::{blocking, published};
use crate::http::{ApiError, AppState, ErrorCode};
use crate::sequencer::SequencerError;

type Shared = State<Arc<AppState>>;

const READERS: &[Role] = &[Role::Reader, Role::Admin];

/// The `/v1` routes.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/whoami", get(whoami))
        .route("/v1/events", post(post_event).get(query::query_events))
        .route("/v1/events/batch", post(post_batch))
        .route("/v1/events/{event_id}", get(get_event))
        .route("/v1/events/{event_id}/proof", get(get_proof))
        .route(
            "/v1/events/{event_id}/payload",
            delete(admin::erase_payload),
        )
        .route("/v1/verify", post(verify::verify))
        .route(
            "/v1/holds",
            get(admin::list_holds)
                .post(admin::set_hold)
                .delete(admin::lift_hold),
        )
        .route("/v1/export", get(query::export))
        .route("/v1/subjects/{subject}", delete(admin::shred_subject))
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> ApiError {
        let detail = error.to_string();
        match error {
            SubmitError::Invalid { .. }
            | SubmitError::RepeatedId { .. }
            | SubmitError::ReservedAction { .. } => ApiError::invalid_event(detail),
            SubmitError::Store(EventStoreError::Conflict { .. }) => {
                ApiError::new(ErrorCode::Conflict, detail)
            }
            SubmitError::Sequencer(error) => ApiError::from(error),
            SubmitError::Store(EventStoreError::Overloaded) => {
                ApiError::from(SequencerError::Overloaded { pending_leaves: 0 })
            }
            SubmitError::Store(EventStoreError::Closed) => {
                ApiError::from(SequencerError::ShuttingDown)
            }
            SubmitError::Log(error) | SubmitError::Store(EventStoreError::Files(error)) => {
                ApiError::from(error)
            }
            SubmitError::Store(EventStoreError::Corrupt { .. }) => {
                // The whole error goes to the server's log; the answer names nothing of its
                // files.
                tracing::error!(error = %detail, "the events database reports damaged data");
                ApiError::internal(
                    "the events database reports damaged data; the operator has the details",
                )
            }
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> ApiError {
        let detail = error.to_string();
        match error {
            AdminError::NotFound(_) => ApiError::not_found(detail),
            AdminError::Held { .. } | AdminError::SubjectHeld { .. } => {
                ApiError::new(ErrorCode::Held, detail)
            }
            AdminError::Conflict(_) => ApiError::new(ErrorCode::Conflict, detail),
            AdminError::Submit(error) => ApiError::from(error),
        }
    }
}

impl From<EventStoreError> for ApiError {
    fn from(error: EventStoreError) -> ApiError {
        ApiError::from(SubmitError::Store(error))
    }
}

/// `{"event_id": "…", "index": N, "leaf_hash": "<base64>", "duplicate": false}`, written
/// directly: nothing in it needs escaping (an event ID is a UUID in hex, base64 has no quotes
/// or backslashes).
fn submitted_text(submitted: &Submitted, out: &mut String) {
    let _ = write!(
        out,
        r#"{{"event_id":"{}","index":{},"leaf_hash":"{}","duplicate":{}}}"#,
        submitted.event_id,
        submitted.index,
        submitted.leaf_hash.to_base64(),
        submitted.duplicate
    );
}

fn submitted_json(submitted: &Submitted) -> serde_json::Value {
    json!({
        "event_id": submitted.event_id,
        "index": submitted.index,
        "leaf_hash": submitted.leaf_hash.to_base64(),
        "duplicate": submitted.duplicate,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    wait: Option<String>,
}

/// `POST /v1/events`. It takes the request whole rather than through extractors, like `/add`:
/// the header extractor would copy every header.
async fn post_event(State(state): Shared, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let (principal, wait) = event_head(&state, parts)?;
    // Scoped, like the head above, so that neither is kept in the future while it waits.
    let input = {
        let body = read_body(body, event_limits().max_bytes, "event").await?;
        EventInput::parse(&body).map_err(|error| ApiError::invalid_event(error.to_string()))?
    };
    let mut answers = state.events.submit(vec![input], &principal.name).await?;
    let submitted = answers
        .pop()
        .ok_or_else(|| ApiError::internal("an event was answered with nothing"))?;
    if !wait {
        let mut text = String::with_capacity(160);
        submitted_text(&submitted, &mut text);
        return Ok(json_response(text));
    }
    let mut answer = submitted_json(&submitted);
    // Boxed: the rare path would otherwise double the size of every request's future.
    let receipt = Box::pin(wait_for_receipt(&state, submitted.index)).await?;
    answer["receipt"] = serde_json::from_str(&receipt.to_json())
        .map_err(|e| ApiError::internal(format!("receipt JSON: {e}")))?;
    Ok(Json(answer).into_response())
}

/// The producer of `POST /v1/events` and whether it waits for a checkpoint.
fn event_head(state: &AppState, parts: Parts) -> Result<(Principal, bool), ApiError> {
    let principal = authorize(&state.principals, &parts.headers, &[Role::Producer])?;
    let query = match parts.uri.query() {
        None => WaitQuery { wait: None },
        Some(_) => axum::extract::Query::<WaitQuery>::try_from_uri(&parts.uri)?.0,
    };
    Ok((principal, wait_for_checkpoint(query.wait.as_deref())?))
}

async fn post_batch(
    State(state): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let principal = authorize(&state.principals, &headers, &[Role::Producer])?;
    let limit = state.limits.max_batch_body_bytes;
    let body = read_body(body, limit, "batch").await?;
    let max_events = state.limits.max_batch_events;
    let one = event_limits();
    let limits = Limits {
        max_bytes: limit,
        max_depth: one.max_depth + 1,
        max_string_bytes: one.max_string_bytes,
        max_container_len: one.max_container_len.max(max_events),
    };
    let Value::Array(items) =
        jcs::parse(&body, limits).map_err(|e| ApiError::invalid_event(e.to_string()))?
    else {
        return Err(ApiError::bad_request("a batch is a JSON array of events"));
    };
    if items.is_empty() {
        return Err(ApiError::bad_request("the batch holds no events"));
    }
    if items.len() > max_events {
        return Err(ApiError::too_large(format!(
            "the batch holds {} events, the limit is {max_events}",
            items.len()
        )));
    }
    let mut inputs = Vec::with_capacity(items.len());
    for (position, item) in items.into_iter().enumerate() {
        // Parsed with the batch, strictly and within the event limits but the total size
        // (each leaf is bounded by the log's leaf size, each payload by the event size).
        inputs.push(
            EventInput::from_value(item)
                .map_err(|error| ApiError::invalid_event(format!("event {position}: {error}")))?,
        );
    }
    let answers = state.events.submit(inputs, &principal.name).await?;
    let mut text = String::with_capacity(32 + 160 * answers.len());
    let _ = write!(text, r#"{{"count":{},"events":["#, answers.len());
    for (position, submitted) in answers.iter().enumerate() {
        if position > 0 {
            text.push(',');
        }
        submitted_text(submitted, &mut text);
    }
    text.push_str("]}");
    Ok(json_response(text))
}

fn parse_event_id(text: &str) -> Result<EventId, ApiError> {
    EventId::parse(text).map_err(|error| ApiError::bad_request(error.to_string()))
}

/// A logged event and its leaf, or 404.
async fn logged_event(
    state: &Arc<AppState>,
    event_id: &EventId,
) -> Result<(EventSummary, Vec<u8>), ApiError> {
    let (events, log, id) = (
        state.events.clone(),
        state.store.clone(),
        event_id.as_str().to_string(),
    );
    blocking(move || {
        let summary = events
            .store
            .find(&id)?
            .ok_or_else(|| ApiError::not_found(format!("no event {id}")))?;
        let leaf = log
            .read_entries(summary.index, 1)?
            .pop()
            .ok_or_else(|| ApiError::internal("the store returned no entry"))?
            .leaf;
        Ok((summary, leaf))
    })
    .await
}

/// `GET /v1/whoami`: the principal the request's credentials name, and its role, for any
/// role. It reads and changes nothing else, so a client (the web UI's sign-in) learns what a
/// token may do without trying something it may not.
async fn whoami(State(state): Shared, headers: HeaderMap) -> Result<Response, ApiError> {
    let principal = authorize(
        &state.principals,
        &headers,
        &[Role::Producer, Role::Reader, Role::Admin],
    )?;
    Ok(Json(json!({"name": principal.name, "role": principal.role.as_str()})).into_response())
}

/// Names `recorded`, the self-audit record of the request ([`super::self_audit`]), in the
/// answer's `Cairn-Self-Audit` header.
pub(super) fn mark_recorded(response: &mut Response, recorded: Option<&Submitted>) {
    let Some(recorded) = recorded else {
        return;
    };
    // An event ID is a UUID in hex: always a valid header value.
    if let Ok(value) = HeaderValue::from_str(&recorded.event_id) {
        response.headers_mut().insert(SELF_AUDIT_HEADER, value);
    }
}

/// `GET /v1/events/{id}`: the event, once its view is recorded (self-audit).
async fn get_event(
    State(state): Shared,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = authorize(&state.principals, &headers, READERS)?;
    let event_id = parse_event_id(&event_id)?;
    let mut response = event_answer(&state, &event_id).await?;
    let read = ReadRecord::event(event_id.as_str());
    let recorded = state.events.record_read(&principal.name, &read).await?;
    mark_recorded(&mut response, recorded.as_ref());
    Ok(response)
}

/// The answer of `GET /v1/events/{id}`.
async fn event_answer(state: &Arc<AppState>, event_id: &EventId) -> Result<Response, ApiError> {
    let (summary, leaf) = logged_event(state, event_id).await?;
    if summary.is_tagged() {
        if let Ok(AnyEventLeaf::V2(parsed)) = AnyEventLeaf::parse(&leaf) {
            return event_v2(state, summary.index, parsed).await;
        }
    }
    let index = summary.index;
    let store = &state.events.store;
    let payload = store.payload(&summary)?;
    let erased_by = store.erasure(event_id.as_str())?;
    let status = match (&payload, summary.has_payload) {
        (Some(_), _) => "held",
        (None, true) => "erased",
        (None, false) => "none",
    };
    let raw = |bytes: Vec<u8>| {
        String::from_utf8(bytes).map_err(|_| ApiError::internal("a stored event is not UTF-8"))
    };
    // The leaf and the payload are embedded as the exact canonical bytes that were hashed.
    let text = format!(
        r#"{{"event_id":{},"index":{index},"leaf_hash":{},"schema_version":1,"payload_status":"{status}","erased_by":{},"event":{},"payload":{}}}"#,
        json!(event_id.as_str()),
        json!(Hash::of_leaf(&leaf).to_base64()),
        json!(erased_by),
        raw(leaf)?,
        match payload {
            Some(payload) => raw(payload)?,
            None => "null".to_string(),
        },
    );
    Ok(json_response(text))
}

/// `GET /v1/events/{id}` of a schema 2 event: the leaf (commitments), and, unless erased, the
/// event in clear and the openings that check it against the leaf.
async fn event_v2(
    state: &Arc<AppState>,
    index: u64,
    leaf: EventLeafV2,
) -> Result<Response, ApiError> {
    let store = state.events.store.clone();
    let event_id = leaf.clear.event_id.clone();
    let (opened, erased_by) = blocking(move || {
        let opened = store.contents(index, &event_id)?;
        Ok((opened, store.erasure(event_id.as_str())?))
    })
    .await?;
    let (event, openings) = match &opened {
        Contents::Held(openings) => (
            contents::event_json(&leaf, openings)?,
            contents::openings_json(openings)?,
        ),
        Contents::Erased => (serde_json::Value::Null, serde_json::Value::Null),
    };
    let leaf_text = String::from_utf8(leaf.leaf.clone())
        .map_err(|_| ApiError::internal("a stored event is not UTF-8"))?;
    // The leaf is embedded as the exact canonical bytes that were hashed.
    let text = format!(
        r#"{{"event_id":{},"index":{index},"leaf_hash":{},"schema_version":2,"contents":"{}","erased_by":{},"leaf":{leaf_text},"event":{},"openings":{}}}"#,
        json!(leaf.clear.event_id.as_str()),
        json!(leaf.leaf_hash().to_base64()),
        contents::status(&opened),
        json!(erased_by),
        event,
        openings,
    );
    Ok(json_response(text))
}

async fn get_proof(
    State(state): Shared,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state.principals, &headers, READERS)?;
    let event_id = parse_event_id(&event_id)?;
    let index = logged_event(&state, &event_id).await?.0.index;
    if published(&state)?.size <= index {
        return Err(ApiError::new(
            ErrorCode::NotYetPublished,
            format!(
                "event {} (index {index}) is durable but not yet in a published checkpoint",
                event_id.as_str()
            ),
        ));
    }
    let receipt = build_receipt(&state, index, None).await?;
    Ok(json_response(receipt.to_json()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_written_as_text_is_the_json_of_the_answer() {
        for duplicate in [false, true] {
            let submitted = Submitted {
                event_id: "0123abcd-ef45-4678-89ab-cdef01234567".into(),
                index: 1 << 40,
                leaf_hash: Hash::of_leaf(b"a leaf"),
                duplicate,
            };
            let mut text = String::new();
            submitted_text(&submitted, &mut text);
            let parsed: serde_json::Value = serde_json::from_str(&text).expect("JSON");
            assert_eq!(parsed, submitted_json(&submitted), "{text}");
        }
    }
}
