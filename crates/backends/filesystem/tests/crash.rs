//! A writer replacing one blob is killed with SIGKILL at random moments:
//! each time the store reopens, the blob is one whole version no older than
//! the last acknowledged one, and no temporary file is left behind.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_blob_store::{BlobDirExt, BlobStore};
use infinisheet_filesystem::FsBlobStore;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const WRITER: &str = env!("CARGO_BIN_EXE_infinisheet-fs-writer");

/// The version a blob claims, if its check holds.
fn check(content: &[u8]) -> Option<u64> {
    let (body, tail) = content.split_at(content.len().checked_sub(8)?);
    let check = body.iter().fold(0u64, |h, b| {
        h.wrapping_mul(1_099_511_628_211) ^ u64::from(*b)
    });
    if check.to_le_bytes() != tail {
        return None;
    }
    let line = body.split(|b| *b == b'\n').next()?;
    std::str::from_utf8(line)
        .ok()?
        .strip_prefix("version ")?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_blob_writers_leave_whole_acknowledged_blobs() {
    const KILLS: usize = 20;
    let dir = tempfile::tempdir().unwrap();
    let mut last_acked: Option<u64> = None;
    for round in 0..KILLS {
        let mut child = Command::new(WRITER)
            .args(["blobs", dir.path().to_str().unwrap(), "1000000"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let parse = |line: String| -> u64 { line.strip_prefix("ack ").unwrap().parse().unwrap() };
        for _ in 0..fastrand::usize(1..60) {
            last_acked = Some(parse(
                lines.next().expect("the writer stopped early").unwrap(),
            ));
        }
        child.kill().unwrap();
        for line in lines {
            last_acked = Some(parse(line.unwrap()));
        }
        child.wait().unwrap();

        let store = FsBlobStore::open(dir.path()).await.unwrap();
        let content = store
            .root()
            .open_dir("d")
            .await
            .unwrap()
            .read("b")
            .await
            .unwrap();
        let version = check(&content)
            .unwrap_or_else(|| panic!("round {round}: the blob is partial or mixed"));
        let acked = last_acked.unwrap();
        // Each round's writer restarts at version 0, so the blob holds this
        // round's last acknowledged version or the one after it.
        assert!(
            version == acked || version == acked + 1,
            "round {round}: blob holds version {version}, last acknowledged {acked}"
        );
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).unwrap().collect();
        assert!(
            leftovers.is_empty(),
            "round {round}: temporary files left: {leftovers:?}"
        );
        let listed = store
            .root()
            .open_dir("d")
            .await
            .unwrap()
            .list_all()
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "round {round}: only the blob is listed");
    }
}
