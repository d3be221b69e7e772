//! Following many sheets for the price of one listing: on a catalog
//! whose logs are on an object store (which cannot wake a tail in another
//! process), an append through the catalog leaves a marker in `.live/` —
//! before the first append of a handle, then at most one every
//! [`MARK_EVERY`] — and a process that follows sheets lists `.live/` once
//! every [`LIST_EVERY`] (one request, however many sheets it follows)
//! instead of polling each log. A new marker of a followed sheet wakes its
//! tails at once and makes the sheet *active* for [`ACTIVE_FOR`] (longer
//! than a handle goes without marking), during which its tails poll as on
//! any log that cannot push; an idle sheet is read only every
//! [`pushed_wait`](infinisheet_event_log::TailOptions::pushed_wait), the
//! safety net for an append no marker announced (a log appended to
//! outside the catalog, a writer of an earlier release, a marker the
//! store lost or that could not be written).
//!
//! Why no append goes unseen for longer than a poll: a handle writes a
//! marker before an append unless it started one within [`MARK_EVERY`],
//! and again after an append that outlasted that; a follower lists the
//! marker after it was started and from then on keeps the sheet active
//! for [`ACTIVE_FOR`], so until after the handle marks again. An append
//! cancelled after its marker is covered all the same. A sheet that starts
//! being followed is active at once, for the markers written before, and
//! a feed's first listing (what later ones are compared with) wakes every
//! follower once.
//!
//! Moving, removing or replacing a sheet leaves a marker naming no sheet
//! (`.live/<32 hex>`, on every catalog): every follower then asks the
//! catalog whether its sheets are still where they were ([`SheetFollow`]).
//!
//! A marker's name is `<sheet key>.<32 hex>`: 12 hex digits of the
//! milliseconds since 1970 when it was written (for people reading a
//! bucket; nothing depends on clocks) and a random part; markers are
//! empty. Handles remove their previous marker when they write the next;
//! one marker write in 16, and `infinisheet worker`'s passes over every
//! sheet, remove the markers a sweep of theirs listed [`STALE_AFTER`]
//! before that are still there (those of processes that ended), and any
//! whose name says it is a day old (for catalogs only short-lived
//! processes write to). Followers
//! only list: reading never writes. Removing any marker by hand is safe
//! (its news waits for the safety net at worst).
//!
//! What a follower gets: an append on an idle sheet within a listing and
//! a read (about a second), one on an active sheet within a poll (at most
//! half a second), one no marker announced at its tail's `pushed_wait`
//! ([`CatalogSheet::tail_options`] sets it to [`SAFETY_NET`]). One
//! listing serves every tail waiting through one [`Catalog`] and its
//! clones: make one and clone it. Each tail of an active sheet polls on
//! its own (a server shares one tail among its clients), and a handle
//! pays one marker (a write before its append, and the removal of the one
//! before off its path) every [`MARK_EVERY`] it appends: keep handles open
//! rather than opening the sheet for each edit.

use super::{Catalog, CatalogError, CatalogPath, CatalogSheet, storage_error};
use async_trait::async_trait;
use infinisheet_blob_store::{BlobDir, BlobDirExt, EntryKind};
use infinisheet_event_log::raw::Bounds;
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, EventLog, KnownSnapshot, LogCapabilities, LogEntry,
    MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue, SequenceId, SetMetadataError,
    StorageError, TailOptions, TruncateError,
};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};
use std::time::{Duration, SystemTime};
// Tokio's clock, which a test may pause and move.
use tokio::sync::watch;
use tokio::time::Instant;

/// The directory at the top of the blob store holding the markers of
/// sheets just appended to.
pub const LIVE_DIR: &str = ".live";

/// The longest a handle appends without leaving a new marker.
pub const MARK_EVERY: Duration = Duration::from_secs(20);

/// How often a process that follows sheets lists `.live/`.
pub const LIST_EVERY: Duration = Duration::from_secs(1);

/// How long a sheet stays active after a follower listed a new marker of
/// it (or began following it): longer than [`MARK_EVERY`], with room for
/// a slow listing.
pub const ACTIVE_FOR: Duration = Duration::from_secs(45);

/// A marker a sweep listed this long before and finds still there is
/// removed (a live handle replaces its own every [`MARK_EVERY`]; followers
/// list every [`LIST_EVERY`]).
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

/// The safety net of a tail woken through markers: with
/// [`CatalogSheet::tail_options`], such a tail reads its log this often
/// when no marker woke it, for an append no marker announced (a marker
/// that could not be written, a log appended to around the catalog, a
/// writer of an earlier release).
pub const SAFETY_NET: Duration = Duration::from_secs(5 * 60);

/// The log store whose catalogs leave `.live/` markers: the object
/// stores', whose logs never wake tails in another process (reached
/// directly or through `serve`, whose log store reports its own).
const MARKED_BACKEND: &str = "object-store";

/// The longest a marker's write may take before the append goes on
/// without it.
const MARK_TIMEOUT: Duration = Duration::from_secs(10);

/// How long after a marker failed to be written a handle tries again.
const MARK_RETRY: Duration = Duration::from_secs(5);

/// The quickest and slowest polls of an active sheet's tail.
const POLL_MIN: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(500);

/// The most stale markers one sweep removes.
const SWEEP_MOST: usize = 4096;

/// A marker whose name says it is older than this is removed by any
/// sweep, also a process's first (a day: far beyond any clock's error).
const STAMP_STALE: Duration = Duration::from_secs(24 * 60 * 60);

/// A new marker's name: `<key>.<time><random>` (`key` empty: a change of
/// the catalog).
fn marker_name(key: &str) -> String {
    let millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let random = infinisheet_engine::SheetId::random().to_string();
    let stamp = format!("{:012x}{}", millis & 0xffff_ffff_ffff, &random[..20]);
    if key.is_empty() {
        stamp
    } else {
        format!("{key}.{stamp}")
    }
}

/// What a marker's name says: the sheet it names (`None`: the catalog
/// changed) and when it was written, or `None` if it is no marker.
fn parse_marker(name: &str) -> Option<(Option<&str>, u64)> {
    let (key, stamp) = match name.rsplit_once('.') {
        Some((key, stamp)) if !key.is_empty() => (Some(key), stamp),
        Some(_) => return None,
        None => (None, name),
    };
    if !super::due::is_hex32(stamp) {
        return None;
    }
    let millis = u64::from_str_radix(&stamp[..12], 16).ok()?;
    Some((key, millis))
}

/// The followers of one catalog in this process, and the task listing
/// `.live/` while there are any. Shared by every clone of a [`Catalog`].
#[derive(Debug, Default)]
pub(super) struct Feed {
    state: Mutex<FeedState>,
    /// The markers this process's last sweep listed, and when: the next
    /// sweep, [`STALE_AFTER`] on, removes those still there.
    swept: Mutex<Option<(Instant, HashSet<String>)>>,
}

#[derive(Debug, Default)]
struct FeedState {
    sheets: HashMap<String, Followed>,
    /// Bumped by a marker naming no sheet.
    catalog: Option<watch::Sender<u64>>,
    /// Whether the listing task runs.
    listing: bool,
}

#[derive(Debug)]
struct Followed {
    /// Follows of the sheet.
    count: usize,
    /// Bumped by each new marker of the sheet.
    news: watch::Sender<u64>,
    active_until: Instant,
}

impl FeedState {
    fn catalog(&mut self) -> &watch::Sender<u64> {
        self.catalog.get_or_insert_with(|| watch::channel(0).0)
    }
}

impl Feed {
    fn lock(&self) -> std::sync::MutexGuard<'_, FeedState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Begins following the sheet of `key` (active at once), starting the
    /// listing if it is not running.
    fn follow(self: &Arc<Self>, root: &Arc<dyn BlobDir>, key: &str) -> Follow {
        let mut state = self.lock();
        let active_until = Instant::now() + ACTIVE_FOR;
        let followed = state
            .sheets
            .entry(key.to_owned())
            .or_insert_with(|| Followed {
                count: 0,
                news: watch::channel(0).0,
                active_until,
            });
        followed.count += 1;
        followed.active_until = followed.active_until.max(active_until);
        let news = followed.news.subscribe();
        let catalog = state.catalog().subscribe();
        // Outside a runtime nothing lists: tails wait for their safety net.
        if !state.listing
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            state.listing = true;
            runtime.spawn(list_markers(Arc::downgrade(self), root.clone()));
        }
        Follow {
            feed: self.clone(),
            key: key.to_owned(),
            news,
            catalog,
        }
    }

    /// Wakes this process's followers of the sheet of `key` (an append
    /// through a handle here), making it active.
    fn poke(&self, key: &str) {
        let mut state = self.lock();
        if let Some(followed) = state.sheets.get_mut(key) {
            followed.active_until = followed.active_until.max(Instant::now() + ACTIVE_FOR);
            followed.news.send_modify(|n| *n += 1);
        }
    }

    fn active(&self, key: &str) -> bool {
        self.lock()
            .sheets
            .get(key)
            .is_some_and(|f| f.active_until > Instant::now())
    }
}

/// One following of one sheet; dropping it ends it.
#[derive(Debug)]
struct Follow {
    feed: Arc<Feed>,
    key: String,
    news: watch::Receiver<u64>,
    catalog: watch::Receiver<u64>,
}

impl Drop for Follow {
    fn drop(&mut self) {
        let mut state = self.feed.lock();
        if let Some(followed) = state.sheets.get_mut(&self.key) {
            followed.count -= 1;
            if followed.count == 0 {
                state.sheets.remove(&self.key);
            }
        }
    }
}

/// Lists `.live/` every [`LIST_EVERY`] while anything is followed, waking
/// the followers of sheets with new markers.
async fn list_markers(feed: Weak<Feed>, root: Arc<dyn BlobDir>) {
    /// Says the listing stopped however the task ends (a runtime shutting
    /// down drops it), so the next follow starts another.
    struct Stopped(Weak<Feed>);
    impl Drop for Stopped {
        fn drop(&mut self) {
            if let Some(feed) = self.0.upgrade() {
                feed.lock().listing = false;
            }
        }
    }
    let mut stopped = Stopped(feed.clone());
    // The markers of the last listing (`None`: none made yet).
    let mut known: Option<HashSet<String>> = None;
    let mut dir: Option<Arc<dyn BlobDir>> = None;
    let mut first = true;
    loop {
        // The first listing at once: it is what later ones are compared
        // with.
        if !std::mem::take(&mut first) {
            tokio::time::sleep(LIST_EVERY).await;
        }
        {
            let Some(feed) = feed.upgrade() else { return };
            let mut state = feed.lock();
            if state.sheets.is_empty() {
                state.listing = false;
                // Said under the lock: a task a follow starts from here on
                // keeps its flag.
                stopped.0 = Weak::new();
                return;
            }
        }
        // Opened once (opening may cost a request of its own).
        if dir.is_none() {
            dir = root.open_dir(LIVE_DIR).await.ok();
        }
        let listed = match &dir {
            Some(dir) => dir.list_all().await.ok(),
            None => None,
        };
        let Some(feed) = feed.upgrade() else { return };
        let (Some(_), Some(entries)) = (&dir, listed) else {
            // Blind: every followed sheet polls until a listing works.
            let mut state = feed.lock();
            let until = Instant::now() + ACTIVE_FOR;
            for followed in state.sheets.values_mut() {
                followed.active_until = followed.active_until.max(until);
            }
            continue;
        };
        let mut names = HashSet::new();
        {
            let mut state = feed.lock();
            let until = Instant::now() + ACTIVE_FOR;
            let mut catalog_changed = false;
            for entry in entries.into_iter().filter(|e| e.kind == EntryKind::Blob) {
                let name = entry.name.into_string();
                let Some((key, _)) = parse_marker(&name) else {
                    continue;
                };
                let new = known.as_ref().is_some_and(|known| !known.contains(&name));
                if new {
                    match key {
                        Some(key) => {
                            if let Some(followed) = state.sheets.get_mut(key) {
                                followed.active_until = until;
                                followed.news.send_modify(|n| *n += 1);
                            }
                        }
                        None => catalog_changed = true,
                    }
                }
                names.insert(name);
            }
            if known.is_none() {
                // The first listing: a marker in it may have been written
                // after its followers began, so every follower looks once.
                catalog_changed = true;
                for followed in state.sheets.values_mut() {
                    followed.news.send_modify(|n| *n += 1);
                }
            }
            if catalog_changed {
                state.catalog().send_modify(|n| *n += 1);
            }
        }
        known = Some(names);
    }
}

/// Removes the markers in `dir` this process's sweep listed at least
/// [`STALE_AFTER`] ago and that are still there: those of handles that
/// ended (a live handle replaces its marker every [`MARK_EVERY`]). By this
/// process's clock, so hosts' clocks need not agree — but a process
/// without such a listing yet (a short-lived one) also removes markers
/// whose names say they are more than [`STAMP_STALE`] old, so markers of
/// short-lived writers go even where nothing runs long. At most
/// [`SWEEP_MOST`] a sweep. Returns how many it removed.
async fn sweep(
    feed: &Feed,
    dir: &Arc<dyn BlobDir>,
) -> Result<usize, infinisheet_blob_store::ListError> {
    // Nothing to do within STALE_AFTER of the last sweep: no listing.
    if feed
        .swept
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .is_some_and(|(at, _)| at.elapsed() < STALE_AFTER)
    {
        return Ok(0);
    }
    let listed: Vec<(String, u64)> = dir
        .list_all()
        .await?
        .into_iter()
        .filter(|e| e.kind == EntryKind::Blob)
        .filter_map(|e| {
            let name = e.name.into_string();
            let millis = parse_marker(&name)?.1;
            Some((name, millis))
        })
        .collect();
    let now_millis = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    let stale: Vec<String> = {
        let mut swept = feed.swept.lock().unwrap_or_else(PoisonError::into_inner);
        let seen = match swept.as_ref() {
            Some((at, _)) if at.elapsed() < STALE_AFTER => return Ok(0),
            Some((_, seen)) => Some(seen),
            None => None,
        };
        let stale: Vec<String> = listed
            .iter()
            .filter(|(name, millis)| {
                seen.is_some_and(|seen| seen.contains(name))
                    || now_millis.saturating_sub(u128::from(*millis)) > STAMP_STALE.as_millis()
            })
            .take(SWEEP_MOST)
            .map(|(name, _)| name.clone())
            .collect();
        let rest = listed
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| !stale.contains(name))
            .collect();
        *swept = Some((Instant::now(), rest));
        stale
    };
    let mut removed = 0;
    for name in stale {
        // Another writer may have removed it first.
        if dir.remove(&name).await.is_ok() {
            removed += 1;
        }
    }
    Ok(removed)
}

/// A sheet's log as the catalog hands it out: on an object-store catalog
/// appends leave markers in `.live/` and tails wait on the catalog's
/// listing of them (see the module's docs); elsewhere it passes
/// everything through.
#[derive(Debug)]
pub(super) struct LiveLog {
    inner: Arc<dyn EventLog>,
    /// `None`: the log pushes; nothing to do.
    live: Option<Live>,
}

#[derive(Debug)]
struct Live {
    feed: Arc<Feed>,
    root: Arc<dyn BlobDir>,
    key: String,
    /// When this handle's last marker was written (by the monotonic and
    /// the wall clock: the first stops while a machine sleeps), and its
    /// name.
    marked: Mutex<Option<(Instant, SystemTime, String)>>,
    /// Held while a marker is written, so racing appends write one.
    marking: tokio::sync::Mutex<()>,
    /// `.live/`, opened once.
    dir: tokio::sync::OnceCell<Arc<dyn BlobDir>>,
    /// When a marker last failed to be written: none is tried again for
    /// [`MARK_RETRY`], so appends do not each wait for a failing store.
    failed: Mutex<Option<Instant>>,
    /// Made when a tail first waits.
    follow: OnceLock<Follow>,
    /// The end the last wait was for and the poll it waited.
    poll: Mutex<(SequenceId, Duration)>,
}

impl LiveLog {
    /// `inner` wrapped; with markers if `backend` (the catalog's log
    /// store's) is one whose logs never push ([`MARKED_BACKEND`]). Decided
    /// by the storage, not by what this process can do, so every process
    /// of a catalog writes markers or none does: a filesystem or SQLite log
    /// that cannot push here (no inotify, a network mount) polls as
    /// before, since other processes of it leave no markers.
    pub(super) fn new(
        inner: Arc<dyn EventLog>,
        backend: &str,
        feed: &Arc<Feed>,
        root: Arc<dyn BlobDir>,
        key: String,
    ) -> LiveLog {
        let live = (backend == MARKED_BACKEND).then(|| Live {
            feed: feed.clone(),
            root,
            key,
            marked: Mutex::default(),
            marking: tokio::sync::Mutex::default(),
            dir: tokio::sync::OnceCell::new(),
            failed: Mutex::default(),
            follow: OnceLock::new(),
            poll: Mutex::new((0, POLL_MIN)),
        });
        LiveLog { inner, live }
    }

    /// Whether tails hear of other processes' appends through `.live/`
    /// markers (the log cannot push them itself).
    pub(super) fn uses_markers(&self) -> bool {
        self.live.is_some()
    }
}

impl Live {
    fn due(&self) -> bool {
        let failing = self
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some_and(|at| at.elapsed() < MARK_RETRY);
        !failing
            && self
                .marked
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .is_none_or(|(at, wall, _)| {
                    // A wall clock set back counts as due too.
                    at.elapsed() >= MARK_EVERY
                        || wall.elapsed().map_or(true, |since| since >= MARK_EVERY)
                })
    }

    /// Leaves a marker unless this handle left one within [`MARK_EVERY`];
    /// removes the one before. A marker that cannot be written (in
    /// [`MARK_TIMEOUT`]) is tried again by an append [`MARK_RETRY`] later
    /// (followers read the log every `pushed_wait` meanwhile).
    async fn mark(&self) {
        if !self.due() {
            return;
        }
        let _marking = self.marking.lock().await;
        if !self.due() {
            return;
        }
        let name = marker_name(&self.key);
        let written = tokio::time::timeout(MARK_TIMEOUT, async {
            let dir = self
                .dir
                .get_or_try_init(|| self.root.open_dir(LIVE_DIR))
                .await
                .ok()?
                .clone();
            dir.write(&name, Vec::new()).await.ok()?;
            Some(dir)
        })
        .await;
        let Ok(Some(dir)) = written else {
            *self.failed.lock().unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
            return;
        };
        // From when it was written: a follower lists it after that.
        let started = (Instant::now(), SystemTime::now());
        // One marker in 16 (by its random part) sweeps those of handles
        // that ended. Only writers sweep: reading never writes.
        let sweeps = name.ends_with('0');
        let before = self
            .marked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace((started.0, started.1, name));
        // Off the append's path.
        let feed = self.feed.clone();
        tokio::spawn(async move {
            if let Some((_, _, before)) = before {
                let _ = dir.remove(&before).await;
            }
            if sweeps {
                let _ = sweep(&feed, &dir).await;
            }
        });
    }

    /// How long a tail waiting for `end` polls (`None`: the sheet is idle,
    /// it waits for a marker).
    fn poll(&self, end: SequenceId) -> Option<Duration> {
        if !self.feed.active(&self.key) {
            return None;
        }
        let mut poll = self.poll.lock().unwrap_or_else(PoisonError::into_inner);
        poll.1 = if poll.0 == end {
            (poll.1 * 2).min(POLL_MAX)
        } else {
            POLL_MIN
        };
        poll.0 = end;
        Some(poll.1)
    }
}

#[deny(clippy::missing_trait_methods)]
#[async_trait]
impl EventLog for LiveLog {
    async fn append_at(
        &self,
        entries: Vec<LogEntry>,
        seq: SequenceId,
        known: KnownSnapshot,
        token: Option<AppendToken>,
    ) -> Result<AddEntryValue, AddEntryError> {
        // The marker first: an append cancelled after it (a request's
        // deadline) or slow to land still has one, and a follower that
        // lists it stays active for longer than the handle goes unmarked.
        if let Some(live) = &self.live {
            live.mark().await;
        }
        let appended = self.inner.append_at(entries, seq, known, token).await;
        // Landed, or perhaps landed (a storage error).
        if let Some(live) = &self.live
            && matches!(appended, Ok(_) | Err(AddEntryError::Storage(_)))
        {
            live.feed.poke(&live.key);
            // An append that took longer than a marker lasts: another.
            live.mark().await;
        }
        appended
    }

    async fn query(
        &self,
        start: QueryStart,
        end: QueryEnd,
        known: KnownSnapshot,
    ) -> Result<QueryValue, QueryError> {
        self.inner.query(start, end, known).await
    }

    async fn bounds(&self) -> Result<Bounds, StorageError> {
        self.inner.bounds().await
    }

    async fn set_metadata(
        &self,
        seq: SequenceId,
        update: MetadataUpdate,
    ) -> Result<(), SetMetadataError> {
        // A publish is news to tails tracking snapshots.
        let set = self.inner.set_metadata(seq, update).await;
        if let Some(live) = &self.live
            && matches!(set, Ok(()) | Err(SetMetadataError::Storage(_)))
        {
            live.feed.poke(&live.key);
            live.mark().await;
        }
        set
    }

    async fn truncate(&self, start: SequenceId) -> Result<(), TruncateError> {
        self.inner.truncate(start).await
    }

    /// The inner log's, and waking tails across processes when the
    /// markers stand in for the log's own push.
    fn capabilities(&self) -> LogCapabilities {
        let inner = self.inner.capabilities();
        if self.live.is_some() {
            inner.pushing()
        } else {
            inner
        }
    }

    /// Returns on a new marker of the sheet, on an append through a handle
    /// in this process (if the log wakes its tails), after a poll while the
    /// sheet is active, or after `timeout`.
    async fn wait_for_entries(&self, end: SequenceId, timeout: Duration) {
        let Some(live) = &self.live else {
            return self.inner.wait_for_entries(end, timeout).await;
        };
        let follow = live
            .follow
            .get_or_init(|| live.feed.follow(&live.root, &live.key));
        let mut news = follow.news.clone();
        news.borrow_and_update();
        let wait = live.poll(end).map_or(timeout, |poll| poll.min(timeout));
        // The inner log's wait only for its wake-ups in this process: one
        // that waits on a server (the HTTP log's long poll) would hold a
        // connection and have the server poll for what the markers say.
        let capabilities = self.inner.capabilities();
        let inner = async {
            if capabilities.wakes_in_process && !capabilities.wakes_across_processes {
                self.inner.wait_for_entries(end, wait).await;
            } else {
                tokio::time::sleep(wait).await;
            }
        };
        tokio::select! {
            () = inner => {}
            _ = news.changed() => {
                let mut poll = live.poll.lock().unwrap_or_else(PoisonError::into_inner);
                *poll = (end, POLL_MIN / 2);
            }
        }
    }
}

/// A following of a sheet's place in the catalog: [`changed`](SheetFollow::changed)
/// returns when a marker says it may have moved, gone or been replaced
/// (any such change in the catalog), or a new one of its appends.
#[derive(Debug)]
pub struct SheetFollow {
    follow: Follow,
}

impl SheetFollow {
    /// Returns on the next marker naming the sheet or a change of the
    /// catalog.
    pub async fn changed(&mut self) {
        let follow = &mut self.follow;
        tokio::select! {
            _ = follow.news.changed() => {}
            _ = follow.catalog.changed() => {}
        }
    }
}

impl CatalogSheet {
    /// Whether its tails hear of other processes' appends through the
    /// catalog's `.live/` markers, the log being unable to push them (an
    /// object store's): such a tail reads the log only when a marker
    /// says so, so its [`pushed_wait`](infinisheet_event_log::TailOptions::pushed_wait)
    /// is only the safety net for appends no marker announced, and can be
    /// long. A log that pushes wakes its tails itself.
    pub fn follows_markers(&self) -> bool {
        self.live_markers
    }

    /// The options to tail this sheet with (`log().tail_with(from,
    /// sheet.tail_options())`, `cells.watch_with(sheet.tail_options())`):
    /// where its tails wake through markers
    /// ([`follows_markers`](CatalogSheet::follows_markers)), an idle tail
    /// reads its log only every [`SAFETY_NET`]; elsewhere the defaults.
    /// With the defaults such a tail reads its idle log every 10 s.
    pub fn tail_options(&self) -> TailOptions {
        if self.live_markers {
            TailOptions::default().pushed_wait(SAFETY_NET)
        } else {
            TailOptions::default()
        }
    }

    /// Follows this sheet's markers (see [`LIVE_DIR`]): one listing of
    /// `.live/` a second in all for every sheet this [`Catalog`] (and its
    /// clones) follows, however many.
    /// [`SheetFollow::changed`] says when to ask
    /// [`confirm_at`](CatalogSheet::confirm_at) again — a server following
    /// sheets for its clients asks then, and once in a long while as a
    /// safety net, rather than on a timer per sheet.
    pub fn follow(&self, catalog: &Catalog) -> SheetFollow {
        SheetFollow {
            follow: catalog.live.follow(
                &catalog.storage.blobs.root(),
                &super::marker_key(&self.metadata),
            ),
        }
    }
}

impl Catalog {
    /// Removes the `.live/` markers this catalog's previous sweep listed
    /// at least [`STALE_AFTER`] before and finds still there, and any
    /// whose name says it is a day old (at most 4,096): those of writers
    /// that ended. A sweep within [`STALE_AFTER`] of the last does nothing
    /// (and lists nothing). Writers sweep now and then on their own (one
    /// marker in 16);
    /// `infinisheet worker` sweeps on each pass over every sheet. Returns
    /// how many it removed.
    ///
    /// # Errors
    ///
    /// [`CatalogError::Storage`] if `.live/` cannot be listed.
    pub async fn sweep_live_markers(&self) -> Result<usize, CatalogError> {
        let top = CatalogPath { names: Vec::new() };
        let dir = self
            .storage
            .blobs
            .root()
            .open_dir(LIVE_DIR)
            .await
            .map_err(storage_error(&top))?;
        sweep(&self.live, &dir).await.map_err(storage_error(&top))
    }

    /// Leaves a marker naming no sheet: sheets may have moved, gone or
    /// been replaced. A marker that cannot be written leaves followers to
    /// find out on their own (they ask every so often).
    pub(super) async fn mark_changed(&self) {
        if let Ok(dir) = self.storage.blobs.root().open_dir(LIVE_DIR).await {
            let _ = dir.write(&marker_name(""), Vec::new()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn marker_names_parse_back() {
        let name = super::marker_name("abc.def");
        let (key, millis) = super::parse_marker(&name).expect("a marker");
        assert_eq!(key, Some("abc.def"));
        assert!(millis > 1_700_000_000_000, "{millis}");
        let changed = super::marker_name("");
        assert_eq!(super::parse_marker(&changed).map(|p| p.0), Some(None));
        assert_eq!(super::parse_marker("x.y"), None);
        assert_eq!(
            super::parse_marker(".0123456789abcdef0123456789abcdef"),
            None
        );
    }
}
