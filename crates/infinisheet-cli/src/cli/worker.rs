//! `worker`: a polling snapshot worker for a catalog's sheets, as its own
//! process.

use super::Place;
use infinisheet::SnapshotWorker;
use std::collections::{HashMap, HashSet};
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(crate) struct Worker {
    /// The sheets to work for; every sheet in the catalog (looked for again
    /// each pass) if left out.
    sheets: Vec<String>,
    /// Seconds between passes.
    #[arg(long, default_value_t = 1.0)]
    interval: f64,
    /// Run one pass and exit.
    #[arg(long)]
    once: bool,
    /// Archive entries older than the newest N snapshot segments into
    /// history blobs and truncate the log.
    #[arg(long, value_name = "N")]
    history: Option<u32>,
    /// Keep the newest N snapshots and remove older ones.
    #[arg(long, value_name = "N")]
    keep_snapshots: Option<u32>,
}

pub(crate) async fn run(place: &Place, args: Worker) -> anyhow::Result<()> {
    let catalog = place.catalog().await?;
    let interval =
        Duration::try_from_secs_f64(args.interval.max(0.01)).unwrap_or(Duration::from_secs(1));
    // By identity and log: a sheet's data directory is its identity's, so
    // a sheet keeps its worker across `mv`, a path that now holds another
    // sheet (`rm` and `new`) gets one of its own, and a worker is dropped
    // once no path holds its sheet. (A sheet of format 1 keeps its data
    // in its own directory: it is keyed by path instead.)
    let mut workers: HashMap<(String, String), SnapshotWorker> = HashMap::new();
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    loop {
        let sheets = if args.sheets.is_empty() {
            catalog.sheets("").await?
        } else {
            args.sheets.clone()
        };
        let mut seen = HashSet::new();
        for path in sheets {
            // Looked up again on every pass: the catalog says which log the
            // path holds now.
            let sheet = match catalog.open_sheet(&path).await {
                Ok(sheet) => sheet,
                Err(err) if args.sheets.is_empty() => {
                    eprintln!("warning: skipping {path}: {err}");
                    continue;
                }
                Err(err) => return Err(err.into()),
            };
            let metadata = sheet.metadata();
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
                        outln!("{path}: published snapshot on entry {}", value.sequence_id);
                    }
                    for (at, err) in &report.failed {
                        eprintln!("warning: {path}: the snapshot job on entry {at} failed: {err}");
                    }
                }
                Err(err) => eprintln!("warning: {path}: {err}"),
            }
        }
        workers.retain(|key, _| seen.contains(key));
        if args.once {
            return Ok(());
        }
        tokio::select! {
            _ = &mut stop => return Ok(()),
            () = tokio::time::sleep(interval) => {}
        }
    }
}
