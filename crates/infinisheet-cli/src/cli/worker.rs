//! `worker`: a polling snapshot worker for a catalog's sheets, as its own
//! process.

use super::Place;
use infinisheet::SnapshotWorker;
use infinisheet::workflow::MaintenanceReport;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(crate) struct Worker {
    /// The sheets to work for; every sheet in the catalog (looked for again
    /// each pass) if left out.
    sheets: Vec<String>,
    /// Seconds between passes (0.01 to 86,400, a day).
    #[arg(long, default_value_t = 1.0, value_parser = interval_seconds)]
    interval: f64,
    /// Run one pass and exit (1 if a job, a sheet or its upkeep failed:
    /// the warnings say which).
    #[arg(long)]
    once: bool,
    /// Seconds between passes over every sheet (60 to 604,800, a week).
    /// Between them a pass reads only the markers that edits making a
    /// snapshot due leave (one listing), and works on those sheets alone;
    /// the passes over every sheet find jobs no marker names (an editor
    /// killed between its edit and the marker). The first pass goes over
    /// every sheet.
    #[arg(long, default_value_t = 3600.0, value_parser = sweep_seconds)]
    sweep_every: f64,
    /// Archive entries older than the newest N snapshot segments into
    /// history blobs and truncate the log.
    #[arg(long, value_name = "N")]
    history: Option<u32>,
    /// Keep the newest N snapshots and remove older ones.
    #[arg(long, value_name = "N")]
    keep_snapshots: Option<u32>,
}

/// The most seconds between passes: a day.
const MAX_INTERVAL: f64 = 86_400.0;

/// `--interval`: a number of seconds from 0.01 to a day (NaN, infinities
/// and 1e300 were taken, and quietly became one second).
fn interval_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| "not a number of seconds".to_owned())?;
    // clap's message names the value given: this one says what to give.
    if seconds.is_finite() && (0.01..=MAX_INTERVAL).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(format!("give 0.01 to {MAX_INTERVAL} seconds (a day)"))
    }
}

/// `--sweep-every`: a number of seconds from a minute to a week.
fn sweep_seconds(text: &str) -> Result<f64, String> {
    let seconds: f64 = text
        .trim()
        .parse()
        .map_err(|_| "not a number of seconds".to_owned())?;
    if seconds.is_finite() && (60.0..=604_800.0).contains(&seconds) {
        Ok(seconds)
    } else {
        Err("give 60 to 604800 seconds (a week)".to_owned())
    }
}

pub(crate) async fn run(place: &Place, args: Worker) -> anyhow::Result<()> {
    // In range: `interval_seconds` took it.
    let interval = Duration::from_secs_f64(args.interval);
    // A long-running worker waits out storage that cannot be reached yet
    // (a retryable error: a server busy or cut off), as it does a failed
    // pass; `--once` says why at once.
    let catalog = loop {
        match place.catalog().await {
            Ok(catalog) => break catalog,
            Err(err) if !args.once && is_retryable(&err) => {
                if !super::quiet() {
                    eprintln!("worker: {}; trying again", super::one_line(&err));
                }
                tokio::time::sleep(interval.max(Duration::from_secs(1))).await;
            }
            Err(err) => return Err(err),
        }
    };
    // By identity and log: a sheet's data directory is its identity's, so
    // a sheet keeps its worker across `mv`, a path that now holds another
    // sheet (`rm` and `new`) gets one of its own, and a worker is dropped
    // once no path holds its sheet. (A sheet of format 1 keeps its data
    // in its own directory: it is keyed by path instead.)
    let mut workers: HashMap<(String, String), SnapshotWorker> = HashMap::new();
    let mut stop = stop_signal()?;
    if !super::quiet() {
        let sheets = if args.sheets.is_empty() {
            "all sheets".to_owned()
        } else {
            args.sheets.join(", ")
        };
        if args.once {
            eprintln!("worker: one pass over {sheets}");
        } else {
            eprintln!(
                "worker: {sheets} every {}s; Ctrl-C or SIGTERM finishes the work in hand and stops",
                args.interval
            );
        }
    }
    let sweep_every = Duration::from_secs_f64(args.sweep_every);
    let mut last_sweep: Option<std::time::Instant> = None;
    // As the catalog writes paths (a marker holds one): no slashes around.
    let named: Vec<String> = args
        .sheets
        .iter()
        .map(|path| path.trim_matches('/').to_owned())
        .collect();
    loop {
        // What failed in this pass (`--once` ends in an error if anything
        // did).
        let mut failed = 0u64;
        // The markers first: a marker listed now names a job the log
        // already holds.
        let due = match catalog.due_sheets().await {
            Ok(due) => due,
            Err(err) => {
                eprintln!("warning: cannot read which sheets have work ({err}): going over all");
                last_sweep = None;
                Vec::new()
            }
        };
        let sweep = last_sweep.is_none_or(|at| at.elapsed() >= sweep_every);
        // Whether this pass saw every sheet of the catalog (so markers of
        // sheets it did not see name sheets that are no more).
        let mut saw_all = sweep && named.is_empty();
        let sheets = if sweep {
            if named.is_empty() {
                match catalog.sheets("").await {
                    Ok(sheets) => sheets,
                    // Tried again next pass: a worker outlives outages.
                    Err(err) => {
                        eprintln!("warning: cannot list the sheets: {err}");
                        saw_all = false;
                        Vec::new()
                    }
                }
            } else {
                named.clone()
            }
        } else {
            let mut marked: Vec<String> = due
                .iter()
                .map(|sheet| sheet.path.clone())
                .filter(|path| named.is_empty() || named.contains(path))
                .collect();
            marked.sort();
            marked.dedup();
            marked
        };
        let mut seen = HashSet::new();
        let mut keys = HashSet::new();
        for path in sheets {
            if stopping(&stop) {
                return Ok(());
            }
            // Looked up again on every pass: the catalog says which log the
            // path holds now.
            let sheet = match catalog.open_sheet(&path).await {
                Ok(sheet) => sheet,
                Err(err) if named.is_empty() || !sweep => {
                    saw_all = false;
                    // A marked sheet moved or removed since: the next pass
                    // goes over every sheet.
                    if !sweep {
                        last_sweep = None;
                    }
                    eprintln!("warning: skipping {path}: {err}");
                    continue;
                }
                Err(err) => return Err(err.into()),
            };
            let metadata = sheet.metadata();
            keys.insert(infinisheet::marker_key(metadata));
            let marked: Vec<&infinisheet::DueSheet> = due
                .iter()
                .filter(|due| due.sheet == infinisheet::marker_key(metadata))
                .collect();
            if !sweep && marked.is_empty() {
                // The marker's path holds another sheet now.
                last_sweep = None;
                continue;
            }
            let place = metadata
                .id
                .map_or_else(|| path.clone(), |id| id.to_string());
            let key = (place, metadata.log_id.clone());
            seen.insert(key.clone());
            let worker = match workers.get(&key) {
                Some(worker) => worker.clone(),
                None => {
                    let mut options = sheet.workflow_options();
                    if let Some(segments) = args.history {
                        options = options.history(segments);
                    }
                    if let Some(keep) = args.keep_snapshots {
                        options = options.keep_snapshots(keep);
                    }
                    let worker = SnapshotWorker::new(sheet.log(), sheet.dir(), options);
                    workers.insert(key, worker.clone());
                    worker
                }
            };
            match worker.poll_once().await {
                Ok(report) => {
                    for value in &report.published {
                        saidln!("{path}: published snapshot on entry {}", value.sequence_id);
                    }
                    for (at, err) in &report.failed {
                        eprintln!("warning: {path}: the snapshot job on entry {at} failed: {err}");
                        failed += 1;
                    }
                    if let Some(done) = &report.maintenance {
                        say_maintained(&path, done)?;
                    }
                    if let Some(err) = &report.maintenance_failed {
                        eprintln!("warning: {path}: archiving or cleanup failed: {err}");
                        failed += 1;
                    }
                    if report.failed.is_empty() {
                        // Done with what the markers listed named.
                        for due in marked {
                            if let Err(err) = catalog.clear_due(due).await {
                                eprintln!("warning: {path}: {err}");
                            }
                        }
                    }
                }
                Err(err) => {
                    eprintln!("warning: {path}: {err}");
                    failed += 1;
                }
            }
        }
        if sweep {
            last_sweep = Some(std::time::Instant::now());
        }
        if saw_all {
            // Only a pass over every sheet sees every sheet that still is;
            // the markers of sheets that are no more go.
            workers.retain(|key, _| seen.contains(key));
            for gone in due.iter().filter(|due| !keys.contains(&due.sheet)) {
                if let Err(err) = catalog.clear_due(gone).await {
                    eprintln!("warning: {err}");
                }
            }
            // And the `.live/` markers of writers that ended long ago.
            if let Err(err) = catalog.sweep_live_markers().await {
                eprintln!("warning: {err}");
            }
        }
        if args.once {
            if failed > 0 {
                anyhow::bail!(
                    "{} of this pass failed (see the warnings above); the jobs stay pending",
                    super::counted(failed, "step", "steps")
                );
            }
            return Ok(());
        }
        tokio::select! {
            _ = stop.changed() => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// What maintenance without a new snapshot did to `path` (a worker's first
/// pass with `--history` or `--keep-snapshots`).
fn say_maintained(path: &str, done: &MaintenanceReport) -> anyhow::Result<()> {
    if let Some(start) = done.truncated_to {
        saidln!("{path}: archived history; the log now starts at entry {start}");
    }
    if let Some(cleanup) = &done.cleanup
        && !cleanup.removed.is_empty()
    {
        saidln!(
            "{path}: removed {}",
            super::counted(
                cleanup.removed.len() as u64,
                "old snapshot",
                "old snapshots"
            )
        );
    }
    Ok(())
}

/// Whether a stop was asked for.
fn stopping(stop: &tokio::sync::watch::Receiver<bool>) -> bool {
    *stop.borrow()
}

/// A flag that turns true at the first Ctrl-C (SIGINT) or SIGTERM: the
/// worker finishes the job in hand and exits 0, as litestream does. A
/// second signal ends the process at once (exit 130).
pub(crate) fn stop_signal() -> anyhow::Result<tokio::sync::watch::Receiver<bool>> {
    let (tx, rx) = tokio::sync::watch::channel(false);
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        tokio::spawn(async move {
            let mut first = true;
            loop {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
                if !first {
                    std::process::exit(130);
                }
                first = false;
                super::note("stopping after the work in hand (again to stop at once)");
                let _ = tx.send(true);
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            let _ = tx.send(true);
        }
    });
    Ok(rx)
}

/// Whether `err` (or what caused it) is a storage error worth trying again.
fn is_retryable(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause
            .downcast_ref::<infinisheet::StorageError>()
            .is_some_and(infinisheet::StorageError::is_retryable)
    })
}
