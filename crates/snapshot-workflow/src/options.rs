//! Settings of the snapshot workflow: the worker's engine, retries, history
//! and snapshot retention, polling.

use infinisheet_engine::SheetOptions;
use std::time::Duration;

/// How a job that failed with a retryable storage error is tried again:
/// up to `attempts` tries in all, waiting `first_backoff` after the first
/// failure and twice as long after each next one, never more than
/// `max_backoff`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Tries in all, the first included; at least 1. 8 unless set.
    pub attempts: u32,
    /// The wait after the first failure; 10 ms unless set.
    pub first_backoff: Duration,
    /// The longest wait; 2 s unless set.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 8,
            first_backoff: Duration::from_millis(10),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// A policy of `attempts` tries with the given first and longest waits.
    pub fn new(attempts: u32, first_backoff: Duration, max_backoff: Duration) -> Self {
        RetryPolicy {
            attempts: attempts.max(1),
            first_backoff,
            max_backoff: max_backoff.max(first_backoff),
        }
    }

    /// The wait after failed try number `attempt` (1 for the first).
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(30);
        self.first_backoff
            .saturating_mul(1 << doublings)
            .min(self.max_backoff)
    }
}

/// Settings of a [`SnapshotWorker`](crate::SnapshotWorker) and a
/// [`WorkflowHost`](crate::WorkflowHost); start from
/// `WorkflowOptions::default()` and change what you need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct WorkflowOptions {
    /// Settings of the worker's own engine: the tile geometry of a sheet's
    /// first snapshot (later ones keep it) and how many blobs are written
    /// at once. Its polling is always off.
    pub sheet: SheetOptions,
    /// How failed jobs are tried again.
    pub retry: RetryPolicy,
    /// With `Some(k)`, after each snapshot the entries before the `k`-th
    /// newest snapshot are archived into a history blob and truncated from
    /// the log, so the log keeps `k` segments (a segment runs from one
    /// snapshot to the next). Off unless set.
    pub history_segments: Option<u32>,
    /// With `Some(n)`, after each snapshot the snapshots older than the `n`
    /// newest are forgotten by the log and their blobs removed, keeping
    /// every blob a kept snapshot still shares. Never fewer than
    /// `history_segments`. Off unless set.
    pub keep_snapshots: Option<u32>,
    /// How often a polling worker (and a host, as a fallback for jobs whose
    /// notification failed or whose worker vanished) scans the log for
    /// pending entries; 1 s unless set. `None`: a host does not poll.
    pub poll_interval: Option<Duration>,
    /// Whether a host, when it starts, runs the jobs already pending in
    /// the log (left by a crashed worker or a client that had no worker);
    /// `true` unless set.
    pub restart_pending_on_load: bool,
}

impl Default for WorkflowOptions {
    fn default() -> Self {
        WorkflowOptions {
            sheet: SheetOptions::default(),
            retry: RetryPolicy::default(),
            history_segments: None,
            keep_snapshots: None,
            poll_interval: Some(Duration::from_secs(1)),
            restart_pending_on_load: true,
        }
    }
}

impl WorkflowOptions {
    /// The same options with the worker's engine set up by `sheet`.
    #[must_use]
    pub fn sheet(mut self, sheet: SheetOptions) -> Self {
        self.sheet = sheet;
        self
    }

    /// The same options with this retry policy.
    #[must_use]
    pub fn retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The same options with history on: the log keeps `segments` segments
    /// (at least 1), older entries go to history blobs.
    #[must_use]
    pub fn history(mut self, segments: u32) -> Self {
        self.history_segments = Some(segments.max(1));
        self
    }

    /// The same options keeping the `snapshots` newest snapshots (at least
    /// 1) and removing older ones.
    #[must_use]
    pub fn keep_snapshots(mut self, snapshots: u32) -> Self {
        self.keep_snapshots = Some(snapshots.max(1));
        self
    }

    /// The same options with this polling interval (`None`: a host does
    /// not poll).
    #[must_use]
    pub fn poll_interval(mut self, interval: Option<Duration>) -> Self {
        self.poll_interval = interval;
        self
    }

    /// The same options with pending jobs restarted on load, or not.
    #[must_use]
    pub fn restart_pending_on_load(mut self, restart: bool) -> Self {
        self.restart_pending_on_load = restart;
        self
    }

    /// The snapshots cleanup keeps, if it runs: never fewer than the
    /// segments history keeps, since each kept segment starts at one.
    pub(crate) fn snapshots_kept(&self) -> Option<u32> {
        self.keep_snapshots
            .map(|n| n.max(self.history_segments.unwrap_or(1)).max(1))
    }

    /// Whether maintenance has anything to do: history or cleanup is on.
    pub(crate) fn maintains(&self) -> bool {
        self.history_segments.is_some() || self.keep_snapshots.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let retry = RetryPolicy::new(5, Duration::from_millis(10), Duration::from_millis(50));
        let waits: Vec<_> = (1..=5).map(|a| retry.backoff(a).as_millis()).collect();
        assert_eq!(waits, [10, 20, 40, 50, 50]);
        assert_eq!(
            RetryPolicy::new(0, Duration::ZERO, Duration::ZERO).attempts,
            1
        );
    }

    #[test]
    fn retention_keeps_every_segment_history_keeps() {
        let options = WorkflowOptions::default().history(3).keep_snapshots(1);
        assert_eq!(options.snapshots_kept(), Some(3));
        assert_eq!(WorkflowOptions::default().snapshots_kept(), None);
        assert_eq!(
            WorkflowOptions::default()
                .keep_snapshots(0)
                .snapshots_kept(),
            Some(1)
        );
    }
}
