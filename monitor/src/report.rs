//! What the commands of `cairn-monitor` say: for people, sentences that name what was verified
//! in this run and nothing else, and for scripts (`--json`), one JSON object a command. An
//! `audit` or `run --once` is summed up in an [`Outcome`], whose exit code is 0 only when every
//! log's current checkpoint was verified in this run and no alert is active.

use std::fmt::Write as _;
use std::path::Path;

use cairn_monitor::alert::{ActiveAlert, Alerter};
use cairn_monitor::follow::PollReport;
use cairn_monitor::state::Incident;
use cairn_spec::evidence::Conflict;
use cairn_spec::export::VerifiedExportV2;
use cairn_spec::receipt::VerifiedReceipt;
use cairn_spec::time::Instant;
use serde_json::{json, Value};

use super::ExportArguments;

/// Unix seconds as RFC 3339.
pub fn time(seconds: u64) -> String {
    i64::try_from(seconds).map_or_else(
        |_| seconds.to_string(),
        |seconds| Instant::from_unix(seconds, 0).to_rfc3339(),
    )
}

/// A word of a shell command as the shell reads it back.
fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-:=+@,".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// What a verified receipt proves, for people.
pub fn describe_receipt(verified: &VerifiedReceipt) -> String {
    let mut text = format!(
        "the receipt verifies against the policy:\n  \
         leaf {} of log {} (leaf hash {})\n  \
         in its tree of {} leaves with root {}\n",
        verified.index, verified.origin, verified.leaf_hash, verified.tree_size, verified.root
    );
    for (witness, seconds) in &verified.witnesses {
        let _ = writeln!(
            text,
            "  cosigned by witness {witness} at {}",
            time(*seconds)
        );
    }
    for (tsa, at) in &verified.timestamps {
        let _ = writeln!(
            text,
            "  timestamped by {} at {}",
            tsa.as_deref().unwrap_or("a TSA the policy does not name"),
            at.to_rfc3339()
        );
    }
    if verified.unknown_signatures > 0 {
        let _ = writeln!(
            text,
            "  ({} signatures by keys the policy does not know were not checked)",
            verified.unknown_signatures
        );
    }
    text
}

/// What a verified receipt proves, for scripts.
pub fn receipt_json(verified: &VerifiedReceipt) -> Value {
    json!({
        "ok": true,
        "origin": verified.origin,
        "index": verified.index,
        "leaf_hash": verified.leaf_hash.to_base64(),
        "tree_size": verified.tree_size,
        "root": verified.root.to_base64(),
        "witnesses": verified.witnesses.iter().map(|(name, seconds)| {
            json!({"name": name, "cosigned_at": time(*seconds)})
        }).collect::<Vec<_>>(),
        "timestamps": verified.timestamps.iter().map(|(tsa, at)| {
            json!({"tsa": tsa, "time": at.to_rfc3339()})
        }).collect::<Vec<_>>(),
        "unknown_signatures": verified.unknown_signatures,
    })
}

/// The conflict a piece of evidence proves, in a sentence.
pub fn describe_conflict(conflict: &Conflict) -> String {
    match conflict {
        Conflict::SameSizeDifferentRoots {
            origin,
            size,
            roots,
        } => format!(
            "log {origin} signed two different roots for its tree of size {size}: {} and {} \
             (a split view)",
            roots[0], roots[1]
        ),
        Conflict::NotAnExtension {
            origin,
            old_size,
            old_root,
            new_size,
            prefix_root,
        } => format!(
            "log {origin} signed root {old_root} for size {old_size}, but the first {old_size} \
             leaves of its signed tree of size {new_size} have root {prefix_root}: the larger \
             tree does not extend the smaller (a split view)"
        ),
        Conflict::TileMismatch { origin, size, tile } => format!(
            "log {origin} served tile {} that does not belong to its signed tree of size {size}",
            tile.path()
        ),
        Conflict::RootMismatch {
            origin,
            size,
            signed_root,
            computed_root,
        } => format!(
            "log {origin} signed root {signed_root} for size {size}, but the tiles it served \
             give {computed_root}"
        ),
        Conflict::RevokedKeySigned {
            origin,
            size,
            vkey,
            revoked_from,
        } => format!(
            "a checkpoint of log {origin} of size {size} is signed by {vkey}, which the log's key \
             history revoked from size {revoked_from}: the key is compromised"
        ),
        Conflict::IndexOmits {
            origin,
            size,
            leaf_index,
            action,
        } => format!(
            "the completeness index of log {origin} signed at size {size} leaves the event at \
             leaf {leaf_index} out of the list of its action {action:?}"
        ),
        Conflict::IndexInvents {
            origin,
            size,
            leaf_index,
            listed_under,
            action,
        } => format!(
            "the completeness index of log {origin} signed at size {size} lists the leaf \
             {leaf_index} (action {action:?}) under the action {listed_under:?}, or binds \
             another leaf there"
        ),
    }
}

/// The conflict a piece of evidence proves, for scripts.
pub fn conflict_json(conflict: &Conflict) -> Value {
    let mut value = match conflict {
        Conflict::SameSizeDifferentRoots {
            origin,
            size,
            roots,
        } => json!({"conflict": "same-size", "origin": origin, "size": size,
                    "roots": [roots[0].to_base64(), roots[1].to_base64()]}),
        Conflict::NotAnExtension {
            origin,
            old_size,
            old_root,
            new_size,
            prefix_root,
        } => json!({"conflict": "not-an-extension", "origin": origin, "old_size": old_size,
                    "old_root": old_root.to_base64(), "new_size": new_size,
                    "prefix_root": prefix_root.to_base64()}),
        Conflict::TileMismatch { origin, size, tile } => json!({"conflict": "tile-mismatch",
                    "origin": origin, "size": size, "tile": tile.path()}),
        Conflict::RootMismatch {
            origin,
            size,
            signed_root,
            computed_root,
        } => json!({"conflict": "root-mismatch", "origin": origin, "size": size,
                    "signed_root": signed_root.to_base64(),
                    "computed_root": computed_root.to_base64()}),
        Conflict::RevokedKeySigned {
            origin,
            size,
            vkey,
            revoked_from,
        } => json!({"conflict": "revoked-key", "origin": origin, "size": size,
                    "vkey": vkey, "revoked_from": revoked_from}),
        Conflict::IndexOmits {
            origin,
            size,
            leaf_index,
            action,
        } => json!({"conflict": "index-omits", "origin": origin, "size": size,
                    "leaf_index": leaf_index, "action": action}),
        Conflict::IndexInvents {
            origin,
            size,
            leaf_index,
            listed_under,
            action,
        } => json!({"conflict": "index-invents", "origin": origin, "size": size,
                    "leaf_index": leaf_index, "listed_under": listed_under, "action": action}),
    };
    value["ok"] = true.into();
    value["description"] = describe_conflict(conflict).into();
    value
}

/// What a verified export holds, for people; `against` names what it was verified against.
pub fn describe_export(verified: &VerifiedExportV2, against: &str) -> String {
    let complete = complete_events(verified);
    let mut text = format!(
        "the export verifies against {against}:\n  \
         {} events of log {}, {complete} with all their contents (the others erased, or \
         without a payload)\n  \
         each included in its tree of {} leaves with root {}\n",
        verified.events.len(),
        verified.origin,
        verified.tree_size,
        verified.root
    );
    for event in verified.events.iter().filter(|e| !e.contents.is_complete()) {
        let _ = writeln!(text, "  {event}");
    }
    text.push_str(&cairn_monitor::completeness::describe(verified));
    if verified.unchecked_timestamps > 0 {
        let _ = writeln!(
            text,
            "  ({} timestamp tokens and any cosignatures were not checked: verify-export \
             --policy checks them)",
            verified.unchecked_timestamps
        );
    }
    text
}

/// What a verified export holds, for scripts; `trust` is `policy` or `log-key`.
pub fn export_json(verified: &VerifiedExportV2, trust: &str) -> Value {
    json!({
        "ok": true,
        "trust": trust,
        "origin": verified.origin,
        "tree_size": verified.tree_size,
        "root": verified.root.to_base64(),
        "events": verified.events.len(),
        "complete": complete_events(verified),
        "erased": verified
            .events
            .iter()
            .filter(|event| !event.contents.is_complete())
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        "unchecked_timestamps": verified.unchecked_timestamps,
        "completeness": cairn_monitor::completeness::json(verified),
    })
}

/// The events shown with every committed part (a schema 1 event without a payload counts).
fn complete_events(verified: &VerifiedExportV2) -> usize {
    verified
        .events
        .iter()
        .filter(|event| event.contents.is_complete())
        .count()
}

/// The `--out` of the bundle after `cursor`: the same name with the cursor before its
/// extension (an earlier cursor there replaced), so that it is a new file.
fn next_out(out: &Path, cursor: &str) -> String {
    let name = out
        .file_name()
        .map(|name| name.to_string_lossy().into_owned())
        .unwrap_or_else(|| "export.json".to_owned());
    let (stem, extension) = match name.rsplit_once('.') {
        Some((stem, extension)) if !stem.is_empty() => (stem.to_owned(), format!(".{extension}")),
        _ => (name.clone(), String::new()),
    };
    // A cursor this log hands out is `i` and 16 hex digits.
    let stem = match stem.rsplit_once('.') {
        Some((base, last))
            if last.len() == 17
                && last.starts_with('i')
                && last[1..].chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            base.to_owned()
        }
        _ => stem,
    };
    out.with_file_name(format!("{stem}.{cursor}{extension}"))
        .display()
        .to_string()
}

/// The command that fetches the bundle after `cursor`: the same filters, another `--out`.
pub fn next_export_command(arguments: &ExportArguments, cursor: &str) -> String {
    let mut words: Vec<String> = vec![
        "cairn-monitor".into(),
        "export".into(),
        "--log".into(),
        arguments.log.clone(),
        "--log-key".into(),
        arguments.log_key.clone(),
    ];
    let options = [
        ("--from", &arguments.from),
        ("--to", &arguments.to),
        ("--actor", &arguments.actor),
        ("--resource", &arguments.resource),
        ("--action", &arguments.action),
    ];
    for (flag, value) in options {
        if let Some(value) = value {
            words.extend([flag.to_owned(), value.clone()]);
        }
    }
    if let Some(limit) = arguments.limit {
        words.extend(["--limit".to_owned(), limit.to_string()]);
    }
    if let Some(ca_file) = &arguments.ca_file {
        words.extend(["--ca-file".to_owned(), ca_file.display().to_string()]);
    }
    words.extend([
        "--cursor".to_owned(),
        cursor.to_owned(),
        "--out".to_owned(),
        next_out(&arguments.out, cursor),
    ]);
    words
        .iter()
        .map(|word| shell_word(word))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The incidents of a state, for people.
pub fn describe_incidents(incidents: &[Incident], state: &Path) -> String {
    if incidents.is_empty() {
        return "no incidents\n".to_owned();
    }
    let mut text = String::new();
    for incident in incidents {
        let found = if incident.found_at == 0 {
            "at a time not recorded".to_owned()
        } else {
            time(incident.found_at)
        };
        let _ = writeln!(
            text,
            "incident {} of {}: {} found {found}: {}\n  evidence file (in the evidence \
             directory; an audit's is evidence/ in its state): {}",
            incident.id, incident.origin, incident.kind, incident.detail, incident.evidence_file
        );
        match &incident.acknowledged {
            Some(acknowledged) => {
                let _ = writeln!(
                    text,
                    "  acknowledged by {} at {}: {}",
                    acknowledged.by,
                    time(acknowledged.at),
                    acknowledged.reason
                );
            }
            None => {
                let _ = writeln!(
                    text,
                    "  NOT ACKNOWLEDGED: it fails every audit of this log until {}",
                    acknowledge_command(state, incident.id)
                );
            }
        }
    }
    text
}

/// The command that acknowledges incident `id` of the state in `state`.
fn acknowledge_command(state: &Path, id: i64) -> String {
    format!(
        "cairn-monitor acknowledge --state {} {id} --reason '<what was checked and done>'",
        shell_word(&state.display().to_string())
    )
}

/// One log's part of an [`Outcome`].
struct LogOutcome {
    report: PollReport,
    alerts: Vec<ActiveAlert>,
}

/// What one `audit` or `run --once` established for every log it polled.
pub struct Outcome {
    logs: Vec<LogOutcome>,
    state: std::path::PathBuf,
}

impl Outcome {
    /// The outcome of one poll's `reports`, with the alerts active after it.
    pub fn of(reports: Vec<PollReport>, alerter: &Alerter, state: &Path) -> Outcome {
        let logs = reports
            .into_iter()
            .map(|report| LogOutcome {
                alerts: alerter.active(Some(&report.origin)),
                report,
            })
            .collect();
        Outcome {
            logs,
            state: state.to_path_buf(),
        }
    }

    /// 0 when every log's current checkpoint was verified in this run and no alert is
    /// active; 2 when an alert is active (the log misbehaved, or an incident stands); 1
    /// otherwise (a log could not be verified, or there was no log to verify).
    pub fn exit_code(&self) -> u8 {
        if self.logs.iter().any(|log| !log.alerts.is_empty()) {
            2
        } else if self.logs.is_empty() || self.logs.iter().any(|log| log.report.verified.is_none())
        {
            1
        } else {
            0
        }
    }

    /// For people: `verified:` only for what this run verified, and only when all is well.
    pub fn text(&self) -> String {
        let mut text = String::new();
        if self.logs.is_empty() {
            text.push_str("FAILED: no log to verify\n");
        }
        for log in &self.logs {
            let report = &log.report;
            match (&report.verified, log.alerts.is_empty()) {
                (Some(verified), true) => {
                    let how = match verified.grown_from {
                        Some(from) => format!("grown from size {from}"),
                        None => "the checkpoint verified before, its signature and root \
                                 checked again"
                            .to_owned(),
                    };
                    let _ = write!(
                        text,
                        "verified: {} size {} root {} in this run ({how})\n{}",
                        report.origin, verified.size, verified.root, verified.note
                    );
                }
                (Some(verified), false) => {
                    let _ = writeln!(
                        text,
                        "FAILED: {}: its checkpoint of size {} was verified in this run, but \
                         the alerts below are active",
                        report.origin, verified.size
                    );
                }
                (None, _) => {
                    let _ = writeln!(
                        text,
                        "FAILED: {}: not verified in this run: {}",
                        report.origin,
                        report
                            .problem
                            .as_deref()
                            .unwrap_or("no checkpoint verified")
                    );
                    match &report.last_verified {
                        Some(last) => {
                            let _ = writeln!(
                                text,
                                "  (verified before, not checked now: size {} root {}, grown \
                                 {})",
                                last.size,
                                last.root,
                                time(last.grown_at)
                            );
                        }
                        None => text.push_str("  (nothing of this log was ever verified)\n"),
                    }
                }
            }
            for active in &log.alerts {
                let alert = &active.alert;
                let _ = writeln!(
                    text,
                    "ALERT {}: {}: {} (active since {})",
                    alert.kind.name(),
                    alert.origin,
                    alert.detail,
                    time(active.since)
                );
                if let Some(evidence) = &alert.evidence {
                    let _ = writeln!(text, "  evidence: {}", evidence.display());
                }
                if let Some(id) = alert.incident {
                    let _ = writeln!(
                        text,
                        "  incident {id}, kept in the state: every later run fails until {}",
                        acknowledge_command(&self.state, id)
                    );
                }
            }
        }
        text
    }

    /// For scripts.
    pub fn json(&self, seconds: f64) -> Value {
        let logs: Vec<Value> = self
            .logs
            .iter()
            .map(|log| {
                let alerts: Vec<Value> = log
                    .alerts
                    .iter()
                    .map(|active| {
                        let mut value =
                            serde_json::to_value(&active.alert).expect("alerts serialise");
                        value["active_since"] = active.since.into();
                        value
                    })
                    .collect();
                json!({
                    "origin": log.report.origin,
                    "verified": log.report.verified,
                    "problem": log.report.problem,
                    "last_verified": log.report.last_verified,
                    "alerts": alerts,
                })
            })
            .collect();
        json!({
            "ok": self.exit_code() == 0,
            "exit_code": self.exit_code(),
            "logs": logs,
            "seconds": seconds,
        })
    }
}
