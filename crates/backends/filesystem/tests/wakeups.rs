//! Appends wake the tails of the same log in this process at once, across
//! independently opened handles (as `FileLogs` opens one per call): a
//! wait for entries returns when another handle of this process appends
//! or publishes, not when its timeout ends. Other processes are still
//! polled.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_filesystem::{FsEventLog, FsLogOptions};

#[test]
fn an_append_by_another_handle_wakes_a_waiting_tail() {
    infinisheet_conformance::event_log::appends_wake_waiters_in_process(|| async {
        let options = FsLogOptions::default();
        let log = FsEventLog::temporary(options).await.unwrap();
        let other = FsEventLog::open(log.path(), options).await.unwrap();
        (log, other)
    });
}
