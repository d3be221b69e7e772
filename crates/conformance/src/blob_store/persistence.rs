//! Cases for stores that declare persistence: blobs and directories
//! survive dropping the store and opening it again.

use super::{entries, listing};
use infinisheet_blob_store::{BlobDirExt, BlobStore, EntryKind, ReadBlobError};
use std::future::Future;

/// Blobs at every depth, with their exact content, survive reopening.
pub async fn blobs_survive_reopen<S, R, Fut>(store: S, reopen: Option<R>)
where
    S: BlobStore,
    R: FnOnce(S) -> Fut,
    Fut: Future<Output = S>,
{
    let Some(reopen) = crate::report::reopener(
        "blobs_survive_reopen",
        store.capabilities().persistent,
        "blob_store_tests!",
        reopen,
    ) else {
        return;
    };
    let root = store.root();
    root.write("top", &b"top"[..]).await.unwrap();
    let deep = root
        .open_dir("a")
        .await
        .unwrap()
        .open_dir("Übersicht")
        .await
        .unwrap();
    deep.write("leaf", &b"leaf"[..]).await.unwrap();
    let big: Vec<u8> = (0..1024 * 1024u32).map(|i| (i % 249) as u8).collect();
    deep.write("big", big.clone()).await.unwrap();
    drop((root, deep));
    let store = reopen(store).await;
    let root = store.root();
    assert_eq!(root.read("top").await.unwrap(), &b"top"[..]);
    let deep = root
        .open_dir("a")
        .await
        .unwrap()
        .open_dir("Übersicht")
        .await
        .unwrap();
    assert_eq!(deep.read("leaf").await.unwrap(), &b"leaf"[..]);
    assert_eq!(deep.read("big").await.unwrap(), big);
    assert_eq!(
        listing(&*root).await,
        entries(&[("a", EntryKind::Dir), ("top", EntryKind::Blob)])
    );
}

/// Removals and replacements survive reopening.
pub async fn removals_survive_reopen<S, R, Fut>(store: S, reopen: Option<R>)
where
    S: BlobStore,
    R: FnOnce(S) -> Fut,
    Fut: Future<Output = S>,
{
    let Some(reopen) = crate::report::reopener(
        "removals_survive_reopen",
        store.capabilities().persistent,
        "blob_store_tests!",
        reopen,
    ) else {
        return;
    };
    let root = store.root();
    root.write("gone", &b"x"[..]).await.unwrap();
    root.write("replaced", &b"old"[..]).await.unwrap();
    root.open_dir("tree")
        .await
        .unwrap()
        .write("x", &b"x"[..])
        .await
        .unwrap();
    root.remove("gone").await.unwrap();
    root.write("replaced", &b"new"[..]).await.unwrap();
    root.open_dir("tree")
        .await
        .unwrap()
        .remove_all()
        .await
        .unwrap();
    drop(root);
    let store = reopen(store).await;
    let root = store.root();
    assert_err!(root.read("gone").await, ReadBlobError::NotFound { .. });
    assert_eq!(root.read("replaced").await.unwrap(), &b"new"[..]);
    assert_eq!(
        listing(&*root).await,
        entries(&[("replaced", EntryKind::Blob)])
    );
}
