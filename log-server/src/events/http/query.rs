//! `GET /v1/events` (a page of events by actor, resource, action and time, with a cursor) and
//! `GET /v1/export` (a `cairn.export/v1` bundle of them, within the published checkpoint).

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_spec::export::{ExportBundle, ExportedEvent, EXPORT_FORMAT};
use cairn_spec::merkle::inclusion_proof;
use cairn_spec::receipt::ReceiptTimestamp;
use cairn_spec::time::Instant;
use serde::Deserialize;
use serde_json::json;

use super::{EventSummary, Shared, READERS};
use crate::events::auth::authorize;
use crate::events::store::{QueryFilter, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT};
use crate::http::body::json_response;
use crate::http::extract::Query;
use crate::http::state::{blocking, published};
use crate::http::ApiError;
use crate::integrator::StoreHashes;

/// Most index entries one query request scans (a page may be short, with a cursor).
const MAX_SCAN: usize = 100_000;
/// Default and most events in one export.
const DEFAULT_EXPORT_LIMIT: usize = 1000;
const MAX_EXPORT_LIMIT: usize = 10_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct EventQuery {
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

pub(super) async fn query_events(
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

pub(super) async fn export(
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
