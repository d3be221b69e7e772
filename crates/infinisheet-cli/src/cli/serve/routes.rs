//! The routes, the layers in front of them, and the handlers of the page,
//! cells and storage (the event stream is in [`super::events`]).

use super::guard::{self, refuse};
use super::replies::Capped;
use super::{ApiError, App, Role, access, bad_request, events, failed, session};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use infinisheet::engine::{Block, Edit};
use infinisheet::http::{Permission, StorageService};
use infinisheet::table::write_json;
use infinisheet::{CatalogError, Cell, CellRange, CellRef, CellValue};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

/// The most cells one read returns (a viewport is far smaller).
const READ_LIMIT: u64 = 100_000;

/// The largest body of a cell edit (a pasted block of thousands of cells
/// is a few hundred KiB of JSON).
const CELLS_BODY_LIMIT: usize = 1 << 20;

/// The largest sign-in form.
const LOGIN_BODY_LIMIT: usize = 4 << 10;

/// The server's routes behind their guards. A request passes, in order:
/// the access log, its deadline, the host check, the origin check, the
/// route (an unknown one is 404), the token check (API routes), the
/// writer check (edits), the body limit, and only then is its body read.
pub(super) fn router(app: Arc<App>, timeout: Duration) -> Router {
    let api = Router::new()
        .route("/api/sheets", get(sheets))
        .route(
            "/api/cells",
            get(read_cells).post(set_cells).route_layer(
                tower::ServiceBuilder::new()
                    .layer(from_fn(guard::require_writer_for_writes))
                    .layer(RequestBodyLimitLayer::new(CELLS_BODY_LIMIT)),
            ),
        )
        .route("/api/events", get(events::events))
        .route(
            "/api/storage",
            post(storage).route_layer(RequestBodyLimitLayer::new(app.max_body)),
        )
        .route_layer(from_fn_with_state(app.clone(), guard::authorize));
    let pages = Router::new()
        .route("/", get(page))
        .route("/app.js", get(script))
        // No icon: said at once, so browsers stop asking.
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/login",
            get(session::form)
                .post(session::sign_in)
                .route_layer(RequestBodyLimitLayer::new(LOGIN_BODY_LIMIT)),
        )
        .route("/logout", post(session::sign_out));
    api.merge(pages)
        // Each route's own limit stands instead of axum's default.
        .layer(DefaultBodyLimit::disable())
        .layer(from_fn(json_errors))
        .layer(from_fn_with_state(app.clone(), guard::same_origin))
        .layer(from_fn_with_state(app.clone(), guard::check_host))
        .layer(from_fn(guard::protective_headers))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(from_fn(access::log))
        .with_state(app)
}

#[derive(Debug, serde::Deserialize)]
struct SheetQuery {
    sheet: Option<String>,
    range: Option<String>,
    /// A read holds at least the entries before this id (when the log has
    /// them).
    at: Option<u64>,
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
    Html(include_str!("../page/index.html"))
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("../page/app.js"),
    )
}

/// `GET /api/sheets`: every sheet's path, what the caller may do
/// (`"access": "write"` or `"read"`), and whether it is signed in with a
/// session (`"session"`: the page offers to sign out).
async fn sheets(
    State(app): State<Arc<App>>,
    Extension(role): Extension<Role>,
    Extension(guard::Session(session)): Extension<guard::Session>,
) -> Result<Json<Value>, ApiError> {
    let sheets = app.catalog.sheets("").await?;
    let access = match role {
        Role::Writer => "write",
        Role::Reader => "read",
    };
    Ok(Json(
        json!({ "sheets": sheets, "access": access, "session": session }),
    ))
}

/// `GET /api/cells?sheet=PATH&range=A1:F20&at=N`: the range as `get
/// --json` prints it (the used range without `range`), with the sheet's
/// end and size (`sheet_rows`, `sheet_columns`); with `at`, holding at
/// least the entries before id `N` (the `end` of an `entries` event), or
/// 400 if the log does not reach `N`.
async fn read_cells(
    State(app): State<Arc<App>>,
    Query(query): Query<SheetQuery>,
) -> Result<Response, ApiError> {
    let _work = app.work.acquire().await.map_err(failed)?;
    let open = app.sheets.get(query.sheet()?).await?;
    // The server's view follows the log on its own, so it may not yet hold
    // entries a client learned of from the event stream (or wrote through
    // another process): asked for them (`at`), it reads the log first.
    if query.at.is_some_and(|at| open.cells.content().end() < at) {
        open.cells.sync().await.map_err(failed)?;
    }
    let content = open.cells.content();
    if let Some(at) = query.at.filter(|&at| content.end() < at) {
        return Err(bad_request(format!(
            "the sheet's log ends at entry {}: at={at} asks for entries it does not hold",
            content.end()
        )));
    }
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
    // The reply takes its share of the replies' budget as it is built, so
    // what reads hold while built is bounded too.
    let Some(share) = app.replies.try_share(0) else {
        return Ok(busy(&app));
    };
    let mut capped = Capped::budgeted(READ_BYTES, &app.replies, share);
    let written = write_json(&open.cells, &mut capped, range).await;
    if capped.over {
        return Err(bad_request(format!(
            "the cells of {range} take more than {} MiB as JSON: read a smaller range",
            READ_BYTES >> 20
        )));
    }
    if capped.busy {
        return Ok(busy(&app));
    }
    written.map_err(failed)?;
    let (mut body, share) = capped.into_parts();
    let Some(mut share) = share else {
        return Err(failed("a budgeted reply lost its share"));
    };
    // `write_json` writes one object and a line break: the sheet's end
    // and size go in before its brace closes (no second copy of a large
    // read).
    if !body.ends_with(b"}\n") {
        return Err(failed("the range's JSON is not one object"));
    }
    body.truncate(body.len() - 2);
    body.extend_from_slice(
        format!(",\"end\":{end},\"sheet_rows\":{sheet_rows},\"sheet_columns\":{sheet_columns}}}")
            .as_bytes(),
    );
    app.replies.shrink(&mut share, body.len());
    Ok(reply(body, share, "application/json"))
}

/// The most a cell read's JSON (or an event's entry) may take.
pub(super) const READ_BYTES: usize = 16 << 20;

/// `body` as a reply of type `media`, holding its share of the replies'
/// budget until the client has taken it; 503 while the budget is held by
/// others (slow clients), which a client may retry.
fn budgeted(app: &App, body: Vec<u8>, media: &'static str) -> Response {
    match app.replies.try_share(body.len()) {
        Some(share) => reply(body, share, media),
        None => busy(app),
    }
}

/// The refusal of a reply the budget has no room for.
fn busy(app: &App) -> Response {
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "the server holds {} MiB of replies for clients still taking them: try again",
            app.replies.total() >> 20
        ),
    )
}

/// `body` as a reply of type `media`, holding `share` until the client
/// has taken it.
fn reply(body: Vec<u8>, share: tokio::sync::OwnedSemaphorePermit, media: &'static str) -> Response {
    let length = body.len();
    (
        [
            (header::CONTENT_TYPE, media.to_owned()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        super::replies::body(body, share),
    )
        .into_response()
}

/// `POST /api/cells?sheet=PATH` with `{"B2": "42", "C3": "text", "D4":
/// 7, "E5": true, "F6": null, "G7": {"input": "1300", "format": "0.00"},
/// "G8": {"value": "TRUE"}, "A10": [["x", 1], ["y", 2]], "H1:H9": null}`
/// (`Content-Type: application/json`): a string is read as `set` reads
/// it (a number, TRUE/FALSE, an error value, or text; `""` an empty
/// cell), a number or boolean is that value, and null makes the cell
/// blank; an object is a cell with a format: `"input"` read as a string
/// is, or `"value"` (or `"error"`) exactly as `get --json` prints it; an
/// array of rows is one block entry from its cell (a paste: a `null` in
/// it leaves that cell as it is); a range with null is one clear. Ranges
/// are cleared first, then cells and blocks set in the order of their
/// first cell, all in one entry batch, all or nothing; a place given
/// twice (`a1` and `A1`) is refused, and a call sets at most
/// [`CELLS_PER_CALL`] cells. Acknowledged only once
/// the catalog confirms the path still names the sheet the edit went to:
/// if it was removed, moved or replaced meanwhile, the answer is 409 and
/// says so.
async fn set_cells(
    State(app): State<Arc<App>>,
    Query(query): Query<SheetQuery>,
    request: Request,
) -> Result<Json<Value>, ApiError> {
    let path = query.sheet()?.to_owned();
    if !media_is(&request, "application/json") {
        return Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "cells are set with a body of type application/json".to_owned(),
        ));
    }
    // The body first, then a share of the work: a client sending slowly
    // holds no share while it sends.
    let body = read_body(request, CELLS_BODY_LIMIT).await.map_err(|why| {
        ApiError(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{why} (cells are set {} KiB at a time)",
                CELLS_BODY_LIMIT >> 10
            ),
        )
    })?;
    // Parsed within a share of the work: what a call's cells take in
    // memory is bounded by the shares.
    let _work = app.work.acquire().await.map_err(failed)?;
    let Pairs(cells) = serde_json::from_slice(&body).map_err(|err| {
        bad_request(format!(
            "the body is not an object of cells and values ({{\"B2\": \"42\"}}): {err}"
        ))
    })?;
    drop(body);
    let edits = cell_edits(cells)?;
    let open = app.sheets.get(&path).await?;
    let entries = open.cells.edit(edits).await.map_err(failed)?;
    // Confirmed after the edit: a removal between a check and the edit
    // would go unseen.
    if let Err(err) = open.sheet.confirm_at(&app.catalog, &path).await {
        if matches!(err, CatalogError::Stale { .. }) {
            app.sheets.forget(&open);
            return Err(ApiError(
                StatusCode::CONFLICT,
                format!(
                    "{}; the edit went to that sheet's log, not to a sheet at {}: read \
                     the sheet again",
                    super::super::one_line(&anyhow::Error::from(err)),
                    path.trim_matches('/')
                ),
            ));
        }
        return Err(err.into());
    }
    Ok(Json(
        json!({ "sheet": path.trim_matches('/'), "start": entries.start, "end": entries.end }),
    ))
}

/// The most cells one `POST /api/cells` sets (a block counts its whole
/// rectangle): what a call's cells take in memory stays in tens of MiB.
const CELLS_PER_CALL: u64 = 1 << 18;

/// One value of a `POST /api/cells` body (see [`set_cells`]) as a cell:
/// `None` for null (blank, or left as it is in a block).
fn cell_of(at: CellRef, value: Value) -> Result<Option<Cell>, ApiError> {
    let number = |number: serde_json::Number| {
        number
            .as_f64()
            .filter(|n| n.is_finite())
            .ok_or_else(|| bad_request(format!("{at}: {number} is not a number here")))
    };
    let not_a_value = |what: &str| {
        bad_request(format!(
            "{at}: {what} is not a value: give text, a number, true/false, null, or an object \
             {{\"input\": \"1300\", \"format\": \"0.00\"}} or {{\"value\": \"TRUE\"}} \
             (one of \"input\", \"value\", \"error\", and a \"format\" text)"
        ))
    };
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::String(input) => Cell::new(CellValue::from_input(&input)),
        Value::Number(n) => Cell::new(CellValue::Number(number(n)?)),
        Value::Bool(b) => Cell::new(CellValue::Boolean(b)),
        Value::Object(mut object) => {
            let format = match object.remove("format") {
                None | Some(Value::Null) => None,
                Some(Value::String(format)) => Some(format),
                Some(other) => return Err(not_a_value(&format!("the format {other}"))),
            };
            // As `get --json` prints a cell ("shown" is how it shows).
            object.remove("shown");
            let value = match (
                object.remove("input"),
                object.remove("value"),
                object.remove("error"),
            ) {
                (Some(Value::String(input)), None, None) => CellValue::from_input(&input),
                (None, Some(value), None) => match value {
                    Value::Null => CellValue::Empty,
                    Value::String(text) => CellValue::Text(text),
                    Value::Number(n) => CellValue::Number(number(n)?),
                    Value::Bool(b) => CellValue::Boolean(b),
                    other => return Err(not_a_value(&other.to_string())),
                },
                (None, None, Some(Value::String(error))) => match CellValue::parse(&error) {
                    error @ CellValue::Error(_) => error,
                    _ => {
                        return Err(bad_request(format!(
                            "{at}: {error:?} is not an error value"
                        )));
                    }
                },
                _ => return Err(not_a_value("this object")),
            };
            if let Some(key) = object.keys().next() {
                return Err(bad_request(format!("{at}: a cell has no {key:?}")));
            }
            Cell { value, format }
        }
        other => return Err(not_a_value(&other.to_string())),
    }))
}

/// A JSON object's members in their order, every one of them (a map keeps
/// only the last of a key given twice).
struct Pairs(Vec<(String, Value)>);

impl<'de> serde::Deserialize<'de> for Pairs {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Pairs, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = Pairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Pairs, A::Error> {
                let mut pairs = Vec::with_capacity(map.size_hint().unwrap_or(0).min(4096));
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Pairs(pairs))
            }
        }
        deserializer.deserialize_map(Members)
    }
}

/// The edits of a `POST /api/cells` body (see [`set_cells`]): the clears,
/// then the sets and blocks, each in the order of its first cell.
fn cell_edits(cells: Vec<(String, Value)>) -> Result<Vec<Edit>, ApiError> {
    let mut clears: Vec<(CellRange, Edit)> = Vec::new();
    let mut sets: Vec<(CellRef, Edit)> = Vec::with_capacity(cells.len());
    let mut seen = std::collections::HashMap::new();
    let mut count = 0u64;
    let mut charge = |n: u64| {
        count = count.saturating_add(n);
        if count > CELLS_PER_CALL {
            return Err(bad_request(format!(
                "a call sets at most {CELLS_PER_CALL} cells (a block counts its rows times its \
                 widest row): split it"
            )));
        }
        Ok(())
    };
    for (key, value) in cells {
        let range: CellRange = key.parse().map_err(bad_request)?;
        let single = !key.contains(':');
        // One place, one spelling: `a1` and `A1` both given would leave it
        // to the order of keys.
        if let Some(other) = seen.insert((range, single), key.clone()) {
            return Err(bad_request(format!(
                "{range} is given twice ({other:?} and {key:?})"
            )));
        }
        if !single {
            if !value.is_null() {
                return Err(bad_request(format!(
                    "{range}: a range is only cleared (null); set its cells one by one or as \
                     rows from its first cell"
                )));
            }
            charge(1)?;
            clears.push((range, Edit::Clear(range)));
            continue;
        }
        let at = range.first;
        match value {
            Value::Array(rows) => {
                let width = rows
                    .iter()
                    .map(|row| row.as_array().map_or(0, Vec::len))
                    .max()
                    .unwrap_or(0);
                charge((rows.len() as u64).saturating_mul(width as u64))?;
                let mut block = Vec::with_capacity(rows.len());
                for (i, row) in rows.into_iter().enumerate() {
                    let Value::Array(row) = row else {
                        return Err(bad_request(format!(
                            "{at}: row {} of the block is not an array of values",
                            i + 1
                        )));
                    };
                    let row = row
                        .into_iter()
                        .enumerate()
                        .map(|(j, value)| {
                            let place = CellRef::new(
                                at.row.saturating_add(i as u32),
                                at.column.saturating_add(j as u32),
                            );
                            cell_of(place, value)
                        })
                        .collect::<Result<Vec<_>, ApiError>>()?;
                    block.push(row);
                }
                let block = Block::from_rows(at, block)
                    .map_err(|err| bad_request(format!("the block at {at}: {err}")))?;
                sets.push((at, Edit::Block(block)));
            }
            value => {
                charge(1)?;
                match cell_of(at, value)? {
                    Some(cell) => sets.push((at, Edit::Set(at, cell))),
                    None => clears.push((range, Edit::Clear(range))),
                }
            }
        }
    }
    if clears.is_empty() && sets.is_empty() {
        return Err(bad_request("no cells to set"));
    }
    clears.sort_by_key(|(range, _)| (range.first, range.last));
    sets.sort_by_key(|(at, _)| *at);
    Ok(clears
        .into_iter()
        .map(|(_, edit)| edit)
        .chain(sets.into_iter().map(|(_, edit)| edit))
        .collect())
}

/// Whether `request`'s body is of type `media` (one `Content-Type`, of
/// that type exactly, with parameters such as a charset or not).
fn media_is(request: &Request, media: &str) -> bool {
    let mut types = request.headers().get_all(header::CONTENT_TYPE).iter();
    let (Some(given), None) = (types.next(), types.next()) else {
        return false;
    };
    given
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case(media))
}

/// `POST /api/storage` (`Content-Type:
/// application/x-infinisheet-storage`): one call of a storage client
/// (`--logs http://HOST:PORT`, `infinisheet::http`), answered from the
/// catalog's logs and blobs; a read-only token's writes are refused.
async fn storage(
    State(app): State<Arc<App>>,
    Extension(role): Extension<Role>,
    request: Request,
) -> Response {
    let mut types = request.headers().get_all(header::CONTENT_TYPE).iter();
    let exact = matches!(
        (types.next(), types.next()),
        (Some(media), None) if media == StorageService::CONTENT_TYPE
    );
    if !exact {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "a storage call is a body of type {}",
                StorageService::CONTENT_TYPE
            ),
        );
    }
    // What bodies hold at once is bounded by the bytes they hold, taken
    // as they arrive: a client announcing much and sending little holds
    // only what it sent, and a waiting call (a tail's long poll) its few
    // bytes.
    let (body, _budget) = match read_budgeted(request, app.max_body, &app.body_budget).await {
        Ok(read) => read,
        Err(BodyRefusal::TooLarge(why)) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "{why} (this server takes calls of up to {} MiB: `serve --max-body-mib`)",
                    app.max_body >> 20
                ),
            );
        }
        Err(BodyRefusal::Busy) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server holds as many storage calls' bytes as it may: try again",
            );
        }
    };
    let permission = match role {
        Role::Writer => Permission::ReadWrite,
        Role::Reader => Permission::ReadOnly,
    };
    let reply = app.storage.handle(&body, permission).await;
    drop(body);
    budgeted(&app, reply, StorageService::CONTENT_TYPE)
}

/// Why a storage call's body was not read.
enum BodyRefusal {
    /// It is larger than a call may be.
    TooLarge(String),
    /// The budget of bodies' bytes is held by other calls.
    Busy,
}

/// The body of `request`, at most `most` bytes, and its share of
/// `budget` (in KiB), taken as its bytes arrive: refused at once, not
/// waited for, when other calls hold the budget (a client retries).
async fn read_budgeted<'a>(
    request: Request,
    most: usize,
    budget: &'a tokio::sync::Semaphore,
) -> Result<(Vec<u8>, Option<tokio::sync::SemaphorePermit<'a>>), BodyRefusal> {
    use futures::StreamExt;
    let too_large = || BodyRefusal::TooLarge("the call is too large".to_owned());
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > most) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    let (mut held, mut held_kib) = (None::<tokio::sync::SemaphorePermit<'a>>, 0usize);
    let mut chunks = request.into_body().into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|err| {
            BodyRefusal::TooLarge(format!("the call was cut short or too large: {err}"))
        })?;
        let size = body.len() + chunk.len();
        if size > most {
            return Err(too_large());
        }
        let need = size.div_ceil(1024);
        if need > held_kib {
            let more = u32::try_from(need - held_kib).map_err(|_| too_large())?;
            let share = budget
                .try_acquire_many(more)
                .map_err(|_| BodyRefusal::Busy)?;
            match &mut held {
                Some(held) => held.merge(share),
                None => held = Some(share),
            }
            held_kib = need;
        }
        if body.is_empty() {
            // Sized by the announced length once the first bytes came
            // (a body joined from pieces would take twice its size at the
            // peak).
            body.reserve(announced.unwrap_or(0));
        }
        body.extend_from_slice(&chunk);
    }
    Ok((body, held))
}

/// The body of `request`, at most `most` bytes, in one buffer sized by
/// its `Content-Length` when it has one (a body collected in pieces and
/// then joined would take twice its size at the peak).
async fn read_body(request: Request, most: usize) -> Result<Vec<u8>, String> {
    use futures::StreamExt;
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > most) {
        return Err("the call is too large".to_owned());
    }
    let mut body = Vec::with_capacity(announced.unwrap_or(0));
    let mut chunks = request.into_body().into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|err| format!("the call was cut short or too large: {err}"))?;
        if body.len() + chunk.len() > most {
            return Err("the call is too large".to_owned());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Every refusal as `{"error": message}`: those of the extractors and
/// layers (a query that does not parse, a body too large), which come as
/// plain text, too. Pages (HTML) stay as they are.
async fn json_errors(request: Request, next: axum::middleware::Next) -> Response {
    let cells = request.uri().path() == "/api/cells";
    let response = next.run(request).await;
    let status = response.status();
    let plain = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    if !(status.is_client_error() || status.is_server_error()) || !plain {
        return response;
    }
    let text = axum::body::to_bytes(response.into_body(), 64 << 10)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let text = if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The body limit's own refusal ("length limit exceeded") says
        // what the limit is.
        if cells {
            format!(
                "the call is too large (cells are set {} KiB at a time)",
                CELLS_BODY_LIMIT >> 10
            )
        } else {
            "the call is too large".to_owned()
        }
    } else if text.is_empty() {
        status.canonical_reason().unwrap_or("refused").to_owned()
    } else {
        text
    };
    ApiError(status, text).into_response()
}
