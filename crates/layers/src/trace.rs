//! `Trace`: a hook that emits one `tracing` span per call.

use crate::{Call, Hook};
use futures::future::BoxFuture;
use infinisheet_blob_store::StorageError;
use std::fmt;
use tracing::Instrument;

/// Emits a `storage` span per call, at debug level, with the operation, the
/// layer's label, and the sequence id or blob name the call names; the
/// outcome is an event inside it (`debug` on success, `warn` on error).
#[derive(Clone, Copy, Debug)]
pub struct Trace {
    label: &'static str,
}

impl Trace {
    /// A hook whose spans carry `label` (for example the backend's name, or
    /// `"sheet-log"`), so mixed backends can be told apart.
    pub fn new(label: &'static str) -> Self {
        Trace { label }
    }
}

impl Hook for Trace {
    fn around<'a, T, E>(
        &'a self,
        call: Call<'a>,
        inner: BoxFuture<'a, Result<T, E>>,
    ) -> BoxFuture<'a, Result<T, E>>
    where
        T: Send + 'a,
        E: From<StorageError> + fmt::Display + Send + 'a,
    {
        let span = tracing::debug_span!(
            "storage",
            label = self.label,
            op = call.op.name(),
            seq = call.seq,
            name = call.name.map(|name| name.as_str()),
        );
        Box::pin(
            async move {
                let result = inner.await;
                match &result {
                    Ok(_) => tracing::debug!("ok"),
                    Err(err) => tracing::warn!(error = %err, "failed"),
                }
                result
            }
            .instrument(span),
        )
    }
}
