//! Event exports (`cairn.export/v1` or `/v2`, spec/docs/export.md) fetched from a log's
//! `GET /v1/export` for an auditor, who then checks them offline with `verify-export`
//! (`cairn_spec::export::AnyExport`). Nothing fetched is trusted: the bundle is parsed and
//! verified against the log's key before it is written.

use cairn_spec::export::{AnyExport, ExportTrust, VerifiedExportV2};
use cairn_spec::note::Ed25519Verifier;

/// The largest export read from a log, in bytes (the format's own limit).
pub const MAX_EXPORT_BYTES: usize = 256 << 20;

/// Which events to export: the filters of `GET /v1/export`.
#[derive(Debug, Clone, Default)]
pub struct ExportQuery {
    /// Events received at or after this RFC 3339 time.
    pub from: Option<String>,
    /// Events received before this RFC 3339 time.
    pub to: Option<String>,
    /// Only this actor's events.
    pub actor: Option<String>,
    /// Only events on this resource.
    pub resource: Option<String>,
    /// Only this action.
    pub action: Option<String>,
    /// Continue after this cursor (from an earlier export).
    pub cursor: Option<String>,
    /// At most this many events (the log allows 1 to 10,000).
    pub limit: Option<u32>,
}

/// One fetched and verified export.
#[derive(Debug)]
pub struct FetchedExport {
    /// The bundle as the log served it.
    pub json: Vec<u8>,
    /// What it proves, checked against the log's key.
    pub verified: VerifiedExportV2,
    /// The cursor of the next bundle when more events match.
    pub next_cursor: Option<String>,
}

/// Why an export could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum ExportFetchError {
    /// The request failed.
    #[error("GET {url}: {detail}")]
    Http {
        /// The URL.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// The log answered with an error.
    #[error("GET {url} answered {status}: {body}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
        /// The start of the answer.
        body: String,
    },
    /// The answer is larger than [`MAX_EXPORT_BYTES`].
    #[error("the export is larger than {MAX_EXPORT_BYTES} bytes")]
    TooLarge,
    /// The answer is not an export that verifies with the log's key.
    #[error("the log's export does not verify: {0}")]
    Invalid(String),
}

/// Fetches one export bundle with a reader's token and verifies it against the log's key.
pub async fn fetch_export(
    client: &reqwest::Client,
    log_url: &str,
    token: &str,
    query: &ExportQuery,
    log_key: &Ed25519Verifier,
) -> Result<FetchedExport, ExportFetchError> {
    let url = format!("{}/v1/export", log_url.trim_end_matches('/'));
    let mut pairs: Vec<(&str, String)> = Vec::new();
    for (name, value) in [
        ("from", &query.from),
        ("to", &query.to),
        ("actor", &query.actor),
        ("resource", &query.resource),
        ("action", &query.action),
        ("cursor", &query.cursor),
    ] {
        if let Some(value) = value {
            pairs.push((name, value.clone()));
        }
    }
    if let Some(limit) = query.limit {
        pairs.push(("limit", limit.to_string()));
    }
    let http = |detail: reqwest::Error| ExportFetchError::Http {
        url: url.clone(),
        detail: crate::fetch::causes(&detail),
    };
    let mut response = client
        .get(&url)
        .query(&pairs)
        .bearer_auth(token)
        .send()
        .await
        .map_err(http)?;
    let status = response.status().as_u16();
    let next_cursor = response
        .headers()
        .get("cairn-next-cursor")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let mut json = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(http)? {
        if json.len() + chunk.len() > MAX_EXPORT_BYTES {
            return Err(ExportFetchError::TooLarge);
        }
        json.extend_from_slice(&chunk);
    }
    if status != 200 {
        return Err(ExportFetchError::Status {
            url,
            status,
            body: String::from_utf8_lossy(&json[..json.len().min(300)]).into_owned(),
        });
    }
    let verified = AnyExport::from_json(&json)
        .and_then(|bundle| bundle.verify(ExportTrust::LogKey(log_key)))
        .map_err(|e| ExportFetchError::Invalid(e.to_string()))?;
    Ok(FetchedExport {
        json,
        verified,
        next_cursor,
    })
}
