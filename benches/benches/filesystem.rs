//! The filesystem blob store against a raw loop on the same disk in the
//! same run: durable 4 KiB blob writes (temporary file, fdatasync, rename,
//! directory fsync).

#![allow(clippy::unwrap_used, missing_docs)]

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infinisheet_benches::{on_worker, runtime, settle};
use infinisheet_blob_store::{BlobDir, BlobDirExt, BlobStore};
use infinisheet_filesystem::FsBlobStore;
use std::fs::File;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

const BLOB: usize = 4 * 1024;

/// One durable atomic replace done by hand.
fn raw_write(dir: &std::path::Path, tmp: &std::path::Path, n: u64, content: &[u8]) {
    let temp = tmp.join(format!("raw.{n}.tmp"));
    let mut file = File::create(&temp).unwrap();
    file.write_all(content).unwrap();
    file.sync_data().unwrap();
    drop(file);
    std::fs::rename(&temp, dir.join(format!("blob{}", n % 16))).unwrap();
    File::open(dir).unwrap().sync_all().unwrap();
}

fn blob_writes(c: &mut Criterion) {
    let rt = runtime();
    // On the project's disk, not a tmpfs.
    let base = tempfile::tempdir_in(std::env::current_dir().unwrap()).unwrap();
    let (raw_dir, raw_tmp) = (base.path().join("raw/blobs"), base.path().join("raw/tmp"));
    std::fs::create_dir_all(&raw_dir).unwrap();
    std::fs::create_dir_all(&raw_tmp).unwrap();
    let store = rt
        .block_on(FsBlobStore::open(base.path().join("store")))
        .unwrap();
    let dir: Arc<dyn BlobDir> = rt.block_on(store.root().open_dir("sheet")).unwrap();
    let content = Bytes::from(vec![0x42; BLOB]);

    let mut group = c.benchmark_group("filesystem/blob_write_4k");
    group.throughput(Throughput::Elements(1));
    group.sample_size(20);
    group.measurement_time(Duration::from_secs(8));
    settle();
    let mut n = 0;
    group.bench_function("raw", |b| {
        b.iter(|| {
            raw_write(&raw_dir, &raw_tmp, n, &content);
            n += 1;
        });
    });
    settle();
    group.bench_function("backend", |b| {
        b.iter_custom(|iters| {
            let (dir, content) = (dir.clone(), content.clone());
            on_worker(&rt, async move {
                let start = Instant::now();
                for i in 0..iters {
                    dir.write(&format!("blob{}", i % 16), content.clone())
                        .await
                        .unwrap();
                }
                start.elapsed()
            })
        });
    });
    group.finish();
}

criterion_group!(benches, blob_writes);
criterion_main!(benches);
