//! Making a sandbox's directory: keys, tokens, a TSA, the local CA and certificates of
//! `--tls`, and the configuration file of every component.

use super::*;

/// Runs a set-up command in `dir` and returns its standard output.
pub(super) fn run(dir: &Path, program: &Path, args: &[&str]) -> Result<String, SandboxError> {
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
pub(super) fn make_token(
    dir: &Path,
    log_bin: &Path,
    args: &[&str],
) -> Result<(String, String), SandboxError> {
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
pub(super) fn last_line(output: &str, what: &str) -> Result<String, SandboxError> {
    output
        .lines()
        .rev()
        .map(str::trim)
        .find(|line| !line.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| SandboxError::Unexpected(format!("{what} printed nothing")))
}

pub(super) fn write_file(path: &Path, contents: &str, private: bool) -> Result<(), SandboxError> {
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
pub(super) fn pem_base64(pem: &str) -> String {
    pem.lines()
        .filter(|line| !line.starts_with("-----"))
        .map(str::trim)
        .collect()
}

pub(super) fn toml_string(value: &str) -> String {
    // TOML basic strings share JSON's escapes for everything a path or URL holds.
    serde_json::Value::String(value.to_owned()).to_string()
}

/// Makes keys, certificates, the producer token and every configuration file. `sandbox.json`
/// is written last: a directory without it is an interrupted first start, which is refused
/// rather than half reused.
pub(super) fn initialise(
    dir: &Path,
    options: &Options,
    bins: &Binaries,
) -> Result<Layout, SandboxError> {
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
    if options.scale > scaled::MAX_FRONT_ENDS {
        return Err(SandboxError::Unexpected(format!(
            "{} front-ends: at most {} are run",
            options.scale,
            scaled::MAX_FRONT_ENDS
        )));
    }
    // The scaled setup's servers come after the witnesses: PostgreSQL, S3, the front-ends
    // after the first.
    let scaled_ports = if options.scale > 0 {
        options.scale + 1
    } else {
        0
    };
    let addrs = pick_addrs(options.base_port, 3 + options.witnesses + scaled_ports)?;
    let (log_addr, tsa_addr, monitor_addr) = (addrs[0], addrs[1], addrs[2]);
    let scaled_layout = (options.scale > 0).then(|| {
        let rest = &addrs[3 + options.witnesses..];
        scaled::ScaledLayout {
            postgres: rest[0],
            s3: rest[1],
            more_front_ends: rest[2..].to_vec(),
            external_endpoint: options
                .external_bucket
                .as_ref()
                .map(|bucket| bucket.endpoint.clone()),
        }
    });
    let (scaled_top, scaled_tables) = match &scaled_layout {
        Some(layout) => scaled::initialise(dir, layout, options.external_bucket.as_ref())?,
        None => (String::new(), String::new()),
    };
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
    for (number, addr) in (1..).zip(&addrs[3..3 + options.witnesses]) {
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
        "listen = \"{{listen}}\"\ndata_dir = {{data_dir}}\n{scaled_top}origin = {origin}\n\
         key_file = {key}\nwitness_quorum = {quorum}\ncheckpoint_interval_ms = {interval}\n\
         receipt_policy = {policy}\n{witness_ca}\n\
         {producer_block}\n{principals_block}",
        // `?wait=checkpoint` answers a receipt that verifies under the policy handed out.
        policy = path("policy.txt"),
        witness_ca = trust("witness_ca_file"),
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
    if options.monitor {
        // The web UI's health panel reads the monitor's GET /status.
        log_config.push_str(&format!(
            "\n[ui]\nmonitor_url = \"{scheme}://{monitor_addr}\"\n"
        ));
    }
    log_config.push_str(&http_table);
    log_config.push_str(&scaled_tables);
    // One file per front-end, each with its address and data directory (the first is `log`).
    let mut front_ends = vec![("log".to_owned(), log_addr, "log-data".to_owned())];
    if let Some(layout) = &scaled_layout {
        for (number, addr) in (2..).zip(&layout.more_front_ends) {
            front_ends.push((format!("log-{number}"), *addr, format!("log-{number}-data")));
        }
    }
    for (name, addr, data) in &front_ends {
        let config = log_config
            .replacen("{listen}", &addr.to_string(), 1)
            .replacen("{data_dir}", &path(data), 1);
        write_file(&dir.join(format!("{name}.toml")), &config, false)?;
    }

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
        // The monitor reads the log from the front-end (with the auditor's token), or from the
        // bucket's website when an external bucket has one (public objects: no token).
        let web_url = options
            .external_bucket
            .as_ref()
            .and_then(|bucket| bucket.web_url.clone());
        let token = match web_url {
            Some(_) => String::new(),
            None => format!("token_file = {}\n", path("auditor.token")),
        };
        let followed = web_url.unwrap_or_else(|| format!("{scheme}://{log_addr}"));
        let config = format!(
            "state_dir = {state}\nevidence_dir = {evidence}\nlisten = \"{monitor_addr}\"\n\
             poll_interval_secs = {poll}\n{ca}\n\
             [[logs]]\nurl = {followed}\nkey = {vkey}\npolicy = {policy}\n\
             {token}witnesses = [{witnesses}]\n{http_table}",
            ca = trust("ca_file"),
            followed = toml_string(&followed),
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
        scaled: scaled_layout,
    };
    let json = serde_json::to_string_pretty(&layout)
        .map_err(|e| SandboxError::Unexpected(format!("encoding the layout: {e}")))?;
    write_file(&dir.join(LAYOUT_FILE), &format!("{json}\n"), false)?;
    Ok(layout)
}

/// A local CA (`ca.pem`, `ca.key`) and a server certificate it issued for 127.0.0.1 and
/// localhost (`server.pem`, `server.key`), valid for a year, made with `openssl` in `dir`.
pub(super) fn make_certificates(dir: &Path) -> Result<(), SandboxError> {
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

pub(super) fn read_layout(dir: &Path) -> Result<Option<Layout>, SandboxError> {
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
pub(super) fn pick_addrs(base: Option<u16>, count: usize) -> Result<Vec<SocketAddr>, SandboxError> {
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
