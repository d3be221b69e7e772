//! Faults between the backend and a real (in-memory) store: a wrapper store
//! fails chosen calls before they reach the store, or after (the reply is
//! lost). Failures must surface as retryable storage errors and leave the
//! log consistent; a retried add whose first reply was lost is a conflict,
//! never a second copy.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use infinisheet_event_log::{
    AddEntryError, EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd,
    QueryError, QueryStart, SetMetadataError,
};
use infinisheet_object_store::ObjectStoreEventLog;
use infinisheet_object_store::path::Path;
use infinisheet_object_store::{self, ObjectStore};
use infinisheet_test_kit::{Call, Intercepted, Interceptor, Verdict};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Which calls fail, and whether before or after reaching the store.
#[derive(Clone, Copy, Debug, Default)]
struct Plan {
    /// Fail the next put (`Some(true)`: after it landed).
    put: Option<bool>,
    /// Fail the next get.
    get: bool,
    /// Fail this share of every put, get and listing (before or after, at
    /// random).
    rate: f64,
}

/// Injects failures into the calls to an in-memory store, as its plan says.
struct Faulty {
    inner: Arc<dyn ObjectStore>,
    plan: Mutex<Plan>,
    rng: Mutex<fastrand::Rng>,
    /// Failures injected so far.
    injected: AtomicU64,
}

fn injected(what: &str) -> object_store::Error {
    object_store::Error::Generic {
        store: "Faulty",
        source: Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("injected failure: {what} timed out"),
        )),
    }
}

impl Faulty {
    fn new(seed: u64) -> Arc<Self> {
        Arc::new(Faulty {
            inner: common::memory(),
            plan: Mutex::default(),
            rng: Mutex::new(fastrand::Rng::with_seed(seed)),
            injected: AtomicU64::new(0),
        })
    }

    fn set(&self, plan: Plan) {
        *self.plan.lock().unwrap() = plan;
    }

    /// `None`: no fault; `Some(after)`: fail, after the call if `after`.
    fn fault(&self, take: impl FnOnce(&mut Plan) -> Option<bool>) -> Option<bool> {
        let mut plan = self.plan.lock().unwrap();
        if let Some(after) = take(&mut plan) {
            return Some(after);
        }
        let mut rng = self.rng.lock().unwrap();
        (rng.f64() < plan.rate).then(|| rng.bool())
    }
}

impl Interceptor for Faulty {
    fn intercept(&self, call: Call<'_>) -> Verdict {
        let (what, fault) = match call {
            Call::Put { .. } => ("put", self.fault(|plan| plan.put.take())),
            Call::Get { .. } => (
                "get",
                self.fault(|plan| std::mem::take(&mut plan.get).then_some(false)),
            ),
            Call::ListWithDelimiter { .. } => ("list", self.fault(|_| None)),
            _ => return Verdict::Pass,
        };
        match fault {
            None => Verdict::Pass,
            Some(after) => {
                self.injected.fetch_add(1, Ordering::Relaxed);
                if after {
                    Verdict::FailAfter(injected(what))
                } else {
                    Verdict::Fail(injected(what))
                }
            }
        }
    }
}

/// Asserts that `$call` failed with a retryable storage error of `$error`.
macro_rules! assert_retryable {
    ($call:expr, $error:ident) => {
        match $call {
            Err($error::Storage(err)) => assert!(err.is_retryable(), "{err}"),
            other => panic!("expected a storage error, got {other:?}"),
        }
    };
}

async fn open(faults: &Arc<Faulty>) -> ObjectStoreEventLog {
    let store = Arc::new(Intercepted::new(faults.inner.clone(), faults.clone()));
    ObjectStoreEventLog::open(store, Path::from("log"))
        .await
        .unwrap()
}

fn entry(i: u64) -> LogEntry {
    LogEntry::new(format!("entry {i}"))
}

async fn payloads(log: &ObjectStoreEventLog) -> Vec<String> {
    let entries = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap()
        .entries;
    entries
        .iter()
        .map(|e| String::from_utf8(e.payload.to_vec()).unwrap())
        .collect()
}

#[tokio::test]
async fn a_failed_append_is_retryable_and_appends_nothing() {
    let store = Faulty::new(1);
    let log = open(&store).await;
    log.add_entry(entry(0), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    store.set(Plan {
        put: Some(false),
        ..Plan::default()
    });
    assert_retryable!(
        log.add_entry(entry(1), 1, KnownSnapshot::NotTracked).await,
        AddEntryError
    );
    assert_eq!(payloads(&log).await, ["entry 0"]);
    log.add_entry(entry(1), 1, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_eq!(payloads(&log).await, ["entry 0", "entry 1"]);
}

#[tokio::test]
async fn a_lost_reply_then_a_retry_is_a_conflict_not_a_duplicate() {
    let store = Faulty::new(2);
    let log = open(&store).await;
    store.set(Plan {
        put: Some(true),
        ..Plan::default()
    });
    assert_retryable!(
        log.add_entry(entry(0), 0, KnownSnapshot::NotTracked).await,
        AddEntryError
    );
    match log.add_entry(entry(0), 0, KnownSnapshot::NotTracked).await {
        Err(AddEntryError::Conflict {
            attempted: 0,
            next: 1,
        }) => {}
        other => panic!("expected a conflict naming 1, got {other:?}"),
    }
    assert_eq!(payloads(&log).await, ["entry 0"]);
}

#[tokio::test]
async fn a_failed_read_is_retryable_and_changes_nothing() {
    let store = Faulty::new(3);
    let log = open(&store).await;
    log.add_entries((0..3).map(entry).collect(), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    store.set(Plan {
        get: true,
        ..Plan::default()
    });
    assert_retryable!(
        log.query(0.into(), 3.into(), KnownSnapshot::NotTracked)
            .await,
        QueryError
    );
    assert_eq!(payloads(&log).await, ["entry 0", "entry 1", "entry 2"]);
}

#[tokio::test]
async fn a_metadata_change_whose_reply_was_lost_can_be_repeated() {
    let store = Faulty::new(4);
    let log = open(&store).await;
    log.add_entry(entry(0), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    store.set(Plan {
        put: Some(true),
        ..Plan::default()
    });
    // The first put of the change is the snapshot candidates object.
    assert_retryable!(
        log.set_metadata(0, MetadataUpdate::publish_snapshot("s0"))
            .await,
        SetMetadataError
    );
    log.set_metadata(0, MetadataUpdate::publish_snapshot("s0"))
        .await
        .unwrap();
    let entries = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap()
        .entries;
    assert_eq!(entries[0].metadata.snapshot.as_deref(), Some("s0"));
    assert_eq!(entries[0].payload, "entry 0");
}

/// Whether entry `seq` holds `payload`; retried through injected faults.
async fn landed(log: &ObjectStoreEventLog, seq: u64, payload: &str) -> bool {
    loop {
        match log
            .query(seq.into(), (seq + 1).into(), KnownSnapshot::NotTracked)
            .await
        {
            Ok(page) => return page.entries.first().is_some_and(|e| e.payload == payload),
            Err(QueryError::Storage(err)) => assert!(err.is_retryable(), "{err}"),
            Err(err) => panic!("{err}"),
        }
    }
}

/// One call in ten fails, before or after reaching the store, while two
/// writers append, retrying as a careful client does (after a failed add,
/// it looks whether the entry landed before appending it again): every
/// entry is there exactly once and the log is dense.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_random_faults_acknowledged_entries_are_there_exactly_once() {
    const PER_WRITER: u64 = 60;
    let store = Faulty::new(5);
    let log = open(&store).await;
    store.set(Plan {
        rate: 0.1,
        ..Plan::default()
    });
    let writers: Vec<_> = (0..2)
        .map(|writer| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                let mut next = 0;
                for i in 0..PER_WRITER {
                    let payload = format!("w{writer}-{i}");
                    // Set after a failed add: it may have landed, which the
                    // conflict of its retry does not say; look before
                    // appending the entry a second time.
                    let mut uncertain = false;
                    loop {
                        if uncertain && landed(&log, next, &payload).await {
                            acknowledged.push(payload);
                            next += 1;
                            break;
                        }
                        match log
                            .add_entry(
                                LogEntry::new(payload.clone()),
                                next,
                                KnownSnapshot::NotTracked,
                            )
                            .await
                        {
                            Ok(_) => {
                                acknowledged.push(payload);
                                next += 1;
                                break;
                            }
                            Err(AddEntryError::Conflict { next: real, .. }) => {
                                if !uncertain || !landed(&log, next, &payload).await {
                                    next = real;
                                    continue;
                                }
                                acknowledged.push(payload);
                                next += 1;
                                break;
                            }
                            Err(AddEntryError::Storage(err)) => {
                                assert!(err.is_retryable(), "{err}");
                                uncertain = true;
                            }
                            Err(err) => panic!("{err}"),
                        }
                    }
                }
                acknowledged
            })
        })
        .collect();
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.extend(writer.await.unwrap());
    }
    store.set(Plan::default());
    let injected = store.injected.load(Ordering::Relaxed);
    assert!(injected >= 10, "only {injected} failures were injected");
    let all = payloads(&log).await;
    let mut seen = std::collections::BTreeMap::new();
    for payload in &all {
        *seen.entry(payload.clone()).or_insert(0) += 1;
    }
    assert!(
        seen.values().all(|count| *count == 1),
        "a duplicate entry: {seen:?}"
    );
    acknowledged.sort();
    let mut stored: Vec<String> = all.clone();
    stored.sort();
    assert_eq!(
        stored, acknowledged,
        "the log holds exactly the acknowledged entries"
    );
}
