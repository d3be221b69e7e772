//! Cases for appends retried with the same token: after a lost reply, a
//! retry lands once, and a token never lets a writer take another's id.

use super::{Log, assert_holds, entry, fill};
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{
    AddEntryError, AppendToken, EventLog, KnownSnapshot, MetadataUpdate, SnapshotValue,
};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Barrier;

/// The batch `entry(seq..seq + n)`.
fn batch(seq: u64, n: u64) -> Vec<infinisheet_event_log::LogEntry> {
    (seq..seq + n).map(entry).collect()
}

/// Appends `entry(seq..seq + n)` at `seq` under `token`.
async fn add(
    log: &dyn EventLog,
    seq: u64,
    n: u64,
    token: AppendToken,
    known: KnownSnapshot,
) -> Result<infinisheet_event_log::AddEntryValue, AddEntryError> {
    log.append_at(batch(seq, n), seq, known, Some(token)).await
}

/// An append whose reply is lost (the first call's reply is thrown away,
/// as a dropped connection would) and then retried with the same token
/// succeeds, and the log holds one copy: also when other writers appended
/// after it, and for a single entry as for a batch.
pub async fn lost_reply_then_retry_lands_once(log: Log) {
    fill(&*log, 3).await;
    let batch_token = AppendToken::random();
    let _lost = add(&*log, 3, 2, batch_token, KnownSnapshot::NotTracked).await;
    add(&*log, 3, 2, batch_token, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("retrying an append that landed: {err}"));
    assert_holds(&*log, 0, 5).await;

    let single = AppendToken::random();
    let _lost = add(&*log, 5, 1, single, KnownSnapshot::NotTracked).await;
    // Another writer appends meanwhile: the retry comes late.
    log.add_entry(entry(6), 6, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    for attempt in 0..3 {
        add(&*log, 5, 1, single, KnownSnapshot::NotTracked)
            .await
            .unwrap_or_else(|err| panic!("late retry {attempt}: {err}"));
        add(&*log, 3, 2, batch_token, KnownSnapshot::NotTracked)
            .await
            .unwrap_or_else(|err| panic!("late batch retry {attempt}: {err}"));
    }
    assert_holds(&*log, 0, 7).await;
}

/// A retry's reply names a newer snapshot as the first attempt's would.
pub async fn retried_append_reports_newer_snapshot(log: Log) {
    fill(&*log, 3).await;
    log.set_metadata(1, MetadataUpdate::publish_snapshot("s1"))
        .await
        .unwrap();
    let token = AppendToken::random();
    let first = add(&*log, 3, 1, token, KnownSnapshot::NoSnapshot)
        .await
        .unwrap();
    let newer = Some(SnapshotValue {
        sequence_id: 1,
        blob_id: "s1".into(),
    });
    assert_eq!(first.last_snapshot, newer);
    let retried = add(&*log, 3, 1, token, KnownSnapshot::NoSnapshot)
        .await
        .unwrap();
    assert_eq!(retried.last_snapshot, newer, "the retry's reply");
    let retried = add(&*log, 3, 1, token, KnownSnapshot::At(1)).await.unwrap();
    assert_eq!(retried.last_snapshot, None, "the caller knows the newest");
    assert_holds(&*log, 0, 4).await;
}

/// A token proves only its own batch: another token, no token, the same
/// token with another length or at another taken id, all conflict and
/// change nothing.
pub async fn a_token_never_takes_another_writers_id(log: Log) {
    let mine = AppendToken::random();
    add(&*log, 0, 2, mine, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    log.add_entry(entry(2), 2, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    let conflict = |attempted| {
        move |result: Result<_, AddEntryError>| match result {
            Err(AddEntryError::Conflict { attempted: a, next }) => {
                assert_eq!((a, next), (attempted, 3), "the conflict's ids");
            }
            other => panic!("expected a conflict at {attempted}, got {other:?}"),
        }
    };
    let other = AppendToken::random();
    conflict(0)(add(&*log, 0, 2, other, KnownSnapshot::NotTracked).await);
    conflict(0)(
        log.add_entries(batch(0, 2), 0, KnownSnapshot::NotTracked)
            .await,
    );
    conflict(0)(add(&*log, 0, 1, mine, KnownSnapshot::NotTracked).await);
    conflict(0)(add(&*log, 0, 3, mine, KnownSnapshot::NotTracked).await);
    conflict(1)(add(&*log, 1, 1, mine, KnownSnapshot::NotTracked).await);
    conflict(2)(add(&*log, 2, 1, mine, KnownSnapshot::NotTracked).await);
    conflict(4)(add(&*log, 4, 1, mine, KnownSnapshot::NotTracked).await);
    assert_holds(&*log, 0, 3).await;
}

const ROUNDS: u64 = 40;
const RETRIERS: usize = 4;

/// In each of 40 rounds, four attempts of one append (same batch, id and
/// token) race four attempts of another writer's: one writer's attempts all
/// succeed, the other's all conflict, and the log holds one copy of the
/// winner's batch.
pub async fn racing_retries_land_once(log: Log) {
    let barrier = Arc::new(Barrier::new(2 * RETRIERS));
    let tokens: Vec<(AppendToken, AppendToken)> = (0..ROUNDS)
        .map(|_| (AppendToken::random(), AppendToken::random()))
        .collect();
    let tasks: Vec<_> = (0..2 * RETRIERS)
        .map(|task| {
            let (log, barrier, tokens) = (log.clone(), barrier.clone(), tokens.clone());
            tokio::spawn(async move {
                let writer = task % 2;
                let mut outcomes = Vec::new();
                for (round, (a, b)) in (0..).zip(tokens) {
                    let token = if writer == 0 { a } else { b };
                    let seq = round * 2;
                    barrier.wait().await;
                    let entries = (0..2)
                        .map(|i| {
                            infinisheet_event_log::LogEntry::new(format!(
                                "writer {writer} round {round} entry {i}"
                            ))
                        })
                        .collect();
                    let result = log
                        .append_at(entries, seq, KnownSnapshot::NotTracked, Some(token))
                        .await;
                    outcomes.push(match result {
                        Ok(_) => Ok(()),
                        Err(AddEntryError::Conflict { next, .. }) => Err(next),
                        Err(err) => panic!("task {task}, round {round}: {err}"),
                    });
                    barrier.wait().await;
                }
                (writer, outcomes)
            })
        })
        .collect();
    let mut winners = vec![Vec::new(); ROUNDS as usize];
    for handle in tasks {
        let (writer, outcomes) = handle.await.expect("racing task");
        for (round, outcome) in outcomes.into_iter().enumerate() {
            match outcome {
                Ok(()) => winners[round].push(writer),
                Err(next) => assert_eq!(next, round as u64 * 2 + 2, "round {round}'s end"),
            }
        }
    }
    let all = super::everything(&*log).await;
    assert_eq!((all.start, all.end), (0, 2 * ROUNDS), "one copy per round");
    for (round, won) in winners.iter().enumerate() {
        let writer = *won
            .first()
            .unwrap_or_else(|| panic!("round {round}: no attempt succeeded"));
        assert!(
            won.len() == RETRIERS && won.iter().all(|w| *w == writer),
            "round {round}: the successes {won:?} are not exactly one writer's attempts"
        );
        for i in 0..2 {
            assert_eq!(
                all.entries[round * 2 + i].payload,
                format!("writer {writer} round {round} entry {i}").as_bytes(),
                "round {round} holds its winner's batch"
            );
        }
    }
}

/// Truncating entries before a batch keeps its token: a retry still lands
/// once.
pub async fn tokens_survive_truncating_other_entries(log: Log) {
    fill(&*log, 4).await;
    let token = AppendToken::random();
    add(&*log, 4, 3, token, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    fill_from(&*log, 7, 9).await;
    log.truncate(4).await.unwrap();
    add(&*log, 4, 3, token, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("retrying after a truncate before the batch: {err}"));
    assert_holds(&*log, 4, 9).await;
}

async fn fill_from(log: &dyn EventLog, start: u64, end: u64) {
    for i in start..end {
        log.add_entry(entry(i), i, KnownSnapshot::NotTracked)
            .await
            .unwrap_or_else(|err| panic!("appending entry {i}: {err}"));
    }
}

/// A durable log remembers tokens across reopening: the retry of an append
/// made before reopening lands once.
pub async fn tokens_survive_reopen<L, R, Fut>(log: L, reopen: Option<R>)
where
    L: EventLog,
    R: FnOnce(L) -> Fut,
    Fut: Future<Output = L>,
{
    let Some(reopen) = crate::report::reopener(
        "tokens_survive_reopen",
        log.capabilities().persistent,
        "event_log_tests!",
        reopen,
    ) else {
        return;
    };
    fill(&log, 2).await;
    let token = AppendToken::random();
    add(&log, 2, 2, token, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    let log = reopen(log).await;
    add(&log, 2, 2, token, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("retrying across reopening: {err}"));
    assert_holds(&log, 0, 4).await;
}
