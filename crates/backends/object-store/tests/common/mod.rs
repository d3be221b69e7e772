//! Stores for the tests: in-memory, local files, and the S3 server that
//! `cargo xtask test` starts (found through the environment it sets).

#![allow(dead_code, unreachable_pub)]

use infinisheet_object_store::object_store::aws::AmazonS3Builder;
use infinisheet_object_store::object_store::path::Path;
use infinisheet_object_store::object_store::{ObjectStore, memory::InMemory};
use std::sync::Arc;

/// A fresh in-memory store.
pub fn memory() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

/// A prefix no other test uses.
pub fn random_prefix(what: &str) -> Path {
    Path::from(format!("{what}-{:016x}", fastrand::u64(..)))
}

/// The S3 server's bucket, from the environment `cargo xtask test` sets.
/// Missing configuration is a failure: these tests are only built when
/// the server is meant to be there.
pub fn s3() -> Arc<dyn ObjectStore> {
    assert!(
        std::env::var_os("INFINISHEET_S3").is_some(),
        "the S3 tests need the server `cargo xtask test` starts \\
         (or AWS_ENDPOINT, AWS_BUCKET, ... and INFINISHEET_S3=1 set by hand)"
    );
    let store = AmazonS3Builder::from_env()
        .build()
        .expect("configuring the S3 store from the AWS_* environment");
    Arc::new(store)
}
