//! Real processes sharing one log on the S3-compatible server that
//! `cargo xtask test` starts: the clients share nothing but the bucket.
//! Also through a proxy that loses replies and answers 503 after the
//! server acted, and a self-test showing the exactly-once check catches a
//! store that lets two writers win one id.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::aws::AmazonS3Builder;
use infinisheet_object_store::{ObjectStore, PutMode};
use infinisheet_process_tests::proxy::{FaultProxy, FaultRates, upstream_address};
use infinisheet_process_tests::{
    append_and_report, check_exactly_once, concurrent_appenders, parse_ack,
};
use infinisheet_test_kit::{Call, Intercepted, Interceptor, Verdict};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

fn spawn(prefix: &str, writer: u32, count: u64, endpoint: Option<&str>) -> Child {
    let mut command = Command::new(env!("CARGO_BIN_EXE_infinisheet-writer"));
    command
        .args(["s3-log", prefix, &writer.to_string(), &count.to_string()])
        .stdout(Stdio::piped());
    if let Some(endpoint) = endpoint {
        command.env("AWS_ENDPOINT", endpoint);
    }
    command.spawn().unwrap()
}

fn s3() -> Arc<dyn ObjectStore> {
    assert!(
        std::env::var_os("INFINISHEET_S3").is_some(),
        "this test needs the S3 server `cargo xtask test` starts"
    );
    infinisheet_object_store::install_tls();
    Arc::new(AmazonS3Builder::from_env().build().unwrap())
}

async fn open_on(store: Arc<dyn ObjectStore>, prefix: &str) -> ObjectStoreEventLog {
    ObjectStoreEventLog::open(store, prefix.into())
        .await
        .unwrap()
}

fn fresh_prefix(what: &str) -> String {
    format!("{what}-{:016x}", fastrand::u64(..))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_clients_append_to_one_log_on_s3() {
    let prefix = fresh_prefix("multi-client");
    // Opened once first, so the log exists before the clients race.
    open_on(s3(), &prefix).await;
    concurrent_appenders(
        |w, n| spawn(&prefix, w, n, None),
        4,
        100,
        || open_on(s3(), &prefix),
    )
    .await;
}

/// 4 processes append 125 entries each through a proxy that loses 5% of
/// the replies after the server acted, turns 5% into 503s, and delays
/// every reply by up to 5 ms: the log is dense and holds every
/// acknowledged entry exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_clients_over_a_lossy_network_append_exactly_once() {
    let seed = std::env::var("INFINISHEET_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("fault proxy seed {seed} (INFINISHEET_SEED={seed} repeats it)");
    let endpoint = std::env::var("AWS_ENDPOINT").unwrap();
    let proxy = FaultProxy::start(
        upstream_address(&endpoint),
        FaultRates {
            lost_reply: 0.05,
            unavailable: 0.05,
            max_latency: Duration::from_millis(5),
            seed,
        },
    )
    .await
    .unwrap();
    let prefix = fresh_prefix("lossy");
    open_on(s3(), &prefix).await;
    let through = proxy.endpoint();
    concurrent_appenders(
        |w, n| spawn(&prefix, w, n, Some(&through)),
        4,
        125,
        || open_on(s3(), &prefix),
    )
    .await;
    let counts = proxy.counts();
    eprintln!("fault proxy: {counts:?}");
    assert!(
        counts.lost >= 20 && counts.unavailable >= 20,
        "too few faults to prove anything: {counts:?}"
    );
}

/// Ignores `PutMode::Create` on a log's records: every writer's create
/// succeeds, so two writers can both win one id.
struct IgnoresCreate;

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

/// Four in-process writers of 40 entries each, each on a client of its own
/// over `store`; then the exactly-once check.
async fn race_and_check(store: impl Fn() -> Arc<dyn ObjectStore>) -> Result<(), String> {
    const WRITERS: u32 = 4;
    const EACH: u64 = 40;
    let prefix = fresh_prefix("double-winner");
    open_on(store(), &prefix).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(WRITERS as usize));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let (store, prefix, barrier) = (store(), prefix.clone(), barrier.clone());
            tokio::spawn(async move {
                let log = open_on(store, &prefix).await;
                barrier.wait().await;
                let mut out = Vec::new();
                append_and_report(&log, writer, EACH, &mut out)
                    .await
                    .unwrap();
                String::from_utf8(out)
                    .unwrap()
                    .lines()
                    .map(parse_ack)
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut acks = Vec::new();
    for task in tasks {
        acks.push(task.await.unwrap());
    }
    check_exactly_once(&acks, EACH, &open_on(s3(), &prefix).await).await
}

/// The exactly-once check can fail: over a store that lets every writer's
/// create win, it reports a double winner; over the real server it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_exactly_once_check_catches_a_double_winner() {
    let broken = race_and_check(|| {
        Arc::new(Intercepted::new(s3(), Arc::new(IgnoresCreate))) as Arc<dyn ObjectStore>
    })
    .await;
    let problem = broken.expect_err("a store that ignores create-if-absent passed the check");
    eprintln!("over a store that ignores create-if-absent: {problem}");
    race_and_check(s3)
        .await
        .unwrap_or_else(|problem| panic!("over the real server: {problem}"));
}
