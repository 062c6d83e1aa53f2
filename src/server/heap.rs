//! Giving memory the process freed back to the system.
//!
//! glibc's malloc keeps freed memory in its arenas for reuse and returns pages to
//! the system only from the top of a heap. A burst of many small allocations (a
//! /Bulk request's parsed operations: tens of thousands of JSON nodes, 32 requests
//! at once) leaves the heaps fragmented: the http bench measured 446 MB resident
//! after loading 100k users and 10k groups through /Bulk, of which `malloc_trim`
//! handed back all but 36 MB. Trimming walks the arenas' free lists and releases
//! every whole free page, so it is done after such a burst and, for the load paths
//! nobody singled out, now and then in the background.
//!
//! The daemon's Rust allocations have since moved to mimalloc (`src/main.rs`), which
//! returns freed pages by itself; what glibc's malloc still serves is C code's
//! memory (SQLite's caches and statements), and the trim keeps covering that.

use std::time::Duration;

/// How often the background trim runs. Trimming a heap that holds little free
/// memory takes well under a millisecond; the interval bounds how long a burst's
/// garbage stays resident, not the cost.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Releases the free pages malloc holds. Blocking (it walks the heaps under their
/// locks): call it off the async workers.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages of malloc's own heaps to the
    // system; it is thread-safe and touches no memory the program holds.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Starts the background trim for the life of the process (the daemon).
pub fn start_background_trim() {
    let spawned = std::thread::Builder::new()
        .name("heap-trim".into())
        .spawn(|| {
            loop {
                std::thread::park_timeout(TRIM_EVERY);
                release_free_memory();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the heap trim thread; freed memory stays with malloc");
    }
}
