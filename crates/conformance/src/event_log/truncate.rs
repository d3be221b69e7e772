//! Cases for `truncate`.

use super::{Log, assert_holds, entry, fill};
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{
    AddEntryError, KnownSnapshot, QueryEnd, QueryError, QueryStart, RangeError, TruncateError,
};

/// `truncate(s)` removes the entries before `s` and keeps the rest.
pub async fn truncate_removes_earlier_entries(log: Log) {
    fill(&*log, 5).await;
    log.truncate(2).await.unwrap();
    assert_holds(&*log, 2, 5).await;
}

/// Truncating at the current start again, or at the start twice in a row,
/// changes nothing; truncating further moves the start on.
pub async fn truncate_repeated(log: Log) {
    fill(&*log, 6).await;
    log.truncate(2).await.unwrap();
    log.truncate(2).await.unwrap();
    assert_holds(&*log, 2, 6).await;
    log.truncate(4).await.unwrap();
    assert_holds(&*log, 4, 6).await;
}

/// `truncate(end)` empties the log but keeps its end: appends continue at
/// the old end and an append at 0 conflicts with it.
pub async fn truncate_to_end_keeps_end(log: Log) {
    fill(&*log, 5).await;
    log.truncate(5).await.unwrap();
    assert_holds(&*log, 5, 5).await;
    assert_err!(
        log.add_entry(entry(0), 0, KnownSnapshot::NotTracked).await,
        AddEntryError::Conflict {
            attempted: 0,
            next: 5
        }
    );
    log.add_entry(entry(5), 5, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_holds(&*log, 5, 6).await;
}

/// Truncating below the start or above the end is a range error naming the
/// bounds, and changes nothing.
pub async fn truncate_outside_log_is_range_error(log: Log) {
    fill(&*log, 5).await;
    log.truncate(3).await.unwrap();
    for requested in [2, 0, 6, 100] {
        assert_err!(
            log.truncate(requested).await,
            TruncateError::Range(RangeError { requested: r, start: 3, end: 5 }) if r == requested
        );
    }
    assert_holds(&*log, 3, 5).await;
}

/// After a truncate, querying from an id below the new start is a range
/// error, and the first entry is the new start.
pub async fn truncate_then_query_below_start(log: Log) {
    fill(&*log, 5).await;
    log.truncate(3).await.unwrap();
    assert_err!(
        log.query(QueryStart::Id(2), QueryEnd::End, KnownSnapshot::NotTracked)
            .await,
        QueryError::Range(RangeError {
            requested: 2,
            start: 3,
            end: 5
        })
    );
    let first = log
        .query(
            QueryStart::Start,
            QueryEnd::Id(4),
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    assert_eq!((first.start, first.end), (3, 4));
}
