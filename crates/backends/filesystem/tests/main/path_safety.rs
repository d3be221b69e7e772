//! Names cannot escape the store, and symbolic links planted inside it are
//! never followed out of it.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::{BlobDirExt, BlobStore, ReadBlobError, WriteBlobError};
use infinisheet_filesystem::FsBlobStore;
use std::os::unix::fs::symlink;

#[tokio::test]
async fn escaping_names_are_rejected_before_touching_the_disk() {
    let outside = tempfile::tempdir().unwrap();
    let store = FsBlobStore::temporary().await.unwrap();
    let root = store.root();
    let escape = format!("../../../../{}/owned", outside.path().display());
    for bad in ["..", "../x", "a/../../b", escape.as_str(), "x\0y", "a\\b"] {
        assert!(matches!(
            root.write(bad, &b"x"[..]).await,
            Err(WriteBlobError::InvalidName(_))
        ));
        assert!(matches!(
            root.read(bad).await,
            Err(ReadBlobError::InvalidName(_))
        ));
    }
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "something escaped"
    );
}

#[tokio::test]
async fn planted_symlinks_are_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("secret"), b"outside").unwrap();
    let store = FsBlobStore::temporary().await.unwrap();
    let blobs = store.path().join("blobs");
    symlink(outside.path(), blobs.join("evil_dir")).unwrap();
    symlink(outside.path().join("secret"), blobs.join("evil_file")).unwrap();
    let root = store.root();

    // Reading through a directory link, or a file link, never yields the
    // outside content.
    let via_dir = root
        .open_dir("evil_dir")
        .await
        .unwrap()
        .read("secret")
        .await;
    assert!(
        !matches!(&via_dir, Ok(content) if content.as_ref() == b"outside"),
        "read followed a directory link: {via_dir:?}"
    );
    let via_file = root.read("evil_file").await;
    assert!(
        !matches!(&via_file, Ok(content) if content.as_ref() == b"outside"),
        "read followed a file link: {via_file:?}"
    );

    // Writing through a directory link fails; writing a linked name replaces
    // the link, never the file it points to.
    let dir_write = root
        .open_dir("evil_dir")
        .await
        .unwrap()
        .write("planted", &b"x"[..])
        .await;
    assert!(dir_write.is_err(), "wrote through a directory link");
    assert!(
        !outside.path().join("planted").exists(),
        "a file appeared outside the store"
    );
    root.write("evil_file", &b"inside"[..]).await.unwrap();
    assert_eq!(
        std::fs::read(outside.path().join("secret")).unwrap(),
        b"outside"
    );
    assert_eq!(root.read("evil_file").await.unwrap(), &b"inside"[..]);

    // Links are not listed, and removing everything leaves the outside alone.
    let listed: Vec<_> = root
        .list_all()
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.name.into_string())
        .collect();
    assert_eq!(listed, vec!["evil_file"]);
    root.remove_all().await.unwrap();
    assert_eq!(
        std::fs::read(outside.path().join("secret")).unwrap(),
        b"outside"
    );
}

#[tokio::test]
async fn the_tree_is_plain_files_a_person_can_read() {
    let store = FsBlobStore::temporary().await.unwrap();
    let sheet = store.root().open_dir("budget 2026").await.unwrap();
    sheet
        .open_dir("snapshots")
        .await
        .unwrap()
        .write("s100", &b"tiles"[..])
        .await
        .unwrap();
    let on_disk = store.path().join("blobs/budget 2026/snapshots/s100");
    assert_eq!(std::fs::read(on_disk).unwrap(), b"tiles");
    assert_eq!(
        std::fs::read_dir(store.path().join("tmp")).unwrap().count(),
        0
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn four_thousand_nested_directories_list_and_remove_without_recursion() {
    use infinisheet_blob_store::{BlobDirExt, BlobStore};
    let dir = tempfile::tempdir().unwrap();
    let store = infinisheet_filesystem::FsBlobStore::open(dir.path())
        .await
        .unwrap();
    let root = store.root();
    let mut deep = root.clone();
    for _ in 0..4_000 {
        deep = deep.open_dir("n").await.unwrap();
    }
    deep.write("leaf", bytes::Bytes::from_static(b"deep"))
        .await
        .unwrap();
    // Listing the root asks whether "n" holds a blob: a walk 4,000 deep.
    let listed = root.list_all().await.unwrap();
    assert_eq!(listed.len(), 1);
    root.remove_all().await.unwrap();
    assert!(root.list_all().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn names_longer_than_a_file_name_are_stored_listed_and_removed() {
    use infinisheet_blob_store::{BlobDirExt, BlobStore, EntryKind};
    let dir = tempfile::tempdir().unwrap();
    let store = infinisheet_filesystem::FsBlobStore::open(dir.path())
        .await
        .unwrap();
    let root = store.root();
    // 100 characters of 4 bytes: 400 bytes, past Linux's 255.
    let blob = "😀".repeat(100);
    let folder = format!("{}d", "𝄞".repeat(99));
    root.write(&blob, bytes::Bytes::from_static(b"long"))
        .await
        .unwrap();
    let sub = root.open_dir(&folder).await.unwrap();
    sub.write(&blob, bytes::Bytes::from_static(b"deeper"))
        .await
        .unwrap();
    assert_eq!(&root.read(&blob).await.unwrap()[..], b"long");
    let mut listed: Vec<(String, EntryKind)> = root
        .list_all()
        .await
        .unwrap()
        .into_iter()
        .map(|e| (e.name.as_str().to_owned(), e.kind))
        .collect();
    listed.sort();
    let mut expected = vec![
        (blob.clone(), EntryKind::Blob),
        (folder.clone(), EntryKind::Dir),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    // A store opened again reads the same names.
    drop(store);
    let store = infinisheet_filesystem::FsBlobStore::open(dir.path())
        .await
        .unwrap();
    let sub = store.root().open_dir(&folder).await.unwrap();
    assert_eq!(&sub.read(&blob).await.unwrap()[..], b"deeper");
    sub.remove(&blob).await.unwrap();
    store.root().remove(&blob).await.unwrap();
    assert!(store.root().list_all().await.unwrap().is_empty());
}
