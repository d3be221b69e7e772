//! Orphans: sheets' data directories (and their logs) that no sheet names
//! any more — left by a removal cut short, or by a snapshot job that wrote
//! into a sheet being removed — found, and swept after a grace period.

use super::{Catalog, CatalogError, CatalogPath, DATA_DIR, storage_error};
use infinisheet_blob_store::{BlobDirExt, BlobName, EntryKind, ReadBlobError};
use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The blob a sweep writes into an orphan's data directory: when it was
/// first found (seconds since 1970). Removal waits for the grace period
/// from then, so a sheet being created (its data before its metadata) is
/// never taken for an orphan and removed.
pub const ORPHAN_MARKER: &str = ".orphan";

/// A data directory in `.sheets/` that no sheet names.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Orphan {
    /// Its name: the identity of the sheet it belonged to, and the id of
    /// that sheet's log.
    pub id: String,
    /// When a sweep first found it, if one has.
    pub found_at: Option<SystemTime>,
}

/// What [`Catalog::sweep_orphans`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OrphanSweep {
    /// Orphans found for the first time, marked (removed by a sweep after
    /// the grace period).
    pub marked: Vec<String>,
    /// Orphans removed: their data directory, and their log's entries.
    pub removed: Vec<String>,
    /// Orphans marked too recently to remove yet.
    pub waiting: Vec<String>,
}

impl Catalog {
    /// The data directories in `.sheets/` no sheet of the catalog names.
    ///
    /// # Errors
    ///
    /// [`CatalogError`] if the catalog cannot be read whole — also if a
    /// sheet's metadata cannot be read, since its data would then look
    /// orphaned.
    pub async fn orphans(&self) -> Result<Vec<Orphan>, CatalogError> {
        let top = CatalogPath { names: Vec::new() };
        let mut named = HashSet::new();
        for path in self.sheets("").await? {
            if let Some(id) = self.sheet_metadata(&path).await?.id {
                named.insert(id.to_string());
            }
        }
        let data = self
            .storage
            .blobs
            .root()
            .open_dir(DATA_DIR)
            .await
            .map_err(storage_error(&top))?;
        let mut orphans = Vec::new();
        for entry in data.list_all().await.map_err(storage_error(&top))? {
            if entry.kind != EntryKind::Dir || named.contains(entry.name.as_str()) {
                continue;
            }
            let dir = data.dir(&entry.name).await.map_err(storage_error(&top))?;
            let found_at = match dir.read(ORPHAN_MARKER).await {
                Ok(text) => String::from_utf8_lossy(&text)
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .map(|secs| UNIX_EPOCH + Duration::from_secs(secs)),
                Err(ReadBlobError::NotFound { .. }) => None,
                Err(err) => return Err(storage_error(&top)(err)),
            };
            orphans.push(Orphan {
                id: entry.name.into_string(),
                found_at,
            });
        }
        orphans.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(orphans)
    }

    /// Sweeps the orphans: each found for the first time is marked with
    /// the time; each marked at least `grace` ago is removed — its data
    /// directory, then its log's entries. A grace of zero removes at once
    /// (when nothing may be creating sheets).
    ///
    /// # Errors
    ///
    /// As [`orphans`](Catalog::orphans), or a storage failure while
    /// marking or removing (what was done stays done).
    pub async fn sweep_orphans(&self, grace: Duration) -> Result<OrphanSweep, CatalogError> {
        let top = CatalogPath { names: Vec::new() };
        let now = SystemTime::now();
        let data = self
            .storage
            .blobs
            .root()
            .open_dir(DATA_DIR)
            .await
            .map_err(storage_error(&top))?;
        let mut sweep = OrphanSweep::default();
        for orphan in self.orphans().await? {
            let name = BlobName::new(&orphan.id).map_err(|err| CatalogError::InvalidPath {
                path: orphan.id.clone(),
                reason: err.to_string(),
            })?;
            let dir = data.dir(&name).await.map_err(storage_error(&top))?;
            let found_at = match orphan.found_at {
                Some(at) => at,
                None if grace.is_zero() => now,
                None => {
                    let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
                    dir.write(ORPHAN_MARKER, secs.to_string())
                        .await
                        .map_err(storage_error(&top))?;
                    sweep.marked.push(orphan.id);
                    continue;
                }
            };
            if now.duration_since(found_at).unwrap_or_default() < grace {
                sweep.waiting.push(orphan.id);
                continue;
            }
            dir.remove_all().await.map_err(storage_error(&top))?;
            // The sheet's log is named by its identity too; one never made,
            // or cleared already, is no error.
            if infinisheet_event_log::log_id_problem(&orphan.id).is_none() {
                self.storage.logs.clear(&orphan.id).await?;
            }
            sweep.removed.push(orphan.id);
        }
        Ok(sweep)
    }
}
