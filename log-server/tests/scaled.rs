//! The scaled backend with real processes: `cairn-log serve` front-ends on one PostgreSQL (a
//! cluster of the test's own) and one S3 server (s3s-fs), as an operator runs them.
//!
//! - one front-end serves the whole HTTP API;
//! - three front-ends share one log: every acknowledged leaf is in it exactly once, a leaf
//!   sent to two front-ends at once is answered by both and found by a third, and the bucket's
//!   objects pass `cairn-monitor audit`;
//! - killing the lease holder hands integration to another within seconds, and a holder
//!   stopped past its lease (SIGSTOP) and woken (SIGCONT) takes nothing back.

mod support_pg;
mod support_s3;
mod support_scaled;

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use support_scaled::{Cluster, FrontEnd, PATIENCE};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_front_end_serves_the_whole_api_from_postgres_and_a_bucket() {
    let cluster = Cluster::start();
    let front = cluster.front_end("alone").await;

    let (first, duplicate) = cluster.add(&front, b"first leaf", Some("key-1")).await;
    assert_eq!((first, duplicate), (0, false));
    // The same idempotency key answers the first entry.
    assert_eq!(
        cluster.add(&front, b"another leaf", Some("key-1")).await,
        (0, true)
    );
    // The same leaf too.
    assert_eq!(cluster.add(&front, b"first leaf", None).await, (0, true));
    let leaves: Vec<Vec<u8>> = (0..300)
        .map(|n| format!("batch {n}").into_bytes())
        .collect();
    let indices = cluster.add_batch(&front, &leaves).await;
    assert_eq!(indices, (1..301).collect::<Vec<u64>>());
    cluster.wait_for_checkpoint(&front, 301).await;

    for path in [
        "tile/0/000",
        "tile/0/001.p/45",
        "tile/1/000.p/1",
        "tile/entries/000",
        "tile/entries/001.p/45",
    ] {
        let response = cluster
            .http
            .get(format!("{}/{path}", front.base))
            .send()
            .await
            .expect("GET a tile");
        assert_eq!(response.status(), 200, "{path}");
    }
    for path in [
        "proof/inclusion?index=7&size=301",
        "proof/consistency?old=5&new=301",
        "receipt/7",
        "readyz",
    ] {
        let response = cluster
            .http
            .get(format!("{}/{path}", front.base))
            .send()
            .await
            .expect("GET");
        let status = response.status();
        let body = response.text().await.expect("body");
        assert_eq!(status, 200, "{path}: {body}");
    }
    // The checkpoint reaches the bucket after the tiles, and the bucket audits.
    cluster.wait_for_bucket(301).await;
    let metrics = cluster
        .http
        .get(format!("{}/metrics", front.base))
        .send()
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("body");
    assert!(
        metrics.contains("cairn_log_publication_lag_entries"),
        "{metrics}"
    );
    let audit = cluster.audit_bucket();
    assert!(audit.contains("verified"), "{audit}");
    let leaves_in_bucket = cluster.bucket_leaves();
    assert_eq!(leaves_in_bucket.len(), 301);
    assert_eq!(leaves_in_bucket[0], b"first leaf");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_front_ends_share_one_log_and_each_leaf_is_in_it_once() {
    let cluster = Cluster::start();
    let fronts = [
        cluster.front_end("a").await,
        cluster.front_end("b").await,
        cluster.front_end("c").await,
    ];

    // Leaves spread over the three, one request at a time per leaf and in batches, at once.
    let mut acknowledged: HashMap<Vec<u8>, u64> = HashMap::new();
    let singles = futures_of(&cluster, &fronts, 60).await;
    for (leaf, index) in singles {
        assert!(acknowledged.insert(leaf, index).is_none());
    }
    for (n, front) in fronts.iter().enumerate() {
        let leaves: Vec<Vec<u8>> = (0..200)
            .map(|i| format!("batch of {n}: {i}").into_bytes())
            .collect();
        let indices = cluster.add_batch(front, &leaves).await;
        for (leaf, index) in leaves.into_iter().zip(indices) {
            assert!(acknowledged.insert(leaf, index).is_none());
        }
    }
    let distinct: BTreeSet<u64> = acknowledged.values().copied().collect();
    assert_eq!(
        distinct.len(),
        acknowledged.len(),
        "no index is given twice"
    );
    let total = acknowledged.len() as u64;
    assert_eq!(distinct.last().copied(), Some(total - 1), "no gap");

    // The same new leaf at two front-ends at once: both answer; a third finds the first.
    let (one, two) = tokio::join!(
        cluster.add(&fronts[0], b"sent twice at once", None),
        cluster.add(&fronts[1], b"sent twice at once", None)
    );
    let third = cluster.add(&fronts[2], b"sent twice at once", None).await;
    assert_eq!(third, (one.0.min(two.0), true), "{one:?} {two:?}");
    let total = total + u64::from(!one.1) + u64::from(!two.1);

    for front in &fronts {
        cluster.wait_for_checkpoint(front, total).await;
    }
    cluster.wait_for_bucket(total).await;
    let audit = cluster.audit_bucket();
    assert!(audit.contains("verified"), "{audit}");
    let in_bucket = cluster.bucket_leaves();
    assert_eq!(in_bucket.len() as u64, total);
    for (leaf, index) in &acknowledged {
        assert_eq!(&in_bucket[*index as usize], leaf, "leaf at {index}");
        assert_eq!(
            in_bucket.iter().filter(|found| *found == leaf).count(),
            1,
            "{index} is in the log once"
        );
    }
}

/// `per_front_end` single-leaf POSTs to each front-end, all at once: (leaf, index).
async fn futures_of(
    cluster: &Cluster,
    fronts: &[FrontEnd],
    per_front_end: usize,
) -> Vec<(Vec<u8>, u64)> {
    let mut tasks = Vec::new();
    for (n, front) in fronts.iter().enumerate() {
        for i in 0..per_front_end {
            let leaf = format!("single to {n}: {i}").into_bytes();
            let (http, url, token) = (
                cluster.http.clone(),
                format!("{}/add", front.base),
                cluster.token.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let response = http
                    .post(url)
                    .bearer_auth(token)
                    .body(leaf.clone())
                    .send()
                    .await
                    .expect("POST /add");
                let status = response.status();
                let body = response.text().await.expect("body");
                assert!(status.is_success(), "POST /add: {status} {body}");
                let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
                assert_eq!(json["duplicate"], false);
                (leaf, json["index"].as_u64().expect("an index"))
            }));
        }
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("the request task"));
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_moves_when_the_holder_dies_and_a_stopped_holder_takes_nothing_back() {
    let cluster = Cluster::start();
    let mut first = cluster.front_end("first").await;
    let first_token = cluster.wait_for_holder(first.pid()).await;
    let second = cluster.front_end("second").await;
    for n in 0..20 {
        cluster
            .add(&second, format!("before the kill {n}").as_bytes(), None)
            .await;
    }
    cluster.wait_for_checkpoint(&second, 20).await;

    // kill -9 the holder: the other takes the lease over and publishes within seconds.
    first.kill_hard();
    let killed_at = Instant::now();
    for n in 0..20 {
        cluster
            .add(&second, format!("after the kill {n}").as_bytes(), None)
            .await;
    }
    let second_token = cluster.wait_for_holder(second.pid()).await;
    assert!(second_token > first_token);
    cluster.wait_for_checkpoint(&second, 40).await;
    cluster.wait_for_bucket(40).await;
    assert!(
        killed_at.elapsed() < Duration::from_secs(20),
        "the takeover took {:?}",
        killed_at.elapsed()
    );

    // SIGSTOP the holder past its lease: a third front-end takes over. SIGCONT: the stopped
    // one learns it lost the lease and stores nothing; the new holder goes on.
    let third = cluster.front_end("third").await;
    second.signal("-STOP");
    let third_token = cluster.wait_for_holder(third.pid()).await;
    assert!(third_token > second_token);
    for n in 0..20 {
        cluster
            .add(&third, format!("while stopped {n}").as_bytes(), None)
            .await;
    }
    cluster.wait_for_checkpoint(&third, 60).await;
    second.signal("-CONT");
    for n in 0..20 {
        cluster
            .add(&second, format!("after waking {n}").as_bytes(), None)
            .await;
    }
    cluster.wait_for_checkpoint(&third, 80).await;
    cluster.wait_for_checkpoint(&second, 80).await;
    let (holder, token) = cluster.lease().await;
    assert_eq!(
        token, third_token,
        "the lease stayed with the third ({holder})"
    );
    let started = Instant::now();
    while !second.log().contains("lost the integrator lease") {
        assert!(
            started.elapsed() < PATIENCE,
            "the woken front-end did not notice it lost the lease: {}",
            second.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    cluster.wait_for_bucket(80).await;
    let audit = cluster.audit_bucket();
    assert!(audit.contains("verified"), "{audit}");
    assert_eq!(cluster.bucket_leaves().len(), 80);
}

/// Sends unique single leaves to `base` until `stop`, one at a time: the leaves acknowledged
/// (with their indices) and how many 503s with `Retry-After` came back.
async fn keep_adding(
    http: reqwest::Client,
    base: String,
    token: String,
    stop: tokio::sync::watch::Receiver<bool>,
) -> (Vec<(Vec<u8>, u64)>, u64) {
    let (mut acknowledged, mut refused) = (Vec::new(), 0);
    let mut n = 0u64;
    while !*stop.borrow() {
        n += 1;
        let leaf = format!("under load {n}").into_bytes();
        let Ok(response) = http
            .post(format!("{base}/add"))
            .bearer_auth(&token)
            .body(leaf.clone())
            .send()
            .await
        else {
            continue;
        };
        let status = response.status();
        let retry_after = response.headers().contains_key("retry-after");
        let body = response.text().await.unwrap_or_default();
        if status.is_success() {
            let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
            acknowledged.push((leaf, json["index"].as_u64().expect("an index")));
        } else {
            assert_eq!(status, 503, "{body}");
            assert!(retry_after, "a 503 says when to retry");
            assert!(body.contains("storage_unavailable"), "{body}");
            refused += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (acknowledged, refused)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_refuses_with_503_and_loses_nothing_acknowledged() {
    let cluster = Cluster::start();
    let front = cluster.front_end("alone").await;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let loader = tokio::spawn(keep_adding(
        cluster.http.clone(),
        front.base.clone(),
        cluster.token.clone(),
        stopped,
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.pg.stop("immediate");
    // While the database is down, writes are refused with 503 and Retry-After.
    let started = Instant::now();
    loop {
        let response = cluster
            .http
            .post(format!("{}/add", front.base))
            .bearer_auth(&cluster.token)
            .body("while the database is down")
            .send()
            .await
            .expect("POST /add");
        if response.status() == 503 {
            assert!(response.headers().contains_key("retry-after"));
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "no 503 while PostgreSQL is down"
        );
    }
    cluster.pg.start_again();
    // Writes resume by themselves.
    let started = Instant::now();
    loop {
        let response = cluster
            .http
            .post(format!("{}/add", front.base))
            .bearer_auth(&cluster.token)
            .body("after the restart")
            .send()
            .await
            .expect("POST /add");
        if response.status().is_success() {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "writes did not resume after the restart: {}",
            front.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.send_replace(true);
    let (acknowledged, refused) = loader.await.expect("the loader");
    assert!(refused > 0, "the loader saw the database down");
    let end = acknowledged
        .iter()
        .map(|(_, index)| index + 1)
        .max()
        .unwrap_or(0);
    cluster.wait_for_checkpoint(&front, end).await;
    cluster.wait_for_bucket(end).await;
    let in_bucket = cluster.bucket_leaves();
    for (leaf, index) in &acknowledged {
        assert_eq!(
            &in_bucket[*index as usize], leaf,
            "acknowledged leaf {index}"
        );
    }
    let audit = cluster.audit_bucket();
    assert!(audit.contains("verified"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_that_is_down_delays_publication_only() {
    let mut cluster = Cluster::start();
    let front = cluster.front_end("alone").await;
    cluster.add(&front, b"before the bucket goes", None).await;
    cluster.wait_for_bucket(1).await;
    cluster.s3.kill();
    // Sequencing goes on.
    for n in 0..10 {
        let (index, _) = cluster
            .add(
                &front,
                format!("while the bucket is down {n}").as_bytes(),
                None,
            )
            .await;
        assert_eq!(index, n + 1);
    }
    // Not ready, and the lag is in the metrics.
    let started = Instant::now();
    loop {
        let readyz = cluster
            .http
            .get(format!("{}/readyz", front.base))
            .send()
            .await
            .expect("GET /readyz");
        let metrics = cluster
            .http
            .get(format!("{}/metrics", front.base))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("body");
        if readyz.status() == 503 && metrics.contains("cairn_log_publication_lag_entries 10") {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "readyz {} and lag not reported: {metrics}",
            readyz.status()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Back: publication catches up and the log is ready again.
    cluster.s3.restart();
    cluster.wait_for_bucket(11).await;
    let started = Instant::now();
    loop {
        let readyz = cluster
            .http
            .get(format!("{}/readyz", front.base))
            .send()
            .await
            .expect("GET /readyz");
        if readyz.status() == 200 {
            break;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "not ready again: {}",
            readyz.text().await.unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let audit = cluster.audit_bucket();
    assert!(audit.contains("verified"), "{audit}");
}
