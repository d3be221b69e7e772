//! The child processes' side of the multi-host test (`tests/multihost.rs`):
//! S3 clients that give every request and every attempt a deadline (a
//! partition swallows requests without a word), the fault proxy as a
//! process of its own on the router host, and a bare HTTP PUT to create
//! the bucket.

use crate::proxy::{FaultProxy, FaultRates};
use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use infinisheet_object_store::object_store::{ClientConfigKey, ObjectStore, PutMode};
use infinisheet_test_kit::{Call, Intercepted, Interceptor, Verdict};
use std::io::{BufRead, Write};
use std::sync::Arc;
use std::time::Duration;

/// The longest one append attempt may take before it is abandoned and
/// sent again (with its token).
pub const ATTEMPT: Duration = Duration::from_secs(10);

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

/// The log under `prefix` of the bucket the `AWS_*` environment names,
/// with short request deadlines; its record creates overwrite if
/// `ignore_create`.
///
/// # Errors
///
/// If the store cannot be configured or the log opened.
pub async fn s3_log(prefix: &str, ignore_create: bool) -> Result<ObjectStoreEventLog, String> {
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
/// at most [`ATTEMPT`].
///
/// # Errors
///
/// As [`crate::append_and_report_within`].
pub async fn write(log: &ObjectStoreEventLog, writer: u32, count: u64) -> Result<(), String> {
    crate::append_and_report_within(log, writer, count, ATTEMPT, &mut std::io::stdout().lock())
        .await
}

/// Runs a fault proxy on `listen` in front of `upstream`, connecting from
/// `source`, until its stdin ends; prints `ready` once listening and
/// `counts <requests> <lost> <503s>` at the end.
///
/// # Errors
///
/// If an address does not parse or cannot be bound.
pub async fn proxy(listen: &str, upstream: &str, source: &str, seed: u64) -> Result<(), String> {
    let parse = |what: &str, text: &str| {
        text.parse()
            .map_err(|_| format!("bad {what} address {text:?}"))
    };
    let rates = FaultRates {
        lost_reply: 0.03,
        unavailable: 0.03,
        max_latency: Duration::from_millis(5),
        seed,
    };
    let proxy = FaultProxy::start_at(
        parse("listen", listen)?,
        parse("upstream", upstream)?,
        Some(
            source
                .parse()
                .map_err(|_| format!("bad source {source:?}"))?,
        ),
        rates,
    )
    .await
    .map_err(|e| format!("listening on {listen}: {e}"))?;
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
    let counts = proxy.counts();
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
