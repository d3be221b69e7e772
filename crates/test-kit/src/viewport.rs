//! Reading a whole sheet as a client would: viewport by viewport.

use infinisheet_engine::{Cell, CellRange, CellRef, CellState, Spreadsheet};
use std::collections::BTreeMap;

/// Every set cell of `sheet` within `rows` x `columns`, loading the tiles
/// as a viewport would, in `step` x `step` pieces (which must fit the
/// sheet's tile budget).
///
/// # Panics
///
/// If a viewport cannot be loaded, or a cell inside a loaded viewport is
/// not loaded: a test fails by panicking.
pub async fn read_viewports(
    sheet: &Spreadsheet,
    rows: u32,
    columns: u32,
    step: u32,
) -> BTreeMap<(u32, u32), Cell> {
    let (rows, columns) = (rows.max(1), columns.max(1));
    let mut found = BTreeMap::new();
    for top in (0..rows).step_by(step as usize) {
        for left in (0..columns).step_by(step as usize) {
            let area = CellRange::new(
                CellRef::new(top, left),
                CellRef::new(
                    (top + step - 1).min(rows - 1),
                    (left + step - 1).min(columns - 1),
                ),
            );
            if let Err(err) = sheet.set_viewport(area).await {
                panic!("loading the viewport {area:?}: {err}");
            }
            let content = sheet.content();
            for row in area.rows() {
                for column in area.columns() {
                    match content.cell(row, column) {
                        CellState::Set(cell) => {
                            found.insert((row, column), cell);
                        }
                        CellState::Blank => {}
                        CellState::NotLoaded => {
                            panic!("{} not loaded in its viewport", CellRef::new(row, column))
                        }
                    }
                }
            }
        }
    }
    found
}
