//! Cases for the "snapshot" query start and the newer-snapshot reply on
//! `query` and `add_entry` (the seeds' "Snapshot Completion").

use super::{Log, entry, fill};
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{
    FieldUpdate, KnownSnapshot, MetadataUpdate, QueryEnd, QueryStart, SnapshotValue,
};

fn snap(seq: u64, blob: &str) -> Option<SnapshotValue> {
    Some(SnapshotValue {
        sequence_id: seq,
        blob_id: blob.into(),
    })
}

async fn publish(log: &Log, seq: u64, blob: &str) {
    log.set_metadata(seq, MetadataUpdate::publish_snapshot(blob))
        .await
        .unwrap_or_else(|err| panic!("publishing snapshot {blob} on {seq}: {err}"));
}

async fn query_reply(log: &Log, known: KnownSnapshot) -> Option<SnapshotValue> {
    log.query(QueryStart::Start, QueryEnd::End, known)
        .await
        .unwrap()
        .last_snapshot
}

/// `QueryStart::Snapshot` begins at the most recent entry whose snapshot is
/// set, not the first one.
pub async fn query_snapshot_start_is_latest_snapshot(log: Log) {
    fill(&*log, 10).await;
    publish(&log, 3, "s3").await;
    publish(&log, 7, "s7").await;
    let value = log
        .query(
            QueryStart::Snapshot,
            QueryEnd::End,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    assert_eq!(value.start, 7);
    assert_eq!(value.entries[0].metadata.snapshot.as_deref(), Some("s7"));
}

/// A query names the most recent snapshot to a caller that builds on no
/// snapshot or on an older one.
pub async fn query_reports_newer_snapshot(log: Log) {
    fill(&*log, 10).await;
    assert_eq!(query_reply(&log, KnownSnapshot::NoSnapshot).await, None);
    publish(&log, 4, "s4").await;
    assert_eq!(
        query_reply(&log, KnownSnapshot::NoSnapshot).await,
        snap(4, "s4")
    );
    publish(&log, 8, "s8").await;
    assert_eq!(query_reply(&log, KnownSnapshot::At(4)).await, snap(8, "s8"));
    assert_eq!(
        query_reply(&log, KnownSnapshot::NoSnapshot).await,
        snap(8, "s8")
    );
}

/// A query of no entry (`end` at its `start`) still names the newest
/// snapshot, wherever it lies: how a snapshot writer learns what to build
/// on without reading the entries from there.
pub async fn empty_query_names_newest_snapshot(log: Log) {
    fill(&*log, 10).await;
    let empty = |at: u64, known: KnownSnapshot| {
        let log = log.clone();
        async move {
            let value = log
                .query(QueryStart::Id(at), QueryEnd::Id(at), known)
                .await
                .unwrap_or_else(|err| panic!("an empty query at {at}: {err}"));
            assert!(value.entries.is_empty(), "an empty query at {at}");
            assert_eq!((value.start, value.end), (at, at));
            value.last_snapshot
        }
    };
    assert_eq!(empty(6, KnownSnapshot::NoSnapshot).await, None);
    publish(&log, 4, "s4").await;
    for at in [0, 4, 6, 10] {
        assert_eq!(empty(at, KnownSnapshot::NoSnapshot).await, snap(4, "s4"));
    }
    publish(&log, 8, "s8").await;
    assert_eq!(empty(5, KnownSnapshot::At(4)).await, snap(8, "s8"));
    assert_eq!(empty(10, KnownSnapshot::At(8)).await, None);
    assert_eq!(empty(5, KnownSnapshot::NotTracked).await, None);
}

/// A query names no snapshot when the caller already builds on the newest.
pub async fn query_no_reply_when_known_is_newest(log: Log) {
    fill(&*log, 10).await;
    publish(&log, 4, "s4").await;
    publish(&log, 8, "s8").await;
    assert_eq!(query_reply(&log, KnownSnapshot::At(8)).await, None);
}

/// Replies never name a snapshot to a caller that does not track them.
pub async fn replies_name_no_snapshot_when_not_tracked(log: Log) {
    fill(&*log, 5).await;
    publish(&log, 2, "s2").await;
    assert_eq!(query_reply(&log, KnownSnapshot::NotTracked).await, None);
    let added = log
        .add_entry(entry(5), 5, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_eq!(added.last_snapshot, None);
}

/// An append names the most recent snapshot to a caller that builds on no
/// snapshot or an older one.
pub async fn add_reports_newer_snapshot(log: Log) {
    fill(&*log, 5).await;
    publish(&log, 3, "s3").await;
    let added = log
        .add_entry(entry(5), 5, KnownSnapshot::NoSnapshot)
        .await
        .unwrap();
    assert_eq!(added.last_snapshot, snap(3, "s3"));
    publish(&log, 5, "s5").await;
    let added = log
        .add_entry(entry(6), 6, KnownSnapshot::At(3))
        .await
        .unwrap();
    assert_eq!(added.last_snapshot, snap(5, "s5"));
}

/// An append names no snapshot when the caller builds on the newest, or
/// when the log holds none.
pub async fn add_no_reply_when_known_is_newest(log: Log) {
    let added = log
        .add_entry(entry(0), 0, KnownSnapshot::NoSnapshot)
        .await
        .unwrap();
    assert_eq!(added.last_snapshot, None);
    fill_from(&log, 1, 4).await;
    publish(&log, 2, "s2").await;
    let added = log
        .add_entry(entry(4), 4, KnownSnapshot::At(2))
        .await
        .unwrap();
    assert_eq!(added.last_snapshot, None);
}

async fn fill_from(log: &Log, start: u64, end: u64) {
    for i in start..end {
        log.add_entry(entry(i), i, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    }
}

/// After a truncate the reply names the most recent snapshot that remains;
/// when the truncate removed every snapshot entry it names none, and the
/// "snapshot" start falls back to the first entry.
pub async fn newer_snapshot_after_truncate(log: Log) {
    fill(&*log, 10).await;
    publish(&log, 2, "s2").await;
    publish(&log, 6, "s6").await;
    log.truncate(4).await.unwrap();
    assert_eq!(query_reply(&log, KnownSnapshot::At(2)).await, snap(6, "s6"));
    assert_eq!(query_reply(&log, KnownSnapshot::At(6)).await, None);
    log.truncate(6).await.unwrap();
    assert_eq!(query_reply(&log, KnownSnapshot::At(2)).await, snap(6, "s6"));
    log.truncate(7).await.unwrap();
    assert_eq!(query_reply(&log, KnownSnapshot::At(2)).await, None);
    assert_eq!(query_reply(&log, KnownSnapshot::NoSnapshot).await, None);
    let value = log
        .query(
            QueryStart::Snapshot,
            QueryEnd::End,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    assert_eq!(value.start, 7);
}

/// Clearing the newest snapshot makes the one before it the newest again.
pub async fn cleared_snapshot_is_no_longer_newest(log: Log) {
    fill(&*log, 6).await;
    publish(&log, 1, "s1").await;
    publish(&log, 4, "s4").await;
    let clear = MetadataUpdate {
        snapshot: FieldUpdate::Clear,
        ..MetadataUpdate::default()
    };
    log.set_metadata(4, clear).await.unwrap();
    assert_eq!(
        query_reply(&log, KnownSnapshot::NoSnapshot).await,
        snap(1, "s1")
    );
    let value = log
        .query(
            QueryStart::Snapshot,
            QueryEnd::End,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    assert_eq!(value.start, 1);
}

/// An entry appended with its snapshot already set counts as a snapshot.
pub async fn appended_snapshot_metadata_counts(log: Log) {
    fill(&*log, 2).await;
    let mut e = entry(2);
    e.metadata.snapshot = Some("s2".into());
    let added = log
        .add_entry(e, 2, KnownSnapshot::NoSnapshot)
        .await
        .unwrap();
    assert_eq!(added.last_snapshot, snap(2, "s2"));
    let value = log
        .query(QueryStart::Snapshot, QueryEnd::End, KnownSnapshot::At(2))
        .await
        .unwrap();
    assert_eq!((value.start, value.last_snapshot), (2, None));
}

/// Publishing a new blob id on an entry that already carries a snapshot
/// replaces it: replies name the entry with the new blob id, and a caller
/// that builds on that entry gets no reply (snapshots are told apart by
/// entry).
pub async fn republished_snapshot_keeps_its_entry(log: Log) {
    fill(&*log, 3).await;
    publish(&log, 1, "first").await;
    publish(&log, 1, "second").await;
    assert_eq!(
        query_reply(&log, KnownSnapshot::NoSnapshot).await,
        snap(1, "second")
    );
    assert_eq!(query_reply(&log, KnownSnapshot::At(1)).await, None);
}
