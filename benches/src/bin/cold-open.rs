//! Opens the million-cell sheet that the engine benchmark built in the
//! directory given, cold, in a fresh process: reads a 50x20 viewport and
//! prints the time it took and the process's peak resident memory.
//!
//! `cold-open DIR` prints `open_us=N cells=N peak_rss_kib=N`.

#![allow(missing_docs)]

use infinisheet_benches::sheet;
use infinisheet_engine::{CellRange, SheetOptions, Spreadsheet};
use std::time::Instant;

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: cold-open DIR");
        std::process::exit(2);
    });
    let runtime = infinisheet_benches::runtime();
    let (micros, cells) = runtime.block_on(async {
        let start = Instant::now();
        let (log, blobs) = sheet::embedded(std::path::Path::new(&dir)).await;
        let sheet = Spreadsheet::open(log, blobs, SheetOptions::default())
            .await
            .unwrap_or_else(|err| panic!("open: {err}"));
        let area: CellRange = "A1:T50".parse().unwrap_or_else(|err| panic!("{err}"));
        sheet
            .set_viewport(area)
            .await
            .unwrap_or_else(|err| panic!("viewport: {err}"));
        let content = sheet.content();
        let cells = area
            .rows()
            .flat_map(|r| area.columns().map(move |c| (r, c)))
            .filter(|&(r, c)| content.cell(r, c).cell().is_some())
            .count();
        (start.elapsed().as_micros(), cells)
    });
    println!(
        "open_us={micros} cells={cells} peak_rss_kib={}",
        infinisheet_benches::peak_rss_kib()
    );
}
