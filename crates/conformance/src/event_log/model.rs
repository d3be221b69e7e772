//! The randomized model test: random operations from 1–3 clients run against
//! the backend and against the memory reference, every reply compared.

use crate::report::LocalFuture;
use infinisheet_event_log::{
    AddEntryError, EventLog, EventLogExt, FieldUpdate, KnownSnapshot, LogEntry, MetadataUpdate,
    QueryEnd, QueryError, QueryStart, QueryValue, RangeError, SetMetadataError, SnapshotValue,
    TruncateError,
};
use infinisheet_memory::MemoryEventLog;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use std::future::Future;
use std::sync::Arc;

use super::Log;

#[derive(Clone, Debug)]
enum From {
    First,
    Snapshot,
    Relative(i8),
}

#[derive(Clone, Debug)]
enum Until {
    Last,
    Relative(i8),
}

/// One client call; ids are relative to the end as that client last saw it,
/// so clients fall behind one another and conflict as real ones do.
#[derive(Clone, Debug)]
enum Op {
    Add {
        client: usize,
        delta: i8,
        payload: u8,
        metadata: (bool, bool),
    },
    Batch {
        client: usize,
        delta: i8,
        count: u8,
    },
    Query {
        client: usize,
        start: From,
        end: Until,
    },
    SetMetadata {
        client: usize,
        delta: i8,
        update: MetadataUpdate,
    },
    Truncate {
        client: usize,
        delta: i8,
    },
}

/// A reply, normalized so the backend's and the reference's compare.
#[derive(Debug, PartialEq)]
enum Reply {
    Added(Option<SnapshotValue>),
    Conflict(u64, u64),
    Range(RangeError),
    Queried(QueryValue),
    Done,
}

#[derive(Clone, Copy, Debug)]
struct Client {
    end: u64,
    known: KnownSnapshot,
}

fn field() -> impl Strategy<Value = FieldUpdate<String>> {
    prop_oneof![
        Just(FieldUpdate::Keep),
        Just(FieldUpdate::Clear),
        "[ab]".prop_map(FieldUpdate::Set),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let client = 0..3usize;
    let delta = prop_oneof![6 => Just(0i8), 1 => -3i8..3];
    prop_oneof![
        5 => (client.clone(), delta.clone(), any::<u8>(), (any::<bool>(), any::<bool>()))
            .prop_map(|(client, delta, payload, metadata)| Op::Add { client, delta, payload, metadata }),
        2 => (client.clone(), delta.clone(), 0..4u8)
            .prop_map(|(client, delta, count)| Op::Batch { client, delta, count }),
        3 => (
            client.clone(),
            prop_oneof![Just(From::First), Just(From::Snapshot), (-4i8..1).prop_map(From::Relative)],
            prop_oneof![Just(Until::Last), (-4i8..3).prop_map(Until::Relative)],
        )
            .prop_map(|(client, start, end)| Op::Query { client, start, end }),
        3 => (client.clone(), -5i8..1, (field(), field(), field()))
            .prop_map(|(client, delta, (snapshot, history, pending))| Op::SetMetadata {
                client,
                delta,
                update: MetadataUpdate { snapshot, history, pending },
            }),
        1 => (client, -4i8..2).prop_map(|(client, delta)| Op::Truncate { client, delta }),
    ]
}

fn seq(client: &Client, delta: i8) -> u64 {
    client.end.saturating_add_signed(i64::from(delta))
}

fn added(
    result: Result<infinisheet_event_log::AddEntryValue, AddEntryError>,
) -> Result<Reply, String> {
    match result {
        Ok(value) => Ok(Reply::Added(value.last_snapshot)),
        Err(AddEntryError::Conflict { attempted, next }) => Ok(Reply::Conflict(attempted, next)),
        Err(err) => Err(err.to_string()),
    }
}

async fn apply(log: &dyn EventLog, client: &Client, op: &Op) -> Result<Reply, String> {
    match op {
        Op::Add {
            delta,
            payload,
            metadata,
            ..
        } => {
            let mut entry = LogEntry::new(vec![*payload; usize::from(*payload % 5)]);
            if metadata.0 {
                entry.metadata.pending = Some("snapshot".into());
            }
            if metadata.1 {
                entry.metadata.snapshot = Some(format!("blob-{payload}"));
            }
            added(
                log.add_entry(entry, seq(client, *delta), client.known)
                    .await,
            )
        }
        Op::Batch { delta, count, .. } => {
            let entries = (0..*count).map(|i| LogEntry::new(vec![i])).collect();
            added(
                log.add_entries(entries, seq(client, *delta), client.known)
                    .await,
            )
        }
        Op::Query { start, end, .. } => {
            let start = match start {
                From::First => QueryStart::Start,
                From::Snapshot => QueryStart::Snapshot,
                From::Relative(delta) => QueryStart::Id(seq(client, *delta)),
            };
            let end = match end {
                Until::Last => QueryEnd::End,
                Until::Relative(delta) => QueryEnd::Id(seq(client, *delta)),
            };
            match log.query_all(start, end, client.known).await {
                Ok(value) => Ok(Reply::Queried(value)),
                Err(QueryError::Range(range)) => Ok(Reply::Range(range)),
                Err(err) => Err(err.to_string()),
            }
        }
        Op::SetMetadata { delta, update, .. } => {
            match log.set_metadata(seq(client, *delta), update.clone()).await {
                Ok(()) => Ok(Reply::Done),
                Err(SetMetadataError::Range(range)) => Ok(Reply::Range(range)),
                Err(err) => Err(err.to_string()),
            }
        }
        Op::Truncate { delta, .. } => match log.truncate(seq(client, *delta)).await {
            Ok(()) => Ok(Reply::Done),
            Err(TruncateError::Range(range)) => Ok(Reply::Range(range)),
            Err(err) => Err(err.to_string()),
        },
    }
}

/// What a client learns from a reply: the end and the newest snapshot.
fn learn(client: &mut Client, op: &Op, reply: &Reply) {
    let snapshot = match reply {
        Reply::Added(snapshot) => {
            client.end = match op {
                Op::Add { delta, .. } => seq(client, *delta) + 1,
                Op::Batch { delta, count, .. } => seq(client, *delta) + u64::from(*count),
                _ => client.end,
            };
            snapshot
        }
        Reply::Conflict(_, next) => {
            client.end = *next;
            &None
        }
        Reply::Queried(value) => {
            client.end = client.end.max(value.end);
            &value.last_snapshot
        }
        Reply::Range(range) => {
            client.end = range.end;
            &None
        }
        Reply::Done => &None,
    };
    if let Some(snapshot) = snapshot {
        client.known = KnownSnapshot::At(snapshot.sequence_id);
    }
}

/// Runs `ops` by `clients` clients, client `i` calling through
/// `handles[i % handles.len()]`, and against the reference.
async fn run_ops(handles: &[Log], clients: usize, ops: &[Op]) -> Result<(), TestCaseError> {
    let reference = MemoryEventLog::with_page_size(7);
    let mut views = vec![
        Client {
            end: 0,
            known: KnownSnapshot::NoSnapshot,
        };
        clients
    ];
    for (step, op) in ops.iter().enumerate() {
        let index = match op {
            Op::Add { client, .. }
            | Op::Batch { client, .. }
            | Op::Query { client, .. }
            | Op::SetMetadata { client, .. }
            | Op::Truncate { client, .. } => client % clients,
        };
        let view = views[index];
        let want = apply(&reference, &view, op)
            .await
            .map_err(|err| TestCaseError::fail(format!("the reference failed: {err}")))?;
        let handle = &handles[index % handles.len()];
        let got = apply(handle, &view, op).await.map_err(|err| {
            TestCaseError::fail(format!("step {step}, {op:?}: storage error {err}"))
        })?;
        prop_assert_eq!(&got, &want, "step {}: {:?} by client {}", step, op, index);
        learn(&mut views[index], op, &want);
    }
    let want = reference
        .bounds()
        .await
        .map_err(|err| TestCaseError::fail(format!("the reference failed: {err}")))?;
    for handle in handles {
        let got = handle
            .bounds()
            .await
            .map_err(|err| TestCaseError::fail(format!("bounds: storage error {err}")))?;
        prop_assert_eq!(got, want, "the bounds after every step");
    }
    Ok(())
}

/// Random sequences of up to 40 operations (appends, batches, queries,
/// metadata changes, truncates) from 1–3 clients, each keeping its own view
/// of the end and of the newest snapshot, run against a fresh log from
/// `factory` and against [`MemoryEventLog`]; every reply must be equal
/// (queries compared after following every page), and so must the bounds
/// every handle reports at the end. 48 cases, shrunk to a
/// minimal failing sequence on failure.
///
/// Synchronous: it runs its own runtime, one case at a time.
pub fn event_log_matches_reference<F, Fut, L>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = L>,
    L: EventLog,
{
    matches_reference("the log", &|| {
        let subject = factory();
        Box::pin(async move { vec![Arc::new(subject.await) as Log] })
    });
}

/// The model test of [`event_log_matches_reference`] with each client
/// calling through its own handle: `factory` returns up to three handles
/// opened independently on one new log (separate connections, separate
/// processes' worth of state), so what one handle writes the others must
/// see. Not part of the macro: a backend whose handles share nothing but
/// storage calls it from a test of its own.
pub fn event_log_handles_match_reference<F, Fut, L>(factory: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Vec<L>>,
    L: EventLog,
{
    matches_reference("the log's handles", &|| {
        let handles = factory();
        Box::pin(async move {
            let handles = handles.await;
            handles.into_iter().map(|h| Arc::new(h) as Log).collect()
        })
    });
}

/// Both model tests, on handles from `factory`; not generic, so the model
/// is compiled once, here.
fn matches_reference<'a>(what: &str, factory: &'a dyn Fn() -> LocalFuture<'a, Vec<Log>>) {
    let strategy = (1..=3usize, proptest::collection::vec(op(), 1..40));
    crate::report::run_model(what, strategy, &|(clients, ops)| {
        let handles = factory();
        Box::pin(async move {
            let handles = handles.await;
            assert!(!handles.is_empty(), "the factory returned no handle");
            run_ops(&handles, clients, &ops).await
        })
    });
}
