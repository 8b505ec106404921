//! The index file: a run a crash cut short is cut off on open, a damaged root is refused, and
//! what was committed replays to the same map root.

use std::io::Write;

use cairn_spec::completeness::{action_key, IndexMap, Item, MapKey};
use cairn_spec::Hash;

use super::file::{IndexFile, Record};
use super::{IndexError, State};

fn item(index: u64) -> Item {
    Item {
        leaf_index: index,
        leaf_hash: Hash::of_leaf(&index.to_be_bytes()),
    }
}

fn keys(index: u64) -> Vec<MapKey> {
    vec![
        action_key(if index.is_multiple_of(2) {
            "login"
        } else {
            "read"
        }),
        MapKey([index as u8 % 3; 32]),
    ]
}

/// Writes runs of items `0..split` and `split..count` and returns the root after each.
fn write_runs(path: &std::path::Path, split: u64, count: u64) -> (Hash, Hash) {
    let mut file = IndexFile::open(path, |_| Ok(())).expect("opens");
    let mut map = IndexMap::new();
    let mut roots = Vec::new();
    for run in [0..split, split..count] {
        let end = run.end;
        for index in run {
            for key in keys(index) {
                map.add(key, item(index)).expect("in order");
            }
            file.push_item(&item(index), &keys(index));
        }
        let root = map.root();
        file.commit(end, &root).expect("commits");
        roots.push(root);
    }
    (roots[0], roots[1])
}

#[test]
fn a_committed_index_replays_to_its_root_and_a_torn_run_is_cut_off() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("completeness.idx");
    let (_, root) = write_runs(&path, 5, 12);
    let committed = std::fs::metadata(&path).expect("file").len();
    // A run a crash cut short: items without their mark, the last one torn.
    {
        let mut file = IndexFile::open(&path, |_| Ok(())).expect("opens");
        file.push_item(&item(12), &keys(12));
        file.push_item(&item(13), &keys(13));
        // Not committed: write the queued bytes by hand, minus the mark and a few bytes.
        drop(file);
        let mut raw = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("opens");
        let mut partial = vec![b'I'];
        partial.extend_from_slice(&12u64.to_be_bytes());
        partial.extend_from_slice(&[7; 20]);
        raw.write_all(&partial).expect("writes");
    }
    let state = State::load(&path).expect("loads");
    assert_eq!((state.covered, state.root), (12, root));
    assert_eq!(state.lists[&action_key("login")], vec![0, 2, 4, 6, 8, 10]);
    assert_eq!(
        std::fs::metadata(&path).expect("file").len(),
        committed,
        "the unfinished run is cut off"
    );
    // Replaying twice gives the same records.
    let mut marks = Vec::new();
    IndexFile::open(&path, |record| {
        if let Record::Mark(size, root) = record {
            marks.push((size, root));
        }
        Ok(())
    })
    .expect("opens");
    assert_eq!(marks.len(), 2);
    assert_eq!(marks[1], (12, root));
}

#[test]
fn a_damaged_file_is_refused_not_trusted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("completeness.idx");
    write_runs(&path, 3, 6);
    let mut bytes = std::fs::read(&path).expect("reads");
    // Flip a bit of the first item's leaf hash: the first mark's root no longer matches.
    bytes[1 + 8] ^= 1;
    std::fs::write(&path, &bytes).expect("writes");
    match State::load(&path) {
        Err(IndexError::Corrupt(reason)) => assert!(reason.contains("root"), "{reason}"),
        Err(other) => panic!("expected a root mismatch, found {other}"),
        Ok(_) => panic!("a damaged index was trusted"),
    }
    // A record of an unknown kind.
    bytes[1 + 8] ^= 1;
    bytes[0] = b'X';
    std::fs::write(&path, &bytes).expect("writes");
    match State::load(&path) {
        Err(IndexError::File(reason)) => assert!(reason.contains("unknown kind"), "{reason}"),
        Err(other) => panic!("expected a damaged file, found {other}"),
        Ok(_) => panic!("a damaged index was trusted"),
    }
}
