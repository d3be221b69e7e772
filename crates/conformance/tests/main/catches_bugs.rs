//! The suite itself under test: backends with one deliberate bug each must
//! fail the cases written to catch that bug. A case that passes a broken
//! backend cannot fail, and is a defect of the suite.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use async_trait::async_trait;
use bytes::Bytes;
use infinisheet_blob_store::{
    BlobCapabilities, BlobDir, BlobName, BlobStore, Continuation, DirError, ListError, ListPage,
    ReadBlobError, RemoveBlobError, StorageError, WriteBlobError,
};
use infinisheet_conformance::{blob_store, event_log};
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, Bounds, EventLog, KnownSnapshot, LogCapabilities,
    LogEntry, MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue, SequenceId,
    SetMetadataError, TruncateError,
};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use std::future::Future;
use std::sync::Arc;

/// Which bug a [`BuggyLog`] has.
#[derive(Clone, Copy, Debug, PartialEq)]
enum LogBug {
    /// A conflict reports one past the real end.
    ConflictOffByOne,
    /// `set_metadata` clears the fields it was told to keep.
    MetadataClobbers,
    /// Replies never name a newer snapshot.
    ForgetsSnapshots,
    /// `add_entry` checks the end, yields, then appends: racing writers can
    /// both win.
    CheckThenAct,
    /// Batches append their first entry even on conflict.
    PartialBatch,
    /// Queries drop the last entry of every page.
    DropsLastEntry,
    /// Tokens are dropped: a retry after a lost reply is a conflict.
    IgnoresTokens,
    /// Any append with a token that meets a conflict is taken as landed.
    TrustsAnyToken,
    /// A retried append that meets a conflict is appended again at the
    /// end (what a client does that retries blindly): a double winner.
    AppendsRetriesAgain,
    /// `bounds` reports the start of the log before its last truncate.
    StaleBounds,
    /// A query from an id the log was truncated past answers from the
    /// log's start instead of failing: a tail there would skip entries.
    ClampsTruncatedQueries,
}

#[derive(Debug)]
struct BuggyLog {
    inner: MemoryEventLog,
    bug: LogBug,
}

impl BuggyLog {
    fn new(bug: LogBug) -> Self {
        BuggyLog {
            inner: MemoryEventLog::with_page_size(4),
            bug,
        }
    }
}

/// The log's end, read from the conflict an impossible append reports.
async fn current_end(log: &MemoryEventLog) -> SequenceId {
    match log
        .add_entries(Vec::new(), u64::MAX, KnownSnapshot::NotTracked)
        .await
    {
        Err(AddEntryError::Conflict { next, .. }) => next,
        other => panic!("probing the end: {other:?}"),
    }
}

#[async_trait]
impl EventLog for BuggyLog {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        if self.bug == LogBug::CheckThenAct {
            let end = current_end(&self.inner).await;
            if seq != end {
                return Err(AddEntryError::Conflict {
                    attempted: seq,
                    next: end,
                });
            }
            tokio::task::yield_now().await;
            // The end may have moved; this writer "wins" anyway.
            let end = current_end(&self.inner).await;
            return self.inner.append_at(entries, end, known, token).await;
        }
        let first = entries.first().cloned();
        let kept = token.filter(|_| {
            !matches!(
                self.bug,
                LogBug::IgnoresTokens | LogBug::AppendsRetriesAgain
            )
        });
        let again = entries.clone();
        let result = self.inner.append_at(entries, seq, known, kept).await;
        match (self.bug, result, first) {
            (LogBug::ConflictOffByOne, Err(AddEntryError::Conflict { attempted, next }), _) => {
                Err(AddEntryError::Conflict {
                    attempted,
                    next: next + 1,
                })
            }
            (LogBug::ForgetsSnapshots, Ok(_), _) => Ok(AddEntryValue::default()),
            (LogBug::TrustsAnyToken, Err(AddEntryError::Conflict { .. }), _) if token.is_some() => {
                Ok(AddEntryValue::default())
            }
            (LogBug::AppendsRetriesAgain, Err(AddEntryError::Conflict { next, .. }), _)
                if token.is_some() =>
            {
                self.inner.add_entries(again, next, known).await
            }
            (
                LogBug::PartialBatch,
                Err(AddEntryError::Conflict { attempted, next }),
                Some(first),
            ) => {
                self.inner.add_entry(first, next, known).await?;
                Err(AddEntryError::Conflict { attempted, next })
            }
            (_, result, _) => result,
        }
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        let start = match (self.bug, start) {
            (LogBug::ClampsTruncatedQueries, QueryStart::Id(id)) => {
                QueryStart::Id(id.max(self.inner.bounds().await?.start))
            }
            (_, start) => start,
        };
        let mut value = self.inner.query(start, end, known).await?;
        match self.bug {
            LogBug::ForgetsSnapshots => value.last_snapshot = None,
            LogBug::DropsLastEntry if value.entries.len() > 1 => {
                value.entries.pop();
            }
            _ => {}
        }
        Ok(value)
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        mut update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        if self.bug == LogBug::MetadataClobbers {
            use infinisheet_event_log::FieldUpdate::{Clear, Keep};
            for field in [
                &mut update.snapshot,
                &mut update.history,
                &mut update.pending,
            ] {
                if *field == Keep {
                    *field = Clear;
                }
            }
        }
        self.inner.set_metadata(seq, update).await
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        let bounds = self.inner.bounds().await?;
        if self.bug == LogBug::StaleBounds {
            return Ok(Bounds::new(0, bounds.end));
        }
        Ok(bounds)
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        self.inner.truncate(start).await
    }

    fn capabilities(&self) -> LogCapabilities {
        self.inner.capabilities()
    }
}

/// Which bug a [`BuggyStore`] has.
#[derive(Clone, Copy, Debug, PartialEq)]
enum StoreBug {
    /// `remove_all` removes only the blobs directly in the directory.
    ShallowRemoveAll,
    /// `read_blob` of a directory says not-found instead of wrong-kind.
    DirReadsAsMissing,
    /// Listings after the first page drop their first name.
    ListingSkips,
    /// Declares pages of 2 names while its pages hold 5.
    PagesOverDeclared,
}

#[derive(Debug, Clone)]
struct BuggyStore {
    inner: MemoryBlobStore,
    bug: StoreBug,
}

#[derive(Debug)]
struct BuggyDir {
    inner: Arc<dyn BlobDir>,
    bug: StoreBug,
}

impl BlobStore for BuggyStore {
    fn root(&self) -> Arc<dyn BlobDir> {
        Arc::new(BuggyDir {
            inner: self.inner.root(),
            bug: self.bug,
        })
    }

    fn capabilities(&self) -> BlobCapabilities {
        match self.bug {
            StoreBug::PagesOverDeclared => self.inner.capabilities().with_page_size(2),
            _ => self.inner.capabilities(),
        }
    }
}

#[async_trait]
impl BlobDir for BuggyDir {
    async fn read_blob(&self, name: &BlobName) -> Result<Bytes, ReadBlobError> {
        match (self.bug, self.inner.read_blob(name).await) {
            (StoreBug::DirReadsAsMissing, Err(ReadBlobError::WrongKind { name, .. })) => {
                Err(ReadBlobError::NotFound { name })
            }
            (_, result) => result,
        }
    }

    async fn write_blob(&self, name: &BlobName, content: Bytes) -> Result<(), WriteBlobError> {
        self.inner.write_blob(name, content).await
    }

    async fn remove_blob(&self, name: &BlobName) -> Result<(), RemoveBlobError> {
        self.inner.remove_blob(name).await
    }

    async fn dir(&self, name: &BlobName) -> Result<Arc<dyn BlobDir>, DirError> {
        Ok(Arc::new(BuggyDir {
            inner: self.inner.dir(name).await?,
            bug: self.bug,
        }))
    }

    async fn list(&self, continuation: Option<&Continuation>) -> Result<ListPage, ListError> {
        let mut page = self.inner.list(continuation).await?;
        if self.bug == StoreBug::ListingSkips && continuation.is_some() && !page.entries.is_empty()
        {
            page.entries.remove(0);
        }
        Ok(page)
    }

    async fn remove_all(&self) -> Result<(), StorageError> {
        if self.bug != StoreBug::ShallowRemoveAll {
            return self.inner.remove_all().await;
        }
        let mut token = None;
        loop {
            let page = self
                .inner
                .list(token.as_ref())
                .await
                .map_err(|err| StorageError::new("buggy", "listing").with_source(err))?;
            for entry in page.entries {
                if entry.kind == infinisheet_blob_store::EntryKind::Blob {
                    self.inner
                        .remove_blob(&entry.name)
                        .await
                        .map_err(|err| StorageError::new("buggy", "removing").with_source(err))?;
                }
            }
            match page.continuation {
                Some(next) => token = Some(next),
                None => return Ok(()),
            }
        }
    }
}

/// Runs a case and reports whether it failed (panicked).
fn fails<F: Future<Output = ()> + Send + 'static>(case: F) -> bool {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async { tokio::spawn(case).await.is_err() })
}

fn log(bug: LogBug) -> Arc<dyn EventLog> {
    Arc::new(BuggyLog::new(bug))
}

fn store(bug: StoreBug) -> Arc<dyn BlobStore> {
    Arc::new(BuggyStore {
        inner: MemoryBlobStore::with_page_size(5),
        bug,
    })
}

#[test]
fn conflict_off_by_one_is_caught() {
    assert!(fails(event_log::add_entry_conflict_reports_next(log(
        LogBug::ConflictOffByOne
    ))));
    assert!(fails(event_log::racing_writers_one_winner_per_id(log(
        LogBug::ConflictOffByOne
    ))));
}

#[test]
fn clobbered_metadata_is_caught() {
    assert!(fails(event_log::set_metadata_sets_each_field_alone(log(
        LogBug::MetadataClobbers
    ))));
    assert!(fails(event_log::set_metadata_mixed_update(log(
        LogBug::MetadataClobbers
    ))));
    assert!(fails(event_log::concurrent_metadata_updates_lose_nothing(
        log(LogBug::MetadataClobbers)
    )));
}

#[test]
fn forgotten_snapshots_are_caught() {
    assert!(fails(event_log::query_reports_newer_snapshot(log(
        LogBug::ForgetsSnapshots
    ))));
    assert!(fails(event_log::add_reports_newer_snapshot(log(
        LogBug::ForgetsSnapshots
    ))));
    assert!(fails(event_log::newer_snapshot_after_truncate(log(
        LogBug::ForgetsSnapshots
    ))));
}

#[test]
fn check_then_act_race_is_caught() {
    assert!(fails(event_log::racing_writers_one_winner_per_id(log(
        LogBug::CheckThenAct
    ))));
}

#[test]
fn partial_batches_are_caught() {
    assert!(fails(event_log::batch_conflict_appends_nothing(log(
        LogBug::PartialBatch
    ))));
    assert!(fails(event_log::racing_batches_are_all_or_nothing(log(
        LogBug::PartialBatch
    ))));
}

#[test]
fn dropped_entries_are_caught() {
    assert!(fails(event_log::query_pages_cover_the_log(log(
        LogBug::DropsLastEntry
    ))));
    assert!(fails(event_log::add_entry_appends_in_order(log(
        LogBug::DropsLastEntry
    ))));
}

#[test]
fn forgotten_tokens_are_caught() {
    assert!(fails(event_log::lost_reply_then_retry_lands_once(log(
        LogBug::IgnoresTokens
    ))));
    assert!(fails(event_log::racing_retries_land_once(log(
        LogBug::IgnoresTokens
    ))));
}

#[test]
fn tokens_taken_on_trust_are_caught() {
    assert!(fails(event_log::a_token_never_takes_another_writers_id(
        log(LogBug::TrustsAnyToken)
    )));
    assert!(fails(event_log::racing_retries_land_once(log(
        LogBug::TrustsAnyToken
    ))));
}

#[test]
fn retries_appended_twice_are_caught() {
    assert!(fails(event_log::lost_reply_then_retry_lands_once(log(
        LogBug::AppendsRetriesAgain
    ))));
    assert!(fails(event_log::racing_retries_land_once(log(
        LogBug::AppendsRetriesAgain
    ))));
}

#[test]
fn stale_bounds_are_caught() {
    assert!(fails(event_log::query_range_error_names_the_bounds(log(
        LogBug::StaleBounds
    ))));
}

#[test]
fn tails_that_would_skip_are_caught() {
    assert!(fails(event_log::tail_truncated_past_is_fell_behind(log(
        LogBug::ClampsTruncatedQueries
    ))));
    assert!(fails(event_log::truncate_then_query_below_start(log(
        LogBug::ClampsTruncatedQueries
    ))));
}

#[test]
fn the_model_test_catches_every_log_bug() {
    for bug in [
        LogBug::ConflictOffByOne,
        LogBug::MetadataClobbers,
        LogBug::ForgetsSnapshots,
        LogBug::PartialBatch,
        LogBug::DropsLastEntry,
        LogBug::StaleBounds,
    ] {
        let caught = std::panic::catch_unwind(|| {
            event_log::event_log_matches_reference(move || async move { BuggyLog::new(bug) });
        });
        assert!(
            caught.is_err(),
            "the model test passed a log with bug {bug:?}"
        );
    }
}

#[test]
fn shallow_remove_all_is_caught() {
    assert!(fails(blob_store::remove_all_is_recursive(store(
        StoreBug::ShallowRemoveAll
    ))));
}

#[test]
fn wrong_kind_as_not_found_is_caught() {
    assert!(fails(blob_store::read_dir_is_wrong_kind(store(
        StoreBug::DirReadsAsMissing
    ))));
}

#[test]
fn skipping_listings_are_caught() {
    assert!(fails(blob_store::list_pages_cover_every_name(store(
        StoreBug::ListingSkips
    ))));
    assert!(fails(blob_store::list_ten_full_pages(store(
        StoreBug::ListingSkips
    ))));
}

#[test]
fn pages_larger_than_declared_are_caught() {
    assert!(fails(blob_store::list_ten_full_pages(store(
        StoreBug::PagesOverDeclared
    ))));
    assert!(fails(blob_store::list_pages_cover_every_name(store(
        StoreBug::PagesOverDeclared
    ))));
}

#[test]
fn the_model_test_catches_every_store_bug() {
    for bug in [
        StoreBug::ShallowRemoveAll,
        StoreBug::DirReadsAsMissing,
        StoreBug::ListingSkips,
    ] {
        let caught = std::panic::catch_unwind(|| {
            blob_store::blob_store_matches_reference(move || async move {
                BuggyStore {
                    inner: MemoryBlobStore::with_page_size(2),
                    bug,
                }
            });
        });
        assert!(
            caught.is_err(),
            "the model test passed a store with bug {bug:?}"
        );
    }
}

/// The log store of the kind a third party writes first — each handle
/// keeps its bounds in memory and trusts them — passes the single-handle
/// cases but not the second-handle ones: on its handles a catalog loses
/// edits, so the suite must not pass it.
#[test]
fn handles_that_trust_their_own_bounds_are_caught() {
    use infinisheet_event_log::LogStore;
    use infinisheet_test_kit::StaleBoundsLogs;
    async fn handles() -> (Arc<dyn EventLog>, Arc<dyn EventLog>) {
        let logs = StaleBoundsLogs::default();
        let first = logs.log("x", true).await.unwrap();
        let second = logs.log("x", false).await.unwrap();
        (first, second)
    }
    assert!(!fails(async {
        let (log, _) = handles().await;
        event_log::add_entry_appends_in_order(log).await;
    }));
    assert!(!fails(async {
        let (log, _) = handles().await;
        event_log::query_pages_cover_the_log(log).await;
    }));
    assert!(fails(async {
        let (first, second) = handles().await;
        event_log::second_handle_sees_appends(first, second).await;
    }));
    assert!(fails(async {
        let (first, second) = handles().await;
        event_log::stale_handle_append_is_a_conflict(first, second).await;
    }));
    assert!(fails(async {
        let (first, second) = handles().await;
        event_log::racing_through_two_handles_one_winner_per_id(first, second).await;
    }));
    assert!(fails(async {
        let (first, second) = handles().await;
        event_log::token_retried_through_second_handle_lands_once(first, second).await;
    }));
    assert!(fails(async {
        let (first, second) = handles().await;
        event_log::stale_handle_below_the_start_is_a_range_error(first, second).await;
    }));
    assert!(fails(async {
        let (first, second) = handles().await;
        event_log::second_handle_hears_of_each_snapshot(first, second).await;
    }));
    assert!(fails(async {
        let (first, second) = handles().await;
        event_log::old_tokens_are_honoured_through_a_second_handle(first, second).await;
    }));
    assert!(fails(async {
        let (first, second) = handles().await;
        event_log::metadata_through_two_handles_loses_nothing(first, second).await;
    }));
}
