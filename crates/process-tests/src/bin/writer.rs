//! The child process of the multi-process and crash tests.
//!
//! ```text
//! infinisheet-writer sqlite-log <db> <log> <writer> <count>   append, print `ack <seq> <writer> <n>`
//! infinisheet-writer fs-log <dir> <writer> <count>            the same on a filesystem log (64 KiB segments)
//! infinisheet-writer fs-blobs <root> <count>                  replace blob d/b with versions, print `ack <v>`
//! infinisheet-writer s3-log <prefix> <writer> <count>         append to the log under <prefix> of the
//!                                                             bucket the AWS_* environment names
//! infinisheet-writer pg-log <log> <writer> <count>            append to log <log> of the PostgreSQL
//!                                                             database INFINISHEET_POSTGRES_URL names
//!                                                             (not an argument: it holds a password)
//! infinisheet-writer mh-writer <log> <writer> <count> <pace-ms> [--ignore-create]
//!                                                             append and ack to <log> (`s3:PREFIX`,
//!                                                             `http:ID` or `pg:NAME`, see
//!                                                             src/multihost.rs), <pace-ms> apart,
//!                                                             each attempt at most 10 s (the
//!                                                             multi-host test); with
//!                                                             --ignore-create an S3 log's creates
//!                                                             overwrite (the test's self-check)
//! infinisheet-writer mh-tail <log> <total>                    tail the log from 0, print
//!                                                             `entry <seq> <writer> <n>` per entry
//!                                                             until <total> have come
//! infinisheet-writer mh-list <log>                            print the whole log as `entry` lines,
//!                                                             then `bounds <start> <end>`
//! infinisheet-writer mh-proxy <listen> <upstream> <source> <seed>
//!                                                             a fault proxy (3 % lost replies,
//!                                                             3 % 503s, up to 5 ms latency)
//!                                                             connecting from <source>; prints
//!                                                             `ready`, and at the end of its
//!                                                             stdin `counts <requests> <lost>
//!                                                             <503s>`
//! infinisheet-writer mh-tcp-proxy <listen> <upstream> <source> <seed>
//!                                                             the same for any TCP protocol
//!                                                             (PostgreSQL's): 1 % of reply pieces
//!                                                             lost, the connection cut instead
//! infinisheet-writer mh-sheet-new <path> <interval>             make the sheet <path> of the catalog
//!                                                             INFINISHEET_LOGS and INFINISHEET_BLOBS
//!                                                             name, a snapshot every <interval> edits
//! infinisheet-writer mh-sheet-writer <path> <writer> <count> <pace-ms>
//!                                                             set cell (n, <writer>) to n for each
//!                                                             n below <count>, retried until it
//!                                                             lands; print `ack <writer> <n>`
//! infinisheet-writer mh-sheet-check <path> <columns> <rows>   `infinisheet check` the sheet and read
//!                                                             it back cold: `problem <text>` lines,
//!                                                             then `cell <column> <row> <value>`
//! infinisheet-writer http-put <host:port> <path>              a bodiless PUT answered 200, tried
//!                                                             for up to a minute (a new bucket;
//!                                                             a server coming up)
//! infinisheet-writer snapshot-worker <db> <blobs>             run the pending snapshot jobs of log
//!                                                             `sheet` in <db> with blobs in <blobs>
//!                                                             (history and retention on), newest
//!                                                             first; print `start <at>` before each
//!                                                             and `done <at> <micros>` after it
//! ```

use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_filesystem::{FsBlobStore, FsEventLog, FsLogOptions};
use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::aws::AmazonS3Builder;
use infinisheet_postgres::{PostgresDatabase, PostgresOptions};
use infinisheet_process_tests::multihost;
use infinisheet_process_tests::{append_and_ack, version, worker_sheet};
use infinisheet_snapshot_workflow::{SnapshotWorker, WorkflowOptions};
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

fn number(text: &str) -> Result<u64, String> {
    text.parse().map_err(|_| format!("bad number {text:?}"))
}

fn writer_id(text: &str) -> Result<u32, String> {
    text.parse().map_err(|_| format!("bad writer id {text:?}"))
}

async fn fs_blobs(root: &str, count: u64) -> Result<(), String> {
    let store = FsBlobStore::open(root).await.map_err(|e| e.to_string())?;
    let dir = store
        .root()
        .open_dir("d")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    for v in 0..count {
        dir.write("b", version(v))
            .await
            .map_err(|e| e.to_string())?;
        writeln!(out, "ack {v}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn snapshot_worker(db: &str, blobs: &str) -> Result<(), String> {
    let db = SqliteDatabase::open(db, SqliteOptions::default())
        .await
        .map_err(|e| e.to_string())?;
    let log = Arc::new(
        db.open_or_create_log("sheet")
            .await
            .map_err(|e| e.to_string())?,
    );
    let dir = FsBlobStore::open(blobs)
        .await
        .map_err(|e| e.to_string())?
        .root();
    let options = WorkflowOptions::default()
        .sheet(worker_sheet())
        .history(2)
        .keep_snapshots(2);
    let worker = SnapshotWorker::new(log, dir, options);
    let pending = worker.pending().await.map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    for at in pending.into_iter().rev() {
        writeln!(out, "start {at}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        worker.run_job(at).await.map_err(|e| e.to_string())?;
        let micros = started.elapsed().as_micros();
        writeln!(out, "done {at} {micros}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn run(args: &[String]) -> Result<(), String> {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args[..] {
        ["sqlite-log", db, log, writer, count] => {
            let db = SqliteDatabase::open(db, SqliteOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            let log = db
                .open_or_create_log(log)
                .await
                .map_err(|e| e.to_string())?;
            append_and_ack(&log, writer_id(writer)?, number(count)?).await
        }
        ["fs-log", dir, writer, count] => {
            let options = FsLogOptions::default().segment_bytes(64 * 1024);
            let log = FsEventLog::open(dir, options)
                .await
                .map_err(|e| e.to_string())?;
            append_and_ack(&log, writer_id(writer)?, number(count)?).await
        }
        ["fs-blobs", root, count] => fs_blobs(root, number(count)?).await,
        ["s3-log", prefix, writer, count] => {
            infinisheet_object_store::install_tls();
            let store = AmazonS3Builder::from_env()
                .with_retry(infinisheet_process_tests::quick_retries())
                .build()
                .map_err(|e| e.to_string())?;
            let log = ObjectStoreEventLog::open(Arc::new(store), prefix.into())
                .await
                .map_err(|e| e.to_string())?;
            append_and_ack(&log, writer_id(writer)?, number(count)?).await
        }
        ["pg-log", log, writer, count] => {
            let url = std::env::var("INFINISHEET_POSTGRES_URL")
                .map_err(|_| "pg-log needs INFINISHEET_POSTGRES_URL".to_owned())?;
            let db = PostgresDatabase::connect(&url, PostgresOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            let log = db
                .open_or_create_log(log)
                .await
                .map_err(|e| e.to_string())?;
            append_and_ack(&log, writer_id(writer)?, number(count)?).await
        }
        ["mh-writer", log, writer, count, pace, ref rest @ ..] => {
            let ignore_create = match rest {
                [] => false,
                ["--ignore-create"] => true,
                _ => return Err("usage: see the doc comment of src/bin/writer.rs".into()),
            };
            let log = multihost::open(log, ignore_create).await?;
            let pace = std::time::Duration::from_millis(number(pace)?);
            multihost::write(&*log, writer_id(writer)?, number(count)?, pace).await
        }
        ["mh-tail", log, total] => {
            let log = multihost::open(log, false).await?;
            infinisheet_process_tests::tail_and_report(
                &*log,
                number(total)?,
                &mut std::io::stdout().lock(),
            )
            .await
        }
        ["mh-list", log] => {
            let log = multihost::open(log, false).await?;
            infinisheet_process_tests::list_log(&*log, &mut std::io::stdout().lock()).await
        }
        ["mh-proxy", listen, upstream, source, seed] => {
            multihost::proxy(false, listen, upstream, source, number(seed)?).await
        }
        ["mh-tcp-proxy", listen, upstream, source, seed] => {
            multihost::proxy(true, listen, upstream, source, number(seed)?).await
        }
        ["http-put", address, path] => multihost::http_put(address, path).await,
        ["mh-sheet-new", path, interval] => multihost::new_sheet(path, number(interval)?).await,
        ["mh-sheet-writer", path, writer, count, pace] => {
            let pace = std::time::Duration::from_millis(number(pace)?);
            multihost::edit_sheet(path, writer_id(writer)?, number(count)?, pace).await
        }
        ["mh-sheet-check", path, columns, rows] => {
            multihost::check_sheet(path, writer_id(columns)?, writer_id(rows)?).await
        }
        ["snapshot-worker", db, blobs] => snapshot_worker(db, blobs).await,
        _ => Err("usage: see the doc comment of src/bin/writer.rs".into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start a runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("infinisheet-writer: {err}");
            ExitCode::FAILURE
        }
    }
}
