//! Cases for blobs and directories: reading, writing, removing, and the
//! wrong-kind errors both ways.

use super::{Store, entries, listing, name, open, put};
use infinisheet_blob_store::{
    BlobDirExt, DirError, EntryKind, ReadBlobError, RemoveBlobError, WriteBlobError,
};

/// Reading a blob that was never written is not-found, naming it.
pub async fn read_missing_is_not_found(store: Store) {
    let root = store.root();
    assert_err!(root.read("missing").await, ReadBlobError::NotFound { name: n } if n.as_str() == "missing");
    let sub = root.open_dir("sub").await.unwrap();
    assert_err!(sub.read("missing").await, ReadBlobError::NotFound { .. });
}

/// A written blob reads back exactly.
pub async fn write_then_read(store: Store) {
    let root = store.root();
    put(&*root, "a", b"alpha").await;
    assert_eq!(root.read("a").await.unwrap(), &b"alpha"[..]);
}

/// Writing an existing name replaces the blob.
pub async fn write_replaces(store: Store) {
    let root = store.root();
    put(&*root, "a", b"first version, longer").await;
    put(&*root, "a", b"second").await;
    assert_eq!(root.read("a").await.unwrap(), &b"second"[..]);
    assert_eq!(listing(&*root).await, entries(&[("a", EntryKind::Blob)]));
}

/// A removed blob is gone: reading it is not-found and it is not listed.
pub async fn remove_blob_removes(store: Store) {
    let root = store.root();
    put(&*root, "a", b"x").await;
    put(&*root, "b", b"y").await;
    root.remove("a").await.unwrap();
    assert_err!(root.read("a").await, ReadBlobError::NotFound { .. });
    assert_eq!(listing(&*root).await, entries(&[("b", EntryKind::Blob)]));
}

/// Removing a blob that does not exist is fine, also in a directory that
/// does not exist.
pub async fn remove_missing_blob_is_ok(store: Store) {
    let root = store.root();
    root.remove("never").await.unwrap();
    root.open_dir("nowhere")
        .await
        .unwrap()
        .remove("never")
        .await
        .unwrap();
}

/// Reading a directory as a blob is a wrong-kind error.
pub async fn read_dir_is_wrong_kind(store: Store) {
    let root = store.root();
    put(&*open(&store, &["d"]).await, "x", b"x").await;
    assert_err!(
        root.read("d").await,
        ReadBlobError::WrongKind { name: n, found: EntryKind::Dir } if n.as_str() == "d"
    );
}

/// Writing a blob over a directory is a wrong-kind error and leaves the
/// directory intact.
pub async fn write_over_dir_is_wrong_kind(store: Store) {
    let root = store.root();
    let d = open(&store, &["d"]).await;
    put(&*d, "x", b"x").await;
    assert_err!(
        root.write("d", &b"blob"[..]).await,
        WriteBlobError::WrongKind { name: n, found: EntryKind::Dir } if n.as_str() == "d"
    );
    assert_eq!(d.read("x").await.unwrap(), &b"x"[..]);
}

/// Removing a directory as a blob is a wrong-kind error and removes nothing.
pub async fn remove_dir_as_blob_is_wrong_kind(store: Store) {
    let root = store.root();
    let d = open(&store, &["d"]).await;
    put(&*d, "x", b"x").await;
    assert_err!(
        root.remove("d").await,
        RemoveBlobError::WrongKind { name: n, found: EntryKind::Dir } if n.as_str() == "d"
    );
    assert_eq!(d.read("x").await.unwrap(), &b"x"[..]);
}

/// Opening a blob as a directory is a wrong-kind error.
pub async fn dir_over_blob_is_wrong_kind(store: Store) {
    let root = store.root();
    put(&*root, "b", b"x").await;
    assert_err!(
        root.open_dir("b").await,
        DirError::WrongKind { name: n, found: EntryKind::Blob } if n.as_str() == "b"
    );
    assert_eq!(root.read("b").await.unwrap(), &b"x"[..]);
}

/// A directory with nothing written beneath it is invisible, and so is one
/// whose blobs were all removed.
pub async fn empty_dirs_are_invisible(store: Store) {
    let root = store.root();
    let empty = open(&store, &["empty", "deeper"]).await;
    assert_eq!(listing(&*root).await, vec![]);
    assert_eq!(listing(&*empty).await, vec![]);
    put(&*empty, "x", b"x").await;
    assert_eq!(listing(&*root).await, entries(&[("empty", EntryKind::Dir)]));
    empty.remove("x").await.unwrap();
    assert_eq!(listing(&*root).await, vec![]);
}

/// A directory that became empty reappears, through the same handle, when a
/// blob is written to it again.
pub async fn dir_reappears_when_written(store: Store) {
    let root = store.root();
    let d = open(&store, &["d"]).await;
    put(&*d, "x", b"1").await;
    d.remove("x").await.unwrap();
    put(&*d, "y", b"2").await;
    assert_eq!(listing(&*root).await, entries(&[("d", EntryKind::Dir)]));
    assert_eq!(listing(&*d).await, entries(&[("y", EntryKind::Blob)]));
}

/// The name of a directory that became empty can hold a blob, and the name
/// of a removed blob can hold a directory.
pub async fn names_change_kind_once_free(store: Store) {
    let root = store.root();
    let d = open(&store, &["n"]).await;
    put(&*d, "x", b"1").await;
    d.remove("x").await.unwrap();
    put(&*root, "n", b"now a blob").await;
    assert_eq!(listing(&*root).await, entries(&[("n", EntryKind::Blob)]));
    root.remove("n").await.unwrap();
    let d = open(&store, &["n"]).await;
    put(&*d, "y", b"2").await;
    assert_eq!(listing(&*root).await, entries(&[("n", EntryKind::Dir)]));
}

/// Directories nest; each level lists only its own children, and the same
/// name in different directories names different blobs.
pub async fn nested_dirs(store: Store) {
    let root = store.root();
    let a = open(&store, &["a"]).await;
    let ab = open(&store, &["a", "b"]).await;
    let abc = open(&store, &["a", "b", "c"]).await;
    put(&*root, "same", b"root").await;
    put(&*a, "same", b"a").await;
    put(&*ab, "same", b"a/b").await;
    put(&*abc, "same", b"a/b/c").await;
    assert_eq!(root.read("same").await.unwrap(), &b"root"[..]);
    assert_eq!(a.read("same").await.unwrap(), &b"a"[..]);
    assert_eq!(ab.read("same").await.unwrap(), &b"a/b"[..]);
    assert_eq!(abc.read("same").await.unwrap(), &b"a/b/c"[..]);
    assert_eq!(
        listing(&*root).await,
        entries(&[("a", EntryKind::Dir), ("same", EntryKind::Blob)])
    );
    assert_eq!(
        listing(&*ab).await,
        entries(&[("c", EntryKind::Dir), ("same", EntryKind::Blob)])
    );
    assert_eq!(listing(&*abc).await, entries(&[("same", EntryKind::Blob)]));
}

/// Two handles to the same directory see the same blobs.
pub async fn dir_handles_share_content(store: Store) {
    let first = open(&store, &["d"]).await;
    let second = store.root().dir(&name("d")).await.unwrap();
    put(&*first, "x", b"from first").await;
    assert_eq!(second.read("x").await.unwrap(), &b"from first"[..]);
    second.remove("x").await.unwrap();
    assert_err!(first.read("x").await, ReadBlobError::NotFound { .. });
}

/// `remove_all` removes a directory and everything beneath it, at every
/// depth.
pub async fn remove_all_is_recursive(store: Store) {
    let root = store.root();
    let d = open(&store, &["d"]).await;
    put(&*d, "x", b"x").await;
    put(&*open(&store, &["d", "e"]).await, "y", b"y").await;
    put(&*open(&store, &["d", "e", "f"]).await, "z", b"z").await;
    d.remove_all().await.unwrap();
    assert_eq!(listing(&*root).await, vec![]);
    assert_eq!(listing(&*d).await, vec![]);
    let f = open(&store, &["d", "e", "f"]).await;
    assert_err!(f.read("z").await, ReadBlobError::NotFound { .. });
}

/// `remove_all` leaves siblings alone, including ones whose names share a
/// prefix with the removed directory.
pub async fn remove_all_leaves_siblings(store: Store) {
    let root = store.root();
    put(&*open(&store, &["d"]).await, "x", b"x").await;
    put(&*open(&store, &["d2"]).await, "x", b"kept").await;
    put(&*open(&store, &["d.e"]).await, "x", b"kept").await;
    put(&*root, "d0", b"kept").await;
    open(&store, &["d"]).await.remove_all().await.unwrap();
    assert_eq!(
        listing(&*root).await,
        entries(&[
            ("d.e", EntryKind::Dir),
            ("d0", EntryKind::Blob),
            ("d2", EntryKind::Dir),
        ])
    );
    assert_eq!(
        open(&store, &["d2"]).await.read("x").await.unwrap(),
        &b"kept"[..]
    );
}

/// After `remove_all`, the same handle writes the directory back into
/// existence; `remove_all` on an empty directory is fine.
pub async fn remove_all_then_write_again(store: Store) {
    let d = open(&store, &["d"]).await;
    d.remove_all().await.unwrap();
    put(&*d, "x", b"1").await;
    d.remove_all().await.unwrap();
    put(&*d, "y", b"2").await;
    assert_eq!(listing(&*d).await, entries(&[("y", EntryKind::Blob)]));
    assert_eq!(
        listing(&*store.root()).await,
        entries(&[("d", EntryKind::Dir)])
    );
}

/// `remove_all` on the root empties the store, which stays usable.
pub async fn remove_all_root(store: Store) {
    let root = store.root();
    put(&*root, "a", b"1").await;
    put(&*open(&store, &["d"]).await, "b", b"2").await;
    root.remove_all().await.unwrap();
    assert_eq!(listing(&*root).await, vec![]);
    put(&*root, "c", b"3").await;
    assert_eq!(
        listing(&*store.root()).await,
        entries(&[("c", EntryKind::Blob)])
    );
}

/// How deep [`deep_nesting_lists_and_removes`] nests: keys stay under the
/// 1,024 bytes S3 allows (300 one-letter names and their separators).
pub const DEEP_NESTING: usize = 300;

/// A chain of nested directories, made through the API, lists, reads and
/// removes like a shallow one (walks must not recurse per level).
pub async fn deep_nesting_lists_and_removes(store: Store) {
    let root = store.root();
    let mut dir = root.clone();
    for _ in 0..DEEP_NESTING {
        dir = dir.open_dir("n").await.unwrap();
    }
    put(&*dir, "leaf", b"deep").await;
    assert_eq!(listing(&*root).await, entries(&[("n", EntryKind::Dir)]));
    assert_eq!(dir.read("leaf").await.unwrap(), &b"deep"[..]);
    let top = root.open_dir("n").await.unwrap();
    top.remove_all().await.unwrap();
    assert_eq!(listing(&*root).await, vec![]);
    assert_err!(dir.read("leaf").await, ReadBlobError::NotFound { .. });
}

/// A write of a name that is an empty directory races a write beneath that
/// directory: whatever was acknowledged is there afterwards. (A backend
/// that checks the directory is empty and then removes it whole can delete
/// the other blob after acknowledging it. Which of the two wins is not
/// asked: object stores check kinds only as well as racing clients allow.)
pub async fn write_over_empty_dir_never_deletes_a_racing_blob(store: Store) {
    let root = store.root();
    for round in 0..40 {
        let name = format!("race{round}");
        let below = open(&store, &[&name, "sub"]).await;
        // An empty directory: a blob written and removed again.
        put(&*below, "gone", b"x").await;
        below.remove("gone").await.unwrap();
        let (over, under) = tokio::join!(
            tokio::spawn({
                let root = root.clone();
                let name = name.clone();
                async move { root.write(&name, bytes::Bytes::from_static(b"blob")).await }
            }),
            tokio::spawn({
                let below = below.clone();
                async move {
                    below
                        .write("kept", bytes::Bytes::from_static(b"kept"))
                        .await
                }
            }),
        );
        let (over, under) = (over.unwrap(), under.unwrap());
        if under.is_ok() {
            assert_eq!(
                below.read("kept").await.unwrap(),
                &b"kept"[..],
                "round {round}: an acknowledged blob beneath {name} was deleted"
            );
        }
        if over.is_ok() {
            assert_eq!(
                root.read(&name).await.unwrap(),
                &b"blob"[..],
                "round {round}"
            );
        }
    }
}

/// A handle to a directory whose name (or an ancestor's) became a blob
/// after the handle was made: writing beneath it is wrong-kind naming the
/// blob, and the store still holds just the blob.
pub async fn write_beneath_a_dir_replaced_by_a_blob_is_wrong_kind(store: Store) {
    let root = store.root();
    let x = root.open_dir("x").await.unwrap();
    let deeper = x.open_dir("z").await.unwrap();
    put(&*root, "x", b"blob").await;
    assert_err!(
        x.write("y", bytes::Bytes::from_static(b"y")).await,
        WriteBlobError::WrongKind { name, found: EntryKind::Blob } if name.as_str() == "x"
    );
    assert_err!(
        deeper.write("y", bytes::Bytes::from_static(b"y")).await,
        WriteBlobError::WrongKind { name, found: EntryKind::Blob } if name.as_str() == "x"
    );
    assert_eq!(listing(&*root).await, entries(&[("x", EntryKind::Blob)]));
    assert_eq!(root.read("x").await.unwrap(), &b"blob"[..]);
    assert_err!(x.read("y").await, ReadBlobError::NotFound { .. });
    root.remove("x").await.unwrap();
    assert_eq!(listing(&*root).await, vec![]);
}
