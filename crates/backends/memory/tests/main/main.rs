//! The memory backends' integration tests: the conformance suite.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod conformance;
