//! Appends wake the tails of the same log in this process at once, across
//! independently opened handles (as `FileLogs` opens one per call): a
//! wait for entries returns when another handle of this process appends
//! or publishes, not when its timeout ends. Other processes are still
//! polled.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_event_log::{EventLog, KnownSnapshot, LogEntry, MetadataUpdate};
use infinisheet_filesystem::{FsEventLog, FsLogOptions};
use std::time::Duration;

/// Far longer than the test waits for a wake-up.
const LONG: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_by_another_handle_wakes_a_waiting_tail() {
    let options = FsLogOptions::default();
    let log = FsEventLog::temporary(options).await.unwrap();
    let other = FsEventLog::open(log.path(), options).await.unwrap();
    for round in 0..3 {
        let waiter = {
            let log = log.clone();
            tokio::spawn(async move { log.wait_for_entries(round, LONG).await })
        };
        other
            .add_entry(LogEntry::new("e"), round, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(30), waiter)
            .await
            .unwrap_or_else(|_| panic!("round {round}: the append woke no waiter"))
            .unwrap();
    }
    // A wait for entries already there returns at once.
    tokio::time::timeout(Duration::from_secs(30), log.wait_for_entries(1, LONG))
        .await
        .expect("entries were there already");
    let waiter = {
        let log = log.clone();
        tokio::spawn(async move { log.wait_for_entries(3, LONG).await })
    };
    other
        .set_metadata(1, MetadataUpdate::publish_snapshot("s"))
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), waiter)
        .await
        .expect("the publish woke no waiter")
        .unwrap();
}
