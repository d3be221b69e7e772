//! `GET /api/events`: a sheet's entries as Server-Sent Events, live, and
//! the end of the stream when the sheet leaves its path.
//!
//! Every stream of one open sheet lives on one tail ([`Hub`]): it reads
//! the log once for all of them, turns each entry into JSON once, and is
//! the one that asks the catalog whether the sheet is still at its path —
//! when the catalog's `.live/` markers say something changed, and every
//! [`SAFETY_NET`]. A stream first catches up from its client's id on its
//! own (so a client far behind costs nothing to the others), then sends
//! what the shared tail tells from where it is; a stream that falls more
//! than [`NOTES_KEPT`] notes behind, or finds a gap, catches up on its
//! own again. The tail ends with its last stream.

use super::guard::refuse;
use super::sheets::Open;
use super::{ApiError, App};
use crate::cli::cells::entry_json;
use axum::Extension;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use infinisheet::CatalogError;
use infinisheet::event_log::{
    EventLogExt, KnownSnapshot, LogEntry, SnapshotValue, TailError, TailEvent,
};
use serde_json::json;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, PoisonError};
use std::time::Duration;
use tokio::sync::{Notify, OwnedSemaphorePermit, broadcast};

/// How often a sheet's shared tail asks the catalog whether the sheet is
/// still at its path when no marker woke it (a catalog changed by an
/// earlier release): the catalog's safety net.
pub(super) const SAFETY_NET: Duration = infinisheet::SAFETY_NET;

/// Notes a sheet's shared tail keeps for slow streams before they must
/// read the log themselves.
const NOTES_KEPT: usize = 4;

/// The bytes of entries a page of a sheet's shared tail should hold (its
/// notes are kept for every stream): a quarter of a stream's own.
const HUB_PAGE_BYTES: usize = PAGE_BYTES / 4;

#[derive(Debug, serde::Deserialize)]
pub(super) struct EventsQuery {
    sheet: Option<String>,
    from: Option<u64>,
}

/// `GET /api/events?sheet=PATH&from=N` (or `Last-Event-ID: N`): Server-Sent
/// Events. `entries` events carry `{"start", "end", "edits"}` and the id
/// `end`, so a client that reconnects resumes after the last one it saw;
/// `caught-up` says the stream is live; `snapshot` (`{"sequence_id",
/// "blob_id"}`) names the sheet's latest snapshot, first on connecting
/// and again whenever a newer one is published; `reset` says the log was
/// truncated past the client (read the range again); `gone`
/// (`{"error"}`) ends the stream when the sheet was removed, moved or
/// replaced (a client should not reconnect to it).
pub(super) async fn events(
    State(app): State<Arc<App>>,
    client: Option<Extension<ConnectInfo<SocketAddr>>>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let path = query
        .sheet
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| super::bad_request("name the sheet: ?sheet=PATH"))?;
    // Unknown (a caller without a connection): counted as one address.
    let client = client.map_or(IpAddr::from([0u8; 4]), |Extension(ConnectInfo(at))| at.ip());
    let Some(slot) = app.streams_by_client.try_take(client) else {
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this address follows {} event streams already, the most one address may",
                app.streams_by_client.most()
            ),
        ));
    };
    let Ok(permit) = app.streams.clone().try_acquire_owned() else {
        return Ok(refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "this server follows at most {} event streams at once (`serve \
                 --max-event-streams`)",
                app.max_streams
            ),
        ));
    };
    let open = app.sheets.get(path).await?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let from = match resume.or(query.from) {
        Some(from) => from,
        None => open.cells.content().end(),
    };
    // Subscribed before the stream catches up, so nothing falls between.
    let notes = subscribe(&app, &open);
    // One event waits at a time: a client that reads slowly slows its
    // stream, and holds no more than an event and the page it came from.
    let (tx, rx) = tokio::sync::mpsc::channel::<Shared>(1);
    let stop = app.stop.clone();
    let streamer = app.clone();
    tokio::spawn(async move {
        let _held = (permit, slot);
        stream(&streamer, &open, notes, from, tx, stop).await;
    });
    // Each event keeps its share of the replies' budget until the next is
    // asked for: by then the server's buffers have taken it.
    let stream = futures::stream::unfold((rx, None), |(mut rx, _sent)| async move {
        rx.recv()
            .await
            .map(|(event, share)| (Ok::<_, Infallible>(event), (rx, share)))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// An event and its share of the replies' budget (`None` for the small
/// ones).
type Shared = (Event, Option<OwnedSemaphorePermit>);

/// The most an `entries` event carries, in bytes of JSON (one entry more
/// than this goes alone).
const EVENT_BYTES: usize = 256 << 10;

/// The bytes of entries a page of the tail should hold: the page size
/// shrinks while pages are larger and grows back while smaller.
const PAGE_BYTES: usize = 1 << 20;

/// The most entries a page of the tail asks for.
const PAGE_ENTRIES: u64 = 256;

/// The most one entry's edits may take as JSON in an event (a read's
/// limit): a stream reaching a larger one ends with an `error` event
/// saying so (its cells are read with a range instead).
const EDIT_BYTES: usize = super::routes::READ_BYTES;

/// What a sheet's shared tail tells its streams.
#[derive(Debug)]
enum Note {
    /// The entries from `start`, each's edits as JSON (`None`: more than
    /// an event carries).
    Entries {
        start: u64,
        edits: Vec<Option<String>>,
    },
    /// Every entry before `end` was told.
    CaughtUp { end: u64 },
    /// The sheet's newest snapshot.
    Snapshot(SnapshotValue),
    /// The log was truncated to `start`.
    Reset { start: u64 },
    /// The storage failed; the tail tries again.
    Failed(String),
    /// The sheet left its path: the streams end.
    Gone(String),
}

/// The streams' side of a sheet's shared tail ([`Open::hub`]): one tail
/// per open sheet however many streams follow it, running while any does.
#[derive(Debug)]
pub(super) struct Hub {
    notes: broadcast::Sender<Arc<Note>>,
    /// Told when a stream leaves, so the tail ends with the last.
    left: Notify,
}

/// A stream's subscription to its sheet's shared tail.
struct Notes {
    /// Always `Some` but in `drop`.
    rx: Option<broadcast::Receiver<Arc<Note>>>,
    hub: Arc<Hub>,
}

impl Notes {
    async fn recv(&mut self) -> Result<Arc<Note>, broadcast::error::RecvError> {
        match self.rx.as_mut() {
            Some(rx) => rx.recv().await,
            None => Err(broadcast::error::RecvError::Closed),
        }
    }
}

impl Drop for Notes {
    fn drop(&mut self) {
        // Gone from the count before the tail is told to look at it.
        drop(self.rx.take());
        self.hub.left.notify_one();
    }
}

/// Subscribes to `open`'s shared tail, starting it if none runs.
fn subscribe(app: &Arc<App>, open: &Arc<Open>) -> Notes {
    let mut slot = open.hub.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(hub) = slot.as_ref() {
        return Notes {
            rx: Some(hub.notes.subscribe()),
            hub: hub.clone(),
        };
    }
    let (notes, rx) = broadcast::channel(NOTES_KEPT);
    let hub = Arc::new(Hub {
        notes,
        left: Notify::new(),
    });
    *slot = Some(hub.clone());
    let from = open.cells.content().end();
    tokio::spawn(run_hub(app.clone(), open.clone(), hub.clone(), from));
    Notes { rx: Some(rx), hub }
}

/// `open`'s shared tail: reads its log from `from` on and tells the
/// streams, asks the catalog whether the sheet is still at its path when
/// the catalog's markers say something changed (and every
/// [`SAFETY_NET`]), and ends when the last stream leaves, the server
/// stops, or the sheet is gone.
async fn run_hub(app: Arc<App>, open: Arc<Open>, hub: Arc<Hub>, from: u64) {
    let sheet = &open.sheet;
    let mut follow = sheet.follow(&app.catalog);
    let log = sheet.log();
    let mut tail = log
        .tail_with(from, sheet.tail_options())
        .tracking_snapshots(KnownSnapshot::NoSnapshot);
    let mut pages = Pages::new(HUB_PAGE_BYTES);
    tail.set_page_entries(Some(pages.page));
    let mut stop = app.stop.clone();
    let mut confirm = tokio::time::interval(SAFETY_NET);
    confirm.tick().await;
    loop {
        if hub.notes.receiver_count() == 0 && leave(&open, &hub, true) {
            return;
        }
        let ask = tokio::select! {
            next = tail.next() => {
                let note = match next {
                    Ok(TailEvent::Entries { start, entries }) => {
                        let note = pages.note(start, &entries);
                        tail.set_page_entries(Some(pages.page));
                        note
                    }
                    Ok(TailEvent::CaughtUp { end }) => Note::CaughtUp { end },
                    Ok(TailEvent::Snapshot { snapshot }) => Note::Snapshot(snapshot),
                    Ok(_) => continue,
                    Err(TailError::FellBehind { start, .. }) => {
                        tail.resume_at(start);
                        Note::Reset { start }
                    }
                    Err(err) => {
                        let _ = hub.notes.send(Arc::new(Note::Failed(err.to_string())));
                        // A storage failure (or a log cut short under
                        // the tail): try again shortly, from the same id.
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        if matches!(err, TailError::BeyondEnd { .. }) {
                            tail.resume_at(open.cells.content().end());
                        }
                        continue;
                    }
                };
                let _ = hub.notes.send(Arc::new(note));
                false
            }
            () = follow.changed() => true,
            _ = confirm.tick() => true,
            () = hub.left.notified() => false,
            () = async { let _ = stop.wait_for(|stopping| *stopping).await; } => return,
        };
        if ask
            && let Err(err @ CatalogError::Stale { .. }) =
                sheet.confirm_at(&app.catalog, sheet.path()).await
        {
            leave(&open, &hub, false);
            let _ = hub.notes.send(Arc::new(Note::Gone(err.to_string())));
            app.sheets.forget(&open);
            return;
        }
    }
}

/// Takes `hub` out of `open`'s slot (if it is still there) so the next
/// stream starts another; `false`, leaving it, when `idle` asks for no
/// stream to follow it and one does (counted under the slot's lock, which
/// a new stream takes to subscribe).
fn leave(open: &Open, hub: &Arc<Hub>, idle: bool) -> bool {
    let mut slot = open.hub.lock().unwrap_or_else(PoisonError::into_inner);
    if idle && hub.notes.receiver_count() > 0 {
        return false;
    }
    if slot.as_ref().is_some_and(|now| Arc::ptr_eq(now, hub)) {
        *slot = None;
    }
    true
}

/// The size of a tail's next page: from one entry, doubling while pages
/// are small (the first page of a sheet of large entries holds one), and
/// never more entries of the largest size seen than `bytes` hold.
struct Pages {
    page: u64,
    largest: usize,
    bytes: usize,
}

impl Pages {
    fn new(bytes: usize) -> Pages {
        Pages {
            page: 1,
            largest: 1,
            bytes,
        }
    }

    /// The note of `entries` from `start`, each's edits turned into JSON
    /// once, sizing the next page from them.
    fn note(&mut self, start: u64, entries: &[LogEntry]) -> Note {
        self.saw(entries);
        let edits = entries.iter().map(|e| edit_json(&e.payload)).collect();
        Note::Entries { start, edits }
    }

    fn saw(&mut self, entries: &[LogEntry]) {
        let bytes: usize = entries.iter().map(|e| e.payload.len()).sum();
        self.largest = entries
            .iter()
            .map(|e| e.payload.len())
            .fold(self.largest, usize::max);
        let page = self.page;
        self.page = if bytes > self.bytes {
            (page / 2).max(1)
        } else if bytes < self.bytes / 4 && entries.len() as u64 == page {
            (page * 2).min(PAGE_ENTRIES)
        } else {
            page
        };
        self.page = self.page.min((self.bytes / self.largest).max(1) as u64);
    }
}

/// Sends a stream's events: the entries from `from` read on its own until
/// it is caught up, then its sheet's shared tail's notes — reading on its
/// own again when it falls behind them — until the client goes, the
/// server stops, or the sheet is gone.
async fn stream(
    app: &App,
    open: &Open,
    mut notes: Notes,
    from: u64,
    tx: tokio::sync::mpsc::Sender<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let log = open.sheet.log();
    let mut at = Told {
        next: from,
        snapshot: None,
        caught_up: false,
    };
    let mut pages = Pages::new(PAGE_BYTES);
    loop {
        // Catching up on its own.
        let known = at.snapshot.as_ref().map_or(KnownSnapshot::NoSnapshot, |s| {
            KnownSnapshot::At(s.sequence_id)
        });
        let mut tail = log.tail(at.next).tracking_snapshots(known);
        let caught_up = loop {
            tail.set_page_entries(Some(pages.page));
            let read = tokio::select! {
                read = tail.next() => read,
                _ = stop.wait_for(|stopping| *stopping) => return,
                () = tx.closed() => return,
            };
            let note = match read {
                Ok(TailEvent::Entries { start, entries }) => pages.note(start, &entries),
                Ok(TailEvent::CaughtUp { end }) => break end,
                Ok(TailEvent::Snapshot { snapshot }) => Note::Snapshot(snapshot),
                Ok(_) => continue,
                Err(TailError::FellBehind { start, .. }) => {
                    tail.resume_at(start);
                    Note::Reset { start }
                }
                Err(err @ TailError::BeyondEnd { .. }) => {
                    let event = Event::default()
                        .event("error")
                        .data(json!({ "error": err.to_string() }).to_string());
                    let _ = tx.send((event, None)).await;
                    return;
                }
                Err(err) => {
                    let note = Note::Failed(err.to_string());
                    let told = tell(app, &tx, &mut stop, &note, &mut at).await;
                    if !told {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            };
            let told = tell(app, &tx, &mut stop, &note, &mut at).await;
            if !told {
                return;
            }
        };
        let note = Note::CaughtUp { end: caught_up };
        let told = tell(app, &tx, &mut stop, &note, &mut at).await;
        if !told {
            return;
        }
        // Live, on the shared tail's notes.
        loop {
            let note = tokio::select! {
                note = notes.recv() => note,
                _ = stop.wait_for(|stopping| *stopping) => return,
                () = tx.closed() => return,
            };
            match note {
                Ok(note) => {
                    if let Note::Entries { start, .. } = &*note
                        && *start > at.next
                    {
                        // Entries this stream missed: read them.
                        break;
                    }
                    let told = tell(app, &tx, &mut stop, &note, &mut at).await;
                    if !told {
                        return;
                    }
                }
                // Fell behind the notes kept: read on its own.
                Err(broadcast::error::RecvError::Lagged(_)) => break,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
}

/// What a stream has told its client.
struct Told {
    /// The next entry's id.
    next: u64,
    /// The snapshot last told.
    snapshot: Option<SnapshotValue>,
    /// Whether `caught-up` was told since the last entries.
    caught_up: bool,
}

/// Sends what `note` says that the stream has not told yet; `false` once
/// the stream ends (the client went, even while its events wait for room;
/// the server stops; an entry too large; the sheet gone).
async fn tell(
    app: &App,
    tx: &tokio::sync::mpsc::Sender<Shared>,
    stop: &mut tokio::sync::watch::Receiver<bool>,
    note: &Note,
    at: &mut Told,
) -> bool {
    tokio::select! {
        told = tell_now(app, tx, note, at) => told,
        _ = stop.wait_for(|stopping| *stopping) => false,
        () = tx.closed() => false,
    }
}

/// [`tell`], however long its events wait for room.
async fn tell_now(
    app: &App,
    tx: &tokio::sync::mpsc::Sender<Shared>,
    note: &Note,
    at: &mut Told,
) -> bool {
    let (next, told) = (&mut at.next, &mut at.snapshot);
    let event = match note {
        Note::Entries { start, edits } => {
            let end = start + edits.len() as u64;
            if end <= *next || *start > *next {
                return true;
            }
            let skip = usize::try_from(*next - start).unwrap_or(usize::MAX);
            match send_entries(app, tx, *next, &edits[skip..]).await {
                Ok(()) => {
                    *next = end;
                    at.caught_up = false;
                    return true;
                }
                Err(Unsent::Gone) => return false,
                Err(Unsent::TooLarge { seq }) => {
                    let why = format!(
                        "entry {seq}'s edits take more than an event carries ({} MiB of \
                         JSON): read its cells with /api/cells",
                        EDIT_BYTES >> 20
                    );
                    let event = Event::default()
                        .event("error")
                        .data(json!({ "error": why }).to_string());
                    let _ = tx.send((event, None)).await;
                    return false;
                }
            }
        }
        Note::CaughtUp { end } if *end == *next && !at.caught_up => {
            at.caught_up = true;
            Event::default()
                .event("caught-up")
                .data(json!({ "end": end }).to_string())
        }
        Note::CaughtUp { .. } => return true,
        // Only newer (or the same entry's again, in another blob): a note
        // the shared tail sent before this stream caught up may name one
        // older than the stream told.
        Note::Snapshot(snapshot)
            if told.as_ref().is_none_or(|t| {
                snapshot.sequence_id > t.sequence_id
                    || (snapshot.sequence_id == t.sequence_id && snapshot.blob_id != t.blob_id)
            }) =>
        {
            *told = Some(snapshot.clone());
            // No id: a client resumes by entries only.
            Event::default().event("snapshot").data(
                json!({ "sequence_id": snapshot.sequence_id, "blob_id": snapshot.blob_id })
                    .to_string(),
            )
        }
        Note::Snapshot(_) => return true,
        Note::Reset { start } if *next < *start => {
            *next = *start;
            Event::default()
                .event("reset")
                .id(start.to_string())
                .data(json!({ "start": start }).to_string())
        }
        Note::Reset { .. } => return true,
        Note::Failed(why) => Event::default()
            .event("error")
            .data(json!({ "error": why }).to_string()),
        Note::Gone(why) => {
            let event = Event::default()
                .event("gone")
                .data(json!({ "error": why }).to_string());
            let _ = tx.send((event, None)).await;
            return false;
        }
    };
    tx.send((event, None)).await.is_ok()
}

/// Why entries were not sent.
enum Unsent {
    /// The client went away.
    Gone,
    /// An entry's edits are larger than an event carries.
    TooLarge { seq: u64 },
}

/// Sends the entries from `start` as `entries` events of at most
/// [`EVENT_BYTES`] each (an entry larger goes alone), each once it has its
/// share of the replies' budget.
async fn send_entries(
    app: &App,
    tx: &tokio::sync::mpsc::Sender<Shared>,
    start: u64,
    entries: &[Option<String>],
) -> Result<(), Unsent> {
    let mut first = start;
    let mut edits: Vec<&str> = Vec::new();
    let mut size = 0;
    for (at, edit) in (start..).zip(entries) {
        let edit = edit.as_deref().ok_or(Unsent::TooLarge { seq: at })?;
        if !edits.is_empty() && size + edit.len() > EVENT_BYTES {
            send_event(app, tx, first, at, &edits).await?;
            (first, size) = (at, 0);
            edits.clear();
        }
        size += edit.len() + 1;
        edits.push(edit);
    }
    if edits.is_empty() {
        return Ok(());
    }
    send_event(app, tx, first, start + entries.len() as u64, &edits).await
}

/// One `entries` event of the edits `[start, end)`, already JSON.
async fn send_event(
    app: &App,
    tx: &tokio::sync::mpsc::Sender<Shared>,
    start: u64,
    end: u64,
    edits: &[&str],
) -> Result<(), Unsent> {
    let data = format!(
        "{{\"start\":{start},\"end\":{end},\"edits\":[{}]}}",
        edits.join(",")
    );
    let share = app.replies.share(data.len()).await;
    let event = Event::default()
        .event("entries")
        .id(end.to_string())
        .data(data);
    tx.send((event, share)).await.map_err(|_| Unsent::Gone)
}

/// An entry's edits as JSON, unless that takes more than [`EDIT_BYTES`]
/// (never built whole then).
fn edit_json(payload: &[u8]) -> Option<String> {
    let mut out = super::replies::Capped::new(EDIT_BYTES);
    serde_json::to_writer(&mut out, &entry_json(payload)).ok()?;
    String::from_utf8(out.into_parts().0).ok()
}

#[cfg(test)]
mod tests {
    use infinisheet::engine::SheetEntry;
    use infinisheet::{Cell, CellValue};

    /// An entry whose edits escape to more than an event carries is
    /// refused without its JSON being built whole; a small one is as the
    /// command prints it.
    #[test]
    fn an_event_carries_at_most_its_limit() {
        let small = SheetEntry::set_cell(0, 0, Cell::new(CellValue::Text("hi".into()))).encode();
        let json = super::edit_json(&small).unwrap_or_default();
        assert!(json.contains("hi"), "{json}");
        // Control characters escape to six bytes each: 3 MiB become 18.
        let text = "\u{1}".repeat(3 << 20);
        let large = SheetEntry::set_cell(0, 0, Cell::new(CellValue::Text(text))).encode();
        assert!(super::edit_json(&large).is_none());
    }
}
