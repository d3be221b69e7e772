//! Test helper: replaces the blob `d/b` of a filesystem store with version
//! 0, 1, 2, ... and prints `ack <version>` on stdout after each write
//! returns. The crash test kills it with SIGKILL and checks what survived.
//!
//! usage: infinisheet-fs-writer blobs <root> <count>

use bytes::Bytes;
use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_filesystem::FsBlobStore;
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

async fn run(args: &[String]) -> Result<(), String> {
    let [mode, root, count] = args else {
        return Err("usage: infinisheet-fs-writer blobs <root> <count>".into());
    };
    if mode != "blobs" {
        return Err(format!("unknown mode {mode:?}"));
    }
    let count: u64 = count.parse().map_err(|_| format!("bad count {count:?}"))?;
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
