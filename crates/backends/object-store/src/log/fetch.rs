//! Reading entries: finding the record that holds an id, fetching a range
//! from packs and records (concurrently), writing packs of whole blocks
//! read, and applying the metadata changed since append.

use super::ObjectStoreEventLog;
use super::format::Head;
use super::objects::{OVERLAY_BLOCK, Overlay, PACK};
use crate::error::{BACKEND, corrupt};
use futures::{StreamExt, TryStreamExt};
use infinisheet_event_log::{
    Bounds, EntryMetadata, LogEntry, QueryError, SequenceId, StorageError,
};

/// Ids below an id whose record is looked up by listing: the first window.
const LOCATE_WINDOW: u64 = 64;

impl ObjectStoreEventLog {
    /// The record holding `seq` and its first id; `None` if no record holds
    /// it (it is at or past the end).
    pub(super) async fn locate(
        &self,
        seq: SequenceId,
        head: &Head,
    ) -> Result<Option<(SequenceId, Vec<LogEntry>)>, StorageError> {
        if let Some(record) = self.objects.record(seq).await? {
            return Ok(Some((seq, record)));
        }
        let mut window = LOCATE_WINDOW;
        loop {
            let low = seq.saturating_sub(window).max(head.first_record);
            let keys = self.objects.record_keys(low, seq).await?;
            if let Some(&first) = keys.last() {
                let Some(record) = self.objects.record(first).await? else {
                    // Deleted since it was listed: a truncate passed it.
                    return Ok(None);
                };
                let len = record.len() as u64;
                return Ok((first + len > seq).then_some((first, record)));
            }
            if low == head.first_record {
                return Ok(None);
            }
            window = window.saturating_mul(16);
        }
    }

    /// The metadata entry `seq` was appended with; `None` if no record holds
    /// it.
    pub(super) async fn appended_metadata(
        &self,
        seq: SequenceId,
        head: &Head,
    ) -> Result<Option<EntryMetadata>, StorageError> {
        let Some((first, entries)) = self.locate(seq, head).await? else {
            return Ok(None);
        };
        Ok(entries
            .into_iter()
            .nth((seq - first) as usize)
            .map(|entry| entry.metadata))
    }

    /// Fetches the entries `[start, page_end)` from their records, as
    /// appended (without later metadata changes).
    async fn fetch_records(
        &self,
        head: &Head,
        start: SequenceId,
        page_end: SequenceId,
    ) -> Result<Vec<LogEntry>, QueryError> {
        let Some((first, located)) = self.locate(start, head).await? else {
            return Err(self.moved_under(start).await);
        };
        let mut keys = Vec::new();
        let located_end = first + located.len() as u64;
        if located_end < page_end {
            keys = self.objects.record_keys(located_end, page_end - 1).await?;
        }
        let objects = &self.objects;
        let fetched: Vec<_> = futures::stream::iter(keys.iter().copied())
            .map(|seq| objects.record(seq))
            .buffered(self.fetch_concurrency)
            .try_collect()
            .await?;
        let records =
            std::iter::once((first, Some(located))).chain(keys.iter().copied().zip(fetched));
        let mut entries = Vec::with_capacity((page_end - start) as usize);
        let mut at = first;
        for (seq, record) in records {
            let Some(batch) = record else {
                return Err(self.moved_under(start).await);
            };
            if seq != at {
                return Err(corrupt(
                    &self.objects.record_key(seq),
                    format!("a record at {seq} where the previous one ends at {at}"),
                )
                .into());
            }
            for entry in batch {
                if (start..page_end).contains(&at) {
                    entries.push(entry);
                }
                at += 1;
            }
        }
        if at < page_end {
            return Err(self.moved_under(start).await);
        }
        Ok(entries)
    }

    /// Fetches the entries `[start, page_end)`, a range inside the log:
    /// whole blocks from their packs where one was written, the rest from
    /// records; then (with packing on) packs the whole blocks read from
    /// records, and applies the metadata changed since append.
    pub(super) async fn fetch(
        &self,
        head: &Head,
        start: SequenceId,
        page_end: SequenceId,
    ) -> Result<Vec<LogEntry>, QueryError> {
        let packed = self
            .objects
            .pack_ids(start / PACK, (page_end - 1) / PACK)
            .await?;
        // The range in pieces: a packed block, or a run of unpacked ids.
        let mut pieces: Vec<(SequenceId, SequenceId, bool)> = Vec::new();
        let mut at = start;
        while at < page_end {
            let k = at / PACK;
            let block_end = ((k + 1) * PACK).min(page_end);
            let is_packed = packed.binary_search(&k).is_ok();
            match pieces.last_mut() {
                Some((_, end, false)) if !is_packed => *end = block_end,
                _ => pieces.push((at, block_end, is_packed)),
            }
            at = block_end;
        }
        let fetched: Vec<Vec<LogEntry>> = futures::stream::iter(pieces.iter().copied())
            .map(|(low, high, is_packed)| async move {
                if !is_packed {
                    return self.fetch_records(head, low, high).await;
                }
                let k = low / PACK;
                match self.objects.pack(k).await? {
                    Some(pack) => {
                        Ok(pack[(low - k * PACK) as usize..(high - k * PACK) as usize].to_vec())
                    }
                    None => Err(self.moved_under(low).await),
                }
            })
            .buffered(self.fetch_concurrency)
            .try_collect()
            .await?;
        let mut entries: Vec<LogEntry> = fetched.into_iter().flatten().collect();
        if self.packing {
            self.pack_blocks(&pieces, start, &entries).await;
        }
        self.apply_overlays(start, &mut entries).await?;
        Ok(entries)
    }

    /// Writes a pack for every whole block that `pieces` read from records
    /// (`entries` holds the range from `start`, as appended). Only an
    /// optimisation for later queries: a failure here fails nothing.
    async fn pack_blocks(
        &self,
        pieces: &[(SequenceId, SequenceId, bool)],
        start: SequenceId,
        entries: &[LogEntry],
    ) {
        let blocks: Vec<u64> = pieces
            .iter()
            .filter(|(_, _, is_packed)| !is_packed)
            .flat_map(|(low, high, _)| low.div_ceil(PACK)..high / PACK)
            .collect();
        if blocks.is_empty() {
            return;
        }
        // A truncate that passed a block while it was read may have let a
        // client behind it recreate one of its records: pack only blocks
        // still inside the log.
        let Ok((head, _)) = self.objects.head().await else {
            return;
        };
        for k in blocks.into_iter().filter(|k| k * PACK >= head.start) {
            let from = (k * PACK - start) as usize;
            if let Some(block) = entries.get(from..from + PACK as usize) {
                let _ = self.objects.create_pack(k, block).await;
            }
        }
    }

    /// Replaces the metadata of `entries` (ids from `start`) by what the
    /// overlays say changed since append.
    async fn apply_overlays(
        &self,
        start: SequenceId,
        entries: &mut [LogEntry],
    ) -> Result<(), StorageError> {
        let Some(last) = (start + entries.len() as u64).checked_sub(1) else {
            return Ok(());
        };
        let blocks = (start / OVERLAY_BLOCK)..=(last / OVERLAY_BLOCK);
        let objects = &self.objects;
        let overlays: Vec<Overlay> = futures::stream::iter(blocks)
            .map(|block| async move { Ok::<_, StorageError>(objects.overlay(block).await?.0) })
            .buffered(self.fetch_concurrency)
            .try_collect()
            .await?;
        for (seq, metadata) in overlays.into_iter().flatten() {
            if let Some(entry) = seq
                .checked_sub(start)
                .and_then(|index| entries.get_mut(index as usize))
            {
                entry.metadata = metadata;
            }
        }
        Ok(())
    }

    /// The error for a query whose entries vanished while it ran: a range
    /// error if a truncate passed `start`, else damage.
    pub(super) async fn moved_under(&self, start: SequenceId) -> QueryError {
        match self.head_and_end().await {
            Err(err) => err.into(),
            Ok((head, end)) if start < head.start => {
                Bounds::new(head.start, end).range_error(start).into()
            }
            Ok(_) => StorageError::new(
                BACKEND,
                format!(
                    "records of the log under {} are missing at {start}",
                    self.objects.prefix
                ),
            )
            .into(),
        }
    }
}
