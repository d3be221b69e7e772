//! The one place `object_store` errors are inspected: which ones a retry can
//! help, and how each becomes a [`StorageError`].

use infinisheet_event_log::StorageError;
use object_store::path::Path;

/// The backend name every [`StorageError`] of this crate carries.
pub(crate) const BACKEND: &str = "object-store";

/// A storage error for a failed call `what` on `key`.
///
/// Retryable: answers a retry can change — server errors (5xx), `408`,
/// `409`, `412` and `429` — and failures of the transport itself (a
/// connection refused, reset or timed out, a request interrupted: an
/// `object_store` `HttpError` of those kinds, or such an I/O error) that
/// outlived `object_store`'s own retries. Not retryable: every other `4xx`
/// (a bad request, a denied permission, a missing bucket), an invalid path,
/// an unsupported operation, a local file system's permanent refusals, and
/// any other error `object_store` reports as generic (missing credentials,
/// a configuration it rejects, an answer it cannot decode): a retry of the
/// same call meets the same error.
pub(crate) fn storage(what: &str, key: &Path, err: object_store::Error) -> StorageError {
    // A local file system's permanent refusals (a name too long, a path
    // through a file, no permission) come as generic errors too.
    let permanent = os_error(&err).is_some_and(|code| {
        matches!(
            code,
            ENOTDIR | EISDIR | ENAMETOOLONG | EACCES | EPERM | EROFS | EINVAL
        )
    });
    let retry_helps = match http_status(&err) {
        Some(status) => status >= 500 || matches!(status, 408 | 409 | 412 | 429),
        None => transport_failed(&err),
    };
    let missing_bucket = is_missing_bucket(&err);
    let no_credentials = is_missing_credentials(&err);
    let retryable = matches!(err, object_store::Error::Generic { .. })
        && !permanent
        && retry_helps
        && !missing_bucket
        && !no_credentials;
    let message = if no_credentials {
        format!("{what} {key}: {NO_CREDENTIALS}")
    } else if missing_bucket {
        format!("{what} {key}: the bucket (or container) does not exist")
    } else {
        format!("{what} {key}")
    };
    let error = if retryable {
        StorageError::retryable(BACKEND, message)
    } else {
        StorageError::new(BACKEND, message)
    };
    match ServerError::summarize(err) {
        Ok(server) => error.with_source(server),
        Err(err) => error.with_source(err),
    }
}

/// What to do when no AWS credentials were found: the message of an S3
/// store that fell through to the instance metadata service and failed.
pub(crate) const NO_CREDENTIALS: &str = "no AWS credentials: set AWS_ACCESS_KEY_ID and \
     AWS_SECRET_ACCESS_KEY (or AWS_WEB_IDENTITY_TOKEN_FILE, or AWS_SKIP_SIGNATURE=true for a \
     public bucket); the last place looked, the instance metadata service, failed \
     (AWS_EC2_METADATA_DISABLED=true skips it)";

/// Whether `err` comes from asking the EC2 instance metadata service for
/// credentials (`object_store`'s last resort when none are configured;
/// off EC2 it times out or is refused).
fn is_missing_credentials(err: &object_store::Error) -> bool {
    chain(err)
        .any(|text| text.contains("/latest/api/token") || text.contains("/latest/meta-data/iam/"))
}

/// What a server answered, in short: the HTTP status and the error code and
/// message of the XML body S3 and Azure send (`404 Not Found: NoSuchBucket:
/// The specified bucket does not exist`), rather than the whole body; or,
/// for a credentials lookup that fell through to the instance metadata
/// service, what failed there. The full error of `object_store` stays in
/// [`original`](ServerError::original) (and `{:?}`), so nothing is lost.
#[derive(Debug)]
pub struct ServerError {
    summary: String,
    original: object_store::Error,
}

impl ServerError {
    /// The error `object_store` reported, URL and body included.
    pub fn original(&self) -> &object_store::Error {
        &self.original
    }

    /// The summary of `err` if its text holds a server's XML error body or
    /// a failed metadata-service call; else `err` back.
    fn summarize(err: object_store::Error) -> Result<Self, object_store::Error> {
        let texts: Vec<String> = chain(&err).collect();
        let status = texts.iter().find_map(|text| status_text(text));
        let tag = |name: &str| {
            texts.iter().find_map(|text| {
                let open = format!("<{name}>");
                let start = text.find(&open)? + open.len();
                let len = text[start..].find(&format!("</{name}>"))?;
                Some(text[start..start + len].trim().to_owned())
            })
        };
        let summary = if is_missing_credentials(&err) {
            format!(
                "the metadata service answered {}",
                status.unwrap_or_else(|| "nothing (it is not on this network)".to_owned())
            )
        } else if let Some(code) = tag("Code") {
            let mut summary = format!("the server answered {}", status.unwrap_or_default());
            summary = summary.trim_end().to_owned();
            summary.push_str(": ");
            summary.push_str(&code);
            if let Some(message) = tag("Message").filter(|m| !m.is_empty()) {
                summary.push_str(": ");
                summary.push_str(&message);
            }
            summary
        } else {
            return Err(err);
        };
        Ok(ServerError {
            summary,
            original: err,
        })
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary)
    }
}

/// No source: the original's chain is what this error shortens.
impl std::error::Error for ServerError {}

/// The status line in an `object_store` error text, such as `404 Not Found`.
fn status_text(text: &str) -> Option<String> {
    const MARK: &str = "Server returned non-2xx status code: ";
    let at = text.find(MARK)? + MARK.len();
    let rest = &text[at..];
    let end = rest.find(':').unwrap_or(rest.len());
    Some(rest[..end].trim().to_owned())
}

/// Whether `err`'s chain holds a failure of the transport a retry may not
/// meet again: an HTTP client error of kind connect, request, timeout or
/// interrupted, or an I/O error of those kinds.
fn transport_failed(err: &object_store::Error) -> bool {
    use std::io::ErrorKind;
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = next {
        #[cfg(feature = "tls")]
        if let Some(http) = current.downcast_ref::<object_store::client::HttpError>() {
            use object_store::client::HttpErrorKind;
            return matches!(
                http.kind(),
                HttpErrorKind::Connect
                    | HttpErrorKind::Request
                    | HttpErrorKind::Timeout
                    | HttpErrorKind::Interrupted
            );
        }
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            return matches!(
                io.kind(),
                ErrorKind::TimedOut
                    | ErrorKind::ConnectionRefused
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::Interrupted
                    | ErrorKind::UnexpectedEof
            );
        }
        next = current.source();
    }
    false
}

/// The texts of `err` and its chain of sources.
fn chain(err: &object_store::Error) -> impl Iterator<Item = String> + '_ {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    std::iter::from_fn(move || {
        let current = next?;
        next = current.source();
        Some(current.to_string())
    })
}

/// The HTTP status a server answered with, if `err` carries one.
/// `object_store` keeps the status in an error type it does not export;
/// its text ("Server returned non-2xx status code: 400 Bad Request: …") is
/// what there is to read.
fn http_status(err: &object_store::Error) -> Option<u16> {
    const MARK: &str = "Server returned non-2xx status code: ";
    chain(err).find_map(|text| {
        let at = text.find(MARK)? + MARK.len();
        text.get(at..at + 3)?.parse().ok()
    })
}

/// Whether the server said the bucket or container itself is missing (S3's
/// `NoSuchBucket`, Azure's `ContainerNotFound`, GCS's "bucket does not
/// exist"): not an absent object, and no retry brings it.
pub(crate) fn is_missing_bucket(err: &object_store::Error) -> bool {
    chain(err).any(|text| {
        text.contains("NoSuchBucket")
            || text.contains("ContainerNotFound")
            || text.contains("The specified bucket does not exist")
    })
}

/// A storage error for an object whose content this crate cannot decode.
pub(crate) fn corrupt(key: &Path, reason: impl std::fmt::Display) -> StorageError {
    StorageError::corrupt(BACKEND, format!("corrupt object {key}: {reason}"))
}

const EPERM: i32 = 1;
const EACCES: i32 = 13;
const ENOTDIR: i32 = 20;
const EISDIR: i32 = 21;
const EINVAL: i32 = 22;
const EROFS: i32 = 30;
const ENAMETOOLONG: i32 = 36;

/// The OS error code somewhere in `err`'s chain of sources, if any (what
/// a store on a local file system reports).
fn os_error(err: &object_store::Error) -> Option<i32> {
    let mut next: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = next {
        if let Some(code) = current
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::raw_os_error)
        {
            return Some(code);
        }
        next = current.source();
    }
    None
}

/// Whether `err` says the object does not exist (on a local file system,
/// also: a directory on its path is a file, so nothing can be beneath it).
/// A missing bucket is not a missing object.
pub(crate) fn is_not_found(err: &object_store::Error) -> bool {
    (matches!(err, object_store::Error::NotFound { .. }) && !is_missing_bucket(err))
        || os_error(err) == Some(ENOTDIR)
}

/// Whether `err` says a conditional write lost: the object exists
/// (`PutMode::Create`) or changed (`PutMode::Update`).
pub(crate) fn is_lost_race(err: &object_store::Error) -> bool {
    matches!(
        err,
        object_store::Error::AlreadyExists { .. } | object_store::Error::Precondition { .. }
    )
}

/// Whether `err` says the store does not offer an operation.
pub(crate) fn is_unsupported(err: &object_store::Error) -> bool {
    matches!(
        err,
        object_store::Error::NotImplemented { .. } | object_store::Error::NotSupported { .. }
    )
}

/// Compare-and-swap attempts one operation makes before it gives up with a
/// retryable error: a loop that lost this many races in a row is better
/// retried by the caller later than spun on.
pub(crate) const CAS_ATTEMPTS: u32 = 32;

/// Counts the lost races of one compare-and-swap loop and backs off
/// between attempts (1 ms doubling to 64 ms, with jitter).
#[derive(Debug, Default)]
pub(crate) struct Contention {
    lost: u32,
}

impl Contention {
    /// Records a lost race on `key` while `doing`; waits before the next
    /// attempt, or fails once [`CAS_ATTEMPTS`] were lost.
    pub(crate) async fn lost(&mut self, doing: &str, key: &Path) -> Result<(), StorageError> {
        self.lost += 1;
        if self.lost >= CAS_ATTEMPTS {
            return Err(StorageError::retryable(
                BACKEND,
                format!("{doing} {key}: lost {CAS_ATTEMPTS} races in a row to other writers"),
            ));
        }
        let ceiling = 1u64 << self.lost.min(6);
        let micros = fastrand::u64(ceiling * 500..=ceiling * 1000);
        tokio::time::sleep(std::time::Duration::from_micros(micros)).await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Answer(String);

    impl std::fmt::Display for Answer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }

    impl std::error::Error for Answer {}

    fn generic(text: impl Into<String>) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: Box::new(Answer(text.into())),
        }
    }

    fn retryable(err: object_store::Error) -> bool {
        storage("reading", &Path::from("k"), err).is_retryable()
    }

    #[test]
    fn only_answers_a_retry_can_change_are_retryable() {
        let status = |code: &str| format!("Server returned non-2xx status code: {code}: body");
        for code in [
            "500 Internal Server Error",
            "503 Service Unavailable",
            "429 Too Many Requests",
            "409 Conflict",
            "412 Precondition Failed",
            "408 Request Timeout",
        ] {
            assert!(retryable(generic(status(code))), "{code}");
        }
        for code in [
            "400 Bad Request",
            "405 Method Not Allowed",
            "411 Length Required",
            "416 Range Not Satisfiable",
        ] {
            assert!(!retryable(generic(status(code))), "{code}");
        }
        let transport = |kind, text: &str| object_store::Error::Generic {
            store: "S3",
            source: Box::new(std::io::Error::new(kind, text.to_owned())),
        };
        assert!(retryable(transport(
            std::io::ErrorKind::ConnectionReset,
            "connection reset"
        )));
        assert!(retryable(transport(
            std::io::ErrorKind::TimedOut,
            "timed out"
        )));
        // Generic, but nothing says a retry could help: the same call meets
        // the same error.
        assert!(!retryable(generic(
            "Missing region: a configuration the builder rejects"
        )));
        assert!(!retryable(transport(
            std::io::ErrorKind::InvalidData,
            "cannot decode the listing"
        )));
        let bucket = object_store::Error::NotFound {
            path: "k".into(),
            source: Box::new(Answer("<Error><Code>NoSuchBucket</Code></Error>".into())),
        };
        assert!(
            !is_not_found(&bucket),
            "a missing bucket is not a missing object"
        );
        let err = storage("reading", &Path::from("k"), bucket);
        assert!(
            !err.is_retryable() && err.to_string().contains("bucket"),
            "{err}"
        );
        let object = object_store::Error::NotFound {
            path: "k".into(),
            source: Box::new(Answer("<Error><Code>NoSuchKey</Code></Error>".into())),
        };
        assert!(is_not_found(&object));
    }
}
