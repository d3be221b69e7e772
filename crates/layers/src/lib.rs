//! Layers that wrap any Infinisheet [`EventLog`](infinisheet_event_log::EventLog),
//! [`BlobStore`](infinisheet_blob_store::BlobStore) or
//! [`BlobDir`](infinisheet_blob_store::BlobDir) and keep its contract.
//!
//! A layer is a [`Hook`] run around every call; [`Layered`] applies one to
//! every method of all three traits (directories it hands out are wrapped
//! too). Three hooks come with the crate:
//!
//! * [`Delay`]: waits before every call, to expose races in code above the
//!   storage (the original's delay wrappers).
//! * [`Faults`]: fails chosen calls, or calls at a configured rate, with a
//!   retryable storage error, before the call reaches the backend or after it
//!   completed (a lost reply).
//! * [`Trace`]: one `tracing` span per call, with its outcome.
//!
//! ```
//! use infinisheet_event_log::{EventLog, EventLogExt, KnownSnapshot, LogEntry};
//! use infinisheet_layers::{Faults, Layered, Op};
//! use infinisheet_memory::MemoryEventLog;
//!
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! let faults = Faults::new().fail_calls([0]).only([Op::Append]);
//! let log = Layered::new(faults.clone(), MemoryEventLog::new());
//! let first = log.add_entry(LogEntry::new("a"), 0, KnownSnapshot::NotTracked).await;
//! assert!(first.is_err());
//! assert_eq!(faults.injected(), 1);
//! log.add_entry(LogEntry::new("a"), 0, KnownSnapshot::NotTracked).await.unwrap();
//! # });
//! ```

mod delay;
mod fault;
mod hook;
mod layered;
mod trace;

pub use delay::Delay;
pub use fault::{FaultPoint, Faults};
pub use hook::{Call, Hook, Op};
pub use layered::Layered;
pub use trace::Trace;
