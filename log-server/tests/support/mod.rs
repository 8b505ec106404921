//! What the tests that run the real `cairn-log` binary share: its key, starting it and waiting
//! until it answers, a free port, and a guard that leaves no server behind.
//!
//! Each test binary includes this module and uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `cairn-log serve`, killed when dropped (a failing test leaves no server behind).
pub struct Log {
    /// The process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
}

impl Drop for Log {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The log key `dir/log.key` for `origin`, made by `cairn-log keygen` the first time.
pub fn key(dir: &Path, origin: &str) -> PathBuf {
    let key = dir.join("log.key");
    if !key.exists() {
        let status = Command::new(env!("CARGO_BIN_EXE_cairn-log"))
            .args(["keygen", "--origin", origin, "--out"])
            .arg(&key)
            .stdout(Stdio::null())
            .status()
            .expect("run cairn-log keygen");
        assert!(status.success(), "keygen failed");
    }
    key
}

/// Starts `cairn-log serve --config <config>` listening on `port`, and waits (up to 60 s) until
/// it answers `/healthz`.
pub async fn start(config: &Path, port: u16, http: &reqwest::Client) -> Log {
    start_with_env(config, port, http, &[]).await
}

/// [`start`], with `env` added to the process's environment.
pub async fn start_with_env(
    config: &Path,
    port: u16,
    http: &reqwest::Client,
    env: &[(&str, &std::ffi::OsStr)],
) -> Log {
    let log = Log {
        child: Command::new(env!("CARGO_BIN_EXE_cairn-log"))
            .args(["serve", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start cairn-log"),
        base: format!("http://127.0.0.1:{port}"),
    };
    let started = Instant::now();
    loop {
        if let Ok(response) = http.get(format!("{}/healthz", log.base)).send().await {
            if response.status().is_success() {
                return log;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "cairn-log did not answer /healthz within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port free on loopback now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}
