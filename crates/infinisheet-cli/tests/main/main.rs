//! End-to-end tests of the `infinisheet` binary: each runs the real
//! command in fresh processes on storage in a temporary directory. One
//! test binary: the commands, and the server.

#![allow(clippy::unwrap_used)]

mod commands;
mod common;
mod serve;
