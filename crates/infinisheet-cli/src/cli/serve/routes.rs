//! The routes, the layers in front of them, and the handlers of the page,
//! cells and storage (the event stream is in [`super::events`]).

use super::guard::{self, refuse};
use super::{ApiError, App, Role, access, bad_request, events, failed, session};
use axum::extract::{DefaultBodyLimit, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
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
        .layer(from_fn(guard::same_origin))
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

/// `GET /api/sheets`: every sheet's path, and what the caller may do
/// (`"access": "write"` or `"read"`).
async fn sheets(
    State(app): State<Arc<App>>,
    Extension(role): Extension<Role>,
) -> Result<Json<Value>, ApiError> {
    let sheets = app.catalog.sheets("").await?;
    let access = match role {
        Role::Writer => "write",
        Role::Reader => "read",
    };
    Ok(Json(json!({ "sheets": sheets, "access": access })))
}

/// `GET /api/cells?sheet=PATH&range=A1:F20&at=N`: the range as `get
/// --json` prints it (the used range without `range`), with the sheet's
/// end and size (`sheet_rows`, `sheet_columns`); with `at`, holding at
/// least the entries before id `N` (the `end` of an `entries` event).
async fn read_cells(
    State(app): State<Arc<App>>,
    Query(query): Query<SheetQuery>,
) -> Result<Response, ApiError> {
    let open = app.sheets.get(query.sheet()?).await?;
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

/// `POST /api/cells?sheet=PATH` with `{"B2": "42", "C3": "text"}`
/// (`Content-Type: application/json`): each value read as `set` reads it
/// (a number, TRUE/FALSE, an error value, or text), all in one entry
/// batch. Acknowledged only once the catalog confirms the path still
/// names the sheet the edit went to: if it was removed, moved or replaced
/// meanwhile, the answer is 409 and says so.
async fn set_cells(
    State(app): State<Arc<App>>,
    Query(query): Query<SheetQuery>,
    Json(body): Json<std::collections::BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let path = query.sheet()?;
    let mut edits = Vec::with_capacity(body.len());
    for (at, input) in &body {
        let at: CellRef = at.parse().map_err(bad_request)?;
        edits.push((at, Cell::new(CellValue::from_input(input))));
    }
    if edits.is_empty() {
        return Err(bad_request("no cells to set"));
    }
    let open = app.sheets.get(path).await?;
    let entries = open.cells.set_cells(edits).await.map_err(failed)?;
    // Confirmed after the edit: a removal between a check and the edit
    // would go unseen.
    if let Err(err) = open.sheet.confirm_at(&app.catalog, path).await {
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

/// `POST /api/storage` (`Content-Type:
/// application/x-infinisheet-storage`): one call of a storage client
/// (`--logs http://HOST:PORT`, `infinisheet::http`), answered from the
/// catalog's logs and blobs; a read-only token's writes are refused.
async fn storage(
    State(app): State<Arc<App>>,
    Extension(role): Extension<Role>,
    request: Request,
) -> Response {
    let media = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if media != StorageService::CONTENT_TYPE {
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "a storage call is a body of type {}",
                StorageService::CONTENT_TYPE
            ),
        );
    }
    let body = match read_body(request, app.max_body).await {
        Ok(body) => body,
        Err(why) => {
            return refuse(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "{why} (this server takes calls of up to {} MiB: `serve --max-body-mib`)",
                    app.max_body >> 20
                ),
            );
        }
    };
    let permission = match role {
        Role::Writer => Permission::ReadWrite,
        Role::Reader => Permission::ReadOnly,
    };
    let reply = app.storage.handle(&body, permission).await;
    (
        [(header::CONTENT_TYPE, StorageService::CONTENT_TYPE)],
        reply,
    )
        .into_response()
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
