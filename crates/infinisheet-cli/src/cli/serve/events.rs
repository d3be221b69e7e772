//! `GET /api/events`: a sheet's entries as Server-Sent Events, live, and
//! the end of the stream when the sheet leaves its path.

use super::guard::refuse;
use super::{ApiError, App};
use crate::cli::cells::entry_json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use infinisheet::event_log::{EventLogExt, KnownSnapshot, TailError, TailEvent};
use infinisheet::{CatalogError, CatalogSheet};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

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
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    let path = query
        .sheet
        .as_deref()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| super::bad_request("name the sheet: ?sheet=PATH"))?;
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
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(16);
    let stop = app.stop.clone();
    let catalog = app.catalog.clone();
    tokio::spawn(async move {
        let _permit = permit;
        follow(sheet, &path, catalog, from, tx, stop).await;
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), rx))
    });
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

/// Sends `sheet`'s entries from `from` on, until the client goes, the
/// server stops, or the catalog no longer has the sheet at `path`.
async fn follow(
    sheet: CatalogSheet,
    path: &str,
    catalog: infinisheet::Catalog,
    from: u64,
    tx: tokio::sync::mpsc::Sender<Event>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    // The tail's next event is only ever dropped when the stream ends.
    let mut gone = std::pin::pin!(until_gone(&sheet, path, &catalog));
    let log = sheet.log();
    let mut tail = log.tail(from).tracking_snapshots(KnownSnapshot::NoSnapshot);
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
                let _ = tx.send(event).await;
                return;
            }
        };
        let event = match next {
            Ok(TailEvent::Entries { start, entries }) => {
                let end = start + entries.len() as u64;
                let edits: Vec<Value> = entries.iter().map(|e| entry_json(&e.payload)).collect();
                Event::default()
                    .event("entries")
                    .id(end.to_string())
                    .data(json!({ "start": start, "end": end, "edits": edits }).to_string())
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
                let _ = tx.send(event).await;
                return;
            }
            Err(err) => {
                let event = Event::default()
                    .event("error")
                    .data(json!({ "error": err.to_string() }).to_string());
                if tx.send(event).await.is_err() {
                    return;
                }
                // A storage failure: try again shortly, from the same id.
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        if tx.send(event).await.is_err() {
            return; // the client went away
        }
    }
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
