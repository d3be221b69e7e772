//! `check_sheet`: verifies a catalog sheet end to end — every entry of its
//! log readable, every snapshot the log names whole, the history before
//! the log's first entry complete, the sheet loadable — and says what is
//! wrong, reading only.

use crate::CatalogSheet;
use infinisheet_engine::verify_snapshot;
use infinisheet_event_log::{EventLogExt, KnownSnapshot, QueryEnd, QueryStart, SequenceId};
use infinisheet_snapshot_workflow::read_payloads;

/// What [`check_sheet`] found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SheetCheck {
    /// The log's bounds: entries `start..end`.
    pub start: SequenceId,
    /// One past the log's last entry.
    pub end: SequenceId,
    /// The entries carrying a snapshot, each read whole (index and tiles).
    pub snapshots: Vec<SequenceId>,
    /// Entries before the log's start read back from history blobs.
    pub history_entries: u64,
    /// Entries whose background job (a snapshot) is still due.
    pub pending: Vec<SequenceId>,
    /// Everything wrong, one line each; empty for a healthy sheet.
    pub problems: Vec<String>,
}

impl SheetCheck {
    /// Whether nothing is wrong.
    pub fn is_healthy(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Checks `sheet`, reading only: the log (every entry, which the backends
/// check against their checksums), every snapshot it names (every tile
/// against its checksum), the history blobs holding the entries before the
/// log's start, and opening the sheet as a reader would. A failure of any
/// of them is a problem in the report, not an error: the check goes on to
/// find the rest.
pub async fn check_sheet(sheet: &CatalogSheet) -> SheetCheck {
    let mut check = SheetCheck::default();
    let log = sheet.log();
    let dir = sheet.dir();
    let all = match log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
    {
        Ok(all) => all,
        Err(err) => {
            check
                .problems
                .push(format!("the log cannot be read: {err}"));
            return check;
        }
    };
    (check.start, check.end) = (all.start, all.end);
    for (seq, entry) in (all.start..).zip(&all.entries) {
        if entry.metadata.pending.is_some() {
            check.pending.push(seq);
        }
        if let Some(blob_id) = &entry.metadata.snapshot {
            match verify_snapshot(dir.clone(), blob_id).await {
                Ok(_) => check.snapshots.push(seq),
                Err(err) => check.problems.push(format!(
                    "the snapshot on entry {seq} ({blob_id}) is not whole: {err}"
                )),
            }
        }
    }
    if all.start > 0 {
        match read_payloads(&*log, &dir, 0, all.start).await {
            Ok(payloads) if payloads.len() as u64 == all.start => {
                check.history_entries = all.start;
            }
            Ok(payloads) => check.problems.push(format!(
                "the history holds {} of the {} entries before the log's start",
                payloads.len(),
                all.start
            )),
            Err(err) => check.problems.push(format!(
                "the entries before {} cannot be read: {err}",
                all.start
            )),
        }
    }
    if let Err(err) = sheet.open_on(log).await {
        check
            .problems
            .push(format!("the sheet cannot be opened: {err}"));
    }
    check
}
