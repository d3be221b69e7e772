//! The damage sweep: every on-disk format — filesystem log segments, SQLite
//! entries and blobs, snapshot tiles and indexes — has its bytes flipped
//! one at a time and is cut at every length (SQLite: every stored value's
//! bytes, every bit of the indexes' entries, a seeded sample of the whole
//! file, and cuts at every 512 bytes),
//! and each damaged copy is read back. A read is either unchanged or a
//! typed corruption error naming what is damaged; never other data, never
//! a panic. The documented exceptions are counted apart: a bad final frame
//! of the newest segment is a torn append (the log reads back without
//! it), and a newest segment shorter than its magic after a sealed one is a
//! creation that died.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use bytes::Bytes;
use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_engine::{
    Cell, CellRange, CellState, CellValue, LoadError, SheetOptions, SnapshotReadError, Spreadsheet,
};
use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd, QueryStart,
    QueryValue,
};
use infinisheet_filesystem::{FsBlobStore, FsEventLog, FsLogOptions, OpenLogError};
use infinisheet_process_tests::sweep::copy_tree;
use infinisheet_sqlite::{OpenError, SqliteDatabase, SqliteOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How the reads of damaged copies came out.
#[derive(Debug, Default)]
struct Outcomes {
    changes: usize,
    unchanged: usize,
    detected: usize,
    exceptions: usize,
    silent: Vec<String>,
}

impl Outcomes {
    fn assert_clean(&self, format: &str) {
        eprintln!(
            "damage {format}: {} changes: {} read unchanged, {} typed corruption errors, \
             {} documented exceptions, {} silent",
            self.changes,
            self.unchanged,
            self.detected,
            self.exceptions,
            self.silent.len()
        );
        assert!(
            self.changes >= 1_000,
            "{format}: only {} changes",
            self.changes
        );
        assert!(
            self.silent.is_empty(),
            "{format}: {} silent changes, e.g.:\n{}",
            self.silent.len(),
            self.silent[..self.silent.len().min(10)].join("\n")
        );
    }
}

/// What a read found: the same data, a typed corruption error, data the
/// documented exception allows, or something else (described).
enum Read {
    Same,
    Corrupt,
    Exception,
    Other(String),
}

impl Outcomes {
    fn record(&mut self, what: String, read: Read) {
        self.changes += 1;
        match read {
            Read::Same => self.unchanged += 1,
            Read::Corrupt => self.detected += 1,
            Read::Exception => self.exceptions += 1,
            Read::Other(found) => self.silent.push(format!("{what}: {found}")),
        }
    }
}

/// Every way to damage `bytes`: each byte flipped (one bit, rotating), then
/// each length cut.
fn damages(bytes: &[u8]) -> impl Iterator<Item = (String, Vec<u8>)> + '_ {
    let flips = (0..bytes.len()).map(move |at| {
        let mut damaged = bytes.to_vec();
        damaged[at] ^= 1 << (at % 8);
        (format!("byte {at} flipped"), damaged)
    });
    let cuts =
        (0..bytes.len()).map(move |len| (format!("cut to {len} bytes"), bytes[..len].to_vec()));
    flips.chain(cuts)
}

// ---- filesystem log segments ----

fn payload(seq: u64) -> Bytes {
    Bytes::from(format!(
        "entry {seq:04} of the damage sweep {}",
        "z".repeat(20)
    ))
}

/// A log with roll-overs, a batch, metadata and a truncate; with `last`,
/// one more single append at the end.
async fn build_fs_log(dir: &Path, last: bool) {
    let log = FsEventLog::open(dir, FsLogOptions::default().segment_bytes(512))
        .await
        .unwrap();
    for seq in 0..10 {
        log.add_entry(LogEntry::new(payload(seq)), seq, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
    let batch = (10..14).map(|s| LogEntry::new(payload(s))).collect();
    log.add_entries(batch, 10, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    log.set_metadata(12, MetadataUpdate::publish_snapshot("snap-12"))
        .await
        .unwrap();
    log.truncate(3).await.unwrap();
    for seq in 14..17 {
        log.add_entry(LogEntry::new(payload(seq)), seq, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
    if last {
        log.add_entry(LogEntry::new(payload(17)), 17, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
}

fn fs_state(all: &QueryValue) -> (u64, u64, Vec<LogEntry>) {
    (all.start, all.end, all.entries.clone())
}

async fn read_fs_log(dir: &Path) -> Result<(u64, u64, Vec<LogEntry>), Read> {
    let log = match FsEventLog::open(dir, FsLogOptions::default().segment_bytes(512)).await {
        Ok(log) => log,
        Err(OpenLogError::Corrupt { .. }) => return Err(Read::Corrupt),
        Err(other) => return Err(Read::Other(format!("an untyped error: {other}"))),
    };
    match log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
    {
        Ok(all) => Ok(fs_state(&all)),
        Err(infinisheet_event_log::QueryError::Storage(err)) if err.is_corrupt() => {
            Err(Read::Corrupt)
        }
        Err(other) => Err(Read::Other(format!("an untyped error: {other}"))),
    }
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    found.sort();
    found
}

/// Where the last frame of the newest segment starts: the frames are
/// walked by their lengths (header: body length, then checksums, 16 bytes;
/// frames padded to 8).
fn last_frame_start(segment: &[u8]) -> usize {
    let mut at = 16 + 32; // magic, begin frame
    let mut last = at;
    while at + 16 <= segment.len() {
        let len = u32::from_le_bytes(segment[at..at + 4].try_into().unwrap()) as usize;
        if len == 0 {
            break;
        }
        last = at;
        at += (16 + len).div_ceil(8) * 8;
    }
    last
}

#[tokio::test(flavor = "multi_thread")]
async fn filesystem_segments_read_back_whole_or_as_corruption() {
    let scratch = tempfile::tempdir().unwrap();
    let pristine = scratch.path().join("pristine");
    let without_last = scratch.path().join("without-last");
    build_fs_log(&pristine, true).await;
    build_fs_log(&without_last, false).await;
    let expected = read_fs_log(&pristine).await.ok().unwrap();
    let torn = read_fs_log(&without_last).await.ok().unwrap();
    let segments = segment_files(&pristine);
    assert!(segments.len() >= 3, "the log spans segments");
    let mut outcomes = Outcomes::default();
    let work = scratch.path().join("work");
    for (index, segment) in segments.iter().enumerate() {
        let newest = index + 1 == segments.len();
        let bytes = std::fs::read(segment).unwrap();
        let last_frame = last_frame_start(&bytes);
        let name = segment.file_name().unwrap().to_owned();
        for (what, damaged) in damages(&bytes) {
            let _ = std::fs::remove_dir_all(&work);
            copy_tree(&pristine, &work);
            std::fs::write(work.join(&name), &damaged).unwrap();
            let read = match read_fs_log(&work).await {
                Ok(found) if found == expected => Read::Same,
                // A bad final frame of the newest segment is a torn
                // append: the log reads back without it.
                Ok(found) if found == torn && newest && what_at(&what) >= last_frame => {
                    Read::Exception
                }
                Ok(found) if newest && damaged.len() < 16 && found.1 < expected.1 => {
                    Read::Exception
                }
                Ok(found) => Read::Other(format!(
                    "read {}..{} ({} entries)",
                    found.0,
                    found.1,
                    found.2.len()
                )),
                Err(read) => read,
            };
            outcomes.record(format!("{} {what}", name.to_string_lossy()), read);
        }
    }
    outcomes.assert_clean("filesystem segments");
}

/// The byte offset a flip names (cuts: `usize::MAX`, never a torn frame).
fn what_at(what: &str) -> usize {
    what.strip_prefix("byte ")
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(usize::MAX)
}

// ---- SQLite entries and blobs ----

fn blob_bytes(i: u8) -> Bytes {
    Bytes::from(format!("blob {i} {}", "content ".repeat(25)))
}

async fn build_sqlite(path: &Path) {
    let db = SqliteDatabase::open(path, SqliteOptions::default())
        .await
        .unwrap();
    let log = db.create_log("sheet").await.unwrap();
    for seq in 0..30 {
        log.add_entry(LogEntry::new(payload(seq)), seq, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
    log.set_metadata(20, MetadataUpdate::publish_snapshot("snap-20"))
        .await
        .unwrap();
    let store = db.blob_store("files").await.unwrap();
    for i in 0..5 {
        store
            .root()
            .open_dir("d")
            .await
            .unwrap()
            .write(&format!("b{i}"), blob_bytes(i))
            .await
            .unwrap();
    }
    drop((log, store, db));
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .unwrap();
}

/// What a SQLite file holds, as this backend reads it.
#[derive(Debug, PartialEq)]
struct SqliteState {
    bounds: (u64, u64),
    entries: Vec<LogEntry>,
    snapshot: Option<u64>,
    blobs: Vec<(String, Bytes)>,
}

fn is_corrupt(err: &infinisheet_event_log::StorageError) -> bool {
    err.is_corrupt()
}

async fn read_sqlite(path: &Path) -> Result<SqliteState, Read> {
    let untyped = |e: &dyn std::fmt::Display| Read::Other(format!("an untyped error: {e}"));
    let db = match SqliteDatabase::open(path, SqliteOptions::default()).await {
        Ok(db) => db,
        // A damaged header reads as another application's file or a newer
        // schema: typed refusals naming the file, which is left alone.
        Err(
            OpenError::NotADatabase { .. }
            | OpenError::ForeignDatabase { .. }
            | OpenError::SchemaTooNew { .. },
        ) => return Err(Read::Corrupt),
        Err(OpenError::Storage(err)) if is_corrupt(&err) => return Err(Read::Corrupt),
        Err(other) => return Err(untyped(&other)),
    };
    let log = match db.open_log("sheet").await {
        Ok(log) => log,
        Err(OpenError::Storage(err)) if is_corrupt(&err) => return Err(Read::Corrupt),
        Err(other) => return Err(untyped(&other)),
    };
    let all = match log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NoSnapshot)
        .await
    {
        Ok(all) => all,
        Err(infinisheet_event_log::QueryError::Storage(err)) if is_corrupt(&err) => {
            return Err(Read::Corrupt);
        }
        Err(other) => return Err(untyped(&other)),
    };
    let store = match db.blob_store("files").await {
        Ok(store) => store,
        Err(OpenError::Storage(err)) if is_corrupt(&err) => return Err(Read::Corrupt),
        Err(other) => return Err(untyped(&other)),
    };
    let dir = match store.root().open_dir("d").await {
        Ok(dir) => dir,
        Err(infinisheet_blob_store::DirError::Storage(err)) if is_corrupt(&err) => {
            return Err(Read::Corrupt);
        }
        Err(other) => return Err(untyped(&other)),
    };
    let mut blobs = Vec::new();
    for i in 0..5 {
        let name = format!("b{i}");
        match dir.read(&name).await {
            Ok(content) => blobs.push((name, content)),
            Err(infinisheet_blob_store::ReadBlobError::Storage(err)) if is_corrupt(&err) => {
                return Err(Read::Corrupt);
            }
            Err(other) => return Err(untyped(&other)),
        }
    }
    Ok(SqliteState {
        bounds: (all.start, all.end),
        entries: all.entries,
        snapshot: all.last_snapshot.map(|s| s.sequence_id),
        blobs,
    })
}

/// The byte ranges of each index's root page that hold its entries: the
/// page header, the cell pointers and the cells (not the free space).
fn index_ranges(path: &Path, file: &[u8]) -> Vec<std::ops::Range<usize>> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |row| row.get(0))
        .unwrap();
    let page_size = usize::try_from(page_size).unwrap();
    let mut select = conn
        .prepare("SELECT rootpage FROM sqlite_master WHERE type = 'index'")
        .unwrap();
    let roots: Vec<usize> = select
        .query_map([], |row| row.get::<_, i64>(0))
        .unwrap()
        .map(|root| usize::try_from(root.unwrap()).unwrap())
        .collect();
    let mut ranges = Vec::new();
    for root in roots {
        let page = (root - 1) * page_size;
        let header = if root == 1 { page + 100 } else { page };
        // An index leaf (type 10) has an 8-byte header, an interior page 12.
        let header_len = if file[header] == 10 { 8 } else { 12 };
        let cells = usize::from(u16::from_be_bytes([file[header + 3], file[header + 4]]));
        let content = usize::from(u16::from_be_bytes([file[header + 5], file[header + 6]]));
        ranges.push(header..header + header_len + 2 * cells);
        if cells > 0 {
            ranges.push(page + content..page + page_size);
        }
    }
    ranges
}

/// The byte ranges of the file that hold stored values.
fn value_ranges(file: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut needles: Vec<Vec<u8>> = (0..30).map(|s| payload(s).to_vec()).collect();
    needles.extend((0..5).map(|i| blob_bytes(i).to_vec()));
    needles.push(b"snap-20".to_vec());
    let mut ranges = Vec::new();
    for needle in needles {
        if let Some(at) = file
            .windows(needle.len())
            .position(|w| w == needle.as_slice())
        {
            ranges.push(at..at + needle.len());
        }
    }
    ranges
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite_entries_and_blobs_read_back_whole_or_as_corruption() {
    let scratch = tempfile::tempdir().unwrap();
    let pristine = scratch.path().join("pristine.db");
    build_sqlite(&pristine).await;
    let expected = read_sqlite(&pristine).await.ok().unwrap();
    let bytes = std::fs::read(&pristine).unwrap();
    let mut changes: Vec<(String, Vec<u8>)> = Vec::new();
    for range in value_ranges(&bytes) {
        for at in range {
            let mut damaged = bytes.clone();
            damaged[at] ^= 1 << (at % 8);
            changes.push((format!("value byte {at} flipped"), damaged));
        }
    }
    // Every bit of the indexes' leaf pages that holds a key or a pointer:
    // a damaged index entry reads clean but can point a name elsewhere.
    for range in index_ranges(&pristine, &bytes) {
        for at in range {
            for bit in 0..8 {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                changes.push((format!("index byte {at} bit {bit} flipped"), damaged));
            }
        }
    }
    let mut structure: Vec<(String, Vec<u8>)> = Vec::new();
    let seed = std::env::var("INFINISHEET_DAMAGE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    let mut rng = fastrand::Rng::with_seed(seed);
    for _ in 0..1_000 {
        let at = rng.usize(..bytes.len());
        let mut damaged = bytes.clone();
        damaged[at] ^= 1 << rng.u32(..8);
        structure.push((format!("file byte {at} flipped (seed {seed})"), damaged));
    }
    // (A file cut to nothing is an empty file, which opens as a new
    // database: not a change this sweep can count.)
    for len in (512..bytes.len()).step_by(512) {
        changes.push((format!("cut to {len} bytes"), bytes[..len].to_vec()));
    }
    let work = scratch.path().join("work.db");
    let mut outcomes = Outcomes::default();
    for (what, damaged) in changes.into_iter().chain(structure) {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", work.display()));
        }
        std::fs::write(&work, &damaged).unwrap();
        let read = match read_sqlite(&work).await {
            Ok(found) if found == expected => Read::Same,
            Ok(found) => Read::Other(format!(
                "read {:?}, newest snapshot {:?} (not {:?}), {} blobs{}{}",
                found.bounds,
                found.snapshot,
                expected.snapshot,
                found.blobs.len(),
                if found.entries == expected.entries {
                    ""
                } else {
                    ", other entries"
                },
                if found.blobs == expected.blobs {
                    ""
                } else {
                    ", other blobs"
                },
            )),
            Err(read) => read,
        };
        outcomes.record(what, read);
    }
    outcomes.assert_clean("SQLite entries and blobs");
}

// ---- snapshot tiles and indexes ----

fn cell(i: u32) -> Cell {
    match i % 4 {
        0 => Cell::new(CellValue::Number(f64::from(i) * 1.5)),
        1 => Cell::new(CellValue::Text(format!("text {i}"))),
        2 => Cell::new(CellValue::Boolean(i.is_multiple_of(3))).with_format("0.00"),
        _ => Cell::new(CellValue::Number(-f64::from(i))).with_format("#,##0"),
    }
}

/// Cells in the snapshot: 20 rows by 8 columns over 8x8 tiles.
const CELLS: u32 = 160;

fn area(text: &str) -> CellRange {
    text.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn snapshot_tiles_and_indexes_read_back_whole_or_as_corruption() {
    let scratch = tempfile::tempdir().unwrap();
    let log = FsEventLog::open(scratch.path().join("log"), FsLogOptions::default())
        .await
        .unwrap();
    let store = FsBlobStore::open(scratch.path().join("blobs"))
        .await
        .unwrap();
    let sheet_dir = store.root().open_dir("sheet").await.unwrap();
    let options = SheetOptions::default().snapshot_interval(0).tile_size(8, 8);
    let log: Arc<dyn EventLog> = Arc::new(log);
    let writer = Spreadsheet::open(log.clone(), sheet_dir.clone(), options)
        .await
        .unwrap();
    for i in 0..CELLS {
        writer.set_cell(i % 20, i / 20, cell(i)).await.unwrap();
    }
    let value = writer.write_snapshot(u64::from(CELLS)).await.unwrap();
    // The snapshot on entry CELLS is the state before it; that entry comes
    // from the log.
    writer.set_cell(30, 7, cell(99)).await.unwrap();
    log.set_metadata(
        u64::from(CELLS),
        MetadataUpdate::publish_snapshot(value.blob_id.clone()),
    )
    .await
    .unwrap();
    let whole = area("A1:H40");
    let read = |log: Arc<dyn EventLog>, dir: Arc<dyn infinisheet_blob_store::BlobDir>| async move {
        let sheet = match Spreadsheet::open(log, dir, options).await {
            Ok(sheet) => sheet,
            Err(LoadError::Snapshot(SnapshotReadError::Corrupt { blob, .. })) => {
                return Err(blob);
            }
            Err(other) => return Err(format!("untyped: {other}")),
        };
        match sheet.set_viewport(whole).await {
            Ok(()) => {}
            Err(SnapshotReadError::Corrupt { blob, .. }) => {
                return Err(blob);
            }
            Err(other) => return Err(format!("untyped: {other}")),
        }
        let content = sheet.content();
        Ok((0..CELLS)
            .map(|i| content.cell(i % 20, i / 20))
            .chain([content.cell(30, 7)])
            .collect::<Vec<CellState>>())
    };
    let expected = read(log.clone(), sheet_dir.clone()).await.unwrap();
    assert!(expected.iter().all(|c| matches!(c, CellState::Set(_))));
    let snapshot_path = scratch
        .path()
        .join("blobs/blobs/sheet/snapshots")
        .join(&value.blob_id);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&snapshot_path)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 3, "an index and tiles: {files:?}");
    let mut outcomes = Outcomes::default();
    for file in &files {
        let bytes = std::fs::read(file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (what, damaged) in damages(&bytes) {
            std::fs::write(file, &damaged).unwrap();
            let found = read(log.clone(), sheet_dir.clone()).await;
            let outcome = match found {
                Ok(cells) if cells == expected => Read::Same,
                Ok(_) => Read::Other("other cells".into()),
                Err(blob) if blob.ends_with(&format!("/{name}")) => Read::Corrupt,
                Err(other) => Read::Other(format!("an error naming {other}")),
            };
            outcomes.record(format!("{name} {what}"), outcome);
        }
        std::fs::write(file, &bytes).unwrap();
    }
    outcomes.assert_clean("snapshot tiles and indexes");
}
