//! Evidence and incidents in the monitor's state file: every evidence document is committed
//! here first and then exported to its file (written again from here where that failed), and
//! stands as an incident until an operator acknowledges it (see the [`super`] module's doc).

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use rusqlite::{params, OptionalExtension};

use super::{stored, StateError, StateStore, MAX_ACKNOWLEDGEMENT_BYTES};

/// A stored evidence document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvidence {
    /// The log it is about.
    pub origin: String,
    /// The alert it was raised with (`split-view`, ...).
    pub kind: String,
    /// Its file name in the evidence directory.
    pub file: String,
    /// The `cairn.evidence/v1` JSON document.
    pub document: Vec<u8>,
    /// The alert's account of it.
    pub detail: String,
    /// Unix seconds when it was found.
    pub found_at: u64,
}

/// A proven fork or inconsistency of a log: an evidence document kept in the state, and
/// whether an operator acknowledged it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Incident {
    /// Its number, which `cairn-monitor acknowledge` takes.
    pub id: i64,
    /// The log.
    pub origin: String,
    /// The alert it was raised with (`split-view`, ...).
    pub kind: String,
    /// The alert's account of it.
    pub detail: String,
    /// Unix seconds when it was found (0: by a monitor older than incidents).
    pub found_at: u64,
    /// Its evidence file's name in the evidence directory.
    pub evidence_file: String,
    /// Who acknowledged it, when and why; `None` while it stands.
    pub acknowledged: Option<Acknowledgement>,
}

/// An operator's acknowledgement of an incident.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Acknowledgement {
    /// Unix seconds.
    pub at: u64,
    /// Who.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// Why an incident could not be acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum AcknowledgeError {
    /// No incident has that number.
    #[error("no incident {0} in this state (`cairn-monitor incidents` lists them)")]
    Unknown(i64),
    /// It was acknowledged before; the first acknowledgement stands.
    #[error("incident {id} was already acknowledged by {} at unix time {}: {}", .by.by, .by.at, .by.reason)]
    Already {
        /// The incident.
        id: i64,
        /// The acknowledgement it has.
        by: Acknowledgement,
    },
    /// The name or the reason is empty or too long.
    #[error("{0}")]
    Invalid(String),
    /// The state failed.
    #[error(transparent)]
    State(#[from] StateError),
}

const INCIDENT_COLUMNS: &str = "id, origin, kind, detail, found_at, file, acknowledged_at,
    acknowledged_by, acknowledged_reason";

fn incident_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<Incident> {
    let acknowledged = match (
        row.get::<_, Option<u64>>(6)?,
        row.get::<_, Option<String>>(7)?,
        row.get::<_, Option<String>>(8)?,
    ) {
        (Some(at), Some(by), Some(reason)) => Some(Acknowledgement { at, by, reason }),
        _ => None,
    };
    Ok(Incident {
        id: row.get(0)?,
        origin: row.get(1)?,
        kind: row.get(2)?,
        detail: row.get(3)?,
        found_at: row.get(4)?,
        evidence_file: row.get(5)?,
        acknowledged,
    })
}

impl StateStore {
    /// Keeps an evidence document, durably, before anything else is done with it, as an
    /// incident that stands until it is acknowledged; returns the incident's number.
    pub fn record_evidence(&self, evidence: &StoredEvidence) -> Result<i64, StateError> {
        let found_at = stored(evidence.found_at)?;
        self.write(|transaction| {
            transaction.execute(
                "INSERT INTO evidence (origin, kind, file, document, detail, found_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (file) DO NOTHING",
                params![
                    evidence.origin,
                    evidence.kind,
                    evidence.file,
                    evidence.document,
                    evidence.detail,
                    found_at
                ],
            )?;
            Ok(transaction.query_row(
                "SELECT id FROM evidence WHERE file = ?1",
                [&evidence.file],
                |row| row.get(0),
            )?)
        })
    }

    /// Every incident, of `origin` or of every log, oldest first.
    pub fn incidents(&self, origin: Option<&str>) -> Result<Vec<Incident>, StateError> {
        let connection = self.connection();
        let mut statement = connection.prepare(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM evidence WHERE ?1 IS NULL OR origin = ?1 ORDER BY id"
        ))?;
        let rows = statement
            .query_map([origin], incident_of)?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// The incident of `origin` already kept for the same finding (kind and detail), if any:
    /// a fork seen again is the same incident, not a new one.
    pub fn find_incident(
        &self,
        origin: &str,
        kind: &str,
        detail: &str,
    ) -> Result<Option<Incident>, StateError> {
        Ok(self
            .connection()
            .query_row(
                &format!(
                    "SELECT {INCIDENT_COLUMNS} FROM evidence
                     WHERE origin = ?1 AND kind = ?2 AND detail = ?3 ORDER BY id LIMIT 1"
                ),
                [origin, kind, detail],
                incident_of,
            )
            .optional()?)
    }

    /// Records that `by` acknowledged incident `id` at `at` (unix seconds) for `reason`; the
    /// evidence stays. An incident is acknowledged once: a second time is refused and the
    /// first acknowledgement stands.
    pub fn acknowledge(
        &self,
        id: i64,
        by: &str,
        reason: &str,
        at: u64,
    ) -> Result<Incident, AcknowledgeError> {
        for (what, text) in [("--by", by), ("--reason", reason)] {
            if text.trim().is_empty() {
                return Err(AcknowledgeError::Invalid(format!("{what} is empty")));
            }
            if text.len() > MAX_ACKNOWLEDGEMENT_BYTES {
                return Err(AcknowledgeError::Invalid(format!(
                    "{what} is longer than {MAX_ACKNOWLEDGEMENT_BYTES} bytes"
                )));
            }
        }
        let at_stored = stored(at)?;
        let error = |error| AcknowledgeError::State(StateError::from(error));
        cairn_sqlite::write(&mut self.connection(), error, |transaction| {
            let incident = transaction
                .query_row(
                    &format!("SELECT {INCIDENT_COLUMNS} FROM evidence WHERE id = ?1"),
                    [id],
                    incident_of,
                )
                .optional()
                .map_err(StateError::from)?
                .ok_or(AcknowledgeError::Unknown(id))?;
            if let Some(by) = incident.acknowledged {
                return Err(AcknowledgeError::Already { id, by });
            }
            transaction
                .execute(
                    "UPDATE evidence SET acknowledged_at = ?2, acknowledged_by = ?3,
                     acknowledged_reason = ?4 WHERE id = ?1",
                    params![id, at_stored, by, reason],
                )
                .map_err(StateError::from)?;
            Ok(Incident {
                acknowledged: Some(Acknowledgement {
                    at,
                    by: by.to_owned(),
                    reason: reason.to_owned(),
                }),
                ..incident
            })
        })
    }

    /// Every evidence document kept, oldest first.
    pub fn evidence(&self) -> Result<Vec<StoredEvidence>, StateError> {
        let connection = self.connection();
        let mut statement = connection.prepare(
            "SELECT origin, kind, file, document, detail, found_at FROM evidence ORDER BY id",
        )?;
        let rows = statement
            .query_map([], |row| {
                Ok(StoredEvidence {
                    origin: row.get(0)?,
                    kind: row.get(1)?,
                    file: row.get(2)?,
                    document: row.get(3)?,
                    detail: row.get(4)?,
                    found_at: row.get(5)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(rows)
    }

    /// Writes the file of every evidence document kept for `origin` that `dir` lacks (one that
    /// could not be written when it was found); returns how many it wrote.
    pub fn export_evidence(&self, origin: &str, dir: &Path) -> Result<usize, StateError> {
        let files: Vec<String> = {
            let connection = self.connection();
            let mut statement =
                connection.prepare("SELECT file FROM evidence WHERE origin = ?1 ORDER BY id")?;
            let files = statement
                .query_map([origin], |row| row.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            files
        };
        let mut written = 0;
        for file in files {
            if dir.join(&file).is_file() {
                continue;
            }
            let document: Vec<u8> = self.connection().query_row(
                "SELECT document FROM evidence WHERE file = ?1",
                [&file],
                |row| row.get(0),
            )?;
            match write_durably(dir, &file, &document) {
                Ok(_) => {
                    tracing::info!(file, "evidence file written again from the monitor's state");
                    written += 1;
                }
                Err(error) => tracing::error!(%error, file, "could not write an evidence file"),
            }
        }
        Ok(written)
    }
}

/// Writes `bytes` as `dir/name` so that the file is either absent or whole, also after a crash
/// or a full disk: a temporary file written and fsynced, renamed, and the directory fsynced.
pub fn write_durably(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(name);
    let temporary = dir.join(format!(".{name}.tmp"));
    let written = (|| {
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, &path)?;
        File::open(dir)?.sync_all()
    })();
    if let Err(error) = written {
        // Leave nothing behind to take space.
        let _ = std::fs::remove_file(&temporary);
        return Err(error);
    }
    Ok(path)
}
