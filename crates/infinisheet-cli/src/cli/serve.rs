//! `serve`: the catalog over HTTP. JSON endpoints to list sheets, read a
//! range and set cells; Server-Sent Events that push each new range of
//! entries to subscribers (resuming from the last id seen); the page at
//! `/`; snapshot jobs in the server's own workflow hosts; and the storage
//! itself at `POST /api/storage`, for `http://` storage URLs elsewhere.

use super::Place;
use crate::cli::cells::entry_json;
use anyhow::{Context, bail};
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use infinisheet::event_log::{EventLogExt, KnownSnapshot, TailError, TailEvent};
use infinisheet::table::write_json;
use infinisheet::{
    Catalog, CatalogError, CatalogSheet, Cell, CellRange, CellRef, CellValue, SheetWatch,
    Spreadsheet, WorkflowHost, http::StorageService,
};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

/// The most cells one read returns (a viewport is far smaller).
const READ_LIMIT: u64 = 100_000;

/// The largest storage call a client may send (a blob it writes: a big
/// sheet's snapshot).
const STORAGE_BODY_LIMIT: usize = 1 << 30;

#[derive(Debug, clap::Args)]
pub(crate) struct Serve {
    /// The address to listen on; a port of 0 takes a free one. Anything but
    /// loopback needs --token.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The bearer token every API request must carry (`Authorization:
    /// Bearer TOKEN`, or `?token=` where a header cannot be set, as for
    /// the page's event stream).
    #[arg(long, env = "INFINISHEET_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

/// A sheet the server has open: its cells on the host's log (so edits
/// wake the host's snapshot jobs), kept live by a watch.
struct Open {
    sheet: CatalogSheet,
    cells: Spreadsheet,
    host: WorkflowHost,
    _watch: SheetWatch,
}

struct App {
    catalog: Catalog,
    /// The catalog's storage, for clients that open it by `http://` URL.
    storage: StorageService,
    token: Option<String>,
    /// Turns true at Ctrl-C or SIGTERM: event streams end, so the server's
    /// graceful shutdown does not wait on them forever.
    stop: tokio::sync::watch::Receiver<bool>,
    open: tokio::sync::Mutex<HashMap<String, Arc<Open>>>,
}

pub(crate) async fn run(place: &Place, args: Serve) -> anyhow::Result<()> {
    if !args.listen.ip().is_loopback() && args.token.is_none() {
        bail!(
            "listening on {} (beyond loopback) needs a token: --token TOKEN or \
             INFINISHEET_TOKEN, which every request must then carry",
            args.listen
        );
    }
    let catalog = place.catalog().await?;
    let stop = super::worker::stop_signal()?;
    let app = Arc::new(App {
        storage: infinisheet::storage_service(catalog.storage()),
        catalog,
        token: args.token,
        stop: stop.clone(),
        open: tokio::sync::Mutex::default(),
    });
    let router = Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        .route("/api/sheets", get(sheets))
        .route("/api/cells", get(read_cells).post(set_cells))
        .route("/api/events", get(events))
        .route(
            "/api/storage",
            post(storage).layer(DefaultBodyLimit::max(STORAGE_BODY_LIMIT)),
        )
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let bound = listener.local_addr()?;
    outln!("listening on http://{bound}");
    axum::serve(listener, router)
        .with_graceful_shutdown(async move {
            let mut stop = stop;
            let _ = stop.wait_for(|stopping| *stopping).await;
        })
        .await
        .context("serving")?;
    // The snapshot jobs the server's edits asked for are done before it
    // exits.
    let open: Vec<Arc<Open>> = app.open.lock().await.drain().map(|(_, o)| o).collect();
    for sheet in open {
        if let Ok(sheet) = Arc::try_unwrap(sheet) {
            super::finish(Some(sheet.host)).await;
        }
    }
    Ok(())
}

/// An API error: a status and `{"error": message}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

impl From<CatalogError> for ApiError {
    fn from(err: CatalogError) -> Self {
        let status = if err.is_not_found() {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        };
        ApiError(status, err.to_string())
    }
}

fn bad_request(message: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.to_string())
}

fn failed(err: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}

impl App {
    /// Fails unless the request carries the token (when there is one).
    fn authorize(&self, headers: &HeaderMap, query: Option<&str>) -> Result<(), ApiError> {
        let Some(token) = &self.token else {
            return Ok(());
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer == Some(token.as_str()) || query == Some(token.as_str()) {
            Ok(())
        } else {
            Err(ApiError(
                StatusCode::UNAUTHORIZED,
                "this server needs its token: Authorization: Bearer TOKEN".into(),
            ))
        }
    }

    /// The sheet at `path`, opened once and kept live.
    async fn sheet(&self, path: &str) -> Result<Arc<Open>, ApiError> {
        let mut open = self.open.lock().await;
        if let Some(sheet) = open.get(path) {
            return Ok(sheet.clone());
        }
        let sheet = self.catalog.open_sheet(path).await?;
        let host = sheet.start_host();
        let cells = sheet.open_on(host.log()).await.map_err(failed)?;
        let watch = cells.watch();
        let opened = Arc::new(Open {
            sheet,
            cells,
            host,
            _watch: watch,
        });
        open.insert(path.to_owned(), opened.clone());
        Ok(opened)
    }
}

#[derive(Debug, serde::Deserialize)]
struct SheetQuery {
    sheet: Option<String>,
    range: Option<String>,
    from: Option<u64>,
    /// A read holds at least the entries before this id (when the log has
    /// them).
    at: Option<u64>,
    token: Option<String>,
}

impl SheetQuery {
    fn sheet(&self) -> Result<&str, ApiError> {
        self.sheet
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad_request("name the sheet: ?sheet=PATH"))
    }
}

async fn page() -> Html<&'static str> {
    Html(include_str!("page/index.html"))
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("page/app.js"),
    )
}

async fn sheets(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<SheetQuery>,
) -> Result<Json<Value>, ApiError> {
    app.authorize(&headers, query.token.as_deref())?;
    let sheets = app.catalog.sheets("").await?;
    Ok(Json(json!({ "sheets": sheets })))
}

/// `GET /api/cells?sheet=PATH&range=A1:F20&at=N`: the range as `get
/// --json` prints it (the used range without `range`), with the sheet's
/// end and size (`sheet_rows`, `sheet_columns`); with `at`, holding at
/// least the entries before id `N` (the `end` of an `entries` event).
async fn read_cells(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<SheetQuery>,
) -> Result<Response, ApiError> {
    app.authorize(&headers, query.token.as_deref())?;
    let open = app.sheet(query.sheet()?).await?;
    // The server's view follows the log on its own, so it may not yet hold
    // entries a client learned of from the event stream (or wrote through
    // another process): asked for them (`at`), it reads the log first.
    if query.at.is_some_and(|at| open.cells.content().end() < at) {
        open.cells.sync().await.map_err(failed)?;
    }
    let content = open.cells.content();
    let range = match &query.range {
        Some(text) => {
            let asked: CellRange = text.parse().map_err(bad_request)?;
            content.resolve(asked)
        }
        None => content.used_range(),
    };
    let end = content.end();
    // The sheet's size, so a client can size its scrolling to the sheet.
    let (sheet_rows, sheet_columns) = (content.row_count(), content.column_count());
    let Some(range) = range else {
        return Ok(Json(json!({
            "range": null,
            "rows": [],
            "end": end,
            "sheet_rows": sheet_rows,
            "sheet_columns": sheet_columns,
        }))
        .into_response());
    };
    if range.cell_count() > READ_LIMIT {
        return Err(bad_request(format!(
            "{range} holds {} cells; one read returns at most {READ_LIMIT}",
            range.cell_count()
        )));
    }
    let mut body = Vec::new();
    write_json(&open.cells, &mut body, range)
        .await
        .map_err(failed)?;
    let mut value: Value = serde_json::from_slice(&body).map_err(failed)?;
    if let Some(map) = value.as_object_mut() {
        map.insert("end".into(), json!(end));
        map.insert("sheet_rows".into(), json!(sheet_rows));
        map.insert("sheet_columns".into(), json!(sheet_columns));
    }
    Ok(Json(value).into_response())
}

/// `POST /api/cells?sheet=PATH` with `{"B2": "42", "C3": "text"}`: each
/// value read as `set` reads it (a number, TRUE/FALSE, an error value, or
/// text), all in one entry batch.
async fn set_cells(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<SheetQuery>,
    Json(body): Json<std::collections::BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    app.authorize(&headers, query.token.as_deref())?;
    let open = app.sheet(query.sheet()?).await?;
    let mut edits = Vec::with_capacity(body.len());
    for (at, input) in &body {
        let at: CellRef = at.parse().map_err(bad_request)?;
        edits.push((at, Cell::new(CellValue::from_input(input))));
    }
    if edits.is_empty() {
        return Err(bad_request("no cells to set"));
    }
    let entries = open.cells.set_cells(edits).await.map_err(failed)?;
    Ok(Json(
        json!({ "sheet": open.sheet.path(), "start": entries.start, "end": entries.end }),
    ))
}

/// `GET /api/events?sheet=PATH&from=N` (or `Last-Event-ID: N`): Server-Sent
/// Events. `entries` events carry `{"start", "end", "edits"}` and the id
/// `end`, so a client that reconnects resumes after the last one it saw;
/// `caught-up` says the stream is live; `snapshot` (`{"sequence_id",
/// "blob_id"}`) names the sheet's latest snapshot, first on connecting
/// and again whenever a newer one is published; `reset` says the log was
/// truncated past the client (read the range again).
async fn events(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    Query(query): Query<SheetQuery>,
) -> Result<impl IntoResponse, ApiError> {
    app.authorize(&headers, query.token.as_deref())?;
    let open = app.sheet(query.sheet()?).await?;
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let from = match resume.or(query.from) {
        Some(from) => from,
        None => open.cells.content().end(),
    };
    let log = open.sheet.log();
    let (tx, rx) = tokio::sync::mpsc::channel::<Event>(16);
    let mut stop = app.stop.clone();
    tokio::spawn(async move {
        let mut tail = log.tail(from).tracking_snapshots(KnownSnapshot::NoSnapshot);
        loop {
            let next = tokio::select! {
                next = tail.next() => next,
                _ = stop.wait_for(|stopping| *stopping) => return,
            };
            let event = match next {
                Ok(TailEvent::Entries { start, entries }) => {
                    let end = start + entries.len() as u64;
                    let edits: Vec<Value> =
                        entries.iter().map(|e| entry_json(&e.payload)).collect();
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
                    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                    continue;
                }
            };
            if tx.send(event).await.is_err() {
                return; // the client went away
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv()
            .await
            .map(|event| (Ok::<_, Infallible>(event), rx))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// `POST /api/storage`: one call of a storage client (`--logs
/// http://HOST:PORT`, `infinisheet::http`), answered from the catalog's
/// logs and blobs.
async fn storage(
    State(app): State<Arc<App>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    app.authorize(&headers, None)?;
    let reply = app.storage.handle(&body).await;
    Ok((
        [(header::CONTENT_TYPE, StorageService::CONTENT_TYPE)],
        reply,
    )
        .into_response())
}
