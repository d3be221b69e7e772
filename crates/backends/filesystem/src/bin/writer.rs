//! Test helper run as a real child process by the multi-process and crash
//! tests.
//!
//! * `blobs <root> <count>`: replaces the blob `d/b` of a store with
//!   versions 0, 1, 2, ..., printing `ack <version>` after each write.
//! * `log <dir> <writer> <count>`: appends `count` entries to a log,
//!   retrying on conflict, printing `ack <seq> <writer> <n>` after each.

use bytes::Bytes;
use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_event_log::{AddEntryError, EventLog, KnownSnapshot, LogEntry};
use infinisheet_filesystem::{FsBlobStore, FsEventLog, FsLogOptions};
use std::io::Write;
use std::process::ExitCode;

/// Version `v` of the blob: 1 to 64 KiB of bytes derived from `v`, then an
/// 8-byte check of everything before it, so a partial or mixed blob is
/// detectable.
fn version(v: u64) -> Bytes {
    let len = 1024 * (1 + (v * 7919 % 64)) as usize;
    let mut content: Vec<u8> = format!("version {v}\n").into_bytes();
    content.extend((0..len).map(|i| (i as u64 ^ v) as u8));
    let check = content.iter().fold(0u64, |h, b| {
        h.wrapping_mul(1_099_511_628_211) ^ u64::from(*b)
    });
    content.extend_from_slice(&check.to_le_bytes());
    Bytes::from(content)
}

/// The payload of entry `n` of `writer`: self-checking, so a torn or mixed
/// entry is detectable.
fn payload(writer: u32, n: u64) -> String {
    let body = format!("writer {writer} entry {n} ");
    let check = body
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("{body}check {check:08x}")
}

async fn blobs(root: &str, count: u64) -> Result<(), String> {
    let store = FsBlobStore::open(root).await.map_err(|e| e.to_string())?;
    let dir = store
        .root()
        .open_dir("d")
        .await
        .map_err(|e| e.to_string())?;
    let mut out = std::io::stdout().lock();
    for v in 0..count {
        dir.write("b", version(v))
            .await
            .map_err(|e| e.to_string())?;
        writeln!(out, "ack {v}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

async fn log(dir: &str, writer: u32, count: u64) -> Result<(), String> {
    let log = FsEventLog::open(dir, FsLogOptions::default().segment_bytes(64 * 1024))
        .await
        .map_err(|e| e.to_string())?;
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

async fn run(args: &[String]) -> Result<(), String> {
    let number = |text: &str| {
        text.parse::<u64>()
            .map_err(|_| format!("bad number {text:?}"))
    };
    match args {
        [mode, root, count] if mode == "blobs" => blobs(root, number(count)?).await,
        [mode, dir, writer, count] if mode == "log" => {
            let writer = u32::try_from(number(writer)?).map_err(|_| "bad writer id".to_owned())?;
            log(dir, writer, number(count)?).await
        }
        _ => Err(
            "usage: infinisheet-fs-writer blobs <root> <count> | log <dir> <writer> <count>".into(),
        ),
    }
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
            eprintln!("infinisheet-fs-writer: {err}");
            ExitCode::FAILURE
        }
    }
}
