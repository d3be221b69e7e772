//! Shared helpers for the Infinisheet benchmarks in `benches/benches/`.

use bytes::Bytes;
use infinisheet_event_log::LogEntry;

/// A log entry of `len` bytes, the size of a typical encoded cell edit when
/// `len` is 60.
pub fn entry_of(len: usize) -> LogEntry {
    LogEntry::new(Bytes::from(vec![0x5a; len]))
}

/// Flushes dirty pages and lets the disk settle, so a durable measurement
/// does not pay for earlier writes (fsync latency rises 5–20x while earlier
/// large writes are still being flushed; see ANCHORS.md).
pub fn settle() {
    let _ = std::process::Command::new("sync").status();
    std::thread::sleep(std::time::Duration::from_millis(200));
}

/// Runs the benchmark binary `exe` with `args` in a fresh process and
/// returns what it printed (trimmed); panics, with its stderr, if it fails.
pub fn fresh_process(exe: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = std::process::Command::new(exe)
        .args(args)
        .output()
        .unwrap_or_else(|err| panic!("cannot run {exe}: {err}"));
    assert!(
        out.status.success(),
        "{exe}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The sum of `iters` runs of `run`, each a task of its own on the
/// runtime (so a backend's `block_in_place` is measured as a host app
/// meets it), each timing itself.
pub async fn timed_tasks<F, Fut>(iters: u64, run: F) -> std::time::Duration
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::time::Duration> + Send + 'static,
{
    let mut total = std::time::Duration::ZERO;
    for _ in 0..iters {
        total += tokio::spawn(run())
            .await
            .unwrap_or_else(|err| panic!("benchmark task failed: {err}"));
    }
    total
}

/// The peak resident memory of this process so far (`VmHWM`), in KiB.
pub fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Reads the last `n` entries of `log` (fewer if it holds fewer) and
/// returns how many it read.
pub async fn tail_of(log: &dyn infinisheet_event_log::EventLog, n: u64) -> usize {
    use infinisheet_event_log::{EventLogExt, KnownSnapshot, QueryEnd, QueryStart};
    let infinisheet_event_log::Bounds { start, end } = log
        .bounds()
        .await
        .unwrap_or_else(|err| panic!("bounds: {err}"));
    let from = end.saturating_sub(n).max(start);
    let read = log
        .query_all(
            QueryStart::Id(from),
            QueryEnd::End,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap_or_else(|err| panic!("tail read: {err}"));
    read.entries.len()
}

/// A multi-threaded runtime like a host app's.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|err| panic!("cannot start a runtime: {err}"))
}

/// Runs `work` as a task on a runtime worker thread, as a host app's calls
/// run (not on the thread blocking on the runtime, where `block_in_place`
/// costs nothing and would flatter a backend).
pub fn on_worker<T: Send + 'static>(
    rt: &tokio::runtime::Runtime,
    work: impl std::future::Future<Output = T> + Send + 'static,
) -> T {
    rt.block_on(async {
        tokio::spawn(work)
            .await
            .unwrap_or_else(|err| panic!("benchmark task failed: {err}"))
    })
}

/// The million-cell sheet of the engine benchmarks: 1,000 rows by 1,000
/// columns of numbers and some text, a snapshot of all but the last 1,000
/// edits, and those 1,000 edits as the log tail.
pub mod sheet {
    use infinisheet_blob_store::{BlobDir, BlobStore};
    use infinisheet_engine::{Cell, CellRef, CellValue, SheetOptions, Spreadsheet};
    use infinisheet_event_log::{EventLog, MetadataUpdate};
    use infinisheet_filesystem::FsBlobStore;
    use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
    use std::path::Path;
    use std::sync::Arc;

    /// Edits after the snapshot.
    pub const TAIL: u32 = 1_000;

    fn cell(i: u32) -> Cell {
        if i.is_multiple_of(10) {
            Cell::new(CellValue::Text(format!("label {i}")))
        } else {
            Cell::new(CellValue::Number(f64::from(i) * 0.5)).with_format("0.00")
        }
    }

    /// Writes the sheet into `log` and `dir`: all cells in batches of
    /// 10,000, a snapshot before the last `TAIL`, published.
    pub async fn build(log: Arc<dyn EventLog>, dir: Arc<dyn BlobDir>) {
        let options = SheetOptions::default().snapshot_interval(0);
        let sheet = Spreadsheet::open(log.clone(), dir, options)
            .await
            .unwrap_or_else(|err| panic!("open: {err}"));
        let side = crate::million_side();
        let total = side * side;
        let at = u64::from(total - TAIL);
        for chunk in (0..total).collect::<Vec<_>>().chunks(10_000) {
            let batch = chunk
                .iter()
                .map(|&i| (CellRef::new(i / side, i % side), cell(i)))
                .collect();
            sheet
                .set_cells(batch)
                .await
                .unwrap_or_else(|err| panic!("edit: {err}"));
        }
        // The snapshot is written from a sheet holding exactly the entries
        // before it would hold them all; writing from `sheet` is the same.
        let value = sheet
            .write_snapshot(at)
            .await
            .unwrap_or_else(|err| panic!("snapshot: {err}"));
        log.set_metadata(at, MetadataUpdate::publish_snapshot(value.blob_id))
            .await
            .unwrap_or_else(|err| panic!("publish: {err}"));
    }

    /// The default embedded storage of a sheet in `dir`: a SQLite log
    /// (`sheet.db`, log `sheet`) and a filesystem blob store (`blobs/`).
    pub async fn embedded(dir: &Path) -> (Arc<dyn EventLog>, Arc<dyn BlobDir>) {
        let db = SqliteDatabase::open(dir.join("sheet.db"), SqliteOptions::default())
            .await
            .unwrap_or_else(|err| panic!("sqlite: {err}"));
        let log = db
            .open_or_create_log("sheet")
            .await
            .unwrap_or_else(|err| panic!("sqlite log: {err}"));
        let blobs = FsBlobStore::open(dir.join("blobs"))
            .await
            .unwrap_or_else(|err| panic!("blobs: {err}"));
        (Arc::new(log), blobs.root())
    }
}

/// Raw rusqlite doing what the SQLite backend does, the reference the SQLite
/// benchmarks measure it against.
pub mod raw_sqlite {
    use bytes::Bytes;
    use infinisheet_sqlite::Durability;
    use rusqlite::{Connection, TransactionBehavior, params};
    use std::path::Path;
    use std::time::Duration;

    /// A raw connection to `path` with the settings the backend uses.
    pub fn connection(path: &Path, durability: Durability) -> Connection {
        let open = || -> rusqlite::Result<Connection> {
            let conn = Connection::open(path)?;
            conn.busy_timeout(Duration::from_secs(5))?;
            conn.pragma_update(None, "journal_mode", "WAL")?;
            let synchronous = if durability == Durability::Full {
                "FULL"
            } else {
                "NORMAL"
            };
            conn.pragma_update(None, "synchronous", synchronous)?;
            Ok(conn)
        };
        open().unwrap_or_else(|err| panic!("raw connection to {}: {err}", path.display()))
    }

    /// The backend's append done by hand: win the id, insert, commit.
    pub fn append(conn: &mut Connection, log: i64, at: i64, payloads: &[Bytes]) {
        let run = |conn: &mut Connection| -> rusqlite::Result<usize> {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let changed = tx
                .prepare_cached("UPDATE logs SET end_seq = ?1 WHERE id = ?2 AND end_seq = ?3")?
                .execute(params![at + payloads.len() as i64, log, at])?;
            {
                let mut insert = tx.prepare_cached(
                    "INSERT INTO entries (log, seq, payload, snapshot, history, pending, crc) \
                     VALUES (?1, ?2, ?3, NULL, NULL, NULL, ?4)",
                )?;
                for (i, payload) in payloads.iter().enumerate() {
                    // A checksum of the payload, as the backend stores one
                    // (the raw log is never read back, so it is not checked).
                    let crc = i64::from(crc32c::crc32c(payload));
                    insert.execute(params![log, at + i as i64, &payload[..], crc])?;
                }
            }
            tx.commit()?;
            Ok(changed)
        };
        match run(conn) {
            Ok(1) => {}
            Ok(_) => panic!("raw append at {at}: the end moved"),
            Err(err) => panic!("raw append at {at}: {err}"),
        }
    }
}

/// The log a place names (`sqlite:PATH`, `file:DIR`, `s3:PREFIX` in the
/// `AWS_*` environment's bucket, or `postgres:LOG` in the database
/// `INFINISHEET_POSTGRES_URL` names), created if missing: what the tail-latency
/// benchmark and its writer process both open.
pub async fn open_place(place: &str) -> std::sync::Arc<dyn infinisheet_event_log::EventLog> {
    use std::sync::Arc;
    if let Some(path) = place.strip_prefix("sqlite:") {
        let db = infinisheet_sqlite::SqliteDatabase::open(
            path,
            infinisheet_sqlite::SqliteOptions::default(),
        )
        .await
        .unwrap_or_else(|err| panic!("{place}: {err}"));
        Arc::new(
            db.open_or_create_log("tail")
                .await
                .unwrap_or_else(|err| panic!("{place}: {err}")),
        )
    } else if let Some(dir) = place.strip_prefix("file:") {
        Arc::new(
            infinisheet_filesystem::FsEventLog::open(
                dir,
                infinisheet_filesystem::FsLogOptions::default(),
            )
            .await
            .unwrap_or_else(|err| panic!("{place}: {err}")),
        )
    } else if let Some(prefix) = place.strip_prefix("s3:") {
        let bucket =
            std::env::var("AWS_BUCKET").unwrap_or_else(|_| panic!("{place}: no AWS_BUCKET"));
        let url = infinisheet_object_store::open_url(&format!("s3://{bucket}/{prefix}"))
            .unwrap_or_else(|err| panic!("{place}: {err}"));
        Arc::new(
            infinisheet_object_store::ObjectStoreEventLog::open(url.store, url.prefix)
                .await
                .unwrap_or_else(|err| panic!("{place}: {err}")),
        )
    } else if let Some(name) = place.strip_prefix("postgres:") {
        let url = std::env::var("INFINISHEET_POSTGRES_URL")
            .unwrap_or_else(|_| panic!("{place}: no INFINISHEET_POSTGRES_URL"));
        let db = infinisheet_postgres::PostgresDatabase::connect(
            &url,
            infinisheet_postgres::PostgresOptions::default(),
        )
        .await
        .unwrap_or_else(|err| panic!("{place}: {err}"));
        Arc::new(
            db.open_or_create_log(name)
                .await
                .unwrap_or_else(|err| panic!("{place}: {err}")),
        )
    } else {
        panic!("unknown place {place}");
    }
}

/// Side of the benchmarks' million-cell sheets: 1,000 when measuring,
/// 200 (40,000 cells) when a benchmark runs as a test of itself.
pub fn million_side() -> u32 {
    if measuring() { 1_000 } else { 200 }
}

/// Whether the benchmark runs as one (`cargo bench`, which passes
/// `--bench`), not as a test of itself (`cargo test --benches`, once
/// through, quickly).
pub fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// The `infinisheet` command the benchmarks of `serve` run: its release
/// build when measuring (`cargo xtask bench` builds it first), the debug
/// build the tests use otherwise; in the target directory cargo uses.
pub fn command_binary() -> std::path::PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        std::path::PathBuf::from,
    );
    let profile = if measuring() { "release" } else { "debug" };
    let binary = target.join(profile).join("infinisheet");
    assert!(
        binary.is_file(),
        "{} is not built: cargo build{} -p infinisheet-cli (cargo xtask bench does)",
        binary.display(),
        if measuring() { " --release" } else { "" }
    );
    binary
}

/// A running `infinisheet serve` ([`command_binary`]), stopped with
/// SIGTERM when dropped.
pub struct Served {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl Served {
    /// `infinisheet --home HOME serve --listen 127.0.0.1:0 EXTRA...`,
    /// its access log silenced.
    pub fn start(home: &std::path::Path, extra: &[&str]) -> Served {
        let mut command = std::process::Command::new(command_binary());
        command.arg("--home").arg(home);
        Served::start_on(command, extra)
    }

    /// `command` (the command with its storage chosen) `-q serve --listen
    /// 127.0.0.1:0 EXTRA...`, its access log silenced.
    pub fn start_on(mut command: std::process::Command, extra: &[&str]) -> Served {
        use std::io::BufRead;
        let mut child = command
            .args(["-q", "serve", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env_remove("INFINISHEET_TOKEN")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start infinisheet serve: {err}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut line = String::new();
        let _ = std::io::BufReader::new(stdout).read_line(&mut line);
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve said {line:?}"))
            .to_owned();
        let addr = url.trim_start_matches("http://").to_owned();
        Served { child, url, addr }
    }

    /// A field of its `/proc/PID/status` (`VmRSS`, `VmHWM` in KiB,
    /// `Threads`).
    pub fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    /// One HTTP/1.1 request (`Connection: close`); its status.
    pub fn request(&self, method: &str, path: &str, headers: &[&str], body: &[u8]) -> u16 {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.addr)
            .unwrap_or_else(|err| panic!("connecting to {}: {err}", self.addr));
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for header in headers {
            head.push_str(header);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(body);
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        String::from_utf8_lossy(&reply)
            .get(9..12)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0)
    }
}

impl Served {
    /// A connection that sends `head` and reads its reply only until it
    /// holds `until`, then nothing more: a client that takes nothing.
    pub fn stalled(&self, head: &str, until: &str) -> (std::net::TcpStream, String) {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.addr)
            .unwrap_or_else(|err| panic!("connecting to {}: {err}", self.addr));
        let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(60)));
        let _ = write!(stream, "{head}Host: {}\r\n\r\n", self.addr);
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        while !String::from_utf8_lossy(&seen).contains(until) {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
        (stream, String::from_utf8_lossy(&seen).into_owned())
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}
