//! A fork of a log that rotated its key: the log (a local directory) signs with its second key
//! only, the pinned one retired, and serves its key history; a witness reports a checkpoint of
//! the same size and another root, signed by that second key. The monitor raises a split view
//! whose evidence carries the key history, so that it verifies offline from the pinned key
//! alone (`cairn-monitor verify-evidence --log-key`), and is refused with any byte flipped.

mod common;

use axum::extract::Path as UrlPath;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use cairn_monitor::alert::AlertKind;
use cairn_monitor::daemon::Monitor;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::evidence::Evidence;
use cairn_spec::key_history::{Action, KeyHistory};
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::Hash;
use common::{
    assert_alert_with_evidence, config, file_url, leaf, leaves, serve, signer, write_log_dir,
    ORIGIN,
};

/// The log's second key.
fn second() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [43; 32])
}

/// The history: the second key signs from size 0, the pinned key is retired after size 10.
fn history() -> Vec<u8> {
    let pinned = signer();
    let second = second();
    let mut history = KeyHistory::new(&pinned.verifier().to_vkey()).expect("pinned");
    let statement = |history: &KeyHistory, action: Action, keys: &[&Ed25519Signer]| {
        let mut note = history.next_statement(action).to_note().expect("note");
        for key in keys {
            note.add_signature(key.sign(&note)).expect("signs");
        }
        note.to_bytes().expect("bytes")
    };
    let introduce = Action::Introduce {
        vkey: second.verifier().to_vkey(),
        from: 0,
    };
    history
        .append(&statement(&history, introduce, &[&pinned, &second]))
        .expect("introduced");
    let retire = Action::Retire {
        vkey: pinned.verifier().to_vkey(),
        last: 10,
    };
    history
        .append(&statement(&history, retire, &[&second]))
        .expect("retired");
    history.to_bytes()
}

/// The checkpoint of `leaves` signed by the second key alone.
fn signed_by_second(leaves: &[Vec<u8>]) -> Vec<u8> {
    let hashes: Vec<Hash> = leaves.iter().map(|leaf| Hash::of_leaf(leaf)).collect();
    Checkpoint {
        origin: ORIGIN.to_owned(),
        size: leaves.len() as u64,
        root: cairn_spec::merkle::root_from_leaf_hashes(&hashes),
        extensions: Vec::new(),
    }
    .sign(&second())
    .expect("signs")
    .to_bytes()
    .expect("encodes")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fork_signed_by_the_rotated_key_is_a_split_view_whose_evidence_verifies_from_the_pinned_key(
) {
    let dir = tempfile::tempdir().expect("tempdir");
    let log_dir = dir.path().join("log");
    let honest = leaves(600, "honest");
    write_log_dir(&honest, &log_dir);
    std::fs::write(log_dir.join("checkpoint"), signed_by_second(&honest)).expect("writes");
    std::fs::write(log_dir.join("key-history"), history()).expect("writes");

    let mut forked = honest.clone();
    forked[599] = leaf(599, "forked");
    let shown = signed_by_second(&forked);
    let witness = serve(Router::new().route(
        "/witness/checkpoint/{*origin}",
        get(move |UrlPath(origin): UrlPath<String>| async move {
            if origin == ORIGIN {
                (StatusCode::OK, shown)
            } else {
                (StatusCode::NOT_FOUND, Vec::new())
            }
        }),
    ))
    .await;
    let mut settings = config(&file_url(&log_dir), dir.path());
    settings.logs[0].witnesses = vec![format!("{witness}/witness")];

    let monitor = Monitor::new(&settings).expect("monitor");
    monitor.poll_once().await.expect("polls");
    assert_alert_with_evidence(&monitor, AlertKind::SplitView);
    let alerts = monitor.alerter.raised();
    let path = alerts
        .iter()
        .find_map(|alert| alert.evidence.clone())
        .expect("evidence");
    let evidence = Evidence::from_json(&std::fs::read(&path).expect("reads")).expect("parses");
    assert_eq!(evidence.kind, "same-size");
    assert_eq!(
        evidence.key_history.as_deref().map(str::as_bytes),
        Some(history().as_slice()),
        "the evidence carries the history its signatures need"
    );
    let without = Evidence {
        key_history: None,
        ..evidence
    };
    assert!(
        cairn_spec::evidence::verify_evidence(&without, &signer().verifier()).is_err(),
        "without the history the second key's signatures are no one's"
    );
}
