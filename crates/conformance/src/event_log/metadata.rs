//! Cases for `set_metadata`: each field kept, set or cleared on its own.

use super::{Log, entry, everything, fill, payloads};
use infinisheet_event_log::EventLogExt as _;
use infinisheet_event_log::{
    EntryMetadata, FieldUpdate, KnownSnapshot, MetadataUpdate, RangeError, SetMetadataError,
};

fn set_only(field: usize, value: &str) -> MetadataUpdate {
    let mut update = MetadataUpdate::default();
    match field {
        0 => update.snapshot = FieldUpdate::Set(value.into()),
        1 => update.history = FieldUpdate::Set(value.into()),
        _ => update.pending = FieldUpdate::Set(value.into()),
    }
    update
}

fn clear_only(field: usize) -> MetadataUpdate {
    let mut update = MetadataUpdate::default();
    match field {
        0 => update.snapshot = FieldUpdate::Clear,
        1 => update.history = FieldUpdate::Clear,
        _ => update.pending = FieldUpdate::Clear,
    }
    update
}

fn full(value: &str) -> EntryMetadata {
    EntryMetadata {
        snapshot: Some(format!("{value}-snapshot")),
        history: Some(format!("{value}-history")),
        pending: Some(format!("{value}-pending")),
    }
}

async fn metadata_of(log: &Log, seq: u64) -> EntryMetadata {
    let all = everything(&**log).await;
    all.entries[(seq - all.start) as usize].metadata.clone()
}

/// Setting one field leaves the other two as they were, each in turn.
pub async fn set_metadata_sets_each_field_alone(log: Log) {
    fill(&*log, 1).await;
    let mut expected = EntryMetadata::default();
    for (field, value) in ["s", "h", "p"].into_iter().enumerate() {
        log.set_metadata(0, set_only(field, value)).await.unwrap();
        match field {
            0 => expected.snapshot = Some(value.into()),
            1 => expected.history = Some(value.into()),
            _ => expected.pending = Some(value.into()),
        }
        assert_eq!(
            metadata_of(&log, 0).await,
            expected,
            "after setting field {field}"
        );
    }
}

/// Clearing one field leaves the other two as they were, each in turn.
pub async fn set_metadata_clears_each_field_alone(log: Log) {
    for field in 0..3 {
        let seq = field as u64;
        let mut e = entry(seq);
        e.metadata = full("v");
        log.add_entry(e, seq, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        log.set_metadata(seq, clear_only(field)).await.unwrap();
        let mut expected = full("v");
        match field {
            0 => expected.snapshot = None,
            1 => expected.history = None,
            _ => expected.pending = None,
        }
        assert_eq!(
            metadata_of(&log, seq).await,
            expected,
            "after clearing field {field}"
        );
    }
}

/// One update that sets one field, clears another and keeps the third
/// applies all three at once.
pub async fn set_metadata_mixed_update(log: Log) {
    let mut e = entry(0);
    e.metadata = full("old");
    log.add_entry(e, 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    let update = MetadataUpdate {
        snapshot: FieldUpdate::Set("new".into()),
        history: FieldUpdate::Keep,
        pending: FieldUpdate::Clear,
    };
    log.set_metadata(0, update).await.unwrap();
    let expected = EntryMetadata {
        snapshot: Some("new".into()),
        history: Some("old-history".into()),
        pending: None,
    };
    assert_eq!(metadata_of(&log, 0).await, expected);
}

/// An update that keeps every field changes nothing, and may be repeated.
pub async fn set_metadata_keep_all_changes_nothing(log: Log) {
    let mut e = entry(0);
    e.metadata = full("v");
    log.add_entry(e.clone(), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    log.set_metadata(0, MetadataUpdate::default())
        .await
        .unwrap();
    log.set_metadata(0, MetadataUpdate::default())
        .await
        .unwrap();
    assert_eq!(everything(&*log).await.entries, vec![e]);
}

/// Changing one entry's metadata leaves every other entry untouched.
pub async fn set_metadata_leaves_other_entries_alone(log: Log) {
    fill(&*log, 5).await;
    log.set_metadata(2, MetadataUpdate::publish_snapshot("snap"))
        .await
        .unwrap();
    let all = everything(&*log).await;
    for (i, e) in all.entries.iter().enumerate() {
        let expected = if i == 2 {
            EntryMetadata {
                snapshot: Some("snap".into()),
                ..EntryMetadata::default()
            }
        } else {
            EntryMetadata::default()
        };
        assert_eq!(e.metadata, expected, "metadata of entry {i}");
    }
}

/// Metadata changes never alter any payload.
pub async fn set_metadata_never_changes_payload(log: Log) {
    fill(&*log, 3).await;
    let before = payloads(&everything(&*log).await);
    for seq in 0..3 {
        log.set_metadata(seq, set_only(seq as usize, "x"))
            .await
            .unwrap();
        log.set_metadata(seq, clear_only(seq as usize))
            .await
            .unwrap();
        log.set_metadata(seq, MetadataUpdate::publish_snapshot("y"))
            .await
            .unwrap();
    }
    assert_eq!(payloads(&everything(&*log).await), before);
}

/// `set_metadata` at the end, past it, or below the start after a truncate
/// is a range error naming the bounds, and changes nothing.
pub async fn set_metadata_outside_log_is_range_error(log: Log) {
    fill(&*log, 4).await;
    log.truncate(2).await.unwrap();
    for requested in [4, 9, 1, 0] {
        assert_err!(
            log.set_metadata(requested, MetadataUpdate::publish_snapshot("s")).await,
            SetMetadataError::Range(RangeError { requested: r, start: 2, end: 4 }) if r == requested
        );
    }
    for e in everything(&*log).await.entries {
        assert_eq!(e.metadata, EntryMetadata::default());
    }
}
