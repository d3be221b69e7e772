//! The workloads: the operations the child runs and the checker models,
//! the payloads they write, and how each opens its store.

use bytes::Bytes;
use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{
    EventLog, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd, QueryStart,
};
use infinisheet_filesystem::{FsBlobStore, FsEventLog, FsLogOptions};
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::path::Path;
use std::sync::Arc;

/// What the child runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// [`log_ops`] on a filesystem log with 512-byte segments (a roll-over
    /// every few appends, batches included) and a checkpoint every 256
    /// bytes (so opening after a crash starts from one).
    FsLog,
    /// [`blob_ops`] on a filesystem blob store.
    FsBlobs,
    /// [`log_ops`] on a SQLite log (`Durability::Full`).
    SqliteLog,
    /// [`blob_ops`] on a SQLite blob store.
    SqliteBlobs,
}

impl Workload {
    /// Every workload.
    pub const ALL: [Workload; 4] = [
        Workload::FsLog,
        Workload::FsBlobs,
        Workload::SqliteLog,
        Workload::SqliteBlobs,
    ];

    /// The name the child takes on its command line.
    pub fn name(self) -> &'static str {
        match self {
            Workload::FsLog => "fs-log",
            Workload::FsBlobs => "fs-blobs",
            Workload::SqliteLog => "sqlite-log",
            Workload::SqliteBlobs => "sqlite-blobs",
        }
    }

    /// The workload a name stands for.
    pub fn parse(name: &str) -> Option<Workload> {
        Workload::ALL.into_iter().find(|w| w.name() == name)
    }

    pub(super) fn is_log(self) -> bool {
        matches!(self, Workload::FsLog | Workload::SqliteLog)
    }
}

/// One operation of a log workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogOp {
    /// Append `count` entries at `seq` (one call; a batch when `count > 1`).
    Append {
        /// The first id.
        seq: u64,
        /// How many entries.
        count: u64,
    },
    /// Publish snapshot `snap-<seq>` on entry `seq`.
    Publish {
        /// The entry.
        seq: u64,
    },
    /// Truncate the log to start at `start`.
    Truncate {
        /// The new start.
        start: u64,
    },
}

/// Entries the parent writes before the child starts.
pub const LOG_BASE: u64 = 12;

/// The log workload: single appends, batches, metadata and truncates, in
/// an order that crosses segment roll-overs on the filesystem log.
pub fn log_ops() -> Vec<LogOp> {
    use LogOp::{Append, Publish, Truncate};
    vec![
        Append { seq: 12, count: 1 },
        Append { seq: 13, count: 1 },
        Append { seq: 14, count: 1 },
        Append { seq: 15, count: 6 },
        Publish { seq: 14 },
        Append { seq: 21, count: 1 },
        Truncate { start: 10 },
        Append { seq: 22, count: 3 },
        Publish { seq: 22 },
        Truncate { start: 16 },
        Append { seq: 25, count: 1 },
        Append { seq: 26, count: 4 },
    ]
}

/// The payload of entry `seq` of the log workloads.
pub fn entry_payload(seq: u64) -> Bytes {
    Bytes::from(format!("entry {seq:04} {}", "abcdefghij".repeat(5)))
}

pub(super) fn snapshot_name(seq: u64) -> String {
    format!("snap-{seq}")
}

/// One operation of a blob workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlobOp {
    /// Write version `version` of the blob at `path`.
    Write {
        /// Names separated by `/`.
        path: &'static str,
        /// Which [`blob_content`].
        version: u64,
    },
    /// Remove the blob at `path`.
    Remove {
        /// Names separated by `/`.
        path: &'static str,
    },
}

/// The blob workload: new blobs, replacements, nested directories, a removal.
pub fn blob_ops() -> Vec<BlobOp> {
    use BlobOp::{Remove, Write};
    vec![
        Write {
            path: "a",
            version: 1,
        },
        Write {
            path: "d/b",
            version: 2,
        },
        Write {
            path: "a",
            version: 3,
        },
        Write {
            path: "d/e/f",
            version: 4,
        },
        Write {
            path: "d/b",
            version: 5,
        },
        Remove { path: "a" },
        Write {
            path: "g",
            version: 6,
        },
    ]
}

/// The content of version `v` of a blob: a few KiB that say their version.
pub fn blob_content(v: u64) -> Bytes {
    crate::version(v)
}

/// The log of a workload in `dir` (created if missing).
pub async fn open_log(workload: Workload, dir: &Path) -> Result<Arc<dyn EventLog>, String> {
    match workload {
        Workload::FsLog => {
            // Tiny segments and checkpoints: roll-overs and checkpoint
            // writes fall between the operations.
            let options = FsLogOptions::default()
                .segment_bytes(512)
                .checkpoint_bytes(256);
            let log = FsEventLog::open(dir.join("log"), options)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(log))
        }
        Workload::SqliteLog => {
            let db = SqliteDatabase::open(dir.join("logs.db"), SqliteOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(
                db.open_or_create_log("sweep")
                    .await
                    .map_err(|e| e.to_string())?,
            ))
        }
        _ => Err(format!("{} has no log", workload.name())),
    }
}

/// The blob store of a workload in `dir`.
pub async fn open_blobs(workload: Workload, dir: &Path) -> Result<Arc<dyn BlobStore>, String> {
    match workload {
        Workload::FsBlobs => Ok(Arc::new(
            FsBlobStore::open(dir.join("blobs"))
                .await
                .map_err(|e| e.to_string())?,
        )),
        Workload::SqliteBlobs => {
            let db = SqliteDatabase::open(dir.join("blobs.db"), SqliteOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(
                db.blob_store("sweep").await.map_err(|e| e.to_string())?,
            ))
        }
        _ => Err(format!("{} has no blob store", workload.name())),
    }
}

/// What the parent prepares before the child runs: the first
/// [`LOG_BASE`] entries of a log workload; nothing for a blob workload
/// (the store is created by the child's open).
pub async fn prepare(workload: Workload, dir: &Path) {
    if workload.is_log() {
        let log = open_log(workload, dir).await.unwrap();
        for seq in 0..LOG_BASE {
            log.add_entry(
                LogEntry::new(entry_payload(seq)),
                seq,
                KnownSnapshot::NotTracked,
            )
            .await
            .unwrap();
        }
    } else {
        open_blobs(workload, dir).await.unwrap();
    }
}

/// Runs one log operation; `Ok` once it is in the log. A failed call is
/// retried (the fault was one call); an append whose reply was an error but
/// that landed is recognised by its entries.
pub async fn run_log_op(log: &dyn EventLog, op: LogOp) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..5 {
        let result = match op {
            LogOp::Append { seq, count } => {
                let entries: Vec<LogEntry> = (seq..seq + count)
                    .map(|s| LogEntry::new(entry_payload(s)))
                    .collect();
                match log
                    .add_entries(entries, seq, KnownSnapshot::NotTracked)
                    .await
                {
                    Ok(_) => Ok(()),
                    Err(infinisheet_event_log::AddEntryError::Conflict { next, .. })
                        if next >= seq + count =>
                    {
                        let page = log
                            .query(
                                QueryStart::Id(seq),
                                QueryEnd::Id(seq + count),
                                KnownSnapshot::NotTracked,
                            )
                            .await
                            .map_err(|e| e.to_string())?;
                        let ours = page.entries.len() as u64 == count
                            && page
                                .entries
                                .iter()
                                .zip(seq..)
                                .all(|(e, s)| e.payload == entry_payload(s));
                        if ours {
                            Ok(())
                        } else {
                            return Err(format!("ids {seq}.. hold other entries"));
                        }
                    }
                    Err(err) => Err(err.to_string()),
                }
            }
            LogOp::Publish { seq } => log
                .set_metadata(seq, MetadataUpdate::publish_snapshot(snapshot_name(seq)))
                .await
                .map_err(|e| e.to_string()),
            LogOp::Truncate { start } => log.truncate(start).await.map_err(|e| e.to_string()),
        };
        match result {
            Ok(()) => return Ok(()),
            Err(err) => last = err,
        }
    }
    Err(last)
}

/// Runs one blob operation, retrying a failed call.
pub async fn run_blob_op(store: &dyn BlobStore, op: BlobOp) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..5 {
        let result = match op {
            BlobOp::Write { path, version } => {
                let (dir, name) = split(path);
                match open_path(store.root(), dir).await {
                    Ok(dir) => dir
                        .write(name, blob_content(version))
                        .await
                        .map_err(|e| e.to_string()),
                    Err(err) => Err(err),
                }
            }
            BlobOp::Remove { path } => {
                let (dir, name) = split(path);
                match open_path(store.root(), dir).await {
                    Ok(dir) => dir.remove(name).await.map_err(|e| e.to_string()),
                    Err(err) => Err(err),
                }
            }
        };
        match result {
            Ok(()) => return Ok(()),
            Err(err) => last = err,
        }
    }
    Err(last)
}

fn split(path: &str) -> (Vec<&str>, &str) {
    let mut parts: Vec<&str> = path.split('/').collect();
    let name = parts.pop().unwrap_or_default();
    (parts, name)
}

/// The directory at a path of names below `root`.
async fn open_path(
    root: Arc<dyn infinisheet_blob_store::BlobDir>,
    path: Vec<&str>,
) -> Result<Arc<dyn infinisheet_blob_store::BlobDir>, String> {
    let mut dir = root;
    for name in path {
        dir = dir.open_dir(name).await.map_err(|e| e.to_string())?;
    }
    Ok(dir)
}
