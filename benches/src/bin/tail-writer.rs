//! The writer of the tail-latency benchmark, in a process of its own:
//! appends COUNT entries to a log, one every INTERVAL_MS, each carrying the
//! wall-clock time (nanoseconds since the Unix epoch, little-endian) taken
//! just before its append, so the tailing reader in the benchmark's process
//! can tell how long an edit took to reach it. Once an append returns it
//! prints `<id> <nanoseconds>`, the time it returned, so the reader can
//! also tell how long the notice alone took.
//!
//! `tail-writer sqlite:PATH | file:DIR | s3:PREFIX | postgres:LOG  COUNT INTERVAL_MS`
//! (`s3:` uses the `AWS_*` environment and its `AWS_BUCKET`; `postgres:`
//! the database `INFINISHEET_POSTGRES_URL` names).

#![allow(missing_docs)]

use bytes::Bytes;
use infinisheet_event_log::{AppendToken, EventLogExt, KnownSnapshot, LogEntry};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [place, count, interval] = &args[..] else {
        eprintln!("usage: tail-writer PLACE COUNT INTERVAL_MS");
        std::process::exit(2);
    };
    let count: u64 = count.parse().unwrap_or_else(|err| panic!("COUNT: {err}"));
    let interval = Duration::from_millis(
        interval
            .parse()
            .unwrap_or_else(|err| panic!("INTERVAL_MS: {err}")),
    );
    let runtime = infinisheet_benches::runtime();
    runtime.block_on(async {
        let log = infinisheet_benches::open_place(place).await;
        let mut seq = log
            .bounds()
            .await
            .unwrap_or_else(|err| panic!("bounds: {err}"))
            .end;
        for _ in 0..count {
            tokio::time::sleep(interval).await;
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            let payload = Bytes::copy_from_slice(&(now.as_nanos() as u64).to_le_bytes());
            let (at, _) = log
                .append(
                    LogEntry::new(payload),
                    seq,
                    KnownSnapshot::NotTracked,
                    AppendToken::random(),
                )
                .await
                .unwrap_or_else(|err| panic!("append: {err}"));
            let returned = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default();
            println!("{at} {}", returned.as_nanos());
            seq = at + 1;
        }
    });
}
