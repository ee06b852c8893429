//! CPU time of the current thread, for honest timings on a loaded machine.

use std::time::{Duration, Instant};

/// Time this thread has spent on a CPU, from Linux's `/proc/thread-self/schedstat` (so that
/// timings stay honest on a loaded machine); elsewhere, wall-clock time since a fixed instant.
pub fn thread_time() -> Duration {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map(Duration::from_nanos)
        .unwrap_or_else(|| START.get_or_init(Instant::now).elapsed())
}
