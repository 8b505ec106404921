//! The index audit against a test log of audit events served over loopback HTTP, with its
//! completeness index's record stream (`GET /v1/index/records`): an honest index raises
//! nothing across two checkpoints; an index that leaves an event out of its action's list, or
//! lists one under another action, raises `dishonest-index` with `index-omits` /
//! `index-invents` evidence that `cairn-monitor verify-evidence` accepts (and refuses with any
//! byte flipped), though the log signed the dishonest index's root; a stream that does not
//! replay to the signed root is an alert too.

mod common;

use std::sync::{Arc, Mutex};

use axum::extract::Query;
use axum::routing::get;
use axum::Router;
use cairn_monitor::alert::AlertKind;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::completeness::records::Record;
use cairn_spec::completeness::{action_key, extension_line, IndexMap, Item};
use cairn_spec::event::{EventId, EventInput};
use cairn_spec::time::Instant;
use cairn_spec::Hash;
use common::{assert_alert_with_evidence, config, reopen, serve, signer, Shared, View, ORIGIN};

const ACTIONS: [&str; 3] = ["login", "read", "logout"];

fn event_leaves(count: u64) -> Vec<Vec<u8>> {
    (0..count)
        .map(|index| {
            let action = ACTIONS[(index % 3) as usize];
            let json = format!(
                r#"{{"event_id":"00000000-0000-4000-8000-{index:012}","timestamp":"2026-11-25T10:00:00Z","actor":{{"id":"a","type":"user"}},"action":"{action}","resource":{{"type":"t","id":"r"}},"outcome":"success"}}"#
            );
            EventInput::parse(json.as_bytes())
                .expect("event")
                .into_leaf(
                    EventId::new_v4([0; 16]),
                    Instant::from_unix(1_800_000_000 + index as i64, 0),
                    "p",
                )
                .expect("leaf")
                .0
                .leaf
        })
        .collect()
}

/// How the index lies.
#[derive(Clone, Copy)]
enum Lie {
    None,
    /// Leaves this leaf out of its action's list.
    Omit(u64),
    /// Also lists this leaf under the next action.
    Invent(u64),
    /// Writes marks whose root is not the replayed one, and signs that root.
    WrongRoot,
}

/// The record stream of an index over `leaves` with marks at `sizes`, the map root at each,
/// and the lie told.
fn index(leaves: &[Vec<u8>], sizes: &[u64], lie: Lie) -> (Vec<u8>, Vec<Hash>) {
    let (mut map, mut stream, mut roots) = (IndexMap::new(), Vec::new(), Vec::new());
    let mut next = 0u64;
    for &size in sizes {
        while next < size {
            let item = Item {
                leaf_index: next,
                leaf_hash: Hash::of_leaf(&leaves[next as usize]),
            };
            let own = ACTIONS[(next % 3) as usize];
            let mut keys = Vec::new();
            if !matches!(lie, Lie::Omit(leaf) if leaf == next) {
                keys.push(action_key(own));
            }
            if matches!(lie, Lie::Invent(leaf) if leaf == next) {
                keys.push(action_key(ACTIONS[((next + 1) % 3) as usize]));
            }
            if !keys.is_empty() {
                for key in &keys {
                    map.add(*key, item).expect("in order");
                }
                stream.extend(Record::Item(item, keys).to_bytes());
            }
            next += 1;
        }
        let mut root = map.root();
        if matches!(lie, Lie::WrongRoot) && size == *sizes.last().expect("sizes") {
            root = Hash([7; 32]);
            // The mark says the true root, the checkpoint signs another.
            stream.extend(Record::Mark(size, map.root()).to_bytes());
        } else {
            stream.extend(Record::Mark(size, root).to_bytes());
        }
        roots.push(root);
    }
    (stream, roots)
}

/// The log's view at `size` leaves, its checkpoint carrying `index_root`.
fn view(leaves: &[Vec<u8>], size: usize, index_root: Hash) -> View {
    let mut view = View::of(leaves[..size].to_vec());
    let root = view.root();
    view.checkpoint = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: size as u64,
        root,
        extensions: vec![extension_line(&index_root)],
    }
    .sign(&signer())
    .expect("signs")
    .to_bytes()
    .expect("encodes");
    view
}

#[derive(serde::Deserialize)]
struct Offset {
    offset: u64,
}

/// Serves the log and its record stream (whole records from the offset, at most 4 KiB at a
/// time, so that the monitor reads it in several steps).
async fn start(log: Shared, stream: Arc<Mutex<Vec<u8>>>) -> String {
    let app = Router::new()
        .route("/checkpoint", get(common::serve_checkpoint))
        .route("/tile/{*path}", get(common::serve_tile))
        .with_state(log)
        .route(
            "/v1/index/records",
            get(move |Query(query): Query<Offset>| {
                let stream = stream.clone();
                async move {
                    let stream = stream.lock().expect("lock").clone();
                    let start = (query.offset as usize).min(stream.len());
                    let end = (start + 4096).min(stream.len());
                    let whole =
                        cairn_spec::completeness::records::whole_records(&stream[start..end])
                            .expect("records");
                    stream[start..start + whole].to_vec()
                }
            }),
        );
    serve(app).await
}

/// Polls a monitor over the log at 200 then 700 leaves; the alerts raised.
async fn run(lie: Lie) -> (tempfile::TempDir, cairn_monitor::daemon::Monitor) {
    let dir = tempfile::tempdir().expect("tempdir");
    let leaves = event_leaves(700);
    let (stream, roots) = index(&leaves, &[50, 200, 450, 700], lie);
    let log: Shared = Arc::default();
    let served = Arc::new(Mutex::new(stream));
    let url = start(log.clone(), served).await;
    let mut settings = config(&url, dir.path());
    settings.logs[0].event_log = true;
    settings.logs[0].witnesses.clear();
    let monitor = reopen(&settings).await;
    for (size, root) in [(200usize, roots[1]), (700, roots[3])] {
        log.lock().expect("lock").client = view(&leaves, size, root);
        monitor.poll_once().await.expect("polls");
    }
    (dir, monitor)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_honest_index_raises_nothing() {
    let (_dir, monitor) = run(Lie::None).await;
    assert_eq!(monitor.alerter.raised(), Vec::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_that_omits_an_event_is_caught_with_evidence() {
    let (_dir, monitor) = run(Lie::Omit(333)).await;
    assert_alert_with_evidence(&monitor, AlertKind::DishonestIndex);
    let alerts = monitor.alerter.raised();
    assert!(
        alerts.iter().any(|alert| alert.detail.contains("leaf 333")),
        "{alerts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_that_invents_a_listing_is_caught_with_evidence() {
    let (_dir, monitor) = run(Lie::Invent(120)).await;
    assert_alert_with_evidence(&monitor, AlertKind::DishonestIndex);
    let alerts = monitor.alerter.raised();
    assert!(
        alerts.iter().any(|alert| alert.detail.contains("leaf 120")),
        "{alerts:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_does_not_give_the_signed_root_is_an_alert() {
    let (_dir, monitor) = run(Lie::WrongRoot).await;
    let alerts = monitor.alerter.raised();
    assert!(
        alerts
            .iter()
            .any(|alert| alert.kind == AlertKind::DishonestIndex
                && alert.evidence.is_none()
                && alert.detail.contains("the checkpoint signs")),
        "{alerts:#?}"
    );
}
