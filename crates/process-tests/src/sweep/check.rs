//! What a point leaves: the store checked against the models of the
//! acknowledged operations, and the tally of points.

use super::workload::{
    BlobOp, LOG_BASE, LogOp, Workload, blob_content, blob_ops, entry_payload, log_ops, open_blobs,
    open_log, snapshot_name,
};
use infinisheet_blob_store::{BlobDirExt, BlobStore, EntryKind};
use infinisheet_event_log::{EventLog, EventLogExt, KnownSnapshot, LogEntry, QueryEnd, QueryStart};
use std::collections::BTreeMap;
use std::path::Path;

/// The state of a log: bounds and the snapshot named on each entry.
#[derive(Clone, Debug, PartialEq, Eq)]
struct LogModel {
    start: u64,
    end: u64,
    snapshots: BTreeMap<u64, String>,
}

impl LogModel {
    fn base() -> Self {
        LogModel {
            start: 0,
            end: LOG_BASE,
            snapshots: BTreeMap::new(),
        }
    }

    fn apply(&mut self, op: LogOp) {
        match op {
            LogOp::Append { seq, count } => self.end = seq + count,
            LogOp::Publish { seq } => {
                self.snapshots.insert(seq, snapshot_name(seq));
            }
            LogOp::Truncate { start } => {
                self.start = start;
                self.snapshots = self.snapshots.split_off(&start);
            }
        }
    }
}

/// What one point did and found.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Points run.
    pub points: usize,
    /// Points whose store did not open afterwards.
    pub unopenable: usize,
    /// Points after which an acknowledged operation was missing.
    pub lost: usize,
    /// Points after which the store held something no model allows.
    pub wrong: usize,
    /// Points after which the store took no write.
    pub stuck: usize,
    /// Error points where the child's own handle did not recover.
    pub unrecovered: usize,
}

impl Tally {
    /// Adds another tally.
    pub fn add(&mut self, other: Tally) {
        self.points += other.points;
        self.unopenable += other.unopenable;
        self.lost += other.lost;
        self.wrong += other.wrong;
        self.stuck += other.stuck;
        self.unrecovered += other.unrecovered;
    }

    /// Whether every point held.
    pub fn clean(&self) -> bool {
        self.unopenable + self.lost + self.wrong + self.stuck + self.unrecovered == 0
    }
}

/// Checks a log after a point: `acked` operations were acknowledged, and
/// the one after them may or may not have happened. Returns what failed.
pub(super) async fn check_log(
    workload: Workload,
    dir: &Path,
    acked: usize,
) -> Result<(), (Problem, String)> {
    let log = open_log(workload, dir)
        .await
        .map_err(|e| (Problem::Unopenable, e))?;
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .map_err(|e| (Problem::Unopenable, format!("reading: {e}")))?;
    for (entry, seq) in all.entries.iter().zip(all.start..) {
        if entry.payload != entry_payload(seq) {
            return Err((Problem::Wrong, format!("entry {seq} holds other bytes")));
        }
    }
    let found = LogModel {
        start: all.start,
        end: all.end,
        snapshots: all
            .entries
            .iter()
            .zip(all.start..)
            .filter_map(|(e, seq)| e.metadata.snapshot.clone().map(|s| (seq, s)))
            .collect(),
    };
    let ops = log_ops();
    let mut done = LogModel::base();
    for op in &ops[..acked] {
        done.apply(*op);
    }
    let mut in_flight = done.clone();
    if let Some(op) = ops.get(acked) {
        in_flight.apply(*op);
    }
    if found != done && found != in_flight {
        let problem = if found.end < done.end || found.start < done.start {
            Problem::Lost
        } else {
            Problem::Wrong
        };
        return Err((
            problem,
            format!("found {found:?}, expected {done:?} or {in_flight:?}"),
        ));
    }
    let seq = all.end;
    log.add_entry(
        LogEntry::new(entry_payload(seq)),
        seq,
        KnownSnapshot::NotTracked,
    )
    .await
    .map_err(|e| (Problem::Stuck, e.to_string()))?;
    drop(log);
    let log = open_log(workload, dir)
        .await
        .map_err(|e| (Problem::Unopenable, format!("after a write: {e}")))?;
    let end = log
        .bounds()
        .await
        .map_err(|e| (Problem::Stuck, e.to_string()))?
        .end;
    if end != seq + 1 {
        return Err((
            Problem::Stuck,
            format!("the new entry did not stay: end {end}"),
        ));
    }
    Ok(())
}

/// Every blob of a store and its version, walking directories.
async fn blob_versions(store: &dyn BlobStore) -> Result<BTreeMap<String, u64>, String> {
    let mut found = BTreeMap::new();
    let mut dirs = vec![(String::new(), store.root())];
    while let Some((prefix, dir)) = dirs.pop() {
        for entry in dir.list_all().await.map_err(|e| e.to_string())? {
            let path = format!("{prefix}{}", entry.name.as_str());
            match entry.kind {
                EntryKind::Dir => {
                    let child = dir.dir(&entry.name).await.map_err(|e| e.to_string())?;
                    dirs.push((format!("{path}/"), child));
                }
                EntryKind::Blob => {
                    let content = dir
                        .read_blob(&entry.name)
                        .await
                        .map_err(|e| e.to_string())?;
                    let version = (0..10)
                        .find(|v| blob_content(*v) == content)
                        .ok_or_else(|| format!("{path} holds bytes of no version"))?;
                    found.insert(path, version);
                }
            }
        }
    }
    Ok(found)
}

fn blob_model(ops: &[BlobOp]) -> BTreeMap<String, u64> {
    let mut model = BTreeMap::new();
    for op in ops {
        match op {
            BlobOp::Write { path, version } => {
                model.insert((*path).to_owned(), *version);
            }
            BlobOp::Remove { path } => {
                model.remove(*path);
            }
        }
    }
    model
}

pub(super) async fn check_blobs(
    workload: Workload,
    dir: &Path,
    acked: usize,
) -> Result<(), (Problem, String)> {
    let store = open_blobs(workload, dir)
        .await
        .map_err(|e| (Problem::Unopenable, e))?;
    let found = blob_versions(&*store)
        .await
        .map_err(|e| (Problem::Wrong, e))?;
    let ops = blob_ops();
    let done = blob_model(&ops[..acked]);
    let in_flight = blob_model(&ops[..(acked + 1).min(ops.len())]);
    if found != done && found != in_flight {
        let lost = done.iter().any(|(k, v)| found.get(k) < Some(v));
        let problem = if lost { Problem::Lost } else { Problem::Wrong };
        return Err((
            problem,
            format!("found {found:?}, expected {done:?} or {in_flight:?}"),
        ));
    }
    store
        .root()
        .write("after", blob_content(7))
        .await
        .map_err(|e| (Problem::Stuck, e.to_string()))?;
    drop(store);
    let store = open_blobs(workload, dir)
        .await
        .map_err(|e| (Problem::Unopenable, format!("after a write: {e}")))?;
    let back = store
        .root()
        .read("after")
        .await
        .map_err(|e| (Problem::Stuck, e.to_string()))?;
    if back != blob_content(7) {
        return Err((Problem::Stuck, "the new blob did not stay".into()));
    }
    Ok(())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Problem {
    Unopenable,
    Lost,
    Wrong,
    Stuck,
}
