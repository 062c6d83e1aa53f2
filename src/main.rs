//! The `scim-bridge` binary; everything lives in the library.

/// mimalloc instead of glibc's malloc for everything Rust allocates: per-thread heaps
/// and free lists, about a fifth of the daemon's CPU per filtered GET, and freed
/// pages handed back to the system by the allocator itself. (SQLite's own
/// allocations stay with glibc, which `server::heap` still trims.)
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    scim_bridge::cli::main()
}
