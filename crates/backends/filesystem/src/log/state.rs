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

use super::FsLogOptions;
use super::checkpoint::{self, Checkpoint, Mark, Point};
use super::frame::{self, DecodedEntry, HEADER, Record, SEAL_FRAME};
use super::segment::{self, After, FIRST_FRAME, Opened, Read, Segment};
use crate::error::{BACKEND, io};
use bytes::Bytes;
use infinisheet_event_log::{
    AppendToken, EntryMetadata, LogEntry, MetadataUpdate, SequenceId, SnapshotValue, StorageError,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
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

fn segment_indices(dir: &Path) -> Result<Vec<u32>, StorageError> {
    let shown = dir.display().to_string();
    let mut indices = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(|err| io("listing", &shown, err))? {
        let entry = entry.map_err(|err| io("listing", &shown, err))?;
        if let Some(index) = entry.file_name().to_str().and_then(segment::parse_name) {
            indices.push(index);
        }
    }
    indices.sort_unstable();
    Ok(indices)
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

/// Removes the temporary files of segment creations and checkpoints that
/// did not finish.
fn remove_unfinished_creations(dir: &Path) -> Result<(), StorageError> {
    let shown = dir.display().to_string();
    let mut removed = false;
    for entry in std::fs::read_dir(dir).map_err(|err| io("listing", &shown, err))? {
        let entry = entry.map_err(|err| io("listing", &shown, err))?;
        let name = entry.file_name();
        if name
            .to_str()
            .is_some_and(|name| segment::is_temp_name(name) || name == checkpoint::TEMP_FILE)
        {
            std::fs::remove_file(entry.path())
                .map_err(|err| io("removing", &entry.path().display().to_string(), err))?;
            removed = true;
        }
    }
    if removed {
        sync_dir(dir)?;
    }
    Ok(())
}

fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    File::open(dir)
        .and_then(|file| file.sync_all())
        .map_err(|err| io("syncing", &dir.display().to_string(), err))
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

    /// Builds the state of the log in `dir`, creating the first segment if
    /// there is none: from the checkpoint and the frames after it when the
    /// checkpoint fits the segments, else by replaying every segment. A
    /// torn frame at the very end of the data (nothing valid after it) is
    /// an append that was never acknowledged: it is zeroed. Anything else
    /// that does not fit is corruption.
    pub(crate) fn load(dir: &Path, options: FsLogOptions) -> Result<State, Fault> {
        remove_unfinished_creations(dir)?;
        let indices = segment_indices(dir)?;
        if let Some(pair) = indices.windows(2).find(|pair| pair[1] != pair[0] + 1) {
            return Err(corrupt(
                &dir.join(segment::name(pair[1])),
                0,
                format!(
                    "the segment follows segment {}: the segments between are missing",
                    pair[0]
                ),
            ));
        }
        let mut state = match Self::from_checkpoint(dir, options, &indices)? {
            Some(state) => state,
            None => Self::from_segments(dir, options, &indices)?,
        };
        state.started = true;
        state.loading = false;
        Ok(state)
    }

    /// Replays every segment.
    fn from_segments(dir: &Path, options: FsLogOptions, indices: &[u32]) -> Result<State, Fault> {
        let mut state = State::empty(dir, options);
        // Segment 1 is gone only if a truncate deleted it: replay as if
        // entries before the first record had been there, so the gap they
        // leave must be discarded by a truncate record (see `gone_before`).
        state.started = indices.first().is_some_and(|first| *first > 1);
        state.replay(indices, None)?;
        if state.infos.is_empty() {
            let segment = Segment::create(dir, 1, options.segment_bytes).map_err(|err| {
                io(
                    "creating the first segment in",
                    &dir.display().to_string(),
                    err,
                )
            })?;
            (state.tail, state.offset, state.sealed) = (1, segment.data_start, false);
            state
                .infos
                .insert(1, SegmentInfo::new(0, segment.data_start));
            state.files.insert(1, segment);
        }
        if let Some((id, file, offset)) = state.missing.take() {
            return Err(corrupt(
                &file,
                offset,
                format!("entries before {id} are missing and no later truncate discards them"),
            ));
        }
        if indices.len() > 1 {
            // The next open need not replay them all again.
            state.since_checkpoint = u64::MAX;
            state.checkpoint_if_due();
        }
        Ok(state)
    }

    /// The state the checkpoint holds, brought up to date with the frames
    /// after it; `None` if there is no checkpoint or it does not fit the
    /// segments.
    fn from_checkpoint(
        dir: &Path,
        options: FsLogOptions,
        indices: &[u32],
    ) -> Result<Option<State>, Fault> {
        let Some(saved) = Checkpoint::read(dir) else {
            return Ok(None);
        };
        let (Some(first_live), Some(&(last_listed, _))) =
            (saved.segments.first(), saved.segments.last())
        else {
            return Ok(None);
        };
        if last_listed != saved.tail || !indices.contains(&saved.tail) {
            return Ok(None);
        }
        // A newest segment that is not whole is for a replay to judge.
        let Ok(Opened::Segment(tail)) = Segment::open(dir, saved.tail) else {
            return Ok(None);
        };
        let fits = match saved.mark {
            None => saved.offset == tail.data_start,
            Some(mark) => {
                let mut header = [0u8; HEADER];
                mark.end() == Some(saved.offset)
                    && mark.offset >= tail.data_start
                    && saved.offset + SEAL_FRAME as u64 <= tail.capacity
                    && tail.file.read_exact_at(&mut header, mark.offset).is_ok()
                    && header == mark.header
            }
        };
        if !fits {
            return Ok(None);
        }
        let mut state = State::empty(dir, options);
        state.from_scratch = false;
        state.started = true;
        (state.start, state.end) = (saved.start, saved.end);
        for &(index, first) in &saved.segments {
            state.infos.insert(
                index,
                SegmentInfo {
                    first,
                    has_entries: true,
                    points: None,
                },
            );
        }
        if let Some(info) = state.infos.get_mut(&saved.tail) {
            info.points = Some(saved.points);
        }
        state.snapshots = saved
            .metadata
            .iter()
            .filter(|(_, m)| m.snapshot.is_some())
            .map(|(seq, _)| *seq)
            .collect();
        state.metadata = saved.metadata;
        // Segments older than every live one are leftovers of a truncate
        // that died before it deleted them.
        let dead: Vec<PathBuf> = indices
            .iter()
            .filter(|i| **i < first_live.0)
            .map(|i| dir.join(segment::name(*i)))
            .collect();
        state.delete_segments(dead);
        let rest: Vec<u32> = indices
            .iter()
            .copied()
            .filter(|i| *i >= saved.tail)
            .collect();
        state.mark = saved.mark;
        state.replay(&rest, Some((tail, saved.offset)))?;
        if let Some(missing) = state.infos.keys().find(|i| !indices.contains(i)) {
            return Err(corrupt(
                &dir.join(segment::name(*missing)),
                0,
                "the segment holds live entries but is missing",
            ));
        }
        Ok(Some(state))
    }

    /// Replays the segments `indices` in order; with `resume`, the first of
    /// them is already open and replay goes on from that offset in it.
    fn replay(&mut self, indices: &[u32], resume: Option<(Segment, u64)>) -> Result<(), Fault> {
        let mut resume = resume;
        let last = indices.last().copied();
        for index in indices.iter().copied() {
            let is_last = Some(index) == last;
            let path = self.dir.join(segment::name(index));
            let (segment, offset) = match resume.take() {
                Some(resumed) => resumed,
                None => {
                    let segment = match Segment::open(&self.dir, index) {
                        // A creation in place (by the first format) that
                        // died: it never held a frame if it is the newest
                        // segment and the one before it is sealed (or it
                        // is the log's only segment).
                        Ok(Opened::Unfinished)
                            if is_last
                                && (self.sealed || (index == 1 && self.infos.is_empty())) =>
                        {
                            std::fs::remove_file(&path)
                                .map_err(|err| io("removing", &path.display().to_string(), err))?;
                            sync_dir(&self.dir)?;
                            break;
                        }
                        opened => whole_segment(&self.dir, index, opened)?,
                    };
                    let start = segment.data_start;
                    self.infos
                        .insert(index, SegmentInfo::new(self.end, segment.data_start));
                    self.mark = None;
                    (segment, start)
                }
            };
            self.offset = offset;
            self.files.insert(index, segment);
            let previous = std::mem::replace(&mut self.tail, index);
            if previous != index && self.files.contains_key(&previous) {
                self.recent.push_back(previous);
                self.close_extra_files();
            }
            self.sealed = false;
            self.scan(is_last, true)?;
        }
        Ok(())
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
                if segment_indices(&self.dir)?
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

    /// Writes `frame` after the last frame and syncs it; returns the
    /// segment and offset it went to. Rolls over to a new segment when the
    /// frame (and a seal after it) does not fit.
    pub(crate) fn write(&mut self, frame: &[u8]) -> Result<(u32, u64), StorageError> {
        let needed = (frame.len() + SEAL_FRAME) as u64;
        if self.sealed || self.offset + needed > self.files[&self.tail].capacity {
            self.roll_over(needed)?;
        }
        self.note_point(self.offset);
        let segment = &self.files[&self.tail];
        let written = segment
            .file
            .write_all_at(frame, self.offset)
            .and_then(|()| segment.file.sync_data());
        if let Err(err) = written {
            // Part of the frame may be on disk: rebuild from the files.
            self.stale = true;
            return Err(io("appending to", &segment.path.display().to_string(), err));
        }
        let at = (self.tail, self.offset);
        self.mark = Some(Mark {
            offset: self.offset,
            header: header_of(frame),
        });
        self.offset += frame.len() as u64;
        self.since_checkpoint = self.since_checkpoint.saturating_add(frame.len() as u64);
        Ok(at)
    }

    fn roll_over(&mut self, needed: u64) -> Result<(), StorageError> {
        if !self.sealed {
            let segment = &self.files[&self.tail];
            let sealed = segment
                .file
                .write_all_at(&frame::seal_frame(), self.offset)
                .and_then(|()| segment.file.sync_data());
            if let Err(err) = sealed {
                self.stale = true;
                return Err(io("sealing", &segment.path.display().to_string(), err));
            }
            self.offset += SEAL_FRAME as u64;
            self.sealed = true;
        }
        let next = self.tail + 1;
        let capacity = self.options.segment_bytes.max(segment::DATA_START + needed);
        let path = self.dir.join(segment::name(next));
        let shown = path.display().to_string();
        // Segments are renamed into place whole, and this process caught up
        // under the lock, so a segment here is one this process renamed into
        // place before a failed directory sync, or damage. An empty one is
        // replaced; one holding frames is damage, never overwritten.
        if path.exists() {
            let empty =
                match Segment::open(&self.dir, next).map_err(|err| io("opening", &shown, err))? {
                    Opened::Segment(leftover) => matches!(
                        leftover
                            .read(leftover.data_start)
                            .map_err(|err| io("reading", &shown, err))?,
                        Read::End
                    ),
                    Opened::Unfinished => true,
                    Opened::Damaged { .. } => false,
                };
            if !empty {
                self.stale = true;
                return Err(StorageError::corrupt(
                    BACKEND,
                    format!("{shown} already exists and holds data this log never replayed"),
                ));
            }
            std::fs::remove_file(&path).map_err(|err| io("replacing", &shown, err))?;
        }
        let segment = Segment::create(&self.dir, next, capacity)
            .map_err(|err| io("creating", &shown, err))?;
        self.begin_tail(next, segment);
        // The next open should not start in a segment a truncate may delete.
        self.since_checkpoint = u64::MAX;
        Ok(())
    }

    /// Writes a checkpoint if enough was written since the last one. A
    /// checkpoint only saves replay, so failing to write one is no error.
    pub(crate) fn checkpoint_if_due(&mut self) {
        if self.since_checkpoint < self.options.checkpoint_bytes || self.sealed {
            return;
        }
        let saved = Checkpoint {
            tail: self.tail,
            offset: self.offset,
            mark: self.mark,
            start: self.start,
            end: self.end,
            segments: self
                .infos
                .iter()
                .map(|(i, info)| (*i, info.first))
                .collect(),
            points: self
                .infos
                .get(&self.tail)
                .and_then(|info| info.points.clone())
                .unwrap_or_default(),
            metadata: self.metadata.clone(),
        };
        if saved.write(&self.dir).is_ok() {
            self.since_checkpoint = 0;
        }
    }

    /// Deletes segment files a truncate left without live entries.
    /// Failures only leave files behind: the next open deletes them.
    pub(crate) fn delete_segments(&self, paths: Vec<PathBuf>) {
        let mut removed = false;
        for path in paths {
            removed |= std::fs::remove_file(&path).is_ok();
        }
        if removed && let Ok(dir) = File::open(&self.dir) {
            let _ = dir.sync_all();
        }
    }

    /// The newest snapshot among the live entries.
    pub(crate) fn latest_snapshot(&self) -> Option<SnapshotValue> {
        let seq = *self.snapshots.last()?;
        Some(SnapshotValue {
            sequence_id: seq,
            blob_id: self.metadata.get(&seq)?.snapshot.clone()?,
        })
    }

    /// Opens segment `index` if it is not open, keeping it among the few
    /// open ones.
    fn open_file(&mut self, index: u32) -> Result<(), Fault> {
        if let Some(at) = self.recent.iter().position(|i| *i == index) {
            self.recent.remove(at);
        }
        if index != self.tail {
            self.recent.push_back(index);
        }
        if !self.files.contains_key(&index) {
            let segment = open_segment(&self.dir, index)?;
            self.files.insert(index, segment);
        }
        self.close_extra_files();
        Ok(())
    }

    /// Builds the sparse index of a segment older than the checkpoint by
    /// reading it whole, checking every frame and that its entries run
    /// from its first id to the next segment's without a gap.
    fn index_segment(&mut self, index: u32) -> Result<(), Fault> {
        self.open_file(index)?;
        let (Some(info), Some(next_first)) = (
            self.infos.get(&index),
            self.infos.range(index + 1..).next().map(|(_, i)| i.first),
        ) else {
            return Ok(());
        };
        let segment = &self.files[&index];
        let shown = || segment.path.display().to_string();
        let mut points = vec![Point {
            id: info.first,
            offset: segment.data_start,
        }];
        let mut expected = info.first;
        let mut frames = segment.frames(segment.data_start);
        loop {
            let at = frames.offset();
            match frames.next().map_err(|err| io("reading", &shown(), err))? {
                Read::End => {
                    return Err(corrupt(
                        &segment.path,
                        at,
                        "the data ends without a seal, but a newer segment follows",
                    ));
                }
                Read::Bad(reason) => return Err(corrupt(&segment.path, at, reason)),
                Read::Frame(Record::Seal, _) => break,
                Read::Frame(record, _) => {
                    if points.last().is_some_and(|p| at >= p.offset + POINT_BYTES) {
                        points.push(Point {
                            id: expected,
                            offset: at,
                        });
                    }
                    if let Record::Entries { first, entries, .. } = record {
                        if first != expected {
                            return Err(corrupt(
                                &segment.path,
                                at,
                                format!("entries from {first} follow entry {expected}"),
                            ));
                        }
                        expected += entries.len() as u64;
                    }
                }
            }
        }
        if expected != next_first {
            return Err(corrupt(
                &segment.path,
                0,
                format!(
                    "the segment ends before entry {expected}, but the next begins at {next_first}"
                ),
            ));
        }
        if let Some(info) = self.infos.get_mut(&index) {
            info.points = Some(points);
        }
        Ok(())
    }

    /// Calls `visit` with every entries frame that holds ids from `from`
    /// on, in order (its first id, its entries, its bytes), until `visit`
    /// returns `false` or the data ends. Every frame read is checked.
    fn walk<F>(&mut self, from: SequenceId, mut visit: F) -> Result<(), Fault>
    where
        F: FnMut(SequenceId, Option<AppendToken>, &[DecodedEntry], &Bytes) -> bool,
    {
        let mut index = self.segment_of(from);
        let mut from = from;
        loop {
            if self.infos.get(&index).is_some_and(|i| i.points.is_none()) {
                self.index_segment(index)?;
            }
            self.open_file(index)?;
            let offset = self
                .infos
                .get(&index)
                .and_then(|info| info.points.as_ref())
                .and_then(|points| points.iter().rev().find(|p| p.id <= from))
                .map_or(self.files[&index].data_start, |p| p.offset);
            let is_tail = index == self.tail;
            let limit = if is_tail { self.offset } else { u64::MAX };
            let segment = &self.files[&index];
            let mut frames = segment.frames(offset);
            loop {
                let at = frames.offset();
                if at >= limit {
                    return Ok(());
                }
                match frames
                    .next()
                    .map_err(|err| io("reading", &segment.path.display().to_string(), err))?
                {
                    Read::End if is_tail => return Ok(()),
                    Read::End => {
                        return Err(corrupt(
                            &segment.path,
                            at,
                            "the data ends without a seal, but a newer segment follows",
                        ));
                    }
                    Read::Bad(reason) => return Err(corrupt(&segment.path, at, reason)),
                    Read::Frame(Record::Seal, _) => break,
                    Read::Frame(
                        Record::Entries {
                            first,
                            token,
                            entries,
                        },
                        _,
                    ) => {
                        let last = first + entries.len() as u64;
                        if last > from {
                            if !visit(first, token, &entries, frames.frame()) {
                                return Ok(());
                            }
                            from = last;
                        }
                    }
                    Read::Frame(..) => {}
                }
            }
            match self.infos.range(index + 1..).next() {
                Some((next, _)) => index = *next,
                None => return Ok(()),
            }
        }
    }

    /// The entries `[from, to)`, at most `max_entries` of them and stopping
    /// once their payloads reach `max_bytes` (at least one).
    pub(crate) fn read(
        &mut self,
        from: SequenceId,
        to: SequenceId,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<LogEntry>, Fault> {
        let mut entries = Vec::new();
        if from >= to {
            return Ok(entries);
        }
        let mut next = from;
        let mut bytes = 0;
        let mut gap = None;
        self.walk(from, |first, _, decoded, frame| {
            for (id, entry) in (first..).zip(decoded) {
                if id < next {
                    continue;
                }
                if id != next {
                    gap = Some(id);
                    return false;
                }
                let at = entry.offset;
                entries.push(LogEntry::new(frame.slice(at..at + entry.len as usize)));
                bytes += entry.len as usize;
                next += 1;
                if next == to || entries.len() == max_entries || bytes >= max_bytes {
                    return false;
                }
            }
            true
        })?;
        if gap.is_some() || (next < to && entries.len() < max_entries && bytes < max_bytes) {
            return Err(corrupt(
                &self.dir.join(segment::name(self.segment_of(next))),
                0,
                format!("entry {next} is missing although the log's bounds include it"),
            ));
        }
        for (entry, id) in entries.iter_mut().zip(from..) {
            if let Some(found) = self.metadata.get(&id) {
                entry.metadata = found.clone();
            }
        }
        Ok(entries)
    }

    /// The token and length of the batch whose first entry is `seq`, if a
    /// batch starts there.
    pub(crate) fn batch_at(
        &mut self,
        seq: SequenceId,
    ) -> Result<Option<(Option<AppendToken>, u64)>, Fault> {
        let mut found = None;
        self.walk(seq, |first, token, entries, _| {
            if first == seq {
                found = Some((token, entries.len() as u64));
            }
            false
        })?;
        Ok(found)
    }
}
