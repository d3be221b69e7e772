//! Rebuilding a damaged sheet's log: every entry that can be read, in a
//! new log, and the sheet bound to it; the old log kept, and recorded.

use super::{Catalog, CatalogError, CatalogPath, SHEET_METADATA, storage_error};
use bytes::Bytes;
use infinisheet_blob_store::{BlobDir, BlobDirExt, BlobName};
use infinisheet_engine::{SNAPSHOTS_DIR, SheetEntry, SheetId};
use infinisheet_event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, QueryEnd, QueryError, QueryStart, SequenceId,
};
use infinisheet_snapshot_workflow::{HISTORY_DIR, read_payloads};
use std::sync::Arc;

/// The directory of a sheet's data holding what its replaced logs left:
/// `replaced/<old log id>/` with a `note` blob and the old `history/`.
pub const REPLACED_DIR: &str = "replaced";

/// What [`Catalog::rebuild_log`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogRebuild {
    /// The log the sheet had, kept in the log store under its id (a note
    /// in the sheet's `replaced/` directory names it).
    pub old_log: String,
    /// The log the sheet has now.
    pub new_log: String,
    /// How many entries the new log holds (every one that could be read,
    /// from the history before the old log's start on).
    pub kept: u64,
    /// The entries left out, by their id in the old log, and why.
    pub dropped: Vec<(SequenceId, String)>,
}

/// The entries of `log` from its start that its storage gives back — the
/// start, and each entry by its id — and those it reports corrupt (an
/// entry failing its checksum), by id and why. The log is read in pages;
/// a page that fails as corrupt is read again one entry at a time, so one
/// damaged entry costs only itself. Any other failure is an error.
async fn readable_entries(
    log: &dyn EventLog,
) -> Result<
    (
        SequenceId,
        Vec<(SequenceId, Bytes)>,
        Vec<(SequenceId, String)>,
    ),
    QueryError,
> {
    const PAGE: u64 = 1_000;
    let bounds = log.bounds().await.map_err(QueryError::Storage)?;
    let (mut entries, mut dropped) = (Vec::new(), Vec::new());
    let read = |from: SequenceId, to: SequenceId| {
        log.query_all(
            QueryStart::Id(from),
            QueryEnd::Id(to),
            KnownSnapshot::NotTracked,
        )
    };
    let corrupt = |err: &QueryError| matches!(err, QueryError::Storage(e) if e.is_corrupt());
    let mut from = bounds.start;
    while from < bounds.end {
        let to = bounds.end.min(from.saturating_add(PAGE));
        match read(from, to).await {
            Ok(page) => {
                entries.extend((page.start..).zip(page.entries.into_iter().map(|e| e.payload)))
            }
            Err(err) if corrupt(&err) => {
                for seq in from..to {
                    match read(seq, seq + 1).await {
                        Ok(one) => entries
                            .extend((one.start..).zip(one.entries.into_iter().map(|e| e.payload))),
                        Err(err) if corrupt(&err) => dropped.push((seq, err.to_string())),
                        Err(err) => return Err(err),
                    }
                }
            }
            Err(err) => return Err(err),
        }
        from = to;
    }
    Ok((bounds.start, entries, dropped))
}

/// Whether `payload` is an entry this version of the sheet can read, and
/// why not.
fn unreadable(payload: &[u8]) -> Option<String> {
    SheetEntry::decode(payload).err().map(|err| err.to_string())
}

impl Catalog {
    /// Rebuilds the log of the sheet at `path` from every entry that can
    /// be read — the history before the log's start, then the log's own
    /// entries — into a new log, binds the sheet to it, and keeps the old
    /// one: an entry that cannot be read (a flipped byte, a client's
    /// garbage) no longer ends the sheet. The new log holds the entries
    /// in their order, without metadata (their snapshots were of the old
    /// numbering: the sheet's `snapshots/` go, and a snapshot is asked for
    /// again by the next edits); the old log's history moves to
    /// `replaced/<old log id>/history/`, beside a `note` saying what was
    /// dropped. The sheet's identity stays: its first entry must be
    /// readable.
    ///
    /// # Errors
    ///
    /// [`CatalogError`]: no such sheet, the log or its history cannot be
    /// read at all, the identity entry is damaged, or the storage fails.
    /// The sheet is bound to the new log only once it is whole.
    pub async fn rebuild_log(&self, path: &str) -> Result<LogRebuild, CatalogError> {
        let (at, metadata) = self.metadata_at(path).await?;
        let sheet = self.open_sheet(path).await?;
        let log = sheet.log();
        let data = sheet.dir();
        let failed = |reason: String| CatalogError::BadMetadata {
            path: at.display(),
            reason,
        };
        let (start, entries, mut dropped) =
            readable_entries(&*log).await.map_err(storage_error(&at))?;
        let mut payloads: Vec<(SequenceId, Bytes)> = Vec::new();
        if start > 0 {
            let history = read_payloads(&*log, &data, 0, start)
                .await
                .map_err(|err| failed(format!("its history cannot be read: {err}")))?;
            if history.len() as u64 != start {
                return Err(failed(format!(
                    "its history holds {} of the {} entries before its log's start",
                    history.len(),
                    start
                )));
            }
            payloads.extend((0..).zip(history));
        }
        payloads.extend(entries);
        if dropped.iter().any(|&(seq, _)| seq == 0) && metadata.id.is_some() {
            return Err(failed(
                "its first entry, the sheet's identity, cannot be read: nothing can be \
                 rebuilt under it"
                    .to_owned(),
            ));
        }
        let mut kept = Vec::with_capacity(payloads.len());
        for (seq, payload) in payloads {
            match unreadable(&payload) {
                None => kept.push(payload),
                Some(why) if seq == 0 && metadata.id.is_some() => {
                    return Err(failed(format!(
                        "its first entry, the sheet's identity, cannot be read ({why}): \
                         nothing can be rebuilt under it"
                    )));
                }
                Some(why) => dropped.push((seq, why)),
            }
        }
        dropped.sort_by_key(|&(seq, _)| seq);
        // The new log, whole before the sheet names it.
        let new_id = SheetId::random().to_string();
        let new_log = self.storage.logs.log(&new_id, true).await?;
        let mut seq = 0;
        for batch in kept.chunks(1000) {
            let entries: Vec<LogEntry> = batch.iter().cloned().map(LogEntry::new).collect();
            let count = entries.len() as u64;
            new_log
                .add_entries(entries, seq, KnownSnapshot::NotTracked)
                .await
                .map_err(storage_error(&at))?;
            seq += count;
        }
        // What the old log leaves: its history moved aside, a note, and
        // no snapshot of the old numbering.
        let name = |text: &str| {
            BlobName::new(text).map_err(|err| failed(format!("{text:?} is no name: {err}")))
        };
        let aside = data
            .dir(&name(REPLACED_DIR)?)
            .await
            .map_err(storage_error(&at))?
            .dir(&name(&metadata.log_id)?)
            .await
            .map_err(storage_error(&at))?;
        let history = data
            .dir(&name(HISTORY_DIR)?)
            .await
            .map_err(storage_error(&at))?;
        let history_aside = aside
            .dir(&name(HISTORY_DIR)?)
            .await
            .map_err(storage_error(&at))?;
        super::change::copy_tree(&history, &history_aside, &at).await?;
        let note = format!(
            "log {} of this sheet was replaced by log {new_id} (infinisheet rebuild_log): {} \
             entries kept, {} dropped{}\n",
            metadata.log_id,
            kept.len(),
            dropped.len(),
            dropped
                .iter()
                .map(|(seq, why)| format!("\nentry {seq}: {why}"))
                .collect::<String>()
        );
        aside
            .write("note", note)
            .await
            .map_err(storage_error(&at))?;
        let mut rebound = metadata.clone();
        rebound.log_id = new_id.clone();
        rebound.log_backend = self.storage.logs.backend().to_owned();
        let json = serde_json::to_vec_pretty(&rebound).map_err(storage_error(&at))?;
        // The switch: one write of the sheet's metadata.
        self.dir(&at)
            .await?
            .write(SHEET_METADATA, json)
            .await
            .map_err(storage_error(&at))?;
        self.mark_changed().await;
        for old in [HISTORY_DIR, SNAPSHOTS_DIR] {
            remove_dir(&data, old, &at).await?;
        }
        Ok(LogRebuild {
            old_log: metadata.log_id,
            new_log: new_id,
            kept: kept.len() as u64,
            dropped,
        })
    }
}

/// Removes the directory `name` of `data`, whole.
async fn remove_dir(
    data: &Arc<dyn BlobDir>,
    name: &str,
    at: &CatalogPath,
) -> Result<(), CatalogError> {
    data.open_dir(name)
        .await
        .map_err(storage_error(at))?
        .remove_all()
        .await
        .map_err(storage_error(at))
}
