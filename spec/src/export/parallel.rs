//! The events of a bundle checked on every core: each event's checks (its leaf, its contents,
//! its inclusion proof) depend on nothing but the event and what the whole bundle shares, so a
//! bundle is cut into one contiguous run of events per thread. The answer is the one checking
//! them in order would give: every result in order, or the error of the first event that fails.
//!
//! Where threads cannot be started (the browser's WebAssembly verifier) or the bundle is small,
//! the events are checked on the calling thread.

use std::num::NonZeroUsize;

/// Fewer events than this a thread are checked on the calling thread: starting a thread costs
/// about what checking a few hundred events does.
const MIN_EVENTS_PER_THREAD: usize = 2048;

/// `check` of every item, in order, on up to every core; on failure, the error of the first item
/// (lowest position) that fails.
pub(super) fn check_all<T, R, E>(
    items: &[T],
    check: impl Fn(usize, &T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    check_all_with(items, || (), |(), position, item| check(position, item))
}

/// [`check_all`] with a state of each thread's own (made by `state`) that `check` is given
/// with each item of its run, in order: what one item's check leaves there for the next.
pub(super) fn check_all_with<T, S, R, E>(
    items: &[T],
    state: impl Fn() -> S + Sync,
    check: impl Fn(&mut S, usize, &T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E>
where
    T: Sync,
    R: Send,
    E: Send,
{
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    let threads = cores.min(items.len() / MIN_EVENTS_PER_THREAD).max(1);
    let run = |first: usize, chunk: &[T]| -> Result<Vec<R>, E> {
        let mut state = state();
        chunk
            .iter()
            .enumerate()
            .map(|(offset, item)| check(&mut state, first + offset, item))
            .collect()
    };
    if threads == 1 {
        return run(0, items);
    }
    let per_thread = items.len().div_ceil(threads);
    let chunks: Vec<Result<Vec<R>, E>> = std::thread::scope(|scope| {
        let run = &run;
        let mut chunks = items.chunks(per_thread).enumerate();
        let (_, first_chunk) = chunks.next().expect("at least one chunk");
        let others: Vec<_> = chunks
            .map(|(number, chunk)| scope.spawn(move || run(number * per_thread, chunk)))
            .collect();
        let mut results = vec![run(0, first_chunk)];
        for other in others {
            match other.join() {
                Ok(result) => results.push(result),
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        results
    });
    let mut all = Vec::with_capacity(items.len());
    for chunk in chunks {
        // Chunks in order: the first that failed holds the first failing item.
        all.extend(chunk?);
    }
    Ok(all)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_in_order_and_the_first_error_whatever_the_size() {
        for count in [0, 1, 5, MIN_EVENTS_PER_THREAD * 3 + 17] {
            let items: Vec<usize> = (0..count).collect();
            let doubled = check_all(&items, |position, &item| {
                assert_eq!(position, item);
                Ok::<_, usize>(item * 2)
            });
            assert_eq!(doubled, Ok(items.iter().map(|item| item * 2).collect()));
            for bad in [0, count / 2, count.saturating_sub(1)] {
                if count == 0 {
                    continue;
                }
                // Every item from `bad` on fails: the first failure is `bad`'s.
                let result = check_all(&items, |position, _| {
                    if position >= bad {
                        Err(position)
                    } else {
                        Ok(())
                    }
                });
                assert_eq!(result, Err(bad), "{count} items, first bad {bad}");
            }
        }
    }
}
