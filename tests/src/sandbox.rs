//! A whole Cairn on this machine, as real processes on loopback: one `cairn-log`, N
//! `cairn-witness` (two by default), one timestamp authority (`cairn-witness tsa serve`) and one
//! `cairn-monitor`, configured to trust each other. With [`Options::scale`] the log runs as
//! several front-ends on a PostgreSQL and an S3 server of the sandbox's own ([`scaled`]).
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

pub mod scaled;
mod setup;
use scaled::ScaledLayout;
use setup::{initialise, read_layout};

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
    /// 0 for one log on its embedded store; N for N front-ends of one log on a PostgreSQL and
    /// an S3 server of the sandbox's own ([`scaled`]).
    pub scale: usize,
    /// With `scale`: a bucket on an S3 server the sandbox does not run (a Garage cluster,
    /// say), used instead of an s3s-fs of its own.
    pub external_bucket: Option<scaled::ExternalBucket>,
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
            scale: 0,
            external_bucket: None,
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
    /// With `--scale`: the database, the S3 server and the front-ends after the first.
    #[serde(default)]
    pub scaled: Option<ScaledLayout>,
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
        let mut names = Vec::new();
        if let Some(scaled) = &self.layout.scaled {
            names.push("postgres".to_owned());
            if scaled.external_endpoint.is_none() {
                names.push("s3".to_owned());
            }
        }
        names.push("tsa".to_owned());
        names.extend(self.layout.witnesses.iter().map(|w| w.name.clone()));
        names.extend(self.front_ends().into_iter().map(|(name, _)| name));
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

    /// The log's base URL (its first front-end's, with `--scale`).
    pub fn log_url(&self) -> String {
        format!("{}://{}", self.layout.scheme(), self.layout.log)
    }

    /// The log's front-ends: `log` alone, or with `--scale` also `log-2`, `log-3`, ….
    pub fn front_ends(&self) -> Vec<(String, SocketAddr)> {
        let mut front_ends = vec![("log".to_owned(), self.layout.log)];
        if let Some(scaled) = &self.layout.scaled {
            front_ends.extend(
                (2..)
                    .zip(&scaled.more_front_ends)
                    .map(|(number, addr)| (format!("log-{number}"), *addr)),
            );
        }
        front_ends
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
                if name == "postgres" {
                    if let Err(reason) = scaled::wait_for_postgres(addr, deadline) {
                        let _ = child.kill();
                        let _ = child.wait();
                        return Err(not_ready(name, reason, &out_path));
                    }
                }
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
        if let Some(scaled) = &self.layout.scaled {
            if let Some(found) = scaled::command(dir, scaled, name)? {
                return Ok(found);
            }
        }
        if let Some((_, addr)) = self.front_ends().into_iter().find(|(n, _)| n == name) {
            let mut command = Command::new(self.binaries.path("cairn-log")?);
            command
                .args(["serve", "--config"])
                .arg(dir.join(format!("{name}.toml")));
            return Ok((addr, command));
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

#[cfg(test)]
mod tests;
