//! Cases for `query`: bounds, edges and paging.

use super::{Log, entry, everything, expected_payloads, fill, fill_batched, payloads};
use infinisheet_event_log::{
    Bounds, EventLogExt, KnownSnapshot, QueryEnd, QueryError, QueryStart, QueryValue, RangeError,
};

async fn query(log: &Log, start: QueryStart, end: QueryEnd) -> QueryValue {
    log.query(start, end, KnownSnapshot::NotTracked)
        .await
        .unwrap_or_else(|err| panic!("query({start:?}, {end:?}): {err}"))
}

/// Checks the invariants of one page: `end == start + entries.len()`, and it
/// returns at least one entry when incomplete.
fn check_page(page: &QueryValue) {
    assert_eq!(
        page.end,
        page.start + page.entries.len() as u64,
        "a reply's end is one past its last entry"
    );
    assert!(
        page.is_complete || !page.entries.is_empty(),
        "an incomplete reply must make progress"
    );
}

/// Pages from `start` to `end`, checking each page and that it starts where
/// the last ended; returns where the last page ended and every payload.
async fn page_through(log: &Log, start: u64, end: QueryEnd) -> (u64, Vec<bytes::Bytes>) {
    let mut start = start;
    let mut got = Vec::new();
    loop {
        let page = query(log, QueryStart::Id(start), end).await;
        check_page(&page);
        assert_eq!(page.start, start, "each page starts where the last ended");
        got.extend(payloads(&page));
        start = page.end;
        if page.is_complete {
            return (start, got);
        }
    }
}

/// A query from an id inside the log to an id inside it returns exactly that
/// range.
pub async fn query_range_in_middle(log: Log) {
    fill(&*log, 10).await;
    let (start, got) = page_through(&log, 3, QueryEnd::Id(7)).await;
    assert_eq!(start, 7);
    assert_eq!(got, expected_payloads(3..7));
}

/// `EventLog::bounds` reports the log's start and end (empty, filled,
/// truncated, emptied), and the range error of a start past the end names
/// the same bounds.
pub async fn query_range_error_names_the_bounds(log: Log) {
    async fn agree(log: &Log, start: u64, end: u64) {
        assert_eq!(log.bounds().await.unwrap(), Bounds::new(start, end));
        match log
            .query(
                QueryStart::Id(end + 1),
                QueryEnd::End,
                KnownSnapshot::NotTracked,
            )
            .await
        {
            Err(QueryError::Range(range)) => {
                assert_eq!(
                    (range.requested, range.start, range.end),
                    (end + 1, start, end)
                );
            }
            other => panic!("a query past the end gave {other:?}"),
        }
    }
    agree(&log, 0, 0).await;
    fill(&*log, 6).await;
    agree(&log, 0, 6).await;
    log.truncate(4).await.unwrap();
    agree(&log, 4, 6).await;
    log.truncate(6).await.unwrap();
    agree(&log, 6, 6).await;
}

/// An end before the start gives an empty, complete reply.
pub async fn query_end_before_start_is_empty(log: Log) {
    fill(&*log, 10).await;
    let page = query(&log, QueryStart::Id(6), QueryEnd::Id(2)).await;
    assert_eq!((page.start, page.end), (6, 6));
    assert!(page.entries.is_empty());
    assert!(page.is_complete);
}

/// An end past the log's end stops at the log's end.
pub async fn query_end_past_log_end_stops_at_end(log: Log) {
    fill(&*log, 4).await;
    let all = log
        .query_all(
            QueryStart::Id(1),
            QueryEnd::Id(1000),
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    assert_eq!((all.start, all.end), (1, 4));
    assert!(all.is_complete);
    assert_eq!(payloads(&all), expected_payloads(1..4));
}

/// Starting at the end gives an empty, complete reply.
pub async fn query_start_at_end_is_empty(log: Log) {
    fill(&*log, 4).await;
    for end in [QueryEnd::End, QueryEnd::Id(4), QueryEnd::Id(9)] {
        let page = query(&log, QueryStart::Id(4), end).await;
        assert_eq!((page.start, page.end), (4, 4), "query(4, {end:?})");
        assert!(page.entries.is_empty());
        assert!(page.is_complete);
    }
}

/// Starting past the end is a range error naming the bounds.
pub async fn query_start_past_end_is_range_error(log: Log) {
    fill(&*log, 4).await;
    assert_err!(
        log.query(QueryStart::Id(5), QueryEnd::End, KnownSnapshot::NotTracked)
            .await,
        QueryError::Range(RangeError {
            requested: 5,
            start: 0,
            end: 4
        })
    );
}

/// A log larger than any sensible page (2,500 entries) reads back whole by
/// following pages: each starts where the last ended, every entry exactly
/// once, in order.
pub async fn query_pages_cover_the_log(log: Log) {
    fill_batched(&*log, 0, 2_500, 500).await;
    let (start, got) = page_through(&log, 0, QueryEnd::End).await;
    assert_eq!(start, 2_500);
    assert_eq!(got, expected_payloads(0..2_500));
}

/// Paging through the log while another task appends: the pages continue
/// without gap or repeat, and the final read holds every appended entry.
pub async fn query_pages_continue_while_appending(log: Log) {
    fill_batched(&*log, 0, 1_500, 500).await;
    let writer = {
        let log = log.clone();
        tokio::spawn(async move {
            for i in 1_500..2_000 {
                log.add_entry(entry(i), i, KnownSnapshot::NotTracked)
                    .await
                    .unwrap_or_else(|err| panic!("appending {i}: {err}"));
            }
        })
    };
    let (start, mut got) = page_through(&log, 0, QueryEnd::End).await;
    assert!(
        start >= 1_500,
        "the query saw at least the entries present when it began"
    );
    assert_eq!(got, expected_payloads(0..start));
    writer.await.expect("writer task");
    let rest = log
        .query_all(
            QueryStart::Id(start),
            QueryEnd::End,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
    got.extend(payloads(&rest));
    assert_eq!(got, expected_payloads(0..2_000));
}

/// `QueryStart::Start` and `QueryStart::Snapshot` on a log without
/// snapshots both begin at the first entry, also after a truncate.
pub async fn query_snapshot_start_without_snapshot_is_first_entry(log: Log) {
    fill(&*log, 5).await;
    for start in [QueryStart::Start, QueryStart::Snapshot] {
        assert_eq!(query(&log, start, QueryEnd::End).await.start, 0);
    }
    log.truncate(2).await.unwrap();
    for start in [QueryStart::Start, QueryStart::Snapshot] {
        assert_eq!(query(&log, start, QueryEnd::End).await.start, 2);
    }
}

/// A reply's entries never change between two reads when nothing is written.
pub async fn query_is_repeatable(log: Log) {
    fill(&*log, 20).await;
    let first = everything(&*log).await;
    let second = everything(&*log).await;
    assert_eq!(first, second);
    assert_eq!(
        log.query(QueryStart::Id(20), QueryEnd::End, KnownSnapshot::NotTracked)
            .await
            .unwrap()
            .entries
            .len(),
        0
    );
}
