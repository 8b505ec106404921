//! Checkpoints: the C2SP tlog-checkpoint example, a real sum.golang.org checkpoint, round trips,
//! signing and opening, and one test per malformation.

mod common;

use cairn_spec::checkpoint::{parse_tree_size, Checkpoint, CheckpointError, TreeSizeError};
use cairn_spec::hash::{Hash, HashError};
use cairn_spec::note::{
    Ed25519Signer, Ed25519Verifier, KeyId, KeyName, Note, NoteError, MAX_NOTE_SIZE,
};
use common::{log_checkpoint, log_signer, LOG_ORIGIN};
use proptest::prelude::*;

// Example of C2SP tlog-checkpoint v1.0.0 (its opening example; also in tlog-cosignature).
const C2SP_CHECKPOINT: &str = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n";

// A checkpoint signed by sum.golang.org, as quoted in google/trillian-examples,
// witness/golang/cmd/addrwitness/README.md, with a second signature by a test witness. The
// vkey is the one built into the go command (src/cmd/go/internal/modfetch/key.go).
const SUMDB_VKEY: &str = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8";
const SUMDB_CHECKPOINT: &str = "go.sum database tree\n15067302\ngJyioq6dwR9n+NjEWORfYmH+ubeYm3kH42BBQ0bTpYI=\n\n— sum.golang.org Az3grp1rvWOs5NKlr/xR4GLN/CDyzzakmt1o61uSxYKpK1SerqOP2ClbX/peKUZjYnyomH5Xz7GZG3TpB7OeKn4E2ww=\n— test.example.com qTGhC/xIPQ0AXKHK6Y+9ypRfuvMZWPjRXM8NiOg5M1WREn07VQXyuIXM3NRNav3ieVFLUqDRK77PWDmL6w8w84UqeAw=\n";

const EMPTY_ROOT: &str = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";

#[test]
fn parses_c2sp_example_checkpoint() {
    let note = Note::parse(C2SP_CHECKPOINT.as_bytes()).expect("spec example parses");
    let checkpoint = Checkpoint::from_note(&note).expect("spec example is a checkpoint");
    assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
    assert_eq!(checkpoint.size, 20852163);
    assert_eq!(
        checkpoint.root.to_base64(),
        "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I="
    );
    assert!(checkpoint.extensions.is_empty());
    assert_eq!(note.signatures()[0].key_id, KeyId(0x033de0ae));
    assert_eq!(checkpoint.to_text().expect("formats"), note.text());
}

#[test]
fn opens_real_sum_golang_org_checkpoint_whose_key_is_not_named_after_its_origin() {
    let key = Ed25519Verifier::from_vkey(SUMDB_VKEY).expect("Go's sumdb vkey");
    let signed =
        Checkpoint::open_with_origin(SUMDB_CHECKPOINT.as_bytes(), "go.sum database tree", &[&key])
            .expect("sum.golang.org signed this checkpoint");
    assert_eq!(signed.checkpoint.size, 15067302);
    assert_eq!(
        signed.checkpoint.root.to_base64(),
        "gJyioq6dwR9n+NjEWORfYmH+ubeYm3kH42BBQ0bTpYI="
    );
    assert_eq!(signed.verification.verified.len(), 1);
    assert_eq!(signed.verification.unverified.len(), 1);
    assert_eq!(
        signed.verification.unverified[0].key_name,
        KeyName::new("test.example.com").expect("valid")
    );
    // Cairn's own opener wants the key named after the origin.
    assert_eq!(
        Checkpoint::open(SUMDB_CHECKPOINT.as_bytes(), &key).unwrap_err(),
        CheckpointError::OriginMismatch {
            origin: "go.sum database tree".to_owned(),
            key_name: "sum.golang.org".to_owned()
        }
    );
    assert_eq!(
        Checkpoint::open_with_origin(SUMDB_CHECKPOINT.as_bytes(), "sum.golang.org", &[&key])
            .unwrap_err(),
        CheckpointError::UnexpectedOrigin {
            expected: "sum.golang.org".to_owned(),
            found: "go.sum database tree".to_owned()
        }
    );
    // One changed digit in the size breaks sum.golang.org's signature.
    let tampered = SUMDB_CHECKPOINT.replace("15067302", "15067303");
    assert!(matches!(
        Checkpoint::open_with_origin(tampered.as_bytes(), "go.sum database tree", &[&key]),
        Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
    ));
}

#[test]
fn signs_and_opens_a_checkpoint() {
    let checkpoint = log_checkpoint(7);
    let note = checkpoint
        .sign(&log_signer())
        .expect("key is named after the origin");
    let bytes = note.to_bytes().expect("formats");
    let signed = Checkpoint::open(&bytes, &log_signer().verifier()).expect("opens");
    assert_eq!(signed.checkpoint, checkpoint);
    assert_eq!(signed.note, note);
    assert_eq!(signed.verification.verified.len(), 1);
}

#[test]
fn refuses_to_sign_with_a_key_not_named_after_the_origin() {
    let other =
        Ed25519Signer::from_seed(KeyName::new("example.com/other").expect("valid"), [3; 32]);
    assert_eq!(
        log_checkpoint(7).sign(&other).unwrap_err(),
        CheckpointError::OriginMismatch {
            origin: LOG_ORIGIN.to_owned(),
            key_name: "example.com/other".to_owned()
        }
    );
}

#[test]
fn rejects_checkpoint_not_signed_by_the_log_key() {
    let bytes = log_checkpoint(7)
        .sign(&log_signer())
        .expect("signs")
        .to_bytes()
        .expect("formats");
    // Same name, another key: the key ID differs, so the signature is by an unknown key.
    let impostor = Ed25519Signer::from_seed(KeyName::new(LOG_ORIGIN).expect("valid"), [9; 32]);
    assert_eq!(
        Checkpoint::open(&bytes, &impostor.verifier()).unwrap_err(),
        CheckpointError::Note(NoteError::NoVerifiedSignature { unverified: 1 })
    );
    let tampered = String::from_utf8(bytes)
        .expect("UTF-8")
        .replacen("\n7\n", "\n8\n", 1);
    assert!(matches!(
        Checkpoint::open(tampered.as_bytes(), &log_signer().verifier()),
        Err(CheckpointError::Note(NoteError::InvalidSignature { .. }))
    ));
}

#[test]
fn round_trips_extension_lines() {
    let mut checkpoint = log_checkpoint(3);
    checkpoint.extensions = vec!["ext one".to_owned(), "— two".to_owned()];
    let text = checkpoint.to_text().expect("formats");
    assert!(text.ends_with("\next one\n— two\n"));
    assert_eq!(Checkpoint::parse(&text), Ok(checkpoint));
}

#[test]
fn parses_the_empty_tree() {
    let text = format!("o\n0\n{EMPTY_ROOT}\n");
    let checkpoint = Checkpoint::parse(&text).expect("parses");
    assert_eq!(checkpoint.size, 0);
    assert_eq!(checkpoint.root, Hash::empty_tree());
}

#[test]
fn rejects_text_without_final_newline() {
    let text = format!("o\n5\n{EMPTY_ROOT}");
    assert_eq!(
        Checkpoint::parse(&text),
        Err(CheckpointError::MissingFinalNewline)
    );
}

#[test]
fn rejects_missing_size_or_root_line() {
    assert_eq!(
        Checkpoint::parse("o\n"),
        Err(CheckpointError::MissingLine {
            line: 2,
            what: "tree size"
        })
    );
    assert_eq!(
        Checkpoint::parse("o\n5\n"),
        Err(CheckpointError::MissingLine {
            line: 3,
            what: "root hash"
        })
    );
}

#[test]
fn rejects_empty_origin() {
    let text = format!("\n5\n{EMPTY_ROOT}\n");
    assert_eq!(Checkpoint::parse(&text), Err(CheckpointError::EmptyOrigin));
    assert_eq!(Checkpoint::parse("\n"), Err(CheckpointError::EmptyOrigin));
}

#[test]
fn rejects_non_canonical_tree_sizes() {
    let cases: [(&str, TreeSizeError); 10] = [
        ("", TreeSizeError::Empty),
        ("05", TreeSizeError::LeadingZero { found: "05".into() }),
        ("00", TreeSizeError::LeadingZero { found: "00".into() }),
        ("+5", TreeSizeError::NotDecimal { found: "+5".into() }),
        ("-1", TreeSizeError::NotDecimal { found: "-1".into() }),
        (" 5", TreeSizeError::NotDecimal { found: " 5".into() }),
        ("5 ", TreeSizeError::NotDecimal { found: "5 ".into() }),
        (
            "0x10",
            TreeSizeError::NotDecimal {
                found: "0x10".into(),
            },
        ),
        (
            "５",
            TreeSizeError::NotDecimal {
                found: "５".into()
            },
        ),
        (
            "18446744073709551616",
            TreeSizeError::TooLarge {
                found: "18446744073709551616".into(),
            },
        ),
    ];
    for (size, expected) in cases {
        assert_eq!(parse_tree_size(size), Err(expected.clone()), "{size:?}");
        let text = format!("o\n{size}\n{EMPTY_ROOT}\n");
        assert_eq!(
            Checkpoint::parse(&text),
            Err(CheckpointError::TreeSize(expected))
        );
    }
    assert!(matches!(
        parse_tree_size(&"9".repeat(40)),
        Err(TreeSizeError::TooLarge { .. })
    ));
    assert_eq!(parse_tree_size("0"), Ok(0));
    assert_eq!(parse_tree_size("18446744073709551615"), Ok(u64::MAX));
}

#[test]
fn rejects_missing_or_malformed_root() {
    let cases = [
        "",
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU",
        "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU=",
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFV=",
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hS",
    ];
    for root in cases {
        let text = format!("o\n5\n{root}\n");
        assert!(
            matches!(
                Checkpoint::parse(&text),
                Err(CheckpointError::RootHash(HashError::Base64(_)))
            ),
            "{root:?} must be refused"
        );
    }
}

#[test]
fn rejects_empty_extension_line() {
    let text = format!("o\n5\n{EMPTY_ROOT}\next\n\n");
    assert_eq!(
        Checkpoint::parse(&text),
        Err(CheckpointError::EmptyExtensionLine { line: 5 })
    );
    let text = format!("o\n5\n{EMPTY_ROOT}\n\n");
    assert_eq!(
        Checkpoint::parse(&text),
        Err(CheckpointError::EmptyExtensionLine { line: 4 })
    );
}

#[test]
fn rejects_control_characters_in_lines() {
    let text = format!("o\tx\n5\n{EMPTY_ROOT}\n");
    assert_eq!(
        Checkpoint::parse(&text),
        Err(CheckpointError::ControlCharacter {
            line: 1,
            offset: 1,
            byte: b'\t'
        })
    );
}

#[test]
fn rejects_oversized_text() {
    let text = format!("{}\n5\n{EMPTY_ROOT}\n", "o".repeat(MAX_NOTE_SIZE));
    assert!(matches!(
        Checkpoint::parse(&text),
        Err(CheckpointError::TooLarge { .. })
    ));
}

#[test]
fn refuses_to_write_what_it_would_not_read() {
    let mut checkpoint = log_checkpoint(1);
    checkpoint.origin = String::new();
    assert_eq!(checkpoint.to_text(), Err(CheckpointError::EmptyOrigin));
    checkpoint.origin = "two\nlines".to_owned();
    assert_eq!(
        checkpoint.to_text(),
        Err(CheckpointError::ControlCharacter {
            line: 1,
            offset: 3,
            byte: b'\n'
        })
    );
    let mut checkpoint = log_checkpoint(1);
    checkpoint.extensions = vec![String::new()];
    assert_eq!(
        checkpoint.to_text(),
        Err(CheckpointError::EmptyExtensionLine { line: 4 })
    );
    checkpoint.extensions = vec!["a".to_owned(), "b\nc".to_owned()];
    assert_eq!(
        checkpoint.to_text(),
        Err(CheckpointError::ControlCharacter {
            line: 5,
            offset: 1,
            byte: b'\n'
        })
    );
}

#[test]
fn rejects_note_whose_text_is_not_a_checkpoint() {
    let mut note = Note::new("just one line\n").expect("valid text");
    note.sign(&log_signer()).expect("fits");
    let bytes = note.to_bytes().expect("formats");
    assert_eq!(
        Checkpoint::open(&bytes, &log_signer().verifier()),
        Err(CheckpointError::MissingLine {
            line: 2,
            what: "tree size"
        })
    );
}

fn checkpoint_strategy() -> impl Strategy<Value = Checkpoint> {
    (
        "[!-~][ -~é]{0,30}",
        any::<u64>(),
        any::<[u8; 32]>(),
        prop::collection::vec("[ -~—]{1,20}", 0..4),
    )
        .prop_map(|(origin, size, root, extensions)| Checkpoint {
            origin,
            size,
            root: Hash(root),
            extensions,
        })
}

proptest! {
    #[test]
    fn checkpoints_round_trip(checkpoint in checkpoint_strategy()) {
        let text = checkpoint.to_text().expect("generated checkpoints are valid");
        prop_assert_eq!(Checkpoint::parse(&text), Ok(checkpoint));
    }

    #[test]
    fn checkpoint_parser_never_panics(text in "[ -~\n]{0,200}") {
        if let Ok(checkpoint) = Checkpoint::parse(&text) {
            prop_assert_eq!(checkpoint.to_text().expect("writable"), text);
        }
    }
}
