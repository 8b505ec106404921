//! The no-op baseline server answers every POST with its fixed body, and nothing else.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use cairn_tests::load::{run, LoadConfig, Target, Workload};
use cairn_tests::noop::{self, NOOP_ANSWER};

async fn spawn_noop() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(noop::serve(listener, std::future::pending()));
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_posts_on_any_path_with_the_fixed_body() {
    let addr = spawn_noop().await;
    for path in ["/", "/add", "/v1/events", "/any/deep/path?x=1"] {
        let target = Target::parse(&format!("http://{addr}"), false).expect("target");
        let mut config = LoadConfig::new(
            target,
            Workload::Raw {
                body: Bytes::from(vec![7u8; 64 * 1024]),
                content_type: "application/octet-stream".into(),
            },
        );
        config.path = path.into();
        config.connections = 2;
        config.max_requests = Some(20);
        config.duration = Duration::from_secs(5);

        let report = run(config).await.expect("run");

        assert_eq!(report.status_count(200), 20, "{path}: {report}");
        assert_eq!(report.body_bytes_received, 20 * NOOP_ANSWER.len() as u64);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_other_methods() {
    let addr = spawn_noop().await;
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(b"GET /add HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    assert!(
        answer.starts_with(b"HTTP/1.1 405"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
}
