//! Lost replies over HTTP: a server that carries out every third call but
//! answers it with a 503. Appends retried with their token land exactly
//! once, however the writers race (a server that dropped the token left
//! 56 duplicates in 100 entries).

#![allow(clippy::unwrap_used)] // tests fail by panicking

use crate::common;

use infinisheet_event_log::{
    AddEntryError, AppendToken, EventLog, KnownSnapshot, LogEntry, QueryEnd, QueryStart,
};
use infinisheet_http::HttpStorage;
use std::sync::Arc;

/// Appends `payload` once, whatever replies are lost: the same token at
/// the same id after a storage error, a fresh id after a conflict.
async fn append_once(log: &dyn EventLog, payload: String) -> u64 {
    let token = AppendToken::random();
    let mut seq = 0;
    let mut lost = 0;
    loop {
        let entry = LogEntry::new(payload.clone());
        match log
            .append_at(vec![entry], seq, KnownSnapshot::NotTracked, Some(token))
            .await
        {
            Ok(_) => return lost,
            Err(AddEntryError::Conflict { next, .. }) => seq = next,
            Err(err) if err.is_retryable() => lost += 1,
            Err(err) => panic!("appending {payload}: {err}"),
        }
    }
}

#[test]
fn retried_appends_land_once_over_lost_replies() {
    infinisheet_conformance::run(async {
        let url = common::start(3);
        let storage = HttpStorage::connect(&url, None).await;
        // The hello itself may be the lost one.
        let storage = match storage {
            Ok(storage) => storage,
            Err(err) if err.is_retryable() => HttpStorage::connect(&url, None).await.unwrap(),
            Err(err) => panic!("{err}"),
        };
        let log = loop {
            match storage.log("raced", true).await {
                Ok(log) => break Arc::new(log),
                Err(infinisheet_http::OpenLogError::Storage(err)) if err.is_retryable() => {}
                Err(err) => panic!("{err}"),
            }
        };
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let log = log.clone();
                tokio::spawn(async move {
                    let mut lost = 0;
                    for n in 0..25 {
                        lost += append_once(&*log, format!("writer {w} entry {n}")).await;
                    }
                    lost
                })
            })
            .collect();
        let mut lost = 0;
        for writer in writers {
            lost += writer.await.unwrap();
        }
        assert!(lost > 10, "only {lost} replies were lost");
        // Read it all (reads lose replies too: read again).
        let mut payloads = Vec::new();
        while payloads.len() < 100 {
            let from = payloads.len() as u64;
            match log
                .query(
                    QueryStart::Id(from),
                    QueryEnd::End,
                    KnownSnapshot::NotTracked,
                )
                .await
            {
                Ok(page) => payloads.extend(page.entries.into_iter().map(|e| e.payload)),
                Err(err) if err.is_retryable() => {}
                Err(err) => panic!("{err}"),
            }
        }
        let bounds = loop {
            if let Ok(bounds) = log.bounds().await {
                break bounds;
            }
        };
        assert_eq!(bounds.end, 100, "{lost} lost replies left duplicates");
        let mut seen: Vec<String> = payloads
            .iter()
            .map(|p| String::from_utf8(p.to_vec()).unwrap())
            .collect();
        seen.sort();
        let mut expected: Vec<String> = (0..4)
            .flat_map(|w| (0..25).map(move |n| format!("writer {w} entry {n}")))
            .collect();
        expected.sort();
        assert_eq!(seen, expected, "each entry exactly once");
    });
}
