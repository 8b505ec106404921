//! `verify-query`: a saved answer of `GET /v1/events?…&proof=true` and its completeness proof,
//! checked offline (`cairn_monitor::completeness::verify_query`).

use std::path::Path;
use std::process::ExitCode;

use cairn_spec::export::ExportTrust;

use super::{log_key, policy, print, read_limited, report};

/// `verify-query`: a saved query answer and its completeness proof.
pub(crate) fn verify_query_file(
    file: &Path,
    policy_file: Option<&Path>,
    vkey: Option<&str>,
    json: bool,
) -> Result<ExitCode, String> {
    let answer = read_limited(file, cairn_monitor::completeness::MAX_ANSWER_BYTES as u64)?;
    let (verified, trust, against) = match (policy_file, vkey) {
        (Some(policy_file), _) => (
            cairn_monitor::completeness::verify_query(
                &answer,
                ExportTrust::Policy(&policy(policy_file)?),
            ),
            "policy",
            "the policy (log key, witness quorum, timestamps)",
        ),
        (None, Some(vkey)) => (
            cairn_monitor::completeness::verify_query(
                &answer,
                ExportTrust::LogKey(&log_key(vkey)?),
            ),
            "log-key",
            "the log's key",
        ),
        (None, None) => return Err("give --policy or --log-key".to_owned()),
    };
    let verified = verified.map_err(|error| format!("the answer does not verify: {error}"))?;
    let mut value = report::export_json(&verified.verified, trust);
    value["next_cursor"] = serde_json::json!(verified.next_cursor);
    let mut text = report::describe_export(&verified.verified, against).replacen(
        "the export verifies",
        "the answer and its proof verify",
        1,
    );
    if let Some(cursor) = &verified.next_cursor {
        text.push_str(&format!(
            "  more events of the value follow: ask again with cursor={cursor}\n"
        ));
    }
    print(json, &value, &text);
    Ok(ExitCode::SUCCESS)
}
