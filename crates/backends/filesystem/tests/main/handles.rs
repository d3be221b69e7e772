//! Three independently opened handles on one log (each with its own state,
//! kept in step only through the files and the file lock) behave as one
//! log: the conformance model test with one handle per client, on 256-byte
//! segments (a few frames each) so roll-overs and segment deletions by one
//! handle meet the others' catch-up.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_filesystem::{FsEventLog, FsLogOptions};

#[test]
fn independent_handles_match_the_reference() {
    infinisheet_conformance::event_log::event_log_handles_match_reference(|| async {
        let options = FsLogOptions::default()
            .segment_bytes(256)
            .query_page_entries(3);
        let first = FsEventLog::temporary(options).await.unwrap();
        let second = FsEventLog::open(first.path(), options).await.unwrap();
        let third = FsEventLog::open(first.path(), options).await.unwrap();
        vec![first, second, third]
    });
}
