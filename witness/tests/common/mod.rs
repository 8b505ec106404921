//! What the witness's tests share: starting `cairn-witness`, a witness key, a test log whose
//! add-checkpoint requests they send (and the tree behind it), a TSA made and served in process,
//! reading `/metrics` as a strict scraper does and `/timestamps` as JSON, waiting for a
//! condition without a timing window, and running `openssl`.

#![allow(dead_code)] // each test file uses its part

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::hash::Hash;
use cairn_spec::merkle::{consistency_proof, CompactRange};
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::timestamp::{ObjectIdentifier, TrustAnchors};
use cairn_spec::witness::format_add_checkpoint_request;
use cairn_witness::tsa::{self, Authority, KeyAlgorithm};
use serde_json::Value;
use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A `cairn-witness` child process, killed (SIGKILL) when dropped.
pub struct Running {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl Running {
    /// Starts `cairn-witness args…` on a port of its choosing and waits for its "listening on"
    /// line.
    pub fn start(args: &[&str]) -> Running {
        Running::start_with_env(args, &[])
    }

    /// [`Running::start`] with these environment variables added.
    pub fn start_with_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn-witness"))
            .args(args)
            .envs(env.iter().copied())
            .env("CAIRN_WITNESS_LISTEN", "127.0.0.1:0")
            .env("CAIRN_WITNESS_TSA_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns cairn-witness");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("reads");
        let Some(address) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cairn-witness {args:?} printed {line:?}, not its address");
        };
        let url = format!("http://{address}");
        Running { child, url }
    }

    /// Kills it with SIGKILL, as a crash would.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes a witness key in `dir` with `cairn-witness keygen`; returns its file.
pub fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join("witness.key");
    let keygen = Command::new(env!("CARGO_BIN_EXE_cairn-witness"))
        .args(["keygen", "--name", name, "--out"])
        .arg(&path)
        .output()
        .expect("keygen runs");
    assert!(keygen.status.success(), "keygen: {keygen:?}");
    path
}

/// A log's tree of `count` leaves: its stored hashes (for proofs) and its roots by size.
pub struct Tree {
    pub stored: Vec<Hash>,
    pub roots: Vec<Hash>,
}

impl Tree {
    /// The tree of the leaves `leaf(0)`, `leaf(1)`, … `leaf(count - 1)`.
    pub fn new(count: u64, leaf: impl Fn(u64) -> Vec<u8>) -> Tree {
        let mut range = CompactRange::new();
        let mut stored = Vec::new();
        let mut roots = vec![range.root()];
        for index in 0..count {
            range
                .append_with(Hash::of_leaf(&leaf(index)), |_, hash| stored.push(*hash))
                .expect("appends");
            roots.push(range.root());
        }
        Tree { stored, roots }
    }
}

/// A test log: its key, and the stored hashes and roots of its first leaves.
pub struct TestLog {
    pub origin: String,
    signer: Ed25519Signer,
    stored: Vec<Hash>,
    roots: Vec<Hash>,
}

impl TestLog {
    /// A log of `count` leaves named `origin`.
    pub fn new(origin: &str, count: u64) -> TestLog {
        let signer = Ed25519Signer::from_seed(KeyName::new(origin).expect("name"), [3; 32]);
        let Tree { stored, roots } = Tree::new(count, |index| index.to_be_bytes().to_vec());
        TestLog {
            origin: origin.to_owned(),
            signer,
            stored,
            roots,
        }
    }

    /// Its vkey.
    pub fn vkey(&self) -> String {
        self.signer.verifier().to_vkey()
    }

    /// The `[[log]]` table of a witness's configuration.
    pub fn config_table(&self) -> String {
        format!(
            "[[log]]\norigin = {:?}\nvkey = {:?}\n",
            self.origin,
            self.vkey()
        )
    }

    /// Its checkpoint of `size`, unsigned.
    pub fn checkpoint(&self, size: u64) -> Checkpoint {
        Checkpoint {
            origin: self.origin.clone(),
            size,
            root: self.roots[size as usize],
            extensions: Vec::new(),
        }
    }

    /// The add-checkpoint request from `old` to `size`.
    pub fn request(&self, old: u64, size: u64) -> Vec<u8> {
        let note = self.checkpoint(size).sign(&self.signer).expect("signs");
        format_add_checkpoint_request(
            &note,
            old,
            &consistency_proof(old, size, &self.stored).expect("proof"),
        )
        .expect("request")
    }
}

/// A TSA made in `dir` as `cairn-witness tsa init` makes one (a P-256 key in a file, a
/// certificate of 30 days), loaded with the default policy, and the trust anchors of its root.
pub fn test_tsa(dir: &Path, name: &str) -> (Authority, Arc<TrustAnchors>) {
    tsa::init(dir, name, KeyAlgorithm::P256, 30, &tsa::TsaKeyPlace::File).expect("tsa init");
    let authority = Authority::load(
        dir,
        ObjectIdentifier::new(tsa::DEFAULT_POLICY).expect("oid"),
        None,
    )
    .expect("loads");
    let anchors = Arc::new(
        TrustAnchors::from_pem(&std::fs::read_to_string(dir.join("root.pem")).expect("pem"))
            .expect("anchors"),
    );
    (authority, anchors)
}

/// Serves `router` on a loopback port, in this process; returns its base URL
/// (`http://<address>`).
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    tokio::spawn(async move { axum::serve(listener, router).await.expect("serves") });
    url
}

/// Serves `authority` on a loopback port, in this process; returns its URL.
pub async fn serve_tsa(authority: Authority) -> String {
    format!("{}/", serve(tsa::router(Arc::new(authority))).await)
}

/// Writes `dir/witness.toml`: state in `data_dir`, the key in `key`, and `log`'s `[[log]]`
/// table; returns its path.
pub fn write_config(dir: &Path, data_dir: &Path, key: &Path, log: &TestLog) -> PathBuf {
    let config = dir.join("witness.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data_dir:?}\nkey_file = {key:?}\n{}",
            log.config_table()
        ),
    )
    .expect("writes the config");
    config
}

/// `GET <url>/metrics`, read as a strict scraper reads the text format (every sample in its
/// family, every histogram's buckets adding up): each scrape in the tests checks it.
pub async fn scrape_metrics(client: &reqwest::Client, url: &str) -> String {
    let response = client
        .get(format!("{url}/metrics"))
        .send()
        .await
        .expect("sends");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = response.text().await.expect("text");
    if let Err(error) = cairn_edge::metrics::parse(&text) {
        panic!("the metrics do not parse: {error}\n{text}");
    }
    text
}

/// `GET <url>/timestamps/<origin>/<size>`: the JSON document, and its text for messages.
pub async fn timestamps(
    client: &reqwest::Client,
    url: &str,
    origin: &str,
    size: u64,
) -> (Value, String) {
    let text = client
        .get(format!("{url}/timestamps/{origin}/{size}"))
        .send()
        .await
        .expect("sends")
        .text()
        .await
        .expect("text");
    (json(&text), text)
}

/// How many tokens a `/timestamps` document holds (none when it has no `tokens` array).
pub fn tokens_in(document: &Value) -> usize {
    document["tokens"].as_array().map_or(0, Vec::len)
}

/// `body` parsed as JSON, the test failing with the body if it is not.
pub fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|error| panic!("not JSON ({error}): {body:?}"))
}

/// The longest a test waits for a condition: generous, so that a busy machine slows a test
/// down instead of failing it.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// Calls `probe` every `interval` until it gives `Ok`, and returns that; the test fails, with
/// `what` and the last `Err` (what was seen instead), if that takes longer than [`WAIT_LIMIT`].
pub async fn wait_until<T, F, Fut>(what: &str, interval: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + WAIT_LIMIT;
    loop {
        let seen = match probe().await {
            Ok(value) => return value,
            Err(seen) => seen,
        };
        assert!(
            Instant::now() < deadline,
            "{what} not within {WAIT_LIMIT:?}: {seen}"
        );
        tokio::time::sleep(interval).await;
    }
}

/// Runs `openssl args…` in `dir`; fails the test clearly if there is no `openssl`.
pub fn openssl(dir: &Path, args: &[&str]) -> Output {
    match Command::new("openssl").args(args).current_dir(dir).output() {
        Ok(output) => output,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => panic!(
            "the `openssl` binary is not on PATH: the RFC 3161 tests need it \
             (apt-get install openssl; CI installs it)"
        ),
        Err(error) => panic!("cannot run openssl: {error}"),
    }
}

/// Runs `openssl args…` in `dir` and insists that it succeeds; returns its stdout.
pub fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let output = openssl(dir, args);
    assert!(
        output.status.success(),
        "openssl {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A temporary path as the `&str` a command's arguments take.
pub fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}

/// An RFC 3161 nonce (a DER INTEGER's content: big-endian, a leading zero byte when its top
/// bit is set) as a number; the nonces here are 64 bits.
pub fn nonce_as_u64(bytes: &[u8]) -> u64 {
    let significant: Vec<u8> = bytes
        .iter()
        .copied()
        .skip_while(|byte| *byte == 0)
        .collect();
    assert!(
        significant.len() <= 8,
        "a nonce of {} bytes",
        significant.len()
    );
    significant
        .iter()
        .fold(0u64, |value, byte| (value << 8) | u64::from(*byte))
}
