//! Object-store backend of Infinisheet: a [`BlobStore`] and an [`EventLog`]
//! over any [`object_store::ObjectStore`] and a key prefix — S3 and
//! S3-compatible servers, GCS, Azure, local files, memory.
//!
//! * [`ObjectStoreBlobStore`] works on every store: directories are key
//!   prefixes, a write is one PUT.
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
//! * [`parse_url`] builds a store from a URL and the environment with
//!   `object_store`'s own configuration parsing.
//!
//! [`BlobStore`]: infinisheet_blob_store::BlobStore
//! [`EventLog`]: infinisheet_event_log::EventLog

mod blob_store;
mod counting;
mod error;
mod keys;
mod log;
mod url;

pub use blob_store::{ObjectStoreBlobDir, ObjectStoreBlobStore};
pub use counting::{CountingStore, RequestCounts};
pub use log::{ObjectStoreEventLog, OpenError};
pub use object_store;
pub use url::{UrlError, parse_url, parse_url_opts};
