//! A handle that remembers a blob's version must not write over a
//! directory another handle made of that name since (the model test found
//! this when the memory was a time window).

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use infinisheet_blob_store::{BlobDirExt, BlobStore, EntryKind, WriteBlobError};
use infinisheet_object_store::ObjectStore;
use infinisheet_object_store::ObjectStoreBlobStore;
use infinisheet_object_store::local::LocalFileSystem;
use std::sync::Arc;

async fn blob_turned_directory_by_another_handle(store: Arc<dyn ObjectStore>) {
    let blobs = ObjectStoreBlobStore::new(store, "blobs".into());
    let (mine, theirs) = (blobs.root(), blobs.root());
    mine.write("b", "first").await.unwrap();
    theirs.remove("b").await.unwrap();
    theirs
        .open_dir("b")
        .await
        .unwrap()
        .write("a", "x")
        .await
        .unwrap();
    match mine.write("b", "second").await {
        Err(WriteBlobError::WrongKind {
            found: EntryKind::Dir,
            ..
        }) => {}
        other => panic!("expected WrongKind, got {other:?}"),
    }
    assert_eq!(
        theirs.open_dir("b").await.unwrap().read("a").await.unwrap(),
        "x"
    );
}

#[tokio::test]
async fn in_memory() {
    blob_turned_directory_by_another_handle(common::memory()).await;
}

#[tokio::test]
async fn local_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalFileSystem::new_with_prefix(dir.path())
        .unwrap()
        .with_automatic_cleanup(true);
    blob_turned_directory_by_another_handle(Arc::new(store)).await;
}
