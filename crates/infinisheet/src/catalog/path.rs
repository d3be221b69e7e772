//! Paths in the catalog.

use super::{CatalogError, DATA_DIR, DUE_DIR, FOLDER_MARKER, LIVE_DIR, SHEET_METADATA};
use infinisheet_blob_store::BlobName;

/// A path in the catalog: names separated by `/`; empty is the top folder.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct CatalogPath {
    pub(super) names: Vec<BlobName>,
}

impl CatalogPath {
    pub(super) fn parse(text: &str) -> Result<CatalogPath, CatalogError> {
        let trimmed = text.trim_matches('/');
        if trimmed.is_empty() {
            return Ok(CatalogPath { names: Vec::new() });
        }
        let names = trimmed
            .split('/')
            .map(|name| {
                if name == FOLDER_MARKER
                    || name == SHEET_METADATA
                    || name == DATA_DIR
                    || name == DUE_DIR
                    || name == LIVE_DIR
                {
                    return Err(format!("{name:?} is reserved"));
                }
                BlobName::new(name).map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| CatalogError::InvalidPath {
                path: text.to_owned(),
                reason,
            })?;
        Ok(CatalogPath { names })
    }

    pub(super) fn display(&self) -> String {
        let names: Vec<&str> = self.names.iter().map(BlobName::as_str).collect();
        if names.is_empty() {
            "the top folder".to_owned()
        } else {
            names.join("/")
        }
    }

    pub(super) fn parent(&self) -> Option<(CatalogPath, &BlobName)> {
        let (last, parent) = self.names.split_last()?;
        Some((
            CatalogPath {
                names: parent.to_vec(),
            },
            last,
        ))
    }

    pub(super) fn child(&self, name: BlobName) -> CatalogPath {
        let mut names = self.names.clone();
        names.push(name);
        CatalogPath { names }
    }
}
