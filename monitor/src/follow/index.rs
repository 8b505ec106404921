//! The index audit in the follower's poll ([`crate::index_audit`]): once a checkpoint with a
//! `cairn-index/v1` line is verified, the log's index record stream
//! (`GET /v1/index/records?offset=`, completeness.md §1.4) is replayed up to the checkpoint's
//! size, its root compared with the signed one, and the new leaves' entry bundles read again
//! and checked against the hashes the monitor verified, then re-derived against the replayed
//! records. Findings become `dishonest-index` alerts; omissions and inventions in an action's
//! list carry `index-omits` / `index-invents` evidence, which needs only the log's key to check.
//!
//! Only for event logs read over HTTP (a static mirror has no record stream). An audit that
//! found the index false stops for this process: its replay is no longer the log's index.

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::completeness::root_from_extensions;
use cairn_spec::evidence::index::IndexListing;
use cairn_spec::evidence::Evidence;
use cairn_spec::merkle::inclusion_proof;
use cairn_spec::note::Note;
use cairn_spec::tiles::{changed_entry_bundles, decode_entry_bundle};
use cairn_spec::Hash;

use super::Follower;
use crate::alert::AlertKind;
use crate::fetch::{LogSource, MAX_BUNDLE_BYTES};
use crate::index_audit::{Finding, IndexAudit};

/// Most bytes of the record stream asked for at once (the log answers at most 1 MiB).
const MAX_RECORDS_BYTES: usize = 1 << 20;
/// Most findings raised from one poll (the first ones; the audit stops after any).
const MAX_FINDINGS: usize = 16;

/// The index audit's state in a follower.
#[derive(Default)]
pub(crate) enum IndexAuditState {
    /// Not started: the checkpoint verified before this process started, if it carries an
    /// index root, which the replay must reach.
    #[default]
    NotStarted,
    /// Replaying.
    Running(Box<IndexAudit>),
    /// Stopped after a finding.
    Stopped,
}

/// The size and index root of a checkpoint note, if it carries one.
pub(crate) fn index_root_of(note: &[u8]) -> Option<(u64, Hash)> {
    let note = Note::parse(note).ok()?;
    let checkpoint = Checkpoint::from_note(&note).ok()?;
    let root = root_from_extensions(&checkpoint.extensions).ok()??;
    Some((checkpoint.size, root))
}

impl Follower {
    /// Audits the index up to the verified checkpoint.
    pub(super) async fn audit_index(&mut self) {
        if !self.settings.event_log || !matches!(self.source, LogSource::Http { .. }) {
            return;
        }
        let Some(state) = self.state.clone() else {
            return;
        };
        let Some((size, signed_root)) = index_root_of(state.note.as_bytes()) else {
            return;
        };
        let mut audit = match std::mem::take(&mut self.index_audit) {
            IndexAuditState::Stopped => {
                self.index_audit = IndexAuditState::Stopped;
                return;
            }
            IndexAuditState::Running(audit) => audit,
            IndexAuditState::NotStarted => {
                let mut audit = Box::new(IndexAudit::new());
                if let Some((size, root)) = self.index_seed.take() {
                    audit.expect(size, root);
                }
                audit
            }
        };
        let findings = match self.replay_to(&mut audit, size, signed_root).await {
            Err(None) => {
                // The log could not be read: try again at the next poll.
                self.index_audit = IndexAuditState::Running(audit);
                return;
            }
            Err(Some(finding)) => vec![finding],
            Ok(()) => match self.derive(&mut audit, size).await {
                None => {
                    self.index_audit = IndexAuditState::Running(audit);
                    return;
                }
                Some(findings) => findings,
            },
        };
        if findings.is_empty() {
            self.index_audit = IndexAuditState::Running(audit);
            return;
        }
        for finding in findings.into_iter().take(MAX_FINDINGS) {
            let evidence = self.index_evidence(&mut audit, &finding, &state.note).await;
            self.raise_about(
                AlertKind::DishonestIndex,
                finding.subject(),
                finding.detail(),
                evidence,
            )
            .await;
        }
        self.index_audit = IndexAuditState::Stopped;
    }

    /// Replays the stream to the mark of `size` and checks its root; `Err(None)` if the log
    /// could not be read.
    async fn replay_to(
        &mut self,
        audit: &mut IndexAudit,
        size: u64,
        signed_root: Hash,
    ) -> Result<(), Option<Finding>> {
        while audit.covered() < size {
            let path = format!("v1/index/records?offset={}", audit.stream_offset());
            let bytes = match self.source.get(&path, MAX_RECORDS_BYTES).await {
                Ok(bytes) => bytes,
                Err(error) => {
                    tracing::warn!(%error, "the log's index records could not be fetched");
                    self.fetch_failed(&error, "log");
                    return Err(None);
                }
            };
            if bytes.is_empty() {
                return Err(Some(Finding::Stream(format!(
                    "its records end at {} leaves, short of its checkpoint's {size}",
                    audit.covered()
                ))));
            }
            if audit.replay(&bytes, size).map_err(Some)? {
                break;
            }
        }
        if audit.covered() == size && audit.root() != signed_root {
            return Err(Some(Finding::Stream(format!(
                "its records replay to the root {} at size {size}, the checkpoint signs {}",
                audit.root(),
                signed_root
            ))));
        }
        Ok(())
    }

    /// Re-derives the leaves the audit has not seen, up to `size`, from their entry bundles
    /// (checked against the verified leaf hashes); `None` if they could not be read.
    async fn derive(&mut self, audit: &mut IndexAudit, size: u64) -> Option<Vec<Finding>> {
        let mut findings = Vec::new();
        for bundle in changed_entry_bundles(audit.derived(), size) {
            let Some(first) = bundle.first_entry() else {
                continue;
            };
            let data = match self.source.get(&bundle.path(), MAX_BUNDLE_BYTES).await {
                Ok(data) => data,
                Err(error) => {
                    self.fetch_failed(&error, "log");
                    return None;
                }
            };
            let entries = match decode_entry_bundle(bundle, &data) {
                Ok(entries) => entries,
                Err(error) => {
                    tracing::warn!(%error, "an entry bundle does not decode");
                    self.refused("log");
                    return None;
                }
            };
            let verified = match self.hashes.leaf_hashes(first, entries.len()) {
                Ok(hashes) => hashes,
                Err(error) => {
                    tracing::warn!(%error, "could not read the verified leaf hashes");
                    return None;
                }
            };
            for (offset, entry) in entries.iter().enumerate() {
                let index = first + offset as u64;
                if index < audit.derived() {
                    continue;
                }
                if Hash::of_leaf(entry) != verified[offset] {
                    // The tree's own check raises this; the index audit waits for good data.
                    self.refused("log");
                    return None;
                }
                findings.extend(audit.check_leaf(entry));
            }
        }
        Some(findings)
    }

    /// The evidence of an omission or invention in an action's list, if it can be built.
    async fn index_evidence(
        &mut self,
        audit: &mut IndexAudit,
        finding: &Finding,
        note: &str,
    ) -> Option<Evidence> {
        let (listing, action, leaf_index) = match finding {
            Finding::Omits { leaf_index, action } => (IndexListing::Omits, action, *leaf_index),
            Finding::Invents {
                leaf_index,
                listed_under,
            } => (IndexListing::Invents, listed_under, *leaf_index),
            _ => return None,
        };
        let (size, _) = index_root_of(note.as_bytes())?;
        let completeness = audit.proof_for(action, leaf_index)?;
        let proof = inclusion_proof(leaf_index, size, &self.store(size)).ok()?;
        let first = leaf_index - leaf_index % 256;
        let width = u16::try_from((size - first).min(256)).ok()?;
        let bundle = cairn_spec::tiles::EntryBundle::new(first / 256, width).ok()?;
        let data = self
            .source
            .get(&bundle.path(), MAX_BUNDLE_BYTES)
            .await
            .ok()?;
        let entries = decode_entry_bundle(bundle, &data).ok()?;
        let leaf = entries.get((leaf_index % 256) as usize)?;
        let evidence = Evidence::index_listing(
            listing,
            note.as_bytes(),
            leaf_index,
            leaf,
            &proof,
            completeness,
        );
        // Only evidence that proves the finding to others is kept as such.
        cairn_spec::evidence::verify_evidence(&evidence, &self.settings.key)
            .ok()
            .map(|_| evidence)
    }
}
