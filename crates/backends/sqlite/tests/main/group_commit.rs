//! Blob writes made at once commit together: each is answered for itself
//! (a refused one fails alone, the others land), and every acknowledged
//! one is in the file after a reopen.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use bytes::Bytes;
use infinisheet_blob_store::{BlobName, BlobStore, EntryKind, WriteBlobError};
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};

fn name(text: &str) -> BlobName {
    BlobName::new(text).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_at_once_are_answered_each_and_all_land() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("blobs.db");
    let db = SqliteDatabase::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    let root = db.blob_store("blobs").await.unwrap().root();
    // `taken` is a directory: writing a blob there is refused.
    let taken = root.dir(&name("taken")).await.unwrap();
    taken
        .write_blob(&name("inside"), Bytes::from("x"))
        .await
        .unwrap();

    let writes = (0..64).map(|i| {
        let root = root.clone();
        async move {
            let blob = if i == 17 {
                name("taken")
            } else {
                name(&format!("b{i}"))
            };
            root.write_blob(&blob, Bytes::from(format!("content {i}")))
                .await
        }
    });
    // All from one task, as the engine writes a snapshot's tiles.
    let results = futures::future::join_all(writes).await;
    for (i, result) in results.into_iter().enumerate() {
        if i == 17 {
            assert!(
                matches!(
                    result,
                    Err(WriteBlobError::WrongKind {
                        found: EntryKind::Dir,
                        ..
                    })
                ),
                "{result:?}"
            );
        } else {
            result.unwrap();
        }
    }
    drop(root);
    drop(db);

    let db = SqliteDatabase::open(&path, SqliteOptions::default())
        .await
        .unwrap();
    let root = db.blob_store("blobs").await.unwrap().root();
    for i in (0..64).filter(|&i| i != 17) {
        let read = root.read_blob(&name(&format!("b{i}"))).await.unwrap();
        assert_eq!(read, Bytes::from(format!("content {i}")));
    }
    let inside = root.dir(&name("taken")).await.unwrap();
    assert_eq!(
        inside.read_blob(&name("inside")).await.unwrap(),
        Bytes::from("x")
    );
}
