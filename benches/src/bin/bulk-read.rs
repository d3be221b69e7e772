//! Reads every cell of the sheet `big` of the catalog in the directory
//! given, as `infinisheet get --json` (`json`) or `infinisheet export`
//! (`csv`) do, into a sink, in a fresh process; prints the time it took
//! and the process's peak resident memory.
//!
//! `bulk-read DIR json|csv` prints `read_ms=N rows=N bytes=N peak_rss_kib=N`.

#![allow(missing_docs)]

use infinisheet::table::{CsvFormat, export_csv, write_json};
use infinisheet::{Access, Catalog, Storage};
use std::time::Instant;

/// Counts what is written.
struct Sink(u64);

impl std::io::Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(dir), Some(what)) = (args.next(), args.next()) else {
        eprintln!("usage: bulk-read DIR json|csv");
        std::process::exit(2);
    };
    let runtime = infinisheet_benches::runtime();
    let (millis, rows, bytes) = runtime.block_on(async {
        let started = Instant::now();
        let storage = Storage::embedded_with(std::path::Path::new(&dir), Access::ReadOnly)
            .await
            .unwrap_or_else(|err| panic!("storage: {err}"));
        let sheet = Catalog::new(storage)
            .open_sheet("big")
            .await
            .unwrap_or_else(|err| panic!("sheet: {err}"));
        let cells = sheet
            .open()
            .await
            .unwrap_or_else(|err| panic!("open: {err}"));
        let mut sink = Sink(0);
        let rows = if what == "json" {
            let range = cells
                .content()
                .used_range()
                .unwrap_or_else(|| panic!("the sheet is empty"));
            write_json(&cells, &mut sink, range).await
        } else {
            export_csv(&cells, &mut sink, None, &CsvFormat::default()).await
        }
        .unwrap_or_else(|err| panic!("read: {err}"));
        (started.elapsed().as_millis(), rows, sink.0)
    });
    println!(
        "read_ms={millis} rows={rows} bytes={bytes} peak_rss_kib={}",
        infinisheet_benches::peak_rss_kib()
    );
}
