//! The bucket as the rest of the module sees it: blocking calls over `object_store`'s S3 client
//! on a runtime of the store's own, each bounded in time and size, every failure a
//! [`StoreError`], and the one write the module makes: idempotent and verified.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3Builder, S3ConditionalPut};
use object_store::path::Path as ObjectPath;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload,
    RetryConfig,
};

use super::BucketConfig;
use crate::storage::StoreError;

/// Whether a write may replace what is already at its path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum WriteMode {
    /// Immutable: a tile or bundle. Bytes already there must be these bytes (a second writer or
    /// a fork otherwise), and the object is never replaced.
    Once,
    /// Mutable: the checkpoint object.
    Replace,
}

/// The bucket, with a runtime of its own for the blocking callers of the storage traits.
pub(super) struct Bucket {
    store: Arc<dyn ObjectStore>,
    /// `None` only while dropping: it is shut down in the background, as a runtime cannot be
    /// dropped from inside another runtime's task.
    runtime: Option<tokio::runtime::Runtime>,
    bucket: String,
    operation_timeout: Duration,
    retry: RetryConfig,
    pub(super) concurrency: usize,
}

impl Drop for Bucket {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Bucket {
    pub(super) fn connect(config: &BucketConfig) -> Result<Bucket, StoreError> {
        config.check()?;
        let client = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_timeout(config.request_timeout)
            .with_connect_timeout(config.connect_timeout)
            .with_pool_idle_timeout(Duration::from_secs(30));
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: config.initial_backoff,
                max_backoff: config.max_backoff,
                base: 2.0,
            },
            max_retries: config.max_retries,
            retry_timeout: config.retry_timeout,
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(&config.endpoint)
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(config.allow_http)
            .with_conditional_put(S3ConditionalPut::ETagMatch)
            .with_client_options(client)
            .with_retry(retry.clone())
            .build()
            .map_err(|error| StoreError::BadConfig(format!("bucket {}: {error}", config.bucket)))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("cairn-bucket")
            .enable_all()
            .build()
            .map_err(|source| {
                StoreError::io("start a runtime for", config.bucket.clone(), source)
            })?;
        let store: Arc<dyn ObjectStore> = match config.prefix.trim_matches('/') {
            "" => Arc::new(store),
            prefix => Arc::new(object_store::prefix::PrefixStore::new(store, prefix)),
        };
        Ok(Bucket {
            store,
            runtime: Some(runtime),
            bucket: config.bucket.clone(),
            operation_timeout: config.operation_timeout,
            retry,
            concurrency: config.concurrency,
        })
    }

    /// Where an object is, for errors: `s3://<bucket>/<key>`.
    pub(super) fn url(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("s3://{}/{key}", self.bucket))
    }

    /// Runs `future` to its end on the bucket's runtime, from a blocking thread.
    fn block_on<T>(&self, future: impl Future<Output = T>) -> T {
        self.runtime
            .as_ref()
            .expect("the runtime lives as long as the bucket")
            .block_on(future)
    }

    /// Runs one operation per item, at most `concurrency` at a time, started in the items'
    /// order, and returns each one's result in that order. After a failure no further one is
    /// started (`None`): an item is started only once every item `concurrency` places before it
    /// has ended, so what a failure leaves written lies within `concurrency` places of the
    /// first failure.
    pub(super) fn for_each<I, T, F, Fut>(
        &self,
        items: Vec<I>,
        operation: F,
    ) -> Vec<Option<Result<T, StoreError>>>
    where
        I: Send + 'static,
        T: Send + 'static,
        F: Fn(Arc<Ops>, I) -> Fut,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let ops = Arc::new(self.ops());
        let concurrency = self.concurrency;
        self.block_on(async move {
            let count = items.len();
            let mut results: Vec<Option<Result<T, StoreError>>> =
                (0..count).map(|_| None).collect();
            let mut running = tokio::task::JoinSet::new();
            let mut items = items.into_iter().enumerate();
            let mut failed = false;
            loop {
                while !failed && running.len() < concurrency {
                    let Some((position, item)) = items.next() else {
                        break;
                    };
                    let job = operation(ops.clone(), item);
                    running.spawn(async move { (position, job.await) });
                }
                let Some(joined) = running.join_next().await else {
                    break;
                };
                match joined {
                    Ok((position, result)) => {
                        failed |= result.is_err();
                        results[position] = Some(result);
                    }
                    // A request task that panicked (it does not): its item stays `None`.
                    Err(_) => failed = true,
                }
            }
            results
        })
    }

    /// The operations, for one call.
    pub(super) fn call<T>(
        &self,
        operation: impl AsyncFnOnce(&Ops) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let ops = self.ops();
        self.block_on(async move { operation(&ops).await })
    }

    fn ops(&self) -> Ops {
        Ops {
            store: self.store.clone(),
            bucket: self.bucket.clone(),
            timeout: self.operation_timeout,
            retry: self.retry.clone(),
        }
    }
}

/// The bucket's operations, for async code on its runtime. Each is one request (with the
/// client's retries and backoff inside), bounded by the operation timeout.
pub(super) struct Ops {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    timeout: Duration,
    retry: RetryConfig,
}

impl Ops {
    pub(super) fn url(&self, key: &str) -> PathBuf {
        PathBuf::from(format!("s3://{}/{key}", self.bucket))
    }

    fn failed(
        &self,
        operation: &'static str,
        key: &str,
        error: impl std::fmt::Display,
    ) -> StoreError {
        StoreError::io(
            operation,
            self.url(key),
            std::io::Error::other(error.to_string()),
        )
    }

    async fn bounded<T>(
        &self,
        operation: &'static str,
        key: &str,
        future: impl Future<Output = T>,
    ) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, future)
            .await
            .map_err(|_| {
                StoreError::io(
                    operation,
                    self.url(key),
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("no answer from the bucket within {:?}", self.timeout),
                    ),
                )
            })
    }

    /// The object at `key`, or `None` if there is none. An object over `max_bytes` is refused
    /// before its body is read.
    pub(super) async fn get(
        &self,
        key: &str,
        max_bytes: u64,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        let path = ObjectPath::from(key);
        self.bounded("GET", key, async {
            let result = match self.store.get(&path).await {
                Ok(result) => result,
                Err(object_store::Error::NotFound { .. }) => return Ok(None),
                Err(error) => return Err(self.failed("GET", key, error)),
            };
            if result.meta.size > max_bytes {
                return Err(StoreError::corrupt(
                    self.url(key),
                    0,
                    format!(
                        "the object is {} bytes, more than the {max_bytes} it can be",
                        result.meta.size
                    ),
                ));
            }
            let bytes = result
                .bytes()
                .await
                .map_err(|error| self.failed("GET", key, error))?;
            Ok(Some(bytes.to_vec()))
        })
        .await?
    }

    /// Whether there is an object at `key`.
    pub(super) async fn exists(&self, key: &str) -> Result<bool, StoreError> {
        let path = ObjectPath::from(key);
        self.bounded("HEAD", key, async {
            match self.store.head(&path).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::NotFound { .. }) => Ok(false),
                Err(error) => Err(self.failed("HEAD", key, error)),
            }
        })
        .await?
    }

    /// The keys of the objects directly under `prefix` (a "directory", without its final `/`).
    /// At most `limit` are expected; more is an error rather than an unbounded answer.
    pub(super) async fn list(&self, prefix: &str, limit: usize) -> Result<Vec<String>, StoreError> {
        let path = ObjectPath::from(prefix);
        let listed = self
            .bounded("LIST", prefix, self.store.list_with_delimiter(Some(&path)))
            .await?
            .map_err(|error| self.failed("LIST", prefix, error))?;
        if listed.objects.len() > limit {
            return Err(StoreError::corrupt(
                self.url(prefix),
                0,
                format!(
                    "{} objects under this prefix, at most {limit} expected",
                    listed.objects.len()
                ),
            ));
        }
        Ok(listed
            .objects
            .into_iter()
            .map(|object| object.location.to_string())
            .collect())
    }

    /// Deletes the object at `key` (no object there is fine).
    pub(super) async fn delete(&self, key: &str) -> Result<(), StoreError> {
        let path = ObjectPath::from(key);
        self.bounded("DELETE", key, async {
            match self.store.delete(&path).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(error) => Err(self.failed("DELETE", key, error)),
            }
        })
        .await?
    }

    /// Writes `data` at `key` and reads it back.
    ///
    /// [`WriteMode::Once`]: whatever is at `key` is read first; the same bytes mean the write
    /// was made before (done), other bytes are refused as [`StoreError::Corrupt`] (a second
    /// writer, or a fork: never overwritten). Only then is it written, with `If-None-Match: *`,
    /// which a server that honours it turns into a refusal if another writer got there in
    /// between (the bytes found are then compared the same way). Servers that ignore the header
    /// (Garage) leave that window open: the single writer is the lease's job, and this check
    /// and the read-back catch a second writer everywhere else.
    ///
    /// Either mode reads the object back and compares it byte for byte, so `Ok` means the
    /// bucket serves exactly `data` at `key` (read-after-write is consistent on S3 and the
    /// servers Cairn supports).
    ///
    /// The client retries its requests by itself, except a conditional `PUT` whose request
    /// failed on the way (it cannot know whether it was applied): that one is retried here,
    /// with the same backoff, by doing the whole write again, which is idempotent.
    pub(super) async fn write_verified(
        &self,
        key: &str,
        data: Vec<u8>,
        mode: WriteMode,
    ) -> Result<(), StoreError> {
        let mut pause = self.retry.backoff.init_backoff;
        let mut retries = 0;
        loop {
            match self.write_once(key, &data, mode).await {
                Err(Failed::Put(_)) if retries < self.retry.max_retries => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.retry.backoff.max_backoff);
                    retries += 1;
                }
                Err(Failed::Put(error) | Failed::Other(error)) => return Err(error),
                Ok(()) => return Ok(()),
            }
        }
    }

    async fn write_once(&self, key: &str, data: &[u8], mode: WriteMode) -> Result<(), Failed> {
        let max = data.len() as u64;
        if mode == WriteMode::Once {
            if let Some(found) = self.get(key, max.max(1) * 2).await? {
                return Ok(self.same_bytes(key, data, &found, "already in the bucket")?);
            }
        }
        let path = ObjectPath::from(key);
        let options = PutOptions {
            mode: match mode {
                WriteMode::Once => PutMode::Create,
                WriteMode::Replace => PutMode::Overwrite,
            },
            ..PutOptions::default()
        };
        let payload = PutPayload::from(data.to_vec());
        let put = self
            .bounded("PUT", key, self.store.put_opts(&path, payload, options))
            .await
            .map_err(Failed::Put)?;
        match put {
            Ok(_) => {}
            Err(object_store::Error::AlreadyExists { .. }) => {
                let found = self.get(key, max.max(1) * 2).await?;
                let Some(found) = found else {
                    return Err(Failed::Put(self.failed(
                        "PUT",
                        key,
                        "the bucket refused the write as the object exists, then had none",
                    )));
                };
                return Ok(self.same_bytes(
                    key,
                    data,
                    &found,
                    "written by another writer meanwhile",
                )?);
            }
            Err(error) => return Err(Failed::Put(self.failed("PUT", key, error))),
        }
        match self.get(key, max.max(1) * 2).await? {
            Some(found) => Ok(self.same_bytes(key, data, &found, "read back after writing")?),
            None => Err(Failed::Other(self.failed(
                "verify",
                key,
                "the object just written is not in the bucket when read back",
            ))),
        }
    }

    fn same_bytes(
        &self,
        key: &str,
        wanted: &[u8],
        found: &[u8],
        when: &str,
    ) -> Result<(), StoreError> {
        if wanted == found {
            return Ok(());
        }
        let offset = wanted
            .iter()
            .zip(found)
            .position(|(a, b)| a != b)
            .unwrap_or(wanted.len().min(found.len()));
        Err(StoreError::corrupt(
            self.url(key),
            offset as u64,
            format!(
                "different bytes ({} found, {} meant) {when}: another writer or a fork of the \
                 log; refusing to overwrite it",
                found.len(),
                wanted.len()
            ),
        ))
    }
}

/// How one write failed: in its `PUT` (which may be tried again) or elsewhere.
enum Failed {
    Put(StoreError),
    Other(StoreError),
}

impl From<StoreError> for Failed {
    fn from(error: StoreError) -> Failed {
        Failed::Other(error)
    }
}
