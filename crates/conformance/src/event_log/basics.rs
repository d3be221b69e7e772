//! Cases for an empty log, appending, and conflicts.

use super::{Log, assert_holds, entry, everything, fill};
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{
    AddEntryError, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd, QueryError, QueryStart,
    RangeError, SetMetadataError, TruncateError,
};

/// A new log has `start == end == 0`; querying it from the start, the
/// snapshot or id 0 gives a complete, empty reply.
pub async fn empty_log_is_empty(log: Log) {
    for start in [QueryStart::Start, QueryStart::Snapshot, QueryStart::Id(0)] {
        let value = log
            .query(start, QueryEnd::End, KnownSnapshot::NoSnapshot)
            .await
            .unwrap();
        assert_eq!(
            (value.start, value.end),
            (0, 0),
            "query({start:?}) of an empty log"
        );
        assert!(value.entries.is_empty());
        assert!(value.is_complete, "an empty reply is complete");
        assert_eq!(value.last_snapshot, None);
    }
}

/// On an empty log, querying from id 1 is a range error naming the bounds.
pub async fn empty_log_query_past_end_is_range_error(log: Log) {
    let result = log
        .query(QueryStart::Id(1), QueryEnd::End, KnownSnapshot::NotTracked)
        .await;
    assert_err!(
        result,
        QueryError::Range(RangeError {
            requested: 1,
            start: 0,
            end: 0
        })
    );
}

/// On an empty log, `set_metadata(0)` is a range error.
pub async fn empty_log_set_metadata_is_range_error(log: Log) {
    let result = log
        .set_metadata(0, MetadataUpdate::publish_snapshot("s"))
        .await;
    assert_err!(
        result,
        SetMetadataError::Range(RangeError {
            requested: 0,
            start: 0,
            end: 0
        })
    );
}

/// On an empty log, `truncate(0)` is fine and `truncate(1)` is a range error.
pub async fn empty_log_truncate(log: Log) {
    log.truncate(0).await.unwrap();
    assert_err!(
        log.truncate(1).await,
        TruncateError::Range(RangeError {
            requested: 1,
            start: 0,
            end: 0
        })
    );
    assert_holds(&*log, 0, 0).await;
}

/// Entries appended at the end come back in order with their payloads.
pub async fn add_entry_appends_in_order(log: Log) {
    fill(&*log, 5).await;
    assert_holds(&*log, 0, 5).await;
}

/// Appending at an id that is not the end is a conflict carrying the real
/// end, whether the id is taken or beyond the end.
pub async fn add_entry_conflict_reports_next(log: Log) {
    fill(&*log, 3).await;
    for attempted in [0, 2, 4, 1000] {
        let result = log
            .add_entry(entry(99), attempted, KnownSnapshot::NotTracked)
            .await;
        assert_err!(result, AddEntryError::Conflict { attempted: a, next: 3 } if a == attempted);
    }
}

/// A conflicting append changes nothing; the next append at the reported id
/// succeeds.
pub async fn add_entry_conflict_changes_nothing(log: Log) {
    fill(&*log, 2).await;
    let next = match log.add_entry(entry(7), 0, KnownSnapshot::NotTracked).await {
        Err(AddEntryError::Conflict { next, .. }) => next,
        other => panic!("expected a conflict, got {other:?}"),
    };
    assert_holds(&*log, 0, 2).await;
    log.add_entry(entry(2), next, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_holds(&*log, 0, 3).await;
}

/// Metadata given with an appended entry is stored with it.
pub async fn add_entry_keeps_metadata(log: Log) {
    let mut first = entry(0).with_pending("snapshot");
    first.metadata.history = Some("history-0".into());
    let mut second = entry(1);
    second.metadata.snapshot = Some("snapshot-1".into());
    log.add_entry(first.clone(), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    log.add_entry(second.clone(), 1, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_eq!(everything(&*log).await.entries, vec![first, second]);
}

/// Metadata strings are stored exactly, whatever characters they hold.
pub async fn add_entry_metadata_strings_round_trip(log: Log) {
    let mut odd = LogEntry::new(&b"x"[..]);
    odd.metadata.snapshot = Some("snapshots/2026-11-22 Übersicht 📊".into());
    odd.metadata.history = Some(String::new());
    odd.metadata.pending = Some("a \"quoted\"\nline".into());
    log.add_entry(odd.clone(), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_eq!(everything(&*log).await.entries, vec![odd]);
}
