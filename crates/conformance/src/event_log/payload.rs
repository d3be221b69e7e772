//! Cases for payload sizes and contents.

use super::{Log, everything};
use bytes::Bytes;
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{KnownSnapshot, LogEntry, MetadataUpdate};

async fn round_trip(log: &Log, payloads: Vec<Bytes>) {
    for (seq, payload) in payloads.iter().enumerate() {
        log.add_entry(
            LogEntry::new(payload.clone()),
            seq as u64,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap_or_else(|err| panic!("appending a {}-byte payload: {err}", payload.len()));
    }
    let all = everything(&**log).await;
    let got: Vec<_> = all.entries.iter().map(|e| e.payload.clone()).collect();
    assert_eq!(got.len(), payloads.len());
    for (i, (got, want)) in got.iter().zip(&payloads).enumerate() {
        assert!(
            got == want,
            "payload {i} ({} bytes) came back different ({} bytes)",
            want.len(),
            got.len()
        );
    }
}

/// An empty payload is a valid entry and comes back empty.
pub async fn payload_empty(log: Log) {
    round_trip(&log, vec![Bytes::new(), Bytes::from_static(b"after")]).await;
}

/// A 1-byte payload comes back exactly.
pub async fn payload_one_byte(log: Log) {
    round_trip(
        &log,
        vec![Bytes::from_static(b"x"), Bytes::from_static(&[0])],
    )
    .await;
}

/// Every byte value survives, in a payload that is not valid UTF-8.
pub async fn payload_binary(log: Log) {
    let all_bytes: Vec<u8> = (0..=255).rev().collect();
    round_trip(&log, vec![Bytes::from(all_bytes)]).await;
}

/// A 4 MiB payload comes back exactly, and metadata changes on it never
/// alter it.
pub async fn payload_four_mib(log: Log) {
    let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    let big = Bytes::from(big);
    round_trip(&log, vec![big.clone()]).await;
    log.set_metadata(0, MetadataUpdate::publish_snapshot("s"))
        .await
        .unwrap();
    let all = everything(&*log).await;
    assert!(
        all.entries[0].payload == big,
        "metadata change altered a 4 MiB payload"
    );
    assert_eq!(all.entries[0].metadata.snapshot.as_deref(), Some("s"));
}
