//! Cases for blob contents: sizes, bytes, and atomic replacement under
//! concurrent writers and readers.

use super::{Store, open, put};
use bytes::Bytes;
use infinisheet_blob_store::{BlobDirExt, ReadBlobError};

/// An empty blob is a blob: it reads back empty and is listed.
pub async fn blob_empty(store: Store) {
    let root = store.root();
    put(&*root, "empty", b"").await;
    assert_eq!(root.read("empty").await.unwrap().len(), 0);
    assert_eq!(root.list_all().await.unwrap().len(), 1);
}

/// Every byte value survives in a blob that is not valid UTF-8.
pub async fn blob_binary(store: Store) {
    let root = store.root();
    let all: Vec<u8> = (0..=255).rev().collect();
    put(&*root, "bin", &all).await;
    assert_eq!(root.read("bin").await.unwrap(), all);
}

/// A 16 MiB blob round-trips exactly.
pub async fn blob_sixteen_mib(store: Store) {
    let dir = open(&store, &["big"]).await;
    let big: Vec<u8> = (0..16 * 1024 * 1024u32).map(|i| (i % 253) as u8).collect();
    let big = Bytes::from(big);
    dir.write("big", big.clone()).await.unwrap();
    let back = dir.read("big").await.unwrap();
    assert!(
        back == big,
        "a 16 MiB blob came back different ({} bytes)",
        back.len()
    );
}

fn version(writer: u8, len: usize) -> Bytes {
    Bytes::from(vec![writer; len])
}

/// Whether `content` is one writer's whole version.
fn is_whole(content: &[u8], len: usize) -> bool {
    content.len() == len && content.iter().all(|b| *b == content[0])
}

/// 8 writers replace the same 256 KiB blob 10 times each while readers read
/// it: every read, and the final content, is one writer's whole version,
/// never a mix or a part.
pub async fn concurrent_writers_leave_one_whole_version(store: Store) {
    const LEN: usize = 256 * 1024;
    let root = store.root();
    put(&*root, "contended", &version(0xff, LEN)).await;
    let writers: Vec<_> = (0..8u8)
        .map(|writer| {
            let root = root.clone();
            tokio::spawn(async move {
                for _ in 0..10 {
                    root.write("contended", version(writer, LEN))
                        .await
                        .unwrap_or_else(|err| panic!("writer {writer}: {err}"));
                }
            })
        })
        .collect();
    let readers: Vec<_> = (0..2)
        .map(|_| {
            let root = root.clone();
            tokio::spawn(async move {
                for _ in 0..20 {
                    let content = root
                        .read("contended")
                        .await
                        .unwrap_or_else(|err| panic!("reading during writes: {err}"));
                    assert!(
                        is_whole(&content, LEN),
                        "a reader saw a mixed or partial blob"
                    );
                }
            })
        })
        .collect();
    for task in writers.into_iter().chain(readers) {
        task.await.expect("writer or reader task");
    }
    let last = root.read("contended").await.unwrap();
    assert!(is_whole(&last, LEN), "the final blob is a mix or a part");
    assert!(
        last[0] < 8,
        "the final blob is one of the writers' versions"
    );
}

/// Writing and removing the same name at once leaves either the whole blob
/// or no blob, never a part.
pub async fn concurrent_write_and_remove(store: Store) {
    const LEN: usize = 64 * 1024;
    let root = store.root();
    let writer = {
        let root = root.clone();
        tokio::spawn(async move {
            for i in 0..20u8 {
                root.write("flicker", version(i, LEN)).await.unwrap();
            }
        })
    };
    let remover = {
        let root = root.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                root.remove("flicker").await.unwrap();
                match root.read("flicker").await {
                    Ok(content) => assert!(is_whole(&content, LEN), "a part of a blob was read"),
                    Err(ReadBlobError::NotFound { .. }) => {}
                    Err(err) => panic!("reading while removing: {err}"),
                }
            }
        })
    };
    writer.await.expect("writer task");
    remover.await.expect("remover task");
    match root.read("flicker").await {
        Ok(content) => assert!(is_whole(&content, LEN)),
        Err(ReadBlobError::NotFound { .. }) => {}
        Err(err) => panic!("final read: {err}"),
    }
}
