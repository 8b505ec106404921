//! The scale test's producers: tasks that send single leaves with `POST /add`, spread over the
//! front-ends, and record every acknowledged (index, leaf) and every failed attempt.
//!
//! A leaf is sent with its own text as its `Idempotency-Key`; an attempt that fails (the
//! front-end was killed, say) is retried on the next front-end with the same key, so a leaf
//! that was sequenced before its answer was lost is answered with its first index rather than
//! sequenced twice. Every leaf is unique, so the log must hold each acknowledged one exactly
//! once, at its acknowledged index.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The most attempts at one leaf (about a minute of retries) before a producer gives up.
const MAX_ATTEMPTS: usize = 600;
/// The pause before another attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// A failed attempt: when it started and ended, where it went and why.
#[derive(Debug, Clone)]
pub struct Failure {
    pub started: Instant,
    pub ended: Instant,
    pub front_end: usize,
    pub reason: String,
}

/// What the producers saw.
#[derive(Debug, Default)]
pub struct Record {
    /// Every acknowledged leaf with its index.
    pub acknowledged: Vec<(u64, Vec<u8>)>,
    /// Answers that said the leaf was in the log already (a retry after a lost answer).
    pub duplicates: usize,
    /// Every failed attempt.
    pub failures: Vec<Failure>,
    /// Leaves given up on after [`MAX_ATTEMPTS`].
    pub abandoned: Vec<Vec<u8>>,
}

/// The producers' shared state.
pub struct Load {
    pub record: Mutex<Record>,
    stop: AtomicBool,
    front_ends: Vec<String>,
    token: String,
    http: reqwest::Client,
}

impl Load {
    pub fn new(front_ends: Vec<String>, token: String) -> Arc<Load> {
        Arc::new(Load {
            record: Mutex::new(Record::default()),
            stop: AtomicBool::new(false),
            front_ends,
            token,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("an HTTP client"),
        })
    }

    /// Starts `producers` tasks.
    pub fn start(self: &Arc<Load>, producers: usize) -> Vec<tokio::task::JoinHandle<()>> {
        (0..producers)
            .map(|producer| {
                let load = Arc::clone(self);
                tokio::spawn(async move { load.produce(producer).await })
            })
            .collect()
    }

    /// Asks the producers to stop after the leaf each is sending.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    async fn produce(&self, producer: usize) {
        let mut number = 0usize;
        while !self.stop.load(Ordering::SeqCst) {
            let leaf = format!("scale-garage producer {producer} leaf {number}");
            self.send(producer + number, leaf.into_bytes()).await;
            number += 1;
        }
    }

    /// Sends `leaf` until it is acknowledged, starting at front-end `first` (modulo their
    /// number) and moving to the next after each failure.
    async fn send(&self, first: usize, leaf: Vec<u8>) {
        let key = String::from_utf8_lossy(&leaf).replace(' ', "-");
        for attempt in 0..MAX_ATTEMPTS {
            let front_end = (first + attempt) % self.front_ends.len();
            let started = Instant::now();
            let answer = self
                .http
                .post(format!("{}/add", self.front_ends[front_end]))
                .bearer_auth(&self.token)
                .header("Idempotency-Key", &key)
                .body(leaf.clone())
                .send()
                .await;
            let outcome = match answer {
                Ok(response) if response.status().is_success() => {
                    match response.text().await.map(|body| {
                        serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default()
                    }) {
                        Ok(json) => match (json["index"].as_u64(), json["duplicate"].as_bool()) {
                            (Some(index), duplicate) => Ok((index, duplicate == Some(true))),
                            _ => Err(format!("an answer without an index: {json}")),
                        },
                        Err(error) => Err(format!("reading the answer: {error}")),
                    }
                }
                Ok(response) => {
                    let status = response.status();
                    let body = response.text().await.unwrap_or_default();
                    Err(format!("{status} {body}"))
                }
                Err(error) => Err(format!("{error}")),
            };
            {
                let mut record = self.record.lock().expect("the record");
                match outcome {
                    Ok((index, duplicate)) => {
                        record.acknowledged.push((index, leaf));
                        record.duplicates += usize::from(duplicate);
                        return;
                    }
                    Err(reason) => record.failures.push(Failure {
                        started,
                        ended: Instant::now(),
                        front_end,
                        reason,
                    }),
                }
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        self.record.lock().expect("the record").abandoned.push(leaf);
    }
}
