//! Which sheets have work for a worker: an edit that makes a snapshot due
//! leaves a marker in `.due/`, one listing names every marked sheet, and
//! clearing removes only the markers listed.

use infinisheet::engine::{Cell, CellValue};
use infinisheet::{Catalog, CatalogError, SheetOptions, Storage, marker_key};

async fn edit(catalog: &Catalog, path: &str, edits: u32) {
    let sheet = catalog.open_sheet(path).await.unwrap();
    let writer = sheet.writer(false).await.unwrap();
    for i in 0..edits {
        writer
            .cells()
            .set_cell(i, 0, Cell::new(CellValue::Number(f64::from(i))))
            .await
            .unwrap();
    }
    writer.finish().await;
}

#[tokio::test]
async fn an_edit_making_a_snapshot_due_marks_its_sheet_until_cleared() {
    let catalog = Catalog::new(Storage::open("memory:", "memory:").await.unwrap());
    let options = SheetOptions::default().snapshot_interval(5);
    catalog.create_sheet("a/busy", options).await.unwrap();
    catalog.create_sheet("quiet", options).await.unwrap();
    // Edits short of the interval make no job: nothing is due.
    edit(&catalog, "quiet", 2).await;
    edit(&catalog, "a/busy", 2).await;
    assert_eq!(catalog.due_sheets().await.unwrap(), Vec::new());
    // The edit that makes a snapshot due marks the sheet.
    edit(&catalog, "a/busy", 4).await;
    let due = catalog.due_sheets().await.unwrap();
    let busy = catalog.sheet_metadata("a/busy").await.unwrap();
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].sheet, marker_key(&busy));
    assert_eq!(due[0].path, "a/busy");
    // A job made after the listing keeps its own marker through the clear.
    edit(&catalog, "a/busy", 5).await;
    catalog.clear_due(&due[0]).await.unwrap();
    let left = catalog.due_sheets().await.unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    assert!(left[0].markers.iter().all(|m| !due[0].markers.contains(m)));
    catalog.clear_due(&left[0]).await.unwrap();
    assert_eq!(catalog.due_sheets().await.unwrap(), Vec::new());
    // The markers' directory is no folder of the catalog.
    let names: Vec<String> = catalog
        .list("")
        .await
        .unwrap()
        .into_iter()
        .map(|item| item.name)
        .collect();
    assert_eq!(names, ["a", "quiet"]);
    assert!(matches!(
        catalog.create_sheet(".due/x", options).await,
        Err(CatalogError::InvalidPath { .. })
    ));
}

/// A writer that runs its own snapshot jobs leaves no marker; blobs in
/// `.due/` that are not markers (a sheet an older release let be named
/// `.due`) are no sheets with work.
#[tokio::test]
async fn writers_running_their_jobs_and_foreign_blobs_mark_nothing() {
    use infinisheet::blob_store::{BlobDirExt, BlobStore};
    let storage = Storage::open("memory:", "memory:").await.unwrap();
    let catalog = Catalog::new(storage.clone());
    let options = SheetOptions::default().snapshot_interval(2);
    catalog.create_sheet("s", options).await.unwrap();
    let sheet = catalog.open_sheet("s").await.unwrap();
    let writer = sheet.writer(true).await.unwrap();
    for i in 0..5 {
        writer
            .cells()
            .set_cell(i, 0, Cell::new(CellValue::Number(f64::from(i))))
            .await
            .unwrap();
    }
    writer.finish().await;
    assert_eq!(catalog.due_sheets().await.unwrap(), Vec::new());
    let due = storage.blobs.root().open_dir(".due").await.unwrap();
    due.write("sheet.json", "{}").await.unwrap();
    due.write("x.0123", "p").await.unwrap();
    assert_eq!(catalog.due_sheets().await.unwrap(), Vec::new());
}

/// What a worker's pass between its passes over every sheet reads of an
/// idle catalog of 50 sheets on an object store: the markers' listing,
/// nothing per sheet.
#[cfg(feature = "object-store")]
#[tokio::test]
async fn an_idle_catalog_costs_a_listing() {
    use infinisheet::object_store::memory::InMemory;
    use infinisheet::object_store::{CountingStore, ObjectStoreBlobStore};
    use infinisheet::{LogStore, ObjectStoreLogs};
    use std::sync::Arc;
    let store = CountingStore::new(Arc::new(InMemory::new()));
    let logs: Arc<dyn LogStore> = Arc::new(ObjectStoreLogs::new(
        Arc::new(store.clone()),
        "logs".into(),
        "memory://logs",
    ));
    let blobs = ObjectStoreBlobStore::new(Arc::new(store.clone()), "sheets".into());
    let catalog = Catalog::new(Storage::new(logs, Arc::new(blobs), "memory://sheets"));
    let options = SheetOptions::default().snapshot_interval(3);
    for i in 0..50 {
        let path = format!("f{}/s{i}", i % 5);
        catalog.create_sheet(&path, options).await.unwrap();
        edit(&catalog, &path, 2).await;
    }
    let before = store.counts();
    assert!(catalog.due_sheets().await.unwrap().is_empty());
    let idle = store.counts().since(before);
    assert!(idle.total() <= 10, "an idle pass read {idle}");
    // One sheet gets work: the pass reads its marker too, still not the
    // other 49.
    edit(&catalog, "f0/s0", 2).await;
    let before = store.counts();
    let due = catalog.due_sheets().await.unwrap();
    let busy = store.counts().since(before);
    assert_eq!(due.len(), 1);
    assert!(busy.total() <= 10, "a pass with one sheet due read {busy}");
}
