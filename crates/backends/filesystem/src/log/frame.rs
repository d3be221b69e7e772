//! The on-disk format of log records: 8-byte-aligned frames with a checked
//! header and a checksummed body.
//!
//! ```text
//! frame  = len:u32 body_crc:u32 header_crc:u32 0:u32  body  zero padding to 8
//! body   = 1 first:u64 count:u32 (len:u32 payload meta)*   entries (one batch)
//!        | 6 first:u64 count:u32 token:16 (len:u32 payload meta)*
//!                                                           entries appended with a token
//!        | 2 seq:u64 update update update                    metadata change
//!        | 3 start:u64                                        truncate
//!        | 4                                                  seal: continue in the next segment
//!        | 5 index:u32 capacity:u64                           begin: the first frame of a segment
//!        | 7 ...                                              a checkpoint (its own file, see checkpoint.rs)
//! meta   = opt opt opt            (snapshot, history, pending)
//! opt    = 0 | 1 len:u32 utf8
//! update = 0 (keep) | 1 len:u32 utf8 (set) | 2 (clear)
//! ```
//!
//! All integers little-endian; checksums are CRC-32C. An all-zero header
//! marks the end of the data in a segment (segments are preallocated with
//! zeros), and is never a valid header.
//!
//! A segment starts with a 16-byte magic. Segments of the current format
//! ([`MAGIC`]) hold a begin frame right after it, naming the segment's index
//! and its size, so a segment cut short, or moved to another index, is told
//! from one that ends early. Segments of the first format ([`MAGIC_V1`])
//! have no begin frame; they are still read.

use infinisheet_event_log::{AppendToken, EntryMetadata, FieldUpdate, LogEntry, MetadataUpdate};

/// Bytes of a frame header.
pub(crate) const HEADER: usize = 16;
/// Bytes of a whole seal frame; every segment keeps room for one.
pub(crate) const SEAL_FRAME: usize = HEADER + 8;
/// The first bytes of a segment file of the current format.
pub(crate) const MAGIC: &[u8; 16] = b"infinisheet-log2";
/// The first bytes of a segment file of the first format (no begin frame).
pub(crate) const MAGIC_V1: &[u8; 16] = b"infinisheet-log1";
/// Bytes of a whole begin frame.
pub(crate) const BEGIN_FRAME: usize = HEADER + 16;

const ENTRIES: u8 = 1;
const METADATA: u8 = 2;
const TRUNCATE: u8 = 3;
const SEAL: u8 = 4;
const BEGIN: u8 = 5;
const TOKEN_ENTRIES: u8 = 6;
/// The tag of a checkpoint's frame (in its own file, never in a segment).
pub(crate) const CHECKPOINT: u8 = 7;

/// A decoded record. Entries keep where each payload sits in the body, so
/// queries can read payloads straight from the file.
#[derive(Debug)]
pub(crate) enum Record {
    Entries {
        first: u64,
        token: Option<AppendToken>,
        entries: Vec<DecodedEntry>,
    },
    Metadata {
        seq: u64,
        update: MetadataUpdate,
    },
    Truncate {
        start: u64,
    },
    Seal,
    Begin {
        index: u32,
        capacity: u64,
    },
}

#[derive(Debug)]
pub(crate) struct DecodedEntry {
    /// Offset of the payload from the start of the frame.
    pub(crate) offset: usize,
    pub(crate) len: u32,
    pub(crate) metadata: EntryMetadata,
}

/// What the 16 bytes at a frame position say.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Header {
    /// All zero: no frame here.
    Zero,
    /// Not a valid header.
    Bad,
    /// A valid header: the body has `len` bytes and checksum `crc`.
    Frame { len: u32, crc: u32 },
}

fn header_crc(len: u32, body_crc: u32) -> u32 {
    let mut bytes = [0u8; 8];
    bytes[..4].copy_from_slice(&len.to_le_bytes());
    bytes[4..].copy_from_slice(&body_crc.to_le_bytes());
    // Never zero for a zero header, so zeros are never a valid frame.
    crc32c::crc32c(&bytes) ^ 0xa5a5_a5a5
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&bytes[at..at + 4]);
    u32::from_le_bytes(word)
}

/// Parses a frame header.
pub(crate) fn parse_header(bytes: &[u8; HEADER]) -> Header {
    if bytes.iter().all(|b| *b == 0) {
        return Header::Zero;
    }
    let (len, crc, check, pad) = (
        u32_at(bytes, 0),
        u32_at(bytes, 4),
        u32_at(bytes, 8),
        u32_at(bytes, 12),
    );
    if pad != 0 || check != header_crc(len, crc) {
        return Header::Bad;
    }
    Header::Frame { len, crc }
}

/// The whole frame's length for a body of `body_len` bytes.
pub(crate) fn frame_len(body_len: usize) -> usize {
    (HEADER + body_len).div_ceil(8) * 8
}

/// Whether `body` matches the checksum in its header.
pub(crate) fn body_ok(body: &[u8], crc: u32) -> bool {
    crc32c::crc32c(body) == crc
}

/// Builds frames: reserve the header, append the body, then `finish`.
pub(crate) struct FrameBuilder {
    bytes: Vec<u8>,
}

impl FrameBuilder {
    pub(crate) fn new(tag: u8, capacity: usize) -> Self {
        let mut bytes = Vec::with_capacity(HEADER + capacity + 8);
        bytes.resize(HEADER, 0);
        bytes.push(tag);
        FrameBuilder { bytes }
    }

    pub(crate) fn raw(&mut self, bytes: &[u8]) {
        self.bytes.extend_from_slice(bytes);
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    fn text(&mut self, value: &str) {
        self.u32(u32::try_from(value.len()).unwrap_or(u32::MAX));
        self.bytes.extend_from_slice(value.as_bytes());
    }

    pub(crate) fn opt(&mut self, value: Option<&String>) {
        match value {
            None => self.bytes.push(0),
            Some(text) => {
                self.bytes.push(1);
                self.text(text);
            }
        }
    }

    fn update(&mut self, update: &FieldUpdate<String>) {
        match update {
            FieldUpdate::Keep => self.bytes.push(0),
            FieldUpdate::Set(text) => {
                self.bytes.push(1);
                self.text(text);
            }
            FieldUpdate::Clear => self.bytes.push(2),
        }
    }

    pub(crate) fn finish(mut self) -> Vec<u8> {
        let body_len = self.bytes.len() - HEADER;
        let len = u32::try_from(body_len).unwrap_or(u32::MAX);
        let crc = crc32c::crc32c(&self.bytes[HEADER..]);
        self.bytes[0..4].copy_from_slice(&len.to_le_bytes());
        self.bytes[4..8].copy_from_slice(&crc.to_le_bytes());
        self.bytes[8..12].copy_from_slice(&header_crc(len, crc).to_le_bytes());
        self.bytes.resize(frame_len(body_len), 0);
        self.bytes
    }
}

/// The longest body a frame may have: lengths are 32-bit.
pub(crate) const MAX_BODY: usize = u32::MAX as usize - 64;

/// The frame of a batch of entries starting at `first`, marked with
/// `token` if given. `None` if the batch is too large for one frame.
pub(crate) fn entries_frame(
    first: u64,
    entries: &[LogEntry],
    token: Option<AppendToken>,
) -> Option<Vec<u8>> {
    let size: usize = entries
        .iter()
        .map(|e| {
            let m = &e.metadata;
            let text = |t: &Option<String>| t.as_ref().map_or(1, |t| 5 + t.len());
            4 + e.payload.len() + text(&m.snapshot) + text(&m.history) + text(&m.pending)
        })
        .sum::<usize>()
        + 29;
    if size > MAX_BODY || entries.len() > u32::MAX as usize {
        return None;
    }
    let tag = if token.is_some() {
        TOKEN_ENTRIES
    } else {
        ENTRIES
    };
    let mut frame = FrameBuilder::new(tag, size);
    frame.u64(first);
    frame.u32(entries.len() as u32);
    if let Some(token) = token {
        frame.bytes.extend_from_slice(&token.to_bytes());
    }
    for entry in entries {
        frame.u32(entry.payload.len() as u32);
        frame.bytes.extend_from_slice(&entry.payload);
        let m = &entry.metadata;
        frame.opt(m.snapshot.as_ref());
        frame.opt(m.history.as_ref());
        frame.opt(m.pending.as_ref());
    }
    Some(frame.finish())
}

/// The frame of a metadata change of entry `seq`.
pub(crate) fn metadata_frame(seq: u64, update: &MetadataUpdate) -> Vec<u8> {
    let mut frame = FrameBuilder::new(METADATA, 32);
    frame.u64(seq);
    frame.update(&update.snapshot);
    frame.update(&update.history);
    frame.update(&update.pending);
    frame.finish()
}

/// The frame of a truncate to `start`.
pub(crate) fn truncate_frame(start: u64) -> Vec<u8> {
    let mut frame = FrameBuilder::new(TRUNCATE, 8);
    frame.u64(start);
    frame.finish()
}

/// The frame that seals a segment.
pub(crate) fn seal_frame() -> Vec<u8> {
    FrameBuilder::new(SEAL, 0).finish()
}

/// The frame that begins segment `index`, a file of `capacity` bytes.
pub(crate) fn begin_frame(index: u32, capacity: u64) -> Vec<u8> {
    let mut frame = FrameBuilder::new(BEGIN, 12);
    frame.u32(index);
    frame.u64(capacity);
    frame.finish()
}

/// Reads a body front to back; every read checks the bounds.
pub(crate) struct Reader<'a> {
    body: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// A reader of `body` from its start.
    pub(crate) fn new(body: &'a [u8]) -> Self {
        Reader { body, at: 0 }
    }

    /// Whether every byte was read.
    pub(crate) fn is_done(&self) -> bool {
        self.at == self.body.len()
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&[u8], &'static str> {
        let end = self.at.checked_add(n).filter(|end| *end <= self.body.len());
        let end = end.ok_or("a record ends early")?;
        let slice = &self.body[self.at..end];
        self.at = end;
        Ok(slice)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.bytes(1)?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32, &'static str> {
        Ok(u32_at(self.bytes(4)?, 0))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, &'static str> {
        let mut word = [0u8; 8];
        word.copy_from_slice(self.bytes(8)?);
        Ok(u64::from_le_bytes(word))
    }

    fn text(&mut self) -> Result<String, &'static str> {
        let len = self.u32()? as usize;
        String::from_utf8(self.bytes(len)?.to_vec())
            .map_err(|_| "a record holds text that is not UTF-8")
    }

    pub(crate) fn opt(&mut self) -> Result<Option<String>, &'static str> {
        match self.u8()? {
            0 => Ok(None),
            1 => Ok(Some(self.text()?)),
            _ => Err("a record holds an unknown option tag"),
        }
    }

    fn update(&mut self) -> Result<FieldUpdate<String>, &'static str> {
        match self.u8()? {
            0 => Ok(FieldUpdate::Keep),
            1 => Ok(FieldUpdate::Set(self.text()?)),
            2 => Ok(FieldUpdate::Clear),
            _ => Err("a record holds an unknown update tag"),
        }
    }
}

/// Decodes a body whose checksum held.
pub(crate) fn decode(body: &[u8]) -> Result<Record, &'static str> {
    let mut r = Reader::new(body);
    let record = match r.u8()? {
        tag @ (ENTRIES | TOKEN_ENTRIES) => {
            let first = r.u64()?;
            let count = r.u32()? as usize;
            let token = if tag == TOKEN_ENTRIES {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(r.bytes(16)?);
                Some(AppendToken::from_bytes(bytes))
            } else {
                None
            };
            let mut entries = Vec::with_capacity(count.min(body.len() / 8));
            for _ in 0..count {
                let len = r.u32()?;
                let offset = HEADER + r.at;
                r.bytes(len as usize)?;
                let metadata = EntryMetadata {
                    snapshot: r.opt()?,
                    history: r.opt()?,
                    pending: r.opt()?,
                };
                entries.push(DecodedEntry {
                    offset,
                    len,
                    metadata,
                });
            }
            Record::Entries {
                first,
                token,
                entries,
            }
        }
        METADATA => Record::Metadata {
            seq: r.u64()?,
            update: MetadataUpdate {
                snapshot: r.update()?,
                history: r.update()?,
                pending: r.update()?,
            },
        },
        TRUNCATE => Record::Truncate { start: r.u64()? },
        SEAL => Record::Seal,
        BEGIN => Record::Begin {
            index: r.u32()?,
            capacity: r.u64()?,
        },
        _ => return Err("a record has an unknown type"),
    };
    if r.at != body.len() {
        return Err("a record has trailing bytes");
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(frame: &[u8]) -> &[u8] {
        let mut header = [0u8; HEADER];
        header.copy_from_slice(&frame[..HEADER]);
        match parse_header(&header) {
            Header::Frame { len, crc } => {
                let body = &frame[HEADER..HEADER + len as usize];
                assert!(body_ok(body, crc));
                body
            }
            other => panic!("bad header {other:?}"),
        }
    }

    #[test]
    fn entries_round_trip_with_payload_offsets() {
        let mut second = LogEntry::new(&b"second"[..]);
        second.metadata.snapshot = Some("snap".into());
        let entries = vec![LogEntry::new(&b""[..]), second.clone()];
        let frame = entries_frame(7, &entries, None).unwrap();
        assert_eq!(frame.len() % 8, 0);
        match decode(body(&frame)).unwrap() {
            Record::Entries {
                first,
                token,
                entries: decoded,
            } => {
                assert_eq!((first, token), (7, None));
                assert_eq!(decoded.len(), 2);
                let at = decoded[1].offset;
                assert_eq!(&frame[at..at + 6], b"second");
                assert_eq!(decoded[1].metadata, second.metadata);
            }
            other => panic!("decoded {other:?}"),
        }
    }

    #[test]
    fn tokens_round_trip() {
        let token = AppendToken::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        let entries = vec![LogEntry::new(&b"one"[..]), LogEntry::new(&b"two"[..])];
        let frame = entries_frame(3, &entries, Some(token)).unwrap();
        match decode(body(&frame)).unwrap() {
            Record::Entries {
                first: 3,
                token: Some(back),
                entries: decoded,
            } => {
                assert_eq!(back, token);
                let at = decoded[1].offset;
                assert_eq!(&frame[at..at + 3], b"two");
            }
            other => panic!("decoded {other:?}"),
        }
    }

    #[test]
    fn zeros_and_flipped_bits_are_not_frames() {
        assert_eq!(parse_header(&[0; HEADER]), Header::Zero);
        let mut frame = truncate_frame(3);
        frame[1] ^= 1;
        let mut header = [0u8; HEADER];
        header.copy_from_slice(&frame[..HEADER]);
        assert_eq!(parse_header(&header), Header::Bad);
    }

    #[test]
    fn metadata_and_seal_round_trip() {
        let update = MetadataUpdate {
            snapshot: FieldUpdate::Set("s".into()),
            history: FieldUpdate::Keep,
            pending: FieldUpdate::Clear,
        };
        match decode(body(&metadata_frame(9, &update))).unwrap() {
            Record::Metadata { seq, update: back } => assert_eq!((seq, back), (9, update)),
            other => panic!("decoded {other:?}"),
        }
        assert_eq!(seal_frame().len(), SEAL_FRAME);
        assert_eq!(begin_frame(3, 4096).len(), BEGIN_FRAME);
        assert!(matches!(
            decode(body(&begin_frame(3, 4096))).unwrap(),
            Record::Begin {
                index: 3,
                capacity: 4096
            }
        ));
        assert!(matches!(decode(body(&seal_frame())).unwrap(), Record::Seal));
    }
}
