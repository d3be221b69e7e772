//! Property test: 2–3 clients on one log make random edits, batches and
//! syncs (some at once), while a snapshot worker now and then publishes the
//! pending snapshots. Afterwards every client, and a fresh reader, holds
//! exactly what replaying the whole log from scratch gives: with snapshots
//! and without.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod common;

use common::{cells, memory, worker_pass};
use infinisheet_engine::{Cell, CellRef, CellValue, SheetEntry, SheetOptions, Spreadsheet};
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
        for entry in &all.entries {
            let SheetEntry::SetCellValueAndFormat {
                row,
                column,
                value,
                format,
            } = SheetEntry::decode(&entry.payload).unwrap()
            else {
                panic!("only edits are in this log");
            };
            replayed.insert((row, column), format!("{:?}", Cell { value, format }));
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
            let got = cells(sheet, ROWS, COLUMNS).await;
            prop_assert_eq!(&got, &replayed, "client {} (the last is a fresh reader)", i);
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
