//! `cairn-log`: the Cairn log server (`serve`), its key and token tools (`keygen`,
//! `rotate-key`, `retire-key`, `revoke-key`, `token`), and `migrate` (an embedded log into the
//! scaled backend).

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_edge::log::LogFormat;
use cairn_log::config::{
    new_token_key, token_digest_hex, watch_principals, write_new_key, Settings,
};
use cairn_log::key_commands::{self as history, HistoryCommand, NewKey};
use cairn_log::server::RunningServer;
use clap::{Parser, Subcommand};
use rand::RngCore as _;

/// The Cairn log server: a durable, witnessed transparency log over HTTP.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines on stderr as text or as JSON lines (filter: CAIRN_LOG_LOG, else RUST_LOG).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "CAIRN_LOG_LOG_FORMAT",
        default_value_t
    )]
    log_format: LogFormat,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start
enum Command {
    /// Copies a log from the embedded store (the data_dir of a log that ran on one machine)
    /// into the scaled backend that --config names (`storage = "scaled"`: its [postgres] and
    /// [bucket]), then proves the copy: every tile hash of both stores is compared (the same
    /// root at every tree size) and the copy's root at the latest checkpoint is the one it
    /// signs. The checkpoint is carried over with its cosignatures and timestamp tokens and
    /// published to the bucket. Stop the old log and every front-end first (the migration
    /// takes the integrator lease); a migration that stopped is run again and goes on.
    /// Each front-end builds its events index from the log when it starts; legal holds are
    /// not carried over.
    Migrate {
        /// The embedded log's data directory (the old `data_dir`).
        #[arg(long, value_name = "DATA_DIR")]
        from: PathBuf,
        /// The TOML configuration of the scaled log (the same key and witnesses).
        #[arg(long, env = "CAIRN_LOG_CONFIG")]
        config: PathBuf,
    },
    /// Runs the log. Every key of the TOML file can be overridden by CAIRN_LOG_* or a flag.
    Serve {
        /// The TOML configuration file; its principals, producers and rate limits are read
        /// again on SIGHUP and when it changes (no restart).
        #[arg(long, env = "CAIRN_LOG_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: Settings,
    },
    /// Makes a new signing key, in a file (mode 0600) or inside a PKCS#11 token, and prints
    /// its vkey (the public key, for policies and monitors).
    #[command(group(clap::ArgGroup::new("where").required(true).args(["out", "pkcs11"])))]
    Keygen {
        /// The log's origin, which names the key.
        #[arg(long)]
        origin: String,
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Make the key inside the token that this configuration file's `[pkcs11]` table names
        /// (module, token_label or slot, key_label, pin_file or pin_env); a key label already
        /// in use is refused. The private key never leaves the token.
        #[arg(long, value_name = "LOG_TOML")]
        pkcs11: Option<PathBuf>,
    },
    /// Introduces a new log key in the key history (`key_history_dir`): made now (a key file
    /// in the directory, mode 0600), read from --new-key-file, or in a token (--pkcs11). The
    /// statement is signed by a current key and by the new one; a running log reads it within
    /// a second, logs it as a leaf and signs with both keys from --from-size on.
    #[command(group(clap::ArgGroup::new("new").args(["new_key_file", "pkcs11"])))]
    RotateKey {
        /// The log's TOML configuration (its key and key_history_dir).
        #[arg(long, env = "CAIRN_LOG_CONFIG")]
        config: PathBuf,
        /// The key history directory, instead of the configuration's key_history_dir.
        #[arg(long, env = "CAIRN_LOG_KEY_HISTORY_DIR")]
        key_history_dir: Option<PathBuf>,
        /// The smallest tree size the new key signs (the log's current size is a good choice).
        #[arg(long)]
        from_size: u64,
        /// Take the new key from this key file (a copy goes into the directory).
        #[arg(long)]
        new_key_file: Option<PathBuf>,
        /// The new key is in the token this configuration file's `[pkcs11]` table names (made
        /// with `keygen --pkcs11`, under a key label of its own).
        #[arg(long, value_name = "TOML")]
        pkcs11: Option<PathBuf>,
    },
    /// Retires a log key: it signs no checkpoint larger than --after-size; its signatures up to
    /// that size stay valid. Another current key must sign the next size.
    RetireKey {
        /// The log's TOML configuration.
        #[arg(long, env = "CAIRN_LOG_CONFIG")]
        config: PathBuf,
        /// The key history directory, instead of the configuration's key_history_dir.
        #[arg(long, env = "CAIRN_LOG_KEY_HISTORY_DIR")]
        key_history_dir: Option<PathBuf>,
        /// The key's vkey.
        #[arg(long)]
        vkey: String,
        /// The largest tree size it signs.
        #[arg(long)]
        after_size: u64,
    },
    /// Revokes a compromised log key: its signature on any checkpoint of --from-size or more
    /// is a compromise, which monitors raise an alert for. Signed by another current key.
    RevokeKey {
        /// The log's TOML configuration.
        #[arg(long, env = "CAIRN_LOG_CONFIG")]
        config: PathBuf,
        /// The key history directory, instead of the configuration's key_history_dir.
        #[arg(long, env = "CAIRN_LOG_KEY_HISTORY_DIR")]
        key_history_dir: Option<PathBuf>,
        /// The key's vkey.
        #[arg(long)]
        vkey: String,
        /// The first tree size whose signature by it is a compromise.
        #[arg(long)]
        from_size: u64,
    },
    /// Prints a new random producer token and the configuration lines with its hash.
    Token {
        /// The principal's name (letters, digits and `.-_@:/`), bound into the events it
        /// submits as `submitted_by`.
        #[arg(long)]
        name: String,
        /// Its role: without one, the lines are a `[[producers]]` entry (a producer of leaves
        /// and events); with one, a `[[principals]]` entry with that role.
        #[arg(long, value_enum)]
        role: Option<TokenRole>,
    },
}

/// The roles of `[[principals]]` (spec/docs/log-api.md).
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum TokenRole {
    /// Writes leaves and events.
    Producer,
    /// Reads, queries, verifies and exports events.
    Reader,
    /// Erases payloads, sets and lifts legal holds; may also read.
    Admin,
}

impl TokenRole {
    fn as_str(self) -> &'static str {
        match self {
            TokenRole::Producer => "producer",
            TokenRole::Reader => "reader",
            TokenRole::Admin => "admin",
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    cairn_edge::log::init(cli.log_format, "CAIRN_LOG_LOG");
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cairn-log: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Migrate { from, config } => run_migrate(&from, &config),
        Command::Keygen {
            origin,
            out,
            pkcs11,
        } => {
            let vkey = match (out, pkcs11) {
                (Some(out), _) => write_new_key(&origin, &out),
                (None, Some(config)) => new_token_key(&origin, &config),
                (None, None) => unreachable!("clap requires --out or --pkcs11"),
            }
            .map_err(|e| e.to_string())?;
            println!("{vkey}");
            Ok(())
        }
        Command::RotateKey {
            config,
            key_history_dir,
            from_size,
            new_key_file,
            pkcs11,
        } => {
            let new_key = match (new_key_file, pkcs11) {
                (Some(path), _) => NewKey::File(path),
                (None, Some(config)) => NewKey::Token(config),
                (None, None) => NewKey::Generate,
            };
            let command = HistoryCommand::Rotate {
                new_key,
                from: from_size,
            };
            run_history(&config, key_history_dir, command)
        }
        Command::RetireKey {
            config,
            key_history_dir,
            vkey,
            after_size,
        } => run_history(
            &config,
            key_history_dir,
            HistoryCommand::Retire {
                vkey,
                last: after_size,
            },
        ),
        Command::RevokeKey {
            config,
            key_history_dir,
            vkey,
            from_size,
        } => run_history(
            &config,
            key_history_dir,
            HistoryCommand::Revoke {
                vkey,
                from: from_size,
            },
        ),
        Command::Token { name, role } => {
            // The name goes into a TOML string and into every event's `submitted_by`: keep it
            // to characters that need no escaping anywhere.
            let allowed = |c: char| c.is_ascii_alphanumeric() || ".-_@:/".contains(c);
            if name.is_empty() || name.len() > 128 || !name.chars().all(allowed) {
                return Err(format!(
                    "the name must be 1 to 128 letters, digits or `.-_@:/`, not {name:?}"
                ));
            }
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            println!("token: {token}");
            println!();
            match role {
                None => println!("[[producers]]"),
                Some(_) => println!("[[principals]]"),
            }
            println!("name = \"{name}\"");
            if let Some(role) = role {
                println!("role = \"{}\"", role.as_str());
            }
            println!("token_sha256 = \"{}\"", token_digest_hex(&token));
            Ok(())
        }
        Command::Serve { config, settings } => {
            let (file, version) = match &config {
                Some(path) => {
                    let (file, version) =
                        Settings::read_versioned(path).map_err(|e| e.to_string())?;
                    (file, Some(version))
                }
                None => (Settings::default(), None),
            };
            let merged = file.overlay(&settings);
            let resolved = merged.resolve().map_err(|e| e.to_string())?;
            let reload_interval = merged.config_reload_interval();
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("could not start the runtime: {e}"))?;
            runtime.block_on(async move {
                // Before anything listens: from here on a SIGHUP reloads, never kills.
                let hangups =
                    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
                        .map_err(|e| format!("could not handle SIGHUP: {e}"))?;
                let server = RunningServer::start(resolved)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("listening on {}", server.addr);
                // Principals, producers and rate limits follow the file (SIGHUP or a change).
                let reloads = tokio::spawn(watch_principals(
                    config.zip(version),
                    settings,
                    server.principals.clone(),
                    reload_interval,
                    hangups,
                ));
                wait_for_signal().await;
                reloads.abort();
                tracing::info!(
                    "stopping: finishing in-flight batches and signing a final checkpoint"
                );
                server.shutdown().await.map_err(|e| e.to_string())
            })
        }
    }
}

/// Runs a key history command against the log configured in `config` (its key history
/// directory replaced by `key_history_dir` if given) and prints its report.
fn run_history(
    config: &std::path::Path,
    key_history_dir: Option<PathBuf>,
    command: HistoryCommand,
) -> Result<(), String> {
    let mut settings = Settings::from_file(config).map_err(|e| e.to_string())?;
    if key_history_dir.is_some() {
        settings.key_history_dir = key_history_dir;
    }
    let report = history::run(&settings, command)?;
    print!("{report}");
    Ok(())
}

/// `cairn-log migrate`: opens both stores, copies, proves and says what it did.
fn run_migrate(from: &std::path::Path, config: &std::path::Path) -> Result<(), String> {
    use cairn_log::publisher::PublisherConfig;
    use cairn_log::storage::embedded::{EmbeddedConfig, EmbeddedStore};
    use cairn_log::storage::scaled::ScaledStore;

    let resolved = Settings::from_file(config)
        .and_then(|settings| settings.resolve())
        .map_err(|e| e.to_string())?;
    let Some(scaled) = resolved.scaled else {
        return Err(format!(
            "{} does not configure the scaled backend (storage = \"scaled\" with [postgres] \
             and [bucket]): nothing to migrate into",
            config.display()
        ));
    };
    if !from.join("lock").exists() {
        return Err(format!(
            "{} holds no embedded log (no lock file): give the old data_dir",
            from.display()
        ));
    }
    let source = EmbeddedStore::open(EmbeddedConfig::new(from))
        .map_err(|e| format!("opening the embedded log in {}: {e}", from.display()))?;
    let keys_database = scaled.postgres.clone();
    let target = ScaledStore::open(scaled.postgres, scaled.bucket)
        .map_err(|e| format!("opening the scaled backend: {e}"))?;
    // The data subjects' keys first: a KEK that does not open them stops the migration
    // before any entry is copied.
    if let Some(privacy) = &resolved.events.store.privacy {
        let database = cairn_log::storage::postgres::PostgresStore::open_for_events(keys_database)
            .map_err(|e| format!("opening the scaled backend's key rows: {e}"))?;
        let rows = cairn_log::events::postgres::PostgresKeyRows::new(std::sync::Arc::new(database));
        let keys = cairn_log::events::privacy::Privacy::copy_subject_keys(
            &from.join("events"),
            privacy,
            Box::new(rows),
        )
        .map_err(|e| format!("the migration stopped copying the data subjects' keys: {e}"))?;
        println!("data subjects' keys: {keys} in the target, wrapped under the same KEK");
    }
    let witnesses = PublisherConfig {
        witnesses: resolved.witnesses,
        quorum: resolved.quorum,
        request_timeout: resolved.witness_timeout,
        max_backoff: std::time::Duration::from_secs(30),
        roots: resolved.witness_roots,
    };
    let report =
        cairn_log::migrate::migrate(&source, &target, &witnesses, &mut |line| println!("{line}"))
            .map_err(|e| format!("the migration stopped: {e}"))?;
    println!(
        "migrated: {} entries ({} copied now), {} tile hashes compared, checkpoint {}",
        report.entries,
        report.copied,
        report.hashes_compared,
        match (report.checkpoint, report.published) {
            (Some(size), true) => format!("of size {size} carried over and published"),
            (Some(size), false) => format!("of size {size} carried over, not yet published"),
            (None, _) => "none".into(),
        }
    );
    Ok(())
}

async fn wait_for_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = terminate.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
