//! # cairn-tests
//!
//! What Cairn is measured and checked with from the outside, over real sockets:
//! - [`load`]: the load generator behind `cairn-load`. It drives a server over keep-alive
//!   HTTP/1.1 connections, closed loop or at a fixed rate, and reports throughput, latency
//!   percentiles, status codes and errors.
//! - [`noop`]: the no-op HTTP server behind `cairn-noop`, the baseline a log server's figures
//!   are compared against (the same load, the same machine, the same run).
//! - [`sandbox`]: a whole Cairn (log, witnesses, timestamp authority, monitor) as real child
//!   processes on loopback, behind `cairn-sandbox` and the end-to-end tests in `tests/`.
//!
//! Nothing here depends on the server crates: the load generator and the tests speak the
//! documented HTTP APIs and run the real binaries, so they see Cairn as its users do.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod load;
pub mod noop;
pub mod sandbox;

/// A tokio runtime with `threads` workers (default: the CPUs this process may run on, which
/// `taskset` narrows). One thread gets a current-thread runtime: no work stealing, no
/// cross-thread wake-ups, which is what a process pinned to one core wants.
pub fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let threads = threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
}
