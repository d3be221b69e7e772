//! What `infinisheet serve` (the release build) costs in memory under
//! what anyone who reaches it can send: 2,000 spellings of one sheet's
//! path, 2,000 distinct sheets with `--max-open-sheets 64`, 600 MB bodies
//! without the token (one, then three at once), an append claiming
//! ten million entries in 40 MB, and clients that take nothing of their
//! replies: event streams and reads of a sheet of large cells. Figures (RSS in MiB, against the server
//! idle) on stdout; no timing, so a plain program rather than criterion.

#![allow(clippy::unwrap_used, missing_docs)]

use infinisheet::{Catalog, SheetOptions, Storage};
use infinisheet_benches::{Served, runtime};

/// How many spellings and sheets; a few when run as a test of itself.
fn sheets() -> usize {
    if infinisheet_benches::measuring() {
        2_000
    } else {
        20
    }
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

fn main() {
    // `cargo bench` passes `--bench`; a filter that names no figure of
    // this file skips it.
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filter.is_empty()
        && !filter
            .iter()
            .any(|f| "serve".contains(f.as_str()) || f.contains("serve"))
    {
        return;
    }
    let sheets = sheets();
    // The hostile bodies, smaller when run as a test of itself.
    let (big, claimed): (usize, u32) = if infinisheet_benches::measuring() {
        (600 << 20, 10_000_000)
    } else {
        (6 << 20, 100_000)
    };
    let home = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    runtime().block_on(async {
        let catalog = Catalog::new(Storage::embedded(home.path()).await.unwrap());
        let cells = catalog
            .create_sheet("big", SheetOptions::default())
            .await
            .unwrap()
            .open()
            .await
            .unwrap();
        let edits: Vec<_> = (0..100_000u32)
            .map(|i| {
                (
                    infinisheet::CellRef::new(i / 10, i % 10),
                    infinisheet::Cell::from(format!("cell {i}").as_str()),
                )
            })
            .collect();
        cells.set_cells(edits).await.unwrap();
        for n in 0..sheets {
            catalog
                .create_sheet(&format!("many/{n}"), SheetOptions::default())
                .await
                .unwrap();
        }
    });

    let server = Served::start(home.path(), &["--max-open-sheets", "64"]);
    assert_eq!(
        server.request("GET", "/api/cells?sheet=big&range=A1", &[], b""),
        200
    );
    let idle = server.status("VmRSS");
    println!(
        "serve/idle: RSS {:.1} MiB, {} threads",
        mib(idle),
        server.status("Threads")
    );
    for i in 0..sheets {
        let spelling = format!("{}big{}", "/".repeat(i % 45), "/".repeat(i / 45));
        let spelling = if i % 2 == 0 {
            spelling.replace('/', "%2F")
        } else {
            spelling
        };
        let status = server.request(
            "GET",
            &format!("/api/cells?sheet={spelling}&range=B2"),
            &[],
            b"",
        );
        assert_eq!(status, 200, "{spelling}");
    }
    let rss = server.status("VmRSS");
    println!(
        "serve/spellings: RSS after {sheets} spellings of one sheet {:.1} MiB (+{:.1} MiB), {} threads",
        mib(rss),
        mib(rss.saturating_sub(idle)),
        server.status("Threads")
    );
    for n in 0..sheets {
        let status = server.request("GET", &format!("/api/cells?sheet=many/{n}"), &[], b"");
        assert_eq!(status, 200, "many/{n}");
    }
    let rss = server.status("VmRSS");
    println!(
        "serve/sheets: RSS after {sheets} distinct sheets, --max-open-sheets 64: {:.1} MiB (+{:.1} MiB), {} threads",
        mib(rss),
        mib(rss.saturating_sub(idle)),
        server.status("Threads")
    );
    drop(server);

    let server = Served::start(home.path(), &["--token", "sesame", "--max-body-mib", "64"]);
    assert_eq!(
        server.request("GET", "/api/sheets", &["Authorization: Bearer sesame"], b""),
        200
    );
    let idle = server.status("VmRSS");
    let body = vec![0u8; big];
    let storage = "Content-Type: application/x-infinisheet-storage";
    let status = server.request("POST", "/api/storage", &[storage], &body);
    println!(
        "serve/unauthenticated: a {} MB body without the token: {status}, peak RSS +{:.1} MiB over idle {:.1} MiB",
        big >> 20,
        mib(server.status("VmHWM").saturating_sub(idle)),
        mib(idle)
    );
    std::thread::scope(|scope| {
        for _ in 0..3 {
            scope.spawn(|| server.request("POST", "/api/storage", &[storage], &body));
        }
    });
    println!(
        "serve/unauthenticated-3: three at once: peak RSS +{:.1} MiB over idle",
        mib(server.status("VmHWM").saturating_sub(idle))
    );
    let mut call = vec![2, 1, b'x', 0];
    let mut count: u32 = claimed;
    while count >= 0x80 {
        call.push(u8::try_from(count & 0x7f).unwrap() | 0x80);
        count >>= 7;
    }
    call.push(u8::try_from(count).unwrap());
    call.resize(call.len() + 4 * claimed as usize, 0);
    call.extend([0, 0, 0]);
    let status = server.request(
        "POST",
        "/api/storage",
        &["Authorization: Bearer sesame", storage],
        &call,
    );
    println!(
        "serve/claimed-entries: {claimed} empty entries in a {} MB append (with the token): {status}, peak RSS +{:.1} MiB over idle",
        claimed / 250_000,
        mib(server.status("VmHWM").saturating_sub(idle))
    );
    drop(server);

    // Slow readers: 16 event streams from the start and 16 reads of 15
    // cells of 900 KB, none taking more than its first bytes.
    let server = Served::start(home.path(), &[]);
    let json = "Content-Type: application/json";
    let (rows, cell) = if infinisheet_benches::measuring() {
        (60, "x".repeat(900_000))
    } else {
        (15, "x".repeat(10_000))
    };
    runtime().block_on(async {
        Catalog::new(Storage::embedded(home.path()).await.unwrap())
            .create_sheet("fat", SheetOptions::default())
            .await
            .unwrap();
    });
    for row in 1..=rows {
        let body = format!(r#"{{"A{row}": "{cell}"}}"#);
        let status = server.request("POST", "/api/cells?sheet=fat", &[json], body.as_bytes());
        assert_eq!(status, 200);
    }
    let idle = server.status("VmRSS");
    let streams: Vec<_> = (0..16)
        .map(|_| {
            server.stalled(
                "GET /api/events?sheet=fat&from=0 HTTP/1.1\r\n",
                "event: entries",
            )
        })
        .collect();
    let reads: Vec<_> = (0..16)
        .map(|_| server.stalled("GET /api/cells?sheet=fat&range=A1:A15 HTTP/1.1\r\n", "\r\n"))
        .collect();
    let answered = reads
        .iter()
        .filter(|(_, seen)| seen.starts_with("HTTP/1.1 200"))
        .count();
    let busy = reads
        .iter()
        .filter(|(_, seen)| seen.starts_with("HTTP/1.1 503"))
        .count();
    println!(
        "serve/slow-readers: 16 event streams and 16 reads of {} MB taking nothing: {answered} \
         reads answered, {busy} told 503, peak RSS +{:.1} MiB over idle {:.1} MiB",
        15 * cell.len() / 1_000_000,
        mib(server.status("VmHWM").saturating_sub(idle)),
        mib(idle)
    );
    drop((streams, reads));
}
