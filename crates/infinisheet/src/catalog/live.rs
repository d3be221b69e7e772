//! Following many sheets for the price of one listing: a log that cannot
//! wake its tails across processes (an object store's) has its appends
//! through the catalog leave a marker in `.live/` — the first append of a
//! handle, then at most one every [`MARK_EVERY`] — and a process that
//! follows sheets lists `.live/` once every [`LIST_EVERY`] (one request,
//! however many sheets it follows) instead of polling each log. A new
//! marker of a followed sheet wakes its tails at once and makes the sheet
//! *active* for [`ACTIVE_FOR`] (longer than a handle goes without
//! marking), during which its tails poll as on any log that cannot push;
//! an idle sheet is read only every
//! [`pushed_wait`](infinisheet_event_log::TailOptions::pushed_wait), the
//! safety net for an append no marker announced (a process killed between
//! its append and its marker, a log appended to outside the catalog, a
//! marker the store lost).
//!
//! Why no append goes unseen for longer than a poll: a handle appends
//! without marking only within [`MARK_EVERY`] of starting its last marker;
//! a follower lists that marker after it was started, and from then on
//! keeps the sheet active for [`ACTIVE_FOR`], so until after the handle
//! marks again. A sheet that starts being followed is active at once, for
//! the markers written before.
//!
//! Moving, removing or replacing a sheet leaves a marker naming no sheet
//! (`.live/<32 hex>`): every follower then asks the catalog whether its
//! sheets are still where they were ([`SheetFollow`]).
//!
//! A marker's name is `<sheet key>.<32 hex>`: the time it was written (12
//! hex digits of milliseconds since 1970) and a random part. Handles
//! remove their previous marker when they write the next; a follower
//! removes markers older than [`STALE_AFTER`] it lists (those of processes
//! that ended).

use super::{Catalog, CatalogSheet};
use async_trait::async_trait;
use infinisheet_blob_store::{BlobDir, BlobDirExt, EntryKind};
use infinisheet_event_log::raw::Bounds;
use infinisheet_event_log::{
    AddEntryError, AddEntryValue, AppendToken, EventLog, KnownSnapshot, LogCapabilities, LogEntry,
    MetadataUpdate, QueryEnd, QueryError, QueryStart, QueryValue, SequenceId, SetMetadataError,
    StorageError, TruncateError,
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

/// A marker older than this (by the name's time) is removed by a follower
/// that lists it.
pub const STALE_AFTER: Duration = Duration::from_secs(10 * 60);

/// The quickest and slowest polls of an active sheet's tail.
const POLL_MIN: Duration = Duration::from_millis(10);
const POLL_MAX: Duration = Duration::from_millis(500);

/// The most stale markers a follower removes after one listing.
const SWEEP_MOST: usize = 16;

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
    let hex = stamp.len() == 32
        && stamp
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !hex {
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
        if !state.listing {
            state.listing = true;
            tokio::spawn(list_markers(Arc::downgrade(self), root.clone()));
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
        let (Some(dir), Some(entries)) = (&dir, listed) else {
            // Blind: every followed sheet polls until a listing works.
            let mut state = feed.lock();
            let until = Instant::now() + ACTIVE_FOR;
            for followed in state.sheets.values_mut() {
                followed.active_until = followed.active_until.max(until);
            }
            continue;
        };
        let now_millis = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let mut names = HashSet::new();
        let mut stale = Vec::new();
        {
            let mut state = feed.lock();
            let until = Instant::now() + ACTIVE_FOR;
            let mut catalog_changed = false;
            for entry in entries.into_iter().filter(|e| e.kind == EntryKind::Blob) {
                let name = entry.name.into_string();
                let Some((key, millis)) = parse_marker(&name) else {
                    continue;
                };
                if now_millis.saturating_sub(millis) > STALE_AFTER.as_millis() as u64 {
                    stale.push(name);
                    continue;
                }
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
        drop(feed);
        for name in stale.into_iter().take(SWEEP_MOST) {
            // Another follower may have removed it first.
            let _ = dir.remove(&name).await;
        }
    }
}

/// A sheet's log as the catalog hands it out when the log cannot wake
/// tails across processes: appends leave markers in `.live/`, and tails
/// wait on the catalog's listing of them (see the module's docs). Over a
/// log that pushes, it passes everything through.
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
    /// When this handle's last marker was started, and its name.
    marked: Mutex<Option<(Instant, String)>>,
    /// Held while a marker is written, so racing appends write one.
    marking: tokio::sync::Mutex<()>,
    /// Made when a tail first waits.
    follow: OnceLock<Follow>,
    /// The end the last wait was for and the poll it waited.
    poll: Mutex<(SequenceId, Duration)>,
}

impl LiveLog {
    pub(super) fn new(
        inner: Arc<dyn EventLog>,
        feed: &Arc<Feed>,
        root: Arc<dyn BlobDir>,
        key: String,
    ) -> LiveLog {
        let live = (!inner.capabilities().wakes_across_processes).then(|| Live {
            feed: feed.clone(),
            root,
            key,
            marked: Mutex::default(),
            marking: tokio::sync::Mutex::default(),
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
        self.marked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
            .is_none_or(|(at, _)| at.elapsed() >= MARK_EVERY)
    }

    /// Leaves a marker unless this handle left one within [`MARK_EVERY`];
    /// removes the one before. A marker that cannot be written is tried
    /// again on the next append (followers read the log every
    /// `pushed_wait` meanwhile).
    async fn mark(&self) {
        if !self.due() {
            return;
        }
        let _marking = self.marking.lock().await;
        if !self.due() {
            return;
        }
        let started = Instant::now();
        let name = marker_name(&self.key);
        let Ok(dir) = self.root.open_dir(LIVE_DIR).await else {
            return;
        };
        if dir.write(&name, Vec::new()).await.is_err() {
            return;
        }
        let before = self
            .marked
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace((started, name));
        if let Some((_, before)) = before {
            // Off the append's path: one left behind is swept as stale.
            tokio::spawn(async move {
                let _ = dir.remove(&before).await;
            });
        }
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
        let appended = self.inner.append_at(entries, seq, known, token).await;
        // Landed, or perhaps landed (a storage error).
        if let Some(live) = &self.live
            && matches!(appended, Ok(_) | Err(AddEntryError::Storage(_)))
        {
            live.feed.poke(&live.key);
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
        tokio::select! {
            () = self.inner.wait_for_entries(end, wait) => {}
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

    /// Follows this sheet's markers (see [`LIVE_DIR`]): one listing of
    /// `.live/` a second for every sheet this process follows.
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
