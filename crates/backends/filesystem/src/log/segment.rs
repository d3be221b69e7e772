//! Segment files: creating them preallocated and whole (in a temporary file
//! renamed into place), opening them with their header checked, reading
//! frames from them, and telling a torn tail from corruption.

use super::frame::{self, BEGIN_FRAME, HEADER, Header, MAGIC, MAGIC_V1, Record};
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

    /// The offset of the first valid frame at or after `from` (frames are
    /// 8-byte aligned), if any. Used to tell a torn tail (nothing valid
    /// after it) from damage in the middle of the data.
    pub(crate) fn valid_frame_from(&self, from: u64) -> io::Result<Option<u64>> {
        let from = from.div_ceil(8) * 8;
        if from >= self.capacity {
            return Ok(None);
        }
        let mut rest = vec![0u8; (self.capacity - from) as usize];
        self.file.read_exact_at(&mut rest, from)?;
        let mut at = 0;
        while at + HEADER <= rest.len() {
            if rest[at..at + 8].iter().any(|b| *b != 0) {
                let mut header = [0u8; HEADER];
                header.copy_from_slice(&rest[at..at + HEADER]);
                if let Header::Frame { len, crc } = frame::parse_header(&header) {
                    let end = at + HEADER + len as usize;
                    if end <= rest.len() && frame::body_ok(&rest[at + HEADER..end], crc) {
                        return Ok(Some(from + at as u64));
                    }
                }
            }
            at += 8;
        }
        Ok(None)
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
