//! `BlobName`: a validated name of a blob or directory inside one directory.

use std::borrow::Borrow;
use std::fmt;
use std::str::FromStr;

/// The longest valid name, in characters (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 100;

/// A valid name of a blob or directory: 1 to [`MAX_NAME_CHARS`] characters;
/// no `/`, `\`, NUL or other control characters; not `.` or `..`.
///
/// Any other Unicode is allowed. Because every [`BlobDir`](crate::BlobDir)
/// method takes a `BlobName`, a backend never sees a name that could escape
/// its directory.
///
/// ```
/// use infinisheet_blob_store::BlobName;
///
/// assert!(BlobName::new("snapshots").is_ok());
/// assert!(BlobName::new("Übersicht 2026 📊").is_ok());
/// assert!(BlobName::new("..").is_err());
/// assert!(BlobName::new("a/b").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BlobName(String);

/// Why a string is not a valid [`BlobName`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid blob name {name:?}: {reason}")]
pub struct InvalidBlobName {
    /// The rejected name.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl BlobName {
    /// Validates `name`.
    ///
    /// # Errors
    ///
    /// [`InvalidBlobName`] naming the rule `name` breaks.
    pub fn new(name: impl Into<String>) -> Result<Self, InvalidBlobName> {
        let name = name.into();
        match Self::check(&name) {
            None => Ok(BlobName(name)),
            Some(reason) => Err(InvalidBlobName { name, reason }),
        }
    }

    fn check(name: &str) -> Option<&'static str> {
        if name.is_empty() {
            return Some("a name cannot be empty");
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Some("a name is at most 100 characters");
        }
        if name == "." || name == ".." {
            return Some("`.` and `..` are not names");
        }
        if name.contains(['/', '\\']) {
            return Some("a name cannot contain `/` or `\\`");
        }
        if name.chars().any(char::is_control) {
            return Some("a name cannot contain NUL or other control characters");
        }
        None
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as an owned string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Debug for BlobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for BlobName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BlobName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for BlobName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl FromStr for BlobName {
    type Err = InvalidBlobName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BlobName::new(s)
    }
}

impl TryFrom<&str> for BlobName {
    type Error = InvalidBlobName;

    fn try_from(value: &str) -> Result<Self, Self::Error> {
        BlobName::new(value)
    }
}

impl TryFrom<String> for BlobName {
    type Error = InvalidBlobName;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        BlobName::new(value)
    }
}

impl From<BlobName> for String {
    fn from(value: BlobName) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_is_counted_in_characters() {
        assert!(BlobName::new("é".repeat(100)).is_ok());
        let err = BlobName::new("é".repeat(101)).unwrap_err();
        assert_eq!(err.reason, "a name is at most 100 characters");
    }

    #[test]
    fn dots_inside_names_are_fine() {
        for ok in ["...", ".hidden", "a..b", "tile.0.0"] {
            assert!(BlobName::new(ok).is_ok(), "{ok}");
        }
    }
}
