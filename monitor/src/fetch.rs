//! The read side of C2SP tlog-tiles and tlog-witness: a small HTTP fetcher (every request has a
//! timeout and every body a size limit, enforced while it streams in), and, in [`source`],
//! [`LogSource`], where a log's checkpoint, tiles and entry bundles are read from: its HTTP
//! read API, or a local directory in the same layout, as any static mirror of the log holds it.

mod source;

pub use source::{read_file, BadLocation, BufferPool, Level0Batch, LogSource};

use std::path::PathBuf;
use std::time::Duration;

/// Largest checkpoint note accepted from anyone.
pub const MAX_CHECKPOINT_BYTES: usize = 64 * 1024;
/// Largest tile (256 hashes).
pub const MAX_TILE_BYTES: usize = cairn_spec::tiles::FULL_TILE_BYTES;
/// Largest entry bundle (256 entries of at most 64 KiB with their length prefixes).
pub const MAX_BUNDLE_BYTES: usize = 256 * (2 + cairn_spec::tiles::MAX_ENTRY_LEN);
/// How many tiles (with their bundles) of one batch are fetched over HTTP at once (the pipeline
/// fetches a few batches at once).
const CONCURRENT_FETCHES: usize = 32;
/// How many threads read one batch of a local directory's tiles (the pipeline reads a few
/// batches at once): many more than the cores, since a read of a file that is not in the page
/// cache blocks its thread on the disk, and the disk is fastest with many reads in flight.
const READER_THREADS: usize = 8;

/// Why a fetch failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Transport failure or timeout.
    #[error("GET {url}: {}", causes(source))]
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
    /// A file of a local log directory could not be read (missing, unreadable).
    #[error("{}: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// An error with the chain of its causes, which reqwest keeps apart ("error sending request"
/// says nothing of the refused connection beneath it).
pub(crate) fn causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        let inner_text = inner.to_string();
        if !text.contains(&inner_text) {
            text.push_str(": ");
            text.push_str(&inner_text);
        }
        cause = inner.source();
    }
    text
}

/// An HTTP client with a base URL.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    /// A bearer token sent with every GET (a reader's, for a log whose entry bundles are
    /// private); only the fetcher of that log's read API carries it.
    bearer: Option<std::sync::Arc<str>>,
}

impl Fetcher {
    /// A fetcher with a per-request timeout.
    pub fn new(timeout: Duration) -> Fetcher {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .expect("a client without custom TLS roots builds");
        Fetcher {
            client,
            bearer: None,
        }
    }

    /// The same fetcher, sending `token` (if any) as a bearer token with every GET.
    pub fn with_bearer(mut self, token: Option<String>) -> Fetcher {
        self.bearer = token.map(std::sync::Arc::from);
        self
    }

    /// A fetcher with a per-request timeout that also trusts `roots` (a private CA's
    /// certificates) for https:// URLs.
    pub fn with_roots(
        timeout: Duration,
        roots: &[reqwest::Certificate],
    ) -> Result<Fetcher, reqwest::Error> {
        let mut builder = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout);
        for root in roots {
            builder = builder.add_root_certificate(root.clone());
        }
        Ok(Fetcher {
            client: builder.build()?,
            bearer: None,
        })
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
        let mut request = self.client.get(url);
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        let mut response = request.send().await.map_err(transport)?;
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
        // Sized once from the announced length (bounded above), so that a body is copied once.
        let announced = response.content_length().unwrap_or(0);
        let mut body = Vec::with_capacity(usize::try_from(announced).unwrap_or(limit).min(limit));
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
