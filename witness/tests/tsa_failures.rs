//! A timestamp authority that fails, over real HTTP on loopback: down (a closed port), slow
//! (beyond the request timeout), answering garbage, an HTTP error, an oversized body, a
//! rejection, a valid token with the wrong nonce, or a valid token over another imprint.
//!
//! Whatever the TSA does, the witness keeps cosigning (an add-checkpoint answer waits at most
//! `anchor_wait` for timestamps), counts each failed attempt in /metrics by kind, retries with
//! a growing backoff, and stores no token that does not verify; when the TSA behaves again the
//! token arrives. A full anchoring queue drops timestamping work, never a cosignature.

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::CosignatureSigner;
use cairn_spec::hash::Hash;
use cairn_spec::merkle::consistency_proof;
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::timestamp::{
    checkpoint_imprint, verify_token, Expectation, TimestampRequest, TrustAnchors,
};
use cairn_spec::witness::format_add_checkpoint_request;
use cairn_witness::anchor::{AnchorSettings, TsaEndpoint};
use cairn_witness::store::Store;
use cairn_witness::tsa::Authority;
use cairn_witness::{start_witness, LogSpec};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

const ORIGIN: &str = "example.com/tsa-failures";
const TSA: &str = "flaky";
/// How long an add-checkpoint answer may wait for timestamps.
const ANCHOR_WAIT: Duration = Duration::from_millis(300);
/// The wait before the second attempt; doubles after each failure.
const INITIAL_BACKOFF: Duration = Duration::from_millis(40);
/// A bound on an add-checkpoint answer far below what a hanging TSA would cost (it sleeps
/// [`SLOW_TSA_DELAY`]) and far above `ANCHOR_WAIT` plus the work of a cosignature.
const ANSWER_BOUND: Duration = Duration::from_secs(5);
const SLOW_TSA_DELAY: Duration = Duration::from_secs(120);

/// What the test TSA does with a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum Behaviour {
    /// Answers like `cairn-witness tsa serve`.
    Healthy = 0,
    /// Answers after [`SLOW_TSA_DELAY`].
    Slow,
    /// Answers 200 with bytes that are not DER.
    Garbage,
    /// Answers 503.
    ServerError,
    /// Answers 200 with a body of several MiB.
    Oversized,
    /// Answers a TimeStampResp with status rejection.
    Rejection,
    /// Answers a valid token for the imprint asked, with another nonce.
    WrongNonce,
    /// Answers a valid token with the nonce asked, over another imprint.
    WrongImprint,
}

impl Behaviour {
    const ALL: [Behaviour; 8] = [
        Behaviour::Healthy,
        Behaviour::Slow,
        Behaviour::Garbage,
        Behaviour::ServerError,
        Behaviour::Oversized,
        Behaviour::Rejection,
        Behaviour::WrongNonce,
        Behaviour::WrongImprint,
    ];
}

struct FlakyTsa {
    authority: Authority,
    behaviour: AtomicU8,
    /// When each request arrived.
    arrivals: Mutex<Vec<Instant>>,
}

impl FlakyTsa {
    fn behave(&self, behaviour: Behaviour) {
        self.behaviour.store(behaviour as u8, Ordering::SeqCst);
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().expect("not poisoned").clone()
    }
}

async fn answer(State(tsa): State<Arc<FlakyTsa>>, body: Bytes) -> Response {
    tsa.arrivals
        .lock()
        .expect("not poisoned")
        .push(Instant::now());
    let behaviour = Behaviour::ALL[usize::from(tsa.behaviour.load(Ordering::SeqCst))];
    let reply = |der: Vec<u8>| {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/timestamp-reply")],
            der,
        )
            .into_response()
    };
    let request = TimestampRequest::from_der(&body).expect("the witness sends valid requests");
    let imprint: [u8; 32] = request.imprint().try_into().expect("SHA-256 imprint");
    let nonce = common::nonce_as_u64(request.nonce().expect("the witness sends a nonce"));
    let issue = |imprint: [u8; 32], nonce: u64| {
        tsa.authority
            .answer(&TimestampRequest::for_imprint(imprint, nonce, None).to_der())
            .expect("the test TSA issues")
    };
    match behaviour {
        Behaviour::Healthy => reply(tsa.authority.answer(&body).expect("issues")),
        Behaviour::Slow => {
            tokio::time::sleep(SLOW_TSA_DELAY).await;
            reply(tsa.authority.answer(&body).expect("issues"))
        }
        Behaviour::Garbage => reply(b"\x30\x82garbage, not a TimeStampResp".repeat(20)),
        Behaviour::ServerError => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        Behaviour::Oversized => reply(vec![0x30; 4 << 20]),
        Behaviour::Rejection => reply(tsa.authority.answer(b"not a request").expect("rejects")),
        Behaviour::WrongNonce => reply(issue(imprint, nonce.wrapping_add(1))),
        Behaviour::WrongImprint => {
            let mut other = imprint;
            other[0] ^= 1;
            reply(issue(other, nonce))
        }
    }
}

/// A log of a few leaves, to make consistent checkpoints from.
struct Log {
    signer: Ed25519Signer,
    stored: Vec<Hash>,
    roots: Vec<Hash>,
}

impl Log {
    fn new(count: u64) -> Log {
        let common::Tree { stored, roots } =
            common::Tree::new(count, |index| format!("event {index}").into_bytes());
        Log {
            signer: Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [21; 32]),
            stored,
            roots,
        }
    }

    fn note_body(&self, size: u64) -> String {
        Checkpoint {
            origin: ORIGIN.to_owned(),
            size,
            root: self.roots[size as usize],
            extensions: Vec::new(),
        }
        .to_text()
        .expect("a checkpoint of this log encodes")
    }

    fn request(&self, old_size: u64, size: u64) -> Vec<u8> {
        let note = Checkpoint {
            origin: ORIGIN.to_owned(),
            size,
            root: self.roots[size as usize],
            extensions: Vec::new(),
        }
        .sign(&self.signer)
        .expect("signs");
        let proof = consistency_proof(old_size, size, &self.stored).expect("proof");
        format_add_checkpoint_request(&note, old_size, &proof).expect("request")
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    tsa: Arc<FlakyTsa>,
    tsa_socket: Mutex<Option<tokio::net::TcpSocket>>,
    anchors: Arc<TrustAnchors>,
    store: Store,
    url: String,
    client: reqwest::Client,
    log: Log,
}

/// Makes the flaky TSA (not yet listening) and a witness that uses it.
async fn setup(settings: AnchorSettings) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let (authority, anchors) = common::test_tsa(&dir.path().join("tsa"), "Flaky TSA");
    // The TSA's port, held but not listening: connections to it are refused until
    // `bring_tsa_up`, and no other socket can take it meanwhile.
    let tsa_socket = tokio::net::TcpSocket::new_v4().expect("socket");
    tsa_socket
        .bind("127.0.0.1:0".parse().expect("address"))
        .expect("binds");
    let tsa_address = tsa_socket.local_addr().expect("address");
    let log = Log::new(16);
    let store = Store::open(&dir.path().join("db")).expect("store");
    let witness = start_witness(
        store.clone(),
        std::sync::Arc::new(
            CosignatureSigner::from_seed(
                KeyName::new("witness.example/w").expect("name"),
                [22; 32],
            )
            .into(),
        ),
        vec![LogSpec {
            origin: ORIGIN.to_owned(),
            verifiers: vec![log.signer.verifier()],
        }],
        vec![TsaEndpoint {
            name: TSA.to_owned(),
            url: format!("http://{tsa_address}/"),
            trust_anchors: anchors.clone(),
            policy: None,
            https_roots: Vec::new(),
        }],
        settings,
        ANCHOR_WAIT,
    )
    .expect("starts");
    let url = common::serve(cairn_witness::http::router(witness)).await;
    Setup {
        _dir: dir,
        tsa: Arc::new(FlakyTsa {
            authority,
            behaviour: AtomicU8::new(Behaviour::Healthy as u8),
            arrivals: Mutex::new(Vec::new()),
        }),
        tsa_socket: Mutex::new(Some(tsa_socket)),
        anchors,
        store,
        url,
        client: reqwest::Client::new(),
        log,
    }
}

fn settings() -> AnchorSettings {
    AnchorSettings {
        request_timeout: Duration::from_millis(250),
        max_attempts: 40,
        initial_backoff: INITIAL_BACKOFF,
        max_backoff: Duration::from_millis(400),
        ..AnchorSettings::default()
    }
}

impl Setup {
    /// Starts serving the flaky TSA on its address (again, after a "down" phase).
    async fn bring_tsa_up(&self) {
        let listener = self
            .tsa_socket
            .lock()
            .expect("not poisoned")
            .take()
            .expect("the TSA comes up once")
            .listen(64)
            .expect("listens");
        let app = Router::new()
            .route("/", post(answer))
            .with_state(self.tsa.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.expect("serves") });
    }

    /// Posts add-checkpoint from `old_size` to `size`: it must be cosigned, within the bound.
    async fn cosign(&self, old_size: u64, size: u64) {
        let started = Instant::now();
        let response = self
            .client
            .post(format!("{}/add-checkpoint", self.url))
            .body(self.log.request(old_size, size))
            .send()
            .await
            .expect("the witness answers");
        let elapsed = started.elapsed();
        assert_eq!(response.status().as_u16(), 200, "size {size}");
        assert!(
            response
                .text()
                .await
                .expect("body")
                .starts_with("— witness.example/w "),
            "a cosignature line"
        );
        assert!(
            elapsed < ANSWER_BOUND,
            "add-checkpoint took {elapsed:?} while the TSA failed"
        );
    }

    async fn metrics(&self) -> String {
        common::scrape_metrics(&self.client, &self.url).await
    }

    /// The value of the failure counter of `kind`, 0 if absent.
    async fn failures(&self, kind: &str) -> u64 {
        counter(
            &self.metrics().await,
            &format!("cairn_witness_tsa_failures_total{{tsa=\"{TSA}\",kind=\"{kind}\"}}"),
        )
    }

    /// Waits until `condition` holds of the witness's metrics, or fails.
    async fn wait_for_metrics(&self, what: &str, condition: impl Fn(&str) -> bool) {
        let condition = &condition;
        common::wait_until(what, Duration::from_millis(20), move || async move {
            let metrics = self.metrics().await;
            if condition(&metrics) {
                Ok(())
            } else {
                Err(metrics)
            }
        })
        .await;
    }

    /// Waits until the token of the checkpoint at `size` is stored and served, and checks it.
    async fn wait_for_token(&self, size: u64) {
        let (http, base) = (&self.client, self.url.as_str());
        let document = common::wait_until(
            &format!("a token for size {size}"),
            Duration::from_millis(20),
            move || async move {
                let (document, text) = common::timestamps(http, base, ORIGIN, size).await;
                if common::tokens_in(&document) > 0 {
                    Ok(document)
                } else {
                    Err(text)
                }
            },
        )
        .await;
        assert_eq!(document["tokens"][0]["tsa"], TSA);
        let stored = self.store.tokens(ORIGIN, size).expect("reads");
        assert_eq!(stored.len(), 1);
        self.check_token(size, &stored[0].token_der);
    }

    fn check_token(&self, size: u64, token: &[u8]) {
        verify_token(
            token,
            &Expectation {
                imprint: checkpoint_imprint(self.log.note_body(size).as_bytes()),
                nonce: None,
                trust_anchors: Some(&self.anchors),
            },
        )
        .expect("a stored token verifies over its checkpoint");
    }
}

fn counter(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series))
        .map_or(0, |value| value.trim().parse().expect("a counter value"))
}

/// The gaps between the arrivals are at least the backoff schedule: each attempt waits the
/// one before's backoff, doubled, up to the maximum.
fn assert_backs_off(arrivals: &[Instant], settings: &AnchorSettings) {
    let mut backoff = settings.initial_backoff;
    for pair in arrivals.windows(2) {
        let gap = pair[1] - pair[0];
        assert!(
            gap >= backoff,
            "attempts {gap:?} apart, less than the backoff {backoff:?}: {arrivals:?}"
        );
        backoff = (backoff * 2).min(settings.max_backoff);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_tsa_never_holds_cosigning_back_and_its_token_arrives_when_it_returns() {
    let setup = setup(settings()).await;
    for size in 1..=3 {
        setup.cosign(size - 1, size).await;
    }
    setup
        .wait_for_metrics("three connection failures", |metrics| {
            counter(
                metrics,
                &format!("cairn_witness_tsa_failures_total{{tsa=\"{TSA}\",kind=\"transport\"}}"),
            ) >= 6
        })
        .await;
    for size in 1..=3 {
        assert!(setup.store.tokens(ORIGIN, size).expect("reads").is_empty());
    }
    setup.bring_tsa_up().await;
    for size in 1..=3 {
        setup.wait_for_token(size).await;
    }
    assert_eq!(
        setup
            .store
            .latest(ORIGIN)
            .expect("reads")
            .map(|r| r.state.size),
        Some(3)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_tsa_times_out_and_never_holds_cosigning_back() {
    let setup = setup(settings()).await;
    setup.tsa.behave(Behaviour::Slow);
    setup.bring_tsa_up().await;
    for size in 1..=3 {
        setup.cosign(size - 1, size).await;
    }
    setup
        .wait_for_metrics("timeouts counted", |metrics| {
            counter(
                metrics,
                &format!("cairn_witness_tsa_failures_total{{tsa=\"{TSA}\",kind=\"transport\"}}"),
            ) >= 6
        })
        .await;
    assert!(setup.store.tokens(ORIGIN, 1).expect("reads").is_empty());
    setup.tsa.behave(Behaviour::Healthy);
    for size in 1..=3 {
        setup.wait_for_token(size).await;
    }
}

/// One checkpoint cosigned while the TSA misbehaves as `behaviour`: failures of `kind` are
/// counted, retried with backoff, nothing is stored; then the TSA heals and the token arrives.
async fn bad_answers_are_counted_retried_and_never_stored(behaviour: Behaviour, kind: &str) {
    let settings = settings();
    let setup = setup(settings).await;
    setup.tsa.behave(behaviour);
    setup.bring_tsa_up().await;
    setup.cosign(0, 4).await;
    setup
        .wait_for_metrics("three failed attempts", |metrics| {
            counter(
                metrics,
                &format!("cairn_witness_tsa_failures_total{{tsa=\"{TSA}\",kind=\"{kind}\"}}"),
            ) >= 3
        })
        .await;
    // Cosigning goes on while the TSA misbehaves.
    setup.cosign(4, 9).await;
    for size in [4, 9] {
        assert!(
            setup.store.tokens(ORIGIN, size).expect("reads").is_empty(),
            "{behaviour:?}: a bad token was stored"
        );
    }
    let metrics = setup.metrics().await;
    assert_eq!(
        counter(
            &metrics,
            &format!("cairn_witness_tsa_tokens_total{{tsa=\"{TSA}\"}}")
        ),
        0
    );
    assert_eq!(
        counter(
            &metrics,
            &format!("cairn_witness_cosigned_total{{origin=\"{ORIGIN}\"}}")
        ),
        2
    );
    setup.tsa.behave(Behaviour::Healthy);
    setup.wait_for_token(4).await;
    setup.wait_for_token(9).await;
    assert!(setup.failures(kind).await >= 3);
    // Only the attempts for the first checkpoint were alone: check their spacing.
    let arrivals = setup.tsa.arrivals();
    assert!(arrivals.len() >= 4, "{arrivals:?}");
    assert_backs_off(&arrivals[..3], &settings);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_answers_are_refused() {
    bad_answers_are_counted_retried_and_never_stored(Behaviour::Garbage, "verify").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_errors_are_counted() {
    bad_answers_are_counted_retried_and_never_stored(Behaviour::ServerError, "status").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_answers_are_refused_unread() {
    bad_answers_are_counted_retried_and_never_stored(Behaviour::Oversized, "verify").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejections_are_refused() {
    bad_answers_are_counted_retried_and_never_stored(Behaviour::Rejection, "verify").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_with_the_wrong_nonce_are_refused() {
    bad_answers_are_counted_retried_and_never_stored(Behaviour::WrongNonce, "verify").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_over_another_imprint_are_refused() {
    bad_answers_are_counted_retried_and_never_stored(Behaviour::WrongImprint, "verify").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_anchoring_queue_drops_timestamps_never_cosignatures() {
    let setup = setup(AnchorSettings {
        queue_capacity: 1,
        concurrency: 1,
        ..settings()
    })
    .await;
    setup.tsa.behave(Behaviour::Slow);
    setup.bring_tsa_up().await;
    // One job runs, one waits for it, one waits in the queue: the others are dropped.
    for size in 1..=6 {
        setup.cosign(size - 1, size).await;
    }
    let metrics = setup.metrics().await;
    assert!(
        counter(&metrics, "cairn_witness_anchor_queue_full_total") >= 1,
        "{metrics}"
    );
    assert_eq!(
        counter(
            &metrics,
            &format!("cairn_witness_cosigned_total{{origin=\"{ORIGIN}\"}}")
        ),
        6
    );
}
