//! Property test: 2–3 clients on one log make random edits, batches and
//! syncs, blocks and clears (some at once), while a snapshot worker now and then publishes the
//! pending snapshots. Afterwards every client, and a fresh reader, holds
//! exactly what replaying the whole log from scratch gives: with snapshots
//! and without.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use common::{cells, memory, worker_pass};
use infinisheet_engine::{
    Block, Cell, CellRange, CellRef, CellValue, SheetEntry, SheetOptions, Spreadsheet,
};
use infinisheet_event_log::{EventLogExt, KnownSnapshot, QueryEnd, QueryStart};
use proptest::prelude::*;
use std::collections::BTreeMap;

const ROWS: u32 = 12;
const COLUMNS: u32 = 6;

#[derive(Clone, Debug)]
enum Op {
    Edit {
        client: usize,
        row: u32,
        column: u32,
        value: u8,
    },
    Batch {
        client: usize,
        count: u8,
        value: u8,
    },
    Sync {
        client: usize,
    },
    /// One entry setting a block (with gaps).
    Block {
        client: usize,
        row: u32,
        column: u32,
        width: u32,
        count: u8,
        value: u8,
    },
    Clear {
        client: usize,
        first: (u32, u32),
        last: (u32, u32),
    },
    /// Two operations at once.
    Both(Box<Op>, Box<Op>),
    Worker,
}

fn single() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..3usize, 0..ROWS, 0..COLUMNS, any::<u8>())
            .prop_map(|(client, row, column, value)| Op::Edit { client, row, column, value }),
        1 => (0..3usize, 1..6u8, any::<u8>())
            .prop_map(|(client, count, value)| Op::Batch { client, count, value }),
        3 => (0..3usize).prop_map(|client| Op::Sync { client }),
        2 => (0..3usize, 0..ROWS, 0..COLUMNS, 1..5u32, 1..20u8, any::<u8>())
            .prop_map(|(client, row, column, width, count, value)| Op::Block { client, row, column, width, count, value }),
        1 => (0..3usize, (0..ROWS + 2, 0..COLUMNS + 2), (0..ROWS + 2, 0..COLUMNS + 2))
            .prop_map(|(client, first, last)| Op::Clear { client, first, last }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => single(),
        2 => (single(), single()).prop_map(|(a, b)| Op::Both(Box::new(a), Box::new(b))),
        1 => Just(Op::Worker),
    ]
}

fn cell(value: u8) -> Cell {
    match value % 4 {
        0 => Cell::new(CellValue::Number(f64::from(value))),
        1 => Cell::new(CellValue::Text(format!("t{value}"))),
        2 => Cell::new(CellValue::Boolean(value > 128)).with_format("0.0"),
        _ => Cell::new(CellValue::Empty),
    }
}

async fn run(sheets: &[Spreadsheet], op: &Op) {
    match op {
        Op::Edit {
            client,
            row,
            column,
            value,
        } => {
            let sheet = &sheets[client % sheets.len()];
            sheet.set_cell(*row, *column, cell(*value)).await.unwrap();
        }
        Op::Batch {
            client,
            count,
            value,
        } => {
            let sheet = &sheets[client % sheets.len()];
            let batch = (0..u32::from(*count))
                .map(|i| {
                    (
                        CellRef::new((u32::from(*value) + i) % ROWS, i % COLUMNS),
                        cell(*value),
                    )
                })
                .collect();
            sheet.set_cells(batch).await.unwrap();
        }
        Op::Sync { client } => sheets[client % sheets.len()].sync().await.unwrap(),
        Op::Block {
            client,
            row,
            column,
            width,
            count,
            value,
        } => {
            let cells = (0..*count)
                .map(|i| (i % 3 != 2).then(|| cell(value.wrapping_add(i))))
                .collect();
            let block = Block::new(CellRef::new(*row, *column), *width, cells).unwrap();
            sheets[client % sheets.len()]
                .set_block(block)
                .await
                .unwrap();
        }
        Op::Clear {
            client,
            first,
            last,
        } => {
            let range =
                CellRange::new(CellRef::new(first.0, first.1), CellRef::new(last.0, last.1));
            sheets[client % sheets.len()].clear(range).await.unwrap();
        }
        Op::Both(a, b) => {
            tokio::join!(Box::pin(run(sheets, a)), Box::pin(run(sheets, b)));
        }
        Op::Worker => unreachable!("run by the caller"),
    }
}

fn check(clients: usize, snapshots: bool, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (log, dir) = memory();
        let options = SheetOptions::default()
            .tile_size(4, 4)
            .snapshot_interval(if snapshots { 3 } else { 0 });
        let mut sheets = Vec::new();
        for _ in 0..clients {
            sheets.push(
                Spreadsheet::open(log.clone(), dir.clone(), options)
                    .await
                    .unwrap(),
            );
        }
        for op in &ops {
            match op {
                Op::Worker => {
                    worker_pass(&log, &dir).await;
                }
                op => run(&sheets, op).await,
            }
        }
        worker_pass(&log, &dir).await;
        // Replaying the whole log from scratch.
        let all = log
            .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        let mut replayed = BTreeMap::new();
        let mut extent = (0u64, 0u64);
        for entry in &all.entries {
            match SheetEntry::decode(&entry.payload).unwrap() {
                SheetEntry::SetCellValueAndFormat {
                    row,
                    column,
                    value,
                    format,
                } => {
                    replayed.insert((row, column), Cell { value, format });
                    extent = (
                        extent.0.max(u64::from(row) + 1),
                        extent.1.max(u64::from(column) + 1),
                    );
                }
                SheetEntry::Block(block) => {
                    for (at, cell) in block.iter() {
                        replayed.insert((at.row, at.column), cell.clone());
                        extent = (
                            extent.0.max(u64::from(at.row) + 1),
                            extent.1.max(u64::from(at.column) + 1),
                        );
                    }
                }
                SheetEntry::Clear { range } => {
                    replayed.retain(|&(row, column), _| !range.contains(row, column));
                    let all_rows =
                        range.first.row == 0 && u64::from(range.last.row) + 1 >= extent.0;
                    let all_columns =
                        range.first.column == 0 && u64::from(range.last.column) + 1 >= extent.1;
                    if all_rows && all_columns {
                        extent = (0, 0);
                    } else {
                        if all_columns && u64::from(range.last.row) + 1 >= extent.0 {
                            extent.0 = extent.0.min(u64::from(range.first.row));
                        }
                        if all_rows && u64::from(range.last.column) + 1 >= extent.1 {
                            extent.1 = extent.1.min(u64::from(range.first.column));
                        }
                    }
                }
                other => panic!("unexpected entry {other:?}"),
            }
        }
        sheets.push(
            Spreadsheet::open(log.clone(), dir.clone(), options)
                .await
                .unwrap(),
        );
        for (i, sheet) in sheets.iter().enumerate() {
            sheet.sync().await.unwrap();
            let content = sheet.content();
            prop_assert_eq!(content.end(), all.end, "client {} end", i);
            let got = cells(sheet, ROWS + 30, COLUMNS + 6).await;
            prop_assert_eq!(&got, &replayed, "client {} (the last is a fresh reader)", i);
            prop_assert_eq!(
                (content.row_count(), content.column_count()),
                extent,
                "client {} extent",
                i
            );
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn clients_converge_on_the_replayed_log(
        clients in 2..=3usize,
        snapshots in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        check(clients, snapshots, ops)?;
    }
}

/// Every blob of the snapshot directory `id` in `dir`, by name.
async fn snapshot_blobs(
    dir: &std::sync::Arc<dyn infinisheet_blob_store::BlobDir>,
    id: &str,
) -> BTreeMap<String, bytes::Bytes> {
    use infinisheet_blob_store::BlobDirExt;
    let snapshot = dir
        .open_dir("snapshots")
        .await
        .unwrap()
        .open_dir(id)
        .await
        .unwrap();
    let mut blobs = BTreeMap::new();
    for entry in snapshot.list_all().await.unwrap() {
        let name = entry.name.to_string();
        let bytes = snapshot.read(&name).await.unwrap();
        blobs.insert(name, bytes);
    }
    blobs
}

/// Random edits, a snapshot written both ways (by the loaded sheet, and
/// streamed from the log), published, more edits, and a second snapshot
/// both ways: the blobs are the same, byte for byte, each time.
fn streamed_matches_loaded(first: Vec<Op>, second: Vec<Op>) -> Result<(), TestCaseError> {
    use infinisheet_engine::write_snapshot_from_log;
    use infinisheet_event_log::MetadataUpdate;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (log, loaded_dir) = memory();
        let streamed_dir =
            infinisheet_blob_store::BlobStore::root(&infinisheet_memory::MemoryBlobStore::new());
        let options = SheetOptions::default().tile_size(4, 3).snapshot_interval(0);
        let sheet = Spreadsheet::open(log.clone(), loaded_dir.clone(), options)
            .await
            .unwrap();
        for ops in [first, second] {
            for op in &ops {
                run(std::slice::from_ref(&sheet), op).await;
            }
            // The entry the snapshot is published on.
            let at = sheet.set_cell(0, 0, cell(7)).await.unwrap();
            let loaded = sheet.write_snapshot(at).await.unwrap();
            let streamed = write_snapshot_from_log(&*log, streamed_dir.clone(), options, at)
                .await
                .unwrap();
            prop_assert_eq!(&loaded, &streamed);
            prop_assert_eq!(
                snapshot_blobs(&loaded_dir, &loaded.blob_id).await,
                snapshot_blobs(&streamed_dir, &streamed.blob_id).await
            );
            log.set_metadata(at, MetadataUpdate::publish_snapshot(loaded.blob_id))
                .await
                .unwrap();
            // The loaded sheet builds the next on the published snapshot.
            sheet.set_cell(1, 1, cell(9)).await.unwrap();
        }
        Ok(())
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn streamed_snapshots_are_the_loaded_sheets(
        first in proptest::collection::vec(single(), 0..30),
        second in proptest::collection::vec(single(), 0..30),
    ) {
        streamed_matches_loaded(first, second)?;
    }
}
