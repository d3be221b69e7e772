//! What the log requires of a store, checked when it is opened: conditional
//! create and ETag-conditional replace, both honoured (not just accepted).

use crate::error::{is_lost_race, is_unsupported, storage};
use bytes::Bytes;
use infinisheet_event_log::StorageError;
use object_store::path::Path;
use object_store::{ObjectStore, PutMode, PutPayload, UpdateVersion};
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
    /// The store failed while it was checked.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Checks, on a probe object under `prefix`, that `store` refuses to create
/// an object that exists and to replace one whose ETag changed.
pub(crate) async fn check_conditional_writes(
    store: &Arc<dyn ObjectStore>,
    prefix: &Path,
) -> Result<(), OpenError> {
    let probe = prefix.clone().join("probe");
    let unsupported = |missing| OpenError::Unsupported {
        store: store.to_string(),
        missing,
    };
    let create = || {
        store.put_opts(
            &probe,
            PutPayload::from(Bytes::from_static(b"conditional writes probe")),
            PutMode::Create.into(),
        )
    };
    // Once to make sure it exists (it may already), then once more, which
    // must be refused.
    match create().await {
        Ok(_) => {}
        Err(err) if is_lost_race(&err) => {}
        Err(err) if is_unsupported(&err) => return Err(unsupported("no conditional create")),
        Err(err) => return Err(storage("probing conditional create at", &probe, err).into()),
    }
    match create().await {
        Err(err) if is_lost_race(&err) => {}
        Ok(_) => return Err(unsupported("it ignores conditional create (If-None-Match)")),
        Err(err) if is_unsupported(&err) => return Err(unsupported("no conditional create")),
        Err(err) => return Err(storage("probing conditional create at", &probe, err).into()),
    }
    let stale = UpdateVersion {
        e_tag: Some("\"infinisheet-no-such-etag\"".to_owned()),
        version: None,
    };
    let replaced = store
        .put_opts(
            &probe,
            PutPayload::from(Bytes::from_static(b"conditional writes probe")),
            PutMode::Update(stale).into(),
        )
        .await;
    match replaced {
        Err(err) if is_lost_race(&err) => Ok(()),
        Ok(_) => Err(unsupported(
            "it ignores ETag-conditional replace (If-Match)",
        )),
        Err(err) if is_unsupported(&err) => Err(unsupported("no ETag-conditional replace")),
        Err(err) => Err(storage("probing conditional replace at", &probe, err).into()),
    }
}
