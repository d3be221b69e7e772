//! History and retention over many edits: the live log stays short, every
//! entry stays readable from the log or its history blobs, clients that
//! fell behind a truncation catch up, and two polling workers share the
//! work without visible duplicates.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::{
    assert_reader_sees, assert_snapshots_whole, expected, memory, read_all, value, within,
};
use infinisheet_blob_store::{BlobDirExt, EntryKind};
use infinisheet_engine::{SNAPSHOTS_DIR, SheetEntry, SheetOptions, Spreadsheet};
use infinisheet_event_log::{EventLog, EventLogExt, KnownSnapshot, QueryEnd, QueryStart};
use infinisheet_snapshot_workflow::{
    HISTORY_DIR, SnapshotWorker, WorkflowError, WorkflowHost, WorkflowOptions, history_id,
    read_payloads,
};
use std::sync::Arc;
use std::time::Duration;

async fn bounds(log: &Arc<dyn EventLog>) -> (u64, u64) {
    let bounds = log.bounds().await.unwrap();
    (bounds.start, bounds.end)
}

/// The entries of the live log that name a snapshot.
async fn named_snapshots(log: &Arc<dyn EventLog>) -> Vec<u64> {
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    (all.start..)
        .zip(&all.entries)
        .filter(|(_, e)| e.metadata.snapshot.is_some())
        .map(|(seq, _)| seq)
        .collect()
}

/// Checks that `payloads` are the edits of a `columns`-wide sheet filled
/// row by row from entry 0.
fn assert_edits(payloads: &[bytes::Bytes], columns: u32, round: u32) {
    for (seq, payload) in payloads.iter().enumerate() {
        let (row, column) = (seq as u32 / columns, seq as u32 % columns);
        match SheetEntry::decode(payload).unwrap() {
            SheetEntry::SetCellValueAndFormat {
                row: r,
                column: c,
                value: v,
                format,
            } => {
                assert_eq!((r, c), (row, column), "entry {seq}");
                assert_eq!(v, value(row, column, round).value, "entry {seq}");
                assert_eq!(format, None);
            }
            other => panic!("entry {seq} is {other:?}, not an edit"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_ten_thousand_edits_the_log_is_short_and_every_entry_readable() {
    let (log, dir) = memory();
    let options = WorkflowOptions::default()
        .history(2)
        .keep_snapshots(2)
        .poll_interval(None);
    let host = WorkflowHost::start(log.clone(), dir.clone(), options);
    let writer = Spreadsheet::open(host.log(), dir.clone(), SheetOptions::default())
        .await
        .unwrap();
    // Two clients that fall far behind: one only reads, one edits later.
    let reader = Spreadsheet::open(log.clone(), dir.clone(), SheetOptions::default())
        .await
        .unwrap();
    let late_writer = Spreadsheet::open(host.log(), dir.clone(), SheetOptions::default())
        .await
        .unwrap();
    for row in 0..100 {
        for column in 0..100 {
            writer
                .set_cell(row, column, value(row, column, 0))
                .await
                .unwrap();
        }
        within("the host", host.idle()).await;
    }
    within("the host", host.idle()).await;
    assert_eq!(host.failures(), 0);

    let (start, end) = bounds(&log).await;
    assert_eq!(end, 10_000);
    assert_eq!(start, 9_800, "two segments of 100 kept");
    let payloads = read_payloads(&*log, &dir, 0, end).await.unwrap();
    assert_eq!(payloads.len(), 10_000);
    assert_edits(&payloads, 100, 0);
    // A part of the range, across history blobs and into the live log.
    let part = read_payloads(&*log, &dir, 4_321, 9_900).await.unwrap();
    assert_eq!(part[..], payloads[4_321..9_900]);

    let history = dir
        .open_dir(HISTORY_DIR)
        .await
        .unwrap()
        .list_all()
        .await
        .unwrap();
    assert!(history.len() >= 2, "{} history blobs", history.len());
    let snapshots = dir
        .open_dir(SNAPSHOTS_DIR)
        .await
        .unwrap()
        .list_all()
        .await
        .unwrap();
    assert_eq!(
        snapshots.len(),
        2,
        "retention keeps two snapshots: {snapshots:?}"
    );
    assert!(snapshots.iter().all(|e| e.kind == EntryKind::Dir));
    assert_eq!(assert_snapshots_whole(&log, &dir).await, (2, 0));

    let all = expected(100, 100, 0);
    assert_eq!(assert_reader_sees(&log, &dir, &all).await, Some(9_900));
    // The reader at entry 0 syncs past the truncation: it reloads.
    within("the reader's sync", reader.sync()).await.unwrap();
    assert_eq!(reader.content().end(), 10_000);
    assert!(read_all(&reader, 100, 100).await == all);
    // The late writer's edit conflicts, resyncs from the newest snapshot,
    // and lands.
    let seq = within("the late edit", late_writer.set_cell(0, 0, value(0, 0, 1)))
        .await
        .unwrap();
    assert_eq!(seq, 10_000);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_polling_workers_share_one_log_without_visible_duplicates() {
    let (log, dir) = memory();
    let options = WorkflowOptions::default().history(2).keep_snapshots(3);
    let a = SnapshotWorker::new(log.clone(), dir.clone(), options);
    let b = SnapshotWorker::new(log.clone(), dir.clone(), options);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let poll = |worker: SnapshotWorker| {
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let stop = async move {
                let _ = stopped.wait_for(|s| *s).await;
            };
            worker.run_polling(Duration::from_millis(2), stop).await;
        })
    };
    let (ta, tb) = (poll(a.clone()), poll(b.clone()));
    let writer = Spreadsheet::open(
        log.clone(),
        dir.clone(),
        SheetOptions::default()
            .snapshot_interval(20)
            .tile_size(10, 10),
    )
    .await
    .unwrap();
    common::fill(&writer, 50, 40, 0).await;
    stop.send(true).unwrap();
    within("worker a", ta).await.unwrap();
    within("worker b", tb).await.unwrap();
    // Whatever they left, one more pass finishes.
    let report = a.poll_once().await.unwrap();
    assert!(report.failed.is_empty(), "{:?}", report.failed);
    assert_eq!(a.pending().await.unwrap(), Vec::<u64>::new());
    let (snapshots, pending) = assert_snapshots_whole(&log, &dir).await;
    assert!((1..=3).contains(&snapshots), "{snapshots} snapshots named");
    assert_eq!(pending, 0);
    let (start, end) = bounds(&log).await;
    assert_eq!(end, 2_000);
    // How many snapshots the workers published depends on how often they
    // ran (on a busy machine the last pass may supersede all but one):
    // history keeps the entries from the second newest, or all of them.
    let named = named_snapshots(&log).await;
    let kept_from = if named.len() >= 2 {
        named[named.len() - 2]
    } else {
        0
    };
    assert_eq!(start, kept_from, "two segments kept: {named:?}");
    let payloads = read_payloads(&*log, &dir, 0, end).await.unwrap();
    assert_eq!(payloads.len(), 2_000);
    assert_edits(&payloads, 40, 0);
    assert_reader_sees(&log, &dir, &expected(50, 40, 0)).await;
}

#[tokio::test]
async fn damaged_or_missing_history_is_a_clear_error() {
    let (log, dir) = memory();
    let options = SheetOptions::default().snapshot_interval(10);
    let writer = Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap();
    common::fill(&writer, 5, 10, 0).await; // jobs at 10..40
    let worker = SnapshotWorker::new(
        log.clone(),
        dir.clone(),
        WorkflowOptions::default().history(1),
    );
    for at in [10, 20, 30, 40] {
        worker.run_job(at).await.unwrap();
    }
    assert_eq!(bounds(&log).await, (40, 50));
    assert_eq!(read_payloads(&*log, &dir, 0, 50).await.unwrap().len(), 50);

    let history = dir.open_dir(HISTORY_DIR).await.unwrap();
    let id = history_id(30, None);
    let mut bytes = history.read(&id).await.unwrap().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    history.write(&id, bytes).await.unwrap();
    let err = read_payloads(&*log, &dir, 0, 50).await.unwrap_err();
    assert!(
        matches!(&err, WorkflowError::History { blob, .. } if blob.ends_with(&id)),
        "{err}"
    );
    // Entries after the damaged blob still read.
    assert_eq!(read_payloads(&*log, &dir, 30, 50).await.unwrap().len(), 20);

    history.remove(&id).await.unwrap();
    let err = read_payloads(&*log, &dir, 0, 50).await.unwrap_err();
    assert!(
        matches!(err, WorkflowError::HistoryGap { reached: 30 }),
        "{err}"
    );

    // A log truncated without history has a gap too.
    let (bare, bare_dir) = memory();
    let writer = Spreadsheet::open(bare.clone(), bare_dir.clone(), SheetOptions::default())
        .await
        .unwrap();
    common::fill(&writer, 1, 5, 0).await;
    bare.truncate(3).await.unwrap();
    let err = read_payloads(&*bare, &bare_dir, 0, 5).await.unwrap_err();
    assert!(
        matches!(err, WorkflowError::HistoryGap { reached: 3 }),
        "{err}"
    );
    assert_eq!(
        read_payloads(&*bare, &bare_dir, 3, 5).await.unwrap().len(),
        2
    );
}

/// Blocks and clears through a host that archives history and keeps one
/// snapshot: every entry reads back from the log or its history, replaying
/// them from scratch gives what the writer, a reader that fell behind the
/// truncation, and a fresh reader hold.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocks_and_clears_replay_through_history_and_snapshots() {
    use infinisheet_engine::{Block, Cell, CellRange, CellRef, CellValue, Edit};
    use std::collections::BTreeMap;
    let (log, dir) = memory();
    let sheet_options = SheetOptions::default()
        .tile_size(8, 8)
        .snapshot_interval(40);
    let options = WorkflowOptions::default()
        .history(1)
        .keep_snapshots(1)
        .poll_interval(None)
        .sheet(sheet_options);
    let host = WorkflowHost::start(log.clone(), dir.clone(), options);
    let writer = Spreadsheet::open(host.log(), dir.clone(), sheet_options)
        .await
        .unwrap();
    let reader = Spreadsheet::open(log.clone(), dir.clone(), sheet_options)
        .await
        .unwrap();
    for round in 0..60u32 {
        let origin = CellRef::new((round * 7) % 30, (round * 3) % 12);
        let cells = (0..48)
            .map(|i| (i % 5 != 4).then(|| Cell::new(CellValue::Number(f64::from(round * 100 + i)))))
            .collect();
        let mut edits = vec![Edit::Block(Block::new(origin, 6, cells).unwrap())];
        if round % 4 == 3 {
            let (r, c) = ((round * 5) % 30, (round * 2) % 12);
            edits.push(Edit::Clear(CellRange::new(
                CellRef::new(r, c),
                CellRef::new(r + 6, c + 4),
            )));
        }
        if round % 9 == 8 {
            edits.push(Edit::Set(
                CellRef::new(round % 30, 13),
                Cell::new(CellValue::Text(format!("single {round}"))),
            ));
        }
        writer.edit(edits).await.unwrap();
        within("the host", host.idle()).await;
    }
    assert_eq!(host.failures(), 0);
    let (start, end) = bounds(&log).await;
    assert!(start > 0, "history archived the start of the log");

    let mut replayed = BTreeMap::new();
    for payload in read_payloads(&*log, &dir, 0, end).await.unwrap() {
        match SheetEntry::decode(&payload).unwrap() {
            SheetEntry::Block(block) => {
                for (at, cell) in block.iter() {
                    replayed.insert((at.row, at.column), cell.clone());
                }
            }
            SheetEntry::Clear { range } => {
                replayed.retain(|&(row, column), _| !range.contains(row, column));
            }
            SheetEntry::SetCellValueAndFormat {
                row,
                column,
                value,
                format,
            } => {
                replayed.insert((row, column), Cell { value, format });
            }
            other => panic!("unexpected entry {other:?}"),
        }
    }
    assert!(replayed.len() > 100, "{} cells", replayed.len());
    within("the reader's sync", reader.sync()).await.unwrap();
    let fresh = Spreadsheet::open(log.clone(), dir.clone(), sheet_options)
        .await
        .unwrap();
    for (who, sheet) in [("writer", &writer), ("reader", &reader), ("fresh", &fresh)] {
        assert_eq!(sheet.content().end(), end, "{who}");
        assert!(read_all(sheet, 50, 20).await == replayed, "{who} differs");
    }
    assert_eq!(assert_snapshots_whole(&log, &dir).await.0, 1);
    host.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_with_history_on_an_idle_sheet_archives_at_once() {
    let (log, dir) = memory();
    let options = SheetOptions::default().snapshot_interval(10);
    let writer = Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap();
    for row in 0..35 {
        writer.set_cell(row, 0, value(row, 0, 0)).await.unwrap();
    }
    // Every job done by a worker without history: nothing is pending.
    let plain = SnapshotWorker::new(log.clone(), dir.clone(), WorkflowOptions::default());
    let done = plain.poll_once().await.unwrap();
    assert!(!done.published.is_empty());
    assert_eq!(plain.pending().await.unwrap(), Vec::<u64>::new());
    assert_eq!(bounds(&log).await.0, 0);
    let snapshots = named_snapshots(&log).await;

    // A worker with history finds no job, and archives all the same.
    let archiving = SnapshotWorker::new(
        log.clone(),
        dir.clone(),
        WorkflowOptions::default().history(1),
    );
    let report = archiving.poll_once().await.unwrap();
    assert!(report.published.is_empty());
    assert!(report.maintenance_failed.is_none());
    let newest = *snapshots.last().unwrap();
    assert_eq!(
        report.maintenance.and_then(|m| m.truncated_to),
        Some(newest)
    );
    assert_eq!(bounds(&log).await.0, newest);
    let payloads = read_payloads(&*log, &dir, 0, 35).await.unwrap();
    assert_eq!(payloads.len(), 35);
    // Once done, later idle passes leave maintenance to the jobs.
    let again = archiving.poll_once().await.unwrap();
    assert!(again.maintenance.is_none());
}
