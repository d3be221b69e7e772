//! Test helper: appends entries to a log in a SQLite database, retrying on
//! conflict, and prints `ack <seq> <writer> <n>` on stdout after each
//! acknowledged append. The multi-process and crash tests run it as a real
//! child process.
//!
//! usage: infinisheet-sqlite-writer <db> <log> <writer> <count> <full|normal>

use infinisheet_event_log::{AddEntryError, EventLog, KnownSnapshot, LogEntry};
use infinisheet_sqlite::{Durability, SqliteDatabase, SqliteOptions};
use std::io::Write;
use std::process::ExitCode;

/// The payload of entry `n` of `writer`: self-checking, so a torn or mixed
/// entry is detectable.
fn payload(writer: u32, n: u64) -> String {
    let body = format!("writer {writer} entry {n} ");
    let check = body
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("{body}check {check:08x}")
}

async fn run(args: &[String]) -> Result<(), String> {
    let [db, log, writer, count, durability] = args else {
        return Err(
            "usage: infinisheet-sqlite-writer <db> <log> <writer> <count> <full|normal>".into(),
        );
    };
    let writer: u32 = writer
        .parse()
        .map_err(|_| format!("bad writer id {writer:?}"))?;
    let count: u64 = count.parse().map_err(|_| format!("bad count {count:?}"))?;
    let durability = match durability.as_str() {
        "full" => Durability::Full,
        "normal" => Durability::Normal,
        other => return Err(format!("bad durability {other:?}")),
    };
    let options = SqliteOptions::default().durability(durability);
    let db = SqliteDatabase::open(db, options)
        .await
        .map_err(|e| e.to_string())?;
    let log = db.log(log).await.map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    let mut seq = 0;
    for n in 0..count {
        loop {
            let entry = LogEntry::new(payload(writer, n));
            match log.add_entry(entry, seq, KnownSnapshot::NotTracked).await {
                Ok(_) => break,
                Err(AddEntryError::Conflict { next, .. }) => seq = next,
                Err(err) => return Err(format!("appending entry {n}: {err}")),
            }
        }
        writeln!(out, "ack {seq} {writer} {n}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        seq += 1;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("cannot start a runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(&args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("infinisheet-sqlite-writer: {err}");
            ExitCode::FAILURE
        }
    }
}
