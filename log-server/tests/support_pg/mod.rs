//! A throwaway PostgreSQL server for the tests and benches of the PostgreSQL store: `initdb` and
//! `pg_ctl` from the newest `/usr/lib/postgresql/*/bin` (or `CAIRN_TEST_PG_BIN`), a cluster in a
//! temporary directory, listening on a free loopback port, stopped and deleted when dropped.
//! PostgreSQL refuses to run as root, so as root every command runs as the `postgres` user
//! (`runuser -u postgres --`) in a directory given to it.
//!
//! Without PostgreSQL installed this fails, saying what to install: it never skips.
#![allow(dead_code)]

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A running PostgreSQL cluster of its own.
pub struct TestPostgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    as_postgres_user: bool,
    port: u16,
}

/// The directory of the newest installed PostgreSQL's programs.
fn find_bin() -> PathBuf {
    if let Some(bin) = std::env::var_os("CAIRN_TEST_PG_BIN") {
        return PathBuf::from(bin);
    }
    let versions = std::fs::read_dir("/usr/lib/postgresql")
        .map(|listing| {
            listing
                .filter_map(|item| item.ok())
                .filter_map(|item| {
                    let version: u32 = item.file_name().to_str()?.parse().ok()?;
                    let bin = item.path().join("bin");
                    bin.join("initdb").exists().then_some((version, bin))
                })
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    match versions.into_iter().max_by_key(|(version, _)| *version) {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL is not installed: no /usr/lib/postgresql/<version>/bin/initdb (and \
             CAIRN_TEST_PG_BIN is not set). Install the Debian package `postgresql` \
             (apt-get install postgresql; .ci/run does) to run the PostgreSQL store's tests."
        ),
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free loopback port")
        .port()
}

impl TestPostgres {
    /// Makes a new cluster and starts it (with `fsync` on: the store refuses a server without).
    pub fn start() -> TestPostgres {
        let bin = find_bin();
        let as_postgres_user = std::fs::metadata("/proc/self")
            .map(|meta| meta.uid() == 0)
            .unwrap_or(false);
        let dir = tempfile::Builder::new()
            .prefix("cairn-pg-")
            .tempdir()
            .expect("a temporary directory");
        let server = TestPostgres {
            bin,
            dir,
            as_postgres_user,
            port: free_port(),
        };
        if as_postgres_user {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(server.dir.path())
                .status()
                .expect("running chown");
            assert!(status.success(), "chown of the cluster's directory failed");
        }
        server.run(
            "initdb",
            &[
                "-D",
                server.data().to_str().expect("a UTF-8 path"),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                // Only initdb's own files are not synced; the server runs with fsync on.
                "--no-sync",
            ],
        );
        server.start_again();
        server
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Runs one of PostgreSQL's programs (as the `postgres` user when we are root), failing
    /// the test with its output if it fails.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(&path);
            command
        } else {
            Command::new(&path)
        };
        let output = command
            .args(args)
            .current_dir(self.dir.path())
            .output()
            .unwrap_or_else(|error| panic!("running {}: {error}", path.display()));
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}\n{}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Starts the (stopped) server again, on the same port, and waits until it takes
    /// connections.
    pub fn start_again(&self) {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {} -c fsync=on -c synchronous_commit=on \
             -c max_connections=200 -c shared_buffers=128MB -c max_wal_size=1GB",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().expect("a UTF-8 path"),
                "-l",
                log.to_str().expect("a UTF-8 path"),
                "-o",
                &options,
                "-w",
                "-t",
                "120",
                "start",
            ],
        );
    }

    /// Stops the server: `immediate` is a crash for the clients (connections cut, recovery
    /// from the write-ahead log on the next start).
    pub fn stop(&self, mode: &str) {
        self.run(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().expect("a UTF-8 path"),
                "-m",
                mode,
                "-w",
                "-t",
                "120",
                "stop",
            ],
        );
    }

    /// The connection string of the server's `postgres` database.
    pub fn url(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// The server's log file.
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    /// The directory the cluster is in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let data = self.data();
        if data.join("postmaster.pid").exists() {
            let deadline = Instant::now() + Duration::from_secs(60);
            let mut command = if self.as_postgres_user {
                let mut command = Command::new("runuser");
                command
                    .args(["-u", "postgres", "--"])
                    .arg(self.bin.join("pg_ctl"));
                command
            } else {
                Command::new(self.bin.join("pg_ctl"))
            };
            let _ = command
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "-t", "60", "stop"])
                .current_dir(self.dir.path())
                .output();
            while data.join("postmaster.pid").exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
