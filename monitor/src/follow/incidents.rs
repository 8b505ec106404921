//! What a follower does with what the log did wrong: raises the alert (once, active while it
//! lasts), keeps its evidence in the state file before writing its file (retried while the
//! state file cannot take it), and keeps the incidents of the state file, acknowledged or not,
//! in its alerts.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use cairn_spec::evidence::Evidence;

use super::{Follower, MAX_UNSAVED_EVIDENCE};
use crate::alert::{Alert, AlertKind};
use crate::clock::unix_now;
use crate::names::sanitize;
use crate::state::{write_durably, Incident, StoredEvidence};

impl Follower {
    pub(super) async fn raise(
        &mut self,
        kind: AlertKind,
        detail: String,
        evidence: Option<Evidence>,
    ) {
        self.raise_about(kind, String::new(), detail, evidence)
            .await;
    }

    /// Raises an alert of `kind` about `subject` (empty, or what tells apart several alerts of
    /// one kind). Without evidence it is active while polls find it; with evidence it is an
    /// incident, kept in the state: the same finding again (same kind and detail) is the same
    /// incident, and one an operator acknowledged is not raised again.
    pub(super) async fn raise_about(
        &mut self,
        kind: AlertKind,
        subject: String,
        detail: String,
        evidence: Option<Evidence>,
    ) {
        let origin = self.settings.origin().to_owned();
        // A log that rotated its key: the evidence carries its verified key history.
        let evidence = evidence.map(|evidence| self.keys.attach_history(evidence));
        let (incident, path) = match evidence {
            None => (None, None),
            Some(evidence) => match self.store.find_incident(&origin, kind.name(), &detail) {
                Ok(Some(known)) if known.acknowledged.is_some() => {
                    tracing::info!(
                        incident = known.id,
                        kind = kind.name(),
                        "found again, acknowledged before: {detail}"
                    );
                    return;
                }
                Ok(Some(known)) => (
                    Some(known.id),
                    Some(self.evidence_dir.join(&known.evidence_file)),
                ),
                Ok(None) => self.keep_evidence(kind, &detail, &evidence),
                Err(error) => {
                    tracing::error!(%error, "could not read the kept incidents");
                    self.store_failed();
                    let unsaved = self
                        .unsaved_evidence
                        .iter()
                        .any(|stored| stored.kind == kind.name() && stored.detail == detail);
                    if unsaved {
                        (None, None)
                    } else {
                        self.keep_evidence(kind, &detail, &evidence)
                    }
                }
            },
        };
        if incident.is_none() {
            self.observed.insert((kind, subject.clone()));
        }
        self.alerter
            .raise(Alert {
                kind,
                origin,
                detail,
                evidence: path,
                incident,
                subject,
            })
            .await;
    }

    /// The alert of a kept incident.
    pub(super) fn alert_of(&self, incident: &Incident) -> Option<Alert> {
        Some(Alert {
            kind: AlertKind::from_name(&incident.kind)?,
            origin: incident.origin.clone(),
            detail: incident.detail.clone(),
            evidence: Some(self.evidence_dir.join(&incident.evidence_file)),
            incident: Some(incident.id),
            subject: String::new(),
        })
    }

    /// Makes this log's standing incidents active (those found before this process started
    /// included), and resolves those an operator acknowledged since.
    pub(super) async fn refresh_incidents(&mut self) {
        let incidents = match self.store.incidents(Some(self.settings.origin())) {
            Ok(incidents) => incidents,
            Err(error) => {
                tracing::error!(%error, "could not read the kept incidents");
                self.store_failed();
                return;
            }
        };
        for incident in incidents.iter().filter(|i| i.acknowledged.is_none()) {
            if let Some(alert) = self.alert_of(incident) {
                self.alerter.restore(alert, incident.found_at);
            }
        }
        self.alerter
            .resolve(self.settings.origin(), |alert| {
                let id = alert.incident?;
                let acknowledged = incidents
                    .iter()
                    .find(|i| i.id == id)?
                    .acknowledged
                    .as_ref()?;
                Some(format!(
                    "acknowledged by {}: {}",
                    acknowledged.by, acknowledged.reason
                ))
            })
            .await;
    }

    /// Resolves this log's alerts without evidence that this poll did not find again: a
    /// `rewritten-tile` only once its tile was fetched again unchanged.
    pub(super) async fn resolve_unobserved(&mut self) {
        let (observed, rechecked) = (&self.observed, &self.rechecked);
        self.alerter
            .resolve(self.settings.origin(), |alert| {
                let found = alert.incident.is_some()
                    || observed.contains(&(alert.kind, alert.subject.clone()))
                    || (alert.kind == AlertKind::RewrittenTile
                        && !rechecked.contains(&alert.subject));
                (!found).then(|| "no longer found".to_owned())
            })
            .await;
    }

    /// Keeps evidence: committed to the state file first, then written to its file in the
    /// evidence directory; returns the file's path once it is written. A file that cannot be
    /// written now is written from the state at the next poll ([`StateStore::export_evidence`]);
    /// evidence the state file cannot take now waits in memory and is committed at the next
    /// poll.
    pub(super) fn keep_evidence(
        &mut self,
        kind: AlertKind,
        detail: &str,
        evidence: &Evidence,
    ) -> (Option<i64>, Option<PathBuf>) {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|elapsed| elapsed.as_nanos())
            .unwrap_or(0);
        let stored = StoredEvidence {
            origin: self.settings.origin().to_owned(),
            kind: kind.name().to_owned(),
            file: format!(
                "{}-{}-{nanos}.json",
                sanitize(self.settings.origin()),
                kind.name()
            ),
            document: evidence.to_json().into_bytes(),
            detail: detail.to_owned(),
            found_at: unix_now(),
        };
        let incident = match self.store.record_evidence(&stored) {
            Ok(incident) => Some(incident),
            Err(error) => {
                tracing::error!(%error, file = stored.file, "could not keep evidence in the state; retrying at the next poll");
                self.store_failed();
                if self.unsaved_evidence.len() < MAX_UNSAVED_EVIDENCE {
                    self.unsaved_evidence.push(stored.clone());
                }
                None
            }
        };
        let path = match write_durably(&self.evidence_dir, &stored.file, &stored.document) {
            Ok(path) => Some(path),
            Err(error) => {
                tracing::error!(%error, file = stored.file, "could not write an evidence file; it is written again from the state");
                None
            }
        };
        (incident, path)
    }

    /// Commits the evidence the state could not take before, and writes this log's evidence
    /// files that could not be written. A failure waits for the next poll: it does not stop
    /// this one.
    pub(super) fn retry_evidence(&mut self) {
        while let Some(stored) = self.unsaved_evidence.first() {
            if let Err(error) = self.store.record_evidence(stored) {
                tracing::error!(%error, "evidence still waits for the state file");
                return;
            }
            self.unsaved_evidence.remove(0);
        }
        if let Err(error) = self
            .store
            .export_evidence(self.settings.origin(), &self.evidence_dir)
        {
            tracing::error!(%error, "could not read the kept evidence");
        }
    }
}
