//! The child processes' side of the multi-host test (`tests/multihost.rs`):
//! clients of a log on S3 (`s3:PREFIX`, the bucket the `AWS_*`
//! environment names) or of an `infinisheet serve` (`http:ID`, the server
//! `INFINISHEET_SERVER` names, with `INFINISHEET_TOKEN`) or PostgreSQL
//! (`pg:NAME`, the database `INFINISHEET_POSTGRES_URL` names), giving every
//! request and every attempt a deadline (a partition swallows requests
//! without a word); the fault proxy as a process of its own on the router
//! host; and a bare HTTP PUT to create the bucket.

use crate::proxy::{FaultCounts, FaultProxy, FaultRates, TcpFaultProxy};
use infinisheet_event_log::EventLog;
use infinisheet_http::{HttpEventLog, HttpStorage};
use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use infinisheet_object_store::{ClientConfigKey, ObjectStore, PutMode};
use infinisheet_postgres::{PostgresDatabase, PostgresEventLog, PostgresOptions};
use infinisheet_test_kit::{Call, Intercepted, Interceptor, Verdict};
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

/// The longest one append attempt may take before it is abandoned and
/// sent again (with its token).
pub const ATTEMPT: Duration = Duration::from_secs(10);

/// The longest one try of a sheet's edit (or of opening it again) may
/// take.
pub const SHEET_ATTEMPT: Duration = Duration::from_secs(30);

/// The longest one request may take; a partition makes the rest wait.
const REQUEST: Duration = Duration::from_secs(5);

/// Ignores `PutMode::Create` on a log's records: every writer's create
/// succeeds, so two writers can both win one id — the store the
/// multi-host test must catch.
#[derive(Debug)]
pub struct IgnoresCreate;

impl Interceptor for IgnoresCreate {
    fn intercept(&self, call: Call<'_>) -> Verdict {
        if let Call::Put { location, opts } = call
            && location.as_ref().contains("/records/")
            && matches!(opts.mode, PutMode::Create)
        {
            opts.mode = PutMode::Overwrite;
        }
        Verdict::Pass
    }
}

/// The log `spec` names (`s3:PREFIX` or `http:ID`, see the module
/// documentation), created if it is not there; on S3 its record creates
/// overwrite if `ignore_create`.
///
/// # Errors
///
/// A spec of neither form, or a log that cannot be opened in a minute.
pub async fn open(spec: &str, ignore_create: bool) -> Result<Box<dyn EventLog>, String> {
    if let Some(prefix) = spec.strip_prefix("s3:") {
        return Ok(Box::new(s3_log(prefix, ignore_create).await?));
    }
    if ignore_create {
        return Err("--ignore-create is for s3: logs".into());
    }
    if let Some(id) = spec.strip_prefix("http:") {
        return Ok(Box::new(http_log(id).await?));
    }
    if let Some(name) = spec.strip_prefix("pg:") {
        return Ok(Box::new(postgres_log(name).await?));
    }
    Err(format!(
        "a log is s3:PREFIX, http:ID or pg:NAME, not {spec:?}"
    ))
}

/// The log `name` of the database `INFINISHEET_POSTGRES_URL` names, tried
/// for a minute.
async fn postgres_log(name: &str) -> Result<PostgresEventLog, String> {
    let url = std::env::var("INFINISHEET_POSTGRES_URL")
        .map_err(|_| "pg: logs need INFINISHEET_POSTGRES_URL".to_owned())?;
    let mut options = PostgresOptions::default();
    options.connect_timeout = REQUEST;
    retried(|| async {
        let db = PostgresDatabase::connect(&url, options)
            .await
            .map_err(|e| e.to_string())?;
        db.open_or_create_log(name).await.map_err(|e| e.to_string())
    })
    .await
}

/// `open` tried for a minute (the server may be coming up, or behind a
/// partition), each try at most [`ATTEMPT`].
async fn retried<T, F, Fut>(open: F) -> Result<T, String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let started = std::time::Instant::now();
    loop {
        let failed = match tokio::time::timeout(ATTEMPT, open()).await {
            Ok(Ok(opened)) => return Ok(opened),
            Ok(Err(err)) => err,
            Err(_) => format!("no answer in {ATTEMPT:?}"),
        };
        if started.elapsed() > Duration::from_secs(60) {
            return Err(failed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The log `id` of the server `INFINISHEET_SERVER` names, tried for a
/// minute (the server may be coming up, or behind a partition).
async fn http_log(id: &str) -> Result<HttpEventLog, String> {
    let url = std::env::var("INFINISHEET_SERVER")
        .map_err(|_| "http: logs need INFINISHEET_SERVER".to_owned())?;
    let token = std::env::var("INFINISHEET_TOKEN").ok();
    retried(|| async {
        let server = HttpStorage::connect(&url, token.clone())
            .await
            .map_err(|e| e.to_string())?;
        server.log(id, true).await.map_err(|e| e.to_string())
    })
    .await
}

/// The log under `prefix` of the bucket the `AWS_*` environment names,
/// with short request deadlines; its record creates overwrite if
/// `ignore_create`.
async fn s3_log(prefix: &str, ignore_create: bool) -> Result<ObjectStoreEventLog, String> {
    infinisheet_object_store::install_tls();
    // Set as options rather than a `ClientOptions` of its own, which would
    // replace what the environment configured (plain HTTP allowed).
    let store = AmazonS3Builder::from_env()
        .with_retry(crate::quick_retries())
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::Timeout),
            format!("{}s", REQUEST.as_secs()),
        )
        .with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            "2s",
        )
        .build()
        .map_err(|e| e.to_string())?;
    let mut store: Arc<dyn ObjectStore> = Arc::new(store);
    if ignore_create {
        store = Arc::new(Intercepted::new(store, Arc::new(IgnoresCreate)));
    }
    // Opening reads the head; through a partition that may take tries.
    let started = std::time::Instant::now();
    loop {
        match ObjectStoreEventLog::open(store.clone(), prefix.into()).await {
            Ok(log) => return Ok(log),
            Err(infinisheet_object_store::OpenError::Storage(err))
                if err.is_retryable() && started.elapsed() < Duration::from_secs(60) =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(err) => return Err(err.to_string()),
        }
    }
}

/// Appends `count` entries of `writer`, printing `ack` lines, each attempt
/// at most [`ATTEMPT`], waiting `pace` after each.
///
/// # Errors
///
/// As [`crate::append_and_report_within`].
pub async fn write(
    log: &dyn EventLog,
    writer: u32,
    count: u64,
    pace: Duration,
) -> Result<(), String> {
    crate::append_and_report_within(
        log,
        writer,
        count,
        ATTEMPT,
        pace,
        &mut std::io::stdout().lock(),
    )
    .await
}

/// Runs a fault proxy on `listen` in front of `upstream`, connecting from
/// `source`, until its stdin ends; prints `ready` once listening and
/// `counts <requests> <lost> <503s>` at the end. An HTTP proxy
/// ([`FaultProxy`]: 3 % of replies lost, 3 % turned into 503s, up to 5 ms
/// delay), or with `tcp` a [`TcpFaultProxy`] (1 % of reply pieces lost,
/// the connection cut instead).
///
/// # Errors
///
/// If an address does not parse or cannot be bound.
pub async fn proxy(
    tcp: bool,
    listen: &str,
    upstream: &str,
    source: &str,
    seed: u64,
) -> Result<(), String> {
    let parse = |what: &str, text: &str| {
        text.parse()
            .map_err(|_| format!("bad {what} address {text:?}"))
    };
    let (listen_at, upstream) = (parse("listen", listen)?, parse("upstream", upstream)?);
    let source = Some(
        source
            .parse()
            .map_err(|_| format!("bad source {source:?}"))?,
    );
    let bound = |e: std::io::Error| format!("listening on {listen}: {e}");
    let counts: Box<dyn Fn() -> FaultCounts> = if tcp {
        let proxy = TcpFaultProxy::start_at(listen_at, upstream, source, 0.01, seed)
            .await
            .map_err(bound)?;
        Box::new(move || proxy.counts())
    } else {
        let rates = FaultRates {
            lost_reply: 0.03,
            unavailable: 0.03,
            max_latency: Duration::from_millis(5),
            seed,
        };
        let proxy = FaultProxy::start_at(listen_at, upstream, source, rates)
            .await
            .map_err(bound)?;
        Box::new(move || proxy.counts())
    };
    println!("ready");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    // The end of stdin (the test closing it, or dying) stops the proxy.
    tokio::task::spawn_blocking(|| {
        let mut sink = String::new();
        while std::io::stdin()
            .lock()
            .read_line(&mut sink)
            .is_ok_and(|n| n > 0)
        {
            sink.clear();
        }
    })
    .await
    .map_err(|e| e.to_string())?;
    let counts = counts();
    println!(
        "counts {} {} {}",
        counts.requests, counts.lost, counts.unavailable
    );
    Ok(())
}

/// A bodiless `PUT path` to `address` that must answer 200, tried for up
/// to a minute while the server is not up yet.
///
/// # Errors
///
/// If no try succeeded in a minute.
pub async fn http_put(address: &str, path: &str) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = std::time::Instant::now();
    let mut last = String::new();
    while started.elapsed() < Duration::from_secs(60) {
        let attempt = async {
            let mut stream = tokio::net::TcpStream::connect(address)
                .await
                .map_err(|e| e.to_string())?;
            let request = format!(
                "PUT {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            stream
                .write_all(request.as_bytes())
                .await
                .map_err(|e| e.to_string())?;
            let mut reply = String::new();
            stream
                .read_to_string(&mut reply)
                .await
                .map_err(|e| e.to_string())?;
            let status = reply.lines().next().unwrap_or_default().to_owned();
            if status.contains(" 200") {
                Ok(())
            } else {
                Err(format!("answered {status:?}"))
            }
        };
        match tokio::time::timeout(Duration::from_secs(10), attempt).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(err)) => last = err,
            Err(_) => last = "no answer in 10 s".into(),
        }
        // A server coming up: nothing to wait on but the port.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(format!("PUT {path} to {address}: {last}"))
}

/// The catalog on the storage `INFINISHEET_LOGS` and `INFINISHEET_BLOBS`
/// name (`s3://…` with the `AWS_*` environment, `http://…` with
/// `INFINISHEET_TOKEN`), opened within a minute.
async fn catalog() -> Result<infinisheet::Catalog, String> {
    let logs = std::env::var("INFINISHEET_LOGS").map_err(|_| "no INFINISHEET_LOGS".to_owned())?;
    let blobs =
        std::env::var("INFINISHEET_BLOBS").map_err(|_| "no INFINISHEET_BLOBS".to_owned())?;
    retried(|| async {
        infinisheet::Storage::open(&logs, &blobs)
            .await
            .map(infinisheet::Catalog::new)
            .map_err(|e| e.to_string())
    })
    .await
}

/// Makes the sheet `path` (taking snapshots every `interval` edits) if it
/// is not there.
///
/// # Errors
///
/// If the catalog cannot be reached or the sheet made in a minute.
pub async fn new_sheet(path: &str, interval: u64) -> Result<(), String> {
    let catalog = catalog().await?;
    let options = infinisheet::SheetOptions::default().snapshot_interval(interval);
    retried(|| async {
        match catalog.create_sheet(path, options).await {
            Ok(_) | Err(infinisheet::CatalogError::AlreadyExists { .. }) => Ok(()),
            Err(err) => Err(err.to_string()),
        }
    })
    .await
}

/// Edits the sheet `path` as writer `writer`: cell (row `n`, column
/// `writer`) becomes `n`, for `n` below `count`, `pace` apart, each edit
/// tried until it lands (each try at most [`SHEET_ATTEMPT`]; after a
/// failed one the sheet is opened anew) and then acknowledged as
/// `ack <writer> <n>`.
///
/// # Errors
///
/// If an edit keeps failing for three minutes.
pub async fn edit_sheet(path: &str, writer: u32, count: u64, pace: Duration) -> Result<(), String> {
    // An edit is several requests (a sheet catching up reads the log and
    // snapshot tiles), and on a loaded machine each can take seconds.
    const GIVE_UP: Duration = Duration::from_secs(180);
    use infinisheet::engine::{Cell, CellValue};
    let catalog = catalog().await?;
    let open = || async {
        let sheet = catalog.open_sheet(path).await.map_err(|e| e.to_string())?;
        sheet.writer(false).await.map_err(|e| e.to_string())
    };
    let mut sheet = retried(open).await?;
    let mut out = std::io::stdout().lock();
    for n in 0..count {
        let started = std::time::Instant::now();
        let row = u32::try_from(n).map_err(|_| "too many edits".to_owned())?;
        loop {
            let cell = Cell::new(CellValue::Number(n as f64));
            let edit = sheet.cells().set_cell(row, writer, cell);
            match tokio::time::timeout(SHEET_ATTEMPT, edit).await {
                Ok(Ok(_)) => break,
                Ok(Err(err)) if started.elapsed() > GIVE_UP => {
                    return Err(format!("edit {n}: {err}"));
                }
                Err(_) if started.elapsed() > GIVE_UP => {
                    return Err(format!(
                        "edit {n}: no answer in {SHEET_ATTEMPT:?}, for {GIVE_UP:?}"
                    ));
                }
                // The edit may or may not have landed; setting the cell
                // again is the same edit. A sheet that failed mid-edit is
                // opened anew.
                _ => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    if let Ok(Ok(reopened)) = tokio::time::timeout(SHEET_ATTEMPT, open()).await {
                        sheet = reopened;
                    }
                }
            }
        }
        writeln!(out, "ack {writer} {n}").map_err(|e| e.to_string())?;
        out.flush().map_err(|e| e.to_string())?;
        tokio::time::sleep(pace).await;
    }
    Ok(())
}

/// Checks the sheet `path` as `infinisheet check` does and reads its
/// cells back, opened cold: prints `problem <text>` for each problem,
/// `snapshots <count>`, `pending <count>` (jobs still due), then
/// `cell <column> <row> <value>` for each number in the first
/// `columns` columns and `rows` rows.
///
/// # Errors
///
/// If the sheet cannot be opened or read in a minute.
pub async fn check_sheet(path: &str, columns: u32, rows: u32) -> Result<(), String> {
    use infinisheet::engine::{CellRange, CellRef, CellValue};
    let catalog = catalog().await?;
    let sheet =
        retried(|| async { catalog.open_sheet(path).await.map_err(|e| e.to_string()) }).await?;
    let mut out = std::io::stdout().lock();
    let checked = infinisheet::check_sheet(&sheet).await;
    for problem in &checked.problems {
        writeln!(out, "problem {problem}").map_err(|e| e.to_string())?;
    }
    writeln!(out, "snapshots {}", checked.snapshots.len()).map_err(|e| e.to_string())?;
    writeln!(out, "pending {}", checked.pending.len()).map_err(|e| e.to_string())?;
    let cells = retried(|| async { sheet.open().await.map_err(|e| e.to_string()) }).await?;
    let range = CellRange::new(
        CellRef::new(0, 0),
        CellRef::new(rows.saturating_sub(1), columns.saturating_sub(1)),
    );
    let read = retried(|| async { cells.read(range).await.map_err(|e| e.to_string()) }).await?;
    for (row, cells) in read.iter().enumerate() {
        for (column, cell) in cells.iter().enumerate() {
            if let Some(cell) = cell
                && let CellValue::Number(value) = cell.value
            {
                writeln!(out, "cell {column} {row} {value}").map_err(|e| e.to_string())?;
            }
        }
    }
    out.flush().map_err(|e| e.to_string())
}
