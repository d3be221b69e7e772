//! Retention: forgetting snapshots older than the newest few and removing
//! their blobs, never one a kept (or newly published) snapshot still needs.
//!
//! A snapshot shares the unchanged tiles of older snapshots, so a snapshot
//! directory is needed by every snapshot whose index names one of its
//! tiles ([`snapshot_dependencies`]). A cleanup:
//!
//! 1. scans the log for published snapshots; the newest `keep` are kept,
//!    and every directory their indexes name is alive;
//! 2. clears the `snapshot` metadata of the older entries, so the log never
//!    names a snapshot whose blobs go;
//! 3. writes a `removing` marker into each directory older than the oldest
//!    kept snapshot that is not alive;
//! 4. scans the log again and takes the marker back from any of those that
//!    a snapshot published meanwhile needs;
//! 5. removes the rest, whole.
//!
//! A snapshot writer checks, before and after publishing, that every
//! directory its snapshot needs still has its index and no marker
//! ([`dangling_dependency`]). If it published before step 4 read the log,
//! step 4 spares what it needs; if after, its check after publishing sees
//! the marker (or the removal) and it withdraws the snapshot and writes it
//! again from a fresh sheet. Since every cleanup keeps the newest snapshot
//! and what it shares, the writer leaves the checks out when its base is
//! the newest snapshot and one it checked itself (see the worker).

use crate::WorkflowError;
use crate::scan;
use futures::{StreamExt, TryStreamExt, stream};
use infinisheet_blob_store::{BlobDir, BlobDirExt, EntryKind, ReadBlobError};
use infinisheet_engine::{SNAPSHOT_INDEX, SNAPSHOTS_DIR, SnapshotReadError, snapshot_dependencies};
use infinisheet_engine::{SheetId, parse_snapshot_id};
use infinisheet_event_log::{
    EventLog, FieldUpdate, MetadataUpdate, SequenceId, SetMetadataError, SnapshotValue,
};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The blob a cleanup writes into a snapshot directory it is about to
/// remove.
pub const REMOVING_MARKER: &str = "removing";

/// How many marker and index checks run at once.
const CONCURRENCY: usize = 8;

/// What one cleanup did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CleanupReport {
    /// Entries whose `snapshot` metadata it cleared.
    pub forgotten: Vec<SequenceId>,
    /// Snapshot directories it removed.
    pub removed: Vec<String>,
    /// Where the next cleanup can start scanning: no entry before it names
    /// a snapshot any more.
    pub scanned_to: SequenceId,
}

fn dir_path(snapshot: &str) -> String {
    format!("{SNAPSHOTS_DIR}/{snapshot}")
}

async fn snapshot_dir(
    snapshots: &Arc<dyn BlobDir>,
    name: &str,
) -> Result<Arc<dyn BlobDir>, WorkflowError> {
    snapshots
        .open_dir(name)
        .await
        .map_err(WorkflowError::blob(dir_path(name)))
}

async fn snapshots_dir(dir: &Arc<dyn BlobDir>) -> Result<Arc<dyn BlobDir>, WorkflowError> {
    dir.open_dir(SNAPSHOTS_DIR)
        .await
        .map_err(WorkflowError::blob(SNAPSHOTS_DIR))
}

/// Whether a blob is there.
async fn exists(dir: &Arc<dyn BlobDir>, name: &str, path: String) -> Result<bool, WorkflowError> {
    match dir.read(name).await {
        Ok(_) => Ok(true),
        Err(ReadBlobError::NotFound { .. }) => Ok(false),
        Err(err) => Err(WorkflowError::blob(path)(err)),
    }
}

/// Every directory the snapshots `values` need.
async fn alive(
    dir: &Arc<dyn BlobDir>,
    values: &[SnapshotValue],
) -> Result<BTreeSet<String>, WorkflowError> {
    let mut alive = BTreeSet::new();
    for value in values {
        alive.extend(snapshot_dependencies(dir.clone(), &value.blob_id).await?);
    }
    Ok(alive)
}

/// The first directory the snapshot `blob_id` needs that is gone or being
/// removed (its own included), if any.
pub(crate) async fn dangling_dependency(
    dir: &Arc<dyn BlobDir>,
    blob_id: &str,
) -> Result<Option<String>, WorkflowError> {
    let needed = match snapshot_dependencies(dir.clone(), blob_id).await {
        Ok(needed) => needed,
        Err(SnapshotReadError::Missing { .. }) => return Ok(Some(blob_id.to_owned())),
        Err(err) => return Err(err.into()),
    };
    let snapshots = snapshots_dir(dir).await?;
    let dangling: Vec<Option<String>> = stream::iter(needed)
        .map(|name| {
            let snapshots = snapshots.clone();
            async move {
                let sub = snapshot_dir(&snapshots, &name).await?;
                let index = format!("{}/{SNAPSHOT_INDEX}", dir_path(&name));
                let marker = format!("{}/{REMOVING_MARKER}", dir_path(&name));
                let whole = exists(&sub, SNAPSHOT_INDEX, index).await?
                    && !exists(&sub, REMOVING_MARKER, marker).await?;
                Ok::<_, WorkflowError>((!whole).then_some(name))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect()
        .await?;
    Ok(dangling.into_iter().flatten().min())
}

/// Runs one cleanup keeping the `keep` newest snapshots, scanning the log
/// from `from` (entries before it name no snapshot any more).
pub(crate) async fn cleanup(
    log: &dyn EventLog,
    dir: &Arc<dyn BlobDir>,
    keep: u32,
    from: SequenceId,
    identity: Option<SheetId>,
) -> Result<CleanupReport, WorkflowError> {
    let keep = keep.max(1) as usize;
    let found = scan::scan(log, from).await?;
    let mut report = CleanupReport {
        scanned_to: found.start,
        ..CleanupReport::default()
    };
    // Snapshots on entries a truncate removed are forgotten already; their
    // directories go too.
    let (old, kept) = found
        .snapshots
        .split_at(found.snapshots.len().saturating_sub(keep));
    let Some(oldest_kept) = kept.first().map(|s| s.sequence_id) else {
        return Ok(report);
    };
    let mut alive = alive(dir, kept).await?;

    for value in old {
        let forget = MetadataUpdate {
            snapshot: FieldUpdate::Clear,
            ..MetadataUpdate::default()
        };
        match log.set_metadata(value.sequence_id, forget).await {
            // Truncated meanwhile: forgotten with its entry.
            Ok(()) | Err(SetMetadataError::Range(_)) => report.forgotten.push(value.sequence_id),
            Err(source) => {
                return Err(WorkflowError::Metadata {
                    seq: value.sequence_id,
                    source,
                });
            }
        }
    }

    let snapshots = snapshots_dir(dir).await?;
    let listed = snapshots
        .list_all()
        .await
        .map_err(WorkflowError::blob(SNAPSHOTS_DIR))?;
    let older: Vec<String> = listed
        .into_iter()
        .filter(|e| e.kind == EntryKind::Dir)
        .map(|e| e.name.to_string())
        // Only this sheet's own snapshots: a directory named after another
        // identity is not this sheet's to remove.
        .filter(|name| {
            parse_snapshot_id(name).is_some_and(|(seq, of)| of == identity && seq < oldest_kept)
        })
        .collect();
    // A marker left in a live directory by a cleanup that failed half way
    // would stop every snapshot that needs it: take those back first.
    for name in older.iter().filter(|n| alive.contains(*n)) {
        unmark(&snapshots, name).await?;
    }
    let doomed: Vec<String> = older.into_iter().filter(|n| !alive.contains(n)).collect();
    for name in &doomed {
        snapshot_dir(&snapshots, name)
            .await?
            .write(REMOVING_MARKER, bytes::Bytes::new())
            .await
            .map_err(WorkflowError::blob(format!(
                "{}/{REMOVING_MARKER}",
                dir_path(name)
            )))?;
    }

    // Look again: a snapshot published since the first scan may need one.
    let spare = async {
        let again = scan::scan(log, from).await?;
        let mut spare: BTreeSet<String> =
            again.snapshots.iter().map(|v| v.blob_id.clone()).collect();
        alive.extend(self::alive(dir, &again.snapshots).await?);
        spare.extend(alive);
        // Published on an old entry meanwhile: the next cleanup forgets it.
        let late = again
            .snapshots
            .iter()
            .map(|v| v.sequence_id)
            .find(|seq| *seq < oldest_kept);
        Ok::<_, WorkflowError>((spare, late))
    };
    let (spare, late) = match spare.await {
        Ok(spare) => spare,
        Err(err) => {
            // Leave nothing marked that might be needed.
            for name in &doomed {
                if let Err(err) = unmark(&snapshots, name).await {
                    tracing::warn!(%err, "cannot take back a removal marker");
                }
            }
            return Err(err);
        }
    };
    for name in doomed {
        if spare.contains(&name) {
            unmark(&snapshots, &name).await?;
            continue;
        }
        snapshot_dir(&snapshots, &name)
            .await?
            .remove_all()
            .await
            .map_err(WorkflowError::blob(dir_path(&name)))?;
        report.removed.push(name);
    }
    report.scanned_to = late.unwrap_or(oldest_kept);
    Ok(report)
}

async fn unmark(snapshots: &Arc<dyn BlobDir>, name: &str) -> Result<(), WorkflowError> {
    snapshot_dir(snapshots, name)
        .await?
        .remove(REMOVING_MARKER)
        .await
        .map_err(WorkflowError::blob(format!(
            "{}/{REMOVING_MARKER}",
            dir_path(name)
        )))
}
