//! `WorkflowHost`: an in-process snapshot worker fed through a channel by
//! an `EventLog` wrapper that notices entries added or updated with a
//! pending snapshot job (the original's worker host).

use crate::scan::is_pending;
use crate::{SnapshotWorker, WorkflowOptions};
use async_trait::async_trait;
use infinisheet_blob_store::BlobDir;
use infinisheet_engine::{LoadError, Spreadsheet};
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, Bounds, EntryMetadata, EventLog, FieldUpdate,
    KnownSnapshot, LogCapabilities, LogEntry, MetadataUpdate, QueryEnd, QueryError, QueryStart,
    QueryValue, SequenceId, SetMetadataError, StorageError, TruncateError,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

/// What the wrapper and the host's task share.
#[derive(Debug)]
struct Shared {
    jobs: mpsc::UnboundedSender<SequenceId>,
    /// Jobs sent and not finished yet (plus one while the host's startup
    /// pass runs).
    outstanding: watch::Sender<usize>,
    failures: AtomicU64,
}

impl Shared {
    fn notify(&self, at: SequenceId) {
        self.outstanding.send_modify(|n| *n += 1);
        if self.jobs.send(at).is_err() {
            // The host stopped; polling workers find the job.
            self.done(1);
        }
    }

    fn done(&self, jobs: usize) {
        self.outstanding
            .send_modify(|n| *n = n.saturating_sub(jobs));
    }
}

/// Runs snapshot jobs in a tokio task of this process as soon as the
/// sheet's own writers ask for them.
///
/// Give the sheet [`log`](WorkflowHost::log) instead of the raw log: it is
/// the same log, but every entry added with `pending = "snapshot"` (and
/// every `set_metadata` that sets it) also sends the job to the host.
/// Notification is a shortcut, never the only path: with `poll_interval`
/// set the host also polls the log, and with `restart_pending_on_load` it
/// first runs the jobs already pending.
///
/// ```
/// use infinisheet_blob_store::BlobStore;
/// use infinisheet_engine::{Cell, CellValue, SheetOptions, Spreadsheet};
/// use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
/// use infinisheet_snapshot_workflow::{WorkflowHost, WorkflowOptions};
/// use std::sync::Arc;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = MemoryBlobStore::new().root();
/// let host = WorkflowHost::start(Arc::new(MemoryEventLog::new()), dir.clone(), WorkflowOptions::default());
/// let options = SheetOptions::default().snapshot_interval(10);
/// let sheet = Spreadsheet::open(host.log(), dir.clone(), options).await?;
/// for row in 0..25 {
///     sheet.set_cell(row, 0, Cell::new(CellValue::Number(row.into()))).await?;
/// }
/// host.idle().await; // the snapshots at 10 and 20 are published
/// let reader = Spreadsheet::open(host.log(), dir, SheetOptions::default()).await?;
/// assert_eq!(reader.content().snapshot().map(|s| s.sequence_id), Some(20));
/// host.shutdown().await;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
///
/// End it with [`finish`](WorkflowHost::finish) (waits for the jobs asked
/// for, then stops) or [`shutdown`](WorkflowHost::shutdown) (stops after
/// the job in hand). Dropped otherwise, it stops at once and logs a
/// warning naming the jobs it leaves pending; they stay pending in the log,
/// so a later host or worker does them, but nothing is snapshotted until
/// one runs.
#[derive(Debug)]
#[must_use = "a WorkflowHost runs snapshot jobs only while it lives; end it with `finish().await`"]
pub struct WorkflowHost {
    shared: Arc<Shared>,
    log: Arc<dyn EventLog>,
    dir: Arc<dyn BlobDir>,
    worker: SnapshotWorker,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl WorkflowHost {
    /// Starts a host for the sheet whose log is `log` and whose directory
    /// is `dir`, in a task of the current tokio runtime.
    ///
    /// # Panics
    ///
    /// If called outside a tokio runtime.
    pub fn start(log: Arc<dyn EventLog>, dir: Arc<dyn BlobDir>, options: WorkflowOptions) -> Self {
        let worker = SnapshotWorker::new(log.clone(), dir.clone(), options);
        let (jobs, queue) = mpsc::unbounded_channel();
        let startup = usize::from(options.restart_pending_on_load);
        let shared = Arc::new(Shared {
            jobs,
            outstanding: watch::Sender::new(startup),
            failures: AtomicU64::new(0),
        });
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(serve(worker.clone(), queue, shared.clone(), stopped));
        WorkflowHost {
            log: Arc::new(NotifyingLog {
                inner: log,
                shared: shared.clone(),
            }),
            shared,
            dir,
            worker,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// The sheet's log, wrapped to send the host the jobs its writers ask
    /// for. Open the sheet on this.
    pub fn log(&self) -> Arc<dyn EventLog> {
        self.log.clone()
    }

    /// Opens the sheet for writing through this host: on
    /// [`log`](WorkflowHost::log), in the host's directory, with the
    /// host's sheet settings ([`WorkflowOptions::sheet`]: snapshot
    /// interval, tile size, identity), so the writer and the worker cannot
    /// disagree on them.
    ///
    /// # Errors
    ///
    /// [`LoadError`] if the sheet cannot be loaded.
    pub async fn open_sheet(&self) -> Result<Spreadsheet, LoadError> {
        Spreadsheet::open(self.log(), self.dir.clone(), self.worker.options().sheet).await
    }

    /// The host's worker (for example to run a job or maintenance by
    /// hand).
    pub fn worker(&self) -> &SnapshotWorker {
        &self.worker
    }

    /// Waits until every job sent so far (and the startup pass) is done.
    pub async fn idle(&self) {
        let mut outstanding = self.shared.outstanding.subscribe();
        // The sender lives in `self.shared`, so this cannot fail.
        let _ = outstanding.wait_for(|n| *n == 0).await;
    }

    /// How many job runs failed after their retries (the jobs stay pending
    /// for the next poll, and count again if they fail again).
    pub fn failures(&self) -> u64 {
        self.shared.failures.load(Ordering::SeqCst)
    }

    /// The graceful end: waits until every job asked for so far is done
    /// (or failed through its retries), then stops. Reports how many jobs
    /// failed over the host's life; a failed job stays pending in the log.
    pub async fn finish(self) -> HostReport {
        self.idle().await;
        self.shutdown().await
    }

    /// Stops the host after the job it is running; queued jobs stay pending
    /// in the log, for a later host or worker. Reports what was left.
    pub async fn shutdown(mut self) -> HostReport {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        HostReport {
            failures: self.failures(),
            left_pending: *self.shared.outstanding.borrow(),
        }
    }
}

/// How a [`WorkflowHost`] ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostReport {
    /// Job runs that failed through their retries over the host's life
    /// (the jobs stay pending in the log); a job tried again by a later
    /// pass, and failing again, counts again.
    pub failures: u64,
    /// Jobs asked for and not run when it stopped (they stay pending in
    /// the log).
    pub left_pending: usize,
}

impl Drop for WorkflowHost {
    fn drop(&mut self) {
        if let Some(task) = &self.task {
            task.abort();
            let pending = *self.shared.outstanding.borrow();
            if pending > 0 {
                tracing::warn!(
                    pending,
                    "a WorkflowHost was dropped with snapshot jobs pending (end it with \
                     `finish().await`); they stay pending in the log for another worker"
                );
            }
        }
    }
}

async fn serve(
    worker: SnapshotWorker,
    mut queue: mpsc::UnboundedReceiver<SequenceId>,
    shared: Arc<Shared>,
    mut stop: oneshot::Receiver<()>,
) {
    let options = *worker.options();
    if options.restart_pending_on_load {
        poll(&worker, &shared).await;
        shared.done(1);
    }
    let mut ticks = options.poll_interval.map(|every| {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    loop {
        let tick = async {
            match ticks.as_mut() {
                Some(ticks) => {
                    ticks.tick().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            _ = &mut stop => return,
            job = queue.recv() => {
                let Some(first) = job else { return };
                let mut batch = vec![first];
                while let Ok(more) = queue.try_recv() {
                    batch.push(more);
                }
                let count = batch.len();
                batch.sort_unstable();
                batch.dedup();
                // Newest first: it supersedes the others, which then only
                // clear their markers.
                for at in batch.into_iter().rev() {
                    if let Err(err) = worker.run_job(at).await {
                        tracing::warn!(at, %err, "snapshot job failed; it stays pending");
                        shared.failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
                shared.done(count);
            }
            () = tick => poll(&worker, &shared).await,
        }
    }
}

/// One polling pass of the host, counting its failed jobs.
async fn poll(worker: &SnapshotWorker, shared: &Shared) {
    let failed = worker.poll_logged().await;
    shared.failures.fetch_add(failed, Ordering::SeqCst);
}

/// The sheet's log, sending the host every snapshot job its callers ask
/// for.
#[derive(Debug)]
struct NotifyingLog {
    inner: Arc<dyn EventLog>,
    shared: Arc<Shared>,
}

fn pending_at(seq: SequenceId, metadata: &EntryMetadata) -> Option<SequenceId> {
    is_pending(metadata).then_some(seq)
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl EventLog for NotifyingLog {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        let jobs: Vec<SequenceId> = (seq..)
            .zip(&entries)
            .filter_map(|(at, e)| pending_at(at, &e.metadata))
            .collect();
        // A retry that finds its batch landed notifies again: the jobs are
        // idempotent, and the first attempt's notice was lost with its reply.
        let value = self.inner.append_at(entries, seq, known, token).await?;
        for at in jobs {
            self.shared.notify(at);
        }
        Ok(value)
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        self.inner.query(start, end, known).await
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        self.inner.bounds().await
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        let job = matches!(&update.pending, FieldUpdate::Set(w) if w == infinisheet_engine::SNAPSHOT_WORKFLOW);
        self.inner.set_metadata(seq, update).await?;
        if job {
            self.shared.notify(seq);
        }
        Ok(())
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        self.inner.truncate(start).await
    }

    fn capabilities(&self) -> LogCapabilities {
        self.inner.capabilities()
    }

    /// Forwarded as it is: a wait is no storage call to fault or delay.
    async fn wait_for_entries(&self, end: SequenceId, timeout: std::time::Duration) {
        self.inner.wait_for_entries(end, timeout).await;
    }
}
