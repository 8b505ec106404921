use super::*;

fn record(size: u64) -> CosignedRecord {
    CosignedRecord {
        state: TreeState {
            size,
            root: Hash([size as u8; 32]),
        },
        note: format!("note {size}\n").into_bytes(),
    }
}

#[tokio::test]
async fn keeps_latest_state_and_tokens_across_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = Store::open(dir.path()).expect("opens");
        assert_eq!(store.latest("a").expect("reads"), None);
        store
            .record_cosigned("a", &record(3), b"body 3\n")
            .await
            .expect("writes");
        store
            .record_token("a", 3, "tsa-1", b"token")
            .await
            .expect("writes");
    }
    let store = Store::open(dir.path()).expect("reopens");
    assert_eq!(store.latest("a").expect("reads"), Some(record(3)));
    assert_eq!(
        store.checkpoint_body("a", 3).expect("reads"),
        Some(b"body 3\n".to_vec())
    );
    assert_eq!(
        store.tokens("a", 3).expect("reads"),
        vec![StoredToken {
            tsa: "tsa-1".to_owned(),
            token_der: b"token".to_vec()
        }]
    );
    assert!(store.tokens("a", 4).expect("reads").is_empty());
}

#[tokio::test]
async fn a_second_open_of_the_same_state_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = Store::open(dir.path()).expect("opens");
    assert!(matches!(
        Store::open(dir.path()),
        Err(StoreError::Locked(_))
    ));
}

#[test]
fn a_directory_of_an_older_sled_witness_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("conf"), b"segment_size: 524288\n").expect("writes");
    std::fs::write(dir.path().join("db"), b"sled").expect("writes");
    let refused = Store::open(dir.path()).err().expect("refused");
    assert!(matches!(refused, StoreError::OlderFormat(_)), "{refused}");
    assert!(refused.to_string().contains("new key"), "{refused}");
    assert!(!dir.path().join("witness.sqlite").exists());
    assert_eq!(
        std::fs::read(dir.path().join("db")).expect("reads"),
        b"sled"
    );
}

/// A state made by the first SQLite witness (schema version 1, no heartbeat) opens, keeps
/// what it held, and takes probes.
#[tokio::test]
async fn a_version_1_state_is_upgraded_and_keeps_its_checkpoints() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let connection = Connection::open(dir.path().join("witness.sqlite")).expect("creates");
        let version_1 = TABLES.replace(HEARTBEAT.trim(), "");
        connection
            .execute_batch(&format!("{version_1} PRAGMA user_version = 1;"))
            .expect("a version-1 file");
        connection
            .execute(
                "INSERT INTO state (origin, size, root, note) VALUES ('a', 3, ?1, ?2)",
                params![[3u8; 32].to_vec(), b"note 3\n".to_vec()],
            )
            .expect("a cosigned state");
    }
    let store = Store::open(dir.path()).expect("upgrades");
    assert_eq!(store.latest("a").expect("reads"), Some(record(3)));
    store.probe().await.expect("probes");
}

#[tokio::test]
async fn a_write_on_a_full_store_marks_it_failing_until_a_write_commits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("opens");
    store
        .record_cosigned("a", &record(3), b"body 3\n")
        .await
        .expect("writes");
    assert_eq!(store.failing(), None);
    // The file may not grow: what a full disk does to a write that needs pages.
    let pages: i64 = store
        .inner
        .connection
        .lock()
        .query_row("PRAGMA page_count", [], |row| row.get(0))
        .expect("reads");
    store
        .inner
        .connection
        .lock()
        .pragma_update(None, "max_page_count", pages)
        .expect("limits");
    let full = store
        .record_token("a", 3, "tsa", &vec![7u8; 64 << 10])
        .await
        .expect_err("no room");
    assert!(full.is_unavailable(), "{full}");
    assert!(store.failing().is_some());
    assert_eq!(store.errors(), 1);
    assert!(store.tokens("a", 3).expect("reads").is_empty());
    store
        .inner
        .connection
        .lock()
        .pragma_update(None, "max_page_count", 1 << 20)
        .expect("room again");
    store.probe().await.expect("probes");
    assert_eq!(store.failing(), None);
    assert_eq!(store.latest("a").expect("reads"), Some(record(3)));
}

#[tokio::test]
async fn token_keys_of_one_origin_never_match_another() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path()).expect("opens");
    store
        .record_token("ab", 1, "t", b"x")
        .await
        .expect("writes");
    assert!(store.tokens("a", 1).expect("reads").is_empty());
}
