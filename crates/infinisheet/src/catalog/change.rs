//! Moving and removing sheets and folders.

use super::{
    Catalog, CatalogError, CatalogPath, FOLDER_MARKER, ItemKind, SHEET_METADATA, storage_error,
};
use infinisheet_blob_store::{BlobDir, BlobDirExt, BlobName, EntryKind};
use std::sync::Arc;

impl Catalog {
    /// Moves (renames) a sheet or folder with everything in it. The sheets
    /// keep their logs.
    ///
    /// # Errors
    ///
    /// [`CatalogError`]: bad paths, nothing at `from`, something at `to`,
    /// `to` inside `from`, or a storage failure.
    pub async fn rename(&self, from: &str, to: &str) -> Result<(), CatalogError> {
        let source = CatalogPath::parse(from)?;
        let target = CatalogPath::parse(to)?;
        if source.names.is_empty() {
            return Err(CatalogError::InvalidPath {
                path: from.to_owned(),
                reason: "the top folder cannot be moved".into(),
            });
        }
        let kind = match self.kind(&source).await? {
            Some(ItemKind::Unknown) => {
                return Err(CatalogError::NotCatalogItem {
                    path: source.display(),
                });
            }
            Some(kind) => kind,
            None => {
                return Err(CatalogError::NotFound {
                    path: source.display(),
                });
            }
        };
        if target.names == source.names {
            return Err(CatalogError::InvalidPath {
                path: to.to_owned(),
                reason: "it is where the item is already".into(),
            });
        }
        if target.names.starts_with(&source.names) {
            return Err(CatalogError::InvalidPath {
                path: to.to_owned(),
                reason: format!("it is inside {}", source.display()),
            });
        }
        self.check_free(&target, to).await?;
        if let Some((parent, _)) = target.parent() {
            self.ensure_folder(&parent).await?;
        }
        let from_dir = self.dir(&source).await?;
        let to_dir = self.dir(&target).await?;
        copy_tree(&from_dir, &to_dir, &target).await?;
        // The copy is whole; now the source goes, its metadata first.
        let moved = async {
            if kind == ItemKind::Sheet {
                from_dir
                    .remove(SHEET_METADATA)
                    .await
                    .map_err(storage_error(&source))?;
            }
            from_dir.remove_all().await.map_err(storage_error(&source))
        }
        .await;
        // Also after a failure half-way: the source may have gone.
        self.mark_changed().await;
        moved
    }

    /// Removes a sheet (its directory, then its log's entries) or a folder
    /// (with `recursive`, everything in it; without, only if empty).
    ///
    /// # Errors
    ///
    /// [`CatalogError`]: a bad path, nothing there, a folder that is not
    /// empty, or a storage failure.
    pub async fn remove(&self, path: &str, recursive: bool) -> Result<(), CatalogError> {
        let at = CatalogPath::parse(path)?;
        if at.names.is_empty() {
            return Err(CatalogError::InvalidPath {
                path: path.to_owned(),
                reason: "the top folder cannot be removed".into(),
            });
        }
        let removed = match self.kind(&at).await? {
            None => Err(CatalogError::NotFound { path: at.display() }),
            Some(ItemKind::Sheet) => self.remove_sheet(&at).await,
            // Only what the catalog made is removed: a directory with
            // neither marker may be another catalog's logs or anything else.
            Some(ItemKind::Unknown) => Err(CatalogError::NotCatalogItem { path: at.display() }),
            Some(ItemKind::Folder) => {
                let items = self.list(&at.display()).await?;
                if !items.is_empty() && !recursive {
                    return Err(CatalogError::NotEmpty { path: at.display() });
                }
                // Every folder beneath is checked before anything goes.
                self.refuse_unknown_beneath(&at).await?;
                self.remove_folder(&at).await
            }
        };
        // Also after a failure half-way: something may have gone.
        if !matches!(
            removed,
            Err(CatalogError::NotFound { .. }
                | CatalogError::NotCatalogItem { .. }
                | CatalogError::NotEmpty { .. })
        ) {
            self.mark_changed().await;
        }
        removed
    }

    /// Fails, naming it, if a directory the catalog did not make lies in
    /// the folder `at` or any folder beneath it.
    async fn refuse_unknown_beneath(&self, at: &CatalogPath) -> Result<(), CatalogError> {
        let mut folders = vec![at.display()];
        while let Some(folder) = folders.pop() {
            for item in self.list(&folder).await? {
                let path = format!("{folder}/{}", item.name);
                match item.kind {
                    ItemKind::Folder => folders.push(path),
                    ItemKind::Sheet => {}
                    ItemKind::Unknown => return Err(CatalogError::NotCatalogItem { path }),
                }
            }
        }
        Ok(())
    }

    /// Removes the sheets and folders in the folder `at`, then its marker:
    /// whatever else its directory holds stays.
    async fn remove_folder(&self, at: &CatalogPath) -> Result<(), CatalogError> {
        for item in self.list(&at.display()).await? {
            let child = at.child(BlobName::new(item.name.as_str()).map_err(|err| {
                CatalogError::InvalidPath {
                    path: item.name.clone(),
                    reason: err.to_string(),
                }
            })?);
            match item.kind {
                ItemKind::Sheet => self.remove_sheet(&child).await?,
                ItemKind::Folder => Box::pin(self.remove_folder(&child)).await?,
                ItemKind::Unknown => {
                    return Err(CatalogError::NotCatalogItem {
                        path: child.display(),
                    });
                }
            }
        }
        self.dir(at)
            .await?
            .remove(FOLDER_MARKER)
            .await
            .map_err(storage_error(at))
    }

    async fn remove_dir(&self, at: &CatalogPath) -> Result<(), CatalogError> {
        self.dir(at)
            .await?
            .remove_all()
            .await
            .map_err(storage_error(at))
    }

    async fn remove_sheet(&self, at: &CatalogPath) -> Result<(), CatalogError> {
        let dir = self.dir(at).await?;
        // A sheet whose metadata is damaged is removed all the same; its
        // log cannot be found then.
        let metadata = self.read_metadata(at, &dir).await.ok();
        dir.remove(SHEET_METADATA)
            .await
            .map_err(storage_error(at))?;
        self.remove_dir(at).await?;
        if let Some(metadata) = metadata {
            if metadata.id.is_some() {
                self.data_dir(at, &metadata)
                    .await?
                    .remove_all()
                    .await
                    .map_err(storage_error(at))?;
            }
            self.storage.logs.clear(&metadata.log_id).await?;
        }
        Ok(())
    }
}

/// Copies every blob under `from` to the same place under `to`; a sheet's
/// metadata blob last, so a sheet appears only once it is whole.
pub(super) async fn copy_tree(
    from: &Arc<dyn BlobDir>,
    to: &Arc<dyn BlobDir>,
    path: &CatalogPath,
) -> Result<(), CatalogError> {
    let mut listed = from.list_all().await.map_err(storage_error(path))?;
    listed.sort_by_key(|e| e.name.as_str() == SHEET_METADATA);
    for entry in listed {
        match entry.kind {
            EntryKind::Blob => {
                let bytes = from
                    .read_blob(&entry.name)
                    .await
                    .map_err(storage_error(path))?;
                to.write_blob(&entry.name, bytes)
                    .await
                    .map_err(storage_error(path))?;
            }
            EntryKind::Dir => {
                let sub_from = from.dir(&entry.name).await.map_err(storage_error(path))?;
                let sub_to = to.dir(&entry.name).await.map_err(storage_error(path))?;
                Box::pin(copy_tree(&sub_from, &sub_to, path)).await?;
            }
        }
    }
    Ok(())
}
