//! The event-sourced spreadsheet of Infinisheet.
//!
//! A sheet is its event log: every edit (set a cell's value and format) is
//! one log entry. Every `snapshot_interval` entries an edit asks for a
//! snapshot (`pending = "snapshot"`); a worker writes it into the sheet's
//! blob directory with [`Spreadsheet::write_snapshot`] and names it on that
//! entry. Opening a sheet reads the newest snapshot's index and the log
//! from there on, then only the snapshot tiles a viewport needs.
//!
//! * [`Spreadsheet`]: open, [`sync`](Spreadsheet::sync),
//!   [`set_cell`](Spreadsheet::set_cell),
//!   [`set_viewport`](Spreadsheet::set_viewport),
//!   [`write_snapshot`](Spreadsheet::write_snapshot).
//! * [`Content`]: one immutable, consistent state to read cells from.
//! * [`CellValue`], [`Cell`], [`ErrorValue`]: what a cell holds;
//!   [`CellRef`], [`CellRange`]: A1-style references.
//! * [`SheetEntry`]: the log entries, versioned postcard.
//!
//! The engine depends on the `EventLog` and `BlobDir` traits only; it never
//! names a backend.

mod compact;
mod content;
mod edit;
mod entry;
mod error;
mod format;
mod identity;
mod options;
mod reference;
mod segment;
mod sheet;
mod snapshot;
mod value;

pub use content::{CellState, Content};
pub use edit::{Block, BlockError, Edit};
pub use entry::{
    BLOCK_TAG, CLEAR_TAG, ENTRY_VERSION, EntryError, IDENTITY_TAG, SheetEntry, TIMED_TAG,
    entry_time, timed,
};
pub use error::{
    CreateError, EditError, LoadError, ReadError, RebuildError, SnapshotReadError, ViewportError,
    WriteSnapshotError,
};
pub use format::INDEX_NAME as SNAPSHOT_INDEX;
pub use identity::{SheetId, SheetIdError};
pub use options::SheetOptions;
pub use reference::{CellRange, CellRef, IntoCellRef, ReferenceError};
pub use sheet::{LoadStatus, SNAPSHOT_WORKFLOW, SheetWatch, Spreadsheet, rebuild_snapshot};
pub use snapshot::{
    SNAPSHOTS_DIR, parse_snapshot_id, snapshot_dependencies, snapshot_id, verify_snapshot,
};
pub use value::{Cell, CellValue, ErrorValue, UnknownErrorValue, number_text};
