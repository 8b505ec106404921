//! What a SQLite error means for the server that got it.
//!
//! Servers answer differently for each kind: a write refused while the storage is
//! [`Failure::Unavailable`] is answered 503 with Retry-After and healed by itself; damaged data
//! ([`Failure::Corrupt`]) stops what depends on it until an operator looks; a refused call
//! ([`Failure::Refused`]) is the caller's mistake and retrying it changes nothing.
//!
//! The sorting, and why:
//! - **Unavailable**: a full disk (`SQLITE_FULL`), an I/O error (`SQLITE_IOERR_*`), a file that
//!   cannot be opened now (`SQLITE_CANTOPEN`), a read-only file system or file
//!   (`SQLITE_READONLY`, `SQLITE_PERM`: a remount or a permission an operator fixes, nothing
//!   lost), a lock held or a lock race lost (`SQLITE_BUSY`, `SQLITE_LOCKED`, `SQLITE_PROTOCOL`),
//!   memory (`SQLITE_NOMEM`), and a statement interrupted, aborted or made stale by a schema
//!   change (`SQLITE_INTERRUPT`, `SQLITE_ABORT`, `SQLITE_SCHEMA`). In each case the transaction
//!   was rolled back, nothing on disk is damaged, and the same call may succeed later.
//!   `SQLITE_PROTOCOL` ("file locking protocol failed") is SQLite giving up a lock after
//!   retrying a race with another connection; nothing was written, so it is unavailability like
//!   `SQLITE_BUSY`. (The witness once counted it as damage, and answered 500 where the log
//!   answered 503; both now answer 503 and retry.)
//! - **Corrupt**: `SQLITE_CORRUPT` and `SQLITE_NOTADB`, a value read back that is not of the
//!   type or range that was written (the file is not what the server wrote), and, failing
//!   closed, every other code: `SQLITE_ERROR` (in a file the server made itself, a missing table
//!   means the file is not what it wrote), `SQLITE_INTERNAL`, a code of a newer SQLite.
//! - **Refused**: the statement itself was refused: a constraint (`SQLITE_CONSTRAINT`, e.g. a
//!   `CHECK`), a value too big (`SQLITE_TOOBIG`), a type or parameter the schema does not take,
//!   and every error rusqlite raises before SQLite runs anything.

/// What a storage failure means for whoever called the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// The storage fails for now (a full disk, an I/O error, a lock): nothing was written, and
    /// the same call may succeed later.
    Unavailable,
    /// Stored data is not what was written: retrying does not help; an operator must look.
    Corrupt,
    /// The call itself was refused (a constraint, a limit, a bad argument).
    Refused,
}

/// What `error` means: see the [module](self) for the sorting and why.
pub fn failure_of(error: &rusqlite::Error) -> Failure {
    use rusqlite::ErrorCode as Code;
    match error {
        rusqlite::Error::SqliteFailure(error, _) => match error.code {
            Code::DiskFull
            | Code::SystemIoFailure
            | Code::CannotOpen
            | Code::ReadOnly
            | Code::PermissionDenied
            | Code::DatabaseBusy
            | Code::DatabaseLocked
            | Code::FileLockingProtocolFailed
            | Code::OutOfMemory
            | Code::OperationInterrupted
            | Code::OperationAborted
            | Code::SchemaChanged => Failure::Unavailable,
            Code::ConstraintViolation
            | Code::TooBig
            | Code::TypeMismatch
            | Code::ParameterOutOfRange
            | Code::AuthorizationForStatementDenied
            | Code::ApiMisuse
            | Code::NoLargeFileSupport
            | Code::NotFound => Failure::Refused,
            // DatabaseCorrupt, NotADatabase, InternalMalfunction, Unknown and any code added
            // later: fail closed.
            _ => Failure::Corrupt,
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::IntegralValueOutOfRange(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::Utf8Error(..) => Failure::Corrupt,
        _ => Failure::Refused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{ffi, Connection};

    fn code(result_code: i32) -> Failure {
        failure_of(&rusqlite::Error::SqliteFailure(
            ffi::Error::new(result_code),
            None,
        ))
    }

    #[test]
    fn faults_that_may_clear_are_unavailable_damage_is_corrupt_and_bad_calls_are_refused() {
        for unavailable in [
            ffi::SQLITE_FULL,
            ffi::SQLITE_IOERR,
            ffi::SQLITE_IOERR_FSYNC,
            ffi::SQLITE_IOERR_WRITE,
            ffi::SQLITE_IOERR_SHORT_READ,
            ffi::SQLITE_CANTOPEN,
            ffi::SQLITE_READONLY,
            ffi::SQLITE_PERM,
            ffi::SQLITE_BUSY,
            ffi::SQLITE_LOCKED,
            ffi::SQLITE_PROTOCOL,
            ffi::SQLITE_NOMEM,
            ffi::SQLITE_INTERRUPT,
            ffi::SQLITE_ABORT,
            ffi::SQLITE_SCHEMA,
        ] {
            assert_eq!(
                code(unavailable),
                Failure::Unavailable,
                "code {unavailable}"
            );
        }
        for corrupt in [
            ffi::SQLITE_CORRUPT,
            ffi::SQLITE_NOTADB,
            ffi::SQLITE_INTERNAL,
            ffi::SQLITE_ERROR,
        ] {
            assert_eq!(code(corrupt), Failure::Corrupt, "code {corrupt}");
        }
        for refused in [
            ffi::SQLITE_CONSTRAINT,
            ffi::SQLITE_CONSTRAINT_CHECK,
            ffi::SQLITE_TOOBIG,
            ffi::SQLITE_MISMATCH,
            ffi::SQLITE_RANGE,
            ffi::SQLITE_MISUSE,
        ] {
            assert_eq!(code(refused), Failure::Refused, "code {refused}");
        }
        assert_eq!(
            failure_of(&rusqlite::Error::IntegralValueOutOfRange(0, -1)),
            Failure::Corrupt
        );
        assert_eq!(
            failure_of(&rusqlite::Error::QueryReturnedNoRows),
            Failure::Refused
        );
    }

    /// The same sorting of errors SQLite really raises: a database at its size limit (what a
    /// full disk gives), a write lock held by another connection, a CHECK constraint, and a
    /// file that is not a database.
    #[test]
    fn real_sqlite_errors_are_sorted_the_same_way() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("test.sqlite");
        let connection = Connection::open(&path).expect("opens");
        connection
            .execute_batch(
                "CREATE TABLE t (value BLOB NOT NULL CHECK (length(value) < 100000));
                 PRAGMA max_page_count = 8;",
            )
            .expect("schema");
        let full = connection
            .execute("INSERT INTO t VALUES (zeroblob(50000))", [])
            .expect_err("beyond the page limit");
        assert_eq!(
            full.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DiskFull)
        );
        assert_eq!(failure_of(&full), Failure::Unavailable);

        let refused = connection
            .execute("INSERT INTO t VALUES (zeroblob(200000))", [])
            .expect_err("the CHECK refuses it");
        assert_eq!(failure_of(&refused), Failure::Refused);

        let other = Connection::open(&path).expect("opens");
        other
            .busy_timeout(std::time::Duration::ZERO)
            .expect("no wait");
        connection
            .execute_batch("BEGIN IMMEDIATE")
            .expect("write lock");
        let busy = other
            .execute_batch("BEGIN IMMEDIATE")
            .expect_err("the lock is held");
        assert_eq!(failure_of(&busy), Failure::Unavailable);
        connection.execute_batch("ROLLBACK").expect("rolls back");

        let garbage = dir.path().join("garbage.sqlite");
        std::fs::write(&garbage, vec![0x5a; 4096]).expect("writes");
        let not_a_database = Connection::open(&garbage)
            .and_then(|connection| {
                connection.query_row("PRAGMA user_version", [], |row| row.get::<_, i64>(0))
            })
            .expect_err("not a database");
        assert_eq!(failure_of(&not_a_database), Failure::Corrupt);
    }
}
