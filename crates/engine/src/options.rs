//! Settings of a [`Spreadsheet`](crate::Spreadsheet).

use crate::identity::SheetId;
use std::time::Duration;

/// Settings of a [`Spreadsheet`](crate::Spreadsheet); start from
/// `SheetOptions::default()` and change what you need.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SheetOptions {
    /// Every entry whose sequence id is a non-zero multiple of this carries
    /// `pending = "snapshot"`, asking a snapshot worker for a snapshot of
    /// everything before it (in a batch of edits, only the last such entry
    /// does: its snapshot covers the others'); 100 unless set, 0 turns
    /// snapshots off.
    pub snapshot_interval: u64,
    /// Rows of a snapshot tile (1 to 65,536); 100 unless set. Used for a
    /// sheet's first snapshot — times up to 16 for a sheet narrower than
    /// a tile, so a tile holds about as many cells (a 10-column sheet of
    /// the default 100x100 gets 1000x100) — and later ones keep the
    /// geometry of the first.
    pub tile_rows: u32,
    /// Columns of a snapshot tile (1 to 65,536); 100 unless set.
    pub tile_columns: u32,
    /// The most snapshot tiles kept loaded; the least recently used beyond
    /// it are dropped (never one the viewport needs). 64 unless set.
    pub loaded_tile_budget: usize,
    /// If set, the sheet syncs with its log this often in the background
    /// for as long as it is alive. Off unless set.
    pub polling_interval: Option<Duration>,
    /// How many times an edit that keeps losing races for the next sequence
    /// id is tried before [`EditError::Contended`](crate::EditError); 16
    /// unless set.
    pub max_edit_attempts: u32,
    /// How many times an edit whose append failed with a retryable storage
    /// error is sent again (the same entries at the same id under the same
    /// [`AppendToken`](infinisheet_event_log::AppendToken), so an append
    /// whose reply was lost is found landed, never added twice), waiting
    /// 10 ms, 20 ms, 40 ms, … (at most 160 ms) between tries; 5 unless set.
    pub storage_retries: u32,
    /// How many tile blobs are read or written at once; 8 unless set.
    pub blob_concurrency: usize,
    /// The sheet's identity. If set, snapshots are named after it
    /// (`<seq>-<id>`), and opening fails with
    /// [`LoadError::WrongSheet`](crate::LoadError::WrongSheet) unless the
    /// log belongs to it: its first entry (while the log starts at 0) is
    /// this identity, and every snapshot it names carries it. Unset, the
    /// sheet checks nothing and names snapshots by sequence id alone. Unset
    /// unless set.
    pub identity: Option<SheetId>,
}

impl Default for SheetOptions {
    fn default() -> Self {
        SheetOptions {
            snapshot_interval: 100,
            tile_rows: 100,
            tile_columns: 100,
            loaded_tile_budget: 64,
            polling_interval: None,
            max_edit_attempts: 16,
            storage_retries: 5,
            blob_concurrency: 8,
            identity: None,
        }
    }
}

impl SheetOptions {
    /// The same options with a snapshot requested every `entries` entries
    /// (0: never).
    #[must_use]
    pub fn snapshot_interval(mut self, entries: u64) -> Self {
        self.snapshot_interval = entries;
        self
    }

    /// The same options with tiles of `rows` x `columns` cells (each kept
    /// within 1 to 65,536).
    #[must_use]
    pub fn tile_size(mut self, rows: u32, columns: u32) -> Self {
        self.tile_rows = rows.clamp(1, 1 << 16);
        self.tile_columns = columns.clamp(1, 1 << 16);
        self
    }

    /// The same options with at most `tiles` tiles loaded (at least 1).
    #[must_use]
    pub fn loaded_tile_budget(mut self, tiles: usize) -> Self {
        self.loaded_tile_budget = tiles.max(1);
        self
    }

    /// The same options with a background sync every `interval`.
    #[must_use]
    pub fn polling_interval(mut self, interval: Duration) -> Self {
        self.polling_interval = Some(interval);
        self
    }

    /// The same options with at most `attempts` tries per edit (at least 1).
    #[must_use]
    pub fn max_edit_attempts(mut self, attempts: u32) -> Self {
        self.max_edit_attempts = attempts.max(1);
        self
    }

    /// The same options with at most `retries` resends of an edit after
    /// retryable storage errors (0: report the first one).
    #[must_use]
    pub fn storage_retries(mut self, retries: u32) -> Self {
        self.storage_retries = retries;
        self
    }

    /// The same options for the sheet `identity`.
    #[must_use]
    pub fn identity(mut self, identity: SheetId) -> Self {
        self.identity = Some(identity);
        self
    }
}
