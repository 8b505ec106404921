//! A real S3 server for the bucket tests: `s3s-fs` on a free loopback port, over a temporary
//! directory, with a bucket made for the test; killed when dropped. (Shared with
//! `benches/bucket.rs`, which uses only part of it.)
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cairn_log::storage::bucket::BucketConfig;

/// How the server is installed, in the failure of a test that finds it missing.
pub const INSTALL: &str = "cargo install s3s-fs --version 0.14.1 --features binary --locked";

pub const ACCESS_KEY: &str = "cairn-test-access";
pub const SECRET_KEY: &str = "cairn-test-secret-key";
pub const BUCKET: &str = "cairn-log";

pub struct S3Server {
    dir: tempfile::TempDir,
    address: SocketAddr,
    child: Option<Child>,
}

/// The `s3s-fs` to run: `$S3S_FS`, or the one on the `PATH`, or cargo's bin directory.
fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("S3S_FS") {
        return PathBuf::from(path);
    }
    let on_path = Command::new("s3s-fs")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success());
    if on_path {
        return PathBuf::from("s3s-fs");
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")));
    match home.map(|home| home.join("bin/s3s-fs")) {
        Some(path) if path.is_file() => path,
        _ => panic!(
            "the bucket tests need the S3 server s3s-fs 0.14.1 and found none (not $S3S_FS, \
             not on the PATH, not in cargo's bin directory): install it with `{INSTALL}` \
             (.ci/run does)"
        ),
    }
}

impl S3Server {
    /// Starts a server over a new directory, with the test's bucket.
    pub fn start() -> S3Server {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir(dir.path().join(BUCKET)).expect("the bucket's directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = S3Server {
            dir,
            address: SocketAddr::from(([127, 0, 0, 1], port)),
            child: None,
        };
        server.restart();
        server
    }

    /// The bucket's configuration, with short limits so that a dead server fails fast.
    pub fn config(&self) -> BucketConfig {
        let mut config = BucketConfig::new(self.endpoint(), BUCKET, ACCESS_KEY, SECRET_KEY);
        config.request_timeout = Duration::from_secs(10);
        config.connect_timeout = Duration::from_secs(2);
        config.max_retries = 2;
        config.retry_timeout = Duration::from_secs(5);
        config.operation_timeout = Duration::from_secs(20);
        config
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Kills the server (its data stays).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again over the same directory and port, and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let log = std::fs::File::create(self.dir.path().join("s3s-fs.log")).expect("log file");
        let child = Command::new(binary())
            .arg("--host")
            .arg("127.0.0.1")
            .arg("--port")
            .arg(self.address.port().to_string())
            .arg("--access-key")
            .arg(ACCESS_KEY)
            .arg("--secret-key")
            .arg(SECRET_KEY)
            .arg(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|error| {
                panic!("starting s3s-fs ({error}); install it with `{INSTALL}`")
            });
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect_timeout(&self.address, Duration::from_millis(200)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                panic!(
                    "s3s-fs exited at start ({status}): {}",
                    std::fs::read_to_string(self.dir.path().join("s3s-fs.log")).unwrap_or_default()
                );
            }
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not listen on {} within 30 s",
                self.address
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The file s3s-fs keeps an object in.
    pub fn object_file(&self, key: &str) -> PathBuf {
        self.dir.path().join(BUCKET).join(key)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
    }
}
