//! `Delay`: a hook that waits before every call.

use crate::{Call, Hook};
use futures::future::BoxFuture;
use infinisheet_blob_store::StorageError;
use std::fmt;
use std::time::Duration;

/// Waits a fixed time before passing each call on, so that calls from
/// concurrent tasks interleave the way they would over a slow network.
///
/// ```
/// use infinisheet_layers::{Delay, Layered};
/// use infinisheet_memory::MemoryEventLog;
/// use std::time::Duration;
///
/// let slow_log = Layered::new(Delay::new(Duration::from_millis(5)), MemoryEventLog::new());
/// # drop(slow_log);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Delay {
    delay: Duration,
}

impl Delay {
    /// A hook that waits `delay` before every call.
    pub fn new(delay: Duration) -> Self {
        Delay { delay }
    }

    /// The wait before each call.
    pub fn delay(&self) -> Duration {
        self.delay
    }
}

impl Hook for Delay {
    fn around<'a, T, E>(
        &'a self,
        _call: Call<'a>,
        inner: BoxFuture<'a, Result<T, E>>,
    ) -> BoxFuture<'a, Result<T, E>>
    where
        T: Send + 'a,
        E: From<StorageError> + fmt::Display + Send + 'a,
    {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            inner.await
        })
    }
}
