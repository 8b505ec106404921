//! Anchoring over real HTTP: tokens from `cairn-witness tsa` (in process) are verified,
//! stored and served; a dead TSA never holds cosigning back and is counted.

use base64::Engine;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::cosignature::CosignatureSigner;
use cairn_spec::hash::Hash;
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::timestamp::{checkpoint_imprint, verify_token, Expectation};
use cairn_spec::witness::format_add_checkpoint_request;
use cairn_witness::anchor::{AnchorSettings, TsaEndpoint};
use cairn_witness::store::Store;
use cairn_witness::{start_witness, LogSpec};
use std::time::Duration;

mod common;

const ORIGIN: &str = "example.com/anchored";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stores_verified_tokens_and_survives_a_dead_tsa() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (authority, anchors) = common::test_tsa(&dir.path().join("tsa"), "Test TSA");
    let tsa_url = common::serve_tsa(authority).await;
    // A port nothing listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let dead_url = format!("http://{}/", dead.local_addr().expect("address"));
    drop(dead);

    let log = Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [5; 32]);
    let store = Store::open(&dir.path().join("db")).expect("store");
    let witness = start_witness(
        store.clone(),
        std::sync::Arc::new(
            CosignatureSigner::from_seed(KeyName::new("w").expect("name"), [6; 32]).into(),
        ),
        vec![LogSpec {
            origin: ORIGIN.to_owned(),
            verifiers: vec![log.verifier()],
        }],
        vec![
            TsaEndpoint {
                name: "dead".to_owned(),
                url: dead_url,
                trust_anchors: anchors.clone(),
                policy: None,
                https_roots: Vec::new(),
            },
            TsaEndpoint {
                name: "local".to_owned(),
                url: tsa_url,
                trust_anchors: anchors.clone(),
                policy: None,
                https_roots: Vec::new(),
            },
        ],
        AnchorSettings {
            request_timeout: Duration::from_secs(2),
            max_attempts: 3,
            initial_backoff: Duration::from_millis(10),
            ..AnchorSettings::default()
        },
        Duration::from_millis(250),
    )
    .expect("starts");
    let url = common::serve(cairn_witness::http::router(witness)).await;

    let root = Hash::of_leaf(b"only leaf");
    let note = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: 1,
        root,
        extensions: Vec::new(),
    }
    .sign(&log)
    .expect("signs");
    let client = reqwest::Client::new();
    let response = client
        .post(format!("{url}/add-checkpoint"))
        .body(format_add_checkpoint_request(&note, 0, &[]).expect("request"))
        .send()
        .await
        .expect("sends");
    assert_eq!(response.status().as_u16(), 200);

    // The dead TSA is retried and given up; the live one's token is served.
    let (http, base) = (&client, url.as_str());
    let document = common::wait_until(
        "the live TSA's token, the dead one given up",
        Duration::from_millis(50),
        move || async move {
            let (document, text) = common::timestamps(http, base, ORIGIN, 1).await;
            let metrics = common::scrape_metrics(http, base).await;
            if common::tokens_in(&document) > 0
                && metrics.contains("cairn_witness_tsa_given_up_total{tsa=\"dead\"} 1")
            {
                Ok(document)
            } else {
                Err(format!("{text}\n{metrics}"))
            }
        },
    )
    .await;
    assert_eq!(document["origin"], ORIGIN);
    assert_eq!(document["size"], 1);
    let body = document["checkpoint"].as_str().expect("body");
    assert_eq!(body, note.text());
    let tokens = document["tokens"].as_array().expect("tokens");
    assert_eq!(tokens.len(), 1);
    assert_eq!(tokens[0]["tsa"], "local");
    let token = base64::engine::general_purpose::STANDARD
        .decode(tokens[0]["token"].as_str().expect("token"))
        .expect("base64");
    verify_token(
        &token,
        &Expectation {
            imprint: checkpoint_imprint(body.as_bytes()),
            nonce: None,
            trust_anchors: Some(anchors.as_ref()),
        },
    )
    .expect("the token verifies");
    assert!(store.tokens(ORIGIN, 1).expect("reads").len() == 1);
}

#[tokio::test]
async fn tsa_refuses_oversized_queries_with_413_and_rejects_malformed_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (authority, anchors) = common::test_tsa(dir.path(), "Limits TSA");
    let url = common::serve_tsa(authority).await;
    let client = reqwest::Client::new();
    let post = |body: Vec<u8>| {
        client
            .post(&url)
            .header("content-type", "application/timestamp-query")
            .body(body)
            .send()
    };
    let oversized = post(vec![0x30; cairn_spec::timestamp::MAX_REQUEST_SIZE + 1])
        .await
        .expect("answers");
    assert_eq!(oversized.status().as_u16(), 413);
    // A request that is not DER is answered, as RFC 3161 §2.4.2 asks, with a rejection.
    let malformed = post(b"not a TimeStampReq".to_vec()).await.expect("answers");
    assert_eq!(malformed.status().as_u16(), 200);
    let reply = malformed.bytes().await.expect("body");
    let refused = cairn_spec::timestamp::verify_response(
        &reply,
        &Expectation {
            imprint: [0; 32],
            nonce: None,
            trust_anchors: Some(anchors.as_ref()),
        },
    );
    assert!(
        matches!(
            refused,
            Err(cairn_spec::timestamp::TimestampError::NotGranted { .. })
        ),
        "{refused:?}"
    );
}
