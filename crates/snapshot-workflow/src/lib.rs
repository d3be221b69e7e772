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
//!
//! # Layout
//!
//! `SnapshotWorker` (`worker.rs`: a job's
//! steps, retries, polling), `WorkflowHost` (`host.rs`: the in-process
//! worker task and `NotifyingLog`, the log wrapper that sends it jobs),
//! `history.rs` (history blobs, archive and truncate, `read_payloads`),
//! `cleanup.rs` (retention, removal markers, the dependency check around
//! publishing), `scan.rs` (the log reads they share), `options.rs`.
//!
//! # Invariants
//!
//! * History: a history blob is written before the entry after it names it,
//!   and that before the truncate, so every entry is in the log or in the
//!   chain of history blobs that the log's first entry begins.
//! * Retention: a snapshot's metadata is cleared before its directory is
//!   marked, and a directory is removed only if no snapshot the log names
//!   needs it when the cleanup looks again after marking.
//! * Snapshot workflow: a job publishes (sets `snapshot`, clears `pending`
//!   in one `set_metadata`) only after the snapshot's index is written and
//!   every directory it needs has its index and no removal marker; it checks
//!   again after publishing and withdraws the snapshot (clears `snapshot`,
//!   sets `pending`) if a cleanup got there first. A job never publishes a
//!   snapshot older than the log's newest; it clears its marker instead.
//!   The checks are left out when they cannot fail: a cleanup keeps the
//!   newest snapshot and all it shares, so a snapshot built on the base this
//!   worker itself published and checked, with no other entry since naming a
//!   snapshot or waiting for one (a withdrawn snapshot waits for one), shares
//!   nothing a cleanup may remove; the check after publishing runs only when
//!   such an entry turned up.
//!
//! # Decisions
//!
//! * Jobs reach a worker through a host's channel (a shortcut) or by polling
//!   (the reliable path); the host polls too, so a failed notification or a
//!   job whose retries ran out is picked up later. A host runs the jobs of one
//!   batch newest first, so a newer snapshot supersedes older jobs at once.
//! * Retention marks a directory (`removing`) instead of deleting its index
//!   first: a marker left by a cleanup that failed half way is taken back by
//!   the next one, whereas a deleted index could not be restored.
//! * The first snapshot's tile geometry comes from the worker's
//!   `WorkflowOptions::sheet`, not the writer's options (later snapshots keep
//!   the first one's); a host app passes the same `SheetOptions` to both. A
//!   sheet narrower than a tile gets tiles up to 16 times taller, so a tile
//!   holds about as many cells: a 10-column import makes 100 tile blobs, not
//!   1,000 a tenth full.
//! * A batch of edits asks for one snapshot, at its last interval boundary:
//!   a 10,000-cell import used to mark 100 entries, and clearing 99
//!   superseded markers one durable `set_metadata` at a time took 4.7 s of a
//!   300,000-cell demo; now it takes 0.16 s.

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
