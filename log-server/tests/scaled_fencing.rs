//! Fencing of the scaled backend with real processes under load: three `cairn-log serve`
//! front-ends on one PostgreSQL and one S3 server (s3s-fs), a real `cairn-witness`, and
//! producers writing to every front-end all along.
//!
//! - only the holder of the integrator lease asks the witness to cosign: the followers serve the
//!   checkpoints it published, cosignatures included, and ask nothing;
//! - the holder stopped past its lease (SIGSTOP) is replaced within seconds; woken (SIGCONT),
//!   it publishes nothing and asks the witness nothing more; the holder killed (kill -9) is
//!   replaced within seconds;
//! - all along, the bucket's `checkpoint` object never goes back and never shows two trees at
//!   one size, every acknowledged leaf is in the log exactly once at the index it was given,
//!   and the bucket passes `cairn-monitor audit`.

mod support_pg;
mod support_s3;
mod support_scaled;

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

use support_scaled::{Cluster, FrontEnd, PATIENCE};
use tokio::sync::watch;

/// What a producer sends to one front-end until told to stop: unique leaves, one request at a
/// time. Answers the leaves acknowledged with their indices. A front-end that is stopped,
/// killed or refusing (503) acknowledges nothing; the producer goes on.
async fn produce(
    http: reqwest::Client,
    base: String,
    token: String,
    label: String,
    stop: watch::Receiver<bool>,
) -> Vec<(Vec<u8>, u64)> {
    let mut acknowledged = Vec::new();
    let mut n = 0u64;
    while !*stop.borrow() {
        n += 1;
        let leaf = format!("{label} leaf {n}").into_bytes();
        let sent = http
            .post(format!("{base}/add"))
            .bearer_auth(&token)
            .timeout(Duration::from_secs(5))
            .body(leaf.clone())
            .send()
            .await;
        let Ok(response) = sent else {
            // Stopped (the request times out) or killed (refused): try again a little later.
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            assert_eq!(json["duplicate"], false, "{body}");
            acknowledged.push((leaf, json["index"].as_u64().expect("an index")));
        } else {
            assert_eq!(status, 503, "{body}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    acknowledged
}

/// Watches the bucket's `checkpoint` object until told to stop: every (size, root) it showed.
/// Fails at once if it goes back or shows another root at a size it showed before.
async fn watch_bucket(
    cluster_checkpoint: std::path::PathBuf,
    stop: watch::Receiver<bool>,
) -> BTreeMap<u64, String> {
    let mut seen: BTreeMap<u64, String> = BTreeMap::new();
    let mut last = 0u64;
    loop {
        let stopping = *stop.borrow();
        let note = std::fs::read_to_string(&cluster_checkpoint).unwrap_or_default();
        // A note replaced while being read may be cut short: only a whole body counts (origin,
        // size and root, then the blank line before the signatures).
        if let Some((body, _)) = note.split_once("\n\n") {
            let mut lines = body.lines().skip(1);
            if let (Some(size), Some(root)) = (
                lines.next().and_then(|line| line.parse::<u64>().ok()),
                lines.next(),
            ) {
                assert!(
                    size >= last,
                    "the bucket's checkpoint went back from {last} to {size}"
                );
                if let Some(known) = seen.get(&size) {
                    assert_eq!(known, root, "two trees of size {size} in the bucket");
                }
                seen.insert(size, root.to_owned());
                last = size;
            }
        }
        if stopping {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The number of cosigning requests `front_end` sent to witnesses (0 if it sent none).
async fn witness_requests(cluster: &Cluster, front_end: &FrontEnd) -> u64 {
    let metrics = cluster
        .http
        .get(format!("{}/metrics", front_end.base))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    metrics
        .lines()
        .filter(|line| line.starts_with("cairn_log_witness_requests_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Whether the checkpoint `front_end` serves carries a cosignature of `witness`.
async fn serves_cosigned(cluster: &Cluster, front_end: &FrontEnd, witness: &str) -> bool {
    let note = cluster
        .http
        .get(format!("{}/checkpoint", front_end.base))
        .send()
        .await
        .expect("GET /checkpoint")
        .text()
        .await
        .expect("body");
    note.lines()
        .any(|line| line.starts_with(&format!("— scaled.cairn.example/{witness} ")))
}

/// Waits until the bucket's checkpoint covers more than `size`, within `limit`.
async fn wait_for_bucket_beyond(cluster: &Cluster, size: u64, limit: Duration, what: &str) {
    let started = Instant::now();
    while cluster.bucket_checkpoint_size() <= size {
        assert!(
            started.elapsed() < limit,
            "{what}: the bucket's checkpoint stayed at {} for {limit:?}",
            cluster.bucket_checkpoint_size()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_holder_alone_publishes_through_stops_and_kills_under_load() {
    let mut cluster = Cluster::start();
    let _witness = cluster.start_witness("witness-1").await;
    let mut fronts = vec![cluster.front_end("a").await];
    let first_token = cluster.wait_for_holder(fronts[0].pid()).await;
    fronts.push(cluster.front_end("b").await);
    fronts.push(cluster.front_end("c").await);

    let (stop, stopped) = watch::channel(false);
    let watcher = tokio::spawn(watch_bucket(
        cluster.s3.object_file("checkpoint"),
        stopped.clone(),
    ));
    let producers: Vec<_> = fronts
        .iter()
        .map(|front| {
            tokio::spawn(produce(
                cluster.http.clone(),
                front.base.clone(),
                cluster.token.clone(),
                front.base.clone(),
                stopped.clone(),
            ))
        })
        .collect();

    // Under load, the followers serve cosigned checkpoints and never ask the witness.
    wait_for_bucket_beyond(&cluster, 50, PATIENCE, "at first").await;
    for front in &fronts {
        cluster.wait_for_checkpoint(front, 50).await;
        assert!(
            serves_cosigned(&cluster, front, "witness-1").await,
            "{}",
            front.base
        );
    }
    assert!(
        witness_requests(&cluster, &fronts[0]).await > 0,
        "the holder asks"
    );
    for follower in &fronts[1..] {
        assert_eq!(
            witness_requests(&cluster, follower).await,
            0,
            "{} asked",
            follower.base
        );
    }

    // SIGSTOP the holder past its lease: another takes over and publishes within seconds.
    fronts[0].signal("-STOP");
    let stopped_at = cluster.bucket_checkpoint_size();
    let started = Instant::now();
    let (holder, second_token) = loop {
        let (holder, token) = cluster.lease().await;
        if token > first_token {
            break (holder, token);
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no takeover from the stopped holder"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    wait_for_bucket_beyond(
        &cluster,
        stopped_at + 20,
        Duration::from_secs(20),
        "after the stop",
    )
    .await;
    let second = fronts
        .iter()
        .position(|front| holder.contains(&format!(" pid {} ", front.pid())))
        .expect("a front-end holds the lease");
    assert_ne!(second, 0, "the stopped process holds nothing");

    // SIGCONT: the woken process learns it lost the lease, asks the witness at most to finish
    // the round it was in, and publishes nothing (the watcher checks the bucket all along),
    // while the new holder publishes on.
    fronts[0].signal("-CONT");
    let started = Instant::now();
    while !fronts[0].log().contains("lost the integrator lease") {
        assert!(
            started.elapsed() < PATIENCE,
            "the woken front-end did not notice it lost the lease: {}",
            fronts[0].log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let asked_on_waking = witness_requests(&cluster, &fronts[0]).await;
    // Three more checkpoints published by the new holder, which the woken one serves.
    for _ in 0..3 {
        let at = cluster.bucket_checkpoint_size();
        wait_for_bucket_beyond(&cluster, at, PATIENCE, "after waking").await;
    }
    cluster
        .wait_for_checkpoint(&fronts[0], cluster.bucket_checkpoint_size())
        .await;
    let asked_later = witness_requests(&cluster, &fronts[0]).await;
    assert!(
        asked_later <= asked_on_waking + 1,
        "the woken front-end asked the witness {} more times after losing the lease",
        asked_later - asked_on_waking
    );
    assert_eq!(
        cluster.lease().await.1,
        second_token,
        "the lease stayed where it went"
    );

    // kill -9 of the new holder: another takes over within seconds.
    let killed_at = cluster.bucket_checkpoint_size();
    fronts[second].kill_hard();
    let started = Instant::now();
    let third_token = loop {
        let token = cluster.lease().await.1;
        if token > second_token {
            break token;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no takeover from the killed holder"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    wait_for_bucket_beyond(
        &cluster,
        killed_at + 20,
        Duration::from_secs(20),
        "after the kill",
    )
    .await;

    stop.send_replace(true);
    let mut acknowledged: Vec<(Vec<u8>, u64)> = Vec::new();
    for producer in producers {
        acknowledged.extend(producer.await.expect("a producer"));
    }
    let seen = watcher.await.expect("the bucket watcher");
    assert!(seen.len() > 3, "the watcher saw the bucket move: {seen:?}");

    // Every acknowledged leaf is in the log once, at its index.
    let end = acknowledged
        .iter()
        .map(|(_, index)| index + 1)
        .max()
        .expect("leaves");
    let alive: Vec<&FrontEnd> = fronts
        .iter()
        .filter(|front| front.child.is_some())
        .collect();
    for front in &alive {
        cluster.wait_for_checkpoint(front, end).await;
    }
    cluster.wait_for_bucket(end).await;
    let in_bucket = cluster.bucket_leaves();
    let distinct: HashSet<&Vec<u8>> = in_bucket.iter().collect();
    assert_eq!(
        distinct.len(),
        in_bucket.len(),
        "no leaf is in the log twice"
    );
    for (leaf, index) in &acknowledged {
        assert_eq!(
            &in_bucket[*index as usize], leaf,
            "acknowledged leaf {index}"
        );
    }
    let audit = cluster.audit_bucket();
    assert!(audit.contains("verified"), "{audit}");
    assert!(third_token > second_token && second_token > first_token);
    // The last checkpoints were asked for by the last holder only.
    let holder = cluster.lease().await.0;
    for front in &alive {
        if !holder.contains(&format!(" pid {} ", front.pid())) {
            assert!(serves_cosigned(&cluster, front, "witness-1").await);
        }
    }
}
