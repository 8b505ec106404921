//! What the scaled backend's process tests share: one PostgreSQL, one S3 server, a key and a
//! producer, front-ends started on them, and the checks made of the bucket and the lease.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support_pg::TestPostgres;
use crate::support_s3::{S3Server, ACCESS_KEY, BUCKET, SECRET_KEY};

pub const ORIGIN: &str = "scaled.cairn.example/log";
/// How long a condition may take to come true before a test fails: generous, for a loaded CI.
pub const PATIENCE: Duration = Duration::from_secs(40);

/// The cairn-log binary's sibling `cairn-monitor` (built with the workspace).
pub fn monitor_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_cairn-log")).with_file_name("cairn-monitor");
    assert!(
        path.is_file(),
        "{} is missing: build it first (cargo build -p cairn-monitor)",
        path.display()
    );
    path
}

/// The cairn-log binary's sibling `cairn-witness` (built with the workspace).
pub fn witness_binary() -> PathBuf {
    let path = Path::new(env!("CARGO_BIN_EXE_cairn-log")).with_file_name("cairn-witness");
    assert!(
        path.is_file(),
        "{} is missing: build it first (cargo build -p cairn-witness)",
        path.display()
    );
    path
}

pub fn run(command: &mut Command) -> String {
    let output = command.output().expect("runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// One PostgreSQL, one bucket, a key and a producer; front-ends are started on them.
pub struct Cluster {
    pub pg: TestPostgres,
    pub s3: S3Server,
    pub dir: tempfile::TempDir,
    pub vkey: String,
    pub token: String,
    pub producer: String,
    pub http: reqwest::Client,
    /// The front-ends' witness settings: the quorum and a `[[witnesses]]` table per witness.
    pub witness_quorum: usize,
    pub witness_tables: String,
}

/// A running `cairn-witness` that witnesses the cluster's log, killed when dropped.
pub struct WitnessProcess {
    pub name: String,
    pub child: Child,
    pub base: String,
    pub stderr: PathBuf,
}

impl Drop for WitnessProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running front-end, killed when dropped.
pub struct FrontEnd {
    pub child: Option<Child>,
    pub base: String,
    pub stderr: PathBuf,
}

impl Drop for FrontEnd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl FrontEnd {
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn signal(&self, signal: &str) {
        run(Command::new("kill").args([signal, &self.pid().to_string()]));
    }

    pub fn kill_hard(&mut self) {
        self.signal("-KILL");
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Cluster {
    pub fn start() -> Cluster {
        let pg = TestPostgres::start();
        let s3 = S3Server::start();
        let dir = tempfile::tempdir().expect("temporary directory");
        let cairn_log = env!("CARGO_BIN_EXE_cairn-log");
        let vkey = run(Command::new(cairn_log).args([
            "keygen",
            "--origin",
            ORIGIN,
            "--out",
            &dir.path().join("log.key").display().to_string(),
        ]))
        .trim()
        .to_owned();
        let lines = run(Command::new(cairn_log).args(["token", "--name", "producer"]));
        let token = lines
            .lines()
            .find_map(|line| line.strip_prefix("token: "))
            .expect("a token line")
            .to_owned();
        let producer: String = lines
            .lines()
            .skip_while(|line| !line.starts_with("[[producers]]"))
            .map(|line| format!("{line}\n"))
            .collect();
        // One key-encryption key for every front-end: the data keys they share are wrapped
        // under it (a front-end with another is refused).
        let kek: [u8; 32] = rand::random();
        let kek: String = kek.iter().map(|byte| format!("{byte:02x}")).collect();
        let kek_file = dir.path().join("events.kek");
        std::fs::write(&kek_file, format!("{kek}\n")).expect("write the KEK");
        std::fs::set_permissions(
            &kek_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod");
        let credentials = dir.path().join("s3-credentials");
        std::fs::write(&credentials, format!("{ACCESS_KEY}\n{SECRET_KEY}\n")).expect("write");
        std::fs::set_permissions(
            &credentials,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod");
        Cluster {
            pg,
            s3,
            dir,
            vkey,
            token,
            producer,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("client"),
            witness_quorum: 0,
            witness_tables: String::new(),
        }
    }

    /// Starts a `cairn-witness` named `name` (no TSA) that witnesses this log, and makes the
    /// front-ends started after ask it, raising their quorum by one. Waits until it answers.
    pub async fn start_witness(&mut self, name: &str) -> WitnessProcess {
        let dir = self.dir.path();
        let key = dir.join(format!("{name}.key"));
        let vkey = run(Command::new(witness_binary()).args([
            "keygen",
            "--name",
            &format!("scaled.cairn.example/{name}"),
            "--out",
            &key.display().to_string(),
        ]))
        .trim()
        .lines()
        .last()
        .expect("a vkey line")
        .to_owned();
        let port = free_port();
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\nkey_file = {key:?}\n\n\
                 [[log]]\norigin = {ORIGIN:?}\nvkey = {log_vkey:?}\n",
                data = dir.join(format!("{name}-data")).display().to_string(),
                key = key.display().to_string(),
                log_vkey = self.vkey,
            ),
        )
        .expect("write the witness's configuration");
        let stderr = dir.join(format!("{name}.err"));
        let child = Command::new(witness_binary())
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start cairn-witness");
        let base = format!("http://127.0.0.1:{port}");
        let started = Instant::now();
        while !self
            .http
            .get(format!("{base}/healthz"))
            .send()
            .await
            .is_ok_and(|response| response.status().is_success())
        {
            assert!(
                started.elapsed() < PATIENCE,
                "witness {name} did not answer: {}",
                std::fs::read_to_string(&stderr).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.witness_quorum += 1;
        self.witness_tables.push_str(&format!(
            "\n[[witnesses]]\nname = {name:?}\nurl = {base:?}\nvkey = {vkey:?}\n"
        ));
        WitnessProcess {
            name: name.to_owned(),
            child,
            base,
            stderr,
        }
    }

    /// Starts front-end `name` (its own data directory and port) and waits until it answers.
    pub async fn front_end(&self, name: &str) -> FrontEnd {
        self.front_end_with(name, "").await
    }

    /// [`Cluster::front_end`], with `extra` (top-level keys and `[[principals]]`) added to its
    /// configuration.
    pub async fn front_end_with(&self, name: &str, extra: &str) -> FrontEnd {
        let (config, port) = self.write_config_with(name, true, extra);
        self.start_log(name, &config, port).await
    }

    /// Writes the configuration of log process `name` (its own data directory and port):
    /// a front-end of the scaled log, or with `scaled` false a log on its embedded store in
    /// that data directory (same key, producer, witnesses and KEK). Answers the file and the
    /// port.
    pub fn write_config(&self, name: &str, scaled: bool) -> (PathBuf, u16) {
        self.write_config_with(name, scaled, "")
    }

    /// [`Cluster::write_config`], with `extra` (top-level keys and `[[principals]]`) added.
    pub fn write_config_with(&self, name: &str, scaled: bool, extra: &str) -> (PathBuf, u16) {
        let port = free_port();
        let dir = self.dir.path();
        let config = dir.join(format!("{name}.toml"));
        let storage = if scaled {
            format!(
                "[postgres]\nurl = {url:?}\nlease_term_ms = 2000\n\
                 connect_timeout_ms = 2000\nstatement_timeout_ms = 5000\n\n\
                 [bucket]\nendpoint = {endpoint:?}\nbucket = {BUCKET:?}\n\
                 credentials_file = {credentials:?}\n\n",
                url = self.pg.url(),
                endpoint = self.s3.endpoint(),
                credentials = dir.join("s3-credentials").display().to_string(),
            )
        } else {
            String::new()
        };
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:{port}\"\ndata_dir = {data:?}\nstorage = {backend:?}\n\
                 key_file = {key:?}\nwitness_quorum = {quorum}\ncheckpoint_interval_ms = 200\n\n\
                 {producer}\n{extra}\n{storage}\
                 [privacy]\npublic_entries = true\nkek_file = {kek:?}\n{witnesses}",
                backend = if scaled { "scaled" } else { "embedded" },
                quorum = self.witness_quorum,
                witnesses = self.witness_tables,
                data = dir.join(name).display().to_string(),
                key = dir.join("log.key").display().to_string(),
                producer = self.producer,
                kek = dir.join("events.kek").display().to_string(),
            ),
        )
        .expect("write the configuration");
        (config, port)
    }

    /// Starts `cairn-log serve --config <config>` listening on `port`, and waits until it
    /// answers.
    pub async fn start_log(&self, name: &str, config: &Path, port: u16) -> FrontEnd {
        let dir = self.dir.path();
        let stderr = dir.join(format!("{name}.err"));
        let child = Command::new(env!("CARGO_BIN_EXE_cairn-log"))
            .args(["serve", "--config"])
            .arg(config)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&stderr).expect("stderr file"))
            .spawn()
            .expect("start cairn-log");
        let mut front_end = FrontEnd {
            child: Some(child),
            base: format!("http://127.0.0.1:{port}"),
            stderr,
        };
        let started = Instant::now();
        loop {
            if let Ok(response) = self
                .http
                .get(format!("{}/healthz", front_end.base))
                .send()
                .await
            {
                if response.status().is_success() {
                    return front_end;
                }
            }
            if let Some(status) = front_end
                .child
                .as_mut()
                .and_then(|child| child.try_wait().ok().flatten())
            {
                panic!("{name} exited at start ({status}): {}", front_end.log());
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{name} did not answer: {}",
                front_end.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `POST /add` of `leaf` (with an idempotency key if given): (index, duplicate).
    pub async fn add(&self, front_end: &FrontEnd, leaf: &[u8], key: Option<&str>) -> (u64, bool) {
        let mut request = self
            .http
            .post(format!("{}/add", front_end.base))
            .bearer_auth(&self.token)
            .body(leaf.to_vec());
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request.send().await.expect("POST /add");
        let status = response.status();
        let body = response.text().await.expect("body");
        assert!(status.is_success(), "POST /add: {status} {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        (
            json["index"].as_u64().expect("an index"),
            json["duplicate"].as_bool().expect("duplicate"),
        )
    }

    /// `POST /add-batch` of `leaves`: their indices.
    pub async fn add_batch(&self, front_end: &FrontEnd, leaves: &[Vec<u8>]) -> Vec<u64> {
        let mut body = Vec::new();
        for leaf in leaves {
            body.extend_from_slice(&(leaf.len() as u32).to_be_bytes());
            body.extend_from_slice(leaf);
        }
        let response = self
            .http
            .post(format!("{}/add-batch", front_end.base))
            .bearer_auth(&self.token)
            .body(body)
            .send()
            .await
            .expect("POST /add-batch");
        let status = response.status();
        let body = response.text().await.expect("body");
        assert!(status.is_success(), "POST /add-batch: {status} {body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        json["indices"]
            .as_array()
            .expect("indices")
            .iter()
            .map(|index| index.as_u64().expect("an index"))
            .collect()
    }

    /// The tree size of the front-end's `/checkpoint` (0 before one).
    pub async fn checkpoint_size(&self, front_end: &FrontEnd) -> u64 {
        let Ok(response) = self
            .http
            .get(format!("{}/checkpoint", front_end.base))
            .send()
            .await
        else {
            return 0;
        };
        if !response.status().is_success() {
            return 0;
        }
        let text = response.text().await.unwrap_or_default();
        text.lines()
            .nth(1)
            .and_then(|line| line.parse().ok())
            .unwrap_or(0)
    }

    /// Waits until `front_end` serves a checkpoint of at least `size`.
    pub async fn wait_for_checkpoint(&self, front_end: &FrontEnd, size: u64) {
        let started = Instant::now();
        while self.checkpoint_size(front_end).await < size {
            assert!(
                started.elapsed() < PATIENCE,
                "{} serves no checkpoint of {size} within {PATIENCE:?}: {}",
                front_end.base,
                front_end.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The size the bucket's `checkpoint` object covers (0 if there is none).
    pub fn bucket_checkpoint_size(&self) -> u64 {
        std::fs::read_to_string(self.s3.object_file("checkpoint"))
            .ok()
            .and_then(|note| note.lines().nth(1).and_then(|line| line.parse().ok()))
            .unwrap_or(0)
    }

    pub async fn wait_for_bucket(&self, size: u64) {
        let started = Instant::now();
        while self.bucket_checkpoint_size() < size {
            assert!(
                started.elapsed() < PATIENCE,
                "the bucket's checkpoint does not reach {size} within {PATIENCE:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Audits the bucket's objects (read from s3s-fs's directory) with `cairn-monitor audit`.
    pub fn audit_bucket(&self) -> String {
        let bucket_dir = self.s3.object_file("");
        let state = self.dir.path().join("audit-state");
        run(Command::new(monitor_binary()).args([
            "audit",
            "--log",
            &format!("file://{}", bucket_dir.display()),
            "--log-key",
            &self.vkey,
            "--state",
            &state.display().to_string(),
        ]))
    }

    /// Every leaf in the bucket's entry bundles, in order, up to the bucket's checkpoint.
    pub fn bucket_leaves(&self) -> Vec<Vec<u8>> {
        let size = self.bucket_checkpoint_size();
        let mut leaves = Vec::new();
        for index in 0..size.div_ceil(256) {
            let width = (size - index * 256).min(256);
            let path = cairn_spec::tiles::EntryBundle::new(index, width as u16)
                .expect("a bundle")
                .path();
            let bytes = std::fs::read(self.s3.object_file(&path)).expect("an entry bundle");
            let mut rest = bytes.as_slice();
            while !rest.is_empty() {
                let length = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
                leaves.push(rest[2..2 + length].to_vec());
                rest = &rest[2 + length..];
            }
        }
        leaves
    }

    /// Who holds the integrator lease, by the database, and with which token.
    pub async fn lease(&self) -> (String, i64) {
        let (client, connection) = tokio_postgres::connect(&self.pg.url(), tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(connection);
        let row = client
            .query_one(
                "SELECT holder, token FROM cairn.leases WHERE name = 'integrator'",
                &[],
            )
            .await
            .expect("the lease row");
        (row.get(0), row.get(1))
    }

    /// Waits until the lease is held by the process `pid`; answers its token.
    pub async fn wait_for_holder(&self, pid: u32) -> i64 {
        let started = Instant::now();
        loop {
            let (holder, token) = self.lease().await;
            if holder.contains(&format!(" pid {pid} ")) {
                return token;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "pid {pid} did not take the lease within {PATIENCE:?} (held by {holder})"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
