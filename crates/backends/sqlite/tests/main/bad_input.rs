//! Files and names the backend must refuse with a typed error, changing
//! nothing.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_event_log::EventLogExt as _;
use infinisheet_sqlite::{OpenError, SCHEMA_VERSION, SqliteDatabase, SqliteOptions};

fn options() -> SqliteOptions {
    SqliteOptions::default()
}

#[tokio::test]
async fn a_file_that_is_not_sqlite_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let content = "these are my notes, not a database\n".repeat(200);
    std::fs::write(&path, &content).unwrap();
    match SqliteDatabase::open(&path, options()).await {
        Err(OpenError::NotADatabase { path: p }) => assert_eq!(p, path),
        other => panic!("expected NotADatabase, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        content,
        "the file was changed"
    );
    assert!(
        !dir.path().join("notes.db-wal").exists(),
        "a WAL file was created"
    );
}

#[tokio::test]
async fn another_applications_database_is_refused_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE customers (name TEXT); INSERT INTO customers VALUES ('Ada');",
        )
        .unwrap();
    }
    let before = std::fs::read(&path).unwrap();
    match SqliteDatabase::open(&path, options()).await {
        Err(OpenError::ForeignDatabase { path: p }) => assert_eq!(p, path),
        other => panic!("expected ForeignDatabase, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "the file was changed"
    );
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_left_as_it_is() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("future.db");
    let db = SqliteDatabase::open(&path, options()).await.unwrap();
    db.create_log("kept").await.unwrap();
    drop(db);
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
    }
    match SqliteDatabase::open(&path, options()).await {
        Err(OpenError::SchemaTooNew {
            found, supported, ..
        }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    let logs: i64 = conn
        .query_row("SELECT count(*) FROM logs", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        (version, logs),
        (SCHEMA_VERSION + 1, 1),
        "the database was changed"
    );
}

/// A schema version damaged to an older one (the damage sweep flipped a
/// bit of it) is corruption, typed as such, and the file is left as it
/// is: migrating it failed half-way on "duplicate column name".
#[tokio::test]
async fn a_version_damaged_to_an_older_one_is_corruption() {
    for older in 1..SCHEMA_VERSION {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("damaged.db");
        let db = SqliteDatabase::open(&path, options()).await.unwrap();
        db.create_log("kept").await.unwrap();
        drop(db);
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.pragma_update(None, "user_version", older).unwrap();
        }
        match SqliteDatabase::open(&path, options()).await {
            Err(OpenError::Storage(err)) if err.is_corrupt() => {
                assert!(err.to_string().contains("damaged"), "{err}");
            }
            other => panic!("version {older}: expected corruption, got {other:?}"),
        }
        let conn = rusqlite::Connection::open(&path).unwrap();
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(version, older, "the database was changed");
    }
}

#[tokio::test]
async fn missing_duplicate_and_invalid_log_names() {
    let db = SqliteDatabase::temporary(options()).await.unwrap();
    match db.open_log("nope").await {
        Err(OpenError::NotFound { kind: "log", name }) => assert_eq!(name, "nope"),
        other => panic!("expected NotFound, got {other:?}"),
    }
    db.create_log("sheet").await.unwrap();
    match db.create_log("sheet").await {
        Err(OpenError::AlreadyExists { kind: "log", name }) => assert_eq!(name, "sheet"),
        other => panic!("expected AlreadyExists, got {other:?}"),
    }
    for bad in ["", "tab\there", &"x".repeat(201)] {
        match db.open_or_create_log(bad).await {
            Err(OpenError::InvalidName { kind: "log", .. }) => {}
            other => panic!("expected InvalidName for {bad:?}, got {other:?}"),
        }
    }
    assert_eq!(db.log_names().await.unwrap(), vec!["sheet".to_owned()]);
}

#[tokio::test]
async fn many_logs_and_stores_share_one_file() {
    use infinisheet_blob_store::{BlobDirExt, BlobStore};
    use infinisheet_event_log::{EventLog, KnownSnapshot, LogEntry};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("user.db");
    let db = SqliteDatabase::open(&path, options()).await.unwrap();
    for name in ["a", "b", "c"] {
        let log = db.open_or_create_log(name).await.unwrap();
        log.add_entry(LogEntry::new(name), 0, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        db.blob_store(name)
            .await
            .unwrap()
            .root()
            .write("x", name.as_bytes().to_vec())
            .await
            .unwrap();
    }
    drop(db);
    let db = SqliteDatabase::open(&path, options()).await.unwrap();
    assert_eq!(db.log_names().await.unwrap(), vec!["a", "b", "c"]);
    for name in ["a", "b", "c"] {
        let log = db.open_log(name).await.unwrap();
        let reply = log
            .query(
                infinisheet_event_log::QueryStart::Start,
                infinisheet_event_log::QueryEnd::End,
                KnownSnapshot::NotTracked,
            )
            .await
            .unwrap();
        assert_eq!(reply.entries, vec![LogEntry::new(name)], "log {name}");
        let store = db.blob_store(name).await.unwrap();
        assert_eq!(
            store.root().read("x").await.unwrap(),
            name.as_bytes(),
            "store {name}"
        );
    }
}
