//! Stored values carry checksums: a flipped bit in an entry, a log's bounds
//! or a blob reads back as a corruption error naming what is damaged, never
//! as other data. Version 1 files (no checksums) gain them on open.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use bytes::Bytes;
use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd, QueryStart,
};
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::path::Path;

async fn db(path: &Path) -> SqliteDatabase {
    SqliteDatabase::open(path, SqliteOptions::default())
        .await
        .unwrap()
}

/// Moves everything from the WAL into the main file, so the bytes below
/// are where a flip in the file lands.
fn checkpoint(path: &Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

/// The bytes of the file that hold the root page of index or table `name`.
fn root_page(path: &Path, name: &str) -> std::ops::Range<usize> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .unwrap();
    let root: i64 = conn
        .query_row(
            "SELECT rootpage FROM sqlite_schema WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .unwrap();
    let (page_size, root) = (page_size as usize, root as usize);
    (root - 1) * page_size..root * page_size
}

fn flip_inside(path: &Path, needle: &[u8], at: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    let found = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("the value is in the file");
    bytes[found + at] ^= 0x04;
    std::fs::write(path, bytes).unwrap();
}

#[tokio::test]
async fn a_flipped_bit_in_an_entry_is_an_error_naming_the_log_and_id() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    {
        let db = db(&path).await;
        let log = db.create_log("budget").await.unwrap();
        for i in 0..5 {
            let entry = LogEntry::new(format!("cell A{i} = 4{i} and some more text"));
            log.add_entry(entry, i, KnownSnapshot::NotTracked)
                .await
                .unwrap();
        }
    }
    checkpoint(&path);
    flip_inside(&path, b"cell A2 = 42", 10);
    let db = db(&path).await;
    let log = db.open_log("budget").await.unwrap();
    let err = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("\"budget\"") && text.contains("entry 2"),
        "{text}"
    );
    assert!(matches!(&err, infinisheet_event_log::QueryError::Storage(s) if s.is_corrupt()));
    // Entries before the damage still read.
    let first = log
        .query(
            QueryStart::Start,
            QueryEnd::Id(2),
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    assert_eq!(first.entries.len(), 2);
}

#[tokio::test]
async fn a_flipped_bit_in_metadata_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    {
        let db = db(&path).await;
        let log = db.create_log("budget").await.unwrap();
        log.add_entry(LogEntry::new("x"), 0, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        log.set_metadata(0, MetadataUpdate::publish_snapshot("snapshot-blob-00000"))
            .await
            .unwrap();
    }
    checkpoint(&path);
    flip_inside(&path, b"snapshot-blob-00000", 15);
    let db = db(&path).await;
    let log = db.open_log("budget").await.unwrap();
    let err = log
        .query(
            QueryStart::Snapshot,
            QueryEnd::End,
            KnownSnapshot::NoSnapshot,
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("entry 0"), "{err}");
}

#[tokio::test]
async fn a_flipped_bit_in_a_blob_is_an_error_naming_the_blob() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blobs.db");
    {
        let db = db(&path).await;
        let store = db.blob_store("files").await.unwrap();
        store
            .root()
            .write("tile", Bytes::from_static(b"the content of a tile blob"))
            .await
            .unwrap();
    }
    checkpoint(&path);
    flip_inside(&path, b"the content of a tile", 5);
    let db = db(&path).await;
    let store = db.blob_store("files").await.unwrap();
    let err = store.root().read("tile").await.unwrap_err();
    assert!(err.to_string().contains("tile"), "{err}");
}

#[tokio::test]
async fn a_version_1_file_gains_checksums_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE infinisheet_meta (key TEXT PRIMARY KEY, value ANY) STRICT;
             CREATE TABLE logs (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE,
                 start_seq INTEGER NOT NULL, end_seq INTEGER NOT NULL) STRICT;
             CREATE TABLE entries (log INTEGER NOT NULL REFERENCES logs(id),
                 seq INTEGER NOT NULL, payload BLOB NOT NULL, snapshot TEXT, history TEXT,
                 pending TEXT, PRIMARY KEY (log, seq)) STRICT, WITHOUT ROWID;
             CREATE INDEX entries_with_snapshot ON entries (log, seq) WHERE snapshot IS NOT NULL;
             CREATE TABLE blob_stores (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE) STRICT;
             CREATE TABLE blobs (store INTEGER NOT NULL REFERENCES blob_stores(id),
                 path TEXT NOT NULL, content BLOB NOT NULL, PRIMARY KEY (store, path)) STRICT;
             INSERT INTO infinisheet_meta VALUES ('instance', '12345');
             INSERT INTO logs VALUES (1, 'old', 1, 3);
             INSERT INTO entries VALUES (1, 1, x'6f6e65', 'snap', NULL, NULL);
             INSERT INTO entries VALUES (1, 2, x'74776f', NULL, NULL, NULL);
             INSERT INTO blob_stores VALUES (1, 'files');
             INSERT INTO blobs VALUES (1, 'a', x'626c6f62');
             PRAGMA application_id = 1230194772;
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let db = db(&path).await;
    let log = db.open_log("old").await.unwrap();
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NoSnapshot)
        .await
        .unwrap();
    assert_eq!((all.start, all.end), (1, 3));
    assert_eq!(&all.entries[1].payload[..], b"two");
    assert_eq!(all.last_snapshot.unwrap().sequence_id, 1);
    log.add_entry(LogEntry::new("three"), 3, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    // The migrated file keeps append tokens (schema version 3).
    let token = Some(infinisheet_event_log::AppendToken::random());
    for _attempt in 0..2 {
        log.append_at(
            vec![LogEntry::new("four")],
            4,
            KnownSnapshot::NotTracked,
            token,
        )
        .await
        .unwrap();
    }
    let store = db.blob_store("files").await.unwrap();
    assert_eq!(&store.root().read("a").await.unwrap()[..], b"blob");
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, infinisheet_sqlite::SCHEMA_VERSION);
}

/// Version 3 kept the entries in a table without row ids, whose b-tree
/// compares whole rows (payloads of hundreds of KiB) on every seek:
/// opening moves them, metadata, checksums and all, into version 4's
/// table, and they read back the same.
#[tokio::test]
async fn a_version_3_file_moves_its_entries_to_a_table_with_row_ids() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v3.db");
    let big = Bytes::from(vec![7u8; 300_000]);
    {
        let db = db(&path).await;
        let log = db.create_log("kept").await.unwrap();
        let mut entries = vec![
            LogEntry::new(big.clone()),
            LogEntry::new("two"),
            LogEntry::new("three"),
        ];
        // Enough entries to move in several batches.
        entries.extend((0..40u8).map(|i| LogEntry::new(Bytes::from(vec![i; 100_000]))));
        log.add_entries(entries, 0, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        log.set_metadata(1, MetadataUpdate::publish_snapshot("snap"))
            .await
            .unwrap();
        let ask = MetadataUpdate {
            pending: infinisheet_event_log::FieldUpdate::Set("workflow".into()),
            ..MetadataUpdate::default()
        };
        log.set_metadata(2, ask).await.unwrap();
    }
    // The same entries as version 3 laid them out.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE entries RENAME TO v4;
             DROP INDEX entries_with_snapshot;
             DROP INDEX entries_with_snapshot_too;
             CREATE TABLE entries (log INTEGER NOT NULL REFERENCES logs(id),
                 seq INTEGER NOT NULL, payload BLOB NOT NULL, snapshot TEXT, history TEXT,
                 pending TEXT, crc INTEGER NOT NULL, PRIMARY KEY (log, seq)) STRICT, WITHOUT ROWID;
             CREATE INDEX entries_with_snapshot ON entries (log, seq) WHERE snapshot IS NOT NULL;
             CREATE INDEX entries_with_snapshot_too ON entries (log, seq, snapshot)
                 WHERE snapshot IS NOT NULL;
             INSERT INTO entries SELECT log, seq, payload, snapshot, history, pending, crc FROM v4;
             DROP TABLE v4;
             PRAGMA user_version = 3;
             VACUUM;",
        )
        .unwrap();
        // As version 3 recorded it: the checksum of its tables' text.
        let mut crc = 0u32;
        let mut select = conn
            .prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")
            .unwrap();
        let mut rows = select.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for column in 0..4 {
                let text: String = row
                    .get::<_, Option<String>>(column)
                    .unwrap()
                    .unwrap_or_default();
                crc = crc32c::crc32c_append(crc, &(text.len() as u64).to_le_bytes());
                crc = crc32c::crc32c_append(crc, text.as_bytes());
            }
        }
        drop(rows);
        conn.execute(
            "UPDATE infinisheet_meta SET value = ?1 WHERE key = 'schema'",
            [i64::from(crc)],
        )
        .unwrap();
    }
    let pages = |path: &Path| -> i64 {
        rusqlite::Connection::open(path)
            .unwrap()
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap()
    };
    let before = pages(&path);
    // A reader reads it as it is, and leaves it so.
    {
        let reader = SqliteDatabase::open_read_only(&path, SqliteOptions::default())
            .await
            .unwrap();
        let log = reader.open_log("kept").await.unwrap();
        let all = log
            .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NoSnapshot)
            .await
            .unwrap();
        assert_eq!(all.entries[0].payload, big);
        assert_eq!(all.last_snapshot.unwrap().sequence_id, 1);
        let version: i64 = rusqlite::Connection::open(&path)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, 3);
    }
    let opened = db(&path).await;
    let log = opened.open_log("kept").await.unwrap();
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NoSnapshot)
        .await
        .unwrap();
    assert_eq!((all.start, all.end), (0, 43));
    assert_eq!(all.entries[42].payload, Bytes::from(vec![39u8; 100_000]));
    assert_eq!(all.entries[0].payload, big);
    assert_eq!(all.entries[1].metadata.snapshot.as_deref(), Some("snap"));
    assert_eq!(all.entries[2].metadata.pending.as_deref(), Some("workflow"));
    assert_eq!(all.last_snapshot.unwrap().sequence_id, 1);
    log.add_entry(LogEntry::new("four"), 43, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    drop((log, opened));
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, infinisheet_sqlite::SCHEMA_VERSION);
    let sql: String = conn
        .query_row(
            "SELECT sql FROM sqlite_schema WHERE name = 'entries'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(!sql.contains("WITHOUT ROWID"), "{sql}");
    // Moved a few at a time into the pages the last ones freed: the file
    // grows by a batch, not by the entries (it doubled).
    let after = pages(&path);
    assert!(after < before * 5 / 4, "{before} pages, then {after}");
    assert!(sql.trim_end().ends_with("STRICT"), "{sql}");
    // Opened again, it is version 4 as it is.
    let db = db(&path).await;
    let log = db.open_log("kept").await.unwrap();
    assert_eq!(log.bounds().await.unwrap().end, 44);
}

#[tokio::test]
async fn a_foreign_database_with_a_wal_is_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    let wal = dir.path().join("other.db-wal");
    // Another application's database with committed data still in its WAL
    // (copied while that application had it open, as a backup tool would).
    let (db_bytes, wal_bytes) = {
        let conn = rusqlite::Connection::open(dir.path().join("live.db")).unwrap();
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
             CREATE TABLE customers (name TEXT); INSERT INTO customers VALUES ('Ada');",
        )
        .unwrap();
        (
            std::fs::read(dir.path().join("live.db")).unwrap(),
            std::fs::read(dir.path().join("live.db-wal")).unwrap(),
        )
    };
    assert!(!wal_bytes.is_empty());
    std::fs::write(&path, &db_bytes).unwrap();
    std::fs::write(&wal, &wal_bytes).unwrap();
    match SqliteDatabase::open(&path, SqliteOptions::default()).await {
        Err(infinisheet_sqlite::OpenError::ForeignDatabase { path: p }) => assert_eq!(p, path),
        other => panic!("expected ForeignDatabase, got {other:?}"),
    }
    assert!(
        std::fs::read(&path).unwrap() == db_bytes,
        "the database was changed"
    );
    assert!(
        std::fs::read(&wal).ok() == Some(wal_bytes),
        "the WAL was changed or removed"
    );
}

/// A damaged page of the blobs' primary-key index can make a lookup miss
/// a blob that is there (SQLite does not check an index against its
/// table): the read asks the second index and reports the damage instead
/// of "not found".
#[tokio::test]
async fn a_blob_hidden_by_a_damaged_index_is_corruption_not_absence() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blobs.db");
    {
        let db = db(&path).await;
        let store = db.blob_store("files").await.unwrap();
        for i in 0..5 {
            store
                .root()
                .write(&format!("blob-{i}"), format!("content {i}"))
                .await
                .unwrap();
        }
    }
    checkpoint(&path);
    // The key "blob-3" inside the primary key's index page (not the table's
    // or the second index's): make it "blob-7", so a search for "blob-3"
    // finds nothing.
    let mut bytes = std::fs::read(&path).unwrap();
    let page = root_page(&path, "sqlite_autoindex_blobs_1");
    let at = bytes[page.clone()]
        .windows(6)
        .position(|w| w == b"blob-3")
        .expect("the key is in the index page");
    bytes[page.start + at + 5] = b'7';
    std::fs::write(&path, bytes).unwrap();

    let db = db(&path).await;
    let store = db.blob_store("files").await.unwrap();
    assert_eq!(
        &store.root().read("blob-2").await.unwrap()[..],
        b"content 2"
    );
    let err = store.root().read("blob-3").await.unwrap_err();
    match &err {
        infinisheet_blob_store::ReadBlobError::Storage(s) => {
            assert!(s.is_corrupt() && s.to_string().contains("blob-3"), "{s}");
        }
        other => panic!("a blob behind a damaged index read as {other:?}"),
    }
    // A blob that is truly absent is still just absent.
    assert!(matches!(
        store.root().read("blob-9").await,
        Err(infinisheet_blob_store::ReadBlobError::NotFound { .. })
    ));
}

/// A flipped bit in the header's schema format number makes SQLite call
/// the file an unsupported format: that is a damaged file, reported as
/// corruption.
#[tokio::test]
async fn a_damaged_header_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blobs.db");
    {
        let db = db(&path).await;
        let store = db.blob_store("files").await.unwrap();
        store.root().write("b", "content").await.unwrap();
    }
    checkpoint(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[47] ^= 0x10;
    std::fs::write(&path, bytes).unwrap();
    match SqliteDatabase::open(&path, SqliteOptions::default()).await {
        Err(infinisheet_sqlite::OpenError::Storage(err)) => assert!(err.is_corrupt(), "{err}"),
        other => panic!("a damaged header opened as {:?}", other.map(|_| ())),
    }
}

/// The index of the entries carrying snapshots emptied by damage (its
/// page's cell count zeroed): the newest snapshot would read as none, and a
/// reader of a truncated log would start from its first entry without the
/// state before it. The second index disagrees, and the lookup is
/// corruption.
#[tokio::test]
async fn a_snapshot_hidden_by_a_damaged_index_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("logs.db");
    {
        let db = db(&path).await;
        let log = db.create_log("sheet").await.unwrap();
        for i in 0..10 {
            log.add_entry(LogEntry::new(format!("e{i}")), i, KnownSnapshot::NotTracked)
                .await
                .unwrap();
        }
        log.set_metadata(6, MetadataUpdate::publish_snapshot("s6"))
            .await
            .unwrap();
        log.truncate(6).await.unwrap();
    }
    checkpoint(&path);
    let mut bytes = std::fs::read(&path).unwrap();
    let page = root_page(&path, "entries_with_snapshot").start;
    assert_eq!(bytes[page], 0x0a, "a leaf index page");
    bytes[page + 3] = 0;
    bytes[page + 4] = 0;
    std::fs::write(&path, bytes).unwrap();

    let db = db(&path).await;
    let log = db.open_log("sheet").await.unwrap();
    let err = log
        .query(
            QueryStart::Snapshot,
            QueryEnd::End,
            KnownSnapshot::NoSnapshot,
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, infinisheet_event_log::QueryError::Storage(s) if s.is_corrupt()),
        "{err}"
    );
}
