//! The layers' integration tests, one binary: the conformance suite through
//! each layer, fault injection and tracing.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod conformance;
mod faults;
