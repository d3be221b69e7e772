//! The snapshot workflow of Infinisheet: workers that turn "snapshot due
//! at S" markers into published snapshots, survive crashes, and keep the
//! log short.
//!
//! A sheet asks for a snapshot every `snapshot_interval` entries by adding
//! that entry with `pending = "snapshot"`. A [`SnapshotWorker`], with its
//! own engine instance, syncs the log, writes the snapshot of everything
//! before `S` into the sheet's `snapshots/` directory, and only then sets
//! `snapshot` and clears `pending` on `S` in one `set_metadata`. Jobs reach
//! a worker two ways:
//!
//! * [`WorkflowHost`]: a tokio task in the writer's process, fed through a
//!   channel by a log wrapper that notices the pending entries its writers
//!   add — the shortcut;
//! * [`SnapshotWorker::poll_once`] / [`run_polling`](SnapshotWorker::run_polling):
//!   a scan of the log for pending entries, for workers in other processes
//!   or on other machines, and for jobs whose worker vanished — the
//!   reliable path.
//!
//! Jobs are idempotent: two workers on one job, or a retry after a crash,
//! each publish a complete snapshot of the same cells. With the options
//! for it, a published snapshot is followed by maintenance: entries before
//! the oldest kept segment are archived into a history blob under
//! `history/` and truncated from the log ([`read_payloads`] reads them
//! back), and snapshots beyond the retention count are forgotten and their
//! blobs removed ([`cleanup`](crate::CleanupReport)), never one a kept
//! snapshot still shares.
//!
//! The workflow depends on the `EventLog` and `BlobDir` traits and the
//! engine only; it never names a backend.

mod cleanup;
mod error;
mod history;
mod host;
mod options;
mod scan;
mod worker;

pub use cleanup::{CleanupReport, REMOVING_MARKER};
pub use error::WorkflowError;
pub use history::{HISTORY_DIR, HistoryBlob, history_id, read_payloads};
pub use host::{HostReport, WorkflowHost};
pub use options::{RetryPolicy, WorkflowOptions};
pub use worker::{JobOutcome, MaintenanceReport, PollReport, SnapshotWorker};
