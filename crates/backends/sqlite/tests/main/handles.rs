//! Three connections to one database file behave as one log: the
//! conformance model test with one connection per client.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_sqlite::{SqliteEventLog, SqliteOptions};

#[test]
fn independent_connections_match_the_reference() {
    infinisheet_conformance::event_log::event_log_handles_match_reference(|| async {
        let options = SqliteOptions::default().query_page_entries(3);
        let first = SqliteEventLog::temporary(options).await.unwrap();
        let db = first.database();
        let second = db
            .reopen()
            .await
            .unwrap()
            .open_log(first.name())
            .await
            .unwrap();
        let third = db
            .reopen()
            .await
            .unwrap()
            .open_log(first.name())
            .await
            .unwrap();
        vec![first, second, third]
    });
}
