//! Bulk edits at the speed of the disk, each measured against a reference
//! in the same run:
//!
//! * importing a 100,000 x 10 CSV (1,000,000 cells: numbers, text with
//!   quoted commas, booleans) into a new sheet on the default durable
//!   storage, its snapshot included, against `sqlite3 FILE ".import --csv
//!   CSV t"` of the same file (skipped, loudly, where `sqlite3` is
//!   missing); and the bytes the import leaves on disk against the CSV's;
//! * a whole snapshot of that sheet to filesystem blobs (and to SQLite
//!   blobs) against the same snapshot to memory blobs;
//! * the peak memory of `get --json` and `export` of all of it, in fresh
//!   processes (`bulk-read`);
//! * import at scale (`bulk/scale`): 1M, 10M and 100M cells through each
//!   tool's command, time and peak RSS, against `sqlite3 .import` and
//!   DuckDB's `read_csv` of the same generated file.

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infinisheet::table::{ImportOptions, import_csv};
use infinisheet::{Catalog, SheetOptions, Storage};
use infinisheet_benches::{fresh_process, measuring, runtime, settle, timed_tasks};
use infinisheet_blob_store::BlobStore;
use infinisheet_engine::{Block, Cell, CellRef, CellValue, Spreadsheet};
use infinisheet_event_log::EventLog;
use infinisheet_filesystem::FsBlobStore;
use infinisheet_memory::{MemoryBlobStore, MemoryEventLog};
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const COLUMNS: u32 = 10;

/// Rows of the CSV and the block: a million cells when measuring, a
/// hundredth of that when the benchmark runs as a test of itself.
fn rows() -> u32 {
    if measuring() { 100_000 } else { 1_000 }
}

fn cell_count() -> u64 {
    u64::from(rows()) * u64::from(COLUMNS)
}

/// The CSV: an id, numbers with two decimals, a text with a quoted comma,
/// a boolean, a code with a leading zero, and so on.
fn csv() -> Vec<u8> {
    let mut text = String::with_capacity(8 << 20);
    for row in 0..rows() {
        text.push_str(&csv_row(u64::from(row)));
    }
    text.into_bytes()
}

/// Row `row` of the CSV, its line break included.
fn csv_row(row: u64) -> String {
    let n = (row * 7919) % 100_000;
    format!(
        "{row},{}.{:02},\"item {row}, grade {}\",{},0{},{},city {},{},{}.5,x{}\n",
        n / 100,
        n % 100,
        n % 7,
        if n.is_multiple_of(2) { "TRUE" } else { "FALSE" },
        n % 90,
        n * 3,
        n % 1000,
        -(n as i64 - 50_000),
        n % 977,
        n % 31,
    )
}

/// Bytes under `path` (a file, or every file below a directory).
fn disk_bytes(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .unwrap()
        .map(|e| disk_bytes(&e.unwrap().path()))
        .sum()
}

/// Imports `file` into the sheet `big` of a new catalog at `home`, as
/// `infinisheet import` does (its snapshot host finishing the jobs).
async fn import_once(home: &Path, file: &Path) -> Duration {
    let catalog = Catalog::new(Storage::embedded(home).await.unwrap());
    let sheet = catalog
        .create_sheet("big", SheetOptions::default())
        .await
        .unwrap();
    settle();
    let started = Instant::now();
    let cells = sheet.writer(true).await.unwrap();
    let reader = tokio::fs::File::open(file).await.unwrap();
    let report = import_csv(&cells, reader, &ImportOptions::default(), |_| {})
        .await
        .unwrap();
    let done = cells.finish().await;
    let took = started.elapsed();
    assert_eq!(report.cells, cell_count());
    assert_eq!(done.failures, 0);
    took
}

fn sqlite3_once(dir: &Path, file: &Path) -> Option<Duration> {
    let db = dir.join("reference.db");
    let _ = std::fs::remove_file(&db);
    settle();
    let started = Instant::now();
    let status = std::process::Command::new("sqlite3")
        .arg(&db)
        .arg(format!(".import --csv {} t", file.display()))
        .status()
        .ok()?;
    let took = started.elapsed();
    assert!(status.success(), "sqlite3 .import failed");
    Some(took)
}

fn import(c: &mut Criterion) {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let file = work.path().join("data.csv");
    std::fs::write(&file, csv()).unwrap();
    let csv_bytes = disk_bytes(&file);

    // One import for its size on disk (and the reads below).
    let home = work.path().join("kept");
    let took = rt.block_on(async {
        let (home, file) = (home.clone(), file.clone());
        tokio::spawn(async move { import_once(&home, &file).await })
            .await
            .unwrap()
    });
    let logs = disk_bytes(&home.join("logs.db"))
        + disk_bytes(&home.join("logs.db-wal"))
        + disk_bytes(&home.join("logs.db-shm"));
    let blobs = disk_bytes(&home.join("sheets"));
    eprintln!(
        "bulk/import size: CSV {csv_bytes} B; log {logs} B + snapshots and catalog {blobs} B \
         = {:.2}x the CSV (first import took {:.2} s)",
        (logs + blobs) as f64 / csv_bytes as f64,
        took.as_secs_f64()
    );
    read_peaks(&home);

    let mut group = c.benchmark_group("bulk");
    group.throughput(Throughput::Elements(cell_count()));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(30));
    group.bench_function("import_csv_1m_cells_embedded", |b| {
        b.to_async(&rt).iter_custom(|iters| {
            timed_tasks(iters, || {
                let file = file.clone();
                async move {
                    let home = tempfile::tempdir().unwrap();
                    import_once(home.path(), &file).await
                }
            })
        });
    });
    if sqlite3_once(work.path(), &file).is_none() {
        eprintln!(
            "\n!!! bulk/sqlite3_import_reference SKIPPED: no `sqlite3` command on this machine \
             (Debian: apt-get install sqlite3); the import has no reference to compare with !!!\n"
        );
    } else {
        group.bench_function("sqlite3_import_reference", |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| sqlite3_once(work.path(), &file).unwrap())
                    .sum()
            });
        });
    }
    group.finish();
}

/// Runs `bulk-read` on the kept catalog for `get --json` and `export` of
/// every cell, and prints their peak memory.
fn read_peaks(home: &Path) {
    for what in ["json", "csv"] {
        let said = fresh_process(
            env!("CARGO_BIN_EXE_bulk-read"),
            &[home.as_os_str(), what.as_ref()],
        );
        eprintln!("bulk/read_1m_{what} fresh process: {said}");
    }
}

fn cell(i: u64) -> Cell {
    match i % 10 {
        0 => Cell::new(CellValue::Number(i as f64)),
        2 => Cell::new(CellValue::Text(format!("item {i}, grade {}", i % 7))),
        3 => Cell::new(CellValue::Boolean(i.is_multiple_of(2))),
        _ => Cell::new(CellValue::Number((i % 100_000) as f64 / 100.0)),
    }
}

/// A sheet on `dir` holding the 1M cells as one block in `log`.
async fn sheet_on(
    log: Arc<dyn EventLog>,
    dir: Arc<dyn infinisheet_blob_store::BlobDir>,
) -> Spreadsheet {
    let sheet = Spreadsheet::open(log, dir, SheetOptions::default().snapshot_interval(0))
        .await
        .unwrap();
    sheet.sync().await.unwrap();
    sheet
}

fn snapshot(c: &mut Criterion) {
    let rt = runtime();
    let work = tempfile::tempdir().unwrap();
    let log: Arc<dyn EventLog> = Arc::new(MemoryEventLog::new());
    let (fs, memory, sqlite) = rt.block_on(async {
        let writer = sheet_on(log.clone(), MemoryBlobStore::new().root()).await;
        let cells = (0..cell_count()).map(|i| Some(cell(i))).collect();
        let block = Block::new(CellRef::new(0, 0), COLUMNS, cells).unwrap();
        writer.set_block(block).await.unwrap();
        let fs = FsBlobStore::open(work.path().join("blobs")).await.unwrap();
        let db = SqliteDatabase::open(work.path().join("blobs.db"), SqliteOptions::default())
            .await
            .unwrap();
        let store = db.blob_store("blobs").await.unwrap();
        (
            sheet_on(log.clone(), fs.root()).await,
            sheet_on(log.clone(), MemoryBlobStore::new().root()).await,
            sheet_on(log.clone(), store.root()).await,
        )
    });
    let mut group = c.benchmark_group("bulk");
    group.throughput(Throughput::Elements(cell_count()));
    group.sample_size(10);
    for (name, sheet) in [
        ("snapshot_1m_memory_blobs", memory),
        ("snapshot_1m_fs_blobs", fs),
        ("snapshot_1m_sqlite_blobs", sqlite),
    ] {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                timed_tasks(iters, || {
                    let sheet = sheet.clone();
                    async move {
                        let started = Instant::now();
                        sheet.write_snapshot(1).await.unwrap();
                        started.elapsed()
                    }
                })
            });
        });
    }
    group.finish();
}

/// Runs `command` (its first word the program) under Python, which times
/// it and reads the kernel's account of its peak resident memory; `None`
/// if the program is missing.
fn timed_peak(command: &[&std::ffi::OsStr]) -> Option<(Duration, u64)> {
    const PEAK: &str = "import resource, subprocess, sys, time\n\
        started = time.perf_counter()\n\
        done = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n\
        took = time.perf_counter() - started\n\
        print(took, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
        sys.exit(done.returncode)";
    if std::process::Command::new(command[0])
        .arg("--version")
        .output()
        .is_err()
    {
        return None;
    }
    settle();
    let out = std::process::Command::new("python3")
        .args(["-c", PEAK])
        .args(command)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{:?} failed: {}",
        command,
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8(out.stdout).unwrap();
    let mut words = said.split_whitespace();
    let took: f64 = words.next().unwrap().parse().unwrap();
    let kib: u64 = words.next().unwrap().parse().unwrap();
    Some((Duration::from_secs_f64(took), kib))
}

/// Writes a CSV of `rows` rows of `wide` of [`csv`]'s rows each, side by
/// side (`10 * wide` columns), a row at a time.
fn write_wide_csv(path: &Path, rows: u64, wide: u64) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for row in 0..rows {
        for k in 0..wide {
            let part = csv_row(row * wide + k);
            out.write_all(part.trim_end().as_bytes()).unwrap();
            out.write_all(if k + 1 == wide { b"\n" } else { b"," })
                .unwrap();
        }
    }
    out.flush().unwrap();
}

/// Writes the CSV of [`csv`]'s rows, `rows` of them, a row at a time.
fn write_csv(path: &Path, rows: u64) {
    use std::io::Write;
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    for row in 0..rows {
        out.write_all(csv_row(row).as_bytes()).unwrap();
    }
    out.flush().unwrap();
}

/// `infinisheet import` of `file` into a new sheet of a new `home`: its
/// time and peak RSS.
fn import_with_ours(binary: &Path, home: &Path, file: &Path) -> (Duration, u64) {
    let status = std::process::Command::new(binary)
        .arg("--home")
        .arg(home)
        .args(["-q", "new", "big"])
        .status()
        .unwrap();
    assert!(status.success());
    let os = std::ffi::OsStr::new;
    timed_peak(&[
        binary.as_os_str(),
        os("--home"),
        home.as_os_str(),
        os("-q"),
        os("import"),
        os("big"),
        file.as_os_str(),
    ])
    .unwrap()
}

/// The median of `runs` by time (the later of the two middle ones for
/// an even count), with its peak RSS; `None` for no run.
fn median(mut runs: Vec<(Duration, u64)>) -> Option<(Duration, u64)> {
    runs.sort();
    runs.get(runs.len() / 2).copied()
}

/// Import at scale, through each tool's command, in one run against the
/// same generated file: `infinisheet import` (its snapshot included),
/// `sqlite3 .import` and DuckDB's `read_csv` into a database file (the
/// Python of `$INFINISHEET_DUCKDB_PYTHON`, which `cargo xtask bench`
/// installs; skipped, loudly, without it): the median time, with its peak
/// RSS, of 5 turns each at 1M and 10M cells and 3 at 100M (3 at 10,000
/// cells when the benchmark runs as a test of itself).
/// Then 10M cells in 10,000 columns through `infinisheet import` alone
/// (`sqlite3` takes at most 2,000 columns): a band of 100 rows is a
/// million cells there, more than a streamed snapshot holds.
fn scale(_: &mut Criterion) {
    // Not a criterion function (its own rounds, timed from outside): a filter given on
    // the command line that does not match `bulk/scale` skips it.
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|arg| !arg.starts_with('-'))
        .collect();
    if !filters.is_empty() && !filters.iter().any(|f| "bulk/scale".contains(f.as_str())) {
        return;
    }
    let sizes: &[u64] = if measuring() {
        &[1_000_000, 10_000_000, 100_000_000]
    } else {
        &[10_000]
    };
    let binary = infinisheet_benches::command_binary();
    let duckdb = std::env::var_os("INFINISHEET_DUCKDB_PYTHON");
    if duckdb.is_none() {
        eprintln!(
            "\n!!! bulk/scale: DuckDB SKIPPED: no $INFINISHEET_DUCKDB_PYTHON (cargo xtask bench \
             installs DuckDB and sets it) !!!\n"
        );
    }
    const DUCKDB: &str = "import duckdb, sys\n\
        con = duckdb.connect(sys.argv[1])\n\
        con.execute(\"create table t as select * from read_csv(?, header=false, all_varchar=true)\", [sys.argv[2]])\n\
        con.close()";
    // Every size's files stay until the last ran: a file system that just
    // deleted many files can be slower to create the next (ext4 without a
    // journal looks through the inodes deleted in the last five minutes),
    // which would slow the rounds after a delete, ours (a file per tile)
    // far more than the other tools' (a file each). About 3.5 GB at most.
    let work = tempfile::tempdir().unwrap();
    for &cells in sizes {
        let work = work.path().join(format!("{cells}"));
        std::fs::create_dir(&work).unwrap();
        let file = work.join("data.csv");
        write_csv(&file, cells / u64::from(COLUMNS));
        let csv_mib = disk_bytes(&file) as f64 / f64::from(1 << 20);
        let os = |s: &'static str| std::ffi::OsStr::new(s);
        // One run is noise at a tenth of a second: each tool runs the same
        // number of rounds, taking turns, and its median run is shown.
        let rounds = if measuring() && cells < 100_000_000 {
            5
        } else {
            3
        };
        let (mut ours, mut sqlite, mut duck) = (Vec::new(), Vec::new(), Vec::new());
        let mut on_disk = 0;
        for round in 0..rounds {
            let home = work.join(format!("home{round}"));
            ours.push(import_with_ours(&binary, &home, &file));
            on_disk = disk_bytes(&home);
            let db = work.join("reference.db");
            let import = std::ffi::OsString::from(format!(".import --csv {} t", file.display()));
            sqlite.extend(timed_peak(&[os("sqlite3"), db.as_os_str(), &import]));
            let _ = std::fs::remove_file(&db);
            duck.extend(duckdb.as_ref().and_then(|python| {
                let db = work.join("reference.duckdb");
                let took = timed_peak(&[
                    python,
                    os("-c"),
                    os(DUCKDB),
                    db.as_os_str(),
                    file.as_os_str(),
                ]);
                let _ = std::fs::remove_file(&db);
                took
            }));
        }
        let ours = median(ours).unwrap();
        let (sqlite, duck) = (median(sqlite), median(duck));
        let show = |(took, kib): (Duration, u64)| {
            format!(
                "{:.2} s, {:.0} MiB",
                took.as_secs_f64(),
                kib as f64 / 1024.0
            )
        };
        let against = |reference: Option<(Duration, u64)>, name: &str| match reference {
            Some(reference) => format!(
                "{name} {} ({:.2}x)",
                show(reference),
                ours.0.as_secs_f64() / reference.0.as_secs_f64()
            ),
            None => format!("{name} SKIPPED"),
        };
        eprintln!(
            "bulk/scale {cells} cells ({csv_mib:.0} MiB of CSV), median of {rounds} runs each: \
             infinisheet import {} ({:.2}x the CSV on disk); {}; {}",
            show(ours),
            on_disk as f64 / disk_bytes(&file) as f64,
            against(sqlite, "sqlite3 .import"),
            against(duck, "DuckDB read_csv"),
        );
    }
    let (rows, wide) = if measuring() {
        (1_000, 1_000)
    } else {
        (10, 100)
    };
    let file = work.path().join("wide.csv");
    write_wide_csv(&file, rows, wide);
    let (took, kib) = import_with_ours(&binary, &work.path().join("home"), &file);
    eprintln!(
        "bulk/scale {} cells in {} columns ({:.0} MiB of CSV): infinisheet import {:.2} s, \
         {:.0} MiB",
        rows * wide * 10,
        wide * 10,
        disk_bytes(&file) as f64 / f64::from(1 << 20),
        took.as_secs_f64(),
        kib as f64 / 1024.0
    );
}

criterion_group!(benches, snapshot, import, scale);
criterion_main!(benches);
