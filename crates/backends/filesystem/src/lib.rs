//! The filesystem backend of Infinisheet: [`FsEventLog`], a crash-safe
//! event log in segment files, and [`FsBlobStore`], the blob hierarchy as
//! real directories and files.
//!
//! The log appends checksummed frames to preallocated segment files and
//! syncs each before acknowledging it. It keeps nothing in memory per
//! entry: a checkpoint of its bounds, segment starts and metadata, written
//! every megabyte, lets an open replay only what follows it, and entries
//! are read from the segments through a sparse index. On open, a torn
//! final append is cut; any other damage is an error naming the file and
//! offset, on open or when the damaged part is read. A file lock makes it
//! safe for several processes on one machine.
//!
//! Every blob write is atomic (temporary file, `fdatasync`, rename, directory
//! `fsync`): a reader or a crash sees the old or the new blob, never a part.
//! Paths are walked with `openat` and `O_NOFOLLOW`, so a symbolic link
//! planted inside the store is never followed out of it. Log calls run
//! through `tokio::task::block_in_place` (or `spawn_blocking` on a
//! current-thread runtime) and blob calls on the blocking pool, so the
//! async runtime keeps running while the disk syncs, and concurrent blob
//! writes overlap.
//!
//! Linux only: it relies on `openat`-family calls and `/proc` to recognise
//! writes abandoned by dead processes.

mod blob_store;
mod blocking;
mod error;
mod log;
mod logs;
mod names;
mod tree;

pub use blob_store::{FsBlobDir, FsBlobStore};
pub use error::BACKEND;
pub use log::{FsEventLog, FsLogOptions, OpenLogError};
pub use logs::FileLogs;
