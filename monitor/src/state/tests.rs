use super::*;

fn state(size: u64) -> VerifiedState {
    let mut range = CompactRange::new();
    let leaves: Vec<Hash> = (0..size).map(|n| Hash::of_leaf(&n.to_be_bytes())).collect();
    range.extend(&leaves).expect("extends");
    VerifiedState {
        note: format!("example.com/log\n{size}\n"),
        size,
        root: range.root().to_base64(),
        frontier: range.frontier().iter().map(Hash::to_base64).collect(),
        grown_at: 1_700_000_000,
        recheck_cursor: 2,
    }
}

#[test]
fn verified_state_progress_and_evidence_survive_a_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut progress = CompactRange::new();
    progress.extend(&[Hash([1; 32]); 512]).expect("extends");
    let evidence = StoredEvidence {
        origin: "example.com/log".into(),
        kind: "split-view".into(),
        file: "example_com_log-split-view-1.json".into(),
        document: b"{\"format\":\"cairn.evidence/v1\"}".to_vec(),
        detail: "two signed roots for size 300".into(),
        found_at: 1_700_000_000,
    };
    {
        let store = StateStore::open(dir.path()).expect("opens");
        assert_eq!(store.verified("example.com/log").expect("reads"), None);
        store
            .commit_verified("example.com/log", &state(300), false)
            .expect("commits");
        store
            .set_progress("example.com/log", &progress)
            .expect("progress");
        store.record_evidence(&evidence).expect("evidence");
    }
    let store = StateStore::open(dir.path()).expect("reopens at once");
    assert_eq!(
        store.verified("example.com/log").expect("reads"),
        Some(state(300))
    );
    assert_eq!(
        store.progress("example.com/log").expect("reads"),
        Some(progress)
    );
    assert_eq!(store.evidence().expect("reads"), vec![evidence.clone()]);
    // A growth that ends commits its state and forgets its progress in one transaction.
    store
        .commit_verified("example.com/log", &state(700), true)
        .expect("commits");
    assert_eq!(store.progress("example.com/log").expect("reads"), None);
    assert_eq!(
        store
            .verified("example.com/log")
            .map(|s| s.map(|s| s.size))
            .expect("reads"),
        Some(700)
    );
}

#[test]
fn evidence_files_missing_from_the_directory_are_written_again() {
    let dir = tempfile::tempdir().expect("tempdir");
    let evidence_dir = dir.path().join("evidence");
    let store = StateStore::open(&dir.path().join("state")).expect("opens");
    let evidence = StoredEvidence {
        origin: "o".into(),
        kind: "root-mismatch".into(),
        file: "o-root-mismatch-1.json".into(),
        document: b"{}".to_vec(),
        detail: "signed root r for size 9".into(),
        found_at: 1,
    };
    store.record_evidence(&evidence).expect("keeps");
    assert_eq!(
        store.export_evidence("o", &evidence_dir).expect("exports"),
        1
    );
    assert_eq!(
        std::fs::read(evidence_dir.join(&evidence.file)).expect("reads"),
        b"{}"
    );
    assert_eq!(
        store.export_evidence("o", &evidence_dir).expect("exports"),
        0
    );
    std::fs::remove_file(evidence_dir.join(&evidence.file)).expect("removes");
    assert_eq!(
        store.export_evidence("o", &evidence_dir).expect("exports"),
        1
    );
}

fn evidence(file: &str, detail: &str) -> StoredEvidence {
    StoredEvidence {
        origin: "o".into(),
        kind: "split-view".into(),
        file: file.into(),
        document: b"{}".to_vec(),
        detail: detail.into(),
        found_at: 1_700_000_000,
    }
}

#[test]
fn an_incident_stands_until_acknowledged_once_and_keeps_its_evidence() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::open(dir.path()).expect("opens");
    let first = store
        .record_evidence(&evidence("a.json", "fork a"))
        .expect("keeps");
    let second = store
        .record_evidence(&evidence("b.json", "fork b"))
        .expect("keeps");
    assert_ne!(first, second);
    // The same file again is the same incident.
    assert_eq!(
        store
            .record_evidence(&evidence("a.json", "fork a"))
            .expect("keeps"),
        first
    );
    let found = store
        .find_incident("o", "split-view", "fork b")
        .expect("reads")
        .expect("found");
    assert_eq!((found.id, found.acknowledged), (second, None));
    assert_eq!(
        store
            .find_incident("o", "split-view", "fork c")
            .expect("reads"),
        None
    );

    // The operator's command works beside a monitor that holds the lock.
    let beside = StateStore::open_beside(dir.path()).expect("opens beside");
    for (by, reason) in [("", "why"), ("alice", " "), ("alice", &"x".repeat(5000))] {
        assert!(matches!(
            beside.acknowledge(first, by, reason, 5),
            Err(AcknowledgeError::Invalid(_))
        ));
    }
    assert!(matches!(
        beside.acknowledge(99, "alice", "checked", 5),
        Err(AcknowledgeError::Unknown(99))
    ));
    let acknowledged = beside
        .acknowledge(first, "alice", "the fork was a test key", 1_800_000_000)
        .expect("acknowledges");
    assert_eq!(
        acknowledged.acknowledged,
        Some(Acknowledgement {
            at: 1_800_000_000,
            by: "alice".into(),
            reason: "the fork was a test key".into()
        })
    );
    let again = beside.acknowledge(first, "bob", "again", 1_800_000_001);
    assert!(
        matches!(again, Err(AcknowledgeError::Already { .. })),
        "{again:?}"
    );
    // The monitor's own connection sees it; the evidence stays.
    let incidents = store.incidents(Some("o")).expect("reads");
    assert_eq!(incidents.len(), 2);
    assert_eq!(incidents[0].acknowledged, acknowledged.acknowledged);
    assert_eq!(incidents[1].acknowledged, None);
    assert_eq!(store.evidence().expect("reads").len(), 2);
    assert!(store.incidents(Some("other")).expect("reads").is_empty());
}

#[test]
fn evidence_of_a_version_1_state_becomes_standing_incidents() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let connection = Connection::open(dir.path().join(STATE_FILE)).expect("creates");
        connection
            .execute_batch(
                "CREATE TABLE verified (origin TEXT PRIMARY KEY, note TEXT NOT NULL,
                   size INTEGER NOT NULL, root BLOB NOT NULL, frontier BLOB NOT NULL,
                   grown_at INTEGER NOT NULL, recheck_cursor INTEGER NOT NULL);
                 CREATE TABLE progress (origin TEXT PRIMARY KEY, size INTEGER NOT NULL,
                   frontier BLOB NOT NULL);
                 CREATE TABLE evidence (id INTEGER PRIMARY KEY AUTOINCREMENT,
                   origin TEXT NOT NULL, kind TEXT NOT NULL, file TEXT NOT NULL UNIQUE,
                   document BLOB NOT NULL);
                 INSERT INTO evidence (origin, kind, file, document)
                   VALUES ('o', 'split-view', 'old.json', x'7b7d');
                 PRAGMA user_version = 1;",
            )
            .expect("a version 1 state");
    }
    let store = StateStore::open(dir.path()).expect("upgrades");
    let incidents = store.incidents(None).expect("reads");
    assert_eq!(incidents.len(), 1);
    assert_eq!(
        (
            incidents[0].kind.as_str(),
            incidents[0].found_at,
            &incidents[0].acknowledged
        ),
        ("split-view", 0, &None)
    );
    store
        .acknowledge(incidents[0].id, "alice", "seen", 7)
        .expect("acknowledges");
}

#[test]
fn the_operators_commands_refuse_a_directory_without_a_state() {
    let dir = tempfile::tempdir().expect("tempdir");
    let refused = StateStore::open_beside(dir.path()).err().expect("refused");
    assert!(refused.to_string().contains(STATE_FILE), "{refused}");
    assert!(!dir.path().join(STATE_FILE).exists());
}

#[test]
fn a_state_directory_of_an_older_sled_monitor_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("conf"), b"segment_size: 524288\n").expect("writes");
    std::fs::write(dir.path().join("db"), b"sled").expect("writes");
    std::fs::create_dir(dir.path().join("evidence")).expect("evidence dir");
    std::fs::write(dir.path().join("evidence/fork.json"), b"{}").expect("evidence");
    let refused = StateStore::open(dir.path()).err().expect("refused");
    assert!(matches!(refused, StateError::OlderFormat(_)), "{refused}");
    let reason = refused.to_string();
    assert!(
        reason.contains("sled") && reason.contains("evidence") && reason.contains("empty"),
        "{reason}"
    );
    assert!(!dir.path().join(STATE_FILE).exists());
    assert!(!dir.path().join("lock").exists());
    assert_eq!(
        std::fs::read(dir.path().join("evidence/fork.json")).expect("kept"),
        b"{}"
    );
}

#[test]
fn a_second_monitor_on_the_same_state_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = StateStore::open(dir.path()).expect("opens");
    let refused = StateStore::open(dir.path()).err().expect("refused");
    assert!(
        matches!(
            refused,
            StateError::Open(cairn_sqlite::Error::Locked { .. })
        ),
        "{refused}"
    );
}

#[test]
fn a_damaged_frontier_is_refused_not_taken_for_an_empty_tree() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = StateStore::open(dir.path()).expect("opens");
    store
        .commit_verified("o", &state(300), false)
        .expect("commits");
    store
        .connection()
        .execute("UPDATE verified SET frontier = zeroblob(32)", [])
        .expect("damages");
    assert!(matches!(
        store.verified("o"),
        Err(StateError::Corrupt { .. })
    ));
}
