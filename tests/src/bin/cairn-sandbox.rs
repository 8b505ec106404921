//! `cairn-sandbox`: a whole Cairn on this machine (log, witnesses, timestamp authority and
//! monitor as real processes on loopback), made on first start and reused after.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use cairn_tests::sandbox::{Binaries, Options, Sandbox};
use clap::Parser;

/// Runs one cairn-log (or, with --scale, several front-ends of one log on PostgreSQL and an S3
/// server), two cairn-witness, one RFC 3161 timestamp authority and one cairn-monitor on
/// loopback, configured to trust each other. Keys, certificates, a producer
/// token and every configuration file are made in --dir on first start and reused after, so the
/// log's history survives restarts. Ctrl-C stops everything cleanly.
#[derive(Debug, Parser)]
#[command(name = "cairn-sandbox", version)]
struct Cli {
    /// The sandbox's directory.
    #[arg(long, default_value = "cairn-sandbox", env = "CAIRN_SANDBOX_DIR")]
    dir: PathBuf,
    /// First of the consecutive ports (log, TSA, monitor, witnesses; first start only);
    /// 0 for ports the system picks.
    #[arg(long, default_value_t = 7480)]
    base_port: u16,
    /// Number of witnesses (first start only).
    #[arg(long, default_value_t = 2)]
    witnesses: usize,
    /// Cosignatures needed to publish a checkpoint (first start only; default: all witnesses).
    #[arg(long)]
    witness_quorum: Option<usize>,
    /// Run without a monitor (first start only).
    #[arg(long)]
    no_monitor: bool,
    /// The log's origin (first start only).
    #[arg(long, default_value = "sandbox.cairn.example/log")]
    origin: String,
    /// Every server over HTTPS only, with a local CA and a certificate it issued, made with
    /// `openssl` in --dir (first start only); every client is given the CA's file, ca.pem.
    #[arg(long)]
    tls: bool,
    /// Run the log as this many front-ends of one log (`storage = "scaled"`) on a PostgreSQL
    /// server and an S3 server (s3s-fs) of the sandbox's own (first start only; 1 to 16; as
    /// root, --dir must be reachable by the postgres user, e.g. under /tmp).
    #[arg(long, value_name = "N")]
    scale: Option<usize>,
    /// Where the Cairn binaries are (default: beside this one).
    #[arg(long, env = "CAIRN_BIN_DIR")]
    bin_dir: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("cairn-sandbox: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode, String> {
    let binaries = match &cli.bin_dir {
        Some(dir) => Binaries::in_dir(dir),
        None => Binaries::locate().map_err(|e| e.to_string())?,
    };
    let mut options = Options::new(&cli.dir);
    options.origin = cli.origin;
    options.witnesses = cli.witnesses;
    options.witness_quorum = cli.witness_quorum.unwrap_or(cli.witnesses);
    options.monitor = !cli.no_monitor;
    options.base_port = (cli.base_port != 0).then_some(cli.base_port);
    options.tls = cli.tls;
    options.scale = match cli.scale {
        Some(0) => return Err("--scale takes 1 or more front-ends".into()),
        Some(front_ends) => front_ends,
        None => 0,
    };
    println!("== starting the sandbox in {}", cli.dir.display());
    let mut sandbox = Sandbox::start(&options, binaries.clone()).map_err(|e| e.to_string())?;
    print_guide(&sandbox, &binaries);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    let died = runtime.block_on(async {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .map_err(|e| format!("listening for SIGTERM: {e}"))?;
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok::<_, String>(false),
                _ = terminate.recv() => return Ok(false),
                _ = tick.tick() => {
                    let exited = sandbox.exited();
                    if !exited.is_empty() {
                        for (name, status) in exited {
                            eprintln!(
                                "cairn-sandbox: {name} exited ({status}); see {}",
                                sandbox.dir().join(format!("{name}.out")).display()
                            );
                        }
                        return Ok(true);
                    }
                }
            }
        }
    })?;
    println!("\n== stopping");
    let unclean = sandbox.stop();
    if !unclean.is_empty() {
        eprintln!(
            "cairn-sandbox: did not stop cleanly: {}",
            unclean.join(", ")
        );
    }
    Ok(if died || !unclean.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_guide(sandbox: &Sandbox, binaries: &Binaries) {
    let layout = sandbox.layout();
    let dir = sandbox.dir().display();
    let log = sandbox.log_url();
    let monitor_bin = binaries
        .path("cairn-monitor")
        .map_or_else(|_| "cairn-monitor".to_owned(), |p| p.display().to_string());
    let scheme = layout.scheme();
    // With TLS, every client is told the sandbox's CA.
    let (curl_ca, monitor_ca) = match sandbox.ca_path() {
        Some(ca) => (
            format!("--cacert {} ", ca.display()),
            format!(" --ca-file {}", ca.display()),
        ),
        None => (String::new(), String::new()),
    };
    println!("\nCairn is running (each component's output in {dir}/<name>.out):");
    println!("  log       {log}   origin {}", layout.origin);
    println!("            vkey {}", layout.log_vkey);
    println!("  web UI    {log}/ui/   (auditors: sign in with the token in {dir}/auditor.token)");
    if let Some(scaled) = &layout.scaled {
        for (name, addr) in sandbox.front_ends().iter().skip(1) {
            println!("  {name:<9} {scheme}://{addr}   (a front-end of the same log)");
        }
        println!(
            "  postgres  {}   (the sequence, the state, the integrator lease)",
            scaled.postgres
        );
        println!(
            "  s3        http://{}   bucket {}   (tiles, entry bundles, checkpoint; files in {dir}/s3)",
            scaled.s3,
            cairn_tests::sandbox::scaled::BUCKET
        );
    }
    for witness in &layout.witnesses {
        println!("  {:<9} {scheme}://{}", witness.name, witness.addr);
        println!("            vkey {}", witness.vkey);
    }
    println!(
        "  TSA       {}   root certificate {dir}/tsa/root.pem",
        sandbox.tsa_url()
    );
    if let Some(ca) = sandbox.ca_path() {
        println!(
            "  TLS       every server speaks HTTPS only, with a certificate of the CA {}",
            ca.display()
        );
    }
    if let Some(monitor) = sandbox.monitor_url() {
        println!("  monitor   {monitor}   (/metrics, /gossip; evidence in {dir}/monitor-evidence)");
    }
    println!(
        "  policy    {dir}/policy.txt ({} of {} witnesses, the TSA)",
        layout.witness_quorum,
        layout.witnesses.len()
    );
    println!(
        r#"
Add a leaf and wait until it is in a checkpoint the witnesses cosigned:

  curl -sS {curl_ca}-H "Authorization: Bearer $(cat {dir}/producer.token)" \
       --data-binary 'hello, auditor' '{log}/add?wait=checkpoint'

The answer is the leaf's receipt. A moment later the log also holds the TSA's timestamps over
that checkpoint; fetch the complete receipt (use the index the answer gave) and verify it
offline against the policy:

  curl -sS {curl_ca}{log}/receipt/0 > receipt.json
  {monitor_bin} verify-receipt receipt.json --policy {dir}/policy.txt

Record an audit event (spec/docs/event.md) the same way:

  curl -sS {curl_ca}-H "Authorization: Bearer $(cat {dir}/producer.token)" \
       -H 'Content-Type: application/json' '{log}/v1/events?wait=checkpoint' \
       --data '{{"timestamp": "2026-12-07T10:00:00Z", "actor": {{"id": "alice@example.com", "type": "user"}},
                "action": "invoice.approve", "resource": {{"type": "invoice", "id": "INV-1"}},
                "outcome": "success", "payload": {{"amount_cents": 4200}}}}'

and find and verify it in a browser: open {log}/ui/, sign in with the token in
{dir}/auditor.token, open "Policy", choose the file {dir}/policy.txt and "Check and keep",
then "Search events" for the actor alice@example.com and open the event: its verdict is
computed in the browser, against that policy. An auditor also exports events as a bundle that
verifies offline:

  CAIRN_TOKEN=$(cat {dir}/auditor.token) {monitor_bin} export --log {log}{monitor_ca} \
       --log-key '{vkey}' --out export.json
  {monitor_bin} verify-export export.json --policy {dir}/policy.txt

The whole log can be re-verified from its tiles:

  {monitor_bin} audit --log {log}{monitor_ca} --log-key '{vkey}' --state audit-state

The HTTP API: spec/docs/log-api.md. Ctrl-C stops everything."#,
        vkey = layout.log_vkey,
    );
}
