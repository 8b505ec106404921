//! The `cairn-load` command line, turned into a checked [`LoadConfig`].

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use clap::{Args, Parser, Subcommand};

use super::config::{
    parse_duration, ConfigError, LeafKind, LoadConfig, Pacing, Target, Workload, MAX_BODY_BYTES,
    MAX_DURATION,
};

const ABOUT: &str = "Load generator for Cairn's log server and its baselines.";

const LONG_ABOUT: &str = "\
Load generator for Cairn's log server and its baselines.

Sends POST requests over keep-alive HTTP/1.1 connections (one request in flight per connection;
with --also-target, the connections are spread over several servers of one log)
and reports requests/s, leaves/s, bytes/s, latency percentiles, answers by status code and
errors. Closed loop by default; with --rate, an open loop at a fixed total rate whose latencies
are measured from when each request was due (no coordinated omission).

This is a tool for measuring YOUR OWN servers. It connects only to the addresses given with
--target and --also-target, which must be loopback addresses (127.0.0.0/8, [::1], localhost) unless --allow-remote
is passed; it never looks up other names. Every run is bounded: at most 1 hour of measurement
and at most 10 M requests/s.";

const AFTER_HELP: &str = "\
Examples:
  cairn-load add --target http://127.0.0.1:8080 -c 64 -d 10s --leaf-size 256
  cairn-load add-batch --batch-size 256 --rate 2000 -d 30s --token \"$TOKEN\"
  cairn-load raw --target http://127.0.0.1:8081 --path /add --body-size 256 --json
  cairn-load add --target http://127.0.0.1:8080 --also-target http://127.0.0.1:8082 -c 96";

/// `cairn-load`: load generator for Cairn's log server and its baselines.
#[derive(Debug, Parser)]
#[command(name = "cairn-load", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Cli {
    /// What each request carries.
    #[command(subcommand)]
    pub mode: Mode,
}

/// The request mix.
#[derive(Debug, Subcommand)]
pub enum Mode {
    /// POST /add: one leaf per request.
    Add {
        /// Bytes in each leaf (unique leaves need at least 16).
        #[arg(long, default_value_t = 256)]
        leaf_size: usize,
        /// Send the same leaf every time instead of unique leaves.
        #[arg(long)]
        duplicate: bool,
        /// Options every mode takes.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// POST /add-batch: many leaves per request, each preceded by its length (4 bytes,
    /// big-endian), as application/octet-stream.
    AddBatch {
        /// Leaves in each request.
        #[arg(long, default_value_t = 256)]
        batch_size: usize,
        /// Bytes in each leaf (unique leaves need at least 16).
        #[arg(long, default_value_t = 256)]
        leaf_size: usize,
        /// Send the same leaf every time instead of unique leaves.
        #[arg(long)]
        duplicate: bool,
        /// Options every mode takes.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// POST /v1/events: a generated audit event per request (cairn.event v1 JSON; actor, action,
    /// resource, outcome vary; one in four has a payload).
    Events {
        /// Options every mode takes.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// POST /v1/events/batch: a JSON array of generated audit events per request (as `events`
    /// generates them).
    EventsBatch {
        /// Events in each request.
        #[arg(long, default_value_t = 100)]
        batch_size: usize,
        /// Options every mode takes.
        #[command(flatten)]
        common: CommonArgs,
    },
    /// POST a fixed body to any path (for baselines such as cairn-noop).
    Raw {
        /// Send this many filler bytes as the body.
        #[arg(long, default_value_t = 256, conflicts_with = "body_file")]
        body_size: usize,
        /// Send the contents of this file as the body.
        #[arg(long)]
        body_file: Option<PathBuf>,
        /// The Content-Type of the body.
        #[arg(long, default_value = "application/octet-stream")]
        content_type: String,
        /// Options every mode takes.
        #[command(flatten)]
        common: CommonArgs,
    },
}

/// Options every mode takes.
#[derive(Debug, Args)]
pub struct CommonArgs {
    /// The server: http://ADDRESS[:PORT] or https://ADDRESS[:PORT] with an IP address or
    /// localhost.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub target: String,
    /// Another server of the same log (a front-end of a scaled log), http:// only; repeat for
    /// more (at most 63). The connections are spread over --target and these, round robin.
    #[arg(long = "also-target", value_name = "URL")]
    pub also_targets: Vec<String>,
    /// PEM CA certificates an https:// target's certificate must chain to (needed for
    /// https://: no public root is trusted).
    #[arg(long)]
    pub ca_file: Option<std::path::PathBuf>,
    /// Allow a target outside the loopback range: only for a server you run yourself.
    #[arg(long)]
    pub allow_remote: bool,
    /// The request path (default: /add, /add-batch, /v1/events, /v1/events/batch, or / for
    /// raw).
    #[arg(long)]
    pub path: Option<String>,
    /// Keep-alive connections, each with one request in flight at a time.
    #[arg(short, long, default_value_t = 64)]
    pub connections: usize,
    /// Total requests per second (open loop); without it, a closed loop.
    #[arg(long)]
    pub rate: Option<f64>,
    /// How long to measure after the warm-up, e.g. 10s, 500ms, 2m (at most 1h).
    /// Default: 10s, or 1h as a bound when --requests is given.
    #[arg(short, long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many measured requests.
    #[arg(short = 'n', long)]
    pub requests: Option<u64>,
    /// Send for this long before measuring.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// How long one request (connecting included) may take before it counts as a timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Bearer token, sent as `Authorization: Bearer <token>`.
    #[arg(long, env = "CAIRN_LOAD_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Worker threads of the runtime (default: the CPUs this process may run on).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// How the binary runs and prints, beside the load itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// Worker threads of the runtime, if given.
    pub threads: Option<usize>,
    /// JSON instead of text.
    pub json: bool,
}

/// Why the command line could not become a run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A setting is out of bounds.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The body file could not be read.
    #[error("body file {path}: {source}")]
    BodyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The body file is larger than a request body may be.
    #[error("body file {path}: expected at most {MAX_BODY_BYTES} bytes, found {found}")]
    BodyFileTooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        found: u64,
    },
}

impl Cli {
    /// The checked run, and how to print it.
    pub fn into_config(self) -> Result<(LoadConfig, Output), CliError> {
        let (workload, common) = match self.mode {
            Mode::Add {
                leaf_size,
                duplicate,
                common,
            } => (
                Workload::Add {
                    leaf_size,
                    leaf_kind: leaf_kind(duplicate),
                },
                common,
            ),
            Mode::AddBatch {
                batch_size,
                leaf_size,
                duplicate,
                common,
            } => (
                Workload::AddBatch {
                    leaf_size,
                    leaves_per_batch: batch_size,
                    leaf_kind: leaf_kind(duplicate),
                },
                common,
            ),
            Mode::Events { common } => (Workload::Events, common),
            Mode::EventsBatch { batch_size, common } => (
                Workload::EventsBatch {
                    events_per_batch: batch_size,
                },
                common,
            ),
            Mode::Raw {
                body_size,
                body_file,
                content_type,
                common,
            } => {
                let body = match body_file {
                    Some(path) => read_body_file(path)?,
                    None if body_size > MAX_BODY_BYTES => {
                        return Err(ConfigError::OutOfRange {
                            what: "body size (bytes)",
                            min: 0,
                            max: MAX_BODY_BYTES as u64,
                            found: body_size as u64,
                        }
                        .into())
                    }
                    None => Bytes::from(vec![b'x'; body_size]),
                };
                (Workload::Raw { body, content_type }, common)
            }
        };
        let target = Target::parse(&common.target, common.allow_remote)?;
        let mut config = LoadConfig::new(target, workload);
        config.also_targets = common
            .also_targets
            .iter()
            .map(|url| Target::parse(url, common.allow_remote))
            .collect::<Result<_, _>>()?;
        if let Some(path) = common.path {
            config.path = path;
        }
        config.connections = common.connections;
        config.pacing = match common.rate {
            Some(requests_per_second) => Pacing::FixedRate {
                requests_per_second,
            },
            None => Pacing::ClosedLoop,
        };
        config.duration = match (common.duration, common.requests) {
            (Some(duration), _) => duration,
            (None, Some(_)) => MAX_DURATION,
            (None, None) => Duration::from_secs(10),
        };
        config.max_requests = common.requests;
        config.warmup = common.warmup;
        config.timeout = common.timeout;
        config.bearer_token = common.token;
        config.ca_file = common.ca_file;
        config.validate()?;
        if common.threads == Some(0) {
            return Err(ConfigError::OutOfRange {
                what: "threads",
                min: 1,
                max: 1024,
                found: 0,
            }
            .into());
        }
        Ok((
            config,
            Output {
                threads: common.threads,
                json: common.json,
            },
        ))
    }
}

fn leaf_kind(duplicate: bool) -> LeafKind {
    if duplicate {
        LeafKind::Duplicate
    } else {
        LeafKind::Unique
    }
}

fn read_body_file(path: PathBuf) -> Result<Bytes, CliError> {
    let size = std::fs::metadata(&path)
        .map_err(|source| CliError::BodyFile {
            path: path.clone(),
            source,
        })?
        .len();
    if size > MAX_BODY_BYTES as u64 {
        return Err(CliError::BodyFileTooLarge { path, found: size });
    }
    std::fs::read(&path)
        .map(Bytes::from)
        .map_err(|source| CliError::BodyFile { path, source })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<(LoadConfig, Output), CliError> {
        let cli = Cli::try_parse_from(std::iter::once("cairn-load").chain(args.iter().copied()))
            .expect("the arguments parse");
        cli.into_config()
    }

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn add_defaults_to_a_ten_second_closed_loop_on_loopback() {
        let (config, output) = parse(&["add"]).expect("valid");
        assert_eq!(config.target.addr, "127.0.0.1:8080".parse().expect("addr"));
        assert_eq!(config.path, "/add");
        assert_eq!(config.connections, 64);
        assert_eq!(config.pacing, Pacing::ClosedLoop);
        assert_eq!(config.duration, Duration::from_secs(10));
        assert_eq!(config.warmup, Duration::from_secs(1));
        assert_eq!(
            config.workload,
            Workload::Add {
                leaf_size: 256,
                leaf_kind: LeafKind::Unique
            }
        );
        assert!(!output.json);
    }

    #[test]
    fn reads_every_option() {
        let (config, output) = parse(&[
            "add-batch",
            "--target",
            "http://[::1]:9000",
            "--path",
            "/v2/add-batch",
            "-c",
            "8",
            "--rate",
            "5000",
            "-d",
            "30s",
            "--warmup",
            "0",
            "--timeout",
            "2s",
            "--token",
            "abc",
            "--batch-size",
            "100",
            "--leaf-size",
            "64",
            "--duplicate",
            "--threads",
            "1",
            "--json",
        ])
        .expect("valid");
        assert_eq!(config.path, "/v2/add-batch");
        assert_eq!(config.connections, 8);
        assert_eq!(
            config.pacing,
            Pacing::FixedRate {
                requests_per_second: 5000.0
            }
        );
        assert_eq!(config.duration, Duration::from_secs(30));
        assert_eq!(config.warmup, Duration::ZERO);
        assert_eq!(config.timeout, Duration::from_secs(2));
        assert_eq!(config.bearer_token.as_deref(), Some("abc"));
        assert_eq!(
            config.workload,
            Workload::AddBatch {
                leaf_size: 64,
                leaves_per_batch: 100,
                leaf_kind: LeafKind::Duplicate
            }
        );
        assert_eq!(
            output,
            Output {
                threads: Some(1),
                json: true
            }
        );
    }

    #[test]
    fn a_request_count_alone_is_bounded_by_an_hour() {
        let (config, _) = parse(&["events", "-n", "1000"]).expect("valid");
        assert_eq!(config.max_requests, Some(1000));
        assert_eq!(config.duration, MAX_DURATION);
        assert_eq!(config.path, "/v1/events");
    }

    #[test]
    fn events_batch_posts_arrays_to_the_batch_path() {
        let (config, _) = parse(&["events-batch", "--batch-size", "50"]).expect("valid");
        assert_eq!(config.path, "/v1/events/batch");
        assert_eq!(
            config.workload,
            Workload::EventsBatch {
                events_per_batch: 50
            }
        );
        assert!(parse(&["events-batch", "--batch-size", "0"]).is_err());
    }

    #[test]
    fn refuses_more_than_an_hour_and_more_than_ten_million_per_second() {
        assert!(matches!(
            parse(&["raw", "-d", "61m"]),
            Err(CliError::Config(ConfigError::DurationOutOfRange { .. }))
        ));
        assert!(matches!(
            parse(&["raw", "--rate", "10000001"]),
            Err(CliError::Config(ConfigError::BadRate(_)))
        ));
    }

    #[test]
    fn refuses_remote_targets_without_the_flag() {
        assert!(matches!(
            parse(&["raw", "--target", "http://198.51.100.1:80"]),
            Err(CliError::Config(ConfigError::RemoteTargetRefused(_)))
        ));
        assert!(parse(&[
            "raw",
            "--target",
            "http://198.51.100.1:80",
            "--allow-remote"
        ])
        .is_ok());
    }

    #[test]
    fn also_targets_are_loopback_http_servers_of_the_same_run() {
        let (config, _) = parse(&[
            "add",
            "--also-target",
            "http://127.0.0.1:8082",
            "--also-target",
            "http://127.0.0.1:8083",
        ])
        .expect("valid");
        let ports: Vec<u16> = config.also_targets.iter().map(|t| t.addr.port()).collect();
        assert_eq!(ports, [8082, 8083]);
        assert!(matches!(
            parse(&["add", "--also-target", "http://198.51.100.1:80"]),
            Err(CliError::Config(ConfigError::RemoteTargetRefused(_)))
        ));
        assert!(matches!(
            parse(&["add", "--also-target", "https://127.0.0.1:8443"]),
            Err(CliError::Config(ConfigError::Tls(_)))
        ));
    }

    #[test]
    fn raw_sends_filler_of_the_size_asked_or_a_file() {
        let (config, _) = parse(&["raw", "--body-size", "3"]).expect("valid");
        assert_eq!(config.path, "/");
        assert_eq!(
            config.workload,
            Workload::Raw {
                body: Bytes::from_static(b"xxx"),
                content_type: "application/octet-stream".into()
            }
        );
        assert!(matches!(
            parse(&["raw", "--body-file", "/nonexistent/cairn-load-body"]),
            Err(CliError::BodyFile { .. })
        ));
    }
}
