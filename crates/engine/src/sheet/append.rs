//! Appending edits: one entry per batch under one token, retried at the
//! same id after a lost reply, resynced after a lost race, and the snapshot
//! job asked for where a batch crosses an interval.

use super::load::{is_newer, known};
use super::*;
use infinisheet_event_log::{FieldUpdate, MetadataUpdate, SetMetadataError};

impl Inner {
    pub(super) async fn edit(&self, edits: Vec<Edit>) -> Result<Range<SequenceId>, EditError> {
        let attempts = self.options.max_edit_attempts.max(1);
        // One token for every try of this edit: a try whose reply was lost
        // is then found landed by the next, never appended twice.
        let token = AppendToken::random();
        let mut conflicts = 0;
        let mut failures = 0;
        // After a storage error: the same append again (it may have landed).
        let mut resend: Option<Arc<Content>> = None;
        // Each entry carries the time it was made: the same for every try.
        let now = std::time::SystemTime::now();
        let payloads: Vec<bytes::Bytes> = edits
            .iter()
            .map(|edit| crate::entry::timed(now, &encode_edit(edit)))
            .collect();
        let weight = edits.iter().map(Edit::weight).sum::<u64>();
        let count = edits.len() as u64;
        loop {
            let current = resend.take().unwrap_or_else(|| self.current());
            let seq = current.end;
            let interval = self.options.snapshot_interval;
            let due = snapshot_due(seq, count, interval).or_else(|| {
                (interval > 0 && weight >= interval && seq + count > 1).then(|| seq + count - 1)
            });
            let entries: Vec<LogEntry> = payloads
                .iter()
                .enumerate()
                .map(|(i, payload)| {
                    let entry = LogEntry::new(payload.clone());
                    if due == Some(seq + i as u64) {
                        entry.with_pending(SNAPSHOT_WORKFLOW)
                    } else {
                        entry
                    }
                })
                .collect();
            let added = self
                .log
                .append_at(entries, seq, known(&current), Some(token))
                .await;
            match added {
                Ok(value) => {
                    let mut draft = (*current).clone();
                    for edit in edits {
                        match edit {
                            Edit::Set(at, cell) => draft.apply_one(at.row, at.column, cell),
                            Edit::Block(block) => draft.apply_block(Arc::new(block)),
                            Edit::Clear(range) => draft.apply_clear(range),
                        }
                    }
                    if let Some(newer) = value.last_snapshot
                        && newer.sequence_id >= draft.segment.start
                        && newer.sequence_id <= draft.end
                        && is_newer(&draft, &newer)
                        && self.check_snapshot(&newer.blob_id).is_ok()
                    {
                        // The add succeeded, so the snapshot covers entries
                        // this sheet holds: fork there. If it cannot be read
                        // the content stays on its own snapshot, which is
                        // just as right; the next sync tries again.
                        match self.base_with_tiles(newer).await {
                            Ok((base, tiles)) => draft.fork(base, tiles),
                            Err(err) => {
                                tracing::warn!(%err, "cannot switch to a newer snapshot");
                            }
                        }
                    }
                    self.publish(draft);
                    return Ok(seq..seq + count);
                }
                Err(AddEntryError::Conflict { .. }) => {
                    // Not landed at `seq` under this token: someone else
                    // holds it. Catch up and try at the new end.
                    conflicts += 1;
                    self.sync().await?;
                    if conflicts >= attempts {
                        return Err(EditError::Contended { attempts });
                    }
                }
                Err(AddEntryError::Storage(err))
                    if err.is_retryable() && failures < self.options.storage_retries =>
                {
                    tracing::debug!(%err, seq, "resending an edit after a storage error");
                    tokio::time::sleep(retry_delay(failures)).await;
                    failures += 1;
                    resend = Some(current);
                }
                Err(err) => return Err(EditError::Storage(storage(err))),
            }
        }
    }
}

/// How long to wait before resending after `failures` retryable storage
/// errors: 10 ms, doubling, at most 160 ms.
pub(super) fn retry_delay(failures: u32) -> Duration {
    Duration::from_millis(10 << failures.min(4))
}

/// The entry of a batch of `count` edits at `seq` that asks for a
/// snapshot: the last one whose id is a non-zero multiple of `interval`
/// (a snapshot there covers what the earlier ones would have), if any.
pub(super) fn snapshot_due(seq: SequenceId, count: u64, interval: u64) -> Option<SequenceId> {
    let last = seq.checked_add(count)?.checked_sub(1)?;
    if interval == 0 || count == 0 || last == 0 {
        return None;
    }
    let due = last - last % interval;
    (due >= seq && due > 0).then_some(due)
}

#[cfg(test)]
mod tests {
    use super::snapshot_due;

    #[test]
    pub(super) fn a_batch_asks_for_one_snapshot_at_its_last_boundary() {
        assert_eq!(snapshot_due(0, 1, 100), None, "entry 0 asks for nothing");
        assert_eq!(snapshot_due(100, 1, 100), Some(100));
        assert_eq!(snapshot_due(99, 1, 100), None);
        assert_eq!(snapshot_due(0, 10_000, 100), Some(9_900));
        assert_eq!(snapshot_due(150, 100, 100), Some(200));
        assert_eq!(snapshot_due(101, 99, 100), None);
        assert_eq!(snapshot_due(101, 100, 100), Some(200));
        assert_eq!(snapshot_due(5, 10, 0), None, "interval 0: never");
        assert_eq!(snapshot_due(5, 0, 10), None);
        assert_eq!(snapshot_due(u64::MAX, 2, 10), None);
    }
}

/// Appends made by [`Spreadsheet::bulk`]: entries go to the log's end and
/// nowhere else, so a load of any size holds none of its cells.
#[derive(Debug)]
pub struct BulkAppend {
    sheet: Spreadsheet,
    /// Whether it appended anything yet.
    appended: bool,
    /// Where the next entry goes, as far as this bulk knows.
    next: SequenceId,
}

impl Spreadsheet {
    /// Starts a bulk load: entries appended through the [`BulkAppend`]
    /// returned go to the log, not into this sheet's content, which would
    /// hold every cell they set (an import of millions of cells). The
    /// content does not show them until the sheet loads them:
    /// [`reload`](Spreadsheet::reload) once the load's snapshot is written
    /// reads only the entries after it. A later edit through this sheet
    /// finds the log moved on, syncs (reading every entry since) and lands
    /// after them.
    pub fn bulk(&self) -> BulkAppend {
        BulkAppend {
            sheet: self.clone(),
            appended: false,
            next: self.content().end,
        }
    }

    /// Loads the sheet again from the log's newest snapshot and the entries
    /// after it (what [`open`](Spreadsheet::open) reads), replacing the
    /// content in one step: after a [`bulk`](Spreadsheet::bulk) load whose
    /// snapshot is written, this reads none of its cells but the tiles a
    /// viewport needs.
    ///
    /// # Errors
    ///
    /// [`LoadError`]; the content is then unchanged.
    pub async fn reload(&self) -> Result<(), LoadError> {
        let _op = self.inner.ops.lock().await;
        let loaded = self.inner.load().await?;
        self.inner.publish(loaded);
        Ok(())
    }
}

/// Edits encoded as the entries a [`BulkAppend`] appends, each stamped with
/// the time it was encoded. Encode them off the appending task (an import
/// encodes each batch on a blocking thread): the appends hold bytes only.
#[derive(Clone, Debug, Default)]
pub struct BulkEntries {
    payloads: Vec<bytes::Bytes>,
}

impl BulkEntries {
    /// Encodes `edits`, one entry each.
    pub fn encode(edits: Vec<Edit>) -> BulkEntries {
        let now = std::time::SystemTime::now();
        BulkEntries {
            payloads: edits
                .iter()
                .map(|edit| crate::entry::timed(now, &encode_edit(edit)))
                .collect(),
        }
    }

    /// How many entries.
    pub fn len(&self) -> usize {
        self.payloads.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.payloads.is_empty()
    }

    /// No entries.
    pub fn new() -> BulkEntries {
        BulkEntries::default()
    }

    /// Adds the entry clearing `range`.
    pub fn push_clear(&mut self, range: crate::CellRange) {
        let entry = crate::entry::encode_clear(range);
        self.payloads
            .push(crate::entry::timed(std::time::SystemTime::now(), &entry));
    }

    /// Adds the block entry of `rows`' rows `which`, its first cell at
    /// `origin`: what [`Block::from_rows`](crate::Block::from_rows) of the
    /// same cells makes, without making them.
    ///
    /// # Errors
    ///
    /// As [`Block::from_rows`](crate::Block::from_rows) (nothing is
    /// added).
    pub fn push_rows(
        &mut self,
        origin: crate::CellRef,
        rows: &crate::BlockRows,
        which: std::ops::Range<usize>,
    ) -> Result<(), crate::BlockError> {
        let entry = rows.encode(origin, which)?;
        self.payloads
            .push(crate::entry::timed(std::time::SystemTime::now(), &entry));
        Ok(())
    }
}

impl From<Vec<Edit>> for BulkEntries {
    fn from(edits: Vec<Edit>) -> BulkEntries {
        BulkEntries::encode(edits)
    }
}

impl BulkAppend {
    /// Appends `entries` (edits, or [`BulkEntries`] encoded already) at the
    /// log's end, one entry each, all or none, under one append token (a
    /// try whose reply was lost is found landed by the next, never appended
    /// twice); with `snapshot`, the last entry asks for a snapshot (unless
    /// the sheet's `snapshot_interval` is 0). When another writer took the
    /// place, the edits go after its entries (edits are last-writer-wins
    /// per cell), up to `max_edit_attempts` times. Returns the entries'
    /// ids.
    ///
    /// # Errors
    ///
    /// * [`EditError::Contended`] after `max_edit_attempts` lost races.
    /// * [`EditError::Storage`] if the log failed; the edits may have
    ///   landed if it failed after taking them.
    pub async fn append(
        &mut self,
        entries: impl Into<BulkEntries>,
        snapshot: bool,
    ) -> Result<Range<SequenceId>, EditError> {
        let inner = &self.sheet.inner;
        let options = &inner.options;
        let token = AppendToken::random();
        let payloads = entries.into().payloads;
        let count = payloads.len() as u64;
        let ask = snapshot && options.snapshot_interval > 0;
        let entries: Vec<LogEntry> = payloads
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let entry = LogEntry::new(payload);
                if ask && i as u64 + 1 == count {
                    entry.with_pending(SNAPSHOT_WORKFLOW)
                } else {
                    entry
                }
            })
            .collect();
        let attempts = options.max_edit_attempts.max(1);
        let (mut conflicts, mut failures) = (0, 0);
        loop {
            let seq = self.next;
            match inner
                .log
                .append_at(entries.clone(), seq, KnownSnapshot::NotTracked, Some(token))
                .await
            {
                Ok(_) => {
                    self.appended = true;
                    self.next = seq + count;
                    return Ok(seq..seq + count);
                }
                Err(AddEntryError::Conflict { .. }) => {
                    conflicts += 1;
                    if conflicts >= attempts {
                        return Err(EditError::Contended { attempts });
                    }
                    self.next = inner.log.bounds().await.map_err(EditError::Storage)?.end;
                }
                Err(AddEntryError::Storage(err))
                    if err.is_retryable() && failures < options.storage_retries =>
                {
                    tracing::debug!(%err, seq, "resending a bulk append after a storage error");
                    tokio::time::sleep(retry_delay(failures)).await;
                    failures += 1;
                }
                Err(err) => return Err(EditError::Storage(storage(err))),
            }
        }
    }

    /// Asks for a snapshot on the last entry this load appended (if it
    /// appended any, and the sheet takes snapshots): for a load that stops
    /// before its last append, whose entries would otherwise wait for the
    /// next edit to ask. A worker's pass over the log finds the job.
    ///
    /// # Errors
    ///
    /// [`SetMetadataError`] if the log cannot change the entry's metadata.
    pub async fn ask_snapshot(&self) -> Result<(), SetMetadataError> {
        let inner = &self.sheet.inner;
        if !self.appended || inner.options.snapshot_interval == 0 {
            return Ok(());
        }
        let ask = MetadataUpdate {
            pending: FieldUpdate::Set(SNAPSHOT_WORKFLOW.to_owned()),
            ..MetadataUpdate::default()
        };
        inner.log.set_metadata(self.next - 1, ask).await
    }
}
