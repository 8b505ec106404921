//! The wall clock as Unix seconds: the times the monitor records and shows (when an alert
//! became active, when a poll ended, when a tree last grew, when an incident was found or
//! acknowledged). One function, so that every one of them is read the same way.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch now; 0 on a clock set before 1970 (a time the monitor then
/// records as unknown, never an error that would stop a poll).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs())
}
