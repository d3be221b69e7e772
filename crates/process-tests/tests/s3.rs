//! Real processes sharing one log on the S3-compatible server that
//! `cargo xtask test` starts: the clients share nothing but the bucket.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::object_store::aws::AmazonS3Builder;
use infinisheet_process_tests::concurrent_appenders;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

fn spawn(prefix: &str, writer: u32, count: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_infinisheet-writer"))
        .args(["s3-log", prefix, &writer.to_string(), &count.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn open(prefix: &str) -> ObjectStoreEventLog {
    assert!(
        std::env::var_os("INFINISHEET_S3").is_some(),
        "this test needs the S3 server `cargo xtask test` starts"
    );
    let store = AmazonS3Builder::from_env().build().unwrap();
    ObjectStoreEventLog::open(Arc::new(store), prefix.into())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_clients_append_to_one_log_on_s3() {
    let prefix = format!("multi-client-{:016x}", fastrand::u64(..));
    // Opened once first, so the probe and the empty log exist before the
    // clients race.
    open(&prefix).await;
    concurrent_appenders(|w, n| spawn(&prefix, w, n), 4, 200, || open(&prefix)).await;
}
