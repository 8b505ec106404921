//! End-to-end: a flood of idle connections past the real `cairn-log`'s file-descriptor limit
//! (`ulimit -n 128`, and a connection cap set too high for it, so that accepting really fails
//! with EMFILE). The log pauses its accepts, sheds idle connections, still answers /healthz and
//! takes a leaf, and says so in a few warning lines rather than one per failed accept.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod common;

use common::DevLog;

/// Idle connections opened: three times the process's open-files limit.
const FLOOD: usize = 384;

/// The generous bound on an answer behind the flood.
const BOUND: Duration = Duration::from_secs(10);

fn request(addr: &str, head: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .set_read_timeout(Some(BOUND))
        .expect("sets a read timeout");
    stream
        .write_all(
            format!(
                "{head}connection: close\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
        .expect("sends");
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
}

#[test]
fn a_flood_past_the_open_files_limit_is_shed_and_logged_in_a_few_lines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = DevLog::start(
        dir.path(),
        "[http]\nmax_connections = 100000\nidle_timeout_ms = 60000\nheader_read_timeout_ms = 60000\n",
        "ulimit -n 128 &&",
    );
    let flooding = Instant::now();
    let mut flood = Vec::new();
    for _ in 0..FLOOD {
        match TcpStream::connect(&log.addr) {
            Ok(stream) => flood.push(stream),
            // The backlog may be full: the flood is as large as the kernel lets it be.
            Err(_) => break,
        }
    }
    assert!(
        flood.len() > 128,
        "only {} connections were opened",
        flood.len()
    );

    let started = Instant::now();
    let health = request(&log.addr, "GET /healthz HTTP/1.1\r\nhost: e2e\r\n", "");
    let waited = started.elapsed();
    assert!(
        health.starts_with("HTTP/1.1 200"),
        "healthz answered {health:?}"
    );
    assert!(waited < BOUND, "healthz took {waited:?}");
    let added = request(
        &log.addr,
        &format!(
            "POST /add HTTP/1.1\r\nhost: e2e\r\nauthorization: Bearer {}\r\n",
            log.token
        ),
        "a leaf behind a flood",
    );
    assert!(
        added.starts_with("HTTP/1.1 200"),
        "POST /add answered {added:?}"
    );
    drop(flood);
    drop(log);

    let stderr = std::fs::read_to_string(dir.path().join("log.err")).expect("log.err");
    let warnings = stderr
        .lines()
        .filter(|line| line.contains("accepting connections failed"))
        .count();
    assert!(
        (1..=4).contains(&warnings),
        "{warnings} accept warnings (EMFILE must have happened, and be reported once per \
         10 s):\n{stderr}"
    );
    println!(
        "{} idle connections opened in {:?} at ulimit -n 128; healthz then answered in {waited:?}",
        FLOOD,
        started - flooding
    );
}
