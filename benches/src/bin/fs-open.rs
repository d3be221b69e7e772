//! Opens the filesystem log in the directory given, in a fresh process,
//! and reads its last 100 entries: prints the time both took and the
//! process's peak resident memory.
//!
//! `fs-open DIR` prints `open_us=N entries=N peak_rss_kib=N`.

#![allow(missing_docs)]

use infinisheet_filesystem::{FsEventLog, FsLogOptions};
use std::time::Instant;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: fs-open DIR");
        std::process::exit(2);
    });
    let runtime = infinisheet_benches::runtime();
    let (micros, entries) = runtime.block_on(async {
        let start = Instant::now();
        let log = FsEventLog::open(&dir, FsLogOptions::default())
            .await
            .unwrap_or_else(|err| panic!("open: {err}"));
        let entries = infinisheet_benches::tail_of(&log, 100).await;
        (start.elapsed().as_micros(), entries)
    });
    println!(
        "open_us={micros} entries={entries} peak_rss_kib={}",
        infinisheet_benches::peak_rss_kib()
    );
}
