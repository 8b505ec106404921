//! The configuration file loader every server uses (`cairn_edge::config_file`): what it reads,
//! what it refuses, and that each refusal names the file (and the line and column of a TOML
//! fault).

use std::path::{Path, PathBuf};

use cairn_edge::config_file::{self, ConfigFile, ConfigFileError, Position};

/// A configuration shaped like the servers' own: unknown keys refused.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Example {
    listen: String,
    #[serde(default)]
    workers: Option<u32>,
    #[serde(default)]
    table: Option<Table>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    name: String,
}

fn write(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("server.toml");
    std::fs::write(&path, bytes).expect("write the file");
    path
}

fn toml_error(text: &str) -> (PathBuf, Option<Position>, String, String) {
    let dir = tempfile::tempdir().expect("dir");
    let path = write(dir.path(), text.as_bytes());
    let error = config_file::load::<Example>(&path, 1024).expect_err(text);
    let shown = error.to_string();
    match error {
        ConfigFileError::Toml {
            path,
            position,
            message,
        } => (path, position, message, shown),
        other => panic!("{text:?}: expected a TOML error, found {other:?}"),
    }
}

#[test]
fn a_good_file_is_read_and_parsed() {
    let dir = tempfile::tempdir().expect("dir");
    let text = "listen = \"127.0.0.1:0\"\nworkers = 4\n[table]\nname = \"é\"\n";
    let path = write(dir.path(), text.as_bytes());
    let file = ConfigFile::read(&path, 1024).expect("reads");
    assert_eq!(file.path(), path);
    assert_eq!(file.text(), text);
    let example: Example = file.parse().expect("parses");
    assert_eq!(example.listen, "127.0.0.1:0");
    assert_eq!(example.workers, Some(4));
    assert_eq!(example.table.map(|table| table.name).as_deref(), Some("é"));
}

#[test]
fn a_file_of_exactly_the_limit_is_read_and_one_byte_more_is_refused() {
    let dir = tempfile::tempdir().expect("dir");
    let text = "listen = \"x\"\n";
    let limit = text.len() as u64;
    let path = write(dir.path(), text.as_bytes());
    assert!(config_file::load::<Example>(&path, limit).is_ok());
    let error = config_file::load::<Example>(&path, limit - 1).expect_err("over the limit");
    assert!(
        matches!(&error, ConfigFileError::TooLarge { path: named, limit: 12 } if *named == path),
        "{error:?}"
    );
    let shown = error.to_string();
    assert!(
        shown.contains(&path.display().to_string()) && shown.contains("12 bytes"),
        "{shown}"
    );
}

#[test]
fn a_source_without_a_size_is_cut_at_the_limit() {
    // /dev/zero says it holds 0 bytes and never ends: the limit must hold while reading.
    let error = config_file::read_bounded(Path::new("/dev/zero"), 4096).expect_err("endless");
    assert!(
        matches!(error, ConfigFileError::TooLarge { limit: 4096, .. }),
        "{error:?}"
    );
}

#[test]
fn a_missing_file_is_named_with_the_system_error() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("absent.toml");
    let error = config_file::load::<Example>(&path, 1024).expect_err("missing");
    let shown = error.to_string();
    match error {
        ConfigFileError::Read {
            path: named,
            source,
        } => {
            assert_eq!(named, path);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected a read error, found {other:?}"),
    }
    assert!(shown.contains("absent.toml"), "{shown}");
}

#[test]
fn bad_toml_is_named_with_its_line_and_column() {
    let (path, position, message, shown) = toml_error("listen = \"x\"\nworkers = = 4\n");
    assert_eq!(
        position,
        Some(Position {
            line: 2,
            column: 11
        })
    );
    assert!(!message.is_empty());
    let expected = format!("{}, line 2, column 11: ", path.display());
    assert!(shown.starts_with(&expected), "{shown}");
    // One line: the message carries no snippet of the file.
    assert!(!shown.contains('\n'), "{shown}");
}

#[test]
fn an_unknown_key_is_named_where_it_is() {
    let (_, position, message, _) = toml_error("listen = \"x\"\n[table]\nname = \"t\"\nnmae = 1\n");
    assert_eq!(position, Some(Position { line: 4, column: 1 }));
    assert!(message.contains("unknown field `nmae`"), "{message}");
    assert!(
        message.contains("name"),
        "the known keys are listed: {message}"
    );
}

#[test]
fn a_wrong_type_and_a_missing_key_are_refused() {
    let (_, position, message, _) = toml_error("listen = \"x\"\nworkers = \"four\"\n");
    assert_eq!(position.map(|position| position.line), Some(2));
    assert!(message.contains("invalid type"), "{message}");
    let (_, _, message, _) = toml_error("workers = 1\n");
    assert!(message.contains("missing field `listen`"), "{message}");
}

#[test]
fn columns_count_characters_not_bytes() {
    // "é" is two bytes: the fault after it is at column 14 by characters (15 by bytes).
    let (_, position, _, _) = toml_error("listen = \"é\" x\n");
    assert_eq!(
        position,
        Some(Position {
            line: 1,
            column: 14
        })
    );
}

#[test]
fn text_that_is_not_utf8_is_refused_with_its_offset() {
    let dir = tempfile::tempdir().expect("dir");
    let path = write(dir.path(), b"listen = \"\xff\"\n");
    let error = config_file::load::<Example>(&path, 1024).expect_err("not UTF-8");
    assert!(
        matches!(error, ConfigFileError::NotUtf8 { offset: 10, .. }),
        "{error:?}"
    );
    assert!(error.to_string().contains("server.toml"), "{error}");
}
