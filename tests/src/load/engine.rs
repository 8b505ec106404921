//! Runs a [`LoadConfig`]: one task per connection, each sending one request at a time over its
//! own keep-alive hyper 1 client connection, then the per-connection measurements merged.
//!
//! Every attempt is one request slot: in a closed loop the next slot opens when the previous
//! answer arrived; at a fixed rate slot `s` is due at `start + s / rate`, and connection `i` owns
//! the slots `i, i + N, i + 2N, …`, so the load is spread evenly. A slot ends in exactly one
//! outcome (an answer, a connect error, an I/O error or a timeout), and with a request count
//! each measured slot takes one ticket, so a run against a dead server still ends.
//!
//! Latency runs from when a request was due (fixed rate: its slot; closed loop: when the
//! previous answer arrived) to its complete answer, connecting included. A fixed-rate connection
//! that fell behind sends at once, and the time it spent behind is in the latency: that is what
//! the callers of a stalled server would have waited.

use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST, RETRY_AFTER};
use hyper::{Method, Request, Uri};
use hyper_util::rt::TokioIo;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, timeout_at, Instant};

use super::config::{ConfigError, LoadConfig, Pacing};
use super::report::{Answer, Recorder, Report, RunIdentity};
use super::tls::{ClientTls, Stream};
use super::workload::{Payload, RequestSource};

/// Tokio's timer has a resolution of one millisecond and fires late, never early. A fixed-rate
/// connection therefore wakes up to this much before a request is due and sends it then: the
/// timer's lateness stays out of the latencies, and the rate over any longer period is the same.
const EARLY_SEND: Duration = Duration::from_millis(1);

/// The longest pause between attempts to reach a server that refuses connections.
const MAX_CONNECT_BACKOFF: Duration = Duration::from_millis(100);

/// Why a run could not be carried out (what happens on the wire is measured, not an error).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The configuration is out of bounds.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A connection task died; its measurements are lost.
    #[error("a connection task failed: {0}")]
    TaskFailed(#[from] tokio::task::JoinError),
}

/// Runs the load described by `config` and reports what was measured.
pub async fn run(config: LoadConfig) -> Result<Report, LoadError> {
    config.validate()?;
    let plan = Arc::new(Plan::new(&config)?);
    let tasks: Vec<JoinHandle<Recorder>> = (0..config.connections as u64)
        .map(|connection_index| tokio::spawn(drive_connection(plan.clone(), connection_index)))
        .collect();
    let mut merged = Recorder::new();
    for task in tasks {
        merged.merge(&task.await?);
    }
    // A run that went to its end time measured until then even if its last answer came
    // earlier (a fixed rate's last slot is due just before the end); a run that used up its
    // count measured until its last answer.
    let finished = Instant::now();
    let measured_until = if plan.count_used_up() {
        finished
    } else {
        finished.max(plan.end)
    };
    let elapsed = measured_until.saturating_duration_since(plan.measure_from);
    let identity = RunIdentity {
        target: std::iter::once(&config.target)
            .chain(&config.also_targets)
            .map(|target| format!("{target}{}", config.path))
            .collect::<Vec<_>>()
            .join(" "),
        mode: config.workload.mode_name(),
        connections: config.connections,
        target_rate: match config.pacing {
            Pacing::ClosedLoop => None,
            Pacing::FixedRate {
                requests_per_second,
            } => Some(requests_per_second),
        },
        warmup: config.warmup,
    };
    Ok(Report::new(identity, &merged, elapsed))
}

/// Everything the connection tasks share, fixed before the first request.
struct Plan {
    /// The servers, each with its Host header: connection `i` goes to server `i % len`.
    servers: Vec<(SocketAddr, HeaderValue)>,
    /// TLS for an https:// target.
    tls: Option<ClientTls>,
    uri: Uri,
    content_type: HeaderValue,
    authorization: Option<HeaderValue>,
    source: RequestSource,
    pacing: Pacing,
    connections: u64,
    start: Instant,
    measure_from: Instant,
    end: Instant,
    timeout: Duration,
    /// Measured requests still to send, when the run is bounded by a count.
    tickets: Option<AtomicU64>,
}

impl Plan {
    fn new(config: &LoadConfig) -> Result<Plan, ConfigError> {
        let bad_path = || ConfigError::BadPath {
            found: config.path.clone(),
        };
        let uri: Uri = config.path.parse().map_err(|_| bad_path())?;
        let servers = std::iter::once(&config.target)
            .chain(&config.also_targets)
            .map(|target| {
                let host = HeaderValue::from_str(&target.authority).map_err(|_| {
                    ConfigError::BadTarget {
                        found: target.authority.clone(),
                        reason: "not a valid Host header",
                    }
                })?;
                Ok((target.addr, host))
            })
            .collect::<Result<Vec<_>, ConfigError>>()?;
        let source = RequestSource::new(&config.workload, &mut rand::thread_rng());
        let content_type = HeaderValue::from_str(source.content_type()).map_err(|_| {
            ConfigError::BadContentType {
                found: source.content_type().to_owned(),
            }
        })?;
        let authorization = config
            .bearer_token
            .as_ref()
            .map(|token| HeaderValue::from_str(&format!("Bearer {token}")))
            .transpose()
            .map_err(|_| ConfigError::BadToken)?;
        let start = Instant::now();
        let measure_from = start + config.warmup;
        let tls = match (&config.target.tls, &config.ca_file) {
            (true, Some(ca_file)) => Some(ClientTls::load(ca_file, &config.target)?),
            (true, None) => {
                return Err(ConfigError::Tls(
                    "an https:// target needs a CA file".into(),
                ))
            }
            (false, _) => None,
        };
        Ok(Plan {
            servers,
            tls,
            uri,
            content_type,
            authorization,
            source,
            pacing: config.pacing,
            connections: config.connections as u64,
            start,
            measure_from,
            end: measure_from + config.duration,
            timeout: config.timeout,
            tickets: config.max_requests.map(AtomicU64::new),
        })
    }

    /// Takes one measured request from the count, if the run has one; false when none is left.
    fn take_ticket(&self) -> bool {
        match &self.tickets {
            None => true,
            Some(tickets) => tickets
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                    left.checked_sub(1)
                })
                .is_ok(),
        }
    }

    /// Whether the run had a request count and sent all of it.
    fn count_used_up(&self) -> bool {
        self.tickets
            .as_ref()
            .is_some_and(|tickets| tickets.load(Ordering::Relaxed) == 0)
    }

    /// When fixed-rate slot `slot` is due.
    fn slot_due(&self, slot: u64, requests_per_second: f64) -> Instant {
        self.start + Duration::from_secs_f64(slot as f64 / requests_per_second)
    }

    /// The first slot due at or after `instant`: the number of slots due before it. Estimated
    /// by arithmetic, then settled with [`Plan::slot_due`] itself, so that rounding can never
    /// make the count disagree with the times the connections send at.
    fn first_slot_due_at_or_after(&self, instant: Instant, requests_per_second: f64) -> u64 {
        let seconds = instant.saturating_duration_since(self.start).as_secs_f64();
        let mut slot = (seconds * requests_per_second).ceil() as u64;
        while slot > 0 && self.slot_due(slot - 1, requests_per_second) >= instant {
            slot -= 1;
        }
        while self.slot_due(slot, requests_per_second) < instant {
            slot += 1;
        }
        slot
    }

    /// The measured slots from `next_slot` on (every `connections`-th) that were due before the
    /// end: what this connection could not send because the server kept it waiting.
    fn unsent_slots(&self, next_slot: u64, requests_per_second: f64) -> u64 {
        if self.tickets.is_some() {
            // A counted run ends when its count is sent, not at a time.
            return 0;
        }
        let total_slots = self.first_slot_due_at_or_after(self.end, requests_per_second);
        let first_measured =
            self.first_slot_due_at_or_after(self.measure_from, requests_per_second);
        let mut first = next_slot;
        if first < first_measured {
            let steps = (first_measured - first).div_ceil(self.connections);
            first += steps * self.connections;
        }
        if first >= total_slots {
            0
        } else {
            (total_slots - 1 - first) / self.connections + 1
        }
    }

    fn request(&self, server: usize, body: Bytes) -> Request<Full<Bytes>> {
        let mut request = Request::new(Full::new(body));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = self.uri.clone();
        let headers = request.headers_mut();
        headers.insert(HOST, self.servers[server].1.clone());
        headers.insert(CONTENT_TYPE, self.content_type.clone());
        if let Some(authorization) = &self.authorization {
            headers.insert(AUTHORIZATION, authorization.clone());
        }
        request
    }
}

type ClientConnection = hyper::client::conn::http1::Connection<TokioIo<Stream>, Full<Bytes>>;

/// A client connection: the handle requests are sent through, and the state machine that moves
/// bytes on its socket. The latter is polled by the connection's own task, alongside whatever
/// waits on it, rather than spawned as a task of its own: a request then needs no wake-up across
/// tasks, and the socket is only driven while the connection has something to do.
struct Connection {
    sender: SendRequest<Full<Bytes>>,
    /// `None` once the connection is over; the sender then fails, which is how it is noticed.
    driver: Option<ClientConnection>,
}

/// Runs `work` (something waiting on the connection) while driving the connection's socket.
async fn driving<F: Future>(driver: &mut Option<ClientConnection>, work: F) -> F::Output {
    let mut work = pin!(work);
    poll_fn(|context| {
        if let Some(connection) = driver.as_mut() {
            if Pin::new(connection).poll(context).is_ready() {
                // Closed by either side, or failed: dropping it fails whatever waits on it,
                // and `work` reports that.
                *driver = None;
            }
        }
        work.as_mut().poll(context)
    })
    .await
}

/// How one request slot ended.
enum Outcome {
    Answered(Answer),
    ConnectFailed,
    IoFailed,
    TimedOut,
}

async fn drive_connection(plan: Arc<Plan>, connection_index: u64) -> Recorder {
    let mut recorder = Recorder::new();
    let mut connection: Option<Connection> = None;
    let mut next_slot = connection_index;
    let mut consecutive_connect_failures = 0u32;
    let server = (connection_index % plan.servers.len() as u64) as usize;
    loop {
        let now = Instant::now();
        let due = match plan.pacing {
            Pacing::ClosedLoop => now,
            Pacing::FixedRate {
                requests_per_second,
            } => {
                let due = plan.slot_due(next_slot, requests_per_second);
                if due >= plan.end {
                    break;
                }
                if now >= plan.end {
                    recorder.unsent += plan.unsent_slots(next_slot, requests_per_second);
                    break;
                }
                next_slot += plan.connections;
                due
            }
        };
        if now >= plan.end {
            break;
        }
        let measured = due >= plan.measure_from;
        if measured && !plan.take_ticket() {
            break;
        }
        if due > now + EARLY_SEND {
            sleep_until(due - EARLY_SEND).await;
        }

        let payload = plan.source.next_payload();
        let (outcome, sent_at) =
            attempt(&plan, server, &mut connection, &mut recorder, &payload).await;
        if let Outcome::ConnectFailed = outcome {
            consecutive_connect_failures = consecutive_connect_failures.saturating_add(1);
        } else {
            consecutive_connect_failures = 0;
        }
        if measured {
            match outcome {
                Outcome::Answered(answer) => {
                    let latency = Instant::now().saturating_duration_since(due.min(sent_at));
                    recorder.record_answer(&answer, latency, payload.body.len() as u64);
                }
                Outcome::ConnectFailed => recorder.errors.connect += 1,
                Outcome::IoFailed => recorder.errors.io += 1,
                Outcome::TimedOut => recorder.errors.timeout += 1,
            }
        }
        if consecutive_connect_failures > 0 {
            // Do not spin against a server that is down: back off, doubling up to a limit.
            let backoff = Duration::from_millis(1u64 << consecutive_connect_failures.min(7))
                .min(MAX_CONNECT_BACKOFF);
            sleep_until((Instant::now() + backoff).min(plan.end)).await;
        }
    }
    recorder
}

/// Sends one request, opening a connection first if there is none or the server closed it.
/// Returns how it ended and when the request was handed to the connection.
async fn attempt(
    plan: &Plan,
    server: usize,
    connection: &mut Option<Connection>,
    recorder: &mut Recorder,
    payload: &Payload,
) -> (Outcome, Instant) {
    let deadline = Instant::now() + plan.timeout;
    let Some(Connection { sender, driver }) =
        ready_connection(plan, server, connection, recorder, deadline).await
    else {
        return (Outcome::ConnectFailed, Instant::now());
    };
    let sent_at = Instant::now();
    let request = plan.request(server, payload.body.clone());
    let exchanged = driving(driver, exchange(sender, request, payload.leaves));
    let outcome = match timeout_at(deadline, exchanged).await {
        Ok(Ok(answer)) => Outcome::Answered(answer),
        Ok(Err(_)) => {
            *connection = None;
            Outcome::IoFailed
        }
        Err(_) => {
            *connection = None;
            Outcome::TimedOut
        }
    };
    (outcome, sent_at)
}

/// The connection once it can take a request: the open one if the server kept it, otherwise a
/// new one. `None` if no connection could be made before `deadline`.
async fn ready_connection<'c>(
    plan: &Plan,
    server: usize,
    connection: &'c mut Option<Connection>,
    recorder: &mut Recorder,
    deadline: Instant,
) -> Option<&'c mut Connection> {
    let kept = match connection.as_mut() {
        Some(open) => is_ready(open, deadline).await,
        None => false,
    };
    if !kept {
        *connection = None;
        let fresh =
            match timeout_at(deadline, connect(plan.servers[server].0, plan.tls.as_ref())).await {
                Ok(Ok(fresh)) => fresh,
                Ok(Err(_)) | Err(_) => return None,
            };
        recorder.connections_opened += 1;
        if !is_ready(connection.insert(fresh), deadline).await {
            *connection = None;
            return None;
        }
    }
    connection.as_mut()
}

/// Whether the connection can take a request (before `deadline`).
async fn is_ready(connection: &mut Connection, deadline: Instant) -> bool {
    let Connection { sender, driver } = connection;
    matches!(
        timeout_at(deadline, driving(driver, sender.ready())).await,
        Ok(Ok(()))
    )
}

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
enum ConnectError {
    #[error("TCP connect or TLS handshake: {0}")]
    Tcp(#[from] std::io::Error),
    #[error("HTTP/1.1 handshake: {0}")]
    Handshake(#[from] hyper::Error),
}

async fn connect(target: SocketAddr, tls: Option<&ClientTls>) -> Result<Connection, ConnectError> {
    let stream = super::tls::connect(target, tls).await?;
    let (sender, driver) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    Ok(Connection {
        sender,
        driver: Some(driver),
    })
}

/// Sends the request and reads the whole answer, counting its body without keeping it.
async fn exchange(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    leaves: u64,
) -> Result<Answer, hyper::Error> {
    let response = sender.send_request(request).await?;
    let status = response.status().as_u16();
    let retry_after = response.headers().contains_key(RETRY_AFTER);
    let mut body = response.into_body();
    let mut body_bytes = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            body_bytes += data.len() as u64;
        }
    }
    Ok(Answer {
        status,
        body_bytes,
        retry_after,
        leaves,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::config::{LeafKind, Target, Workload};

    fn fixed_rate_plan(requests_per_second: f64, connections: usize) -> Plan {
        let target = Target::parse("http://127.0.0.1:9", false).expect("loopback target");
        let mut config = LoadConfig::new(
            target,
            Workload::Add {
                leaf_size: 16,
                leaf_kind: LeafKind::Unique,
            },
        );
        config.connections = connections;
        config.pacing = Pacing::FixedRate {
            requests_per_second,
        };
        config.warmup = Duration::from_millis(500);
        config.duration = Duration::from_secs(1);
        Plan::new(&config).expect("valid plan")
    }

    #[test]
    fn slots_are_spread_evenly_from_the_start() {
        let plan = fixed_rate_plan(1000.0, 4);
        assert_eq!(plan.slot_due(0, 1000.0), plan.start);
        assert_eq!(
            plan.slot_due(1500, 1000.0),
            plan.start + Duration::from_millis(1500)
        );
        assert_eq!(plan.first_slot_due_at_or_after(plan.end, 1000.0), 1500);
        assert_eq!(
            plan.first_slot_due_at_or_after(plan.measure_from, 1000.0),
            500
        );
    }

    #[test]
    fn unsent_counts_only_measured_slots_of_the_connection_before_the_end() {
        let plan = fixed_rate_plan(1000.0, 4);
        // Connection 1 owns slots 1, 5, 9, …; the measured ones before the end are 501..=1497.
        assert_eq!(plan.unsent_slots(1, 1000.0), 250);
        assert_eq!(plan.unsent_slots(1497, 1000.0), 1);
        assert_eq!(plan.unsent_slots(1501, 1000.0), 0);
        let all: u64 = (0..4).map(|slot| plan.unsent_slots(slot, 1000.0)).sum();
        assert_eq!(all, 1000, "every measured slot belongs to one connection");
    }

    #[test]
    fn a_counted_run_has_no_unsent_slots() {
        let mut plan = fixed_rate_plan(1000.0, 4);
        plan.tickets = Some(AtomicU64::new(10));
        assert_eq!(plan.unsent_slots(0, 1000.0), 0);
        assert!(plan.take_ticket());
        assert!(!plan.count_used_up());
        plan.tickets = Some(AtomicU64::new(0));
        assert!(!plan.take_ticket());
        assert!(plan.count_used_up());
    }
}
