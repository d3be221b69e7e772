//! Cases for listings: pages, continuation tokens, many names, and listing
//! while others write.

use super::{Store, entries, listing, open};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use infinisheet_blob_store::{BlobDir, BlobDirExt, Continuation, EntryKind, ListError, ListPage};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The most names a page may hold.
const MAX_PAGE: usize = 1_000;

/// Writes blobs `name(0..n)` into `dir`, 16 at a time.
async fn write_many(dir: &Arc<dyn BlobDir>, n: usize, name: impl Fn(usize) -> String) {
    futures::stream::iter((0..n).map(|i| {
        let dir = dir.clone();
        let blob = name(i);
        async move {
            dir.write(&blob, Bytes::from(blob.clone()))
                .await
                .map_err(|err| format!("writing {blob}: {err}"))
        }
    }))
    .buffer_unordered(16)
    .try_collect::<Vec<()>>()
    .await
    .unwrap_or_else(|err| panic!("{err}"));
}

/// Follows pages to the end, checking each holds at most [`MAX_PAGE`] names;
/// returns the pages' names.
async fn pages(dir: &dyn BlobDir) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token: Option<Continuation> = None;
    loop {
        let page = dir
            .list(token.as_ref())
            .await
            .unwrap_or_else(|err| panic!("listing page {}: {err}", pages.len()));
        assert!(
            page.entries.len() <= MAX_PAGE,
            "a page holds at most {MAX_PAGE} names"
        );
        pages.push(
            page.entries
                .into_iter()
                .map(|e| e.name.into_string())
                .collect(),
        );
        match page.continuation {
            Some(next) => token = Some(next),
            None => return pages,
        }
    }
}

/// Asserts `names` holds each expected name exactly once and nothing else.
fn assert_each_once(pages: &[Vec<String>], expected: &BTreeSet<String>) {
    let mut seen = BTreeSet::new();
    for name in pages.iter().flatten() {
        assert!(seen.insert(name.clone()), "{name} listed twice");
    }
    assert_eq!(seen.len(), expected.len(), "number of names listed");
    assert!(
        &seen == expected,
        "the listed names differ from those written"
    );
}

/// Listing an empty directory gives one empty page without continuation.
pub async fn list_empty_dir(store: Store) {
    let page = store.root().list(None).await.unwrap();
    assert_eq!(page, ListPage::default());
    let page = open(&store, &["never", "written"])
        .await
        .list(None)
        .await
        .unwrap();
    assert_eq!(page, ListPage::default());
}

/// A listing names blobs and directories with their kinds.
pub async fn list_reports_kinds(store: Store) {
    let root = store.root();
    root.write("blob", &b"x"[..]).await.unwrap();
    open(&store, &["dir"])
        .await
        .write("x", &b"x"[..])
        .await
        .unwrap();
    open(&store, &["deep", "er"])
        .await
        .write("x", &b"x"[..])
        .await
        .unwrap();
    assert_eq!(
        listing(&*root).await,
        entries(&[
            ("blob", EntryKind::Blob),
            ("deep", EntryKind::Dir),
            ("dir", EntryKind::Dir),
        ])
    );
}

/// A size a listing gives is the blob's length at listing time, on every
/// page; directories have none.
pub async fn list_sizes_are_the_blobs_lengths(store: Store) {
    let root = store.root();
    let lengths = [0usize, 1, 17, 4096, 100_001];
    for (i, len) in lengths.iter().enumerate() {
        root.write(&format!("b{i}"), vec![7u8; *len]).await.unwrap();
    }
    open(&store, &["dir"])
        .await
        .write("x", &b"inside"[..])
        .await
        .unwrap();
    // Rewritten to another length: the listing tells the new one.
    root.write("b1", vec![1u8; 300]).await.unwrap();
    let mut seen = 0;
    for entry in root.list_all().await.unwrap() {
        seen += 1;
        match entry.kind {
            EntryKind::Dir => assert_eq!(entry.size, None, "directory {} has a size", entry.name),
            EntryKind::Blob => {
                let Some(size) = entry.size else { continue };
                let read = root.read_blob(&entry.name).await.unwrap();
                assert_eq!(size, read.len() as u64, "listed size of {}", entry.name);
            }
        }
    }
    assert_eq!(seen, lengths.len() + 1);
}

/// 2,500 blobs and 30 directories list over more than two pages, every name
/// exactly once and each directory once however many blobs it holds.
pub async fn list_pages_cover_every_name(store: Store) {
    let root = store.root();
    write_many(&root, 2_500, |i| format!("blob-{i:05}")).await;
    let mut expected: BTreeSet<String> = (0..2_500).map(|i| format!("blob-{i:05}")).collect();
    for d in 0..30 {
        let dir = root.open_dir(&format!("dir-{d:02}")).await.unwrap();
        write_many(&dir, 3, |i| format!("inner-{i}")).await;
        expected.insert(format!("dir-{d:02}"));
    }
    let pages = pages(&*root).await;
    assert!(
        pages.len() > 2,
        "2,530 names must take more than two pages of at most {MAX_PAGE}"
    );
    assert_each_once(&pages, &expected);
}

/// 10,000 blobs in one directory all list, each exactly once.
pub async fn list_ten_thousand_blobs(store: Store) {
    let dir = open(&store, &["big"]).await;
    write_many(&dir, 10_000, |i| format!("{i}")).await;
    let expected: BTreeSet<String> = (0..10_000).map(|i| format!("{i}")).collect();
    assert_each_once(&pages(&*dir).await, &expected);
}

/// Replaying a continuation token gives the same page again, or the
/// no-continuation error; never a different page.
pub async fn continuation_replay(store: Store) {
    let dir = open(&store, &["d"]).await;
    write_many(&dir, MAX_PAGE + 1, |i| format!("n{i}")).await;
    let first = dir.list(None).await.unwrap();
    let token = first
        .continuation
        .expect("1,001 names cannot fit one page of at most 1,000");
    let second = dir.list(Some(&token)).await.unwrap();
    match dir.list(Some(&token)).await {
        Ok(again) => assert_eq!(again, second, "a replayed token gave a different page"),
        Err(ListError::NoContinuation) => {}
        Err(err) => panic!("replaying a token: {err}"),
    }
}

/// A token used on a directory that did not issue it — a sibling, the
/// parent, or a child — is the no-continuation error.
pub async fn continuation_from_other_dir_rejected(store: Store) {
    let dir = open(&store, &["d"]).await;
    write_many(&dir, MAX_PAGE + 1, |i| format!("n{i}")).await;
    let sibling = open(&store, &["e"]).await;
    write_many(&sibling, MAX_PAGE + 1, |i| format!("n{i}")).await;
    let child = dir.open_dir("child").await.unwrap();
    child.write("x", &b"x"[..]).await.unwrap();
    let token = dir
        .list(None)
        .await
        .unwrap()
        .continuation
        .expect("1,001 names cannot fit one page of at most 1,000");
    for other in [sibling, store.root(), child] {
        assert_err!(other.list(Some(&token)).await, ListError::NoContinuation);
    }
}

/// A token that no directory issued is the no-continuation error.
pub async fn continuation_garbage_rejected(store: Store) {
    let root = store.root();
    root.write("x", &b"x"[..]).await.unwrap();
    for garbage in [
        "",
        "garbage",
        "\0\0\0",
        "{\"page\":2}",
        "99999999999999999999",
    ] {
        assert_err!(
            root.list(Some(&Continuation::from(garbage.to_owned())))
                .await,
            ListError::NoContinuation
        );
    }
}

/// Paging through 1,500 blobs while another task writes 500 new ones: no
/// name is listed twice and every blob present throughout is listed.
pub async fn list_while_writing(store: Store) {
    let dir = open(&store, &["d"]).await;
    write_many(&dir, 1_500, |i| format!("old-{i:04}")).await;
    let writer = {
        let dir = dir.clone();
        tokio::spawn(async move { write_many(&dir, 500, |i| format!("new-{i:04}")).await })
    };
    let pages = pages(&*dir).await;
    writer.await.expect("writer task");
    let mut seen = BTreeSet::new();
    for name in pages.iter().flatten() {
        assert!(seen.insert(name.clone()), "{name} listed twice");
    }
    for i in 0..1_500 {
        assert!(
            seen.contains(&format!("old-{i:04}")),
            "old-{i:04} was not listed"
        );
    }
}
