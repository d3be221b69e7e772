//! The conformance suite's own tests, one binary: deliberately broken
//! backends it must catch, and every case listed in its macros.

#![allow(clippy::unwrap_used)] // tests fail by panicking

mod catches_bugs;
mod every_case_listed;
