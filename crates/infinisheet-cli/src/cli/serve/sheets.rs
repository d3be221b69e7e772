//! The sheets a server keeps open, keyed by identity (not by the text a
//! request spelled the path with), at most so many, closed when idle, and
//! looked up through the catalog on every request: a path names the sheet
//! the catalog says it names now, never the one it named when it was
//! first opened.

use super::App;
use infinisheet::engine::SheetId;
use infinisheet::{
    Catalog, CatalogError, CatalogSheet, SheetMetadata, SheetWatch, SheetWriter, Spreadsheet,
    WorkflowOptions,
};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// A sheet unused this long (and followed by no event stream) closes.
const IDLE: Duration = Duration::from_secs(5 * 60);

/// How often an open sheet's snapshot worker looks for jobs other
/// processes' edits asked for (the server's own edits wake it at once;
/// `infinisheet worker` finds the others' through `.due/` too): a scan of
/// the log since its newest snapshot, so not every second on a sheet that
/// sits open.
const JOB_POLL: Duration = Duration::from_secs(60);

/// A sheet the server has open: a writer with its snapshot worker (so
/// edits wake its jobs), kept live by a watch.
pub(super) struct Open {
    pub(super) sheet: CatalogSheet,
    /// The writer's cells.
    pub(super) cells: Spreadsheet,
    /// Taken when the sheet closes, to finish its jobs.
    writer: Mutex<Option<SheetWriter>>,
    _watch: SheetWatch,
    /// The tail its event streams share, while any follows it.
    pub(super) hub: Mutex<Option<Arc<super::events::Hub>>>,
}

impl Open {
    /// Whether event streams follow the sheet (it is in use, however
    /// long since a request named it).
    fn followed(&self) -> bool {
        self.hub
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

/// What makes a sheet the same sheet: its identity and its log.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Key {
    id: Option<SheetId>,
    backend: String,
    log: String,
}

impl Key {
    fn of(metadata: &SheetMetadata) -> Key {
        Key {
            id: metadata.id,
            backend: metadata.log_backend.clone(),
            log: metadata.log_id.clone(),
        }
    }
}

struct Slot {
    open: Arc<Open>,
    used: Instant,
}

/// The open sheets.
pub(super) struct Sheets {
    catalog: Catalog,
    most: usize,
    open: Mutex<HashMap<Key, Slot>>,
    /// Held while a sheet opens, so two requests do not open it twice.
    opening: tokio::sync::Mutex<()>,
}

impl Sheets {
    pub(super) fn new(catalog: Catalog, most: usize) -> Sheets {
        Sheets {
            catalog,
            most: most.max(1),
            open: Mutex::default(),
            opening: tokio::sync::Mutex::default(),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Slot>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn lookup(&self, key: &Key) -> Option<Arc<Open>> {
        let mut slots = self.slots();
        let slot = slots.get_mut(key)?;
        slot.used = Instant::now();
        Some(slot.open.clone())
    }

    /// The sheet `path` names now (one read of its metadata), opened once
    /// per identity however the path is spelled.
    ///
    /// # Errors
    ///
    /// The catalog's: nothing there, a folder, an invalid path, storage.
    pub(super) async fn get(&self, path: &str) -> Result<Arc<Open>, CatalogError> {
        let key = Key::of(&self.catalog.sheet_metadata(path).await?);
        if let Some(open) = self.lookup(&key) {
            return Ok(open);
        }
        let _opening = self.opening.lock().await;
        if let Some(open) = self.lookup(&key) {
            return Ok(open);
        }
        let sheet = self.catalog.open_sheet(path).await?;
        // Its snapshot jobs run here, and so do those other processes'
        // edits ask for (the worker polls).
        let writer = sheet
            .writer_with(WorkflowOptions::default().poll_interval(Some(JOB_POLL)))
            .await
            .map_err(|err| CatalogError::Storage {
                path: sheet.path().to_owned(),
                retryable: err.is_retryable(),
                source: Box::new(err),
            })?;
        let watch = writer.watch_with(sheet.tail_options());
        let open = Arc::new(Open {
            // What was opened, should the path have changed meanwhile.
            sheet,
            cells: writer.cells().clone(),
            writer: Mutex::new(Some(writer)),
            _watch: watch,
            hub: Mutex::default(),
        });
        let evicted = {
            let mut slots = self.slots();
            let new_key = Key::of(open.sheet.metadata());
            slots.insert(
                new_key.clone(),
                Slot {
                    open: open.clone(),
                    used: Instant::now(),
                },
            );
            let mut evicted = Vec::new();
            // Sheets event streams follow stay (their streams hold them;
            // a second copy would follow them twice): at most as many as
            // the streams the server takes.
            while slots.len() > self.most {
                let Some(oldest) = slots
                    .iter()
                    // Nor the sheet just opened, for the request at hand.
                    .filter(|(key, slot)| !slot.open.followed() && **key != new_key)
                    .min_by_key(|(_, slot)| slot.used)
                    .map(|(key, _)| key.clone())
                else {
                    break;
                };
                evicted.extend(slots.remove(&oldest));
            }
            evicted
        };
        tracing::debug!(
            "opened {}; {} sheet(s) open, {} closed to make room",
            open.sheet.path(),
            self.slots().len(),
            evicted.len()
        );
        for slot in evicted {
            close(slot.open);
        }
        Ok(open)
    }

    /// Closes `open` if it is still the open sheet of its identity (the
    /// catalog said its path names another sheet now).
    pub(super) fn forget(&self, open: &Arc<Open>) {
        let key = Key::of(open.sheet.metadata());
        let removed = {
            let mut slots = self.slots();
            match slots.get(&key) {
                Some(slot) if Arc::ptr_eq(&slot.open, open) => slots.remove(&key),
                _ => None,
            }
        };
        if let Some(slot) = removed {
            close(slot.open);
        }
    }

    /// Closes every sheet, waiting for the snapshot jobs their edits
    /// asked for.
    pub(super) async fn close_all(&self) {
        let all: Vec<Slot> = self.slots().drain().map(|(_, slot)| slot).collect();
        for slot in all {
            let writer = slot
                .open
                .writer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(writer) = writer {
                crate::cli::finish(writer).await;
            }
        }
    }
}

/// Closes a sheet: its writer finishes the jobs asked for (in a task of
/// its own); requests still holding it read on, and their edits' jobs stay
/// pending in the log for the next writer or worker.
fn close(open: Arc<Open>) {
    let writer = open
        .writer
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(writer) = writer {
        tokio::spawn(crate::cli::finish(writer));
    }
}

/// Closes the sheets idle for [`IDLE`], every half minute, for as long as
/// the server runs.
pub(super) async fn close_idle(app: Arc<App>) {
    let mut ticks = tokio::time::interval(Duration::from_secs(30));
    loop {
        ticks.tick().await;
        let idle: Vec<Slot> = {
            let mut slots = app.sheets.slots();
            let now = Instant::now();
            let keys: Vec<Key> = slots
                .iter()
                .filter(|(_, slot)| now.duration_since(slot.used) >= IDLE && !slot.open.followed())
                .map(|(key, _)| key.clone())
                .collect();
            keys.iter().filter_map(|key| slots.remove(key)).collect()
        };
        for slot in idle {
            close(slot.open);
        }
    }
}
