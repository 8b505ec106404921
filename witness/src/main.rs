//! `cairn-witness`: the witness server, its key generator, and a small RFC 3161 TSA.

#![forbid(unsafe_code)]

use anyhow::{bail, Context};
use cairn_edge::log::LogFormat;
use cairn_keys::{NoteSigner, Pkcs11Key};
use cairn_spec::cosignature::{CosignatureSigner, CosignatureV1};
use cairn_spec::note::{Ed25519Verifier, KeyName};
use cairn_spec::timestamp::{Accuracy, ObjectIdentifier, TrustAnchors};
use cairn_witness::anchor::{AnchorSettings, TsaEndpoint};
use cairn_witness::config::{Config, TsaHttpSettings};
use cairn_witness::keys::{read_key_file, write_key_file};
use cairn_witness::store::Store;
use cairn_witness::tsa::{self, KeyAlgorithm};
use cairn_witness::{start_witness, LogSpec};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "cairn-witness",
    version,
    about = "Cairn witness: cosigns consistent checkpoints (C2SP tlog-witness) and anchors them with RFC 3161 timestamps"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log lines on stderr as text or as JSON lines (filter: CAIRN_WITNESS_LOG, else
    /// RUST_LOG).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "CAIRN_WITNESS_LOG_FORMAT",
        default_value_t
    )]
    log_format: LogFormat,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the witness.
    Serve(Box<ServeArgs>),
    /// Makes a witness key, in a file (mode 0600) or inside a PKCS#11 token, and prints the
    /// vkey.
    #[command(group(clap::ArgGroup::new("where").required(true).args(["out", "pkcs11"])))]
    Keygen {
        /// The key's name, e.g. witness.example.com/w1.
        #[arg(long)]
        name: String,
        /// The private key file to create.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Make the key inside the token that this configuration file's `[pkcs11]` table names
        /// (module, token_label or slot, key_label, pin_file or pin_env); a key label already
        /// in use is refused. The private key never leaves the token.
        #[arg(long, value_name = "WITNESS_TOML")]
        pkcs11: Option<PathBuf>,
    },
    /// Makes a new witness key (a file, mode 0600) and writes the statement introducing it,
    /// signed by the current key and the new one, into the witness's key history directory
    /// (spec/docs/key-history.md). Prints the new vkey and the policy line that adds it beside
    /// the old one; then serve with the new key.
    RotateKey {
        /// The witness's TOML configuration (its key_file, or [pkcs11] and key_name).
        #[arg(long, env = "CAIRN_WITNESS_CONFIG")]
        config: Option<PathBuf>,
        /// The current key file (instead of the configuration's).
        #[arg(long)]
        key_file: Option<PathBuf>,
        /// The key history directory (pinned.vkey and history; made at the first rotation).
        #[arg(long)]
        history_dir: PathBuf,
        /// The new key file to create; an existing file is never overwritten.
        #[arg(long)]
        new_key_out: PathBuf,
        /// The smallest tree size the new key cosigns [default: 0, every size].
        #[arg(long, default_value_t = 0)]
        from_size: u64,
    },
    /// A small RFC 3161 timestamp authority.
    Tsa {
        #[command(subcommand)]
        command: TsaCommand,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML configuration file (keys: listen, data_dir, key_file, anchor_wait_ms,
    /// tsa_timeout_ms, tsa_max_attempts, tsa_initial_backoff_ms, anchor_queue, [http], [[log]],
    /// [[tsa]]).
    /// The logs witnessed ([[log]]) and the TSAs used ([[tsa]]) are read from this file only;
    /// the other keys can be overridden by the flags below and CAIRN_WITNESS_* variables.
    #[arg(long, env = "CAIRN_WITNESS_CONFIG")]
    config: Option<PathBuf>,
    /// The keys given as flags and environment variables, laid over the file's.
    #[command(flatten)]
    settings: Config,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start
enum TsaCommand {
    /// Makes a root CA and a TSA certificate and keys in a directory: key files, or with
    /// --pkcs11 the TSA's key (ECDSA P-256) inside a PKCS#11 token.
    Init {
        /// Directory to create the TSA in.
        #[arg(long, env = "CAIRN_WITNESS_TSA_DIR")]
        dir: PathBuf,
        /// The TSA's name (certificate common name).
        #[arg(long)]
        name: String,
        /// Key algorithm of the root and the TSA. P-256 tokens verify with `openssl ts
        /// -verify`; Ed25519 tokens verify with cairn-spec but not with OpenSSL 3.0, whose
        /// timestamp code (PKCS #7) has no Ed25519.
        #[arg(long, value_enum, default_value = "p256")]
        algorithm: KeyAlgorithm,
        /// Validity of the certificates, days.
        #[arg(long, default_value_t = 3650)]
        validity_days: u32,
        /// Make the TSA's key (ECDSA P-256, CKM_EC_KEY_PAIR_GEN) inside the token that this
        /// file's `[pkcs11]` table names (module, token_label or slot, key_label, pin_file or
        /// pin_env; the file holds that table only); a key label already in use is refused. The
        /// table is copied into the TSA directory as tsa-key.toml, which `tsa serve` signs
        /// through (CKM_ECDSA); the private key never leaves the token. The root's key stays a
        /// file (root.key), needed only to certify a new TSA key.
        #[arg(long, value_name = "TOKEN_TOML")]
        pkcs11: Option<PathBuf>,
        /// With --pkcs11: certify the P-256 key already in the token under key_label (made by
        /// the HSM's own tools) instead of making one.
        #[arg(long, requires = "pkcs11")]
        existing_key: bool,
    },
    /// Serves timestamps: POST application/timestamp-query → application/timestamp-reply.
    Serve {
        /// Directory made by `tsa init`.
        #[arg(long, env = "CAIRN_WITNESS_TSA_DIR")]
        dir: PathBuf,
        /// Address to listen on.
        #[arg(
            long,
            env = "CAIRN_WITNESS_TSA_LISTEN",
            default_value = "127.0.0.1:7390"
        )]
        listen: String,
        /// Policy OID of the timestamps.
        #[arg(long, env = "CAIRN_WITNESS_TSA_POLICY", default_value = tsa::DEFAULT_POLICY)]
        policy: String,
        /// Accuracy of genTime, ms (0: none stated).
        #[arg(long, env = "CAIRN_WITNESS_TSA_ACCURACY_MS", default_value_t = 1000)]
        accuracy_ms: u64,
        #[command(flatten)]
        http: TsaHttpSettings,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    cairn_edge::log::init(cli.log_format, "CAIRN_WITNESS_LOG");
    match cli.command {
        Command::Keygen { name, out, pkcs11 } => keygen(&name, out.as_deref(), pkcs11.as_deref()),
        Command::Serve(args) => runtime()?.block_on(serve(*args)),
        Command::RotateKey {
            config,
            key_file,
            history_dir,
            new_key_out,
            from_size,
        } => {
            let file = match &config {
                Some(path) => Config::load(path)?,
                None => Config::default(),
            };
            let current = witness_signer(key_file.or(file.key_file.clone()), &file)?;
            let rotated = cairn_witness::key_history::rotate(
                &history_dir,
                &current,
                &new_key_out,
                from_size,
            )?;
            println!("new key: {}", rotated.vkey);
            println!("policy line: witness-key <name> {}", rotated.vkey);
            print!("statement:\n{}", rotated.statement);
            Ok(())
        }
        Command::Tsa { command } => match command {
            TsaCommand::Init {
                dir,
                name,
                algorithm,
                validity_days,
                pkcs11,
                existing_key,
            } => {
                let place = match &pkcs11 {
                    Some(path) => tsa::TsaKeyPlace::Token {
                        table: tsa::token_key::read_table(path)?,
                        existing: existing_key,
                    },
                    None => tsa::TsaKeyPlace::File,
                };
                tsa::init(&dir, &name, algorithm, validity_days, &place)?;
                println!("TSA {name} created in {}", dir.display());
                Ok(())
            }
            TsaCommand::Serve {
                dir,
                listen,
                policy,
                accuracy_ms,
                http,
            } => {
                let edge = http.resolve()?;
                runtime()?.block_on(serve_tsa(dir, listen, policy, accuracy_ms, edge))
            }
        },
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")
}

fn keygen(
    name: &str,
    out: Option<&std::path::Path>,
    pkcs11: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let name = KeyName::new(name).with_context(|| format!("key name {name:?}"))?;
    let vkey = match (out, pkcs11) {
        (Some(out), _) => {
            let signer = CosignatureSigner::generate(name, &mut rand::rngs::OsRng)
                .context("generating the witness key")?;
            write_key_file(out, &signer.to_skey())?;
            signer.verifier().to_vkey()
        }
        (None, Some(config)) => {
            let Some(table) = Config::load(config)?.pkcs11 else {
                bail!("{} has no [pkcs11] table", config.display());
            };
            let settings = table.settings().map_err(anyhow::Error::msg)?;
            let key = Pkcs11Key::generate(&settings)?;
            NoteSigner::<CosignatureV1>::from_token(name, Arc::new(key))
                .verifier()
                .to_vkey()
        }
        (None, None) => bail!("--out or --pkcs11 is required"),
    };
    println!("{vkey}");
    Ok(())
}

/// The witness key: the key file, or the key `key_name` in the `[pkcs11]` token.
fn witness_signer(
    key_file: Option<PathBuf>,
    file: &Config,
) -> anyhow::Result<cairn_witness::service::WitnessSigner> {
    match (key_file, &file.pkcs11) {
        (Some(key_file), None) => {
            let key = CosignatureSigner::from_skey(&read_key_file(&key_file)?)
                .with_context(|| format!("witness key {}", key_file.display()))?;
            Ok(Arc::new(key.into()))
        }
        (None, Some(table)) => {
            let Some(name) = &file.key_name else {
                bail!("a witness key in a token needs key_name in the config");
            };
            let name = KeyName::new(name).with_context(|| format!("key_name {name:?}"))?;
            let settings = table.settings().map_err(anyhow::Error::msg)?;
            let key = Pkcs11Key::open(&settings)?;
            Ok(Arc::new(NoteSigner::from_token(name, Arc::new(key))))
        }
        (None, None) => bail!(
            "no key_file: set it in the config, CAIRN_WITNESS_KEY_FILE or --key-file \
             (or a [pkcs11] table for a key in a token)"
        ),
        (Some(_), Some(_)) => bail!("key_file and [pkcs11] name two witness keys: keep one"),
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let file = match &args.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    let config = file.overlay(&args.settings);
    let cosigner = witness_signer(config.key_file.clone(), &config)?;
    let listen = config
        .listen
        .clone()
        .unwrap_or_else(|| "127.0.0.1:7380".to_owned());
    let edge = config.http.resolve()?;
    let Some(data_dir) = config.data_dir.clone() else {
        bail!("no data_dir: set it in the config, CAIRN_WITNESS_DATA_DIR or --data-dir");
    };

    let mut logs = Vec::new();
    for log in &config.logs {
        let mut verifiers = Vec::new();
        for vkey in log.vkey.iter().chain(&log.vkeys) {
            verifiers.push(
                Ed25519Verifier::from_vkey(vkey)
                    .with_context(|| format!("vkey of log {:?}", log.origin))?,
            );
        }
        if verifiers.is_empty() {
            bail!("log {:?} has no vkey", log.origin);
        }
        logs.push(LogSpec {
            origin: log.origin.clone(),
            verifiers,
        });
    }
    let mut tsas = Vec::new();
    for entry in &config.tsas {
        // The CA file reader of the edge: bounded, and certificates only.
        let pem = cairn_edge::read_ca_pem(&entry.trust_anchor)
            .with_context(|| format!("trust anchor of TSA {}", entry.name))?;
        let pem = String::from_utf8(pem)
            .with_context(|| format!("trust anchor of TSA {}: not UTF-8", entry.name))?;
        let policy = match &entry.policy {
            Some(text) => Some(
                ObjectIdentifier::new(text)
                    .map_err(|error| anyhow::anyhow!("policy of TSA {}: {error}", entry.name))?,
            ),
            None => None,
        };
        tsas.push(TsaEndpoint {
            name: entry.name.clone(),
            url: entry.url.clone(),
            trust_anchors: Arc::new(
                TrustAnchors::from_pem(&pem)
                    .with_context(|| format!("trust anchor of TSA {}", entry.name))?,
            ),
            policy,
            https_roots: match &entry.ca_file {
                Some(path) => {
                    let pem = cairn_edge::read_ca_pem(path)
                        .with_context(|| format!("ca_file of TSA {}", entry.name))?;
                    reqwest::Certificate::from_pem_bundle(&pem)
                        .with_context(|| format!("ca_file of TSA {}", entry.name))?
                }
                None => Vec::new(),
            },
        });
    }
    let defaults = AnchorSettings::default();
    let settings = AnchorSettings {
        request_timeout: config
            .tsa_timeout_ms
            .map_or(defaults.request_timeout, Duration::from_millis),
        max_attempts: config.tsa_max_attempts.unwrap_or(defaults.max_attempts),
        initial_backoff: config
            .tsa_initial_backoff_ms
            .map_or(defaults.initial_backoff, Duration::from_millis),
        queue_capacity: config.anchor_queue.unwrap_or(defaults.queue_capacity),
        ..defaults
    };
    let anchor_wait = Duration::from_millis(config.anchor_wait_ms.unwrap_or(250));
    let store = Store::open(&data_dir)
        .with_context(|| format!("opening the database in {}", data_dir.display()))?;
    let witness = start_witness(store, cosigner, logs, tsas, settings, anchor_wait)?;
    listen_and_serve(
        "witness",
        &listen,
        cairn_witness::http::router(witness),
        edge,
    )
    .await?;
    tracing::info!("witness stopped");
    Ok(())
}

async fn serve_tsa(
    dir: PathBuf,
    listen: String,
    policy: String,
    accuracy_ms: u64,
    edge: cairn_edge::EdgeConfig,
) -> anyhow::Result<()> {
    let policy = ObjectIdentifier::new(&policy)
        .map_err(|error| anyhow::anyhow!("policy {policy:?}: {error}"))?;
    let accuracy = (accuracy_ms > 0).then_some(Accuracy {
        seconds: accuracy_ms / 1000,
        millis: (accuracy_ms % 1000) as u16,
        micros: 0,
    });
    let authority = Arc::new(tsa::Authority::load(&dir, policy, accuracy)?);
    listen_and_serve("TSA", &listen, tsa::router(authority), edge).await
}

/// Binds `listen`, says where `server` listens (a log line, and `listening on ADDRESS` on
/// standard output for scripts), and serves `router` until SIGTERM or Ctrl-C.
async fn listen_and_serve(
    server: &str,
    listen: &str,
    router: cairn_edge::Router,
    edge: cairn_edge::EdgeConfig,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen}"))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, "{server} listening");
    println!("listening on {address}");
    cairn_edge::serve(listener, router, edge, shutdown_signal()).await;
    Ok(())
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!("cannot listen for SIGTERM: {error}");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
