//! `audit` throughput: a full re-verification (every tile and entry bundle) of a log of 2^20
//! 100-byte leaves into a fresh state store, from three sources:
//!
//! - `loopback_in_process`: served over loopback HTTP by a small axum static server in this
//!   process, on the same runtime and cores as the monitor;
//! - `loopback_separate_process`: the same server in a child process (this bench binary, started
//!   with `CAIRN_AUDIT_BENCH_SERVE`, one runtime thread), so that the monitor's own CPU time can
//!   be told apart from the server's, though on a 2-core machine both still share the cores;
//! - `local_dir`: a directory in the tlog-tiles layout (`file://`), as a static mirror holds the
//!   log; right after it is written, so read from the page cache.
//!
//! Besides criterion's wall-clock throughput, each case prints the monitor process's CPU time
//! per leaf over the measured iterations (user + system, from /proc/self/stat): steadier than
//! wall-clock figures on a shared machine, and for the in-process case it includes the server.
//!
//! The same binary prepares a log for the `cairn-monitor audit` command line: with
//! `CAIRN_AUDIT_BENCH_WRITE=<dir>` it writes the log's directory (2^20 leaves, or
//! `CAIRN_AUDIT_BENCH_LEAVES`) and prints its vkey, with
//! `CAIRN_AUDIT_BENCH_SERVE=<dir>` it serves that directory on loopback and prints the URL
//! (until its stdin closes).

use std::collections::HashMap;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use cairn_monitor::daemon::{Config, Monitor};
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::tiles::{encode_entry_bundle, EntryBundle, TileAppender};
use cairn_spec::Hash;
use criterion::{criterion_group, Criterion, Throughput};

const LEAVES: usize = 1 << 20;
const ORIGIN: &str = "example.com/bench";
/// Set to a log directory, the bench binary serves it over loopback and prints its URL.
const SERVE_ENV: &str = "CAIRN_AUDIT_BENCH_SERVE";
/// Set to a directory, the bench binary writes the log there and prints its vkey.
const WRITE_ENV: &str = "CAIRN_AUDIT_BENCH_WRITE";
/// With [`WRITE_ENV`]: how many leaves the written log holds (default [`LEAVES`]), so that the
/// command line's steady rate can be measured on a log larger than the benches' own.
const WRITE_LEAVES_ENV: &str = "CAIRN_AUDIT_BENCH_LEAVES";

type Files = HashMap<String, Bytes>;

fn signer() -> Ed25519Signer {
    Ed25519Signer::from_seed(KeyName::new(ORIGIN).expect("name"), [3; 32])
}

/// Every file of the log by path, as a static file server would hold them.
fn build_files(signer: &Ed25519Signer, size: usize) -> Files {
    let leaves: Vec<Vec<u8>> = (0..size)
        .map(|index| {
            let mut leaf = format!("leaf {index:012} ").into_bytes();
            leaf.resize(100, b'.');
            leaf
        })
        .collect();
    let hashes: Vec<Hash> = leaves.iter().map(|leaf| Hash::of_leaf(leaf)).collect();
    let mut appender = TileAppender::new();
    let mut files = HashMap::new();
    for update in appender.append(&hashes).expect("appends") {
        files.insert(update.tile.path(), Bytes::from(update.data));
    }
    for (index, chunk) in leaves.chunks(256).enumerate() {
        let bundle = EntryBundle::new(index as u64, chunk.len() as u16).expect("bundle");
        let data = encode_entry_bundle(chunk).expect("encodes");
        files.insert(bundle.path(), Bytes::from(data));
    }
    let checkpoint = Checkpoint {
        origin: ORIGIN.to_owned(),
        size: size as u64,
        root: appender.root(),
        extensions: Vec::new(),
    };
    let note = checkpoint
        .sign(signer)
        .expect("signs")
        .to_bytes()
        .expect("encodes");
    files.insert("checkpoint".to_owned(), Bytes::from(note));
    files
}

fn write_files(files: &Files, dir: &Path) {
    for (path, data) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
        std::fs::write(path, data).expect("writes");
    }
}

fn read_files(dir: &Path, prefix: &str, files: &mut Files) {
    for entry in std::fs::read_dir(dir).expect("reads the directory") {
        let entry = entry.expect("an entry");
        let name = format!("{prefix}{}", entry.file_name().to_string_lossy());
        if entry.file_type().expect("a type").is_dir() {
            read_files(&entry.path(), &format!("{name}/"), files);
        } else {
            files.insert(
                name,
                Bytes::from(std::fs::read(entry.path()).expect("reads")),
            );
        }
    }
}

async fn serve_file(
    State(files): State<Arc<Files>>,
    UrlPath(path): UrlPath<String>,
) -> (StatusCode, Bytes) {
    match files.get(&path) {
        Some(data) => (StatusCode::OK, data.clone()),
        None => (StatusCode::NOT_FOUND, Bytes::new()),
    }
}

/// Serves `files` on a loopback port of the current runtime; returns the base URL.
async fn serve(files: Arc<Files>) -> String {
    let app = Router::new()
        .route("/{*path}", get(serve_file))
        .with_state(files);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{address}")
}

/// The child process's life: serve the directory until stdin closes.
fn serve_directory(dir: &str) {
    let mut files = HashMap::new();
    read_files(Path::new(dir), "", &mut files);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let url = serve(Arc::new(files)).await;
        println!("{url}");
        tokio::task::spawn_blocking(|| std::io::stdin().read_line(&mut String::new()))
            .await
            .ok();
    });
}

fn start_server_process(dir: &Path) -> (Child, String) {
    let mut child = Command::new(std::env::current_exe().expect("this bench binary"))
        .env(SERVE_ENV, dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("starts the server process");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("reads its URL");
    (child, line.trim().to_owned())
}

/// User + system CPU time of this process so far (/proc/self/stat, clock ticks of 10 ms).
fn process_cpu() -> Duration {
    cpu_of("self")
}

/// User + system CPU time of process `pid` (or `self`) so far.
fn cpu_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("reads /proc/.../stat");
    let after_name = &stat[stat.rfind(')').expect("a name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let ticks: u64 =
        fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    Duration::from_millis(ticks * 10)
}

/// One audit of the log at `url` into a fresh state directory: the wall-clock and CPU time of
/// the audit itself. Opening the store is left out: creating files costs a few milliseconds at
/// random on this machine's ext4 (inode allocation scanning recently deleted inodes), whatever
/// the log's size.
fn audit_once(
    runtime: &tokio::runtime::Runtime,
    url: &str,
    signer: &Ed25519Signer,
) -> (Duration, Duration) {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = signer.verifier().to_vkey();
    let config = Config::audit(dir.path().join("state"), url.to_owned(), key, false);
    runtime.block_on(async {
        let monitor = Monitor::new(&config).expect("monitor");
        let (started, cpu_before) = (Instant::now(), process_cpu());
        monitor.poll_once().await.expect("polls");
        let times = (started.elapsed(), process_cpu() - cpu_before);
        assert!(monitor.alerter.raised().is_empty());
        assert_eq!(monitor.verified_notes().await.len(), 1);
        times
    })
}

fn audit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let signer = signer();
    let files = Arc::new(build_files(&signer, LEAVES));
    let log_dir = tempfile::tempdir().expect("tempdir");
    write_files(&files, log_dir.path());
    let in_process = runtime.block_on(serve(files.clone()));
    let (mut server, separate) = start_server_process(log_dir.path());
    let local = format!("file://{}", log_dir.path().display());

    let mut group = c.benchmark_group("audit");
    group.sample_size(10);
    group.throughput(Throughput::Elements(LEAVES as u64));
    for (name, url) in [
        ("loopback_in_process", &in_process),
        ("loopback_separate_process", &separate),
        ("local_dir", &local),
    ] {
        let mut cpu = Duration::ZERO;
        let mut audits = 0u64;
        let server_pid = server.id().to_string();
        let server_before = cpu_of(&server_pid);
        group.bench_function(format!("{name}_1Mi_leaves_100B"), |b| {
            b.iter_custom(|iterations| {
                let mut wall = Duration::ZERO;
                for _ in 0..iterations {
                    let (elapsed, used) = audit_once(&runtime, url, &signer);
                    wall += elapsed;
                    cpu += used;
                }
                audits += iterations;
                wall
            })
        });
        let leaves = audits as f64 * LEAVES as f64;
        if name == "loopback_separate_process" {
            // The static server's share: with the monitor's, what bounds HTTP on 2 cores.
            let served = cpu_of(&server_pid) - server_before;
            println!(
                "audit/{name}: server process CPU {:.0} ns per leaf (warm-up included)",
                served.as_secs_f64() * 1e9 / leaves
            );
        }
        println!(
            "audit/{name}: monitor process CPU {:.0} ns per leaf ({:.2} M leaves per CPU-second) \
             over {audits} audits, load average {}",
            cpu.as_secs_f64() * 1e9 / leaves,
            leaves / cpu.as_secs_f64() / 1e6,
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
    }
    group.finish();
    drop(server.stdin.take());
    server.wait().ok();
}

criterion_group!(benches, audit);

fn main() {
    if let Ok(dir) = std::env::var(SERVE_ENV) {
        serve_directory(&dir);
        return;
    }
    if let Ok(dir) = std::env::var(WRITE_ENV) {
        let size = match std::env::var(WRITE_LEAVES_ENV) {
            Ok(text) => text
                .parse()
                .expect("CAIRN_AUDIT_BENCH_LEAVES is a number of leaves"),
            Err(_) => LEAVES,
        };
        write_files(&build_files(&signer(), size), Path::new(&dir));
        println!("{}", signer().verifier().to_vkey());
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
