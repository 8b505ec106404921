//! What the witness's tests with real processes share: starting `cairn-witness`, a witness key,
//! and a test log whose add-checkpoint requests they send.

#![allow(dead_code)] // each test file uses its part

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::hash::Hash;
use cairn_spec::merkle::{consistency_proof, CompactRange};
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::witness::format_add_checkpoint_request;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// A `cairn-witness` child process, killed (SIGKILL) when dropped.
pub struct Running {
    child: Child,
    /// Its base URL.
    pub url: String,
}

impl Running {
    /// Starts `cairn-witness args…` on a port of its choosing and waits for its "listening on"
    /// line.
    pub fn start(args: &[&str]) -> Running {
        Running::start_with_env(args, &[])
    }

    /// [`Running::start`] with these environment variables added.
    pub fn start_with_env(args: &[&str], env: &[(&str, &std::ffi::OsStr)]) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_cairn-witness"))
            .args(args)
            .envs(env.iter().copied())
            .env("CAIRN_WITNESS_LISTEN", "127.0.0.1:0")
            .env("CAIRN_WITNESS_TSA_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawns cairn-witness");
        let stdout = child.stdout.take().expect("stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("reads");
        let Some(address) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("cairn-witness {args:?} printed {line:?}, not its address");
        };
        let url = format!("http://{address}");
        Running { child, url }
    }

    /// Kills it with SIGKILL, as a crash would.
    pub fn kill(self) {
        drop(self);
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes a witness key in `dir` with `cairn-witness keygen`; returns its file.
pub fn keygen(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join("witness.key");
    let keygen = Command::new(env!("CARGO_BIN_EXE_cairn-witness"))
        .args(["keygen", "--name", name, "--out"])
        .arg(&path)
        .output()
        .expect("keygen runs");
    assert!(keygen.status.success(), "keygen: {keygen:?}");
    path
}

/// A test log: its key, and the stored hashes and roots of its first leaves.
pub struct TestLog {
    pub origin: String,
    signer: Ed25519Signer,
    stored: Vec<Hash>,
    roots: Vec<Hash>,
}

impl TestLog {
    /// A log of `count` leaves named `origin`.
    pub fn new(origin: &str, count: u64) -> TestLog {
        let signer = Ed25519Signer::from_seed(KeyName::new(origin).expect("name"), [3; 32]);
        let mut range = CompactRange::new();
        let mut stored = Vec::new();
        let mut roots = vec![range.root()];
        for index in 0..count {
            range
                .append_with(Hash::of_leaf(&index.to_be_bytes()), |_, hash| {
                    stored.push(*hash)
                })
                .expect("appends");
            roots.push(range.root());
        }
        TestLog {
            origin: origin.to_owned(),
            signer,
            stored,
            roots,
        }
    }

    /// Its vkey.
    pub fn vkey(&self) -> String {
        self.signer.verifier().to_vkey()
    }

    /// The `[[log]]` table of a witness's configuration.
    pub fn config_table(&self) -> String {
        format!(
            "[[log]]\norigin = {:?}\nvkey = {:?}\n",
            self.origin,
            self.vkey()
        )
    }

    /// Its checkpoint of `size`, unsigned.
    pub fn checkpoint(&self, size: u64) -> Checkpoint {
        Checkpoint {
            origin: self.origin.clone(),
            size,
            root: self.roots[size as usize],
            extensions: Vec::new(),
        }
    }

    /// The add-checkpoint request from `old` to `size`.
    pub fn request(&self, old: u64, size: u64) -> Vec<u8> {
        let note = self.checkpoint(size).sign(&self.signer).expect("signs");
        format_add_checkpoint_request(
            &note,
            old,
            &consistency_proof(old, size, &self.stored).expect("proof"),
        )
        .expect("request")
    }
}
