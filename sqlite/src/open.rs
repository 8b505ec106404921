//! Opening a database file: the connection settings every Cairn database relies on, its schema
//! and `user_version`, and one transaction a write.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::failure::{failure_of, Failure};

/// The tables of one kind of database file and their version (SQLite's `user_version`).
#[derive(Clone, Copy, Debug)]
pub struct Schema {
    /// The program that reads it, named in refusals (`cairn-witness`).
    pub reader: &'static str,
    /// The version this program reads and writes; at least 1 (0 is a new file).
    pub version: i64,
    /// The tables of a new file, at `version`.
    pub create: &'static str,
    /// How a file of an older version is brought to `version`: `(from, statements)` takes a
    /// file of version `from` to `from + 1`. All the steps a file needs run in the one
    /// transaction that also sets its new version.
    pub upgrades: &'static [(i64, &'static str)],
}

/// Why a database could not be opened, locked or written.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// SQLite failed; [`failure_of`] says what that means.
    #[error("{path}: {source}")]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// The file is of a schema version this program does not read.
    #[error("{path} is of schema version {found}; this {reader} reads version {expected}{}",
        if found > expected { " and older: it was written by a newer version" } else { "" })]
    Version {
        /// The database file.
        path: PathBuf,
        /// Who refused it.
        reader: &'static str,
        /// Its version.
        found: i64,
        /// The version this program reads.
        expected: i64,
    },
    /// A SQLite file of version 0 that already holds tables: another program's database.
    #[error("{path} holds tables of another program's database, not {reader}'s; refusing to write beside them")]
    Foreign {
        /// The database file.
        path: PathBuf,
        /// Who refused it.
        reader: &'static str,
    },
    /// Another process holds the directory's lock.
    #[error("{dir} is in use by another process (it holds {dir}/lock)")]
    Locked {
        /// The data directory.
        dir: PathBuf,
    },
    /// An operating-system call failed.
    #[error("{operation} {path}: {source}")]
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// What the failure means: a file that is not this program's, of another version, or
    /// locked by another process is refused; an errno is never taken for damage.
    pub fn failure(&self) -> Failure {
        match self {
            Error::Sqlite { source, .. } => failure_of(source),
            Error::Io { .. } => Failure::Unavailable,
            Error::Version { .. } | Error::Foreign { .. } | Error::Locked { .. } => {
                Failure::Refused
            }
        }
    }
}

/// Opens (or creates) the database at `path`: `synchronous = FULL` (a commit returns once the
/// journal and the file are fsynced), foreign keys enforced, cell sizes checked on read, the
/// default rollback journal. A new file gets `schema` and its version in one transaction, an
/// older one its upgrades in one transaction; a file of another version, or one that holds
/// another program's tables, is refused. Opening a file of the current version writes
/// nothing, so it works on a full disk.
pub fn open(path: &Path, schema: &Schema) -> Result<Connection, Error> {
    let sqlite = |source| Error::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let mut connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    // Connection settings only: none of them writes to the file.
    connection
        .execute_batch(
            "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cell_size_check = ON;",
        )
        .map_err(sqlite)?;
    let found: i64 = connection
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sqlite)?;
    if found == schema.version {
        return Ok(connection);
    }
    let upgradable = 0 < found
        && found < schema.version
        && (found..schema.version)
            .all(|from| schema.upgrades.iter().any(|&(step, _)| step == from));
    if found != 0 && !upgradable {
        return Err(Error::Version {
            path: path.to_path_buf(),
            reader: schema.reader,
            found,
            expected: schema.version,
        });
    }
    // A crash or a full disk leaves either the file as it was or all of the change.
    write(&mut connection, sqlite, |transaction| {
        if found == 0 {
            let tables: i64 = transaction
                .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
                .map_err(sqlite)?;
            if tables != 0 {
                return Err(Error::Foreign {
                    path: path.to_path_buf(),
                    reader: schema.reader,
                });
            }
            transaction.execute_batch(schema.create).map_err(sqlite)?;
        } else {
            for from in found..schema.version {
                for &(_, statements) in schema.upgrades.iter().filter(|&&(step, _)| step == from) {
                    transaction.execute_batch(statements).map_err(sqlite)?;
                }
            }
        }
        transaction
            .pragma_update(None, "user_version", schema.version)
            .map_err(sqlite)
    })?;
    Ok(connection)
}

/// Runs `work` in one `BEGIN IMMEDIATE` transaction (the write lock taken first, so that a
/// read-check-write inside it cannot race another writer) and commits it: the journal and the
/// file are fsynced before this returns. On any error, from `work` or from SQLite, nothing of it
/// stays: the transaction is rolled back (dropping an uncommitted one rolls it back, a failed
/// `COMMIT` included). `error` turns SQLite's errors into the caller's.
pub fn write<T, E>(
    connection: &mut Connection,
    error: impl Fn(rusqlite::Error) -> E,
    work: impl FnOnce(&Transaction<'_>) -> Result<T, E>,
) -> Result<T, E> {
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&error)?;
    let value = work(&transaction)?;
    transaction.commit().map_err(&error)?;
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: Schema = Schema {
        reader: "cairn-test",
        version: 1,
        create: "CREATE TABLE a (x INTEGER NOT NULL CHECK (x >= 0));",
        upgrades: &[],
    };

    const V2: Schema = Schema {
        reader: "cairn-test",
        version: 2,
        create: "CREATE TABLE a (x INTEGER NOT NULL CHECK (x >= 0)); CREATE TABLE b (y TEXT);",
        upgrades: &[(1, "CREATE TABLE b (y TEXT);")],
    };

    fn tables(connection: &Connection) -> Vec<String> {
        let mut statement = connection
            .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
            .expect("prepares");
        let names = statement
            .query_map([], |row| row.get(0))
            .expect("queries")
            .collect::<Result<Vec<String>, _>>()
            .expect("reads");
        names
    }

    fn version(connection: &Connection) -> i64 {
        connection
            .query_row("PRAGMA user_version", [], |row| row.get(0))
            .expect("reads")
    }

    #[test]
    fn a_new_file_gets_its_schema_and_version_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.sqlite");
        let mut connection = open(&path, &V1).expect("creates");
        assert_eq!(
            (tables(&connection), version(&connection)),
            (vec!["a".into()], 1)
        );
        write(
            &mut connection,
            |error| error,
            |transaction| {
                transaction
                    .execute("INSERT INTO a VALUES (7)", [])
                    .map(drop)
            },
        )
        .expect("writes");
        drop(connection);
        let connection = open(&path, &V1).expect("reopens");
        let value: i64 = connection
            .query_row("SELECT x FROM a", [], |row| row.get(0))
            .expect("reads");
        assert_eq!(value, 7);
        let synchronous: i64 = connection
            .query_row("PRAGMA synchronous", [], |row| row.get(0))
            .expect("reads");
        assert_eq!(synchronous, 2, "FULL");
    }

    #[test]
    fn an_older_file_is_upgraded_and_a_newer_one_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a.sqlite");
        drop(open(&path, &V1).expect("creates version 1"));
        let connection = open(&path, &V2).expect("upgrades");
        assert_eq!(
            (tables(&connection), version(&connection)),
            (vec!["a".into(), "b".into()], 2)
        );
        drop(connection);
        match open(&path, &V1) {
            Err(
                error @ Error::Version {
                    found: 2,
                    expected: 1,
                    ..
                },
            ) => {
                assert_eq!(error.failure(), Failure::Refused);
                assert!(error.to_string().contains("newer version"), "{error}");
            }
            other => panic!("expected a refused version, got {other:?}"),
        }
        // A version with no upgrade path is refused too.
        let gap = Schema { version: 3, ..V2 };
        assert!(matches!(
            open(&path, &gap),
            Err(Error::Version {
                found: 2,
                expected: 3,
                ..
            })
        ));
    }

    #[test]
    fn another_programs_database_and_garbage_are_refused_untouched() {
        let dir = tempfile::tempdir().expect("tempdir");
        let foreign = dir.path().join("foreign.sqlite");
        Connection::open(&foreign)
            .and_then(|connection| connection.execute_batch("CREATE TABLE theirs (z);"))
            .expect("another program's file");
        let refused = open(&foreign, &V1).expect_err("not ours");
        assert!(matches!(refused, Error::Foreign { .. }), "{refused}");
        let connection = Connection::open(&foreign).expect("opens");
        assert_eq!(tables(&connection), vec!["theirs".to_string()]);
        assert_eq!(version(&connection), 0);

        let garbage = dir.path().join("garbage.sqlite");
        std::fs::write(&garbage, vec![0x5a; 4096]).expect("writes");
        let refused = open(&garbage, &V1).expect_err("not a database");
        assert_eq!(refused.failure(), Failure::Corrupt, "{refused}");
        assert_eq!(std::fs::read(&garbage).expect("reads"), vec![0x5a; 4096]);
    }

    #[test]
    fn a_failed_write_leaves_nothing_of_itself() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut connection = open(&dir.path().join("a.sqlite"), &V1).expect("creates");
        // The second statement breaks the CHECK: the first is rolled back with it.
        let refused = write(
            &mut connection,
            |error| error,
            |transaction| {
                transaction.execute("INSERT INTO a VALUES (1)", [])?;
                transaction.execute("INSERT INTO a VALUES (-1)", [])
            },
        )
        .expect_err("refused");
        assert_eq!(failure_of(&refused), Failure::Refused);
        // A full database (what a full disk gives): nothing of the transaction stays either.
        connection
            .execute_batch("PRAGMA max_page_count = 3")
            .expect("limits the file");
        let full = write(
            &mut connection,
            |error| error,
            |transaction| {
                transaction.execute("INSERT INTO a VALUES (2)", [])?;
                transaction.execute_batch(
                    "CREATE TABLE big (v BLOB); INSERT INTO big VALUES (zeroblob(100000));",
                )
            },
        )
        .expect_err("full");
        assert_eq!(failure_of(&full), Failure::Unavailable);
        let rows: i64 = connection
            .query_row("SELECT count(*) FROM a", [], |row| row.get(0))
            .expect("reads");
        assert_eq!(rows, 0);
        assert!(connection.is_autocommit(), "no transaction left open");
    }
}
