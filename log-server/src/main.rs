//! `cairn-log`: the Cairn log server (`serve`), and its key and token tools (`keygen`, `token`).

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use cairn_log::config::{token_digest_hex, write_new_key, Settings};
use cairn_log::server::RunningServer;
use clap::{Parser, Subcommand};
use rand::RngCore as _;

/// The Cairn log server: a durable, witnessed transparency log over HTTP.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once at start
enum Command {
    /// Runs the log. Every key of the TOML file can be overridden by CAIRN_LOG_* or a flag.
    Serve {
        /// The TOML configuration file.
        #[arg(long, env = "CAIRN_LOG_CONFIG")]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: Settings,
    },
    /// Writes a new signing key (mode 0600) and prints its vkey.
    Keygen {
        /// The log's origin, which names the key.
        #[arg(long)]
        origin: String,
        /// Where to write the key; an existing file is never overwritten.
        #[arg(long)]
        out: PathBuf,
    },
    /// Prints a new random producer token and the configuration lines with its hash.
    Token {
        /// The producer's name.
        #[arg(long)]
        name: String,
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cairn-log: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), String> {
    match cli.command {
        Command::Keygen { origin, out } => {
            let vkey = write_new_key(&origin, &out).map_err(|e| e.to_string())?;
            println!("{vkey}");
            Ok(())
        }
        Command::Token { name } => {
            let mut bytes = [0u8; 32];
            rand::rngs::OsRng.fill_bytes(&mut bytes);
            let token: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
            println!("token: {token}");
            println!();
            println!("[[producers]]");
            println!("name = \"{name}\"");
            println!("token_sha256 = \"{}\"", token_digest_hex(&token));
            Ok(())
        }
        Command::Serve { config, settings } => {
            let file = match &config {
                Some(path) => Settings::from_file(path).map_err(|e| e.to_string())?,
                None => Settings::default(),
            };
            let resolved = file
                .overlay(&settings)
                .resolve()
                .map_err(|e| e.to_string())?;
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("could not start the runtime: {e}"))?;
            runtime.block_on(async move {
                let server = RunningServer::start(resolved)
                    .await
                    .map_err(|e| e.to_string())?;
                println!("listening on {}", server.addr);
                wait_for_signal().await;
                tracing::info!(
                    "stopping: finishing in-flight batches and signing a final checkpoint"
                );
                server.shutdown().await.map_err(|e| e.to_string())
            })
        }
    }
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
