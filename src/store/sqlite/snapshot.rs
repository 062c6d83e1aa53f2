//! Read snapshots kept across point reads while the database has not changed.
//!
//! In WAL mode every read transaction takes a read-mark lock on the WAL index when
//! it begins and drops it when it ends: an `fcntl` on the `-shm` file whenever no
//! other connection of this process holds that mark, under a process-wide mutex the
//! daemon's worker threads contend for. A point read (one index probe) paid this
//! twice, about a tenth of a lookup's CPU. (Reading the header below still takes
//! that mutex once, inside the VFS's `xShmMap`, but makes no system call.)
//!
//! A reader connection now keeps its read transaction open after a point read and
//! reuses it for the next one while the WAL-index header is byte for byte the one
//! read before the transaction began. It only begins keeping one when the header
//! has not changed since its previous read: under a stream of writes every kept
//! snapshot would be out of date by the next read, and snapshots kept between reads
//! would stop the WAL from restarting (measured: POST /Users fell by a tenth). Every
//! commit, by any connection in any process (the CLI writes the file itself),
//! rewrites that header before the commit returns (`iChange` counts transactions;
//! `mxFrame`, the salts and a checksum move with it), so an unchanged header means
//! no commit since, and the kept snapshot is what a new transaction would see. Reads
//! stay exactly as fresh as before: a write acknowledged by this daemon or any other
//! process is seen by the next read.
//!
//! The header is the first 48 bytes of the WAL index, twice (SQLite writes the
//! second copy, then the first; a reader that finds them different is looking at a
//! write in progress). It is read through the connection's own mapping of the
//! index, which SQLite's VFS hands out (`xShmMap` of the database file, region 0,
//! never extending it), exactly as SQLite's `walIndexPage` reaches it. Nothing here
//! opens, maps or closes the `-shm` file itself: a first attempt did, and closing its
//! own descriptor dropped every POSIX lock the process held on that file (SQLite's
//! dead-man switch and read marks among them), so another process opening the
//! database took itself for the first and truncated the file under the daemon's
//! mapping, which then died of SIGBUS. The header's layout is documented
//! ("WAL-Index Format" in SQLite's file format notes) and its version field is
//! checked: any other version, or an index that cannot be reached, only means every
//! read begins its own transaction again, as before. A kept snapshot holds back
//! checkpoints like any open reader, so the checkpointer ends the ones left idle
//! before and after each of its checkpoints ([`super::ReadPool::release_idle`]),
//! and a checkpoint ends busy ones at their next read (see [`Stamp`]).

use std::ffi::{c_int, c_void};

use rusqlite::Connection;
use rusqlite::ffi;

/// `WALINDEX_MAX_VERSION` in SQLite's `wal.c`: the header layout read here.
const WAL_INDEX_VERSION: u32 = 3_007_000;
/// `sizeof(WalIndexHdr)`.
const HEADER: usize = 48;
/// Offset of `nBackfill`, the first field of the checkpoint information that
/// follows the header's two copies: how much of the WAL has been copied back into
/// the database.
const N_BACKFILL: usize = 2 * HEADER;
/// Offset of `isInit` (after `iVersion`, `unused` and `iChange`).
const IS_INIT: usize = 12;
/// `WALINDEX_PGSZ`: the size of every region of the WAL index. The VFS maps regions
/// of the size the first caller asked for, so this must be SQLite's own.
const REGION: c_int = 32_768;

/// The WAL-index header as read at one moment, and `nBackfill` after it.
///
/// The header alone decides whether a kept snapshot is current. `nBackfill` makes a
/// checkpoint end kept snapshots too: one begun while the WAL held frames not yet
/// copied back holds a read mark in the WAL, and a writer can only restart the WAL
/// from its beginning when no reader holds one. Begun again after the checkpoint,
/// a snapshot reads the database file alone and holds no mark; without this, reads
/// that never pause kept the WAL from ever restarting.
pub(super) type Stamp = [u8; HEADER + 4];

/// The signature of `sqlite3_io_methods::xShmMap`.
type ShmMap =
    unsafe extern "C" fn(*mut ffi::sqlite3_file, c_int, c_int, c_int, *mut *mut c_void) -> c_int;

/// The way to one connection's WAL-index header. It holds no mapping and no
/// descriptor: each [`WalIndex::stamp`] asks the connection's VFS for region 0,
/// which it already has mapped, so nothing here can outlive or undo what SQLite
/// holds.
pub(super) struct WalIndex {
    /// The connection this was made for; [`WalIndex::stamp`] refuses any other.
    db: *mut ffi::sqlite3,
    /// Its main database file, which lives as long as the connection.
    file: *mut ffi::sqlite3_file,
    map: ShmMap,
}

// SAFETY: the pointers are only followed in `stamp`, which is handed the
// connection they belong to by shared reference, so the connection is open and
// in use by the calling thread alone (`Connection` is `Send` but not `Sync`).
unsafe impl Send for WalIndex {}

impl WalIndex {
    /// The way to `conn`'s WAL-index header, or `None` when there is none to read
    /// (not in WAL mode, a VFS without shared memory, an index this code does not
    /// know), which leaves every read beginning its own transaction.
    pub(super) fn of(conn: &Connection) -> Option<WalIndex> {
        // A read (of the database header) opens the connection's WAL and maps its
        // index, so `xShmMap` below only hands out what the connection already holds.
        let _: i64 = conn
            .query_row("PRAGMA schema_version", [], |r| r.get(0))
            .ok()?;
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .ok()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return None;
        }
        // SAFETY: `handle` is the open connection `conn` borrows; the file control
        // writes one pointer to the main database's `sqlite3_file`, which SQLite
        // keeps until the connection closes.
        let (db, file) = unsafe {
            let db = conn.handle();
            let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
            let rc = ffi::sqlite3_file_control(
                db,
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&raw mut file).cast(),
            );
            (rc == ffi::SQLITE_OK && !file.is_null()).then_some((db, file))?
        };
        // SAFETY: `file` is live (above); its methods table is SQLite's static one.
        // `xShmMap` exists from version 2 of that table on.
        let map = unsafe {
            let methods = (*file).pMethods;
            if methods.is_null() || (*methods).iVersion < 2 {
                return None;
            }
            (*methods).xShmMap?
        };
        let index = WalIndex { db, file, map };
        // A layout this code does not know is left alone. Only the version is
        // checked here: a commit by another process rewriting the header at this
        // moment would otherwise leave this connection without kept snapshots for
        // good.
        let base = index.region(conn)?;
        // SAFETY: the version is the region's first aligned 32-bit word; it never
        // changes while the index exists.
        let version =
            u32::from_ne_bytes(unsafe { std::ptr::read_volatile(base.cast::<[u8; 4]>()) });
        (version == WAL_INDEX_VERSION).then_some(index)
    }

    /// The start of `conn`'s mapping of WAL-index region 0, or `None` when `conn`
    /// is not the connection this was made for or the VFS has no such region.
    fn region(&self, conn: &Connection) -> Option<*const u8> {
        // SAFETY: comparing pointers; `conn` is open while borrowed.
        if unsafe { conn.handle() } != self.db {
            return None;
        }
        let mut region: *mut c_void = std::ptr::null_mut();
        // SAFETY: `file` belongs to `conn`, which is open and used by this thread
        // alone (see `Send` above). Region 0 with the WAL index's own region size and
        // no extending is what SQLite's `walIndexPage` asks for; the VFS returns
        // its existing mapping (null if the index is shorter than a region).
        let rc = unsafe { (self.map)(self.file, 0, REGION, 0, &raw mut region) };
        (rc == ffi::SQLITE_OK && !region.is_null()).then(|| region.cast::<u8>().cast_const())
    }

    /// The header, or `None` while a commit is rewriting it, when it is not one this
    /// code knows how to read, or when `conn` is not the connection this was made
    /// for.
    pub(super) fn stamp(&self, conn: &Connection) -> Option<Stamp> {
        let base = self.region(conn)?;
        // SAFETY: both copies and `nBackfill` lie within the region (32 KiB);
        // volatile reads because other processes write this memory. Read as SQLite's
        // `walIndexTryHdr` does: the first copy, a barrier, the second copy; then
        // `nBackfill`, which SQLite reads on its own too (`walCkptInfo`), an aligned
        // 32-bit word.
        let (first, second, backfilled) = unsafe {
            let first = std::ptr::read_volatile(base.cast::<[u8; HEADER]>());
            std::sync::atomic::fence(std::sync::atomic::Ordering::SeqCst);
            let second = std::ptr::read_volatile(base.add(HEADER).cast::<[u8; HEADER]>());
            let backfilled = std::ptr::read_volatile(base.add(N_BACKFILL).cast::<[u8; 4]>());
            (first, second, backfilled)
        };
        let version = u32::from_ne_bytes([first[0], first[1], first[2], first[3]]);
        if first != second || version != WAL_INDEX_VERSION || first[IS_INIT] != 1 {
            return None;
        }
        let mut stamp = [0u8; HEADER + 4];
        stamp[..HEADER].copy_from_slice(&first);
        stamp[HEADER..].copy_from_slice(&backfilled);
        Some(stamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    fn wal_db(dir: &Path) -> (PathBuf, Connection) {
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
        let reader = Connection::open(&path).unwrap();
        let index = WalIndex::of(&reader).expect("the WAL index is reached");
        let before = index.stamp(&reader).expect("a stable header");
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(index.stamp(&reader), Some(before), "a read changes nothing");
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let after_other = index.stamp(&reader).unwrap();
        assert_ne!(after_other, before, "another connection's commit");
        reader
            .execute("UPDATE t SET v = 3 WHERE v = 1", [])
            .unwrap();
        assert_ne!(index.stamp(&reader).unwrap(), after_other, "its own commit");
        // A checkpoint that restarts the WAL changes it too.
        let stamp = index.stamp(&reader).unwrap();
        writer
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE); INSERT INTO t VALUES (4);")
            .unwrap();
        assert_ne!(index.stamp(&reader).unwrap(), stamp, "a WAL restart");
        // A checkpoint that copies frames back changes it without a commit: the
        // header stays, `nBackfill` moves.
        let stamp = index.stamp(&reader).unwrap();
        writer
            .execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
            .unwrap();
        let after = index.stamp(&reader).unwrap();
        assert_eq!(after[..HEADER], stamp[..HEADER], "no commit");
        assert_ne!(after, stamp, "a checkpoint");
    }

    #[test]
    fn a_stamp_is_only_read_through_the_connection_it_was_made_for() {
        let dir = tempfile::tempdir().unwrap();
        let (path, writer) = wal_db(dir.path());
        let index = WalIndex::of(&writer).unwrap();
        let other = Connection::open(&path).unwrap();
        assert!(index.stamp(&writer).is_some());
        assert!(index.stamp(&other).is_none());
    }

    #[test]
    fn without_wal_there_is_no_index_to_read() {
        let dir = tempfile::tempdir().unwrap();
        let c = Connection::open(dir.path().join("rollback.db")).unwrap();
        c.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        assert!(WalIndex::of(&c).is_none());
        assert!(!dir.path().join("rollback.db-shm").exists());
    }
}
