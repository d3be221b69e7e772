//! Segment files: creating them preallocated and whole (in a temporary file
//! renamed into place), opening them with their header checked, reading
//! frames from them, and telling a torn tail from corruption.

use super::frame::{self, BEGIN_FRAME, HEADER, Header, MAGIC, MAGIC_V1, Record};
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where the first frame of a segment starts: after the magic.
pub(crate) const FIRST_FRAME: u64 = MAGIC.len() as u64;
/// Where the data of a segment of the current format starts: after the
/// magic and the begin frame.
pub(crate) const DATA_START: u64 = FIRST_FRAME + BEGIN_FRAME as u64;

/// One segment file, open for reading and writing.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    /// The file's size: frames fit below it.
    pub(crate) capacity: u64,
    /// Where its data (the first frame after the header) starts.
    pub(crate) data_start: u64,
}

/// What opening a segment file found.
#[derive(Debug)]
pub(crate) enum Opened {
    Segment(Segment),
    /// Shorter than a magic, and holding only the start of one: a segment
    /// the first format was creating in place when the process died. It
    /// never held a frame.
    Unfinished,
    /// Not a whole segment header: damage at `offset`.
    Damaged {
        offset: u64,
        reason: String,
    },
}

/// The file name of segment `index`.
pub(crate) fn name(index: u32) -> String {
    format!("{index:010}.seg")
}

/// The name a segment is written under before it is renamed into place.
/// Leftovers of a creation that did not finish are removed on open.
pub(crate) fn temp_name(index: u32) -> String {
    format!("{index:010}.seg.tmp")
}

/// Whether `name` is a segment's temporary name.
pub(crate) fn is_temp_name(name: &str) -> bool {
    name.strip_suffix(".seg.tmp")
        .is_some_and(|digits| digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()))
}

/// The index of a segment file name.
pub(crate) fn parse_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(".seg")?;
    (digits.len() == 10 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().ok())
        .flatten()
}

/// What follows the end of a segment's data.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum After {
    /// Only zeros, as the segment was made.
    Zeros,
    /// Bytes that are not zero but no valid frame: a torn write.
    Garbage,
    /// A valid frame at this offset.
    Frame(u64),
}

/// What is at a frame position.
#[derive(Debug)]
pub(crate) enum Read {
    /// No frame: zeros, or too little room left for a header.
    End,
    /// Something that is not a whole, valid frame.
    Bad(&'static str),
    /// A frame, its decoded record and its whole length.
    Frame(Record, u64),
}

/// Writes a whole new segment file at `temp`: the magic, the begin frame and
/// zeros up to `capacity`, synced.
fn write_new(temp: &Path, index: u32, capacity: u64) -> io::Result<File> {
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)?;
    file.write_all(MAGIC)?;
    file.write_all(&frame::begin_frame(index, capacity))?;
    let zeros = vec![0u8; 1 << 20];
    let mut left = capacity - DATA_START;
    while left > 0 {
        let n = left.min(zeros.len() as u64) as usize;
        file.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    file.sync_all()?;
    Ok(file)
}

impl Segment {
    /// Creates segment `index` in `dir` with `capacity` bytes (at least
    /// room for its header and one seal, rounded up to 8), written as zeros
    /// so later appends only overwrite allocated blocks. The file is made
    /// whole under a temporary name and renamed into place, then the
    /// directory is synced: a crash or a full disk leaves either no segment
    /// or a whole one, never a partial file under a segment's name. The
    /// caller holds the log's lock and has checked that no segment `index`
    /// exists.
    pub(crate) fn create(dir: &Path, index: u32, capacity: u64) -> io::Result<Segment> {
        let capacity = capacity
            .max(DATA_START + frame::SEAL_FRAME as u64)
            .div_ceil(8)
            * 8;
        let path = dir.join(name(index));
        let temp = dir.join(temp_name(index));
        let made = write_new(&temp, index, capacity).and_then(|file| {
            std::fs::rename(&temp, &path)?;
            File::open(dir)?.sync_all()?;
            Ok(file)
        });
        match made {
            Ok(file) => Ok(Segment {
                path,
                file,
                capacity,
                data_start: DATA_START,
            }),
            Err(err) => {
                // Frees the space a full disk needs back; a leftover is
                // removed on the next open.
                let _ = std::fs::remove_file(&temp);
                Err(err)
            }
        }
    }

    /// Opens an existing segment, checking its header: the magic, and in
    /// the current format the begin frame's index and size.
    pub(crate) fn open(dir: &Path, index: u32) -> io::Result<Opened> {
        let path = dir.join(name(index));
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let capacity = file.metadata()?.len();
        if capacity < FIRST_FRAME {
            let mut head = vec![0u8; capacity as usize];
            file.read_exact_at(&mut head, 0)?;
            if MAGIC.starts_with(&head) || MAGIC_V1.starts_with(&head) {
                return Ok(Opened::Unfinished);
            }
            return Ok(Opened::Damaged {
                offset: 0,
                reason: "the segment is shorter than its header".into(),
            });
        }
        let mut magic = [0u8; MAGIC.len()];
        file.read_exact_at(&mut magic, 0)?;
        let mut segment = Segment {
            path,
            file,
            capacity,
            data_start: FIRST_FRAME,
        };
        if &magic == MAGIC_V1 {
            return Ok(Opened::Segment(segment));
        }
        if &magic != MAGIC {
            return Ok(Opened::Damaged {
                offset: 0,
                reason: "the file is not an Infinisheet log segment".into(),
            });
        }
        let damaged = |reason: String| Opened::Damaged {
            offset: FIRST_FRAME,
            reason,
        };
        Ok(match segment.read(FIRST_FRAME)? {
            Read::Frame(Record::Begin { index: found, .. }, _) if found != index => damaged(
                format!("the segment's header names segment {found}, not {index}"),
            ),
            Read::Frame(Record::Begin { capacity: made, .. }, _) if made != capacity => {
                damaged(format!(
                    "the segment was made {made} bytes long and is {capacity}: it was cut or extended"
                ))
            }
            Read::Frame(Record::Begin { .. }, len) => {
                segment.data_start = FIRST_FRAME + len;
                Opened::Segment(segment)
            }
            _ => damaged("the segment's begin frame is missing or damaged".into()),
        })
    }

    /// The frames from `offset` on, read in large pieces.
    pub(crate) fn frames(&self, offset: u64) -> Frames<'_> {
        Frames {
            segment: self,
            at: offset,
            buffer: Bytes::new(),
            buffer_at: 0,
            read_ahead: FIRST_READ,
            last: Bytes::new(),
        }
    }

    /// Reads the frame at `offset`.
    pub(crate) fn read(&self, offset: u64) -> io::Result<Read> {
        if offset + HEADER as u64 > self.capacity {
            return Ok(Read::End);
        }
        let mut header = [0u8; HEADER];
        self.file.read_exact_at(&mut header, offset)?;
        let (len, crc) = match frame::parse_header(&header) {
            Header::Zero => return Ok(Read::End),
            Header::Bad => return Ok(Read::Bad("a frame header is damaged")),
            Header::Frame { len, crc } => (len, crc),
        };
        let whole = frame::frame_len(len as usize) as u64;
        if offset + whole > self.capacity {
            return Ok(Read::Bad("a frame runs past the end of its segment"));
        }
        let mut body = vec![0u8; len as usize];
        self.file.read_exact_at(&mut body, offset + HEADER as u64)?;
        if !frame::body_ok(&body, crc) {
            return Ok(Read::Bad("a frame's checksum does not match its contents"));
        }
        match frame::decode(&body) {
            Ok(record) => Ok(Read::Frame(record, whole)),
            Err(reason) => Ok(Read::Bad(reason)),
        }
    }

    /// What lies at or after `from` (frames are 8-byte aligned): the
    /// first valid frame, else whether anything is not zero. Tells a torn
    /// tail (nothing valid after it) from damage in the middle of the data.
    /// Reads in pieces, so it holds little memory however much it reads.
    pub(crate) fn after(&self, from: u64) -> io::Result<After> {
        let mut at = from.div_ceil(8) * 8;
        let mut piece = vec![0u8; READ_AHEAD];
        let mut dirty = false;
        while at + 8 <= self.capacity {
            let n = ((self.capacity - at) as usize).min(piece.len()) / 8 * 8;
            self.file.read_exact_at(&mut piece[..n], at)?;
            // Whole blocks of zeros first (the common case, and fast),
            // then the words of a block that is not.
            for (b, block) in piece[..n].chunks(4096).enumerate() {
                if block.iter().fold(0u8, |acc, b| acc | b) == 0 {
                    continue;
                }
                for (i, word) in block.chunks_exact(8).enumerate() {
                    if word.iter().all(|b| *b == 0) {
                        continue;
                    }
                    dirty = true;
                    let here = at + (b * 4096 + i * 8) as u64;
                    if self.valid_frame_at(here)? {
                        return Ok(After::Frame(here));
                    }
                }
            }
            at += n as u64;
        }
        Ok(if dirty { After::Garbage } else { After::Zeros })
    }

    /// Whether a whole frame with a valid checksum starts at `at`.
    fn valid_frame_at(&self, at: u64) -> io::Result<bool> {
        if at + HEADER as u64 > self.capacity {
            return Ok(false);
        }
        let mut header = [0u8; HEADER];
        self.file.read_exact_at(&mut header, at)?;
        let Header::Frame { len, crc } = frame::parse_header(&header) else {
            return Ok(false);
        };
        if at + HEADER as u64 + u64::from(len) > self.capacity {
            return Ok(false);
        }
        let mut body = vec![0u8; len as usize];
        self.file.read_exact_at(&mut body, at + HEADER as u64)?;
        Ok(frame::body_ok(&body, crc))
    }

    /// Overwrites `[from, capacity)` with zeros where it is not zero
    /// already, and syncs: removes a torn tail so later frames written there
    /// are never mistaken for damage.
    pub(crate) fn zero_from(&self, from: u64) -> io::Result<()> {
        if from >= self.capacity {
            return Ok(());
        }
        let mut rest = vec![0u8; (self.capacity - from) as usize];
        self.file.read_exact_at(&mut rest, from)?;
        if let Some(last) = rest.iter().rposition(|b| *b != 0) {
            self.file.write_all_at(&vec![0u8; last + 1], from)?;
            self.file.sync_data()?;
        }
        Ok(())
    }
}

/// How much a [`Frames`] cursor reads at once at most: many small frames
/// in one read, a large one whole.
const READ_AHEAD: usize = 256 << 10;
/// What its first read takes: enough for a few frames, little for a check
/// that finds nothing new (every operation catches up first).
const FIRST_READ: usize = 4 << 10;

/// A cursor over the frames of a segment, reading the file in large pieces
/// (replaying or reading many small frames with a read each would cost a
/// system call per frame).
pub(crate) struct Frames<'a> {
    segment: &'a Segment,
    /// Where the next frame starts.
    at: u64,
    buffer: Bytes,
    /// Where in the file `buffer` starts.
    buffer_at: u64,
    /// How much the next read takes: doubled after each, up to
    /// [`READ_AHEAD`].
    read_ahead: usize,
    /// The bytes of the frame `next` returned last.
    last: Bytes,
}

impl Frames<'_> {
    /// Where the next frame starts.
    pub(crate) fn offset(&self) -> u64 {
        self.at
    }

    /// The whole frame `next` returned last (header included): the
    /// offsets of decoded payloads are relative to it.
    pub(crate) fn frame(&self) -> &Bytes {
        &self.last
    }

    /// `len` bytes at `at` (within the file's capacity), from the buffer or
    /// read into it.
    fn bytes(&mut self, at: u64, len: usize) -> io::Result<Bytes> {
        let end = at + len as u64;
        let buffered = self.buffer_at + self.buffer.len() as u64;
        if at < self.buffer_at || end > buffered {
            let want = (len.max(self.read_ahead) as u64).min(self.segment.capacity - at);
            self.read_ahead = (self.read_ahead * 2).min(READ_AHEAD);
            let mut fresh = vec![0u8; want as usize];
            self.segment.file.read_exact_at(&mut fresh, at)?;
            self.buffer = Bytes::from(fresh);
            self.buffer_at = at;
        }
        let from = (at - self.buffer_at) as usize;
        Ok(self.buffer.slice(from..from + len))
    }

    /// Reads the next frame, as [`Segment::read`] does, and moves past it
    /// if it is one.
    pub(crate) fn next(&mut self) -> io::Result<Read> {
        let at = self.at;
        if at + HEADER as u64 > self.segment.capacity {
            return Ok(Read::End);
        }
        let head = self.bytes(at, HEADER)?;
        let mut header = [0u8; HEADER];
        header.copy_from_slice(&head);
        let (len, crc) = match frame::parse_header(&header) {
            Header::Zero => return Ok(Read::End),
            Header::Bad => return Ok(Read::Bad("a frame header is damaged")),
            Header::Frame { len, crc } => (len, crc),
        };
        let whole = frame::frame_len(len as usize) as u64;
        if at + whole > self.segment.capacity {
            return Ok(Read::Bad("a frame runs past the end of its segment"));
        }
        let bytes = self.bytes(at, whole as usize)?;
        let body = &bytes[HEADER..HEADER + len as usize];
        if !frame::body_ok(body, crc) {
            return Ok(Read::Bad("a frame's checksum does not match its contents"));
        }
        match frame::decode(body) {
            Ok(record) => {
                self.at += whole;
                self.last = bytes;
                Ok(Read::Frame(record, whole))
            }
            Err(reason) => Ok(Read::Bad(reason)),
        }
    }
}
