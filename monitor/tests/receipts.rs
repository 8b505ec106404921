//! `verify-receipt` given many receipts (several files, a directory) in one run of the real
//! binary: each receipt gets the verdict it gets alone, a bad one among good ones is named and
//! fails the run, and the tally says how many verified.

use std::path::Path;

use base64::Engine as _;
use cairn_spec::example::World;
use serde_json::Value;

fn policy(world: &World, dir: &Path) -> std::path::PathBuf {
    let mut text = format!("log {}\n", world.log.verifier().to_vkey());
    for (index, witness) in world.witnesses.iter().enumerate() {
        text.push_str(&format!(
            "witness w{index} {}\n",
            witness.verifier().to_vkey()
        ));
    }
    text.push_str("group two 2 w0 w1 w2\nquorum two\n");
    text.push_str(&format!(
        "tsa test {}\n",
        base64::engine::general_purpose::STANDARD.encode(&world.tsa.root_der)
    ));
    let path = dir.join("policy.txt");
    std::fs::write(&path, text).expect("writes the policy");
    path
}

fn verify(receipts: &[&Path], policy: &Path, json: bool) -> std::process::Output {
    let mut args = vec!["verify-receipt".to_owned()];
    args.extend(receipts.iter().map(|path| path.display().to_string()));
    args.extend(["--policy".to_owned(), policy.display().to_string()]);
    if json {
        args.push("--json".to_owned());
    }
    run_binary(args)
}

/// The real binary with these arguments.
fn run_binary(args: Vec<String>) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_cairn-monitor"))
        .args(&args)
        .output()
        .expect("runs")
}

fn lines(output: &std::process::Output) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn many_receipts_each_get_their_own_verdict_and_one_bad_one_fails_the_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let world = cairn_spec::example::world(40);
    let policy = policy(&world, dir.path());
    let receipts_dir = dir.path().join("receipts");
    std::fs::create_dir(&receipts_dir).expect("mkdir");
    // Ten receipts over two checkpoints (most share one, as an auditor's do), and a tlog-proof.
    for index in 0..10usize {
        let receipt = world.receipt_at(index, 30 + (index % 2) as u64, &[0, 2]);
        std::fs::write(
            receipts_dir.join(format!("r{index:02}.json")),
            receipt.to_json(),
        )
        .expect("writes");
    }
    std::fs::write(receipts_dir.join(".hidden"), "not a receipt").expect("writes");
    std::fs::create_dir(receipts_dir.join("subdirectory")).expect("mkdir");

    let all_good = verify(&[&receipts_dir], &policy, false);
    assert_eq!(all_good.status.code(), Some(0), "{:?}", lines(&all_good));
    let said = lines(&all_good);
    assert_eq!(said.len(), 11, "{said:?}");
    assert!(said[3].starts_with(&format!(
        "{}: verifies: leaf 3 of log",
        receipts_dir.join("r03.json").display()
    )));
    assert_eq!(said[10], "10 receipts: 10 verified, 0 did not");

    // One tampered receipt (its leaf changed), one file that is no receipt, one missing leaf
    // hash: each is named with its reason, the others still verify, the run fails.
    let mut tampered = world.receipt_at(4, 31, &[0, 2]);
    tampered.leaf = Some(b"another leaf".to_vec());
    std::fs::write(receipts_dir.join("r04.json"), tampered.to_json()).expect("writes");
    let junk = dir.path().join("junk.json");
    std::fs::write(&junk, "{}").expect("writes");
    let single = receipts_dir.join("r05.json");
    let mixed = verify(&[&receipts_dir, &junk, &single], &policy, true);
    assert_eq!(mixed.status.code(), Some(1), "{:?}", lines(&mixed));
    let results: Vec<Value> = lines(&mixed)
        .iter()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(results.len(), 13, "{results:?}");
    for (position, result) in results[..12].iter().enumerate() {
        let bad = position == 4 || position == 10;
        assert_eq!(result["ok"], !bad, "{position}: {result}");
        if !bad {
            assert_eq!(result["timestamps"].as_array().map(Vec::len), Some(1));
        }
    }
    assert!(results[4]["file"]
        .as_str()
        .is_some_and(|file| file.ends_with("r04.json")));
    assert!(
        results[4]["error"]
            .as_str()
            .is_some_and(|error| error.contains("does not verify")),
        "{}",
        results[4]
    );
    assert!(results[10]["error"].as_str().is_some(), "{}", results[10]);
    assert_eq!(results[11]["index"], 5);
    assert_eq!(
        results[12],
        serde_json::json!({"ok": false, "receipts": 12, "verified": 10, "failed": 2})
    );

    // The tampered receipt alone fails as it did among the others.
    let alone = verify(&[&receipts_dir.join("r04.json")], &policy, true);
    assert_eq!(alone.status.code(), Some(1));
    // --leaf is for one receipt only.
    let with_leaf = run_binary(vec![
        "verify-receipt".to_owned(),
        receipts_dir.display().to_string(),
        "--policy".to_owned(),
        policy.display().to_string(),
        "--leaf".to_owned(),
        junk.display().to_string(),
    ]);
    assert_eq!(with_leaf.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&with_leaf.stderr).contains("--leaf is for one receipt"));
}
