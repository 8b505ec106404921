//! Receipts (spec/docs/receipt.md), which the tree API and `/v1` both answer: the receipt of
//! a leaf in the published checkpoint or in an older one, and the wait of `?wait=checkpoint`
//! for a checkpoint that covers a new leaf.

use std::sync::Arc;

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::merkle::{inclusion_proof, tree_root};
use cairn_spec::note::{Note, NoteSignature};
use cairn_spec::policy::Policy;
use cairn_spec::receipt::{verify, Receipt, ReceiptTimestamp, RECEIPT_FORMAT};

use super::error::{ApiError, ErrorCode};
use super::state::{blocking, published, AppState};
use crate::publisher::TokenRounds;
use crate::storage::StoreHashes;

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

/// What a `?wait=checkpoint` receipt waits for: a published checkpoint that covers the leaf,
/// its timestamp tokens as the witnesses had them (a round of the publisher over every
/// witness), and, if the log has a receipt policy, a receipt that verifies under it (more
/// rounds are asked for while the policy's timestamps are missing).
#[derive(Clone, Debug)]
pub struct ReceiptWait {
    /// The policy a receipt must verify under, if one is configured (`receipt_policy`).
    pub policy: Option<Arc<Policy>>,
    /// The publisher's rounds of timestamp tokens.
    pub tokens: Arc<TokenRounds>,
}

/// What is still missing for the receipt of a leaf, said in the 202 answer.
enum Missing {
    Checkpoint,
    Tokens(u64),
    Policy(u64, String),
}

/// Waits (at most the configured time) for the receipt of `index` that `?wait=checkpoint`
/// promises (see [`ReceiptWait`]); 202 `not_yet_published` saying what is missing if it did
/// not come in time.
pub(crate) async fn wait_for_receipt(
    state: &Arc<AppState>,
    index: u64,
) -> Result<Receipt, ApiError> {
    let deadline = tokio::time::Instant::now() + state.limits.checkpoint_wait;
    let mut published = state.published.clone();
    let mut fetched = state.receipts.tokens.subscribe();
    loop {
        let size = published.borrow_and_update().as_ref().map(|p| p.size);
        let fetched_size = *fetched.borrow_and_update();
        let missing = match size {
            Some(size) if size > index => {
                if fetched_size.is_some_and(|fetched| fetched >= size) {
                    let receipt = build_receipt(state, index, None).await?;
                    let Some(policy) = &state.receipts.policy else {
                        return Ok(receipt);
                    };
                    match verify(&receipt, policy) {
                        Ok(_) => return Ok(receipt),
                        Err(error) => {
                            // A round may bring tokens a TSA issued since the last one.
                            state.receipts.tokens.want_more();
                            Missing::Policy(size, error.to_string())
                        }
                    }
                } else {
                    Missing::Tokens(size)
                }
            }
            _ => Missing::Checkpoint,
        };
        let changed = async {
            tokio::select! {
                changed = published.changed() => changed.is_ok(),
                changed = fetched.changed() => changed.is_ok(),
            }
        };
        match tokio::time::timeout_at(deadline, changed).await {
            Ok(true) => continue,
            Ok(false) => return Err(ApiError::internal("the publisher stopped")),
            Err(_) => return Err(not_yet(index, &missing)),
        }
    }
}

/// The 202 answer: the leaf is durable, and what its receipt still lacks.
fn not_yet(index: u64, missing: &Missing) -> ApiError {
    let detail = match missing {
        Missing::Checkpoint => format!(
            "leaf {index} is durable but no checkpoint that meets the witness policy covers it \
             yet; fetch /receipt/{index} later"
        ),
        Missing::Tokens(size) => format!(
            "leaf {index} is in the published checkpoint of size {size}, whose timestamp tokens \
             are still being fetched from the witnesses; fetch /receipt/{index} later"
        ),
        Missing::Policy(size, error) => format!(
            "leaf {index} is in the published checkpoint of size {size}, but its receipt does \
             not verify under the log's receipt policy yet: {error}; fetch /receipt/{index} \
             later"
        ),
    };
    ApiError::new(ErrorCode::NotYetPublished, detail)
}

/// `size`, or the published size if none, if it is within the published tree.
pub(crate) fn check_size(requested: Option<u64>, published: u64) -> Result<u64, ApiError> {
    let size = requested.unwrap_or(published);
    if size > published {
        return Err(ApiError::bad_request(format!(
            "size {size} is beyond the published tree of {published}"
        )));
    }
    Ok(size)
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
            let mut note: Note = signer.sign_checkpoint(&checkpoint).map_err(|e| ApiError::internal(e.to_string()))?;
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
