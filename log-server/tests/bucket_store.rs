//! The bucket tree against a real S3 server (`s3s-fs`, started by each test on loopback): the
//! tree conformance suite, a published tree read back over plain HTTP and verified against its
//! signed checkpoint, a conflicting tile refused, and a server killed and restarted.

mod support_s3;

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_log::storage::bucket::{BucketTree, EntryCount};
use cairn_log::storage::conformance::{self, Harness, TreeHarness};
use cairn_log::storage::embedded::{EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::{FailureKind, NewEntry, SequenceStore, StoreError, TreeStore};
use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::merkle::{inclusion_proof, root_from_leaf_hashes, tree_root, verify_inclusion};
use cairn_spec::note::{Ed25519Signer, KeyName};
use cairn_spec::tiles::{
    check_entries_against_tile, decode_entry_bundle, decode_tile, entry_bundles_of_tree,
    TileHashReader, TileSource,
};
use cairn_spec::{tiles::Tile, Hash};
use object_store::signer::Signer;
use object_store::ObjectStoreExt;
use support_s3::S3Server;

/// The bucket tree over a fresh server, with an entry count the suite raises.
struct Bucket {
    server: S3Server,
    entries: Arc<AtomicU64>,
}

impl Bucket {
    fn new() -> Bucket {
        Bucket {
            server: S3Server::start(),
            entries: Arc::new(AtomicU64::new(0)),
        }
    }

    fn count(&self) -> EntryCount {
        let entries = self.entries.clone();
        Arc::new(move || entries.load(Ordering::SeqCst))
    }
}

impl Harness for Bucket {
    type Store = BucketTree;
    fn open(&mut self) -> BucketTree {
        BucketTree::open(self.server.config(), self.count()).expect("the bucket tree opens")
    }
}

impl TreeHarness for Bucket {
    fn justify(&mut self, _store: &BucketTree, entries: u64) {
        self.entries.fetch_max(entries, Ordering::SeqCst);
    }
}

#[test]
fn passes_the_tree_conformance_suite() {
    conformance::tree::run_all(Bucket::new);
}

/// An S3 client of the test's own, to look at and tamper with the bucket.
fn raw_client(server: &S3Server) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_endpoint(server.endpoint())
        .with_bucket_name(support_s3::BUCKET)
        .with_region("us-east-1")
        .with_access_key_id(support_s3::ACCESS_KEY)
        .with_secret_access_key(support_s3::SECRET_KEY)
        .with_allow_http(true)
        .build()
        .expect("an S3 client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

/// Reads objects over plain HTTP, as a mirror would: a GET of a URL the test signs (the server
/// takes no anonymous requests), nothing of the store's code on the way.
struct HttpReader {
    client: object_store::aws::AmazonS3,
    http: reqwest::Client,
    runtime: tokio::runtime::Runtime,
}

impl HttpReader {
    fn get(&self, key: &str) -> Result<Vec<u8>, String> {
        self.runtime.block_on(async {
            let url = self
                .client
                .signed_url(
                    reqwest::Method::GET,
                    &object_store::path::Path::from(key),
                    Duration::from_secs(300),
                )
                .await
                .map_err(|error| error.to_string())?;
            let response = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|error| error.to_string())?;
            if !response.status().is_success() {
                return Err(format!("GET {key}: {}", response.status()));
            }
            Ok(response.bytes().await.map_err(|e| e.to_string())?.to_vec())
        })
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct FetchError(String);

impl TileSource for HttpReader {
    type Error = FetchError;
    fn read_tile(&self, tile: Tile) -> Result<Cow<'_, [u8]>, FetchError> {
        // A partial tile whose tile is full by now is gone: fall back to the full one.
        self.get(&tile.path())
            .or_else(|_| self.get(&tile.to_full().path()))
            .map(Cow::Owned)
            .map_err(FetchError)
    }
}

fn leaf(index: u64) -> Vec<u8> {
    format!("bucket leaf {index}").into_bytes()
}

/// The tree's hashes at each tile level, as the integrator stores them.
fn levels(leaf_hashes: &[Hash]) -> Vec<Vec<Hash>> {
    let mut levels = vec![leaf_hashes.to_vec()];
    while levels.last().expect("a level").len() >= 256 {
        let below = levels.last().expect("a level");
        let next = below.chunks_exact(256).map(root_from_leaf_hashes).collect();
        levels.push(next);
    }
    levels
}

#[test]
fn a_published_tree_is_read_back_over_http_and_verified_against_its_checkpoint() {
    const SIZE: u64 = 70_000;
    let server = S3Server::start();
    let dir = tempfile::tempdir().expect("temporary directory");
    let sequence = Arc::new(EmbeddedStore::open(EmbeddedConfig::new(dir.path())).expect("store"));
    let leaf_hashes: Vec<Hash> = (0..SIZE).map(|index| Hash::of_leaf(&leaf(index))).collect();
    let levels = levels(&leaf_hashes);
    let count: EntryCount = {
        let sequence = sequence.clone();
        Arc::new(move || sequence.entry_count())
    };
    let signer =
        Ed25519Signer::from_seed(KeyName::new("example.com/bucket").expect("name"), [3; 32]);
    let note = |size: u64| {
        Checkpoint {
            origin: "example.com/bucket".to_owned(),
            size,
            root: root_from_leaf_hashes(&leaf_hashes[..size as usize]),
            extensions: Vec::new(),
        }
        .sign(&signer)
        .expect("sign")
        .to_bytes()
        .expect("note bytes")
    };
    let tree = BucketTree::open(server.config(), count.clone()).expect("open");
    // Grown as the integrator grows it: batches of leaves, the levels they complete, a sync.
    let mut written = vec![0usize; levels.len()];
    for end in [300u64, 9_000, 40_000, SIZE] {
        let start = sequence.entry_count();
        let entries: Vec<NewEntry> = (start..end).map(|i| NewEntry::new(leaf(i), None)).collect();
        for chunk in entries.chunks(10_000) {
            let at = sequence.entry_count();
            sequence.append_entries(at, chunk).expect("append entries");
        }
        for (level, hashes) in levels.iter().enumerate() {
            let have = (end >> (8 * level)) as usize;
            if have > written[level] {
                tree.append_hashes(
                    level as u8,
                    written[level] as u64,
                    &hashes[written[level]..have],
                )
                .expect("append hashes");
                written[level] = have;
            }
        }
        tree.sync_hashes().expect("sync");
        if end == 300 || end == SIZE {
            tree.publish(end, &note(end), sequence.as_ref())
                .expect("publish");
        }
    }
    assert!(matches!(
        tree.publish(300, &note(300), sequence.as_ref()),
        Err(StoreError::CheckpointGoesBack { .. })
    ));
    assert_eq!(tree.published_size(), SIZE);
    drop(tree);

    let reader = HttpReader {
        client: raw_client(&server),
        http: reqwest::Client::new(),
        runtime: runtime(),
    };
    let verifier = signer.verifier();
    let checkpoint = Checkpoint::open(&reader.get("checkpoint").expect("checkpoint"), &verifier)
        .expect("a checkpoint the log signed")
        .checkpoint;
    assert_eq!(checkpoint.size, SIZE);
    let tiles = TileHashReader::new(SIZE, checkpoint.root, &reader).expect("reader");
    assert_eq!(
        tree_root(SIZE, &tiles).expect("the root from the tiles"),
        checkpoint.root
    );
    for index in [0, 255, 256, 65_535, 65_536, 69_999, 12_345] {
        let proof = inclusion_proof(index, SIZE, &tiles).expect("a proof from the tiles");
        verify_inclusion(
            index,
            SIZE,
            &Hash::of_leaf(&leaf(index)),
            &proof,
            &checkpoint.root,
        )
        .expect("the proof verifies against the signed root");
    }
    // Every entry bundle matches the level-0 tile, itself checked against the root above.
    for bundle in entry_bundles_of_tree(SIZE) {
        let data = reader.get(&bundle.path()).expect("bundle");
        let entries = decode_entry_bundle(bundle, &data).expect("a bundle");
        let tile = bundle.leaf_tile();
        let hashes = decode_tile(
            tile,
            &reader.read_tile(tile).expect("tile")[..usize::from(tile.width()) * 32],
        )
        .expect("a tile");
        check_entries_against_tile(&entries, &hashes).expect("entries match their leaf hashes");
    }
    // The bundle partial at 300 is gone once the bundle is full; the tile partials too.
    assert!(reader.get("tile/entries/001.p/44").is_err());
    assert!(reader.get("tile/0/001.p/44").is_err());
    assert!(reader.get("tile/0/273.p/112").is_ok());

    // Reopened, the store knows every level's length and what is published.
    let tree = BucketTree::open(server.config(), count).expect("reopen");
    for (level, hashes) in levels.iter().enumerate() {
        assert_eq!(
            tree.hash_count(level as u8).expect("count"),
            hashes.len() as u64
        );
    }
    assert_eq!(tree.read_hashes(0, 0, SIZE).expect("read"), leaf_hashes);
    assert_eq!(tree.published_size(), SIZE);
}

#[test]
fn a_different_full_tile_in_the_bucket_is_refused_and_left_alone() {
    let mut bucket = Bucket::new();
    let hashes: Vec<Hash> = (0..600).map(|i| Hash::of_leaf(&leaf(i))).collect();
    let stranger = vec![7u8; 256 * 32];
    let raw = raw_client(&bucket.server);
    let runtime = runtime();
    let put = |key: &str, data: Vec<u8>| {
        runtime
            .block_on(raw.put(&object_store::path::Path::from(key), data.into()))
            .expect("a write of the test's own");
    };
    // Tile 0 as the log would write it (written before, by this log: no conflict), and tile 1
    // as another writer did.
    put(
        "tile/0/000",
        cairn_spec::tiles::encode_tile(&hashes[..256]).expect("tile"),
    );
    put("tile/0/001", stranger.clone());
    let tree = bucket.open();
    bucket.justify(&tree, 600);
    tree.append_hashes(0, 0, &hashes).expect("append");
    let error = tree
        .sync_hashes()
        .expect_err("a conflicting tile is refused");
    assert_eq!(error.kind(), FailureKind::Corrupt, "{error}");
    let message = error.to_string();
    assert!(
        message.contains("tile/0/001") && message.contains("another writer or a fork"),
        "{message}"
    );
    assert_eq!(
        std::fs::read(bucket.server.object_file("tile/0/001")).expect("the tile"),
        stranger,
        "the tile found is never overwritten"
    );
    // Tile 0 counts as written; the refusal is the same every time.
    assert!(tree.sync_hashes().is_err());
    assert_eq!(tree.read_hashes(0, 0, 600).expect("read"), hashes);
}

#[test]
fn a_server_killed_mid_run_is_a_clear_bounded_error_and_the_store_resumes() {
    let mut bucket = Bucket::new();
    let tree = bucket.open();
    bucket.justify(&tree, 5_000);
    let hashes: Vec<Hash> = (0..5_000).map(|i| Hash::of_leaf(&leaf(i))).collect();
    tree.append_hashes(0, 0, &hashes[..1_000]).expect("append");
    tree.sync_hashes().expect("sync");

    bucket.server.kill();
    tree.append_hashes(0, 1_000, &hashes[1_000..3_000])
        .expect("appending is in memory");
    let started = Instant::now();
    let error = tree.sync_hashes().expect_err("no server, no sync");
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "a dead server failed the sync only after {:?}",
        started.elapsed()
    );
    assert!(error.is_unavailable(), "{error}");
    assert!(error.to_string().contains("s3://"), "{error}");
    assert!(
        BucketTree::open(bucket.server.config(), bucket.count()).is_err(),
        "opening needs the bucket"
    );
    // Appended hashes are still served, and the level is unchanged.
    assert_eq!(tree.hash_count(0).expect("count"), 3_000);
    assert_eq!(
        tree.read_hashes(0, 2_000, 10).expect("read"),
        hashes[2_000..2_010]
    );

    bucket.server.restart();
    tree.sync_hashes()
        .expect("the sync goes through once the server is back");
    tree.append_hashes(0, 3_000, &hashes[3_000..])
        .expect("append");
    tree.sync_hashes().expect("sync");
    drop(tree);
    let tree = bucket.open();
    assert_eq!(tree.hash_count(0).expect("count"), 5_000);
    assert_eq!(tree.read_hashes(0, 0, 5_000).expect("read"), hashes);
}

/// The server killed while a sync of many tiles is in flight: the sync ends (either way) in
/// bounded time without a panic, and after a restart the store, and a store opened anew over
/// what the interrupted sync left, hold every hash.
#[test]
fn a_server_killed_during_a_sync_leaves_a_store_that_resumes() {
    let mut bucket = Bucket::new();
    let total = 256 * 200 + 77;
    bucket.entries.store(total, Ordering::SeqCst);
    let hashes: Vec<Hash> = (0..total).map(|i| Hash::of_leaf(&leaf(i))).collect();
    let tree = Arc::new(bucket.open());
    tree.append_hashes(0, 0, &hashes).expect("append");
    let syncing = {
        let tree = tree.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            (tree.sync_hashes(), started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(150));
    bucket.server.kill();
    let (result, took) = syncing.join().expect("the sync does not panic");
    eprintln!("the sync interrupted by the kill: {result:?} after {took:?}");
    assert!(took < Duration::from_secs(120), "the sync took {took:?}");
    if let Err(error) = &result {
        assert!(error.is_unavailable(), "{error}");
    }
    bucket.server.restart();
    tree.sync_hashes()
        .expect("the sync goes through once the server is back");
    assert_eq!(tree.read_hashes(0, 0, total).expect("read"), hashes);
    drop(tree);
    let tree = bucket.open();
    assert_eq!(tree.hash_count(0).expect("count"), total);
    assert_eq!(tree.read_hashes(0, 0, total).expect("read"), hashes);

    // A store opened over an interrupted sync finds the end of what was written and writes
    // the rest again, finding the tiles already there.
    let mut fresh = Bucket::new();
    fresh.entries.store(total, Ordering::SeqCst);
    let tree = Arc::new(fresh.open());
    tree.append_hashes(0, 0, &hashes).expect("append");
    let syncing = {
        let tree = tree.clone();
        std::thread::spawn(move || tree.sync_hashes())
    };
    std::thread::sleep(Duration::from_millis(150));
    fresh.server.kill();
    let _ = syncing.join().expect("the sync does not panic");
    drop(tree);
    fresh.server.restart();
    let tree = fresh.open();
    let found = tree.hash_count(0).expect("count");
    assert!(
        found == total || (found < total && found.is_multiple_of(256)),
        "{found}"
    );
    assert_eq!(
        tree.read_hashes(0, 0, found).expect("read"),
        hashes[..found as usize]
    );
    tree.append_hashes(0, found, &hashes[found as usize..])
        .expect("append the rest");
    tree.sync_hashes().expect("sync the rest");
    drop(tree);
    assert_eq!(fresh.open().read_hashes(0, 0, total).expect("read"), hashes);
}

/// The server calls the store from blocking tasks of its own runtime (`spawn_blocking`), and
/// may drop it from an async task: neither may trip over the store's runtime.
#[test]
fn works_from_a_blocking_task_of_another_runtime_and_drops_in_an_async_one() {
    let mut bucket = Bucket::new();
    bucket.entries.store(1_000, Ordering::SeqCst);
    let tree = Arc::new(bucket.open());
    let hashes: Vec<Hash> = (0..1_000).map(|i| Hash::of_leaf(&leaf(i))).collect();
    let server_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime");
    server_runtime.block_on(async {
        let blocking = {
            let (tree, hashes) = (tree.clone(), hashes.clone());
            tokio::task::spawn_blocking(move || {
                tree.append_hashes(0, 0, &hashes)?;
                tree.sync_hashes()?;
                tree.read_hashes(0, 0, 1_000)
            })
        };
        let read = blocking
            .await
            .expect("no panic")
            .expect("the calls succeed");
        assert_eq!(read, hashes);
        tokio::spawn(async move { drop(tree) })
            .await
            .expect("dropping the store in an async task does not panic");
    });
}
