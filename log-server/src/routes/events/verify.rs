//! `POST /v1/verify`: whether a receipt or an event is what this log holds. Always 200, with
//! `valid` and, when not, the reason. An event is a schema 1 event (with its payload), or a
//! schema 2 leaf with the openings of any of its fields (`GET /v1/events/{id}` answers either
//! form, and takes it back). A receipt's checkpoint may be signed by any key of the log's
//! verified key history valid at its size, not only the key in service.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine as _;
use cairn_spec::event::{EventLeaf, EventLeafV2, FieldOpening, PersonalField, Salt};
use cairn_spec::jcs::{self, Limits, Value};
use cairn_spec::merkle::{tree_root, verify_inclusion};
use cairn_spec::receipt::{Receipt, MAX_RECEIPT_BYTES};
use cairn_spec::Hash;
use serde_json::json;

use super::{logged_event, Shared, READERS};
use crate::events::auth::authorize;
use crate::http::body::read_body;
use crate::http::state::{blocking, published};
use crate::http::{ApiError, AppState, ErrorCode};
use crate::storage::StoreHashes;

fn invalid(reason: impl Into<String>) -> Response {
    Json(json!({"valid": false, "reason": reason.into()})).into_response()
}

pub(super) async fn verify(
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
    if members.iter().any(|(name, _)| name == "leaf") {
        return verify_event_v2(&state, members).await;
    }
    verify_event(&state, members).await
}

async fn verify_receipt(state: &Arc<AppState>, body: &[u8]) -> Result<Response, ApiError> {
    let receipt = match Receipt::from_json(body) {
        Ok(receipt) => receipt,
        Err(error) => return Ok(invalid(error.to_string())),
    };
    // Any key of the log's verified key history counts, each for the sizes it may sign: a
    // receipt signed before a rotation stays valid after it.
    let keys = Arc::clone(&state.signer);
    let note = receipt.checkpoint.clone();
    let opened = match blocking(move || Ok(keys.open_checkpoint(note.as_bytes()))).await? {
        Ok(opened) => opened,
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
                "event_id" | "index" | "leaf_hash" | "payload_status" | "erased_by"
                | "schema_version" => {}
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
        Err(error) if error.code() == ErrorCode::NotFound => {
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

/// One opening as `GET /v1/events/{id}` shows it: `{"salt": "<base64>", "value": <JSON>}`.
fn opening_of(field: PersonalField, value: Value) -> Result<FieldOpening, String> {
    let Value::Object(members) = value else {
        return Err(format!("openings.{field}: an object with salt and value"));
    };
    let (mut salt, mut opened) = (None, None);
    for (name, member) in members {
        match (name.as_str(), member) {
            ("salt", Value::String(text)) => {
                salt = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .ok()
                    .and_then(|bytes| Salt::from_slice(&bytes));
                if salt.is_none() {
                    return Err(format!("openings.{field}.salt: 32 bytes in base64"));
                }
            }
            ("value", member) => opened = Some(member),
            (other, _) => {
                return Err(format!(
                    "openings.{field}: unknown member `{}`",
                    other.chars().take(64).collect::<String>()
                ))
            }
        }
    }
    match (salt, opened) {
        (Some(salt), Some(value)) => Ok(FieldOpening {
            salt,
            value: jcs::canonicalize(&value).into_bytes(),
        }),
        _ => Err(format!("openings.{field}: needs salt and value")),
    }
}

/// A schema 2 leaf (`leaf`) and the openings of any of its fields (`openings`): the leaf must
/// be the one logged for its event ID, and every opening must open its commitment.
async fn verify_event_v2(
    state: &Arc<AppState>,
    members: Vec<(String, Value)>,
) -> Result<Response, ApiError> {
    let (mut leaf, mut openings) = (None, Vec::new());
    for (name, value) in members {
        match name.as_str() {
            "leaf" => leaf = Some(value),
            "openings" => match value {
                Value::Object(fields) => {
                    for (field, opening) in fields {
                        let Some(field) = PersonalField::from_name(&field) else {
                            return Ok(invalid(format!(
                                "openings: `{}` is not a personal field",
                                field.chars().take(64).collect::<String>()
                            )));
                        };
                        match opening_of(field, opening) {
                            Ok(opening) => openings.push((field, opening)),
                            Err(reason) => return Ok(invalid(reason)),
                        }
                    }
                }
                Value::Null => {}
                _ => return Ok(invalid("openings: an object of fields")),
            },
            // What GET /v1/events/{id} answers beside them is informative only.
            "event_id" | "index" | "leaf_hash" | "schema_version" | "contents" | "erased_by"
            | "event" => {}
            other => {
                return Ok(invalid(format!(
                    "unknown member `{}`",
                    other.chars().take(64).collect::<String>()
                )))
            }
        }
    }
    let leaf = jcs::canonicalize(&leaf.expect("the member is present")).into_bytes();
    let parsed = match EventLeafV2::parse(&leaf) {
        Ok(parsed) => parsed,
        Err(error) => return Ok(invalid(format!("not a schema 2 event leaf: {error}"))),
    };
    let index = match logged_event(state, &parsed.clear.event_id).await {
        Ok((summary, logged)) if logged == leaf => summary.index,
        Ok((summary, _)) => {
            return Ok(invalid(format!(
                "the leaf differs from the leaf logged at index {} for this event_id",
                summary.index
            )))
        }
        Err(error) if error.code() == ErrorCode::NotFound => {
            return Ok(invalid(format!(
                "no event {} is in the log",
                parsed.clear.event_id.as_str()
            )))
        }
        Err(error) => return Err(error),
    };
    openings.sort_by_key(|(field, _)| *field);
    let mut opened = Vec::new();
    for (field, opening) in &openings {
        if let Err(error) = parsed.verify_opening(*field, opening) {
            return Ok(invalid(error.to_string()));
        }
        opened.push(field.name());
    }
    Ok(Json(json!({
        "valid": true,
        "index": index,
        "leaf_hash": parsed.leaf_hash().to_base64(),
        "opened": opened,
    }))
    .into_response())
}
