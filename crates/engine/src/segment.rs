//! The log segment: the edits since the segment's snapshot, with a map from
//! each cell to its newest edit. Append-only and shared by every content
//! value that uses it; each content sees only its first `visible` edits, so
//! an older content keeps its answers while the engine appends.

use crate::value::Cell;
use infinisheet_event_log::SequenceId;
use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

/// No earlier edit of the same cell.
const NONE: u32 = u32::MAX;

#[derive(Debug)]
struct Edit {
    key: u64,
    cell: Cell,
    /// The previous edit of the same cell in this segment, or `NONE`.
    prev: u32,
    /// An entry that changes no cell (a sheet's identity): it holds its
    /// place in the sequence and is in no cell's chain.
    mark: bool,
}

#[derive(Debug, Default)]
struct Data {
    edits: Vec<Edit>,
    /// Each edited cell's newest edit.
    newest: HashMap<u64, u32>,
}

/// The key of a cell in the map.
pub(crate) fn cell_key(row: u32, column: u32) -> u64 {
    (u64::from(row) << 32) | u64::from(column)
}

fn split_key(key: u64) -> (u32, u32) {
    ((key >> 32) as u32, key as u32)
}

#[derive(Debug)]
pub(crate) struct Segment {
    /// The sequence id of the first edit (the snapshot's, if there is one).
    pub(crate) start: SequenceId,
    data: RwLock<Data>,
}

impl Segment {
    pub(crate) fn new(start: SequenceId) -> Segment {
        Segment {
            start,
            data: RwLock::new(Data::default()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Data> {
        // The data is consistent after every statement that changes it.
        self.data.read().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn len(&self) -> usize {
        self.read().edits.len()
    }

    /// Appends an edit seen by contents with more than `visible` edits.
    /// Returns `false`, appending nothing, if the segment already holds more
    /// than `visible` edits (a draft that was abandoned appended them): the
    /// caller then continues on a copy.
    pub(crate) fn push(&self, visible: usize, row: u32, column: u32, cell: Cell) -> bool {
        let mut data = self.data.write().unwrap_or_else(PoisonError::into_inner);
        if data.edits.len() != visible || data.edits.len() >= NONE as usize {
            return false;
        }
        let key = cell_key(row, column);
        let index = data.edits.len() as u32;
        let prev = data.newest.insert(key, index).unwrap_or(NONE);
        data.edits.push(Edit {
            key,
            cell,
            prev,
            mark: false,
        });
        true
    }

    /// Appends an entry that changes no cell, as [`push`](Segment::push)
    /// appends an edit.
    pub(crate) fn push_mark(&self, visible: usize) -> bool {
        let mut data = self.data.write().unwrap_or_else(PoisonError::into_inner);
        if data.edits.len() != visible || data.edits.len() >= NONE as usize {
            return false;
        }
        data.edits.push(Edit {
            key: 0,
            cell: Cell::new(crate::value::CellValue::Empty),
            prev: NONE,
            mark: true,
        });
        true
    }

    /// The newest of the first `visible` edits of a cell.
    pub(crate) fn get(&self, visible: usize, row: u32, column: u32) -> Option<Cell> {
        let data = self.read();
        let mut index = *data.newest.get(&cell_key(row, column))?;
        while index as usize >= visible {
            index = data.edits[index as usize].prev;
            if index == NONE {
                return None;
            }
        }
        Some(data.edits[index as usize].cell.clone())
    }

    /// A new segment starting `skip` edits in, holding the edits up to
    /// `visible`.
    pub(crate) fn fork(&self, skip: usize, visible: usize, start: SequenceId) -> Segment {
        let forked = Segment::new(start);
        let data = self.read();
        for (i, edit) in data.edits[skip.min(visible)..visible].iter().enumerate() {
            if edit.mark {
                forked.push_mark(i);
            } else {
                let (row, column) = split_key(edit.key);
                forked.push(i, row, column, edit.cell.clone());
            }
        }
        forked
    }

    /// Each cell's newest value among the first `visible` edits.
    pub(crate) fn cells(&self, visible: usize) -> Vec<((u32, u32), Cell)> {
        let data = self.read();
        let mut cells = Vec::with_capacity(data.newest.len());
        for &newest in data.newest.values() {
            let mut index = newest;
            while index != NONE && index as usize >= visible {
                index = data.edits[index as usize].prev;
            }
            if index != NONE {
                let edit = &data.edits[index as usize];
                cells.push((split_key(edit.key), edit.cell.clone()));
            }
        }
        cells
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::CellValue;

    fn number(n: f64) -> Cell {
        Cell::new(CellValue::Number(n))
    }

    #[test]
    fn each_view_sees_only_its_edits() {
        let segment = Segment::new(10);
        assert!(segment.push(0, 1, 1, number(1.0)));
        assert!(segment.push(1, 1, 1, number(2.0)));
        assert!(segment.push(2, 0, 5, number(3.0)));
        assert!(!segment.push(1, 9, 9, number(9.0)), "a stale view appended");
        assert_eq!(segment.get(0, 1, 1), None);
        assert_eq!(segment.get(1, 1, 1), Some(number(1.0)));
        assert_eq!(segment.get(3, 1, 1), Some(number(2.0)));
        assert_eq!(segment.get(2, 0, 5), None);
        let mut cells = segment.cells(2);
        cells.sort_by_key(|(k, _)| *k);
        assert_eq!(cells, vec![((1, 1), number(2.0))]);
        let forked = segment.fork(1, 3, 11);
        assert_eq!((forked.start, forked.len()), (11, 2));
        assert_eq!(forked.get(2, 1, 1), Some(number(2.0)));
        assert_eq!(forked.get(2, 0, 5), Some(number(3.0)));
    }
}
