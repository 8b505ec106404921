//! The `cairn-log` binary's own commands, run as a user would.

use std::process::Command;

fn token(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cairn-log"))
        .arg("token")
        .args(args)
        .output()
        .expect("cairn-log runs")
}

#[test]
fn token_prints_a_producer_entry_or_a_principal_with_its_role() {
    let output = token(&["--name", "billing"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(
        text.contains("[[producers]]\nname = \"billing\"\ntoken_sha256 = \""),
        "{text}"
    );

    let output = token(&["--name", "auditor@example.com", "--role", "reader"]);
    assert!(output.status.success());
    let text = String::from_utf8(output.stdout).expect("UTF-8");
    assert!(
        text.contains("[[principals]]\nname = \"auditor@example.com\"\nrole = \"reader\"\n"),
        "{text}"
    );
    let token = text
        .lines()
        .find_map(|line| line.strip_prefix("token: "))
        .expect("a token line");
    assert_eq!(token.len(), 64, "32 random bytes in hex");
    assert!(text.contains(&format!(
        "token_sha256 = \"{}\"",
        cairn_log::config::token_digest_hex(token)
    )));
}

#[test]
fn token_refuses_a_name_that_toml_or_events_would_need_escaped() {
    for name in ["", "quote\"d", "new\nline", "spa ce", &"x".repeat(129)] {
        let output = token(&["--name", name]);
        assert!(!output.status.success(), "{name:?} accepted");
    }
    let output = token(&["--name", "ok", "--role", "superuser"]);
    assert!(!output.status.success(), "an unknown role is refused");
}

#[test]
fn serve_refuses_an_unknown_storage_backend_and_names_the_known_ones() {
    let dir = tempfile::tempdir().expect("dir");
    let config = dir.path().join("log.toml");
    std::fs::write(&config, "storage = \"postgres\"\n").expect("write log.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_cairn-log"))
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .expect("run cairn-log serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown variant `postgres`") && stderr.contains("embedded"),
        "{stderr}"
    );
    let output = Command::new(env!("CARGO_BIN_EXE_cairn-log"))
        .args(["serve", "--storage", "s3"])
        .output()
        .expect("run cairn-log serve");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown storage backend `s3` (known: embedded, scaled)"),
        "{stderr}"
    );
}
