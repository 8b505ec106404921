//! Indices placed by a store shared by several front-ends: the committer numbers entries in a
//! local space from [`LOCAL_BASE`] up, and the writer turns each answer's local number into the
//! index the store gave (see the [pipeline](super::pipeline) documentation).

use std::collections::VecDeque;

use super::pipeline::Waiter;

/// Where local numbering starts for a store shared by several front-ends: above every index a
/// store gives (PostgreSQL's `bigint` ends at 2^63 - 1).
pub(super) const LOCAL_BASE: u64 = 1 << 63;

/// How many written batches' local numbers the writer can still translate.
const TRANSLATIONS_KEPT: usize = 8;

/// The local numbers `[local_first, local_end)` of a written batch and the index the store gave
/// its first entry.
#[derive(Clone, Copy)]
pub(super) struct Translation {
    pub(super) local_first: u64,
    pub(super) local_end: u64,
    pub(super) first: u64,
}

/// The store's indices of recent batches, for answers numbered locally.
#[derive(Default)]
pub(super) struct Translations {
    recent: VecDeque<Translation>,
}

impl Translations {
    pub(super) fn add(&mut self, translation: Translation) {
        if self.recent.len() == TRANSLATIONS_KEPT {
            self.recent.pop_front();
        }
        self.recent.push_back(translation);
    }

    /// The store's index for `index`, if it is a local number of a batch written recently
    /// (`None` if it is local and unknown); a store's index unchanged.
    fn translate(&self, index: u64) -> Option<u64> {
        if index < LOCAL_BASE {
            return Some(index);
        }
        self.recent
            .iter()
            .rev()
            .find(|batch| (batch.local_first..batch.local_end).contains(&index))
            .map(|batch| batch.first + (index - batch.local_first))
    }

    /// Rewrites the answers of `waiters` with the store's indices; a waiter whose answer names
    /// a local number no longer known is refused (it cannot happen while the committer forgets
    /// in-flight entries once durable).
    pub(super) fn apply(&self, waiters: &mut Vec<Waiter>) -> Vec<Waiter> {
        let mut lost = Vec::new();
        let mut kept = Vec::with_capacity(waiters.len());
        for mut waiter in waiters.drain(..) {
            let mut whole = true;
            for answer in &mut waiter.answers {
                match self.translate(answer.index) {
                    Some(index) => answer.index = index,
                    None => whole = false,
                }
            }
            if whole {
                kept.push(waiter);
            } else {
                lost.push(waiter);
            }
        }
        *waiters = kept;
        lost
    }
}
