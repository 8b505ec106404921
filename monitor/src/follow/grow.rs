//! Growing the verified tree to a new checkpoint: every level-0 tile (and entry bundle) from the
//! verified size on is fetched and checked, its leaf hashes folded into the compact range of the
//! verified tree, and the root so recomputed compared with the one the log signed. That single
//! comparison checks both consistency with what was verified before and the signed root, without
//! trusting any proof the log serves.
//!
//! A growth is a pipeline ([`crate::pipeline`]): batches of [`BATCH_TILES`] tiles are fetched
//! ahead and verified on every core, folded here in order (a few node hashes a tile), and
//! committed behind (hashes written and synced, then the progress record), so an interrupted
//! growth resumes from the last batch it committed. The steps below are that order: start (from
//! the verified tree or resumed progress), fold every batch, then conclude, alert or retry.

use std::time::Instant;

use cairn_spec::checkpoint::Checkpoint;
use cairn_spec::evidence::{Evidence, MAX_EVIDENCE_TILES};
use cairn_spec::merkle::CompactRange;
use cairn_spec::tiles::{decode_tile, Tile, TILE_WIDTH};
use cairn_spec::Hash;

use super::state::VerifiedState;
use super::Follower;
use crate::alert::AlertKind;
use crate::clock::unix_now;
use crate::error::FollowError;
use crate::fetch::{BufferPool, FetchError};
use crate::hashes::HashFiles;
use crate::pipeline::{Commit, Committer, Pipeline, Verified};
use crate::verify::{FetchedTile, VerifiedTile};

/// How many tiles are fetched, verified and committed together (65,536 leaves): large enough
/// that a commit (two fdatasyncs and a SQLite transaction) and starting the verifier threads are cheap
/// beside it, small enough that the pipeline fills quickly and an interruption loses little.
const BATCH_TILES: u64 = 256;

/// A growth under way: the checkpoint it grows to, the tree it started from, the leaves folded
/// so far, and what the evidence of a root mismatch would need.
struct Growth {
    /// The checkpoint note grown to, as served, and what it says.
    note: Vec<u8>,
    checkpoint: Checkpoint,
    /// The verified tree the growth started from, and its note (none before the first growth).
    old_range: CompactRange,
    old_note: Option<String>,
    /// The leaves hashed from tiles so far: the verified tree's, or an interrupted growth's.
    range: CompactRange,
    /// Whether the growth resumed from an interrupted one's progress.
    resuming: bool,
    /// The size the growth started from, and when, for the progress line.
    from: u64,
    started: Instant,
    /// The tiles served from the verified tree on, for evidence.
    served: ServedTiles,
    /// A partial tile verified before that the log now serves with other leading hashes.
    rewritten_partial: Option<Tile>,
}

/// How a growth's batches ended.
enum Folded {
    /// Every tile up to the checkpoint's size was folded; the root is still to compare.
    Complete,
    /// A batch did not verify (a leaf hash, a tile root or an event was wrong).
    Corrupt(String),
    /// Fetching stopped early; what was folded before is committed, to resume from.
    Interrupted(FetchError),
}

/// The tiles served from the verified tree on, kept for the evidence of a root mismatch: their
/// bytes are in the hash files once committed, except the first tile's hashes below the
/// verified size, so that tile's bytes are kept as served (`first`). Evidence carries every such
/// tile; a growth that is resumed, or too long for one evidence file, cannot (`keep` false).
struct ServedTiles {
    keep: bool,
    tiles: Vec<Tile>,
    first: Option<(Tile, Vec<u8>)>,
}

impl ServedTiles {
    /// Notes a tile as served; `skip` of its leaves were verified before this growth.
    fn record(&mut self, tile: Tile, data: &[u8], skip: usize) {
        if self.keep && self.tiles.len() < MAX_EVIDENCE_TILES {
            if skip > 0 {
                self.first = Some((tile, data.to_vec()));
            }
            self.tiles.push(tile);
        } else {
            self.keep = false;
            self.tiles.clear();
        }
    }
}

impl Growth {
    /// Folds one verified batch into the range, in order, and says what to commit for it.
    fn fold_batch(
        &mut self,
        fetched: Vec<FetchedTile>,
        verified: Vec<VerifiedTile>,
        hashes: &HashFiles,
        buffers: &BufferPool,
    ) -> Commit {
        let width = u64::from(TILE_WIDTH);
        let first_leaf = self.range.tree_size();
        let mut tiles = Vec::with_capacity(fetched.len());
        let mut tile_roots: Vec<(u64, Hash)> = Vec::new();
        for (
            FetchedTile {
                tile,
                data,
                entries,
            },
            VerifiedTile { subtree },
        ) in fetched.into_iter().zip(verified)
        {
            if let Some(entries) = entries {
                buffers.give(entries);
            }
            let skip = self.fold_tile(tile, &data, subtree, hashes, &mut tile_roots);
            self.served.record(tile, &data, skip);
            tiles.push((tile.index() * width, data));
        }
        // Progress is resumable only at a tile boundary short of the checkpoint.
        let progress = (self.range.tree_size().is_multiple_of(width)
            && self.range.tree_size() < self.checkpoint.size)
            .then(|| self.range.clone());
        Commit {
            first_leaf,
            tiles,
            tile_roots,
            progress,
        }
    }

    /// Folds one verified tile into the range: a full tile whose leaves are all new as its
    /// subtree root (one node), any other as its new leaf hashes. Pushes the roots of the full
    /// tiles it completes onto `tile_roots`, and returns how many of its leaves were folded
    /// before this growth.
    fn fold_tile(
        &mut self,
        tile: Tile,
        data: &[u8],
        subtree: Option<Hash>,
        hashes: &HashFiles,
        tile_roots: &mut Vec<(u64, Hash)>,
    ) -> usize {
        let width = u64::from(TILE_WIDTH);
        let skip =
            usize::try_from(self.range.tree_size() - tile.index() * width).expect("below 256");
        match subtree {
            Some(tile_root) if skip == 0 => {
                self.range = append_tile_root(&self.range, tile_root);
                tile_roots.push((tile.index(), tile_root));
            }
            _ => {
                let leaf_hashes = decode_tile(tile, data).expect("verified tiles decode");
                let known = skip.min(leaf_hashes.len());
                // The first hashes of a tile that was partial were verified before: they stay
                // as verified; notice if the log now serves others.
                let stored = hashes.leaf_hashes(tile.index() * width, known).ok();
                if stored.is_some_and(|stored| stored[..] != leaf_hashes[..known]) {
                    self.rewritten_partial = Some(tile);
                }
                self.range
                    .extend_with(&leaf_hashes[known..], |node, hash| {
                        if node.height() == 8 {
                            tile_roots.push((node.index(), *hash));
                        }
                    })
                    .expect("tree size bounded by the checkpoint");
            }
        }
        skip
    }
}

impl Follower {
    /// Fetches and verifies the leaves from the verified size to `checkpoint.size`, and makes
    /// that the verified state if the root they give is the one the log signed; otherwise says
    /// why not.
    pub(super) async fn grow(
        &mut self,
        note: Vec<u8>,
        checkpoint: Checkpoint,
    ) -> Result<Result<(), String>, FollowError> {
        let mut growth = self.start_growth(note, checkpoint);
        let size = growth.checkpoint.size;
        Ok(match self.fold_batches(&mut growth).await? {
            Folded::Corrupt(problem) => {
                self.report_corrupt(&growth, problem.clone()).await;
                Err(format!(
                    "the log's data for size {size} is corrupt: {problem}"
                ))
            }
            Folded::Interrupted(error) => {
                tracing::warn!(%error, "fetching tiles failed; will retry next poll");
                self.fetch_failed(&error, "log");
                Err(format!(
                    "incomplete: {} of {size} leaves verified when fetching stopped: {error} \
                     (what was verified is kept; the next run resumes there)",
                    growth.range.tree_size()
                ))
            }
            Folded::Complete if growth.range.root() != growth.checkpoint.root => {
                let problem =
                    format!("the tiles of size {size} do not give the root the log signed");
                self.report_root_mismatch(growth).await?;
                Err(problem)
            }
            Folded::Complete => {
                self.conclude_growth(growth).await?;
                Ok(())
            }
        })
    }

    /// A growth towards `checkpoint`, from resumable progress if there is some, else from the
    /// verified tree.
    fn start_growth(&self, note: Vec<u8>, checkpoint: Checkpoint) -> Growth {
        let old_range = match &self.state {
            Some(state) => state.range().unwrap_or_default(),
            None => CompactRange::new(),
        };
        let resumed = self.resumable_progress(checkpoint.size);
        let resuming = resumed.is_some();
        let range = resumed.unwrap_or_else(|| old_range.clone());
        if resuming {
            tracing::info!(
                from = range.tree_size(),
                to = checkpoint.size,
                origin = self.settings.origin(),
                "resuming an interrupted verification"
            );
        }
        Growth {
            note,
            checkpoint,
            old_range,
            old_note: self.state.as_ref().map(|state| state.note.clone()),
            from: range.tree_size(),
            range,
            resuming,
            started: Instant::now(),
            served: ServedTiles {
                keep: !resuming,
                tiles: Vec::new(),
                first: None,
            },
            rewritten_partial: None,
        }
    }

    /// Runs the pipeline over the growth's tiles, folding each verified batch in order and
    /// committing it behind. Every commit is durable when this returns, whatever the outcome.
    async fn fold_batches(&self, growth: &mut Growth) -> Result<Folded, FollowError> {
        let width = u64::from(TILE_WIDTH);
        let size = growth.checkpoint.size;
        let mut pipeline = Pipeline::start(
            self.source.clone(),
            (growth.from / width, size.div_ceil(width), size),
            BATCH_TILES,
            self.settings.check_entries || self.settings.event_log,
            self.settings.event_log,
        );
        let mut committer = Committer::start(
            self.hashes.clone(),
            self.store.clone(),
            self.settings.origin().to_owned(),
            pipeline.buffers().clone(),
        );
        while let Some(Verified {
            fetched,
            verified,
            failure,
        }) = pipeline.next().await?
        {
            let verified = match verified {
                Ok(verified) => verified,
                Err(problem) => {
                    // What was verified before stays committed, to resume from.
                    committer.finish().await?;
                    return Ok(Folded::Corrupt(problem));
                }
            };
            let commit = growth.fold_batch(fetched, verified, &self.hashes, pipeline.buffers());
            committer = committer.send(commit).await?;
            self.show_progress(
                (growth.from, growth.range.tree_size(), size),
                growth.started,
            );
            if let Some(error) = failure {
                committer.finish().await?;
                return Ok(Folded::Interrupted(error));
            }
        }
        committer.finish().await?;
        Ok(Folded::Complete)
    }

    /// A batch that did not verify: refused input, and an alert.
    async fn report_corrupt(&mut self, growth: &Growth, problem: String) {
        self.refused("log");
        self.raise(
            AlertKind::CorruptData,
            format!(
                "log data for size {} is corrupt: {problem}",
                growth.checkpoint.size
            ),
            None,
        )
        .await;
    }

    /// The tiles do not give the signed root: the progress towards it is forgotten and an alert
    /// raised, with the served tiles as evidence when the growth kept them.
    async fn report_root_mismatch(&mut self, growth: Growth) -> Result<(), FollowError> {
        self.store.forget_progress(self.settings.origin())?;
        let old = growth
            .old_note
            .as_ref()
            .map(|note| (note.as_bytes(), growth.old_range.frontier()));
        // A resumed growth no longer holds the tiles served before the interruption; the
        // next poll starts again from the verified tree and writes the evidence.
        let evidence = if growth.served.keep {
            match self.served_tiles(&growth.served.tiles, growth.served.first) {
                Ok(served) => Some(Evidence::root_mismatch(old, &growth.note, &served)),
                Err(error) => {
                    tracing::error!(%error, "could not read back the served tiles");
                    None
                }
            }
        } else {
            None
        };
        let resumed_note = if growth.resuming {
            " (after resuming; the evidence follows from the next poll)"
        } else {
            ""
        };
        let checkpoint = &growth.checkpoint;
        self.raise(
            AlertKind::RootMismatch,
            format!(
                "signed root {} for size {} but the tiles give {}{resumed_note}",
                checkpoint.root,
                checkpoint.size,
                growth.range.root()
            ),
            evidence,
        )
        .await;
        Ok(())
    }

    /// The tiles give the signed root: the checkpoint becomes the verified state.
    async fn conclude_growth(&mut self, growth: Growth) -> Result<(), FollowError> {
        if let Some(tile) = growth.rewritten_partial {
            self.raise_about(
                AlertKind::RewrittenTile,
                tile.path(),
                format!(
                    "tile {} now serves other hashes for leaves verified before",
                    tile.path()
                ),
                None,
            )
            .await;
        }
        let size = growth.checkpoint.size;
        let state = VerifiedState {
            note: String::from_utf8_lossy(&growth.note).into_owned(),
            size,
            root: growth.checkpoint.root.to_base64(),
            frontier: growth
                .range
                .frontier()
                .iter()
                .map(Hash::to_base64)
                .collect(),
            grown_at: unix_now(),
            recheck_cursor: self.state.as_ref().map_or(0, |state| state.recheck_cursor),
        };
        self.persist(state, true)?;
        self.alerter
            .metrics
            .set_verified_size(self.settings.origin(), size);
        tracing::info!(size, origin = self.settings.origin(), "verified");
        self.check_pending().await;
        Ok(())
    }

    /// The bytes of `tiles` as served during a growth: the first one's as kept (`first`, when
    /// its first hashes were verified before), the others' as committed to the hash files.
    fn served_tiles(
        &self,
        tiles: &[Tile],
        mut first: Option<(Tile, Vec<u8>)>,
    ) -> std::io::Result<Vec<(Tile, Vec<u8>)>> {
        let width = u64::from(TILE_WIDTH);
        tiles
            .iter()
            .map(|&tile| match first.take_if(|(kept, _)| *kept == tile) {
                Some(kept) => Ok(kept),
                None => self
                    .hashes
                    .leaf_hash_bytes(tile.index() * width, usize::from(tile.width()))
                    .map(|data| (tile, data)),
            })
            .collect()
    }

    /// Shows `done` of `total` leaves, and the rate since the growth started at `from`.
    fn show_progress(&self, (from, done, total): (u64, u64, u64), started: std::time::Instant) {
        if !self.progress {
            return;
        }
        let seconds = started.elapsed().as_secs_f64().max(1e-3);
        let percent = if total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / total as f64
        };
        eprint!(
            "\r{}: {done} of {total} leaves ({percent:.1}%), {:.2} M leaves/s   ",
            self.settings.origin(),
            (done - from) as f64 / seconds / 1e6
        );
        if done >= total {
            eprintln!();
        }
    }

    /// Shows a progress line on stderr while growing (for `audit`).
    pub fn set_progress(&mut self, progress: bool) {
        self.progress = progress;
    }
}

/// Appends the root of a full level-0 tile to a range that ends on a tile boundary. There the
/// frontier holds only nodes of height 8 or more, so it is also the frontier of the tree whose
/// leaves are the tiles' subtree roots (a node hashes the same way at every height, RFC 9162
/// §2.1.1): append in that tree, and scale back.
fn append_tile_root(range: &CompactRange, tile_root: Hash) -> CompactRange {
    let width = u64::from(TILE_WIDTH);
    let mut tiles =
        CompactRange::from_frontier(range.tree_size() / width, range.frontier().to_vec())
            .expect("a tile-aligned frontier is a frontier of tiles");
    tiles
        .append(tile_root)
        .expect("tree size bounded by the checkpoint");
    CompactRange::from_frontier(tiles.tree_size() * width, tiles.frontier().to_vec())
        .expect("the same frontier, in leaves")
}
