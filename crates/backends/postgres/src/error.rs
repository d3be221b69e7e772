//! The one place this backend inspects PostgreSQL's errors: what becomes a
//! retryable, corrupt or permanent [`StorageError`], and the errors of
//! opening a database or a log.

use infinisheet_event_log::StorageError;
use tokio_postgres::error::SqlState;

/// Name reported in this backend's storage errors.
pub const BACKEND: &str = "postgres";

/// Whether trying again may help: the connection was lost or refused (the
/// server restarting, a network partition), the server is shutting down
/// or out of connections, or it ended the transaction to resolve a
/// conflict (serialization failure, deadlock). An append retried with its
/// token lands once, so a lost reply is safe to retry.
fn retryable(err: &tokio_postgres::Error) -> bool {
    if tls_failure(err).is_some() {
        // A certificate, a protocol or a cipher TLS refused will not
        // change by trying again (a connection cut mid-handshake is an
        // I/O error of its own, not TLS's).
        return false;
    }
    match err.code() {
        Some(code) => retryable_state(code.code()),
        // The client's own error: the connection failed (closed, I/O,
        // timed out), or a value did not convert (not retryable).
        None => {
            err.is_closed()
                || std::error::Error::source(err)
                    .is_some_and(|source| source.is::<std::io::Error>())
                || err.to_string().starts_with("timeout")
        }
    }
}

/// [`retryable`] by the server's SQLSTATE.
fn retryable_state(code: &str) -> bool {
    // 08: connection exception (but 08P01, a protocol violation);
    // 40001 serialization failure, 40P01 deadlock; 53300 too many
    // connections; 55P03 lock not available; 57014 a statement cancelled
    // or timed out (a lock held long by another session); 57P01..57P05:
    // the server shutting down, restarting or ending idle sessions.
    (code.starts_with("08") && code != "08P01")
        || matches!(
            code,
            "40001" | "40P01" | "53300" | "55P03" | "57014" | "57P01" | "57P02" | "57P03" | "57P05"
        )
}

/// Whether the server says stored data is damaged (`XX001`, `XX002`).
fn corrupt(err: &tokio_postgres::Error) -> bool {
    matches!(
        err.code(),
        Some(code) if *code == SqlState::DATA_CORRUPTED || *code == SqlState::INDEX_CORRUPTED
    )
}

/// Converts an error met while `doing` something into a [`StorageError`].
pub(crate) fn storage(doing: &str, err: tokio_postgres::Error) -> StorageError {
    let message = format!("{doing}: {}", describe(&err));
    let storage = if corrupt(&err) {
        StorageError::corrupt(BACKEND, message)
    } else if retryable(&err) {
        StorageError::retryable(BACKEND, message)
    } else {
        StorageError::new(BACKEND, message)
    };
    storage.with_source(err)
}

/// The TLS error that failed a handshake, if one did.
fn tls_failure(err: &tokio_postgres::Error) -> Option<&rustls::Error> {
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let tls = cause.downcast_ref::<rustls::Error>().or_else(|| {
            cause
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        });
        if tls.is_some() {
            return tls;
        }
        source = cause.source();
    }
    None
}

/// The server's message when there is one (with its SQLSTATE), else the
/// client's (with what to do about a certificate TLS refused).
fn describe(err: &tokio_postgres::Error) -> String {
    match (err.as_db_error(), tls_failure(err)) {
        (Some(db), _) if *db.code() == SqlState::INVALID_SCHEMA_NAME => format!(
            "{} ({}): the connection's search_path names no schema that exists: create it \
             (CREATE SCHEMA name), or choose one with ?options=-c%20search_path%3Dname",
            db.message(),
            db.code().code()
        ),
        (Some(db), _) => format!("{} ({})", db.message(), db.code().code()),
        (
            None,
            Some(
                tls @ (rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented),
            ),
        ) => format!(
            "TLS refused the server: {tls} (the server's certificate must be signed by a root \
             in the file sslrootcert names, or in the Mozilla set when none is given, and \
             name the host unless sslmode=verify-ca)"
        ),
        (None, Some(tls)) => format!("TLS failed: {tls}"),
        (None, None) => err.to_string(),
    }
}

/// Converts a failure to get a connection from the pool.
pub(crate) fn pool(doing: &str, err: deadpool_postgres::PoolError) -> StorageError {
    use deadpool_postgres::PoolError;
    match err {
        PoolError::Backend(err) => storage(doing, err),
        PoolError::Timeout(_) => StorageError::retryable(
            BACKEND,
            format!("{doing}: no connection to the database came free in time"),
        ),
        other => StorageError::new(BACKEND, format!("{doing}: {other}")).with_source(other),
    }
}

/// Stored data this backend finds inconsistent: a corruption error naming
/// whose data it is.
pub(crate) fn damaged(whose: &str, what: impl std::fmt::Display) -> StorageError {
    StorageError::corrupt(BACKEND, format!("{whose}: {what}"))
}

/// An error of connecting to a database or opening a log in it.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The TLS the URL asks for cannot be set up (its `sslrootcert`
    /// cannot be read).
    #[error("{url}: TLS: {problem}")]
    Tls {
        /// The URL given (its password left out).
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// The URL cannot name a database.
    #[error("{url}: not a PostgreSQL URL: {problem}")]
    InvalidUrl {
        /// The URL given (its password left out).
        url: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The URL asks for what this backend cannot do (a client
    /// certificate).
    #[error("{url}: {what}")]
    Unsupported {
        /// The URL given (its password left out).
        url: String,
        /// What it asks for, and what to do instead.
        what: String,
    },
    /// The database holds this backend's tables in a layout newer than
    /// this code reads.
    #[error(
        "{url}: the tables are of layout version {found}, newer than this program's ({known}); \
         use a newer version of it"
    )]
    SchemaTooNew {
        /// The database.
        url: String,
        /// The version found.
        found: i32,
        /// The newest version this code knows.
        known: i32,
    },
    /// The database holds tables named like this backend's that it did not
    /// make, or that are damaged.
    #[error("{url}: the infinisheet tables are not as this program made them: {problem}")]
    Layout {
        /// The database.
        url: String,
        /// What is wrong.
        problem: String,
    },
    /// Opened for reading only, the database holds none of this
    /// backend's tables (nothing was created).
    #[error(
        "{url}: the database holds no infinisheet tables (no log was ever created in it, or the \
         URL names another database or schema)"
    )]
    NoTables {
        /// The database.
        url: String,
    },
    /// No log has that name.
    #[error("{url}: no event log named {name:?}")]
    NotFound {
        /// The database.
        url: String,
        /// The name asked for.
        name: String,
    },
    /// A log of that name exists already.
    #[error("{url}: an event log named {name:?} exists already")]
    AlreadyExists {
        /// The database.
        url: String,
        /// The name asked for.
        name: String,
    },
    /// The name cannot name a log.
    #[error("{url}: {name:?} cannot name an event log: {problem}")]
    InvalidName {
        /// The database.
        url: String,
        /// The name given.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The server could not be reached, refused the login, or failed.
    #[error("{url}")]
    Storage {
        /// The database.
        url: String,
        /// What failed.
        #[source]
        source: StorageError,
    },
}

impl OpenError {
    pub(crate) fn storage(url: &str, doing: &str, err: tokio_postgres::Error) -> Self {
        Self::from_storage(url, storage(doing, err))
    }

    pub(crate) fn from_storage(url: &str, source: StorageError) -> Self {
        OpenError::Storage {
            url: url.to_owned(),
            source,
        }
    }

    /// Whether trying again may help (the server could not be reached, or
    /// was busy).
    pub fn is_retryable(&self) -> bool {
        matches!(self, OpenError::Storage { source, .. } if source.is_retryable())
    }
}

#[cfg(test)]
mod tests {
    use super::retryable_state;

    #[test]
    fn lost_connections_and_conflicts_are_retryable_the_rest_not() {
        for (code, retry) in [
            ("40001", true),
            ("40P01", true),
            ("08006", true),
            ("57P01", true),
            ("53300", true),
            ("23505", false),
            ("28P01", false),
            ("42P01", false),
            ("XX001", false),
            ("57014", true),
            ("08P01", false),
        ] {
            assert_eq!(retryable_state(code), retry, "{code}");
        }
    }
}
