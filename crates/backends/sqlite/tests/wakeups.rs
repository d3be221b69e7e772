//! Appends wake the tails of the same database at once: a wait for
//! entries returns when a handle of this process (any handle of the same
//! `SqliteDatabase`) appends or publishes, not when its timeout ends.
//! Handles in other processes are still polled.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_event_log::{EventLog, KnownSnapshot, LogEntry, MetadataUpdate};
use infinisheet_sqlite::{SqliteEventLog, SqliteOptions};
use std::time::Duration;

/// Far longer than the test waits for a wake-up.
const LONG: Duration = Duration::from_secs(600);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_in_this_process_wakes_a_waiting_tail() {
    let log = SqliteEventLog::temporary(SqliteOptions::default())
        .await
        .unwrap();
    let db = log.database();
    let other = db.open_log(log.name()).await.unwrap();
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
    // A published snapshot wakes a waiter too (a tail tracking snapshots
    // hears of it).
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
