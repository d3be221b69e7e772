//! Sessions for the page: the token is typed once into the sign-in form
//! at `/login` (a same-origin POST) and exchanged for a random session id
//! in an HttpOnly, SameSite=Strict cookie (`__Host-` and Secure over
//! TLS), so it never rides in a URL (a browser's history, a proxy's log)
//! and no script can read it.

use super::guard::{client_of, refuse, too_many_guesses};
use super::{App, Role};
use axum::Form;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a session lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// The most sessions kept of each role: past it, the one of that role
/// nearest its end goes (so a reader signing in again and again can end
/// only readers' sessions).
const MOST: usize = 2048;

/// The live sessions of a server.
pub(super) struct Sessions {
    /// The cookie's name: with the port in it, as cookies are shared by
    /// every port of a host; `__Host-` over TLS, which no other origin
    /// can set.
    cookie: String,
    /// Whether cookies are for HTTPS only.
    secure: bool,
    live: Mutex<HashMap<String, (Role, Instant)>>,
}

impl Sessions {
    pub(super) fn new(port: u16, secure: bool) -> Sessions {
        Sessions {
            cookie: if secure {
                format!("__Host-infinisheet_session_{port}")
            } else {
                format!("infinisheet_session_{port}")
            },
            secure,
            live: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Role, Instant)>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The role of a live session whose cookie `headers` carry (any of
    /// them: a page of another port of this host may have planted a decoy
    /// of the same name).
    pub(super) fn role(&self, headers: &HeaderMap) -> Option<Role> {
        let live = self.lock();
        // Of several session cookies (one planted from another port of
        // this host, say), the one that may do most: a planted reader's
        // session never lowers a writer's page to reading.
        self.ids_in(headers)
            .filter_map(|id| {
                let (role, ends) = live.get(id)?;
                (Instant::now() < *ends).then_some(*role)
            })
            .max()
    }

    fn ids_in<'h>(&self, headers: &'h HeaderMap) -> impl Iterator<Item = &'h str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| {
                let (name, value) = pair.trim().split_once('=')?;
                (name == self.cookie).then_some(value)
            })
    }

    /// Starts a session of `role`: the `Set-Cookie` value.
    fn start(&self, role: Role) -> Result<String, getrandom::Error> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes)?;
        let id: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let now = Instant::now();
        let mut live = self.lock();
        live.retain(|_, (_, ends)| *ends > now);
        if live.values().filter(|(r, _)| *r == role).count() >= MOST
            && let Some(oldest) = live
                .iter()
                .filter(|(_, (r, _))| *r == role)
                .min_by_key(|(_, (_, ends))| *ends)
                .map(|(id, _)| id.clone())
        {
            live.remove(&oldest);
        }
        live.insert(id.clone(), (role, now + LIFETIME));
        Ok(format!(
            "{}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
            self.cookie,
            LIFETIME.as_secs(),
            if self.secure { "; Secure" } else { "" }
        ))
    }

    /// Ends the sessions `headers` carry; the `Set-Cookie` value that
    /// clears the cookie.
    fn end(&self, headers: &HeaderMap) -> String {
        let ids: Vec<String> = self.ids_in(headers).map(str::to_owned).collect();
        let mut live = self.lock();
        for id in ids {
            live.remove(&id);
        }
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
            self.cookie,
            if self.secure { "; Secure" } else { "" }
        )
    }
}

/// Where to go after signing in: a path of this server (`/?sheet=a`),
/// never another site (`//evil.example`, `/\evil.example`, `https://…`).
fn local_path(next: Option<&str>) -> &str {
    match next {
        Some(path)
            if path.starts_with('/')
                && !path.starts_with("//")
                && !path.starts_with("/\\")
                && path.len() <= 2048
                && !path.chars().any(char::is_control) =>
        {
            path
        }
        _ => "/",
    }
}

/// `text` safe inside an HTML attribute or element.
fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The sign-in page, going on to `next`, with a line saying why it is
/// shown again.
fn page(next: &str, note: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Infinisheet: sign in</title>
<style>body {{ font: 14px system-ui, sans-serif; margin: 3em auto; max-width: 24em; }}
input {{ font: inherit; width: 100%; margin: 0.5em 0; }} .note {{ color: #b00; }}</style></head>
<body><h1>Infinisheet</h1>
<form method="post" action="/login">
<label for="token">This server's token</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
<input type="hidden" name="next" value="{}">
<button type="submit">Sign in</button></form>
<p class="note">{}</p></body></html>"#,
        escaped(local_path(Some(next))),
        escaped(note)
    ))
}

#[derive(serde::Deserialize)]
pub(super) struct Next {
    next: Option<String>,
}

/// `GET /login?next=PATH`: the sign-in form (the page itself on a server
/// without a token).
pub(super) async fn form(State(app): State<Arc<App>>, Query(query): Query<Next>) -> Response {
    let next = local_path(query.next.as_deref());
    if !app.tokens.required() {
        return Redirect::to(next).into_response();
    }
    page(next, "").into_response()
}

#[derive(serde::Deserialize)]
pub(super) struct SignIn {
    token: String,
    next: Option<String>,
}

/// `POST /login` (form-encoded, from this server's own form): a session
/// for the role of the token typed, and on to `next` (the page); a wrong
/// token gets the form again, and too many from one address a pause.
pub(super) async fn sign_in(State(app): State<Arc<App>>, request: Request) -> Response {
    let client = client_of(&request);
    let Form(form) = match Form::<SignIn>::from_request(request, &()).await {
        Ok(form) => form,
        Err(rejection) => return refuse(rejection.status(), rejection.body_text()),
    };
    let next = local_path(form.next.as_deref());
    let counted = app.tokens.guessable();
    if counted && !app.guesses.allowed(client) {
        return too_many_guesses();
    }
    let Some(role) = app.tokens.role_of(form.token.trim()) else {
        if counted {
            app.guesses.wrong(client);
        }
        return (
            StatusCode::UNAUTHORIZED,
            page(next, "That is not this server's token."),
        )
            .into_response();
    };
    match app.sessions.start(role) {
        Ok(cookie) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, next.to_owned()),
                (header::SET_COOKIE, cookie),
            ],
        )
            .into_response(),
        Err(err) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot make a session id: {err}"),
        ),
    }
}

/// `POST /logout`: ends the session, and back to the form.
pub(super) async fn sign_out(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    let cookie = app.sessions.end(&headers);
    (
        StatusCode::SEE_OTHER,
        [
            (header::LOCATION, "/login".to_owned()),
            (header::SET_COOKIE, cookie),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_is_a_path_of_this_server() {
        for (asked, went) in [
            (Some("/?sheet=a"), "/?sheet=a"),
            (Some("//evil.example"), "/"),
            (Some("/\\evil.example"), "/"),
            (Some("https://evil.example"), "/"),
            (Some("evil"), "/"),
            (None, "/"),
        ] {
            assert_eq!(local_path(asked), went, "{asked:?}");
        }
        assert_eq!(
            escaped(r#""><script>x</script>"#),
            "&quot;&gt;&lt;script&gt;x&lt;/script&gt;"
        );
    }

    #[test]
    fn a_reader_signing_in_again_and_again_never_ends_a_writers_session() {
        let sessions = Sessions::new(1, false);
        let writer = sessions.start(Role::Writer).unwrap_or_default();
        for _ in 0..MOST + 10 {
            let _ = sessions.start(Role::Reader);
        }
        let mut headers = HeaderMap::new();
        let cookie = writer.split(';').next().unwrap_or_default().to_owned();
        // A decoy of the same name first, as another port could plant.
        let both = format!("infinisheet_session_1=decoy; {cookie}");
        headers.insert(
            header::COOKIE,
            both.parse()
                .unwrap_or(axum::http::HeaderValue::from_static("")),
        );
        assert_eq!(sessions.role(&headers), Some(Role::Writer));
    }
}
