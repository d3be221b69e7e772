//! The SQLite backend against the whole conformance suite, on temporary
//! database files, including the persistence cases (reopen is a new
//! connection to the same file).

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_sqlite::{
    Durability, SqliteBlobStore, SqliteDatabase, SqliteEventLog, SqliteOptions,
};

infinisheet_conformance::event_log_tests!(
    || async {
        SqliteEventLog::temporary(SqliteOptions::default())
            .await
            .unwrap()
    },
    reopen = |log: SqliteEventLog| async move { log.reopen().await.unwrap() },
    open_again = |log: &SqliteEventLog| {
        let log = log.clone();
        async move { log.open_again().await.unwrap() }
    },
);

infinisheet_conformance::blob_store_tests!(
    || async {
        SqliteBlobStore::temporary(SqliteOptions::default())
            .await
            .unwrap()
    },
    reopen = |store: SqliteBlobStore| async move { store.reopen().await.unwrap() },
    open_again = |store: &SqliteBlobStore| {
        let store = store.clone();
        async move { store.open_again().await.unwrap() }
    },
);

// Small pages everywhere, and NORMAL durability.
infinisheet_conformance::event_log_tests!(
    mod small_pages_log,
    || async {
        let options = SqliteOptions::default()
            .durability(Durability::Normal)
            .query_page_entries(3);
        SqliteEventLog::temporary(options).await.unwrap()
    },
    reopen = |log: SqliteEventLog| async move { log.reopen().await.unwrap() },
    open_again = |log: &SqliteEventLog| {
        let log = log.clone();
        async move { log.open_again().await.unwrap() }
    },
);

infinisheet_conformance::blob_store_tests!(
    mod small_pages_store,
    || async {
        let options = SqliteOptions::default()
            .durability(Durability::Normal)
            .list_page_names(7);
        SqliteBlobStore::temporary(options).await.unwrap()
    },
    reopen = |store: SqliteBlobStore| async move { store.reopen().await.unwrap() },
    open_again = |store: &SqliteBlobStore| {
        let store = store.clone();
        async move { store.open_again().await.unwrap() }
    },
);

// The database as the log store a catalog holds: every log it gives out
// for an id agrees with every other.
infinisheet_conformance::log_store_tests!(|| async {
    SqliteDatabase::temporary(SqliteOptions::default())
        .await
        .unwrap()
});
