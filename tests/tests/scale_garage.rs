//! The scale test with real processes (issue 24): a three-node Garage cluster on loopback
//! holds the bucket, a sandbox (`cairn-sandbox --scale 3` on that bucket) runs PostgreSQL,
//! three `cairn-log` front-ends, two witnesses, a TSA and a monitor that follows the log
//! through the bucket's website. Producers spread single leaves over the three front-ends
//! while the test kills (SIGKILL) a random front-end and the integrator lease's holder several
//! times, restarting each, and kills one Garage node for a while. At the end:
//!
//! - every acknowledged leaf is in the bucket's entry bundles exactly once, at its index;
//! - no producer saw a failure but from a front-end that was down at the time (while the
//!   Garage node is down, none at all);
//! - the monitor verified the whole published tree and raised no alert;
//! - `cairn-monitor audit` of the bucket's objects (read through the website) passes.
//!
//! It needs Garage (`GARAGE_BIN`), so it is `#[ignore]`d: run it with tests/scale.sh, which
//! finds or names how to install Garage. Settings (environment): SCALE_ROUNDS (kill rounds, 3),
//! SCALE_PRODUCERS (concurrent producers, 12), SCALE_OUTAGE_SECS (how long the Garage node is
//! down, 15).

#[path = "scale_garage/garage.rs"]
mod garage;
#[path = "scale_garage/load.rs"]
mod load;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_tests::sandbox::scaled::{query_postgres, ExternalBucket};
use cairn_tests::sandbox::{Binaries, Options, Sandbox};
use garage::Garage;
use load::{Load, Record};
use rand::Rng as _;

/// How long a condition may take to come true: generous, for a loaded machine.
const PATIENCE: Duration = Duration::from_secs(120);
/// The sandbox's integrator lease term is 5 s: a takeover within this long is on time.
const TAKEOVER_LIMIT: Duration = Duration::from_secs(60);

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

/// When a front-end was down: from its kill to its restart.
struct Downtime {
    front_end: usize,
    from: Instant,
    to: Instant,
}

/// The test's tally for the figures.
#[derive(Default)]
struct Tally {
    kills: usize,
    takeovers: Vec<Duration>,
}

/// The integrator lease's holder (its listening address) and token.
fn lease(sandbox: &Sandbox) -> (String, i64) {
    let postgres = sandbox
        .layout()
        .scaled
        .as_ref()
        .expect("a scaled sandbox")
        .postgres;
    let row = query_postgres(
        postgres,
        "SELECT holder, token FROM cairn.leases WHERE name = 'integrator'",
    )
    .expect("read the lease");
    let (holder, token) = row.split_once('|').expect("holder|token");
    let listen = holder
        .rsplit_once("listening on ")
        .map(|(_, listen)| listen.trim().to_owned())
        .unwrap_or_default();
    (listen, token.trim().parse().expect("a token"))
}

/// Kills front-end `number` (from 0), waits `pause` under load, and starts it again.
async fn kill_and_restart(sandbox: &mut Sandbox, number: usize, pause: Duration) -> Downtime {
    let name = sandbox.front_ends()[number].0.clone();
    let from = Instant::now();
    tokio::task::block_in_place(|| sandbox.kill_component(&name)).expect("kill the front-end");
    tokio::time::sleep(pause).await;
    tokio::task::block_in_place(|| sandbox.start_component(&name))
        .unwrap_or_else(|error| panic!("restart {name}: {error}"));
    wait_healthy(&format!("http://{}", sandbox.front_ends()[number].1)).await;
    Downtime {
        front_end: number,
        from,
        to: Instant::now(),
    }
}

async fn wait_healthy(base: &str) {
    let http = reqwest::Client::new();
    let started = Instant::now();
    while !http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|response| response.status().is_success())
    {
        assert!(started.elapsed() < PATIENCE, "{base} is not healthy");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The tree size of the checkpoint at `url` (0 if there is none yet).
async fn checkpoint_size(http: &reqwest::Client, url: &str) -> u64 {
    let Ok(response) = http.get(format!("{url}/checkpoint")).send().await else {
        return 0;
    };
    if !response.status().is_success() {
        return 0;
    }
    let text = response.text().await.unwrap_or_default();
    text.lines()
        .nth(1)
        .and_then(|line| line.parse().ok())
        .unwrap_or(0)
}

/// Waits until the bucket's checkpoint covers `size` leaves; answers the size it covers.
async fn wait_for_bucket(http: &reqwest::Client, web: &str, size: u64) -> u64 {
    let started = Instant::now();
    loop {
        let published = checkpoint_size(http, web).await;
        if published >= size {
            return published;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the bucket's checkpoint covers {published} leaves, not {size}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every leaf of the first `size`, read from the bucket's entry bundles through the website.
async fn bucket_leaves(http: &reqwest::Client, web: &str, size: u64) -> Vec<Vec<u8>> {
    let mut leaves = Vec::new();
    for bundle in cairn_spec::tiles::entry_bundles_of_tree(size) {
        let url = format!("{web}/{}", bundle.path());
        let response = http.get(&url).send().await.expect("GET an entry bundle");
        assert!(
            response.status().is_success(),
            "GET {url}: {}",
            response.status()
        );
        let data = response.bytes().await.expect("the bundle");
        let entries = cairn_spec::tiles::decode_entry_bundle(bundle, &data)
            .unwrap_or_else(|error| panic!("{url}: {error}"));
        leaves.extend(entries.into_iter().map(<[u8]>::to_vec));
    }
    leaves
}

/// The sum of the monitor's samples of `metric` (0 if it has none).
fn metric_sum(metrics: &str, metric: &str) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(metric))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

/// Checks the producers' record against the log's leaves: each acknowledged leaf once, at its
/// index. Answers the number of distinct acknowledged leaves.
fn check_leaves(record: &Record, leaves: &[Vec<u8>]) -> usize {
    let mut seen: HashMap<&[u8], usize> = HashMap::new();
    for leaf in leaves {
        *seen.entry(leaf.as_slice()).or_default() += 1;
    }
    let mut distinct = HashMap::new();
    for (index, leaf) in &record.acknowledged {
        let at = usize::try_from(*index).expect("an index");
        assert_eq!(
            leaves.get(at).map(Vec::as_slice),
            Some(leaf.as_slice()),
            "the leaf acknowledged at {index} ({}) is not there",
            String::from_utf8_lossy(leaf)
        );
        assert_eq!(
            seen.get(leaf.as_slice()),
            Some(&1),
            "{} is in the log more than once",
            String::from_utf8_lossy(leaf)
        );
        if let Some(earlier) = distinct.insert(leaf.as_slice(), *index) {
            assert_eq!(earlier, *index, "one leaf acknowledged at two indices");
        }
    }
    distinct.len()
}

fn garage_bin() -> PathBuf {
    match std::env::var_os("GARAGE_BIN") {
        Some(path) if Path::new(&path).is_file() => PathBuf::from(path),
        _ => panic!(
            "GARAGE_BIN is not set to Garage's binary: run tests/scale.sh, or install Garage \
             (`cargo install garage@2.5.0 --locked`) and set GARAGE_BIN=~/.cargo/bin/garage"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs Garage (GARAGE_BIN) and a few minutes: run tests/scale.sh"]
async fn three_front_ends_on_garage_survive_kills_and_a_node_down() {
    let garage_bin = garage_bin();
    let rounds = setting("SCALE_ROUNDS", 3);
    let producers = setting("SCALE_PRODUCERS", 12) as usize;
    let outage = Duration::from_secs(setting("SCALE_OUTAGE_SECS", 15));
    let began = Instant::now();
    // PostgreSQL runs as the postgres user when the test runs as root: it must reach the
    // sandbox's directory.
    let dir = tempfile::Builder::new()
        .prefix("cairn-scale-garage-")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");

    let (mut garage, key_id, key_secret) = Garage::start(&garage_bin, dir.path()).await;
    let web = garage.web_url();
    println!(
        "Garage: 3 nodes, S3 API {}, website {web}",
        garage.endpoint()
    );
    let mut options = Options::new(dir.path().join("sandbox"));
    options.scale = 3;
    options.checkpoint_interval_ms = 500;
    options.monitor_poll_secs = 1;
    options.external_bucket = Some(ExternalBucket {
        endpoint: garage.endpoint(),
        bucket: garage::BUCKET.to_owned(),
        region: garage::REGION.to_owned(),
        access_key: key_id,
        secret_key: key_secret,
        web_url: Some(web.clone()),
    });
    let binaries = Binaries::locate().expect("the Cairn binaries");
    let mut sandbox = tokio::task::block_in_place(|| Sandbox::start(&options, binaries))
        .unwrap_or_else(|error| panic!("the sandbox starts on Garage: {error}"));
    let front_ends: Vec<String> = sandbox
        .front_ends()
        .iter()
        .map(|(_, addr)| format!("http://{addr}"))
        .collect();
    let monitor = sandbox.monitor_url().expect("a monitor");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");

    let load = Load::new(
        front_ends.clone(),
        sandbox.producer_token().expect("the token"),
    );
    let tasks = load.start(producers);
    let mut downtimes = Vec::new();
    let mut tally = Tally::default();
    tokio::time::sleep(Duration::from_secs(5)).await;
    for round in 1..=rounds {
        let victim = rand::thread_rng().gen_range(0..front_ends.len());
        println!("round {round}: kill -9 front-end {}", victim + 1);
        downtimes.push(kill_and_restart(&mut sandbox, victim, Duration::from_secs(2)).await);
        tally.kills += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;

        let (holder, token) = tokio::task::block_in_place(|| lease(&sandbox));
        let holder_number = front_ends
            .iter()
            .position(|base| base.ends_with(&holder))
            .unwrap_or_else(|| panic!("the lease holder {holder:?} is no front-end"));
        println!(
            "round {round}: kill -9 the lease holder, front-end {} (token {token})",
            holder_number + 1
        );
        let name = sandbox.front_ends()[holder_number].0.clone();
        let from = Instant::now();
        tokio::task::block_in_place(|| sandbox.kill_component(&name)).expect("kill the holder");
        tally.kills += 1;
        loop {
            let (now_holder, now_token) = tokio::task::block_in_place(|| lease(&sandbox));
            if now_token > token && now_holder != holder {
                tally.takeovers.push(from.elapsed());
                println!(
                    "round {round}: {now_holder} took the lease over after {:.1} s",
                    from.elapsed().as_secs_f64()
                );
                break;
            }
            assert!(from.elapsed() < TAKEOVER_LIMIT, "no takeover of the lease");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::task::block_in_place(|| sandbox.start_component(&name))
            .unwrap_or_else(|error| panic!("restart {name}: {error}"));
        wait_healthy(&front_ends[holder_number]).await;
        downtimes.push(Downtime {
            front_end: holder_number,
            from,
            to: Instant::now(),
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
    }

    // One Garage node (not the one the front-ends and the monitor talk to) down under load.
    let before_outage = checkpoint_size(&http, &web).await;
    println!("kill -9 Garage node 3 for {outage:?}");
    let outage_from = Instant::now();
    garage.kill_node(2);
    tokio::time::sleep(outage).await;
    let during_outage = checkpoint_size(&http, &web).await;
    garage.start_node(2);
    garage.wait_for_node(2).await;
    let outage_to = Instant::now();
    println!("Garage node 3 is back; the bucket's checkpoint went from {before_outage} to {during_outage} meanwhile");
    tokio::time::sleep(Duration::from_secs(3)).await;
    load.stop();
    for task in tasks {
        task.await.expect("a producer");
    }
    let load_secs = began.elapsed().as_secs_f64();

    let record = std::mem::take(&mut *load.record.lock().expect("the record"));
    assert!(
        record.abandoned.is_empty(),
        "leaves never acknowledged: {:?}",
        record.abandoned.len()
    );
    // A failure is expected only from a front-end that was down during the attempt.
    let unexplained: Vec<_> = record
        .failures
        .iter()
        .filter(|failure| {
            !downtimes.iter().any(|down| {
                down.front_end == failure.front_end
                    && failure.started <= down.to
                    && failure.ended >= down.from
            })
        })
        .collect();
    let during_outage_failures: Vec<_> = record
        .failures
        .iter()
        .filter(|failure| failure.ended >= outage_from && failure.started <= outage_to)
        .collect();
    assert!(
        during_outage_failures.is_empty(),
        "producers saw failures while a Garage node was down: {during_outage_failures:?}"
    );
    assert!(
        unexplained.is_empty(),
        "failures from front-ends that were up: {unexplained:?}"
    );
    assert!(
        during_outage > before_outage,
        "publication stopped while one Garage node of three was down ({before_outage} → {during_outage})"
    );

    let highest = record
        .acknowledged
        .iter()
        .map(|(index, _)| *index)
        .max()
        .expect("acknowledged leaves");
    let size = wait_for_bucket(&http, &web, highest + 1).await;
    let leaves = bucket_leaves(&http, &web, size).await;
    let distinct = check_leaves(&record, &leaves);

    // The monitor follows the bucket: it verifies the whole tree and raises nothing.
    let started = Instant::now();
    let metrics = loop {
        let metrics = http
            .get(format!("{monitor}/metrics"))
            .send()
            .await
            .expect("the monitor's metrics")
            .text()
            .await
            .expect("metrics");
        if metric_sum(&metrics, "cairn_monitor_verified_size") >= size as f64 {
            break metrics;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "the monitor did not verify {size} leaves: {metrics}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(
        metric_sum(&metrics, "cairn_monitor_alerts_total"),
        0.0,
        "the monitor raised alerts: {metrics}"
    );
    let exited = sandbox.exited();
    assert!(exited.is_empty(), "components died: {exited:?}");

    // The bucket's objects, read through the website, pass an audit against the log's key.
    let audit = std::process::Command::new(
        Binaries::locate()
            .and_then(|binaries| binaries.path("cairn-monitor"))
            .expect("cairn-monitor"),
    )
    .args([
        "audit",
        "--log",
        &web,
        "--log-key",
        &sandbox.layout().log_vkey,
    ])
    .arg("--state")
    .arg(dir.path().join("audit-state"))
    .output()
    .expect("runs cairn-monitor audit");
    assert!(
        audit.status.success(),
        "cairn-monitor audit of the bucket: {}{}",
        String::from_utf8_lossy(&audit.stdout),
        String::from_utf8_lossy(&audit.stderr)
    );

    let takeovers: Vec<String> = tally
        .takeovers
        .iter()
        .map(|took| format!("{:.1} s", took.as_secs_f64()))
        .collect();
    println!(
        "scale test on Garage: {distinct} leaves acknowledged ({} answered as duplicates of a \
         lost answer) in {load_secs:.0} s of load from {producers} producers over 3 front-ends; \
         {} front-end kills (-9), {} lease takeovers ({}); {} failed attempts, all at a \
         front-end that was down; Garage node 3 down {:.0} s with no failed write; the bucket \
         holds {size} leaves, the monitor verified them with no alert, `cairn-monitor audit` \
         passed; {:.0} s in all",
        record.duplicates,
        tally.kills,
        tally.takeovers.len(),
        takeovers.join(", "),
        record.failures.len(),
        (outage_to - outage_from).as_secs_f64(),
        began.elapsed().as_secs_f64(),
    );
    for failure in record.failures.iter().take(10) {
        println!("a failed attempt: {}", failure.reason);
    }
    let unclean = sandbox.stop();
    if !unclean.is_empty() {
        println!("components that did not stop cleanly on SIGTERM: {unclean:?}");
    }
}
