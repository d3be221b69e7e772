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
pub use object_store;
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
