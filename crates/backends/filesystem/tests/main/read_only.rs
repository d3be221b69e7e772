//! A filesystem blob store opened read-only creates nothing, reads what
//! is there and refuses every change.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_filesystem::FsBlobStore;

#[tokio::test]
async fn a_read_only_store_reads_and_refuses_changes() {
    let root = tempfile::tempdir().unwrap();
    let missing = root.path().join("none");
    assert!(FsBlobStore::open_read_only(&missing).await.is_err());
    assert!(!missing.exists(), "opening read-only created the store");

    let store = FsBlobStore::open(root.path()).await.unwrap();
    store
        .root()
        .open_dir("a")
        .await
        .unwrap()
        .write("b", "hello")
        .await
        .unwrap();
    drop(store);
    std::fs::remove_dir(root.path().join("tmp")).unwrap();

    let reader = FsBlobStore::open_read_only(root.path()).await.unwrap();
    let dir = reader.root().open_dir("a").await.unwrap();
    assert_eq!(&dir.read("b").await.unwrap()[..], b"hello");
    assert!(dir.write("c", "x").await.is_err());
    assert!(dir.remove("b").await.is_err());
    assert!(reader.root().remove_all().await.is_err());
    assert_eq!(&dir.read("b").await.unwrap()[..], b"hello");
    assert!(
        !root.path().join("tmp").exists(),
        "opening read-only made tmp"
    );
    assert!(!root.path().join("blobs/a/c").exists());
}
