//! `cairn-noop`: the no-op HTTP server that Cairn's log is measured against (see
//! `cairn_tests::noop`). Prints `listening on ADDRESS` once it accepts connections.

#![forbid(unsafe_code)]

use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;
use tokio::net::TcpListener;

/// No-op HTTP server: answers every POST, on any path, with {"ok":true} after reading the body.
/// The baseline for cairn-load; stops on SIGINT or SIGTERM.
#[derive(Debug, Parser)]
#[command(name = "cairn-noop", version)]
struct Args {
    /// Address to listen on (port 0 picks a free port; the address is printed).
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// Worker threads of the runtime (default: the CPUs this process may run on).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let runtime = cairn_tests::runtime(args.threads).context("starting the runtime")?;
    runtime.block_on(async {
        let listener = TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("binding {}", args.listen))?;
        let local = listener.local_addr().context("reading the bound address")?;
        println!("listening on {local}");
        cairn_tests::noop::serve(listener, shutdown_signal())
            .await
            .context("serving")
    })
}

async fn shutdown_signal() {
    let mut terminate =
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(terminate) => terminate,
            Err(error) => {
                eprintln!("cairn-noop: cannot watch SIGTERM ({error}); stop with SIGINT");
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
}
