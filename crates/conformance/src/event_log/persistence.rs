//! Cases for logs that declare persistence: content survives dropping the
//! handle and opening the log again.

use super::{entry, fill};
use infinisheet_event_log::{
    AddEntryError, EventLog, EventLogExt, KnownSnapshot, MetadataUpdate, QueryEnd, QueryStart,
    QueryValue,
};
use std::future::Future;

async fn everything<L: EventLog>(log: &L) -> QueryValue {
    log.query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("querying the reopened log: {err}"))
}

/// Entries and their metadata survive reopening; appends continue at the
/// old end.
pub async fn log_entries_survive_reopen<L, R, Fut>(log: L, reopen: Option<R>)
where
    L: EventLog,
    R: FnOnce(L) -> Fut,
    Fut: Future<Output = L>,
{
    let Some(reopen) = crate::report::reopener(
        "log_entries_survive_reopen",
        log.capabilities().persistent,
        "event_log_tests!",
        reopen,
    ) else {
        return;
    };
    fill(&log, 10).await;
    log.set_metadata(4, MetadataUpdate::publish_snapshot("s4"))
        .await
        .unwrap();
    log.add_entry(
        entry(10).with_pending("snapshot"),
        10,
        KnownSnapshot::NotTracked,
    )
    .await
    .unwrap();
    let before = everything(&log).await;
    let log = reopen(log).await;
    assert_eq!(
        everything(&log).await,
        before,
        "the log changed across reopening"
    );
    assert_err!(
        log.add_entry(entry(0), 3, KnownSnapshot::NotTracked).await,
        AddEntryError::Conflict {
            attempted: 3,
            next: 11
        }
    );
    let added = log
        .add_entry(entry(11), 11, KnownSnapshot::NoSnapshot)
        .await
        .unwrap();
    assert_eq!(added.last_snapshot.map(|s| s.sequence_id), Some(4));
}

/// A truncate survives reopening, including a truncate to the end (the end
/// is kept).
pub async fn log_truncate_survives_reopen<L, R, Fut>(log: L, reopen: Option<R>)
where
    L: EventLog,
    R: FnOnce(L) -> Fut + Clone,
    Fut: Future<Output = L>,
{
    let Some(reopen) = crate::report::reopener(
        "log_truncate_survives_reopen",
        log.capabilities().persistent,
        "event_log_tests!",
        reopen,
    ) else {
        return;
    };
    fill(&log, 6).await;
    log.truncate(3).await.unwrap();
    let log = reopen.clone()(log).await;
    let all = everything(&log).await;
    assert_eq!((all.start, all.end), (3, 6));
    log.truncate(6).await.unwrap();
    let log = reopen(log).await;
    let all = everything(&log).await;
    assert_eq!((all.start, all.end), (6, 6), "truncate(end) keeps the end");
    log.add_entry(entry(6), 6, KnownSnapshot::NotTracked)
        .await
        .unwrap();
}
