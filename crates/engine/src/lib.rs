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
//!
//! # Layout
//!
//! `Spreadsheet` (`sheet/`: open, viewport and snapshots
//! in `mod.rs`, loading, syncing and forks onto newer snapshots in
//! `load.rs`, appending edits in `append.rs`, reading by reference — `get`,
//! `read`, `set`, the load status — in `read.rs`), `Content` (`content.rs`: the immutable state
//! readers take), `segment.rs` (the append-only log segment shared by
//! contents, each seeing its own prefix), `snapshot.rs` (reading and writing
//! snapshot blobs), `streamed.rs` (writing a snapshot streaming from the
//! log or a repair's payloads, in flat memory), `format.rs` (tile and index encodings), `compact.rs`
//! (the compact cell encoding and LZ4 wrapping blocks and tiles share),
//! `entry.rs` (log entries), `edit.rs` (`Edit`, `Block`), `value.rs`
//! (lossless parsing, shortest number text), `reference.rs` (A1 references,
//! checked range sizes).
//!
//! # Invariants
//!
//! * Every entry the engine writes carries the time it was made: entry tag 5
//!   and a varint of Unix milliseconds before the entry itself (seven bytes;
//!   `timed`, `entry_time`). `SheetEntry::decode` reads entries with or
//!   without it, so logs written before it read as they did; `infinisheet
//!   log` shows the times.
//! * Engine: a sheet's content changes only by replacing the whole `Content`
//!   in one synchronous step (`watch::Sender::send_if_modified`); edits and
//!   syncs of one `Spreadsheet` hold an async lock for their whole length, so
//!   they never interleave, while readers and viewport loads never wait.
//!   Segments are append-only; a content sees only its first `visible` edits.
//! * Log entries are versioned by their first byte: 1 a cell edit (postcard),
//!   2 the identity, 3 a block (LZ4 over varints and compact cells, numbers
//!   as their shortest text), 4 a clear (four varints). Every entry is one
//!   sequence id, whatever it sets: the segment counts entries, each single
//!   edit in it records the entry that made it, and a block is kept whole
//!   (shared by forks, never put cell by cell into the map of single edits:
//!   that map cost a fifth of an import), so forks onto a snapshot and each
//!   content's prefix are in entries. A lookup takes the cell's newest single
//!   edit, then asks the blocks newer than it, newest first. A clear is kept
//!   as its range with its entry; a cell reads blank if a clear after its
//!   newest edit covers it, and a snapshot drops the old tiles' cells it
//!   covers and the tiles left empty. A snapshot takes the segment's cells in
//!   entry order, and where a place comes twice the tile keeps the later. The used extent grows with every cell set and shrinks only when a
//!   clear reaches the last row (or column) across every column (or row) —
//!   the same rule replaying from scratch or from a snapshot, so every client
//!   agrees (the model test checks the extent too).
//! * Values are lossless: `CellValue::parse` makes a number only of text that
//!   `number_text` writes back the same (plain decimals from 1e-6 to 1e21, an
//!   exponent beyond, as JavaScript), a boolean only of `TRUE`/`FALSE`, an
//!   error only of its exact spelling; all else stays text. The apostrophe
//!   rule (`from_input`) is for typed input only: a file's apostrophe is kept.
//! * A sheet with an identity (`SheetOptions::identity`, a `SheetId` of 128
//!   random bits; every catalog sheet of format 2) is bound to its log and
//!   its snapshots. `Spreadsheet::create` writes the identity as the log's
//!   first entry (entry tag 2; it changes no cell and holds its place in the
//!   segment), under one append token. Its snapshots are named
//!   `<seq>-<identity>` and its history blobs `<end>-<identity>`, so two
//!   sheets writing into one directory never overwrite each other, and a
//!   cleanup removes only its own sheet's snapshot directories. Opening
//!   checks the identity without an extra read: a log read from entry 0 must
//!   begin with it (an empty log, one without an identity or another's is
//!   `LoadError::WrongSheet`, naming both), and every snapshot the sheet
//!   starts from or switches to must carry it (after a truncate, the names of
//!   the snapshots carry the identity the archived first entry did). An
//!   identity anywhere but entry 0 is a bad entry.
//! * A snapshot is cumulative and written tiles first, index last; the log
//!   names it only after that, so no reader sees a partial snapshot. A tile's
//!   content is the sheet's state at the snapshot, so two workers writing the
//!   same snapshot write the same cells. Tiles and indexes carry a magic, a
//!   version and a CRC-32C; a bad one is an error naming the blob. Version 2
//!   (written now) is LZ4 over compact cells (a tile) or postcard (an index);
//!   version 1 (postcard) still reads. A decompressed length is checked
//!   against what LZ4 can expand to before anything is allocated.
//!
//! # Decisions
//!
//! * The engine forks onto a newer snapshot only when entries arrive with the
//!   news (an add, or a sync page with entries); a reply that names one while
//!   nothing new arrived changes nothing, as the seed suggests. Forking loads
//!   the viewport's tiles of the new snapshot before the switch is published,
//!   so cells never flash to "not loaded".
//! * An edit that loses the race for the next id resyncs and retries (edits are
//!   last-writer-wins per cell), up to `max_edit_attempts` (16), then returns
//!   `EditError::Contended`; the returned content always holds the edit.
//! * Snapshot ids are the zero-padded sequence id (`snapshots/00…0100/`), so
//!   retries and racing workers write to the same place; an index names each
//!   tile by the snapshot directory that holds it.
//! * The worker's engine keeps the tiles of the last snapshot it wrote, and
//!   merging edits into a tile moves its cells, so consecutive snapshots by
//!   one worker never decode a tile; tiles are encoded by hand (compact
//!   cells, `compact.rs`). Together they cut the
//!   original's benchmark at 40,000 entries from 126 ms to ~60 ms.

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
mod streamed;
mod value;

pub use content::{CellState, Content};
pub use edit::{Block, BlockError, Edit, MAX_BLOCK_CELLS};
pub use entry::{
    BLOCK_TAG, BlockRows, CLEAR_TAG, ENTRY_VERSION, EntryError, IDENTITY_TAG, SheetEntry,
    TIMED_TAG, entry_time, timed,
};
pub use error::{
    CreateError, EditError, LoadError, ReadError, RebuildError, SnapshotReadError, ViewportError,
    WriteSnapshotError,
};
pub use format::INDEX_NAME as SNAPSHOT_INDEX;
pub use identity::{SheetId, SheetIdError};
pub use options::SheetOptions;
pub use reference::{CellRange, CellRef, IntoCellRef, ReferenceError};
pub use sheet::{
    BulkAppend, BulkEntries, LoadStatus, SNAPSHOT_WORKFLOW, SheetWatch, Spreadsheet,
    rebuild_snapshot,
};
pub use snapshot::{
    SNAPSHOTS_DIR, parse_snapshot_id, snapshot_dependencies, snapshot_id, verify_snapshot,
};
pub use streamed::{rebuild_snapshot_from_log, write_snapshot_from_log};
pub use value::{Cell, CellValue, ErrorValue, UnknownErrorValue, number_text};
