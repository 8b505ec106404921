//! The admin's routes: erasing a payload (`DELETE /v1/events/{id}/payload`), legal holds
//! (`/v1/holds`) and erasing a data subject (`DELETE /v1/subjects/{subject}`). Each action is
//! logged as an event before it takes effect.
//!
//! Holds on an actor or a resource are recorded by the identifier's tag (as the index of
//! schema 2 events has it), so that no admin record puts a subject's identifier in a public
//! leaf; `GET /v1/holds` lists them so.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_spec::event::IndexedField;
use serde::Deserialize;
use serde_json::json;

use super::{parse_event_id, submitted_json, Shared, READERS};
use crate::events::auth::{authorize, Role};
use crate::events::store::HoldTarget;
use crate::http::body::read_body;
use crate::http::extract::{Path, Query};
use crate::http::state::blocking;
use crate::http::{ApiError, AppState};

/// Most bytes of a hold request.
const MAX_HOLD_BODY: usize = 16 * 1024;
/// Longest hold target or reason.
const MAX_HOLD_TEXT: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EraseQuery {
    reason: Option<String>,
}

pub(super) async fn erase_payload(
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

/// `DELETE /v1/subjects/{subject}?reason=`: crypto-shredding of a data subject.
pub(super) async fn shred_subject(
    State(state): Shared,
    Path(subject): Path<String>,
    Query(query): Query<EraseQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let admin = authorize(&state.principals, &headers, &[Role::Admin])?;
    if subject.is_empty() || subject.len() > MAX_HOLD_TEXT {
        return Err(ApiError::bad_request(format!(
            "subject: 1 to {MAX_HOLD_TEXT} bytes"
        )));
    }
    if query
        .reason
        .as_ref()
        .is_some_and(|r| r.len() > MAX_HOLD_TEXT)
    {
        return Err(ApiError::bad_request(format!(
            "reason: at most {MAX_HOLD_TEXT} bytes"
        )));
    }
    let shredding = state
        .events
        .shred_subject(&subject, &admin.name, query.reason.as_deref())
        .await?;
    Ok(Json(json!({
        "subject_key": shredding.subject_key,
        "data_keys_destroyed": shredding.data_keys,
        "recorded_by": submitted_json(&shredding.recorded_by),
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

/// The target as holds are recorded: an actor or resource by its tag. `create`: make the data
/// key of a subject never seen (a hold may come before its events); otherwise such a target
/// is left as given.
async fn tagged(
    state: &std::sync::Arc<AppState>,
    target: HoldTarget,
    create: bool,
) -> Result<HoldTarget, ApiError> {
    let (field, value) = match &target {
        HoldTarget::Actor(value) => (IndexedField::ActorId, value.clone()),
        HoldTarget::Resource(value) => (IndexedField::ResourceId, value.clone()),
        HoldTarget::Event(_) => return Ok(target),
    };
    let store = state.events.store.clone();
    let tag = blocking(move || {
        if create {
            store.privacy().keys_for(&[value.as_str()])?;
        }
        Ok(store.tag(field, &value)?)
    })
    .await?;
    Ok(match (target, tag) {
        (HoldTarget::Actor(_), Some(tag)) => HoldTarget::Actor(tag),
        (HoldTarget::Resource(_), Some(tag)) => HoldTarget::Resource(tag),
        (target, _) => target,
    })
}

pub(super) async fn set_hold(
    State(state): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let admin = authorize(&state.principals, &headers, &[Role::Admin])?;
    let (target, reason) = hold_request(body).await?;
    let target = tagged(&state, target, true).await?;
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

pub(super) async fn lift_hold(
    State(state): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let admin = authorize(&state.principals, &headers, &[Role::Admin])?;
    let (given, reason) = hold_request(body).await?;
    // Recorded by tag; a hold of an older version, by the identifier itself.
    let target = match tagged(&state, given.clone(), false).await? {
        tag if state.events.store.hold(&tag)?.is_some() => tag,
        _ => given,
    };
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

pub(super) async fn list_holds(
    State(state): Shared,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state.principals, &headers, READERS)?;
    let holds = state.events.store.holds()?;
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
