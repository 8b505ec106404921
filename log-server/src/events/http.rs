//! The `/v1` routes of the log (spec/docs/log-api.md, "Audit events"): thin handlers over
//! [`Events`](super::Events) and the event store, with the role each route needs.

use std::fmt::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::event::{event_limits, EventId, EventInput, EventLeaf};
use cairn_spec::export::{ExportBundle, ExportedEvent, EXPORT_FORMAT};
use cairn_spec::jcs::{self, Limits, Value};
use cairn_spec::merkle::{inclusion_proof, tree_root, verify_inclusion};
use cairn_spec::receipt::{Receipt, ReceiptTimestamp, MAX_RECEIPT_BYTES};
use cairn_spec::time::Instant;
use cairn_spec::Hash;
use serde::Deserialize;
use serde_json::json;

use super::admin::AdminError;
use super::auth::{authorize, Principal, Role};
use super::store::{
    EventStoreError, EventSummary, HoldTarget, QueryFilter, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT,
};
use super::submit::{SubmitError, Submitted};
use crate::api::{
    blocking, build_receipt, json_response, published, read_body, wait_for_checkpoint,
    wait_for_receipt, ApiError, AppState,
};
use crate::integrator::StoreHashes;
use crate::sequencer::SequencerError;

type Shared = State<Arc<AppState>>;

const READERS: &[Role] = &[Role::Reader, Role::Admin];
/// Most index entries one query request scans (a page may be short, with a cursor).
const MAX_SCAN: usize = 100_000;
/// Default and most events in one export.
const DEFAULT_EXPORT_LIMIT: usize = 1000;
const MAX_EXPORT_LIMIT: usize = 10_000;
/// Most bytes of a hold request.
const MAX_HOLD_BODY: usize = 16 * 1024;
/// Longest hold target or reason.
const MAX_HOLD_TEXT: usize = 1024;

/// The `/v1` routes.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/events", post(post_event).get(query_events))
        .route("/v1/events/batch", post(post_batch))
        .route("/v1/events/{event_id}", get(get_event))
        .route("/v1/events/{event_id}/proof", get(get_proof))
        .route(
            "/v1/events/{event_id}/payload",
            axum::routing::delete(erase_payload),
        )
        .route("/v1/verify", post(verify))
        .route(
            "/v1/holds",
            get(list_holds).post(set_hold).delete(lift_hold),
        )
        .route("/v1/export", get(export))
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> ApiError {
        let detail = error.to_string();
        match error {
            SubmitError::Invalid { .. }
            | SubmitError::RepeatedId { .. }
            | SubmitError::ReservedAction { .. } => {
                ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", detail)
            }
            SubmitError::Store(EventStoreError::Conflict { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", detail)
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
            SubmitError::Store(EventStoreError::Corrupt { .. }) => ApiError::internal(detail),
        }
    }
}

impl From<AdminError> for ApiError {
    fn from(error: AdminError) -> ApiError {
        let detail = error.to_string();
        match error {
            AdminError::NotFound(_) => ApiError::not_found(detail),
            AdminError::Held { .. } => ApiError::new(StatusCode::CONFLICT, "held", detail),
            AdminError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, "conflict", detail),
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
        EventInput::parse(&body).map_err(|error| {
            ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", error.to_string())
        })?
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
        Some(_) => {
            Query::<WaitQuery>::try_from_uri(&parts.uri)
                .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?
                .0
        }
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
    let Value::Array(items) = jcs::parse(&body, limits)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid_event", e.to_string()))?
    else {
        return Err(ApiError::bad_request("a batch is a JSON array of events"));
    };
    if items.is_empty() {
        return Err(ApiError::bad_request("the batch holds no events"));
    }
    if items.len() > max_events {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "the batch holds {} events, the limit is {max_events}",
                items.len()
            ),
        ));
    }
    let mut inputs = Vec::with_capacity(items.len());
    for (position, item) in items.into_iter().enumerate() {
        // Parsed with the batch, strictly and within the event limits but the total size
        // (each leaf is bounded by the log's leaf size, each payload by the event size).
        inputs.push(EventInput::from_value(item).map_err(|error| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_event",
                format!("event {position}: {error}"),
            )
        })?);
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

async fn get_event(
    State(state): Shared,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state.principals, &headers, READERS)?;
    let event_id = parse_event_id(&event_id)?;
    let (summary, leaf) = logged_event(&state, &event_id).await?;
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
        r#"{{"event_id":{},"index":{index},"leaf_hash":{},"payload_status":"{status}","erased_by":{},"event":{},"payload":{}}}"#,
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

async fn get_proof(
    State(state): Shared,
    Path(event_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state.principals, &headers, READERS)?;
    let event_id = parse_event_id(&event_id)?;
    let index = logged_event(&state, &event_id).await?.0.index;
    if published(&state)?.size <= index {
        return Err(ApiError {
            status: StatusCode::ACCEPTED,
            kind: "not_yet_published",
            detail: format!(
                "event {} (index {index}) is durable but not yet in a published checkpoint",
                event_id.as_str()
            ),
            retry_after: Some(1),
        });
    }
    let receipt = build_receipt(&state, index, None).await?;
    Ok(json_response(receipt.to_json()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventQuery {
    actor: Option<String>,
    resource: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// The opaque form of a cursor: the last index a page covered.
fn format_cursor(after: u64) -> String {
    format!("i{after:016x}")
}

fn parse_cursor(text: &str) -> Result<u64, ApiError> {
    text.strip_prefix('i')
        .filter(|hex| hex.len() == 16)
        .and_then(|hex| u64::from_str_radix(hex, 16).ok())
        .ok_or_else(|| ApiError::bad_request("cursor: not a cursor this log handed out"))
}

fn parse_time(field: &str, text: &str) -> Result<i128, ApiError> {
    Instant::parse_rfc3339(text)
        .map(|instant| instant.unix_nanos())
        .map_err(|error| ApiError::bad_request(format!("{field}: {}", error.reason)))
}

fn filter_of(query: &EventQuery) -> Result<QueryFilter, ApiError> {
    Ok(QueryFilter {
        actor: query.actor.clone(),
        resource: query.resource.clone(),
        action: query.action.clone(),
        from_nanos: query
            .from
            .as_deref()
            .map(|t| parse_time("from", t))
            .transpose()?,
        to_nanos: query
            .to
            .as_deref()
            .map(|t| parse_time("to", t))
            .transpose()?,
        after: query.cursor.as_deref().map(parse_cursor).transpose()?,
        below: None,
    })
}

fn parse_limit(text: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(text) = text else {
        return Ok(default);
    };
    match text.parse::<usize>() {
        Ok(limit) if (1..=max).contains(&limit) => Ok(limit),
        _ => Err(ApiError::bad_request(format!(
            "limit must be 1 to {max}, found `{}`",
            text.chars().take(32).collect::<String>()
        ))),
    }
}

fn time_text(nanos: i128) -> String {
    let seconds = nanos.div_euclid(1_000_000_000);
    let sub = nanos.rem_euclid(1_000_000_000);
    Instant::from_unix(
        i64::try_from(seconds).unwrap_or(i64::MAX),
        u32::try_from(sub).unwrap_or(0),
    )
    .to_rfc3339()
}

fn summary_json(summary: &EventSummary) -> serde_json::Value {
    json!({
        "index": summary.index,
        "event_id": summary.event_id,
        "time": time_text(summary.time_nanos),
        "received_at": time_text(summary.received_nanos),
        "actor": summary.actor_id,
        "resource_type": summary.resource_type,
        "resource": summary.resource_id,
        "action": summary.action,
    })
}

async fn query_events(
    State(state): Shared,
    Query(query): Query<EventQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state.principals, &headers, READERS)?;
    let filter = filter_of(&query)?;
    let limit = parse_limit(query.limit.as_deref(), DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT)?;
    let store = state.events.store.clone();
    let page = blocking(move || Ok(store.query(&filter, limit, MAX_SCAN)?)).await?;
    Ok(Json(json!({
        "events": page.events.iter().map(summary_json).collect::<Vec<_>>(),
        "next_cursor": page.next_after.map(format_cursor),
    }))
    .into_response())
}

fn invalid(reason: impl Into<String>) -> Response {
    Json(json!({"valid": false, "reason": reason.into()})).into_response()
}

async fn verify(
    State(state): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    authorize(&state.principals, &headers, READERS)?;
    let body = read_body(body, MAX_RECEIPT_BYTES, "document").await?;
    let limits = Limits {
        max_bytes: MAX_RECEIPT_BYTES,
        max_depth: 32,
        max_string_bytes: MAX_RECEIPT_BYTES,
        max_container_len: 10_000,
    };
    let value = match jcs::parse(&body, limits) {
        Ok(value) => value,
        Err(error) => return Ok(invalid(format!("not strict JSON: {error}"))),
    };
    let Value::Object(members) = value else {
        return Ok(invalid(
            "expected a JSON object: an event or a cairn.receipt/v1",
        ));
    };
    if members.iter().any(|(name, _)| name == "format") {
        return verify_receipt(&state, &body).await;
    }
    verify_event(&state, members).await
}

async fn verify_receipt(state: &Arc<AppState>, body: &[u8]) -> Result<Response, ApiError> {
    let receipt = match Receipt::from_json(body) {
        Ok(receipt) => receipt,
        Err(error) => return Ok(invalid(error.to_string())),
    };
    let opened = match Checkpoint::open(receipt.checkpoint.as_bytes(), &state.signer.verifier()) {
        Ok(opened) => opened.checkpoint,
        Err(error) => {
            return Ok(invalid(format!(
                "the checkpoint is not signed by this log: {error}"
            )))
        }
    };
    if let Some(leaf) = &receipt.leaf {
        if Hash::of_leaf(leaf) != receipt.leaf_hash {
            return Ok(invalid("the leaf does not hash to leaf_hash"));
        }
    }
    if let Err(error) = verify_inclusion(
        receipt.index,
        opened.size,
        &receipt.leaf_hash,
        &receipt.inclusion_proof,
        &opened.root,
    ) {
        return Ok(invalid(format!("inclusion proof: {error}")));
    }
    let published_size = published(state)?.size;
    if opened.size > published_size {
        return Ok(invalid(format!(
            "the checkpoint's size {} is beyond the published tree of {published_size}",
            opened.size
        )));
    }
    let store = state.store.clone();
    let size = opened.size;
    let root = blocking(move || {
        tree_root(size, &StoreHashes::new(store.as_ref()))
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await?;
    if root != opened.root {
        return Ok(invalid(format!(
            "the checkpoint's root is not this log's root at size {size}: the log signed two trees"
        )));
    }
    Ok(Json(json!({
        "valid": true,
        "index": receipt.index,
        "leaf_hash": receipt.leaf_hash.to_base64(),
        "tree_size": size,
    }))
    .into_response())
}

async fn verify_event(
    state: &Arc<AppState>,
    members: Vec<(String, Value)>,
) -> Result<Response, ApiError> {
    let (event, payload) = if members.iter().any(|(name, _)| name == "event") {
        let mut event = None;
        let mut payload = None;
        for (name, value) in members {
            match name.as_str() {
                "event" => event = Some(value),
                "payload" => payload = Some(value),
                // What GET /v1/events/{id} answers beside the event is informative only.
                "event_id" | "index" | "leaf_hash" | "payload_status" | "erased_by" => {}
                other => {
                    return Ok(invalid(format!(
                        "unknown member `{}`",
                        other.chars().take(64).collect::<String>()
                    )))
                }
            }
        }
        (
            event.expect("the member is present"),
            payload.filter(|p| *p != Value::Null),
        )
    } else {
        (Value::Object(members), None)
    };
    let leaf = jcs::canonicalize(&event).into_bytes();
    let parsed = match EventLeaf::parse(&leaf) {
        Ok(parsed) => parsed,
        Err(error) => return Ok(invalid(format!("not an event leaf: {error}"))),
    };
    let (index, logged) = match logged_event(state, &parsed.event_id).await {
        Ok((summary, logged)) => (summary.index, logged),
        Err(error) if error.status == StatusCode::NOT_FOUND => {
            return Ok(invalid(format!(
                "no event {} is in the log",
                parsed.event_id.as_str()
            )))
        }
        Err(error) => return Err(error),
    };
    if logged != leaf {
        return Ok(invalid(format!(
            "the event differs from the leaf logged at index {index} for this event_id"
        )));
    }
    if let Some(payload) = &payload {
        let canonical = jcs::canonicalize(payload);
        match parsed.payload_matches(canonical.as_bytes()) {
            Ok(true) => {}
            Ok(false) => return Ok(invalid("the payload does not hash to payload_hash")),
            Err(error) => return Ok(invalid(format!("payload: {error}"))),
        }
    }
    Ok(Json(json!({
        "valid": true,
        "index": index,
        "leaf_hash": Hash::of_leaf(&leaf).to_base64(),
        "payload_checked": payload.is_some(),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseQuery {
    reason: Option<String>,
}

async fn erase_payload(
    State(state): Shared,
    Path(event_id): Path<String>,
    Query(query): Query<EraseQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admin = authorize(&state.principals, &headers, &[Role::Admin])?;
    let event_id = parse_event_id(&event_id)?;
    if query
        .reason
        .as_ref()
        .is_some_and(|r| r.len() > MAX_HOLD_TEXT)
    {
        return Err(ApiError::bad_request(format!(
            "reason: at most {MAX_HOLD_TEXT} bytes"
        )));
    }
    let erasure = state
        .events
        .erase_payload(event_id.as_str(), &admin.name, query.reason.as_deref())
        .await?;
    Ok(Json(json!({
        "event_id": erasure.event_id,
        "erased": true,
        "recorded_by": submitted_json(&erasure.recorded_by),
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HoldRequest {
    actor: Option<String>,
    resource: Option<String>,
    event_id: Option<String>,
    reason: Option<String>,
}

async fn hold_request(body: Body) -> Result<(HoldTarget, String), ApiError> {
    let body = read_body(body, MAX_HOLD_BODY, "hold request").await?;
    let request: HoldRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("hold request: {e}")))?;
    let target = match (request.actor, request.resource, request.event_id) {
        (Some(actor), None, None) => HoldTarget::Actor(actor),
        (None, Some(resource), None) => HoldTarget::Resource(resource),
        (None, None, Some(event_id)) => {
            HoldTarget::Event(parse_event_id(&event_id)?.as_str().to_string())
        }
        _ => {
            return Err(ApiError::bad_request(
                "a hold names exactly one of actor, resource or event_id",
            ))
        }
    };
    if target.value().is_empty() || target.value().len() > MAX_HOLD_TEXT {
        return Err(ApiError::bad_request(format!(
            "{}: 1 to {MAX_HOLD_TEXT} bytes",
            target.kind()
        )));
    }
    let reason = request.reason.unwrap_or_default();
    if reason.len() > MAX_HOLD_TEXT {
        return Err(ApiError::bad_request(format!(
            "reason: at most {MAX_HOLD_TEXT} bytes"
        )));
    }
    Ok((target, reason))
}

async fn set_hold(
    State(state): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let admin = authorize(&state.principals, &headers, &[Role::Admin])?;
    let (target, reason) = hold_request(body).await?;
    let hold = state.events.set_hold(target, &reason, &admin.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            hold.target.kind(): hold.target.value(),
            "reason": hold.reason,
            "set_by": hold.set_by,
            "recorded_by": hold.event_id,
        })),
    )
        .into_response())
}

async fn lift_hold(
    State(state): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let admin = authorize(&state.principals, &headers, &[Role::Admin])?;
    let (target, reason) = hold_request(body).await?;
    let recorded_by = state
        .events
        .lift_hold(target.clone(), &reason, &admin.name)
        .await?;
    Ok(Json(json!({
        target.kind(): target.value(),
        "lifted": true,
        "recorded_by": submitted_json(&recorded_by),
    }))
    .into_response())
}

async fn list_holds(State(state): Shared, headers: HeaderMap) -> Result<Response, ApiError> {
    authorize(&state.principals, &headers, READERS)?;
    let holds = state.events.store.holds();
    Ok(Json(json!({
        "holds": holds.iter().map(|hold| json!({
            hold.target.kind(): hold.target.value(),
            "reason": hold.reason,
            "set_by": hold.set_by,
            "recorded_by": hold.event_id,
        })).collect::<Vec<_>>(),
    }))
    .into_response())
}

async fn export(
    State(state): Shared,
    Query(query): Query<EventQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state.principals, &headers, READERS)?;
    let mut filter = filter_of(&query)?;
    let limit = parse_limit(
        query.limit.as_deref(),
        DEFAULT_EXPORT_LIMIT,
        MAX_EXPORT_LIMIT,
    )?;
    let published = published(&state)?;
    filter.below = Some(published.size);
    let events = state.events.clone();
    let store = state.store.clone();
    let (bundle, next) = blocking(move || {
        let page = events.store.query(&filter, limit, MAX_SCAN)?;
        let reader = StoreHashes::new(store.as_ref());
        let mut exported = Vec::with_capacity(page.events.len());
        for summary in &page.events {
            let leaf = store
                .read_entries(summary.index, 1)?
                .pop()
                .ok_or_else(|| ApiError::internal("the store returned no entry"))?
                .leaf;
            exported.push(ExportedEvent {
                index: summary.index,
                leaf,
                payload: events.store.payload(summary)?,
                inclusion_proof: inclusion_proof(summary.index, published.size, &reader)
                    .map_err(|e| ApiError::internal(e.to_string()))?,
            });
        }
        let timestamps = store
            .timestamp_tokens(published.size)?
            .into_iter()
            .map(|(_, token)| ReceiptTimestamp { token })
            .collect();
        Ok((
            ExportBundle {
                format: EXPORT_FORMAT.to_string(),
                checkpoint: published.note,
                timestamps,
                events: exported,
            },
            page.next_after,
        ))
    })
    .await?;
    let mut response = json_response(bundle.to_json());
    if let Some(after) = next {
        if let Ok(value) = format_cursor(after).parse() {
            response.headers_mut().insert("cairn-next-cursor", value);
        }
    }
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        header::HeaderValue::from_static("attachment; filename=\"cairn-export.json\""),
    );
    Ok(response)
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
