//! The workflow on the memory backends: the host and the polling worker,
//! idempotent and superseded jobs, restarting pending jobs, the checks
//! around publishing, and retention that keeps shared tiles.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::{
    ask_for_snapshot, assert_reader_sees, assert_snapshots_whole, expected, fill, memory,
    snapshot_dir, within,
};
use futures::future::BoxFuture;
use infinisheet_blob_store::{BlobDir, BlobDirExt, EntryKind, StorageError};
use infinisheet_engine::{CellRef, SNAPSHOTS_DIR, SheetOptions, Spreadsheet, snapshot_id};
use infinisheet_event_log::{EventLog, EventLogExt, KnownSnapshot, QueryEnd, QueryStart};
use infinisheet_layers::{Call, Hook, Layered, Op};
use infinisheet_snapshot_workflow::{
    JobOutcome, REMOVING_MARKER, RetryPolicy, SnapshotWorker, WorkflowError, WorkflowHost,
    WorkflowOptions,
};
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

fn every(interval: u64) -> SheetOptions {
    SheetOptions::default().snapshot_interval(interval)
}

async fn sheet(
    log: &Arc<dyn EventLog>,
    dir: &Arc<dyn BlobDir>,
    options: SheetOptions,
) -> Spreadsheet {
    Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap()
}

/// The snapshot directories in the sheet's `snapshots/`.
async fn snapshot_dirs(dir: &Arc<dyn BlobDir>) -> BTreeSet<String> {
    let snapshots = dir.open_dir(SNAPSHOTS_DIR).await.unwrap();
    snapshots
        .list_all()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == EntryKind::Dir)
        .map(|e| e.name.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_publishes_the_snapshots_its_writers_ask_for() {
    let (log, dir) = memory();
    let host = WorkflowHost::start(log.clone(), dir.clone(), WorkflowOptions::default());
    let writer = sheet(&host.log(), &dir, every(10)).await;
    fill(&writer, 20, 7, 0).await;
    within("the host", host.idle()).await;
    assert_eq!(host.failures(), 0);
    let (snapshots, pending) = assert_snapshots_whole(&log, &dir).await;
    assert!(snapshots >= 1);
    assert_eq!(pending, 0, "every job is done or superseded");
    let from = assert_reader_sees(&log, &dir, &expected(20, 7, 0)).await;
    assert_eq!(from, Some(130), "the reader opens from the newest snapshot");
    // The writer learned of the snapshots through its own appends.
    writer.set_cell(0, 0, common::value(0, 0, 0)).await.unwrap();
    assert!(writer.content().snapshot().is_some());
    host.shutdown().await;
}

#[tokio::test]
async fn a_polling_worker_finds_jobs_nobody_announced_newest_first() {
    let (log, dir) = memory();
    let writer = sheet(&log, &dir, every(10)).await;
    fill(&writer, 11, 5, 0).await; // entries 0..55: jobs at 10, 20, 30, 40, 50
    let worker = SnapshotWorker::new(log.clone(), dir.clone(), WorkflowOptions::default());
    assert_eq!(worker.pending().await.unwrap(), [10, 20, 30, 40, 50]);
    let report = worker.poll_once().await.unwrap();
    assert_eq!(report.found, 5);
    assert!(report.failed.is_empty());
    let published: Vec<u64> = report.published.iter().map(|s| s.sequence_id).collect();
    assert_eq!(published, [50], "the newest supersedes the rest");
    assert_eq!(assert_snapshots_whole(&log, &dir).await, (1, 0));
    assert_eq!(worker.pending().await.unwrap(), Vec::<u64>::new());
    assert_eq!(
        assert_reader_sees(&log, &dir, &expected(11, 5, 0)).await,
        Some(50)
    );
    assert_eq!(worker.poll_once().await.unwrap().found, 0);
}

#[tokio::test]
async fn jobs_are_idempotent_and_say_what_they_did() {
    let (log, dir) = memory();
    let writer = sheet(&log, &dir, every(10)).await;
    fill(&writer, 5, 5, 0).await; // 25 entries, jobs at 10 and 20
    let worker = SnapshotWorker::new(log.clone(), dir.clone(), WorkflowOptions::default());
    let JobOutcome::Published(first) = worker.run_job(10).await.unwrap() else {
        panic!("the job at 10 did not publish");
    };
    assert_eq!(first.sequence_id, 10);
    assert_eq!(worker.run_job(10).await.unwrap(), JobOutcome::AlreadyDone);
    assert_eq!(worker.run_job(3).await.unwrap(), JobOutcome::NotPending);
    let past = worker.run_job(99).await.unwrap_err();
    assert!(
        matches!(past, WorkflowError::NoEntry { at: 99, end: 25 }),
        "{past}"
    );
    assert!(!past.is_retryable());
    // Another worker with its own engine does the same job again: the
    // same cells, still one whole snapshot.
    let other = SnapshotWorker::new(log.clone(), dir.clone(), WorkflowOptions::default());
    assert!(matches!(
        other.run_job(20).await.unwrap(),
        JobOutcome::Published(_)
    ));
    ask_for_snapshot(&log, 20).await;
    assert!(matches!(
        worker.run_job(20).await.unwrap(),
        JobOutcome::Published(_)
    ));
    assert_eq!(assert_snapshots_whole(&log, &dir).await, (2, 0));
    assert_reader_sees(&log, &dir, &expected(5, 5, 0)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_on_one_job_leave_one_whole_snapshot() {
    for round in 0..20 {
        let (log, dir) = memory();
        let writer = sheet(&log, &dir, every(100).tile_size(10, 10)).await;
        fill(&writer, 30, 30, round).await; // 900 entries; jobs at 100..800
        let a = SnapshotWorker::new(log.clone(), dir.clone(), WorkflowOptions::default());
        let b = SnapshotWorker::new(log.clone(), dir.clone(), WorkflowOptions::default());
        let (x, y) = tokio::join!(a.run_job(800), b.run_job(800));
        let (x, y) = (x.unwrap(), y.unwrap());
        assert!(
            matches!(x, JobOutcome::Published(_)) || matches!(y, JobOutcome::Published(_)),
            "{x:?} {y:?}"
        );
        for outcome in [x, y] {
            assert!(
                matches!(outcome, JobOutcome::Published(_) | JobOutcome::AlreadyDone),
                "{outcome:?}"
            );
        }
        let (snapshots, _) = assert_snapshots_whole(&log, &dir).await;
        assert_eq!(snapshots, 1);
        assert_eq!(
            assert_reader_sees(&log, &dir, &expected(30, 30, round)).await,
            Some(800)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_restarts_the_jobs_left_pending() {
    let (log, dir) = memory();
    let writer = sheet(&log, &dir, every(10)).await;
    fill(&writer, 7, 5, 0).await; // jobs at 10, 20, 30 with nobody to run them
    let host = WorkflowHost::start(log.clone(), dir.clone(), WorkflowOptions::default());
    within("the startup pass", host.idle()).await;
    assert_eq!(assert_snapshots_whole(&log, &dir).await, (1, 0));
    host.shutdown().await;

    let quiet = WorkflowOptions::default()
        .restart_pending_on_load(false)
        .poll_interval(None);
    let writer = sheet(&log, &dir, every(10)).await;
    fill(&writer, 4, 5, 1).await; // entries 35..55: jobs at 40, 50
    let host = WorkflowHost::start(log.clone(), dir.clone(), quiet);
    within("nothing", host.idle()).await;
    assert_eq!(host.worker().pending().await.unwrap(), [40, 50]);
    host.shutdown().await;
}

/// A sheet with 10x10 tiles and snapshots asked for every 10 entries:
/// entries 0..10 fill tile (0,0), entries 10..21 go to tile (1,0). Snapshot
/// 10 is published by a worker of its own (so no other worker vouches for
/// it); entry 20 waits for its snapshot, which shares tile (0,0) with 10.
/// Returns the writer and workflow options with quick retries.
async fn sharing_a_tile(
    log: &Arc<dyn EventLog>,
    dir: &Arc<dyn BlobDir>,
) -> (Spreadsheet, WorkflowOptions) {
    let options = every(10).tile_size(10, 10);
    let writer = sheet(log, dir, options).await;
    fill(&writer, 1, 10, 0).await;
    let cell = |row, column| (CellRef::new(row, column), common::value(row, column, 0));
    writer.set_cells(vec![cell(10, 0)]).await.unwrap();
    let quick = RetryPolicy::new(2, Duration::from_millis(1), Duration::from_millis(1));
    let workflow = WorkflowOptions::default().sheet(options).retry(quick);
    SnapshotWorker::new(log.clone(), dir.clone(), workflow)
        .run_job(10)
        .await
        .unwrap();
    for column in 1..10 {
        writer.set_cells(vec![cell(10, column)]).await.unwrap();
    }
    writer.set_cells(vec![cell(11, 0)]).await.unwrap();
    (writer, workflow)
}

#[tokio::test]
async fn a_marker_of_a_cleanup_in_progress_stops_publishing() {
    let (log, dir) = memory();
    let (_writer, workflow) = sharing_a_tile(&log, &dir).await;
    let worker = SnapshotWorker::new(log.clone(), dir.clone(), workflow);
    // Snapshot 20 shares tile (0,0) with snapshot 10; a cleanup is about to
    // remove snapshot 10 (as one that saw a newer snapshot, since
    // withdrawn, would).
    let old = snapshot_dir(&dir, 10).await;
    old.write(REMOVING_MARKER, bytes::Bytes::new())
        .await
        .unwrap();
    let err = worker.run_job(20).await.unwrap_err();
    assert!(matches!(err, WorkflowError::Dangling { .. }), "{err}");
    assert_eq!(worker.pending().await.unwrap(), [20], "still pending");
    old.remove(REMOVING_MARKER).await.unwrap();
    assert!(matches!(
        worker.run_job(20).await.unwrap(),
        JobOutcome::Published(_)
    ));
    assert_eq!(assert_snapshots_whole(&log, &dir).await, (2, 0));
}

/// Pauses once, after the call of `op` on entry `seq` completed, until
/// resumed.
#[derive(Clone, Debug)]
struct PauseAfter {
    op: Op,
    seq: u64,
    armed: Arc<AtomicBool>,
    reached: Arc<Notify>,
    resume: Arc<Notify>,
}

impl Hook for PauseAfter {
    fn around<'a, T, E>(
        &'a self,
        call: Call<'a>,
        inner: BoxFuture<'a, Result<T, E>>,
    ) -> BoxFuture<'a, Result<T, E>>
    where
        T: Send + 'a,
        E: From<StorageError> + fmt::Display + Send + 'a,
    {
        Box::pin(async move {
            let out = inner.await;
            if call.op == self.op
                && call.seq == Some(self.seq)
                && self.armed.swap(false, Ordering::SeqCst)
            {
                self.reached.notify_one();
                self.resume.notified().await;
            }
            out
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_whose_shared_tiles_went_while_publishing_is_withdrawn() {
    let (log, dir) = memory();
    let (writer, workflow) = sharing_a_tile(&log, &dir).await;

    let pause = PauseAfter {
        op: Op::SetMetadata,
        seq: 20,
        armed: Arc::new(AtomicBool::new(true)),
        reached: Arc::new(Notify::new()),
        resume: Arc::new(Notify::new()),
    };
    let paused: Arc<dyn EventLog> = Arc::new(Layered::new(pause.clone(), log.clone()));
    let worker = SnapshotWorker::new(paused, dir.clone(), workflow);
    let job = tokio::spawn({
        let worker = worker.clone();
        async move { worker.run_job(20).await }
    });
    within("the publish", pause.reached.notified()).await;
    // Snapshot 20 is published and shares tile (0,0) with snapshot 10. Now
    // tile (0,0) changes, another worker publishes snapshot 30 (which
    // rewrites it), and a cleanup keeping one snapshot removes 10 and 20
    // (30 needs neither) before the first worker looks again.
    writer.set_cell(0, 0, common::value(0, 0, 1)).await.unwrap();
    for column in 1..10 {
        writer
            .set_cell(11, column, common::value(11, column, 0))
            .await
            .unwrap();
    }
    let other = SnapshotWorker::new(log.clone(), dir.clone(), workflow);
    assert!(matches!(
        other.run_job(30).await.unwrap(),
        JobOutcome::Published(_)
    ));
    let cleaner = SnapshotWorker::new(log.clone(), dir.clone(), workflow.keep_snapshots(1));
    let cleaned = cleaner.maintain().await.unwrap().cleanup.unwrap();
    assert_eq!(
        cleaned.removed,
        [snapshot_id(10, None), snapshot_id(20, None)]
    );
    pause.resume.notify_one();
    // The first worker sees its snapshot's blobs gone, withdraws it, and on
    // its retry finds it superseded by 30.
    let outcome = within("the job", job).await.unwrap().unwrap();
    assert_eq!(outcome, JobOutcome::Superseded);
    let entry = log
        .query(
            QueryStart::Id(20),
            QueryEnd::Id(21),
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap()
        .entries
        .remove(0);
    assert_eq!(entry.metadata.snapshot, None, "withdrawn");
    assert_eq!(entry.metadata.pending, None, "superseded");
    assert_eq!(assert_snapshots_whole(&log, &dir).await, (1, 0));
    let mut cells = expected(1, 10, 0);
    cells.insert((0, 0), common::value(0, 0, 1));
    for column in 0..10 {
        cells.insert((10, column), common::value(10, column, 0));
    }
    cells.insert((11, 0), common::value(11, 0, 0));
    for column in 1..10 {
        cells.insert((11, column), common::value(11, column, 0));
    }
    assert_eq!(assert_reader_sees(&log, &dir, &cells).await, Some(30));
}

#[tokio::test]
async fn cleanup_keeps_the_tiles_a_kept_snapshot_shares() {
    let (log, dir) = memory();
    let options = every(10).tile_size(10, 10);
    let writer = sheet(&log, &dir, options).await;
    let worker = SnapshotWorker::new(
        log.clone(),
        dir.clone(),
        WorkflowOptions::default().sheet(options).keep_snapshots(1),
    );
    // Entries 0..10 fill tile (0,0); every later edit lands in tile (1,0).
    fill(&writer, 1, 10, 0).await;
    let mut cells = expected(1, 10, 0);
    for (n, row) in (10..13).enumerate() {
        for column in 0..10 {
            writer
                .set_cell(row, column, common::value(row, column, 0))
                .await
                .unwrap();
            cells.insert((row, column), common::value(row, column, 0));
        }
        let report = worker.poll_once().await.unwrap();
        assert_eq!(report.published.len(), 1, "round {n}");
    }
    // Snapshots 10, 20 and 30 were published; 20 only held tile (1,0),
    // rewritten by 30; 10 holds tile (0,0), which 30 still shares.
    let dirs = snapshot_dirs(&dir).await;
    assert_eq!(
        dirs,
        BTreeSet::from([snapshot_id(10, None), snapshot_id(30, None)]),
        "what cleanup left"
    );
    assert_eq!(assert_snapshots_whole(&log, &dir).await, (1, 0));
    assert_eq!(assert_reader_sees(&log, &dir, &cells).await, Some(30));
    let snapshots: Vec<Option<String>> = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap()
        .entries
        .into_iter()
        .map(|e| e.metadata.snapshot)
        .filter(Option::is_some)
        .collect();
    assert_eq!(
        snapshots,
        [Some(snapshot_id(30, None))],
        "the log names only the kept one"
    );
}
