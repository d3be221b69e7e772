//! History: entries truncated from the log, archived in blobs under the
//! sheet's `history/` directory, and reading entries back from the log and
//! its history together.
//!
//! A history blob holds the payloads of entries `[start, end)` and the id
//! of the blob holding the entries before `start`, so the blobs form a
//! chain. Its id is the zero-padded `end`, and entry `end` (the log's first
//! entry after the truncate) names it in its `history` metadata: following
//! the off-by-one rule, it holds what came *before* that entry.

use crate::WorkflowError;
use crate::scan::{self, Found};
use bytes::{Buf, BufMut, Bytes};
use infinisheet_blob_store::{BlobDir, BlobDirExt, ReadBlobError};
use infinisheet_engine::SheetId;
use infinisheet_event_log::{
    BlobId, EventLog, EventLogExt, FieldUpdate, KnownSnapshot, MetadataUpdate, QueryEnd,
    QueryError, QueryStart, SequenceId, SetMetadataError, TruncateError,
};
use std::sync::Arc;

/// The directory of a sheet holding its history blobs.
pub const HISTORY_DIR: &str = "history";

/// The blob id of the history blob holding the entries before `end` of
/// the sheet `identity` (`<end>-<identity>`, or `<end>` for a sheet without
/// one), so two sheets' history never shares a blob.
pub fn history_id(end: SequenceId, identity: Option<SheetId>) -> String {
    match identity {
        Some(identity) => format!("{end:020}-{identity}"),
        None => format!("{end:020}"),
    }
}

const MAGIC: &[u8; 4] = b"ISHB";
const VERSION: u8 = 1;
const HEADER: usize = 4 + 1 + 4;

/// The content of one history blob: the payloads of entries
/// `[start, end)`, and the blob holding the entries before `start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryBlob {
    /// The first archived entry.
    pub start: SequenceId,
    /// One past the last archived entry.
    pub end: SequenceId,
    /// The history blob holding the entries before `start`, if any.
    pub previous: Option<BlobId>,
    /// The payloads, one per entry of `[start, end)`.
    pub payloads: Vec<Bytes>,
}

impl HistoryBlob {
    /// The blob's bytes: magic, format version, CRC-32C of the body, then
    /// the body (start, end, previous id, length-prefixed payloads).
    pub fn encode(&self) -> Vec<u8> {
        let size: usize = self.payloads.iter().map(|p| p.len() + 4).sum();
        let mut bytes = Vec::with_capacity(HEADER + 24 + size);
        bytes.extend_from_slice(MAGIC);
        bytes.push(VERSION);
        bytes.extend_from_slice(&[0; 4]);
        bytes.put_u64_le(self.start);
        bytes.put_u64_le(self.end);
        let previous = self.previous.as_deref().unwrap_or("");
        bytes.put_u32_le(previous.len() as u32);
        bytes.extend_from_slice(previous.as_bytes());
        for payload in &self.payloads {
            bytes.put_u32_le(payload.len() as u32);
            bytes.extend_from_slice(payload);
        }
        let crc = crc32c::crc32c(&bytes[HEADER..]);
        bytes[5..HEADER].copy_from_slice(&crc.to_le_bytes());
        bytes
    }

    /// Reads a blob written by [`encode`](HistoryBlob::encode).
    ///
    /// # Errors
    ///
    /// What is wrong, if the bytes are not a whole history blob of this
    /// format version.
    pub fn decode(bytes: &[u8]) -> Result<HistoryBlob, String> {
        if bytes.len() < HEADER || &bytes[..4] != MAGIC {
            return Err("it is not a history blob".into());
        }
        if bytes[4] != VERSION {
            return Err(format!(
                "it is of format version {}; this version reads {VERSION}",
                bytes[4]
            ));
        }
        let mut crc = [0; 4];
        crc.copy_from_slice(&bytes[5..HEADER]);
        if crc32c::crc32c(&bytes[HEADER..]) != u32::from_le_bytes(crc) {
            return Err("its checksum does not match its contents".into());
        }
        let mut body = &bytes[HEADER..];
        let short = || "it ends early".to_string();
        if body.len() < 20 {
            return Err(short());
        }
        let start = body.get_u64_le();
        let end = body.get_u64_le();
        if end < start {
            return Err(format!("it claims entries {start} to {end}"));
        }
        let take = |body: &mut &[u8]| -> Result<Bytes, String> {
            if body.len() < 4 {
                return Err(short());
            }
            let len = body.get_u32_le() as usize;
            if body.len() < len {
                return Err(short());
            }
            let (taken, rest) = body.split_at(len);
            *body = rest;
            Ok(Bytes::copy_from_slice(taken))
        };
        let previous = take(&mut body)?;
        let previous = match std::str::from_utf8(&previous) {
            Ok("") => None,
            Ok(id) => Some(id.to_owned()),
            Err(_) => return Err("the previous blob's id is not text".into()),
        };
        let count = end - start;
        let mut payloads = Vec::with_capacity(count.min(1 << 20) as usize);
        for _ in 0..count {
            payloads.push(take(&mut body)?);
        }
        if !body.is_empty() {
            return Err("bytes follow the last entry".into());
        }
        Ok(HistoryBlob {
            start,
            end,
            previous,
            payloads,
        })
    }
}

fn path(id: &str) -> String {
    format!("{HISTORY_DIR}/{id}")
}

async fn history_dir(dir: &Arc<dyn BlobDir>) -> Result<Arc<dyn BlobDir>, WorkflowError> {
    dir.open_dir(HISTORY_DIR)
        .await
        .map_err(WorkflowError::blob(HISTORY_DIR))
}

/// Archives the entries before the `segments`-th newest snapshot into a
/// history blob, names it on that entry, then truncates the log there.
/// Returns the new start, or `None` if there was nothing to archive.
///
/// Safe to run from several workers at once: each blob holds whole,
/// correct entries, and a truncate that another one already passed is
/// skipped.
pub(crate) async fn archive(
    log: &dyn EventLog,
    dir: &Arc<dyn BlobDir>,
    segments: u32,
    identity: Option<SheetId>,
) -> Result<Option<SequenceId>, WorkflowError> {
    // One read of the live log (short while history is on) gives both the
    // snapshots and the entries to archive.
    let mut live = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await?;
    let snapshots: Vec<SequenceId> = (live.start..)
        .zip(&live.entries)
        .filter(|(_, e)| e.metadata.snapshot.is_some())
        .map(|(seq, _)| seq)
        .collect();
    let kept = segments.max(1) as usize;
    if snapshots.len() < kept {
        return Ok(None);
    }
    let cut = snapshots[snapshots.len() - kept];
    if cut <= live.start {
        return Ok(None);
    }
    live.entries.truncate((cut - live.start) as usize);
    let entries = live;
    let previous = entries
        .entries
        .first()
        .and_then(|e| e.metadata.history.clone());
    let blob = HistoryBlob {
        start: entries.start,
        end: cut,
        previous,
        payloads: entries.entries.into_iter().map(|e| e.payload).collect(),
    };
    let id = history_id(cut, identity);
    history_dir(dir)
        .await?
        .write(&id, blob.encode())
        .await
        .map_err(WorkflowError::blob(path(&id)))?;
    let named = MetadataUpdate {
        history: FieldUpdate::Set(id),
        ..MetadataUpdate::default()
    };
    match log.set_metadata(cut, named).await {
        Ok(()) => {}
        // Another worker truncated past `cut` meanwhile.
        Err(SetMetadataError::Range(_)) => return Ok(None),
        Err(source) => return Err(WorkflowError::Metadata { seq: cut, source }),
    }
    match log.truncate(cut).await {
        Ok(()) | Err(TruncateError::Range(_)) => Ok(Some(cut)),
        Err(source) => Err(WorkflowError::Truncate { start: cut, source }),
    }
}

/// The payloads of entries `[start, end)` of the sheet whose log is `log`
/// and whose directory is `dir`: those still in the log read from it, the
/// older ones from its history blobs. `end` past the log's end stops there.
///
/// # Errors
///
/// * [`WorkflowError::HistoryGap`] if entries before `start` were
///   truncated without history (or a history blob is missing).
/// * [`WorkflowError::History`] if a history blob is damaged or does not
///   join its neighbours.
/// * [`WorkflowError::Query`] / [`WorkflowError::Blob`] if the storage
///   fails.
pub async fn read_payloads(
    log: &dyn EventLog,
    dir: &Arc<dyn BlobDir>,
    start: SequenceId,
    end: SequenceId,
) -> Result<Vec<Bytes>, WorkflowError> {
    // A truncate between finding the log's start and reading from it moves
    // the start; read again then.
    let mut tries = 0;
    loop {
        tries += 1;
        match read_once(log, dir, start, end).await {
            Err(WorkflowError::Query(QueryError::Range(_))) if tries < 8 => continue,
            other => return other,
        }
    }
}

async fn read_once(
    log: &dyn EventLog,
    dir: &Arc<dyn BlobDir>,
    start: SequenceId,
    end: SequenceId,
) -> Result<Vec<Bytes>, WorkflowError> {
    let live = log.bounds().await.map_err(QueryError::from)?.start;
    let mut payloads = Vec::new();
    if start < live {
        let metadata = match scan::entry(log, live).await? {
            Found::Entry(metadata, _) => metadata,
            Found::Truncated => {
                return Err(QueryError::Range(infinisheet_event_log::RangeError {
                    requested: live,
                    start: live,
                    end: live,
                })
                .into());
            }
            Found::Beyond { .. } => return Err(WorkflowError::HistoryGap { reached: live }),
        };
        payloads = read_history(dir, metadata.history, start, live).await?;
        payloads.truncate(end.saturating_sub(start) as usize);
    }
    let from = start.max(live);
    if from < end {
        let tail = log
            .query_all(
                QueryStart::Id(from),
                QueryEnd::Id(end),
                KnownSnapshot::NotTracked,
            )
            .await?;
        payloads.extend(tail.entries.into_iter().map(|e| e.payload));
    }
    Ok(payloads)
}

/// The payloads of `[start, live)` from the history chain that `newest`
/// (the history of entry `live`) begins.
async fn read_history(
    dir: &Arc<dyn BlobDir>,
    newest: Option<BlobId>,
    start: SequenceId,
    live: SequenceId,
) -> Result<Vec<Bytes>, WorkflowError> {
    let history = history_dir(dir).await?;
    let mut blobs = Vec::new();
    let mut next = newest;
    let mut reached = live;
    while reached > start {
        let Some(id) = next else {
            return Err(WorkflowError::HistoryGap { reached });
        };
        let bytes = match history.read(&id).await {
            Ok(bytes) => bytes,
            Err(ReadBlobError::NotFound { .. }) => {
                return Err(WorkflowError::HistoryGap { reached });
            }
            Err(err) => return Err(WorkflowError::blob(path(&id))(err)),
        };
        let blob = HistoryBlob::decode(&bytes).map_err(|reason| WorkflowError::History {
            blob: path(&id),
            reason,
        })?;
        if blob.end != reached || blob.start >= reached {
            return Err(WorkflowError::History {
                blob: path(&id),
                reason: format!(
                    "it holds entries {} to {}; the next part starts at {reached}",
                    blob.start, blob.end
                ),
            });
        }
        reached = blob.start;
        next = blob.previous.clone();
        blobs.push(blob);
    }
    let mut payloads = Vec::with_capacity((live - start) as usize);
    for blob in blobs.into_iter().rev() {
        let skip = start.saturating_sub(blob.start) as usize;
        payloads.extend(blob.payloads.into_iter().skip(skip));
    }
    Ok(payloads)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_blobs_round_trip_and_damage_is_an_error() {
        let blob = HistoryBlob {
            start: 100,
            end: 103,
            previous: Some(history_id(100, None)),
            payloads: vec![
                Bytes::from_static(b"a"),
                Bytes::new(),
                Bytes::from_static(b"ccc"),
            ],
        };
        let bytes = blob.encode();
        assert_eq!(HistoryBlob::decode(&bytes), Ok(blob.clone()));
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x10;
            assert!(HistoryBlob::decode(&damaged).is_err(), "flip at {at}");
        }
        for len in 0..bytes.len() {
            assert!(HistoryBlob::decode(&bytes[..len]).is_err(), "cut at {len}");
        }
        let first = HistoryBlob {
            start: 0,
            end: 0,
            previous: None,
            payloads: vec![],
        };
        assert_eq!(HistoryBlob::decode(&first.encode()), Ok(first));
    }
}
