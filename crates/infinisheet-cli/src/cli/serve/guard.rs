//! Who is answered: the host a request names, the origin it comes from,
//! and the token (or session) it carries. Each check is a middleware that
//! runs before the route's handler, so a refused request's body is never
//! read.

use super::{App, Role};
use anyhow::bail;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// A host as a request names it: a name (lowercase; an IPv6 address
/// without its brackets) and maybe a port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Named {
    name: String,
    port: Option<u16>,
    /// Whether the name is one `--allow-host` added (a reverse proxy's,
    /// which may add TLS in front of this server).
    proxied: bool,
}

impl Named {
    /// `text` (`name`, `name:port`, `[v6]:port`) read strictly: no user
    /// part, a port of digits, nothing else.
    fn parse(text: &str) -> Option<Named> {
        let (name, port) = match text.strip_prefix('[') {
            Some(rest) => {
                let (ip, after) = rest.split_once(']')?;
                ip.parse::<std::net::Ipv6Addr>().ok()?;
                let port = match after {
                    "" => None,
                    _ => Some(after.strip_prefix(':')?),
                };
                (ip, port)
            }
            None => match text.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (text, None),
            },
        };
        let valid_name = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':'));
        let port = match port {
            None => None,
            Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
                Some(digits.parse::<u16>().ok()?)
            }
            Some(_) => return None,
        };
        valid_name.then(|| Named {
            name: name.to_ascii_lowercase(),
            port,
            proxied: false,
        })
    }
}

/// The host names and addresses the server answers for.
pub(super) struct Hosts {
    listen: IpAddr,
    names: Vec<String>,
}

impl Hosts {
    pub(super) fn new(listen: IpAddr, names: &[String]) -> Hosts {
        Hosts {
            listen: listen.to_canonical(),
            names: names.iter().map(|n| n.to_ascii_lowercase()).collect(),
        }
    }

    /// Whether a request naming `host` is answered: loopback names and
    /// addresses, the listen address (any address when it listens on
    /// all), and the names allowed. A rebound name (a page's own name
    /// resolving to this machine) is none of these.
    fn allows(&self, host: &mut Named) -> bool {
        if host.name == "localhost" {
            return true;
        }
        if let Ok(ip) = host.name.parse::<IpAddr>() {
            let ip = ip.to_canonical();
            return ip.is_loopback() || ip == self.listen || self.listen.is_unspecified();
        }
        host.proxied = self.names.contains(&host.name);
        host.proxied
    }
}

/// The host a request names, read strictly: its `Host` (one), and the
/// authority of its URL if it has one, which must name the same.
fn request_host(request: &Request) -> Result<Named, String> {
    let mut hosts = request.headers().get_all(header::HOST).iter();
    let header = hosts.next();
    if hosts.next().is_some() {
        return Err("the request names two hosts (Host twice)".to_owned());
    }
    let shown = |text: &str| text.chars().take(100).collect::<String>();
    let parse =
        |text: &str| Named::parse(text).ok_or_else(|| format!("{:?} is not a host", shown(text)));
    let header = match header {
        Some(value) => Some(parse(value.to_str().unwrap_or("(not text)"))?),
        None => None,
    };
    let url = match request.uri().authority() {
        Some(authority) => Some(parse(authority.as_str())?),
        None => None,
    };
    match (url, header) {
        (Some(url), Some(header)) if url != header => {
            Err("the request's URL and its Host name different hosts".to_owned())
        }
        (Some(host), _) | (None, Some(host)) => Ok(host),
        (None, None) => Err("the request names no host".to_owned()),
    }
}

/// A refusal: a status and `{"error": message}`, no data.
pub(super) fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    super::ApiError(status, message.into()).into_response()
}

/// Refuses requests for a host the server does not answer for (DNS
/// rebinding, a misdirected proxy); lets the others through with the
/// host they name in their extensions.
pub(super) async fn check_host(
    State(app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Response {
    match request_host(&request) {
        Ok(mut host) => {
            if !app.hosts.allows(&mut host) {
                return refuse(
                    StatusCode::MISDIRECTED_REQUEST,
                    format!(
                        "this server does not answer for host {:?}: only for loopback names \
                         and addresses and the address it listens on (`serve --allow-host \
                         NAME` adds a name)",
                        host.name
                    ),
                );
            }
            request.extensions_mut().insert(host);
            next.run(request).await
        }
        Err(why) => refuse(StatusCode::BAD_REQUEST, why),
    }
}

/// Refuses, before anything is read, a request of another origin's page:
/// every request that may change something (any method but GET and HEAD)
/// and every API request. Browsers say where a request comes from in
/// `Origin` (which must be this server: its scheme, the host the request
/// names and its port) or `Sec-Fetch-Site` (which must be `same-origin`,
/// or `none` for what a user typed); programs that send neither are not
/// pages.
pub(super) async fn same_origin(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    let guarded = !matches!(*request.method(), Method::GET | Method::HEAD)
        || request.uri().path().starts_with("/api/");
    if guarded {
        let Some(host) = request.extensions().get::<Named>() else {
            return refuse(StatusCode::BAD_REQUEST, "the request names no host");
        };
        if let Err(why) = check_origin(request.headers(), host, app.tls) {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("refused: {why}; this server answers only its own pages and programs"),
            );
        }
    }
    next.run(request).await
}

fn check_origin(headers: &HeaderMap, host: &Named, tls: bool) -> anyhow::Result<()> {
    let mut origins = headers.get_all(header::ORIGIN).iter();
    if let Some(origin) = origins.next() {
        let origin = origin.to_str().unwrap_or("(not text)");
        if origins.next().is_some() {
            bail!("a request naming two origins");
        }
        if origin == "null" {
            bail!("a request from an opaque origin (Origin: null)");
        }
        let own = if tls { "https" } else { "http" };
        let from = || format!("a request from another origin ({origin})");
        let Some((scheme, authority)) = origin.split_once("://") else {
            bail!(from());
        };
        let default = |scheme: &str| match scheme {
            "http" => Some(80),
            "https" => Some(443),
            _ => None,
        };
        // A proxy's name may put TLS in front of a plain server: its pages
        // come from https while this server serves http.
        if !(scheme == own || host.proxied && default(scheme).is_some()) {
            bail!(from());
        }
        let Some(named) = Named::parse(authority) else {
            bail!(from());
        };
        let host_default = if host.proxied {
            default(scheme)
        } else {
            default(own)
        };
        if named.name != host.name || named.port.or(default(scheme)) != host.port.or(host_default) {
            bail!(from());
        }
    } else {
        // Every value counts: a request naming two sites is refused.
        for site in headers.get_all("sec-fetch-site") {
            if !matches!(site.as_bytes(), b"same-origin" | b"none") {
                bail!(
                    "a {} request (Sec-Fetch-Site)",
                    site.to_str().unwrap_or("cross-site")
                );
            }
        }
    }
    Ok(())
}

/// The tokens of a server: one for full access, maybe one for reading.
pub(super) struct Tokens {
    write: Option<String>,
    read: Option<String>,
}

impl Tokens {
    pub(super) fn new(write: Option<String>, read: Option<String>) -> anyhow::Result<Tokens> {
        match (&write, &read) {
            (None, Some(_)) => bail!(
                "--read-token needs --token (the token that may write): without one, anyone \
                 could write"
            ),
            (Some(w), Some(r)) if w == r => {
                bail!("--read-token is the same as --token: give readers a token of their own")
            }
            _ => Ok(Tokens { write, read }),
        }
    }

    /// Whether requests need a token at all.
    pub(super) fn required(&self) -> bool {
        self.write.is_some()
    }

    /// Whether a token could be guessed by trying: one shorter than
    /// [`SHORTEST_TOKEN`](super::SHORTEST_TOKEN) characters (allowed on
    /// loopback only). Only then are wrong tokens counted against their
    /// address ([`Guesses`]): a longer one cannot be guessed at any rate a
    /// network allows, and a lockout would let one client lock out every
    /// other sharing its address (all of them, behind a proxy).
    pub(super) fn guessable(&self) -> bool {
        self.required() && self.shortest() < super::SHORTEST_TOKEN
    }

    /// The length of the shortest token.
    pub(super) fn shortest(&self) -> usize {
        [&self.write, &self.read]
            .into_iter()
            .flatten()
            .map(String::len)
            .min()
            .unwrap_or(0)
    }

    /// What `presented` may do, compared in constant time (for tokens of
    /// its length).
    pub(super) fn role_of(&self, presented: &str) -> Option<Role> {
        let matches = |token: &Option<String>| {
            token
                .as_ref()
                .is_some_and(|t| bool::from(t.as_bytes().ct_eq(presented.as_bytes())))
        };
        if matches(&self.write) {
            Some(Role::Writer)
        } else if matches(&self.read) {
            Some(Role::Reader)
        } else {
            None
        }
    }
}

/// How many wrong tokens one address may present in [`GUESS_WINDOW`]
/// before it is refused (429) without its tokens being looked at, until
/// the window has passed: guessing a short token is then hopeless. (Only
/// for tokens [`Tokens::guessable`] says can be guessed.)
const GUESSES: u32 = 20;

/// The window [`GUESSES`] counts in.
const GUESS_WINDOW: Duration = Duration::from_secs(60);

/// The wrong tokens presented lately, by client address.
#[derive(Default)]
pub(super) struct Guesses {
    wrong: Mutex<WrongTokens>,
}

/// Wrong tokens by address, and when addresses past their window were
/// last let go.
struct WrongTokens {
    by_address: HashMap<IpAddr, (u32, Instant)>,
    swept: Instant,
}

impl Default for WrongTokens {
    fn default() -> Self {
        WrongTokens {
            by_address: HashMap::new(),
            swept: Instant::now(),
        }
    }
}

impl Guesses {
    fn lock(&self) -> std::sync::MutexGuard<'_, WrongTokens> {
        self.wrong.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `client` may still present tokens.
    pub(super) fn allowed(&self, client: IpAddr) -> bool {
        self.lock()
            .by_address
            .get(&client)
            .is_none_or(|(wrong, since)| *wrong < GUESSES || since.elapsed() >= GUESS_WINDOW)
    }

    /// Counts a wrong token from `client`.
    pub(super) fn wrong(&self, client: IpAddr) {
        let mut state = self.lock();
        // Addresses past their window go at most once a second: a scan
        // per wrong token would grow with the addresses guessing.
        if state.by_address.len() >= 10_000 && state.swept.elapsed() >= Duration::from_secs(1) {
            state
                .by_address
                .retain(|_, (_, since)| since.elapsed() < GUESS_WINDOW);
            state.swept = Instant::now();
        }
        let entry = state
            .by_address
            .entry(client)
            .or_insert((0, Instant::now()));
        if entry.1.elapsed() >= GUESS_WINDOW {
            *entry = (0, Instant::now());
        }
        entry.0 += 1;
    }
}

/// The address a request came from (unspecified when unknown).
pub(super) fn client_of(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::from([0u8; 4]), |info| info.0.ip())
}

/// The refusal of too many wrong tokens.
pub(super) fn too_many_guesses() -> Response {
    refuse(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "too many wrong tokens from this address: try again in a minute (at most {GUESSES} \
             a minute)"
        ),
    )
}

/// Why a request's credentials get it nowhere.
enum Refusal {
    /// None, or wrong ones (401).
    Unauthorized(&'static str),
    /// Too many wrong tokens from its address lately (429).
    Guessing,
}

impl Refusal {
    fn response(self) -> Response {
        match self {
            Refusal::Unauthorized(why) => refuse(StatusCode::UNAUTHORIZED, why),
            Refusal::Guessing => too_many_guesses(),
        }
    }
}

/// What the request's credentials allow: a bearer token, else a session
/// cookie; a server without a token lets everyone write (it answers only
/// loopback, this host and its own pages).
fn role(app: &App, request: &Request) -> Result<Role, Refusal> {
    if !app.tokens.required() {
        return Ok(Role::Writer);
    }
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return app
            .sessions
            .role(request.headers())
            .ok_or(Refusal::Unauthorized(
                "this server needs its token: Authorization: Bearer TOKEN (or sign in at /login)",
            ));
    };
    // The scheme's name is case-insensitive (RFC 9110).
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| v.split_at_checked(7))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer "))
        .map(|(_, token)| token);
    let Some(presented) = presented else {
        return Err(Refusal::Unauthorized(
            "this server takes its token as `Authorization: Bearer TOKEN`",
        ));
    };
    let client = client_of(request);
    let counted = app.tokens.guessable();
    if counted && !app.guesses.allowed(client) {
        return Err(Refusal::Guessing);
    }
    app.tokens.role_of(presented.trim()).ok_or_else(|| {
        if counted {
            app.guesses.wrong(client);
        }
        Refusal::Unauthorized("this server needs its token: that is not it")
    })
}

/// Whether a request rode on a session cookie (the page, signed in).
#[derive(Clone, Copy, Debug)]
pub(super) struct Session(pub(super) bool);

/// Lets a request with credentials through to its route, with its
/// [`Role`] (and whether it came with a [`Session`]) in its extensions;
/// refuses the others (401) before their bodies are read.
pub(super) async fn authorize(
    State(app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Response {
    match role(&app, &request) {
        Ok(role) => {
            let session =
                app.tokens.required() && request.headers().get(header::AUTHORIZATION).is_none();
            request.extensions_mut().insert(role);
            request.extensions_mut().insert(Session(session));
            next.run(request).await
        }
        Err(refusal) => refusal.response(),
    }
}

/// Lets a request that may change something (any method but GET and
/// HEAD) through only for a writer: 403 for a read-only token's.
pub(super) async fn require_writer_for_writes(request: Request, next: Next) -> Response {
    let reads = matches!(*request.method(), Method::GET | Method::HEAD);
    match request.extensions().get::<Role>() {
        Some(Role::Writer) => next.run(request).await,
        Some(Role::Reader) if reads => next.run(request).await,
        _ => refuse(
            StatusCode::FORBIDDEN,
            "this server's read-only token cannot change sheets",
        ),
    }
}

/// Headers on every answer: nothing is framed by another page, sniffed
/// into another type or cached, and no other site is told where a link
/// came from. (Not `no-referrer`: under it a browser sends `Origin: null`
/// with the page's own form posts, which the origin check refuses.)
pub(super) async fn protective_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::CACHE_CONTROL, "no-store"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; \
             form-action 'self'; base-uri 'none'",
        ),
    ] {
        headers
            .entry(name)
            .or_insert(axum::http::HeaderValue::from_static(value));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `hosts` answers a request with `Host: text`.
    fn answers(hosts: &Hosts, text: &str) -> bool {
        Named::parse(text).is_some_and(|mut named| hosts.allows(&mut named))
    }

    #[test]
    fn hosts_are_loopback_the_listen_address_or_allowed() {
        let hosts = Hosts::new([127, 0, 0, 1].into(), &["Sheets.Example".into()]);
        for ok in [
            "127.0.0.1:8080",
            "127.9.9.9",
            "localhost:1",
            "LOCALHOST",
            "[::1]:8080",
            "[::ffff:127.0.0.1]",
            "sheets.example",
            "sheets.example:443",
        ] {
            assert!(answers(&hosts, ok), "{ok}");
        }
        for no in [
            "evil.example:8080",
            "10.0.0.5:8080",
            "localhost.evil.example",
            "[fe80::1]",
            "",
            "127.0.0.1:80@evil.example",
            "localhost:evil.example",
            "[::1]evil.example",
            "127.0.0.1:",
            "127.0.0.1:99999",
            "127.0.0.1:8080:1",
        ] {
            assert!(!answers(&hosts, no), "{no}");
        }
        let all = Hosts::new([0, 0, 0, 0].into(), &[]);
        assert!(answers(&all, "10.0.0.5:8080") && !answers(&all, "evil.example"));
    }

    #[test]
    fn origins_must_be_the_host() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (k, v) in pairs {
                headers.append(*k, axum::http::HeaderValue::from_static(v));
            }
            headers
        };
        let hosts = Hosts::new([127, 0, 0, 1].into(), &["sheets.example".into()]);
        let host = |text: &str| {
            let mut named = Named::parse(text).unwrap_or_else(|| panic!("{text}"));
            hosts.allows(&mut named);
            named
        };
        let direct = host("127.0.0.1:8080");
        assert!(check_origin(&with(&[]), &direct, false).is_ok());
        assert!(
            check_origin(
                &with(&[("origin", "http://127.0.0.1:8080")]),
                &direct,
                false
            )
            .is_ok()
        );
        assert!(check_origin(&with(&[("sec-fetch-site", "same-origin")]), &direct, false).is_ok());
        assert!(check_origin(&with(&[("sec-fetch-site", "none")]), &direct, false).is_ok());
        assert!(
            check_origin(
                &with(&[
                    ("sec-fetch-site", "same-origin"),
                    ("sec-fetch-site", "cross-site")
                ]),
                &direct,
                false
            )
            .is_err(),
            "a second Sec-Fetch-Site counts"
        );
        for bad in [
            &[("origin", "http://127.0.0.1:9999")][..],
            &[("origin", "http://evil.example")],
            &[("origin", "null")],
            &[("origin", "https://127.0.0.1:8080")],
            &[("origin", "http://127.0.0.1:8080x")],
            &[("origin", "http://user@127.0.0.1:8080")],
            &[
                ("origin", "http://127.0.0.1:8080"),
                ("origin", "http://evil.example"),
            ],
            &[("sec-fetch-site", "same-site")],
            &[("sec-fetch-site", "cross-site")],
        ] {
            assert!(check_origin(&with(bad), &direct, false).is_err(), "{bad:?}");
        }
        // Over TLS, the page's origin is https.
        assert!(
            check_origin(
                &with(&[("origin", "https://127.0.0.1:8080")]),
                &direct,
                true
            )
            .is_ok()
        );
        assert!(
            check_origin(&with(&[("origin", "http://127.0.0.1:8080")]), &direct, true).is_err()
        );
        // Behind a proxy that adds TLS: the page's origin is https, on
        // the default port the Host leaves out.
        let proxied = host("sheets.example");
        assert!(
            check_origin(
                &with(&[("origin", "https://sheets.example")]),
                &proxied,
                false
            )
            .is_ok()
        );
        assert!(
            check_origin(
                &with(&[("origin", "https://sheets.example:8443")]),
                &proxied,
                false
            )
            .is_err()
        );
    }

    #[test]
    fn tokens_are_compared_whole() {
        let tokens = Tokens::new(Some("sesame".into()), Some("viewer".into())).ok();
        let tokens = tokens.as_ref();
        assert_eq!(tokens.and_then(|t| t.role_of("sesame")), Some(Role::Writer));
        assert_eq!(tokens.and_then(|t| t.role_of("viewer")), Some(Role::Reader));
        for wrong in ["", "sesam", "sesame!", "SESAME"] {
            assert_eq!(tokens.and_then(|t| t.role_of(wrong)), None, "{wrong}");
        }
        assert!(Tokens::new(None, Some("r".into())).is_err());
        assert!(Tokens::new(Some("same".into()), Some("same".into())).is_err());
    }
}
