//! The catalog on Azure Blob Storage by URL (`az://`), on the emulator
//! `cargo xtask test` starts. Built only with the `azure-tests` feature.

#![allow(clippy::unwrap_used)]

use infinisheet::{Catalog, Storage};

mod common;
use common::exercise;

/// The catalog on Azure Blob Storage by URL (`az://`), logs and blobs, on
/// the emulator `cargo xtask test` starts. Built with `azure-tests`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_logs_and_blobs_by_url() {
    assert!(
        std::env::var_os("INFINISHEET_AZURE").is_some(),
        "this test needs the emulator `cargo xtask test` starts"
    );
    let container = std::env::var("INFINISHEET_AZURE_CONTAINER").unwrap();
    let run = format!("{:016x}", fastrand::u64(..));
    let logs = format!("az://{container}/catalog-{run}/logs");
    let blobs = format!("az://{container}/catalog-{run}/sheets");
    let open = async || Catalog::new(Storage::open(&logs, &blobs).await.unwrap());
    let catalog = open().await;
    assert_eq!(catalog.storage().logs.backend(), "object-store");
    exercise(catalog, open).await;
}
