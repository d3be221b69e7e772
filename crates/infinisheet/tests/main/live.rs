//! Following sheets on an object store through `.live/` markers: idle
//! sheets cost one listing a second however many are followed, an append
//! from another process wakes the tail within a listing, the appends that
//! follow it without markers within a poll, one outside the catalog at
//! the tail's safety net, and a removal wakes the sheet's follower.
//! Counted on the in-memory store in virtual time (the clock only moves
//! when every task waits).

use infinisheet::blob_store::{BlobDir, BlobDirExt};
use infinisheet::event_log::{
    EventLog, EventLogExt, KnownSnapshot, LogEntry, TailEvent, TailOptions,
};
use infinisheet::object_store::memory::InMemory;
use infinisheet::object_store::{CountingStore, ObjectStoreBlobStore};
use infinisheet::{Catalog, LIVE_DIR, LogStore, ObjectStoreLogs, SheetOptions, Storage};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A catalog on `store` as another process would open it.
fn catalog(store: &CountingStore) -> Catalog {
    let logs: Arc<dyn LogStore> = Arc::new(ObjectStoreLogs::new(
        Arc::new(store.clone()),
        "logs".into(),
        "memory://logs",
    ));
    let tree = ObjectStoreBlobStore::new(Arc::new(store.clone()), "tree".into());
    Catalog::new(Storage::new(logs, Arc::new(tree), "memory://tree"))
}

/// The catalog's `.live/` directory.
async fn live_dir(catalog: &Catalog) -> Arc<dyn BlobDir> {
    catalog
        .storage()
        .blobs
        .root()
        .open_dir(LIVE_DIR)
        .await
        .unwrap()
}

fn paused() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Tails whose safety net is ten minutes, as a server sets it.
fn options() -> TailOptions {
    TailOptions::default().pushed_wait(Duration::from_secs(600))
}

/// Sends each batch's first id and the time it came, from a tail of
/// `log` from `from`.
fn spawn_tail(
    log: Arc<dyn EventLog>,
    from: u64,
) -> tokio::sync::mpsc::UnboundedReceiver<(u64, Instant)> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut tail = log.tail_with(from, options());
        loop {
            match tail.next().await {
                Ok(TailEvent::Entries { start, .. }) => {
                    if tx.send((start, Instant::now())).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(err) => panic!("the tail failed: {err}"),
            }
        }
    });
    rx
}

#[test]
fn fifty_idle_sheets_cost_one_listing_a_second_and_an_append_wakes_its_tail() {
    paused().block_on(async {
        let store = CountingStore::new(Arc::new(InMemory::new()));
        let here = catalog(&store);
        let mut tails = Vec::new();
        for i in 0..50 {
            let sheet = here
                .create_sheet(&format!("f/s{i}"), SheetOptions::default())
                .await
                .unwrap();
            let end = sheet.log().bounds().await.unwrap().end;
            tails.push((spawn_tail(sheet.log(), end), end));
        }
        // Past the first active minute, an idle one.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let before = store.counts();
        tokio::time::sleep(Duration::from_secs(60)).await;
        let minute = store.counts().since(before);
        println!("<!-- following 50 idle sheets, a minute: {minute:?} -->");
        assert!(
            minute.total() <= 62 && minute.list <= 61,
            "an idle minute of 50 followed sheets cost {minute:?}"
        );

        // Another process appends to sheet 7: its tail hears within a
        // listing (and one read).
        let there = catalog(&store);
        let other = there.open_sheet("f/s7").await.unwrap();
        let (rx, end) = &mut tails[7];
        let appended = Instant::now();
        other
            .log()
            .add_entry(LogEntry::new("a"), *end, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        let (start, at) = rx.recv().await.unwrap();
        assert_eq!(start, *end);
        let waited = at - appended;
        assert!(waited <= Duration::from_millis(1600), "{waited:?}");
        // The same handle appends again, 5 and 15 s on, without markers:
        // the sheet is active, its tail polls.
        for (i, pause) in [5u64, 10].into_iter().enumerate() {
            tokio::time::sleep(Duration::from_secs(pause)).await;
            let seq = *end + 1 + i as u64;
            let appended = Instant::now();
            other
                .log()
                .add_entry(LogEntry::new("b"), seq, KnownSnapshot::NotTracked)
                .await
                .unwrap();
            let (start, at) = rx.recv().await.unwrap();
            assert_eq!(start, seq);
            let waited = at - appended;
            assert!(waited <= Duration::from_millis(600), "{waited:?}");
        }
        let markers = live_dir(&there)
            .await
            .list(None)
            .await
            .unwrap()
            .entries
            .len();
        assert_eq!(
            markers, 1,
            "the handle wrote one marker for its three appends"
        );

        // Another sheet's log appended to outside the catalog: heard at
        // the tail's safety net, not before.
        let (rx, end) = &mut tails[3];
        let raw = there
            .storage()
            .logs
            .log(&there.sheet_metadata("f/s3").await.unwrap().log_id, false)
            .await
            .unwrap();
        raw.add_entry(LogEntry::new("c"), *end, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        let appended = Instant::now();
        let (start, at) = rx.recv().await.unwrap();
        assert_eq!(start, *end);
        assert!(
            at - appended <= Duration::from_secs(601),
            "{:?}",
            at - appended
        );
    });
}

#[test]
fn a_removal_elsewhere_wakes_the_sheets_follower_and_ended_writers_markers_are_swept() {
    paused().block_on(async {
        let store = CountingStore::new(Arc::new(InMemory::new()));
        let here = catalog(&store);
        let sheet = here
            .create_sheet("doomed", SheetOptions::default())
            .await
            .unwrap();
        // A marker of a process that ended long ago.
        let live = live_dir(&here).await;
        let old = "abc.000000000001ffffffffffffffffffff";
        live.write(old, Vec::new()).await.unwrap();
        let mut follow = sheet.follow(&here);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let removed_at = Instant::now();
        catalog(&store).remove("doomed", false).await.unwrap();
        tokio::time::timeout(Duration::from_secs(2), follow.changed())
            .await
            .expect("the removal woke the follower");
        assert!(removed_at.elapsed() <= Duration::from_millis(1600));
        assert!(matches!(
            sheet.confirm(&here).await,
            Err(infinisheet::CatalogError::Stale { .. })
        ));
        let names = || async {
            live.list(None)
                .await
                .unwrap()
                .entries
                .into_iter()
                .map(|e| e.name.to_string())
                .collect::<Vec<String>>()
        };
        // Following only lists: reading never writes.
        assert!(names().await.iter().any(|n| n == old));
        // A sweep (one marker write in 16, every worker's pass over every
        // sheet) removes what its sweep ten minutes before listed and is
        // still there — by this process's clock, whatever the names say.
        // Its first sweep removes only what its name says is a day old.
        let sweeper = catalog(&store);
        assert_eq!(sweeper.sweep_live_markers().await.unwrap(), 1);
        assert!(!names().await.iter().any(|n| n == old));
        tokio::time::sleep(infinisheet::STALE_AFTER / 2).await;
        // Written since the first sweep (its name's time, from a clock far
        // ahead, says nothing to a sweep).
        let since = "def.7fffffffffffffffffffffffffffffff";
        live.write(since, Vec::new()).await.unwrap();
        assert_eq!(sweeper.sweep_live_markers().await.unwrap(), 0, "too soon");
        tokio::time::sleep(infinisheet::STALE_AFTER / 2).await;
        // The removal's marker, listed ten minutes before, goes; the one
        // written since stays.
        assert_eq!(sweeper.sweep_live_markers().await.unwrap(), 1);
        let names = names().await;
        assert_eq!(names, vec![since.to_owned()]);
    });
}

/// Only catalogs on an object store leave append markers: whether a
/// catalog does is the storage's, not a process's (a filesystem or SQLite
/// log that cannot push on one host polls there, since processes where it
/// pushes leave none). A removal leaves a marker on every catalog.
#[test]
fn only_object_store_catalogs_mark_appends() {
    paused().block_on(async {
        let store = CountingStore::new(Arc::new(InMemory::new()));
        let on_store = catalog(&store)
            .create_sheet("s", SheetOptions::default())
            .await
            .unwrap();
        assert!(on_store.follows_markers());
        let memory = Catalog::new(Storage::open("memory:", "memory:").await.unwrap());
        let sheet = memory
            .create_sheet("s", SheetOptions::default())
            .await
            .unwrap();
        assert!(!sheet.follows_markers());
        assert_eq!(sheet.tail_options(), TailOptions::default());
        sheet
            .log()
            .add_entry(LogEntry::new("a"), 1, KnownSnapshot::NotTracked)
            .await
            .unwrap();
        let live = live_dir(&memory).await;
        assert!(live.list(None).await.unwrap().entries.is_empty());
        memory.remove("s", false).await.unwrap();
        assert_eq!(live.list(None).await.unwrap().entries.len(), 1);
    });
}
