//! The catalog with its logs in PostgreSQL by URL (`postgres://`) and its
//! blobs in a directory, on the server `cargo xtask test` starts
//! (`INFINISHEET_POSTGRES_URL`). Built only with the `postgres-tests`
//! feature.

#![allow(clippy::unwrap_used)]

use infinisheet::{
    Access, Catalog, Storage, StorageUrlError, open_blob_store, open_log_store_with,
};

mod common;
use common::exercise;

fn url() -> String {
    std::env::var("INFINISHEET_POSTGRES_URL")
        .expect("this test needs the server `cargo xtask test` starts")
}

/// The URL with `search_path` set to a schema of this run's own, so the
/// catalog's tables are its own.
fn in_schema(url: &str, schema: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}options=-c%20search_path%3D{schema}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_logs_beside_file_blobs() {
    let blobs_dir = tempfile::tempdir().unwrap();
    let logs = url();
    let blobs = format!("file:{}", blobs_dir.path().display());
    let open = async || Catalog::new(Storage::open(&logs, &blobs).await.unwrap());
    let catalog = open().await;
    assert_eq!(catalog.storage().logs.backend(), "postgres");
    exercise(catalog, open).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_holds_logs_only_and_reading_creates_nothing() {
    let err = open_blob_store(&url()).await.unwrap_err();
    assert!(matches!(err, StorageUrlError::LogsOnly { .. }), "{err}");
    assert!(err.to_string().contains("holds event logs only"), "{err}");

    // A schema nothing was written to: reading finds no sheets there and
    // creates no tables.
    let empty = in_schema(&url(), &format!("empty_{:016x}", fastrand::u64(..)));
    let err = open_log_store_with(&empty, Access::ReadOnly)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "{err}");
    let err = open_log_store_with(&empty, Access::ReadOnly)
        .await
        .unwrap_err();
    assert!(err.is_not_found(), "still nothing there: {err}");

    // Passwords never reach messages: the server's own (in the URL
    // `cargo xtask test` gives), and one sent to no server at all.
    if let Some(password) = url::Url::parse(&url())
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        let err = open_log_store_with(&in_schema(&url(), "nowhere"), Access::ReadOnly)
            .await
            .unwrap_err();
        assert!(!format!("{err:?}").contains(&password), "{err:?}");
    }
    let err = open_log_store_with(
        "postgres://infinisheet:secret@127.0.0.1:1/x",
        Access::ReadOnly,
    )
    .await
    .unwrap_err();
    assert!(!format!("{err:?}").contains("secret"), "{err:?}");
}
