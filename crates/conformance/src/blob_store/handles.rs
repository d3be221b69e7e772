//! Cases for two independent handles on one store, as two processes hold
//! them: a blob written, replaced, turned into a directory or removed
//! through one is seen so by the other.

use super::{Store, entries, listing, open, put};
use infinisheet_blob_store::{BlobDirExt, EntryKind, ReadBlobError, WriteBlobError};

/// Reads `blob` in the directory at `path` of `store`.
async fn read(store: &Store, path: &[&str], blob: &str) -> Result<bytes::Bytes, ReadBlobError> {
    open(store, path).await.read(blob).await
}

/// A blob written through one handle is read, listed and replaced
/// through the other; the replacement is what the first reads.
pub async fn second_handle_sees_blobs(a: Store, b: Store) {
    put(&*open(&a, &["d"]).await, "x", b"first").await;
    assert_eq!(read(&b, &["d"], "x").await.unwrap(), &b"first"[..]);
    assert_eq!(listing(&*b.root()).await, entries(&[("d", EntryKind::Dir)]));
    put(&*open(&b, &["d"]).await, "x", b"second").await;
    assert_eq!(
        read(&a, &["d"], "x").await.unwrap(),
        &b"second"[..],
        "the first handle reads a blob the second replaced as it was"
    );
    put(&*open(&a, &["d"]).await, "y", b"y").await;
    assert_eq!(
        listing(&*open(&b, &["d"]).await).await,
        entries(&[("x", EntryKind::Blob), ("y", EntryKind::Blob)])
    );
}

/// A blob removed through one handle is gone for the other; a name made
/// a directory through one is a directory for the other (reading it is
/// `WrongKind`, writing over it too); removed whole through the other, it
/// is free again for the first.
pub async fn second_handle_sees_kinds_change(a: Store, b: Store) {
    put(&*a.root(), "x", b"blob").await;
    assert_eq!(read(&b, &[], "x").await.unwrap(), &b"blob"[..]);
    a.root()
        .remove("x")
        .await
        .unwrap_or_else(|err| panic!("removing x: {err}"));
    assert_err!(read(&b, &[], "x").await, ReadBlobError::NotFound { .. });
    // x becomes a directory through the first handle.
    put(&*open(&a, &["x"]).await, "inner", b"inner").await;
    assert_err!(
        read(&b, &[], "x").await,
        ReadBlobError::WrongKind {
            found: EntryKind::Dir,
            ..
        }
    );
    assert_err!(
        b.root()
            .write("x", bytes::Bytes::from_static(b"over"))
            .await,
        WriteBlobError::WrongKind { .. }
    );
    assert_eq!(read(&b, &["x"], "inner").await.unwrap(), &b"inner"[..]);
    open(&b, &["x"])
        .await
        .remove_all()
        .await
        .unwrap_or_else(|err| panic!("removing x whole: {err}"));
    assert_eq!(listing(&*a.root()).await, vec![]);
    put(&*a.root(), "x", b"blob again").await;
    assert_eq!(read(&b, &[], "x").await.unwrap(), &b"blob again"[..]);
}
