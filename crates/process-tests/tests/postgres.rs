//! Real processes sharing one log in the PostgreSQL database `cargo xtask
//! test` starts (`INFINISHEET_POSTGRES_URL`): the clients share nothing
//! but the database. Built only with the `postgres-tests` feature.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_postgres::{PostgresDatabase, PostgresEventLog, PostgresOptions};
use infinisheet_process_tests::{concurrent_appenders, killed_appenders};
use std::process::{Child, Command, Stdio};

fn url() -> String {
    std::env::var("INFINISHEET_POSTGRES_URL")
        .expect("this test needs the PostgreSQL server `cargo xtask test` starts")
}

fn spawn(log: &str, writer: u32, count: u64) -> Child {
    Command::new(env!("CARGO_BIN_EXE_infinisheet-writer"))
        .args(["pg-log", log, &writer.to_string(), &count.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn open(log: &str) -> PostgresEventLog {
    PostgresDatabase::connect(&url(), PostgresOptions::default())
        .await
        .unwrap()
        .open_or_create_log(log)
        .await
        .unwrap()
}

fn fresh_log(what: &str) -> String {
    format!("{what}-{:016x}", fastrand::u64(..))
}

/// 8 processes append 100 entries each to one log: dense, every
/// acknowledged entry exactly once at its id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_append_to_one_log_exactly_once() {
    let log = fresh_log("eight");
    // Created once first, so the processes race for ids, not for the log.
    open(&log).await;
    concurrent_appenders(|w, n| spawn(&log, w, n), 8, 100, || open(&log)).await;
}

/// Appenders killed (SIGKILL) at random points: every acknowledged entry
/// is still there, and the log is dense.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_appenders_lose_no_acknowledged_entry() {
    let log = fresh_log("killed");
    open(&log).await;
    killed_appenders(|round| spawn(&log, round, 1_000_000), 8, 60, || open(&log)).await;
}

/// Children killed when a test ends, passed or failed.
struct KillOnDrop(Vec<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The server restarted (`pg_ctl restart --mode fast`, every session cut)
/// while 4 processes append and a tail in this one follows: the writers
/// retry and resume, every acknowledged entry is there exactly once, and
/// the tail gives every entry once and in order. Restarting the server
/// would fail the other tests, so `cargo xtask test` runs it alone,
/// after them, through the program `INFINISHEET_POSTGRES_RESTART` names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "restarts the server: `cargo xtask test` runs it alone, after the others"]
async fn a_server_restart_mid_append_loses_and_duplicates_nothing() {
    use infinisheet_event_log::{EventLog, EventLogExt, TailEvent};
    use infinisheet_process_tests::{DEADLINE, check_exactly_once, check_payload, parse_ack};
    use std::io::{BufRead, BufReader};
    let restart = std::env::var("INFINISHEET_POSTGRES_RESTART")
        .expect("this test needs the program that restarts `cargo xtask test`'s server");
    let log = fresh_log("restart");
    let tailed = open(&log).await;
    let (writers, each) = (4u32, 250u64);
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tail = tokio::spawn(async move {
        let mut tail = tailed.tail(0);
        let mut seen = std::collections::HashSet::new();
        let mut next = 0;
        while next < u64::from(writers) * each {
            let event = tokio::time::timeout(DEADLINE, tail.next()).await;
            match event.expect("the tail gave nothing for the deadline") {
                Ok(TailEvent::Entries { start, entries }) => {
                    assert_eq!(start, next, "the tail skipped or repeated");
                    for entry in entries {
                        let claimed = check_payload(&entry.payload).unwrap();
                        assert!(seen.insert(claimed), "the tail gave {claimed:?} twice");
                        next += 1;
                    }
                }
                Ok(_) => {}
                Err(err) if err.is_retryable() => {}
                Err(err) => panic!("the tail: {err}"),
            }
        }
    });
    let mut children = KillOnDrop((0..writers).map(|w| spawn(&log, w, each)).collect());
    // Restart once every writer has had appends acknowledged.
    let (acks_tx, acks_rx) = std::sync::mpsc::channel();
    let readers: Vec<_> = children
        .0
        .iter_mut()
        .map(|child| {
            let stdout = child.stdout.take().unwrap();
            let (acks_tx, total) = (acks_tx.clone(), acked.clone());
            std::thread::spawn(move || {
                let mut acked = Vec::new();
                for line in BufReader::new(stdout).lines() {
                    acked.push(parse_ack(&line.unwrap()));
                    total.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if acked.len() == 20 {
                        let _ = acks_tx.send(());
                    }
                }
                acked
            })
        })
        .collect();
    for _ in 0..writers {
        acks_rx
            .recv_timeout(DEADLINE)
            .expect("a writer acknowledged nothing");
    }
    let before = acked.load(std::sync::atomic::Ordering::SeqCst);
    let status = Command::new(&restart).status().unwrap();
    assert!(status.success(), "{restart} failed: {status}");
    let after = acked.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        after < u64::from(writers) * each,
        "the writers were done ({after} acknowledged) before the server was back: no append met the restart"
    );
    eprintln!("{before} appends acknowledged before the restart, {after} once it was back");
    let acks: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();
    for (writer, child) in children.0.iter_mut().enumerate() {
        assert!(child.wait().unwrap().success(), "writer {writer} failed");
    }
    let reader = open(&log).await;
    if let Err(problem) = check_exactly_once(&acks, each, &reader).await {
        panic!("{problem}");
    }
    assert_eq!(
        reader.bounds().await.unwrap().end,
        u64::from(writers) * each
    );
    tail.await.unwrap();
}

/// Replies lost on their way back (the connection cut after the server
/// committed): 4 writers, in this process, through a proxy that cuts the
/// connection instead of passing on 3% of the pieces of replies, retry
/// each append at its id with its token: every acknowledged entry lands
/// exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_replies_retried_with_their_tokens_land_once() {
    use infinisheet_process_tests::proxy::TcpFaultProxy;
    use infinisheet_process_tests::{append_and_report, check_exactly_once, parse_ack};
    let url = url();
    // postgres://user:password@host:port/database
    let (head, rest) = url.rsplit_once('@').unwrap();
    let (host_port, tail) = rest.split_once('/').unwrap();
    let upstream: std::net::SocketAddr = host_port.parse().unwrap();
    let seed = fastrand::u64(..);
    eprintln!("proxy seed {seed}");
    let proxy = TcpFaultProxy::start(upstream, 0.03, seed).await.unwrap();
    let proxied = format!("{head}@{}/{tail}", proxy.address());
    let name = fresh_log("lost");
    open(&name).await;
    // Opening through the proxy may meet a cut too: retried.
    let mut tries = 0;
    let log = loop {
        let opened = match PostgresDatabase::connect(&proxied, PostgresOptions::default()).await {
            Ok(db) => db.open_log(&name).await.map_err(|err| err.to_string()),
            Err(err) => Err(err.to_string()),
        };
        match opened {
            Ok(log) => break log,
            Err(err) if tries < 20 => {
                tries += 1;
                eprintln!("opening through the proxy: {err}");
            }
            Err(err) => panic!("opening through the proxy: {err}"),
        }
    };
    let (writers, each) = (4u32, 60u64);
    let outputs = futures::future::join_all((0..writers).map(|writer| {
        let log = &log;
        async move {
            let mut out = Vec::new();
            append_and_report(log, writer, each, &mut out)
                .await
                .unwrap_or_else(|err| panic!("writer {writer}: {err}"));
            out
        }
    }))
    .await;
    let acks: Vec<Vec<_>> = outputs
        .iter()
        .map(|out| {
            String::from_utf8_lossy(out)
                .lines()
                .map(parse_ack)
                .collect()
        })
        .collect();
    if let Err(problem) = check_exactly_once(&acks, each, &open(&name).await).await {
        panic!("{problem} (proxy seed {seed})");
    }
    let counts = proxy.counts();
    assert!(counts.lost > 0, "no reply was lost: {counts:?}");
    eprintln!("{counts:?}");
}
