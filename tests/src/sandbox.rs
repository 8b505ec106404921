//! A whole Cairn on this machine, as real processes on loopback: one `cairn-log`, N
//! `cairn-witness` (two by default), one timestamp authority (`cairn-witness tsa serve`) and one
//! `cairn-monitor`, configured to trust each other.
//!
//! The first start makes every key, certificate, token and configuration file in a directory of
//! its own and records the addresses in `sandbox.json`; later starts from the same directory
//! reuse them, so the log's history, the witnesses' state and the monitor's verified state
//! survive restarts. The same code runs the `cairn-sandbox` binary and the end-to-end tests,
//! which also stop, kill and restart single components.
//!
//! Each component is a child process whose output goes to `<name>.out` in the directory
//! (appended, so that restarts keep the earlier output). A component is ready when its port
//! accepts connections; one that exits before that is an error that quotes its output.
//!
//! With TLS ([`Options::tls`]) the first start also makes a local CA (`ca.pem`, its key
//! `ca.key`) and one server certificate it issued for 127.0.0.1 and localhost (`server.pem`,
//! `server.key`), with the `openssl` command; every server then speaks only HTTPS with that
//! certificate, and every client (the log's witness client, the witnesses' TSA client, the
//! monitor) is given `ca.pem`.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Name of the file that records a sandbox's addresses and public keys.
pub const LAYOUT_FILE: &str = "sandbox.json";

/// The longest a component may take to open its port.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest a component may take to stop after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a sandbox could not be made, started or stopped.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// A Cairn binary is not where the sandbox looks for it.
    #[error(
        "{name} not found in {}: build the binaries first (`cargo build --workspace --bins`, \
         with --release for the release directory) or set CAIRN_BIN_DIR",
        dir.display()
    )]
    MissingBinary {
        /// The binary.
        name: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// A file or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The error.
        source: std::io::Error,
    },
    /// A set-up command (key generation, TSA creation) failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Command {
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// A command's output or `sandbox.json` is not what was expected.
    #[error("{0}")]
    Unexpected(String),
    /// A component exited or did not open its port in time.
    #[error("{name} did not start: {reason}; its output ({}):\n{output}", log.display())]
    NotReady {
        /// The component.
        name: String,
        /// What happened.
        reason: String,
        /// Its output file.
        log: PathBuf,
        /// The end of its output.
        output: String,
    },
    /// No component of that name is known.
    #[error("no component named {0}")]
    UnknownComponent(String),
}

fn io_error(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// Where the Cairn binaries are: `CAIRN_BIN_DIR`, or the directory of the running executable
/// (its parent when the executable is a test in `target/<profile>/deps`).
#[derive(Debug, Clone)]
pub struct Binaries {
    dir: PathBuf,
}

impl Binaries {
    /// Finds the binaries' directory.
    pub fn locate() -> Result<Binaries, SandboxError> {
        if let Some(dir) = std::env::var_os("CAIRN_BIN_DIR") {
            return Ok(Binaries {
                dir: PathBuf::from(dir),
            });
        }
        let exe = std::env::current_exe().map_err(io_error("finding the running executable"))?;
        let mut dir = exe
            .parent()
            .ok_or_else(|| SandboxError::Unexpected(format!("{} has no parent", exe.display())))?
            .to_path_buf();
        if dir.file_name().is_some_and(|name| name == "deps") {
            dir.pop();
        }
        Ok(Binaries { dir })
    }

    /// The binaries in `dir`.
    pub fn in_dir(dir: impl Into<PathBuf>) -> Binaries {
        Binaries { dir: dir.into() }
    }

    /// The path of one binary, which must exist.
    pub fn path(&self, name: &str) -> Result<PathBuf, SandboxError> {
        let path = self.dir.join(name);
        if path.is_file() {
            Ok(path)
        } else {
            Err(SandboxError::MissingBinary {
                name: name.to_owned(),
                dir: self.dir.clone(),
            })
        }
    }
}

/// How to make a new sandbox. Ignored, except `dir`, when the directory already holds one.
#[derive(Debug, Clone)]
pub struct Options {
    /// The sandbox's directory (created if missing).
    pub dir: PathBuf,
    /// The log's origin.
    pub origin: String,
    /// Number of witnesses.
    pub witnesses: usize,
    /// Cosignatures the log needs to publish a checkpoint, and the policy's quorum.
    pub witness_quorum: usize,
    /// Whether to run a monitor.
    pub monitor: bool,
    /// First of the consecutive ports to use (log, TSA, monitor, witnesses); none for ports
    /// the system picks.
    pub base_port: Option<u16>,
    /// Milliseconds between the log's checkpoints.
    pub checkpoint_interval_ms: u64,
    /// Seconds between the monitor's polls.
    pub monitor_poll_secs: u64,
    /// Every server over HTTPS with certificates of a local CA (needs `openssl`).
    pub tls: bool,
}

impl Options {
    /// The defaults: two witnesses that must both cosign, a monitor, ports picked by the
    /// system, a checkpoint a second.
    pub fn new(dir: impl Into<PathBuf>) -> Options {
        Options {
            dir: dir.into(),
            origin: "sandbox.cairn.example/log".to_owned(),
            witnesses: 2,
            witness_quorum: 2,
            monitor: true,
            base_port: None,
            checkpoint_interval_ms: 1000,
            monitor_poll_secs: 2,
            tls: false,
        }
    }
}

/// One witness of a sandbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WitnessInfo {
    /// Its component name (`witness-1`, ...) and name in the policy (`w1`, ...).
    pub name: String,
    /// Its address.
    pub addr: SocketAddr,
    /// Its cosignature vkey.
    pub vkey: String,
}

/// What `sandbox.json` records: addresses and public keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Layout {
    /// The log's origin.
    pub origin: String,
    /// The log's address.
    pub log: SocketAddr,
    /// The log's vkey.
    pub log_vkey: String,
    /// The timestamp authority's address.
    pub tsa: SocketAddr,
    /// The monitor's address, if there is a monitor.
    pub monitor: Option<SocketAddr>,
    /// The witnesses.
    pub witnesses: Vec<WitnessInfo>,
    /// Cosignatures needed.
    pub witness_quorum: usize,
    /// Whether every server speaks HTTPS with a certificate of the sandbox's CA (`ca.pem`).
    #[serde(default)]
    pub tls: bool,
}

impl Layout {
    /// `http` or `https`.
    pub fn scheme(&self) -> &'static str {
        scheme(self.tls)
    }
}

fn scheme(tls: bool) -> &'static str {
    if tls {
        "https"
    } else {
        "http"
    }
}

struct Component {
    child: Child,
    addr: SocketAddr,
}

/// A running (or partly running) sandbox. Dropping it kills what still runs.
pub struct Sandbox {
    dir: PathBuf,
    layout: Layout,
    binaries: Binaries,
    running: BTreeMap<String, Component>,
}

impl Sandbox {
    /// Makes the sandbox in `options.dir` if it holds none yet, then starts every component:
    /// the TSA, the witnesses, the log, the monitor.
    pub fn start(options: &Options, binaries: Binaries) -> Result<Sandbox, SandboxError> {
        let dir = options.dir.clone();
        std::fs::create_dir_all(&dir).map_err(io_error(format!("creating {}", dir.display())))?;
        let dir = dir
            .canonicalize()
            .map_err(io_error(format!("resolving {}", dir.display())))?;
        let layout = match read_layout(&dir)? {
            Some(layout) => layout,
            None => initialise(&dir, options, &binaries)?,
        };
        let mut sandbox = Sandbox {
            dir,
            layout,
            binaries,
            running: BTreeMap::new(),
        };
        for name in sandbox.components() {
            sandbox.start_component(&name)?;
        }
        Ok(sandbox)
    }

    /// The component names, in start order.
    pub fn components(&self) -> Vec<String> {
        let mut names = vec!["tsa".to_owned()];
        names.extend(self.layout.witnesses.iter().map(|w| w.name.clone()));
        names.push("log".to_owned());
        if self.layout.monitor.is_some() {
            names.push("monitor".to_owned());
        }
        names
    }

    /// The sandbox's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Addresses and keys.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// The log's base URL.
    pub fn log_url(&self) -> String {
        format!("{}://{}", self.layout.scheme(), self.layout.log)
    }

    /// The monitor's base URL, if there is a monitor.
    pub fn monitor_url(&self) -> Option<String> {
        let scheme = self.layout.scheme();
        self.layout.monitor.map(|addr| format!("{scheme}://{addr}"))
    }

    /// The base URL of witness `index` (from 0).
    pub fn witness_url(&self, index: usize) -> Option<String> {
        self.layout
            .witnesses
            .get(index)
            .map(|w| format!("{}://{}", self.layout.scheme(), w.addr))
    }

    /// The TSA's base URL.
    pub fn tsa_url(&self) -> String {
        format!("{}://{}", self.layout.scheme(), self.layout.tsa)
    }

    /// The CA certificate every server's certificate chains to, with TLS.
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.layout.tls.then(|| self.dir.join("ca.pem"))
    }

    /// The verifier policy file (log key, witness keys and quorum, the TSA's root).
    pub fn policy_path(&self) -> PathBuf {
        self.dir.join("policy.txt")
    }

    /// The monitor's evidence directory.
    pub fn evidence_dir(&self) -> PathBuf {
        self.dir.join("monitor-evidence")
    }

    /// The producer's bearer token.
    pub fn producer_token(&self) -> Result<String, SandboxError> {
        self.token("producer")
    }

    /// The auditor's bearer token (role reader: query and export audit events).
    pub fn auditor_token(&self) -> Result<String, SandboxError> {
        self.token("auditor")
    }

    fn token(&self, who: &str) -> Result<String, SandboxError> {
        let path = self.dir.join(format!("{who}.token"));
        let token = std::fs::read_to_string(&path)
            .map_err(io_error(format!("reading {}", path.display())))?;
        Ok(token.trim().to_owned())
    }

    /// Whether a component is running (started and not stopped; it may have died since).
    pub fn is_running(&self, name: &str) -> bool {
        self.running.contains_key(name)
    }

    /// Starts one component and waits until its port accepts connections.
    pub fn start_component(&mut self, name: &str) -> Result<(), SandboxError> {
        if self.running.contains_key(name) {
            return Ok(());
        }
        let (addr, mut command) = self.command(name)?;
        let out_path = self.dir.join(format!("{name}.out"));
        let out = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&out_path)
            .map_err(io_error(format!("opening {}", out_path.display())))?;
        let err = out
            .try_clone()
            .map_err(io_error(format!("opening {}", out_path.display())))?;
        command
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        let mut child = command
            .spawn()
            .map_err(io_error(format!("starting {name}")))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return Err(not_ready(name, format!("it exited ({status})"), &out_path));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                return Err(not_ready(
                    name,
                    format!("{addr} not open after {READY_TIMEOUT:?}"),
                    &out_path,
                ));
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        self.running
            .insert(name.to_owned(), Component { child, addr });
        Ok(())
    }

    /// Stops one component with SIGTERM (a clean shutdown), killing it if it takes longer than
    /// 20 s. Returns whether it exited successfully.
    pub fn stop_component(&mut self, name: &str) -> Result<bool, SandboxError> {
        let Some(mut component) = self.running.remove(name) else {
            return Ok(true);
        };
        terminate(&component.child);
        let deadline = Instant::now() + STOP_TIMEOUT;
        loop {
            match component.child.try_wait() {
                Ok(Some(status)) => return Ok(status.success()),
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => {
                    let _ = component.child.kill();
                    let _ = component.child.wait();
                    return Ok(false);
                }
            }
        }
    }

    /// Kills one component with SIGKILL: no chance to flush or finish anything.
    pub fn kill_component(&mut self, name: &str) -> Result<(), SandboxError> {
        let Some(mut component) = self.running.remove(name) else {
            return Err(SandboxError::UnknownComponent(name.to_owned()));
        };
        component
            .child
            .kill()
            .map_err(io_error(format!("killing {name}")))?;
        component
            .child
            .wait()
            .map_err(io_error(format!("waiting for {name}")))?;
        Ok(())
    }

    /// The address of a running component.
    pub fn addr(&self, name: &str) -> Option<SocketAddr> {
        self.running.get(name).map(|c| c.addr)
    }

    /// The components that exited on their own, with their status.
    pub fn exited(&mut self) -> Vec<(String, std::process::ExitStatus)> {
        let mut exited = Vec::new();
        for (name, component) in &mut self.running {
            if let Ok(Some(status)) = component.child.try_wait() {
                exited.push((name.clone(), status));
            }
        }
        for (name, _) in &exited {
            self.running.remove(name);
        }
        exited
    }

    /// Stops every component, in reverse start order. Returns the components that did not exit
    /// cleanly.
    pub fn stop(&mut self) -> Vec<String> {
        let mut unclean = Vec::new();
        for name in self.components().into_iter().rev() {
            if !matches!(self.stop_component(&name), Ok(true)) {
                unclean.push(name);
            }
        }
        unclean
    }

    fn command(&self, name: &str) -> Result<(SocketAddr, Command), SandboxError> {
        let dir = &self.dir;
        if name == "tsa" {
            let mut command = Command::new(self.binaries.path("cairn-witness")?);
            command
                .args(["tsa", "serve", "--dir"])
                .arg(dir.join("tsa"))
                .arg("--listen")
                .arg(self.layout.tsa.to_string());
            if self.layout.tls {
                command
                    .arg("--tls-cert-file")
                    .arg(dir.join("server.pem"))
                    .arg("--tls-key-file")
                    .arg(dir.join("server.key"));
            }
            return Ok((self.layout.tsa, command));
        }
        if name == "log" {
            let mut command = Command::new(self.binaries.path("cairn-log")?);
            command
                .args(["serve", "--config"])
                .arg(dir.join("log.toml"));
            return Ok((self.layout.log, command));
        }
        if name == "monitor" {
            let addr = self
                .layout
                .monitor
                .ok_or_else(|| SandboxError::UnknownComponent(name.to_owned()))?;
            let mut command = Command::new(self.binaries.path("cairn-monitor")?);
            command
                .args(["run", "--config"])
                .arg(dir.join("monitor.toml"));
            return Ok((addr, command));
        }
        let witness = self
            .layout
            .witnesses
            .iter()
            .find(|w| w.name == name)
            .ok_or_else(|| SandboxError::UnknownComponent(name.to_owned()))?;
        let mut command = Command::new(self.binaries.path("cairn-witness")?);
        command
            .args(["serve", "--config"])
            .arg(dir.join(format!("{name}.toml")));
        Ok((witness.addr, command))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        for component in self.running.values_mut() {
            let _ = component.child.kill();
            let _ = component.child.wait();
        }
    }
}

fn terminate(child: &Child) {
    let pid = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw);
    if let Some(pid) = pid {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
}

fn not_ready(name: &str, reason: String, log: &Path) -> SandboxError {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines[lines.len().saturating_sub(30)..].join("\n");
    SandboxError::NotReady {
        name: name.to_owned(),
        reason,
        log: log.to_path_buf(),
        output: tail,
    }
}

fn read_layout(dir: &Path) -> Result<Option<Layout>, SandboxError> {
    let path = dir.join(LAYOUT_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            SandboxError::Unexpected(format!(
                "{} is not a sandbox layout: {e}; remove the directory to start afresh",
                path.display()
            ))
        }),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(SandboxError::Io {
            what: format!("reading {}", path.display()),
            source: error,
        }),
    }
}

/// Picks `count` addresses: consecutive ports from `base`, or ports the system hands out now
/// (free at this moment; another process could take one before the component binds it).
fn pick_addrs(base: Option<u16>, count: usize) -> Result<Vec<SocketAddr>, SandboxError> {
    match base {
        Some(base) => (0..count)
            .map(|offset| {
                let port = u16::try_from(offset)
                    .ok()
                    .and_then(|offset| base.checked_add(offset))
                    .ok_or_else(|| {
                        SandboxError::Unexpected(format!("ports from {base} overflow"))
                    })?;
                Ok(SocketAddr::from(([127, 0, 0, 1], port)))
            })
            .collect(),
        None => {
            // Hold every listener until all are picked, so that no two picks are the same.
            let listeners = (0..count)
                .map(|_| TcpListener::bind("127.0.0.1:0"))
                .collect::<Result<Vec<_>, _>>()
                .map_err(io_error("picking free ports"))?;
            listeners
                .iter()
                .map(|l| l.local_addr().map_err(io_error("picking free ports")))
                .collect()
        }
    }
}

/// Runs a set-up command in `dir` and returns its standard output.
fn run(dir: &Path, program: &Path, args: &[&str]) -> Result<String, SandboxError> {
    let command_line = format!("{} {}", program.display(), args.join(" "));
    let output = Command::new(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(io_error(format!("running {command_line}")))?;
    if !output.status.success() {
        return Err(SandboxError::Command {
            command: command_line,
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    String::from_utf8(output.stdout)
        .map_err(|_| SandboxError::Unexpected(format!("{command_line} printed non-UTF-8 output")))
}

/// Runs `cairn-log token <args>`: the token, and the configuration entry it printed (a
/// `[[producers]]` or `[[principals]]` block, to the end of the output).
fn make_token(dir: &Path, log_bin: &Path, args: &[&str]) -> Result<(String, String), SandboxError> {
    let mut command = vec!["token"];
    command.extend_from_slice(args);
    let out = run(dir, log_bin, &command)?;
    let token = out
        .lines()
        .find_map(|line| line.strip_prefix("token: "))
        .ok_or_else(|| SandboxError::Unexpected("cairn-log token printed no token".into()))?;
    let block = out
        .find("[[")
        .map(|at| out[at..].to_owned())
        .ok_or_else(|| SandboxError::Unexpected("cairn-log token printed no entry".into()))?;
    Ok((token.to_owned(), block))
}

/// The last non-empty line a key generator printed: the vkey.
fn last_line(output: &str, what: &str) -> Result<String, SandboxError> {
    output
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| SandboxError::Unexpected(format!("{what} printed nothing")))
}

fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), SandboxError> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    if private {
        options.mode(0o600);
    }
    let mut file: File = options
        .open(path)
        .map_err(io_error(format!("creating {}", path.display())))?;
    file.write_all(contents.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(io_error(format!("writing {}", path.display())))
}

/// The body of a PEM certificate file: its base64 DER on one line.
fn pem_base64(pem: &str) -> String {
    pem.lines()
        .filter(|line| !line.starts_with("-----"))
        .map(str::trim)
        .collect()
}

fn toml_string(value: &str) -> String {
    // TOML basic strings share JSON's escapes for everything a path or URL holds.
    serde_json::Value::String(value.to_owned()).to_string()
}

/// Makes keys, certificates, the producer token and every configuration file. `sandbox.json`
/// is written last: a directory without it is an interrupted first start, which is refused
/// rather than half reused.
fn initialise(dir: &Path, options: &Options, bins: &Binaries) -> Result<Layout, SandboxError> {
    if std::fs::read_dir(dir)
        .map_err(io_error(format!("listing {}", dir.display())))?
        .next()
        .is_some()
    {
        return Err(SandboxError::Unexpected(format!(
            "{} is not empty and holds no {LAYOUT_FILE}: give an empty or new directory",
            dir.display()
        )));
    }
    if options.witnesses == 0 || options.witness_quorum > options.witnesses {
        return Err(SandboxError::Unexpected(format!(
            "{} witnesses with a quorum of {}: need at least one witness and a quorum no larger",
            options.witnesses, options.witness_quorum
        )));
    }
    let witness_bin = bins.path("cairn-witness")?;
    let log_bin = bins.path("cairn-log")?;
    if options.monitor {
        bins.path("cairn-monitor")?;
    }
    let addrs = pick_addrs(options.base_port, 3 + options.witnesses)?;
    let (log_addr, tsa_addr, monitor_addr) = (addrs[0], addrs[1], addrs[2]);
    if options.tls {
        make_certificates(dir)?;
    }
    let scheme = scheme(options.tls);
    // The [http] table of every server's file, and a client's line trusting the CA.
    let http_table = if options.tls {
        format!(
            "\n[http]\ntls_cert_file = {}\ntls_key_file = {}\n",
            toml_string(&dir.join("server.pem").display().to_string()),
            toml_string(&dir.join("server.key").display().to_string()),
        )
    } else {
        String::new()
    };
    let trust = |key: &str| {
        if options.tls {
            format!(
                "{key} = {}\n",
                toml_string(&dir.join("ca.pem").display().to_string())
            )
        } else {
            String::new()
        }
    };

    run(
        dir,
        &witness_bin,
        &["tsa", "init", "--dir", "tsa", "--name", "Cairn sandbox TSA"],
    )?;
    let mut witnesses = Vec::new();
    for (number, addr) in (1..).zip(&addrs[3..]) {
        let name = format!("witness-{number}");
        let key_name = format!("sandbox.cairn.example/witness-{number}");
        let out = run(
            dir,
            &witness_bin,
            &[
                "keygen",
                "--name",
                &key_name,
                "--out",
                &format!("{name}.key"),
            ],
        )?;
        witnesses.push(WitnessInfo {
            name,
            addr: *addr,
            vkey: last_line(&out, "cairn-witness keygen")?,
        });
    }
    let out = run(
        dir,
        &log_bin,
        &["keygen", "--origin", &options.origin, "--out", "log.key"],
    )?;
    let log_vkey = last_line(&out, "cairn-log keygen")?;
    let (token, producer_block) = make_token(dir, &log_bin, &["--name", "sandbox-producer"])?;
    write_file(&dir.join("producer.token"), &format!("{token}\n"), true)?;
    // An auditor, who may read, query and export audit events but not write them.
    let (auditor_token, principals_block) = make_token(
        dir,
        &log_bin,
        &["--name", "sandbox-auditor", "--role", "reader"],
    )?;
    write_file(
        &dir.join("auditor.token"),
        &format!("{auditor_token}\n"),
        true,
    )?;

    let path = |p: &str| toml_string(&dir.join(p).display().to_string());
    let tsa_root = std::fs::read_to_string(dir.join("tsa/root.pem"))
        .map_err(io_error("reading tsa/root.pem"))?;
    for witness in &witnesses {
        let config = format!(
            "listen = \"{addr}\"\ndata_dir = {data}\nkey_file = {key}\n\n\
             [[log]]\norigin = {origin}\nvkey = {vkey}\n\n\
             [[tsa]]\nname = \"sandbox-tsa\"\nurl = \"{scheme}://{tsa_addr}/\"\ntrust_anchor = {root}\n\
             {tsa_ca}{http_table}",
            tsa_ca = trust("ca_file"),
            addr = witness.addr,
            data = path(&format!("{}-data", witness.name)),
            key = path(&format!("{}.key", witness.name)),
            origin = toml_string(&options.origin),
            vkey = toml_string(&log_vkey),
            root = path("tsa/root.pem"),
        );
        write_file(&dir.join(format!("{}.toml", witness.name)), &config, false)?;
    }

    let mut log_config = format!(
        "listen = \"{log_addr}\"\ndata_dir = {data}\norigin = {origin}\nkey_file = {key}\n\
         witness_quorum = {quorum}\ncheckpoint_interval_ms = {interval}\n{witness_ca}\n\
         {producer_block}\n{principals_block}",
        witness_ca = trust("witness_ca_file"),
        data = path("log-data"),
        origin = toml_string(&options.origin),
        key = path("log.key"),
        quorum = options.witness_quorum,
        interval = options.checkpoint_interval_ms,
    );
    for witness in &witnesses {
        log_config.push_str(&format!(
            "\n[[witnesses]]\nname = \"{}\"\nurl = \"{scheme}://{}\"\nvkey = {}\n",
            witness.name,
            witness.addr,
            toml_string(&witness.vkey)
        ));
    }
    log_config.push_str(&http_table);
    write_file(&dir.join("log.toml"), &log_config, false)?;

    let mut policy =
        format!("# Who a verifier of this sandbox's receipts trusts.\nlog {log_vkey}\n");
    for (number, witness) in (1..).zip(&witnesses) {
        policy.push_str(&format!("witness w{number} {}\n", witness.vkey));
    }
    let members: Vec<String> = (1..=witnesses.len()).map(|n| format!("w{n}")).collect();
    if options.witness_quorum == 0 {
        policy.push_str("quorum none\n");
    } else {
        policy.push_str(&format!(
            "group witnesses {} {}\nquorum witnesses\n",
            options.witness_quorum,
            members.join(" ")
        ));
    }
    policy.push_str(&format!("tsa sandbox-tsa {}\n", pem_base64(&tsa_root)));
    write_file(&dir.join("policy.txt"), &policy, false)?;

    let monitor = if options.monitor {
        let witness_urls: Vec<String> = witnesses
            .iter()
            .map(|w| toml_string(&format!("{scheme}://{}", w.addr)))
            .collect();
        let config = format!(
            "state_dir = {state}\nevidence_dir = {evidence}\nlisten = \"{monitor_addr}\"\n\
             poll_interval_secs = {poll}\n{ca}\n\
             [[logs]]\nurl = \"{scheme}://{log_addr}\"\nkey = {vkey}\npolicy = {policy}\n\
             witnesses = [{witnesses}]\n{http_table}",
            ca = trust("ca_file"),
            state = path("monitor-state"),
            evidence = path("monitor-evidence"),
            poll = options.monitor_poll_secs,
            vkey = toml_string(&log_vkey),
            policy = path("policy.txt"),
            witnesses = witness_urls.join(", "),
        );
        write_file(&dir.join("monitor.toml"), &config, false)?;
        Some(monitor_addr)
    } else {
        None
    };

    let layout = Layout {
        origin: options.origin.clone(),
        log: log_addr,
        log_vkey,
        tsa: tsa_addr,
        monitor,
        witnesses,
        witness_quorum: options.witness_quorum,
        tls: options.tls,
    };
    let json = serde_json::to_string_pretty(&layout)
        .map_err(|e| SandboxError::Unexpected(format!("encoding the layout: {e}")))?;
    write_file(&dir.join(LAYOUT_FILE), &format!("{json}\n"), false)?;
    Ok(layout)
}

/// A local CA (`ca.pem`, `ca.key`) and a server certificate it issued for 127.0.0.1 and
/// localhost (`server.pem`, `server.key`), valid for a year, made with `openssl` in `dir`.
fn make_certificates(dir: &Path) -> Result<(), SandboxError> {
    let openssl = |args: &[&str]| -> Result<(), SandboxError> {
        run(dir, Path::new("openssl"), args)
            .map(drop)
            .map_err(|error| match error {
                SandboxError::Io { what, source }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    SandboxError::Unexpected(format!(
                        "{what}: the openssl command is needed to make the sandbox's certificates"
                    ))
                }
                other => other,
            })
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
    ];
    let mut ca = vec!["req", "-x509"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "365",
        "-subj",
        "/CN=Cairn sandbox CA",
    ]);
    openssl(&ca)?;
    let mut request = vec!["req"];
    request.extend(ec);
    request.extend([
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(&request)?;
    write_file(
        &dir.join("server.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        false,
    )?;
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "365",
        "-extfile",
        "server.ext",
    ])?;
    // openssl writes keys as its umask allows: keep them to their owner.
    for key in ["ca.key", "server.key"] {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(dir.join(key), std::fs::Permissions::from_mode(0o600))
            .map_err(io_error(format!("restricting {key}")))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_body_is_the_base64_of_the_der() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAEC\nAwQF\n-----END CERTIFICATE-----\n";
        assert_eq!(pem_base64(pem), "AAECAwQF");
    }

    #[test]
    fn consecutive_ports_refuse_to_overflow() {
        assert!(pick_addrs(Some(65534), 3).is_err());
        let addrs = pick_addrs(Some(7480), 3).expect("fits");
        assert_eq!(addrs[2].port(), 7482);
    }

    #[test]
    fn system_ports_are_distinct() {
        let addrs = pick_addrs(None, 6).expect("picks");
        let mut ports: Vec<u16> = addrs.iter().map(SocketAddr::port).collect();
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 6);
    }

    #[test]
    fn a_used_directory_without_layout_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("something"), b"x").expect("writes");
        let options = Options::new(dir.path());
        let error =
            initialise(dir.path(), &options, &Binaries::in_dir(dir.path())).expect_err("refused");
        assert!(error.to_string().contains("not empty"), "{error}");
    }
}
