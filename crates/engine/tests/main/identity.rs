//! A sheet's identity: written into its log by `create`, carried by the
//! names of its snapshots, checked on every open. A log that belongs to
//! another sheet (or to none) is refused naming both, and two sheets
//! writing snapshots into one directory never overwrite each other's.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::{BlobDir, BlobStore};
use infinisheet_engine::{
    Cell, CellState, CellValue, CreateError, LoadError, SheetEntry, SheetId, SheetOptions,
    Spreadsheet, parse_snapshot_id,
};
use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd, QueryStart,
};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use std::sync::Arc;

fn text(t: &str) -> Cell {
    Cell::new(CellValue::Text(t.to_owned()))
}

fn options(identity: SheetId) -> SheetOptions {
    SheetOptions::default()
        .snapshot_interval(10)
        .identity(identity)
}

/// Fills column 0 with `label`s, writes the snapshot at 10 and publishes
/// it; returns its blob id.
async fn fill_and_snapshot(sheet: &Spreadsheet, log: &Arc<dyn EventLog>, label: &str) -> String {
    for row in 0..12 {
        sheet
            .set_cell(row, 0, text(&format!("{label}{row}")))
            .await
            .unwrap();
    }
    let value = sheet.write_snapshot(10).await.unwrap();
    log.set_metadata(10, MetadataUpdate::publish_snapshot(value.blob_id.clone()))
        .await
        .unwrap();
    value.blob_id
}

fn wrong_sheet(err: LoadError) -> (SheetId, Option<SheetId>, String) {
    match err {
        LoadError::WrongSheet {
            expected,
            carried,
            found,
        } => (expected, carried, found),
        other => panic!("expected WrongSheet, got {other}"),
    }
}

#[tokio::test]
async fn create_writes_the_identity_first_and_snapshots_carry_it() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let dir = MemoryBlobStore::new().root();
    let id = SheetId::random();
    let sheet = Spreadsheet::create(log.clone(), dir.clone(), options(id))
        .await
        .unwrap();
    assert_eq!(sheet.options().identity, Some(id));
    assert_eq!(sheet.content().end(), 1);
    let first = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_eq!(
        SheetEntry::decode(&first.entries[0].payload).unwrap(),
        SheetEntry::identity(id)
    );
    let blob_id = fill_and_snapshot(&sheet, &log, "a").await;
    assert_eq!(parse_snapshot_id(&blob_id), Some((10, Some(id))));

    // Reopened, with and without the identity, it reads the same cells;
    // the identity entry is no cell.
    for opts in [options(id), SheetOptions::default()] {
        let again = Spreadsheet::open(log.clone(), dir.clone(), opts)
            .await
            .unwrap();
        let content = again.content();
        assert_eq!(content.end(), 13);
        assert_eq!(content.snapshot().unwrap().blob_id, blob_id);
        assert_eq!(content.row_count(), 12);
        assert_eq!(content.cell(11, 0), CellState::Set(text("a11")));
    }
    let fresh = Spreadsheet::open(log.clone(), dir.clone(), SheetOptions::default())
        .await
        .unwrap();
    fresh
        .set_viewport(infinisheet_engine::CellRange::new(
            infinisheet_engine::CellRef::new(0, 0),
            infinisheet_engine::CellRef::new(20, 0),
        ))
        .await
        .unwrap();
    assert_eq!(fresh.content().cell(0, 0), CellState::Set(text("a0")));
    assert_eq!(fresh.content().cell(12, 0), CellState::Blank);
}

#[tokio::test]
async fn another_sheets_log_is_refused_naming_both() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let dir = MemoryBlobStore::new().root();
    let mine = SheetId::random();
    let other = SheetId::random();
    let sheet = Spreadsheet::create(log.clone(), dir.clone(), options(other))
        .await
        .unwrap();
    sheet.set_cell(0, 0, text("x")).await.unwrap();

    // From the first entry.
    let err = Spreadsheet::open(log.clone(), dir.clone(), options(mine))
        .await
        .unwrap_err();
    let message = err.to_string();
    let (expected, carried, _) = wrong_sheet(err);
    assert_eq!((expected, carried), (mine, Some(other)));
    assert!(message.contains(&mine.to_string()) && message.contains(&other.to_string()));

    // From a snapshot, once the log no longer starts at 0.
    fill_and_snapshot(&sheet, &log, "b").await;
    log.truncate(10).await.unwrap();
    let err = Spreadsheet::open(log.clone(), dir.clone(), options(mine))
        .await
        .unwrap_err();
    let (expected, carried, found) = wrong_sheet(err);
    assert_eq!((expected, carried), (mine, Some(other)));
    assert!(found.contains("snapshot"), "{found}");
    // Its own sheet still opens from there.
    Spreadsheet::open(log.clone(), dir.clone(), options(other))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_empty_log_or_one_without_identity_is_no_sheets() {
    let dir = MemoryBlobStore::new().root();
    let id = SheetId::random();
    let empty: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let (_, carried, found) = wrong_sheet(
        Spreadsheet::open(empty, dir.clone(), options(id))
            .await
            .unwrap_err(),
    );
    assert_eq!(carried, None);
    assert!(found.contains("empty"), "{found}");

    let plain: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let unnamed = Spreadsheet::open(plain.clone(), dir.clone(), SheetOptions::default())
        .await
        .unwrap();
    unnamed.set_cell(0, 0, text("x")).await.unwrap();
    let (_, carried, _) = wrong_sheet(
        Spreadsheet::open(plain.clone(), dir.clone(), options(id))
            .await
            .unwrap_err(),
    );
    assert_eq!(carried, None);
    // A sheet is created on an empty log only.
    match Spreadsheet::create(plain, dir, options(id)).await {
        Err(CreateError::NotEmpty { end: 1 }) => {}
        other => panic!("expected NotEmpty, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn an_identity_past_the_first_entry_is_refused() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let dir = MemoryBlobStore::new().root();
    let id = SheetId::random();
    Spreadsheet::create(log.clone(), dir.clone(), options(id))
        .await
        .unwrap();
    log.add_entry(
        LogEntry::new(SheetEntry::identity(id).encode()),
        1,
        KnownSnapshot::NotTracked,
    )
    .await
    .unwrap();
    match Spreadsheet::open(log, dir, options(id)).await {
        Err(LoadError::Entry { seq: 1, .. }) => {}
        other => panic!("expected an entry error, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test]
async fn two_sheets_snapshotting_into_one_directory_never_overwrite() {
    let dir: Arc<dyn BlobDir> = MemoryBlobStore::new().root();
    let (a, b) = (SheetId::random(), SheetId::random());
    let log_a: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let log_b: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let sheet_a = Spreadsheet::create(log_a.clone(), dir.clone(), options(a))
        .await
        .unwrap();
    let sheet_b = Spreadsheet::create(log_b.clone(), dir.clone(), options(b))
        .await
        .unwrap();
    let id_a = fill_and_snapshot(&sheet_a, &log_a, "real").await;
    let id_b = fill_and_snapshot(&sheet_b, &log_b, "FAKE").await;
    assert_ne!(id_a, id_b);
    let reopened = Spreadsheet::open(log_a, dir, options(a)).await.unwrap();
    reopened
        .set_viewport(infinisheet_engine::CellRange::new(
            infinisheet_engine::CellRef::new(0, 0),
            infinisheet_engine::CellRef::new(9, 0),
        ))
        .await
        .unwrap();
    for row in 0..9 {
        assert_eq!(
            reopened.content().cell(row, 0),
            CellState::Set(text(&format!("real{row}"))),
            "row {row}"
        );
    }
}
