//! The log's state in one process: its bounds, the metadata of the entries
//! that have any, the first id of every segment and a sparse index of where
//! entries sit in the segments read so far, and where the next frame goes.
//! Nothing in it is kept per entry: payloads are read from the segments
//! when queried.
//!
//! Built from the newest checkpoint and the frames after it (or, without a
//! usable checkpoint, by replaying every segment), kept current by
//! replaying what other processes appended, and changed only after the
//! frame that records a change is durable.

mod open;
mod read;
mod write;

use super::FsLogOptions;
use super::checkpoint::{Mark, Point};
use super::frame::{HEADER, Record};
use super::segment::{self, After, FIRST_FRAME, Opened, Read, Segment};
use crate::error::{BACKEND, io};
use infinisheet_event_log::{
    EntryMetadata, MetadataUpdate, SequenceId, SnapshotValue, StorageError,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};

/// A segment's sparse index has a point at least every this many bytes.
const POINT_BYTES: u64 = 64 << 10;
/// Segments other than the newest kept open at once.
const OPEN_SEGMENTS: usize = 8;

/// Why the state could not be built or brought up to date.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The files are damaged at this place.
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
    Storage(StorageError),
}

impl From<StorageError> for Fault {
    fn from(err: StorageError) -> Self {
        Fault::Storage(err)
    }
}

impl From<Fault> for StorageError {
    fn from(fault: Fault) -> Self {
        match fault {
            Fault::Storage(err) => err,
            Fault::Corrupt {
                file,
                offset,
                reason,
            } => StorageError::corrupt(
                BACKEND,
                format!("{} is damaged at byte {offset}: {reason}", file.display()),
            ),
        }
    }
}

/// What the state knows of one live segment.
#[derive(Debug)]
struct SegmentInfo {
    /// The id of its first entry, or the log's end where it began if it
    /// holds none: its entries have ids from here on, every older
    /// segment's are below.
    first: SequenceId,
    /// Whether an entries frame of it was replayed (then `first` is that
    /// frame's first id).
    has_entries: bool,
    /// Its sparse index, in order of offset (and of id); `None` until the
    /// segment is read (a segment older than the checkpoint).
    points: Option<Vec<Point>>,
}

impl SegmentInfo {
    fn new(first: SequenceId, data_start: u64) -> Self {
        SegmentInfo {
            first,
            has_entries: false,
            points: Some(vec![Point {
                id: first,
                offset: data_start,
            }]),
        }
    }
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) dir: PathBuf,
    pub(crate) options: FsLogOptions,
    infos: BTreeMap<u32, SegmentInfo>,
    /// The open segment files: always the tail, and a few older ones
    /// (`recent`, least recently used first).
    files: BTreeMap<u32, Segment>,
    recent: VecDeque<u32>,
    /// The segment new frames go to, and where in it.
    tail: u32,
    offset: u64,
    /// The tail's last frame (for the checkpoint).
    mark: Option<Mark>,
    /// The tail segment ends with a seal; the next frame starts a new one.
    sealed: bool,
    /// Whether `start` is known yet while replaying.
    started: bool,
    pub(crate) start: SequenceId,
    pub(crate) end: SequenceId,
    /// The metadata of every live entry that has any.
    metadata: BTreeMap<SequenceId, EntryMetadata>,
    /// Ids of live entries whose `snapshot` is set.
    pub(crate) snapshots: BTreeSet<SequenceId>,
    /// A write failed part way: reload from disk before the next operation.
    stale: bool,
    /// Replaying on open (not catching up with other processes).
    loading: bool,
    /// Replaying every segment on open: records may refer to entries of
    /// segments a truncate deleted (see `gone_before`).
    from_scratch: bool,
    /// While replaying on open: records so far refer to entries below this
    /// id that no remaining segment holds (where it was noticed). Legitimate
    /// only if a later truncate record discards them; otherwise damage.
    missing: Option<(SequenceId, PathBuf, u64)>,
    /// Bytes of frames written since the last checkpoint.
    since_checkpoint: u64,
}

fn corrupt(file: &Path, offset: u64, reason: impl Into<String>) -> Fault {
    Fault::Corrupt {
        file: file.to_owned(),
        offset,
        reason: reason.into(),
    }
}

/// Opens segment `index`; a header that is not whole is damage.
fn open_segment(dir: &Path, index: u32) -> Result<Segment, Fault> {
    whole_segment(dir, index, Segment::open(dir, index))
}

/// The segment an open found, or the damage or error it met.
fn whole_segment(
    dir: &Path,
    index: u32,
    opened: std::io::Result<Opened>,
) -> Result<Segment, Fault> {
    let path = dir.join(segment::name(index));
    match opened {
        Ok(Opened::Segment(segment)) => Ok(segment),
        Ok(Opened::Unfinished) => Err(corrupt(&path, 0, "the segment is shorter than its header")),
        Ok(Opened::Damaged { offset, reason }) => Err(corrupt(&path, offset, reason)),
        Err(err) => Err(io("opening", &path.display().to_string(), err).into()),
    }
}

/// The header of a whole frame.
fn header_of(frame: &[u8]) -> [u8; HEADER] {
    let mut header = [0u8; HEADER];
    header.copy_from_slice(&frame[..HEADER]);
    header
}

impl State {
    fn empty(dir: &Path, options: FsLogOptions) -> State {
        State {
            dir: dir.to_owned(),
            options,
            infos: BTreeMap::new(),
            files: BTreeMap::new(),
            recent: VecDeque::new(),
            tail: 1,
            offset: FIRST_FRAME,
            mark: None,
            sealed: false,
            started: false,
            start: 0,
            end: 0,
            metadata: BTreeMap::new(),
            snapshots: BTreeSet::new(),
            stale: false,
            loading: true,
            from_scratch: true,
            missing: None,
            since_checkpoint: 0,
        }
    }

    /// Reads and applies frames of the tail segment from the current offset
    /// until the end of its data or a seal. `last`: no segment follows, so a
    /// bad frame may be a torn tail. `thorough`: also check that nothing
    /// valid follows the end of the data (on open; too slow for every call).
    fn scan(&mut self, last: bool, thorough: bool) -> Result<(), Fault> {
        // Out of the map while its frames are applied (which changes the
        // state); a truncate never closes the tail.
        let segment = self
            .files
            .remove(&self.tail)
            .ok_or_else(|| corrupt(&self.tail_path(), 0, "the newest segment is not open"))?;
        let scanned = self.scan_in(&segment, last, thorough);
        self.files.insert(self.tail, segment);
        scanned
    }

    fn scan_in(&mut self, segment: &Segment, last: bool, thorough: bool) -> Result<(), Fault> {
        let path = &segment.path;
        let shown = || path.display().to_string();
        let mut frames = segment.frames(self.offset);
        loop {
            let at = frames.offset();
            match frames.next().map_err(|err| io("reading", &shown(), err))? {
                Read::End if !last => {
                    // Every segment but the newest ends with a seal: data
                    // that stops early was cut or zeroed.
                    return Err(corrupt(
                        path,
                        at,
                        "the data ends without a seal, but a newer segment follows",
                    ));
                }
                Read::End => {
                    if thorough {
                        match segment
                            .after(at)
                            .map_err(|err| io("reading", &shown(), err))?
                        {
                            After::Frame(found) => {
                                return Err(corrupt(
                                    path,
                                    at,
                                    format!(
                                        "the data stops here but a frame follows at byte {found}"
                                    ),
                                ));
                            }
                            After::Garbage => segment
                                .zero_from(at)
                                .map_err(|err| io("clearing a torn tail of", &shown(), err))?,
                            After::Zeros => {}
                        }
                    }
                    return Ok(());
                }
                Read::Bad(reason) => {
                    let after = segment
                        .after(at + 8)
                        .map_err(|err| io("reading", &shown(), err))?;
                    if last && !matches!(after, After::Frame(_)) {
                        // A torn append that was never acknowledged.
                        segment
                            .zero_from(at)
                            .map_err(|err| io("clearing a torn tail of", &shown(), err))?;
                        return Ok(());
                    }
                    return Err(corrupt(path, at, reason));
                }
                Read::Frame(Record::Seal, _) => {
                    self.offset = frames.offset();
                    self.sealed = true;
                    return Ok(());
                }
                Read::Frame(record, _) => {
                    self.note_point(at);
                    self.apply(record, at)?;
                    self.mark = Some(Mark {
                        offset: at,
                        header: header_of(frames.frame()),
                    });
                    self.offset = frames.offset();
                }
            }
        }
    }

    fn tail_path(&self) -> PathBuf {
        self.dir.join(segment::name(self.tail))
    }

    /// Adds a point to the tail's sparse index before a frame at `at`, if
    /// the last point is far enough back.
    fn note_point(&mut self, at: u64) {
        let end = self.end;
        if let Some(points) = self
            .infos
            .get_mut(&self.tail)
            .and_then(|info| info.points.as_mut())
            && points
                .last()
                .is_none_or(|last| at >= last.offset + POINT_BYTES)
        {
            points.push(Point {
                id: end,
                offset: at,
            });
        }
    }

    /// Applies a record read from the tail segment at `at`.
    fn apply(&mut self, record: Record, at: u64) -> Result<(), Fault> {
        match record {
            Record::Entries { first, entries, .. } => {
                if !self.started {
                    (self.start, self.end, self.started) = (first, first, true);
                } else if first > self.end && self.gone_before(first, at) {
                    (self.start, self.end) = (first, first);
                }
                if first != self.end {
                    return Err(corrupt(
                        &self.tail_path(),
                        at,
                        format!(
                            "entries from {first} follow entry {}: entries are missing or repeated",
                            self.end
                        ),
                    ));
                }
                self.add_entries(entries.into_iter().map(|entry| entry.metadata));
            }
            Record::Metadata { seq, update } => {
                if !self.started || seq < self.start {
                    return Ok(()); // about an entry truncated away
                }
                if seq >= self.end {
                    if self.gone_before(seq + 1, at) {
                        return Ok(()); // about an entry in a deleted segment
                    }
                    return Err(corrupt(
                        &self.tail_path(),
                        at,
                        format!("metadata of entry {seq}, which does not exist"),
                    ));
                }
                self.apply_metadata(seq, update);
            }
            Record::Truncate { start } => {
                if self.missing.as_ref().is_some_and(|(id, ..)| start >= *id) {
                    self.missing = None;
                }
                if !self.started {
                    (self.start, self.end, self.started) = (start, start, true);
                } else if start > self.end && self.replaying_nothing_live() {
                    // The entries below `start` were in deleted segments;
                    // this record discards them.
                    (self.start, self.end) = (start, start);
                } else if start > self.end {
                    return Err(corrupt(
                        &self.tail_path(),
                        at,
                        format!("truncate to {start}, past the end {}", self.end),
                    ));
                } else if start > self.start {
                    let dead = self.apply_truncate(start);
                    if self.loading {
                        self.delete_segments(dead);
                    }
                }
            }
            Record::Seal => {}
            Record::Begin { .. } => {
                return Err(corrupt(
                    &self.tail_path(),
                    at,
                    "a segment's begin frame in the middle of its data",
                ));
            }
        }
        Ok(())
    }

    /// Records entries appended at the end (in the tail), given their
    /// metadata.
    pub(crate) fn add_entries(&mut self, metadata: impl ExactSizeIterator<Item = EntryMetadata>) {
        if metadata.len() > 0
            && let Some(info) = self.infos.get_mut(&self.tail)
            && !info.has_entries
        {
            (info.first, info.has_entries) = (self.end, true);
        }
        for entry in metadata {
            if entry != EntryMetadata::default() {
                if entry.snapshot.is_some() {
                    self.snapshots.insert(self.end);
                }
                self.metadata.insert(self.end, entry);
            }
            self.end += 1;
        }
    }

    /// Replaying every segment on open, with no live entry so far: the
    /// only state in which records may refer to entries of deleted
    /// segments.
    fn replaying_nothing_live(&self) -> bool {
        self.loading && self.from_scratch && self.start == self.end
    }

    /// On open, with no live entry so far: a record refers to entries from
    /// the current end up to (not including) `id` that no remaining segment
    /// holds. A truncate deletes a segment once all its entries are gone,
    /// while older records about them (an earlier truncate, a metadata
    /// change) may sit in the next segment, which stays. Such a gap is
    /// accepted, and remembered as `missing` until a later truncate record
    /// discards it; one that never is, is damage. Returns whether the gap
    /// is accepted (never while catching up, which reads every segment).
    fn gone_before(&mut self, id: SequenceId, at: u64) -> bool {
        if !self.replaying_nothing_live() {
            return false;
        }
        if self.missing.as_ref().is_none_or(|(known, ..)| id > *known) {
            self.missing = Some((id, self.tail_path(), at));
        }
        true
    }

    pub(crate) fn apply_metadata(&mut self, seq: SequenceId, update: MetadataUpdate) {
        let mut metadata = self.metadata.remove(&seq).unwrap_or_default();
        update.apply(&mut metadata);
        if metadata.snapshot.is_some() {
            self.snapshots.insert(seq);
        } else {
            self.snapshots.remove(&seq);
        }
        if metadata != EntryMetadata::default() {
            self.metadata.insert(seq, metadata);
        }
    }

    /// The segment that holds entry `id` (or would: the newest whose first
    /// id is at most `id`).
    fn segment_of(&self, id: SequenceId) -> u32 {
        self.infos
            .iter()
            .rev()
            .find(|(_, info)| info.first <= id)
            .map_or(self.tail, |(index, _)| *index)
    }

    /// Drops the entries before `start`, and closes the segments that now
    /// hold no live entry (never the tail). Returns those segments' paths:
    /// the process that truncates, or recovers from a crash during a
    /// truncate, deletes the files; one that only learns of it just closes
    /// them, so deleted segments do not stay open.
    pub(crate) fn apply_truncate(&mut self, start: SequenceId) -> Vec<PathBuf> {
        self.metadata = self.metadata.split_off(&start);
        self.snapshots = self.snapshots.split_off(&start);
        self.start = start;
        let first_live = if start == self.end {
            self.tail
        } else {
            self.segment_of(start)
        };
        let dead: Vec<u32> = self
            .infos
            .range(..first_live.min(self.tail))
            .map(|(i, _)| *i)
            .collect();
        self.recent.retain(|i| !dead.contains(i));
        dead.into_iter()
            .map(|index| {
                self.infos.remove(&index);
                self.files.remove(&index);
                self.dir.join(segment::name(index))
            })
            .collect()
    }

    /// Brings the state up to date with what other processes wrote (the
    /// caller holds the log's file lock).
    pub(crate) fn catch_up(&mut self) -> Result<(), Fault> {
        if self.stale {
            return self.reload();
        }
        loop {
            self.scan(true, false)?;
            if !self.sealed {
                return Ok(());
            }
            let next = self.tail + 1;
            if !self.dir.join(segment::name(next)).exists() {
                // Sealed with no successor yet, unless this process fell so
                // far behind that a truncate removed segments it still needs.
                if open::segment_indices(&self.dir)?
                    .last()
                    .is_some_and(|last| *last > next)
                {
                    return self.reload();
                }
                return Ok(());
            }
            let segment = open_segment(&self.dir, next)?;
            self.begin_tail(next, segment);
        }
    }

    /// Makes `segment`, just opened or created, the tail.
    fn begin_tail(&mut self, index: u32, segment: Segment) {
        self.infos
            .insert(index, SegmentInfo::new(self.end, segment.data_start));
        (self.offset, self.sealed, self.mark) = (segment.data_start, false, None);
        self.files.insert(index, segment);
        self.recent.push_back(self.tail);
        self.tail = index;
        self.close_extra_files();
    }

    /// Closes the least recently used segments beyond the few kept open.
    fn close_extra_files(&mut self) {
        while self.recent.len() > OPEN_SEGMENTS {
            if let Some(index) = self.recent.pop_front()
                && index != self.tail
            {
                self.files.remove(&index);
            }
        }
    }

    fn reload(&mut self) -> Result<(), Fault> {
        *self = State::load(&self.dir, self.options)?;
        Ok(())
    }

    /// The newest snapshot among the live entries.
    pub(crate) fn latest_snapshot(&self) -> Option<SnapshotValue> {
        let seq = *self.snapshots.last()?;
        Some(SnapshotValue {
            sequence_id: seq,
            blob_id: self.metadata.get(&seq)?.snapshot.clone()?,
        })
    }
}
