//! The conformance suite on `object_store`'s in-memory store (both traits)
//! and on `LocalFileSystem` (the blob store; the event log is refused there,
//! loudly). The S3 run is in `tests/s3.rs`.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use infinisheet_object_store::ObjectStore;
use infinisheet_object_store::local::LocalFileSystem;
use infinisheet_object_store::path::Path;
use infinisheet_object_store::{ObjectStoreBlobStore, ObjectStoreEventLog, OpenError};
use std::sync::Arc;

mod in_memory {
    use super::*;

    async fn log() -> ObjectStoreEventLog {
        ObjectStoreEventLog::open(common::memory(), common::random_prefix("log"))
            .await
            .unwrap()
            .with_page_size(7)
    }

    async fn again(store: Arc<dyn ObjectStore>, prefix: Path) -> ObjectStoreEventLog {
        ObjectStoreEventLog::open(store, prefix)
            .await
            .unwrap()
            .with_page_size(7)
    }

    infinisheet_conformance::event_log_tests!(
        log,
        reopen = |log: ObjectStoreEventLog| again(log.object_store().clone(), log.prefix().clone()),
        open_again =
            |log: &ObjectStoreEventLog| again(log.object_store().clone(), log.prefix().clone()),
    );

    infinisheet_conformance::blob_store_tests!(
        || async { ObjectStoreBlobStore::new(common::memory(), "blobs".into()).with_page_size(7) },
        reopen = |blobs: ObjectStoreBlobStore| async move {
            ObjectStoreBlobStore::new(blobs.object_store().clone(), blobs.prefix().clone())
                .with_page_size(7)
        },
        open_again = |blobs: &ObjectStoreBlobStore| std::future::ready(
            ObjectStoreBlobStore::new(blobs.object_store().clone(), blobs.prefix().clone())
                .with_page_size(7)
        ),
    );

    // Logs by id under a prefix, as a catalog holds them.
    infinisheet_conformance::log_store_tests!(|| async {
        infinisheet_object_store::ObjectStoreLogs::new(
            common::memory(),
            common::random_prefix("logs"),
            "memory://logs",
        )
    });

    /// Up to three clients, each with its own handle (nothing shared but
    /// the store), must agree with the reference log.
    #[test]
    fn handles_match_reference() {
        infinisheet_conformance::event_log::event_log_handles_match_reference(|| async {
            let store = common::memory();
            let prefix = common::random_prefix("log");
            let mut handles = Vec::new();
            for _ in 0..3 {
                let log = ObjectStoreEventLog::open(store.clone(), prefix.clone())
                    .await
                    .unwrap()
                    .with_page_size(7);
                handles.push(log);
            }
            handles
        });
    }
}

/// Pages of 1,000 entries: whole 64-entry blocks are read, packed and read
/// back from their packs.
mod in_memory_packed {
    use super::*;

    async fn log() -> ObjectStoreEventLog {
        ObjectStoreEventLog::open(common::memory(), common::random_prefix("log"))
            .await
            .unwrap()
            .with_packing(true)
    }

    async fn again(store: Arc<dyn ObjectStore>, prefix: Path) -> ObjectStoreEventLog {
        ObjectStoreEventLog::open(store, prefix)
            .await
            .unwrap()
            .with_packing(true)
    }

    infinisheet_conformance::event_log_tests!(
        log,
        reopen = |log: ObjectStoreEventLog| again(log.object_store().clone(), log.prefix().clone()),
        open_again =
            |log: &ObjectStoreEventLog| again(log.object_store().clone(), log.prefix().clone()),
    );
}

mod local_files {
    use super::*;

    /// A store over a new temporary directory, kept alive by the store.
    struct Dir(tempfile::TempDir);

    fn local() -> (Arc<LocalFileSystem>, Dir) {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalFileSystem::new_with_prefix(dir.path())
            .unwrap()
            .with_automatic_cleanup(true);
        (Arc::new(store), Dir(dir))
    }

    /// A blob store that owns its temporary directory.
    #[derive(Debug)]
    struct LocalBlobs {
        blobs: ObjectStoreBlobStore,
        _dir: Arc<tempfile::TempDir>,
    }

    impl infinisheet_blob_store::BlobStore for LocalBlobs {
        fn root(&self) -> Arc<dyn infinisheet_blob_store::BlobDir> {
            self.blobs.root()
        }

        fn capabilities(&self) -> infinisheet_blob_store::BlobCapabilities {
            self.blobs.capabilities()
        }
    }

    infinisheet_conformance::blob_store_tests!(
        || async {
            let (store, Dir(dir)) = local();
            LocalBlobs {
                blobs: ObjectStoreBlobStore::new(store, Path::from("blobs")).with_page_size(7),
                _dir: Arc::new(dir),
            }
        },
        reopen = |blobs: LocalBlobs| std::future::ready(local_again(&blobs)),
        open_again = |blobs: &LocalBlobs| std::future::ready(local_again(blobs)),
    );

    /// A new handle on the same directory: a new store over it.
    fn local_again(blobs: &LocalBlobs) -> LocalBlobs {
        LocalBlobs {
            blobs: ObjectStoreBlobStore::new(
                Arc::new(
                    LocalFileSystem::new_with_prefix(blobs._dir.path())
                        .unwrap()
                        .with_automatic_cleanup(true),
                ),
                Path::from("blobs"),
            )
            .with_page_size(7),
            _dir: blobs._dir.clone(),
        }
    }

    /// `LocalFileSystem` has no ETag-conditional replace: the event log
    /// refuses it at open, and its conformance run is a loud skip.
    #[tokio::test]
    async fn the_event_log_refuses_local_files() {
        let (store, _dir) = local();
        match ObjectStoreEventLog::open(store, Path::from("log")).await {
            Err(OpenError::Unsupported { missing, .. }) => {
                assert!(missing.contains("replace"), "{missing}");
                infinisheet_conformance::skip(
                    "event log conformance on LocalFileSystem",
                    "the store has no ETag-conditional replace, which the log requires",
                );
            }
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }
}

/// Without the `s3-tests` feature the S3 suite is not built; say so.
/// `cargo xtask test` builds and runs it in a step of its own, after
/// starting the server.
#[cfg(not(feature = "s3-tests"))]
#[test]
fn the_s3_suite_needs_the_server() {
    infinisheet_conformance::skip(
        "the S3 suite (tests/s3.rs)",
        "not in this build; `cargo xtask test` runs it in a step of its own, with the server",
    );
}
