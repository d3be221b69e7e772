//! Snapshot workers as real processes, killed with SIGKILL at random points
//! of a snapshot (and of the history archive and cleanup after it): no
//! partial snapshot is ever visible to readers, every entry stays readable,
//! and a restarted worker completes the job. SQLite log, filesystem blobs.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::{BlobDir, BlobStore};
use infinisheet_engine::{
    Cell, CellRange, CellRef, CellState, CellValue, Spreadsheet, verify_snapshot,
};
use infinisheet_event_log::{EventLog, EventLogExt, KnownSnapshot, QueryEnd, QueryStart};
use infinisheet_filesystem::FsBlobStore;
use infinisheet_process_tests::{DEADLINE, worker_sheet};
use infinisheet_snapshot_workflow::read_payloads;
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

/// Rounds, each killing a worker once.
const KILLS: u32 = 24;
/// Tiles of the sheet: 20 x 10 tiles of 10 x 10 cells.
const TILE_ROWS: u32 = 20;
const TILE_COLUMNS: u32 = 10;

fn spawn(db: &Path, blobs: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_infinisheet-writer"))
        .arg("snapshot-worker")
        .arg(db)
        .arg(blobs)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The child's stdout, line by line.
fn lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().unwrap();
    let (send, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if send.send(line.unwrap_or_default()).is_err() {
                return;
            }
        }
    });
    lines
}

async fn open(db: &Path, blobs: &Path) -> (Arc<dyn EventLog>, Arc<dyn BlobDir>) {
    let db = SqliteDatabase::open(db, SqliteOptions::default())
        .await
        .unwrap();
    let log: Arc<dyn EventLog> = Arc::new(db.open_or_create_log("sheet").await.unwrap());
    (log, FsBlobStore::open(blobs).await.unwrap().root())
}

/// Batch `k`: one cell in each tile, a different place each batch.
fn batch(k: u32) -> Vec<(CellRef, Cell)> {
    let mut cells = Vec::new();
    for tile_row in 0..TILE_ROWS {
        for tile_column in 0..TILE_COLUMNS {
            let at = CellRef::new(tile_row * 10 + k % 10, tile_column * 10 + k / 10 % 10);
            let value = CellValue::Number(f64::from(k * 1000 + tile_row * 10 + tile_column));
            cells.push((at, Cell::new(value)));
        }
    }
    cells
}

/// Checks what a fresh reader sees: exactly `cells`, from a whole snapshot;
/// every entry readable from the log or its history. Returns the snapshot
/// the reader opened from and how many entries are pending.
async fn check(
    log: &Arc<dyn EventLog>,
    dir: &Arc<dyn BlobDir>,
    cells: &BTreeMap<(u32, u32), Cell>,
    round: u32,
) -> (Option<u64>, usize) {
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    for (seq, entry) in (all.start..).zip(&all.entries) {
        if let Some(blob_id) = &entry.metadata.snapshot {
            verify_snapshot(dir.clone(), blob_id)
                .await
                .unwrap_or_else(|err| panic!("round {round}: the snapshot on {seq}: {err}"));
        }
    }
    let pending = all
        .entries
        .iter()
        .filter(|e| e.metadata.pending.is_some())
        .count();
    assert_eq!(
        read_payloads(&**log, dir, 0, all.end).await.unwrap().len() as u64,
        all.end,
        "round {round}: every entry readable"
    );
    let options = worker_sheet().loaded_tile_budget(1_000);
    let reader = Spreadsheet::open(log.clone(), dir.clone(), options)
        .await
        .unwrap();
    let area = CellRange::new(
        CellRef::new(0, 0),
        CellRef::new(TILE_ROWS * 10 - 1, TILE_COLUMNS * 10 - 1),
    );
    reader.set_viewport(area).await.unwrap();
    let content = reader.content();
    let mut seen = BTreeMap::new();
    for row in area.rows() {
        for column in area.columns() {
            match content.cell(row, column) {
                CellState::Set(cell) => {
                    seen.insert((row, column), cell);
                }
                CellState::Blank => {}
                CellState::NotLoaded => panic!("round {round}: ({row}, {column}) not loaded"),
            }
        }
    }
    assert!(seen == *cells, "round {round}: the reader sees other cells");
    (content.snapshot().map(|s| s.sequence_id), pending)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_snapshot_workers_never_leave_a_partial_snapshot() {
    let temp = tempfile::tempdir().unwrap();
    let (db, blobs) = (temp.path().join("sheet.db"), temp.path().join("blobs"));
    let mut cells = BTreeMap::new();
    // How long a whole job took, to kill the next one somewhere inside it.
    let mut job = Duration::from_millis(50);
    let mut inside = 0;
    // When in the job each kill lands; INFINISHEET_SEED repeats a run.
    let seed = std::env::var("INFINISHEET_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("kill moments seeded with INFINISHEET_SEED={seed}");
    let mut rng = fastrand::Rng::with_seed(seed);
    for round in 0..=KILLS {
        {
            let (log, dir) = open(&db, &blobs).await;
            let writer = Spreadsheet::open(log, dir, worker_sheet()).await.unwrap();
            let edits = batch(round);
            for (at, cell) in &edits {
                cells.insert((at.row, at.column), cell.clone());
            }
            writer.set_cells(edits).await.unwrap();
        }
        if round == 0 {
            continue; // the first batch asks for nothing yet
        }
        let at = u64::from(round) * 200;

        // A worker killed at a random moment of the job.
        let mut child = spawn(&db, &blobs);
        let output = lines(&mut child);
        let started = output.recv_timeout(DEADLINE).unwrap();
        assert!(started.starts_with("start "), "{started}");
        std::thread::sleep(job.mul_f64(rng.f64()));
        child.kill().unwrap();
        child.wait().unwrap();
        let finished = output.try_iter().any(|line| line.starts_with("done "));
        if !finished {
            inside += 1;
        }
        let (log, dir) = open(&db, &blobs).await;
        let (from, _) = check(&log, &dir, &cells, round).await;
        assert!(
            from.unwrap_or(0) + 200 >= at,
            "round {round}: from {from:?}"
        );
        drop((log, dir));

        // A worker that runs to the end completes the job.
        let mut child = spawn(&db, &blobs);
        let output = lines(&mut child);
        let status = child.wait().unwrap();
        assert!(
            status.success(),
            "round {round}: the restarted worker failed"
        );
        for line in output.try_iter() {
            if let Some(micros) = line.split(' ').nth(2) {
                job = Duration::from_micros(micros.parse().unwrap());
            }
        }
        let (log, dir) = open(&db, &blobs).await;
        let (from, pending) = check(&log, &dir, &cells, round).await;
        assert_eq!(from, Some(at), "round {round}");
        assert_eq!(pending, 0, "round {round}");
    }
    eprintln!("{inside} of {KILLS} kills landed inside a job (the last took {job:?})");
    assert!(
        inside >= KILLS / 3,
        "only {inside} of {KILLS} kills landed inside a job (INFINISHEET_SEED={seed})"
    );
}
