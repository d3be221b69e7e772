//! Object-store backend of Infinisheet: a [`BlobStore`] and an [`EventLog`]
//! over any [`object_store::ObjectStore`] and a key prefix — S3 and
//! S3-compatible servers, GCS, Azure, local files, memory.
//!
//! * [`ObjectStoreBlobStore`] works on every store: directories are key
//!   prefixes, a write is one PUT.
//! * [`ObjectStoreLogs`] keeps many logs under one prefix, by id (a
//!   catalog's).
//! * [`ObjectStoreEventLog`] lets many clients on many machines share one
//!   log. It requires two things of the store, and
//!   [`ObjectStoreEventLog::open`] checks both: **conditional create**
//!   (`PutMode::Create`, `If-None-Match: *` on S3), so exactly one writer
//!   wins each id, and **ETag-conditional replace** (`PutMode::Update`,
//!   `If-Match`), so metadata changes never overwrite each other. S3, GCS,
//!   Azure and the in-memory store offer both; `LocalFileSystem` has no
//!   conditional replace and is refused. The log also relies on listings
//!   coming back in key order, as every one of those stores returns them.
//! * [`CountingStore`] counts the requests made through it, to measure
//!   what an operation costs.
//! * [`parse_url`] (and [`open_url`], which adds the store's paginated
//!   listing) builds a store from a URL and the environment with
//!   `object_store`'s own builders and configuration keys.
//!
//! # Features
//!
//! `aws` (the default: S3 and S3-compatible servers), `gcp`, `azure` and
//! `http` add those stores. Each brings HTTP through `reqwest` and TLS
//! through `rustls` on `ring`, not `object_store`'s own cloud features,
//! whose `aws-lc` crypto is a long C build. rustls needs its crypto
//! provider chosen once per process: [`open_url`] and [`parse_url`] do it
//! ([`install_tls`]); a host app that builds a cloud store with
//! `object_store`'s builders itself calls [`install_tls`] first.
//!
//! [`BlobStore`]: infinisheet_blob_store::BlobStore
//! [`EventLog`]: infinisheet_event_log::EventLog
//!
//! # Layout
//!
//! `ObjectStoreBlobStore` (`blob_store.rs`:
//! key prefixes, delimiter listings served page by page from one fetch;
//! `keys.rs`: blob names as key parts, encoded and chunked where needed),
//! `ObjectStoreEventLog` (`log/mod.rs`: the operations; `log/fetch.rs`:
//! reading entries from packs and records; `log/candidates.rs`: the newest
//! snapshot; `log/objects.rs`: the head, snapshot candidates, records,
//! packs and overlays, chain walks and key listings;
//! `log/format.rs`: the object encodings; `log/open.rs`: the
//! conditional-write probe), `url.rs` (the one place a store is built from
//! a URL: `object_store`'s builders per scheme — S3, GCS, Azure, HTTP,
//! memory — with the environment and one short retry setting; features
//! `aws` (default), `gcp`, `azure`, `http`, each with TLS through rustls on
//! ring, `install_tls`); `error.rs` is the only place `object_store` errors
//! are inspected (retryable only for a status or a transport failure a
//! retry can change).
//!
//! # Invariants
//!
//! * Object-store log: records tile the log, each keyed by its first id,
//!   created only if absent and never changed; metadata changed after append
//!   lives in per-1,024-id overlays, and a query that read a whole 64-id block
//!   from records packs it (created only if absent; every writer writes the
//!   same bytes, since records never change). The head (start, first record,
//!   end hint), the snapshot candidates and the overlays change only by ETag
//!   compare-and-swap. The end hint is
//!   never past the end; the candidates are a superset of the entries whose
//!   `snapshot` is set (added before the entry changes, removed only below the
//!   start). The candidates object holds at most 16 ids: beyond, the older
//!   half is first added to a chunk of older candidates
//!   (`older-snapshots/<largest id>`, merged by compare-and-swap) and then
//!   dropped from it, so together they never name fewer. Queries for the
//!   newest snapshot read the chunks only when no id of the small object
//!   still carries one; a truncate deletes the chunks wholly below it. Every compare-and-swap loop backs off between lost races (1 ms
//!   doubling to 64 ms, jittered) and gives up after 32 with a retryable
//!   error. A truncate moves the head before it deletes records, and only
//!   records below the head's first record; an append that finds its record
//!   below the first record after creating it (it recreated a deleted one)
//!   deletes it and reports a conflict. A log is created — the store's
//!   conditional writes probed on a fresh `probe-<random>` object that is
//!   then removed, and an empty head created if absent — only when `open`
//!   finds neither a head nor a record; opening a log that exists is one
//!   HEAD, and `open_existing` never writes. Queries write nothing unless the
//!   handle was made `with_packing(true)`. An append is one PUT and one GET of
//!   the head (the head's end hint moves once per 256 entries; a walk for
//!   the end reads four record headers, then lists the rest and jumps to the
//!   last record).
//! * An object-store blob write beneath a handle checks that no directory on
//!   its way has become a blob (one HEAD per level, beside the PUT) and takes
//!   the write back if one has.
//!
//! # Decisions
//!
//! * The object-store log keeps one object per append call rather than per
//!   entry or per segment: a batch is atomic because it is one object, and a
//!   conditional create is the only compare-and-set every store offers on a
//!   key that does not exist yet. The end is found by walking record headers
//!   from a hint, so no call lists the whole log. Records never change
//!   (metadata changes go to overlays), which lets readers pack whole 64-entry
//!   blocks (with `with_packing(true)`; off by default, so reading never
//!   writes): the first query of 1,000 single-entry records costs 1,000 GETs,
//!   later ones ~16 pack GETs (moto serves one request at a time, so only
//!   fewer objects make a query faster there).
//! * The object-store blob write checks for a directory of the same name with a
//!   listing issued beside the PUT (one key, through the store's paginated
//!   listing when the blob store was given one, which also pages directory
//!   listings one request a page); a handle rewriting a blob it last wrote or
//!   read instead makes the PUT conditional on that blob's ETag (still that
//!   blob, so no directory), one request. Object stores have no transaction
//!   spanning keys, so the kind checks are best effort under racing clients.
//! * The S3 tests give every test its own bucket (moto lists by scanning a
//!   bucket's every key) and run eight at a time.
//! * S3 stores the facade opens give up on an unreachable endpoint after 2
//!   retries (10 s at most) instead of `object_store`'s 10 retries over 3
//!   minutes, so the command's error comes promptly.

mod blob_store;
mod counting;
mod error;
mod keys;
mod log;
mod logs;
mod url;

pub use blob_store::{ObjectStoreBlobDir, ObjectStoreBlobStore};
pub use counting::{CountingStore, RequestCounts};
pub use error::ServerError;
pub use log::{ObjectStoreEventLog, OpenError};
pub use logs::ObjectStoreLogs;
/// The `object_store` crate's items, here so that a store is built
/// without a dependency of one's own (`infinisheet_object_store::memory::InMemory`,
/// `infinisheet::object_store::aws::AmazonS3Builder`). `parse_url` and
/// `parse_url_opts` here are this crate's own ([`parse_url`]: configured
/// from the environment, with typed errors), not `object_store`'s.
#[doc(no_inline)]
pub use object_store::*;
pub use url::{UrlError, UrlStore, open_url, open_url_opts, parse_url, parse_url_opts};

/// Makes rustls on `ring` the process's TLS crypto provider, unless one is
/// chosen already (by an earlier call, or by the host app). Cloud stores
/// need one before they are built (`reqwest` panics without one); the URL
/// constructors of this crate call this themselves. Cheap to call again.
#[cfg(feature = "tls")]
pub fn install_tls() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // A race with another installer is lost harmlessly: one provider wins.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
