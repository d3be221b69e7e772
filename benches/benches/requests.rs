//! What each operation of the object-store backend costs in requests,
//! counted with `CountingStore` around the in-memory store (the counts are
//! the same on S3: the backend makes the same calls). Prints a table; the
//! targets are at most 2 requests per steady-state append and no write for
//! any read.

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use infinisheet_benches::runtime;
use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_engine::{Cell, CellValue, SheetOptions, Spreadsheet};
use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd, QueryStart, TailEvent,
};
use infinisheet_object_store::memory::InMemory;
use infinisheet_object_store::{
    CountingStore, ObjectStoreBlobStore, ObjectStoreEventLog, RequestCounts,
};
use infinisheet_snapshot_workflow::{SnapshotWorker, WorkflowOptions};
use std::sync::Arc;

/// One row of the table: `what`, the requests `counts` over `times` runs.
fn row(what: &str, counts: RequestCounts, times: u64) {
    let per = |n: u64| n as f64 / times as f64;
    println!(
        "| {what} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
        per(counts.total()),
        per(counts.put),
        per(counts.get),
        per(counts.head),
        per(counts.list),
        per(counts.delete),
        per(counts.writes()),
    );
}

async fn measure<F: std::future::Future>(store: &CountingStore, work: F) -> RequestCounts {
    let before = store.counts();
    work.await;
    store.counts().since(before)
}

async fn open(store: &CountingStore, prefix: &str) -> ObjectStoreEventLog {
    ObjectStoreEventLog::open(Arc::new(store.clone()), prefix.into())
        .await
        .unwrap()
}

fn main() {
    let rt = runtime();
    rt.block_on(async {
        let store = CountingStore::new(Arc::new(InMemory::new()));
        println!("| operation | requests | PUT | GET | HEAD | LIST | DELETE | writes |");
        println!("|---|---|---|---|---|---|---|---|");

        let created = measure(&store, open(&store, "new-log")).await;
        row("create a log (open where none is)", created, 1);

        let log = open(&store, "log").await;
        for seq in 0..100 {
            log.add_entry(LogEntry::new(vec![1; 60]), seq, KnownSnapshot::NotTracked)
                .await
                .unwrap();
        }
        const APPENDS: u64 = 320;
        let appends = measure(&store, async {
            for seq in 100..100 + APPENDS {
                log.add_entry(LogEntry::new(vec![1; 60]), seq, KnownSnapshot::NotTracked)
                    .await
                    .unwrap();
            }
        })
        .await;
        row("append, steady state, untracked", appends, APPENDS);

        log.set_metadata(400, MetadataUpdate::publish_snapshot("s400"))
            .await
            .unwrap();
        let end = 100 + APPENDS;
        let tracked = measure(&store, async {
            for seq in end..end + APPENDS {
                log.add_entry(LogEntry::new(vec![1; 60]), seq, KnownSnapshot::At(400))
                    .await
                    .unwrap();
            }
        })
        .await;
        row(
            "append, steady state, knowing the newest snapshot",
            tracked,
            APPENDS,
        );
        let end = end + APPENDS;

        let metadata = measure(&store, async {
            log.set_metadata(end - 10, MetadataUpdate::publish_snapshot("s"))
                .await
                .unwrap();
        })
        .await;
        row("set_metadata (publish a snapshot)", metadata, 1);

        let reopened = measure(&store, open(&store, "log")).await;
        row("open a log that exists", reopened, 1);

        let tail = measure(&store, async {
            let log = open(&store, "log").await;
            let all = log
                .query_all(
                    QueryStart::Id(end - 100),
                    QueryEnd::End,
                    KnownSnapshot::NoSnapshot,
                )
                .await
                .unwrap();
            assert_eq!(all.entries.len(), 100);
        })
        .await;
        row("cold open + read the 100-entry tail", tail, 1);

        let bounds = measure(&store, async {
            let log = open(&store, "log").await;
            log.bounds().await.unwrap();
        })
        .await;
        row("cold open + bounds", bounds, 1);

        // The engine: a sheet with 200 edits, then edits in steady state.
        let blobs = ObjectStoreBlobStore::new(Arc::new(store.clone()), "sheet".into());
        let sheet_log: Arc<dyn EventLog> = Arc::new(open(&store, "sheet-log").await);
        // A sheet with an identity, as the catalog makes: its first entry,
        // then checked on every open.
        let options = SheetOptions::default()
            .snapshot_interval(0)
            .identity(infinisheet_engine::SheetId::random());
        let mut sheet = None;
        let created = measure(&store, async {
            sheet = Some(
                Spreadsheet::create(sheet_log.clone(), blobs.root(), options)
                    .await
                    .unwrap(),
            );
        })
        .await;
        row(
            "create a sheet on a new log (identity entry, open)",
            created,
            1,
        );
        let sheet = sheet.unwrap();
        for i in 0..200 {
            sheet
                .set_cell(i, 0, Cell::new(CellValue::Number(f64::from(i))))
                .await
                .unwrap();
        }
        const EDITS: u64 = 100;
        let edits = measure(&store, async {
            for i in 0..EDITS as u32 {
                sheet
                    .set_cell(i, 1, Cell::new(CellValue::Number(1.0)))
                    .await
                    .unwrap();
            }
        })
        .await;
        row("engine edit (set_cell), steady state", edits, EDITS);
        let opened = measure(&store, async {
            let log: Arc<dyn EventLog> = Arc::new(open(&store, "sheet-log").await);
            let sheet = Spreadsheet::open(log, blobs.root(), options).await.unwrap();
            assert!(sheet.content().end() >= 300);
        })
        .await;
        row(
            "cold open of a 300-edit sheet (no snapshot), identity checked",
            opened,
            1,
        );

        // A sheet of 10,000 edits with a snapshot on its last, made by a
        // snapshot worker as the catalog's would be.
        let snap_blobs = ObjectStoreBlobStore::new(Arc::new(store.clone()), "snap-sheet".into());
        let snap_log: Arc<dyn EventLog> = Arc::new(open(&store, "snap-log").await);
        let options = SheetOptions::default()
            .snapshot_interval(10_000)
            .identity(infinisheet_engine::SheetId::random());
        let sheet = Spreadsheet::create(snap_log.clone(), snap_blobs.root(), options)
            .await
            .unwrap();
        for i in 0..10_000u32 {
            sheet
                .set_cell(i / 100, i % 100, Cell::new(CellValue::Number(f64::from(i))))
                .await
                .unwrap();
        }
        let worker = SnapshotWorker::new(
            snap_log.clone(),
            snap_blobs.root(),
            WorkflowOptions::default().sheet(options),
        );
        for at in worker.pending().await.unwrap() {
            worker.run_job(at).await.unwrap();
        }
        // The sheet learns of the snapshot on its next edit.
        sheet
            .set_cell(0, 0, Cell::new(CellValue::Number(-1.0)))
            .await
            .unwrap();
        let edits = measure(&store, async {
            for i in 0..EDITS as u32 {
                sheet
                    .set_cell(i, 1, Cell::new(CellValue::Number(1.0)))
                    .await
                    .unwrap();
            }
        })
        .await;
        row(
            "engine edit (set_cell), steady state, a snapshot known",
            edits,
            EDITS,
        );
        let opened = measure(&store, async {
            let log: Arc<dyn EventLog> = Arc::new(open(&store, "snap-log").await);
            let sheet = Spreadsheet::open(log, snap_blobs.root(), options)
                .await
                .unwrap();
            assert!(sheet.content().end() > 10_000);
        })
        .await;
        row(
            "cold open of a 10,000-edit sheet with a snapshot, identity checked",
            opened,
            1,
        );

        // A worker's pass between its passes over every sheet, over a
        // catalog of 50 idle sheets: the markers' listing
        // (`Catalog::due_sheets`, what `infinisheet worker` reads).
        {
            use infinisheet::{
                Catalog, LogStore, ObjectStoreLogs, SheetOptions as Options, Storage,
            };
            let logs: Arc<dyn LogStore> = Arc::new(ObjectStoreLogs::new(
                Arc::new(store.clone()),
                "catalog-logs".into(),
                "memory://catalog-logs",
            ));
            let tree = ObjectStoreBlobStore::new(Arc::new(store.clone()), "catalog".into());
            let catalog = Catalog::new(Storage::new(logs, Arc::new(tree), "memory://catalog"));
            for i in 0..50 {
                let path = format!("f{}/s{i}", i % 5);
                catalog
                    .create_sheet(&path, Options::default())
                    .await
                    .unwrap();
            }
            let pass = measure(&store, async {
                assert!(catalog.due_sheets().await.unwrap().is_empty());
            })
            .await;
            row(
                "a worker's pass over 50 idle sheets (between full passes)",
                pass,
                1,
            );
            let full = measure(&store, async {
                for path in catalog.sheets("").await.unwrap() {
                    let sheet = catalog.open_sheet(&path).await.unwrap();
                    let worker = infinisheet::SnapshotWorker::new(
                        sheet.log(),
                        sheet.dir(),
                        sheet.workflow_options(),
                    );
                    worker.poll_once().await.unwrap();
                }
            })
            .await;
            row(
                "a worker's pass over every one of 50 idle sheets (first, then hourly)",
                full,
                1,
            );
        }

        let dir = blobs.root();
        let content = Bytes::from(vec![7u8; 4096]);
        let write = measure(&store, async {
            dir.write("b", content.clone()).await.unwrap();
        })
        .await;
        row("blob write (4 KiB, top level)", write, 1);
        let nested = dir
            .open_dir("d")
            .await
            .unwrap()
            .open_dir("e")
            .await
            .unwrap();
        let write = measure(&store, async {
            nested.write("b", content.clone()).await.unwrap();
        })
        .await;
        row("blob write (4 KiB, two levels down)", write, 1);
        let read = measure(&store, async {
            dir.read("b").await.unwrap();
        })
        .await;
        row("blob read (4 KiB)", read, 1);
        let many = dir.open_dir("many").await.unwrap();
        for i in 0..2500 {
            many.write(&format!("b{i:05}"), Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        let listed = measure(&store, async {
            let mut page = many.list(None).await.unwrap();
            let mut pages = 1;
            while let Some(next) = page.continuation.clone() {
                page = many.list(Some(&next)).await.unwrap();
                pages += 1;
            }
            println!("<!-- listing 2,500 blobs took {pages} pages -->");
        })
        .await;
        row("list a directory of 2,500 blobs (all pages)", listed, 1);
        let first_page = measure(&store, async {
            many.list(None).await.unwrap();
        })
        .await;
        row(
            "list a directory of 2,500 blobs (first page)",
            first_page,
            1,
        );
    });
    // An idle tail: object stores cannot push, so it polls (10 ms
    // doubling to 500 ms). A minute of it in virtual time.
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    paused.block_on(async {
        let store = CountingStore::new(Arc::new(InMemory::new()));
        let log = open(&store, "idle").await;
        log.add_entry(LogEntry::new("x"), 0, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        let mut tail = log.tail(1);
        assert_eq!(tail.next().await.unwrap(), TailEvent::CaughtUp { end: 1 });
        let minute = measure(&store, async {
            let idle = tokio::time::timeout(std::time::Duration::from_secs(60), tail.next());
            assert!(idle.await.is_err(), "an idle tail gave an event");
        })
        .await;
        row("a tail's idle minute (it polls)", minute, 1);
    });
    // Following 50 idle sheets through a catalog (as `serve` does): the
    // tails wait on the catalog's one listing of `.live/` a second, and
    // read their logs only when a marker names them (or at their safety
    // net, here ten minutes). A minute after the first, in virtual time.
    paused.block_on(async {
        use infinisheet::{Catalog, LogStore, ObjectStoreLogs, SheetOptions as Options, Storage};
        let store = CountingStore::new(Arc::new(InMemory::new()));
        let logs: Arc<dyn LogStore> = Arc::new(ObjectStoreLogs::new(
            Arc::new(store.clone()),
            "logs".into(),
            "memory://logs",
        ));
        let tree = ObjectStoreBlobStore::new(Arc::new(store.clone()), "tree".into());
        let catalog = Catalog::new(Storage::new(logs, Arc::new(tree), "memory://tree"));
        let options = infinisheet_event_log::TailOptions::default()
            .pushed_wait(std::time::Duration::from_secs(600));
        for i in 0..50 {
            let sheet = catalog
                .create_sheet(&format!("s{i}"), Options::default())
                .await
                .unwrap();
            let log = sheet.log();
            let end = log.bounds().await.unwrap().end;
            tokio::spawn(async move {
                let mut tail = log.tail_with(end, options);
                while tail.next().await.is_ok() {}
            });
        }
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
        let minute = measure(
            &store,
            tokio::time::sleep(std::time::Duration::from_secs(60)),
        )
        .await;
        row(
            "following 50 idle sheets through a catalog, a minute (tails on `.live/`)",
            minute,
            1,
        );
    });
}
