//! Shared setup of the end-to-end tests that run one `cairn-log` of their own (outside a
//! sandbox): a dev log (no witnesses) with a producer, started from its own `log.toml`.

// Each test binary that includes this module uses a part of it.
#![allow(dead_code)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cairn_tests::sandbox::Binaries;

/// The path of a built Cairn binary.
pub fn binary(name: &str) -> PathBuf {
    Binaries::locate()
        .and_then(|binaries| binaries.path(name))
        .unwrap_or_else(|error| panic!("{error}"))
}

/// Runs `command`, which must succeed; its standard output.
pub fn run(command: &mut Command) -> String {
    let output = command.output().expect("runs");
    assert!(
        output.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// A new reader principal `name` made by `cairn-log token`: its bearer token, and the
/// `[[principals]]` entry to put in the log's configuration.
pub fn reader_principal(name: &str) -> (String, String) {
    let lines =
        run(Command::new(binary("cairn-log")).args(["token", "--name", name, "--role", "reader"]));
    let token = lines
        .lines()
        .find_map(|line| line.strip_prefix("token: "))
        .expect("a token line")
        .to_owned();
    let principal = lines
        .lines()
        .skip_while(|line| !line.starts_with("[[principals]]"))
        .map(|line| format!("{line}\n"))
        .collect();
    (token, principal)
}

/// A running dev log, killed when dropped.
pub struct DevLog {
    child: Child,
    /// Where it listens.
    pub addr: String,
    /// A producer's bearer token.
    pub token: String,
    /// The log's vkey.
    pub vkey: String,
}

impl Drop for DevLog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DevLog {
    /// The process id of the log (to send it a signal).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Makes a key, a producer and `log.toml` (with `extra` appended: `[http]` keys, say) in
    /// `dir`, and starts `cairn-log serve` on a free loopback port through `shell_prefix` (a
    /// `sh -c` prefix such as `ulimit -n 256 &&`, or empty). Its standard error goes to
    /// `dir/log.err`.
    pub fn start(dir: &Path, extra: &str, shell_prefix: &str) -> DevLog {
        let vkey = DevLog::keygen(dir);
        DevLog::start_keyed(dir, vkey, extra, shell_prefix)
    }

    /// Makes the log's key `dir/log.key` (origin `e2e.cairn.example/log`); its vkey.
    pub fn keygen(dir: &Path) -> String {
        run(Command::new(binary("cairn-log")).args([
            "keygen",
            "--origin",
            "e2e.cairn.example/log",
            "--out",
            &dir.join("log.key").display().to_string(),
        ]))
        .trim()
        .to_owned()
    }

    /// [`DevLog::start`] with the key [`DevLog::keygen`] made before (whose vkey is `vkey`).
    pub fn start_keyed(dir: &Path, vkey: String, extra: &str, shell_prefix: &str) -> DevLog {
        let lines = run(Command::new(binary("cairn-log")).args(["token", "--name", "producer"]));
        let token = lines
            .lines()
            .find_map(|line| line.strip_prefix("token: "))
            .expect("a token line")
            .to_owned();
        let producer: String = lines
            .lines()
            .skip_while(|line| !line.starts_with("[[producers]]"))
            .map(|line| format!("{line}\n"))
            .collect();
        let config = dir.join("log.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = {data:?}\nkey_file = {key:?}\nwitness_quorum = 0\n\
                 checkpoint_interval_ms = 100\n\n{producer}\n{extra}",
                data = dir.join("data").display().to_string(),
                key = dir.join("log.key").display().to_string(),
            ),
        )
        .expect("writes log.toml");
        let stderr = std::fs::File::create(dir.join("log.err")).expect("creates log.err");
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(format!("{shell_prefix} exec \"$0\" \"$@\""))
            .arg(binary("cairn-log"))
            .args(["serve", "--config"])
            .arg(&config)
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("cairn-log starts");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reads the first line");
        let addr = match line.trim().strip_prefix("listening on ") {
            Some(addr) => addr.to_owned(),
            None => {
                let _ = child.kill();
                panic!(
                    "cairn-log printed {line:?}: {}",
                    std::fs::read_to_string(dir.join("log.err")).unwrap_or_default()
                );
            }
        };
        DevLog {
            child,
            addr,
            token,
            vkey,
        }
    }
}
