//! `cairn-log migrate` with real processes: a log that ran on its embedded store is copied into
//! PostgreSQL and a bucket (s3s-fs), the copy is proved, and a front-end of the scaled backend
//! then serves the same checkpoint and goes on from it; the bucket passes `cairn-monitor
//! audit`. A second run finds everything there and copies nothing; the copy of another log
//! into the same target is refused.

mod support_pg;
mod support_s3;
mod support_scaled;

use std::process::Command;

use support_scaled::Cluster;

/// The checkpoint note `base` serves.
async fn checkpoint(cluster: &Cluster, base: &str) -> String {
    cluster
        .http
        .get(format!("{base}/checkpoint"))
        .send()
        .await
        .expect("GET /checkpoint")
        .text()
        .await
        .expect("body")
}

/// Runs `cairn-log migrate --from <data_dir> --config <config>`: its output, or its error.
fn migrate(data_dir: &std::path::Path, config: &std::path::Path) -> Result<String, String> {
    let output = Command::new(env!("CARGO_BIN_EXE_cairn-log"))
        .args(["migrate", "--from"])
        .arg(data_dir)
        .arg("--config")
        .arg(config)
        .output()
        .expect("runs cairn-log migrate");
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embedded_log_moves_into_postgres_and_a_bucket_with_the_same_tree() {
    let cluster = Cluster::start();

    // A log on one machine: 700 leaves, some named by an idempotency key.
    let (embedded_config, port) = cluster.write_config("embedded", false);
    let mut embedded = cluster.start_log("embedded", &embedded_config, port).await;
    cluster.add(&embedded, b"first", Some("key-1")).await;
    let leaves: Vec<Vec<u8>> = (0..699).map(|n| format!("leaf {n}").into_bytes()).collect();
    cluster.add_batch(&embedded, &leaves).await;
    cluster.wait_for_checkpoint(&embedded, 700).await;
    // A clean stop signs the final checkpoint.
    embedded.signal("-TERM");
    let status = embedded
        .child
        .take()
        .expect("running")
        .wait()
        .expect("exits");
    assert!(status.success(), "{}", embedded.log());
    let data_dir = cluster.dir.path().join("embedded");

    let (scaled_config, port) = cluster.write_config("front", true);
    let report = migrate(&data_dir, &scaled_config).expect("the migration succeeds");
    assert!(
        report.contains("migrated: 700 entries (700 copied now)"),
        "{report}"
    );
    assert!(
        report.contains("of size 700 carried over and published"),
        "{report}"
    );
    assert!(
        report.contains("proof: the copy's root at size 700"),
        "{report}"
    );

    // The bucket holds the log, audited from its objects alone.
    assert_eq!(cluster.bucket_checkpoint_size(), 700);
    let audit = cluster.audit_bucket();
    assert!(audit.contains("verified"), "{audit}");
    let in_bucket = cluster.bucket_leaves();
    assert_eq!(in_bucket[0], b"first");
    assert_eq!(in_bucket[699], b"leaf 698");

    // Again: everything is there and matches; nothing is copied.
    let again = migrate(&data_dir, &scaled_config).expect("a second run succeeds");
    assert!(
        again.contains("700 entries already in the target match"),
        "{again}"
    );
    assert!(again.contains("(0 copied now)"), "{again}");

    // A front-end serves the same signed checkpoint, and goes on from it.
    let front = cluster.start_log("front", &scaled_config, port).await;
    let served = checkpoint(&cluster, &front.base).await;
    let in_bucket_note =
        std::fs::read_to_string(cluster.s3.object_file("checkpoint")).expect("checkpoint");
    assert_eq!(
        served.lines().take(3).collect::<Vec<_>>(),
        in_bucket_note.lines().take(3).collect::<Vec<_>>()
    );
    assert_eq!(
        cluster.add(&front, b"first", Some("key-1")).await,
        (0, true)
    );
    assert_eq!(
        cluster.add(&front, b"after the move", None).await,
        (700, false)
    );
    cluster.wait_for_bucket(701).await;
    let audit = cluster.audit_bucket();
    assert!(audit.contains("verified"), "{audit}");
    // A clean stop gives the lease up.
    let mut front = front;
    front.signal("-TERM");
    front.child.take().expect("running").wait().expect("exits");

    // Another log into the same target is refused, and changes nothing.
    let (other_config, port) = cluster.write_config("other", false);
    let mut other = cluster.start_log("other", &other_config, port).await;
    cluster.add(&other, b"another log", None).await;
    cluster.wait_for_checkpoint(&other, 1).await;
    other.signal("-TERM");
    other.child.take().expect("running").wait().expect("exits");
    let refused = migrate(&cluster.dir.path().join("other"), &scaled_config)
        .expect_err("another log is refused");
    assert!(refused.contains("another log"), "{refused}");
    assert_eq!(cluster.bucket_checkpoint_size(), 701);
}
