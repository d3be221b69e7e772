//! The S3-compatible server the object-store tests run against: moto,
//! installed into a cache directory on first use, started on loopback on a
//! free port with a fresh bucket, and stopped when dropped.
//!
//! moto checks a conditional write (`If-None-Match: *`, `If-Match`) and
//! then writes, without a lock, on a threaded server: two racing creates
//! can both succeed. Real S3 decides them atomically. So the server is not
//! `moto_server` but [`LAUNCHER`], which serves moto's WSGI app with one
//! lock around every request: requests still arrive on many connections,
//! but moto handles them one at a time, and a test of "exactly one writer
//! wins" tests the client, not the server's luck.

use anyhow::{Context, Result, bail};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What gets installed: moto's S3 server and the web stack it serves with,
/// pinned so every machine runs the server the tests were written against.
const PACKAGES: [&str; 4] = [
    "moto[s3]==5.2.5",
    "flask==3.1.3",
    "flask-cors==6.0.5",
    "werkzeug==3.1.9",
];

/// Serves moto's S3 app with one request handled at a time (see the module
/// documentation). Written into the virtualenv on every start.
const LAUNCHER: &str = r#"# Serves moto's S3 with every request handled one at a time.
#
# Written by `cargo xtask` (xtask/src/s3.rs). moto checks conditional writes
# and then writes without a lock; one lock around each request makes every
# check-then-write atomic, as S3's are.
import sys
import threading
from operator import methodcaller

from moto import backends
from moto.core import errors as moto_errors
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.serving import run_simple

from moto.s3.models import S3Backend
from moto.s3.utils import _VersionedKeyStore

# moto looks up which service a request is for by listing its own package
# directory and stat-ing each entry, on every request: half its time per
# request went there. The list does not change while it runs.
moto_modules = tuple(backends.list_of_moto_modules())
backends.list_of_moto_modules = lambda: moto_modules

# Two more lookups moto repeats on every request with the same answer: the
# backend for the request's host (each service's URL patterns tried in
# turn), and the table of S3's errors, built anew for each error reply (a
# failed conditional write is one). A tenth of its time together.
moto_backend_for_host = DomainDispatcherApplication.get_backend_for_host
backend_for_host = {}


def get_backend_for_host(self, host):
    if host not in backend_for_host:
        backend_for_host[host] = moto_backend_for_host(self, host)
    return backend_for_host[host]


DomainDispatcherApplication.get_backend_for_host = get_backend_for_host
error_lookups = moto_errors.ErrorLookupFactory()
moto_errors.ErrorLookupFactory = lambda: error_lookups

app = DomainDispatcherApplication(create_backend_app)
lock = threading.Lock()

# moto lists a prefix by walking every key of the bucket through Python
# calls (a version-list lookup each), and the blob store lists a name's
# prefix on each write (is it a directory?): writing 10,000 blobs took
# 7 minutes, quadratic in the bucket. This hands moto's own listing only
# the keys under the prefix, picked out at C speed first; its answer is
# the same. Safe because requests run one at a time (the lock below).
moto_list_objects = S3Backend.list_objects


def list_objects(self, bucket, prefix, *args, **kwargs):
    keys = getattr(bucket, "keys", None)
    if not prefix or type(keys) is not _VersionedKeyStore:
        return moto_list_objects(self, bucket, prefix, *args, **kwargs)
    under = _VersionedKeyStore()
    for name in filter(methodcaller("startswith", prefix), dict.keys(keys)):
        dict.__setitem__(under, name, dict.__getitem__(keys, name))
    bucket.keys = under
    try:
        return moto_list_objects(self, bucket, prefix, *args, **kwargs)
    finally:
        bucket.keys = keys


S3Backend.list_objects = list_objects


def serialized(environ, start_response):
    with lock:
        result = app(environ, start_response)
        try:
            return [bytes(chunk) for chunk in result]
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


class QuietRequestHandler(MotoRequestHandler):
    # A line per request took a sixth of the server's time (formatting a
    # date, taking the logging lock, writing): only server errors are
    # logged, and tracebacks.
    def log_request(self, code="-", size="-"):
        if str(code).startswith("5"):
            super().log_request(code, size)


run_simple(
    sys.argv[1],
    int(sys.argv[2]),
    serialized,
    threaded=True,
    request_handler=QuietRequestHandler,
)
"#;

/// The bucket the tests use; every test picks its own random prefix in it.
pub(crate) const BUCKET: &str = "infinisheet-tests";

/// How long the server may take to answer after it was started.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running server; stopped on drop.
pub(crate) struct S3Server {
    child: Child,
    endpoint: String,
}

impl S3Server {
    /// Installs moto if needed and starts it.
    /// Starts a server whose log is `target/moto-NAME.log`.
    pub(crate) fn start(name: &str) -> Result<Self> {
        let (python, launcher) = launcher()?;
        let port = free_port()?;
        let log_path = crate::target_dir().join(format!("moto-{name}.log"));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let child = Command::new(python)
            .arg(&launcher)
            .args(["127.0.0.1", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting moto")?;
        let mut server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        wait_for_port(&mut server.child, port, START_TIMEOUT, "moto")
            .with_context(|| format!("moto did not come up; see {}", log_path.display()))?;
        http_put(port, &format!("/{BUCKET}")).context("creating the test bucket")?;
        eprintln!(
            "S3 server (moto) for {name} on {}, its log in {}",
            server.endpoint,
            log_path.display()
        );
        Ok(server)
    }

    /// The environment that points `object_store`'s S3 builder at the
    /// server.
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
            ("AWS_ACCESS_KEY_ID", "infinisheet".to_owned()),
            ("AWS_SECRET_ACCESS_KEY", "infinisheet".to_owned()),
            ("AWS_BUCKET", BUCKET.to_owned()),
            // Tells the S3 tests a server is there: missing it is a failure.
            ("INFINISHEET_S3", "1".to_owned()),
        ]
    }
}

/// Waits until `child` (a server called `name`) answers on `port`, or
/// fails if it exits or `timeout` passes first.
pub(crate) fn wait_for_port(
    child: &mut Child,
    port: u16,
    timeout: Duration,
    name: &str,
) -> Result<()> {
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("{name} exited with {status}");
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if started.elapsed() > timeout {
            bail!("no answer on port {port} after {timeout:?}");
        }
        // Polling a port that is not open yet: there is no event to wait on.
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where moto is installed: `$INFINISHEET_CACHE`, else `~/.cache/infinisheet`,
/// else the target directory.
pub(crate) fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("INFINISHEET_CACHE") {
        return PathBuf::from(dir);
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".cache").join("infinisheet"),
        None => crate::target_dir().join("cache"),
    }
}

/// The Python that runs moto and the script that serves it one request
/// at a time (`python script HOST PORT`), installed if needed.
pub(crate) fn launcher() -> Result<(PathBuf, PathBuf)> {
    let venv = install()?;
    let launcher = venv.join("serialized_moto.py");
    std::fs::write(&launcher, LAUNCHER)
        .with_context(|| format!("writing {}", launcher.display()))?;
    Ok((venv.join("bin").join("python"), launcher))
}

/// A virtualenv holding the pinned packages, created on first use.
fn install() -> Result<PathBuf> {
    pip_install("moto-5.2.5", &PACKAGES)
}

/// A virtualenv in the cache directory `name` holding `packages` from
/// PyPI, created once: a marker file records what was installed, so a
/// changed pin installs again.
pub(crate) fn pip_install(name: &str, packages: &[&str]) -> Result<PathBuf> {
    let venv = cache_dir().join(name);
    let marker = venv.join("installed");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|done| done == wanted) {
        return Ok(venv);
    }
    eprintln!("installing {} into {}", packages.join(", "), venv.display());
    std::fs::create_dir_all(venv.parent().context("cache directory")?)?;
    crate::run("python3", &["-m", "venv", &venv.to_string_lossy()], &[])?;
    let pip = venv.join("bin").join("pip");
    let mut args = vec!["install", "--quiet", "--disable-pip-version-check"];
    args.extend(packages);
    crate::run(&pip.to_string_lossy(), &args, &[])?;
    std::fs::write(&marker, wanted)?;
    Ok(venv)
}

pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A bodiless HTTP PUT that must answer 200.
fn http_put(port: u16, path: &str) -> Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "PUT {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut reply = String::new();
    stream.read_to_string(&mut reply)?;
    let status = reply.lines().next().unwrap_or_default();
    if !status.contains(" 200") {
        bail!("PUT {path} answered {status:?}");
    }
    Ok(())
}
