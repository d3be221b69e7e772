//! The crash-point sweep: a workload of durable operations runs in a child
//! process (`infinisheet-crashpoint`) under `strace`, which kills it
//! (SIGKILL) or fails one call (`ENOSPC`, `EIO`) at the N-th `write`,
//! `pwrite64`, `fsync`, `fdatasync`, `rename`, `openat`, `ftruncate` or
//! `unlink` it makes, for every N. After each point the store is opened
//! afresh and checked: it opens, it holds exactly the state after the
//! acknowledged operations, or after those and the one in flight (never
//! anything half done or different), and it takes a write again.
//!
//! The workloads are the same list of operations for the child and the
//! checker ([`log_ops`], [`blob_ops`]); their results are models applied
//! operation by operation.

use bytes::Bytes;
use infinisheet_blob_store::{BlobDirExt, BlobStore, EntryKind};
use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd, QueryStart,
};
use infinisheet_filesystem::{FsBlobStore, FsEventLog, FsLogOptions};
use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;

/// What the child runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// [`log_ops`] on a filesystem log with 512-byte segments (a roll-over
    /// every few appends, batches included).
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

    fn is_log(self) -> bool {
        matches!(self, Workload::FsLog | Workload::SqliteLog)
    }
}

/// How a point stops or fails the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL on entering the call.
    Kill,
    /// The call fails with this errno, once; later calls succeed (space
    /// was freed, the device recovered).
    Fail(&'static str),
}

impl Fault {
    /// The system calls this fault is injected into.
    pub fn syscalls(self) -> &'static [&'static str] {
        match self {
            Fault::Kill => &[
                "write",
                "pwrite64",
                "fsync",
                "fdatasync",
                "rename",
                "renameat",
                "renameat2",
                "openat",
                "ftruncate",
                "unlink",
                "unlinkat",
            ],
            Fault::Fail("ENOSPC") => &[
                "write",
                "pwrite64",
                "openat",
                "ftruncate",
                "rename",
                "renameat",
                "renameat2",
            ],
            Fault::Fail(_) => &["write", "pwrite64", "fsync", "fdatasync"],
        }
    }

    fn inject(self, syscall: &str, n: usize) -> String {
        match self {
            Fault::Kill => format!("inject={syscall}:signal=SIGKILL:when={n}"),
            Fault::Fail(errno) => format!("inject={syscall}:error={errno}:when={n}"),
        }
    }
}

/// The faults every sweep tries.
pub const FAULTS: [Fault; 3] = [Fault::Kill, Fault::Fail("ENOSPC"), Fault::Fail("EIO")];

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

fn snapshot_name(seq: u64) -> String {
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
            let options = FsLogOptions::default().segment_bytes(512);
            let log = FsEventLog::open(dir.join("log"), options)
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(log))
        }
        Workload::SqliteLog => {
            let db = SqliteDatabase::open(dir.join("logs.db"), SqliteOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            Ok(Arc::new(db.log("sweep").await.map_err(|e| e.to_string())?))
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
async fn check_log(workload: Workload, dir: &Path, acked: usize) -> Result<(), (Problem, String)> {
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
    let (_, end) = log
        .bounds()
        .await
        .map_err(|e| (Problem::Stuck, e.to_string()))?;
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

async fn check_blobs(
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
enum Problem {
    Unopenable,
    Lost,
    Wrong,
    Stuck,
}

/// The traced calls the workload makes in the child binary `child`
/// (`CARGO_BIN_EXE_infinisheet-crashpoint`) after it says `begin`, per system
/// call: `(calls before begin, calls in all)` on the child's main thread.
/// Also returns how many such calls other threads made after `begin`
/// (points there are not reachable by a per-thread counter).
pub fn count_calls(
    child: &Path,
    workload: Workload,
    base: &Path,
) -> (BTreeMap<String, (usize, usize)>, usize) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    copy_tree(base, &dir);
    let trace = scratch.path().join("trace");
    let all = FAULTS
        .iter()
        .flat_map(|f| f.syscalls().iter().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(",");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-s", "16", "-e"])
        .arg(format!("trace={all}"))
        .arg("-o")
        .arg(&trace)
        .arg(child)
        .arg(workload.name())
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .expect("strace runs (cargo xtask installs it)");
    assert!(status.success(), "the workload fails without faults");
    let text = std::fs::read_to_string(&trace).unwrap();
    let mut main_pid = None;
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut begun = false;
    let mut elsewhere = 0;
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(name) = rest.split('(').next().filter(|n| !n.contains(' ')) else {
            continue; // a resumed or exit line
        };
        if rest.starts_with("<...") || rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        let main = *main_pid.get_or_insert(pid);
        if pid != main {
            if begun {
                elsewhere += 1;
            }
            continue;
        }
        let count = counts.entry(name.to_owned()).or_default();
        count.1 += 1;
        if !begun {
            count.0 += 1;
        }
        if name == "write" && rest.starts_with("write(1, \"begin\\n\"") {
            begun = true;
        }
    }
    assert!(begun, "the child said begin");
    (counts, elsewhere)
}

/// Copies the files of `from` to `to` (directories recursively).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs the workload with `fault` at the `n`-th `syscall` of its main
/// thread, then checks the store. Returns the tally of this one point and,
/// if it failed, why.
pub async fn run_point(
    child: &Path,
    workload: Workload,
    base: &Path,
    fault: Fault,
    syscall: &str,
    n: usize,
) -> (Tally, Option<String>) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    copy_tree(base, &dir);
    let output = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(fault.inject(syscall, n))
        .arg(child)
        .arg(workload.name())
        .arg(&dir)
        .stderr(Stdio::piped())
        .output()
        .expect("strace runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let acked = stdout.lines().filter(|l| l.starts_with("ack ")).count();
    let finished = stdout.lines().any(|l| l == "done");
    let mut tally = Tally {
        points: 1,
        ..Tally::default()
    };
    let mut why = None;
    let label = format!("{} {fault:?} at {syscall} #{n}", workload.name());
    // An injected error must leave the child's own handle working: it
    // retries the call and goes on to the end (unless the error hit the
    // very line it reports with, when it stops).
    let reported = !String::from_utf8_lossy(&output.stderr).contains("cannot report");
    if matches!(fault, Fault::Fail(_)) && !finished && reported {
        tally.unrecovered += 1;
        why = Some(format!(
            "{label}: the child did not recover: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let checked = if workload.is_log() {
        check_log(workload, &dir, acked).await
    } else {
        check_blobs(workload, &dir, acked).await
    };
    if let Err((problem, message)) = checked {
        match problem {
            Problem::Unopenable => tally.unopenable += 1,
            Problem::Lost => tally.lost += 1,
            Problem::Wrong => tally.wrong += 1,
            Problem::Stuck => tally.stuck += 1,
        }
        why = Some(format!(
            "{label} ({acked} acknowledged): {problem:?}: {message}"
        ));
    }
    (tally, why)
}

/// Every point of a workload: each fault at each call after `begin`. With
/// `every > 1`, only every `every`-th point (offset by `offset`), for a
/// sample that still reaches every call type.
pub fn points(
    counts: &BTreeMap<String, (usize, usize)>,
    every: usize,
    offset: usize,
) -> Vec<(Fault, String, usize)> {
    let mut all = Vec::new();
    for fault in FAULTS {
        for syscall in fault.syscalls() {
            if let Some((before, total)) = counts.get(*syscall) {
                for n in before + 1..=*total {
                    all.push((fault, (*syscall).to_owned(), n));
                }
            }
        }
    }
    all.into_iter()
        .enumerate()
        .filter(|(i, _)| every <= 1 || i % every == offset % every)
        .map(|(_, p)| p)
        .collect()
}
