//! Fixtures the workspace's tests share.
//!
//! * [`StaleBoundsLogs`]: a homemade log store of the kind a third party
//!   writes first — entries in shared storage, each handle's bounds kept in
//!   memory — that passes every single-handle case and loses edits once a
//!   catalog holds two handles on one log. The conformance suite's
//!   second-handle cases must catch it.
//! * [`Intercepted`]: an `ObjectStore` around a real one that fails,
//!   changes or delays the calls its [`Interceptor`] picks.
//! * [`read_viewports`]: every cell of a sheet, read viewport by viewport
//!   as a client would.

mod intercept;
mod stale;
mod viewport;

pub use intercept::{Call, Hook, Intercepted, Interceptor, Verdict};
pub use stale::{StaleBoundsLog, StaleBoundsLogs};
pub use viewport::read_viewports;
