//! Anchoring cosigned checkpoints in time: RFC 3161 timestamps from every configured TSA.
//!
//! For each checkpoint it cosigns, the witness asks each TSA for a timestamp over the
//! checkpoint's imprint (`cairn_spec::timestamp::checkpoint_imprint`, SHA-256 of the note
//! body), with a fresh random nonce, by HTTP POST of an `application/timestamp-query`
//! (RFC 3161 §3.4). It verifies each response fully (status, imprint, nonce, signature, the
//! signer's timeStamping EKU, the chain to the TSA's configured trust anchor) before storing
//! the token, and retries failures with exponential backoff up to a bound.
//!
//! Anchoring is background work: jobs go through a bounded queue, so a slow or dead TSA can
//! neither hold a cosignature back (the handler waits at most a small bound) nor make the
//! witness's memory grow without limit (a full queue drops the job and counts it).
//!
//! It also says whether anchoring works ([`Anchorer::failing`]): each TSA is failing from its
//! first failed attempt until it gives a token again, and anchoring has failed once every TSA
//! has been failing for longer than [`AnchorSettings::not_ready_after`]. `/readyz` reads that.

use crate::metrics::Metrics;
use crate::store::Store;
use cairn_spec::timestamp::{
    checkpoint_imprint, verify_response, Expectation, ObjectIdentifier, TimestampRequest,
    TrustAnchors, MAX_TOKEN_SIZE,
};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot, Semaphore};

/// The RFC 3161 §3.4 media type of a request.
pub const TIMESTAMP_QUERY_TYPE: &str = "application/timestamp-query";
/// The RFC 3161 §3.4 media type of a response.
pub const TIMESTAMP_REPLY_TYPE: &str = "application/timestamp-reply";

/// A timestamp authority the witness uses.
#[derive(Clone, Debug)]
pub struct TsaEndpoint {
    /// A short name, the key its tokens are stored and served under.
    pub name: String,
    /// Where to POST requests.
    pub url: String,
    /// The roots its certificate must chain to.
    pub trust_anchors: Arc<TrustAnchors>,
    /// The policy to ask for, if the TSA needs one named.
    pub policy: Option<ObjectIdentifier>,
    /// CA certificates trusted for its https:// URL beside the public roots (a private CA).
    /// The witness has one HTTP client for all TSAs, which trusts every TSA's.
    pub https_roots: Vec<reqwest::Certificate>,
}

/// How hard the witness tries.
#[derive(Clone, Copy, Debug)]
pub struct AnchorSettings {
    /// Timeout of one HTTP exchange with a TSA.
    pub request_timeout: Duration,
    /// Attempts per checkpoint and TSA, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled after each failure.
    pub initial_backoff: Duration,
    /// The longest wait between attempts.
    pub max_backoff: Duration,
    /// Checkpoints that may wait for anchoring.
    pub queue_capacity: usize,
    /// Checkpoints anchored at once.
    pub concurrency: usize,
}

impl AnchorSettings {
    /// How long every TSA must have been failing before anchoring counts as failed (and the
    /// witness as not ready): several attempt intervals, three request timeouts, at least 10 s.
    /// A single failed attempt, or a TSA that fails while another gives tokens, does not count.
    pub fn not_ready_after(&self) -> Duration {
        (self.request_timeout * 3)
            .max(self.initial_backoff * 5)
            .max(Duration::from_secs(10))
    }
}

impl Default for AnchorSettings {
    fn default() -> AnchorSettings {
        AnchorSettings {
            request_timeout: Duration::from_secs(10),
            max_attempts: 6,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            queue_capacity: 4096,
            concurrency: 64,
        }
    }
}

struct Job {
    origin: String,
    size: u64,
    note_body: Vec<u8>,
    done: oneshot::Sender<()>,
}

/// The handle to the anchoring worker.
#[derive(Clone)]
pub struct Anchorer {
    jobs: mpsc::Sender<Job>,
    metrics: Arc<Metrics>,
    health: Arc<AnchorHealth>,
}

/// Per TSA, since when and why its attempts fail (none while it gives tokens).
struct AnchorHealth {
    tsas: Vec<String>,
    failing: Mutex<BTreeMap<String, (Instant, String)>>,
    grace: Duration,
}

impl AnchorHealth {
    fn with<R>(&self, update: impl FnOnce(&mut BTreeMap<String, (Instant, String)>) -> R) -> R {
        let mut failing = self
            .failing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        update(&mut failing)
    }

    fn failed(&self, tsa: &str, reason: String) {
        self.with(|failing| {
            failing
                .entry(tsa.to_owned())
                .and_modify(|(_, last)| last.clone_from(&reason))
                .or_insert_with(|| (Instant::now(), reason));
        });
    }

    fn succeeded(&self, tsa: &str) {
        self.with(|failing| failing.remove(tsa));
    }

    fn failing(&self, now: Instant) -> Option<String> {
        self.with(|failing| {
            let mut since = None;
            let mut reasons = Vec::new();
            for tsa in &self.tsas {
                let (started, reason) = failing.get(tsa)?;
                since = since.max(Some(*started));
                reasons.push(format!("{tsa}: {reason}"));
            }
            let since = since?;
            (now.duration_since(since) > self.grace).then(|| {
                format!(
                    "timestamping fails: no TSA gave a token for over {} s ({})",
                    self.grace.as_secs(),
                    reasons.join("; ")
                )
            })
        })
    }
}

/// Why one attempt failed.
#[derive(Debug, thiserror::Error)]
enum AttemptError {
    #[error("HTTP exchange failed: {0}")]
    Transport(#[from] reqwest::Error),
    #[error("TSA answered HTTP {0}")]
    Status(u16),
    #[error("response is larger than {MAX_TOKEN_SIZE} bytes")]
    TooLarge,
    #[error("response does not verify: {0}")]
    Verify(#[from] cairn_spec::timestamp::TimestampError),
    #[error("token could not be stored: {0}")]
    Store(#[from] crate::store::StoreError),
}

impl AttemptError {
    fn kind(&self) -> &'static str {
        match self {
            AttemptError::Transport(_) => "transport",
            AttemptError::Status(_) => "status",
            AttemptError::TooLarge | AttemptError::Verify(_) => "verify",
            AttemptError::Store(_) => "store",
        }
    }
}

impl Anchorer {
    /// Starts the worker on the current tokio runtime. With no TSAs, returns `None`.
    pub fn start(
        store: Store,
        metrics: Arc<Metrics>,
        tsas: Vec<TsaEndpoint>,
        settings: AnchorSettings,
    ) -> Result<Option<Anchorer>, reqwest::Error> {
        if tsas.is_empty() {
            return Ok(None);
        }
        let mut client = reqwest::Client::builder().timeout(settings.request_timeout);
        for root in tsas.iter().flat_map(|tsa| &tsa.https_roots) {
            client = client.add_root_certificate(root.clone());
        }
        let client = client.build()?;
        let (jobs, mut queue) = mpsc::channel::<Job>(settings.queue_capacity.max(1));
        let health = Arc::new(AnchorHealth {
            tsas: tsas.iter().map(|tsa| tsa.name.clone()).collect(),
            failing: Mutex::default(),
            grace: settings.not_ready_after(),
        });
        let worker_health = health.clone();
        let tsas = Arc::new(tsas);
        let worker_metrics = metrics.clone();
        tokio::spawn(async move {
            let running = Arc::new(Semaphore::new(settings.concurrency.max(1)));
            while let Some(job) = queue.recv().await {
                let Ok(permit) = running.clone().acquire_owned().await else {
                    break;
                };
                let tsas = tsas.clone();
                let client = client.clone();
                let store = store.clone();
                let metrics = worker_metrics.clone();
                let health = worker_health.clone();
                tokio::spawn(async move {
                    let job = Arc::new(job);
                    let mut attempts = tokio::task::JoinSet::new();
                    for index in 0..tsas.len() {
                        let (client, store, metrics, health, job, tsas) = (
                            client.clone(),
                            store.clone(),
                            metrics.clone(),
                            health.clone(),
                            job.clone(),
                            tsas.clone(),
                        );
                        attempts.spawn(async move {
                            let context = Context {
                                client: &client,
                                store: &store,
                                metrics: &metrics,
                                health: &health,
                            };
                            anchor_with(&context, &tsas[index], &job, settings).await
                        });
                    }
                    while attempts.join_next().await.is_some() {}
                    drop(permit);
                    if let Ok(job) = Arc::try_unwrap(job) {
                        let _ = job.done.send(());
                    }
                });
            }
        });
        Ok(Some(Anchorer {
            jobs,
            metrics,
            health,
        }))
    }

    /// Why anchoring has failed, if every TSA has been failing for longer than
    /// [`AnchorSettings::not_ready_after`]; cleared when one gives a token again.
    pub fn failing(&self) -> Option<String> {
        self.health.failing(Instant::now())
    }

    /// Queues the checkpoint of `origin` at `size` (whose note body is `note_body`) for
    /// anchoring. The receiver completes when every TSA gave a token or up. If the queue is
    /// full the checkpoint is not anchored, and counted.
    pub fn submit(
        &self,
        origin: &str,
        size: u64,
        note_body: Vec<u8>,
    ) -> Option<oneshot::Receiver<()>> {
        let (done, finished) = oneshot::channel();
        let job = Job {
            origin: origin.to_owned(),
            size,
            note_body,
            done,
        };
        match self.jobs.try_send(job) {
            Ok(()) => Some(finished),
            Err(_) => {
                self.metrics.count_anchor_queue_full();
                tracing::warn!(
                    origin,
                    size,
                    "anchoring queue full: checkpoint not timestamped"
                );
                None
            }
        }
    }
}

/// What an anchoring task works with.
struct Context<'a> {
    client: &'a reqwest::Client,
    store: &'a Store,
    metrics: &'a Metrics,
    health: &'a AnchorHealth,
}

async fn anchor_with(
    context: &Context<'_>,
    tsa: &TsaEndpoint,
    job: &Job,
    settings: AnchorSettings,
) {
    let Context {
        client,
        store,
        metrics,
        health,
    } = context;
    let imprint = checkpoint_imprint(&job.note_body);
    let mut backoff = settings.initial_backoff;
    for attempt in 1..=settings.max_attempts.max(1) {
        let started = Instant::now();
        match attempt_once(client, tsa, store, job, imprint).await {
            Ok(()) => {
                metrics.observe_tsa_success(&tsa.name, started.elapsed());
                health.succeeded(&tsa.name);
                return;
            }
            Err(error) => {
                metrics.count_tsa_failure(&tsa.name, error.kind());
                health.failed(&tsa.name, error.to_string());
                tracing::warn!(
                    tsa = %tsa.name, origin = %job.origin, size = job.size, attempt,
                    "timestamp attempt failed: {error}"
                );
            }
        }
        if attempt < settings.max_attempts {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(settings.max_backoff);
        }
    }
    metrics.count_tsa_given_up(&tsa.name);
    tracing::error!(
        tsa = %tsa.name, origin = %job.origin, size = job.size,
        "no timestamp after {} attempts", settings.max_attempts
    );
}

async fn attempt_once(
    client: &reqwest::Client,
    tsa: &TsaEndpoint,
    store: &Store,
    job: &Job,
    imprint: [u8; 32],
) -> Result<(), AttemptError> {
    let nonce: u64 = rand::random();
    let request = TimestampRequest::for_imprint(imprint, nonce, tsa.policy).to_der();
    let mut response = client
        .post(&tsa.url)
        .header(reqwest::header::CONTENT_TYPE, TIMESTAMP_QUERY_TYPE)
        .body(request)
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(AttemptError::Status(response.status().as_u16()));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_TOKEN_SIZE {
            return Err(AttemptError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    let verified = verify_response(
        &body,
        &Expectation {
            imprint,
            nonce: Some(nonce),
            trust_anchors: Some(&tsa.trust_anchors),
        },
    )?;
    store
        .record_token(&job.origin, job.size, &tsa.name, &verified.token_der)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(tsas: &[&str]) -> AnchorHealth {
        AnchorHealth {
            tsas: tsas.iter().map(|name| name.to_string()).collect(),
            failing: Mutex::default(),
            grace: Duration::from_secs(10),
        }
    }

    #[test]
    fn anchoring_fails_only_when_every_tsa_has_failed_for_longer_than_the_grace() {
        let health = health(&["tsa-1", "tsa-2"]);
        let later = Instant::now() + Duration::from_secs(11);
        assert_eq!(health.failing(later), None);
        health.failed("tsa-1", "refused".into());
        assert_eq!(health.failing(later), None, "tsa-2 still gives tokens");
        health.failed("tsa-2", "timed out".into());
        assert_eq!(health.failing(Instant::now()), None, "within the grace");
        let problem = health.failing(later).expect("failed");
        assert!(
            problem.contains("tsa-1: refused") && problem.contains("tsa-2: timed out"),
            "{problem}"
        );
        health.succeeded("tsa-2");
        assert_eq!(health.failing(later), None, "a token clears it");
    }

    #[test]
    fn the_grace_is_several_attempt_intervals_and_at_least_ten_seconds() {
        let settings = AnchorSettings {
            request_timeout: Duration::from_millis(500),
            ..AnchorSettings::default()
        };
        assert_eq!(settings.not_ready_after(), Duration::from_secs(10));
        assert_eq!(
            AnchorSettings::default().not_ready_after(),
            Duration::from_secs(30)
        );
    }
}
