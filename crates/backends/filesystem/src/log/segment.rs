//! Segment files: creating them preallocated, reading frames from them, and
//! telling a torn tail from corruption.

use super::frame::{self, HEADER, Header, MAGIC, Record};
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Where the first frame of a segment starts.
pub(crate) const FIRST_FRAME: u64 = MAGIC.len() as u64;

/// One segment file, open for reading and writing.
#[derive(Debug)]
pub(crate) struct Segment {
    pub(crate) path: PathBuf,
    pub(crate) file: File,
    /// The file's size: frames fit below it.
    pub(crate) capacity: u64,
}

/// The file name of segment `index`.
pub(crate) fn name(index: u32) -> String {
    format!("{index:010}.seg")
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

impl Segment {
    /// Creates segment `index` in `dir` with `capacity` bytes, written as
    /// zeros so later appends only overwrite allocated blocks, synced.
    pub(crate) fn create(dir: &Path, index: u32, capacity: u64) -> io::Result<Segment> {
        let path = dir.join(name(index));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)?;
        file.write_all(MAGIC)?;
        let zeros = vec![0u8; 1 << 20];
        let mut left = capacity.saturating_sub(FIRST_FRAME);
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            file.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        file.sync_all()?;
        File::open(dir)?.sync_all()?;
        Ok(Segment {
            path,
            file,
            capacity: capacity.max(FIRST_FRAME),
        })
    }

    /// Opens an existing segment, checking its magic.
    pub(crate) fn open(dir: &Path, index: u32) -> io::Result<Result<Segment, &'static str>> {
        let path = dir.join(name(index));
        let file = OpenOptions::new().read(true).write(true).open(&path)?;
        let capacity = file.metadata()?.len();
        let mut magic = [0u8; MAGIC.len()];
        if capacity < FIRST_FRAME {
            return Ok(Err("the segment is shorter than its header"));
        }
        file.read_exact_at(&mut magic, 0)?;
        if &magic != MAGIC {
            return Ok(Err("the file is not an Infinisheet log segment"));
        }
        Ok(Ok(Segment {
            path,
            file,
            capacity,
        }))
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
