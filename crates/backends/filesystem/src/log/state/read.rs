//! Reading entries back: the segments' files opened on demand, the sparse
//! index of a segment older than the checkpoint built on its first read,
//! and walks over the entries frames from an id on. Every frame read is
//! checked.

use super::{Fault, POINT_BYTES, State, corrupt};
use crate::error::io;
use crate::log::checkpoint::Point;
use crate::log::frame::{DecodedEntry, Record};
use crate::log::segment::{self, Frames, Read, Segment};
use bytes::Bytes;
use infinisheet_event_log::{AppendToken, LogEntry, SequenceId};

/// The next frame of `segment`'s data from `frames`: `None` at its seal, or
/// for the tail (`tail_end`: where its data ends) at the end of its data.
/// Anything else that is not a whole frame is damage.
fn next_frame(
    frames: &mut Frames<'_>,
    segment: &Segment,
    tail_end: Option<u64>,
) -> Result<Option<(u64, Record)>, Fault> {
    let at = frames.offset();
    if tail_end.is_some_and(|end| at >= end) {
        return Ok(None);
    }
    let read = frames
        .next()
        .map_err(|err| io("reading", &segment.path.display().to_string(), err))?;
    match read {
        Read::End if tail_end.is_some() => Ok(None),
        Read::End => Err(corrupt(
            &segment.path,
            at,
            "the data ends without a seal, but a newer segment follows",
        )),
        Read::Bad(reason) => Err(corrupt(&segment.path, at, reason)),
        Read::Frame(Record::Seal, _) => Ok(None),
        Read::Frame(record, _) => Ok(Some((at, record))),
    }
}

impl State {
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
            let segment = super::open_segment(&self.dir, index)?;
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
        let mut points = vec![Point {
            id: info.first,
            offset: segment.data_start,
        }];
        let mut expected = info.first;
        let mut frames = segment.frames(segment.data_start);
        while let Some((at, record)) = next_frame(&mut frames, segment, None)? {
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
    /// on, in order (its first id, token, entries and bytes), until `visit`
    /// returns `false` or the data ends.
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
            let tail_end = (index == self.tail).then_some(self.offset);
            let segment = &self.files[&index];
            let mut frames = segment.frames(offset);
            while let Some((_, record)) = next_frame(&mut frames, segment, tail_end)? {
                if let Record::Entries {
                    first,
                    token,
                    entries,
                } = record
                {
                    let last = first + entries.len() as u64;
                    if last > from {
                        if !visit(first, token, &entries, frames.frame()) {
                            return Ok(());
                        }
                        from = last;
                    }
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
        let mut gap = false;
        self.walk(from, |first, _, decoded, frame| {
            for (id, entry) in (first..).zip(decoded) {
                if id < next {
                    continue;
                }
                if id != next {
                    gap = true;
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
        if gap || (next < to && entries.len() < max_entries && bytes < max_bytes) {
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
