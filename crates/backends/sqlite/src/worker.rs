//! The connection thread: one SQLite connection owned by a dedicated thread
//! that runs jobs sent to it, so no tokio runtime thread ever waits on disk
//! or on another process's lock.

use crate::error::BACKEND;
use infinisheet_event_log::StorageError;
use rusqlite::Connection;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::thread;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// Handle to the connection thread. The thread ends, closing the
/// connection, when the last handle is dropped.
#[derive(Debug)]
pub(crate) struct Worker {
    jobs: mpsc::Sender<Job>,
}

impl Worker {
    /// Moves `connection` onto a new thread.
    pub(crate) fn spawn(mut connection: Connection) -> Result<Self, StorageError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        thread::Builder::new()
            .name("infinisheet-sqlite".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    // A panicking job drops its reply channel, so its caller
                    // gets an error; the connection stays usable.
                    let _ = catch_unwind(AssertUnwindSafe(|| job(&mut connection)));
                }
            })
            .map_err(|err| {
                StorageError::new(BACKEND, "cannot start the connection thread").with_source(err)
            })?;
        Ok(Worker { jobs })
    }

    /// Runs `job` on the connection thread and waits for its result without
    /// blocking the caller's thread.
    pub(crate) async fn call<T, F>(&self, job: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> T + Send + 'static,
    {
        let (reply, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |connection| {
                // The caller may have gone away; the job still ran.
                let _ = reply.send(job(connection));
            }))
            .map_err(|_| StorageError::new(BACKEND, "the connection thread has stopped"))?;
        result.await.map_err(|_| {
            StorageError::new(BACKEND, "the database call failed unexpectedly (a bug)")
        })
    }
}
