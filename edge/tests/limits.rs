//! The edge's limits against real clients on loopback sockets: slow headers, slow bodies, idle
//! connections, a flood past the connection cap, and a graceful stop. Each test sets small
//! timeouts and asserts generous bounds (a 1 s timeout must close within 10 s), so that a busy
//! machine slows them down without failing them.

use std::net::SocketAddr;
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::{get, post};
use axum::Router;
use cairn_edge::{EdgeConfig, Limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, Instant};

/// The generous bound on anything that should happen within about a second.
const BOUND: Duration = Duration::from_secs(10);

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    served: JoinHandle<()>,
}

impl Server {
    async fn start(limits: Limits) -> Server {
        let app = Router::new()
            .route("/healthz", get(|| async { "ok\n" }))
            .route(
                "/echo",
                post(|body: Bytes| async move { format!("{} bytes\n", body.len()) }),
            )
            .route(
                "/slow",
                get(|| async {
                    sleep(Duration::from_millis(500)).await;
                    "finished\n"
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binds on loopback");
        let addr = listener.local_addr().expect("has an address");
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn(cairn_edge::serve(
            listener,
            app,
            EdgeConfig { limits, tls: None },
            async move {
                let _ = stopped.await;
            },
        ));
        Server {
            addr,
            stop: Some(stop),
            served,
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        timeout(BOUND, &mut self.served)
            .await
            .expect("the server stops within the bound")
            .expect("the server task does not panic");
    }
}

/// Limits with every timeout long, so that a test shortens only the one it is about.
fn patient() -> Limits {
    Limits {
        header_read_timeout: Duration::from_secs(60),
        body_read_timeout: Duration::from_secs(60),
        body_min_bytes_per_sec: 1,
        idle_timeout: Duration::from_secs(60),
        max_connections: 1000,
        overload_idle_timeout: Duration::from_secs(60),
    }
}

/// Reads until the server closes the connection; what it sent, and when it closed.
async fn read_until_closed(stream: &mut OwnedReadHalf) -> (Vec<u8>, Instant) {
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return (received, Instant::now()),
            Ok(read) => received.extend_from_slice(&buffer[..read]),
        }
    }
}

/// One GET over a new connection; the answer's head and body.
async fn get_once(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    let request = format!("GET {path} HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("sends the request");
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .expect("reads the answer");
    String::from_utf8_lossy(&answer).into_owned()
}

/// A new connection to `addr`, split so that a task may write while the test reads.
async fn connect(addr: SocketAddr) -> (OwnedReadHalf, OwnedWriteHalf) {
    TcpStream::connect(addr)
        .await
        .expect("connects")
        .into_split()
}

/// Sends `bytes` one at a time, 200 ms apart (far slower than any client), on a task of its own
/// that ends when they are sent or the server closes.
fn trickle(mut write: OwnedWriteHalf, bytes: Vec<u8>) -> JoinHandle<()> {
    tokio::spawn(async move {
        for byte in bytes {
            if write.write_all(&[byte]).await.is_err() {
                return;
            }
            sleep(Duration::from_millis(200)).await;
        }
    })
}

/// Asserts that a connection the server closed at `closed_at` was held from `started` for its
/// 1 s timeout (later is fine: a busy machine is slow).
fn assert_held_for_its_timeout(started: Instant, closed_at: Instant) {
    let held = closed_at - started;
    assert!(
        held >= Duration::from_millis(900),
        "closed after {held:?}, before its timeout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_sent_a_byte_at_a_time_are_cut_off_at_the_header_timeout() {
    let server = Server::start(Limits {
        header_read_timeout: Duration::from_secs(1),
        ..patient()
    })
    .await;
    let (mut read, write) = connect(server.addr).await;
    let started = Instant::now();
    // Far slower than any client, far faster than the idle timeout.
    let trickling = trickle(
        write,
        b"GET /healthz HTTP/1.1\r\nhost: slow\r\nx-padding: aaaaaaaaaaaaaaaaaaaaaa".to_vec(),
    );
    let (answer, closed_at) = timeout(BOUND, read_until_closed(&mut read))
        .await
        .expect("the server closes a connection whose headers trickle in");
    assert!(
        answer.is_empty() || String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 408"),
        "no request was answered: {:?}",
        String::from_utf8_lossy(&answer)
    );
    assert_held_for_its_timeout(started, closed_at);
    trickling.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_sent_a_byte_at_a_time_is_answered_408_and_closed() {
    let server = Server::start(Limits {
        body_read_timeout: Duration::from_secs(1),
        body_min_bytes_per_sec: 100,
        ..patient()
    })
    .await;
    let (mut read, mut write) = connect(server.addr).await;
    write
        .write_all(b"POST /echo HTTP/1.1\r\nhost: slow\r\ncontent-length: 1000\r\n\r\n")
        .await
        .expect("sends the head");
    let started = Instant::now();
    let trickling = trickle(write, vec![b'x'; 1000]);
    let (answer, closed_at) = timeout(BOUND, read_until_closed(&mut read))
        .await
        .expect("the server closes a connection whose body trickles in");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "answered {answer:?}");
    assert!(
        answer.contains(r#""error":"request_timeout""#),
        "answered {answer:?}"
    );
    assert_held_for_its_timeout(started, closed_at);
    trickling.abort();
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_at_the_minimum_rate_is_read_in_full() {
    let server = Server::start(Limits {
        body_read_timeout: Duration::from_millis(500),
        body_min_bytes_per_sec: 1000,
        ..patient()
    })
    .await;
    let (mut read, mut write) = connect(server.addr).await;
    write
        .write_all(
            b"POST /echo HTTP/1.1\r\nhost: steady\r\nconnection: close\r\ncontent-length: 3000\r\n\r\n",
        )
        .await
        .expect("sends the head");
    // 3000 bytes in six pieces over about 1 s: three times the minimum rate.
    for _ in 0..6 {
        write.write_all(&[b'x'; 500]).await.expect("sends a piece");
        sleep(Duration::from_millis(170)).await;
    }
    let (answer, _) = timeout(BOUND, read_until_closed(&mut read))
        .await
        .expect("the server answers");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "answered {answer:?}");
    assert!(answer.ends_with("3000 bytes\n"), "answered {answer:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_nothing_is_closed_at_the_idle_timeout() {
    let server = Server::start(Limits {
        idle_timeout: Duration::from_secs(1),
        ..patient()
    })
    .await;
    let (mut read, _write) = connect(server.addr).await;
    let started = Instant::now();
    let (answer, closed_at) = timeout(BOUND, read_until_closed(&mut read))
        .await
        .expect("the server closes an idle connection");
    assert!(answer.is_empty());
    assert_held_for_its_timeout(started, closed_at);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keep_alive_connection_is_closed_once_idle_after_its_request() {
    let server = Server::start(Limits {
        idle_timeout: Duration::from_secs(1),
        ..patient()
    })
    .await;
    let (mut read, mut write) = connect(server.addr).await;
    write
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: keep\r\n\r\n")
        .await
        .expect("sends a request");
    let (answer, _) = timeout(BOUND, read_until_closed(&mut read))
        .await
        .expect("the server answers, then closes the idle connection");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "answered {answer:?}");
    assert!(answer.ends_with("ok\n"), "answered {answer:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_past_the_connection_cap_still_lets_healthz_through_within_a_second() {
    let server = Server::start(Limits {
        max_connections: 32,
        overload_idle_timeout: Duration::from_millis(100),
        // Long enough that healthz cannot get through in time unless idle connections are
        // shed at the cap; short enough that the flood is closed either way at the end.
        idle_timeout: Duration::from_secs(3),
        ..patient()
    })
    .await;
    // Three times the cap in connections that never send anything.
    let mut flood = Vec::new();
    for _ in 0..96 {
        flood.push(TcpStream::connect(server.addr).await.expect("connects"));
    }
    let started = Instant::now();
    let answer = timeout(BOUND, get_once(server.addr, "/healthz"))
        .await
        .expect("healthz is answered behind the flood");
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 200"), "answered {answer:?}");
    assert!(
        waited < Duration::from_secs(1),
        "healthz took {waited:?} behind a flood of idle connections"
    );
    // The flood's connections are closed by the server, none kept.
    for stream in &mut flood {
        let mut byte = [0u8; 1];
        let read = timeout(BOUND, stream.read(&mut byte))
            .await
            .expect("a flooding connection is closed");
        assert!(
            matches!(read, Ok(0) | Err(_)),
            "a flooding connection got {read:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn once_the_flood_is_shed_keep_alive_connections_idle_as_long_as_usual_again() {
    let server = Server::start(Limits {
        max_connections: 32,
        overload_idle_timeout: Duration::from_millis(100),
        ..patient()
    })
    .await;
    // One past the cap: the server sheds idle connections until a sixteenth of the slots is
    // free, and then waits for connections that do not come.
    let mut flood = Vec::new();
    for _ in 0..33 {
        flood.push(TcpStream::connect(server.addr).await.expect("connects"));
    }
    // Which connections are shed is a race between them: wait for any one.
    let deadline = Instant::now() + BOUND;
    let mut byte = [0u8; 1];
    'shed: loop {
        for stream in &mut flood {
            if let Ok(Ok(0) | Err(_)) =
                timeout(Duration::from_millis(20), stream.read(&mut byte)).await
            {
                break 'shed;
            }
        }
        assert!(Instant::now() < deadline, "no flooding connection was shed");
    }
    drop(flood);
    // The pressure lifts with the flood gone: a keep-alive connection may now idle far longer
    // than the overload timeout between two requests.
    sleep(Duration::from_millis(500)).await;
    let mut stream = TcpStream::connect(server.addr).await.expect("connects");
    for _ in 0..2 {
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nhost: keep\r\n\r\n")
            .await
            .expect("sends a request on the kept connection");
        let mut answer = [0u8; 1024];
        let read = timeout(BOUND, stream.read(&mut answer))
            .await
            .expect("answers in time")
            .expect("reads the answer");
        let answer = String::from_utf8_lossy(&answer[..read]);
        assert!(answer.starts_with("HTTP/1.1 200"), "answered {answer:?}");
        sleep(Duration::from_millis(1000)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_lets_the_request_in_flight_finish() {
    let server = Server::start(patient()).await;
    let addr = server.addr;
    let slow = tokio::spawn(async move { get_once(addr, "/slow").await });
    // Let the request reach its handler before the stop.
    sleep(Duration::from_millis(200)).await;
    let idle = TcpStream::connect(addr).await.expect("connects");
    server.stop().await;
    let answer = slow.await.expect("the client task does not panic");
    assert!(answer.starts_with("HTTP/1.1 200"), "answered {answer:?}");
    assert!(answer.ends_with("finished\n"), "answered {answer:?}");
    drop(idle);
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "the listener is closed after the stop"
    );
}

/// Sends `request` raw on a new connection; everything the server sent before it closed.
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let (mut read, mut write) = connect(addr).await;
    // The server may answer and close before it has read all of a request too large for it.
    let _ = write.write_all(request).await;
    let (answer, _) = timeout(BOUND, read_until_closed(&mut read))
        .await
        .expect("the server answers and closes");
    String::from_utf8_lossy(&answer).into_owned()
}

/// The answer's status line and body (after the blank line).
fn status_and_body(answer: &str) -> (&str, &str) {
    let status = answer.lines().next().unwrap_or("");
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, body)| body);
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_over_the_limit_is_answered_431_and_closed() {
    let server = Server::start(patient()).await;
    // hyper applies the limit to a head it has not seen the end of: one twice the limit.
    let padding = "a".repeat(2 * cairn_edge::connection::MAX_REQUEST_HEAD_BYTES);
    let request = format!("GET /healthz HTTP/1.1\r\nhost: test\r\nx-padding: {padding}\r\n\r\n");
    let answer = exchange(server.addr, request.as_bytes()).await;
    let (status, body) = status_and_body(&answer);
    assert!(status.starts_with("HTTP/1.1 431"), "answer: {answer:?}");
    assert_eq!(body, "", "the HTTP layer answers without a body");

    // Just under the limit is served.
    let padding = "a".repeat(cairn_edge::connection::MAX_REQUEST_HEAD_BYTES / 2);
    let request = format!(
        "GET /healthz HTTP/1.1\r\nhost: test\r\nx-padding: {padding}\r\nconnection: close\r\n\r\n"
    );
    let answer = exchange(server.addr, request.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "answer: {answer:?}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_that_is_not_http_is_answered_400_and_closed() {
    let server = Server::start(patient()).await;
    for garbage in [
        &b"GET /healthz HTTP/1.1\r\nhost test\r\n\r\n"[..],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not a TLS client hello either\r\n\r\n",
        b"GET /a b c HTTP/1.1\r\n\r\n",
    ] {
        let answer = exchange(server.addr, garbage).await;
        let (status, body) = status_and_body(&answer);
        assert!(
            status.starts_with("HTTP/1.1 400"),
            "{:?} answered {answer:?}",
            String::from_utf8_lossy(garbage)
        );
        assert_eq!(body, "", "the HTTP layer answers without a body");
    }
    server.stop().await;
}
