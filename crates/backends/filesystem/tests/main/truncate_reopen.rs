//! A truncate deletes the segments whose entries are all gone, so the first
//! segment left may begin with records about entries that were in a deleted
//! segment (an older truncate, a metadata change). Reopening such a log, and
//! a handle catching up with it, must work and see exactly the live entries.
//!
//! Tiny segments and a sweep over payload sizes and entry counts make the
//! roll-overs fall at every position, so some runs put the older truncate
//! (or the metadata change) first in a segment of its own. Each log is
//! reopened from its checkpoint and again by replaying its segments.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_event_log::{
    EventLog, EventLogExt, FieldUpdate, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd,
    QueryStart,
};
use infinisheet_filesystem::{FsEventLog, FsLogOptions};

async fn live(log: &FsEventLog) -> (u64, u64, Vec<Vec<u8>>) {
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    let payloads = all.entries.iter().map(|e| e.payload.to_vec()).collect();
    (all.start, all.end, payloads)
}

#[tokio::test]
async fn reopening_after_a_truncate_deleted_segments_older_records_refer_to() {
    let options = FsLogOptions::default().segment_bytes(256);
    for with_metadata in [false, true] {
        for size in (0..=120).step_by(8) {
            for count in 1..=6u64 {
                let dir = tempfile::tempdir().unwrap();
                let log = FsEventLog::open(dir.path(), options).await.unwrap();
                let stale = FsEventLog::open(dir.path(), options).await.unwrap();
                for seq in 0..count {
                    let entry = LogEntry::new(vec![seq as u8; size]);
                    log.add_entry(entry, seq, KnownSnapshot::NotTracked)
                        .await
                        .unwrap();
                }
                log.truncate(count - 1).await.unwrap();
                if with_metadata {
                    let update = MetadataUpdate {
                        history: FieldUpdate::Set("archived".into()),
                        ..MetadataUpdate::default()
                    };
                    log.set_metadata(count - 1, update).await.unwrap();
                }
                let last = LogEntry::new(vec![0xAB; size]);
                log.add_entry(last, count, KnownSnapshot::NotTracked)
                    .await
                    .unwrap();
                log.truncate(count).await.unwrap();

                let want = (count, count + 1, vec![vec![0xAB; size]]);
                let case = format!("size {size}, {count} entries, metadata {with_metadata}");
                assert_eq!(live(&log).await, want, "writer, {case}");
                assert_eq!(live(&stale).await, want, "stale handle, {case}");
                let reopened = FsEventLog::open(dir.path(), options)
                    .await
                    .unwrap_or_else(|err| panic!("reopen failed, {case}: {err}"));
                assert_eq!(live(&reopened).await, want, "reopened, {case}");
                drop(reopened);
                // Without the checkpoint: every segment left is replayed.
                let _ = std::fs::remove_file(dir.path().join("CHECKPOINT"));
                let replayed = FsEventLog::open(dir.path(), options)
                    .await
                    .unwrap_or_else(|err| panic!("replay failed, {case}: {err}"));
                assert_eq!(live(&replayed).await, want, "replayed, {case}");
            }
        }
    }
}
