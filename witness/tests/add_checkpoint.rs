//! The witness over real HTTP on loopback: every status path of C2SP tlog-witness
//! add-checkpoint, forks kept as evidence, rollbacks refused, concurrent requests for one
//! origin, and the monitor and timestamp routes.

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::CosignatureSigner;
use cairn_spec::hash::Hash;
use cairn_spec::merkle::consistency_proof;
use cairn_spec::note::{Ed25519Signer, KeyName, Note};
use cairn_spec::witness::{format_add_checkpoint_request, MAX_REQUEST_SIZE};
use cairn_witness::anchor::AnchorSettings;
use cairn_witness::store::Store;
use cairn_witness::{start_witness, LogSpec};
use std::time::Duration;

mod common;

use common::{scrape_metrics, Tree};

const ORIGIN: &str = "example.com/cairn/log";

fn log_signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [7; 32])
}

fn witness_key() -> CosignatureSigner {
    CosignatureSigner::from_seed(KeyName::new("witness.example/w1").expect("name"), [9; 32])
}

/// A log of `count` leaves, each `<salt><index>`.
fn tree(count: u64, salt: &str) -> Tree {
    Tree::new(count, |index| format!("{salt}{index}").into_bytes())
}

fn signed(origin: &str, size: u64, root: Hash) -> Note {
    Checkpoint {
        origin: origin.to_owned(),
        size,
        root,
        extensions: Vec::new(),
    }
    .sign(&log_signer())
    .expect("signs")
}

fn body(tree: &Tree, old_size: u64, size: u64) -> Vec<u8> {
    let proof = consistency_proof(old_size, size, &tree.stored).expect("proof");
    let note = signed(ORIGIN, size, tree.roots[size as usize]);
    format_add_checkpoint_request(&note, old_size, &proof).expect("request")
}

struct Running {
    url: String,
    store: Store,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start() -> Running {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&dir.path().join("db")).expect("store");
    let witness = start_witness(
        store.clone(),
        std::sync::Arc::new(witness_key().into()),
        vec![LogSpec {
            origin: ORIGIN.to_owned(),
            verifiers: vec![log_signer().verifier()],
        }],
        Vec::new(),
        AnchorSettings::default(),
        Duration::from_millis(250),
    )
    .expect("starts");
    let url = common::serve(cairn_witness::http::router(witness)).await;
    Running {
        url,
        store,
        client: reqwest::Client::new(),
        _dir: dir,
    }
}

impl Running {
    async fn post(&self, body: Vec<u8>) -> (u16, String, String) {
        let response = self
            .client
            .post(format!("{}/add-checkpoint", self.url))
            .body(body)
            .send()
            .await
            .expect("sends");
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get("content-type")
            .and_then(|value| value.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, content_type, response.text().await.expect("body"))
    }

    /// Posts `length` bytes to add-checkpoint as a chunked body (no Content-Length) over a
    /// raw connection, and returns the response status.
    async fn post_chunked(&self, length: usize) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let address = self.url.strip_prefix("http://").expect("http URL");
        let mut stream = tokio::net::TcpStream::connect(address)
            .await
            .expect("connects");
        let mut request = format!(
            "POST /add-checkpoint HTTP/1.1\r\nHost: {address}\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        )
        .into_bytes();
        let mut left = length;
        while left > 0 {
            let chunk = left.min(8192);
            request.extend_from_slice(format!("{chunk:x}\r\n").as_bytes());
            request.resize(request.len() + chunk, b'a');
            request.extend_from_slice(b"\r\n");
            left -= chunk;
        }
        request.extend_from_slice(b"0\r\n\r\n");
        // The witness may answer and close before reading everything: a failed write is fine.
        let _ = stream.write_all(&request).await;
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response).await;
        let text = String::from_utf8_lossy(&response);
        text.strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|status| status.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status in {text:?}"))
    }

    fn size(&self) -> Option<u64> {
        self.store
            .latest(ORIGIN)
            .expect("reads")
            .map(|record| record.state.size)
    }
}

#[tokio::test]
async fn cosigns_consistent_checkpoints_and_serves_the_latest() {
    let witness = start().await;
    let log = tree(20, "leaf");
    let (status, _, cosignature) = witness.post(body(&log, 0, 5)).await;
    assert_eq!(status, 200, "{cosignature}");
    let (status, _, _) = witness.post(body(&log, 5, 20)).await;
    assert_eq!(status, 200);
    assert_eq!(witness.size(), Some(20));

    let served = witness
        .client
        .get(format!("{}/checkpoint/{ORIGIN}", witness.url))
        .send()
        .await
        .expect("sends");
    assert_eq!(served.status().as_u16(), 200);
    let note = Note::parse(&served.bytes().await.expect("body")).expect("a note");
    let checkpoint = Checkpoint::from_note(&note).expect("checkpoint");
    assert_eq!(checkpoint.size, 20);
    let cosignature = note
        .signatures()
        .iter()
        .find(|signature| signature.key_name.as_str() == "witness.example/w1")
        .expect("cosigned");
    witness_key()
        .verifier()
        .verify_cosignature(&checkpoint, cosignature)
        .expect("valid cosignature");
}

#[tokio::test]
async fn answers_409_with_the_known_size() {
    let witness = start().await;
    let log = tree(10, "leaf");
    assert_eq!(witness.post(body(&log, 0, 4)).await.0, 200);
    let (status, content_type, text) = witness.post(body(&log, 2, 8)).await;
    assert_eq!(
        (status, content_type.as_str(), text.as_str()),
        (409, "text/x.tlog.size", "4\n")
    );
    assert_eq!(witness.size(), Some(4));
}

#[tokio::test]
async fn refuses_a_fork_and_keeps_it_as_evidence() {
    let witness = start().await;
    let log = tree(8, "leaf");
    let fork = tree(8, "other");
    assert_eq!(witness.post(body(&log, 0, 8)).await.0, 200);
    let forked =
        format_add_checkpoint_request(&signed(ORIGIN, 8, fork.roots[8]), 8, &[]).expect("request");
    assert_eq!(witness.post(forked).await.0, 422);
    assert_eq!(witness.size(), Some(8));
    let evidence = witness.store.evidence().expect("reads");
    assert_eq!(evidence.len(), 1);
    assert!(String::from_utf8_lossy(&evidence[0]).contains("\"kind\":\"fork\""));
    let metrics = scrape_metrics(&witness.client, &witness.url).await;
    assert!(metrics.contains("cairn_witness_refusals_total{reason=\"fork\"} 1"));
}

#[tokio::test]
async fn refuses_bad_proofs_rollbacks_and_bad_requests_without_changing_state() {
    let witness = start().await;
    let log = tree(16, "leaf");
    assert_eq!(witness.post(body(&log, 0, 9)).await.0, 200);

    // 422: a proof that does not verify (from a validly signed checkpoint: evidence).
    let other = tree(16, "other");
    let bad_proof = format_add_checkpoint_request(
        &signed(ORIGIN, 16, other.roots[16]),
        9,
        &consistency_proof(9, 16, &log.stored).expect("proof"),
    )
    .expect("request");
    assert_eq!(witness.post(bad_proof).await.0, 422);
    // 400: a checkpoint that goes back.
    let mut rollback = b"old 9\n\n".to_vec();
    rollback.extend_from_slice(&signed(ORIGIN, 5, log.roots[5]).to_bytes().expect("note"));
    assert_eq!(witness.post(rollback).await.0, 400);
    // 403: signed by another key.
    let stranger = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [8; 32]);
    let unsigned = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 16,
        root: log.roots[16],
        extensions: Vec::new(),
    }
    .sign(&stranger)
    .expect("signs");
    let proof = consistency_proof(9, 16, &log.stored).expect("proof");
    assert_eq!(
        witness
            .post(format_add_checkpoint_request(&unsigned, 9, &proof).expect("request"))
            .await
            .0,
        403
    );
    // 404: unknown origin.
    let unknown = Checkpoint {
        origin: "example.com/unknown".to_owned(),
        size: 3,
        root: log.roots[3],
        extensions: Vec::new(),
    }
    .sign(&Ed25519Signer::from_seed(
        KeyName::new("example.com/unknown").expect("name"),
        [7; 32],
    ))
    .expect("signs");
    assert_eq!(
        witness
            .post(format_add_checkpoint_request(&unknown, 0, &[]).expect("request"))
            .await
            .0,
        404
    );
    // 400: malformed notes and bodies.
    assert_eq!(witness.post(b"old 9\n\nnot a note".to_vec()).await.0, 400);
    assert_eq!(witness.post(b"hello".to_vec()).await.0, 400);
    // 400: too many proof lines.
    let mut many = b"old 9\n".to_vec();
    for _ in 0..64 {
        many.extend_from_slice(format!("{}\n", log.roots[1].to_base64()).as_bytes());
    }
    many.push(b'\n');
    many.extend_from_slice(&signed(ORIGIN, 16, log.roots[16]).to_bytes().expect("note"));
    assert_eq!(witness.post(many).await.0, 400);
    // 413: a body above the limit is not even read; one at the limit is read (and refused).
    assert_eq!(witness.post(vec![b'a'; MAX_REQUEST_SIZE + 1]).await.0, 413);
    assert_eq!(witness.post(vec![b'a'; MAX_REQUEST_SIZE]).await.0, 400);
    // 413 also when no Content-Length announces the size (a chunked body).
    assert_eq!(witness.post_chunked(MAX_REQUEST_SIZE + 1).await, 413);
    assert_eq!(witness.post_chunked(MAX_REQUEST_SIZE).await, 400);

    assert_eq!(witness.size(), Some(9));
    assert_eq!(witness.post(body(&log, 9, 16)).await.0, 200);
}

#[tokio::test]
async fn refuses_a_first_checkpoint_with_an_empty_tree_proof_or_wrong_empty_root() {
    let witness = start().await;
    let log = tree(4, "leaf");
    let with_proof =
        format_add_checkpoint_request(&signed(ORIGIN, 4, log.roots[4]), 0, &[log.roots[1]])
            .expect("request");
    assert_eq!(witness.post(with_proof).await.0, 422);
    let bad_empty =
        format_add_checkpoint_request(&signed(ORIGIN, 0, log.roots[4]), 0, &[]).expect("request");
    assert_eq!(witness.post(bad_empty).await.0, 422);
    assert_eq!(witness.size(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_origin_never_move_the_state_back() {
    let witness = std::sync::Arc::new(start().await);
    let log = tree(64, "leaf");
    let fork = tree(64, "fork");
    assert_eq!(witness.post(body(&log, 0, 1)).await.0, 200);
    // Every request claims old size 1: exactly one of those for the same next size can win,
    // and then all others see a different known size (409) or a fork (422).
    let mut tasks = tokio::task::JoinSet::new();
    for size in 2..=40u64 {
        for which in [&log, &fork] {
            let request = format_add_checkpoint_request(
                &signed(ORIGIN, size, which.roots[size as usize]),
                1,
                &consistency_proof(1, size, &which.stored).expect("proof"),
            )
            .expect("request");
            let witness = witness.clone();
            tasks.spawn(async move { witness.post(request).await.0 });
        }
    }
    let mut accepted = 0;
    while let Some(status) = tasks.join_next().await {
        let status = status.expect("task");
        assert!([200, 409, 422].contains(&status), "status {status}");
        accepted += usize::from(status == 200);
    }
    assert_eq!(accepted, 1, "exactly one request extends size 1");
    let size = witness.size().expect("state");
    assert!(size >= 2);
}

#[tokio::test]
async fn read_routes_answer_404_for_unknown_logs_and_400_for_bad_sizes() {
    let witness = start().await;
    let get = |path: String| {
        let client = witness.client.clone();
        let url = format!("{}{path}", witness.url);
        async move {
            let response = client.get(url).send().await.expect("sends");
            response.status().as_u16()
        }
    };
    // Nothing cosigned yet.
    assert_eq!(get(format!("/checkpoint/{ORIGIN}")).await, 404);
    assert_eq!(get(format!("/timestamps/{ORIGIN}/0")).await, 404);
    let log = tree(3, "leaf");
    assert_eq!(witness.post(body(&log, 0, 3)).await.0, 200);
    assert_eq!(get(format!("/checkpoint/{ORIGIN}")).await, 200);
    assert_eq!(get(format!("/timestamps/{ORIGIN}/3")).await, 200);
    // Not a size it cosigned, not a canonical size, not a log it knows, an origin far longer
    // than any the store keeps.
    assert_eq!(get(format!("/timestamps/{ORIGIN}/2")).await, 404);
    for size in ["03", "-1", "x", "18446744073709551616", ""] {
        assert_eq!(
            get(format!("/timestamps/{ORIGIN}/{size}")).await,
            400,
            "{size:?}"
        );
    }
    assert_eq!(get("/checkpoint/example.com/other".to_owned()).await, 404);
    assert_eq!(get("/timestamps/example.com/other/3".to_owned()).await, 404);
    let long = "o".repeat(8 * 1024);
    assert_eq!(get(format!("/checkpoint/{long}")).await, 404);
    assert_eq!(get(format!("/timestamps/{long}/3")).await, 404);
    assert_eq!(get("/timestamps/3".to_owned()).await, 400);
}

/// An events log's checkpoints carry the `cairn-index/v1` extension line (completeness.md
/// §1.3): the witness cosigns them, and its cosignature covers the line.
#[tokio::test]
async fn cosigns_a_checkpoint_with_an_index_extension_line_and_signs_the_line_too() {
    use cairn_spec::completeness::extension_line;
    use cairn_spec::note::NoteSignature;
    let witness = start().await;
    let log = tree(6, "event");
    let with_line = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 6,
        root: log.roots[6],
        extensions: vec![extension_line(&Hash([0x5a; 32]))],
    };
    let note = with_line.sign(&log_signer()).expect("signs");
    let proof = consistency_proof(0, 6, &log.stored).expect("proof");
    let request = format_add_checkpoint_request(&note, 0, &proof).expect("request");
    let (status, _, cosignature) = witness.post(request).await;
    assert_eq!(status, 200, "{cosignature}");
    let line = cosignature
        .lines()
        .next()
        .expect("a cosignature line")
        .to_owned();
    let signature = NoteSignature::parse_line(&line).expect("a signature line");
    let verifier = witness_key().verifier();
    verifier
        .verify_cosignature(&with_line, &signature)
        .expect("the cosignature covers the checkpoint with its line");
    let mut other_root = with_line.clone();
    other_root.extensions = vec![extension_line(&Hash([0x5b; 32]))];
    assert!(
        verifier
            .verify_cosignature(&other_root, &signature)
            .is_err(),
        "a cosignature must not hold for another index root"
    );
}
