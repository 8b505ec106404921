//! Talking to witnesses: asking each to cosign a checkpoint (C2SP tlog-witness
//! `add-checkpoint`, with a consistency proof from the size it last cosigned) and fetching the
//! RFC 3161 timestamp tokens they hold for a published checkpoint.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::merkle::consistency_proof;
use cairn_spec::note::{Note, NoteSignature};
use cairn_spec::timestamp::{checkpoint_imprint, verify_token, Expectation};
use cairn_spec::witness::{parse_conflict_body, parse_cosignature_response, AddCheckpointRequest};

use super::{Published, PublisherConfig, Role, Witness};
use crate::metrics::Metrics;
use crate::storage::StoreHashes;
use crate::storage::{LogStore, StoredCheckpoint};

/// The largest answer read from a witness, in bytes.
const MAX_WITNESS_RESPONSE: usize = 1 << 20;
/// The most timestamp tokens stored per witness and checkpoint.
const MAX_TOKENS_PER_WITNESS: usize = 4;

/// Why a witness did not cosign.
#[derive(Debug, thiserror::Error)]
enum WitnessError {
    #[error("request failed: {0}")]
    Http(String),
    #[error("answered {status}: {detail}")]
    Status { status: u16, detail: String },
    #[error("bad answer: {0}")]
    Answer(String),
    #[error("the witness knows size {0}, beyond this checkpoint")]
    Ahead(u64),
    #[error("store: {0}")]
    Store(String),
    #[error("this front-end lost the integrator lease: the holder asks the witnesses")]
    LeaseLost,
}

/// Asks every witness to cosign `stored` at once and stores the cosignatures that verify;
/// the published checkpoint if the quorum cosigned, why not otherwise.
pub(super) async fn publish_one(
    store: &Arc<dyn LogStore>,
    stored: &StoredCheckpoint,
    config: &PublisherConfig,
    client: &reqwest::Client,
    metrics: &Arc<Metrics>,
    role: &Role,
) -> Result<Published, String> {
    let text = String::from_utf8(stored.note.clone()).map_err(|_| "the note is not UTF-8")?;
    let mut note = Note::parse(text.as_bytes()).map_err(|e| e.to_string())?;
    let checkpoint = Checkpoint::from_note(&note).map_err(|e| e.to_string())?;
    let mut attempts = Vec::with_capacity(config.witnesses.len());
    for witness in &config.witnesses {
        let (store, witness, note, checkpoint, client, role) = (
            store.clone(),
            witness.clone(),
            note.clone(),
            checkpoint.clone(),
            client.clone(),
            role.clone(),
        );
        attempts.push(tokio::spawn(async move {
            let started = Instant::now();
            let result = cosign(&store, &witness, &note, &checkpoint, &client, &role).await;
            if let Err(error) = &result {
                tracing::warn!(witness = %witness.name, size = checkpoint.size, %error, "witness did not cosign");
            }
            let ok = result.is_ok();
            (witness, result, ok, started.elapsed())
        }));
    }
    let mut results = Vec::with_capacity(attempts.len());
    for attempt in attempts {
        results.push(
            attempt
                .await
                .map_err(|e| format!("witness task failed: {e}"))?,
        );
    }
    let mut cosigned = 0usize;
    for (witness, result, ok, elapsed) in results {
        metrics.record_witness(&witness.name, ok, elapsed);
        if let Ok(signature) = result {
            cosigned += 1;
            let line = signature.to_line();
            let store2 = store.clone();
            let name = witness.name.clone();
            let size = checkpoint.size;
            let saved = tokio::task::spawn_blocking(move || {
                store2.store_cosignature(size, &name, line.as_bytes())?;
                let old = store2.witness_size(&name)?.unwrap_or(0);
                if size > old {
                    store2.set_witness_size(&name, size)?;
                }
                Ok::<_, crate::storage::StoreError>(())
            })
            .await;
            if !matches!(saved, Ok(Ok(()))) {
                return Err(format!(
                    "could not store the cosignature of {}",
                    witness.name
                ));
            }
            note.add_signature(signature).map_err(|e| e.to_string())?;
        }
    }
    if cosigned < config.quorum {
        return Err(format!(
            "{cosigned} of {} witnesses cosigned, {} needed",
            config.witnesses.len(),
            config.quorum
        ));
    }
    let bytes = note.to_bytes().map_err(|e| e.to_string())?;
    Ok(Published {
        size: checkpoint.size,
        root: checkpoint.root,
        note: String::from_utf8(bytes).map_err(|_| "the note is not UTF-8")?,
    })
}

/// Asks `witness` to cosign, from the size it last cosigned, a few times over while it
/// fails or names another size, and while this process may still ask (`role`).
async fn cosign(
    store: &Arc<dyn LogStore>,
    witness: &Witness,
    note: &Note,
    checkpoint: &Checkpoint,
    client: &reqwest::Client,
    role: &Role,
) -> Result<NoteSignature, WitnessError> {
    let name = witness.name.clone();
    let reader = store.clone();
    let mut old_size = tokio::task::spawn_blocking(move || reader.witness_size(&name))
        .await
        .map_err(|e| WitnessError::Store(e.to_string()))?
        .map_err(|e| WitnessError::Store(e.to_string()))?
        .unwrap_or(0)
        .min(checkpoint.size);
    let mut delay = Duration::from_millis(100);
    for attempt in 0..4 {
        if attempt > 0 && !role.asks_witnesses() {
            return Err(WitnessError::LeaseLost);
        }
        let reader = store.clone();
        let new_size = checkpoint.size;
        let proof = tokio::task::spawn_blocking(move || {
            consistency_proof(old_size, new_size, &StoreHashes::new(reader.as_ref()))
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| WitnessError::Store(e.to_string()))?
        .map_err(WitnessError::Store)?;
        let body = AddCheckpointRequest::new(note.clone(), old_size, proof)
            .and_then(|request| request.to_bytes())
            .map_err(|e| WitnessError::Answer(e.to_string()))?;
        let sent = client
            .post(format!("{}/add-checkpoint", witness.url))
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
                if attempt == 3 {
                    return Err(WitnessError::Http(error.to_string()));
                }
                continue;
            }
        };
        let status = response.status().as_u16();
        let bytes = read_limited(response).await?;
        match status {
            200 => {
                let signatures = parse_cosignature_response(&bytes)
                    .map_err(|e| WitnessError::Answer(e.to_string()))?;
                for signature in signatures {
                    if witness
                        .verifier
                        .verify_cosignature(checkpoint, &signature)
                        .is_ok()
                    {
                        return Ok(signature);
                    }
                }
                return Err(WitnessError::Answer(
                    "no cosignature verified with the witness's key".into(),
                ));
            }
            409 => {
                let known =
                    parse_conflict_body(&bytes).map_err(|e| WitnessError::Answer(e.to_string()))?;
                if known > checkpoint.size {
                    return Err(WitnessError::Ahead(known));
                }
                if known == old_size {
                    return Err(WitnessError::Status {
                        status,
                        detail: "conflict at the size sent".into(),
                    });
                }
                old_size = known;
            }
            _ => {
                let detail = String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into_owned();
                if status < 500 {
                    return Err(WitnessError::Status { status, detail });
                }
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
    Err(WitnessError::Http("gave up after retries".into()))
}

/// An origin as URL path segments: RFC 3986 `pchar`s and `/` as they are, every other byte
/// percent-encoded, so that an origin with a space, `?`, `#` or `%` reaches the witness intact.
pub(super) fn escape_path(origin: &str) -> String {
    let mut escaped = String::with_capacity(origin.len());
    for byte in origin.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/".contains(&byte) {
            escaped.push(char::from(byte));
        } else {
            escaped.push_str(&format!("%{byte:02X}"));
        }
    }
    escaped
}

async fn read_limited(mut response: reqwest::Response) -> Result<Vec<u8>, WitnessError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| WitnessError::Http(e.to_string()))?
    {
        if bytes.len() + chunk.len() > MAX_WITNESS_RESPONSE {
            return Err(WitnessError::Answer(format!(
                "answer longer than {MAX_WITNESS_RESPONSE} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[derive(serde::Deserialize)]
struct TimestampsAnswer {
    size: u64,
    tokens: Vec<TokenAnswer>,
}

#[derive(serde::Deserialize)]
struct TokenAnswer {
    tsa: String,
    token: String,
}

/// Fetches and stores each witness's timestamp tokens over `checkpoint`. Best effort: a
/// receipt without tokens is still a receipt.
pub(super) async fn fetch_tokens(
    store: &Arc<dyn LogStore>,
    size: u64,
    note: &[u8],
    config: &PublisherConfig,
    client: &reqwest::Client,
) {
    let Ok(note) = Note::parse(note) else {
        return;
    };
    let imprint = checkpoint_imprint(note.text().as_bytes());
    let Some(origin) = note.text().lines().next().map(str::to_owned) else {
        return;
    };
    for witness in &config.witnesses {
        let url = format!(
            "{}/timestamps/{}/{}",
            witness.url,
            escape_path(&origin),
            size
        );
        let answer = match client.get(&url).send().await {
            Ok(response) if response.status().is_success() => read_limited(response).await,
            Ok(response) => {
                tracing::debug!(witness = %witness.name, status = %response.status(), "no timestamp tokens");
                continue;
            }
            Err(error) => Err(WitnessError::Http(error.to_string())),
        };
        let parsed = answer.and_then(|bytes| {
            serde_json::from_slice::<TimestampsAnswer>(&bytes)
                .map_err(|e| WitnessError::Answer(e.to_string()))
        });
        let answer = match parsed {
            Ok(answer) if answer.size == size => answer,
            Ok(_) => continue,
            Err(error) => {
                tracing::warn!(witness = %witness.name, %error, "could not fetch timestamp tokens");
                continue;
            }
        };
        for token in answer.tokens.into_iter().take(MAX_TOKENS_PER_WITNESS) {
            let Ok(der) = base64::engine::general_purpose::STANDARD.decode(token.token.as_bytes())
            else {
                tracing::warn!(witness = %witness.name, "a timestamp token that is not base64; not stored");
                continue;
            };
            // Only a token that is over this checkpoint and whose signature holds is stored:
            // receipts must not carry garbage. Whether its TSA is trusted is the verifier's
            // policy, which the log does not know.
            let expectation = Expectation {
                imprint,
                nonce: None,
                trust_anchors: None,
            };
            if let Err(error) = verify_token(&der, &expectation) {
                tracing::warn!(witness = %witness.name, tsa = %token.tsa, %error, "a timestamp token that does not verify; not stored");
                continue;
            }
            let store = store.clone();
            let authority = format!("{}/{}", witness.name, token.tsa);
            let _ = tokio::task::spawn_blocking(move || {
                store.store_timestamp_token(size, &authority, &der)
            })
            .await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::escape_path;

    #[test]
    fn origins_are_escaped_byte_by_byte_outside_pchar() {
        assert_eq!(escape_path("log.example/a-b_c~1"), "log.example/a-b_c~1");
        assert_eq!(
            escape_path("odd origin?#%/é"),
            "odd%20origin%3F%23%25/%C3%A9"
        );
    }
}
