//! What the catalog tests share: one session of creating, filling, moving
//! and removing sheets, run on each storage.

#![allow(dead_code, clippy::unwrap_used)]

use infinisheet::event_log::Bounds;
use infinisheet::{Catalog, CatalogError, Cell, CellValue, ItemKind, SheetOptions};

pub(crate) fn number(n: f64) -> Cell {
    Cell::new(CellValue::Number(n))
}

/// Creates, fills, moves and removes sheets in `catalog`, checking each
/// step; `reopen` gives the same storage opened again.
pub(crate) async fn exercise(catalog: Catalog, reopen: impl AsyncFn() -> Catalog) {
    let options = SheetOptions::default().snapshot_interval(10);
    let sheet = catalog.create_sheet("team/q3", options).await.unwrap();
    let cells = sheet.open().await.unwrap();
    for i in 0..25u32 {
        cells.set_cell(i, 0, number(f64::from(i))).await.unwrap();
    }
    catalog.create_folder("team/old").await.unwrap();
    let items = catalog.list("team").await.unwrap();
    let kinds: Vec<(&str, ItemKind)> = items.iter().map(|i| (i.name.as_str(), i.kind)).collect();
    assert_eq!(kinds, [("old", ItemKind::Folder), ("q3", ItemKind::Sheet)]);
    assert!(matches!(
        catalog.create_sheet("team/q3", options).await,
        Err(CatalogError::AlreadyExists { .. })
    ));
    assert!(matches!(
        catalog.create_sheet("team/q3/inside", options).await,
        Err(CatalogError::NotAFolder { .. })
    ));

    // Moved into a folder: same log, same cells, after reopening.
    catalog.rename("team/q3", "team/old/q3").await.unwrap();
    assert!(matches!(
        catalog.rename("team", "team/old/team").await,
        Err(CatalogError::InvalidPath { .. })
    ));
    let catalog = reopen().await;
    assert_eq!(catalog.sheets("").await.unwrap(), ["team/old/q3"]);
    let moved = catalog.open_sheet("team/old/q3").await.unwrap();
    assert_eq!(moved.metadata().log_id, sheet.metadata().log_id);
    let cells = moved.open().await.unwrap();
    // The sheet's identity, then its 25 edits.
    assert_eq!(cells.content().end(), 26);
    assert!(matches!(
        catalog.open_sheet("team/q3").await,
        Err(CatalogError::NotFound { .. })
    ));

    // Removing the folder removes the sheet and its log's entries.
    assert!(matches!(
        catalog.remove("team", false).await,
        Err(CatalogError::NotEmpty { .. })
    ));
    let log = moved.log();
    catalog.remove("team", true).await.unwrap();
    let Bounds { start, end } = log.bounds().await.unwrap();
    assert_eq!((start, end), (26, 26), "the log is emptied");
    assert!(catalog.list("").await.unwrap().is_empty());
}
