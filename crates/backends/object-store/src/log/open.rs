//! What the log requires of a store, checked when a log is created:
//! conditional create and ETag-conditional replace, both honoured (not
//! just accepted). Opening a log that exists reads its head and writes
//! nothing.

use crate::error::{is_lost_race, is_not_found, is_unsupported, storage};
use bytes::Bytes;
use infinisheet_event_log::StorageError;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutPayload, UpdateVersion};
use std::sync::Arc;

/// Error of [`ObjectStoreEventLog::open`](crate::ObjectStoreEventLog::open).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The store cannot hold an event log: it lacks, or ignores, a
    /// conditional write the log depends on.
    #[error("{store} cannot hold an event log: {missing}")]
    Unsupported {
        /// The store, as it describes itself.
        store: String,
        /// What it lacks.
        missing: &'static str,
    },
    /// [`open_existing`](crate::ObjectStoreEventLog::open_existing) found
    /// no log under the prefix.
    #[error("no event log under {prefix}")]
    NotFound {
        /// The prefix looked under.
        prefix: String,
    },
    /// The store failed while it was checked.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Whether a log exists under `prefix`: its head object is there, or (a
/// log of a release that wrote the head only when it first moved) one of
/// its records is. Reads only.
pub(crate) async fn exists(
    store: &Arc<dyn ObjectStore>,
    head: &Path,
    records: &Path,
) -> Result<bool, OpenError> {
    match store.head(head).await {
        Ok(_) => return Ok(true),
        Err(err) if is_not_found(&err) => {}
        Err(err) => return Err(storage("opening the log: reading", head, err).into()),
    }
    use futures::StreamExt;
    match store.list(Some(records)).next().await {
        None => Ok(false),
        Some(Ok(_)) => Ok(true),
        Some(Err(err)) => Err(storage("opening the log: listing", records, err).into()),
    }
}

/// Makes sure the log under `prefix` exists: if it does ([`exists`]),
/// nothing else happens. Otherwise the log is being created: the store's
/// conditional writes are checked on a probe object (removed afterwards)
/// and the head is created, if absent, as an empty log's.
pub(crate) async fn ensure_created(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
    head: &Path,
    records: &Path,
    empty_head: bytes::Bytes,
) -> Result<(), OpenError> {
    if exists(store, head, records).await? {
        return Ok(());
    }
    check_conditional_writes(store, prefix).await?;
    match store
        .put_opts(head, PutPayload::from(empty_head), PutMode::Create.into())
        .await
    {
        Ok(_) => Ok(()),
        // Another client created the log meanwhile.
        Err(err) if is_lost_race(&err) => Ok(()),
        Err(err) => Err(storage("creating the log: writing", head, err).into()),
    }
}

/// Checks, on a probe object under `prefix` (a fresh name, removed at the
/// end), that `store` refuses to create an object that exists and to
/// replace one whose ETag changed.
async fn check_conditional_writes(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
) -> Result<(), OpenError> {
    let probe = prefix
        .clone()
        .join(format!("probe-{:016x}", fastrand::u64(..)));
    let checked = probe_conditional_writes(store, &probe).await;
    match store.delete(&probe).await {
        Ok(()) => {}
        Err(err) if is_not_found(&err) => {}
        Err(err) if checked.is_ok() => {
            return Err(storage("removing the conditional-write probe", &probe, err).into());
        }
        // The check's own error says more.
        Err(_) => {}
    }
    checked
}

async fn probe_conditional_writes(
    store: &Arc<dyn ObjectStore>,
    probe: &Path,
) -> Result<(), OpenError> {
    let unsupported = |missing| OpenError::Unsupported {
        store: store.to_string(),
        missing,
    };
    let create = || {
        store.put_opts(
            probe,
            PutPayload::from(Bytes::from_static(b"conditional writes probe")),
            PutMode::Create.into(),
        )
    };
    // Once to create it, then once more, which must be refused.
    match create().await {
        Ok(_) => {}
        Err(err) if is_lost_race(&err) => {}
        Err(err) if is_unsupported(&err) => return Err(unsupported("no conditional create")),
        Err(err) => return Err(storage("probing conditional create at", probe, err).into()),
    }
    match create().await {
        Err(err) if is_lost_race(&err) => {}
        Ok(_) => {
            return Err(unsupported(
                "it ignores conditional create: a second create of one object overwrote it",
            ));
        }
        Err(err) if is_unsupported(&err) => return Err(unsupported("no conditional create")),
        Err(err) => return Err(storage("probing conditional create at", probe, err).into()),
    }
    let stale = UpdateVersion {
        e_tag: Some("\"infinisheet-no-such-etag\"".to_owned()),
        version: None,
    };
    let replaced = store
        .put_opts(
            probe,
            PutPayload::from(Bytes::from_static(b"conditional writes probe")),
            PutMode::Update(stale).into(),
        )
        .await;
    match replaced {
        Err(err) if is_lost_race(&err) => Ok(()),
        Ok(_) => Err(unsupported(
            "it ignores conditional replace: a replace naming a stale version overwrote it",
        )),
        Err(err) if is_unsupported(&err) => Err(unsupported("no ETag-conditional replace")),
        Err(err) => Err(storage("probing conditional replace at", probe, err).into()),
    }
}
