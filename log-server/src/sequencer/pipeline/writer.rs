//! The writer thread of the [pipeline](super): it takes each pending batch, makes it durable
//! with one append, feeds the integrator the new leaves' hashes and hands the batch's
//! submitters to the answerer. When an append fails it refuses the failed batch and every one
//! numbered after it, and heals the store with growing pauses until appends are taken again
//! (the module comment of the pipeline says why).

use std::time::Duration;

use super::*;
use crate::sequencer::placement::{Translation, Translations};

/// The first pause before healing the store after a failed append; doubled after each failed
/// heal, up to [`MAX_HEAL_PAUSE`].
const FIRST_HEAL_PAUSE: Duration = Duration::from_millis(50);
const MAX_HEAL_PAUSE: Duration = Duration::from_secs(2);

pub(super) fn write_batches(
    store: Arc<dyn SequenceStore>,
    shared: &Shared,
    commits: &Mutex<CommitFigures>,
    durable_sender: watch::Sender<u64>,
    feed: &LeafHashFeed,
    answerer: &Answerer,
) {
    let placed_by_store = store.shared_by_front_ends();
    let mut translations = Translations::default();
    let mut durable_end = store.entry_count();
    loop {
        let (first_index, mut entries, mut waiters) = {
            let mut pending = shared.pending.lock();
            while pending.waiters.is_empty() && !pending.closed {
                shared.ready.wait(&mut pending);
            }
            if pending.waiters.is_empty() {
                return;
            }
            let recycled = std::mem::take(&mut pending.recycled);
            let entries = std::mem::replace(&mut pending.entries, recycled);
            let waiters = std::mem::take(&mut pending.waiters);
            let first_index = pending.first_index;
            pending.first_index += entries.len() as u64;
            pending.bytes = 0;
            (first_index, entries, waiters)
        };
        shared.room.notify_one();
        let appended = if entries.is_empty() {
            Ok(None)
        } else {
            let started = std::time::Instant::now();
            let appended = if placed_by_store {
                store.append_at_end(&entries).map(Some)
            } else {
                store
                    .append_entries(first_index, &entries)
                    .map(|()| Some(first_index))
            };
            if appended.is_ok() {
                commits.lock().record(entries.len(), started.elapsed());
            }
            appended
        };
        match appended {
            Ok(placed) => {
                let local_end = first_index + entries.len() as u64;
                if let Some(placed) = placed {
                    durable_end = durable_end.max(placed + entries.len() as u64);
                    // The feed first: a follower that sees the new durable size finds the
                    // hashes.
                    feed.push(placed, entries.iter().map(|entry| *entry.leaf_hash()));
                    if placed_by_store {
                        translations.add(Translation {
                            local_first: first_index,
                            local_end,
                            first: placed,
                        });
                    }
                }
                if placed_by_store {
                    let lost = translations.apply(&mut waiters);
                    if !lost.is_empty() {
                        tracing::error!(
                            submissions = lost.len(),
                            "answers named entries whose indices are no longer known; refused"
                        );
                        answerer.answer(
                            lost,
                            Err(SequencerError::StoreFailed(
                                "the index of a duplicate was lost; retry".into(),
                            )),
                        );
                    }
                }
                shared.durable.store(local_end, Ordering::Release);
                durable_sender.send_if_modified(|known| {
                    let grew = *known < durable_end;
                    *known = (*known).max(durable_end);
                    grew
                });
                answerer.answer(waiters, Ok(()));
            }
            Err(error) => {
                let answer = refusal(&error);
                let behind = refuse_from(shared, first_index, &error, &answer);
                answerer.answer(waiters, Err(answer.clone()));
                answerer.answer(behind, Err(answer));
                if !heal(store.as_ref(), shared, placed_by_store) {
                    return;
                }
            }
        }
        entries.clear();
        shared.pending.lock().recycled = entries;
    }
}

/// After the append at `first_index` failed: refuses new submissions, starts a new numbering
/// generation from `first_index` (the durable end), and returns the submitters of the batches
/// numbered behind the failed one, to be refused too.
fn refuse_from(
    shared: &Shared,
    first_index: u64,
    error: &StoreError,
    answer: &SequencerError,
) -> Vec<Waiter> {
    let mut pending = shared.pending.lock();
    if !shared.status.failed(Some(error.to_string())) {
        tracing::error!(%error, first_index, "appending entries failed; submissions are refused until the store is healed");
    }
    let behind = restart_numbering(shared, &mut pending, first_index, Some(answer.clone()));
    drop(pending);
    shared.room.notify_all();
    behind
}

/// Starts a new numbering generation at `first_index` (the durable end), refusing submissions
/// with `refusal` until the next restart (or taking them again, with `None`). Returns the
/// submitters waiting in the batch, whose entries are dropped: the caller refuses them.
fn restart_numbering(
    shared: &Shared,
    pending: &mut Pending,
    first_index: u64,
    refusal: Option<SequencerError>,
) -> Vec<Waiter> {
    shared.refusing.store(refusal.is_some(), Ordering::Release);
    *shared.refusal.lock() = refusal;
    pending.generation += 1;
    shared
        .generation
        .store(pending.generation, Ordering::Release);
    pending.first_index = first_index;
    pending.entries.clear();
    pending.bytes = 0;
    std::mem::take(&mut pending.waiters)
}

/// Heals the store with growing pauses until it takes appends again (true), or the sequencer
/// closes first (false).
fn heal(store: &dyn SequenceStore, shared: &Shared, placed_by_store: bool) -> bool {
    let mut pause = FIRST_HEAL_PAUSE;
    loop {
        {
            let mut pending = shared.pending.lock();
            if !pending.closed {
                shared.ready.wait_for(&mut pending, pause);
            }
            if pending.closed {
                return false;
            }
        }
        match store.heal() {
            Ok(()) => {
                // A shared store numbers locally: go on from the last durable local number.
                let durable = if placed_by_store {
                    shared.durable.load(Ordering::Acquire)
                } else {
                    store.entry_count()
                };
                let mut pending = shared.pending.lock();
                // No submission joins the batch while appends are refused (the generation
                // and the refusal change together); were one there, its entries were cleared.
                let stragglers = restart_numbering(shared, &mut pending, durable, None);
                let reason = shared.status.recovered();
                drop(pending);
                for waiter in stragglers {
                    waiter.answer(Err(SequencerError::StorageUnavailable));
                }
                tracing::info!(
                    durable,
                    reason = reason.as_deref().unwrap_or(""),
                    "the store is healed; appends resume"
                );
                return true;
            }
            Err(error) => {
                shared.status.failed(Some(error.to_string()));
                tracing::debug!(%error, "the store is not healed yet");
                pause = (pause * 2).min(MAX_HEAL_PAUSE);
            }
        }
    }
}
