//! SQLite-only behaviour (files on disk); what both engines share is in
//! `store::conformance`.

use super::*;

#[tokio::test]
async fn refuses_foreign_and_corrupt_files_without_touching_them() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.db");
    std::fs::write(&junk, b"this is my thesis, not a database").unwrap();
    let err = SqliteStore::open(&junk).unwrap_err();
    assert!(matches!(err, StoreError::Foreign(_)), "{err}");
    assert_eq!(
        std::fs::read(&junk).unwrap(),
        b"this is my thesis, not a database"
    );

    let other = dir.path().join("other.db");
    {
        let c = Connection::open(&other).unwrap();
        c.execute_batch("CREATE TABLE invoices (id INTEGER)")
            .unwrap();
    }
    let err = SqliteStore::open(&other).unwrap_err();
    assert!(
        err.to_string().contains("not a scim-bridge database"),
        "{err}"
    );
}

#[tokio::test]
async fn reopening_reports_the_version_it_migrated_from() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), 0);
    store.close().await;
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.migrated_from(), SCHEMA_VERSION);
    store.close().await;
}
