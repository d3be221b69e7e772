//! Names a local file system takes differently from an object store.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::{BlobDirExt, BlobStore, EntryKind};
use infinisheet_object_store::ObjectStoreBlobStore;
use infinisheet_object_store::local::LocalFileSystem;
use std::sync::Arc;

fn local() -> (tempfile::TempDir, ObjectStoreBlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let fs = LocalFileSystem::new_with_prefix(dir.path())
        .unwrap()
        .with_automatic_cleanup(true);
    (dir, ObjectStoreBlobStore::new(Arc::new(fs), "blobs".into()))
}

#[tokio::test]
async fn names_ending_in_a_colon_are_blobs_and_directories() {
    let (_dir, store) = local();
    let root = store.root();

    root.write("a:", "x").await.unwrap();
    assert_eq!(root.read("a:").await.unwrap(), "x");
    root.write("x%3A", "literal").await.unwrap();
    assert_eq!(root.read("x%3A").await.unwrap(), "literal");
    root.remove("x%3A").await.unwrap();
    let sub = root.open_dir("d:").await.unwrap();
    sub.write("b:", "y").await.unwrap();
    let mut listed: Vec<(String, EntryKind)> = root
        .list_all()
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name.as_str().to_owned(), e.kind))
        .collect();
    listed.sort();
    assert_eq!(
        listed,
        vec![
            ("a:".to_owned(), EntryKind::Blob),
            ("d:".to_owned(), EntryKind::Dir)
        ]
    );
    root.remove("a:").await.unwrap();
    sub.remove("b:").await.unwrap();
    assert!(root.list_all().await.unwrap().is_empty());
}
