//! End-to-end: every server of a sandbox (the TSA, a witness, the log, the monitor), as the real
//! binary, closes a connection that sends nothing and one whose headers trickle in, with its
//! timeouts set the way an operator sets them (environment variables), and still answers.
//!
//! One test in this file: it sets the environment the sandbox's children inherit before any
//! thread is started.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cairn_tests::sandbox::{Binaries, Options, Sandbox};

/// Every server's environment prefix (`cairn-edge` keys: `<PREFIX>IDLE_TIMEOUT_MS`, ...).
const PREFIXES: [&str; 4] = [
    "CAIRN_LOG_",
    "CAIRN_WITNESS_",
    "CAIRN_WITNESS_TSA_",
    "CAIRN_MONITOR_",
];

/// A generous bound for what the 1 s and 2 s timeouts below should do.
const BOUND: Duration = Duration::from_secs(10);

/// How long `stream` stays open once `send` (run meanwhile) has started; `None` if the server
/// kept it past [`BOUND`].
fn held_open(stream: &mut TcpStream) -> Option<Duration> {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("sets a read timeout");
    let mut buffer = [0u8; 1024];
    while started.elapsed() < BOUND {
        match stream.read(&mut buffer) {
            Ok(0) => return Some(started.elapsed()),
            Ok(_) => {}
            Err(error)
                if matches!(
                    error.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(started.elapsed()),
        }
    }
    None
}

fn silent_connection_is_closed(name: &str, addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    let held = held_open(&mut stream)
        .unwrap_or_else(|| panic!("{name} kept a silent connection open past {BOUND:?}"));
    assert!(
        held >= Duration::from_millis(900),
        "{name} closed a silent connection after {held:?}, before its idle timeout"
    );
}

fn trickling_headers_are_cut_off(name: &str, addr: SocketAddr) {
    let stream = TcpStream::connect(addr).expect("connects");
    let mut writer = stream.try_clone().expect("clones the socket");
    let trickle = std::thread::spawn(move || {
        for byte in
            b"POST /add HTTP/1.1\r\nhost: slow\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        {
            if writer.write_all(&[*byte]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    });
    let mut stream = stream;
    let held = held_open(&mut stream).unwrap_or_else(|| {
        panic!("{name} kept a connection with trickling headers past {BOUND:?}")
    });
    assert!(
        held >= Duration::from_millis(1500),
        "{name} closed a connection with trickling headers after {held:?}, before its header timeout"
    );
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let _ = trickle.join();
}

fn answers_healthz(name: &str, addr: SocketAddr) {
    let mut stream = TcpStream::connect(addr).expect("connects");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n")
        .expect("sends");
    stream
        .set_read_timeout(Some(BOUND))
        .expect("sets a read timeout");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .expect("reads the answer");
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{name} answered {answer:?}"
    );
}

#[test]
fn every_server_closes_silent_and_slow_connections_and_keeps_answering() {
    for prefix in PREFIXES {
        std::env::set_var(format!("{prefix}IDLE_TIMEOUT_MS"), "1000");
        std::env::set_var(format!("{prefix}HEADER_READ_TIMEOUT_MS"), "2000");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = Options::new(dir.path().join("sandbox"));
    options.witnesses = 1;
    options.witness_quorum = 1;
    let mut sandbox = Sandbox::start(&options, Binaries::locate().expect("binaries"))
        .unwrap_or_else(|error| panic!("the sandbox starts: {error}"));
    for name in sandbox.components() {
        let addr = sandbox
            .addr(&name)
            .unwrap_or_else(|| panic!("{name} is running"));
        silent_connection_is_closed(&name, addr);
        trickling_headers_are_cut_off(&name, addr);
        // The TSA has no /healthz: it answers POSTs only.
        if name != "tsa" {
            answers_healthz(&name, addr);
        }
    }
    assert!(sandbox.exited().is_empty(), "no server exited");
    let failed = sandbox.stop();
    assert!(
        failed.is_empty(),
        "every server stopped cleanly: {failed:?}"
    );
}
