//! The scaled setup of a sandbox (`cairn-sandbox --scale N`): the log runs as N `cairn-log`
//! front-ends (`log`, `log-2`, …) with `storage = "scaled"` on a PostgreSQL server and an S3
//! server of the sandbox's own, both on loopback:
//!
//! - `postgres`: a cluster made with `initdb` in `<dir>/postgres` (the newest
//!   `/usr/lib/postgresql/<version>/bin`, or `CAIRN_PG_BIN`), run with `fsync` and
//!   `synchronous_commit` on (the log refuses a server without). PostgreSQL refuses to run as
//!   root: as root, the cluster belongs to the `postgres` user and its programs run as that
//!   user, so the sandbox's directory must be one it can reach (under /tmp, say).
//! - `s3`: `s3s-fs` (`$S3S_FS`, on the `PATH`, or in cargo's bin directory) over
//!   `<dir>/s3`, with the bucket `cairn-log`: monitors can read the log's tiles there. With an
//!   [`ExternalBucket`] (the scale test's Garage cluster) there is no `s3` component: the
//!   front-ends use that bucket, and the monitor may follow the log through its website.
//!
//! The front-ends share the log's key and one key-encryption key for audit events
//! (`events.kek`), and each has its own data directory (`log-data`, `log-2-data`, …).

use std::os::unix::process::CommandExt as _;

use super::setup::{run, toml_string, write_file};
use super::*;

/// The bucket the front-ends share.
pub const BUCKET: &str = "cairn-log";
/// The S3 server's keys (a sandbox's own server on loopback).
const ACCESS_KEY: &str = "cairn-sandbox-access";
const SECRET_KEY: &str = "cairn-sandbox-secret-key";
/// The most front-ends a sandbox runs.
pub const MAX_FRONT_ENDS: usize = 16;

/// Where the scaled setup's servers listen.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScaledLayout {
    /// PostgreSQL.
    pub postgres: SocketAddr,
    /// The S3 server of the sandbox's own (unused with an external bucket).
    pub s3: SocketAddr,
    /// The front-ends after the first (`log-2`, …); the first is [`Layout::log`].
    pub more_front_ends: Vec<SocketAddr>,
    /// The endpoint of an [`ExternalBucket`], if the front-ends use one instead of `s3`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_endpoint: Option<String>,
}

/// A bucket on an S3 server the sandbox does not run (the scale test's Garage cluster): the
/// front-ends store the log there instead of on an s3s-fs of the sandbox's own.
#[derive(Debug, Clone)]
pub struct ExternalBucket {
    /// The S3 API's base URL (plain `http://` on loopback only).
    pub endpoint: String,
    /// The bucket.
    pub bucket: String,
    /// The region requests are signed for (Garage checks its `s3_region`).
    pub region: String,
    /// The access key id.
    pub access_key: String,
    /// The secret access key.
    pub secret_key: String,
    /// A base URL that serves the bucket's objects without signing (a static website
    /// endpoint): the monitor follows the log there if given, else through the first front-end.
    pub web_url: Option<String>,
}

/// The user PostgreSQL runs as: `None` to run as ourselves, or the `postgres` user's ids when
/// we are root.
fn postgres_user() -> Result<Option<(u32, u32)>, SandboxError> {
    if !rustix::process::geteuid().is_root() {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32, SandboxError> {
        let out = run(Path::new("/"), Path::new("id"), &[flag, "postgres"])?;
        out.trim()
            .parse()
            .map_err(|_| SandboxError::Unexpected(format!("`id {flag} postgres` printed {out:?}")))
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

/// The directory of the newest installed PostgreSQL's programs.
fn postgres_bin() -> Result<PathBuf, SandboxError> {
    if let Some(bin) = std::env::var_os("CAIRN_PG_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let newest = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(io_error(
            "listing /usr/lib/postgresql (is PostgreSQL installed?)",
        ))?
        .filter_map(|item| item.ok())
        .filter_map(|item| {
            let version: u32 = item.file_name().to_str()?.parse().ok()?;
            let bin = item.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .max_by_key(|(version, _)| *version);
    newest.map(|(_, bin)| bin).ok_or_else(|| {
        SandboxError::Unexpected(
            "no /usr/lib/postgresql/<version>/bin/postgres: install PostgreSQL (apt-get install \
             postgresql) or set CAIRN_PG_BIN"
                .into(),
        )
    })
}

/// The `s3s-fs` to run.
fn s3_binary() -> Result<PathBuf, SandboxError> {
    if let Some(path) = std::env::var_os("S3S_FS") {
        return Ok(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join("s3s-fs"))
        .find(|path| path.is_file());
    let in_cargo = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))
        .map(|home| home.join("bin/s3s-fs"))
        .filter(|path| path.is_file());
    on_path.or(in_cargo).ok_or_else(|| {
        SandboxError::Unexpected(
            "the S3 server s3s-fs was not found ($S3S_FS, the PATH, cargo's bin directory): \
             install it with `cargo install s3s-fs --version 0.14.1 --features binary --locked`"
                .into(),
        )
    })
}

/// A command for one of PostgreSQL's programs, as the `postgres` user when we are root.
fn postgres_command(program: &str) -> Result<Command, SandboxError> {
    let mut command = Command::new(postgres_bin()?.join(program));
    if let Some((uid, gid)) = postgres_user()? {
        command.uid(uid).gid(gid);
    }
    Ok(command)
}

/// Makes the database cluster, the bucket's directory (without an external bucket) and the S3
/// credentials file, and checks that the servers' programs are there. Answers the scaled
/// configuration tables of `log.toml` (`storage`, then `[postgres]` and `[bucket]`).
pub(super) fn initialise(
    dir: &Path,
    layout: &ScaledLayout,
    external: Option<&ExternalBucket>,
) -> Result<(String, String), SandboxError> {
    let (endpoint, bucket, region, access_key, secret_key) = match external {
        Some(external) => (
            external.endpoint.clone(),
            external.bucket.as_str(),
            format!("region = {}\n", toml_string(&external.region)),
            external.access_key.as_str(),
            external.secret_key.as_str(),
        ),
        None => {
            s3_binary()?;
            std::fs::create_dir_all(dir.join("s3").join(BUCKET))
                .map_err(io_error("creating the bucket's directory"))?;
            (
                format!("http://{}", layout.s3),
                BUCKET,
                String::new(),
                ACCESS_KEY,
                SECRET_KEY,
            )
        }
    };
    write_file(
        &dir.join("s3-credentials"),
        &format!("{access_key}\n{secret_key}\n"),
        true,
    )?;
    let data = dir.join("postgres");
    std::fs::create_dir(&data).map_err(io_error("creating the database's directory"))?;
    if let Some((uid, gid)) = postgres_user()? {
        std::os::unix::fs::chown(&data, Some(uid), Some(gid))
            .map_err(io_error("giving the database's directory to postgres"))?;
    }
    let output = postgres_command("initdb")?
        .arg("-D")
        .arg(&data)
        .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C"])
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .map_err(io_error("running initdb"))?;
    if !output.status.success() {
        return Err(SandboxError::Command {
            command: format!("initdb -D {}", data.display()),
            status: output.status.to_string(),
            stderr: format!(
                "{} (as root, PostgreSQL runs as the postgres user, which must be able to reach \
                 {}: give a --dir under /tmp)",
                String::from_utf8_lossy(&output.stderr).trim(),
                data.display()
            ),
        });
    }
    // One key-encryption key for the audit events' contents, shared by every front-end: an
    // event sealed by one is read by another.
    let kek: String = (0..32)
        .map(|_| format!("{:02x}", rand::random::<u8>()))
        .collect();
    write_file(&dir.join("events.kek"), &format!("{kek}\n"), true)?;
    let top = "storage = \"scaled\"\n".to_owned();
    let tables = format!(
        "\n[postgres]\nurl = {url}\nlease_term_ms = 5000\n\n\
         [bucket]\nendpoint = {endpoint}\nbucket = {bucket}\n{region}credentials_file = {credentials}\n\n\
         [privacy]\nkek_file = {kek}\n",
        kek = toml_string(&dir.join("events.kek").display().to_string()),
        url = toml_string(&format!(
            "host={} port={} user=postgres dbname=postgres",
            layout.postgres.ip(),
            layout.postgres.port()
        )),
        endpoint = toml_string(&endpoint),
        bucket = toml_string(bucket),
        credentials = toml_string(&dir.join("s3-credentials").display().to_string()),
    );
    Ok((top, tables))
}

/// The command that runs the `postgres` or `s3` component.
pub(super) fn command(
    dir: &Path,
    layout: &ScaledLayout,
    name: &str,
) -> Result<Option<(SocketAddr, Command)>, SandboxError> {
    match name {
        "postgres" => {
            let mut command = postgres_command("postgres")?;
            command
                .arg("-D")
                .arg(dir.join("postgres"))
                .args(["-c", "listen_addresses=127.0.0.1", "-p"])
                .arg(layout.postgres.port().to_string())
                .arg("-k")
                .arg(dir.join("postgres"))
                .args([
                    "-c",
                    "fsync=on",
                    "-c",
                    "synchronous_commit=on",
                    "-c",
                    "max_connections=200",
                ]);
            Ok(Some((layout.postgres, command)))
        }
        "s3" if layout.external_endpoint.is_none() => {
            let mut command = Command::new(s3_binary()?);
            command
                .args(["--host", "127.0.0.1", "--port"])
                .arg(layout.s3.port().to_string())
                .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
                .arg(dir.join("s3"));
            Ok(Some((layout.s3, command)))
        }
        _ => Ok(None),
    }
}

/// Waits until PostgreSQL takes connections (its port opens before it does), at most until
/// `deadline`.
pub(super) fn wait_for_postgres(addr: SocketAddr, deadline: Instant) -> Result<(), String> {
    loop {
        let ready = postgres_command("pg_isready")
            .map_err(|error| error.to_string())?
            .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
            .current_dir("/")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("PostgreSQL at {addr} does not take connections"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs one SQL statement with `psql` against the PostgreSQL at `addr` (as the `postgres`
/// user, database `postgres`) and answers its unaligned, tuples-only output: the scale test
/// reads the integrator lease's holder with it.
pub fn query_postgres(addr: SocketAddr, sql: &str) -> Result<String, SandboxError> {
    let output = postgres_command("psql")?
        .args(["-h", &addr.ip().to_string(), "-p", &addr.port().to_string()])
        .args([
            "-U", "postgres", "-d", "postgres", "-X", "-A", "-t", "-c", sql,
        ])
        .current_dir("/")
        .stdin(Stdio::null())
        .output()
        .map_err(io_error("running psql"))?;
    if !output.status.success() {
        return Err(SandboxError::Command {
            command: format!("psql -c {sql:?}"),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
