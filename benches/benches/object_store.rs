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
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{EventLog, KnownSnapshot, QueryEnd, QueryStart};
use infinisheet_object_store::aws::AmazonS3Builder;
use infinisheet_object_store::memory::InMemory;
use infinisheet_object_store::path::Path;
use infinisheet_object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use infinisheet_object_store::{ObjectStoreBlobStore, ObjectStoreEventLog};
use std::sync::Arc;
use std::time::Duration;

/// The S3 server's bucket, or an in-memory store without one.
fn store() -> Arc<dyn ObjectStore> {
    if std::env::var_os("AWS_ENDPOINT").is_some() {
        infinisheet_object_store::install_tls();
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

/// A log of 1,000 entries appended `per_append` at a time, and the keys of
/// its records.
fn query_fixture(
    rt: &tokio::runtime::Runtime,
    store: &Arc<dyn ObjectStore>,
    per_append: u64,
) -> (Arc<dyn EventLog>, Vec<Path>) {
    const ENTRIES: u64 = 1000;
    let log_prefix = prefix(&format!("log-{per_append}"));
    let log = rt.block_on(async {
        let log = ObjectStoreEventLog::open(store.clone(), log_prefix.clone())
            .await
            .unwrap()
            .with_packing(true);
        for first in (0..ENTRIES).step_by(per_append as usize) {
            let batch = (0..per_append).map(|_| entry_of(60)).collect();
            log.add_entries(batch, first, KnownSnapshot::NotTracked)
                .await
                .unwrap();
        }
        log
    });
    let records = log_prefix.join("records");
    let keys = (0..ENTRIES)
        .step_by(per_append as usize)
        .map(|first| records.clone().join(format!("{first:020}")))
        .collect();
    (Arc::new(log), keys)
}

/// One query of 1,000 entries against fetching them one by one: with
/// single-entry records (every edit its own append, the worst case) the
/// one-by-one reference is a raw GET per record, and the measured queries
/// read the packs the first query wrote; with 100-entry batches (an import)
/// the reference is a query per entry.
fn queries(c: &mut Criterion) {
    const ENTRIES: u64 = 1000;
    let rt = runtime();
    let store = store();
    let mut group = c.benchmark_group("object_store/query_1000");
    group.throughput(Throughput::Elements(ENTRIES));
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(20));
    let (single, keys) = query_fixture(&rt, &store, 1);
    // The first query reads the records and packs whole blocks; the ones
    // criterion measures read the packs.
    let cold = rt.block_on(async {
        let started = std::time::Instant::now();
        single
            .query(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        started.elapsed()
    });
    eprintln!("object_store/query_1000/single_records/first_query: {cold:?} (writes the packs)");
    group.bench_function("single_records/one_by_one_raw_get", |b| {
        b.to_async(&rt).iter(|| async {
            for key in &keys {
                store.get(key).await.unwrap().bytes().await.unwrap();
            }
        });
    });
    group.bench_function("single_records/query", |b| {
        b.to_async(&rt).iter(|| async {
            let page = single
                .query(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
                .await
                .unwrap();
            assert_eq!(page.entries.len() as u64, ENTRIES);
        });
    });
    let (batched, _) = query_fixture(&rt, &store, 100);
    group.bench_function("batches_of_100/one_by_one_query", |b| {
        b.to_async(&rt).iter(|| async {
            for seq in 0..ENTRIES {
                let page = batched
                    .query(seq.into(), (seq + 1).into(), KnownSnapshot::NotTracked)
                    .await
                    .unwrap();
                assert_eq!(page.entries.len(), 1);
            }
        });
    });
    group.bench_function("batches_of_100/query", |b| {
        b.to_async(&rt).iter(|| async {
            let page = batched
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
