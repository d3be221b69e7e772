//! Writing frames: appending one and syncing it, rolling over to a new
//! segment, writing the checkpoint, deleting segments a truncate emptied.

use super::{Mark, State, header_of};
use crate::error::{BACKEND, io};
use crate::log::checkpoint::Checkpoint;
use crate::log::frame::{self, SEAL_FRAME};
use crate::log::segment::{self, Opened, Read, Segment};
use infinisheet_event_log::StorageError;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

impl State {
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
}
