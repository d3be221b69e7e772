//! `serve`: the catalog over HTTP. JSON endpoints to list sheets, read a
//! range and set cells; Server-Sent Events that push each new range of
//! entries to subscribers; the page at `/`; snapshot jobs in the server's
//! own workflow hosts; and the storage itself at `POST /api/storage`, for
//! `http://` storage URLs elsewhere.
//!
//! Who may reach it, and what they may make it do:
//!
//! * **Hosts** ([`guard::Hosts`]): only requests naming a loopback name or
//!   address, the listen address, or a name `--allow-host` adds are
//!   answered, so a page whose name was rebound to 127.0.0.1 gets nothing.
//! * **Other origins** ([`guard::same_origin`]): every request that could
//!   change something, and every API request, from a page of another
//!   origin (`Origin`, `Sec-Fetch-Site`) is refused before it is read; the
//!   routes that take a body take only their own media type, so a form or
//!   a "simple" cross-site request cannot carry one.
//! * **Tokens** ([`guard::Tokens`], [`session`]): with `--token` every API
//!   request carries `Authorization: Bearer` or a session cookie (HttpOnly,
//!   SameSite=Strict) the page gets by signing in at `/login`; a
//!   `--read-token` reads and follows but changes nothing. Compared in
//!   constant time. Beyond loopback a token is required, and TLS
//!   (`--tls-cert`/`--tls-key`) unless `--plain-http` says otherwise.
//! * **Limits before work** ([`listen`], [`routes`]): credentials and the
//!   route are decided before a body byte is read; each route has its body
//!   limit (a storage call's counts are capped as it is decoded, its
//!   bytes counted against a budget as they arrive); connections, event
//!   streams (each address a quarter of both) and open sheets are capped;
//!   replies hold a share of one budget until their clients take them
//!   ([`replies`]), and every request has a deadline.
//! * **Sheets by identity** ([`sheets`]): a path names a sheet only as long
//!   as the catalog says so: open sheets are keyed by identity, at most
//!   `--max-open-sheets` of them, and an edit is acknowledged only once the
//!   path is confirmed to still name the sheet it went to.
//! * **An access log** ([`access`]): a line per request.
//!
//! # Layout
//!
//! The server (axum on its own hyper accept loop) keeps each sheet it serves open on
//! its own `WorkflowHost` with a watch, keyed by identity and LRU-capped
//! (`sheets.rs`), and follows each sheet with one tail its event streams
//! share (`events.rs`: a stream catches up on its own, then lives on the
//! shared tail's notes; on an object store the tail waits on the
//! catalog's `.live/` markers rather than polling); the stop signal ends
//! the streams so the graceful shutdown completes. A request passes, in order, the access log (`access.rs`),
//! its deadline, the host allow-list, the origin check (`guard.rs`), the
//! route, the token or session check (`session.rs`), the writer check and
//! the route's body limit (`routes.rs`) before its body is read;
//! `listen.rs` caps connections and does TLS. The page is two static
//! files in `cli/page/`, compiled into the binary.

mod access;
mod events;
mod guard;
mod listen;
mod replies;
mod routes;
mod session;
mod sheets;
#[cfg(test)]
mod tests;

use super::Place;
use anyhow::{Context, bail};
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use infinisheet::http::StorageService;
use infinisheet::{Catalog, CatalogError};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub(crate) struct Serve {
    /// The address to listen on: IP:PORT, localhost:PORT, or a PORT on
    /// loopback; a port of 0 takes a free one. Beyond loopback it needs
    /// --token, and --tls-cert/--tls-key or --plain-http.
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = listen_address)]
    listen: SocketAddr,
    /// The token for full access: API clients send `Authorization: Bearer
    /// TOKEN`, the page signs in with it at /login.
    #[arg(long, env = "INFINISHEET_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Read the token from this file (its first line).
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// A second token that may only read: sheets, cells, the event stream
    /// and storage reads; every write with it is refused (403).
    #[arg(long, env = "INFINISHEET_READ_TOKEN", hide_env_values = true)]
    read_token: Option<String>,
    /// Read the read-only token from this file (its first line).
    #[arg(long, value_name = "PATH")]
    read_token_file: Option<PathBuf>,
    /// Answer requests for this host name too (the name a reverse proxy
    /// or the users reach the server by); loopback names and addresses
    /// and the listen address are always answered. Repeat for more.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_hosts: Vec<String>,
    /// Serve HTTPS with this certificate chain (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve plain HTTP beyond loopback (behind a proxy that adds TLS, or
    /// on a network you trust): the token then crosses it in the clear.
    #[arg(long, conflicts_with = "tls_cert")]
    plain_http: bool,
    /// Keep at most this many sheets open (the least recently used close
    /// first; a sheet idle for five minutes closes too).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_open_sheets: u32,
    /// Serve at most this many connections at once (more wait to be
    /// accepted).
    #[arg(long, default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..))]
    max_connections: u32,
    /// Follow at most this many event streams at once (more are refused
    /// with 503).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_event_streams: u32,
    /// The largest storage call a client may send, in MiB (a blob it
    /// writes, a batch of entries).
    #[arg(long, default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=4096))]
    max_body_mib: u32,
    /// How long a request may take, in seconds (more than the 30 s a
    /// storage client's long poll waits).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(31..=3600))]
    request_timeout: u64,
}

/// `--listen`: `IP:PORT`, `[IPv6]:PORT`, `localhost:PORT`, or a port
/// alone (on 127.0.0.1).
fn listen_address(text: &str) -> Result<SocketAddr, String> {
    if let Ok(address) = text.parse::<SocketAddr>() {
        return Ok(address);
    }
    let port = text
        .strip_prefix("localhost:")
        .unwrap_or(text)
        .parse::<u16>()
        .map_err(|_| {
            format!(
                "{text:?} is not an address to listen on: give IP:PORT (127.0.0.1:8080, \
                 0.0.0.0:8443, [::1]:8080), localhost:PORT, or a PORT on loopback"
            )
        })?;
    Ok(SocketAddr::from(([127, 0, 0, 1], port)))
}

/// The shortest token a server reachable beyond loopback takes.
const SHORTEST_TOKEN: usize = 16;

/// What a request may do, from its credentials (ordered: a writer may do
/// more).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Role {
    /// Read and follow sheets, and the storage's reads.
    Reader,
    /// Everything.
    Writer,
}

/// What every request's handling shares.
struct App {
    catalog: Catalog,
    /// The catalog's storage, for clients that open it by `http://` URL.
    storage: StorageService,
    sheets: sheets::Sheets,
    tokens: guard::Tokens,
    sessions: session::Sessions,
    /// Wrong tokens presented lately, by client address.
    guesses: guard::Guesses,
    hosts: guard::Hosts,
    /// Whether it serves HTTPS.
    tls: bool,
    /// Reads and edits of cells under way at once (each holds a range's
    /// cells in memory).
    work: tokio::sync::Semaphore,
    /// The KiB of storage calls' bodies held at once.
    body_budget: tokio::sync::Semaphore,
    /// The KiB of replies held at once until their clients have taken
    /// them (cell reads, storage replies, events): a client that reads
    /// slowly, or not at all, holds only its share.
    replies: replies::Replies,
    /// Event streams that may still start.
    streams: Arc<tokio::sync::Semaphore>,
    /// Event streams by client address: at most a quarter of all each.
    streams_by_client: replies::PerClient,
    max_streams: u32,
    /// The largest storage call, in bytes.
    max_body: usize,
    /// Turns true at Ctrl-C or SIGTERM: event streams end, so the server's
    /// graceful shutdown does not wait on them forever.
    stop: tokio::sync::watch::Receiver<bool>,
}

/// What a server holds at most.
struct Limits {
    /// Sheets open.
    open_sheets: usize,
    /// Event streams followed.
    event_streams: u32,
    /// Bytes of one storage call.
    body: usize,
}

impl App {
    /// A server of `catalog` listening on `bound`.
    fn new(
        catalog: Catalog,
        tokens: guard::Tokens,
        bound: SocketAddr,
        allow_hosts: &[String],
        tls: bool,
        limits: Limits,
        stop: tokio::sync::watch::Receiver<bool>,
    ) -> Arc<App> {
        Arc::new(App {
            storage: StorageService::new(
                catalog.storage().logs.clone(),
                catalog.storage().blobs.clone(),
            ),
            sheets: sheets::Sheets::new(catalog.clone(), limits.open_sheets),
            catalog,
            sessions: session::Sessions::new(bound.port(), tls),
            guesses: guard::Guesses::default(),
            hosts: guard::Hosts::new(bound.ip(), allow_hosts),
            tls,
            work: tokio::sync::Semaphore::new(WORK),
            // Two calls of the largest size at once, in KiB.
            body_budget: tokio::sync::Semaphore::new(limits.body.div_ceil(1024) * 2),
            tokens,
            replies: replies::Replies::new(REPLY_BUDGET),
            streams: Arc::new(tokio::sync::Semaphore::new(limits.event_streams as usize)),
            streams_by_client: replies::PerClient::new((limits.event_streams as usize / 4).max(1)),
            max_streams: limits.event_streams,
            max_body: limits.body,
            stop,
        })
    }
}

pub(crate) async fn run(place: &Place, args: Serve) -> anyhow::Result<()> {
    let tokens = guard::Tokens::new(
        read_token("--token", args.token.as_deref(), args.token_file.as_deref())?,
        read_token(
            "--read-token",
            args.read_token.as_deref(),
            args.read_token_file.as_deref(),
        )?,
    )?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(listen::tls_config(cert, key)?),
        _ => None,
    };
    // Clients beyond loopback: those of a non-loopback address, and those
    // a name given with --allow-host brings (through a proxy on this host,
    // or a name that resolves here).
    let beyond = if !args.listen.ip().is_loopback() {
        Some(format!("listening on {} (beyond loopback)", args.listen))
    } else {
        args.allow_hosts
            .first()
            .map(|name| format!("answering for --allow-host {name} (clients beyond loopback)"))
    };
    if let Some(beyond) = beyond {
        if !tokens.required() {
            bail!(
                "{beyond} needs a token: --token, --token-file or INFINISHEET_TOKEN, which every \
                 request must then carry"
            );
        }
        if tokens.shortest() < SHORTEST_TOKEN {
            bail!(
                "{beyond} needs tokens of at least {SHORTEST_TOKEN} characters, which cannot be \
                 guessed: `openssl rand -hex 16` makes one"
            );
        }
        if tls.is_none() && !args.plain_http {
            bail!(
                "{beyond} needs TLS, so the token does not cross the network in the clear: \
                 --tls-cert PATH --tls-key PATH (or --plain-http behind a proxy that adds TLS)"
            );
        }
    }
    let catalog = place.catalog().await?;
    let stop = super::worker::stop_signal()?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let bound = listener.local_addr()?;
    let app = App::new(
        catalog,
        tokens,
        bound,
        &args.allow_hosts,
        tls.is_some(),
        Limits {
            open_sheets: args.max_open_sheets as usize,
            event_streams: args.max_event_streams,
            body: args.max_body_mib as usize * 1024 * 1024,
        },
        stop.clone(),
    );
    let router = routes::router(app.clone(), Duration::from_secs(args.request_timeout));
    let scheme = if tls.is_some() { "https" } else { "http" };
    outln!("listening on {scheme}://{bound}");
    // One line on stdout, for scripts; the rest is a note.
    if app.tokens.required() {
        let host = if bound.ip().is_unspecified() {
            "THIS-HOST".to_owned()
        } else {
            bound.ip().to_string()
        };
        super::note(&format!(
            "the page: {scheme}://{host}:{}/login (sign in with the token)",
            bound.port()
        ));
    }
    let janitor = tokio::spawn(sheets::close_idle(app.clone()));
    let served = listen::serve(listener, tls, router, args.max_connections as usize, stop).await;
    janitor.abort();
    // The snapshot jobs the server's edits asked for are done before it
    // exits.
    app.sheets.close_all().await;
    served
}

/// Reads and edits of cells a server does at once.
const WORK: usize = 4;

/// The bytes of replies held at once (see [`App::replies`]).
const REPLY_BUDGET: usize = 64 << 20;

/// The token an option gives, from the command line (or the environment)
/// or a file; an empty one is an error, never "no token".
fn read_token(
    option: &str,
    given: Option<&str>,
    file: Option<&std::path::Path>,
) -> anyhow::Result<Option<String>> {
    let (token, source) = match (given, file) {
        (Some(_), Some(_)) => bail!(
            "{option} (or its environment variable) and {option}-file both give a token: give one"
        ),
        (Some(token), None) => (token.to_owned(), option.to_owned()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {option}-file {}", path.display()))?;
            (
                text.lines().next().unwrap_or_default().trim().to_owned(),
                format!("{option}-file {}", path.display()),
            )
        }
        (None, None) => return Ok(None),
    };
    if token.is_empty() {
        bail!("{source} is empty: a server with an empty token would let anyone in");
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        bail!(
            "{source} holds a space, a control character or a character beyond ASCII, which \
             an Authorization header cannot carry"
        );
    }
    Ok(Some(token))
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
        let status = match &err {
            err if err.is_not_found() => StatusCode::NOT_FOUND,
            // The sheet's state, not the server, is in the way: it was
            // removed or replaced, or its metadata is missing or damaged
            // (as it is for a moment while another process makes or
            // removes it).
            CatalogError::Stale { .. }
            | CatalogError::BadMetadata { .. }
            | CatalogError::UnknownBackend { .. }
            | CatalogError::NotCatalogItem { .. } => StatusCode::CONFLICT,
            CatalogError::InvalidPath { .. } | CatalogError::NotASheet { .. } => {
                StatusCode::BAD_REQUEST
            }
            err if err.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError(status, super::one_line(&anyhow::Error::from(err)))
    }
}

fn bad_request(message: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.to_string())
}

fn failed(err: impl std::fmt::Display) -> ApiError {
    ApiError(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
}
