//! Publication of checkpoints: C2SP tlog-witness cosigning, the k-of-n witness quorum, and the
//! witnesses' RFC 3161 timestamp tokens.
//!
//! Each checkpoint the integrator signs is sent to every witness concurrently
//! (`POST <witness>/add-checkpoint`, tlog-witness §"add-checkpoint"), with the size that witness
//! last cosigned as the old size and a consistency proof from it. A `409 Conflict` names the
//! size the witness knows and the request is sent again from it. Cosignatures are verified with
//! the witness's key before they count. Once `k` witnesses cosigned, the checkpoint is published
//! (with every cosignature collected) and the witnesses' timestamp tokens for it are fetched
//! (`GET <witness>/timestamps/<origin>/<size>`) and stored, so that receipts carry them.
//!
//! Witnesses never hold up sequencing: a witness that is down only delays publication, which is
//! retried with backoff, counted in the metrics and logged.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::merkle::consistency_proof;
use cairn_spec::note::{Note, NoteSignature};
use cairn_spec::timestamp::{checkpoint_imprint, verify_token, Expectation};
use cairn_spec::witness::{parse_conflict_body, parse_cosignature_response, AddCheckpointRequest};
use cairn_spec::Hash;
use tokio::sync::watch;

use crate::health::Status;
use crate::integrator::StoreHashes;
use crate::metrics::Metrics;
use crate::storage::objects::ObjectDir;
use crate::storage::{LogStore, StoredCheckpoint};

/// The largest answer read from a witness, in bytes.
const MAX_WITNESS_RESPONSE: usize = 1 << 20;
/// The most timestamp tokens stored per witness and checkpoint.
const MAX_TOKENS_PER_WITNESS: usize = 4;

/// A witness the log asks to cosign.
#[derive(Clone, Debug)]
pub struct Witness {
    /// Its name in the log's state and metrics (the key name of its vkey).
    pub name: String,
    /// Its base URL, without a final slash.
    pub url: String,
    /// Checks its cosignatures: each of its keys (across a rotation, the old and the new).
    pub verifier: crate::config::WitnessKeys,
}

/// The latest published checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// Its tree size.
    pub size: u64,
    /// Its root hash.
    pub root: Hash,
    /// The signed note with the witnesses' cosignatures.
    pub note: String,
}

/// The timestamp tokens of published checkpoints, between the publisher and the receipts of
/// `?wait=checkpoint`: the size whose tokens were fetched last (a round over every witness,
/// done after each publication), and asks to fetch the published checkpoint's tokens again
/// (a witness's TSA may answer after the witness answered the log).
#[derive(Debug)]
pub struct TokenRounds {
    fetched: watch::Sender<Option<u64>>,
    wanted: tokio::sync::Notify,
}

impl TokenRounds {
    /// Rounds, the last of them (if any) over the checkpoint of `size`.
    pub fn new(size: Option<u64>) -> TokenRounds {
        TokenRounds {
            fetched: watch::Sender::new(size),
            wanted: tokio::sync::Notify::new(),
        }
    }

    /// Sees each round end: the size whose tokens were fetched last.
    pub fn subscribe(&self) -> watch::Receiver<Option<u64>> {
        self.fetched.subscribe()
    }

    /// Asks for one more round over the published checkpoint (asks made during a round
    /// count as one).
    pub fn want_more(&self) {
        self.wanted.notify_one();
    }

    fn done(&self, size: u64) {
        self.fetched.send_replace(Some(size));
    }
}

/// The shortest pause before a round that was asked for, so that waiting clients cannot make
/// the log ask its witnesses in a loop.
const ROUND_PAUSE: Duration = Duration::from_millis(100);

/// How the publisher works.
#[derive(Clone, Debug)]
pub struct PublisherConfig {
    /// The witnesses.
    pub witnesses: Vec<Witness>,
    /// How many must cosign before a checkpoint is published (0: publish at once).
    pub quorum: usize,
    /// Timeout of one request to a witness.
    pub request_timeout: Duration,
    /// The longest wait between two rounds when the quorum was not met.
    pub max_backoff: Duration,
    /// CA certificates trusted for witnesses' HTTPS beside the public roots.
    pub roots: Vec<reqwest::Certificate>,
}

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
}

/// The checkpoint to serve right after a start: the latest signed one with the cosignatures
/// stored for it, if those still verify with the configured witnesses' keys and meet the
/// quorum. Without it a restarted log would answer 404 on `/checkpoint` until its witnesses had
/// all been asked again. `None` when that checkpoint was never published (or its witnesses
/// changed): the publisher then publishes it as usual.
pub fn restore(
    store: &dyn LogStore,
    config: &PublisherConfig,
) -> Result<Option<Published>, crate::storage::StoreError> {
    let Some(stored) = store.latest_checkpoint()? else {
        return Ok(None);
    };
    let Ok(mut note) = Note::parse(&stored.note) else {
        return Ok(None);
    };
    let Ok(checkpoint) = Checkpoint::from_note(&note) else {
        return Ok(None);
    };
    let stored_lines = store.cosignatures(checkpoint.size)?;
    let mut cosigned = 0usize;
    for witness in &config.witnesses {
        let Some((_, line)) = stored_lines.iter().find(|(name, _)| *name == witness.name) else {
            continue;
        };
        let Some(signature) = std::str::from_utf8(line)
            .ok()
            .and_then(|line| NoteSignature::parse_line(line.trim_end_matches('\n')).ok())
        else {
            continue;
        };
        if witness
            .verifier
            .verify_cosignature(&checkpoint, &signature)
            .is_ok()
            && note.add_signature(signature).is_ok()
        {
            cosigned += 1;
        }
    }
    if cosigned < config.quorum {
        return Ok(None);
    }
    let Ok(bytes) = note.to_bytes() else {
        return Ok(None);
    };
    Ok(String::from_utf8(bytes).ok().map(|note| Published {
        size: checkpoint.size,
        root: checkpoint.root,
        note,
    }))
}

/// Runs until `published` closes: writes each published checkpoint's tiles, entry bundles and
/// note into `objects` (see [`ObjectDir`]), the latest first if several were published
/// meanwhile. A failed write (a full disk) is retried with growing pauses until it succeeds,
/// whether or not new checkpoints come. The first round writes the checkpoint published before
/// a restart, which also writes whatever a crash left out.
pub async fn write_objects(
    store: Arc<dyn LogStore>,
    objects: Arc<ObjectDir>,
    mut published: watch::Receiver<Option<Published>>,
    status: Arc<Status>,
) {
    const FIRST_PAUSE: Duration = Duration::from_millis(100);
    const MAX_PAUSE: Duration = Duration::from_secs(5);
    let mut retry: Option<Duration> = None;
    published.mark_changed();
    loop {
        match retry {
            None => {
                if published.changed().await.is_err() {
                    return;
                }
            }
            Some(pause) => {
                tokio::select! {
                    _ = tokio::time::sleep(pause) => {}
                    changed = published.changed() => if changed.is_err() { return; },
                }
            }
        }
        let Some(latest) = published.borrow_and_update().clone() else {
            continue;
        };
        let (store, objects) = (Arc::clone(&store), Arc::clone(&objects));
        let written = tokio::task::spawn_blocking(move || {
            objects.publish(store.as_ref(), latest.size, latest.note.as_bytes())
        })
        .await
        .unwrap_or_else(|error| {
            Err(crate::storage::StoreError::BadConfig(format!(
                "the object task failed: {error}"
            )))
        });
        match written {
            Ok(()) => {
                retry = None;
                if let Some(reason) = status.recovered() {
                    tracing::info!(%reason, "the tile objects are written again");
                }
            }
            Err(error) => {
                if !status.failed(Some(error.to_string())) {
                    tracing::error!(%error, "writing the tile objects failed; retrying");
                }
                retry = Some(retry.map_or(FIRST_PAUSE, |pause| (pause * 2).min(MAX_PAUSE)));
            }
        }
    }
}

/// Runs until `signed` closes: publishes every signed checkpoint once the quorum cosigned it,
/// then fetches its timestamp tokens (and again for the published one when `tokens` asks).
pub async fn run(
    store: Arc<dyn LogStore>,
    mut signed: watch::Receiver<Option<StoredCheckpoint>>,
    config: PublisherConfig,
    (published, tokens): (watch::Sender<Option<Published>>, Arc<TokenRounds>),
    metrics: Arc<Metrics>,
) {
    let mut builder = reqwest::Client::builder().timeout(config.request_timeout);
    for root in &config.roots {
        builder = builder.add_root_certificate(root.clone());
    }
    let client = builder.build().unwrap_or_else(|error| {
        tracing::error!(%error, "the witness client could not be built with witness_ca_file's certificates; only public roots are trusted");
        reqwest::Client::default()
    });
    let mut backoff = Duration::from_millis(200);
    loop {
        let Some(checkpoint) = signed.borrow_and_update().clone() else {
            if signed.changed().await.is_err() {
                return;
            }
            continue;
        };
        let already = published.borrow().as_ref().map(|p| p.size);
        if already.is_some_and(|size| size >= checkpoint.size) {
            tokio::select! {
                changed = signed.changed() => if changed.is_err() { return; },
                () = tokens.wanted.notified() => {
                    tokio::time::sleep(ROUND_PAUSE).await;
                    let latest = published.borrow().clone();
                    if let Some(latest) = latest {
                        fetch_tokens(&store, latest.size, latest.note.as_bytes(), &config, &client)
                            .await;
                        tokens.done(latest.size);
                    }
                }
            }
            continue;
        }
        match publish_one(&store, &checkpoint, &config, &client, &metrics).await {
            Ok(done) => {
                metrics.set_published(done.size);
                published.send_replace(Some(done));
                backoff = Duration::from_millis(200);
                fetch_tokens(&store, checkpoint.size, &checkpoint.note, &config, &client).await;
                tokens.done(checkpoint.size);
            }
            Err(problem) => {
                tracing::warn!(size = checkpoint.size, %problem, "checkpoint not published yet; retrying");
                metrics
                    .publication_failures
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    changed = signed.changed() => if changed.is_err() { return; },
                }
                backoff = (backoff * 2).min(config.max_backoff);
            }
        }
    }
}

async fn publish_one(
    store: &Arc<dyn LogStore>,
    stored: &StoredCheckpoint,
    config: &PublisherConfig,
    client: &reqwest::Client,
    metrics: &Arc<Metrics>,
) -> Result<Published, String> {
    let text = String::from_utf8(stored.note.clone()).map_err(|_| "the note is not UTF-8")?;
    let mut note = Note::parse(text.as_bytes()).map_err(|e| e.to_string())?;
    let checkpoint = Checkpoint::from_note(&note).map_err(|e| e.to_string())?;
    let mut attempts = Vec::with_capacity(config.witnesses.len());
    for witness in &config.witnesses {
        let (store, witness, note, checkpoint, client) = (
            store.clone(),
            witness.clone(),
            note.clone(),
            checkpoint.clone(),
            client.clone(),
        );
        attempts.push(tokio::spawn(async move {
            let started = Instant::now();
            let result = cosign(&store, &witness, &note, &checkpoint, &client).await;
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

async fn cosign(
    store: &Arc<dyn LogStore>,
    witness: &Witness,
    note: &Note,
    checkpoint: &Checkpoint,
    client: &reqwest::Client,
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
    for _attempt in 0..4 {
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
                if _attempt == 3 {
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
fn escape_path(origin: &str) -> String {
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
async fn fetch_tokens(
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
