//! `cairn-monitor`: the monitor daemon and the auditor's offline commands.

#![forbid(unsafe_code)]

mod cli;
mod query_command;
mod receipts;
mod report;

use cli::*;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use cairn_monitor::daemon::{bind, Config, Monitor};
use cairn_monitor::export::{fetch_export, ExportQuery, MAX_EXPORT_BYTES};
use cairn_monitor::state::StateStore;
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::evidence::{verify_evidence, Evidence};
use cairn_spec::export::{AnyExport, ExportTrust};
use cairn_spec::merkle::verify_consistency;
use cairn_spec::note::Ed25519Verifier;
use cairn_spec::policy::Policy;
use cairn_spec::receipt::{verify, Receipt, TLOG_PROOF_HEADER};
use cairn_spec::Hash;
use clap::Parser;

const MAX_FILE_BYTES: u64 = 64 << 20;

fn read(path: &Path) -> Result<Vec<u8>, String> {
    read_limited(path, MAX_FILE_BYTES)
}

/// The bytes of `path`, at most `limit` of them (the bound holds while reading).
fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    cairn_edge::config_file::read_bounded(path, limit).map_err(|error| error.to_string())
}

/// Why `--out` cannot be written: it exists already. The hint names what to do.
fn exists_already(path: &Path) -> String {
    format!(
        "{} exists already: an export is never overwritten; give another --out (for the next \
         bundle of a --cursor, a new name), or move that file away",
        path.display()
    )
}

/// Writes a file that must not exist yet, and syncs it.
fn write_new(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write as _;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(|error| match error.kind() {
            std::io::ErrorKind::AlreadyExists => exists_already(path),
            _ => format!("{}: {error}", path.display()),
        })?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|error| format!("{}: {error}", path.display()))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cairn_edge::log::init(cli.log_format, "CAIRN_MONITOR_LOG");
    let json = wants_json(&cli.command);
    match execute(cli.command) {
        Ok(code) => code,
        Err(message) => {
            if json {
                println!("{}", serde_json::json!({"ok": false, "error": message}));
            } else {
                eprintln!("error: {message}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Whether the command was asked for JSON output (an error is then JSON too).
fn wants_json(command: &Command) -> bool {
    match command {
        Command::Run(arguments) => arguments.json,
        Command::VerifyReceipt { json, .. }
        | Command::VerifyEvidence { json, .. }
        | Command::VerifyExport { json, .. }
        | Command::VerifyQuery { json, .. }
        | Command::Incidents { json, .. }
        | Command::Acknowledge { json, .. }
        | Command::Audit { json, .. } => *json,
        Command::VerifyConsistency(arguments) => arguments.json,
        Command::Export(arguments) => arguments.json,
        Command::Receipt(_) => false,
    }
}

/// Prints `value` as one line of JSON, or `text` as it is.
fn print(json: bool, value: &serde_json::Value, text: &str) {
    if json {
        println!("{value}");
    } else {
        print!("{text}");
    }
}

/// Runs one command; an error is a message for the operator.
fn execute(command: Command) -> Result<ExitCode, String> {
    match command {
        Command::Run(arguments) => run(arguments),
        Command::VerifyReceipt {
            receipt,
            policy,
            leaf,
            key_history,
            json,
        } => verify_receipt(
            &receipt,
            &policy,
            leaf.as_deref(),
            key_history.as_deref(),
            json,
        ),
        Command::Receipt(ReceiptCommand::Convert {
            file,
            to,
            leaf,
            out,
        }) => convert_receipt(&file, to, leaf.as_deref(), out.as_deref()),
        Command::VerifyConsistency(arguments) => verify_consistency_of(&arguments),
        Command::VerifyEvidence {
            file,
            log_key,
            json,
        } => verify_evidence_file(&file, &log_key, json),
        Command::Export(arguments) => export(arguments),
        Command::VerifyExport {
            file,
            policy,
            log_key,
            json,
        } => verify_export_file(&file, policy.as_deref(), log_key.as_deref(), json),
        Command::VerifyQuery {
            file,
            policy,
            log_key,
            json,
        } => query_command::verify_query_file(&file, policy.as_deref(), log_key.as_deref(), json),
        Command::Incidents { state, json } => incidents(&state, json),
        Command::Acknowledge {
            state,
            incident,
            reason,
            by,
            json,
        } => acknowledge(&state, incident, &reason, by.as_deref(), json),
        Command::Audit {
            log,
            log_key,
            state,
            tiles_only,
            token_file,
            ca_file,
            json,
        } => {
            let mut config = Config::audit(state.clone(), log, log_key, tiles_only);
            config.ca_file = ca_file;
            for log in &mut config.logs {
                log.token_file = token_file.clone();
            }
            audit(config, &state, json)
        }
    }
}

/// A log's vkey, as given on the command line.
fn log_key(vkey: &str) -> Result<Ed25519Verifier, String> {
    Ed25519Verifier::from_vkey(vkey).map_err(|error| format!("log key: {error}"))
}

/// A policy file.
fn policy(path: &Path) -> Result<Policy, String> {
    Policy::parse(&read(path)?).map_err(|error| format!("policy: {error}"))
}

/// A receipt file in either form: cairn.receipt/v1 JSON, or a C2SP tlog-proof (its leaf from
/// `leaf`, else from its `extra` line); says which.
fn read_receipt(file: &Path, leaf: Option<&Path>) -> Result<(Receipt, ReceiptForm), String> {
    receipt_from_bytes(read(file)?, leaf)
}

/// [`read_receipt`] of a file already read.
fn receipt_from_bytes(
    bytes: Vec<u8>,
    leaf: Option<&Path>,
) -> Result<(Receipt, ReceiptForm), String> {
    let is_tlog_proof = bytes.starts_with(format!("{TLOG_PROOF_HEADER}\n").as_bytes());
    if !is_tlog_proof {
        if leaf.is_some() {
            return Err(
                "--leaf is for a tlog-proof; a cairn.receipt/v1 JSON carries its leaf".into(),
            );
        }
        let receipt = Receipt::from_json(&bytes).map_err(|error| format!("receipt: {error}"))?;
        return Ok((receipt, ReceiptForm::Json));
    }
    let text = String::from_utf8(bytes).map_err(|_| "tlog-proof: not UTF-8".to_owned())?;
    let leaf = leaf.map(read).transpose()?;
    let receipt = Receipt::from_tlog_proof(&text, leaf.as_deref())
        .map_err(|error| format!("receipt: {error}"))?;
    Ok((receipt, ReceiptForm::TlogProof))
}

/// `receipt convert`: one form of a receipt to the other, unverified.
fn convert_receipt(
    file: &Path,
    to: ReceiptForm,
    leaf: Option<&Path>,
    out: Option<&Path>,
) -> Result<ExitCode, String> {
    if let Some(out) = out {
        if std::fs::symlink_metadata(out).is_ok() {
            return Err(format!(
                "{} exists already: a converted receipt is never written over a file; give \
                 another --out",
                out.display()
            ));
        }
    }
    let (receipt, from) = read_receipt(file, leaf)?;
    if from == to {
        return Err(format!("{} is already in that form", file.display()));
    }
    let converted = match to {
        ReceiptForm::TlogProof => receipt.to_tlog_proof(),
        ReceiptForm::Json => format!("{}\n", receipt.to_json()),
    };
    match out {
        Some(out) => write_new(out, converted.as_bytes())?,
        None => print!("{converted}"),
    }
    let left_out = if to == ReceiptForm::TlogProof && !receipt.timestamps.is_empty() {
        format!(
            "; its {} timestamp tokens have no place in a tlog-proof and were left out",
            receipt.timestamps.len()
        )
    } else {
        String::new()
    };
    eprintln!(
        "converted, not verified (verify-receipt --policy verifies it){left_out}{}",
        out.map(|out| format!("; written to {}", out.display()))
            .unwrap_or_default()
    );
    Ok(ExitCode::SUCCESS)
}

/// Attaches the key history in `path` to the policy's log whose checkpoint is `checkpoint`.
fn attach_key_history(policy: &mut Policy, path: &Path, checkpoint: &str) -> Result<(), String> {
    let bytes = read(path)?;
    let origin = checkpoint.lines().next().unwrap_or_default();
    policy
        .attach_key_history(origin, &bytes)
        .map_err(|error| format!("{}: {error}", path.display()))
}

/// `verify-receipt`: a receipt against a policy, and what it proves; or many, one result each.
fn verify_receipt(
    arguments: &[PathBuf],
    policy_file: &Path,
    leaf: Option<&Path>,
    key_history: Option<&Path>,
    json: bool,
) -> Result<ExitCode, String> {
    let mut policy = policy(policy_file)?;
    let files = receipts::receipt_files(arguments)?;
    let receipt = match (files.as_slice(), leaf) {
        ([file], _) if arguments.len() == 1 && files[0] == arguments[0] => file,
        (_, Some(_)) => return Err("--leaf is for one receipt".into()),
        _ => {
            if let (Some(path), Some(first)) = (key_history, files.first()) {
                // The history is of the log the receipts are from: the first receipt names it.
                let (first, _) = read_receipt(first, None)?;
                attach_key_history(&mut policy, path, &first.checkpoint)?;
            }
            return receipts::verify_many(&files, &policy, json);
        }
    };
    let (receipt, _) = read_receipt(receipt, leaf)?;
    if let Some(path) = key_history {
        attach_key_history(&mut policy, path, &receipt.checkpoint)?;
    }
    let verified =
        verify(&receipt, &policy).map_err(|error| format!("receipt does not verify: {error}"))?;
    print(
        json,
        &report::receipt_json(&verified),
        &report::describe_receipt(&verified),
    );
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
    print(
        arguments.json,
        &serde_json::json!({
            "ok": true,
            "origin": old.origin,
            "old": {"size": old.size, "root": old.root.to_base64()},
            "new": {"size": new.size, "root": new.root.to_base64()},
        }),
        &format!(
            "consistent: {} size {} ({}) is a prefix of size {} ({})\n",
            old.origin, old.size, old.root, new.size, new.root
        ),
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
fn verify_evidence_file(file: &Path, vkey: &str, json: bool) -> Result<ExitCode, String> {
    let key = log_key(vkey)?;
    let evidence = Evidence::from_json(&read(file)?).map_err(|error| error.to_string())?;
    let conflict = verify_evidence(&evidence, &key)
        .map_err(|error| format!("evidence does not hold: {error}"))?;
    print(
        json,
        &report::conflict_json(&conflict),
        &format!("evidence holds: {}\n", report::describe_conflict(&conflict)),
    );
    Ok(ExitCode::SUCCESS)
}

/// An HTTP client for the log, trusting `ca_file` beside the public roots when given.
fn http_client(ca_file: Option<&Path>, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder().timeout(timeout);
    if let Some(path) = ca_file {
        let pem = cairn_edge::read_ca_pem(path)
            .map_err(|error| format!("--ca-file {}: {error}", path.display()))?;
        for root in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|error| format!("--ca-file {}: {error}", path.display()))?
        {
            builder = builder.add_root_certificate(root);
        }
    }
    builder
        .build()
        .map_err(|error| format!("HTTP client: {error}"))
}

/// `export`: a verified bundle of audit events, written to a new file.
fn export(arguments: ExportArguments) -> Result<ExitCode, String> {
    let key = log_key(&arguments.log_key)?;
    // Refused before anything is fetched: a bundle is never overwritten.
    if std::fs::symlink_metadata(&arguments.out).is_ok() {
        return Err(exists_already(&arguments.out));
    }
    let query = ExportQuery {
        from: arguments.from.clone(),
        to: arguments.to.clone(),
        actor: arguments.actor.clone(),
        resource: arguments.resource.clone(),
        action: arguments.action.clone(),
        cursor: arguments.cursor.clone(),
        limit: arguments.limit,
    };
    let client = http_client(arguments.ca_file.as_deref(), Duration::from_secs(300))?;
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
    let next = fetched
        .next_cursor
        .as_deref()
        .map(|cursor| report::next_export_command(&arguments, cursor));
    let mut value = report::export_json(&fetched.verified, "log-key");
    value["file"] = arguments.out.display().to_string().into();
    value["next_cursor"] = fetched.next_cursor.clone().into();
    let mut text = format!(
        "{}written to {}\n",
        report::describe_export(&fetched.verified, "the log's key"),
        arguments.out.display()
    );
    if let Some(next) = next {
        text.push_str(&format!(
            "more events match; the next bundle (the token from CAIRN_TOKEN):\n  {next}\n"
        ));
    }
    print(arguments.json, &value, &text);
    Ok(ExitCode::SUCCESS)
}

/// `verify-export`: a bundle against a policy, or only the log's key.
fn verify_export_file(
    file: &Path,
    policy_file: Option<&Path>,
    vkey: Option<&str>,
    json: bool,
) -> Result<ExitCode, String> {
    let bundle = AnyExport::from_json(&read_limited(file, MAX_EXPORT_BYTES as u64)?)
        .map_err(|error| format!("export: {error}"))?;
    let (verified, trust, against) = match (policy_file, vkey) {
        (Some(policy_file), _) => (
            bundle.verify(ExportTrust::Policy(&policy(policy_file)?)),
            "policy",
            "the policy (log key, witness quorum, timestamps)",
        ),
        (None, Some(vkey)) => (
            bundle.verify(ExportTrust::LogKey(&log_key(vkey)?)),
            "log-key",
            "the log's key",
        ),
        (None, None) => return Err("give --policy or --log-key".to_owned()),
    };
    let verified = verified.map_err(|error| format!("export does not verify: {error}"))?;
    print(
        json,
        &report::export_json(&verified, trust),
        &report::describe_export(&verified, against),
    );
    Ok(ExitCode::SUCCESS)
}

/// `incidents`: the incidents kept in a state directory.
fn incidents(state: &Path, json: bool) -> Result<ExitCode, String> {
    let store = StateStore::open_beside(state).map_err(|error| error.to_string())?;
    let incidents = store.incidents(None).map_err(|error| error.to_string())?;
    print(
        json,
        &serde_json::to_value(&incidents).expect("incidents serialise"),
        &report::describe_incidents(&incidents, state),
    );
    Ok(ExitCode::SUCCESS)
}

/// `acknowledge`: an operator's acknowledgement of one incident, recorded in the state.
fn acknowledge(
    state: &Path,
    incident: i64,
    reason: &str,
    by: Option<&str>,
    json: bool,
) -> Result<ExitCode, String> {
    let by = by.ok_or("give --by: who acknowledges the incident (USER is not set)")?;
    let store = StateStore::open_beside(state).map_err(|error| error.to_string())?;
    let now = cairn_monitor::clock::unix_now();
    let acknowledged = store
        .acknowledge(incident, by, reason, now)
        .map_err(|error| error.to_string())?;
    print(
        json,
        &serde_json::to_value(&acknowledged).expect("incidents serialise"),
        &format!(
            "incident {incident} acknowledged by {by} ({}); its evidence is kept\n",
            report::time(now)
        ),
    );
    Ok(ExitCode::SUCCESS)
}

/// `audit`: one poll of one log with a progress line. Success only if this run verified the
/// log's current checkpoint and no alert is active.
fn audit(config: Config, state: &Path, json: bool) -> Result<ExitCode, String> {
    runtime()?.block_on(async {
        let monitor = Monitor::new(&config).map_err(|error| error.to_string())?;
        monitor.show_progress().await;
        let started = std::time::Instant::now();
        let reports = monitor
            .poll_once()
            .await
            .map_err(|error| error.to_string())?;
        let outcome = report::Outcome::of(reports, &monitor.alerter, state);
        let seconds = started.elapsed().as_secs_f64();
        print(json, &outcome.json(seconds), &outcome.text());
        eprintln!("audit took {seconds:.3} s");
        Ok(ExitCode::from(outcome.exit_code()))
    })
}

/// `run`: the daemon, with the flags and environment over the configuration file.
fn run(arguments: RunArguments) -> Result<ExitCode, String> {
    let mut config = Config::load(&arguments.config).map_err(|error| error.to_string())?;
    config.listen = arguments.listen.or(config.listen);
    config.state_dir = arguments.state_dir.unwrap_or(config.state_dir);
    config.webhook = arguments.webhook.or(config.webhook);
    config.alert_reminder_secs = arguments
        .alert_reminder_secs
        .unwrap_or(config.alert_reminder_secs);
    config.ca_file = arguments.ca_file.or(config.ca_file);
    let edge = config
        .http
        .clone()
        .overlay(&arguments.http)
        .resolve()
        .map_err(|error| format!("config table [http]: {error}"))?;
    runtime()?.block_on(serve_and_poll(config, edge, arguments.once, arguments.json))
}

/// Opens the HTTP port if one is configured, then polls once (exit 0 verified, 1 not verified,
/// 2 an alert active) or until SIGTERM or Ctrl-C.
async fn serve_and_poll(
    config: Config,
    edge: cairn_edge::EdgeConfig,
    once: bool,
    json: bool,
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
        let started = std::time::Instant::now();
        let reports = monitor
            .poll_once()
            .await
            .map_err(|error| error.to_string())?;
        let outcome = report::Outcome::of(reports, &monitor.alerter, &config.state_dir);
        if json {
            println!("{}", outcome.json(started.elapsed().as_secs_f64()));
        } else {
            print!("{}", outcome.text());
        }
        return Ok(ExitCode::from(outcome.exit_code()));
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
