//! Azure Blob Storage's emulator the Azure tests run against: Azurite
//! from the npm registry, installed into a cache directory on first use
//! with the Azure SDK's blob client (only to create the test container:
//! `object_store` has no call for it), started on loopback on a free port
//! holding everything in memory, and stopped when dropped.
//!
//! Azurite decides conditional writes (`If-None-Match: *`, `If-Match`)
//! itself, one request at a time in one Node process, so a test of
//! "exactly one writer wins" tests the client; the event log's own check
//! at open confirms it honours both.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What gets installed, pinned.
const PACKAGES: [&str; 2] = ["azurite@3.37.0", "@azure/storage-blob@12.32.0"];

/// The container the tests use; each test picks its own random prefix.
const CONTAINER: &str = "infinisheet-tests";

/// Azurite's well-known development account and key (public, documented
/// by Microsoft; `object_store` uses the same for its emulator mode).
const CREATE_CONTAINER: &str = r#"// Written by `cargo xtask` (xtask/src/azure.rs): creates a container.
const { BlobServiceClient, StorageSharedKeyCredential } = require("@azure/storage-blob");
const [url, container] = process.argv.slice(2);
const account = "devstoreaccount1";
const key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
const client = new BlobServiceClient(`${url}/${account}`, new StorageSharedKeyCredential(account, key));
client.getContainerClient(container).createIfNotExists().then(
  () => process.exit(0),
  (err) => { console.error(err.message); process.exit(1); },
);
"#;

/// How long the emulator may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running emulator; stopped on drop.
pub(crate) struct AzureServer {
    child: Child,
    url: String,
}

impl AzureServer {
    /// Installs Azurite if needed and starts it with an empty container.
    pub(crate) fn start() -> Result<Self> {
        let dir = install()?;
        let port = crate::s3::free_port()?;
        let target = crate::target_dir();
        let log_path = target.join("azurite.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(dir.join("node_modules").join(".bin").join("azurite-blob"))
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            // Nothing on disk: the tests' blobs live and die with the
            // server. Saving its database and writing each blob's file,
            // Azurite spent 81 s of CPU on the Azure tests; in memory, 53 s
            // (and the tests took 57 s rather than 101 s).
            .arg("--inMemoryPersistence")
            // Its workspace, should it write anything after all.
            .current_dir(target)
            .args(["--silent", "--skipApiVersionCheck"])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting azurite")?;
        let mut server = AzureServer {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        crate::s3::wait_for_port(&mut server.child, port, START_TIMEOUT, "azurite")
            .with_context(|| format!("azurite did not come up; see {}", log_path.display()))?;
        let script = dir.join("create-container.js");
        std::fs::write(&script, CREATE_CONTAINER)?;
        crate::run(
            "node",
            &[&script.to_string_lossy(), &server.url, CONTAINER],
            &[],
        )
        .context("creating the test container")?;
        eprintln!(
            "Azure emulator (azurite) on {}, its log in {}",
            server.url,
            log_path.display()
        );
        Ok(server)
    }

    /// The environment that points `object_store`'s Azure builder at the
    /// emulator (`az://CONTAINER/...` URLs).
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AZURE_STORAGE_USE_EMULATOR", "true".to_owned()),
            ("AZURITE_BLOB_STORAGE_URL", self.url.clone()),
            ("INFINISHEET_AZURE_CONTAINER", CONTAINER.to_owned()),
            // Tells the Azure tests the emulator is there.
            ("INFINISHEET_AZURE", "1".to_owned()),
        ]
    }
}

impl Drop for AzureServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Installs Node.js and npm from Debian's packages when they are missing.
fn ensure_node() -> Result<()> {
    if crate::works("node", &["--version"]) && crate::works("npm", &["--version"]) {
        return Ok(());
    }
    crate::apt_install(&["nodejs", "npm"])
}

/// A directory holding the pinned packages, installed on first use.
fn install() -> Result<PathBuf> {
    npm_install("azurite-3.37.0", &PACKAGES)
}

/// `packages` from the npm registry in the cache directory `name`
/// (Node.js and npm installed first if missing), once: a marker file
/// records what was installed, so a changed pin installs again.
pub(crate) fn npm_install(name: &str, packages: &[&str]) -> Result<PathBuf> {
    ensure_node()?;
    let dir = crate::s3::cache_dir().join(name);
    let marker = dir.join("installed");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|done| done == wanted) {
        return Ok(dir);
    }
    eprintln!("installing {} into {}", packages.join(", "), dir.display());
    std::fs::create_dir_all(&dir)?;
    // A package.json of its own, so npm installs here and not in a parent.
    std::fs::write(dir.join("package.json"), "{\"private\": true}\n")?;
    let prefix = dir.to_string_lossy().into_owned();
    let mut args = vec![
        "install",
        "--no-audit",
        "--no-fund",
        "--loglevel=error",
        "--prefix",
        &prefix,
    ];
    args.extend(packages);
    crate::run("npm", &args, &[])?;
    std::fs::write(&marker, wanted)?;
    Ok(dir)
}
