//! Who is answered: the host a request names, the origin it comes from,
//! and the token (or session) it carries. Each check is a middleware that
//! runs before the route's handler, so a refused request's body is never
//! read.

use super::{App, Role};
use anyhow::bail;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::net::IpAddr;
use std::sync::Arc;
use subtle::ConstantTimeEq;

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

    /// Whether a request naming `authority` (`Host`: a name or address and
    /// maybe a port) is answered: loopback names and addresses, the listen
    /// address (any address when it listens on all), and the names allowed.
    /// A rebound name (a page's own name resolving to this machine) is
    /// none of these.
    pub(super) fn allows(&self, authority: &str) -> bool {
        let name = split_authority(authority).0.to_ascii_lowercase();
        if name == "localhost" {
            return true;
        }
        if let Ok(ip) = name.parse::<IpAddr>() {
            let ip = ip.to_canonical();
            return ip.is_loopback() || ip == self.listen || self.listen.is_unspecified();
        }
        self.names.contains(&name)
    }
}

/// `authority`'s name (an IPv6 address without its brackets) and port.
fn split_authority(authority: &str) -> (&str, Option<&str>) {
    if let Some(rest) = authority.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((ip, after)) => (ip, after.strip_prefix(':')),
            None => (authority, None),
        };
    }
    match authority.rsplit_once(':') {
        Some((name, port)) if !name.contains(':') => (name, Some(port)),
        _ => (authority, None),
    }
}

/// The host a request names: its URI's authority, else its `Host`.
fn request_host(request: &Request) -> Option<&str> {
    request
        .uri()
        .authority()
        .map(|a| a.as_str())
        .or_else(|| request.headers().get(header::HOST)?.to_str().ok())
}

/// A refusal: a status and `{"error": message}`, no data.
pub(super) fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    super::ApiError(status, message.into()).into_response()
}

/// Refuses requests for a host the server does not answer for (DNS
/// rebinding, a misdirected proxy).
pub(super) async fn check_host(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Response {
    match request_host(&request) {
        Some(host) if app.hosts.allows(host) => next.run(request).await,
        Some(host) => {
            let shown: String = host.chars().take(100).collect();
            refuse(
                StatusCode::MISDIRECTED_REQUEST,
                format!(
                    "this server does not answer for host {shown:?}: only for loopback names \
                     and addresses and the address it listens on (`serve --allow-host NAME` \
                     adds a name)"
                ),
            )
        }
        None => refuse(StatusCode::BAD_REQUEST, "the request names no host"),
    }
}

/// Refuses, before anything is read, a request of another origin's page:
/// every request that may change something (any method but GET and HEAD)
/// and every API request. Browsers say where a request comes from in
/// `Origin` (which must be this server, as the request's host names it)
/// or `Sec-Fetch-Site` (which must be `same-origin`, or `none` for what a
/// user typed); programs that send neither are not pages.
pub(super) async fn same_origin(request: Request, next: Next) -> Response {
    let guarded = !matches!(*request.method(), Method::GET | Method::HEAD)
        || request.uri().path().starts_with("/api/");
    if guarded {
        let host = request_host(&request).unwrap_or_default();
        if let Err(why) = check_origin(request.headers(), host) {
            return refuse(
                StatusCode::FORBIDDEN,
                format!("refused: {why}; this server answers only its own pages and programs"),
            );
        }
    }
    next.run(request).await
}

fn check_origin(headers: &HeaderMap, host: &str) -> anyhow::Result<()> {
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("(not text)");
        if origin == "null" {
            bail!("a request from an opaque origin (Origin: null)");
        }
        let Some((scheme, authority)) = origin.split_once("://") else {
            bail!("a request from origin {origin:?}, which is not one");
        };
        let default = match scheme {
            "http" => "80",
            "https" => "443",
            _ => bail!("a request from origin {origin:?}"),
        };
        let (name, port) = split_authority(authority);
        let (host_name, host_port) = split_authority(host);
        if !(name.eq_ignore_ascii_case(host_name)
            && port.unwrap_or(default) == host_port.unwrap_or(default))
        {
            bail!("a request from another origin ({origin})");
        }
    } else if let Some(site) = headers.get("sec-fetch-site")
        && !matches!(site.as_bytes(), b"same-origin" | b"none")
    {
        bail!(
            "a {} request (Sec-Fetch-Site)",
            site.to_str().unwrap_or("cross-site")
        );
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

/// What the request's credentials allow: a bearer token, else a session
/// cookie; a server without a token lets everyone write (it answers only
/// loopback, this host and its own pages).
fn role(app: &App, headers: &HeaderMap) -> Result<Role, &'static str> {
    if !app.tokens.required() {
        return Ok(Role::Writer);
    }
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let Some(presented) = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")) else {
            return Err("this server takes its token as `Authorization: Bearer TOKEN`");
        };
        return app
            .tokens
            .role_of(presented.trim())
            .ok_or("this server needs its token: that is not it");
    }
    app.sessions
        .role(headers)
        .ok_or("this server needs its token: Authorization: Bearer TOKEN (or sign in at /login)")
}

/// Lets a request with credentials through to its route, with its
/// [`Role`] in its extensions; refuses the others (401) before their
/// bodies are read.
pub(super) async fn authorize(
    State(app): State<Arc<App>>,
    mut request: Request,
    next: Next,
) -> Response {
    match role(&app, request.headers()) {
        Ok(role) => {
            request.extensions_mut().insert(role);
            next.run(request).await
        }
        Err(why) => refuse(StatusCode::UNAUTHORIZED, why),
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

    #[test]
    fn hosts_are_loopback_the_listen_address_or_allowed() {
        let hosts = Hosts::new(
            "127.0.0.1".parse().unwrap_or(IpAddr::from([0; 4])),
            &["Sheets.Example".into()],
        );
        for ok in [
            "127.0.0.1:8080",
            "127.9.9.9",
            "localhost:1",
            "LOCALHOST",
            "[::1]:8080",
            "sheets.example",
            "sheets.example:443",
        ] {
            assert!(hosts.allows(ok), "{ok}");
        }
        for no in [
            "evil.example:8080",
            "10.0.0.5:8080",
            "localhost.evil.example",
            "[fe80::1]",
            "",
        ] {
            assert!(!hosts.allows(no), "{no}");
        }
        let all = Hosts::new("0.0.0.0".parse().unwrap_or(IpAddr::from([0; 4])), &[]);
        assert!(all.allows("10.0.0.5:8080") && !all.allows("evil.example"));
    }

    #[test]
    fn origins_must_be_the_host() {
        let with = |pairs: &[(&'static str, &'static str)]| {
            let mut headers = HeaderMap::new();
            for (k, v) in pairs {
                headers.insert(*k, axum::http::HeaderValue::from_static(v));
            }
            headers
        };
        let host = "127.0.0.1:8080";
        assert!(check_origin(&with(&[]), host).is_ok());
        assert!(check_origin(&with(&[("origin", "http://127.0.0.1:8080")]), host).is_ok());
        assert!(check_origin(&with(&[("sec-fetch-site", "same-origin")]), host).is_ok());
        assert!(check_origin(&with(&[("sec-fetch-site", "none")]), host).is_ok());
        for bad in [
            &[("origin", "http://127.0.0.1:9999")][..],
            &[("origin", "http://evil.example")],
            &[("origin", "null")],
            &[("origin", "https://127.0.0.1:8080x")],
            &[("sec-fetch-site", "same-site")],
            &[("sec-fetch-site", "cross-site")],
        ] {
            assert!(check_origin(&with(bad), host).is_err(), "{bad:?}");
        }
        // Behind a proxy that adds TLS: the page's origin is https, on
        // the default port the Host leaves out.
        assert!(
            check_origin(
                &with(&[("origin", "https://sheets.example")]),
                "sheets.example"
            )
            .is_ok()
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
