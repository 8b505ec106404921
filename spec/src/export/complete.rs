//! The completeness part of a `cairn.export/v2` bundle (completeness.md §3.3): the bundle's
//! events are every event of one value in a window of leaf indices, proven against the
//! `cairn-index/v1` map root of the bundle's checkpoint, and each shown event carries the
//! value asked for.

use super::v2::ExportBundleV2;
use super::ExportError;
use crate::checkpoint::Checkpoint;
use crate::completeness::received::{received_at, ProvenReceived};
use crate::completeness::{action_key, root_from_extensions, CompletenessProof};
use crate::event::{AnyEventLeaf, PersonalField};
use crate::hash::Hash;
use crate::note::Note;

/// What the completeness proof of a verified bundle shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCompleteness {
    /// The field asked for: `actor`, `resource`, `resource_type` or `action`.
    pub field: String,
    /// The value asked for.
    pub value: String,
    /// The window of leaf indices: every event of the value in `[from, to)` is in the bundle.
    pub from: u64,
    /// One past the window's last leaf index.
    pub to: u64,
    /// The index keys it rested on.
    pub keys: usize,
    /// Events whose value was checked (in clear, or opened).
    pub value_checked: usize,
    /// Events whose value could not be checked (its field erased).
    pub value_erased: usize,
    /// For a receive-time range (completeness.md §3.5): what the proof covers, and the leaf
    /// indices of the bundle's events received within the range (the others lie within the
    /// skew around it).
    pub received: Option<(ProvenReceived, Vec<u64>)>,
}

fn invalid(reason: impl ToString) -> ExportError {
    ExportError::Completeness(reason.to_string())
}

/// Checks `proof` against the bundle's checkpoint (already verified by the caller) and events.
pub(super) fn verify_completeness(
    bundle: &ExportBundleV2,
    proof: &CompletenessProof,
) -> Result<VerifiedCompleteness, ExportError> {
    let note = Note::parse(bundle.checkpoint.as_bytes()).map_err(invalid)?;
    let checkpoint = Checkpoint::from_note(&note).map_err(invalid)?;
    let map_root = root_from_extensions(&checkpoint.extensions)
        .map_err(invalid)?
        .ok_or_else(|| invalid("the checkpoint carries no cairn-index/v1 line"))?;
    if proof.field == "action" {
        let key = action_key(&proof.value);
        if proof.keys.len() != 1 || proof.keys[0].key != key {
            return Err(invalid(
                "an action's only index key is its public key action_key(value)",
            ));
        }
    }
    let answer: Vec<(u64, Hash)> = bundle
        .events
        .iter()
        .map(|event| (event.index, Hash::of_leaf(&event.leaf)))
        .collect();
    let proven = proof
        .verify(&map_root, checkpoint.size, &answer)
        .map_err(invalid)?;
    let (mut value_checked, mut value_erased) = (0, 0);
    for event in &bundle.events {
        match shown_value(event, &proof.field)? {
            Some(shown) if shown == proof.value => value_checked += 1,
            Some(shown) => {
                return Err(invalid(format!(
                    "the event at leaf {} has {} {:?}, not {:?}",
                    event.index,
                    proof.field,
                    shown.chars().take(64).collect::<String>(),
                    proof.value
                )))
            }
            None => value_erased += 1,
        }
    }
    let received = match proven.received {
        None => None,
        Some(range) => {
            let mut inside = Vec::new();
            for event in &bundle.events {
                let at = received_at(&event.leaf).ok_or_else(|| {
                    invalid(format!(
                        "the event at leaf {} is no audit event",
                        event.index
                    ))
                })?;
                if range.from <= at && at < range.to {
                    inside.push(event.index);
                }
            }
            Some((range, inside))
        }
    };
    Ok(VerifiedCompleteness {
        received,
        field: proof.field.clone(),
        value: proof.value.clone(),
        from: proven.from,
        to: proven.to,
        keys: proven.keys,
        value_checked,
        value_erased,
    })
}

/// The value of `field` the event shows: `None` when it is committed and erased. (The leaf and
/// its openings were verified before.)
fn shown_value(
    event: &super::v2::ExportedEventV2,
    field: &str,
) -> Result<Option<String>, ExportError> {
    let leaf = AnyEventLeaf::parse(&event.leaf).map_err(invalid)?;
    let (personal, member) = match field {
        "action" => {
            return Ok(Some(match &leaf {
                AnyEventLeaf::V1(v1) => v1.action.clone(),
                AnyEventLeaf::V2(v2) => v2.clear.action.clone(),
            }))
        }
        "actor" => (PersonalField::Actor, "id"),
        "resource" => (PersonalField::Resource, "id"),
        "resource_type" => (PersonalField::Resource, "type"),
        other => {
            return Err(invalid(format!(
                "asked field {:?} is none of actor, resource, resource_type, action",
                other.chars().take(32).collect::<String>()
            )))
        }
    };
    match &leaf {
        AnyEventLeaf::V1(v1) => Ok(Some(match (personal, member) {
            (PersonalField::Actor, _) => v1.actor_id.clone(),
            (_, "id") => v1.resource_id.clone(),
            _ => v1.resource_type.clone(),
        })),
        AnyEventLeaf::V2(_) => {
            let Some(opening) = event.openings.get(personal) else {
                return Ok(None);
            };
            let value: serde_json::Value = serde_json::from_slice(&opening.value)
                .map_err(|error| invalid(format!("leaf {}: {error}", event.index)))?;
            value
                .get(member)
                .and_then(serde_json::Value::as_str)
                .map(|text| Some(text.to_owned()))
                .ok_or_else(|| {
                    invalid(format!(
                        "the event at leaf {} opens {personal} without a {member}",
                        event.index
                    ))
                })
        }
    }
}
