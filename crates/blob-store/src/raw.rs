//! For implementers of [`BlobStore`](crate::BlobStore), as
//! `infinisheet_event_log::raw` is for logs (which also holds `blocking` and
//! `pooled`, for backends whose calls are synchronous).
//!
//! Helpers for backends that keep blobs under flat keys: a blob's key is its
//! path joined with `/` (which no [`BlobName`] contains), so in byte order
//! every directory's contents form one contiguous run of keys.
//!
//! The memory, SQLite and filesystem backends use these; an object store's
//! keys have the same shape. Pure functions, no I/O.

use crate::{BlobName, Continuation, EntryKind, ListEntry, ListError, ListPage};

/// The key prefix of the names in directory `path`: `""` for the root, else
/// `"a/b/"`.
pub fn dir_prefix(path: &[BlobName]) -> String {
    let mut prefix = String::new();
    for name in path {
        prefix.push_str(name.as_str());
        prefix.push('/');
    }
    prefix
}

/// The keys of the directories on the way to `path` and of `path` itself,
/// each paired with its last name: `"a"`, `"a/b"`, ... A blob at any of
/// these keys blocks writing beneath `path`.
pub fn ancestor_keys(path: &[BlobName]) -> impl Iterator<Item = (String, &BlobName)> {
    path.iter().scan(String::new(), |key, name| {
        if !key.is_empty() {
            key.push('/');
        }
        key.push_str(name.as_str());
        Some((key.clone(), name))
    })
}

/// The half-open key range `[lower, upper)` holding everything beneath the
/// directory whose key is `key`: `"key/"` up to `"key0"` (`0` is the byte
/// after `/`).
pub fn subtree_range(key: &str) -> (String, String) {
    (format!("{key}/"), format!("{key}0"))
}

/// What a key beneath a listed directory says about that directory's child.
#[derive(Debug, PartialEq, Eq)]
pub struct Child<'a> {
    /// The child's name.
    pub name: &'a str,
    /// Blob (the key is the child itself) or directory (the key lies
    /// beneath it).
    pub kind: EntryKind,
    /// The first key past every key of this child: resume a listing there.
    pub next_key: String,
}

/// The child of the directory with key prefix `prefix` that `key` belongs
/// to, or `None` if `key` is not beneath that directory.
pub fn child_of<'a>(prefix: &str, key: &'a str) -> Option<Child<'a>> {
    let rest = key.strip_prefix(prefix)?;
    Some(match rest.split_once('/') {
        // The smallest key after `key` is `key` followed by NUL.
        None => Child {
            name: rest,
            kind: EntryKind::Blob,
            next_key: format!("{key}\0"),
        },
        Some((dir, _)) => Child {
            name: dir,
            kind: EntryKind::Dir,
            next_key: format!("{prefix}{dir}0"),
        },
    })
}

/// A continuation token naming the `scope` that issued it (a store
/// instance), the listed directory's `prefix`, and the key the next page
/// starts at. NUL separates the parts; no name or prefix contains it.
pub fn encode_token(scope: &str, prefix: &str, next_key: &str) -> Continuation {
    Continuation::from(format!("{scope}\0{prefix}\0{next_key}"))
}

/// The key the next page starts at, if `token` was issued by `scope` for the
/// directory `prefix`; `None` for any other token.
pub fn decode_token(token: &Continuation, scope: &str, prefix: &str) -> Option<String> {
    let mut parts = token.as_str().splitn(3, '\0');
    let (token_scope, token_prefix, next_key) = (parts.next()?, parts.next()?, parts.next()?);
    (token_scope == scope && token_prefix == prefix && next_key.starts_with(prefix))
        .then(|| next_key.to_owned())
}

/// The key a listing page of the directory `prefix` starts at: the prefix
/// itself for the first page, else the key `continuation` names.
///
/// # Errors
///
/// [`ListError::NoContinuation`] if `continuation` was not issued by
/// `scope` for this directory.
pub fn start_key(
    continuation: Option<&Continuation>,
    scope: &str,
    prefix: &str,
) -> Result<String, ListError> {
    match continuation {
        None => Ok(prefix.to_owned()),
        Some(token) => decode_token(token, scope, prefix).ok_or(ListError::NoContinuation),
    }
}

/// One page of the listing of the directory with key prefix `prefix`,
/// starting at key `lower` (the prefix itself for the first page).
///
/// `next_key(lower)` returns the first stored key at or after `lower` (in
/// byte order), or `None`; the page visits each child once by skipping past
/// its run of keys. A page holds at most `page_size` names (the size the
/// store declares in its [`BlobCapabilities`](crate::BlobCapabilities),
/// which the conformance suite holds it to); the token of the next page is
/// scoped to `scope` and `prefix`. A stored key whose child
/// name is not a valid [`BlobName`] is reported through `invalid`.
pub fn list_page<E>(
    scope: &str,
    prefix: &str,
    lower: String,
    page_size: usize,
    mut next_key: impl FnMut(&str) -> Result<Option<String>, E>,
    invalid: impl Fn(&str, crate::InvalidBlobName) -> E,
) -> Result<ListPage, E> {
    let mut lower = lower;
    let mut entries = Vec::new();
    while let Some(key) = next_key(&lower)? {
        let Some(child) = child_of(prefix, &key) else {
            break;
        };
        if entries.len() == page_size {
            return Ok(ListPage {
                entries,
                continuation: Some(encode_token(scope, prefix, &key)),
            });
        }
        let name = BlobName::new(child.name).map_err(|err| invalid(&key, err))?;
        entries.push(ListEntry::new(name, child.kind));
        lower = child.next_key;
    }
    Ok(ListPage {
        entries,
        continuation: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(parts: &[&str]) -> Vec<BlobName> {
        parts.iter().map(|p| BlobName::new(*p).unwrap()).collect()
    }

    #[test]
    fn prefixes_and_ancestors() {
        assert_eq!(dir_prefix(&[]), "");
        assert_eq!(dir_prefix(&names(&["a", "b"])), "a/b/");
        let path = names(&["a", "b"]);
        let keys: Vec<_> = ancestor_keys(&path).map(|(k, n)| (k, n.as_str())).collect();
        assert_eq!(keys, vec![("a".to_owned(), "a"), ("a/b".to_owned(), "b")]);
    }

    #[test]
    fn children_and_their_runs() {
        let blob = child_of("d/", "d/x").unwrap();
        assert_eq!((blob.name, blob.kind), ("x", EntryKind::Blob));
        let dir = child_of("d/", "d/x/y/z").unwrap();
        assert_eq!(
            (dir.name, dir.kind, dir.next_key.as_str()),
            ("x", EntryKind::Dir, "d/x0")
        );
        // Every key beneath d/x sorts before the resume key, and d/x.y
        // (another child) does not lie in d/x's run.
        assert!("d/x/\u{10ffff}" < "d/x0" && "d/x.y" < "d/x/");
        assert_eq!(child_of("d/", "e/x"), None);
    }

    #[test]
    fn tokens_are_scoped() {
        let token = encode_token("s1", "d/", "d/x");
        assert_eq!(decode_token(&token, "s1", "d/").as_deref(), Some("d/x"));
        assert_eq!(decode_token(&token, "s2", "d/"), None);
        assert_eq!(decode_token(&token, "s1", "e/"), None);
        assert_eq!(
            decode_token(&Continuation::from("junk".to_owned()), "s1", "d/"),
            None
        );
    }
}
