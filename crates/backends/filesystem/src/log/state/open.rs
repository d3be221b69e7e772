//! Building the state on open: from the checkpoint and the frames after
//! it when the checkpoint fits the segments, else by replaying every
//! segment.

use super::{Fault, SegmentInfo, State, corrupt, whole_segment};
use crate::error::io;
use crate::log::FsLogOptions;
use crate::log::checkpoint::{self, Checkpoint};
use crate::log::frame::{HEADER, SEAL_FRAME};
use crate::log::segment::{self, Opened, Segment};
use infinisheet_event_log::StorageError;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub(super) fn segment_indices(dir: &Path) -> Result<Vec<u32>, StorageError> {
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

impl State {
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
}
