//! How soon an edit reaches a browser: `infinisheet serve` (the release
//! build) follows a sheet for an event stream (`/api/events`, read here
//! as a browser would), and edits are made as people make them — by
//! another process (`infinisheet set`), 50 to 450 ms apart. The latency
//! is from the `set` process's exit to the stream's `entries` event (and,
//! as the process's exit may come after the event, from its start), on
//! the default storage (a SQLite file of logs and a folder of files),
//! and with logs in PostgreSQL (`INFINISHEET_POSTGRES_URL`; left out
//! without it). Both push (an inotify watch; `LISTEN/NOTIFY`); before
//! they did, the stream polled, 10 ms doubling to 500 ms. Median, p90
//! and max on stdout; no criterion (it measures the server, not a call).

#![allow(clippy::unwrap_used, missing_docs)]

use infinisheet_benches::{Served, command_binary, measuring};
use std::io::{BufRead, BufReader, Write};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The command on `storage`: `--home DIR`, or `--logs URL --blobs URL`.
fn command(storage: &[String]) -> Command {
    let mut command = Command::new(command_binary());
    command.args(storage);
    command
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let at = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[at.min(sorted.len() - 1)]
}

/// For each of `edits` edits on `storage`: from `set` starting, and from
/// its exit (zero when the event came first), to the event.
fn measure(storage: &[String], edits: u32) -> (Vec<Duration>, Vec<Duration>) {
    let sheet = format!("push-{:08x}", fastrand::u32(..));
    let made = command(storage)
        .args(["-q", "new", &sheet])
        .status()
        .unwrap();
    assert!(made.success(), "new {sheet}");
    let served = Served::start_on(command(storage), &[]);
    let mut stream = std::net::TcpStream::connect(&served.addr).unwrap();
    write!(
        stream,
        "GET /api/events?sheet={sheet} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n",
        served.addr
    )
    .unwrap();
    // Each `entries` event's arrival, from a thread reading the stream.
    let (arrived, arrivals) = mpsc::channel();
    let (live, caught_up) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            match line.trim() {
                "event: caught-up" => {
                    let _ = live.send(());
                }
                "event: entries" if arrived.send(Instant::now()).is_err() => return,
                _ => {}
            }
        }
    });
    caught_up
        .recv_timeout(Duration::from_secs(60))
        .expect("the stream never caught up");
    let (mut from_start, mut from_exit) = (Vec::new(), Vec::new());
    for n in 0..edits {
        std::thread::sleep(Duration::from_millis(fastrand::u64(50..=450)));
        let started = Instant::now();
        let status = command(storage)
            .args(["-q", "set", &sheet, "A1", &n.to_string()])
            .status()
            .unwrap();
        let returned = Instant::now();
        assert!(status.success(), "set {n}");
        let at = arrivals
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("edit {n} never reached the stream"));
        from_start.push(at.saturating_duration_since(started));
        from_exit.push(at.saturating_duration_since(returned));
    }
    drop(served);
    (from_start, from_exit)
}

/// Median, p90 and max of `all`, in milliseconds.
fn summary(mut all: Vec<Duration>) -> String {
    all.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    format!(
        "median {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.9)),
        ms(all.last().copied().unwrap_or_default()),
    )
}

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    if !filter.is_empty() && !filter.iter().any(|f| "serve_push".contains(f.as_str())) {
        return;
    }
    let edits = if measuring() { 40 } else { 3 };
    let home = tempfile::tempdir().unwrap();
    let mut storages = vec![(
        "default (SQLite logs, file blobs)",
        vec!["--home".to_owned(), home.path().display().to_string()],
    )];
    match std::env::var("INFINISHEET_POSTGRES_URL") {
        Ok(url) => storages.push((
            "PostgreSQL logs, file blobs",
            vec![
                "--logs".to_owned(),
                url,
                "--blobs".to_owned(),
                format!("file:{}", home.path().join("blobs").display()),
            ],
        )),
        Err(_) => eprintln!("serve_push: no INFINISHEET_POSTGRES_URL; PostgreSQL left out"),
    }
    for (name, storage) in storages {
        let (from_start, from_exit) = measure(&storage, edits);
        let first = from_exit.iter().filter(|d| d.is_zero()).count();
        println!(
            "serve_push/{name}: {} edits 50-450 ms apart; the browser's event after `set` \
             exited: {} ({first} arrived before it exited); after `set` started: {}",
            from_exit.len(),
            summary(from_exit),
            summary(from_start),
        );
    }
}
