//! Faults: 10% of the calls to both traits fail (half before they reach
//! the store, half after it acted, losing the reply). The writer retries
//! its edits, the host its jobs; the final state equals a fault-free
//! run's, and no snapshot the log names ever lacks a blob.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::{assert_reader_sees, assert_snapshots_whole, expected, value, within};
use infinisheet_blob_store::{BlobDir, BlobStore};
use infinisheet_engine::{SheetOptions, Spreadsheet, verify_snapshot};
use infinisheet_event_log::{EventLog, KnownSnapshot, QueryEnd, QueryStart};
use infinisheet_layers::{FaultPoint, Faults, Layered};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use infinisheet_snapshot_workflow::{RetryPolicy, WorkflowHost, WorkflowOptions, read_payloads};
use std::sync::Arc;
use std::time::Duration;

/// Checks that the newest snapshot the log names is whole.
async fn newest_is_whole(log: &Arc<dyn EventLog>, dir: &Arc<dyn BlobDir>) {
    let page = log
        .query(
            QueryStart::Snapshot,
            QueryEnd::End,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    if let Some(blob_id) = page
        .entries
        .first()
        .and_then(|e| e.metadata.snapshot.clone())
    {
        verify_snapshot(dir.clone(), &blob_id)
            .await
            .unwrap_or_else(|err| panic!("snapshot {blob_id} named on {}: {err}", page.start));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_faults_in_a_tenth_of_the_calls_the_state_equals_a_fault_free_run() {
    for seed in 1..=3u64 {
        let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
        let store = MemoryBlobStore::new();
        let dir = store.root();
        let before = Faults::new().rate(0.05, seed);
        let after = Faults::new().rate(0.05, seed + 100).at(FaultPoint::After);
        let faulty_log: Arc<dyn EventLog> = Arc::new(Layered::new(
            before.clone(),
            Layered::new(after.clone(), log.clone()),
        ));
        let faulty_dir =
            Layered::new(before.clone(), Layered::new(after.clone(), store.clone())).root();

        let sheet = SheetOptions::default()
            .snapshot_interval(50)
            .tile_size(10, 10);
        let retry = RetryPolicy::new(12, Duration::from_millis(1), Duration::from_millis(20));
        let options = WorkflowOptions::default()
            .sheet(sheet)
            .retry(retry)
            .history(2)
            .keep_snapshots(2)
            .poll_interval(Some(Duration::from_millis(20)));
        let host = WorkflowHost::start(faulty_log, faulty_dir.clone(), options);
        let writer = within("opening", async {
            loop {
                if let Ok(sheet) = Spreadsheet::open(host.log(), faulty_dir.clone(), sheet).await {
                    return sheet;
                }
            }
        })
        .await;
        let (rows, columns) = (40, 25);
        for row in 0..rows {
            for column in 0..columns {
                let mut tries = 0;
                while writer
                    .set_cell(row, column, value(row, column, 0))
                    .await
                    .is_err()
                {
                    tries += 1;
                    assert!(tries < 100, "the edit of ({row}, {column}) keeps failing");
                }
            }
            if row % 4 == 3 {
                newest_is_whole(&log, &dir).await;
            }
        }
        within("the host", host.idle()).await;
        assert!(
            before.injected() > 0 && after.injected() > 0,
            "no fault was injected"
        );
        before.disarm();
        after.disarm();
        // Jobs whose retries ran out are still pending: the next poll runs
        // them.
        let report = host.worker().poll_once().await.unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        host.worker().maintain().await.unwrap();
        host.shutdown().await;

        let (snapshots, pending) = assert_snapshots_whole(&log, &dir).await;
        assert!(snapshots >= 1, "seed {seed}");
        assert_eq!(pending, 0, "seed {seed}");
        assert_reader_sees(&log, &dir, &expected(rows, columns, 0)).await;
        // Every entry is readable; lost replies may have doubled an edit,
        // which changes no cell.
        let end = log
            .query(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
            .await
            .unwrap()
            .end;
        assert!(end >= u64::from(rows * columns));
        assert_eq!(
            read_payloads(&*log, &dir, 0, end).await.unwrap().len() as u64,
            end
        );
    }
}
