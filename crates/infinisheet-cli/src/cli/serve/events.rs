//! `GET /api/events`: a sheet's entries as Server-Sent Events, live, and
//! the end of the stream when the sheet leaves its path.

use super::guard::refuse;
use super::{ApiError, App};
use crate::cli::cells::entry_json;
use axum::Extension;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use infinisheet::event_log::{EventLogExt, KnownSnapshot, LogEntry, TailError, TailEvent};
use infinisheet::{CatalogError, CatalogSheet};
use serde_json::json;
use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::OwnedSemaphorePermit;

/// How often a stream asks the catalog whether its sheet is still at its
/// path.
const CONFIRM_EVERY: Duration = Duration::from_secs(2);

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
    let sheet = open.sheet.clone();
    drop(open);
    let path = path.to_owned();
    // One event waits at a time: a client that reads slowly slows its
    // stream, and holds no more than an event and the page it came from.
    let (tx, rx) = tokio::sync::mpsc::channel::<Shared>(1);
    let stop = app.stop.clone();
    let follower = app.clone();
    tokio::spawn(async move {
        let _held = (permit, slot);
        follow(&follower, sheet, &path, from, tx, stop).await;
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

/// Sends `sheet`'s entries from `from` on, until the client goes, the
/// server stops, or the catalog no longer has the sheet at `path`.
async fn follow(
    app: &App,
    sheet: CatalogSheet,
    path: &str,
    from: u64,
    tx: tokio::sync::mpsc::Sender<Shared>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // The tail's next event is only ever dropped when the stream ends.
    let mut gone = std::pin::pin!(until_gone(&sheet, path, &app.catalog));
    let log = sheet.log();
    let mut tail = log.tail(from).tracking_snapshots(KnownSnapshot::NoSnapshot);
    // From one entry a page, doubling while pages are small: the first
    // page of a sheet of large entries holds one.
    let mut page = 1;
    // The largest entry seen: a page never asks for more entries of that
    // size than PAGE_BYTES holds.
    let mut largest = 1usize;
    tail.set_page_entries(Some(page));
    loop {
        let next = tokio::select! {
            next = tail.next() => Ok(next),
            _ = stop.wait_for(|stopping| *stopping) => return,
            // The client went away: its slot is free at once, however
            // quiet the sheet.
            () = tx.closed() => return,
            why = &mut gone => Err(why),
        };
        let next = match next {
            Ok(next) => next,
            Err(why) => {
                let event = Event::default()
                    .event("gone")
                    .data(json!({ "error": why }).to_string());
                let _ = tx.send((event, None)).await;
                return;
            }
        };
        let event = match next {
            Ok(TailEvent::Entries { start, entries }) => {
                // The next page's size, from this one's bytes.
                let bytes: usize = entries.iter().map(|e| e.payload.len()).sum();
                largest = entries
                    .iter()
                    .map(|e| e.payload.len())
                    .fold(largest, usize::max);
                page = if bytes > PAGE_BYTES {
                    (page / 2).max(1)
                } else if bytes < PAGE_BYTES / 4 && entries.len() as u64 == page {
                    (page * 2).min(PAGE_ENTRIES)
                } else {
                    page
                };
                page = page.min((PAGE_BYTES / largest).max(1) as u64);
                tail.set_page_entries(Some(page));
                let sent = tokio::select! {
                    sent = send_entries(app, &tx, start, &entries) => sent,
                    _ = stop.wait_for(|stopping| *stopping) => return,
                    // Gone while its events wait for room: nothing held.
                    () = tx.closed() => return,
                };
                match sent {
                    Ok(()) => continue,
                    Err(Unsent::Gone) => return,
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
                        return;
                    }
                }
            }
            Ok(TailEvent::CaughtUp { end }) => Event::default()
                .event("caught-up")
                .data(json!({ "end": end }).to_string()),
            // No id: a client resumes by entries only.
            Ok(TailEvent::Snapshot { snapshot }) => Event::default().event("snapshot").data(
                json!({ "sequence_id": snapshot.sequence_id, "blob_id": snapshot.blob_id })
                    .to_string(),
            ),
            Ok(_) => continue,
            Err(TailError::FellBehind { start, .. }) => {
                tail.resume_at(start);
                Event::default()
                    .event("reset")
                    .id(start.to_string())
                    .data(json!({ "start": start }).to_string())
            }
            Err(err @ TailError::BeyondEnd { .. }) => {
                let event = Event::default()
                    .event("error")
                    .data(json!({ "error": err.to_string() }).to_string());
                let _ = tx.send((event, None)).await;
                return;
            }
            Err(err) => {
                let event = Event::default()
                    .event("error")
                    .data(json!({ "error": err.to_string() }).to_string());
                if tx.send((event, None)).await.is_err() {
                    return;
                }
                // A storage failure: try again shortly, from the same id.
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if tx.send((event, None)).await.is_err() {
            return; // the client went away
        }
    }
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
    entries: &[LogEntry],
) -> Result<(), Unsent> {
    let mut first = start;
    let mut edits: Vec<String> = Vec::new();
    let mut size = 0;
    for (at, entry) in (start..).zip(entries) {
        let edit = edit_json(&entry.payload).ok_or(Unsent::TooLarge { seq: at })?;
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
    edits: &[String],
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

/// Returns, with why, once the catalog no longer has `sheet` at `path`
/// (asked every [`CONFIRM_EVERY`]; a catalog that cannot tell is asked
/// again).
async fn until_gone(sheet: &CatalogSheet, path: &str, catalog: &infinisheet::Catalog) -> String {
    loop {
        tokio::time::sleep(CONFIRM_EVERY).await;
        if let Err(err @ CatalogError::Stale { .. }) = sheet.confirm_at(catalog, path).await {
            return err.to_string();
        }
    }
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
