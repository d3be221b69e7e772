//! The crash-point sweep (see `infinisheet_process_tests::sweep`): every
//! durable operation of the filesystem and SQLite backends, killed or
//! failed at its system calls. `cargo xtask test` runs a sample of the
//! points (the first and last call of each kind, and every
//! `INFINISHEET_SWEEP_EVERY`-th of those between, from
//! `INFINISHEET_SWEEP_OFFSET` or a random offset); `cargo xtask sweep`
//! runs all of them.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_process_tests::sweep::{self, Tally, Workload};
use std::path::Path;

const CHILD: &str = env!("CARGO_BIN_EXE_infinisheet-crashpoint");

fn every() -> usize {
    std::env::var("INFINISHEET_SWEEP_EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

async fn sweep_workload(workload: Workload) {
    let base = tempfile::tempdir().unwrap();
    sweep::prepare(workload, base.path()).await;
    let (counts, elsewhere) = sweep::count_calls(Path::new(CHILD), workload, base.path());
    assert_eq!(elsewhere, 0, "storage calls ran off the main thread");
    let every = every();
    // A different sample on each run of a sampled sweep, printed first so
    // a failure can be run again (INFINISHEET_SWEEP_OFFSET).
    let offset = std::env::var("INFINISHEET_SWEEP_OFFSET")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            if every > 1 {
                fastrand::usize(..every)
            } else {
                0
            }
        });
    eprintln!(
        "sweep {}: every {every}, offset {offset} (INFINISHEET_SWEEP_OFFSET={offset} repeats it)",
        workload.name()
    );
    let points = sweep::points(&counts, every, offset);
    let mut tally = Tally::default();
    let mut failures = Vec::new();
    for (fault, syscall, n) in &points {
        let (one, why) =
            sweep::run_point(Path::new(CHILD), workload, base.path(), *fault, syscall, *n).await;
        tally.add(one);
        failures.extend(why);
    }
    eprintln!(
        "sweep {}: {} points (every {every}, offset {offset}) over {counts:?}: {tally:?}",
        workload.name(),
        tally.points
    );
    assert!(tally.points > 0);
    assert!(
        tally.clean(),
        "{} of {} points failed:\n{}",
        failures.len(),
        tally.points,
        failures.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn filesystem_log_survives_every_crash_point() {
    sweep_workload(Workload::FsLog).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn filesystem_blobs_survive_every_crash_point() {
    sweep_workload(Workload::FsBlobs).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_log_survives_every_crash_point() {
    sweep_workload(Workload::SqliteLog).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_blobs_survive_every_crash_point() {
    sweep_workload(Workload::SqliteBlobs).await;
}
