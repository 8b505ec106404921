//! The real `cairn-witness serve` binary killed with SIGKILL between and during requests:
//! after each restart the state it answers with never goes back, and no cosignature it gave
//! is forgotten.

mod common;

use common::Running;

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::hash::Hash;
use cairn_spec::merkle::{consistency_proof, CompactRange};
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::witness::{format_add_checkpoint_request, parse_conflict_body};
use std::process::Command;

const ORIGIN: &str = "example.com/crash-log";

fn log_signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [3; 32])
}

#[tokio::test]
async fn sigkill_between_and_during_requests_never_moves_state_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keygen = Command::new(env!("CARGO_BIN_EXE_cairn-witness"))
        .args(["keygen", "--name", "witness.example/crash", "--out"])
        .arg(dir.path().join("witness.key"))
        .output()
        .expect("keygen runs");
    assert!(keygen.status.success());
    std::fs::write(
        dir.path().join("witness.toml"),
        format!(
            "data_dir = {:?}\nkey_file = {:?}\n[[log]]\norigin = {ORIGIN:?}\nvkey = {:?}\n",
            dir.path().join("db"),
            dir.path().join("witness.key"),
            log_signer().verifier().to_vkey()
        ),
    )
    .expect("writes config");

    let mut range = CompactRange::new();
    let mut stored = Vec::new();
    let mut roots = vec![range.root()];
    for index in 0..400u64 {
        range
            .append_with(Hash::of_leaf(&index.to_be_bytes()), |_, hash| {
                stored.push(*hash)
            })
            .expect("appends");
        roots.push(range.root());
    }
    let request = |old: u64, size: u64| {
        let note = Checkpoint {
            origin: ORIGIN.to_owned(),
            size,
            root: roots[size as usize],
            extensions: Vec::new(),
        }
        .sign(&log_signer())
        .expect("signs");
        format_add_checkpoint_request(
            &note,
            old,
            &consistency_proof(old, size, &stored).expect("proof"),
        )
        .expect("request")
    };
    let client = reqwest::Client::new();
    let mut acknowledged = 0u64;
    let mut acknowledged_rounds = 0;
    for round in 0..5u64 {
        let witness = Running::start(&[
            "serve",
            "--config",
            dir.path().join("witness.toml").to_str().expect("UTF-8"),
        ]);
        let url = witness.url.clone();
        // The witness tells the size it knows (409 to a request from a size it never reaches
        // here): never below one it acknowledged.
        let probe = client
            .post(format!("{url}/add-checkpoint"))
            .body(request(399, 399))
            .send()
            .await
            .expect("sends");
        assert_eq!(probe.status().as_u16(), 409, "round {round}");
        let known = parse_conflict_body(&probe.bytes().await.expect("body")).expect("size");
        assert!(
            known >= acknowledged,
            "round {round}: {known} < {acknowledged}"
        );
        acknowledged = known;
        // A few acknowledged requests, then a kill while requests are in flight.
        let mut size = known;
        for _ in 0..10 {
            let next = size + 1 + round;
            let response = client
                .post(format!("{url}/add-checkpoint"))
                .body(request(size, next))
                .send()
                .await
                .expect("sends");
            assert_eq!(response.status().as_u16(), 200);
            size = next;
            acknowledged = size;
        }
        acknowledged_rounds += 1;
        let in_flight = {
            let url = url.clone();
            let body = request(size, size + 7);
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(format!("{url}/add-checkpoint"))
                    .body(body)
                    .send()
                    .await
                    .map(|response| response.status().as_u16())
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(round)).await;
        witness.kill();
        if let Ok(Ok(200)) = in_flight.await {
            acknowledged = size + 7;
        }
    }
    assert_eq!(acknowledged_rounds, 5);
    assert!(acknowledged >= 50);
}
