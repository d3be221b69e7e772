//! Edits over a log that loses replies: a fifth of the appends land and
//! then fail (the reply is lost), a tenth fail before landing. Every edit
//! still succeeds once, and the log holds each exactly once — on the
//! memory, SQLite and filesystem logs.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::BlobStore;
use infinisheet_engine::{Cell, CellValue, EditError, SheetOptions, Spreadsheet};
use infinisheet_event_log::{EventLog, EventLogExt, KnownSnapshot, QueryEnd, QueryStart};
use infinisheet_layers::{FaultPoint, Faults, Layered, Op};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use std::collections::BTreeSet;
use std::sync::Arc;

const EDITS: u32 = 200;

/// Makes `EDITS` edits through a log wrapped in faults, then checks the
/// inner log holds every edit exactly once, in order.
async fn edits_land_once(log: Arc<dyn EventLog>, seed: u64) {
    let lost = Faults::new()
        .rate(0.2, seed)
        .only([Op::Append])
        .at(FaultPoint::After);
    let failed = Faults::new().rate(0.1, seed + 1).only([Op::Append]);
    let faulty: Arc<dyn EventLog> = Arc::new(Layered::new(
        failed.clone(),
        Layered::new(lost.clone(), log.clone()),
    ));
    let store = MemoryBlobStore::new();
    let options = SheetOptions::default()
        .snapshot_interval(0)
        .storage_retries(20);
    let sheet = Spreadsheet::open(faulty, store.root(), options)
        .await
        .unwrap();
    for i in 0..EDITS {
        let cell = Cell::new(CellValue::Text(format!("edit {i}")));
        sheet
            .set_cell(i, 0, cell)
            .await
            .unwrap_or_else(|err| panic!("edit {i} (seed {seed}): {err}"));
    }
    assert!(
        lost.injected() >= u64::from(EDITS) / 10,
        "too few lost replies to test anything: {}",
        lost.injected()
    );
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_eq!(
        all.end,
        u64::from(EDITS),
        "seed {seed}: {} lost replies made {} duplicate entries",
        lost.injected(),
        all.end.saturating_sub(u64::from(EDITS))
    );
    let distinct: BTreeSet<_> = all.entries.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(distinct.len(), EDITS as usize, "each edit once");
    // A fresh reader sees every edit.
    let reader = Spreadsheet::open(log, store.root(), SheetOptions::default())
        .await
        .unwrap();
    for i in (0..EDITS).step_by(37) {
        assert_eq!(
            reader.content().cell(i, 0).cell().map(|c| c.value.clone()),
            Some(CellValue::Text(format!("edit {i}")))
        );
    }
}

#[tokio::test]
async fn edits_over_a_memory_log_that_loses_replies_land_once() {
    for seed in 1..=3 {
        edits_land_once(Arc::new(MemoryEventLog::new()), seed).await;
    }
}

#[tokio::test]
async fn edits_over_a_sqlite_log_that_loses_replies_land_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = infinisheet_sqlite::SqliteDatabase::open(
        dir.path().join("logs.db"),
        infinisheet_sqlite::SqliteOptions::default(),
    )
    .await
    .unwrap();
    edits_land_once(Arc::new(db.open_or_create_log("sheet").await.unwrap()), 7).await;
}

#[tokio::test]
async fn edits_over_a_filesystem_log_that_loses_replies_land_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = infinisheet_filesystem::FsEventLog::open(
        dir.path().join("log"),
        infinisheet_filesystem::FsLogOptions::default(),
    )
    .await
    .unwrap();
    edits_land_once(Arc::new(log), 8).await;
}

#[tokio::test]
async fn an_edit_whose_log_keeps_failing_is_a_storage_error() {
    let faults = Faults::new().rate(1.0, 0).only([Op::Append]);
    let log: Arc<dyn EventLog> = Arc::new(Layered::new(faults.clone(), MemoryEventLog::new()));
    let options = SheetOptions::default().storage_retries(3);
    let sheet = Spreadsheet::open(log, MemoryBlobStore::new().root(), options)
        .await
        .unwrap();
    let err = sheet
        .set_cell(0, 0, Cell::new(CellValue::Number(1.0)))
        .await
        .unwrap_err();
    assert!(matches!(err, EditError::Storage(_)), "{err}");
    assert_eq!(faults.injected(), 4, "the first try and three retries");
}
