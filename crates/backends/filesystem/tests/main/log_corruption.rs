//! Damaged log files: a torn final append is recovered from; damage
//! anywhere else is a typed error naming the file and offset, and the files
//! are left as they are. Never a panic. Opening replays only what follows
//! the checkpoint, so damage in older segments is found when they are read
//! (the first read of an older segment checks all of it).

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_event_log::{
    Bounds, EventLog, EventLogExt, KnownSnapshot, LogEntry, QueryEnd, QueryError, QueryStart,
};
use infinisheet_filesystem::{FsEventLog, FsLogOptions, OpenLogError};
use std::path::{Path, PathBuf};

fn payload(i: u64) -> String {
    format!("payload-{i:04}-{}", "x".repeat(40))
}

/// A log of `n` entries, each in its own frame, closed.
async fn log_of(dir: &Path, n: u64, options: FsLogOptions) {
    let log = FsEventLog::open(dir, options).await.unwrap();
    for i in 0..n {
        log.add_entry(LogEntry::new(payload(i)), i, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
}

fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    found.sort();
    found
}

fn position(haystack: &[u8], needle: &str) -> usize {
    haystack
        .windows(needle.len())
        .position(|w| w == needle.as_bytes())
        .unwrap_or_else(|| panic!("{needle} not found"))
}

async fn payloads(dir: &Path) -> Vec<String> {
    let log = FsEventLog::open(dir, FsLogOptions::default())
        .await
        .unwrap();
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    all.entries
        .iter()
        .map(|e| String::from_utf8(e.payload.to_vec()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_flipped_byte_in_a_middle_record_is_an_error_naming_file_and_offset() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 10, FsLogOptions::default()).await;
    let segment = segments(dir.path()).remove(0);
    let mut bytes = std::fs::read(&segment).unwrap();
    let at = position(&bytes, &payload(4)) + 3;
    bytes[at] ^= 0x40;
    std::fs::write(&segment, &bytes).unwrap();

    match FsEventLog::open(dir.path(), FsLogOptions::default()).await {
        Err(OpenLogError::Corrupt { file, offset, .. }) => {
            assert_eq!(file, segment);
            assert!(
                offset < at as u64 && at as u64 - offset < 64,
                "offset {offset} is the damaged frame"
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        bytes,
        "the damaged file was changed"
    );
}

#[tokio::test]
async fn a_torn_final_append_is_cut_and_the_log_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 10, FsLogOptions::default()).await;
    let segment = segments(dir.path()).remove(0);
    let mut bytes = std::fs::read(&segment).unwrap();
    // Tear the last append: keep its header and half its payload.
    let last = position(&bytes, &payload(9));
    for byte in &mut bytes[last + 20..last + 200] {
        *byte = 0;
    }
    std::fs::write(&segment, &bytes).unwrap();

    let expected: Vec<_> = (0..9).map(payload).collect();
    assert_eq!(payloads(dir.path()).await, expected);
    let log = FsEventLog::open(dir.path(), FsLogOptions::default())
        .await
        .unwrap();
    log.add_entry(LogEntry::new("after"), 9, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    drop(log);
    let mut expected = expected;
    expected.push("after".into());
    assert_eq!(
        payloads(dir.path()).await,
        expected,
        "the repaired tail holds new appends"
    );
}

#[tokio::test]
async fn a_cut_last_segment_is_an_error_not_a_silent_loss() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 10, FsLogOptions::default()).await;
    let segment = segments(dir.path()).remove(0);
    let bytes = std::fs::read(&segment).unwrap();
    // Entries 7..9 were acknowledged: a cut through them is damage, not a
    // torn append (the segment records the size it was made with).
    let cut = position(&bytes, &payload(7)) + 10;
    std::fs::write(&segment, &bytes[..cut]).unwrap();

    match FsEventLog::open(dir.path(), FsLogOptions::default()).await {
        Err(OpenLogError::Corrupt { file, reason, .. }) => {
            assert_eq!(file, segment);
            assert!(reason.contains("cut"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        std::fs::read(&segment).unwrap(),
        &bytes[..cut],
        "left as it was"
    );
}

#[tokio::test]
async fn a_truncated_middle_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let small = FsLogOptions::default().segment_bytes(4096);
    log_of(dir.path(), 200, small).await;
    let all = segments(dir.path());
    assert!(all.len() >= 3, "the log spans several segments");
    let middle = &all[1];
    let bytes = std::fs::read(middle).unwrap();
    std::fs::write(middle, &bytes[..bytes.len() / 2]).unwrap();
    assert_corrupt_naming(dir.path(), small, middle).await;
}

#[tokio::test]
async fn garbage_files_in_the_log_directory() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 3, FsLogOptions::default()).await;
    // Not named like a segment: ignored.
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    assert_eq!(
        payloads(dir.path()).await,
        (0..3).map(payload).collect::<Vec<_>>()
    );
    // Named like a segment but not one: an error naming it, left alone.
    let fake = dir.path().join("0000000099.seg");
    std::fs::write(&fake, "definitely not a segment").unwrap();
    match FsEventLog::open(dir.path(), FsLogOptions::default()).await {
        Err(OpenLogError::Corrupt {
            file, offset: 0, ..
        }) => assert_eq!(file, fake),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(
        std::fs::read_to_string(&fake).unwrap(),
        "definitely not a segment"
    );
}

#[tokio::test]
async fn a_missing_middle_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let small = FsLogOptions::default().segment_bytes(4096);
    log_of(dir.path(), 200, small).await;
    let all = segments(dir.path());
    std::fs::remove_file(&all[1]).unwrap();
    assert!(matches!(
        FsEventLog::open(dir.path(), small).await,
        Err(OpenLogError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn a_missing_first_segment_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let small = FsLogOptions::default().segment_bytes(4096);
    log_of(dir.path(), 200, small).await;
    let all = segments(dir.path());
    std::fs::remove_file(&all[0]).unwrap();
    let err = FsEventLog::open(dir.path(), small).await.unwrap_err();
    let OpenLogError::Corrupt { reason, .. } = err else {
        panic!("not reported as damage: {err}");
    };
    assert!(reason.contains("missing"), "{reason}");
}

#[tokio::test]
async fn a_segment_with_data_is_never_overwritten_by_a_roll_over() {
    let dir = tempfile::tempdir().unwrap();
    let small = FsLogOptions::default().segment_bytes(4096);
    let log = FsEventLog::open(dir.path(), small).await.unwrap();
    log.add_entry(LogEntry::new(payload(0)), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    // A second segment with data appears while the first is not sealed.
    let first = segments(dir.path()).remove(0);
    let planted = dir.path().join("0000000002.seg");
    std::fs::copy(&first, &planted).unwrap();
    let before = std::fs::read(&planted).unwrap();
    let mut failed = false;
    for i in 1..200 {
        match log
            .add_entry(LogEntry::new(payload(i)), i, KnownSnapshot::NotTracked)
            .await
        {
            Ok(_) => {}
            Err(err) => {
                assert!(err.to_string().contains("0000000002.seg"), "{err}");
                failed = true;
                break;
            }
        }
    }
    assert!(
        failed,
        "the roll-over must refuse to replace a segment holding data"
    );
    assert_eq!(
        std::fs::read(&planted).unwrap(),
        before,
        "the segment was overwritten"
    );
}

/// Descriptors of this process open on deleted files in `dir`.
fn deleted_files_held_open(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.unwrap().path()).ok())
        .filter(|target| {
            let text = target.to_string_lossy();
            text.starts_with(&*dir.to_string_lossy()) && text.ends_with("(deleted)")
        })
        .count()
}

#[tokio::test]
async fn a_handle_that_learns_of_a_truncate_closes_the_deleted_segments() {
    let dir = tempfile::tempdir().unwrap();
    let small = FsLogOptions::default().segment_bytes(4096);
    let writer = FsEventLog::open(dir.path(), small).await.unwrap();
    let reader = FsEventLog::open(dir.path(), small).await.unwrap();
    for i in 0..200 {
        writer
            .add_entry(LogEntry::new(payload(i)), i, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
    // The reader catches up and opens every segment.
    let all = reader
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_eq!(all.entries.len(), 200);
    let before = segments(dir.path()).len();
    writer.truncate(190).await.unwrap();
    assert!(
        segments(dir.path()).len() < before,
        "the truncate deleted segments"
    );
    let rest = reader
        .query(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_eq!(rest.start, 190);
    assert_eq!(
        deleted_files_held_open(dir.path()),
        0,
        "deleted segments are still open"
    );
}

/// Where the frame holding `payload(i)` (a single-entry frame with no
/// metadata) starts: header 16, tag 1, first id 8, count 4, length 4.
fn frame_of(bytes: &[u8], i: u64) -> usize {
    position(bytes, &payload(i)) - 33
}

/// A log of 200 entries over several 4 KiB segments, and its segments.
async fn spanning_log(dir: &Path) -> (FsLogOptions, Vec<PathBuf>) {
    let small = FsLogOptions::default().segment_bytes(4096);
    log_of(dir, 200, small).await;
    let all = segments(dir);
    assert!(all.len() >= 3, "the log spans several segments");
    (small, all)
}

/// Opening the log in `dir`, or else reading all of it, reports damage
/// naming `damaged`, and leaves the file as it was.
async fn assert_corrupt_naming(dir: &Path, options: FsLogOptions, damaged: &Path) {
    let before = std::fs::read(damaged).ok();
    match FsEventLog::open(dir, options).await {
        Err(OpenLogError::Corrupt { file, .. }) => assert_eq!(file, damaged),
        Ok(log) => {
            match log
                .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
                .await
            {
                Err(QueryError::Storage(err)) => {
                    assert!(err.is_corrupt(), "{err}");
                    let named = format!("{} is damaged", damaged.display());
                    assert!(err.message().contains(&named), "{err}");
                }
                other => panic!(
                    "expected damage naming {}, got {other:?}",
                    damaged.display()
                ),
            }
        }
        Err(other) => panic!(
            "expected Corrupt naming {}, got {other:?}",
            damaged.display()
        ),
    }
    assert_eq!(
        std::fs::read(damaged).ok(),
        before,
        "the damaged file was changed"
    );
}

#[tokio::test]
async fn a_middle_segment_zeroed_from_a_frame_on_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (small, all) = spanning_log(dir.path()).await;
    let mut bytes = std::fs::read(&all[0]).unwrap();
    let from = frame_of(&bytes, 20);
    bytes[from..].fill(0);
    std::fs::write(&all[0], &bytes).unwrap();
    assert_corrupt_naming(dir.path(), small, &all[0]).await;
}

#[tokio::test]
async fn a_middle_segment_emptied_to_its_header_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (small, all) = spanning_log(dir.path()).await;
    let mut bytes = std::fs::read(&all[1]).unwrap();
    // The magic (16 bytes) and the begin frame (32) stay.
    bytes[48..].fill(0);
    std::fs::write(&all[1], &bytes).unwrap();
    assert_corrupt_naming(dir.path(), small, &all[1]).await;
}

#[tokio::test]
async fn a_middle_segment_cut_at_a_frame_boundary_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (small, all) = spanning_log(dir.path()).await;
    let bytes = std::fs::read(&all[0]).unwrap();
    let cut = frame_of(&bytes, 10);
    std::fs::write(&all[0], &bytes[..cut]).unwrap();
    assert_corrupt_naming(dir.path(), small, &all[0]).await;
}

#[tokio::test]
async fn an_empty_first_segment_in_an_empty_log_is_a_creation_that_died() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("0000000001.seg"), b"").unwrap();
    let log = FsEventLog::open(dir.path(), FsLogOptions::default())
        .await
        .unwrap();
    log.add_entry(LogEntry::new(payload(0)), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    drop(log);
    assert_eq!(payloads(dir.path()).await, vec![payload(0)]);
}

#[tokio::test]
async fn a_short_newest_segment_after_a_sealed_one_is_an_unfinished_creation() {
    // The first format created segments in place: a death part way left a
    // file holding only the start of a magic after a sealed segment. That
    // is removed (the documented exception beside a torn final append);
    // entries of the sealed segments stay and the log goes on.
    let dir = tempfile::tempdir().unwrap();
    let (small, all) = spanning_log(dir.path()).await;
    let newest = all.last().unwrap();
    std::fs::write(newest, &b"infinisheet-log1"[..7]).unwrap();
    let log = FsEventLog::open(dir.path(), small).await.unwrap();
    let Bounds { start, end } = log.bounds().await.unwrap();
    assert!(start == 0 && end > 0 && end < 200, "{start}..{end}");
    log.add_entry(LogEntry::new(payload(end)), end, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    drop(log);
    assert_eq!(payloads(dir.path()).await.len() as u64, end + 1);
}

#[tokio::test]
async fn a_short_segment_that_is_not_the_newest_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let (small, all) = spanning_log(dir.path()).await;
    std::fs::write(&all[1], b"").unwrap();
    assert_corrupt_naming(dir.path(), small, &all[1]).await;
    std::fs::write(&all[1], b"garbage").unwrap();
    assert_corrupt_naming(dir.path(), small, &all[1]).await;
}

#[tokio::test]
async fn a_leftover_segment_being_created_is_removed_on_open() {
    let dir = tempfile::tempdir().unwrap();
    log_of(dir.path(), 3, FsLogOptions::default()).await;
    let leftover = dir.path().join("0000000002.seg.tmp");
    std::fs::write(&leftover, b"infinisheet-log2\0\0\0").unwrap();
    assert_eq!(
        payloads(dir.path()).await,
        (0..3).map(payload).collect::<Vec<_>>()
    );
    assert!(!leftover.exists(), "the unfinished creation is removed");
}
