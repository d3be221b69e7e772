//! Reading the log for the workflow: its bounds, one entry's metadata, and
//! a scan for published snapshots and pending snapshot jobs.

use crate::WorkflowError;
use infinisheet_engine::SNAPSHOT_WORKFLOW;
use infinisheet_event_log::{
    EntryMetadata, EventLog, KnownSnapshot, QueryEnd, QueryError, QueryStart, SequenceId,
    SnapshotValue,
};

/// What a scan of the log found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// Where the scan started (the log's start if the asked start was
    /// truncated away).
    pub(crate) start: SequenceId,
    /// The log's end when the scan finished.
    pub(crate) end: SequenceId,
    /// Entries carrying a snapshot, oldest first.
    pub(crate) snapshots: Vec<SnapshotValue>,
    /// Entries with a pending snapshot job, oldest first.
    pub(crate) pending: Vec<SequenceId>,
}

/// Scans the log from `from` (or its start, if that is later) to its end.
pub(crate) async fn scan(log: &dyn EventLog, from: SequenceId) -> Result<Scan, WorkflowError> {
    let mut next = QueryStart::Id(from);
    let mut found = Scan::default();
    let mut first = true;
    loop {
        let page = match log
            .query(next, QueryEnd::End, KnownSnapshot::NotTracked)
            .await
        {
            Ok(page) => page,
            // Truncated below `from` (or meanwhile): go on from the start.
            Err(QueryError::Range(range)) if range.requested < range.start => {
                found = Scan::default();
                first = true;
                next = QueryStart::Start;
                continue;
            }
            Err(err) => return Err(err.into()),
        };
        if first {
            found.start = page.start;
            first = false;
        }
        for (seq, entry) in (page.start..).zip(&page.entries) {
            if let Some(blob_id) = &entry.metadata.snapshot {
                found.snapshots.push(SnapshotValue {
                    sequence_id: seq,
                    blob_id: blob_id.clone(),
                });
            }
            if is_pending(&entry.metadata) {
                found.pending.push(seq);
            }
        }
        found.end = page.end;
        if page.is_complete || page.entries.is_empty() {
            return Ok(found);
        }
        next = QueryStart::Id(page.end);
    }
}

/// Whether an entry waits for a snapshot job.
pub(crate) fn is_pending(metadata: &EntryMetadata) -> bool {
    metadata.pending.as_deref() == Some(SNAPSHOT_WORKFLOW)
}

/// Where entry `at` stands.
#[derive(Debug)]
pub(crate) enum Found {
    /// In the log, with this metadata, and the log's newest snapshot if it
    /// is on another entry.
    Entry(EntryMetadata, Option<SnapshotValue>),
    /// Truncated away: before the log's start.
    Truncated,
    /// Not written yet: at or past the log's end.
    Beyond { end: SequenceId },
}

/// Entry `at`'s metadata, or where it stands if it is not in the log.
pub(crate) async fn entry(log: &dyn EventLog, at: SequenceId) -> Result<Found, WorkflowError> {
    let end = at.saturating_add(1);
    match log
        .query(QueryStart::Id(at), QueryEnd::Id(end), KnownSnapshot::At(at))
        .await
    {
        Ok(page) => Ok(match page.entries.into_iter().next() {
            Some(entry) => Found::Entry(entry.metadata, page.last_snapshot),
            None => Found::Beyond { end: page.end },
        }),
        Err(QueryError::Range(range)) if at < range.start => Ok(Found::Truncated),
        Err(QueryError::Range(range)) => Ok(Found::Beyond { end: range.end }),
        Err(err) => Err(err.into()),
    }
}
