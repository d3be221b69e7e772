//! Reading a sheet without the viewport dance: a cell or a range by A1
//! reference, setting a cell by one, and what a UI shows beside the grid —
//! the load status and the viewport.

use super::{Inner, Spreadsheet};
use crate::content::CellState;
use crate::error::{EditError, ReadError, ViewportError};
use crate::reference::{CellRange, IntoCellRef};
use crate::value::Cell;
use infinisheet_event_log::SequenceId;
use std::sync::PoisonError;

/// Whether a sheet's content is up to date with what it last tried to read
/// (the original's "loading / loaded / failed").
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoadStatus {
    /// A sync or a viewport's tiles are being read.
    Loading,
    /// The last sync and tile load succeeded.
    Loaded,
    /// The last sync or tile load failed; the content is the one before it.
    Failed {
        /// What failed, with its causes.
        message: String,
        /// Whether trying again may help.
        retryable: bool,
    },
}

/// In-flight reads and the last failure, behind [`Spreadsheet::status`].
#[derive(Debug, Default)]
pub(super) struct Status {
    loading: u32,
    failed: Option<(String, bool)>,
}

impl Inner {
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `read` with the status showing [`LoadStatus::Loading`], then
    /// records how it went.
    pub(super) async fn tracked<T, E>(
        &self,
        read: impl Future<Output = Result<T, E>>,
        retryable: impl FnOnce(&E) -> bool,
    ) -> Result<T, E>
    where
        E: std::error::Error + 'static,
    {
        self.status().loading += 1;
        // Undone however the read ends, a cancelled one included.
        struct Done<'a>(&'a Inner);
        impl Drop for Done<'_> {
            fn drop(&mut self) {
                let mut status = self.0.status();
                status.loading = status.loading.saturating_sub(1);
            }
        }
        let done = Done(self);
        let result = read.await;
        {
            let mut status = self.status();
            status.failed = match &result {
                Ok(_) => None,
                Err(err) => Some((infinisheet_storage_error::one_line(err), retryable(err))),
            };
        }
        drop(done);
        result
    }
}

impl Spreadsheet {
    /// Whether the content is being loaded, is loaded, or the last sync or
    /// tile load failed (and why).
    pub fn status(&self) -> LoadStatus {
        let status = self.inner.status();
        if status.loading > 0 {
            LoadStatus::Loading
        } else if let Some((message, retryable)) = &status.failed {
            LoadStatus::Failed {
                message: message.clone(),
                retryable: *retryable,
            }
        } else {
            LoadStatus::Loaded
        }
    }

    /// The area the sheet looks at ([`set_viewport`](Spreadsheet::set_viewport)),
    /// if one was set.
    pub fn viewport(&self) -> Option<CellRange> {
        self.inner.viewport().area
    }

    /// Sets one cell by reference — `"B2"` or a
    /// [`CellRef`](crate::CellRef) (`CellRef::new(row, column)`) — to anything that makes a cell (`42.0`, `true`, `"text"`,
    /// a [`Cell`] with a format). As [`set_cell`](Spreadsheet::set_cell)
    /// otherwise.
    ///
    /// # Errors
    ///
    /// [`EditError::Reference`] if `at` is not a cell reference (nothing
    /// is written); otherwise as [`set_cell`](Spreadsheet::set_cell).
    pub async fn set(
        &self,
        at: impl IntoCellRef,
        cell: impl Into<Cell>,
    ) -> Result<SequenceId, EditError> {
        let at = at.into_cell_ref()?;
        self.set_cell(at.row, at.column, cell.into()).await
    }

    /// The cell at `at` (`"B2"` or a [`CellRef`](crate::CellRef)), or
    /// `None` if it is blank. Reads the snapshot tile it lies in if that is
    /// not loaded (moving the viewport there).
    ///
    /// # Errors
    ///
    /// [`ReadError::Reference`] if `at` is not a cell reference,
    /// [`ReadError::Snapshot`] if the tile cannot be read.
    pub async fn get(&self, at: impl IntoCellRef) -> Result<Option<Cell>, ReadError> {
        let at = at.into_cell_ref()?;
        let mut rows = self.read(CellRange::new(at, at)).await?;
        Ok(rows.pop().and_then(|mut row| row.pop()).flatten())
    }

    /// The cells of `range`, row by row (`None` for a blank cell). Whole
    /// rows and columns (`A:C`, `2:5`) are cut to the cells in use. Reads
    /// the snapshot tiles the range covers in bands of 100 rows, moving the
    /// viewport over each; a range read so is held in memory whole, so
    /// read a large sheet band by band.
    ///
    /// # Errors
    ///
    /// [`ViewportError`] if a tile cannot be read.
    pub async fn read(&self, range: CellRange) -> Result<Vec<Vec<Option<Cell>>>, ViewportError> {
        let Some(range) = self.content().resolve(range) else {
            return Ok(Vec::new());
        };
        let mut rows = Vec::new();
        for area in range.bands(100) {
            let mut content = self.content();
            if area_unloaded(&content, area) {
                self.set_viewport(area).await?;
                content = self.content();
            }
            for row in area.rows() {
                rows.push(
                    area.columns()
                        .map(|column| match content.cell(row, column) {
                            CellState::Set(cell) => Some(cell),
                            _ => None,
                        })
                        .collect(),
                );
            }
        }
        Ok(rows)
    }
}

/// Whether a cell of `area` lies in a snapshot tile that is not loaded.
fn area_unloaded(content: &crate::Content, area: CellRange) -> bool {
    content.base.as_ref().is_some_and(|base| {
        base.tiles_covering(area)
            .iter()
            .any(|key| !content.tiles.contains_key(key))
    })
}
