//! The commands of the `infinisheet` binary, and what they share: where
//! the catalog is, opening sheets, and errors as one line.

pub(crate) mod catalog;
pub(crate) mod cells;
pub(crate) mod demo;
pub(crate) mod worker;

use anyhow::Context;
use infinisheet::{Catalog, CatalogSheet, Storage, WorkflowHost};
use std::path::PathBuf;

/// Where the catalog is: the embedded storage in a directory, or logs and
/// blobs by URL.
#[derive(Debug)]
pub(crate) struct Place {
    pub(crate) home: Option<PathBuf>,
    pub(crate) logs: Option<String>,
    pub(crate) blobs: Option<String>,
}

impl Place {
    /// The embedded storage's directory: `--home`, `$INFINISHEET_HOME`,
    /// `~/.infinisheet`, or `.infinisheet` here without a home directory.
    fn home(&self) -> PathBuf {
        self.home.clone().unwrap_or_else(|| {
            std::env::var_os("HOME").map_or_else(
                || PathBuf::from(".infinisheet"),
                |home| PathBuf::from(home).join(".infinisheet"),
            )
        })
    }

    pub(crate) async fn catalog(&self) -> anyhow::Result<Catalog> {
        let storage = match (&self.logs, &self.blobs) {
            (Some(logs), Some(blobs)) => Storage::open(logs, blobs).await?,
            _ => {
                let home = self.home();
                Storage::embedded(&home)
                    .await
                    .with_context(|| format!("opening the storage in {}", home.display()))?
            }
        };
        Ok(Catalog::new(storage))
    }

    pub(crate) async fn sheet(&self, path: &str) -> anyhow::Result<(Catalog, CatalogSheet)> {
        let catalog = self.catalog().await?;
        let sheet = catalog.open_sheet(path).await?;
        Ok((catalog, sheet))
    }
}

/// An error and its causes on one line (causes already part of the message
/// are not repeated).
pub(crate) fn one_line(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line.replace('\n', " ")
}

/// A writer's snapshot host, or none with `--no-worker`: runs the jobs the
/// command's edits ask for (and those already pending) before it exits.
pub(crate) fn host(sheet: &CatalogSheet, no_worker: bool) -> Option<WorkflowHost> {
    (!no_worker).then(|| {
        let options = sheet.workflow_options().poll_interval(None);
        WorkflowHost::start(sheet.log(), sheet.dir(), options)
    })
}

/// Waits for `host`'s jobs, then stops it; says so if any failed.
pub(crate) async fn finish(host: Option<WorkflowHost>) {
    if let Some(host) = host {
        host.idle().await;
        if host.failures() > 0 {
            eprintln!(
                "warning: {} snapshot job(s) failed; they stay pending for a worker",
                host.failures()
            );
        }
        host.shutdown().await;
    }
}
