//! The checkpoint: what replaying the log up to a place in its newest
//! segment gave (bounds, every segment's first id, the newest segment's
//! sparse index, the metadata of the entries that have any), so opening
//! replays only what follows it.
//!
//! ```text
//! file   = "infinisheet-ckp1" frame                (frame.rs, tag 7)
//! body   = 7 tail:u32 offset:u64 mark start:u64 end:u64
//!          count:u32 (index:u32 first:u64)*          the live segments
//!          count:u32 (id:u64 offset:u64)*            the tail's sparse index
//!          count:u32 (seq:u64 opt opt opt)*          metadata (snapshot, history, pending)
//! mark   = 0 | 1 offset:u64 header:16                the tail's last frame
//! ```
//!
//! A checkpoint is a cache of the segments, never the only record of
//! anything: it is written (under the log's lock, after the frames it
//! describes are durable) to a temporary file renamed over the old one,
//! without a sync. A missing, damaged or stale one, or one whose last frame
//! is not in the segment where it says, is ignored and the segments are
//! replayed from their start.

use super::frame::{self, CHECKPOINT, FrameBuilder, HEADER, Header, Reader};
use infinisheet_event_log::{EntryMetadata, SequenceId};
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::Path;

/// The checkpoint's file in the log's directory.
pub(crate) const FILE: &str = "CHECKPOINT";
/// Its temporary name while it is written; a leftover is removed on open.
pub(crate) const TEMP_FILE: &str = "CHECKPOINT.tmp";
const MAGIC: &[u8; 16] = b"infinisheet-ckp1";

/// One entry of a segment's sparse index: from `offset` on, the segment
/// holds only entries with ids from `id` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Point {
    pub(crate) id: SequenceId,
    pub(crate) offset: u64,
}

/// The last frame of the newest segment before the checkpoint's place: its
/// offset and header (which holds its length and checksum).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Mark {
    pub(crate) offset: u64,
    pub(crate) header: [u8; HEADER],
}

impl Mark {
    /// Where the marked frame ends, if its header is a frame's.
    pub(crate) fn end(&self) -> Option<u64> {
        match frame::parse_header(&self.header) {
            Header::Frame { len, .. } => Some(self.offset + frame::frame_len(len as usize) as u64),
            _ => None,
        }
    }
}

#[derive(Debug, PartialEq)]
pub(crate) struct Checkpoint {
    /// The newest segment, and where in it replay goes on.
    pub(crate) tail: u32,
    pub(crate) offset: u64,
    /// The frame that ends at `offset`; `None` when `offset` is where the
    /// segment's data starts.
    pub(crate) mark: Option<Mark>,
    pub(crate) start: SequenceId,
    pub(crate) end: SequenceId,
    /// The first id of each live segment, by index (the tail included).
    pub(crate) segments: Vec<(u32, SequenceId)>,
    /// The tail's sparse index.
    pub(crate) points: Vec<Point>,
    /// The metadata of every live entry that has any.
    pub(crate) metadata: BTreeMap<SequenceId, EntryMetadata>,
}

fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Checkpoint {
    fn encode(&self) -> Vec<u8> {
        let mut f = FrameBuilder::new(CHECKPOINT, 64 + 12 * self.segments.len());
        f.u32(self.tail);
        f.u64(self.offset);
        match &self.mark {
            None => f.raw(&[0]),
            Some(mark) => {
                f.raw(&[1]);
                f.u64(mark.offset);
                f.raw(&mark.header);
            }
        }
        f.u64(self.start);
        f.u64(self.end);
        f.u32(len32(self.segments.len()));
        for (index, first) in &self.segments {
            f.u32(*index);
            f.u64(*first);
        }
        f.u32(len32(self.points.len()));
        for point in &self.points {
            f.u64(point.id);
            f.u64(point.offset);
        }
        f.u32(len32(self.metadata.len()));
        for (seq, metadata) in &self.metadata {
            f.u64(*seq);
            f.opt(metadata.snapshot.as_ref());
            f.opt(metadata.history.as_ref());
            f.opt(metadata.pending.as_ref());
        }
        f.finish()
    }

    fn decode(body: &[u8]) -> Result<Checkpoint, &'static str> {
        let mut r = Reader::new(body);
        if r.u8()? != CHECKPOINT {
            return Err("not a checkpoint");
        }
        let tail = r.u32()?;
        let offset = r.u64()?;
        let mark = match r.u8()? {
            0 => None,
            1 => {
                let offset = r.u64()?;
                let mut header = [0u8; HEADER];
                header.copy_from_slice(r.bytes(HEADER)?);
                Some(Mark { offset, header })
            }
            _ => return Err("an unknown mark tag"),
        };
        let (start, end) = (r.u64()?, r.u64()?);
        let mut segments = Vec::new();
        for _ in 0..r.u32()? {
            segments.push((r.u32()?, r.u64()?));
        }
        let mut points = Vec::new();
        for _ in 0..r.u32()? {
            points.push(Point {
                id: r.u64()?,
                offset: r.u64()?,
            });
        }
        let mut metadata = BTreeMap::new();
        for _ in 0..r.u32()? {
            let seq = r.u64()?;
            let entry = EntryMetadata {
                snapshot: r.opt()?,
                history: r.opt()?,
                pending: r.opt()?,
            };
            metadata.insert(seq, entry);
        }
        if !r.is_done() {
            return Err("trailing bytes");
        }
        Ok(Checkpoint {
            tail,
            offset,
            mark,
            start,
            end,
            segments,
            points,
            metadata,
        })
    }

    /// Writes the checkpoint over the old one: a temporary file renamed
    /// into place, not synced (see the module's docs).
    pub(crate) fn write(&self, dir: &Path) -> io::Result<()> {
        let temp = dir.join(TEMP_FILE);
        let written = std::fs::File::create(&temp).and_then(|mut file| {
            file.write_all(MAGIC)?;
            file.write_all(&self.encode())
        });
        let placed = written.and_then(|()| std::fs::rename(&temp, dir.join(FILE)));
        if placed.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        placed
    }

    /// The checkpoint in `dir`, if there is a whole one.
    pub(crate) fn read(dir: &Path) -> Option<Checkpoint> {
        let bytes = std::fs::read(dir.join(FILE)).ok()?;
        let rest = bytes.strip_prefix(MAGIC.as_slice())?;
        let mut header = [0u8; HEADER];
        header.copy_from_slice(rest.get(..HEADER)?);
        let Header::Frame { len, crc } = frame::parse_header(&header) else {
            return None;
        };
        let body = rest.get(HEADER..HEADER + len as usize)?;
        if !frame::body_ok(body, crc) {
            return None;
        }
        Checkpoint::decode(body).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_reads_back_and_damage_reads_as_none() {
        let dir = tempfile::tempdir().unwrap();
        let mut metadata = BTreeMap::new();
        metadata.insert(
            7,
            EntryMetadata {
                snapshot: Some("s".into()),
                history: None,
                pending: Some("p".into()),
            },
        );
        let checkpoint = Checkpoint {
            tail: 3,
            offset: 4096,
            mark: Some(Mark {
                offset: 4000,
                header: [9; HEADER],
            }),
            start: 2,
            end: 90,
            segments: vec![(2, 2), (3, 50)],
            points: vec![Point { id: 50, offset: 48 }],
            metadata,
        };
        checkpoint.write(dir.path()).unwrap();
        assert_eq!(Checkpoint::read(dir.path()), Some(checkpoint));
        let path = dir.path().join(FILE);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[MAGIC.len() + HEADER + 5] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(Checkpoint::read(dir.path()), None);
        std::fs::write(&path, b"").unwrap();
        assert_eq!(Checkpoint::read(dir.path()), None);
    }
}
