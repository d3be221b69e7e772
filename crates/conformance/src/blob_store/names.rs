//! Cases for blob names: what is rejected, with which error, and what is
//! accepted.

use super::{Store, entries, listing, put};
use infinisheet_blob_store::{
    BlobDirExt, BlobName, DirError, EntryKind, ReadBlobError, RemoveBlobError, WriteBlobError,
};

/// Every operation taking a name rejects `bad` with the invalid-name error,
/// and nothing is written.
async fn rejected_everywhere(store: &Store, bad: &str) {
    assert!(BlobName::new(bad).is_err(), "BlobName accepted {bad:?}");
    let root = store.root();
    assert_err!(root.read(bad).await, ReadBlobError::InvalidName(_));
    assert_err!(
        root.write(bad, &b"x"[..]).await,
        WriteBlobError::InvalidName(_)
    );
    assert_err!(root.remove(bad).await, RemoveBlobError::InvalidName(_));
    assert_err!(root.open_dir(bad).await, DirError::InvalidName(_));
    assert_eq!(
        listing(&*root).await,
        vec![],
        "a rejected name left something behind"
    );
}

/// The empty name is rejected.
pub async fn name_empty_rejected(store: Store) {
    rejected_everywhere(&store, "").await;
}

/// A name of 101 characters is rejected; one of 100 (also of multi-byte
/// characters) is accepted and round-trips.
pub async fn name_length_limit(store: Store) {
    rejected_everywhere(&store, &"a".repeat(101)).await;
    rejected_everywhere(&store, &"é".repeat(101)).await;
    let root = store.root();
    for ok in ["a".repeat(100), "é".repeat(100)] {
        put(&*root, &ok, ok.as_bytes()).await;
        assert_eq!(root.read(&ok).await.unwrap(), ok.as_bytes());
    }
}

/// `.` and `..` are rejected; names merely made of or holding dots are not.
pub async fn name_dots_rejected(store: Store) {
    rejected_everywhere(&store, ".").await;
    rejected_everywhere(&store, "..").await;
    let root = store.root();
    for ok in ["...", ".hidden", "a..b", "trailing."] {
        put(&*root, ok, ok.as_bytes()).await;
    }
    assert_eq!(
        listing(&*root).await,
        entries(&[
            ("...", EntryKind::Blob),
            (".hidden", EntryKind::Blob),
            ("a..b", EntryKind::Blob),
            ("trailing.", EntryKind::Blob),
        ])
    );
}

/// Names holding `/` or `\` are rejected, wherever the separator sits.
pub async fn name_separators_rejected(store: Store) {
    for bad in [
        "a/b", "a\\b", "/", "\\", "/etc", "..\\x", "a/", "/a", "../x",
    ] {
        rejected_everywhere(&store, bad).await;
    }
}

/// Names holding NUL or other control characters are rejected.
pub async fn name_control_characters_rejected(store: Store) {
    for bad in [
        "a\0b",
        "\0",
        "tab\there",
        "new\nline",
        "\r",
        "\u{7f}",
        "\u{85}",
        "\u{1b}[0m",
    ] {
        rejected_everywhere(&store, bad).await;
    }
}

/// Unicode names are accepted, stored and listed exactly, and distinct
/// names stay distinct.
pub async fn name_unicode_accepted(store: Store) {
    let names = [
        "Übersicht",
        "表計算",
        "📊 budget 2026",
        "ñ",
        "n\u{303}",
        "space name",
        "İ",
    ];
    let root = store.root();
    for name in names {
        put(&*root, name, name.as_bytes()).await;
    }
    for name in names {
        assert_eq!(
            root.read(name).await.unwrap(),
            name.as_bytes(),
            "blob {name}"
        );
    }
    let expected: Vec<_> = names.iter().map(|n| (*n, EntryKind::Blob)).collect();
    assert_eq!(listing(&*root).await, entries(&expected));
}

/// The longest valid names — 100 characters of 4 bytes, 400 bytes, past
/// the 255 a Linux file name takes — and ones full of characters a store
/// encodes, work as blob and directory names: written, listed by their
/// real names, read, removed.
pub async fn longest_names_accepted(store: Store) {
    let long_blob = "😀".repeat(100);
    let long_dir = format!("{}d", "𝄞".repeat(99));
    let encoded = "%#*?".repeat(25);
    let root = store.root();
    put(&*root, &long_blob, b"long").await;
    put(&*root, &encoded, b"encoded").await;
    let sub = root.open_dir(&long_dir).await.unwrap();
    put(&*sub, &long_blob, b"beneath").await;
    let mut expected = vec![
        (long_blob.clone(), EntryKind::Blob),
        (long_dir.clone(), EntryKind::Dir),
        (encoded.clone(), EntryKind::Blob),
    ];
    expected.sort();
    assert_eq!(listing(&*root).await, expected);
    assert_eq!(
        listing(&*sub).await,
        vec![(long_blob.clone(), EntryKind::Blob)]
    );
    assert_eq!(root.read(&long_blob).await.unwrap(), &b"long"[..]);
    assert_eq!(root.read(&encoded).await.unwrap(), &b"encoded"[..]);
    assert_eq!(sub.read(&long_blob).await.unwrap(), &b"beneath"[..]);
    assert_err!(
        root.read(&long_dir).await,
        ReadBlobError::WrongKind {
            found: EntryKind::Dir,
            ..
        }
    );
    sub.remove(&long_blob).await.unwrap();
    root.remove(&long_blob).await.unwrap();
    root.remove(&encoded).await.unwrap();
    assert_eq!(listing(&*root).await, vec![]);
}
