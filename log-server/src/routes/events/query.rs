//! `GET /v1/events` (a page of events by actor, resource, action and time, with a cursor) and
//! `GET /v1/export` (a `cairn.export/v2` bundle of them, within the published checkpoint).
//!
//! The index holds schema 1 events by their identifiers and schema 2 events by tags
//! ([`crate::events::privacy`]): a query by actor or resource asks for both and merges them in
//! log order. A schema 2 event is shown with its identifiers opened from its contents record,
//! or as erased; an export carries its openings (salts and values), or names its fields as
//! erased.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use cairn_spec::event::{IndexedField, PersonalField};
use cairn_spec::export::{ExportBundleV2, EXPORT_FORMAT_V2};
use cairn_spec::receipt::ReceiptTimestamp;
use cairn_spec::time::Instant;
use serde::Deserialize;
use serde_json::json;

use super::{contents, mark_recorded, EventSummary, Shared, READERS};
use crate::completeness::ProofRequest;
use crate::events::auth::authorize;
use crate::events::self_audit::ReadRecord;
use crate::events::store::{EventStore, EventStoreError, QueryPage};
use crate::events::store::{QueryFilter, DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT};
use crate::http::body::json_response;
use crate::http::extract::Query;
use crate::http::state::{blocking, published};
use crate::http::{ApiError, AppState};
use crate::routes::completeness as complete;

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
    /// `true`: carry a completeness proof (one of actor, resource, action; no time range).
    proof: Option<String>,
    /// With `proof=true`: only events received from this instant (RFC 3339, inclusive).
    received_from: Option<String>,
    /// With `proof=true`: only events received before this instant (RFC 3339, exclusive).
    received_to: Option<String>,
}

/// The receive-time range asked for (both ends, or none).
fn received_of(query: &EventQuery) -> Result<Option<(Instant, Instant)>, ApiError> {
    let parse = |field: &str, text: &str| {
        Instant::parse_rfc3339(text)
            .map_err(|error| ApiError::bad_request(format!("{field}: {}", error.reason)))
    };
    match (query.received_from.as_deref(), query.received_to.as_deref()) {
        (None, None) => Ok(None),
        (Some(from), Some(to)) => {
            let (from, to) = (parse("received_from", from)?, parse("received_to", to)?);
            if from > to {
                return Err(ApiError::bad_request("received_to is before received_from"));
            }
            Ok(Some((from, to)))
        }
        _ => Err(ApiError::bad_request(
            "received_from and received_to come together",
        )),
    }
}

fn needs_proof(query: &EventQuery) -> Result<(), ApiError> {
    if query.received_from.is_some() || query.received_to.is_some() {
        return Err(ApiError::bad_request(
            "received_from and received_to are for proven answers (proof=true)",
        ));
    }
    Ok(())
}

impl EventQuery {
    /// The parameters given, for the self-audit record of the request.
    fn asked(&self) -> Vec<(&'static str, String)> {
        [
            ("actor", &self.actor),
            ("resource", &self.resource),
            ("action", &self.action),
            ("from", &self.from),
            ("to", &self.to),
            ("cursor", &self.cursor),
            ("limit", &self.limit),
            ("proof", &self.proof),
            ("received_from", &self.received_from),
            ("received_to", &self.received_to),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.clone().map(|value| (name, value)))
        .collect()
    }
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

/// One page of `filter` over events of both schemas: by the identifiers the filter gives
/// (schema 1) and by their tags (schema 2), merged in log order. Blocking.
pub(crate) fn query_any(
    store: &EventStore,
    filter: &QueryFilter,
    limit: usize,
    max_scan: usize,
) -> Result<QueryPage, EventStoreError> {
    if filter.actor.is_none() && filter.resource.is_none() {
        return store.query(filter, limit, max_scan);
    }
    let clear = store.query(filter, limit, max_scan)?;
    let tag = |field, value: &Option<String>| match value {
        Some(value) => store.tag(field, value).map(|tag| tag.map(Some)),
        None => Ok(Some(None)),
    };
    let (Some(actor), Some(resource)) = (
        tag(IndexedField::ActorId, &filter.actor)?,
        tag(IndexedField::ResourceId, &filter.resource)?,
    ) else {
        // The subject was never seen, or was erased: no schema 2 event can match.
        return Ok(clear);
    };
    let tagged = store.query(
        &QueryFilter {
            actor,
            resource,
            ..filter.clone()
        },
        limit,
        max_scan,
    )?;
    Ok(merge_pages(clear, tagged, limit))
}

/// Two pages of one query's answers (each in log order, each with its cursor) as one: only
/// events up to where both pages reached, at most `limit`.
fn merge_pages(first: QueryPage, second: QueryPage, limit: usize) -> QueryPage {
    let reached = |page: &QueryPage| page.next_after.unwrap_or(u64::MAX);
    let bound = reached(&first).min(reached(&second));
    let mut events: Vec<EventSummary> = first
        .events
        .into_iter()
        .chain(second.events)
        .filter(|summary| summary.index <= bound)
        .collect();
    events.sort_by_key(|summary| summary.index);
    events.dedup_by_key(|summary| summary.index);
    let next_after = if events.len() > limit {
        events.truncate(limit);
        events.last().map(|summary| summary.index)
    } else if bound == u64::MAX {
        None
    } else {
        Some(bound)
    };
    QueryPage { events, next_after }
}

/// One event of a query's page: a schema 2 event's identifiers opened from its contents record
/// (`null`, and `contents: erased`, once it is erased). Blocking.
fn summary_json(store: &EventStore, summary: &EventSummary) -> Result<serde_json::Value, ApiError> {
    let mut shown = json!({
        "index": summary.index,
        "event_id": summary.event_id,
        "time": time_text(summary.time_nanos),
        "received_at": time_text(summary.received_nanos),
        "action": summary.action,
    });
    if !summary.is_tagged() {
        shown["schema_version"] = json!(1);
        shown["actor"] = json!(summary.actor_id);
        shown["resource_type"] = json!(summary.resource_type);
        shown["resource"] = json!(summary.resource_id);
        return Ok(shown);
    }
    let event_id = cairn_spec::event::EventId::parse(&summary.event_id)
        .map_err(|error| ApiError::internal(format!("an indexed event ID: {error}")))?;
    let opened = store.contents(summary.index, &event_id)?;
    let (actor, _) = contents::id_and_type(&opened, PersonalField::Actor);
    let (resource, resource_type) = contents::id_and_type(&opened, PersonalField::Resource);
    shown["schema_version"] = json!(2);
    shown["contents"] = json!(contents::status(&opened));
    shown["actor"] = actor;
    shown["resource_type"] = resource_type;
    shown["resource"] = resource;
    Ok(shown)
}

pub(super) async fn query_events(
    State(state): Shared,
    Query(query): Query<EventQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = authorize(&state.principals, &headers, READERS)?;
    let filter = filter_of(&query)?;
    let limit = parse_limit(query.limit.as_deref(), DEFAULT_QUERY_LIMIT, MAX_QUERY_LIMIT)?;
    let mut answer = search(&state, &query, filter, limit).await?;
    let answered = answer["events"].as_array().map_or(0, Vec::len);
    let read = ReadRecord::search(query.asked(), answered);
    let recorded = state.events.record_read(&principal.name, &read).await?;
    answer["self_audit"] = match &recorded {
        Some(record) => json!({"event_id": record.event_id, "index": record.index}),
        None => serde_json::Value::Null,
    };
    let mut response = Json(answer).into_response();
    mark_recorded(&mut response, recorded.as_ref());
    Ok(response)
}

/// The answer of a search: its page of events, its cursor, and its proof if asked for.
async fn search(
    state: &AppState,
    query: &EventQuery,
    filter: QueryFilter,
    limit: usize,
) -> Result<serde_json::Value, ApiError> {
    match query.proof.as_deref() {
        None | Some("false") => {}
        Some("true") => {
            let received = received_of(query)?;
            let (bundle, next_after) = proven(state, query, &filter, limit)?.await?;
            let store = state.events.store.clone();
            let events = blocking(move || {
                let mut shown = Vec::with_capacity(bundle.events.len());
                for event in &bundle.events {
                    // A time range's proof holds the window's events; the answer lists those
                    // received within the range.
                    if let Some((from, to)) = received {
                        let at = cairn_spec::completeness::received::received_at(&event.leaf);
                        if !at.is_some_and(|at| from <= at && at < to) {
                            continue;
                        }
                    }
                    let summary = store.summary(event.index)?.ok_or_else(|| {
                        ApiError::internal(format!("no event indexed at {}", event.index))
                    })?;
                    shown.push(summary_json(&store, &summary)?);
                }
                Ok(json!({
                    "events": shown,
                    "next_cursor": next_after.map(format_cursor),
                    "proof": serde_json::from_str::<serde_json::Value>(&bundle.to_json())
                        .map_err(|e| ApiError::internal(e.to_string()))?,
                }))
            })
            .await?;
            return Ok(events);
        }
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "proof must be true or false, found `{}`",
                other.chars().take(32).collect::<String>()
            )))
        }
    }
    needs_proof(query)?;
    let store = state.events.store.clone();
    let (events, next_after) = blocking(move || {
        let page = query_any(&store, &filter, limit, MAX_SCAN)?;
        let events = page
            .events
            .iter()
            .map(|summary| summary_json(&store, summary))
            .collect::<Result<Vec<_>, _>>()?;
        Ok((events, page.next_after))
    })
    .await?;
    Ok(json!({
        "events": events,
        "next_cursor": next_after.map(format_cursor),
    }))
}

pub(super) async fn export(
    State(state): Shared,
    Query(query): Query<EventQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = authorize(&state.principals, &headers, READERS)?;
    let filter = filter_of(&query)?;
    let limit = parse_limit(
        query.limit.as_deref(),
        DEFAULT_EXPORT_LIMIT,
        MAX_EXPORT_LIMIT,
    )?;
    let (bundle, next) = match query.proof.as_deref() {
        Some("false") => {
            needs_proof(&query)?;
            plain_export(&state, filter, limit)?.await?
        }
        Some("true") => proven(&state, &query, &filter, limit)?.await?,
        // Proven when it can be; otherwise (not one value, no index) as before, unproven.
        None => match proven(&state, &query, &filter, limit) {
            Ok(work) => work.await?,
            Err(error) if received_of(&query)?.is_some() => return Err(error),
            Err(_) => plain_export(&state, filter, limit)?.await?,
        },
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "proof must be true or false, found `{}`",
                other.chars().take(32).collect::<String>()
            )))
        }
    };
    let read = ReadRecord::export(query.asked(), bundle.events.len());
    let recorded = state.events.record_read(&principal.name, &read).await?;
    let mut response = json_response(bundle.to_json());
    mark_recorded(&mut response, recorded.as_ref());
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

type BundleWork = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(ExportBundleV2, Option<u64>), ApiError>> + Send>,
>;

/// The proven export of the query's one value (completeness.md §3.3), or why there is none:
/// the query does not ask for exactly one of actor, resource, action without a time range,
/// or the log keeps no completeness index.
fn proven(
    state: &AppState,
    query: &EventQuery,
    filter: &QueryFilter,
    limit: usize,
) -> Result<BundleWork, ApiError> {
    let single = complete::single_value(
        query.actor.as_deref(),
        query.resource.as_deref(),
        query.action.as_deref(),
    );
    let Some((field, value)) = single.filter(|_| query.from.is_none() && query.to.is_none()) else {
        return Err(ApiError::bad_request(
            "a completeness proof is for exactly one of actor, resource and action, without \
             from or to",
        ));
    };
    let index = state.completeness.clone().ok_or_else(|| {
        ApiError::bad_request("this log keeps no completeness index (completeness_index = false)")
    })?;
    let received = received_of(query)?;
    let (field, value, after) = (field.to_string(), value.to_string(), filter.after);
    let (events, store, published) = (
        state.events.store.clone(),
        state.store.clone(),
        state.published.clone(),
    );
    Ok(Box::pin(blocking(move || {
        let keys = complete::keys_for(&events, &field, &value)?;
        let request = ProofRequest {
            field,
            value,
            keys,
            after,
            limit,
            received,
        };
        complete::proven_export(&index, &events, store.as_ref(), &published, request)
    })))
}

/// The export of `filter` within the published checkpoint, from the events index.
fn plain_export(
    state: &AppState,
    mut filter: QueryFilter,
    limit: usize,
) -> Result<BundleWork, ApiError> {
    let published = published(state)?;
    filter.below = Some(published.size);
    let events = state.events.clone();
    let store = state.store.clone();
    Ok(Box::pin(blocking(move || {
        let page = query_any(&events.store, &filter, limit, MAX_SCAN)?;
        let mut exported = Vec::with_capacity(page.events.len());
        for summary in &page.events {
            exported.push(complete::exported_event(
                &events.store,
                store.as_ref(),
                summary.index,
                published.size,
            )?);
        }
        let timestamps = store
            .timestamp_tokens(published.size)?
            .into_iter()
            .map(|(_, token)| ReceiptTimestamp { token })
            .collect();
        Ok((
            ExportBundleV2 {
                format: EXPORT_FORMAT_V2.to_string(),
                checkpoint: published.note,
                timestamps,
                events: exported,
                completeness: None,
            },
            page.next_after,
        ))
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(indices: &[u64], next_after: Option<u64>) -> QueryPage {
        QueryPage {
            events: indices
                .iter()
                .map(|&index| EventSummary {
                    index,
                    event_id: format!("e{index}"),
                    time_nanos: 0,
                    received_nanos: 0,
                    actor_id: String::new(),
                    resource_type: String::new(),
                    resource_id: String::new(),
                    action: String::new(),
                    has_payload: false,
                })
                .collect(),
            next_after,
        }
    }

    fn merged(first: QueryPage, second: QueryPage, limit: usize) -> (Vec<u64>, Option<u64>) {
        let page = merge_pages(first, second, limit);
        (
            page.events.iter().map(|summary| summary.index).collect(),
            page.next_after,
        )
    }

    #[test]
    fn merged_pages_stop_where_either_page_stopped() {
        // Both complete: everything, no cursor.
        assert_eq!(
            merged(page(&[1, 5], None), page(&[2, 3], None), 10),
            (vec![1, 2, 3, 5], None)
        );
        // One stopped at 4 (its scan budget): nothing past 4, the cursor at 4.
        assert_eq!(
            merged(page(&[1, 5, 9], None), page(&[2, 3], Some(4)), 10),
            (vec![1, 2, 3], Some(4))
        );
        // More than the limit: the cursor at the last one shown.
        assert_eq!(
            merged(page(&[1, 5], Some(5)), page(&[2, 3], Some(3)), 2),
            (vec![1, 2], Some(2))
        );
        // Nothing below the bound: an empty page that still moves on.
        assert_eq!(
            merged(page(&[], Some(7)), page(&[9], None), 5),
            (vec![], Some(7))
        );
    }
}
