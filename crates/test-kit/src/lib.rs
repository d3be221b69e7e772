//! Fixtures the workspace's tests share.
//!
//! * [`StaleBoundsLogs`]: a homemade log store of the kind a third party
//!   writes first — entries in shared storage, each handle's bounds kept in
//!   memory — that passes every single-handle case and loses edits once a
//!   catalog holds two handles on one log. The conformance suite's
//!   second-handle cases must catch it.

mod stale;

pub use stale::{StaleBoundsLog, StaleBoundsLogs};
