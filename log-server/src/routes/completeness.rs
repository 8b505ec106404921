//! Complete answers over HTTP: `GET /v1/export` and `GET /v1/events?proof=true` for one value
//! of `actor`, `resource` or `action` carry a completeness proof (completeness.md §3.3).
//!
//! The events of a proven answer are taken from the index's lists, not from the events
//! index's postings, so that the answer and its proof cannot disagree: every event of the
//! value after the cursor, up to the limit, in log order, against the checkpoint at the
//! index's size. That checkpoint is the one the integrator signed last; the answer waits a
//! little (at most [`COSIGNED_WAIT`]) for its witnesses' cosignatures, and carries it signed by
//! the log alone if they do not come in time.
//!
//! `GET /v1/index/records?offset=<bytes>` (reader) serves the index's record stream
//! (completeness.md §1.4) to index auditors, who replay it and check every checkpoint's root.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use cairn_spec::completeness::{action_key, MapKey};
use cairn_spec::event::{AnyEventLeaf, IndexedField, PersonalField};
use cairn_spec::export::{
    ExportBundleV2, ExportOpening, ExportOpenings, ExportedEventV2, EXPORT_FORMAT_V2,
};
use cairn_spec::merkle::inclusion_proof;
use cairn_spec::receipt::ReceiptTimestamp;
use tokio::sync::watch;

use crate::completeness::{CompletenessIndex, IndexError, ProofRequest};
use crate::events::auth::{authorize, Role};
use crate::events::privacy::{Contents, TAG_PREFIX};
use crate::events::EventStore;
use crate::http::extract::Query;
use crate::http::state::blocking;
use crate::http::{ApiError, AppState, ErrorCode};
use crate::publisher::Published;
use crate::storage::StoreHashes;
use crate::storage::{LogStore, StoredPayload};

/// How long an answer waits for the checkpoint at the index's size to be stored.
pub const STORED_WAIT: Duration = Duration::from_secs(5);
/// How long it waits for that checkpoint's cosignatures before answering without them.
pub const COSIGNED_WAIT: Duration = Duration::from_secs(2);
const POLL: Duration = Duration::from_millis(10);
/// Most bytes of the record stream one answer carries.
pub const MAX_RECORDS_BYTES: usize = 1 << 20;

/// The index auditor's route.
pub(crate) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/index/records", get(records))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordsQuery {
    offset: Option<u64>,
}

/// `GET /v1/index/records?offset=`: whole records from the byte `offset`, up to 1 MiB; an empty
/// body at the end. 400 on a log without the index.
async fn records(
    State(state): State<Arc<AppState>>,
    Query(query): Query<RecordsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    authorize(&state.principals, &headers, &[Role::Reader, Role::Admin])?;
    let index = state.completeness.clone().ok_or_else(|| {
        ApiError::bad_request("this log keeps no completeness index (completeness_index = false)")
    })?;
    let offset = query.offset.unwrap_or(0);
    let bytes = blocking(move || Ok(index.records(offset, MAX_RECORDS_BYTES)?)).await?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

impl From<IndexError> for ApiError {
    fn from(error: IndexError) -> ApiError {
        match error {
            IndexError::Store(error) => error.into(),
            IndexError::Unavailable(detail) => ApiError::new(ErrorCode::Overloaded, detail),
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// The one value a query asks for, if it asks for exactly one of `actor`, `resource` and
/// `action`: (field, value).
pub fn single_value<'a>(
    actor: Option<&'a str>,
    resource: Option<&'a str>,
    action: Option<&'a str>,
) -> Option<(&'static str, &'a str)> {
    match (actor, resource, action) {
        (Some(actor), None, None) => Some(("actor", actor)),
        (None, Some(resource), None) => Some(("resource", resource)),
        (None, None, Some(action)) => Some(("action", action)),
        _ => None,
    }
}

/// The index keys of a value: an action's public key; an identifier's tag under the
/// subject's data key (schema 2 events, when the subject has one) and under the log's index
/// key (schema 1 leaves, and schema 2 fields that are not the subject's). Blocking.
pub fn keys_for(store: &EventStore, field: &str, value: &str) -> Result<Vec<MapKey>, ApiError> {
    let field = match field {
        "action" => return Ok(vec![action_key(value)]),
        "actor" => IndexedField::ActorId,
        "resource" => IndexedField::ResourceId,
        other => return Err(ApiError::bad_request(format!("no index for {other}"))),
    };
    let mut keys = Vec::with_capacity(2);
    if let Some(text) = store.tag(field, value)? {
        keys.push(parse_tag(&text)?);
    }
    let logged = MapKey(store.privacy().log_tag(field, value));
    if !keys.contains(&logged) {
        keys.push(logged);
    }
    Ok(keys)
}

fn parse_tag(text: &str) -> Result<MapKey, ApiError> {
    let bad = || ApiError::internal(format!("a tag the index made is malformed: {text}"));
    let hex = text.strip_prefix(TAG_PREFIX).ok_or_else(bad)?;
    if hex.len() != 64 {
        return Err(bad());
    }
    let mut key = [0u8; 32];
    for (index, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * index..2 * index + 2], 16).map_err(|_| bad())?;
    }
    Ok(MapKey(key))
}

/// The signed note of the checkpoint of `size`: the published one (with its cosignatures) if
/// it is published within [`COSIGNED_WAIT`], else the stored one once it is stored (within
/// [`STORED_WAIT`]). Blocking.
pub fn checkpoint_at(
    published: &watch::Receiver<Option<Published>>,
    store: &dyn LogStore,
    size: u64,
) -> Result<Vec<u8>, IndexError> {
    let start = Instant::now();
    loop {
        if let Some(published) = published.borrow().as_ref() {
            if published.size == size {
                return Ok(published.note.clone().into_bytes());
            }
        }
        let waited = start.elapsed();
        if waited >= COSIGNED_WAIT {
            if let Some(stored) = store.latest_checkpoint()? {
                if stored.size == size {
                    return Ok(stored.note);
                }
            }
        }
        if waited >= STORED_WAIT {
            return Err(IndexError::Unavailable(format!(
                "the checkpoint of size {size} that the index is at is not stored yet (is the \
                 log's key reachable?)"
            )));
        }
        std::thread::sleep(POLL);
    }
}

/// The export form of the event at `index`: its leaf, its payload (schema 1) or openings and
/// erased fields (schema 2), and its inclusion proof in the tree of `size`. Blocking.
pub fn exported_event(
    events: &EventStore,
    store: &dyn LogStore,
    index: u64,
    size: u64,
) -> Result<ExportedEventV2, ApiError> {
    let leaf = store
        .read_entries(index, 1)?
        .pop()
        .ok_or_else(|| ApiError::internal("the store returned no entry"))?
        .leaf;
    let inclusion_proof = inclusion_proof(index, size, &StoreHashes::new(store))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut event = ExportedEventV2 {
        index,
        leaf: Vec::new(),
        payload: None,
        openings: ExportOpenings::default(),
        erased: Vec::new(),
        inclusion_proof,
    };
    match AnyEventLeaf::parse(&leaf) {
        Ok(AnyEventLeaf::V2(parsed)) => match events.contents(index, &parsed.clear.event_id)? {
            Contents::Held(openings) => {
                for field in PersonalField::ALL {
                    if let Some(opening) = openings.get(field) {
                        event.openings.set(field, ExportOpening::of(opening));
                    }
                }
            }
            Contents::Erased => {
                event.erased = PersonalField::ALL
                    .into_iter()
                    .filter(|field| parsed.commitments.get(*field).is_some())
                    .collect();
            }
        },
        _ => {
            event.payload = match store.read_payload(index)? {
                Some(StoredPayload::Held(bytes)) => Some(bytes),
                _ => None,
            }
        }
    }
    event.leaf = leaf;
    Ok(event)
}

/// A proven export: every event of `field` = `value` after `after`, at most `limit`, with the
/// completeness proof, against the checkpoint at the index's size; and the cursor of the next
/// bundle. Blocking.
pub fn proven_export(
    index: &CompletenessIndex,
    events: &EventStore,
    store: &dyn LogStore,
    published: &watch::Receiver<Option<Published>>,
    request: ProofRequest,
) -> Result<(ExportBundleV2, Option<u64>), ApiError> {
    let window = index.prove(store, &request, |size| {
        checkpoint_at(published, store, size)
    })?;
    let mut exported = Vec::with_capacity(window.indices.len());
    for &leaf_index in &window.indices {
        exported.push(exported_event(events, store, leaf_index, window.size)?);
    }
    let timestamps = store
        .timestamp_tokens(window.size)?
        .into_iter()
        .map(|(_, token)| ReceiptTimestamp { token })
        .collect();
    let checkpoint = String::from_utf8(window.note)
        .map_err(|_| ApiError::internal("a stored checkpoint note is not UTF-8"))?;
    Ok((
        ExportBundleV2 {
            format: EXPORT_FORMAT_V2.to_string(),
            checkpoint,
            timestamps,
            events: exported,
            completeness: Some(window.proof),
        },
        window.next_after,
    ))
}
