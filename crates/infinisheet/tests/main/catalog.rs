//! The catalog on real storage: sheets and folders created, listed, moved
//! and removed; logs and blobs from different backends; bad metadata.

#![allow(clippy::unwrap_used)]

use infinisheet::blob_store::{BlobDirExt, BlobStore};
use infinisheet::{Catalog, CatalogError, SHEET_METADATA, SheetOptions, Storage};
use std::sync::Arc;

use crate::common;
use common::exercise;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_memory() {
    let storage = Storage::open("memory:", "memory:").await.unwrap();
    let again = storage.clone();
    exercise(Catalog::new(storage), async || Catalog::new(again.clone())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_sqlite_logs_with_file_blobs() {
    let home = tempfile::tempdir().unwrap();
    let catalog = Catalog::new(Storage::embedded(home.path()).await.unwrap());
    exercise(catalog, async || {
        Catalog::new(Storage::embedded(home.path()).await.unwrap())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn file_logs_with_sqlite_blobs() {
    let home = tempfile::tempdir().unwrap();
    let logs = format!("file:{}/logs", home.path().display());
    let blobs = format!("sqlite:{}/blobs.db#tree", home.path().display());
    let open = async || Catalog::new(Storage::open(&logs, &blobs).await.unwrap());
    exercise(open().await, open).await;
}

#[cfg(feature = "object-store")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn object_store_logs_and_blobs() {
    use infinisheet::object_store::ObjectStoreBlobStore;
    use infinisheet::object_store::{ObjectStore, memory::InMemory};
    use infinisheet::{LogStore, ObjectStoreLogs};
    // One store for logs and blobs, opened again for the reopen (a
    // `memory://` URL would make a new, empty store each time).
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let open = async || {
        let logs = ObjectStoreLogs::new(store.clone(), "logs".into(), "memory://logs");
        assert_eq!(logs.backend(), "object-store");
        let logs: Arc<dyn LogStore> = Arc::new(logs);
        let blobs = ObjectStoreBlobStore::new(store.clone(), "sheets".into());
        Catalog::new(Storage::new(logs, Arc::new(blobs), "memory://sheets"))
    };
    exercise(open().await, open).await;
}

#[tokio::test]
async fn bad_metadata_and_paths_are_typed_errors() {
    let storage = Storage::open("memory:", "memory:").await.unwrap();
    let catalog = Catalog::new(storage.clone());
    catalog
        .create_sheet("s", SheetOptions::default())
        .await
        .unwrap();
    let dir = storage.blobs.root().open_dir("s").await.unwrap();
    let good = dir.read(SHEET_METADATA).await.unwrap();

    dir.write(SHEET_METADATA, "{").await.unwrap();
    let err = catalog.open_sheet("s").await.unwrap_err();
    assert!(matches!(err, CatalogError::BadMetadata { .. }), "{err}");

    let text = String::from_utf8(good.to_vec()).unwrap();
    dir.write(SHEET_METADATA, text.replace("\"memory\"", "\"tape\""))
        .await
        .unwrap();
    let err = catalog.open_sheet("s").await.unwrap_err();
    assert!(
        matches!(&err, CatalogError::UnknownBackend { backend, .. } if backend == "tape"),
        "{err}"
    );
    dir.write(
        SHEET_METADATA,
        text.replace("\"format\": 2", "\"format\": 9"),
    )
    .await
    .unwrap();
    let err = catalog.open_sheet("s").await.unwrap_err();
    assert!(err.to_string().contains("format 9"), "{err}");

    dir.remove(SHEET_METADATA).await.unwrap();
    dir.open_dir("snapshots")
        .await
        .unwrap()
        .write("x", "y")
        .await
        .unwrap();
    let err = catalog.open_sheet("s").await.unwrap_err();
    assert!(
        matches!(&err, CatalogError::BadMetadata { reason, .. } if reason.contains(SHEET_METADATA)),
        "{err}"
    );
    // Nothing is created inside it, as if it were a folder.
    let err = catalog
        .create_sheet("s/inside", SheetOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, CatalogError::BadMetadata { .. }), "{err}");
    // A directory with neither metadata nor marker is not the catalog's to
    // remove (a sheet that lost its metadata waits for a repair).
    for recursive in [false, true] {
        let err = catalog.remove("s", recursive).await.unwrap_err();
        assert!(matches!(err, CatalogError::NotCatalogItem { .. }), "{err}");
    }
    assert!(
        dir.open_dir("snapshots")
            .await
            .unwrap()
            .read("x")
            .await
            .is_ok()
    );
    // With damaged (but present) metadata a sheet is still removed.
    dir.write(SHEET_METADATA, "{").await.unwrap();
    catalog.remove("s", false).await.unwrap();

    for bad in ["a//b", "a/../b", "x/sheet.json", "a\\b"] {
        let err = catalog.open_sheet(bad).await.unwrap_err();
        assert!(
            matches!(err, CatalogError::InvalidPath { .. }),
            "{bad}: {err}"
        );
    }
    assert!(matches!(
        catalog.remove("", true).await,
        Err(CatalogError::InvalidPath { .. })
    ));
    assert!(matches!(
        catalog.list("nothing").await,
        Err(CatalogError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_storage_takes_any_directory_name() {
    let temp = tempfile::tempdir().unwrap();
    let home = temp.path().join("my #1 sheets");
    let catalog = Catalog::new(Storage::embedded(&home).await.unwrap());
    catalog
        .create_sheet("s", SheetOptions::default())
        .await
        .unwrap();
    assert!(home.join("logs.db").is_file());
    assert!(home.join("sheets").is_dir());
    let again = Catalog::new(Storage::embedded(&home).await.unwrap());
    assert_eq!(again.sheets("").await.unwrap(), ["s"]);
}

#[tokio::test]
async fn a_log_id_that_would_leave_the_log_store_is_refused_and_nothing_is_written() {
    let home = tempfile::tempdir().unwrap();
    let logs = home.path().join("logs");
    let victim = home.path().join("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let storage = Storage::open(
        &format!("file:{}", logs.display()),
        &format!("file:{}", home.path().join("sheets").display()),
    )
    .await
    .unwrap();
    let catalog = Catalog::new(storage.clone());
    catalog
        .create_sheet("s", SheetOptions::default())
        .await
        .unwrap();
    let dir = storage.blobs.root().open_dir("s").await.unwrap();
    let good = String::from_utf8(dir.read(SHEET_METADATA).await.unwrap().to_vec()).unwrap();
    let id = good
        .split("\"log_id\"")
        .nth(1)
        .and_then(|rest| rest.split('"').nth(1))
        .unwrap()
        .to_owned();
    for bad in [
        "../victim".to_owned(),
        victim.display().to_string(),
        String::new(),
    ] {
        let field = |id: &str| format!("\"log_id\": \"{id}\"");
        dir.write(SHEET_METADATA, good.replace(&field(&id), &field(&bad)))
            .await
            .unwrap();
        let err = catalog.open_sheet("s").await.unwrap_err();
        assert!(
            matches!(&err, CatalogError::BadMetadata { reason, .. } if reason.contains("log id")),
            "{bad}: {err}"
        );
        // The log store refuses it too, for callers that skip the catalog.
        assert!(storage.logs.log(&bad, true).await.is_err(), "{bad}");
    }
    assert_eq!(
        std::fs::read_dir(&victim).unwrap().count(),
        0,
        "files were made outside the log store"
    );
}

#[tokio::test]
async fn rm_removes_only_what_the_catalog_made() {
    let storage = Storage::open("memory:", "memory:").await.unwrap();
    let catalog = Catalog::new(storage.clone());
    // Another catalog's logs, or anything else, in the same blob store.
    let foreign = storage.blobs.root().open_dir("logs").await.unwrap();
    foreign.write("00000001", "entries").await.unwrap();
    for recursive in [false, true] {
        let err = catalog.remove("logs", recursive).await.unwrap_err();
        assert!(
            matches!(&err, CatalogError::NotCatalogItem { path } if path == "logs"),
            "{err}"
        );
    }
    let err = catalog.rename("logs", "elsewhere").await.unwrap_err();
    assert!(matches!(err, CatalogError::NotCatalogItem { .. }), "{err}");
    assert_eq!(foreign.read("00000001").await.unwrap(), "entries");
    // A folder tree holding such a directory: `rm -r` removes nothing.
    catalog
        .create_sheet("team/a", SheetOptions::default())
        .await
        .unwrap();
    let stray = storage
        .blobs
        .root()
        .open_dir("team")
        .await
        .unwrap()
        .open_dir("stray")
        .await
        .unwrap();
    stray.write("keep", "me").await.unwrap();
    let err = catalog.remove("team", true).await.unwrap_err();
    assert!(
        matches!(&err, CatalogError::NotCatalogItem { path } if path == "team/stray"),
        "{err}"
    );
    assert!(catalog.open_sheet("team/a").await.is_ok(), "the sheet went");
    assert_eq!(stray.read("keep").await.unwrap(), "me");
    // Without it, the tree goes.
    stray.remove("keep").await.unwrap();
    catalog.remove("team", true).await.unwrap();
    assert!(matches!(
        catalog.list("team").await,
        Err(CatalogError::NotFound { .. })
    ));
}

/// Errors keep their causes as sources and answer `is_not_found` and
/// `is_retryable` the same way at every layer.
#[tokio::test]
async fn errors_keep_their_sources_and_say_what_they_are() {
    use infinisheet::{LogStoreError, StorageUrlError};
    use std::error::Error as _;
    let home = tempfile::tempdir().unwrap();
    // A missing log is "not found" in the log store and in the catalog.
    let storage = Storage::embedded(home.path()).await.unwrap();
    let err = storage.logs.log("nosuchlog", false).await.unwrap_err();
    assert!(err.is_not_found() && !err.is_retryable(), "{err}");
    let catalog = Catalog::new(storage);
    let sheet = catalog
        .create_sheet("s", SheetOptions::default())
        .await
        .unwrap();
    let log_id = sheet.metadata().log_id.clone();
    drop(sheet);
    drop(catalog);
    // Another catalog whose logs are elsewhere: the sheet's log is missing.
    let elsewhere = format!("sqlite:{}", home.path().join("other.db").display());
    let blobs = format!("file:{}", home.path().join("sheets").display());
    let other = Catalog::new(Storage::open(&elsewhere, &blobs).await.unwrap());
    let err = other.open_sheet("s").await.unwrap_err();
    assert!(err.is_not_found() && !err.is_retryable(), "{err}");
    assert!(
        matches!(&err, CatalogError::Log(LogStoreError::NotFound { id, .. }) if *id == log_id),
        "{err:?}"
    );
    // A storage failure keeps the backend's error as its source: a
    // database file that is not one.
    let bad = home.path().join("not-a-db");
    std::fs::write(&bad, "this is not SQLite").unwrap();
    let err = Storage::open(&format!("sqlite:{}", bad.display()), "memory:")
        .await
        .unwrap_err();
    assert!(matches!(err, StorageUrlError::Open { .. }), "{err:?}");
    let source = err.source().expect("the backend's error is kept");
    assert!(
        source.to_string().contains("not a SQLite database"),
        "{source}"
    );
    assert!(!err.is_retryable());
    // Reading only: what is missing is "not found", and nothing is made.
    let missing = home.path().join("none.db");
    let err = Storage::open_with(
        &format!("sqlite:{}", missing.display()),
        "memory:",
        infinisheet::Access::ReadOnly,
    )
    .await
    .unwrap_err();
    assert!(err.is_not_found(), "{err:?}");
    assert!(!missing.exists());
}

/// `gs://` builds a store for logs and blobs (GCS is not tested against a
/// server: none runs here); a scheme of a feature left out says which.
#[cfg(feature = "gcs")]
#[tokio::test]
async fn gcs_urls_open_storage() {
    let storage = Storage::open("gs://bucket/logs", "gs://bucket/sheets")
        .await
        .unwrap();
    assert_eq!(storage.logs.backend(), "object-store");
    assert_eq!(storage.logs.url(), "gs://bucket/logs");
}

/// A sheet kept open knows when its path no longer names it: removed,
/// replaced by a new sheet of the same name, or moved (where it is found
/// at its new path).
#[tokio::test]
async fn an_open_sheet_confirms_its_path() {
    let catalog = Catalog::new(Storage::open("memory:", "memory:").await.unwrap());
    let first = catalog
        .create_sheet("team/a", SheetOptions::default())
        .await
        .unwrap();
    first.confirm(&catalog).await.unwrap();
    first.confirm_at(&catalog, "/team//a/").await.unwrap_err();
    first.confirm_at(&catalog, "//team/a/").await.unwrap();
    catalog.rename("team/a", "team/b").await.unwrap();
    match first.confirm(&catalog).await {
        Err(CatalogError::Stale {
            path,
            replaced: false,
        }) => assert_eq!(path, "team/a"),
        other => panic!("{other:?}"),
    }
    first.confirm_at(&catalog, "team/b").await.unwrap();
    catalog.remove("team/b", false).await.unwrap();
    let second = catalog
        .create_sheet("team/b", SheetOptions::default())
        .await
        .unwrap();
    let err = first.confirm_at(&catalog, "team/b").await.unwrap_err();
    assert!(
        matches!(err, CatalogError::Stale { replaced: true, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("replaced"), "{err}");
    second.confirm(&catalog).await.unwrap();
    assert!(!second.is_same_sheet(first.metadata()));
    catalog.create_folder("team/a").await.unwrap();
    assert!(matches!(
        first.confirm(&catalog).await,
        Err(CatalogError::Stale {
            replaced: false,
            ..
        })
    ));
}

/// Two writers on one sheet, each on its own handle of the sheet's log
/// (two `open_sheet`s, as a catalog gives them out): on a log store whose
/// handles agree both edits are in the sheet; on one whose handles keep
/// their bounds in memory and trust them — which the conformance suite's
/// second-handle cases refuse (`catches_bugs`) — the second writer's edit
/// lands on the first's, both acknowledged, and the first is gone after a
/// cold reopen, silently. This is the loss the suite stands between.
#[tokio::test]
async fn two_writers_on_one_sheet_need_handles_that_agree() {
    use infinisheet::memory::MemoryBlobStore;
    use infinisheet::{Cell, LogStore, MemoryLogs};
    use infinisheet_test_kit::StaleBoundsLogs;
    let stores: [(Arc<dyn LogStore>, bool); 2] = [
        (Arc::new(MemoryLogs::new()), true),
        (Arc::new(StaleBoundsLogs::default()), false),
    ];
    for (logs, agree) in stores {
        let backend = logs.backend().to_owned();
        let catalog = Catalog::new(Storage::new(
            logs,
            Arc::new(MemoryBlobStore::new()),
            "memory:",
        ));
        catalog
            .create_sheet("s", SheetOptions::default())
            .await
            .unwrap();
        let first = catalog.open_sheet("s").await.unwrap().open().await.unwrap();
        let second = catalog.open_sheet("s").await.unwrap().open().await.unwrap();
        second.set("H1", "from the second").await.unwrap();
        first.set("H2", "from the first").await.unwrap();
        let cold = catalog.open_sheet("s").await.unwrap().open().await.unwrap();
        let h1 = cold.get("H1").await.unwrap();
        let h2 = cold.get("H2").await.unwrap();
        assert_eq!(h2, Some(Cell::from("from the first")), "{backend}");
        if agree {
            assert_eq!(h1, Some(Cell::from("from the second")), "{backend}");
        } else {
            assert_eq!(
                h1, None,
                "{backend}: the stale handle's edit did not overwrite"
            );
        }
    }
}
