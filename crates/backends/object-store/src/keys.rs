//! Blob names as object keys: a name stored as it is where it can be,
//! percent-encoded where it holds a reserved character, split into
//! chunks where it is longer than a key part may be; and listed keys read
//! back as names.

use crate::error::BACKEND;
use infinisheet_blob_store::{BlobName, EntryKind, ListEntry, StorageError};
use object_store::path::{Path, PathPart};

/// Characters `object_store` reserves in a key part (it percent-encodes
/// them); a name holding none of them is stored as it is.
pub(crate) const RESERVED: &[char] = &[
    '%', '\\', '{', '^', '}', '`', ']', '"', '>', '[', '~', '<', '#', '|', '*', '?',
];

/// `with` the key part of `name`: the name itself when it holds no
/// reserved character (so keys stay readable and short, which a local file
/// system's 255-byte file names need), else the name percent-encoded whole.
pub(crate) fn key_part<T>(name: &BlobName, with: impl FnOnce(PathPart<'_>) -> T) -> T {
    let raw = name.as_str();
    if raw.contains(RESERVED) {
        with(PathPart::from(raw))
    } else if let Some(stem) = raw.strip_suffix(':') {
        // A local file system's URLs read a part ending in `:` as a
        // directory (`ab:` became `ab:/`): its last `:` is encoded, which
        // `child_name` decodes (a name holding `%` itself has that encoded).
        let encoded = format!("{stem}%3A");
        match PathPart::parse(&encoded) {
            Ok(part) => with(part),
            Err(_) => with(PathPart::from(raw)),
        }
    } else {
        // Valid names hold no `/`, control character, `.` or `..`: the parts
        // `parse` refuses. Should that ever differ, encode.
        with(PathPart::parse(raw).unwrap_or_else(|_| PathPart::from(raw)))
    }
}

/// The longest key part: a local file system's file names take 255 bytes.
pub(crate) const PART_MAX: usize = 255;
/// How much of a long name's key each part but the last holds.
pub(crate) const CHUNK_BYTES: usize = 240;
/// Starts every part of a long name's key but the last. No name's own part
/// starts with it: a `~` in a name is always encoded.
pub(crate) const CHUNK: &str = "~L";

/// `prefix` with the key part `part` below it; a part longer than a file
/// name may be is split into parts of [`CHUNK_BYTES`], each but the last
/// marked [`CHUNK`] (a listing puts them together again). The parts are
/// pieces of the encoded name, joined before it is decoded, so a cut may
/// fall anywhere that is a character boundary.
pub(crate) fn join_part(prefix: &Path, part: &PathPart<'_>) -> Path {
    let mut rest = part.as_ref();
    if rest.len() <= PART_MAX {
        return prefix.clone().join(part.clone());
    }
    let mut path = prefix.clone();
    while rest.len() > PART_MAX {
        let mut cut = CHUNK_BYTES;
        // On a character boundary, and never leaving `.` or `..` last.
        while cut > 1 && (!rest.is_char_boundary(cut) || matches!(&rest[cut..], "." | "..")) {
            cut -= 1;
        }
        let chunk = format!("{CHUNK}{}", &rest[..cut]);
        path =
            path.join(PathPart::parse(&chunk).unwrap_or_else(|_| PathPart::from(chunk.as_str())));
        rest = &rest[cut..];
    }
    path.join(PathPart::parse(rest).unwrap_or_else(|_| PathPart::from(rest)))
}

/// Adds the objects and common prefixes of one delimited listing to
/// `children` (full key, name, kind); a prefix that is a long name's chunk
/// goes to `levels`, to be listed in turn.
pub(crate) fn add_children(
    found: object_store::ListResult,
    before: &str,
    children: &mut Vec<(String, ListEntry)>,
    levels: &mut Vec<(Path, String)>,
) -> Result<(), StorageError> {
    for meta in found.objects {
        let name = child_name(&meta.location, before)?;
        children.push((
            meta.location.to_string(),
            ListEntry::new(name, EntryKind::Blob).with_size(meta.size),
        ));
    }
    for inner in found.common_prefixes {
        match last_part(&inner).strip_prefix(CHUNK) {
            Some(chunk) => levels.push((inner.clone(), format!("{before}{chunk}"))),
            None => {
                let name = child_name(&inner, before)?;
                children.push((format!("{inner}/"), ListEntry::new(name, EntryKind::Dir)));
            }
        }
    }
    Ok(())
}

/// The last part of `path` as stored.
pub(crate) fn last_part(path: &Path) -> String {
    path.parts()
        .next_back()
        .map(|part| part.as_ref().to_owned())
        .unwrap_or_default()
}

/// The decoded name of a listed child: `before` (the earlier parts of a
/// long name's key, without their markers) and the last part of `path`.
/// Only encoded names hold a `%`.
pub(crate) fn child_name(path: &Path, before: &str) -> Result<BlobName, StorageError> {
    let encoded = format!("{before}{}", last_part(path));
    let decoded = percent_encoding::percent_decode_str(&encoded)
        .decode_utf8()
        .map_err(|err| {
            StorageError::new(BACKEND, format!("key {path} is not UTF-8 when decoded"))
                .with_source(err)
        })?;
    BlobName::new(decoded.as_ref()).map_err(|err| {
        StorageError::new(
            BACKEND,
            format!("key {path} does not hold a valid blob name"),
        )
        .with_source(err)
    })
}
