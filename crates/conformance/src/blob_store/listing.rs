//! Cases for listings: pages, continuation tokens, many names, and listing
//! while others write. Each writes several pages' worth of the size the
//! store declares
//! ([`BlobCapabilities::page_size`](infinisheet_blob_store::BlobCapabilities)),
//! and never fewer names than a floor of its own: ten pages are 10,000
//! blobs at the default of 1,000, and 1,100 (the floor) on a store
//! configured with pages of 100 (a remote one, whose every write is a
//! request) or of 7 — still more than one of the 1,000-key pages S3 and
//! Azure answer a listing with, so a store's own paging of the service's
//! listing is crossed too.

use super::{Store, entries, listing, open};
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use infinisheet_blob_store::{
    BlobDir, BlobDirExt, Continuation, EntryKind, ListError, ListPage, MAX_PAGE,
};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The most names a page of `store`'s listings holds, as it declares it.
fn page_size(store: &Store) -> usize {
    let page = store.capabilities().page_size;
    assert!(
        (1..=MAX_PAGE).contains(&page),
        "a store declares pages of 1 to {MAX_PAGE} names, not {page}"
    );
    page
}

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

/// Follows pages to the end, checking each holds at most `page` names;
/// returns the pages' names.
async fn pages(dir: &dyn BlobDir, page: usize) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut token: Option<Continuation> = None;
    loop {
        let listed = dir
            .list(token.as_ref())
            .await
            .unwrap_or_else(|err| panic!("listing page {}: {err}", pages.len()));
        assert!(
            listed.entries.len() <= page,
            "a page held {} names; the store declares at most {page}",
            listed.entries.len()
        );
        pages.push(
            listed
                .entries
                .into_iter()
                .map(|e| e.name.into_string())
                .collect(),
        );
        match listed.continuation {
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

/// Two and a half pages of blobs (at least 250) and 30 directories list
/// over more than two pages, every name exactly once and each directory
/// once however many blobs it holds.
pub async fn list_pages_cover_every_name(store: Store) {
    let page = page_size(&store);
    let blobs = (2 * page + page / 2).max(250);
    let root = store.root();
    write_many(&root, blobs, |i| format!("blob-{i:05}")).await;
    let mut expected: BTreeSet<String> = (0..blobs).map(|i| format!("blob-{i:05}")).collect();
    for d in 0..30 {
        let dir = root.open_dir(&format!("dir-{d:02}")).await.unwrap();
        write_many(&dir, 3, |i| format!("inner-{i}")).await;
        expected.insert(format!("dir-{d:02}"));
    }
    let pages = pages(&*root, page).await;
    assert!(
        pages.len() > 2,
        "{} names must take more than two pages of at most {page}",
        expected.len()
    );
    assert_each_once(&pages, &expected);
}

/// Ten full pages of blobs in one directory (10,000 at the default page
/// size), and at least 1,100, all list, each exactly once.
pub async fn list_ten_full_pages(store: Store) {
    let page = page_size(&store);
    let blobs = (10 * page).max(1_100);
    let dir = open(&store, &["big"]).await;
    write_many(&dir, blobs, |i| format!("{i}")).await;
    let expected: BTreeSet<String> = (0..blobs).map(|i| format!("{i}")).collect();
    assert_each_once(&pages(&*dir, page).await, &expected);
}

/// Replaying a continuation token gives the same page again, or the
/// no-continuation error; never a different page.
pub async fn continuation_replay(store: Store) {
    let page = page_size(&store);
    let dir = open(&store, &["d"]).await;
    write_many(&dir, page + 1, |i| format!("n{i}")).await;
    let first = dir.list(None).await.unwrap();
    let token = first
        .continuation
        .unwrap_or_else(|| panic!("{} names cannot fit one page of at most {page}", page + 1));
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
    let page = page_size(&store);
    let dir = open(&store, &["d"]).await;
    write_many(&dir, page + 1, |i| format!("n{i}")).await;
    let sibling = open(&store, &["e"]).await;
    write_many(&sibling, page + 1, |i| format!("n{i}")).await;
    let child = dir.open_dir("child").await.unwrap();
    child.write("x", &b"x"[..]).await.unwrap();
    let token = dir
        .list(None)
        .await
        .unwrap()
        .continuation
        .unwrap_or_else(|| panic!("{} names cannot fit one page of at most {page}", page + 1));
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

/// Paging through a page and a half of blobs (1,500 at the default page
/// size, at least 150) while another task writes half a page of new ones
/// (at least 50): no name is listed twice and every blob present
/// throughout is listed.
pub async fn list_while_writing(store: Store) {
    let page = page_size(&store);
    let (old, new) = ((page + page / 2).max(150), (page / 2).max(50));
    let dir = open(&store, &["d"]).await;
    write_many(&dir, old, |i| format!("old-{i:04}")).await;
    let writer = {
        let dir = dir.clone();
        tokio::spawn(async move { write_many(&dir, new, |i| format!("new-{i:04}")).await })
    };
    let pages = pages(&*dir, page).await;
    writer.await.expect("writer task");
    let mut seen = BTreeSet::new();
    for name in pages.iter().flatten() {
        assert!(seen.insert(name.clone()), "{name} listed twice");
    }
    for i in 0..old {
        assert!(
            seen.contains(&format!("old-{i:04}")),
            "old-{i:04} was not listed"
        );
    }
}
