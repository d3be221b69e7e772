//! The facade's integration tests that need no server, one binary (the
//! Azure suite is `tests/azure.rs`, run beside Azurite by `cargo xtask test`).

#![allow(clippy::unwrap_used)] // tests fail by panicking

#[cfg(all(feature = "sqlite", feature = "filesystem"))]
mod catalog;
#[path = "../common/mod.rs"]
mod common;
mod csv_fidelity;
mod due;
#[cfg(feature = "object-store")]
mod live;
