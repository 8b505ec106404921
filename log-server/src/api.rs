//! The HTTP API of the log (spec/docs/log-api.md): thin axum handlers over [`AppState`].
//!
//! Writes need a producer's bearer token; reads are public. Every error is JSON
//! `{"error": "<kind>", "detail": "<what and why>"}` with its status, from one place
//! ([`ApiError`]). Bad input is refused before anything changes.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::merkle::{consistency_proof, inclusion_proof, tree_root};
use cairn_spec::note::{Ed25519Signer, Note, NoteSignature};
use cairn_spec::receipt::{Receipt, ReceiptTimestamp, RECEIPT_FORMAT};
use cairn_spec::tiles::{encode_entry_bundle, tile_width_in_tree, TilePath};
use cairn_spec::Hash;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tower::{Layer, Service};

use crate::events::auth::{authorize, AuthError, Principals};
use crate::events::{Events, Role};
use crate::health::Health;
use crate::integrator::StoreHashes;
use crate::metrics::Metrics;
use crate::publisher::Published;
use crate::sequencer::{Sequenced, Sequencer, SequencerError};
use crate::storage::{FailureKind, IdempotencyKey, LogStore, NewEntry, StoreError};

/// Limits of the API.
#[derive(Clone, Debug)]
pub struct ApiLimits {
    /// The largest leaf, in bytes.
    pub max_leaf_bytes: usize,
    /// The largest /add-batch body, in bytes.
    pub max_batch_body_bytes: usize,
    /// The longest `?wait=checkpoint` wait.
    pub checkpoint_wait: Duration,
    /// Most events in one `POST /v1/events/batch`.
    pub max_batch_events: usize,
}

/// Everything the handlers share.
pub struct AppState {
    /// The log's state.
    pub store: Arc<dyn LogStore>,
    /// The sequencer in front of it.
    pub sequencer: Arc<Sequencer>,
    /// The latest published checkpoint.
    pub published: watch::Receiver<Option<Published>>,
    /// Principals (producers, readers, admins), reloadable.
    pub principals: Arc<Principals>,
    /// Audit events: their database, submission and admin actions.
    pub events: Arc<Events>,
    /// The log's key, to sign again an older checkpoint for a receipt at an older size.
    pub signer: Ed25519Signer,
    /// How many cosignatures a published checkpoint carries at least.
    pub quorum: usize,
    /// Limits.
    pub limits: ApiLimits,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Readiness.
    pub health: Arc<Health>,
}

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) kind: &'static str,
    pub(crate) detail: String,
    pub(crate) retry_after: Option<u64>,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        kind: &'static str,
        detail: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            kind,
            detail: detail.into(),
            retry_after: None,
        }
    }

    pub(crate) fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", detail)
    }

    pub(crate) fn not_found(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    pub(crate) fn internal(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// The answer while the log's storage fails: 503 with `Retry-After`. It names no file: the
    /// server's own log has the whole error, for the operator.
    pub(crate) fn storage_unavailable() -> ApiError {
        ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            kind: "storage_unavailable",
            detail: "the log's storage is failing for now (a full disk or an I/O error); nothing \
                     was stored; the log heals by itself once the fault clears: retry later"
                .into(),
            retry_after: Some(STORAGE_RETRY_AFTER_SECONDS),
        }
    }
}

/// How long a client is asked to wait before retrying while the storage fails.
const STORAGE_RETRY_AFTER_SECONDS: u64 = 5;

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
            SequencerError::Overloaded { .. } => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "overloaded",
                detail,
                retry_after: Some(1),
            },
            SequencerError::TooLarge { .. } => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", detail)
            }
            SequencerError::ShuttingDown => ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                kind: "shutting_down",
                detail,
                retry_after: Some(5),
            },
            SequencerError::StorageUnavailable => ApiError::storage_unavailable(),
            SequencerError::StoreFailed(reason) => {
                tracing::error!(%reason, "the sequencer's store failed");
                ApiError::internal("the log's storage failed; the operator has the details")
            }
            SequencerError::BadConfig(_) => ApiError::internal(detail),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({"error": self.kind, "detail": self.detail}));
        let mut response = (self.status, body).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

type Shared = State<Arc<AppState>>;

/// The router of the whole API.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/add", post(add))
        .route("/add-batch", post(add_batch))
        .route("/checkpoint", get(checkpoint))
        .route("/tile/{*path}", get(tile))
        .route("/proof/inclusion", get(proof_inclusion))
        .route("/proof/consistency", get(proof_consistency))
        .route("/receipt/{index}", get(receipt))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(crate::events::http::routes())
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .layer(RecordLayer(state.metrics.clone()))
        .with_state(state)
}

/// Counts and times each request by its route and status: a tower layer rather than
/// `middleware::from_fn`, which boxes each request's future and a clone of the service stack
/// behind it (about 6% of the server's time under single events, by perf samples).
#[derive(Clone)]
struct RecordLayer(Arc<Metrics>);

impl<S> Layer<S> for RecordLayer {
    type Service = Record<S>;

    fn layer(&self, inner: S) -> Record<S> {
        Record {
            inner,
            metrics: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct Record<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

impl<S> Service<Request> for Record<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    S::Future: Unpin,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Recorded<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Recorded<S::Future> {
        // A clone of the matched path shares its string.
        let route = request.extensions().get::<MatchedPath>().cloned();
        Recorded {
            started: Instant::now(),
            inner: self.inner.call(request),
            route,
            metrics: self.metrics.clone(),
        }
    }
}

/// A request's answer to come, and what to record when it does.
struct Recorded<F> {
    inner: F,
    route: Option<MatchedPath>,
    started: Instant,
    metrics: Arc<Metrics>,
}

impl<F> Future for Recorded<F>
where
    F: Future<Output = Result<Response, Infallible>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let Ok(response) = ready!(Pin::new(&mut this.inner).poll(cx));
        this.metrics.record_request(
            this.route.as_ref().map_or("unmatched", MatchedPath::as_str),
            response.status().as_u16(),
            this.started.elapsed(),
        );
        Poll::Ready(Ok(response))
    }
}

/// The producer named by the `Authorization: Bearer` header.
fn producer(state: &AppState, headers: &HeaderMap) -> Result<String, ApiError> {
    Ok(authorize(&state.principals, headers, &[Role::Producer])?.name)
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> ApiError {
        match error {
            AuthError::Unauthenticated(detail) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            }
            AuthError::Forbidden { .. } => {
                ApiError::new(StatusCode::FORBIDDEN, "forbidden", error.to_string())
            }
            AuthError::RateLimited {
                retry_after_seconds,
                ..
            } => ApiError {
                retry_after: Some(retry_after_seconds),
                ..ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "rate_limited",
                    error.to_string(),
                )
            },
        }
    }
}

/// Refuses a raw leaf that is an event leaf: those come only through `/v1/events`, which binds
/// the submitting principal, so that no producer can log an event in another's name.
fn refuse_event_leaf(leaf: &[u8], position: Option<usize>) -> Result<(), ApiError> {
    if leaf.first() == Some(&b'{') && cairn_spec::event::EventLeaf::parse(leaf).is_ok() {
        let which = position.map_or_else(|| "the leaf".to_string(), |p| format!("leaf {p}"));
        return Err(ApiError::bad_request(format!(
            "{which} is an audit event leaf; submit events to POST /v1/events"
        )));
    }
    Ok(())
}

pub(crate) async fn read_body(body: Body, limit: usize, what: &str) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("the {what} is larger than {limit} bytes (or could not be read)"),
        )
    })
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
        Some(_) => {
            Query::<AddQuery>::try_from_uri(&parts.uri)
                .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?
                .0
        }
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

/// `wait=checkpoint` (answer with the receipt once a published checkpoint covers the leaf) or
/// no `wait` at all (answer once the leaf is durable).
pub(crate) fn wait_for_checkpoint(wait: Option<&str>) -> Result<bool, ApiError> {
    match wait {
        None => Ok(false),
        Some("checkpoint") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "wait must be `checkpoint`, found `{other}`"
        ))),
    }
}

/// Waits (at most the configured time) for a published checkpoint that covers `index`, and
/// returns the receipt of `index` in it; 202 if none came in time.
pub(crate) async fn wait_for_receipt(
    state: &Arc<AppState>,
    index: u64,
) -> Result<Receipt, ApiError> {
    let mut published = state.published.clone();
    let wait = published.wait_for(|p| p.as_ref().is_some_and(|p| p.size > index));
    match tokio::time::timeout(state.limits.checkpoint_wait, wait).await {
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return Err(ApiError::internal("the publisher stopped")),
        Err(_) => {
            return Err(ApiError {
                status: StatusCode::ACCEPTED,
                kind: "not_yet_published",
                detail: format!(
                    "leaf {index} is durable but no checkpoint that meets the witness policy covers it yet; fetch /receipt/{index} later"
                ),
                retry_after: Some(1),
            })
        }
    }
    build_receipt(state, index, None).await
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

pub(crate) fn json_response(text: String) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], text).into_response()
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
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!(
                    "leaf {} at byte {offset} is {length} bytes, the limit is {max_leaf}",
                    leaves.len()
                ),
            ));
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

pub(crate) fn published(state: &AppState) -> Result<Published, ApiError> {
    state.published.borrow().clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_checkpoint",
            "no checkpoint has been published yet",
        )
    })
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

pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|error| ApiError::internal(format!("worker failed: {error}")))?
}

async fn tile(State(state): Shared, Path(path): Path<String>) -> Result<Response, ApiError> {
    let full_path = format!("tile/{path}");
    let parsed = TilePath::parse(&full_path)
        .map_err(|error| ApiError::not_found(format!("not a tile path: {error}")))?;
    let size = published(&state)?.size;
    let store = state.store.clone();
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
    let cache = if full {
        "public, max-age=31536000, immutable"
    } else {
        "public, max-age=1"
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

fn check_size(requested: Option<u64>, published: u64) -> Result<u64, ApiError> {
    let size = requested.unwrap_or(published);
    if size > published {
        return Err(ApiError::bad_request(format!(
            "size {size} is beyond the published tree of {published}"
        )));
    }
    Ok(size)
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

/// The receipt of entry `index` in the published checkpoint, or in the checkpoint of `size`
/// (signed again, deterministically, with the cosignatures stored for that size).
pub(crate) async fn build_receipt(
    state: &Arc<AppState>,
    index: u64,
    size: Option<u64>,
) -> Result<Receipt, ApiError> {
    let published = published(state)?;
    let size = check_size(size, published.size)?;
    if index >= size {
        return Err(ApiError::bad_request(format!(
            "index {index} is not below size {size}"
        )));
    }
    let store = state.store.clone();
    let signer = state.signer.clone();
    let quorum = state.quorum;
    let published_note = published.note.clone();
    let published_size = published.size;
    blocking(move || {
        let reader = StoreHashes::new(store.as_ref());
        let entry = store
            .read_entries(index, 1)?
            .pop()
            .ok_or_else(|| ApiError::internal("the store returned no entry"))?;
        let proof = inclusion_proof(index, size, &reader).map_err(|e| ApiError::internal(e.to_string()))?;
        let note = if size == published_size {
            published_note
        } else {
            let root = tree_root(size, &reader).map_err(|e| ApiError::internal(e.to_string()))?;
            let checkpoint = Checkpoint {
                origin: signer.key_name().as_str().to_string(),
                size,
                root,
                extensions: Vec::new(),
            };
            let mut note: Note = checkpoint.sign(&signer).map_err(|e| ApiError::internal(e.to_string()))?;
            let cosignatures = store.cosignatures(size)?;
            if cosignatures.len() < quorum {
                return Err(ApiError::not_found(format!(
                    "the checkpoint of size {size} was not cosigned by the witness quorum; ask for the published size {published_size}"
                )));
            }
            for (_, line) in cosignatures {
                let line = String::from_utf8_lossy(&line).into_owned();
                if let Ok(signature) = NoteSignature::parse_line(line.trim_end_matches('\n')) {
                    let _ = note.add_signature(signature);
                }
            }
            let bytes = note.to_bytes().map_err(|e| ApiError::internal(e.to_string()))?;
            String::from_utf8(bytes).map_err(|_| ApiError::internal("the note is not UTF-8"))?
        };
        let timestamps = store
            .timestamp_tokens(size)?
            .into_iter()
            .map(|(_, token)| ReceiptTimestamp { token })
            .collect();
        Ok(Receipt {
            format: RECEIPT_FORMAT.to_string(),
            index,
            leaf_hash: entry.leaf_hash(),
            leaf: Some(entry.leaf),
            inclusion_proof: proof,
            checkpoint: note,
            timestamps,
        })
    })
    .await
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
    let mut text = state.metrics.render(
        state.sequencer.pending_leaves(),
        durable,
        state.sequencer.submitted_leaves(),
        &state.sequencer.commit_figures(),
        &state.health.readiness(),
    );
    state.principals.render_metrics(&mut text);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
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
