//! The HTTP API over real loopback HTTP: a log server on an ephemeral port, a reqwest client.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use cairn_log::config::token_digest_hex;
use cairn_log::http::ErrorCode;
use cairn_log::publisher::Witness;
use cairn_log::sequencer::SequencerConfig;
use cairn_log::server::{RunningServer, ServerSettings};
use cairn_log::storage::Backend;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::{CosignatureSigner, CosignatureVerifier};
use cairn_spec::merkle::{verify_consistency, verify_inclusion};
use cairn_spec::note::{Ed25519Signer, KeyName, NoteVerifier};
use cairn_spec::receipt::Receipt;
use cairn_spec::tiles::{decode_entry_bundle, EntryBundle};
use cairn_spec::witness::{add_checkpoint, format_conflict_body, AddCheckpointRequest, TreeState};
use cairn_spec::Hash;
use parking_lot::Mutex;

const TOKEN: &str = "producer-token-1";
const ORIGIN: &str = "example.com/test-log";

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("valid name"), [7; 32])
}

fn settings(dir: &Path, witnesses: Vec<Witness>, quorum: usize) -> ServerSettings {
    let mut producers = HashMap::new();
    let digest = token_digest_hex(TOKEN);
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).expect("hex");
    }
    producers.insert(bytes, "billing".to_string());
    ServerSettings {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.to_path_buf(),
        storage: Backend::Embedded,
        scaled: None,
        objects_dir: Some(dir.join("objects")),
        signer: Arc::new(signer().into()),
        producers,
        max_leaf_bytes: 1024,
        max_batch_body_bytes: 64 * 1024,
        sequencer: SequencerConfig::default(),
        checkpoint_interval: Duration::from_millis(50),
        witnesses,
        quorum,
        witness_timeout: Duration::from_secs(2),
        witness_roots: Vec::new(),
        checkpoint_wait: Duration::from_secs(10),
        receipt_policy: None,
        // A log of raw leaves: its entry bundles are public.
        events: cairn_log::events::EventSettings {
            store: cairn_log::events::EventStoreConfig {
                privacy: Some(cairn_log::events::privacy::PrivacySettings {
                    public_entries: true,
                    ..cairn_log::events::privacy::PrivacySettings::in_dir(&dir.join("events"))
                }),
                ..Default::default()
            },
            ..Default::default()
        },
        edge: Default::default(),
        access: Default::default(),
        ui: Default::default(),
    }
}

/// A client of one running log.
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    fn of(server: &RunningServer) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: format!("http://{}", server.addr),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.body(body);
        }
        request.send().await.expect("request")
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path, None, None).await
    }

    /// The body of a 200 answer to `GET path`.
    async fn get_bytes(&self, path: &str) -> bytes::Bytes {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.bytes().await.expect("body")
    }

    async fn get_json(&self, path: &str) -> serde_json::Value {
        serde_json::from_slice(&self.get_bytes(path).await).expect("json")
    }

    async fn receipt(&self, path: &str) -> Receipt {
        Receipt::from_json(&self.get_bytes(path).await).expect("receipt")
    }

    /// `POST path` with the producer's token.
    async fn post(&self, path: &str, body: impl Into<Vec<u8>>) -> reqwest::Response {
        self.request(reqwest::Method::POST, path, Some(TOKEN), Some(body.into()))
            .await
    }

    async fn add(&self, leaf: &[u8]) -> serde_json::Value {
        let response = self.post("/add", leaf).await;
        assert_eq!(response.status(), 200);
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("json")
    }

    /// `GET /metrics`, read as a strict scraper reads the text format (every sample in its
    /// family, every histogram's buckets adding up), so that each scrape here checks it.
    async fn metrics(&self) -> String {
        let response = self.get("/metrics").await;
        assert_eq!(
            response.headers()["content-type"],
            "text/plain; version=0.0.4; charset=utf-8"
        );
        let text = response.text().await.expect("text");
        if let Err(error) = cairn_edge::metrics::parse(&text) {
            panic!("the metrics do not parse: {error}\n{text}");
        }
        text
    }

    async fn wait_published(&self, size: u64) -> String {
        for _ in 0..200 {
            let response = self.get("/checkpoint").await;
            if response.status() == 200 {
                let text = response.text().await.expect("text");
                let opened = Checkpoint::open(text.as_bytes(), &signer().verifier())
                    .expect("signed by the log");
                if opened.checkpoint.size >= size {
                    return text;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no checkpoint of size {size} was published");
    }
}

async fn start(dir: &Path, witnesses: Vec<Witness>, quorum: usize) -> RunningServer {
    RunningServer::start(settings(dir, witnesses, quorum))
        .await
        .expect("start")
}

fn hashes(proof: &serde_json::Value) -> Vec<Hash> {
    proof["proof"]
        .as_array()
        .expect("proof")
        .iter()
        .map(|h| Hash::from_base64(h.as_str().expect("string")).expect("hash"))
        .collect()
}

/// Checks an error answer: `status`, JSON with `code` (one of the documented codes, with that
/// status) and a detail that names no path of the server's (`dir`, its data directory, or a
/// source file).
async fn error_of(response: reqwest::Response, status: u16, code: &str, dir: &Path) {
    assert_eq!(response.status(), status, "{}", response.url());
    assert_eq!(response.headers()["content-type"], "application/json");
    let body: serde_json::Value =
        serde_json::from_slice(&response.bytes().await.expect("body")).expect("json error body");
    check_error(&body, status, code, dir);
}

fn check_error(body: &serde_json::Value, status: u16, code: &str, dir: &Path) {
    assert_eq!(body["error"], code, "{body}");
    assert!(
        ErrorCode::ALL
            .iter()
            .any(|known| known.as_str() == code && known.status().as_u16() == status),
        "{code} with {status} is no documented code"
    );
    let detail = body["detail"].as_str().expect("a detail");
    let data_dir = dir.to_str().expect("UTF-8 path");
    assert!(
        !detail.contains(data_dir) && !detail.contains(".rs"),
        "{detail}"
    );
}

/// Sends `request` as bytes on a new connection and checks its error answer as [`error_of`]
/// does (the status line's status, then the JSON body).
async fn raw_error(addr: SocketAddr, request: &[u8], status: u16, code: &str, dir: &Path) {
    let (answered, body) = raw(addr, request).await;
    assert_eq!(answered, status);
    check_error(
        &serde_json::from_slice(&body).expect("json"),
        status,
        code,
        dir,
    );
}

/// Sends `request` as bytes on a new connection and returns the status and the body of the
/// answer (read by its `Content-Length`, within 30 s).
async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let read = async {
        let mut answer = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            if let Some(end) = answer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&answer[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map(|value| value.trim().parse().expect("length"))
                    .unwrap_or(0);
                if answer.len() >= end + 4 + length {
                    let status = head[9..12].parse().expect("status");
                    return (status, answer[end + 4..end + 4 + length].to_vec());
                }
            }
            let read = stream.read(&mut buffer).await.expect("read");
            assert!(read > 0, "closed before the answer: {answer:?}");
            answer.extend_from_slice(&buffer[..read]);
        }
    };
    tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("answered within 30 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn add_sequences_leaves_and_serves_proofs_tiles_and_receipts() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), Vec::new(), 0).await;
    let api = Api::of(&server);

    let mut leaves = Vec::new();
    for i in 0..300u32 {
        let leaf = format!("event {i}").into_bytes();
        let answer = api.add(&leaf).await;
        assert_eq!(answer["index"], i);
        assert_eq!(answer["duplicate"], false);
        assert_eq!(answer["leaf_hash"], Hash::of_leaf(&leaf).to_base64());
        leaves.push(leaf);
    }
    // The same leaf again is a duplicate with the first index.
    let again = api.add(b"event 5").await;
    assert_eq!(again["index"], 5);
    assert_eq!(again["duplicate"], true);

    // A batch: big-endian u32 length-prefixed leaves.
    let mut body = Vec::new();
    for i in 300..310u32 {
        let leaf = format!("event {i}").into_bytes();
        body.extend_from_slice(&(leaf.len() as u32).to_be_bytes());
        body.extend_from_slice(&leaf);
        leaves.push(leaf);
    }
    let batch = api.post("/add-batch", body).await;
    assert_eq!(batch.status(), 200);
    let batch: serde_json::Value =
        serde_json::from_slice(&batch.bytes().await.expect("body")).expect("json");
    assert_eq!(batch["first_index"], 300);
    assert_eq!(batch["count"], 10);
    assert_eq!(batch["indices"].as_array().expect("indices").len(), 10);

    let note = api.wait_published(310).await;
    let checkpoint = Checkpoint::open(note.as_bytes(), &signer().verifier())
        .expect("open")
        .checkpoint;
    assert_eq!(checkpoint.size, 310);
    assert_eq!(
        checkpoint.root,
        cairn_spec::merkle::root_from_leaves(&leaves)
    );

    // Inclusion proofs by index and by leaf hash.
    for index in [0u64, 1, 255, 256, 309] {
        let proof = api
            .get_json(&format!("/proof/inclusion?index={index}&size=310"))
            .await;
        verify_inclusion(
            index,
            310,
            &Hash::of_leaf(&leaves[index as usize]),
            &hashes(&proof),
            &checkpoint.root,
        )
        .expect("inclusion verifies");
    }
    let by_hash = api
        .http
        .get(api.url("/proof/inclusion"))
        .query(&[("leaf_hash", Hash::of_leaf(&leaves[42]).to_base64())])
        .send()
        .await
        .expect("request");
    assert_eq!(by_hash.status(), 200);
    let by_hash: serde_json::Value =
        serde_json::from_slice(&by_hash.bytes().await.expect("body")).expect("json");
    assert_eq!(by_hash["index"], 42);

    // Consistency from an older size.
    let old_root = cairn_spec::merkle::root_from_leaves(&leaves[..100]);
    let consistency = api.get_json("/proof/consistency?old=100&new=310").await;
    verify_consistency(100, 310, &old_root, &checkpoint.root, &hashes(&consistency))
        .expect("consistency verifies");

    // Tiles: the full level-0 tile is immutable, the partial one short-lived.
    let full = api.get("/tile/0/000").await;
    assert_eq!(full.status(), 200);
    assert_eq!(
        full.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    let data = full.bytes().await.expect("bytes");
    assert_eq!(data.len(), 256 * 32);
    assert_eq!(&data[..32], Hash::of_leaf(&leaves[0]).as_bytes());
    let partial = api.get("/tile/0/001.p/54").await;
    assert_eq!(partial.status(), 200);
    assert_ne!(
        partial.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(partial.bytes().await.expect("bytes").len(), 54 * 32);
    api.get_bytes("/tile/1/000.p/1").await;
    let bundle = api.get_bytes("/tile/entries/001.p/54").await;
    let entries =
        decode_entry_bundle(EntryBundle::new(1, 54).expect("bundle"), &bundle).expect("decode");
    assert_eq!(entries[0], leaves[256]);

    // Receipts verify against the checkpoint.
    let receipt = api.receipt("/receipt/7").await;
    assert_eq!(receipt.leaf.as_deref(), Some(leaves[7].as_slice()));
    verify_inclusion(
        7,
        310,
        &receipt.leaf_hash,
        &receipt.inclusion_proof,
        &checkpoint.root,
    )
    .expect("receipt proof verifies");
    // At an older size, the checkpoint is signed again.
    let old = api.receipt("/receipt/7?size=100").await;
    let old_checkpoint =
        Checkpoint::open(old.checkpoint.as_bytes(), &signer().verifier()).expect("open");
    assert_eq!(old_checkpoint.checkpoint.root, old_root);

    // wait=checkpoint answers with a receipt.
    let waited = api.post("/add?wait=checkpoint", "waited leaf").await;
    assert_eq!(waited.status(), 200);
    let receipt = Receipt::from_json(&waited.bytes().await.expect("bytes")).expect("receipt");
    assert_eq!(receipt.index, 310);

    api.get_json("/healthz").await;
    let metrics = api.metrics().await;
    for name in [
        "cairn_log_queue_depth",
        "cairn_log_tree_size",
        "cairn_log_checkpoint_age_seconds",
        "cairn_log_request_seconds_bucket{route=\"/add\",status=\"200\"",
        "cairn_log_batch_entries_bucket{le=\"+Inf\"}",
        "cairn_log_durable_write_seconds_count",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}:\n{metrics}");
    }
    // Every leaf above went through a durable write: the batch histogram counted them.
    let entries_sum = metrics
        .lines()
        .find_map(|line| line.strip_prefix("cairn_log_batch_entries_sum "))
        .and_then(|value| value.parse::<f64>().ok())
        .expect("cairn_log_batch_entries_sum");
    assert!(
        entries_sum >= 311.0,
        "{entries_sum} entries in durable writes"
    );
    assert!(
        metrics.contains("cairn_log_witness_requests_total"),
        "{metrics}"
    );
    // The families keep the types dashboards read them as.
    let families = cairn_edge::metrics::parse(&metrics).expect("parses");
    for (name, kind) in [
        ("cairn_log_ready", "gauge"),
        ("cairn_log_storage_errors_total", "counter"),
        ("cairn_log_signing_errors_total", "counter"),
        ("cairn_log_durable_entries", "gauge"),
        ("cairn_log_batch_entries", "histogram"),
        ("cairn_log_durable_write_seconds", "histogram"),
        ("cairn_log_request_seconds", "histogram"),
        ("cairn_log_witness_requests_total", "counter"),
        ("cairn_log_witness_seconds", "histogram"),
        ("cairn_log_config_reloads_total", "counter"),
        ("cairn_log_credentials", "gauge"),
    ] {
        assert!(
            families
                .iter()
                .any(|family| family.name == name && family.kind == kind),
            "{name} is not a {kind}:\n{metrics}"
        );
    }
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_a_clear_4xx_and_changes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let server = start(dir, Vec::new(), 0).await;
    let api = Api::of(&server);
    api.add(b"first").await;
    api.wait_published(1).await;

    let post = reqwest::Method::POST;
    let no_token = api
        .request(post.clone(), "/add", None, Some(b"x".to_vec()))
        .await;
    error_of(no_token, 401, "unauthorized", dir).await;
    let bad_token = api
        .request(post, "/add", Some("nope"), Some(b"x".to_vec()))
        .await;
    error_of(bad_token, 401, "unauthorized", dir).await;
    error_of(
        api.post("/add", vec![1u8; 1025]).await,
        413,
        "too_large",
        dir,
    )
    .await;
    error_of(api.post("/add", Vec::new()).await, 400, "bad_request", dir).await;
    for (body, status, code) in [
        // A truncated leaf, a truncated length prefix.
        (vec![0, 0, 0, 9, 1, 2], 400, "bad_request"),
        (vec![0, 0], 400, "bad_request"),
        // A leaf beyond max_leaf_bytes, a body beyond max_batch_body_bytes.
        (vec![0, 0, 4, 1], 413, "too_large"),
        (vec![0; 64 * 1024 + 1], 413, "too_large"),
    ] {
        error_of(api.post("/add-batch", body).await, status, code, dir).await;
    }
    for path in [
        "/proof/inclusion?index=1&size=1",
        "/proof/inclusion?index=0&size=2",
        "/proof/consistency?old=2&new=1",
        "/proof/consistency?old=0&new=5",
        "/receipt/1",
        "/receipt/abc",
    ] {
        error_of(api.get(path).await, 400, "bad_request", dir).await;
    }
    for path in [
        "/tile/0/001",
        "/tile/0/000.p/2",
        "/tile/9/000",
        "/tile/entries/x",
        "/nowhere",
    ] {
        error_of(api.get(path).await, 404, "not_found", dir).await;
    }
    let metrics = api.metrics().await;
    assert!(
        metrics.contains("cairn_log_durable_entries 1\n"),
        "{metrics}"
    );
    // Refused requests are counted too, by route and status; one that no route matched as
    // `unmatched`.
    for series in [
        "cairn_log_request_seconds_count{route=\"/add\",status=\"401\"}",
        "cairn_log_request_seconds_count{route=\"unmatched\",status=\"404\"}",
    ] {
        assert!(
            metrics.contains(series),
            "metrics lack {series}:\n{metrics}"
        );
    }
    server.shutdown().await.expect("shutdown");
}

/// What axum would answer in plain text (or with no body at all), the log answers in JSON with
/// a documented code: an unknown route, a method the route lacks, a query string or path that
/// does not parse, a body beyond its limit however it is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_is_json_with_a_documented_code() {
    let dir = tempfile::tempdir().expect("temp dir");
    let dir = dir.path();
    let server = start(dir, Vec::new(), 0).await;
    let api = Api::of(&server);
    api.add(b"first").await;
    api.wait_published(1).await;

    error_of(api.get("/v2/nowhere").await, 404, "not_found", dir).await;
    error_of(api.get("/add/").await, 404, "not_found", dir).await;
    for (method, path, allow) in [
        ("GET", "/add", "POST"),
        ("PUT", "/add-batch", "POST"),
        ("DELETE", "/checkpoint", "GET,HEAD"),
        ("POST", "/tile/0/000", "GET,HEAD"),
        ("PATCH", "/receipt/0", "GET,HEAD"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let response = api.request(method.clone(), path, Some(TOKEN), None).await;
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        error_of(response, 405, "method_not_allowed", dir).await;
    }
    // Query strings that do not fit the route: axum's rejections, answered as JSON.
    for path in [
        "/proof/inclusion?index=abc",
        "/proof/inclusion?index=-1",
        "/proof/consistency",
        "/proof/consistency?old=1&new=%FF",
        "/receipt/0?size=ten",
    ] {
        error_of(api.get(path).await, 400, "bad_request", dir).await;
    }
    for path in ["/add?wait=later", "/add?wait=%FF%FE"] {
        error_of(api.post(path, "x").await, 400, "bad_request", dir).await;
    }
    // A path whose parameter is not UTF-8 once decoded.
    error_of(api.get("/receipt/%FF").await, 400, "bad_request", dir).await;
    error_of(api.get("/tile/0/%C0").await, 400, "bad_request", dir).await;

    let head = |length: &str, rest: &str| {
        format!(
            "POST /add HTTP/1.1\r\nHost: log\r\nAuthorization: Bearer {TOKEN}\r\n\
             Connection: close\r\n{length}\r\n{rest}"
        )
    };
    // A body that declares far more than the limit (more than the server would read and throw
    // away) is refused at once, before any of it is sent.
    let declared = head("Content-Length: 1000000000\r\n", "");
    raw_error(server.addr, declared.as_bytes(), 413, "too_large", dir).await;
    // A chunked body (no declared length) is counted as it comes: over the limit, 413 ...
    let chunk = format!("200\r\n{}\r\n", "a".repeat(0x200));
    let chunked = head(
        "Transfer-Encoding: chunked\r\n",
        &format!("{}0\r\n\r\n", chunk.repeat(3)),
    );
    raw_error(server.addr, chunked.as_bytes(), 413, "too_large", dir).await;
    // ... and within it, its chunks make one leaf.
    let chunked = head(
        "Transfer-Encoding: chunked\r\n",
        "5\r\nthree\r\n1\r\n \r\n6\r\nchunks\r\n0\r\n\r\n",
    );
    let (status, body) = raw(server.addr, chunked.as_bytes()).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let answer: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(
        answer["leaf_hash"],
        Hash::of_leaf(b"three chunks").to_base64()
    );

    let metrics = api.metrics().await;
    assert!(
        metrics.contains("cairn_log_durable_entries 2\n"),
        "{metrics}"
    );
    server.shutdown().await.expect("shutdown");
}

/// A request body that trickles in slower than the edge's minimum rate is cut off with 408
/// `request_timeout`, a documented code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_too_slow_is_a_request_timeout() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = settings(dir.path(), Vec::new(), 0);
    settings.edge.limits.body_read_timeout = Duration::from_millis(500);
    settings.edge.limits.body_min_bytes_per_sec = 1000;
    let server = RunningServer::start(settings).await.expect("start");
    // 100 bytes declared, 10 sent: the rest never comes.
    let request = format!(
        "POST /add HTTP/1.1\r\nHost: log\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 100\r\n\r\n0123456789"
    );
    let (status, body) = raw(server.addr, request.as_bytes()).await;
    assert_eq!(status, 408);
    check_error(
        &serde_json::from_slice(&body).expect("json"),
        408,
        "request_timeout",
        dir.path(),
    );
    server.shutdown().await.expect("shutdown");
}

/// A producer that shuts its side of the connection once its request is sent still gets the
/// answer: the server allows half-closed connections (src/serve.rs), so the end of the
/// request stream is not taken for a client gone away. The leaf is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_half_closed_connection_gets_its_answer() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let dir = tempfile::tempdir().expect("temp dir");
    let server = RunningServer::start(settings(dir.path(), Vec::new(), 0))
        .await
        .expect("start");
    let mut stream = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("connect");
    let request = format!(
        "POST /add HTTP/1.1\r\nHost: log\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 11\r\n\r\nhalf closed"
    );
    stream.write_all(request.as_bytes()).await.expect("write");
    stream.shutdown().await.expect("shut the write side");
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("answered in time")
        .expect("read");
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}");
    assert!(answer.contains(r#""index":0"#), "{answer}");
    Api::of(&server).wait_published(1).await;
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_continues_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut leaves = Vec::new();
    for round in 0..3u32 {
        let server = start(dir.path(), Vec::new(), 0).await;
        let api = Api::of(&server);
        for i in 0..200u32 {
            let leaf = format!("round {round} leaf {i}").into_bytes();
            let answer = api.add(&leaf).await;
            assert_eq!(answer["index"], leaves.len());
            leaves.push(leaf);
        }
        server.shutdown().await.expect("shutdown");
    }
    let server = start(dir.path(), Vec::new(), 0).await;
    let note = Api::of(&server).wait_published(600).await;
    let checkpoint = Checkpoint::open(note.as_bytes(), &signer().verifier())
        .expect("open")
        .checkpoint;
    assert_eq!(checkpoint.size, 600);
    assert_eq!(
        checkpoint.root,
        cairn_spec::merkle::root_from_leaves(&leaves)
    );
    server.shutdown().await.expect("shutdown");
}

/// A tlog-witness built from `cairn_spec::witness::add_checkpoint`. For each checkpoint it
/// cosigned it serves two timestamp tokens: a real one from the example TSA, and bytes that are
/// no token at all, which the log must not store.
#[derive(Clone)]
struct TestWitness {
    cosigner: Arc<CosignatureSigner>,
    state: Arc<Mutex<Option<TreeState>>>,
    down: Arc<std::sync::atomic::AtomicBool>,
    /// The checkpoint bodies it cosigned, by size.
    bodies: Arc<Mutex<std::collections::HashMap<u64, String>>>,
}

async fn witness_add(
    axum::extract::State(witness): axum::extract::State<TestWitness>,
    body: axum::body::Bytes,
) -> (axum::http::StatusCode, String) {
    if witness.down.load(std::sync::atomic::Ordering::SeqCst) {
        return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "down".into());
    }
    let request = match AddCheckpointRequest::parse(&body) {
        Ok(request) => request,
        Err(error) => return (axum::http::StatusCode::BAD_REQUEST, error.to_string()),
    };
    let verifier = signer().verifier();
    let keys: [&dyn NoteVerifier; 1] = [&verifier];
    let mut state = witness.state.lock();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    match add_checkpoint(*state, &request, Some(&keys), &witness.cosigner, now) {
        Ok(cosigned) => {
            *state = Some(cosigned.new_state);
            witness
                .bodies
                .lock()
                .insert(request.checkpoint.size, request.note.text().to_owned());
            (axum::http::StatusCode::OK, cosigned.response_body())
        }
        Err(refusal) => {
            let status = axum::http::StatusCode::from_u16(refusal.http_status()).expect("status");
            let body = refusal
                .conflict_body()
                .unwrap_or_else(|| refusal.to_string());
            (status, body)
        }
    }
}

async fn witness_timestamps(
    axum::extract::State(witness): axum::extract::State<TestWitness>,
    axum::extract::Path((a, b, size)): axum::extract::Path<(String, String, u64)>,
) -> Result<axum::Json<serde_json::Value>, axum::http::StatusCode> {
    let body = witness
        .bodies
        .lock()
        .get(&size)
        .cloned()
        .ok_or(axum::http::StatusCode::NOT_FOUND)?;
    let base64 = &base64::engine::general_purpose::STANDARD;
    let token = base64.encode(cairn_spec::example::test_tsa(7).token_over(&body, 1));
    let garbage = base64.encode(format!("token over {a}/{b} {size}"));
    Ok(axum::Json(serde_json::json!({
        "origin": format!("{a}/{b}"), "size": size, "checkpoint": body,
        // The bytes that are no token come first: the log judges one answer's tokens in order,
        // so once it stored the real one it has refused these.
        "tokens": [{"tsa": "bad-tsa", "token": garbage}, {"tsa": "test-tsa", "token": token}],
    })))
}

async fn start_witness(name: &str, seed: u8, known: Option<TreeState>) -> (Witness, TestWitness) {
    let cosigner = CosignatureSigner::from_seed(KeyName::new(name).expect("name"), [seed; 32]);
    let verifier: CosignatureVerifier = cosigner.verifier();
    let witness = TestWitness {
        cosigner: Arc::new(cosigner),
        state: Arc::new(Mutex::new(known)),
        down: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        bodies: Arc::default(),
    };
    let app = axum::Router::new()
        .route("/add-checkpoint", axum::routing::post(witness_add))
        .route(
            "/timestamps/{a}/{b}/{size}",
            axum::routing::get(witness_timestamps),
        )
        .with_state(witness.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (
        Witness {
            name: name.to_string(),
            url: format!("http://{addr}"),
            verifier: verifier.into(),
        },
        witness,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checkpoints_are_published_once_the_witness_quorum_cosigned() {
    let _ = format_conflict_body(0);
    let (first, _first_state) = start_witness("witness-one", 1, None).await;
    let (second, second_state) = start_witness("witness-two", 2, None).await;
    second_state
        .down
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let dir = tempfile::tempdir().expect("temp dir");
    let server = start(dir.path(), vec![first.clone(), second.clone()], 1).await;
    let api = Api::of(&server);
    for i in 0..20u32 {
        api.add(format!("witnessed {i}").as_bytes()).await;
    }
    let note = api.wait_published(20).await;
    // One of two witnesses is down: publication needs one, and it carries that cosignature.
    let opened = Checkpoint::open(note.as_bytes(), &signer().verifier()).expect("open");
    let cosigned = cairn_spec::note::Note::parse(note.as_bytes()).expect("note");
    let first_key = &first.verifier.keys()[0];
    let first_verifier: &dyn NoteVerifier = first_key;
    let log_verifier = signer().verifier();
    let verification = cosigned
        .verify(&[&log_verifier, first_verifier])
        .expect("verify");
    assert!(verification.is_signed_by(first_key.key_name(), first_key.key_id()));
    assert_eq!(opened.checkpoint.size, 20);

    // Receipts carry the timestamp tokens fetched from the witness.
    let mut tokens = 0;
    for _ in 0..100 {
        tokens = api.receipt("/receipt/3").await.timestamps.len();
        if tokens > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The witness's real token is there; the bytes it served before it in the same answer
    // (witness_timestamps), which the log judged first, are not.
    let receipt = api.receipt("/receipt/3").await;
    assert_eq!(
        (tokens, receipt.timestamps.len()),
        (1, 1),
        "only the valid token is kept"
    );

    // The second witness comes back and catches up from size 0 with a consistency proof.
    second_state
        .down
        .store(false, std::sync::atomic::Ordering::SeqCst);
    for i in 20..30u32 {
        api.add(format!("witnessed {i}").as_bytes()).await;
    }
    api.wait_published(30).await;
    for _ in 0..100 {
        if second_state.state.lock().is_some_and(|s| s.size >= 30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(second_state.state.lock().is_some_and(|s| s.size >= 30));
    server.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_witness_conflict_makes_the_log_retry_from_the_witness_size() {
    let dir = tempfile::tempdir().expect("temp dir");
    // First run, no witness: the log grows to 10.
    let server = start(dir.path(), Vec::new(), 0).await;
    let mut leaves = Vec::new();
    for i in 0..10u32 {
        let leaf = format!("leaf {i}").into_bytes();
        Api::of(&server).add(&leaf).await;
        leaves.push(leaf);
    }
    server.shutdown().await.expect("shutdown");
    // The witness already cosigned size 10, which the log does not know: it answers 409 to
    // old size 0, and the log retries from 10.
    let known = TreeState {
        size: 10,
        root: cairn_spec::merkle::root_from_leaves(&leaves),
    };
    let (witness, state) = start_witness("witness-ahead", 3, Some(known)).await;
    let server = start(dir.path(), vec![witness], 1).await;
    let api = Api::of(&server);
    api.add(b"leaf 10").await;
    api.wait_published(11).await;
    assert_eq!(state.state.lock().map(|s| s.size), Some(11));
    server.shutdown().await.expect("shutdown");
}
