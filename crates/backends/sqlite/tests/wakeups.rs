//! Appends wake the tails of the same database at once: a wait for
//! entries returns when a handle of this process (any handle of the same
//! `SqliteDatabase`) appends or publishes, not when its timeout ends.
//! Handles in other processes are still polled.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_sqlite::{SqliteEventLog, SqliteOptions};

#[test]
fn an_append_in_this_process_wakes_a_waiting_tail() {
    infinisheet_conformance::event_log::appends_wake_waiters_in_process(|| async {
        let log = SqliteEventLog::temporary(SqliteOptions::default())
            .await
            .unwrap();
        let other = log.database().open_log(log.name()).await.unwrap();
        (log, other)
    });
}
