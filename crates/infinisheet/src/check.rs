//! `check_sheet`: verifies a catalog sheet end to end — every entry of its
//! log readable, every snapshot the log names whole and the sheet's, the
//! history before the log's first entry complete, the sheet loadable (which
//! checks the log's identity) — and
//! says what is wrong, reading only. `repair_sheet` rebuilds the snapshots
//! that are missing or damaged from the log and its history.

use crate::CatalogSheet;
use infinisheet_engine::{
    SheetEntry, SheetId, parse_snapshot_id, rebuild_snapshot, rebuild_snapshot_from_log,
    verify_snapshot,
};
use infinisheet_event_log::{
    EventLog, KnownSnapshot, MetadataUpdate, QueryEnd, QueryStart, SequenceId, SnapshotValue,
};
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
    // The first entry's identity is checked by opening the sheet, below.
    let identity = sheet.metadata().id;
    // Page by page: a log of millions of cells is never held whole.
    let mut from = QueryStart::Start;
    loop {
        let page = match log
            .query(from, QueryEnd::End, KnownSnapshot::NotTracked)
            .await
        {
            Ok(page) => page,
            Err(err) => {
                check
                    .problems
                    .push(format!("the log cannot be read: {err}"));
                return check;
            }
        };
        if from == QueryStart::Start {
            check.start = page.start;
        }
        for (seq, entry) in (page.start..).zip(&page.entries) {
            if let Err(err) = SheetEntry::decode(&entry.payload) {
                check.problems.push(format!(
                    "log entry {seq} cannot be read: {err} (`repair --rebuild` makes a new log \
                     of every entry that can be)"
                ));
            }
            if entry.metadata.pending.is_some() {
                check.pending.push(seq);
            }
            if let Some(blob_id) = &entry.metadata.snapshot {
                match snapshot_problem(&dir, identity, seq, blob_id).await {
                    None => check.snapshots.push(seq),
                    Some(problem) => check.problems.push(problem),
                }
            }
        }
        check.end = page.end;
        if page.is_complete || page.entries.is_empty() {
            break;
        }
        from = QueryStart::Id(page.end);
    }
    if check.start > 0 {
        match read_payloads(&*log, &dir, 0, check.start).await {
            Ok(payloads) if payloads.len() as u64 == check.start => {
                check.history_entries = check.start;
                for (seq, payload) in (0..).zip(&payloads) {
                    if let Err(err) = SheetEntry::decode(payload) {
                        check.problems.push(format!(
                            "history entry {seq} cannot be read: {err} (`repair --rebuild` \
                             makes a new log of every entry that can be)"
                        ));
                    }
                }
            }
            Ok(payloads) => check.problems.push(format!(
                "the history holds {} of the {} entries before the log's start",
                payloads.len(),
                check.start
            )),
            Err(err) => check.problems.push(format!(
                "the entries before {} cannot be read: {err}",
                check.start
            )),
        }
    }
    if let Err(err) = sheet.open().await {
        // With its causes: "cannot be opened" alone says nothing.
        let mut why = err.to_string();
        let mut cause = std::error::Error::source(&err);
        while let Some(source) = cause {
            let text = source.to_string();
            if !why.contains(&text) {
                why = format!("{why}: {text}");
            }
            cause = source.source();
        }
        check
            .problems
            .push(format!("the sheet cannot be opened: {why}"));
    }
    check
}

/// What is wrong with the snapshot `blob_id` on entry `seq`, if anything:
/// it is named for another entry or another sheet, or is not whole.
async fn snapshot_problem(
    dir: &std::sync::Arc<dyn crate::BlobDir>,
    identity: Option<SheetId>,
    seq: SequenceId,
    blob_id: &str,
) -> Option<String> {
    match parse_snapshot_id(blob_id) {
        Some((at, carried)) if at == seq && carried == identity => {}
        _ => {
            return Some(format!(
                "the snapshot on entry {seq} ({blob_id}) is not named for this sheet's entry {seq}"
            ));
        }
    }
    match verify_snapshot(dir.clone(), blob_id).await {
        Ok(_) => None,
        Err(err) => Some(format!(
            "the snapshot on entry {seq} ({blob_id}) is not whole: {err}"
        )),
    }
}

/// What [`repair_sheet`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SheetRepair {
    /// The entries whose snapshot was missing, damaged or misnamed and is
    /// now rebuilt, whole.
    pub rebuilt: Vec<SequenceId>,
    /// What could not be repaired, one line each.
    pub unrepaired: Vec<String>,
}

/// Repairs `sheet`: every snapshot its log names that is missing, damaged,
/// or named for another entry or sheet is rebuilt — oldest first, from the
/// newest whole snapshot before it (or from the log's start) and the
/// entries in between, read from the log and its history — where the
/// worker would have written it, and published again if its name changed.
/// A snapshot that cannot be rebuilt (the entries before it are gone) is
/// reported in [`SheetRepair::unrepaired`]; run [`check_sheet`] afterwards
/// for the whole picture.
///
/// # Errors
///
/// [`QueryError`](infinisheet_event_log::QueryError) if the log cannot be
/// read at all: nothing can be repaired then.
pub async fn repair_sheet(
    sheet: &CatalogSheet,
) -> Result<SheetRepair, infinisheet_event_log::QueryError> {
    let log = sheet.log();
    let dir = sheet.dir();
    let identity = sheet.metadata().id;
    let options = sheet.metadata().sheet_options();
    // The snapshots the log names, page by page (the entries themselves
    // are read again only where a snapshot is rebuilt).
    let mut named: Vec<(SequenceId, String)> = Vec::new();
    let mut from = QueryStart::Start;
    let mut live = 0;
    loop {
        let page = log
            .query(from, QueryEnd::End, KnownSnapshot::NotTracked)
            .await?;
        if from == QueryStart::Start {
            live = page.start;
        }
        for (seq, entry) in (page.start..).zip(&page.entries) {
            if let Some(blob_id) = &entry.metadata.snapshot {
                named.push((seq, blob_id.clone()));
            }
        }
        if page.is_complete || page.entries.is_empty() {
            break;
        }
        from = QueryStart::Id(page.end);
    }
    let mut repair = SheetRepair::default();
    // The whole snapshots so far, oldest first: the bases to rebuild from.
    let mut whole: Vec<SnapshotValue> = Vec::new();
    for (seq, blob_id) in &named {
        let (seq, blob_id) = (*seq, blob_id);
        if snapshot_problem(&dir, identity, seq, blob_id)
            .await
            .is_none()
        {
            whole.push(SnapshotValue {
                sequence_id: seq,
                blob_id: blob_id.clone(),
            });
            continue;
        }
        let base = whole.last().cloned();
        let from = base.as_ref().map_or(0, |b| b.sequence_id);
        let rebuilt = if from >= live {
            // Every entry it is made of is in the log: read page by page.
            rebuild_snapshot_from_log(&*log, dir.clone(), options, base, seq).await
        } else {
            // Some only in the history blobs before the log's start.
            let payloads = match read_payloads(&*log, &dir, from, seq).await {
                Ok(payloads) if payloads.len() as u64 == seq - from => payloads,
                Ok(payloads) => {
                    repair.unrepaired.push(format!(
                        "the snapshot on entry {seq}: only {} of the entries {from}..{seq} it is \
                         made of are left",
                        payloads.len()
                    ));
                    continue;
                }
                Err(err) => {
                    repair.unrepaired.push(format!(
                        "the snapshot on entry {seq}: the entries {from}..{seq} it is made of \
                         cannot be read: {err}"
                    ));
                    continue;
                }
            };
            rebuild_snapshot(dir.clone(), options, base, &payloads).await
        };
        let value = match rebuilt {
            Ok(value) => value,
            Err(err) => {
                repair.unrepaired.push(format!(
                    "the snapshot on entry {seq} cannot be rebuilt: {err}"
                ));
                continue;
            }
        };
        if &value.blob_id != blob_id {
            let publish = MetadataUpdate::publish_snapshot(value.blob_id.clone());
            if let Err(err) = log.set_metadata(seq, publish).await {
                repair.unrepaired.push(format!(
                    "the snapshot on entry {seq} was rebuilt as {} but cannot be published: {err}",
                    value.blob_id
                ));
                continue;
            }
        }
        if let Some(problem) = snapshot_problem(&dir, identity, seq, &value.blob_id).await {
            repair
                .unrepaired
                .push(format!("after rebuilding it, {problem}"));
            continue;
        }
        repair.rebuilt.push(seq);
        whole.push(value);
    }
    Ok(repair)
}
