//! One running log: store, sequencer, integrator, publisher and HTTP API wired together, with a
//! graceful stop (stop accepting, finish in-flight batches, sign a final checkpoint).
//!
//! With the scaled backend this process is one front-end of several: it also keeps asking for
//! the integrator lease ([`LeaseKeeper`]), integrates and asks the witnesses only while it holds
//! it ([`publisher::Role::Shared`]), publishes the checkpoints it stores to the bucket
//! ([`publication`]), and gives the lease up when it stops.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use crate::config::ServerSettings;
pub use crate::key_history::LogSigner;

use crate::completeness::CompletenessIndex;
use crate::config::ScaledSettings;
use crate::events::auth::{Credentials, Principals};
use crate::events::{retention, EventStore, Events, Principal, Role};
use crate::health::{Health, Status, Writers};
use crate::http::{ApiLimits, AppState, ReceiptWait};
use crate::integrator::{Integrator, IntegratorConfig};
use crate::metrics::Metrics;
use crate::publisher::{self, publication, Published, PublisherConfig, TokenRounds};
use crate::sequencer::{Sequencer, SequencerConfig};
use crate::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use crate::storage::objects::ObjectDir;
use crate::storage::scaled::lease::LeaseKeeper;
use crate::storage::scaled::ScaledStore;
use crate::storage::Coordination;
use crate::storage::{Backend, LogStore, StoreLimits};

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The store.
    #[error("store: {0}")]
    Store(#[from] crate::storage::StoreError),
    /// The sequencer.
    #[error("sequencer: {0}")]
    Sequencer(#[from] crate::sequencer::SequencerError),
    /// The integrator.
    #[error("integrator: {0}")]
    Integrator(#[from] crate::integrator::IntegratorError),
    /// The events database.
    #[error("events: {0}")]
    Events(String),
    /// The network.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
}

/// A running server.
pub struct RunningServer {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The principals in service, replaceable while it runs (a reload).
    pub principals: Arc<Principals>,
    stop: watch::Sender<bool>,
    http: tokio::task::JoinHandle<()>,
    sequencer: Arc<Sequencer>,
    integrator: Integrator,
    publisher: tokio::task::JoinHandle<()>,
    object_writer: Option<tokio::task::JoinHandle<()>>,
    maintenance: tokio::task::JoinHandle<()>,
    events: Arc<Events>,
    scaled: Option<ScaledTasks>,
}

/// What a front-end of the scaled backend runs beside the rest: the lease keeper and the
/// bucket publication, stopped after the integrator's last checkpoint.
struct ScaledTasks {
    stop: watch::Sender<bool>,
    lease: tokio::task::JoinHandle<()>,
    publication: tokio::task::JoinHandle<()>,
}

/// Opens the scaled backend and takes the lease if nobody holds it, so that a lone front-end
/// integrates from its first checkpoint on.
async fn open_scaled(
    scaled: &ScaledSettings,
    limits: StoreLimits,
    listen: SocketAddr,
) -> Result<(Arc<ScaledStore>, Arc<LeaseKeeper>), ServerError> {
    let (mut postgres, bucket) = (scaled.postgres.clone(), scaled.bucket.clone());
    postgres.limits = limits;
    let store = Arc::new(
        tokio::task::spawn_blocking(move || ScaledStore::open(postgres, bucket))
            .await
            .map_err(|e| {
                crate::storage::StoreError::BadConfig(format!("open task failed: {e}"))
            })??,
    );
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into());
    let holder = format!("{host} pid {} listening on {listen}", std::process::id());
    let keeper = Arc::new(LeaseKeeper::new(store.clone(), holder, scaled.lease_term)?);
    let asking = keeper.clone();
    match tokio::task::spawn_blocking(move || asking.ask()).await {
        Ok(Ok(_)) => {}
        Ok(Err(error)) => {
            tracing::warn!(%error, "could not ask for the integrator lease; asking again soon")
        }
        Err(error) => tracing::warn!(%error, "the lease task failed"),
    }
    Ok((store, keeper))
}

/// The scaled backend's store and lease keeper, when this process is one of its front-ends.
type ScaledParts = (Arc<ScaledStore>, Arc<LeaseKeeper>);

/// Opens the configured backend: the store, and with the scaled backend its parts as well.
async fn open_store(
    settings: &ServerSettings,
) -> Result<(Arc<dyn LogStore>, Option<ScaledParts>), ServerError> {
    let limits = StoreLimits {
        max_leaf_bytes: settings.max_leaf_bytes,
        ..StoreLimits::default()
    };
    match settings.storage {
        Backend::Scaled => {
            let config = settings.scaled.as_ref().ok_or_else(|| {
                crate::storage::StoreError::BadConfig(
                    "storage = \"scaled\" needs the [postgres] and [bucket] tables".into(),
                )
            })?;
            let (store, keeper) = open_scaled(config, limits, settings.listen).await?;
            Ok((store.clone() as Arc<dyn LogStore>, Some((store, keeper))))
        }
        Backend::Embedded => {
            let mut store_config = EmbeddedConfig::new(&settings.data_dir);
            store_config.limits = limits;
            let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(store_config))
                .await
                .map_err(|e| {
                    crate::storage::StoreError::BadConfig(format!("open task failed: {e}"))
                })??;
            Ok((Arc::new(store) as Arc<dyn LogStore>, None))
        }
    }
}

/// Starts the sequencer. Starting asks the store for its end, which may be a call to a
/// database: off the runtime's workers.
async fn start_sequencer(
    store: &Arc<dyn LogStore>,
    config: &SequencerConfig,
) -> Result<Arc<Sequencer>, ServerError> {
    let (store, config) = (store.clone(), config.clone());
    Ok(Arc::new(
        tokio::task::spawn_blocking(move || Sequencer::start(store, config))
            .await
            .map_err(|e| {
                crate::storage::StoreError::BadConfig(format!("start task failed: {e}"))
            })??,
    ))
}

/// Opens the events database (with the scaled backend, the front-ends' shared one) and the
/// events beside the log. Opening indexes whatever the log holds that the events index missed
/// (a crash between sequencing and writing the index out) before queries are served.
async fn open_events(
    settings: &ServerSettings,
    store: &Arc<dyn LogStore>,
    sequencer: &Arc<Sequencer>,
    shared: bool,
) -> Result<Arc<Events>, ServerError> {
    let dir = settings.data_dir.join("events");
    let (log, config) = (store.clone(), settings.events.store.clone());
    let postgres = settings
        .scaled
        .as_ref()
        .filter(|_| shared)
        .map(|scaled| scaled.postgres.clone());
    let event_store = tokio::task::spawn_blocking(move || match postgres {
        Some(postgres) => EventStore::open_shared(&dir, config, log, postgres),
        None => EventStore::open(&dir, config, log),
    })
    .await
    .map_err(|e| ServerError::Events(format!("open task failed: {e}")))?
    .map_err(|e| ServerError::Events(e.to_string()))?;
    Ok(Arc::new(
        Events::new(event_store, sequencer.clone(), store.clone())
            .with_self_audit(settings.events.self_audit),
    ))
}

/// Opens the completeness index, if the log keeps one: before the integrator, whose
/// checkpoints carry its root.
async fn open_completeness(
    settings: &ServerSettings,
    events: &Events,
) -> Result<Option<Arc<CompletenessIndex>>, ServerError> {
    if !settings.events.completeness_index {
        return Ok(None);
    }
    let dir = settings.data_dir.join("events");
    let event_store = events.store.clone();
    let index = tokio::task::spawn_blocking(move || CompletenessIndex::open(&dir, event_store))
        .await
        .map_err(|e| ServerError::Events(format!("open task failed: {e}")))?
        .map_err(|e| ServerError::Events(e.to_string()))?;
    Ok(Some(index))
}

/// What the publisher's start gives the rest: its task, the published checkpoints, the
/// timestamp rounds receipts wait for, and the metrics it keeps.
struct Publishing {
    task: tokio::task::JoinHandle<()>,
    published: watch::Receiver<Option<Published>>,
    token_rounds: Arc<TokenRounds>,
    metrics: Arc<Metrics>,
}

/// Starts the publisher over the integrator's checkpoints (alone, or under the lease of the
/// scaled backend), after restoring the checkpoint published before a restart, and keeps the
/// tree-size gauge current.
async fn start_publisher(
    settings: &ServerSettings,
    store: &Arc<dyn LogStore>,
    integrator: &Integrator,
    scaled: Option<&ScaledParts>,
) -> Result<Publishing, ServerError> {
    let metrics = Arc::new(Metrics::default());
    publisher::check_witness_names(&settings.witnesses)?;
    let role = match scaled {
        Some((_, keeper)) => publisher::Role::Shared {
            lease: keeper.clone() as Arc<dyn Coordination>,
            poll: settings.checkpoint_interval,
        },
        None => publisher::Role::Alone,
    };
    let config = PublisherConfig {
        witnesses: settings.witnesses.clone(),
        quorum: settings.quorum,
        request_timeout: settings.witness_timeout,
        roots: settings.witness_roots.clone(),
        max_backoff: Duration::from_secs(30),
    };
    let restored = {
        let (store, config) = (store.clone(), config.clone());
        tokio::task::spawn_blocking(move || publisher::restore(store.as_ref(), &config))
            .await
            .map_err(|e| {
                crate::storage::StoreError::BadConfig(format!("restore task failed: {e}"))
            })??
    };
    if let Some(restored) = &restored {
        metrics.set_published(restored.size);
    }
    let token_rounds = Arc::new(TokenRounds::new(restored.as_ref().map(|p| p.size)));
    let (published_sender, published) = watch::channel::<Option<Published>>(restored);
    let mut signed = integrator.checkpoints();
    let sizes = metrics.clone();
    // Keep the tree-size gauge current.
    let mut watched = integrator.checkpoints();
    tokio::spawn(async move {
        while watched.changed().await.is_ok() {
            if let Some(c) = watched.borrow_and_update().as_ref() {
                sizes.set_tree_size(c.size);
            }
        }
    });
    signed.mark_changed();
    let task = tokio::spawn(publisher::run(
        store.clone(),
        signed,
        config,
        (published_sender, token_rounds.clone()),
        metrics.clone(),
        role,
    ));
    Ok(Publishing {
        task,
        published,
        token_rounds,
        metrics,
    })
}

/// The principals in service: the configured ones, and each producer of the `producers` list
/// not among them, with role producer.
fn principals_of(settings: &ServerSettings) -> Arc<Principals> {
    let mut tokens: HashMap<[u8; 32], Principal> = settings.events.principals.clone();
    for (digest, name) in &settings.producers {
        tokens.entry(*digest).or_insert_with(|| Principal {
            name: name.clone(),
            role: Role::Producer,
        });
    }
    Arc::new(Principals::new(&Credentials {
        tokens: tokens.into_iter().collect(),
        client_certificates: settings.access.client_certificates.clone(),
        rate_limits: settings.access.rate_limits.clone(),
    }))
}

/// Starts what a front-end of the scaled backend runs beside the rest: the bucket publication
/// of the published checkpoints, and the lease keeper.
fn spawn_scaled_tasks(
    (scaled_store, keeper): ScaledParts,
    publishing: &Publishing,
    objects_status: &Arc<Status>,
    interval: Duration,
) -> ScaledTasks {
    let (stop, stopped) = watch::channel(false);
    let publication = tokio::spawn(publication::run(
        scaled_store,
        keeper.clone(),
        publishing.published.clone(),
        objects_status.clone(),
        publishing.metrics.clone(),
        interval,
        stopped.clone(),
    ));
    let lease = tokio::spawn(keeper.run(stopped));
    ScaledTasks {
        stop,
        lease,
        publication,
    }
}

/// Starts the writer of the published tree as C2SP tlog-tiles files, if a directory for them
/// is configured.
async fn start_object_writer(
    settings: &ServerSettings,
    store: &Arc<dyn LogStore>,
    published: &watch::Receiver<Option<Published>>,
    objects_status: &Arc<Status>,
) -> Result<Option<tokio::task::JoinHandle<()>>, ServerError> {
    let Some(dir) = settings.objects_dir.clone() else {
        return Ok(None);
    };
    let objects = tokio::task::spawn_blocking(move || ObjectDir::open(&dir))
        .await
        .map_err(|e| crate::storage::StoreError::BadConfig(format!("open task failed: {e}")))??;
    Ok(Some(tokio::spawn(publisher::write_objects(
        store.clone(),
        Arc::new(objects),
        published.clone(),
        objects_status.clone(),
    ))))
}

/// Binds the listening socket and serves `app` on it until `stopped` says stop; the address
/// it listens on (the configured port may be 0).
async fn listen(
    settings: &ServerSettings,
    app: axum::Router,
    mut stopped: watch::Receiver<bool>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServerError> {
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: settings.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| ServerError::Listen {
            addr: settings.listen,
            source,
        })?;
    let http = tokio::spawn(cairn_edge::serve(
        listener,
        app,
        settings.edge.clone(),
        async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        },
    ));
    Ok((addr, http))
}

/// The parts on a leaf's path, started in this order: the sequencer over the store, the events
/// beside the log, the completeness index, and the integrator over all of them.
struct Pipeline {
    store: Arc<dyn LogStore>,
    sequencer: Arc<Sequencer>,
    events: Arc<Events>,
    index: Option<Arc<CompletenessIndex>>,
    integrator: Integrator,
}

/// Starts the pipeline over `store` (with the scaled backend, integrating under its lease).
async fn start_pipeline(
    settings: &ServerSettings,
    store: Arc<dyn LogStore>,
    scaled: Option<&ScaledParts>,
) -> Result<Pipeline, ServerError> {
    let sequencer = start_sequencer(&store, &settings.sequencer).await?;
    let events = open_events(settings, &store, &sequencer, scaled.is_some()).await?;
    let index = open_completeness(settings, &events).await?;
    let coordination = scaled.map(|(_, keeper)| keeper.clone() as Arc<dyn Coordination>);
    let integrator = Integrator::start_coordinated(
        store.clone(),
        sequencer.clone(),
        settings.signer.clone(),
        IntegratorConfig {
            checkpoint_interval: settings.checkpoint_interval,
            index: index.clone(),
        },
        coordination,
    )
    .await?;
    Ok(Pipeline {
        store,
        sequencer,
        events,
        index,
        integrator,
    })
}

/// Starts what runs in the background until `stop`: each key history statement logged as a
/// leaf ([`crate::key_history`]), and the retention of payloads, whose task is returned (the
/// stop waits for it).
fn spawn_housekeeping(
    settings: &ServerSettings,
    pipeline: &Pipeline,
    metrics: &Metrics,
    stop: &watch::Sender<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(crate::key_history::log_statements(
        settings.signer.clone(),
        pipeline.sequencer.clone(),
        stop.subscribe(),
    ));
    tokio::spawn(retention::run(
        pipeline.events.clone(),
        settings.events.retention.clone(),
        settings.events.maintenance_interval,
        metrics.retention_runs.clone(),
        stop.subscribe(),
    ))
}

/// What every handler shares, with the readiness read from the running parts.
fn app_state(
    settings: &ServerSettings,
    pipeline: &Pipeline,
    publishing: &Publishing,
    principals: &Arc<Principals>,
    objects_status: Arc<Status>,
) -> Arc<AppState> {
    let health = Arc::new(Health::new(
        pipeline.store.clone(),
        pipeline.sequencer.clone(),
        Writers {
            integrator: pipeline.integrator.status(),
            signing: pipeline.integrator.signing_status(),
            objects: objects_status,
        },
        pipeline.integrator.checkpoints(),
        publishing.published.clone(),
        Health::grace_for(settings.checkpoint_interval, settings.witness_timeout),
    ));
    Arc::new(AppState {
        store: pipeline.store.clone(),
        sequencer: pipeline.sequencer.clone(),
        published: publishing.published.clone(),
        principals: principals.clone(),
        events: pipeline.events.clone(),
        completeness: pipeline.index.clone(),
        signer: settings.signer.clone(),
        quorum: settings.quorum,
        limits: ApiLimits {
            max_leaf_bytes: settings.max_leaf_bytes as usize,
            max_batch_body_bytes: settings.max_batch_body_bytes,
            checkpoint_wait: settings.checkpoint_wait,
            max_batch_events: settings.events.max_batch_events,
        },
        receipts: ReceiptWait {
            policy: settings.receipt_policy.clone(),
            tokens: publishing.token_rounds.clone(),
        },
        metrics: publishing.metrics.clone(),
        health,
    })
}

impl RunningServer {
    /// Opens the store, starts every part and listens.
    pub async fn start(settings: ServerSettings) -> Result<RunningServer, ServerError> {
        let (store, scaled) = open_store(&settings).await?;
        let pipeline = start_pipeline(&settings, store, scaled.as_ref()).await?;
        let publishing = start_publisher(
            &settings,
            &pipeline.store,
            &pipeline.integrator,
            scaled.as_ref(),
        )
        .await?;
        let principals = principals_of(&settings);
        let (stop, stopped) = watch::channel(false);
        let maintenance = spawn_housekeeping(&settings, &pipeline, &publishing.metrics, &stop);
        let objects_status = Arc::new(Status::default());
        let scaled = scaled.map(|parts| {
            spawn_scaled_tasks(
                parts,
                &publishing,
                &objects_status,
                settings.checkpoint_interval,
            )
        });
        let object_writer = start_object_writer(
            &settings,
            &pipeline.store,
            &publishing.published,
            &objects_status,
        )
        .await?;
        let state = app_state(
            &settings,
            &pipeline,
            &publishing,
            &principals,
            objects_status,
        );
        let app = crate::routes::router_with(state, settings.ui.clone());
        let (addr, http) = listen(&settings, app, stopped).await?;
        tracing::info!(%addr, "cairn-log listening");
        Ok(RunningServer {
            addr,
            principals,
            stop,
            http,
            sequencer: pipeline.sequencer,
            integrator: pipeline.integrator,
            publisher: publishing.task,
            maintenance,
            events: pipeline.events,
            object_writer,
            scaled,
        })
    }

    /// Stops accepting, lets in-flight requests finish, commits what was admitted, signs a final
    /// checkpoint and returns.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        self.stop.send_replace(true);
        let _ = self.http.await;
        let _ = self.maintenance.await;
        self.sequencer.shutdown().await?;
        // Every event is sequenced and indexed now: write the index out, so that the next
        // start has nothing to read back from the log.
        let events = self.events.clone();
        let durable = self.events.log_size();
        tokio::task::spawn_blocking(move || events.store.close(durable))
            .await
            .map_err(|e| ServerError::Events(format!("closing task failed: {e}")))?
            .map_err(|e| ServerError::Events(e.to_string()))?;
        self.integrator.shutdown().await?;
        self.publisher.abort();
        // Wait for the task to be gone, so that it no longer holds the store.
        let _ = self.publisher.await;
        // The publisher is gone, so is its channel: the object writer finishes what it writes
        // and returns.
        if let Some(object_writer) = self.object_writer {
            let _ = object_writer.await;
        }
        // The last checkpoint is stored: publish it, then give the lease up for another.
        if let Some(scaled) = self.scaled {
            scaled.stop.send_replace(true);
            let _ = scaled.publication.await;
            let _ = scaled.lease.await;
        }
        Ok(())
    }
}
