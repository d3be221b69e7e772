//! What a host app uses most, in one import: `use infinisheet::prelude::*;`.
//!
//! The catalog and its storage, the sheet and its values, the workflow
//! host, and the extension traits whose methods the examples call
//! (`BlobDirExt`, `EventLogExt`).

pub use crate::blob_store::{BlobDir, BlobDirExt, BlobStore};
pub use crate::engine::{
    Cell, CellRange, CellRef, CellValue, LoadStatus, SheetOptions, Spreadsheet,
};
pub use crate::event_log::{EventLog, EventLogExt};
pub use crate::workflow::{WorkflowHost, WorkflowOptions};
pub use crate::{Access, Catalog, CatalogError, CatalogSheet, LogStore, Storage};
