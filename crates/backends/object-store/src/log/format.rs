//! The bytes of the log's objects: records (one batch of entries each) and
//! packs (one block of entries, in the record encoding), overlays (metadata
//! changed since append), the head (start and end hint) and the snapshot
//! candidates. Every object opens
//! with a four-byte magic and a version byte, so a foreign or damaged object
//! is a clear error rather than a misread log.

use crate::error::corrupt;
use bytes::{BufMut, Bytes, BytesMut};
use infinisheet_event_log::{AppendToken, EntryMetadata, LogEntry, SequenceId, StorageError};
use object_store::path::Path;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Version byte of every object this module writes.
const VERSION: u8 = 1;

/// Magic of a record: a batch of entries appended in one call.
pub(crate) const RECORD_MAGIC: &[u8; 4] = b"ISLR";
/// Magic of the head object.
pub(crate) const HEAD_MAGIC: &[u8; 4] = b"ISLH";
/// Magic of the snapshot candidates object.
pub(crate) const SNAPSHOTS_MAGIC: &[u8; 4] = b"ISLS";

/// Where the log starts and roughly where it ends, and its newest
/// snapshot when no change of snapshots is under way. Changed only by
/// compare-and-swap.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Head {
    /// The log's first entry.
    pub(crate) start: SequenceId,
    /// The key of the record holding `start`, or `start` itself when the log
    /// is empty: the first record a walk along the log may read.
    pub(crate) first_record: SequenceId,
    /// A record key (or the end) at or after `first_record`: walks towards
    /// the end start here. Never ahead of the log's end.
    pub(crate) end_hint: SequenceId,
    /// The entry with the highest id whose `snapshot` is set (whatever the
    /// start: one below it means none at or after it), while no change is
    /// under way; `Unknown` from the moment one begins until the last one
    /// under way ends, and in a head of format version 1.
    pub(crate) newest: Newest,
    /// The changes of snapshots under way: each operation that may change
    /// an entry's `snapshot` (a `set_metadata` setting or clearing it, an
    /// append carrying one) is named here before it writes and removed
    /// after; the last one out works out `newest` again.
    pub(crate) changing: Vec<Change>,
}

impl Head {
    /// The head of a new, empty log: no snapshot.
    pub(crate) fn new_log() -> Head {
        Head {
            newest: Newest::Known(None),
            ..Head::default()
        }
    }
}

/// What the head says of the newest snapshot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Newest {
    /// Not known: found through the snapshot candidates.
    #[default]
    Unknown,
    /// The entry with the highest id whose `snapshot` is set, and that
    /// snapshot; `None` if no entry has one.
    Known(Option<(SequenceId, String)>),
}

/// A change of snapshots under way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Change {
    /// Names the operation.
    pub(crate) token: u64,
    /// By the store's clock, a time at or after the change began: the
    /// head's `Last-Modified` as read by the first head write after the
    /// one that named it (`None` until then). One named over an hour
    /// before the head's latest write is taken to have died.
    pub(crate) stamped_ms: Option<i64>,
}

/// The head as format version 1 wrote it.
#[derive(Deserialize)]
struct HeadV1 {
    start: SequenceId,
    first_record: SequenceId,
    end_hint: SequenceId,
}

/// Version byte of a head that names the newest snapshot. A release that
/// reads only version 1 refuses it (a format version error) rather than
/// change snapshots without saying so here.
const HEAD_VERSION: u8 = 2;

/// Encodes the head (version 2).
pub(crate) fn encode_head(head: &Head) -> Bytes {
    let mut header = Vec::with_capacity(64);
    header.extend_from_slice(HEAD_MAGIC);
    header.push(HEAD_VERSION);
    // As in `encode_small`: cannot fail; if it did, read back as corrupt.
    Bytes::from(postcard::to_extend(head, header.clone()).unwrap_or(header))
}

/// Decodes a head of version 1 (newest snapshot unknown) or 2.
pub(crate) fn decode_head(key: &Path, bytes: &[u8]) -> Result<Head, StorageError> {
    let Some((found, rest)) = bytes.split_first_chunk::<4>() else {
        return Err(corrupt(key, "shorter than its header"));
    };
    if found != HEAD_MAGIC {
        return Err(corrupt(key, "not an Infinisheet log object"));
    }
    match rest.split_first() {
        Some((&VERSION, body)) => {
            let old: HeadV1 = postcard::from_bytes(body).map_err(|err| corrupt(key, err))?;
            Ok(Head {
                start: old.start,
                first_record: old.first_record,
                end_hint: old.end_hint,
                ..Head::default()
            })
        }
        Some((&HEAD_VERSION, body)) => postcard::from_bytes(body).map_err(|err| corrupt(key, err)),
        Some((version, _)) => Err(corrupt(
            key,
            format!("head format version {version}; this build reads versions 1 and 2"),
        )),
        None => Err(corrupt(key, "shorter than its header")),
    }
}

/// Metadata as stored: the three fields of [`EntryMetadata`].
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredMetadata {
    snapshot: Option<String>,
    history: Option<String>,
    pending: Option<String>,
}

impl From<EntryMetadata> for StoredMetadata {
    fn from(metadata: EntryMetadata) -> Self {
        StoredMetadata {
            snapshot: metadata.snapshot,
            history: metadata.history,
            pending: metadata.pending,
        }
    }
}

impl From<StoredMetadata> for EntryMetadata {
    fn from(stored: StoredMetadata) -> Self {
        EntryMetadata {
            snapshot: stored.snapshot,
            history: stored.history,
            pending: stored.pending,
        }
    }
}

/// Magic of an overlay: metadata changed since append, for one block of ids.
pub(crate) const OVERLAY_MAGIC: &[u8; 4] = b"ISLM";

/// Encodes a small object: magic, version, postcard.
pub(crate) fn encode_small<T: Serialize>(magic: &[u8; 4], value: &T) -> Bytes {
    let mut header = Vec::with_capacity(32);
    header.extend_from_slice(magic);
    header.push(VERSION);
    // Serializing plain structs of integers and strings into a Vec cannot
    // fail; should it ever, the object is written with its header only and
    // read back as corrupt rather than panicking here.
    Bytes::from(postcard::to_extend(value, header.clone()).unwrap_or(header))
}

/// Decodes an object written by [`encode_small`].
pub(crate) fn decode_small<T: DeserializeOwned>(
    magic: &[u8; 4],
    key: &Path,
    bytes: &[u8],
) -> Result<T, StorageError> {
    let body = check_header(magic, key, bytes)?;
    postcard::from_bytes(body).map_err(|err| corrupt(key, err))
}

fn check_header<'a>(
    magic: &[u8; 4],
    key: &Path,
    bytes: &'a [u8],
) -> Result<&'a [u8], StorageError> {
    let Some((found, rest)) = bytes.split_first_chunk::<4>() else {
        return Err(corrupt(key, "shorter than its header"));
    };
    if found != magic {
        return Err(corrupt(key, "not an Infinisheet log object"));
    }
    match rest.split_first() {
        Some((&VERSION, body)) => Ok(body),
        Some((version, _)) => Err(corrupt(
            key,
            format!("format version {version}; this build reads version {VERSION}"),
        )),
        None => Err(corrupt(key, "shorter than its header")),
    }
}

/// Version byte of a record that carries its append's token.
const TOKEN_RECORD: u8 = 2;

/// Encodes a record: magic, version, entry count, the append's token if
/// any (version 2; version 1 has none), then per entry its metadata
/// (length-prefixed postcard) and its payload (length-prefixed). Packs are
/// records without a token.
pub(crate) fn encode_record(entries: &[LogEntry], token: Option<AppendToken>) -> Bytes {
    let payloads: usize = entries.iter().map(|entry| entry.payload.len() + 64).sum();
    let mut out = BytesMut::with_capacity(25 + payloads);
    out.put_slice(RECORD_MAGIC);
    out.put_u8(if token.is_some() {
        TOKEN_RECORD
    } else {
        VERSION
    });
    out.put_u32_le(u32::try_from(entries.len()).unwrap_or(u32::MAX));
    if let Some(token) = token {
        out.put_slice(&token.to_bytes());
    }
    for entry in entries {
        let stored = StoredMetadata::from(entry.metadata.clone());
        // As in `encode_small`: cannot fail; empty metadata reads back as
        // corrupt.
        let metadata = postcard::to_allocvec(&stored).unwrap_or_default();
        out.put_u32_le(u32::try_from(metadata.len()).unwrap_or(u32::MAX));
        out.put_slice(&metadata);
        out.put_u64_le(entry.payload.len() as u64);
        out.put_slice(&entry.payload);
    }
    out.freeze()
}

/// Whether a record's version byte is one this build reads.
pub(crate) fn is_record_version(version: u8) -> bool {
    version == VERSION || version == TOKEN_RECORD
}

/// Decodes a record into its token (if it has one) and its entries;
/// payloads share `bytes` rather than being copied.
pub(crate) fn decode_record(
    key: &Path,
    bytes: &Bytes,
) -> Result<(Option<AppendToken>, Vec<LogEntry>), StorageError> {
    let version = match bytes.get(..5) {
        None => return Err(corrupt(key, "shorter than its header")),
        Some([m0, m1, m2, m3, version]) if [*m0, *m1, *m2, *m3] == *RECORD_MAGIC => *version,
        Some(_) => return Err(corrupt(key, "not an Infinisheet log object")),
    };
    if !is_record_version(version) {
        return Err(corrupt(
            key,
            format!(
                "format version {version}; this build reads versions {VERSION} and {TOKEN_RECORD}"
            ),
        ));
    }
    let mut at: usize = 5;
    let mut take = |len: usize| -> Result<Bytes, StorageError> {
        let end = at
            .checked_add(len)
            .filter(|end| *end <= bytes.len())
            .ok_or_else(|| corrupt(key, "ends inside an entry"))?;
        let part = bytes.slice(at..end);
        at = end;
        Ok(part)
    };
    let count = u32::from_le_bytes(fixed(&take(4)?));
    let token = if version == TOKEN_RECORD {
        Some(AppendToken::from_bytes(fixed(&take(16)?)))
    } else {
        None
    };
    let mut entries = Vec::with_capacity(count.min(1 << 16) as usize);
    for _ in 0..count {
        let metadata_len = u32::from_le_bytes(fixed(&take(4)?));
        let stored: StoredMetadata =
            postcard::from_bytes(&take(metadata_len as usize)?).map_err(|err| corrupt(key, err))?;
        let payload_len = u64::from_le_bytes(fixed(&take(8)?));
        let payload_len =
            usize::try_from(payload_len).map_err(|_| corrupt(key, "payload too large"))?;
        let payload = take(payload_len)?;
        entries.push(LogEntry {
            payload,
            metadata: stored.into(),
        });
    }
    if at != bytes.len() {
        return Err(corrupt(key, "trailing bytes after the last entry"));
    }
    if entries.is_empty() {
        return Err(corrupt(key, "a record without entries"));
    }
    Ok((token, entries))
}

/// The first `N` bytes of `bytes`, which the caller took with that length.
fn fixed<const N: usize>(bytes: &[u8]) -> [u8; N] {
    let mut out = [0; N];
    out.copy_from_slice(&bytes[..N]);
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> Path {
        Path::from("log/records/1")
    }

    #[test]
    fn records_round_trip() {
        let entries = vec![
            LogEntry::new(Bytes::new()),
            LogEntry::new(vec![1, 2, 3]).with_pending("snapshot"),
        ];
        let bytes = encode_record(&entries, None);
        assert_eq!(
            decode_record(&key(), &bytes).unwrap(),
            (None, entries.clone())
        );
        let token = AppendToken::from_u128(7 << 100 | 5);
        let bytes = encode_record(&entries, Some(token));
        assert_eq!(
            decode_record(&key(), &bytes).unwrap(),
            (Some(token), entries)
        );
    }

    #[test]
    fn damaged_records_are_errors() {
        let token = Some(AppendToken::from_u128(1));
        for bytes in [
            encode_record(&[LogEntry::new(vec![7; 10])], None),
            encode_record(&[LogEntry::new(vec![7; 10])], token),
        ] {
            for cut in 0..bytes.len() {
                assert!(
                    decode_record(&key(), &bytes.slice(..cut)).is_err(),
                    "cut {cut}"
                );
            }
        }
        let bytes = encode_record(&[LogEntry::new(vec![7; 10])], None);
        let mut longer = bytes.to_vec();
        longer.push(0);
        assert!(decode_record(&key(), &Bytes::from(longer)).is_err());
        let mut newer = bytes.to_vec();
        newer[4] = 3;
        let err = decode_record(&key(), &Bytes::from(newer)).unwrap_err();
        assert!(err.message().contains("version 3"), "{err}");
    }

    #[test]
    fn heads_round_trip_and_check_their_magic() {
        let head = Head {
            start: 5,
            first_record: 3,
            end_hint: 9,
            newest: Newest::Known(Some((7, "s7".into()))),
            changing: vec![Change {
                token: 1,
                stamped_ms: Some(2),
            }],
        };
        let bytes = encode_head(&head);
        assert_eq!(decode_head(&key(), &bytes).unwrap(), head);
        let mut foreign = bytes.to_vec();
        foreign[..4].copy_from_slice(SNAPSHOTS_MAGIC);
        assert!(decode_head(&key(), &foreign).is_err());
        let mut newer = bytes.to_vec();
        newer[4] = 3;
        let err = decode_head(&key(), &newer).unwrap_err();
        assert!(err.message().contains("version 3"), "{err}");
    }

    /// A head written by a release of format version 1 reads as the same
    /// start, first record and end hint, its newest snapshot unknown.
    #[test]
    fn version_1_heads_read_with_their_newest_snapshot_unknown() {
        #[derive(Serialize)]
        struct V1 {
            start: u64,
            first_record: u64,
            end_hint: u64,
        }
        let bytes = encode_small(
            HEAD_MAGIC,
            &V1 {
                start: 5,
                first_record: 3,
                end_hint: 9,
            },
        );
        assert_eq!(
            decode_head(&key(), &bytes).unwrap(),
            Head {
                start: 5,
                first_record: 3,
                end_hint: 9,
                newest: Newest::Unknown,
                changing: Vec::new(),
            }
        );
    }
}
