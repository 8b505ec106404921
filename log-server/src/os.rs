//! The one operating-system setting cairn-log makes that has no safe wrapper: the scheduling
//! class of its background threads.
//!
//! The sequencer's committer and writer, the payload writer and the events indexer each wake
//! for a moment per batch. Under Linux's default policy a thread that wakes preempts the one
//! running, so on a loaded core every submission handed to the committer cost two context
//! switches: the runtime worker was interrupted in the middle of reading requests, the
//! committer took one submission, and the worker resumed. `SCHED_BATCH` keeps the thread's CPU
//! share and only takes away that wake-up preemption: the woken thread waits for the worker to
//! finish what it is doing (or for the next tick) and then takes everything that came
//! meanwhile. Measured on single-leaf `/add` with the server on one core
//! (`benchmarks/history.md`, "Background threads in SCHED_BATCH"): 2.1–2.2 context switches a
//! request before, 0.24–0.27 after.
//!
//! A thread that already runs under another policy (a real-time one chosen by an operator with
//! `chrt`, say) keeps it: demoting it below the runtime's real-time threads would starve it.

#![allow(unsafe_code)]

/// Puts the calling thread in the `SCHED_BATCH` class if it is in the default one (Linux; a
/// no-op elsewhere). Failure only costs speed, so it is logged, not returned.
pub(crate) fn become_batch_thread() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: `sched_getscheduler(0)` reads the calling thread's policy; it takes no
        // pointer.
        let policy = unsafe { libc::sched_getscheduler(0) };
        if policy != libc::SCHED_OTHER {
            return;
        }
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid `sched_param` that outlives the call, which only reads it;
        // pid 0 names the calling thread.
        let result = unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) };
        if result != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "could not put a background thread in SCHED_BATCH"
            );
        }
    }
}
