//! Cases for racing writers and atomic batches.

use super::{Log, assert_fields_last, assert_holds, entry, everything, field_writers, fill};
use bytes::Bytes;
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{
    AddEntryError, KnownSnapshot, LogEntry, MetadataUpdate, SnapshotValue,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::sync::Barrier;

const RACERS: usize = 16;
/// Conflicts one append may meet before the case decides the log makes no
/// progress (with 8 racers, a correct log needs at most a few hundred).
const MAX_ATTEMPTS: u32 = 100_000;
/// Rounds of the racing cases: each a fresh race of every task (a log that
/// lets two writers win an id does so within a few).
const ROUNDS: u64 = 64;
/// Entries each task of `racing_appenders_lose_nothing` appends.
const EACH: u64 = 40;

fn tagged(task: usize, n: u64) -> LogEntry {
    LogEntry::new(Bytes::from(format!("task {task} entry {n}")))
}

/// 16 tasks race for the same id in each of 64 rounds: exactly one wins
/// every id, the losers are told the real end, the log is dense, and each id
/// holds the winner's payload.
pub async fn racing_writers_one_winner_per_id(log: Log) {
    let barrier = Arc::new(Barrier::new(RACERS));
    let tasks: Vec<_> = (0..RACERS)
        .map(|task| {
            let (log, barrier) = (log.clone(), barrier.clone());
            tokio::spawn(async move {
                // Every task takes part in every round whatever the log
                // replies, so a wrong reply fails the case instead of leaving
                // the other racers waiting at the barrier.
                let mut outcomes = Vec::new();
                for round in 0..ROUNDS {
                    barrier.wait().await;
                    let result = log
                        .add_entry(tagged(task, round), round, KnownSnapshot::NotTracked)
                        .await;
                    outcomes.push((round, result));
                    barrier.wait().await;
                }
                outcomes
            })
        })
        .collect();
    let mut winner = BTreeMap::new();
    for (task, handle) in tasks.into_iter().enumerate() {
        for (round, result) in handle.await.expect("racing task") {
            match result {
                Ok(_) => assert!(
                    winner.insert(round, task).is_none(),
                    "two writers won id {round}"
                ),
                Err(AddEntryError::Conflict { attempted, next }) => {
                    assert_eq!(attempted, round);
                    assert_eq!(
                        next,
                        round + 1,
                        "a loser of id {round} is told the real end"
                    );
                }
                Err(err) => panic!("task {task}, round {round}: {err}"),
            }
        }
    }
    assert_eq!(
        winner.len() as u64,
        ROUNDS,
        "every id has exactly one winner"
    );
    let all = everything(&*log).await;
    assert_eq!((all.start, all.end), (0, ROUNDS));
    for (round, task) in winner {
        assert_eq!(
            all.entries[round as usize].payload,
            tagged(task, round).payload,
            "id {round} holds its winner's payload"
        );
    }
}

/// 8 tasks append 40 entries each as fast as they can, retrying at the id
/// each conflict reports: the log ends dense, holding every acknowledged
/// entry exactly once at the id it was acknowledged at.
pub async fn racing_appenders_lose_nothing(log: Log) {
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut hint = 0;
                for n in 0..EACH {
                    for attempt in 0.. {
                        assert!(attempt < MAX_ATTEMPTS, "task {task} made no progress");
                        match log
                            .add_entry(tagged(task, n), hint, KnownSnapshot::NotTracked)
                            .await
                        {
                            Ok(_) => break,
                            Err(AddEntryError::Conflict { next, .. }) => hint = next,
                            Err(err) => panic!("task {task}: {err}"),
                        }
                    }
                    acked.push((hint, tagged(task, n).payload));
                    hint += 1;
                }
                acked
            })
        })
        .collect();
    let mut acked = BTreeMap::new();
    for handle in tasks {
        for (seq, payload) in handle.await.expect("appending task") {
            assert!(
                acked.insert(seq, payload).is_none(),
                "id {seq} acknowledged twice"
            );
        }
    }
    let all = everything(&*log).await;
    assert_eq!((all.start, all.end), (0, 8 * EACH));
    for (seq, payload) in acked {
        assert_eq!(all.entries[seq as usize].payload, payload, "entry {seq}");
    }
}

/// A batch appends all its entries at consecutive ids, in order.
pub async fn batch_appends_all_in_order(log: Log) {
    fill(&*log, 2).await;
    let batch: Vec<_> = (2..7).map(entry).collect();
    log.add_entries(batch, 2, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_holds(&*log, 0, 7).await;
}

/// A batch at a taken id or past the end is a conflict carrying the real end
/// and appends none of its entries.
pub async fn batch_conflict_appends_nothing(log: Log) {
    fill(&*log, 3).await;
    for attempted in [0, 2, 4] {
        let batch: Vec<_> = (10..14).map(entry).collect();
        assert_err!(
            log.add_entries(batch, attempted, KnownSnapshot::NotTracked).await,
            AddEntryError::Conflict { attempted: a, next: 3 } if a == attempted
        );
    }
    assert_holds(&*log, 0, 3).await;
}

/// An empty batch at the end succeeds and appends nothing; anywhere else it
/// is a conflict.
pub async fn empty_batch(log: Log) {
    fill(&*log, 2).await;
    log.add_entries(Vec::new(), 2, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    assert_holds(&*log, 0, 2).await;
    assert_err!(
        log.add_entries(Vec::new(), 1, KnownSnapshot::NotTracked)
            .await,
        AddEntryError::Conflict {
            attempted: 1,
            next: 2
        }
    );
}

/// A batch append names a newer snapshot, like a single append, including
/// one carried by an entry of the batch itself.
pub async fn batch_reports_newer_snapshot(log: Log) {
    fill(&*log, 2).await;
    log.set_metadata(1, MetadataUpdate::publish_snapshot("s1"))
        .await
        .unwrap();
    let added = log
        .add_entries(vec![entry(2), entry(3)], 2, KnownSnapshot::NoSnapshot)
        .await
        .unwrap();
    let expected = |seq, blob: &str| {
        Some(SnapshotValue {
            sequence_id: seq,
            blob_id: blob.into(),
        })
    };
    assert_eq!(added.last_snapshot, expected(1, "s1"));
    let mut carrier = entry(5);
    carrier.metadata.snapshot = Some("s5".into());
    let added = log
        .add_entries(vec![entry(4), carrier], 4, KnownSnapshot::At(1))
        .await
        .unwrap();
    assert_eq!(added.last_snapshot, expected(5, "s5"));
}

/// 8 tasks append batches of 3 entries, retrying on conflict: every
/// acknowledged batch sits whole and in order at its id, no partial batch
/// appears, and the log is dense.
pub async fn racing_batches_are_all_or_nothing(log: Log) {
    const BATCH: u64 = 3;
    let tasks: Vec<_> = (0..8)
        .map(|task| {
            let log = log.clone();
            tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut seq = 0;
                for n in 0..25 {
                    let batch: Vec<_> = (0..BATCH).map(|i| tagged(task, n * BATCH + i)).collect();
                    for attempt in 0.. {
                        assert!(attempt < MAX_ATTEMPTS, "task {task} made no progress");
                        match log
                            .add_entries(batch.clone(), seq, KnownSnapshot::NotTracked)
                            .await
                        {
                            Ok(_) => break,
                            Err(AddEntryError::Conflict { next, .. }) => seq = next,
                            Err(err) => panic!("task {task}: {err}"),
                        }
                    }
                    acked.push((seq, batch));
                    seq += BATCH;
                }
                acked
            })
        })
        .collect();
    let mut acked = BTreeMap::new();
    for handle in tasks {
        for (seq, batch) in handle.await.expect("batch task") {
            assert!(
                acked.insert(seq, batch).is_none(),
                "two batches acknowledged at {seq}"
            );
        }
    }
    let all = everything(&*log).await;
    assert_eq!(
        (all.start, all.end),
        (0, acked.len() as u64 * BATCH),
        "the log holds exactly the acknowledged batches"
    );
    for (seq, batch) in acked {
        let got = &all.entries[seq as usize..(seq + BATCH) as usize];
        assert_eq!(got, &batch[..], "batch acknowledged at {seq}");
    }
}

/// Three tasks each update a different metadata field of the same entry 100
/// times at once: no update is lost, each field ends at its task's last
/// value, and the payload is untouched.
pub async fn concurrent_metadata_updates_lose_nothing(log: Log) {
    fill(&*log, 1).await;
    let tasks = field_writers([log.clone(), log.clone(), log.clone()], 100);
    for handle in tasks {
        handle.await.expect("metadata task");
    }
    let all = everything(&*log).await;
    assert_fields_last(&all, 100);
    assert_eq!(all.entries[0].payload, entry(0).payload);
}
