//! Cases for tailing ([`EventLogExt::tail`]): catching up, then following
//! live appends, never skipping or repeating an id, resuming anywhere,
//! snapshot news for a tail that tracks them, and typed errors for a tail
//! the log left behind or one past its end.

use super::{Log, entry, everything, expected_payloads, fill, fill_batched};
use bytes::Bytes;
use infinisheet_event_log::{
    AddEntryError, EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, SequenceId,
    SnapshotValue, Tail, TailError, TailEvent, TailOptions,
};
use std::time::Duration;

/// Short waits, so polling backends follow quickly in the suite.
fn options() -> TailOptions {
    TailOptions::default().waits(Duration::from_millis(1), Duration::from_millis(50))
}

/// The next event, within a minute.
async fn next<L: EventLog + ?Sized>(tail: &mut Tail<'_, L>) -> TailEvent {
    let at = tail.position();
    match tokio::time::timeout(Duration::from_secs(60), tail.next()).await {
        Ok(Ok(event)) => event,
        Ok(Err(err)) => panic!("the tail at {at}: {err}"),
        Err(_) => panic!("the tail at {at} gave nothing for a minute"),
    }
}

/// Reads events until `CaughtUp`, checking each batch continues the one
/// before; returns the payloads read and the end reported.
async fn drain<L: EventLog + ?Sized>(tail: &mut Tail<'_, L>) -> (Vec<Bytes>, SequenceId) {
    let mut payloads = Vec::new();
    let mut expected = tail.position();
    loop {
        match next(tail).await {
            TailEvent::Entries { start, entries } => {
                assert_eq!(start, expected, "a batch starts where the one before ended");
                assert!(!entries.is_empty(), "a batch of no entries");
                expected += entries.len() as u64;
                payloads.extend(entries.into_iter().map(|e| e.payload));
            }
            TailEvent::CaughtUp { end } => {
                assert_eq!(end, expected, "caught up where the entries ended");
                return (payloads, end);
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

/// A tail from 0 reads every entry page by page, says it caught up at the
/// end, then gives each new entry as it is appended, and says so again.
pub async fn tail_catches_up_then_follows(log: Log) {
    fill_batched(&*log, 0, 2_500, 250).await;
    let mut tail = log.tail_with(0, options());
    let (payloads, end) = drain(&mut tail).await;
    assert_eq!(end, 2_500);
    assert_eq!(payloads, expected_payloads(0..2_500));
    for seq in 2_500..2_503 {
        log.add_entry(entry(seq), seq, KnownSnapshot::NotTracked)
            .await
            .unwrap_or_else(|err| panic!("appending {seq}: {err}"));
        let (payloads, end) = drain(&mut tail).await;
        assert_eq!(end, seq + 1);
        assert_eq!(payloads, expected_payloads(seq..seq + 1), "the new entry");
    }
}

/// A tail starts at any id: mid-log, at the end (caught up at once), and
/// an empty log's tail is caught up at 0.
pub async fn tail_resumes_from_any_id(log: Log) {
    let mut empty = log.tail_with(0, options());
    assert_eq!(next(&mut empty).await, TailEvent::CaughtUp { end: 0 });
    fill(&*log, 50).await;
    for from in [37, 49, 0] {
        let mut tail = log.tail_with(from, options());
        let (payloads, end) = drain(&mut tail).await;
        assert_eq!(end, 50);
        assert_eq!(payloads, expected_payloads(from..50), "tail from {from}");
    }
    let mut at_end = log.tail_with(50, options());
    assert_eq!(next(&mut at_end).await, TailEvent::CaughtUp { end: 50 });
}

/// While four writers race to append, a tail started before them gives
/// every entry exactly once and in id order: the log's content.
pub async fn tail_follows_concurrent_appenders(log: Log) {
    const WRITERS: usize = 4;
    const EACH: u64 = 25;
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut hint = 0;
                for n in 0..EACH {
                    let payload = Bytes::from(format!("writer {w} entry {n}"));
                    loop {
                        match log
                            .add_entry(
                                LogEntry::new(payload.clone()),
                                hint,
                                KnownSnapshot::NotTracked,
                            )
                            .await
                        {
                            Ok(_) => break,
                            Err(AddEntryError::Conflict { next, .. }) => hint = next,
                            Err(err) => panic!("writer {w}: {err}"),
                        }
                    }
                    hint += 1;
                }
            })
        })
        .collect();
    let total = WRITERS as u64 * EACH;
    let mut tail = log.tail_with(0, options());
    let mut seen: Vec<Bytes> = Vec::new();
    while (seen.len() as u64) < total {
        match next(&mut tail).await {
            TailEvent::Entries { start, entries } => {
                assert_eq!(start, seen.len() as u64, "no id skipped or repeated");
                seen.extend(entries.into_iter().map(|e| e.payload));
            }
            TailEvent::CaughtUp { end } => assert_eq!(end, seen.len() as u64),
            other => panic!("unexpected {other:?}"),
        }
    }
    for writer in writers {
        writer.await.expect("writer task");
    }
    assert_eq!(seen.len() as u64, total, "more entries than were appended");
    let all = everything(&*log).await;
    let logged: Vec<Bytes> = all.entries.into_iter().map(|e| e.payload).collect();
    assert_eq!(seen, logged, "the tail gave the log's entries in order");
}

/// A tail the log was truncated past says so (it never skips ahead on its
/// own), and moves on when told; a truncate that leaves the tail's next id
/// in place changes nothing for it.
pub async fn tail_truncated_past_is_fell_behind(log: Log) {
    fill(&*log, 20).await;
    let mut behind = log.tail_with(5, options());
    log.truncate(10)
        .await
        .unwrap_or_else(|err| panic!("truncating to 10: {err}"));
    match tokio::time::timeout(Duration::from_secs(60), behind.next()).await {
        Ok(Err(TailError::FellBehind { next, start })) => assert_eq!((next, start), (5, 10)),
        other => panic!("a tail at 5 after truncate(10) gave {other:?}"),
    }
    assert_eq!(behind.position(), 5, "the tail stays where it was");
    behind.resume_at(10);
    let (payloads, end) = drain(&mut behind).await;
    assert_eq!((payloads, end), (expected_payloads(10..20), 20));
    // Caught up at the end, the log emptied but its end kept: the tail
    // follows the next append.
    log.truncate(20)
        .await
        .unwrap_or_else(|err| panic!("truncating to 20: {err}"));
    log.add_entry(entry(20), 20, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("appending 20: {err}"));
    let (payloads, end) = drain(&mut behind).await;
    assert_eq!((payloads, end), (expected_payloads(20..21), 21));
}

/// A tail past the log's end is a typed error, not a wait.
pub async fn tail_past_end_is_an_error(log: Log) {
    fill(&*log, 3).await;
    let mut tail = log.tail_with(7, options());
    match tokio::time::timeout(Duration::from_secs(60), tail.next()).await {
        Ok(Err(TailError::BeyondEnd { next, end })) => assert_eq!((next, end), (7, 3)),
        other => panic!("a tail at 7 of a log of 3 gave {other:?}"),
    }
}

/// A tail tracking snapshots reports each newly published one once (also
/// while caught up, with no entry appended), and its entries still come
/// whole; one that starts knowing the latest hears of the next only.
pub async fn tail_reports_new_snapshots(log: Log) {
    fill(&*log, 10).await;
    let snapshot = |sequence_id: SequenceId| SnapshotValue {
        sequence_id,
        blob_id: format!("snapshot-{sequence_id}"),
    };
    let publish = |seq: SequenceId| {
        let log = log.clone();
        async move {
            log.set_metadata(
                seq,
                MetadataUpdate::publish_snapshot(format!("snapshot-{seq}")),
            )
            .await
            .unwrap_or_else(|err| panic!("publishing at {seq}: {err}"));
        }
    };
    let mut tail = log
        .tail_with(0, options())
        .tracking_snapshots(KnownSnapshot::NoSnapshot);
    let (payloads, end) = drain(&mut tail).await;
    assert_eq!(
        (payloads, end),
        (expected_payloads(0..10), 10),
        "no snapshot yet"
    );
    publish(4).await;
    assert_eq!(
        next(&mut tail).await,
        TailEvent::Snapshot {
            snapshot: snapshot(4)
        },
        "published while the tail was caught up"
    );
    log.add_entry(entry(10), 10, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("appending 10: {err}"));
    let (payloads, end) = drain(&mut tail).await;
    assert_eq!(
        (payloads, end),
        (expected_payloads(10..11), 11),
        "told once"
    );
    // From the start again, knowing nothing: the latest snapshot first,
    // then every entry.
    let mut fresh = log
        .tail_with(0, options())
        .tracking_snapshots(KnownSnapshot::NoSnapshot);
    assert_eq!(
        next(&mut fresh).await,
        TailEvent::Snapshot {
            snapshot: snapshot(4)
        }
    );
    let (payloads, _) = drain(&mut fresh).await;
    assert_eq!(payloads, expected_payloads(0..11));
    // Knowing the latest: told of the next one only.
    let mut knowing = log
        .tail_with(0, options())
        .tracking_snapshots(KnownSnapshot::At(4));
    drain(&mut knowing).await;
    publish(8).await;
    assert_eq!(
        next(&mut knowing).await,
        TailEvent::Snapshot {
            snapshot: snapshot(8)
        }
    );
}

/// A log whose every wake-up is lost: the backend's log, declaring that
/// appends anywhere wake its tails, with the trait's default
/// `wait_for_entries`, a sleep no append ends.
#[derive(Debug)]
struct LostWakeUps(Log);

#[async_trait::async_trait]
impl EventLog for LostWakeUps {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<infinisheet_event_log::AppendToken>,
    ) -> Result<infinisheet_event_log::AddEntryValue, AddEntryError> {
        self.0.append_at(entries, seq, known, token).await
    }
    async fn query(
        &self,
        start: infinisheet_event_log::QueryStart,
        end: infinisheet_event_log::QueryEnd,
        known: KnownSnapshot,
    ) -> Result<infinisheet_event_log::QueryValue, infinisheet_event_log::QueryError> {
        self.0.query(start, end, known).await
    }
    async fn bounds(
        &self,
    ) -> Result<infinisheet_event_log::Bounds, infinisheet_event_log::StorageError> {
        self.0.bounds().await
    }
    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), infinisheet_event_log::SetMetadataError> {
        self.0.set_metadata(seq, update).await
    }
    async fn truncate(
        &self,
        start: SequenceId,
    ) -> Result<(), infinisheet_event_log::TruncateError> {
        self.0.truncate(start).await
    }
    fn capabilities(&self) -> infinisheet_event_log::LogCapabilities {
        self.0.capabilities().pushing()
    }
}

/// A tail of a log that pushes, every wake-up of which is lost (a
/// dropped notification, a missed file event), still finds each append
/// by reading again after its `pushed_wait`: in order, once.
pub async fn tail_reads_again_when_wake_ups_are_lost(log: Log) {
    let lost = LostWakeUps(log.clone());
    let options = options().pushed_wait(Duration::from_millis(20));
    let mut tail = lost.tail_with(0, options);
    assert_eq!(next(&mut tail).await, TailEvent::CaughtUp { end: 0 });
    for seq in 0..3 {
        let appended = async {
            tokio::task::yield_now().await;
            log.add_entry(entry(seq), seq, KnownSnapshot::NotTracked)
                .await
                .unwrap_or_else(|err| panic!("appending {seq}: {err}"));
        };
        let (drained, ()) = tokio::join!(drain(&mut tail), appended);
        assert_eq!(drained, (expected_payloads(seq..seq + 1), seq + 1));
    }
}
