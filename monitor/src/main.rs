//! `cairn-monitor`: the monitor daemon and the auditor's offline commands.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cairn_edge::log::LogFormat;
use cairn_monitor::daemon::{bind, Config, HttpSettings, Monitor};
use cairn_monitor::export::{fetch_export, ExportQuery, MAX_EXPORT_BYTES};
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::evidence::{verify_evidence, Evidence};
use cairn_spec::export::{verify_export, ExportBundle, ExportTrust};
use cairn_spec::merkle::verify_consistency;
use cairn_spec::note::Ed25519Verifier;
use cairn_spec::policy::Policy;
use cairn_spec::receipt::{verify, Receipt, VerifiedReceipt};
use cairn_spec::time::Instant;
use cairn_spec::Hash;
use clap::{Args, Parser, Subcommand};

/// Follow transparency logs, re-verify them, and check their proofs offline.
#[derive(Debug, Parser)]
#[command(name = "cairn-monitor", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines on stderr as text or as JSON lines (filter: CAIRN_MONITOR_LOG, else
    /// RUST_LOG).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "CAIRN_MONITOR_LOG_FORMAT",
        default_value_t
    )]
    log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Follow the configured logs (TOML config; CAIRN_MONITOR_* env and flags override).
    Run(RunArguments),
    /// Verify a receipt against a policy and say what it proves.
    VerifyReceipt {
        /// The receipt (cairn.receipt/v1 JSON).
        receipt: PathBuf,
        /// The tlog-policy file.
        #[arg(long)]
        policy: PathBuf,
    },
    /// Verify that one signed checkpoint extends another, given a consistency proof.
    VerifyConsistency(ConsistencyArguments),
    /// Verify a cairn.evidence/v1 file and say which conflict it proves.
    VerifyEvidence {
        /// The evidence file.
        file: PathBuf,
        /// The log's vkey.
        #[arg(long)]
        log_key: String,
    },
    /// Fetch audit events as a cairn.export/v1 bundle (GET /v1/export, reader token), verify it
    /// against the log's key and write it to --out. When more events match than one bundle
    /// holds, prints the cursor to continue with.
    Export(ExportArguments),
    /// Verify a cairn.export/v1 bundle offline: every leaf, payload and inclusion proof, and
    /// the checkpoint, against a policy (witnesses and timestamps too) or only the log's key.
    VerifyExport {
        /// The export file.
        file: PathBuf,
        /// The tlog-policy file (log key, witness quorum, trusted TSAs).
        #[arg(long, conflicts_with = "log_key", required_unless_present = "log_key")]
        policy: Option<PathBuf>,
        /// Only the log's vkey: cosignatures and timestamps are then not checked.
        #[arg(long)]
        log_key: Option<String>,
    },
    /// Re-verify a whole log from its tiles and entry bundles, with a progress line.
    ///
    /// Every entry's leaf hash is recomputed and compared with its level-0 tile, every full
    /// tile's subtree root recomputed, and the root recomputed on top of what was verified
    /// before and compared with the log's signed checkpoint. Tiles are fetched ahead while
    /// both cores hash. The log is read over HTTP, or from a local directory in the tlog-tiles
    /// layout (`--log file:///srv/mirror`: `checkpoint`, `tile/<L>/<N>[.p/<W>]`,
    /// `tile/entries/<N>[.p/<W>]`), the fastest way on one machine.
    ///
    /// Progress is kept in --state (synced every 128 tiles): an interrupted audit, killed
    /// included, resumes where it stopped, and a later audit of a grown log verifies only the new
    /// leaves (and their consistency with the old). Exits 0 when the log's checkpoint is
    /// verified, 1 otherwise (alert, missing file or unreachable log).
    Audit {
        /// The log: its read API's base URL (http:// or https://), or file:///path of a
        /// directory in the tlog-tiles layout.
        #[arg(long)]
        log: String,
        /// The log's vkey.
        #[arg(long)]
        log_key: String,
        /// Where to keep progress.
        #[arg(long, default_value = "cairn-audit-state")]
        state: PathBuf,
        /// Check tiles only, not entry bundles.
        #[arg(long)]
        tiles_only: bool,
        /// PEM CA certificates trusted for an https:// log beside the public roots (a private
        /// CA).
        #[arg(long, env = "CAIRN_MONITOR_CA_FILE")]
        ca_file: Option<PathBuf>,
    },
}

// The arguments of the commands with the most flags, each its own struct so that the command
// is one function taking it. Their help is the variant's doc comment above.

#[derive(Debug, Args)]
struct RunArguments {
    /// The configuration file.
    #[arg(long, env = "CAIRN_MONITOR_CONFIG")]
    config: PathBuf,
    /// Poll once, then exit: 0 if nothing was raised, 2 if any alert was.
    #[arg(long)]
    once: bool,
    /// HTTP address, overriding the file's `listen`.
    #[arg(long, env = "CAIRN_MONITOR_LISTEN")]
    listen: Option<String>,
    /// State directory, overriding the file's `state_dir`.
    #[arg(long, env = "CAIRN_MONITOR_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Webhook URL, overriding the file's `webhook`.
    #[arg(long, env = "CAIRN_MONITOR_WEBHOOK")]
    webhook: Option<String>,
    /// PEM CA certificates trusted for https:// URLs beside the public roots (a private CA),
    /// overriding the file's `ca_file`.
    #[arg(long, env = "CAIRN_MONITOR_CA_FILE")]
    ca_file: Option<PathBuf>,
    #[command(flatten)]
    http: HttpSettings,
}

#[derive(Debug, Args)]
struct ConsistencyArguments {
    /// The older checkpoint note.
    #[arg(long)]
    old: PathBuf,
    /// The newer checkpoint note.
    #[arg(long)]
    new: PathBuf,
    /// The proof: base64 hashes, one a line.
    #[arg(long)]
    proof: PathBuf,
    /// The log's vkey.
    #[arg(long)]
    log_key: String,
}

#[derive(Debug, Args)]
struct ExportArguments {
    /// The log's base URL.
    #[arg(long)]
    log: String,
    /// The log's vkey.
    #[arg(long)]
    log_key: String,
    /// A reader's bearer token.
    #[arg(long, env = "CAIRN_TOKEN", hide_env_values = true)]
    token: String,
    /// Where to write the bundle (never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// Events received at or after this RFC 3339 time.
    #[arg(long)]
    from: Option<String>,
    /// Events received before this RFC 3339 time.
    #[arg(long)]
    to: Option<String>,
    /// Only this actor's events.
    #[arg(long)]
    actor: Option<String>,
    /// Only events on this resource.
    #[arg(long)]
    resource: Option<String>,
    /// Only this action.
    #[arg(long)]
    action: Option<String>,
    /// Continue after this cursor (printed by an earlier export).
    #[arg(long)]
    cursor: Option<String>,
    /// At most this many events (1 to 10000).
    #[arg(long)]
    limit: Option<u32>,
}

const MAX_FILE_BYTES: u64 = 64 << 20;

/// What a verified receipt proves, for people.
fn describe_receipt(verified: &VerifiedReceipt) -> String {
    let time = |seconds: i64, nanos: u32| Instant::from_unix(seconds, nanos).to_rfc3339();
    let mut text = format!(
        "the receipt verifies against the policy:\n  \
         leaf {} of log {} (leaf hash {})\n  \
         in its tree of {} leaves with root {}\n",
        verified.index, verified.origin, verified.leaf_hash, verified.tree_size, verified.root
    );
    for (witness, seconds) in &verified.witnesses {
        let at = i64::try_from(*seconds).map_or_else(|_| seconds.to_string(), |s| time(s, 0));
        text.push_str(&format!("  cosigned by witness {witness} at {at}\n"));
    }
    for (tsa, at) in &verified.timestamps {
        text.push_str(&format!(
            "  timestamped by {} at {}\n",
            tsa.as_deref().unwrap_or("a TSA the policy does not name"),
            time(at.seconds, at.nanos)
        ));
    }
    if verified.unknown_signatures > 0 {
        text.push_str(&format!(
            "  ({} signatures by keys the policy does not know were not checked)\n",
            verified.unknown_signatures
        ));
    }
    text
}

fn read(path: &PathBuf) -> Result<Vec<u8>, String> {
    read_limited(path, MAX_FILE_BYTES)
}

fn read_limited(path: &PathBuf, limit: u64) -> Result<Vec<u8>, String> {
    let metadata =
        std::fs::metadata(path).map_err(|error| format!("{}: {error}", path.display()))?;
    if metadata.len() > limit {
        return Err(format!("{}: larger than {limit} bytes", path.display()));
    }
    std::fs::read(path).map_err(|error| format!("{}: {error}", path.display()))
}

/// Writes a file that must not exist yet, and syncs it.
fn write_new(path: &PathBuf, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|error| format!("{}: {error}", path.display()))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|error| format!("{}: {error}", path.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cairn_edge::log::init(cli.log_format, "CAIRN_MONITOR_LOG");
    match execute(cli.command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one command; an error is a message for the operator.
fn execute(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Run(arguments) => run(arguments),
        Command::VerifyReceipt { receipt, policy } => verify_receipt(&receipt, &policy),
        Command::VerifyConsistency(arguments) => verify_consistency_of(&arguments),
        Command::VerifyEvidence { file, log_key } => verify_evidence_file(&file, &log_key),
        Command::Export(arguments) => export(arguments),
        Command::VerifyExport {
            file,
            policy,
            log_key,
        } => verify_export_file(&file, policy.as_ref(), log_key.as_deref()),
        Command::Audit {
            log,
            log_key,
            state,
            tiles_only,
            ca_file,
        } => {
            let mut config = Config::audit(state, log, log_key, tiles_only);
            config.ca_file = ca_file;
            audit(config)
        }
    }
}

/// A log's vkey, as given on the command line.
fn log_key(vkey: &str) -> Result<Ed25519Verifier, String> {
    Ed25519Verifier::from_vkey(vkey).map_err(|error| format!("log key: {error}"))
}

/// A policy file.
fn policy(path: &PathBuf) -> Result<Policy, String> {
    Policy::parse(&read(path)?).map_err(|error| format!("policy: {error}"))
}

/// `verify-receipt`: a receipt against a policy, and what it proves.
fn verify_receipt(receipt: &PathBuf, policy_file: &PathBuf) -> Result<ExitCode, String> {
    let policy = policy(policy_file)?;
    let receipt =
        Receipt::from_json(&read(receipt)?).map_err(|error| format!("receipt: {error}"))?;
    let verified =
        verify(&receipt, &policy).map_err(|error| format!("receipt does not verify: {error}"))?;
    print!("{}", describe_receipt(&verified));
    Ok(ExitCode::SUCCESS)
}

/// `verify-consistency`: one signed checkpoint extends another, by the given proof.
fn verify_consistency_of(arguments: &ConsistencyArguments) -> Result<ExitCode, String> {
    let key = log_key(&arguments.log_key)?;
    let old = Checkpoint::open(&read(&arguments.old)?, &key)
        .map_err(|error| format!("old checkpoint: {error}"))?;
    let new = Checkpoint::open(&read(&arguments.new)?, &key)
        .map_err(|error| format!("new checkpoint: {error}"))?;
    let hashes = proof_hashes(&read(&arguments.proof)?)?;
    let (old, new) = (old.checkpoint, new.checkpoint);
    if old.origin != new.origin {
        return Err(format!("origins differ: {} and {}", old.origin, new.origin));
    }
    verify_consistency(old.size, new.size, &old.root, &new.root, &hashes)
        .map_err(|error| format!("not consistent: {error}"))?;
    println!(
        "consistent: {} size {} ({}) is a prefix of size {} ({})",
        old.origin, old.size, old.root, new.size, new.root
    );
    Ok(ExitCode::SUCCESS)
}

/// The hashes of a proof file: base64, one a line, blank lines ignored.
fn proof_hashes(bytes: &[u8]) -> Result<Vec<Hash>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "proof: not UTF-8".to_owned())?;
    text.lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| Hash::from_base64(line.trim()).map_err(|error| format!("proof: {error}")))
        .collect()
}

/// `verify-evidence`: which conflict an evidence file proves.
fn verify_evidence_file(file: &PathBuf, vkey: &str) -> Result<ExitCode, String> {
    let key = log_key(vkey)?;
    let evidence = Evidence::from_json(&read(file)?).map_err(|error| error.to_string())?;
    let conflict = verify_evidence(&evidence, &key)
        .map_err(|error| format!("evidence does not hold: {error}"))?;
    println!("evidence holds: {conflict:?}");
    Ok(ExitCode::SUCCESS)
}

/// `export`: a verified bundle of audit events, written to a new file.
fn export(arguments: ExportArguments) -> Result<ExitCode, String> {
    let key = log_key(&arguments.log_key)?;
    let query = ExportQuery {
        from: arguments.from,
        to: arguments.to,
        actor: arguments.actor,
        resource: arguments.resource,
        action: arguments.action,
        cursor: arguments.cursor,
        limit: arguments.limit,
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(300))
        .build()
        .map_err(|error| format!("HTTP client: {error}"))?;
    let fetched = runtime()?
        .block_on(fetch_export(
            &client,
            &arguments.log,
            &arguments.token,
            &query,
            &key,
        ))
        .map_err(|error| error.to_string())?;
    write_new(&arguments.out, &fetched.json)?;
    println!("{:#?}", fetched.verified);
    println!("written to {}", arguments.out.display());
    if let Some(cursor) = fetched.next_cursor {
        println!("more events match: run again with --cursor {cursor}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `verify-export`: a bundle against a policy, or only the log's key.
fn verify_export_file(
    file: &PathBuf,
    policy_file: Option<&PathBuf>,
    vkey: Option<&str>,
) -> Result<ExitCode, String> {
    let bundle = ExportBundle::from_json(&read_limited(file, MAX_EXPORT_BYTES as u64)?)
        .map_err(|error| format!("export: {error}"))?;
    let verified = match (policy_file, vkey) {
        (Some(policy_file), _) => {
            verify_export(&bundle, ExportTrust::Policy(&policy(policy_file)?))
        }
        (None, Some(vkey)) => verify_export(&bundle, ExportTrust::LogKey(&log_key(vkey)?)),
        (None, None) => return Err("give --policy or --log-key".to_owned()),
    }
    .map_err(|error| format!("export does not verify: {error}"))?;
    println!("{verified:#?}");
    Ok(ExitCode::SUCCESS)
}

/// `audit`: one poll of one log with a progress line; success only if its checkpoint verified
/// and nothing was raised.
fn audit(config: Config) -> Result<ExitCode, String> {
    runtime()?.block_on(async {
        let monitor = Monitor::new(&config).map_err(|error| error.to_string())?;
        monitor.show_progress().await;
        let started = std::time::Instant::now();
        monitor
            .poll_once()
            .await
            .map_err(|error| error.to_string())?;
        let elapsed = started.elapsed();
        let alerts = monitor.alerter.raised();
        let notes = monitor.verified_notes().await;
        for note in &notes {
            println!("verified:\n{note}");
        }
        eprintln!("audit took {:.3} s", elapsed.as_secs_f64());
        Ok(if alerts.is_empty() && !notes.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    })
}

/// `run`: the daemon, with the flags and environment over the configuration file.
fn run(arguments: RunArguments) -> Result<ExitCode, String> {
    let text =
        String::from_utf8(read(&arguments.config)?).map_err(|_| "config: not UTF-8".to_owned())?;
    let mut config = Config::from_toml(&text).map_err(|error| error.to_string())?;
    if let Some(listen) = arguments.listen {
        config.listen = Some(listen);
    }
    if let Some(state_dir) = arguments.state_dir {
        config.state_dir = state_dir;
    }
    if arguments.webhook.is_some() {
        config.webhook = arguments.webhook;
    }
    if arguments.ca_file.is_some() {
        config.ca_file = arguments.ca_file;
    }
    let edge = config
        .http
        .clone()
        .overlay(&arguments.http)
        .resolve()
        .map_err(|error| format!("config table [http]: {error}"))?;
    runtime()?.block_on(serve_and_poll(config, edge, arguments.once))
}

/// Opens the HTTP port if one is configured, then polls once (exit 2 if anything was raised)
/// or until SIGTERM or Ctrl-C.
async fn serve_and_poll(
    config: Config,
    edge: cairn_edge::EdgeConfig,
    once: bool,
) -> Result<ExitCode, String> {
    let monitor = Arc::new(Monitor::new(&config).map_err(|error| error.to_string())?);
    if let Some(listen) = &config.listen {
        let (listener, address) = bind(listen)
            .await
            .map_err(|error| format!("{listen}: {error}"))?;
        tracing::info!(%address, "listening");
        let server = monitor.clone();
        // The port lives as long as the process: the poll loop below decides when that ends.
        tokio::spawn(async move { server.serve(listener, edge, std::future::pending()).await });
    }
    if once {
        monitor
            .poll_once()
            .await
            .map_err(|error| error.to_string())?;
        let alerts = monitor.alerter.raised();
        return Ok(if alerts.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        });
    }
    // SIGTERM or Ctrl-C stop it between two awaits of a poll: the verified state is flushed
    // after each step it commits, so a restart resumes from there.
    tokio::select! {
        result = monitor.run(Duration::from_secs(config.poll_interval_secs.max(1))) => {
            result.map_err(|error| error.to_string())?;
        }
        () = shutdown_signal() => tracing::info!("stopping"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Resolves on SIGTERM or Ctrl-C.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut terminate) => {
            tokio::select! {
                _ = terminate.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("tokio runtime: {error}"))
}
