//! The command line of `cairn-monitor`: its commands, their arguments and their help.

use std::path::PathBuf;

use cairn_edge::log::LogFormat;
use cairn_monitor::daemon::HttpSettings;
use clap::{Args, Parser, Subcommand};

/// Follow transparency logs, re-verify them, and check their proofs offline.
#[derive(Debug, Parser)]
#[command(name = "cairn-monitor", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// Log lines on stderr as text or as JSON lines (filter: CAIRN_MONITOR_LOG, else
    /// RUST_LOG).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "CAIRN_MONITOR_LOG_FORMAT",
        default_value_t
    )]
    pub(crate) log_format: LogFormat,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Follow the configured logs (TOML config; CAIRN_MONITOR_* env and flags override).
    Run(RunArguments),
    /// Verify a receipt against a policy and say what it proves; or many receipts (several
    /// files, or directories of them) in one run, one result a line. Exits 0 when every
    /// receipt verifies, 1 otherwise.
    VerifyReceipt {
        /// The receipt: cairn.receipt/v1 JSON, or a C2SP tlog-proof (which carries no
        /// timestamps: a policy that asks for some refuses it). Several receipts, or a
        /// directory (every file directly in it but those named `.*`), are verified together:
        /// a checkpoint or TSA certificate that verified for one receipt is not verified again
        /// for the next, and signatures are checked in batches; each receipt is still checked
        /// entirely, with the result it would get alone.
        #[arg(required = true, num_args = 1..)]
        receipt: Vec<PathBuf>,
        /// The tlog-policy file.
        #[arg(long)]
        policy: PathBuf,
        /// The leaf (a file of its bytes), for a tlog-proof without `extra` data (one receipt
        /// only).
        #[arg(long)]
        leaf: Option<PathBuf>,
        /// The log's key history (its `GET /key-history`), verified from the policy's log key:
        /// every key it makes valid at the receipt's tree size is accepted.
        #[arg(long)]
        key_history: Option<PathBuf>,
        /// Print the result as one JSON object (`"ok"`, and what was verified or the error);
        /// for many receipts, one such object a line with its `"file"`, then a last line
        /// `{"ok", "receipts", "verified", "failed"}`.
        #[arg(long)]
        json: bool,
    },
    /// Convert receipts between Cairn's JSON and a plain C2SP tlog-proof.
    #[command(subcommand)]
    Receipt(ReceiptCommand),
    /// Verify that one signed checkpoint extends another, given a consistency proof. Exits 0
    /// when it does, 1 otherwise.
    VerifyConsistency(ConsistencyArguments),
    /// Verify a cairn.evidence/v1 file and say which conflict it proves. Exits 0 when the
    /// evidence holds, 1 otherwise.
    VerifyEvidence {
        /// The evidence file.
        file: PathBuf,
        /// The log's vkey.
        #[arg(long)]
        log_key: String,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Fetch audit events as a cairn.export/v1 bundle (GET /v1/export, reader token), verify it
    /// against the log's key and write it to --out, a file that must not exist yet. When more
    /// events match than one bundle holds, prints the command that fetches the next bundle
    /// (its --cursor, and another --out). Exits 0 when the bundle was verified and written, 1
    /// otherwise.
    Export(ExportArguments),
    /// Verify a cairn.export/v1 bundle offline: every leaf, payload and inclusion proof, and
    /// the checkpoint, against a policy (witnesses and timestamps too) or only the log's key.
    /// Exits 0 when it verifies, 1 otherwise.
    VerifyExport {
        /// The export file.
        file: PathBuf,
        /// The tlog-policy file (log key, witness quorum, trusted TSAs).
        #[arg(long, conflicts_with = "log_key", required_unless_present = "log_key")]
        policy: Option<PathBuf>,
        /// Only the log's vkey: cosignatures and timestamps are then not checked.
        #[arg(long)]
        log_key: Option<String>,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// Verify a saved answer of the log's GET /v1/events?…&proof=true offline: its proof (an
    /// export bundle with a completeness proof) against a policy or the log's key, and that
    /// the events it lists are exactly every event of the asked value in its window, in log
    /// order (one dropped, added or moved fails). Exits 0 when it verifies, 1 otherwise.
    VerifyQuery {
        /// The answer file (the JSON the log answered).
        file: PathBuf,
        /// The tlog-policy file (log key, witness quorum, trusted TSAs).
        #[arg(long, conflicts_with = "log_key", required_unless_present = "log_key")]
        policy: Option<PathBuf>,
        /// Only the log's vkey: cosignatures and timestamps are then not checked.
        #[arg(long)]
        log_key: Option<String>,
        /// Print the result as one JSON object.
        #[arg(long)]
        json: bool,
    },
    /// List the incidents kept in a monitor's state: the proven forks and inconsistencies
    /// (alerts with evidence), each with its number, evidence file and acknowledgement. Works
    /// beside a monitor running on the same state.
    Incidents {
        /// The state directory (`state_dir` of `run`, `--state` of `audit`).
        #[arg(long)]
        state: PathBuf,
        /// Print them as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Acknowledge an incident: record who, why and when in the state, beside its evidence,
    /// which is kept. Until then the incident fails every `audit` and `run --once` of its log
    /// and stays an active alert of `run`; a running monitor sees the acknowledgement at its
    /// next poll and sends a resolved notice. An incident is acknowledged once.
    Acknowledge {
        /// The state directory (`state_dir` of `run`, `--state` of `audit`).
        #[arg(long)]
        state: PathBuf,
        /// The incident's number (`cairn-monitor incidents` lists them).
        incident: i64,
        /// Why it is acknowledged (what was checked, what was done).
        #[arg(long)]
        reason: String,
        /// Who acknowledges it (default: the USER environment variable).
        #[arg(long, env = "USER", hide_env_values = true)]
        by: Option<String>,
        /// Print the acknowledged incident as JSON.
        #[arg(long)]
        json: bool,
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
    /// Progress is kept in --state (synced every 256 tiles): an interrupted audit, killed
    /// included, resumes where it stopped, and a later audit of a grown log verifies only the new
    /// leaves (and their consistency with the old). A proven fork or inconsistency is kept in
    /// the state with its evidence and fails every later audit until `cairn-monitor
    /// acknowledge` names it.
    ///
    /// Exits 0 only when this run verified the log's current checkpoint (printed as
    /// `verified:`) and no alert is active; 1 when it could not (unreachable log, missing file,
    /// incomplete fetch: the reason is printed, and progress is kept); 2 when the log
    /// misbehaved (an alert, or an incident not acknowledged).
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
        /// A file holding a reader's token, for a log whose entry bundles need one.
        #[arg(long, env = "CAIRN_MONITOR_TOKEN_FILE")]
        token_file: Option<PathBuf>,
        /// PEM CA certificates trusted for an https:// log beside the public roots (a private
        /// CA).
        #[arg(long, env = "CAIRN_MONITOR_CA_FILE")]
        ca_file: Option<PathBuf>,
        /// Print the result as one JSON object: `ok`, `exit_code`, and per log what was
        /// verified in this run (or the problem), the active alerts and the last verified state.
        #[arg(long)]
        json: bool,
    },
}

/// `cairn-monitor receipt ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ReceiptCommand {
    /// Convert a receipt: a cairn.receipt/v1 JSON to a C2SP tlog-proof (`c2sp.org/tlog-proof@v1`:
    /// the leaf in its `extra` line, the index, the inclusion proof and the checkpoint with its
    /// cosignatures; the RFC 3161 timestamps have no place there and are left out, which it
    /// says), or a tlog-proof to a cairn.receipt/v1 JSON (without timestamps). The input's form
    /// is read from its first line. Nothing is verified: `verify-receipt` verifies either form.
    Convert {
        /// The receipt or tlog-proof.
        file: PathBuf,
        /// The form to write.
        #[arg(long, value_enum)]
        to: ReceiptForm,
        /// The leaf (a file of its bytes), for a tlog-proof without `extra` data.
        #[arg(long)]
        leaf: Option<PathBuf>,
        /// Where to write it, a file that must not exist yet; standard output without it.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// A receipt's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ReceiptForm {
    /// A C2SP tlog-proof (`c2sp.org/tlog-proof@v1`).
    TlogProof,
    /// Cairn's cairn.receipt/v1 JSON.
    Json,
}

// The arguments of the commands with the most flags, each its own struct so that the command
// is one function taking it. Their help is the variant's doc comment above.

#[derive(Debug, Args)]
pub(crate) struct RunArguments {
    /// The configuration file.
    #[arg(long, env = "CAIRN_MONITOR_CONFIG")]
    pub(crate) config: PathBuf,
    /// Poll once, then exit: 0 if every log's current checkpoint was verified in this poll and
    /// no alert is active, 1 if a log could not be verified (unreachable, incomplete), 2 if an
    /// alert is active (incidents not acknowledged included).
    #[arg(long)]
    pub(crate) once: bool,
    /// With --once: print the result as one JSON object, as `audit --json` does.
    #[arg(long, requires = "once")]
    pub(crate) json: bool,
    /// HTTP address, overriding the file's `listen`.
    #[arg(long, env = "CAIRN_MONITOR_LISTEN")]
    pub(crate) listen: Option<String>,
    /// State directory, overriding the file's `state_dir`.
    #[arg(long, env = "CAIRN_MONITOR_STATE_DIR")]
    pub(crate) state_dir: Option<PathBuf>,
    /// Webhook URL, overriding the file's `webhook`.
    #[arg(long, env = "CAIRN_MONITOR_WEBHOOK")]
    pub(crate) webhook: Option<String>,
    /// Seconds between reminders of an alert that stays active (1 to 86400, default 3600),
    /// overriding the file's `alert_reminder_secs`.
    #[arg(long, env = "CAIRN_MONITOR_ALERT_REMINDER_SECS")]
    pub(crate) alert_reminder_secs: Option<u64>,
    /// PEM CA certificates trusted for https:// URLs beside the public roots (a private CA),
    /// overriding the file's `ca_file`.
    #[arg(long, env = "CAIRN_MONITOR_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) http: HttpSettings,
}

#[derive(Debug, Args)]
pub(crate) struct ConsistencyArguments {
    /// The older checkpoint note.
    #[arg(long)]
    pub(crate) old: PathBuf,
    /// The newer checkpoint note.
    #[arg(long)]
    pub(crate) new: PathBuf,
    /// The proof: base64 hashes, one a line.
    #[arg(long)]
    pub(crate) proof: PathBuf,
    /// The log's vkey.
    #[arg(long)]
    pub(crate) log_key: String,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ExportArguments {
    /// The log's base URL.
    #[arg(long)]
    pub(crate) log: String,
    /// The log's vkey.
    #[arg(long)]
    pub(crate) log_key: String,
    /// A reader's bearer token.
    #[arg(long, env = "CAIRN_TOKEN", hide_env_values = true)]
    pub(crate) token: String,
    /// Where to write the bundle: a file that must not exist yet (a bundle is never
    /// overwritten).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Events whose own `timestamp` is at or after this RFC 3339 time (not the time the log
    /// received them).
    #[arg(long)]
    pub(crate) from: Option<String>,
    /// Events whose own `timestamp` is before this RFC 3339 time.
    #[arg(long)]
    pub(crate) to: Option<String>,
    /// Only this actor's events.
    #[arg(long)]
    pub(crate) actor: Option<String>,
    /// Only events on this resource.
    #[arg(long)]
    pub(crate) resource: Option<String>,
    /// Only this action.
    #[arg(long)]
    pub(crate) action: Option<String>,
    /// Continue after this cursor (printed by an earlier export).
    #[arg(long)]
    pub(crate) cursor: Option<String>,
    /// At most this many events (1 to 10000).
    #[arg(long)]
    pub(crate) limit: Option<u32>,
    /// PEM CA certificates trusted for an https:// log beside the public roots (a private
    /// CA).
    #[arg(long, env = "CAIRN_MONITOR_CA_FILE")]
    pub(crate) ca_file: Option<PathBuf>,
    /// Print the result as one JSON object.
    #[arg(long)]
    pub(crate) json: bool,
}
