//! Read snapshots kept across point reads while the database has not changed.
//!
//! In WAL mode every read transaction takes a read-mark lock on the WAL index when
//! it begins and drops it when it ends: an `fcntl` on the `-shm` file whenever no
//! other connection of this process holds that mark, under a process-wide mutex the
//! daemon's worker threads contend for. A point read (one index probe) paid this
//! twice, about a tenth of a lookup's CPU.
//!
//! A reader connection now keeps its read transaction open after a point read and
//! reuses it for the next one while the WAL-index header is byte for byte the one
//! read before the transaction began. Every commit, by any connection in any process
//! (the CLI writes the file itself), rewrites that header before the commit returns
//! (`iChange` counts transactions; `mxFrame`, the salts and a checksum move with
//! it), so an unchanged header means no commit since, and the kept snapshot is what
//! a new transaction would see. Reads stay exactly as fresh as before: a write
//! acknowledged by this daemon or any other process is seen by the next read.
//!
//! The header is the first 48 bytes of the `-shm` file, twice (SQLite writes the
//! second copy, then the first; a reader that finds them different is looking at a
//! write in progress). It is read here through a read-only shared mapping of that
//! file's first page, as SQLite itself maps it. Its layout is documented ("WAL-Index
//! Format" in SQLite's file format notes); the header's version field is checked, and
//! any other version, or a file that cannot be mapped, only means every read begins
//! its own transaction again, as before. A kept snapshot holds back checkpoints like
//! any open reader, so the checkpointer ends the ones left idle and out of date
//! ([`super::ReadPool::release_stale`]).

use std::fs::File;
use std::os::fd::AsRawFd;
use std::path::Path;

/// `WALINDEX_MAX_VERSION` in SQLite's `wal.c`: the header layout read here.
const WAL_INDEX_VERSION: u32 = 3_007_000;
/// `sizeof(WalIndexHdr)`.
const HEADER: usize = 48;
/// Offset of `isInit` (after `iVersion`, `unused` and `iChange`).
const IS_INIT: usize = 12;
/// What is mapped: the first page holds both copies of the header.
const MAPPED: usize = 4096;

/// The WAL-index header as read at one moment.
pub(super) type Stamp = [u8; HEADER];

/// A read-only view of the database's WAL-index header.
pub(super) struct WalIndex {
    base: *const u8,
}

// SAFETY: the mapping is read-only and lives until `Drop`; reads go through
// `read_volatile` on memory that only other code (SQLite, other processes) writes.
unsafe impl Send for WalIndex {}
// SAFETY: as above; `stamp` takes `&self` and never writes.
unsafe impl Sync for WalIndex {}

impl WalIndex {
    /// Maps the `-shm` file of the database at `db`; `None` when there is none to map
    /// (not yet created, or smaller than a page), which leaves reads as they were.
    /// Call it while a connection has the database open in WAL mode: SQLite only
    /// empties the file when it is the first to open it, never while it is in use.
    pub(super) fn open(db: &Path) -> Option<WalIndex> {
        let mut name = db.as_os_str().to_owned();
        name.push("-shm");
        let file = File::open(&name).ok()?;
        let len = file.metadata().ok()?.len();
        if len < MAPPED as u64 {
            return None;
        }
        // SAFETY: a fresh read-only shared mapping of the file's first page, which
        // exists (checked above); the descriptor may close after mmap returns.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                MAPPED,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return None;
        }
        let index = WalIndex {
            base: base.cast::<u8>().cast_const(),
        };
        // A layout this code does not know is left alone.
        index.stamp().map(|_| index)
    }

    /// The header, or `None` while a commit is rewriting it or when it is not one
    /// this code knows how to read.
    pub(super) fn stamp(&self) -> Option<Stamp> {
        // SAFETY: both copies lie within the mapped page; volatile reads because
        // other processes write this memory. Read as SQLite's `walIndexTryHdr` does:
        // the first copy, a barrier, the second copy.
        let (first, second) = unsafe {
            let first = std::ptr::read_volatile(self.base.cast::<Stamp>());
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            let second = std::ptr::read_volatile(self.base.add(HEADER).cast::<Stamp>());
            (first, second)
        };
        let version = u32::from_ne_bytes([first[0], first[1], first[2], first[3]]);
        (first == second && version == WAL_INDEX_VERSION && first[IS_INIT] == 1).then_some(first)
    }
}

impl Drop for WalIndex {
    fn drop(&mut self) {
        // SAFETY: `base` is the mapping `open` made, unmapped once here.
        unsafe {
            libc::munmap(self.base.cast_mut().cast(), MAPPED);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::Connection;

    fn wal_db(dir: &Path) -> (std::path::PathBuf, Connection) {
        let path = dir.join("s.db");
        let c = Connection::open(&path).unwrap();
        c.execute_batch(
            "PRAGMA journal_mode = WAL; CREATE TABLE t (v INTEGER); INSERT INTO t VALUES (1);",
        )
        .unwrap();
        (path, c)
    }

    #[test]
    fn every_commit_by_any_connection_changes_the_stamp_and_reads_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = wal_db(dir.path());
        let index = WalIndex::open(&path).expect("the -shm file is mapped");
        let before = index.stamp().expect("a stable header");
        let reader = Connection::open(&path).unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(index.stamp(), Some(before), "a read changes nothing");
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let after_own = index.stamp().unwrap();
        assert_ne!(after_own, before);
        // Another connection, as the CLI in another process would be.
        reader
            .execute("UPDATE t SET v = 3 WHERE v = 1", [])
            .unwrap();
        assert_ne!(index.stamp().unwrap(), after_own);
        // A checkpoint that restarts the WAL changes it too.
        let stamp = index.stamp().unwrap();
        writer
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); INSERT INTO t VALUES (4);")
            .unwrap();
        assert_ne!(index.stamp().unwrap(), stamp);
    }

    #[test]
    fn without_a_shm_file_there_is_nothing_to_map() {
        let dir = tempfile::tempdir().unwrap();
        assert!(WalIndex::open(&dir.path().join("none.db")).is_none());
    }
}
