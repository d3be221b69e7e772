//! The object-store backend against raw `object_store` calls on the same
//! store in the same run: 4 KiB blob puts and gets, and a 1,000-entry query
//! against fetching the same 1,000 entries one by one. On the S3 server
//! `cargo xtask bench` starts (the `AWS_*` environment); without it, on
//! the in-memory store, which says little about the network.

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infinisheet_benches::{entry_of, runtime};
use infinisheet_blob_store::{BlobName, BlobStore};
use infinisheet_event_log::{EventLog, KnownSnapshot, QueryEnd, QueryStart};
use infinisheet_object_store::object_store::aws::AmazonS3Builder;
use infinisheet_object_store::object_store::memory::InMemory;
use infinisheet_object_store::object_store::path::Path;
use infinisheet_object_store::object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use infinisheet_object_store::{ObjectStoreBlobStore, ObjectStoreEventLog};
use std::sync::Arc;
use std::time::Duration;

/// The S3 server's bucket, or an in-memory store without one.
fn store() -> Arc<dyn ObjectStore> {
    if std::env::var_os("AWS_ENDPOINT").is_some() {
        Arc::new(AmazonS3Builder::from_env().build().unwrap())
    } else {
        eprintln!("object_store bench: no AWS_ENDPOINT; measuring the in-memory store");
        Arc::new(InMemory::new())
    }
}

fn prefix(what: &str) -> Path {
    Path::from(format!("bench-{what}-{:016x}", std::process::id()))
}

fn blobs(c: &mut Criterion) {
    let rt = runtime();
    let store = store();
    let content = Bytes::from(vec![0x5a; 4096]);
    let raw_key = prefix("raw-blobs").clone().join("b");
    let blobs = ObjectStoreBlobStore::new(store.clone(), prefix("blobs"));
    let root = blobs.root();
    let name = BlobName::new("b").unwrap();
    let mut group = c.benchmark_group("object_store/blob_4k");
    group.throughput(Throughput::Bytes(4096));
    group.measurement_time(Duration::from_secs(8));
    group.bench_function("put_raw", |b| {
        b.to_async(&rt).iter(|| async {
            store
                .put(&raw_key, PutPayload::from(content.clone()))
                .await
                .unwrap();
        });
    });
    group.bench_function("put_backend", |b| {
        b.to_async(&rt).iter(|| async {
            root.write_blob(&name, content.clone()).await.unwrap();
        });
    });
    group.bench_function("get_raw", |b| {
        b.to_async(&rt).iter(|| async {
            let got = store.get(&raw_key).await.unwrap().bytes().await.unwrap();
            assert_eq!(got.len(), 4096);
        });
    });
    group.bench_function("get_backend", |b| {
        b.to_async(&rt).iter(|| async {
            let got = root.read_blob(&name).await.unwrap();
            assert_eq!(got.len(), 4096);
        });
    });
    group.finish();
}

fn queries(c: &mut Criterion) {
    const ENTRIES: u64 = 1000;
    let rt = runtime();
    let store = store();
    let log: Arc<dyn EventLog> = rt.block_on(async {
        let log = ObjectStoreEventLog::open(store.clone(), prefix("log"))
            .await
            .unwrap();
        // One append call per entry: 1,000 records, the worst case.
        for seq in 0..ENTRIES {
            log.add_entry(entry_of(60), seq, KnownSnapshot::NotTracked)
                .await
                .unwrap();
        }
        Arc::new(log)
    });
    let records = prefix("log").clone().join("records");
    let mut group = c.benchmark_group("object_store/query_1000");
    group.throughput(Throughput::Elements(ENTRIES));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    group.bench_function("one_by_one_raw", |b| {
        b.to_async(&rt).iter(|| async {
            for seq in 0..ENTRIES {
                let key = records.clone().join(format!("{seq:020}"));
                store.get(&key).await.unwrap().bytes().await.unwrap();
            }
        });
    });
    group.bench_function("query_backend", |b| {
        b.to_async(&rt).iter(|| async {
            let page = log
                .query(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
                .await
                .unwrap();
            assert_eq!(page.entries.len() as u64, ENTRIES);
        });
    });
    group.finish();
}

criterion_group!(benches, blobs, queries);
criterion_main!(benches);
