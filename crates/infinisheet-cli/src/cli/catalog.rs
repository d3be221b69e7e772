//! `new`, `ls`, `mv`, `rm`, `info`, `check`, `repair`: the catalog's folders and
//! sheets.

use super::{Place, counted};
use anyhow::Context;
use infinisheet::blob_store::{BlobDir, BlobDirExt, EntryKind};
use infinisheet::event_log::{Bounds, KnownSnapshot, QueryEnd, QueryStart};
use infinisheet::{DATA_DIR, ItemKind, SheetOptions};
use std::sync::Arc;

#[derive(Debug, clap::Args)]
pub(crate) struct New {
    /// The new sheet's path, such as `budget/2026`.
    path: String,
    /// Create a folder instead of a sheet.
    #[arg(long)]
    folder: bool,
    /// Ask for a snapshot every this many edits (0: never).
    #[arg(long, default_value_t = 100)]
    snapshot_interval: u64,
    /// Snapshot tiles of ROWSxCOLUMNS cells.
    #[arg(long, default_value = "100x100", value_parser = tile_size)]
    tiles: (u32, u32),
}

fn tile_size(text: &str) -> Result<(u32, u32), String> {
    let bad = || format!("{text:?} is not ROWSxCOLUMNS (such as 100x100)");
    let (rows, columns) = text.split_once('x').ok_or_else(bad)?;
    let side = |s: &str| -> Result<u32, String> {
        s.parse::<u32>()
            .ok()
            .filter(|n| (1..=65_536).contains(n))
            .ok_or_else(bad)
    };
    Ok((side(rows)?, side(columns)?))
}

pub(crate) async fn new(place: &Place, args: New) -> anyhow::Result<()> {
    let catalog = place.catalog().await?;
    if args.folder {
        catalog.create_folder(&args.path).await?;
        saidln!("created folder {}", args.path);
    } else {
        let options = SheetOptions::default()
            .snapshot_interval(args.snapshot_interval)
            .tile_size(args.tiles.0, args.tiles.1);
        let sheet = catalog.create_sheet(&args.path, options).await?;
        saidln!(
            "created sheet {} (log {} in {})",
            sheet.path(),
            sheet.metadata().log_id,
            catalog.storage().logs.url()
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct Ls {
    /// The folder to list; the top folder if left out.
    #[arg(default_value = "")]
    folder: String,
    /// Print JSON: an array of {"name", "kind"} (kind "folder", "sheet" or
    /// "damaged").
    #[arg(long)]
    json: bool,
}

pub(crate) async fn ls(place: &Place, args: Ls) -> anyhow::Result<()> {
    let catalog = place.reader().await?;
    let items = catalog.list(&args.folder).await?;
    if args.json {
        let items: Vec<serde_json::Value> = items
            .iter()
            .map(|item| {
                let kind = match item.kind {
                    ItemKind::Folder => "folder",
                    ItemKind::Sheet => "sheet",
                    ItemKind::Unknown => "damaged",
                };
                serde_json::json!({ "name": item.name, "kind": kind })
            })
            .collect();
        outln!("{}", serde_json::Value::Array(items));
        return Ok(());
    }
    for item in items {
        match item.kind {
            ItemKind::Folder => outln!("{}/", item.name),
            ItemKind::Sheet => outln!("{}", item.name),
            ItemKind::Unknown => outln!("{}  (damaged: no sheet metadata)", item.name),
        }
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct Mv {
    /// The sheet or folder to move.
    from: String,
    /// Its new path.
    to: String,
}

pub(crate) async fn mv(place: &Place, args: Mv) -> anyhow::Result<()> {
    let catalog = place.catalog().await?;
    // As `mv` does: into a folder that exists, or one named with a
    // trailing `/`, the item keeps its name.
    let into_folder = args.to.ends_with('/') || catalog.list(&args.to).await.is_ok();
    let to = if into_folder {
        let from = args.from.trim_matches('/');
        let (parent, name) = from.rsplit_once('/').unwrap_or(("", from));
        let folder = args.to.trim_matches('/');
        // Into the folder it is in: said so, if it is there at all (else
        // the move says it does not exist).
        if folder == parent
            && catalog
                .list(folder)
                .await?
                .iter()
                .any(|item| item.name == name)
        {
            let folder = if folder.is_empty() { "/" } else { folder };
            anyhow::bail!("{from} is in {folder} already");
        }
        format!("{}/{name}", args.to.trim_end_matches('/'))
    } else {
        args.to.clone()
    };
    catalog.rename(&args.from, &to).await?;
    saidln!("moved {} to {to}", args.from);
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct Rm {
    /// The sheet or folder to remove.
    path: String,
    /// Remove a folder with everything in it.
    #[arg(short, long)]
    recursive: bool,
}

pub(crate) async fn rm(place: &Place, args: Rm) -> anyhow::Result<()> {
    let catalog = place.catalog().await?;
    catalog.remove(&args.path, args.recursive).await?;
    saidln!("removed {}", args.path);
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct Info {
    /// The sheet.
    sheet: String,
    /// Print JSON (the same facts, by name).
    #[arg(long)]
    json: bool,
}

/// Blobs and their bytes under `dir`: sizes from the listing where it has
/// them (an object store's does: one request a page, not one a blob),
/// else from reading the blob.
async fn usage(dir: Arc<dyn BlobDir>) -> anyhow::Result<(u64, u64)> {
    let (mut blobs, mut bytes) = (0, 0);
    let mut dirs = vec![dir];
    while let Some(dir) = dirs.pop() {
        for entry in dir.list_all().await? {
            match entry.kind {
                EntryKind::Blob => {
                    blobs += 1;
                    bytes += match entry.size {
                        Some(size) => size,
                        None => dir.read_blob(&entry.name).await?.len() as u64,
                    };
                }
                EntryKind::Dir => dirs.push(dir.dir(&entry.name).await?),
            }
        }
    }
    Ok((blobs, bytes))
}

pub(crate) async fn info(place: &Place, args: Info) -> anyhow::Result<()> {
    let (catalog, sheet) = place.reader_sheet(&args.sheet).await?;
    let log = sheet.log();
    let Bounds { start, end } = log.bounds().await.context("reading the log")?;
    let mut snapshots = Vec::new();
    let mut pending = 0;
    let mut history = None;
    let mut at = start;
    while at < end {
        let page = log
            .query(QueryStart::Id(at), QueryEnd::End, KnownSnapshot::NotTracked)
            .await?;
        for (seq, entry) in (page.start..).zip(&page.entries) {
            if entry.metadata.snapshot.is_some() {
                snapshots.push(seq);
            }
            if entry.metadata.pending.is_some() {
                pending += 1;
            }
            if seq == start {
                history.clone_from(&entry.metadata.history);
            }
        }
        if page.entries.is_empty() {
            break;
        }
        at = page.end;
    }
    let cells = sheet.open().await?;
    let content = cells.content();
    let (blobs, bytes) = usage(sheet.dir()).await?;
    let metadata = sheet.metadata();
    if args.json {
        let info = serde_json::json!({
            "sheet": sheet.path(),
            "identity": metadata.id.map(|id| id.to_string()),
            "log": {
                "backend": metadata.log_backend,
                "store": catalog.storage().logs.url(),
                "id": metadata.log_id,
            },
            "blobs": catalog.storage().blobs_url,
            "entries": { "start": start, "end": end, "history": history.is_some() },
            "snapshots": snapshots,
            "pending": pending,
            "rows": content.row_count(),
            "columns": content.column_count(),
            "blob_count": blobs,
            "bytes": bytes,
            "snapshot_interval": metadata.snapshot_interval,
            "tile_rows": metadata.tile_rows,
            "tile_columns": metadata.tile_columns,
        });
        outln!("{info}");
        return Ok(());
    }
    outln!("sheet      {}", sheet.path());
    match metadata.id {
        Some(id) => outln!("identity   {id} (data in {DATA_DIR}/{id})"),
        None => outln!("identity   none (a sheet of format 1)"),
    }
    outln!(
        "log        {} store {}, log {}",
        metadata.log_backend,
        catalog.storage().logs.url(),
        metadata.log_id
    );
    outln!("blobs      {}", catalog.storage().blobs_url);
    outln!(
        "entries    {start}..{end} ({} in the log{})",
        end - start,
        if history.is_some() {
            ", older ones in history blobs"
        } else {
            ""
        }
    );
    match snapshots.last() {
        Some(newest) => outln!(
            "snapshots  {} named in the log, newest on entry {newest}",
            snapshots.len()
        ),
        None => outln!("snapshots  none"),
    }
    outln!("pending    {pending} snapshot job(s)");
    outln!(
        "size       {} x {}; {}, {}",
        counted(content.row_count(), "row", "rows"),
        counted(content.column_count(), "column", "columns"),
        counted(blobs, "blob", "blobs"),
        counted(bytes, "byte", "bytes")
    );
    outln!(
        "settings   a snapshot every {} edits, tiles {}x{}",
        metadata.snapshot_interval,
        metadata.tile_rows,
        metadata.tile_columns
    );
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct Check {
    /// The sheets to check; every sheet in the catalog if left out.
    sheets: Vec<String>,
}

pub(crate) async fn check(place: &Place, args: Check) -> anyhow::Result<()> {
    let catalog = place.reader().await?;
    let whole_catalog = args.sheets.is_empty();
    let paths = if whole_catalog {
        catalog.sheets("").await?
    } else {
        args.sheets
    };
    let mut damaged = 0;
    for path in &paths {
        let report = match catalog.open_sheet(path).await {
            Ok(sheet) => infinisheet::check_sheet(&sheet).await,
            Err(err) => {
                outln!("{path}: cannot be opened: {err}");
                damaged += 1;
                continue;
            }
        };
        if report.is_healthy() {
            outln!(
                "{path}: healthy: entries {}..{}, {} snapshots whole, {} entries in history, {} jobs pending",
                report.start,
                report.end,
                report.snapshots.len(),
                report.history_entries,
                report.pending.len()
            );
        } else {
            damaged += 1;
            outln!(
                "{path}: {}",
                counted(report.problems.len() as u64, "problem", "problems")
            );
            for problem in &report.problems {
                outln!("  {problem}");
            }
        }
    }
    if whole_catalog {
        // Data no sheet names: a note, not damage (`repair --orphans`
        // sweeps it).
        match catalog.orphans().await {
            Ok(orphans) => {
                for orphan in &orphans {
                    outln!(
                        "orphan: {}/{} is no sheet's data{} (`repair --orphans` sweeps it)",
                        infinisheet::DATA_DIR,
                        orphan.id,
                        if orphan.found_at.is_some() {
                            ", marked by a sweep"
                        } else {
                            ""
                        }
                    );
                }
            }
            Err(err) => outln!("orphans: cannot be looked for: {err}"),
        }
    }
    if damaged > 0 {
        anyhow::bail!(
            "{damaged} of {} {} problems",
            counted(paths.len() as u64, "sheet", "sheets"),
            if damaged == 1 { "has" } else { "have" }
        );
    }
    Ok(())
}

#[derive(Debug, clap::Args)]
pub(crate) struct Repair {
    /// The sheets to repair; every sheet in the catalog if left out.
    sheets: Vec<String>,
    /// Rebuild each sheet's log from every entry that can be read, for a
    /// sheet with an entry that cannot: the sheet is bound to the new log,
    /// the old one kept (a note in the sheet's data says which entries
    /// were dropped).
    #[arg(long)]
    rebuild: bool,
    /// Sweep the data (and logs) no sheet names: mark what is found, and
    /// remove what was marked at least --grace ago.
    #[arg(long, conflicts_with = "rebuild")]
    orphans: bool,
    /// With --orphans: how long an orphan stays marked before it is
    /// removed (so a sheet being made is never taken for one), e.g. 1h,
    /// 30m; 0s removes at once.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration, requires = "orphans")]
    grace: std::time::Duration,
}

pub(crate) async fn repair(place: &Place, args: Repair) -> anyhow::Result<()> {
    let catalog = place.catalog().await?;
    if args.orphans {
        if !args.sheets.is_empty() {
            anyhow::bail!("--orphans sweeps the whole catalog: name no sheets");
        }
        let sweep = catalog.sweep_orphans(args.grace).await?;
        for id in &sweep.removed {
            outln!(
                "removed orphan {}/{id} and its log's entries",
                infinisheet::DATA_DIR
            );
        }
        for id in &sweep.marked {
            outln!(
                "marked orphan {}/{id}: removed by a sweep {} from now",
                infinisheet::DATA_DIR,
                humantime::format_duration(args.grace)
            );
        }
        for id in &sweep.waiting {
            outln!(
                "orphan {}/{id} was marked less than {} ago",
                infinisheet::DATA_DIR,
                humantime::format_duration(args.grace)
            );
        }
        outln!(
            "{} removed, {} marked, {} waiting",
            counted(sweep.removed.len() as u64, "orphan", "orphans"),
            sweep.marked.len(),
            sweep.waiting.len()
        );
        return Ok(());
    }
    let paths = if args.sheets.is_empty() {
        catalog.sheets("").await?
    } else {
        args.sheets
    };
    if args.rebuild {
        for path in &paths {
            let rebuilt = catalog
                .rebuild_log(path)
                .await
                .with_context(|| format!("rebuilding the log of {path}"))?;
            outln!(
                "{path}: a new log {} of {} (the old log {} is kept; a note in the sheet's \
                 data names it)",
                rebuilt.new_log,
                counted(rebuilt.kept, "entry", "entries"),
                rebuilt.old_log
            );
            if rebuilt.dropped.is_empty() {
                outln!("{path}: no entry dropped");
            }
            for (seq, why) in &rebuilt.dropped {
                outln!("{path}: dropped entry {seq}: {why}");
            }
        }
    }
    let mut left = 0;
    for path in &paths {
        let sheet = match catalog.open_sheet(path).await {
            Ok(sheet) => sheet,
            Err(err) => {
                outln!("{path}: cannot be opened, so not repaired: {err}");
                left += 1;
                continue;
            }
        };
        let report = infinisheet::repair_sheet(&sheet)
            .await
            .with_context(|| format!("repairing {path}"))?;
        for seq in &report.rebuilt {
            outln!("{path}: rebuilt the snapshot on entry {seq}");
        }
        for problem in &report.unrepaired {
            outln!("{path}: not repaired: {problem}");
        }
        // The whole picture after the repair.
        let check = infinisheet::check_sheet(&sheet).await;
        if check.is_healthy() {
            outln!(
                "{path}: healthy: entries {}..{}, {} snapshots whole",
                check.start,
                check.end,
                check.snapshots.len()
            );
        } else {
            left += 1;
            for problem in &check.problems {
                outln!("{path}: still wrong: {problem}");
            }
        }
    }
    if left > 0 {
        anyhow::bail!(
            "{left} of {} sheets are not healthy after the repair",
            paths.len()
        );
    }
    Ok(())
}
