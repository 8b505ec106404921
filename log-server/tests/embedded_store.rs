//! The embedded store: the shared conformance suites (sequence, tree, state, the rules between
//! them, and the events index), then what only a directory on disk can show: torn writes,
//! damaged pages, lost files, and the dedup index's watermark.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_log::events::conformance as events_conformance;
use cairn_log::events::index::{EventIndex, IndexConfig};
use cairn_log::storage::conformance::{self, Harness, StateHarness, TreeHarness};
use cairn_log::storage::embedded::{DedupConfig, EmbeddedConfig, EmbeddedStore};
use cairn_log::storage::{
    DedupKey, Hash, NewEntry, SequenceStore, StateStore, StoreError, StoreLimits, StoredCheckpoint,
    StoredPayload, TreeStore,
};

struct Embedded {
    _dir: tempfile::TempDir,
    config: EmbeddedConfig,
}

impl Harness for Embedded {
    type Store = EmbeddedStore;
    fn open(&mut self) -> EmbeddedStore {
        EmbeddedStore::open(self.config.clone()).expect("the embedded store opens")
    }
}

impl TreeHarness for Embedded {
    fn justify(&mut self, store: &EmbeddedStore, entries: u64) {
        conformance::justify_in(store, entries);
    }
}

impl StateHarness for Embedded {
    fn cover(&mut self, store: &EmbeddedStore, size: u64) {
        conformance::cover_in(store, size);
    }
}

/// The embedded events index in a directory of its own; small tables, so that the suite's
/// events are written out as runs and merged.
struct EmbeddedEvents {
    dir: tempfile::TempDir,
    config: IndexConfig,
}

impl Harness for EmbeddedEvents {
    type Store = EventIndex;
    fn open(&mut self) -> EventIndex {
        EventIndex::open(self.dir.path(), self.config.clone(), u64::MAX)
            .expect("the embedded events index opens")
    }
}

fn small_limits() -> StoreLimits {
    StoreLimits {
        max_leaf_bytes: 4096,
        max_payload_bytes: 8192,
        max_batch_entries: 1000,
        max_batch_bytes: 256 * 1024,
        max_read_count: 10_000,
    }
}

fn harness(tiny_files: bool) -> Embedded {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = EmbeddedConfig::new(dir.path().join("log"));
    config.limits = small_limits();
    if tiny_files {
        // Many segments, many dedup runs and merges, within a small test.
        config.segment_max_bytes = 16 * 1024;
        config.dedup = DedupConfig {
            table_keys: 300,
            max_runs: 3,
            initial_filter_keys: 1024,
        };
    }
    Embedded { _dir: dir, config }
}

/// Every suite of a log store, on fresh stores from `fresh`.
fn run_log_suites(fresh: impl Fn() -> Embedded) {
    conformance::sequence::run_all(&fresh);
    conformance::tree::run_all(&fresh);
    conformance::state::run_all(&fresh);
    conformance::log::run_all(&fresh);
}

#[test]
fn passes_the_conformance_suites() {
    run_log_suites(|| harness(false));
}

#[test]
fn passes_the_conformance_suites_with_tiny_segments_and_dedup_runs() {
    run_log_suites(|| harness(true));
}

#[test]
fn the_events_index_passes_its_conformance_suite() {
    for (table_events, max_runs) in [(32 * 1024, 12), (40, 3)] {
        events_conformance::run_all(|| EmbeddedEvents {
            dir: tempfile::tempdir().expect("temporary directory"),
            config: IndexConfig {
                table_events,
                max_runs,
            },
        });
    }
}

/// A store whose segment files end where their batches end (no zeros written ahead), so that
/// a test can cut and damage them by their length.
fn config_in(dir: &Path) -> EmbeddedConfig {
    let mut config = EmbeddedConfig::new(dir);
    config.limits = small_limits();
    config.preallocate_bytes = 0;
    config
}

/// The same store, with zeros written ahead of the active segment's batches.
fn preallocating_config_in(dir: &Path) -> EmbeddedConfig {
    let mut config = config_in(dir);
    config.preallocate_bytes = 64 * 1024;
    config
}

fn leaf(index: u64) -> Vec<u8> {
    format!("leaf number {index} with some padding to look like an event").into_bytes()
}

/// One entry in three carries a payload, so that every torn or damaged write below also falls
/// on payloads.
fn payload(index: u64) -> Option<Vec<u8>> {
    index
        .is_multiple_of(3)
        .then(|| format!("<payload of entry {index}>").into_bytes())
}

fn append(store: &EmbeddedStore, range: std::ops::Range<u64>) {
    let entries: Vec<NewEntry> = range
        .clone()
        .map(|index| NewEntry::new(leaf(index), None).with_payload(payload(index)))
        .collect();
    store.append_entries(range.start, &entries).expect("append");
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir.join("segments"))
        .expect("segments directory")
        .map(|item| item.expect("listing").path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "seg"))
        .collect();
    files.sort();
    files
}

fn assert_log(store: &EmbeddedStore, count: u64) {
    assert_eq!(store.entry_count(), count);
    let entries = store
        .read_entries(0, count)
        .expect("every entry reads back");
    for (index, entry) in entries.iter().enumerate() {
        assert_eq!(entry.leaf, leaf(index as u64));
        assert_eq!(
            store
                .read_payload(index as u64)
                .expect("payloads read back"),
            payload(index as u64).map(StoredPayload::Held)
        );
    }
}

/// Writes three synced batches and a fourth, then reopens with the segment cut at every byte of
/// the fourth batch: the first three batches are always there, the fourth only when whole.
#[test]
fn recovers_from_a_torn_last_batch_at_every_offset() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config_in(dir.path());
    let before_last = {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        append(&store, 0..5);
        append(&store, 5..6);
        append(&store, 6..10);
        let segment = &segment_files(dir.path())[0];
        let before_last = fs::metadata(segment).expect("stat").len();
        append(&store, 10..13);
        store.close().expect("close");
        before_last
    };
    let segment = segment_files(dir.path())[0].clone();
    let whole = fs::read(&segment).expect("read segment");
    for cut in before_last..=whole.len() as u64 {
        fs::write(&segment, &whole[..cut as usize]).expect("cut the segment");
        let store =
            EmbeddedStore::open(config.clone()).expect("a torn tail never stops the store opening");
        let expected = if cut == whole.len() as u64 { 13 } else { 10 };
        assert_log(&store, expected);
        assert_eq!(
            fs::metadata(&segment).expect("stat").len(),
            if expected == 13 { cut } else { before_last }
        );
        // The store goes on appending after recovery.
        append(&store, expected..expected + 1);
        assert_log(&store, expected + 1);
    }
}

/// Pages of the last batch that never reached the disk read back as zeros or as garbage.
#[test]
fn recovers_from_a_last_batch_with_lost_or_damaged_pages() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config_in(dir.path());
    let before_last = {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        append(&store, 0..10);
        let before_last = fs::metadata(&segment_files(dir.path())[0])
            .expect("stat")
            .len() as usize;
        append(&store, 10..20);
        before_last
    };
    let segment = segment_files(dir.path())[0].clone();
    let whole = fs::read(&segment).expect("read segment");
    for position in (before_last..whole.len()).step_by(7) {
        for damage in [0x00u8, 0xff, 0x5a] {
            let mut bytes = whole.clone();
            let end = (position + 40).min(bytes.len());
            bytes[position..end].fill(damage);
            if bytes == whole {
                continue;
            }
            fs::write(&segment, &bytes).expect("damage the segment");
            let store = EmbeddedStore::open(config.clone())
                .expect("damage in the last batch is a torn write");
            assert_log(&store, 10);
        }
    }
}

/// The zeros written ahead of the active segment's batches are where the log ends, not a torn
/// batch: reopening keeps every entry and the zeros, and appending goes on into them.
#[test]
fn a_zero_filled_tail_is_the_end_of_the_log() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = preallocating_config_in(dir.path());
    {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        append(&store, 0..10);
        append(&store, 10..20);
    }
    let segment = segment_files(dir.path())[0].clone();
    let length = fs::metadata(&segment).expect("stat").len();
    assert!(
        length >= 64 * 1024,
        "the active segment was zero-filled ahead: {length} bytes"
    );
    for round in 0..3u64 {
        let store = EmbeddedStore::open(config.clone()).expect("reopen");
        assert_log(&store, 20 + round * 10);
        assert_eq!(
            fs::metadata(&segment).expect("stat").len(),
            length,
            "reopening neither cuts nor grows the zero-filled segment"
        );
        append(&store, 20 + round * 10..30 + round * 10);
    }
    assert_log(&EmbeddedStore::open(config).expect("reopen"), 50);
}

/// A torn last batch inside a zero-filled segment: the same segment bytes as a store that
/// grows its files, followed by zeros. Cut at every byte of the last batch, and damaged pages,
/// the first batches always survive and the store goes on appending.
#[test]
fn recovers_from_a_torn_last_batch_in_a_zero_filled_segment() {
    let plain = tempfile::tempdir().expect("temporary directory");
    let (before_last, whole) = {
        let store = EmbeddedStore::open(config_in(plain.path())).expect("open");
        append(&store, 0..5);
        append(&store, 5..10);
        let segment = segment_files(plain.path())[0].clone();
        let before_last = fs::metadata(&segment).expect("stat").len() as usize;
        append(&store, 10..13);
        (before_last, fs::read(&segment).expect("read segment"))
    };
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = preallocating_config_in(dir.path());
    {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        append(&store, 0..13);
    }
    let segment = segment_files(dir.path())[0].clone();
    let length = fs::metadata(&segment).expect("stat").len() as usize;
    let with_zeros = |bytes: &[u8]| {
        let mut file = bytes.to_vec();
        file.resize(length, 0);
        file
    };
    let mut cases: Vec<(Vec<u8>, u64)> = (before_last..whole.len())
        .map(|cut| (with_zeros(&whole[..cut]), 10))
        .collect();
    for position in (before_last..whole.len()).step_by(5) {
        for damage in [0x00u8, 0xff, 0x5a] {
            let mut bytes = whole.clone();
            let end = (position + 40).min(bytes.len());
            bytes[position..end].fill(damage);
            if bytes != whole {
                cases.push((with_zeros(&bytes), 10));
            }
        }
    }
    cases.push((with_zeros(&whole), 13));
    for (bytes, expected) in cases {
        fs::write(&segment, &bytes).expect("write the segment");
        let store =
            EmbeddedStore::open(config.clone()).expect("a torn tail never stops the store opening");
        assert_log(&store, expected);
        append(&store, expected..expected + 1);
        drop(store);
        assert_log(
            &EmbeddedStore::open(config.clone()).expect("reopen"),
            expected + 1,
        );
    }
}

/// A segment sealed while zeros were written ahead of its batches (its size limit was lowered
/// since) ends where its batches end: it opens as sealed, its offset index valid.
#[test]
fn sealing_cuts_the_zeros_written_ahead() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = preallocating_config_in(dir.path());
    config.segment_max_bytes = 1 << 20;
    {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        append(&store, 0..60);
    }
    let first = segment_files(dir.path())[0].clone();
    assert!(fs::metadata(&first).expect("stat").len() >= 64 * 1024);
    config.segment_max_bytes = 2048;
    {
        let store = EmbeddedStore::open(config.clone()).expect("open with smaller segments");
        append(&store, 60..70);
        assert_eq!(
            segment_files(dir.path()).len(),
            2,
            "the full segment was sealed"
        );
    }
    let bytes = fs::read(&first).expect("read the sealed segment");
    assert!(
        !bytes.ends_with(&[0; 16]),
        "the sealed segment still ends in zeros"
    );
    assert!(first.with_extension("idx").exists());
    assert_log(&EmbeddedStore::open(config).expect("reopen"), 70);
}

/// After a seal, the next segment is the spare made in the background: zero-filled in full from
/// its first batch on. A spare left by an earlier process is thrown away, whatever it holds.
#[test]
fn new_segments_start_zero_filled_from_the_spare() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = preallocating_config_in(dir.path());
    config.segment_max_bytes = 64 * 1024;
    config.preallocate_bytes = 1024;
    let spare = dir.path().join("segments").join("spare.tmp");
    fs::create_dir_all(spare.parent().expect("segments")).expect("segments directory");
    fs::write(&spare, b"left by an earlier process").expect("a stale spare");
    let store = EmbeddedStore::open(config.clone()).expect("open");
    assert!(!spare.exists(), "the stale spare was thrown away");
    // A spare is asked for once the active segment is half full.
    let mut next = 0;
    while fs::read(&segment_files(dir.path())[0])
        .expect("read")
        .iter()
        .rposition(|&byte| byte != 0)
        .unwrap_or(0)
        < 32 * 1024
    {
        append(&store, next..next + 10);
        next += 10;
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    while fs::metadata(&spare).map_or(true, |meta| meta.len() < 64 * 1024) {
        assert!(Instant::now() < deadline, "no spare segment was made");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Made, synced, and marked ready a moment after it reached its length.
    std::thread::sleep(Duration::from_millis(500));
    while segment_files(dir.path()).len() < 2 {
        append(&store, next..next + 10);
        next += 10;
    }
    let second = segment_files(dir.path())[1].clone();
    assert_eq!(
        fs::metadata(&second).expect("stat").len(),
        64 * 1024,
        "the new segment is the spare, zero-filled to the segment size"
    );
    drop(store);
    assert_log(&EmbeddedStore::open(config).expect("reopen"), next);
}

#[test]
fn refuses_to_open_when_an_earlier_batch_is_damaged() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config_in(dir.path());
    {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        append(&store, 0..10);
        append(&store, 10..20);
        append(&store, 20..30);
    }
    let segment = segment_files(dir.path())[0].clone();
    let whole = fs::read(&segment).expect("read segment");
    // Damage inside the first and second batches, the last one is intact.
    for position in [0, 3, 30, 100, whole.len() / 2] {
        let mut bytes = whole.clone();
        bytes[position] ^= 0x40;
        fs::write(&segment, &bytes).expect("damage the segment");
        match EmbeddedStore::open(config.clone()) {
            Err(StoreError::Corrupt { path, .. }) => assert_eq!(path, segment),
            Err(other) => panic!("expected Corrupt for damage at {position}, got {other}"),
            Ok(_) => {
                panic!("a store with damage at byte {position} of an acknowledged batch opened")
            }
        }
    }
    fs::write(&segment, &whole).expect("repair");
    assert_log(&EmbeddedStore::open(config).expect("open"), 30);
}

/// Where `needle` lies in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
        .expect("the bytes are in the segment")
}

/// A held payload that does not match its checksum: in the last batch it was torn (the batch
/// is cut); in an earlier, acknowledged batch it was damaged (the store refuses to open).
/// Erased payloads, zeros where their bytes were, are neither.
#[test]
fn payloads_are_checked_on_recovery_and_erasures_are_not_taken_for_torn_writes() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config_in(dir.path());
    {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        append(&store, 0..10);
        append(&store, 10..20);
    }
    let segment = segment_files(dir.path())[0].clone();
    let whole = fs::read(&segment).expect("read segment");
    for index in [18u64, 12, 3] {
        let mut bytes = whole.clone();
        let at = find(&whole, &payload(index).expect("a payload"));
        bytes[at + 3] ^= 0x01;
        fs::write(&segment, &bytes).expect("damage a payload");
        match EmbeddedStore::open(config.clone()) {
            Ok(store) if index >= 10 => assert_log(&store, 10),
            Ok(_) => panic!("a damaged payload of an acknowledged batch went unnoticed"),
            Err(StoreError::Corrupt { detail, .. }) if index < 10 => {
                assert!(detail.contains("payload"), "{detail}");
            }
            Err(error) => panic!("a damaged payload of entry {index}: {error}"),
        }
    }
    fs::write(&segment, &whole).expect("repair");
    {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        assert_log(&store, 20);
        for index in [3, 18] {
            assert!(store.erase_payload(index).expect("erase"));
        }
    }
    let erased = fs::read(&segment).expect("read segment");
    for index in [3, 18] {
        let text = payload(index).expect("a payload");
        assert!(
            erased.windows(text.len()).all(|window| window != text),
            "the bytes of payload {index} are gone from the segment"
        );
    }
    // A crash after the erased state was synced and before the zeros were: the bytes are still
    // there, the payload is erased all the same, and erasing again destroys them.
    let mut interrupted = erased.clone();
    let at = find(&whole, &payload(18).expect("a payload"));
    let text = payload(18).expect("a payload");
    interrupted[at..at + text.len()].copy_from_slice(&text);
    fs::write(&segment, &interrupted).expect("an interrupted erasure");
    let store = EmbeddedStore::open(config.clone()).expect("an erased payload is not a torn write");
    assert_eq!(store.entry_count(), 20);
    for index in [3, 18] {
        assert_eq!(
            store.read_payload(index).expect("read"),
            Some(StoredPayload::Erased)
        );
    }
    assert_eq!(
        store.read_payload(6).expect("read"),
        payload(6).map(StoredPayload::Held)
    );
    assert!(!store.erase_payload(18).expect("erase again"));
    drop(store);
    assert_eq!(fs::read(&segment).expect("read segment"), erased);
}

/// Small segments, zero-filled ahead: sealing must cut the zeros off.
fn rotating_config(dir: &Path) -> EmbeddedConfig {
    let mut config = config_in(dir);
    config.segment_max_bytes = 2048;
    config.preallocate_bytes = 1024;
    config
}

#[test]
fn sealed_segments_are_checked_and_their_offset_index_rebuilt() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = rotating_config(dir.path());
    {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        for batch in 0..40 {
            append(&store, batch * 10..batch * 10 + 10);
        }
        assert_log(&store, 400);
    }
    let segments = segment_files(dir.path());
    assert!(
        segments.len() > 3,
        "the test needs several segments, found {}",
        segments.len()
    );
    for sealed in &segments[..segments.len() - 1] {
        let bytes = fs::read(sealed).expect("read a sealed segment");
        assert!(
            bytes.len() <= 4096 && !bytes.ends_with(&[0; 16]),
            "{} was sealed with the zeros written ahead still in it",
            sealed.display()
        );
    }
    // A lost offset index is rebuilt from the segment.
    let seal = segments[1].with_extension("idx");
    fs::remove_file(&seal).expect("remove an offset index");
    assert_log(
        &EmbeddedStore::open(config.clone()).expect("open without an offset index"),
        400,
    );
    assert!(seal.exists(), "the offset index was written again");
    // A damaged sealed segment refuses to open once its index has to be rebuilt...
    let whole = fs::read(&segments[1]).expect("read");
    let mut bytes = whole.clone();
    bytes[whole.len() - 10] ^= 1;
    fs::write(&segments[1], &bytes).expect("damage");
    fs::remove_file(&seal).expect("remove the offset index");
    assert!(matches!(
        EmbeddedStore::open(config.clone()),
        Err(StoreError::Corrupt { .. })
    ));
    // ...and otherwise fails the read that reaches the damage, naming the file.
    write_seal_back(&config, &segments[1], &whole, &bytes);
    let store = EmbeddedStore::open(config.clone()).expect("open with the index");
    match store.read_entries(0, 400) {
        Err(StoreError::Corrupt { path, .. }) => assert_eq!(path, segments[1]),
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

/// Restores the segment to rebuild its offset index, then damages it again. (Opening reads
/// every entry past the dedup watermark, so a store that was not closed cleanly would refuse
/// to open already.)
fn write_seal_back(config: &EmbeddedConfig, segment: &Path, whole: &[u8], damaged: &[u8]) {
    fs::write(segment, whole).expect("repair");
    // Closed cleanly, so that the dedup index has nothing to read again on the next open.
    EmbeddedStore::open(config.clone())
        .expect("open to rebuild the offset index")
        .close()
        .expect("close");
    fs::write(segment, damaged).expect("damage again");
}

#[test]
fn refuses_to_open_when_a_segment_is_missing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = rotating_config(dir.path());
    {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        for batch in 0..40 {
            append(&store, batch * 10..batch * 10 + 10);
        }
    }
    fs::remove_file(&segment_files(dir.path())[2]).expect("lose a segment");
    assert!(matches!(
        EmbeddedStore::open(config),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn refuses_to_open_when_signed_entries_are_missing() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config_in(dir.path());
    let cut = {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        append(&store, 0..10);
        let cut = fs::metadata(&segment_files(dir.path())[0])
            .expect("stat")
            .len();
        append(&store, 10..20);
        let hashes: Vec<Hash> = (0..20).map(|index| Hash::of_leaf(&leaf(index))).collect();
        store.append_hashes(0, 0, &hashes).expect("hashes");
        store.sync_hashes().expect("sync");
        store
            .store_checkpoint(&StoredCheckpoint {
                size: 20,
                note: b"checkpoint".to_vec(),
            })
            .expect("checkpoint");
        cut
    };
    let segment = segment_files(dir.path())[0].clone();
    let whole = fs::read(&segment).expect("read");
    fs::write(&segment, &whole[..cut as usize + 5]).expect("lose the last batch");
    match EmbeddedStore::open(config) {
        Err(StoreError::Corrupt { detail, .. }) => {
            assert!(detail.contains("checkpoint"), "{detail}")
        }
        Err(other) => panic!("expected Corrupt, got {other}"),
        Ok(_) => panic!("a store that lost signed entries opened"),
    }
}

#[test]
fn refuses_to_open_a_store_that_is_already_open() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config_in(dir.path());
    let _open = EmbeddedStore::open(config.clone()).expect("open");
    assert!(EmbeddedStore::open(config).is_err());
}

#[test]
fn unsynced_hashes_are_cut_back_and_hashes_never_outrun_entries() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let config = config_in(dir.path());
    let hashes: Vec<Hash> = (0..300).map(|index| Hash::of_leaf(&leaf(index))).collect();
    {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        append(&store, 0..300);
        store.append_hashes(0, 0, &hashes[..100]).expect("hashes");
        store.sync_hashes().expect("sync");
        store
            .append_hashes(0, 100, &hashes[100..])
            .expect("hashes, not synced");
    }
    let store = EmbeddedStore::open(config.clone()).expect("open");
    assert_eq!(
        store.hash_count(0).expect("count"),
        100,
        "only synced hashes are trusted after a restart"
    );
    store
        .append_hashes(0, 100, &hashes[100..])
        .expect("the integrator writes them again");
    store.sync_hashes().expect("sync");
    drop(store);
    // Entries lost in a torn tail take the hashes derived from them along.
    let segment = segment_files(dir.path())[0].clone();
    let bytes = fs::read(&segment).expect("read");
    fs::write(&segment, &bytes[..bytes.len() - 1]).expect("tear the only batch");
    let store = EmbeddedStore::open(config).expect("open");
    assert_eq!(store.entry_count(), 0);
    assert_eq!(store.hash_count(0).expect("count"), 0);
}

fn wait_for_watermark(store: &EmbeddedStore, at_least: u64) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while store.dedup_watermark() < at_least {
        assert!(
            Instant::now() < deadline,
            "the dedup flusher did not reach {at_least}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn dedup_index_is_written_behind_and_reindexed_past_its_watermark() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = config_in(dir.path());
    config.dedup = DedupConfig {
        table_keys: 500,
        max_runs: 3,
        initial_filter_keys: 1024,
    };
    let total = 5_050u64;
    {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        for batch in 0..50 {
            append(&store, batch * 100..batch * 100 + 100);
        }
        append(&store, 5_000..total);
        wait_for_watermark(&store, 5_000);
        // Dropped without close: the keys past the watermark exist only in memory.
    }
    let runs = |dir: &Path| {
        fs::read_dir(dir.join("log").parent().expect("parent").join("dedup"))
            .map(|listing| listing.count())
            .unwrap_or(0)
    };
    assert!(runs(dir.path()) <= 4, "runs are merged");
    let store = EmbeddedStore::open(config.clone()).expect("open");
    let watermark = store.dedup_watermark();
    assert_eq!(watermark, 5_000, "the last, unfull table was indexed again");
    let hashes: Vec<Hash> = (0..total)
        .map(|index| Hash::of_leaf(&leaf(index)))
        .collect();
    let keys: Vec<DedupKey<'_>> = hashes.iter().map(DedupKey::Leaf).collect();
    let found = store.find_duplicates(&keys).expect("lookup");
    for (index, hit) in found.iter().enumerate() {
        assert_eq!(
            hit.map(|hit| hit.index),
            Some(index as u64),
            "entry {index} after reopen"
        );
    }
    store.close().expect("close writes every key out");
    let store = EmbeddedStore::open(config).expect("open");
    assert_eq!(
        store.dedup_watermark(),
        total,
        "after a clean close nothing is indexed again"
    );
    assert_eq!(
        store
            .find_duplicates(&keys)
            .expect("lookup")
            .iter()
            .flatten()
            .count() as u64,
        total
    );
}

#[test]
fn a_lost_dedup_run_is_rebuilt_from_the_entries() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = config_in(dir.path());
    config.dedup = DedupConfig {
        table_keys: 200,
        max_runs: 50,
        initial_filter_keys: 1024,
    };
    {
        let store = EmbeddedStore::open(config.clone()).expect("open");
        for batch in 0..20 {
            append(&store, batch * 100..batch * 100 + 100);
        }
        store.close().expect("close");
    }
    let dedup_dir = dir.path().join("dedup");
    let mut runs: Vec<PathBuf> = fs::read_dir(&dedup_dir)
        .expect("dedup directory")
        .map(|item| item.expect("listing").path())
        .collect();
    runs.sort();
    assert!(runs.len() >= 5, "found {} runs", runs.len());
    fs::remove_file(&runs[2]).expect("lose a run");
    let store = EmbeddedStore::open(config).expect("open");
    assert!(
        store.dedup_watermark() < 2000,
        "runs past the gap are dropped"
    );
    let hashes: Vec<Hash> = (0..2000).map(|index| Hash::of_leaf(&leaf(index))).collect();
    let keys: Vec<DedupKey<'_>> = hashes.iter().map(DedupKey::Leaf).collect();
    let found = store.find_duplicates(&keys).expect("lookup");
    assert!(found
        .iter()
        .enumerate()
        .all(|(index, hit)| hit.map(|hit| hit.index) == Some(index as u64)));
}

#[test]
fn rejects_configurations_that_cannot_work() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut config = config_in(dir.path());
    config.limits.max_leaf_bytes = u32::MAX;
    assert!(matches!(
        EmbeddedStore::open(config),
        Err(StoreError::BadConfig(_))
    ));
}
