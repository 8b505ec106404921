//! The in-process log that the `/v1` audit-event tests start, and the client they talk to it
//! with: an embedded log on a loopback port, signed by a test key, with the producers and
//! principals a test names; requests with a bearer token, answers read as JSON or bytes.
//!
//! A test changes what it needs in the [`settings`] it gets (limits, retention, self-audit)
//! before starting the server: everything else is the same in every file.
#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use cairn_log::config::token_digest_hex;
use cairn_log::events::{EventSettings, Principal, Role};
use cairn_log::sequencer::SequencerConfig;
use cairn_log::server::{RunningServer, ServerSettings};
use cairn_log::storage::Backend;
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::policy::Policy;
use reqwest::Method;
use serde_json::Value;

/// How long [`Client::wait_published`] waits for a checkpoint: 800 polls 25 ms apart.
const PUBLISH_POLLS: u32 = 800;

/// The SHA-256 of a bearer token, as the server's settings hold it.
pub fn digest(token: &str) -> [u8; 32] {
    let hex = token_digest_hex(token);
    let mut bytes = [0u8; 32];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    bytes
}

/// The log's key: a fixed seed, so that each test file's log has a key of its own.
pub fn signer(origin: &str, seed: u8) -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(origin).expect("valid name"), [seed; 32])
}

/// A policy that trusts the log's key alone, with no witness.
pub fn policy(signer: &Ed25519Signer) -> Policy {
    Policy::parse(format!("log {}\nquorum none\n", signer.verifier().to_vkey()).as_bytes())
        .expect("policy")
}

/// An embedded log in `dir` on a free loopback port, signed by `signer`: `producers` are
/// (token, name) pairs of the raw-leaf producers, `principals` (token, name, role) of the
/// `/v1` callers. Checkpoints every 50 ms, no witness; the events settings are the defaults.
pub fn settings(
    dir: &Path,
    signer: Ed25519Signer,
    producers: &[(&str, &str)],
    principals: &[(&str, &str, Role)],
) -> ServerSettings {
    let producers = producers
        .iter()
        .map(|(token, name)| (digest(token), name.to_string()))
        .collect();
    let principals: HashMap<_, _> = principals
        .iter()
        .map(|(token, name, role)| {
            let name = name.to_string();
            (digest(token), Principal { name, role: *role })
        })
        .collect();
    ServerSettings {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: dir.to_path_buf(),
        storage: Backend::Embedded,
        scaled: None,
        receipt_policy: None,
        objects_dir: None,
        signer: Arc::new(signer.into()),
        producers,
        max_leaf_bytes: 65_535,
        max_batch_body_bytes: 1 << 20,
        sequencer: SequencerConfig::default(),
        checkpoint_interval: Duration::from_millis(50),
        witnesses: Vec::new(),
        quorum: 0,
        witness_timeout: Duration::from_secs(2),
        witness_roots: Vec::new(),
        checkpoint_wait: Duration::from_secs(10),
        events: EventSettings {
            principals,
            ..EventSettings::default()
        },
        edge: Default::default(),
        access: Default::default(),
        ui: Default::default(),
    }
}

/// A client of one running log.
pub struct Client {
    pub http: reqwest::Client,
    pub base: String,
}

impl Client {
    pub fn new(server: &RunningServer) -> Client {
        Client {
            http: reqwest::Client::new(),
            base: format!("http://{}", server.addr),
        }
    }

    /// Sends one request: with a bearer token if given, and a JSON body if given.
    pub async fn response(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body);
        }
        request.send().await.expect("request")
    }

    /// The status and the body's bytes, for a request with a raw body.
    pub async fn send_bytes(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Vec<u8>) {
        let response = self.response(method, path, token, body).await;
        let status = response.status().as_u16();
        (status, response.bytes().await.expect("body").to_vec())
    }

    /// The status and the body as JSON (`null` if it is not JSON), for a request with a raw
    /// body.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let (status, bytes) = self.send_bytes(method, path, token, body).await;
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }

    /// The status and the body as JSON (`null` if it is not JSON), for a JSON body.
    pub async fn json(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let body = body.map(|body| body.to_string().into_bytes());
        self.send(method, path, token, body).await
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.json(Method::GET, path, Some(token), None).await
    }

    pub async fn get_bytes(&self, path: &str, token: &str) -> (u16, Vec<u8>) {
        self.send_bytes(Method::GET, path, Some(token), None).await
    }

    pub async fn get_text(&self, path: &str, token: &str) -> (u16, String) {
        let (status, bytes) = self.get_bytes(path, token).await;
        (status, String::from_utf8(bytes).expect("UTF-8 text"))
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> (u16, Value) {
        self.json(Method::POST, path, Some(token), Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: &str, body: Option<&Value>) -> (u16, Value) {
        self.json(Method::DELETE, path, Some(token), body).await
    }

    /// Waits until `/healthz` says a checkpoint of at least `size` leaves is published.
    pub async fn wait_published(&self, size: u64) {
        for _ in 0..PUBLISH_POLLS {
            let (status, health) = self.json(Method::GET, "/healthz", None, None).await;
            if status == 200 && health["published_size"].as_u64().unwrap_or(0) >= size {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no checkpoint of size {size} was published");
    }

    /// Every event `query` finds, asked as `token` in pages of `limit`, following cursors.
    pub async fn query_all(&self, query: &str, limit: usize, token: &str) -> Vec<Value> {
        let mut found = Vec::new();
        let mut cursor = String::new();
        loop {
            let separator = if query.is_empty() { "" } else { "&" };
            let path = format!("/v1/events?limit={limit}{separator}{query}{cursor}");
            let (status, page) = self.get(&path, token).await;
            assert_eq!(status, 200, "{path}: {page}");
            let events = page["events"].as_array().expect("events");
            assert!(
                events.len() <= limit,
                "{path}: a page longer than its limit"
            );
            found.extend(events.iter().cloned());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = format!("&cursor={next}"),
                None => return found,
            }
        }
    }
}

/// Every file under `dir` that holds one of `values` in clear: (file, value). A file that
/// goes away while the scan runs (a server's temporary or recycled file) is passed over.
pub fn files_holding(dir: &Path, values: &[&str]) -> Vec<(String, String)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            for entry in std::fs::read_dir(&path).expect("read a directory") {
                pending.push(entry.expect("a directory entry").path());
            }
            continue;
        }
        let Ok(bytes) = std::fs::read(&path) else {
            continue;
        };
        for value in values {
            let needle = value.as_bytes();
            if bytes.windows(needle.len()).any(|window| window == needle) {
                found.push((path.display().to_string(), value.to_string()));
            }
        }
    }
    found
}
