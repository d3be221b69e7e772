//! `SnapshotWorker`: runs "snapshot due at S" jobs with its own engine, and
//! polls the log for pending jobs.

use crate::cleanup::{self, CleanupReport};
use crate::scan::{self, Found};
use crate::{WorkflowError, WorkflowOptions, history};
use infinisheet_blob_store::BlobDir;
use infinisheet_engine::{
    RebuildError, SNAPSHOT_WORKFLOW, Spreadsheet, WriteSnapshotError, write_snapshot_from_log,
};
use infinisheet_event_log::{
    EventLog, EventLogExt, FieldUpdate, KnownSnapshot, MetadataUpdate, QueryEnd, QueryError,
    QueryStart, SequenceId, SetMetadataError, SnapshotValue,
};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The most entries since a snapshot's base for which the workflow reads
/// them to learn that the checks around publishing cannot fail, rather than
/// making the checks.
const SHORT_CHECK: u64 = 1_000;

/// The most cells set since its snapshot the worker's loaded sheet takes in
/// for a job (a few tens of MB; an interval of edits, or pastes, is far
/// less); a job with more (an import's millions) is written streaming from
/// the log, in flat memory.
const LOADED_CELLS: u64 = 1 << 18;

/// The most entries after a streamed job's snapshot for which the worker
/// loads the sheet for the jobs after (opening reads them all).
const REOPEN_ENTRIES: u64 = 2;

/// What a snapshot job did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum JobOutcome {
    /// The worker wrote the snapshot and published it on the entry.
    Published(SnapshotValue),
    /// The entry carries a snapshot and no pending job: another worker did
    /// it.
    AlreadyDone,
    /// A newer snapshot covers the entry, or the entry was truncated: the
    /// job is not needed, and its pending marker was cleared.
    Superseded,
    /// The entry has no pending snapshot job.
    NotPending,
}

/// What one pass of [`SnapshotWorker::poll_once`] did.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct PollReport {
    /// The pending entries it found.
    pub found: usize,
    /// The snapshots it published.
    pub published: Vec<SnapshotValue>,
    /// The jobs that failed after their retries, with their entries; they
    /// stay pending for the next pass.
    pub failed: Vec<(SequenceId, WorkflowError)>,
    /// What maintenance did when the pass ran it without a published
    /// snapshot: a worker's first pass applies its history and cleanup
    /// settings to the snapshots already there, so a worker started with
    /// them on an idle sheet does not wait for a new job.
    pub maintenance: Option<MaintenanceReport>,
    /// Why that maintenance failed, if it did; the next pass tries again.
    pub maintenance_failed: Option<WorkflowError>,
}

/// What maintenance after a snapshot did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MaintenanceReport {
    /// The log's new start, if history was archived and the log truncated.
    pub truncated_to: Option<SequenceId>,
    /// What the cleanup of old snapshots did, if it ran.
    pub cleanup: Option<CleanupReport>,
}

/// A snapshot worker for one sheet: its log and its blob directory, and
/// its own engine instance. Clones share one worker, which runs one job at
/// a time; several workers (in one process or many) may run the same job
/// at once, and each publishes a complete snapshot.
///
/// A job for entry `S` syncs the worker's sheet, writes the snapshot of
/// everything before `S` (the tiles changed since the sheet's snapshot,
/// then the index), checks that every snapshot directory it shares tiles
/// with is still there, and only then sets `snapshot` and clears `pending`
/// on `S` in one `set_metadata`. A crash at any point leaves no snapshot
/// named or a complete one, and the pending marker until it is done.
///
/// ```
/// use infinisheet_blob_store::BlobStore;
/// use infinisheet_engine::{Cell, CellValue, SheetOptions, Spreadsheet};
/// use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
/// use infinisheet_snapshot_workflow::{JobOutcome, SnapshotWorker, WorkflowOptions};
/// use std::sync::{Arc, Mutex, PoisonError};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let log = Arc::new(MemoryEventLog::new());
/// let dir = MemoryBlobStore::new().root();
/// let options = SheetOptions::default().snapshot_interval(10);
/// let sheet = Spreadsheet::open(log.clone(), dir.clone(), options).await?;
/// for row in 0..11 {
///     sheet.set_cell(row, 0, Cell::new(CellValue::Number(row.into()))).await?;
/// }
/// // Entry 10 asks for a snapshot of entries 0 to 9.
/// let worker = SnapshotWorker::new(log, dir, WorkflowOptions::default());
/// let report = worker.poll_once().await?;
/// assert_eq!(report.published.len(), 1);
/// assert_eq!(report.published[0].sequence_id, 10);
/// assert_eq!(worker.run_job(10).await?, JobOutcome::AlreadyDone);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct SnapshotWorker {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    log: Arc<dyn EventLog>,
    dir: Arc<dyn BlobDir>,
    options: WorkflowOptions,
    /// Held for a job's whole length (and maintenance's).
    job: tokio::sync::Mutex<()>,
    /// The worker's engine: opened by the first job, dropped after a
    /// failed try (the next opens a fresh one).
    sheet: Mutex<Option<Spreadsheet>>,
    /// The last snapshot this worker published, checked whole.
    verified: Mutex<Option<SequenceId>>,
    /// Where the next poll scans from: every pending entry before it was
    /// superseded by a snapshot and cleared.
    scan_from: AtomicU64,
    /// Where the next cleanup scans from.
    cleaned_to: AtomicU64,
    /// Whether maintenance has run to the end once: until it has, a pass
    /// that publishes nothing runs it.
    maintained: AtomicBool,
}

impl SnapshotWorker {
    /// A worker for the sheet whose log is `log` and whose directory is
    /// `dir`. It opens its engine at its first job.
    pub fn new(log: Arc<dyn EventLog>, dir: Arc<dyn BlobDir>, options: WorkflowOptions) -> Self {
        SnapshotWorker {
            inner: Arc::new(Inner {
                log,
                dir,
                options,
                job: tokio::sync::Mutex::new(()),
                sheet: Mutex::new(None),
                verified: Mutex::new(None),
                scan_from: AtomicU64::new(0),
                cleaned_to: AtomicU64::new(0),
                maintained: AtomicBool::new(false),
            }),
        }
    }

    /// The worker's settings.
    pub fn options(&self) -> &WorkflowOptions {
        &self.inner.options
    }

    /// Runs the snapshot job of entry `at`, trying again with backoff after
    /// retryable failures, then (if a snapshot was published) archives
    /// history and removes old snapshots as the options say.
    ///
    /// # Errors
    ///
    /// * [`WorkflowError::NoEntry`] if `at` is not in the log yet.
    /// * [`WorkflowError::Maintenance`] if the snapshot was published but
    ///   history or cleanup failed.
    /// * Any other [`WorkflowError`] once the retries are spent or the
    ///   failure cannot pass; the entry stays pending.
    pub async fn run_job(&self, at: SequenceId) -> Result<JobOutcome, WorkflowError> {
        let _job = self.inner.job.lock().await;
        let outcome = self.inner.retrying(|| self.inner.attempt(at)).await?;
        if let JobOutcome::Published(value) = &outcome {
            self.inner
                .retrying(|| self.inner.maintain())
                .await
                .map_err(|source| WorkflowError::Maintenance {
                    published: value.clone(),
                    source: Box::new(source),
                })?;
        }
        Ok(outcome)
    }

    /// The entries of the whole log that wait for a snapshot job, oldest
    /// first.
    ///
    /// # Errors
    ///
    /// [`WorkflowError::Query`] if the log cannot be read.
    pub async fn pending(&self) -> Result<Vec<SequenceId>, WorkflowError> {
        Ok(scan::scan(&*self.inner.log, 0).await?.pending)
    }

    /// Scans the log for pending snapshot jobs and runs them, newest first
    /// (a newer snapshot supersedes the older jobs, which then only clear
    /// their markers). The first pass scans the whole log; later passes
    /// start at the newest snapshot the worker knows. Until maintenance
    /// (history, cleanup) has run once, a pass that publishes nothing runs
    /// it, so the settings apply to an idle sheet's snapshots too.
    ///
    /// # Errors
    ///
    /// [`WorkflowError::Query`] if the log cannot be scanned; jobs that
    /// fail are listed in the report instead.
    pub async fn poll_once(&self) -> Result<PollReport, WorkflowError> {
        let from = self.inner.scan_from.load(Ordering::SeqCst);
        let found = scan::scan(&*self.inner.log, from).await?;
        let mut report = PollReport {
            found: found.pending.len(),
            ..PollReport::default()
        };
        let mut newest = found.snapshots.last().map(|s| s.sequence_id);
        for at in found.pending.into_iter().rev() {
            match self.run_job(at).await {
                Ok(JobOutcome::Published(value)) => {
                    newest = newest.max(Some(value.sequence_id));
                    report.published.push(value);
                }
                Ok(_) => {}
                Err(WorkflowError::Maintenance { published, source }) => {
                    tracing::warn!(err = %source, "maintenance after a snapshot failed");
                    newest = newest.max(Some(published.sequence_id));
                    report.published.push(published);
                }
                Err(err) => report.failed.push((at, err)),
            }
        }
        if report.failed.is_empty()
            && let Some(newest) = newest
        {
            self.inner.scan_from.fetch_max(newest, Ordering::SeqCst);
        }
        if report.published.is_empty()
            && self.inner.options.maintains()
            && !self.inner.maintained.load(Ordering::SeqCst)
        {
            let _job = self.inner.job.lock().await;
            match self.inner.retrying(|| self.inner.maintain()).await {
                Ok(done) => report.maintenance = Some(done),
                Err(err) => report.maintenance_failed = Some(err),
            }
        }
        Ok(report)
    }

    /// Polls every `interval` until `stop` completes: the reliable way for
    /// a worker in another process or on another machine to find jobs, and
    /// to pick up the jobs of workers that vanished.
    pub async fn run_polling(&self, interval: Duration, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            self.poll_logged().await;
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One [`poll_once`](SnapshotWorker::poll_once) whose failures are
    /// logged; returns how many jobs failed.
    pub(crate) async fn poll_logged(&self) -> u64 {
        match self.poll_once().await {
            Ok(report) => {
                for (at, err) in &report.failed {
                    tracing::warn!(at, %err, "snapshot job failed; it stays pending");
                }
                report.failed.len() as u64
            }
            Err(err) => {
                tracing::warn!(%err, "scanning for snapshot jobs failed");
                0
            }
        }
    }

    /// Archives history and removes old snapshots as the options say (a
    /// published snapshot's job does this itself).
    ///
    /// # Errors
    ///
    /// The [`WorkflowError`] of the step that failed.
    pub async fn maintain(&self) -> Result<MaintenanceReport, WorkflowError> {
        let _job = self.inner.job.lock().await;
        self.inner.maintain().await
    }
}

impl Inner {
    /// Runs `step` until it succeeds, fails for good, or the retries are
    /// spent.
    async fn retrying<T, F, Fut>(&self, mut step: F) -> Result<T, WorkflowError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, WorkflowError>>,
    {
        let retry = self.options.retry;
        let mut attempt = 0;
        loop {
            attempt += 1;
            match step().await {
                Err(err) if err.is_retryable() && attempt < retry.attempts => {
                    tracing::debug!(%err, attempt, "snapshot workflow step failed; retrying");
                    tokio::time::sleep(retry.backoff(attempt)).await;
                }
                other => return other,
            }
        }
    }

    /// One try of a job; a failed try drops the engine, so the next starts
    /// from a fresh sheet.
    async fn attempt(&self, at: SequenceId) -> Result<JobOutcome, WorkflowError> {
        let result = self.attempt_with(at).await;
        if result.is_err() {
            *self.slot() = None;
        }
        result
    }

    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Spreadsheet>> {
        self.sheet.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn attempt_with(&self, at: SequenceId) -> Result<JobOutcome, WorkflowError> {
        let (metadata, newest) = match scan::entry(&*self.log, at).await? {
            Found::Entry(metadata, newest) => (metadata, newest),
            Found::Truncated => return Ok(JobOutcome::Superseded),
            Found::Beyond { end } => return Err(WorkflowError::NoEntry { at, end }),
        };
        if !scan::is_pending(&metadata) {
            return Ok(match metadata.snapshot {
                Some(_) => JobOutcome::AlreadyDone,
                None => JobOutcome::NotPending,
            });
        }
        if newest
            .as_ref()
            .is_some_and(|newest| newest.sequence_id > at)
        {
            return self.supersede(at).await;
        }
        let mut open = self.slot().clone();
        if let Some(sheet) = &open
            && !sheet.sync_within(LOADED_CELLS).await?
        {
            // More cells since its snapshot than a loaded sheet keeps (an
            // import's): written streaming, as with no sheet loaded.
            *self.slot() = None;
            open = None;
        }
        let (value, base, short) = match open {
            Some(sheet) => {
                let content = sheet.content();
                let base = content.snapshot().map(|b| b.sequence_id);
                // Reading the entries since the base costs about as much as
                // checking the blobs the snapshot shares when there are
                // this many.
                let short = content.end() - base.unwrap_or(0) <= SHORT_CHECK;
                match sheet.write_snapshot(at).await {
                    Ok(value) => (value, base, short),
                    Err(WriteSnapshotError::OutOfRange { start, .. }) if start > at => {
                        return self.supersede(at).await;
                    }
                    Err(err) => return Err(err.into()),
                }
            }
            None => {
                // No sheet loaded (the first job, after a failure, or one
                // too big to take in): the snapshot is written streaming
                // from the log, holding the tiles of a few rows, never
                // every cell since the newest snapshot (an import's
                // millions). The writer reads the newest snapshot again
                // (one may have been published since the scan), so what it
                // shares is checked before and after publishing, as for a
                // long job.
                let (base, short) = (newest.as_ref().map(|n| n.sequence_id), false);
                let written =
                    write_snapshot_from_log(&*self.log, self.dir.clone(), self.options.sheet, at)
                        .await;
                match written {
                    Ok(value) => (value, base, short),
                    Err(RebuildError::Write(WriteSnapshotError::OutOfRange { start, .. }))
                        if start > at =>
                    {
                        return self.supersede(at).await;
                    }
                    Err(err) => return Err(err.into()),
                }
            }
        };
        // The base is whole and nothing can remove what it shares while it
        // is the newest snapshot, if this worker checked it when it
        // published it and nothing was published (or withdrawn) since.
        let trusted = short && (base.is_none() || base == *self.verified());
        if (!trusted || self.others_since(base, at).await?)
            && let Some(missing) = cleanup::dangling_dependency(&self.dir, &value.blob_id).await?
        {
            return Err(WorkflowError::Dangling {
                snapshot: value.blob_id,
                missing,
            });
        }
        let publish = MetadataUpdate::publish_snapshot(value.blob_id.clone());
        match self.log.set_metadata(at, publish).await {
            Ok(()) => {}
            // Truncated meanwhile, which history does only past a newer
            // snapshot.
            Err(SetMetadataError::Range(range)) if at < range.start => {
                return Ok(JobOutcome::Superseded);
            }
            Err(source) => return Err(WorkflowError::Metadata { seq: at, source }),
        }
        // Only a cleanup that saw a snapshot newer than the base can have
        // marked what this one shares after the first check (see
        // `cleanup`); without one, the check need not be repeated.
        if (!short || self.others_since(base, at).await?)
            && let Some(missing) = cleanup::dangling_dependency(&self.dir, &value.blob_id).await?
        {
            // A cleanup removed what the snapshot shares after this worker's
            // first check: withdraw it and write it again.
            let withdraw = MetadataUpdate {
                snapshot: FieldUpdate::Clear,
                history: FieldUpdate::Keep,
                pending: FieldUpdate::Set(SNAPSHOT_WORKFLOW.to_owned()),
            };
            self.log
                .set_metadata(at, withdraw)
                .await
                .map_err(WorkflowError::metadata(at))?;
            return Err(WorkflowError::Dangling {
                snapshot: value.blob_id,
                missing,
            });
        }
        *self.verified() = Some(at);
        if self.slot().is_none()
            && let Ok(bounds) = self.log.bounds().await
            && bounds.end.saturating_sub(at) <= REOPEN_ENTRIES
        {
            // Loaded from the snapshot just published: its index and the
            // few entries after it, none of the cells before. (With more
            // after it, an import still landing, the next job streams too.)
            let mut options = self.options.sheet;
            options.polling_interval = None;
            if let Ok(opened) = Spreadsheet::open(self.log.clone(), self.dir.clone(), options).await
            {
                *self.slot() = Some(opened);
            }
        }
        Ok(JobOutcome::Published(value))
    }

    fn verified(&self) -> std::sync::MutexGuard<'_, Option<SequenceId>> {
        self.verified.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether any entry after `base` (the snapshot the new one on `at` was
    /// built on) other than `at` names a snapshot or waits for one (a
    /// snapshot withdrawn again waits for one). Without such an entry, no
    /// cleanup can have been deciding to remove what the new snapshot
    /// shares: every cleanup keeps the newest snapshot and what it shares,
    /// and the newest was `base` (see `cleanup`), so the check after
    /// publishing can be left out. Reads the entries since `base`: about
    /// one snapshot interval.
    async fn others_since(
        &self,
        base: Option<SequenceId>,
        at: SequenceId,
    ) -> Result<bool, WorkflowError> {
        let from = base.map_or(0, |b| b + 1).min(at);
        match self
            .log
            .query_all(
                QueryStart::Id(from),
                QueryEnd::End,
                KnownSnapshot::NotTracked,
            )
            .await
        {
            Ok(page) => Ok((page.start..).zip(&page.entries).any(|(seq, entry)| {
                seq != at && (entry.metadata.snapshot.is_some() || entry.metadata.pending.is_some())
            })),
            // Truncated past the base: a newer snapshot allowed that.
            Err(QueryError::Range(_)) => Ok(true),
            Err(err) => Err(err.into()),
        }
    }

    /// Clears the pending marker of a job a newer snapshot covers.
    async fn supersede(&self, at: SequenceId) -> Result<JobOutcome, WorkflowError> {
        let clear = MetadataUpdate {
            pending: FieldUpdate::Clear,
            ..MetadataUpdate::default()
        };
        match self.log.set_metadata(at, clear).await {
            Ok(()) => Ok(JobOutcome::Superseded),
            Err(SetMetadataError::Range(range)) if at < range.start => Ok(JobOutcome::Superseded),
            Err(source) => Err(WorkflowError::Metadata { seq: at, source }),
        }
    }

    async fn maintain(&self) -> Result<MaintenanceReport, WorkflowError> {
        let mut report = MaintenanceReport::default();
        if let Some(segments) = self.options.history_segments {
            report.truncated_to =
                history::archive(&*self.log, &self.dir, segments, self.options.sheet.identity)
                    .await?;
        }
        if let Some(keep) = self.options.snapshots_kept() {
            let from = self.cleaned_to.load(Ordering::SeqCst);
            let cleaned = cleanup::cleanup(
                &*self.log,
                &self.dir,
                keep,
                from,
                self.options.sheet.identity,
            )
            .await?;
            self.cleaned_to
                .fetch_max(cleaned.scanned_to, Ordering::SeqCst);
            report.cleanup = Some(cleaned);
        }
        self.maintained.store(true, Ordering::SeqCst);
        Ok(report)
    }
}
