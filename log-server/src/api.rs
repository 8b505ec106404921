//! The tree API of the log (spec/docs/log-api.md): writing leaves (`/add`, `/add-batch`) and
//! reading the tree (`/checkpoint`, `/tile/…`, proofs, receipts), plus health and metrics, as
//! thin axum handlers over [`AppState`].
//!
//! Writes need a producer's bearer token; reads are public, but for entry bundles
//! (`/tile/entries/…`), which need a reader's (or an admin's) token unless the configuration
//! makes them public (`[privacy] public_entries`). Bad input is refused before anything
//! changes; every error is an [`ApiError`] (JSON with a code).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cairn_edge::metrics::Exposition;
use cairn_spec::merkle::{consistency_proof, inclusion_proof};
use cairn_spec::tiles::{encode_entry_bundle, tile_width_in_tree, TilePath};
use cairn_spec::Hash;
use serde::Deserialize;
use serde_json::json;

use crate::events::auth::authorize;
use crate::events::Role;
use crate::http::body::{json_response, read_body};
use crate::http::extract::{Path, Query};
use crate::http::receipt::{build_receipt, check_size, wait_for_checkpoint, wait_for_receipt};
use crate::http::state::{blocking, published};
use crate::http::{ApiError, AppState};
use crate::metrics::ScrapeFigures;
use crate::sequencer::Sequenced;
use crate::storage::StoreHashes;
use crate::storage::{IdempotencyKey, NewEntry};

type Shared = State<Arc<AppState>>;

/// The tree API's routes, and `/healthz`, `/readyz`, `/metrics`.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/add", post(add))
        .route("/add-batch", post(add_batch))
        .route("/checkpoint", get(checkpoint))
        .route("/key-history", get(key_history))
        .route("/tile/{*path}", get(tile))
        .route("/proof/inclusion", get(proof_inclusion))
        .route("/proof/consistency", get(proof_consistency))
        .route("/receipt/{index}", get(receipt))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

/// `GET /key-history`: the verified history in its canonical encoding (empty for a log that
/// never rotated: its one key is the pinned one).
async fn key_history(State(state): Shared) -> Result<Response, ApiError> {
    let keys = Arc::clone(&state.signer);
    let history = blocking(move || Ok(keys.history())).await?;
    let bytes = history
        .map(|history| history.to_bytes())
        .unwrap_or_default();
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes).into_response())
}

/// The producer named by the `Authorization: Bearer` header.
fn producer(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(authorize(&state.principals, headers, &[Role::Producer])?.name)
}

/// Refuses a raw leaf that is an event leaf: those come only through `/v1/events`, which binds
/// the submitting principal, so that no producer can log an event in another's name.
fn refuse_event_leaf(leaf: &[u8], position: Option<usize>) -> Result<(), ApiError> {
    if leaf.first() == Some(&b'{') && cairn_spec::event::AnyEventLeaf::parse(leaf).is_ok() {
        let which = position.map_or_else(|| "the leaf".to_string(), |p| format!("leaf {p}"));
        return Err(ApiError::bad_request(format!(
            "{which} is an audit event leaf; submit events to POST /v1/events"
        )));
    }
    Ok(())
}

#[derive(Default, Deserialize)]
struct AddQuery {
    wait: Option<String>,
}

/// `POST /add`. It takes the request whole rather than through extractors: the header
/// extractor would copy every header of the hottest route.
async fn add(State(state): Shared, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let (wait_checkpoint, idempotency) = add_head(&state, parts)?;
    // Scoped, like the head above, so that neither is kept in the future while it waits.
    let entry = {
        let leaf = read_body(body, state.limits.max_leaf_bytes, "leaf").await?;
        if leaf.is_empty() {
            return Err(ApiError::bad_request(
                "the leaf is empty; empty leaves are not logged",
            ));
        }
        refuse_event_leaf(&leaf, None)?;
        NewEntry::new(leaf.to_vec(), idempotency)
    };
    let sequenced = state.sequencer.add(entry).await?;
    state
        .metrics
        .leaves_added
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    if !wait_checkpoint {
        return Ok(json_response(sequenced_json(&sequenced)));
    }
    // Boxed: the rare path would otherwise double the size of every request's future.
    let receipt = Box::pin(wait_for_receipt(&state, sequenced.index)).await?;
    Ok(json_response(receipt.to_json()))
}

/// Whether `POST /add` waits for a checkpoint, and its idempotency key (scoped to the producer,
/// whose token is checked here).
fn add_head(state: &AppState, parts: Parts) -> Result<(bool, Option<IdempotencyKey>), ApiError> {
    let headers = &parts.headers;
    let query = match parts.uri.query() {
        None => AddQuery::default(),
        Some(_) => axum::extract::Query::<AddQuery>::try_from_uri(&parts.uri)?.0,
    };
    let producer = producer(state, headers)?;
    let wait_checkpoint = wait_for_checkpoint(query.wait.as_deref())?;
    let idempotency = match headers.get("idempotency-key") {
        None => None,
        Some(value) => {
            let key = value
                .to_str()
                .map_err(|_| ApiError::bad_request("the Idempotency-Key is not visible ASCII"))?;
            Some(
                IdempotencyKey::new(&producer, key)
                    .map_err(|error| ApiError::bad_request(format!("Idempotency-Key: {error}")))?,
            )
        }
    };
    Ok((wait_checkpoint, idempotency))
}

/// `{"index": N, "leaf_hash": "<base64>", "duplicate": false}`, written directly: nothing in it
/// needs escaping (base64 is ASCII without quotes or backslashes).
fn sequenced_json(sequenced: &Sequenced) -> String {
    format!(
        r#"{{"index":{},"leaf_hash":"{}","duplicate":{}}}"#,
        sequenced.index,
        sequenced.leaf_hash.to_base64(),
        sequenced.duplicate
    )
}

/// Splits an /add-batch body: leaves, each preceded by its length as a big-endian u32. The
/// leaves are slices of the body, not copies.
fn parse_batch(body: &Bytes, max_leaf: usize) -> Result<Vec<Bytes>, ApiError> {
    let mut leaves = Vec::new();
    let mut offset = 0;
    while offset < body.len() {
        let rest = &body[offset..];
        if rest.len() < 4 {
            return Err(ApiError::bad_request(format!(
                "truncated length prefix at byte {offset}: {} bytes left, 4 needed",
                rest.len()
            )));
        }
        let length = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if length == 0 {
            return Err(ApiError::bad_request(format!(
                "leaf {} at byte {offset} is empty; empty leaves are not logged",
                leaves.len()
            )));
        }
        if length > max_leaf {
            return Err(ApiError::too_large(format!(
                "leaf {} at byte {offset} is {length} bytes, the limit is {max_leaf}",
                leaves.len()
            )));
        }
        if rest.len() - 4 < length {
            return Err(ApiError::bad_request(format!(
                "leaf {} at byte {offset} claims {length} bytes, {} remain",
                leaves.len(),
                rest.len() - 4
            )));
        }
        leaves.push(body.slice(offset + 4..offset + 4 + length));
        offset += 4 + length;
    }
    if leaves.is_empty() {
        return Err(ApiError::bad_request("the batch holds no leaves"));
    }
    Ok(leaves)
}

async fn add_batch(
    State(state): Shared,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    producer(&state, &headers)?;
    let body = read_body(body, state.limits.max_batch_body_bytes, "batch").await?;
    let leaves = parse_batch(&body, state.limits.max_leaf_bytes)?;
    for (position, leaf) in leaves.iter().enumerate() {
        refuse_event_leaf(leaf, Some(position))?;
    }
    let entries = leaves
        .into_iter()
        .map(|leaf| NewEntry::new(leaf, None))
        .collect();
    let answers = state.sequencer.add_batch(entries).await?;
    state
        .metrics
        .leaves_added
        .fetch_add(answers.len() as u64, std::sync::atomic::Ordering::Relaxed);
    Ok(json_response(batch_json(&answers)))
}

/// `{"count": N, "first_index": I, "duplicates": D, "indices": [...]}`, written directly (a
/// JSON value tree of thousands of numbers was a visible share of a batch's cost).
fn batch_json(answers: &[Sequenced]) -> String {
    use std::fmt::Write as _;
    let duplicates = answers.iter().filter(|a| a.duplicate).count();
    let first_index = answers.iter().find(|a| !a.duplicate).map(|a| a.index);
    let mut out = String::with_capacity(64 + 12 * answers.len());
    let _ = write!(out, r#"{{"count":{},"first_index":"#, answers.len());
    match first_index {
        Some(index) => {
            let _ = write!(out, "{index}");
        }
        None => out.push_str("null"),
    }
    let _ = write!(out, r#","duplicates":{duplicates},"indices":["#);
    for (position, answer) in answers.iter().enumerate() {
        if position > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", answer.index);
    }
    out.push_str("]}");
    out
}

async fn checkpoint(State(state): Shared) -> Result<Response, ApiError> {
    let published = published(&state)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        published.note,
    )
        .into_response())
}

async fn tile(
    State(state): Shared,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let full_path = format!("tile/{path}");
    let parsed = TilePath::parse(&full_path)
        .map_err(|error| ApiError::not_found(format!("not a tile path: {error}")))?;
    let size = published(&state)?.size;
    let store = state.store.clone();
    // A bundle served only to readers must not be kept by a shared cache.
    let private = matches!(parsed, TilePath::EntryBundle(_))
        && !state.events.store.privacy().public_entries();
    let (data, full) = match parsed {
        TilePath::Tile(tile) => {
            let width = tile_width_in_tree(tile.level(), tile.index(), size)
                .filter(|&available| available >= tile.width())
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "tile {tile} is beyond the published tree of {size}"
                    ))
                })?;
            let _ = width;
            let level = tile.level();
            if level > crate::storage::MAX_HASH_LEVEL {
                return Err(ApiError::not_found(format!("no level {level}")));
            }
            let first = tile.index() * 256;
            let count = u64::from(tile.width());
            let hashes = blocking(move || Ok(store.read_hashes(level, first, count)?)).await?;
            let data: Vec<u8> = hashes
                .iter()
                .flat_map(|h| h.as_bytes().iter().copied())
                .collect();
            (data, tile.is_full())
        }
        TilePath::EntryBundle(bundle) => {
            if private {
                authorize(&state.principals, &headers, &[Role::Reader, Role::Admin])?;
            }
            tile_width_in_tree(0, bundle.index(), size)
                .filter(|&available| available >= bundle.width())
                .ok_or_else(|| {
                    ApiError::not_found(format!(
                        "entry bundle {bundle} is beyond the published tree of {size}"
                    ))
                })?;
            let first = bundle.index() * 256;
            let count = u64::from(bundle.width());
            let entries = blocking(move || Ok(store.read_entries(first, count)?)).await?;
            let leaves: Vec<&[u8]> = entries.iter().map(|e| e.leaf.as_slice()).collect();
            let data =
                encode_entry_bundle(&leaves).map_err(|e| ApiError::internal(e.to_string()))?;
            (data, bundle.is_full())
        }
    };
    let cache = match (full, private) {
        (true, false) => "public, max-age=31536000, immutable",
        (false, false) => "public, max-age=1",
        (true, true) => "private, max-age=31536000, immutable",
        (false, true) => "private, max-age=1",
    };
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream"),
            (header::CACHE_CONTROL, cache),
        ],
        data,
    )
        .into_response())
}

#[derive(Deserialize)]
struct InclusionQuery {
    index: Option<u64>,
    leaf_hash: Option<String>,
    size: Option<u64>,
}

async fn proof_inclusion(
    State(state): Shared,
    Query(query): Query<InclusionQuery>,
) -> Result<Response, ApiError> {
    let size = check_size(query.size, published(&state)?.size)?;
    let index = match (query.index, query.leaf_hash) {
        (Some(index), None) => index,
        (None, Some(text)) => {
            let hash = Hash::from_base64(&text)
                .map_err(|error| ApiError::bad_request(format!("leaf_hash: {error}")))?;
            let store = state.store.clone();
            let hit = blocking(move || {
                Ok(store.find_duplicates(&[crate::storage::DedupKey::Leaf(&hash)])?)
            })
            .await?;
            hit.into_iter()
                .next()
                .flatten()
                .map(|hit| hit.index)
                .ok_or_else(|| ApiError::not_found("no leaf with that hash is in the log"))?
        }
        _ => return Err(ApiError::bad_request("give either index or leaf_hash")),
    };
    if index >= size {
        return Err(ApiError::bad_request(format!(
            "index {index} is not below size {size}"
        )));
    }
    let store = state.store.clone();
    let proof = blocking(move || {
        inclusion_proof(index, size, &StoreHashes::new(store.as_ref()))
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await?;
    Ok(Json(json!({
        "index": index,
        "size": size,
        "proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct ConsistencyQuery {
    old: u64,
    new: Option<u64>,
}

async fn proof_consistency(
    State(state): Shared,
    Query(query): Query<ConsistencyQuery>,
) -> Result<Response, ApiError> {
    let new = check_size(query.new, published(&state)?.size)?;
    let old = query.old;
    if old > new {
        return Err(ApiError::bad_request(format!(
            "old size {old} is above new size {new}"
        )));
    }
    let store = state.store.clone();
    let proof = blocking(move || {
        consistency_proof(old, new, &StoreHashes::new(store.as_ref()))
            .map_err(|e| ApiError::internal(e.to_string()))
    })
    .await?;
    Ok(Json(json!({
        "old": old,
        "new": new,
        "proof": proof.iter().map(Hash::to_base64).collect::<Vec<_>>(),
    }))
    .into_response())
}

#[derive(Deserialize)]
struct ReceiptQuery {
    size: Option<u64>,
}

async fn receipt(
    State(state): Shared,
    Path(index): Path<String>,
    Query(query): Query<ReceiptQuery>,
) -> Result<Response, ApiError> {
    let index: u64 = index
        .parse()
        .map_err(|_| ApiError::bad_request(format!("index `{index}` is not a decimal number")))?;
    let receipt = build_receipt(&state, index, query.size).await?;
    Ok(json_response(receipt.to_json()))
}

/// Liveness: the process answers. Says nothing of storage or witnesses: see `/readyz`.
async fn healthz(State(state): Shared) -> Response {
    let size = state.published.borrow().as_ref().map(|p| p.size);
    Json(json!({"status": "ok", "published_size": size})).into_response()
}

/// Readiness: 200 when the log does its job now, 503 with the reasons when it does not.
async fn readyz(State(state): Shared) -> Response {
    let readiness = state.health.readiness();
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

async fn metrics(State(state): Shared) -> Response {
    let durable = *state.sequencer.durable_size().borrow();
    let mut exposition = Exposition::new();
    state.metrics.expose(
        &mut exposition,
        &ScrapeFigures {
            queue_depth: state.sequencer.pending_leaves(),
            durable_size: durable,
            submitted: state.sequencer.submitted_leaves(),
            commits: &state.sequencer.commit_figures(),
            readiness: &state.health.readiness(),
        },
    );
    state.principals.expose_metrics(&mut exposition);
    let text = exposition.encode();
    (
        [(header::CONTENT_TYPE, cairn_edge::metrics::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(index: u64, duplicate: bool) -> Sequenced {
        Sequenced {
            index,
            leaf_hash: Hash::of_leaf(&index.to_be_bytes()),
            duplicate,
        }
    }

    #[test]
    fn answers_written_by_hand_are_the_json_they_claim() {
        let single: serde_json::Value =
            serde_json::from_str(&sequenced_json(&answer(7, true))).expect("JSON");
        assert_eq!(
            single,
            json!({"index": 7, "leaf_hash": answer(7, true).leaf_hash.to_base64(), "duplicate": true})
        );
        let batch: serde_json::Value = serde_json::from_str(&batch_json(&[
            answer(3, true),
            answer(10, false),
            answer(11, false),
        ]))
        .expect("JSON");
        assert_eq!(
            batch,
            json!({"count": 3, "first_index": 10, "duplicates": 1, "indices": [3, 10, 11]})
        );
        let all_known: serde_json::Value =
            serde_json::from_str(&batch_json(&[answer(4, true)])).expect("JSON");
        assert_eq!(
            all_known,
            json!({"count": 1, "first_index": null, "duplicates": 1, "indices": [4]})
        );
    }
}
