//! The filesystem backend's integration tests, one binary: the conformance
//! suite, and the cases beyond it (checkpoints, handles, log corruption,
//! path safety, read-only storage, truncation across reopen).

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod checkpoint;
mod conformance;
mod handles;
mod log_corruption;
mod path_safety;
mod read_only;
mod truncate_reopen;
