//! The log's state in one process: where every live entry's payload sits,
//! its metadata, and where the next frame goes. Built by replaying the
//! segments, kept current by replaying what other processes appended, and
//! changed only after the frame that records a change is durable.

use super::FsLogOptions;
use super::frame::{self, Record, SEAL_FRAME};
use super::segment::{self, FIRST_FRAME, Opened, Read, Segment};
use crate::error::{BACKEND, io};
use infinisheet_event_log::{
    AppendToken, EntryMetadata, MetadataUpdate, SequenceId, SnapshotValue, StorageError,
};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

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

/// Where one live entry's payload is, and its metadata (boxed: most entries
/// have none).
#[derive(Debug)]
pub(crate) struct Slot {
    pub(crate) segment: u32,
    pub(crate) offset: u64,
    pub(crate) len: u32,
    pub(crate) metadata: Option<Box<EntryMetadata>>,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) dir: PathBuf,
    pub(crate) options: FsLogOptions,
    pub(crate) segments: BTreeMap<u32, Segment>,
    /// The segment new frames go to, and where in it.
    tail: u32,
    offset: u64,
    /// The tail segment ends with a seal; the next frame starts a new one.
    sealed: bool,
    /// Whether `start` is known yet while replaying.
    started: bool,
    pub(crate) start: SequenceId,
    pub(crate) end: SequenceId,
    pub(crate) slots: VecDeque<Slot>,
    pub(crate) snapshots: BTreeSet<SequenceId>,
    /// The token and length of each live batch appended with a token, by
    /// the id of its first entry.
    pub(crate) tokens: BTreeMap<SequenceId, (AppendToken, u64)>,
    /// A write failed part way: reload from disk before the next operation.
    stale: bool,
    /// Replaying on open (not catching up with other processes).
    loading: bool,
    /// While replaying on open: records so far refer to entries below this
    /// id that no remaining segment holds (where it was noticed). Legitimate
    /// only if a later truncate record discards them; otherwise damage.
    missing: Option<(SequenceId, PathBuf, u64)>,
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

/// Removes the temporary files of segment creations that did not finish.
fn remove_unfinished_creations(dir: &Path) -> Result<(), StorageError> {
    let shown = dir.display().to_string();
    let mut removed = false;
    for entry in std::fs::read_dir(dir).map_err(|err| io("listing", &shown, err))? {
        let entry = entry.map_err(|err| io("listing", &shown, err))?;
        if entry
            .file_name()
            .to_str()
            .is_some_and(segment::is_temp_name)
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

impl State {
    /// Replays every segment in `dir`, creating the first if there is none.
    /// A torn frame at the very end of the data (nothing valid after it) is
    /// an append that was never acknowledged: it is zeroed. Anything else
    /// that does not fit is corruption.
    pub(crate) fn load(dir: &Path, options: FsLogOptions) -> Result<State, Fault> {
        let mut state = State {
            dir: dir.to_owned(),
            options,
            segments: BTreeMap::new(),
            tail: 1,
            offset: FIRST_FRAME,
            sealed: false,
            started: false,
            start: 0,
            end: 0,
            slots: VecDeque::new(),
            snapshots: BTreeSet::new(),
            tokens: BTreeMap::new(),
            stale: false,
            loading: true,
            missing: None,
        };
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
        // Segment 1 is gone only if a truncate deleted it: replay as if
        // entries before the first record had been there, so the gap they
        // leave must be discarded by a truncate record (see `gone_before`).
        state.started = indices.first().is_some_and(|first| *first > 1);
        let last = indices.last().copied();
        for index in indices.iter().copied() {
            let is_last = Some(index) == last;
            let path = dir.join(segment::name(index));
            let segment = match Segment::open(dir, index) {
                // A creation in place (by the first format) that died: it
                // never held a frame if it is the newest segment and the one
                // before it is sealed (or it is the log's only segment).
                Ok(Opened::Unfinished)
                    if is_last && (state.sealed || (index == 1 && state.segments.is_empty())) =>
                {
                    std::fs::remove_file(&path)
                        .map_err(|err| io("removing", &path.display().to_string(), err))?;
                    sync_dir(dir)?;
                    break;
                }
                opened => whole_segment(dir, index, opened)?,
            };
            state.offset = segment.data_start;
            state.segments.insert(index, segment);
            state.tail = index;
            state.sealed = false;
            state.scan(is_last, true)?;
        }
        if state.segments.is_empty() {
            let segment = Segment::create(dir, 1, options.segment_bytes).map_err(|err| {
                io(
                    "creating the first segment in",
                    &dir.display().to_string(),
                    err,
                )
            })?;
            (state.tail, state.offset, state.sealed) = (1, segment.data_start, false);
            state.segments.insert(1, segment);
        }
        if let Some((id, file, offset)) = state.missing.take() {
            return Err(corrupt(
                &file,
                offset,
                format!("entries before {id} are missing and no later truncate discards them"),
            ));
        }
        state.started = true;
        state.loading = false;
        Ok(state)
    }

    /// Reads and applies frames of the tail segment from the current offset
    /// until the end of its data or a seal. `last`: no segment follows, so a
    /// bad frame may be a torn tail. `thorough`: also check that nothing
    /// valid follows the end of the data (on open; too slow for every call).
    fn scan(&mut self, last: bool, thorough: bool) -> Result<(), Fault> {
        loop {
            let segment = &self.segments[&self.tail];
            let shown = || segment.path.display().to_string();
            let read = segment
                .read(self.offset)
                .map_err(|err| io("reading", &shown(), err))?;
            match read {
                Read::End if !last => {
                    // Every segment but the newest ends with a seal: data
                    // that stops early was cut or zeroed.
                    return Err(corrupt(
                        &segment.path,
                        self.offset,
                        "the data ends without a seal, but a newer segment follows",
                    ));
                }
                Read::End => {
                    if thorough {
                        let after = segment
                            .valid_frame_from(self.offset)
                            .map_err(|err| io("reading", &shown(), err))?;
                        if let Some(at) = after {
                            return Err(corrupt(
                                &segment.path,
                                self.offset,
                                format!("the data stops here but a frame follows at byte {at}"),
                            ));
                        }
                        segment
                            .zero_from(self.offset)
                            .map_err(|err| io("clearing a torn tail of", &shown(), err))?;
                    }
                    return Ok(());
                }
                Read::Bad(reason) => {
                    let after = segment
                        .valid_frame_from(self.offset + 8)
                        .map_err(|err| io("reading", &shown(), err))?;
                    if last && after.is_none() {
                        // A torn append that was never acknowledged.
                        segment
                            .zero_from(self.offset)
                            .map_err(|err| io("clearing a torn tail of", &shown(), err))?;
                        return Ok(());
                    }
                    return Err(corrupt(&segment.path, self.offset, reason));
                }
                Read::Frame(Record::Seal, len) => {
                    self.offset += len;
                    self.sealed = true;
                    return Ok(());
                }
                Read::Frame(record, len) => {
                    let at = self.offset;
                    self.offset += len;
                    self.apply(record, at)?;
                }
            }
        }
    }

    fn tail_path(&self) -> PathBuf {
        self.segments[&self.tail].path.clone()
    }

    /// Applies a record read from the tail segment at `at`.
    fn apply(&mut self, record: Record, at: u64) -> Result<(), Fault> {
        match record {
            Record::Entries {
                first,
                token,
                entries,
            } => {
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
                if let Some(token) = token {
                    self.tokens.insert(first, (token, entries.len() as u64));
                }
                for entry in entries {
                    let metadata = (entry.metadata != EntryMetadata::default())
                        .then(|| Box::new(entry.metadata));
                    if metadata.as_ref().is_some_and(|m| m.snapshot.is_some()) {
                        self.snapshots.insert(self.end);
                    }
                    self.slots.push_back(Slot {
                        segment: self.tail,
                        offset: at + entry.offset as u64,
                        len: entry.len,
                        metadata,
                    });
                    self.end += 1;
                }
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

    /// Replaying on open, with no live entry so far: the only state in
    /// which records may refer to entries of deleted segments.
    fn replaying_nothing_live(&self) -> bool {
        self.loading && self.slots.is_empty()
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
        let slot = &mut self.slots[(seq - self.start) as usize];
        let mut metadata = slot.metadata.take().map(|m| *m).unwrap_or_default();
        update.apply(&mut metadata);
        if metadata.snapshot.is_some() {
            self.snapshots.insert(seq);
        } else {
            self.snapshots.remove(&seq);
        }
        slot.metadata = (metadata != EntryMetadata::default()).then(|| Box::new(metadata));
    }

    /// Drops the entries before `start`, and closes the segments that now
    /// hold no live entry (never the tail). Returns those segments' paths:
    /// the process that truncates, or recovers from a crash during a
    /// truncate, deletes the files; one that only learns of it just closes
    /// them, so deleted segments do not stay open.
    pub(crate) fn apply_truncate(&mut self, start: SequenceId) -> Vec<PathBuf> {
        self.slots.drain(..(start - self.start) as usize);
        self.snapshots = self.snapshots.split_off(&start);
        self.tokens = self.tokens.split_off(&start);
        self.start = start;
        let first_live = self.slots.front().map_or(self.tail, |slot| slot.segment);
        let dead: Vec<u32> = self
            .segments
            .range(..first_live.min(self.tail))
            .map(|(i, _)| *i)
            .collect();
        dead.into_iter()
            .filter_map(|index| self.segments.remove(&index))
            .map(|segment| segment.path)
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
            (self.tail, self.offset, self.sealed) = (next, segment.data_start, false);
            self.segments.insert(next, segment);
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
        if self.sealed || self.offset + needed > self.segments[&self.tail].capacity {
            self.roll_over(needed)?;
        }
        let segment = &self.segments[&self.tail];
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
        self.offset += frame.len() as u64;
        Ok(at)
    }

    fn roll_over(&mut self, needed: u64) -> Result<(), StorageError> {
        if !self.sealed {
            let segment = &self.segments[&self.tail];
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
        (self.tail, self.offset, self.sealed) = (next, segment.data_start, false);
        self.segments.insert(next, segment);
        Ok(())
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
        let slot = &self.slots[(seq - self.start) as usize];
        Some(SnapshotValue {
            sequence_id: seq,
            blob_id: slot.metadata.as_ref()?.snapshot.clone()?,
        })
    }
}
