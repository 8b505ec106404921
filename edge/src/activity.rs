//! What one connection's pieces tell each other: whether a request is in flight, whether bytes
//! moved, and whether the body of the request in flight arrived too slowly.
//!
//! The socket wrapper, the service and the idle watcher ([`crate::connection`]) and the paced
//! body ([`crate::body`]) each hold the connection's one [`Activity`]; it is a leaf so that
//! the body and the connection both use it without using each other. Atomic flags, no lock:
//! each is a hint read at the next check, and orders nothing else.

use std::sync::atomic::{AtomicBool, Ordering};

/// What one connection's pieces tell each other.
#[derive(Debug, Default)]
pub struct Activity {
    /// A request is being handled (HTTP/1.1: at most one at a time).
    busy: AtomicBool,
    /// Bytes were read or written since the watcher last looked.
    moved: AtomicBool,
    /// The body of the request in flight arrived too slowly.
    body_too_slow: AtomicBool,
}

impl Activity {
    /// Notes that the body of the request in flight arrived too slowly.
    pub(crate) fn mark_body_too_slow(&self) {
        self.body_too_slow.store(true, Ordering::Relaxed);
    }

    /// Notes that bytes were read or written.
    pub(crate) fn mark_moved(&self) {
        self.moved.store(true, Ordering::Relaxed);
    }

    /// Notes that a request is in flight, its body not (yet) too slow.
    pub(crate) fn begin_request(&self) {
        self.body_too_slow.store(false, Ordering::Relaxed);
        self.busy.store(true, Ordering::Relaxed);
    }

    /// Ends the request; whether its body was too slow.
    pub(crate) fn end_request(&self) -> bool {
        self.busy.store(false, Ordering::Relaxed);
        self.moved.store(true, Ordering::Relaxed);
        self.body_too_slow.swap(false, Ordering::Relaxed)
    }

    /// Whether the connection did anything since the last call.
    pub(crate) fn take_activity(&self) -> bool {
        self.moved.swap(false, Ordering::Relaxed) || self.busy.load(Ordering::Relaxed)
    }
}
