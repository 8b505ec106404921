//! Gossip: checkpoints the log signed that reach the monitor some other way than the log's own
//! `checkpoint` (from witnesses, peer monitors, uploads), and the log's own tiles fetched again.
//!
//! None of them ever enters the verified state; they are checked against it. A checkpoint of
//! the verified size must carry the verified root; a smaller one must be the root of a prefix of
//! the verified tree, which the monitor proves from the hashes it stored while verifying (never
//! from the log's proofs); a larger one is held until the monitor has verified that far. A
//! conflict is a split view, written out as `cairn.evidence/v1` (spec/docs/evidence.md) that
//! anyone holding the log's key can check. A full tile that changed after it was verified is a
//! rewrite, with the path from its subtree to the verified root as evidence.

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::evidence::{prefix_proof, Evidence};
use cairn_spec::merkle::{
    consistency_proof, inclusion_proof, root_from_leaf_hashes, HashReader, NodeId,
};
use cairn_spec::tiles::{decode_tile, Tile, TILE_WIDTH};
use cairn_spec::Hash;

use super::{Follower, GossipOutcome, VerifiedState, MAX_PENDING};
use crate::alert::AlertKind;
use crate::error::StoreError;
use crate::fetch::{join, MAX_CHECKPOINT_BYTES, MAX_TILE_BYTES};
use crate::hashes::HashFiles;
use crate::names::percent_encode;

impl Follower {
    /// Asks the witnesses for their latest checkpoints of this origin.
    pub(super) async fn gather_witnesses(&mut self) {
        let witnesses = self.settings.witnesses.clone();
        for witness in witnesses {
            let url = join(
                &witness,
                &format!("checkpoint/{}", percent_encode(self.settings.origin())),
            );
            match self.fetcher.get(&url, MAX_CHECKPOINT_BYTES).await {
                Ok(note) => {
                    self.gossip(&note, "witness").await;
                }
                Err(error) => {
                    tracing::debug!(%error, "witness fetch failed");
                    self.fetch_failed(&error, "witness");
                }
            }
        }
    }

    /// Checks a checkpoint someone else was shown (a witness, a peer, an uploader) against
    /// the verified tree. It never enters the verified state: only the log's own tiles do.
    pub async fn gossip(&mut self, note: &[u8], source: &str) -> GossipOutcome {
        // A checkpoint made with a revoked key does not open, but is a compromise to raise.
        self.check_compromises(note).await;
        let Some(signed) = self.open(note, source) else {
            return GossipOutcome::Refused;
        };
        self.alerter.metrics.count_gossip_checked();
        let verified_size = self.state.as_ref().map_or(0, |state| state.size);
        if signed.checkpoint.size > verified_size || self.state.is_none() {
            let known = self
                .pending
                .iter()
                .any(|(pending, _)| pending.as_slice() == note);
            if !known && self.pending.len() < MAX_PENDING {
                self.pending.push((note.to_vec(), signed.checkpoint));
            }
            return GossipOutcome::Pending;
        }
        if self.check_against_verified(note, &signed.checkpoint).await {
            GossipOutcome::SplitView
        } else {
            GossipOutcome::Consistent
        }
    }

    pub(super) async fn check_pending(&mut self) {
        let verified_size = self.state.as_ref().map_or(0, |state| state.size);
        let (ready, waiting): (Vec<_>, Vec<_>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(_, checkpoint)| checkpoint.size <= verified_size);
        self.pending = waiting;
        for (note, checkpoint) in ready {
            self.check_against_verified(&note, &checkpoint).await;
        }
    }

    /// Checks a validly signed checkpoint of at most the verified size against the verified
    /// tree; a conflict is a split view, with evidence.
    pub(super) async fn check_against_verified(
        &mut self,
        note: &[u8],
        checkpoint: &Checkpoint,
    ) -> bool {
        let Some(state) = self.state.clone() else {
            return false;
        };
        let Some(verified_root) = state.root_hash() else {
            return false;
        };
        if checkpoint.size == state.size {
            if checkpoint.root != verified_root {
                let evidence = Evidence::same_size(state.note.as_bytes(), note);
                self.raise(
                    AlertKind::SplitView,
                    format!(
                        "two signed roots for size {}: {} (verified) and {}",
                        state.size, verified_root, checkpoint.root
                    ),
                    Some(evidence),
                )
                .await;
                return true;
            }
            return false;
        }
        if checkpoint.size == 0 || checkpoint.size > state.size {
            return false;
        }
        match self
            .prefix_proof_of_verified(checkpoint.size, &state, verified_root)
            .await
        {
            Ok((prefix_root, proof)) => {
                if prefix_root != checkpoint.root {
                    let evidence = Evidence::not_an_extension(note, state.note.as_bytes(), &proof);
                    self.raise(
                        AlertKind::SplitView,
                        format!(
                            "signed checkpoint of size {} (root {}) is not a prefix of the \
                             verified tree of size {}",
                            checkpoint.size, checkpoint.root, state.size
                        ),
                        Some(evidence),
                    )
                    .await;
                    return true;
                }
                false
            }
            Err(error) => {
                tracing::warn!(%error, "could not read the verified tree's hashes to compare");
                self.store_failed();
                false
            }
        }
    }

    /// The root of the verified tree's first `old_size` leaves, and the prefix proof that shows
    /// it, from the hashes the monitor stored while verifying (never from the log).
    async fn prefix_proof_of_verified(
        &self,
        old_size: u64,
        state: &VerifiedState,
        _verified_root: Hash,
    ) -> Result<(Hash, Vec<Hash>), String> {
        let store = self.store(state.size);
        let proof =
            consistency_proof(old_size, state.size, &store).map_err(|error| error.to_string())?;
        let subtree = if old_size.is_power_of_two() {
            let node = NodeId::new(old_size.trailing_zeros() as u8, 0).ok_or("node")?;
            Some(
                store
                    .read_hashes(&[node])
                    .map_err(|error| error.to_string())?[0],
            )
        } else {
            None
        };
        let proof = prefix_proof(old_size, &proof, subtree);
        let (prefix_root, _) =
            cairn_spec::evidence::roots_from_prefix_proof(old_size, state.size, &proof)
                .map_err(|error| error.to_string())?;
        Ok((prefix_root, proof))
    }

    pub(super) fn store(&self, size: u64) -> VerifiedHashes<'_> {
        VerifiedHashes {
            size,
            files: &self.hashes,
        }
    }

    /// Fetches some verified full tiles again and compares them with what was verified.
    pub(super) async fn recheck_tiles(&mut self) {
        let Some(state) = self.state.clone() else {
            return;
        };
        let full_tiles = state.size / u64::from(TILE_WIDTH);
        if full_tiles == 0 || self.settings.recheck_tiles == 0 {
            return;
        }
        let mut cursor = state.recheck_cursor % full_tiles;
        for _ in 0..self.settings.recheck_tiles.min(full_tiles) {
            self.recheck_tile(cursor, &state).await;
            cursor = (cursor + 1) % full_tiles;
        }
        let mut state = state;
        state.recheck_cursor = cursor;
        if let Err(error) = self.persist(state, false) {
            tracing::error!(%error, "could not persist the recheck cursor");
        }
    }

    async fn recheck_tile(&mut self, index: u64, state: &VerifiedState) {
        let genuine = match self.hashes.tile_root(index) {
            Ok(genuine) => genuine,
            Err(error) => {
                tracing::warn!(%error, "could not read a verified tile root to recheck");
                self.store_failed();
                return;
            }
        };
        let tile = Tile::new(0, index, TILE_WIDTH).expect("full tile");
        let data = match self.source.get(&tile.path(), MAX_TILE_BYTES).await {
            Ok(data) => data,
            Err(_) => {
                self.alerter
                    .metrics
                    .count_fetch_error(Some(self.settings.origin()));
                return;
            }
        };
        let served = decode_tile(tile, &data)
            .map(|hashes| cairn_spec::merkle::root_from_leaf_hashes(&hashes))
            .ok();
        if served.is_none() {
            self.refused("log");
        }
        if served == Some(genuine) {
            self.rechecked.insert(tile.path());
            return;
        }
        let evidence = match (self.subtree_path(index, state), served) {
            (Some(path), Some(_)) => Some(Evidence::tile_mismatch(
                state.note.as_bytes(),
                tile,
                &data,
                genuine,
                &path,
            )),
            _ => None,
        };
        self.raise_about(
            AlertKind::RewrittenTile,
            tile.path(),
            format!("full tile {} changed after it was verified", tile.path()),
            evidence,
        )
        .await;
    }

    /// The path from the subtree of full tile `index` to the verified root, from the stored
    /// hashes: the part of the leaf's inclusion proof above height 8.
    fn subtree_path(&self, index: u64, state: &VerifiedState) -> Option<Vec<Hash>> {
        let proof = inclusion_proof(
            index * u64::from(TILE_WIDTH),
            state.size,
            &self.store(state.size),
        )
        .ok()?;
        Some(proof.get(8..)?.to_vec())
    }
}

/// The hashes of the verified tree as the monitor stored them: every leaf hash and every full
/// tile's subtree root. Nodes above height 8 are folded from those.
pub(super) struct VerifiedHashes<'a> {
    size: u64,
    files: &'a HashFiles,
}

impl VerifiedHashes<'_> {
    fn node(&self, node: NodeId) -> Result<Hash, StoreError> {
        if node.end_leaf() > self.size {
            return Err(StoreError(format!(
                "node at height {} index {} is outside the verified tree",
                node.height(),
                node.index()
            )));
        }
        let height = u32::from(node.height());
        let stored = if height < 8 {
            let count = 1usize << height;
            self.files
                .leaf_hashes(node.first_leaf(), count)
                .map(|hashes| root_from_leaf_hashes(&hashes))
        } else {
            self.files
                .subtree_of_tiles(node.index() << (height - 8), 1u64 << (height - 8))
        };
        stored.map_err(|error| StoreError(error.to_string()))
    }
}

impl HashReader for VerifiedHashes<'_> {
    type Error = StoreError;
    fn read_hashes(&self, nodes: &[NodeId]) -> Result<Vec<Hash>, StoreError> {
        nodes.iter().map(|&node| self.node(node)).collect()
    }
}
