//! The words and exit codes of the real `cairn-monitor` binary, as a new user meets them: an
//! audit or a one-shot run says `verified:` and exits 0 only for a checkpoint it verified in
//! that run; an unreachable log (a closed loopback port) or an empty state fails with the
//! reason; a proven fork is kept in the state and fails every later run until `acknowledge`
//! records who and why; `--json` gives scripts the same verdicts; `verify-evidence` speaks in
//! sentences, not debug structures.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{audit_args, leaf, leaves, run_binary, signer, start, Shared, View};
use serde_json::Value;

/// A loopback URL where nothing listens: a port bound, then closed.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let address = listener.local_addr().expect("address");
    drop(listener);
    format!("http://{address}")
}

fn stdout(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn described(output: &std::process::Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        stdout(output),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json_args(mut args: Vec<String>) -> Vec<String> {
    args.push("--json".to_owned());
    args
}

fn json_of(output: &std::process::Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|error| panic!("not one JSON object ({error}): {}", described(output)))
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| (*word).to_owned()).collect()
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_audit_of_an_unreachable_log_fails_with_the_reason_and_claims_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(600, "honest"));
    let state = dir.path().join("audit");
    let first = run_binary(audit_args(&url, &state)).await;
    assert_eq!(first.status.code(), Some(0), "{}", described(&first));
    assert!(
        stdout(&first).starts_with("verified: example.com/dishonest size 600 root "),
        "{}",
        described(&first)
    );
    assert!(stdout(&first).contains("in this run (grown from size 0)"));
    // The log unchanged: verified again in this run, and said so.
    let again = run_binary(audit_args(&url, &state)).await;
    assert_eq!(again.status.code(), Some(0), "{}", described(&again));
    assert!(
        stdout(&again).contains("checked again"),
        "{}",
        described(&again)
    );

    // The same state, the log unreachable: nothing is verified in this run.
    let unreachable = closed_port_url();
    let failed = run_binary(audit_args(&unreachable, &state)).await;
    let said = stdout(&failed);
    assert_eq!(failed.status.code(), Some(1), "{}", described(&failed));
    assert!(!said.contains("verified:"), "{}", described(&failed));
    assert!(
        said.starts_with("FAILED: example.com/dishonest: not verified in this run: the log's checkpoint could not be fetched"),
        "{}",
        described(&failed)
    );
    assert!(
        said.contains("Connection refused"),
        "{}",
        described(&failed)
    );
    assert!(
        said.contains("(verified before, not checked now: size 600"),
        "{}",
        described(&failed)
    );
    let failed = run_binary(json_args(audit_args(&unreachable, &state))).await;
    assert_eq!(failed.status.code(), Some(1));
    let verdict = json_of(&failed);
    assert_eq!(verdict["ok"], false, "{verdict}");
    assert_eq!(verdict["exit_code"], 1, "{verdict}");
    let report = &verdict["logs"][0];
    assert_eq!(report["verified"], Value::Null, "{verdict}");
    assert_eq!(report["last_verified"]["size"], 600, "{verdict}");
    assert!(
        report["problem"]
            .as_str()
            .is_some_and(|problem| problem.contains(&unreachable)),
        "{verdict}"
    );

    // An empty state and an unreachable log: the reason, not only a warning.
    let empty = run_binary(audit_args(&unreachable, &dir.path().join("empty"))).await;
    let said = stdout(&empty);
    assert_eq!(empty.status.code(), Some(1), "{}", described(&empty));
    assert!(
        said.contains("could not be fetched"),
        "{}",
        described(&empty)
    );
    assert!(
        said.contains("nothing of this log was ever verified"),
        "{}",
        described(&empty)
    );

    // A successful run in JSON names the checkpoint verified in it.
    let verified = json_of(&run_binary(json_args(audit_args(&url, &state))).await);
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["exit_code"], 0, "{verified}");
    assert_eq!(verified["logs"][0]["verified"]["size"], 600, "{verified}");
    assert_eq!(
        verified["logs"][0]["verified"]["root"],
        View::of(leaves(600, "honest")).root().to_base64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incomplete_audit_says_how_far_it_got_and_that_it_resumes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    {
        let mut log = log.lock().expect("lock");
        log.client = View::of(leaves(2000, "honest"));
        log.missing_tiles_from = Some(3);
    }
    let state = dir.path().join("audit");
    let failed = run_binary(audit_args(&url, &state)).await;
    let said = stdout(&failed);
    assert_eq!(failed.status.code(), Some(1), "{}", described(&failed));
    assert!(!said.contains("verified:"), "{}", described(&failed));
    assert!(
        said.contains("incomplete: 768 of 2000 leaves verified when fetching stopped"),
        "{}",
        described(&failed)
    );
    assert!(said.contains("resumes"), "{}", described(&failed));
}

/// Runs `cairn-monitor` with `words` and the state `--state` of `state`.
async fn with_state(words: &[&str], state: &Path) -> std::process::Output {
    let mut arguments = args(words);
    arguments.extend(["--state".to_owned(), path_arg(state)]);
    run_binary(arguments).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proven_fork_fails_every_later_audit_until_an_operator_acknowledges_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    let honest = View::of(leaves(600, "honest"));
    let mut other = leaves(600, "honest");
    other[10] = leaf(10, "shown to somebody else");
    let forked = View::of(other);
    let state = dir.path().join("audit");

    log.lock().expect("lock").client = honest.clone();
    let first = run_binary(audit_args(&url, &state)).await;
    assert_eq!(first.status.code(), Some(0), "{}", described(&first));

    // The log shows the other view: a split view, proven with evidence.
    log.lock().expect("lock").client = forked.clone();
    let fork = run_binary(audit_args(&url, &state)).await;
    let said = stdout(&fork);
    assert_eq!(fork.status.code(), Some(2), "{}", described(&fork));
    assert!(!said.contains("verified:"), "{}", described(&fork));
    assert!(said.contains("ALERT split-view"), "{}", described(&fork));
    assert!(said.contains("incident 1,"), "{}", described(&fork));

    // Back to the first view: the proven fork is not forgotten.
    log.lock().expect("lock").client = honest.clone();
    for _ in 0..2 {
        let later = run_binary(audit_args(&url, &state)).await;
        let said = stdout(&later);
        assert_eq!(later.status.code(), Some(2), "{}", described(&later));
        assert!(!said.contains("verified:"), "{}", described(&later));
        assert!(
            said.contains("its checkpoint of size 600 was verified in this run, but"),
            "{}",
            described(&later)
        );
        assert!(
            said.contains("cairn-monitor acknowledge --state"),
            "{}",
            described(&later)
        );
    }
    let verdict = json_of(&run_binary(json_args(audit_args(&url, &state))).await);
    assert_eq!(verdict["exit_code"], 2, "{verdict}");
    let alert = &verdict["logs"][0]["alerts"][0];
    assert_eq!(alert["kind"], "split-view", "{verdict}");
    assert_eq!(alert["incident"], 1, "{verdict}");
    let evidence = alert["evidence"]
        .as_str()
        .expect("an evidence path")
        .to_owned();
    assert!(common::cli_accepts(Path::new(&evidence)));

    let listed = with_state(&["incidents", "--json"], &state).await;
    assert_eq!(listed.status.code(), Some(0), "{}", described(&listed));
    let listed = json_of(&listed);
    assert_eq!(listed[0]["id"], 1, "{listed}");
    assert_eq!(listed[0]["acknowledged"], Value::Null, "{listed}");
    let listed = with_state(&["incidents"], &state).await;
    assert!(
        stdout(&listed).contains("NOT ACKNOWLEDGED"),
        "{}",
        described(&listed)
    );

    // Acknowledging needs a reason and a known incident, and happens once.
    let refused = with_state(
        &["acknowledge", "7", "--reason", "checked", "--by", "alice"],
        &state,
    )
    .await;
    assert_eq!(refused.status.code(), Some(1), "{}", described(&refused));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no incident 7"));
    let refused = with_state(&["acknowledge", "1", "--by", "alice"], &state).await;
    assert_ne!(refused.status.code(), Some(0), "{}", described(&refused));
    let acknowledged = with_state(
        &[
            "acknowledge",
            "1",
            "--reason",
            "the operator rebuilt the log; fork reported to the auditors",
            "--by",
            "alice",
        ],
        &state,
    )
    .await;
    assert_eq!(
        acknowledged.status.code(),
        Some(0),
        "{}",
        described(&acknowledged)
    );
    assert!(stdout(&acknowledged).contains("incident 1 acknowledged by alice"));
    let twice = with_state(
        &[
            "acknowledge",
            "1",
            "--reason",
            "again",
            "--by",
            "bob",
            "--json",
        ],
        &state,
    )
    .await;
    assert_eq!(twice.status.code(), Some(1), "{}", described(&twice));
    let twice = json_of(&twice);
    assert_eq!(twice["ok"], false);
    assert!(
        twice["error"]
            .as_str()
            .is_some_and(|error| error.contains("already acknowledged by alice")),
        "{twice}"
    );

    // Acknowledged: the next audit of the first view passes; the evidence and the record stay.
    let after = run_binary(audit_args(&url, &state)).await;
    assert_eq!(after.status.code(), Some(0), "{}", described(&after));
    assert!(
        stdout(&after).starts_with("verified: "),
        "{}",
        described(&after)
    );
    assert!(common::cli_accepts(Path::new(&evidence)));
    let listed = json_of(&with_state(&["incidents", "--json"], &state).await);
    assert_eq!(listed[0]["acknowledged"]["by"], "alice", "{listed}");
    assert!(listed[0]["acknowledged"]["reason"]
        .as_str()
        .is_some_and(|reason| reason.contains("rebuilt")));
    // The other view is still not verified: it conflicts with the verified tree.
    log.lock().expect("lock").client = forked;
    let other = run_binary(audit_args(&url, &state)).await;
    assert_ne!(other.status.code(), Some(0), "{}", described(&other));
    assert!(
        !stdout(&other).contains("verified:"),
        "{}",
        described(&other)
    );
}

fn write_config(dir: &Path, url: &str) -> std::path::PathBuf {
    let path = dir.join("monitor.toml");
    let text = format!(
        "state_dir = {state:?}\nevidence_dir = {evidence:?}\n\n[[logs]]\nurl = {url:?}\n\
         key = {key:?}\n",
        state = dir.join("state"),
        evidence = dir.join("evidence"),
        key = signer().verifier().to_vkey(),
    );
    std::fs::write(&path, text).expect("writes");
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_shot_run_of_an_unreachable_log_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    log.lock().expect("lock").client = View::of(leaves(300, "honest"));
    for name in ["up", "down"] {
        std::fs::create_dir_all(dir.path().join(name)).expect("mkdir");
    }
    let reachable = write_config(&dir.path().join("up"), &url);
    let unreachable = write_config(&dir.path().join("down"), &closed_port_url());
    let once = |config: &Path| args(&["run", "--once", "--json", "--config", &path_arg(config)]);
    // The reminder interval's bound holds for the flag too.
    let mut out_of_range = once(&reachable);
    out_of_range.extend(["--alert-reminder-secs".to_owned(), "0".to_owned()]);
    let refused = run_binary(out_of_range).await;
    assert_eq!(refused.status.code(), Some(1), "{}", described(&refused));
    assert!(
        stdout(&refused).contains("alert_reminder_secs = 0 is out of range (1 to 86400)"),
        "{}",
        described(&refused)
    );
    let ok = run_binary(once(&reachable)).await;
    assert_eq!(ok.status.code(), Some(0), "{}", described(&ok));
    assert_eq!(json_of(&ok)["logs"][0]["verified"]["size"], 300);
    let down = run_binary(once(&unreachable)).await;
    assert_eq!(down.status.code(), Some(1), "{}", described(&down));
    let verdict = json_of(&down);
    assert_eq!(verdict["ok"], false, "{verdict}");
    assert!(verdict["logs"][0]["problem"]
        .as_str()
        .is_some_and(|problem| problem.contains("could not be fetched")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_evidence_says_what_the_evidence_proves_in_words_and_json() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log: Shared = Arc::default();
    let url = start(log.clone()).await;
    let state = dir.path().join("audit");
    log.lock().expect("lock").client = View::of(leaves(300, "honest"));
    run_binary(audit_args(&url, &state)).await;
    let mut other = leaves(300, "honest");
    other[1] = leaf(1, "forked");
    log.lock().expect("lock").client = View::of(other);
    let verdict = json_of(&run_binary(json_args(audit_args(&url, &state))).await);
    let evidence = verdict["logs"][0]["alerts"][0]["evidence"]
        .as_str()
        .unwrap_or_else(|| panic!("no evidence in {verdict}"))
        .to_owned();
    let vkey = signer().verifier().to_vkey();
    let output = run_binary(args(&["verify-evidence", &evidence, "--log-key", &vkey])).await;
    let said = stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{}", described(&output));
    assert!(
        said.starts_with(
            "evidence holds: log example.com/dishonest signed two different roots for its tree of size 300"
        ),
        "{said}"
    );
    assert!(!said.contains('{') && !said.contains("Hash("), "{said}");
    let output = run_binary(args(&[
        "verify-evidence",
        &evidence,
        "--log-key",
        &vkey,
        "--json",
    ]))
    .await;
    let proven = json_of(&output);
    assert_eq!(proven["ok"], true, "{proven}");
    assert_eq!(proven["conflict"], "same-size", "{proven}");
    assert_eq!(proven["size"], 300, "{proven}");
    // Refused evidence: exit 1, and JSON that says so.
    let output = run_binary(args(&[
        "verify-evidence",
        &path_arg(&dir.path().join("no such file")),
        "--log-key",
        &vkey,
        "--json",
    ]))
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(json_of(&output)["ok"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_converts_to_a_tlog_proof_and_back_and_each_form_verifies() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let world = cairn_spec::example::world(20);
    let receipt = world.receipt(7, &[0, 2]);
    let json_path = dir.path().join("receipt.json");
    std::fs::write(&json_path, receipt.to_json()).expect("writes");
    // Two policies: the witnesses only, and the witnesses and the TSA.
    let mut policy_text = format!("log {}\n", world.log.verifier().to_vkey());
    for (index, witness) in world.witnesses.iter().enumerate() {
        policy_text.push_str(&format!(
            "witness w{index} {}\n",
            witness.verifier().to_vkey()
        ));
    }
    policy_text.push_str("group two 2 w0 w1 w2\nquorum two\n");
    let witnesses_only = dir.path().join("witnesses.policy");
    std::fs::write(&witnesses_only, &policy_text).expect("writes");
    policy_text.push_str(&format!(
        "tsa test {}\n",
        base64::engine::general_purpose::STANDARD.encode(&world.tsa.root_der)
    ));
    let with_tsa = dir.path().join("tsa.policy");
    std::fs::write(&with_tsa, &policy_text).expect("writes");

    let proof_path = dir.path().join("receipt.tlog-proof");
    let converted = run_binary(args(&[
        "receipt",
        "convert",
        &path_arg(&json_path),
        "--to",
        "tlog-proof",
        "--out",
        &path_arg(&proof_path),
    ]))
    .await;
    assert_eq!(
        converted.status.code(),
        Some(0),
        "{}",
        described(&converted)
    );
    let said = String::from_utf8_lossy(&converted.stderr);
    assert!(
        said.contains("not verified") && said.contains("1 timestamp tokens"),
        "{said}"
    );
    let proof = std::fs::read_to_string(&proof_path).expect("the tlog-proof");
    assert_eq!(proof, receipt.to_tlog_proof());
    assert!(
        proof.starts_with("c2sp.org/tlog-proof@v1\nextra "),
        "{proof}"
    );
    // Never written over.
    let again = run_binary(args(&[
        "receipt",
        "convert",
        &path_arg(&json_path),
        "--to",
        "tlog-proof",
        "--out",
        &path_arg(&proof_path),
    ]))
    .await;
    assert_eq!(again.status.code(), Some(1), "{}", described(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists already"));

    // The tlog-proof verifies against a policy that asks for no timestamp, and is refused by
    // one that does (its timestamps were left out), in words and in JSON.
    let verify = |path: &Path, policy: &Path| {
        args(&[
            "verify-receipt",
            &path_arg(path),
            "--policy",
            &path_arg(policy),
            "--json",
        ])
    };
    let verified = json_of(&run_binary(verify(&proof_path, &witnesses_only)).await);
    assert_eq!(verified["ok"], true, "{verified}");
    assert_eq!(verified["index"], 7, "{verified}");
    let refused = run_binary(verify(&proof_path, &with_tsa)).await;
    assert_eq!(refused.status.code(), Some(1), "{}", described(&refused));
    assert_eq!(json_of(&refused)["ok"], false);
    let verified = json_of(&run_binary(verify(&json_path, &with_tsa)).await);
    assert_eq!(verified["timestamps"].as_array().map(Vec::len), Some(1));

    // Back to JSON: the same receipt without its timestamps.
    let back = run_binary(args(&[
        "receipt",
        "convert",
        &path_arg(&proof_path),
        "--to",
        "json",
    ]))
    .await;
    assert_eq!(back.status.code(), Some(0), "{}", described(&back));
    let back = cairn_spec::receipt::Receipt::from_json(&back.stdout).expect("a receipt");
    let mut expected = receipt.clone();
    expected.timestamps.clear();
    assert_eq!(back, expected);

    // A tlog-proof without its leaf needs --leaf; a wrong leaf does not verify.
    let mut bare = receipt.clone();
    bare.leaf = None;
    let bare_path = dir.path().join("bare.tlog-proof");
    std::fs::write(&bare_path, bare.to_tlog_proof()).expect("writes");
    let leafless = run_binary(verify(&bare_path, &witnesses_only)).await;
    assert_eq!(leafless.status.code(), Some(1), "{}", described(&leafless));
    assert!(
        json_of(&leafless)["error"]
            .as_str()
            .is_some_and(|error| error.contains("the leaf must be given")),
        "{}",
        described(&leafless)
    );
    let leaf_path = dir.path().join("leaf");
    for (leaf, accepted) in [(&world.leaves[7][..], true), (&b"another leaf"[..], false)] {
        std::fs::write(&leaf_path, leaf).expect("writes");
        let mut arguments = verify(&bare_path, &witnesses_only);
        arguments.extend(["--leaf".to_owned(), path_arg(&leaf_path)]);
        let output = run_binary(arguments).await;
        assert_eq!(output.status.success(), accepted, "{}", described(&output));
    }
}
