//! The one error type that every Infinisheet storage operation shares for
//! failures of the underlying storage: I/O, a busy database, a throttled or
//! unreachable server, a corrupt file.
//!
//! [`StorageError`] names the backend that failed, says whether retrying the
//! same call can help, and keeps the native error as its
//! [`source`](std::error::Error::source) so nothing is lost on the way up.
//!
//! # Decisions
//!
//! * `StorageError` lives in its own crate so that a backend implementing both
//!   traits returns one error type.

use std::error::Error;
use std::fmt;

/// `err` and its sources on one line, `: ` between them (a source whose
/// text the line holds already is not repeated): all of an error that
/// fits a status, a log line or a message sent to another machine.
///
/// ```
/// use infinisheet_storage_error::{StorageError, one_line};
///
/// let err = StorageError::new("filesystem", "cannot write")
///     .with_source(std::io::Error::other("disk full"));
/// assert_eq!(one_line(&err), "filesystem backend: cannot write: disk full");
/// ```
pub fn one_line(err: &(dyn Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let more = cause.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = cause.source();
    }
    text
}

/// `url` with any secret hidden, for messages: the password of its user
/// part (`scheme://user:****@host`; everything between `://` and the last
/// `@` is taken as the user part, so a password holding `/` or `@`
/// unencoded stays hidden too) and the value of any `password=` parameter
/// (`?password=…`, or libpq's `key=value` form). Text that is no URL comes
/// back with only its `password=` values hidden.
///
/// ```
/// use infinisheet_storage_error::redact_url;
///
/// assert_eq!(redact_url("postgres://app:s3cr/t@db/x"), "postgres://app:****@db/x");
/// assert_eq!(redact_url("postgres://app@db/x?password=s3cret&sslmode=disable"),
///            "postgres://app@db/x?password=****&sslmode=disable");
/// assert_eq!(redact_url("host=db password='a b' user=app"), "host=db password=**** user=app");
/// assert_eq!(redact_url("s3://bucket/prefix"), "s3://bucket/prefix");
/// // Mistyped, with one slash or none: hidden all the same.
/// assert_eq!(redact_url("postgres:/app:s3cret@db/x"), "postgres:/app:****@db/x");
/// assert_eq!(redact_url("postgres:app:s3cret@db/x"), "postgres:app:****@db/x");
/// assert_eq!(redact_url("app:s3cret@db/x"), "app:****@db/x");
/// ```
pub fn redact_url(url: &str) -> String {
    let mut text = url.to_owned();
    // The authority follows `scheme:` and any slashes: `scheme://`, and
    // the mistyped `scheme:/` and `scheme:` too.
    let scheme = text.find(':').filter(|&colon| {
        colon > 0
            && text[..colon]
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    if let Some(scheme_end) = scheme {
        let authority = scheme_end + 1 + text[scheme_end + 1..].len()
            - text[scheme_end + 1..].trim_start_matches('/').len();
        let slashes = authority - scheme_end - 1;
        if let Some(at) = text[authority..].rfind('@') {
            let user_part = &text[authority..authority + at];
            if let Some(colon) = user_part.find(':') {
                let user = user_part[..colon].to_owned();
                text.replace_range(authority..authority + at, &format!("{user}:****"));
            } else if slashes < 2 {
                // `user:password@host` with no scheme reads as scheme
                // `user`: what precedes `@` may be the password.
                text.replace_range(authority..authority + at, "****");
            }
        }
    }
    hide_password_values(&text)
}

/// `text` with the value after each `password=` (up to `&`, `;`, a space,
/// or the end; a quoted value whole) replaced by `****`.
fn hide_password_values(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(found) = rest.to_ascii_lowercase().find("password") {
        let after_key = found + "password".len();
        let tail = &rest[after_key..];
        let Some(value) = tail.trim_start().strip_prefix('=') else {
            out.push_str(&rest[..after_key]);
            rest = tail;
            continue;
        };
        let value = value.trim_start();
        let value_start = rest.len() - value.len();
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            // libpq: a quoted value runs to the next unescaped quote.
            let mut end = None;
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '\'' if !escaped => {
                        end = Some(i + 2);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            end.unwrap_or(value.len())
        } else {
            value
                .find(|c: char| c == '&' || c == ';' || c.is_whitespace())
                .unwrap_or(value.len())
        };
        out.push_str(&rest[..after_key]);
        out.push_str("=****");
        rest = &rest[value_start + value_len..];
    }
    out.push_str(rest);
    out
}

/// Boxed native error kept as the source of a [`StorageError`].
pub type BoxError = Box<dyn Error + Send + Sync + 'static>;

/// A failure of the storage beneath an event log or blob store.
///
/// Build one with [`StorageError::new`] (a permanent failure) or
/// [`StorageError::retryable`] (a transient one: a busy database, a throttled
/// or timed-out request), then attach the native error with
/// [`with_source`](StorageError::with_source).
///
/// ```
/// use infinisheet_storage_error::StorageError;
///
/// let io = std::io::Error::other("disk on fire");
/// let err = StorageError::new("filesystem", "cannot write segment 00000042").with_source(io);
/// assert!(!err.is_retryable());
/// assert_eq!(err.backend(), "filesystem");
/// assert_eq!(err.to_string(), "filesystem backend: cannot write segment 00000042");
/// ```
pub struct StorageError {
    backend: &'static str,
    message: String,
    retryable: bool,
    corrupt: bool,
    source: Option<BoxError>,
}

impl StorageError {
    /// A failure that retrying the same call will not cure (corruption,
    /// permissions, a missing database, an unsupported store).
    pub fn new(backend: &'static str, message: impl Into<String>) -> Self {
        StorageError {
            backend,
            message: message.into(),
            retryable: false,
            corrupt: false,
            source: None,
        }
    }

    /// Stored data that fails its checks: a checksum that does not match, a
    /// record that cannot be decoded, an entry the bounds promise but the
    /// store lacks. Never retryable; `message` names what is damaged (the
    /// file and offset, the log and id, the blob).
    pub fn corrupt(backend: &'static str, message: impl Into<String>) -> Self {
        StorageError {
            corrupt: true,
            ..StorageError::new(backend, message)
        }
    }

    /// A transient failure: the same call may succeed if retried later
    /// (busy database, throttling, a timed-out or dropped request).
    pub fn retryable(backend: &'static str, message: impl Into<String>) -> Self {
        StorageError {
            retryable: true,
            ..StorageError::new(backend, message)
        }
    }

    /// Keeps `source` as the underlying cause.
    #[must_use]
    pub fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// The name of the backend that failed (`"memory"`, `"sqlite"`, ...).
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// What failed, in the backend's words, without the source.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Whether retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        self.retryable
    }

    /// Whether the stored data is damaged (see [`StorageError::corrupt`]).
    pub fn is_corrupt(&self) -> bool {
        self.corrupt
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} backend: {}", self.backend, self.message)?;
        if self.retryable {
            f.write_str(" (retryable)")?;
        }
        if self.corrupt {
            f.write_str(" (corrupt)")?;
        }
        Ok(())
    }
}

impl fmt::Debug for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StorageError")
            .field("backend", &self.backend)
            .field("message", &self.message)
            .field("retryable", &self.retryable)
            .field("corrupt", &self.corrupt)
            .field("source", &self.source)
            .finish()
    }
}

impl Error for StorageError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn Error + 'static))
    }
}

/// Gives error enums with a `Storage(StorageError)` variant the two
/// answers every storage-facing error gives: `is_retryable()` (the storage
/// failed in a way that may pass) and `storage_error()` (the storage's own
/// error, if it failed). Used by the traits' per-operation errors.
#[macro_export]
macro_rules! storage_answers {
    ($($ty:ident),* $(,)?) => {$(
        impl $ty {
            /// Whether trying again may help: the storage failed in a way
            /// that may pass ([`StorageError::is_retryable`]).
            pub fn is_retryable(&self) -> bool {
                matches!(self, $ty::Storage(err) if err.is_retryable())
            }

            /// The storage's own error, if the storage failed.
            pub fn storage_error(&self) -> Option<&$crate::StorageError> {
                match self {
                    $ty::Storage(err) => Some(err),
                    _ => None,
                }
            }
        }
    )*};
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_is_reported_and_source_kept() {
        let err = StorageError::retryable("sqlite", "database is locked")
            .with_source(std::io::Error::other("busy"));
        assert!(err.is_retryable());
        assert_eq!(
            err.to_string(),
            "sqlite backend: database is locked (retryable)"
        );
        assert_eq!(err.source().map(|s| s.to_string()).as_deref(), Some("busy"));
        assert!(!err.is_corrupt());
    }

    #[test]
    fn corrupt_is_reported_and_not_retryable() {
        let err = StorageError::corrupt("sqlite", "log 3 entry 7 fails its checksum");
        assert!(err.is_corrupt() && !err.is_retryable());
        assert_eq!(
            err.to_string(),
            "sqlite backend: log 3 entry 7 fails its checksum (corrupt)"
        );
    }
}
