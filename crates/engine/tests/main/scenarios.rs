//! The original's engine scenarios, and the trap it fell into: loads at
//! several sizes, viewports, snapshots saved and loaded, two clients,
//! edits interleaved with syncs, delays, conflicts; plus damaged blobs and
//! entries, truncation, tile budgets and polling.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use bytes::Bytes;
use common::{cells, memory, open, publish, worker_pass};
use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_engine::{
    Cell, CellRange, CellRef, CellState, CellValue, EditError, LoadError, SheetOptions,
    SnapshotReadError, Spreadsheet, WriteSnapshotError,
};
use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd, QueryStart,
};
use infinisheet_layers::{Delay, Layered};
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use std::sync::Arc;
use std::time::Duration;

fn number(n: f64) -> Cell {
    Cell::new(CellValue::Number(n))
}

fn area(text: &str) -> CellRange {
    text.parse().unwrap()
}

/// Fills `n` cells, row by row in a 37-column band, with their index.
async fn fill(sheet: &Spreadsheet, n: u32) {
    for i in 0..n {
        sheet
            .set_cell(i / 37, i % 37, number(f64::from(i)))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn initial_load_at_several_sizes() {
    for n in [0, 1, 99, 100, 101, 250, 1_000] {
        let (log, dir) = memory();
        let options = SheetOptions::default().tile_size(10, 10);
        let writer = open(&log, &dir, options).await;
        fill(&writer, n).await;
        let published = worker_pass(&log, &dir).await;
        assert_eq!(published as u32, n.saturating_sub(1) / 100, "n = {n}");
        let reader = open(&log, &dir, options).await;
        let content = reader.content();
        assert_eq!(content.end(), u64::from(n));
        assert_eq!(content.row_count(), writer.content().row_count());
        assert_eq!(content.column_count(), writer.content().column_count());
        let want = cells(&writer, 30, 37).await;
        assert_eq!(want.len(), n as usize);
        assert_eq!(cells(&reader, 30, 37).await, want, "n = {n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_markers_every_interval() {
    let (log, dir) = memory();
    let sheet = Spreadsheet::open(
        log.clone(),
        dir,
        SheetOptions::default().snapshot_interval(10),
    )
    .await
    .unwrap();
    fill(&sheet, 25).await;
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    let marked: Vec<u64> = (0..25)
        .filter(|i| all.entries[*i as usize].metadata.pending.as_deref() == Some("snapshot"))
        .collect();
    assert_eq!(marked, vec![10, 20]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_and_load_snapshots() {
    let (log, dir) = memory();
    let options = SheetOptions::default().tile_size(4, 4).snapshot_interval(0);
    let writer = open(&log, &dir, options).await;
    for i in 0..20 {
        writer.set_cell(i, i, number(f64::from(i))).await.unwrap();
    }
    let value = writer.write_snapshot(15).await.unwrap();
    assert_eq!(value.sequence_id, 15);
    // Written but not published: a reader does not use it.
    let reader = open(&log, &dir, options).await;
    assert_eq!(reader.content().snapshot(), None);
    log.set_metadata(15, MetadataUpdate::publish_snapshot(value.blob_id.clone()))
        .await
        .unwrap();
    let reader = open(&log, &dir, options).await;
    let content = reader.content();
    assert_eq!(content.snapshot(), Some(&value));
    assert_eq!(content.segment(), (15, 5));
    assert_eq!((content.row_count(), content.column_count()), (20, 20));
    // Cells from the segment are there; cells in tiles are not loaded yet.
    assert_eq!(content.cell(17, 17), CellState::Set(number(17.0)));
    assert_eq!(content.cell(3, 3), CellState::NotLoaded);
    assert_eq!(content.cell(3, 2), CellState::NotLoaded);
    assert_eq!(content.cell(3, 9), CellState::Blank, "no tile holds it");
    reader.set_viewport(area("A1:D4")).await.unwrap();
    let content = reader.content();
    assert_eq!(content.cell(3, 3), CellState::Set(number(3.0)));
    assert_eq!(content.cell(3, 2), CellState::Blank);
    assert_eq!(content.loaded_tiles(), 1);
    assert_eq!(cells(&reader, 20, 20).await, cells(&writer, 20, 20).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_snapshot_rewrites_only_changed_tiles() {
    let (log, dir) = memory();
    let options = SheetOptions::default()
        .tile_size(10, 10)
        .snapshot_interval(0);
    let writer = open(&log, &dir, options).await;
    for i in 0..10 {
        writer
            .set_cell(i * 10, 0, number(f64::from(i)))
            .await
            .unwrap(); // 10 tiles
    }
    let first = writer.write_snapshot(10).await.unwrap();
    writer.set_cell(0, 1, number(99.0)).await.unwrap(); // entry 10: tile 0-0 only
    log.set_metadata(10, MetadataUpdate::publish_snapshot(first.blob_id.clone()))
        .await
        .unwrap();
    writer.set_cell(1, 1, number(98.0)).await.unwrap();
    let second = open(&log, &dir, options).await;
    let value = second.write_snapshot(12).await.unwrap();
    let snapshots = dir.open_dir("snapshots").await.unwrap();
    let written = snapshots
        .open_dir(&value.blob_id)
        .await
        .unwrap()
        .list_all()
        .await
        .unwrap();
    let mut names: Vec<_> = written.iter().map(|e| e.name.to_string()).collect();
    names.sort();
    assert_eq!(names, vec!["index", "t0-0"]);
    writer.set_cell(2, 2, number(1.0)).await.unwrap();
    log.set_metadata(12, MetadataUpdate::publish_snapshot(value.blob_id))
        .await
        .unwrap();
    let reader = open(&log, &dir, options).await;
    assert_eq!(reader.content().segment(), (12, 1));
    assert_eq!(cells(&reader, 100, 3).await, cells(&writer, 100, 3).await);
}

/// The trap: snapshots that hold only the cells changed since the previous
/// one lose every older cell for a fresh reader.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_many_snapshots_a_fresh_reader_sees_every_cell() {
    let (log, dir) = memory();
    let options = SheetOptions::default()
        .tile_size(4, 4)
        .snapshot_interval(10);
    let writer = open(&log, &dir, options).await;
    let mut rng = fastrand::Rng::with_seed(7);
    for round in 0..20 {
        for _ in 0..10 {
            let (row, column) = (rng.u32(0..40), rng.u32(0..12));
            writer
                .set_cell(row, column, Cell::new(CellValue::Text(format!("r{round}"))))
                .await
                .unwrap();
        }
        worker_pass(&log, &dir).await;
    }
    let reader = open(&log, &dir, options).await;
    assert_eq!(reader.content().snapshot().unwrap().sequence_id, 190);
    let want = cells(&writer, 40, 12).await;
    assert!(want.len() > 100);
    assert_eq!(cells(&reader, 40, 12).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_with_snapshots() {
    let (log, dir) = memory();
    let options = SheetOptions::default()
        .tile_size(5, 5)
        .snapshot_interval(10);
    let a = open(&log, &dir, options).await;
    let b = open(&log, &dir, options).await;
    fill(&a, 25).await;
    worker_pass(&log, &dir).await; // snapshots at 10 and 20
    b.sync().await.unwrap();
    // B learned of the snapshot at 20 along with new entries: it forked.
    assert_eq!(b.content().segment(), (20, 5));
    // A has no new entries to add: it stays on its segment (lazily).
    a.sync().await.unwrap();
    assert_eq!(a.content().segment(), (0, 25));
    // A's next edit reports the newer snapshot, and A forks then.
    a.set_cell(0, 0, number(-1.0)).await.unwrap();
    assert_eq!(a.content().segment(), (20, 6));
    b.set_cell(1, 1, number(-2.0)).await.unwrap();
    a.sync().await.unwrap();
    assert_eq!(cells(&a, 5, 37).await, cells(&b, 5, 37).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_snapshot_inside_held_entries_is_forked_there() {
    let (log, dir) = memory();
    let options = SheetOptions::default().snapshot_interval(0);
    let a = open(&log, &dir, options).await;
    fill(&a, 30).await;
    publish(&log, &a, 12).await;
    let b = open(&log, &dir, options).await;
    b.set_cell(5, 5, number(5.0)).await.unwrap();
    a.sync().await.unwrap();
    assert_eq!(a.content().segment(), (12, 19));
    assert_eq!(cells(&a, 10, 37).await, cells(&b, 10, 37).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_snapshot_beyond_the_page_is_reached_by_paging() {
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::with_page_size(7));
    let dir = MemoryBlobStore::new().root();
    let options = SheetOptions::default().snapshot_interval(0);
    let a = open(&log, &dir, options).await;
    let b = open(&log, &dir, options).await;
    fill(&a, 40).await;
    publish(&log, &a, 33).await;
    b.sync().await.unwrap();
    assert_eq!(b.content().segment(), (33, 7));
    assert_eq!(cells(&b, 2, 37).await, cells(&a, 2, 37).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_despite_viewport_changes() {
    let (log, dir) = memory();
    let options = SheetOptions::default()
        .tile_size(10, 10)
        .snapshot_interval(50);
    let writer = open(&log, &dir, options).await;
    fill(&writer, 500).await;
    worker_pass(&log, &dir).await;
    let reader = open(&log, &dir, options).await;
    let moves = ["A1:J10", "K11:T30", "A1:AK14", "B2:C3"];
    let (left, right) = tokio::join!(
        async {
            for m in moves {
                reader.set_viewport(area(m)).await.unwrap();
            }
        },
        async {
            writer.set_cell(0, 0, number(-5.0)).await.unwrap();
            reader.sync().await.unwrap();
        }
    );
    let ((), ()) = (left, right);
    reader.sync().await.unwrap();
    assert_eq!(cells(&reader, 14, 37).await, cells(&writer, 14, 37).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_interleaved_with_sync() {
    let (log, dir) = memory();
    let options = SheetOptions::default().snapshot_interval(7);
    let sheet = open(&log, &dir, options).await;
    let other = open(&log, &dir, options).await;
    let mut edits = Vec::new();
    for i in 0..30u32 {
        let (s, o) = (sheet.clone(), other.clone());
        edits.push(tokio::spawn(async move {
            s.set_cell(i, 0, number(f64::from(i))).await.unwrap();
            s.sync().await.unwrap();
            o.set_cell(i, 1, number(f64::from(i))).await.unwrap();
        }));
        if i % 10 == 9 {
            worker_pass(&log, &dir).await;
        }
    }
    for edit in edits {
        edit.await.unwrap();
    }
    sheet.sync().await.unwrap();
    other.sync().await.unwrap();
    assert_eq!(sheet.content().end(), 60);
    let want = cells(&sheet, 30, 2).await;
    assert_eq!(want.len(), 60);
    assert_eq!(cells(&other, 30, 2).await, want);
    let fresh = Spreadsheet::open(log, dir, options).await.unwrap();
    assert_eq!(cells(&fresh, 30, 2).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_on_every_call() {
    let delay = Delay::new(Duration::from_millis(2));
    let log: Arc<dyn EventLog> = Arc::new(Layered::new(delay, MemoryEventLog::new()));
    let dir = Layered::new(delay, MemoryBlobStore::new()).root();
    let options = SheetOptions::default().tile_size(5, 5).snapshot_interval(5);
    let a = open(&log, &dir, options).await;
    let b = open(&log, &dir, options).await;
    let (x, y) = tokio::join!(
        async {
            for i in 0..12 {
                a.set_cell(i, 0, number(1.0)).await.unwrap();
                a.set_viewport(area("A1:B20")).await.unwrap();
            }
        },
        async {
            for i in 0..12 {
                b.set_cell(i, 1, number(2.0)).await.unwrap();
                b.sync().await.unwrap();
            }
        }
    );
    let ((), ()) = (x, y);
    worker_pass(&log, &dir).await;
    a.sync().await.unwrap();
    b.sync().await.unwrap();
    let want = cells(&a, 12, 2).await;
    assert_eq!(want.len(), 24);
    assert_eq!(cells(&b, 12, 2).await, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_race_is_retried_never_dropped() {
    let (log, dir) = memory();
    let options = SheetOptions::default();
    let a = open(&log, &dir, options).await;
    let b = open(&log, &dir, options).await;
    a.set_cell(0, 0, number(1.0)).await.unwrap();
    // B still believes the log is empty: it loses the race for id 0, syncs
    // and lands its edit at 1.
    assert_eq!(b.set_cell(0, 0, number(2.0)).await.unwrap(), 1);
    assert_eq!(b.content().cell(0, 0), CellState::Set(number(2.0)));
    a.sync().await.unwrap();
    assert_eq!(a.content().cell(0, 0), CellState::Set(number(2.0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_race_lost_every_time_is_a_typed_error_and_adds_nothing() {
    let (log, dir) = memory();
    let a = Spreadsheet::open(log.clone(), dir.clone(), SheetOptions::default())
        .await
        .unwrap();
    let b = Spreadsheet::open(
        log.clone(),
        dir.clone(),
        SheetOptions::default().max_edit_attempts(1),
    )
    .await
    .unwrap();
    a.set_cell(0, 0, number(1.0)).await.unwrap();
    let err = b.set_cell(3, 3, number(3.0)).await.unwrap_err();
    assert!(matches!(err, EditError::Contended { attempts: 1 }), "{err}");
    // It resynced, and its edit is not in the log.
    assert_eq!(b.content().end(), 1);
    assert_eq!(b.content().cell(3, 3), CellState::Blank);
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_eq!(all.entries.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_are_one_append() {
    let (log, dir) = memory();
    let sheet = Spreadsheet::open(
        log.clone(),
        dir,
        SheetOptions::default().snapshot_interval(3),
    )
    .await
    .unwrap();
    let batch = (0..7)
        .map(|i| (CellRef::new(i, 0), number(f64::from(i))))
        .collect();
    assert_eq!(sheet.set_cells(batch).await.unwrap(), 0..7);
    assert_eq!(sheet.content().end(), 7);
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    let marked: Vec<_> = (0..7)
        .filter(|i| all.entries[*i].metadata.pending.is_some())
        .collect();
    assert_eq!(
        marked,
        vec![6],
        "one snapshot asked for: at the batch's last boundary"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readers_keep_a_consistent_content_and_subscribers_hear_of_changes() {
    let (log, dir) = memory();
    let sheet = Spreadsheet::open(log, dir, SheetOptions::default())
        .await
        .unwrap();
    let mut changes = sheet.subscribe();
    sheet.set_cell(0, 0, number(1.0)).await.unwrap();
    let before = sheet.content();
    sheet.set_cell(0, 0, number(2.0)).await.unwrap();
    sheet.set_cell(9, 9, number(3.0)).await.unwrap();
    assert_eq!(before.cell(0, 0), CellState::Set(number(1.0)));
    assert_eq!(before.cell(9, 9), CellState::Blank);
    assert_eq!((before.end(), before.row_count()), (1, 1));
    assert!(changes.has_changed().unwrap());
    assert_eq!(changes.borrow_and_update().end(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn polling_picks_up_other_writers() {
    let (log, dir) = memory();
    let options = SheetOptions::default().polling_interval(Duration::from_millis(5));
    let reader = open(&log, &dir, options).await;
    let writer = Spreadsheet::open(log, dir, SheetOptions::default())
        .await
        .unwrap();
    let mut changes = reader.subscribe();
    writer.set_cell(2, 2, number(7.0)).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), changes.wait_for(|c| c.end() == 1))
        .await
        .expect("polling never synced")
        .unwrap();
    assert_eq!(reader.content().cell(2, 2), CellState::Set(number(7.0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tile_budget_drops_the_least_recently_used() {
    let (log, dir) = memory();
    let options = SheetOptions::default()
        .tile_size(2, 2)
        .snapshot_interval(0)
        .loaded_tile_budget(2);
    let writer = open(&log, &dir, options).await;
    for i in 0..8 {
        writer.set_cell(i, i, number(f64::from(i))).await.unwrap(); // 4 diagonal tiles
    }
    let value = writer.write_snapshot(8).await.unwrap();
    writer.set_cell(20, 20, number(0.0)).await.unwrap();
    log.set_metadata(8, MetadataUpdate::publish_snapshot(value.blob_id))
        .await
        .unwrap();
    let reader = Spreadsheet::open(log, dir, options).await.unwrap();
    for viewport in ["A1:B2", "C3:D4", "E5:F6"] {
        reader.set_viewport(area(viewport)).await.unwrap();
    }
    let content = reader.content();
    assert_eq!(content.loaded_tiles(), 2);
    assert_eq!(content.cell(0, 0), CellState::NotLoaded, "oldest dropped");
    assert_eq!(content.cell(3, 3), CellState::Set(number(3.0)));
    assert_eq!(content.cell(5, 5), CellState::Set(number(5.0)));
    // A viewport larger than the budget still loads all it needs.
    reader.set_viewport(area("A1:H8")).await.unwrap();
    assert_eq!(reader.content().loaded_tiles(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_or_missing_snapshot_blobs_are_errors_naming_the_blob() {
    let (log, dir) = memory();
    let options = SheetOptions::default().snapshot_interval(0);
    let writer = open(&log, &dir, options).await;
    writer.set_cell(0, 0, number(1.0)).await.unwrap();
    writer.set_cell(1, 0, number(1.0)).await.unwrap();
    let value = publish(&log, &writer, 1).await;
    let snapshot = dir
        .open_dir("snapshots")
        .await
        .unwrap()
        .open_dir(&value.blob_id)
        .await
        .unwrap();
    let tile = snapshot.read("t0-0").await.unwrap();
    let mut damaged = tile.to_vec();
    let last = damaged.len() - 1;
    damaged[last] ^= 1;
    snapshot.write("t0-0", Bytes::from(damaged)).await.unwrap();
    let reader = open(&log, &dir, options).await;
    let err = reader.set_viewport(area("A1:B2")).await.unwrap_err();
    let SnapshotReadError::Corrupt { blob, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(blob, "snapshots/00000000000000000001/t0-0");
    assert_eq!(reader.content().cell(0, 0), CellState::NotLoaded);

    snapshot.remove("t0-0").await.unwrap();
    let err = reader.set_viewport(area("A1:B2")).await.unwrap_err();
    assert!(matches!(err, SnapshotReadError::Missing { .. }), "{err}");

    snapshot
        .write("index", Bytes::from_static(b"{\"json\": 1}"))
        .await
        .unwrap();
    let err = Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LoadError::Snapshot(SnapshotReadError::Corrupt { blob, .. }) if blob == "snapshots/00000000000000000001/index"),
        "{err}"
    );
    snapshot.remove("index").await.unwrap();
    let err = Spreadsheet::open(log, dir, options).await.unwrap_err();
    assert!(
        matches!(err, LoadError::Snapshot(SnapshotReadError::Missing { .. })),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreign_entries_and_lost_history_are_load_errors() {
    let (log, dir) = memory();
    log.add_entry(
        LogEntry::new("not a sheet edit"),
        0,
        KnownSnapshot::NotTracked,
    )
    .await
    .unwrap();
    let err = Spreadsheet::open(log.clone(), dir.clone(), SheetOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::Entry { seq: 0, .. }), "{err}");

    let (log, dir) = memory();
    let sheet = Spreadsheet::open(log.clone(), dir.clone(), SheetOptions::default())
        .await
        .unwrap();
    fill(&sheet, 5).await;
    log.truncate(3).await.unwrap();
    let err = Spreadsheet::open(log, dir, SheetOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, LoadError::NoSnapshot { start: 3 }), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_behind_a_truncation_reloads_from_the_snapshot() {
    let (log, dir) = memory();
    let options = SheetOptions::default().snapshot_interval(10);
    let writer = open(&log, &dir, options).await;
    let behind = open(&log, &dir, options).await;
    fill(&writer, 25).await;
    worker_pass(&log, &dir).await;
    log.truncate(20).await.unwrap();
    behind.sync().await.unwrap();
    assert_eq!(behind.content().segment(), (20, 5));
    assert_eq!(cells(&behind, 1, 37).await, cells(&writer, 1, 37).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_outside_the_content_are_refused() {
    let (log, dir) = memory();
    let sheet = Spreadsheet::open(log, dir, SheetOptions::default())
        .await
        .unwrap();
    fill(&sheet, 3).await;
    let err = sheet.write_snapshot(4).await.unwrap_err();
    assert!(
        matches!(
            err,
            WriteSnapshotError::OutOfRange {
                at: 4,
                start: 0,
                end: 3
            }
        ),
        "{err}"
    );
}

/// A block's size is checked before it is built (a tall block of empty
/// rows under one wide row is refused, not allocated), and a block may end
/// in the sheet's last column: it is written, read back, and reopened.
#[tokio::test]
async fn blocks_are_sized_before_they_are_built_and_reach_the_last_column() {
    use infinisheet_engine::{Block, BlockError, Edit, MAX_BLOCK_CELLS};
    let mut rows = vec![vec![Some(number(1.0)); 1 << 17]];
    rows.resize_with(1 << 20, Vec::new);
    assert_eq!(
        Block::from_rows(CellRef::new(0, 0), rows),
        Err(BlockError::TooManyCells {
            cells: (1 << 17) * (1 << 20)
        })
    );
    const { assert!(MAX_BLOCK_CELLS < (1 << 37)) };
    let (log, dir) = memory();
    let sheet = Spreadsheet::open(log.clone(), dir.clone(), SheetOptions::default())
        .await
        .unwrap();
    let last = u32::MAX;
    let block = Block::from_rows(
        CellRef::new(0, last - 1),
        vec![vec![Some(number(1.0)), Some(number(2.0))]],
    )
    .unwrap();
    assert_eq!(block.area().last, CellRef::new(0, last));
    sheet.edit(vec![Edit::Block(block)]).await.unwrap();
    sheet.set(CellRef::new(1, last), number(3.0)).await.unwrap();
    let reopened = Spreadsheet::open(log, dir, SheetOptions::default())
        .await
        .unwrap();
    for view in [&sheet, &reopened] {
        let rows = view
            .read(CellRange::new(
                CellRef::new(0, last - 1),
                CellRef::new(1, last),
            ))
            .await
            .unwrap();
        assert_eq!(rows[0][1], Some(number(2.0)));
        assert_eq!(rows[1][1], Some(number(3.0)));
    }
}

/// A log that counts the entries its queries return.
#[derive(Debug)]
struct Counting {
    inner: Arc<dyn infinisheet_event_log::EventLog>,
    read: std::sync::atomic::AtomicU64,
}

#[async_trait::async_trait]
impl infinisheet_event_log::EventLog for Counting {
    async fn append_at(
        &self,
        entries: Vec<infinisheet_event_log::LogEntry>,
        seq: u64,
        known: infinisheet_event_log::KnownSnapshot,
        token: Option<infinisheet_event_log::AppendToken>,
    ) -> Result<infinisheet_event_log::AddEntryValue, infinisheet_event_log::AddEntryError> {
        self.inner.append_at(entries, seq, known, token).await
    }
    async fn query(
        &self,
        start: infinisheet_event_log::QueryStart,
        end: infinisheet_event_log::QueryEnd,
        known: infinisheet_event_log::KnownSnapshot,
    ) -> Result<infinisheet_event_log::QueryValue, infinisheet_event_log::QueryError> {
        let page = self.inner.query(start, end, known).await?;
        self.read.fetch_add(
            page.entries.len() as u64,
            std::sync::atomic::Ordering::SeqCst,
        );
        Ok(page)
    }
    async fn bounds(
        &self,
    ) -> Result<infinisheet_event_log::Bounds, infinisheet_event_log::StorageError> {
        self.inner.bounds().await
    }
    async fn set_metadata(
        &self,
        seq: u64,
        update: infinisheet_event_log::MetadataUpdate,
    ) -> Result<(), infinisheet_event_log::SetMetadataError> {
        self.inner.set_metadata(seq, update).await
    }
    async fn truncate(&self, start: u64) -> Result<(), infinisheet_event_log::TruncateError> {
        self.inner.truncate(start).await
    }
    fn capabilities(&self) -> infinisheet_event_log::LogCapabilities {
        self.inner.capabilities()
    }
}

/// A bulk load (an import) by another handle, its snapshot written
/// streaming from the log and published: a sheet that syncs afterwards
/// starts from that snapshot and reads the entry after it, not the load's
/// entries (which would put every cell of the load in its memory); it
/// reads what the load wrote all the same.
#[tokio::test]
async fn a_sheet_behind_a_bulk_load_starts_from_its_snapshot() {
    use infinisheet_engine::{Block, Edit, write_snapshot_from_log};
    // Pages of five entries, as a backend pages a long log.
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::with_page_size(5));
    let dir = MemoryBlobStore::new().root();
    let counting = Arc::new(Counting {
        inner: log.clone(),
        read: std::sync::atomic::AtomicU64::new(0),
    });
    let options = SheetOptions::default();
    let reader = Spreadsheet::open(counting.clone(), dir.clone(), options)
        .await
        .unwrap();
    reader
        .set_cell(0, 0, Cell::new(CellValue::Number(1.0)))
        .await
        .unwrap();
    let loader = Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap();
    let mut bulk = loader.bulk();
    let mut last = 0;
    for band in 0..50u32 {
        let cells = (0..100u32)
            .map(|i| Some(Cell::new(CellValue::Number(f64::from(band * 100 + i)))))
            .collect();
        let block = Block::new(CellRef::new(1 + band * 10, 0), 10, cells).unwrap();
        last = bulk
            .append(vec![Edit::Block(block)], band == 49)
            .await
            .unwrap()
            .end
            - 1;
    }
    let value = write_snapshot_from_log(&*log, dir.clone(), options, last)
        .await
        .unwrap();
    log.set_metadata(last, MetadataUpdate::publish_snapshot(value.blob_id))
        .await
        .unwrap();
    let before = counting.read.load(std::sync::atomic::Ordering::SeqCst);
    reader.sync().await.unwrap();
    let read = counting.read.load(std::sync::atomic::Ordering::SeqCst) - before;
    // The first page (which names the snapshot), then the entry it is on:
    // not the fifty before it.
    assert!(read <= 5 + 1, "the sync read {read} entries");
    let content = reader.content();
    assert_eq!(content.snapshot().map(|s| s.sequence_id), Some(last));
    reader
        .set_viewport(CellRange::new(CellRef::new(0, 0), CellRef::new(600, 9)))
        .await
        .unwrap();
    let content = reader.content();
    assert_eq!(
        content.cell(0, 0).cell().map(|c| c.value.clone()),
        Some(CellValue::Number(1.0))
    );
    // From the snapshot, and from the entry it is on.
    assert_eq!(
        content.cell(10, 9).cell().map(|c| c.value.clone()),
        Some(CellValue::Number(99.0))
    );
    assert_eq!(
        content.cell(500, 9).cell().map(|c| c.value.clone()),
        Some(CellValue::Number(4999.0))
    );
    assert_eq!((content.row_count(), content.column_count()), (501, 10));
}

/// `sync_within` takes in what fits under its limit, and leaves the
/// content as it was when the entries since its snapshot set more.
#[tokio::test]
async fn a_bounded_sync_stops_short_of_a_bulk_load() {
    use infinisheet_engine::{Block, Edit};
    let (log, dir) = memory();
    let options = SheetOptions::default().snapshot_interval(0);
    let reader = Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap();
    let writer = Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap();
    writer
        .set_cell(0, 0, Cell::new(CellValue::Number(1.0)))
        .await
        .unwrap();
    assert!(reader.sync_within(10).await.unwrap());
    assert_eq!(reader.content().end(), 1);
    let mut bulk = writer.bulk();
    for band in 0..3u32 {
        let cells = (0..100)
            .map(|i| Some(Cell::new(CellValue::Number(f64::from(i)))))
            .collect();
        let block = Block::new(CellRef::new(1 + band * 10, 0), 10, cells).unwrap();
        bulk.append(vec![Edit::Block(block)], false).await.unwrap();
    }
    assert!(!reader.sync_within(250).await.unwrap(), "301 cells > 250");
    assert_eq!(reader.content().end(), 1, "unchanged");
    assert!(reader.sync_within(301).await.unwrap());
    assert_eq!(reader.content().end(), 4);
    // Holding more than the limit already: nothing to take in, still no.
    assert!(!reader.sync_within(300).await.unwrap());
    // A snapshot past what it holds would load the sheet again: no.
    let mut bulk = writer.bulk();
    let cells = (0..10)
        .map(|i| Some(Cell::new(CellValue::Number(f64::from(i)))))
        .collect();
    let block = Block::new(CellRef::new(40, 0), 10, cells).unwrap();
    bulk.append(vec![Edit::Block(block.clone())], false)
        .await
        .unwrap();
    let at = bulk
        .append(vec![Edit::Block(block)], false)
        .await
        .unwrap()
        .start;
    let value = infinisheet_engine::write_snapshot_from_log(&*log, dir.clone(), options, at)
        .await
        .unwrap();
    log.set_metadata(at, MetadataUpdate::publish_snapshot(value.blob_id))
        .await
        .unwrap();
    assert!(!reader.sync_within(1_000_000).await.unwrap());
    assert_eq!(reader.content().end(), 4, "unchanged");
    reader.sync().await.unwrap();
    assert_eq!(reader.content().snapshot().map(|s| s.sequence_id), Some(at));
}
