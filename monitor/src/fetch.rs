//! A small HTTP fetcher for the read side of C2SP tlog-tiles and tlog-witness: every request has
//! a timeout and every body a size limit, enforced while it streams in.

use std::time::Duration;

/// Largest checkpoint note accepted from anyone.
pub const MAX_CHECKPOINT_BYTES: usize = 64 * 1024;
/// Largest tile (256 hashes).
pub const MAX_TILE_BYTES: usize = cairn_spec::tiles::FULL_TILE_BYTES;
/// Largest entry bundle (256 entries of at most 64 KiB with their length prefixes).
pub const MAX_BUNDLE_BYTES: usize = 256 * (2 + cairn_spec::tiles::MAX_ENTRY_LEN);

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Transport failure or timeout.
    #[error("GET {url}: {source}")]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        source: reqwest::Error,
    },
    /// A status other than 200.
    #[error("GET {url}: status {status}")]
    Status {
        /// The URL.
        url: String,
        /// The status.
        status: u16,
    },
    /// The body is over the limit.
    #[error("GET {url}: body over the limit of {limit} bytes")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: usize,
    },
}

/// An HTTP client with a base URL.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
}

impl Fetcher {
    /// A fetcher with a per-request timeout.
    pub fn new(timeout: Duration) -> Fetcher {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .expect("a client without custom TLS roots builds");
        Fetcher { client }
    }

    /// The underlying client (for POSTs such as webhooks).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// GETs `url` and returns its body, refusing bodies over `limit` bytes.
    pub async fn get(&self, url: &str, limit: usize) -> Result<Vec<u8>, FetchError> {
        let transport = |source| FetchError::Transport {
            url: url.to_owned(),
            source,
        };
        let mut response = self.client.get(url).send().await.map_err(transport)?;
        if response.status() != reqwest::StatusCode::OK {
            return Err(FetchError::Status {
                url: url.to_owned(),
                status: response.status().as_u16(),
            });
        }
        let too_large = || FetchError::TooLarge {
            url: url.to_owned(),
            limit,
        };
        if response
            .content_length()
            .is_some_and(|length| length > limit as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Joins a base URL and a path with exactly one slash.
pub fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}
