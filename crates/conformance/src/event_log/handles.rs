//! Cases for two independent handles on one log, as two processes (or a
//! catalog whose log store opens a handle per call) hold them: what one
//! does, the other sees and obeys. A backend that keeps state per handle
//! (its bounds in memory, say) and trusts it fails them.

use super::{Log, assert_fields_last, entry, everything, field_writers, fill, payloads};
use bytes::Bytes;
use infinisheet_event_log::{
    AddEntryError, AppendToken, EventLogExt, FieldUpdate, KnownSnapshot, LogEntry, MetadataUpdate,
    QueryEnd, QueryError, QueryStart, SetMetadataError, TruncateError,
};
use std::collections::BTreeMap;
use std::time::Duration;

/// The update that marks an entry with a due workflow.
fn pending(workflow: &str) -> MetadataUpdate {
    MetadataUpdate {
        pending: FieldUpdate::Set(workflow.to_owned()),
        ..MetadataUpdate::default()
    }
}

/// What each handle reads of the log: its bounds and every payload.
async fn view(log: &Log) -> (u64, u64, Vec<Bytes>) {
    let bounds = log
        .bounds()
        .await
        .unwrap_or_else(|err| panic!("reading the bounds: {err}"));
    let all = everything(log.as_ref()).await;
    assert_eq!(
        (all.start, all.end),
        (bounds.start, bounds.end),
        "the handle's bounds and its query disagree"
    );
    (bounds.start, bounds.end, payloads(&all))
}

/// An append through one handle is seen by the other's `bounds` and
/// `query`, and appends go on through either, each at the end the other
/// left.
pub async fn second_handle_sees_appends(a: Log, b: Log) {
    fill(a.as_ref(), 3).await;
    assert_eq!(view(&b).await, view(&a).await, "the handles disagree");
    assert_eq!(view(&b).await.1, 3, "the second handle misses appends");
    b.add_entry(entry(3), 3, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("appending entry 3 through the second handle: {err}"));
    a.add_entries(vec![entry(4), entry(5)], 4, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("appending 4 and 5 through the first handle: {err}"));
    let (start, end, seen) = view(&b).await;
    assert_eq!((start, end), (0, 6));
    assert_eq!(seen, (0..6).map(|i| entry(i).payload).collect::<Vec<_>>());
    assert_eq!(view(&a).await, (start, end, seen));
}

/// A handle whose view is stale — it read the log, then the other handle
/// appended — meets a conflict naming the real end when it appends at the
/// id it believes free: never an overwrite, never a silent success. The
/// other handle's entry stays.
pub async fn stale_handle_append_is_a_conflict(a: Log, b: Log) {
    fill(a.as_ref(), 2).await;
    // Both have read the log: each believes the end is 2.
    assert_eq!(view(&a).await.1, 2);
    assert_eq!(view(&b).await.1, 2);
    b.add_entry(LogEntry::new("from b"), 2, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("appending at 2 through the second handle: {err}"));
    assert_err!(
        a.add_entry(LogEntry::new("from a"), 2, KnownSnapshot::NotTracked)
            .await,
        AddEntryError::Conflict {
            attempted: 2,
            next: 3
        }
    );
    assert_err!(
        a.add_entries(
            vec![LogEntry::new("a1"), LogEntry::new("a2")],
            2,
            KnownSnapshot::NotTracked
        )
        .await,
        AddEntryError::Conflict {
            attempted: 2,
            next: 3
        }
    );
    for log in [&a, &b] {
        let (_, end, seen) = view(log).await;
        assert_eq!(end, 3, "a stale append changed the log");
        assert_eq!(
            seen[2],
            Bytes::from_static(b"from b"),
            "a stale handle overwrote the other's entry"
        );
    }
    a.add_entry(LogEntry::new("from a"), 3, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("appending at the real end after the conflict: {err}"));
}

/// Metadata set and a truncate done through one handle are what the other
/// reads, and its own calls obey them: its replies name the snapshot the
/// other published, and ids below the new start are range errors.
pub async fn second_handle_sees_metadata_and_truncation(a: Log, b: Log) {
    fill(a.as_ref(), 6).await;
    // The second handle has read the log before the changes.
    assert_eq!(view(&b).await.1, 6);
    a.set_metadata(3, MetadataUpdate::publish_snapshot("s3"))
        .await
        .unwrap_or_else(|err| panic!("publishing a snapshot on 3: {err}"));
    a.set_metadata(4, pending("snapshot"))
        .await
        .unwrap_or_else(|err| panic!("marking 4 pending: {err}"));
    let seen = everything(b.as_ref()).await;
    assert_eq!(seen.entries[3].metadata.snapshot.as_deref(), Some("s3"));
    assert_eq!(
        seen.entries[4].metadata.pending.as_deref(),
        Some("snapshot")
    );
    let from_snapshot = b
        .query(
            QueryStart::Snapshot,
            QueryEnd::End,
            KnownSnapshot::NoSnapshot,
        )
        .await
        .unwrap_or_else(|err| panic!("querying from the snapshot: {err}"));
    assert_eq!(
        from_snapshot.start, 3,
        "the second handle misses the snapshot"
    );
    let added = b
        .add_entry(entry(6), 6, KnownSnapshot::NoSnapshot)
        .await
        .unwrap_or_else(|err| panic!("appending through the second handle: {err}"));
    assert_eq!(
        added.last_snapshot.map(|s| (s.sequence_id, s.blob_id)),
        Some((3, "s3".to_owned())),
        "the second handle's append names no snapshot the first published"
    );
    b.truncate(3)
        .await
        .unwrap_or_else(|err| panic!("truncating to 3 through the second handle: {err}"));
    let (start, end, _) = view(&a).await;
    assert_eq!((start, end), (3, 7), "the first handle misses the truncate");
    assert_err!(
        a.query(QueryStart::Id(1), QueryEnd::End, KnownSnapshot::NotTracked)
            .await,
        QueryError::Range(_)
    );
    assert_err!(
        a.set_metadata(2, pending("x")).await,
        SetMetadataError::Range(_)
    );
}

/// A retry of a lost reply's append through the other handle, with the
/// same token, is recognised: it succeeds and the log holds one copy;
/// another token at that id is a conflict.
pub async fn token_retried_through_second_handle_lands_once(a: Log, b: Log) {
    fill(a.as_ref(), 2).await;
    let token = AppendToken::from_u128(0x5eed_0001);
    let batch = vec![entry(2), entry(3)];
    a.append_at(batch.clone(), 2, KnownSnapshot::NotTracked, Some(token))
        .await
        .unwrap_or_else(|err| panic!("appending with a token: {err}"));
    // The reply was lost; the writer retries through another handle.
    b.append_at(batch.clone(), 2, KnownSnapshot::NotTracked, Some(token))
        .await
        .unwrap_or_else(|err| panic!("the retry through the second handle failed: {err}"));
    assert_err!(
        b.append_at(
            batch,
            2,
            KnownSnapshot::NotTracked,
            Some(AppendToken::from_u128(0x5eed_0002))
        )
        .await,
        AddEntryError::Conflict {
            attempted: 2,
            next: 4
        }
    );
    let (_, end, seen) = view(&a).await;
    assert_eq!(end, 4, "the retry appended the batch again");
    assert_eq!(seen, (0..4).map(|i| entry(i).payload).collect::<Vec<_>>());
}

/// Writers racing through both handles — eight on each, each appending
/// at the end it last heard of until it has appended 17 entries (272 in
/// all: past a 256-entry stride, where the object-store log moves its end
/// hint, while the handles race) — leave
/// exactly one entry per id, dense, each the payload of the append told it
/// won that id. A retryable storage error is tried again under the entry's
/// token (a remote store under load may answer one).
pub async fn racing_through_two_handles_one_winner_per_id(a: Log, b: Log) {
    const WRITERS: usize = 16;
    const EACH: u64 = 17;
    let tasks: Vec<_> = (0..WRITERS)
        .map(|writer| {
            let log = if writer % 2 == 0 {
                a.clone()
            } else {
                b.clone()
            };
            tokio::spawn(async move {
                let mut won = Vec::new();
                let mut seq = 0;
                let (mut attempts, mut failures) = (0u32, 0u32);
                while (won.len() as u64) < EACH {
                    attempts += 1;
                    assert!(attempts < 100_000, "writer {writer} makes no progress");
                    let payload = format!("writer {writer} entry {}", won.len());
                    // Each entry under a token of its own: a try that
                    // failed with a retryable error (a remote store under
                    // load) is tried again at the same id, and lands once
                    // or is found landed.
                    let token = AppendToken::from_u128(
                        0x7ace_0000_0000 | ((writer as u128) << 16) | won.len() as u128,
                    );
                    match log
                        .append_at(
                            vec![LogEntry::new(payload.clone())],
                            seq,
                            KnownSnapshot::NotTracked,
                            Some(token),
                        )
                        .await
                    {
                        Ok(_) => {
                            won.push((seq, payload));
                            seq += 1;
                        }
                        Err(AddEntryError::Conflict { attempted, next }) => {
                            assert_eq!(attempted, seq);
                            assert!(next > seq, "a conflict at {seq} names {next} as the end");
                            seq = next;
                        }
                        Err(AddEntryError::Storage(err)) if err.is_retryable() && failures < 20 => {
                            failures += 1;
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        Err(err) => panic!("writer {writer} at {seq}: {err}"),
                    }
                }
                won
            })
        })
        .collect();
    let mut winners = BTreeMap::new();
    for task in tasks {
        for (seq, payload) in task.await.expect("a racing writer") {
            assert!(
                winners.insert(seq, payload).is_none(),
                "two writers were told they won id {seq}"
            );
        }
    }
    let total = WRITERS as u64 * EACH;
    for log in [&a, &b] {
        let (start, end, seen) = view(log).await;
        assert_eq!((start, end), (0, total), "the log is not dense");
        for (seq, payload) in &winners {
            assert_eq!(
                seen[*seq as usize],
                Bytes::from(payload.clone()),
                "id {seq} holds another writer's entry than the one told it won"
            );
        }
    }
}

/// For a backend that declares `wakes_in_process`: a tail waiting through
/// one handle (with a 600 s timeout) returns within 30 s of an append
/// through the other, however the two are timed.
pub async fn appends_through_a_second_handle_wake_tails(a: Log, b: Log) {
    if !a.capabilities().wakes_in_process {
        crate::skip(
            "appends_through_a_second_handle_wake_tails",
            "the backend does not declare `wakes_in_process` (its tails poll)",
        );
        return;
    }
    const LONG: Duration = Duration::from_secs(600);
    const WITHIN: Duration = Duration::from_secs(30);
    for round in 0..5 {
        // Waiting first, then appending, in one task: the wait is
        // registered (or has seen the entry) before the append can wake it.
        let waited = async {
            tokio::time::timeout(WITHIN, a.wait_for_entries(round, LONG))
                .await
                .is_ok()
        };
        let appended = async {
            if round % 2 == 0 {
                tokio::task::yield_now().await;
            }
            b.add_entry(entry(round), round, KnownSnapshot::NotTracked)
                .await
                .unwrap_or_else(|err| panic!("appending {round}: {err}"));
        };
        let (woken, ()) = tokio::join!(waited, appended);
        assert!(
            woken,
            "round {round}: the append through the other handle woke no waiter"
        );
    }
    assert!(
        tokio::time::timeout(WITHIN, a.wait_for_entries(2, LONG))
            .await
            .is_ok(),
        "a wait for entries already there did not return"
    );
}

/// A handle whose view is stale — it read the bounds before the other
/// truncated — meets range errors for a truncate and a metadata change
/// below the new start: it never moves the start back, nor brings a
/// truncated entry back as a ghost.
pub async fn stale_handle_below_the_start_is_a_range_error(a: Log, b: Log) {
    fill(a.as_ref(), 10).await;
    assert_eq!(view(&b).await.0, 0);
    a.truncate(6)
        .await
        .unwrap_or_else(|err| panic!("truncating to 6: {err}"));
    assert_err!(b.truncate(3).await, TruncateError::Range(_));
    assert_err!(
        b.set_metadata(2, pending("ghost")).await,
        SetMetadataError::Range(_)
    );
    for log in [&a, &b] {
        let (start, end, seen) = view(log).await;
        assert_eq!((start, end), (6, 10), "a stale handle moved the start");
        assert_eq!(seen, (6..10).map(|i| entry(i).payload).collect::<Vec<_>>());
    }
}

/// Metadata changed through both handles at once, while appends go on
/// through one of them: every field keeps its last value, and every
/// appended entry is there.
pub async fn metadata_through_two_handles_loses_nothing(a: Log, b: Log) {
    fill(a.as_ref(), 2).await;
    const ROUNDS: u64 = 30;
    let tasks = field_writers([a.clone(), b.clone(), a.clone()], ROUNDS);
    let appender = {
        let log = b.clone();
        tokio::spawn(async move {
            for i in 2..2 + ROUNDS {
                log.add_entry(entry(i), i, KnownSnapshot::NotTracked)
                    .await
                    .unwrap_or_else(|err| panic!("appending {i}: {err}"));
            }
        })
    };
    for task in tasks {
        task.await.expect("a metadata task");
    }
    appender.await.expect("the appender");
    for log in [&a, &b] {
        let all = everything(log.as_ref()).await;
        assert_fields_last(&all, ROUNDS);
        assert_eq!(
            payloads(&all),
            (0..2 + ROUNDS)
                .map(|i| entry(i).payload)
                .collect::<Vec<_>>(),
            "an append was lost among metadata changes"
        );
    }
}

/// A handle that has told its caller of a snapshot hears of newer ones
/// the other handle publishes, and of their clearing: its replies always
/// name the log's newest snapshot, never one it remembers.
pub async fn second_handle_hears_of_each_snapshot(a: Log, b: Log) {
    fill(a.as_ref(), 8).await;
    a.set_metadata(3, MetadataUpdate::publish_snapshot("s3"))
        .await
        .unwrap_or_else(|err| panic!("publishing s3: {err}"));
    let newest = |log: &Log, known: KnownSnapshot| {
        let log = log.clone();
        async move {
            log.query(QueryStart::Snapshot, QueryEnd::End, known)
                .await
                .unwrap_or_else(|err| panic!("querying from the snapshot: {err}"))
        }
    };
    let first = newest(&b, KnownSnapshot::NoSnapshot).await;
    assert_eq!(first.start, 3);
    assert_eq!(first.last_snapshot.map(|s| s.sequence_id), Some(3));
    a.set_metadata(5, MetadataUpdate::publish_snapshot("s5"))
        .await
        .unwrap_or_else(|err| panic!("publishing s5: {err}"));
    let second = newest(&b, KnownSnapshot::At(3)).await;
    assert_eq!(second.start, 5, "the second handle misses a newer snapshot");
    assert_eq!(
        second.last_snapshot.map(|s| (s.sequence_id, s.blob_id)),
        Some((5, "s5".to_owned()))
    );
    let cleared = MetadataUpdate {
        snapshot: FieldUpdate::Clear,
        ..MetadataUpdate::default()
    };
    a.set_metadata(5, cleared)
        .await
        .unwrap_or_else(|err| panic!("clearing s5: {err}"));
    let third = newest(&b, KnownSnapshot::At(5)).await;
    assert_eq!(
        third.start, 3,
        "the second handle still starts at a cleared snapshot"
    );
    assert_eq!(third.last_snapshot.map(|s| s.sequence_id), Some(3));
    a.truncate(4)
        .await
        .unwrap_or_else(|err| panic!("truncating past the snapshot: {err}"));
    let fourth = newest(&b, KnownSnapshot::At(3)).await;
    assert_eq!(
        fourth.start, 4,
        "a query from the snapshot starts below the log"
    );
}

/// A token is honoured however long ago its batch landed: after 100 other
/// appends through the other handle, a retry of it still lands once.
pub async fn old_tokens_are_honoured_through_a_second_handle(a: Log, b: Log) {
    let token = AppendToken::from_u128(0x5eed_0003);
    a.append_at(vec![entry(0)], 0, KnownSnapshot::NotTracked, Some(token))
        .await
        .unwrap_or_else(|err| panic!("appending with a token: {err}"));
    for i in 1..=100 {
        b.add_entry(entry(i), i, KnownSnapshot::NotTracked)
            .await
            .unwrap_or_else(|err| panic!("appending {i}: {err}"));
    }
    b.append_at(vec![entry(0)], 0, KnownSnapshot::NotTracked, Some(token))
        .await
        .unwrap_or_else(|err| panic!("an old retry through the second handle failed: {err}"));
    assert_eq!(view(&a).await.1, 101, "an old retry appended again");
}
