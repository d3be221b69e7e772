//! Opening a new database from several processes at once: each open switches
//! the file to WAL mode, and two switches racing on a fresh file meet
//! SQLite's deadlock guard (`SQLITE_BUSY` at once, the busy timeout not
//! consulted). Every open must still succeed — it was a "database is
//! locked" error for `infinisheet new` beside a starting `worker`.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
use std::sync::{Arc, Barrier};

#[test]
fn racing_opens_of_a_new_database_all_succeed() {
    const ROUNDS: usize = 40;
    const OPENERS: usize = 4;
    let dir = tempfile::tempdir().unwrap();
    for round in 0..ROUNDS {
        let path = dir.path().join(format!("round-{round}.db"));
        let barrier = Arc::new(Barrier::new(OPENERS));
        let openers: Vec<_> = (0..OPENERS)
            .map(|_| {
                let (path, barrier) = (path.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    barrier.wait();
                    runtime.block_on(async {
                        SqliteDatabase::open(&path, SqliteOptions::default())
                            .await
                            .map(drop)
                            .map_err(|err| err.to_string())
                    })
                })
            })
            .collect();
        for opener in openers {
            if let Err(err) = opener.join().unwrap() {
                panic!("round {round}: an open failed: {err}");
            }
        }
    }
}
