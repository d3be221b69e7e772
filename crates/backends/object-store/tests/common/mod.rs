//! Stores for the tests: in-memory, local files, and the S3 server that
//! `cargo xtask test` starts (found through the environment it sets).

#![allow(dead_code, unreachable_pub)]

use infinisheet_object_store::aws::AmazonS3Builder;
use infinisheet_object_store::path::Path;
use infinisheet_object_store::{ObjectStore, memory::InMemory};
use std::sync::Arc;

/// A fresh in-memory store.
pub fn memory() -> Arc<dyn ObjectStore> {
    Arc::new(InMemory::new())
}

/// A prefix no other test uses.
pub fn random_prefix(what: &str) -> Path {
    Path::from(format!("{what}-{:016x}", fastrand::u64(..)))
}

/// A new bucket of its own on the S3 server that `cargo xtask test` starts
/// (found through the `AWS_*` environment it sets). Missing configuration
/// is a failure: these tests are only built when the server is meant to be
/// there. A bucket per test keeps each listing small: the server scans a
/// bucket's every key to list it.
pub fn s3() -> Arc<dyn ObjectStore> {
    assert!(
        std::env::var_os("INFINISHEET_S3").is_some(),
        "the S3 tests need the server `cargo xtask test` starts \
         (or AWS_ENDPOINT, AWS_BUCKET, ... and INFINISHEET_S3=1 set by hand)"
    );
    let bucket = format!("test-{:016x}", fastrand::u64(..));
    create_bucket(&bucket);
    s3_bucket(&bucket)
}

/// The existing `bucket` on the S3 server.
pub fn s3_bucket(bucket: &str) -> Arc<dyn ObjectStore> {
    s3_client(bucket)
}

/// A client of the existing `bucket` on the S3 server, as its own type
/// (which also offers paginated listing).
pub fn s3_client(bucket: &str) -> Arc<infinisheet_object_store::aws::AmazonS3> {
    infinisheet_object_store::install_tls();
    let store = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .build()
        .expect("configuring the S3 store from the AWS_* environment");
    Arc::new(store)
}

/// Creates `bucket` with a bare HTTP PUT (object_store has no call for it).
pub fn create_bucket(bucket: &str) {
    use std::io::{Read, Write};
    let endpoint = std::env::var("AWS_ENDPOINT").expect("AWS_ENDPOINT");
    let host = endpoint
        .strip_prefix("http://")
        .expect("a plain-HTTP loopback endpoint")
        .trim_end_matches('/');
    let mut stream = std::net::TcpStream::connect(host).expect("connecting to the S3 server");
    write!(
        stream,
        "PUT /{bucket} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    assert!(
        reply
            .lines()
            .next()
            .is_some_and(|status| status.contains(" 200")),
        "creating bucket {bucket}: {reply}"
    );
}
