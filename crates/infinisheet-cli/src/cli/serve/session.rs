//! Sessions for the page: the token is typed once into the sign-in form
//! at `/login` (a same-origin POST) and exchanged for a random session id
//! in an HttpOnly, SameSite=Strict cookie, so it never rides in a URL (a
//! browser's history, a proxy's log) and no script can read it.

use super::guard::refuse;
use super::{App, Role};
use axum::Form;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How long a session lasts.
const LIFETIME: Duration = Duration::from_secs(12 * 60 * 60);

/// The most sessions kept: past it, the one nearest its end goes.
const MOST: usize = 4096;

/// The live sessions of a server.
pub(super) struct Sessions {
    /// The cookie's name: with the port in it, as cookies are shared by
    /// every port of a host.
    cookie: String,
    /// Whether cookies are for HTTPS only.
    secure: bool,
    live: Mutex<HashMap<String, (Role, Instant)>>,
}

impl Sessions {
    pub(super) fn new(port: u16, secure: bool) -> Sessions {
        Sessions {
            cookie: format!("infinisheet_session_{port}"),
            secure,
            live: Mutex::default(),
        }
    }

    /// The role of the session whose cookie `headers` carry, if it is live.
    pub(super) fn role(&self, headers: &HeaderMap) -> Option<Role> {
        let id = self.id_in(headers)?;
        let live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        let (role, ends) = live.get(id)?;
        (Instant::now() < *ends).then_some(*role)
    }

    fn id_in<'h>(&self, headers: &'h HeaderMap) -> Option<&'h str> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .find_map(|pair| {
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
        let mut live = self.live.lock().unwrap_or_else(PoisonError::into_inner);
        live.retain(|_, (_, ends)| *ends > now);
        if live.len() >= MOST
            && let Some(oldest) = live
                .iter()
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

    /// Ends the session `headers` carry; the `Set-Cookie` value that
    /// clears it.
    fn end(&self, headers: &HeaderMap) -> String {
        if let Some(id) = self.id_in(headers) {
            self.live
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(id);
        }
        format!(
            "{}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0",
            self.cookie
        )
    }
}

/// The sign-in page, with a line saying why it is shown again.
fn page(note: &str) -> Html<String> {
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Infinisheet: sign in</title>
<style>body {{ font: 14px system-ui, sans-serif; margin: 3em auto; max-width: 24em; }}
input {{ font: inherit; width: 100%; margin: 0.5em 0; }} .note {{ color: #b00; }}</style></head>
<body><h1>Infinisheet</h1>
<form method="post" action="/login">
<label for="token">This server's token</label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus required>
<button type="submit">Sign in</button></form>
<p class="note">{note}</p></body></html>"#
    ))
}

/// `GET /login`: the sign-in form (the page itself on a server without a
/// token).
pub(super) async fn form(State(app): State<Arc<App>>) -> Response {
    if !app.tokens.required() {
        return Redirect::to("/").into_response();
    }
    page("").into_response()
}

#[derive(serde::Deserialize)]
pub(super) struct SignIn {
    token: String,
}

/// `POST /login` (form-encoded, from this server's own form): a session
/// for the role of the token typed, and on to the page; a wrong token
/// gets the form again.
pub(super) async fn sign_in(State(app): State<Arc<App>>, Form(form): Form<SignIn>) -> Response {
    let Some(role) = app.tokens.role_of(form.token.trim()) else {
        tracing::warn!(target: "infinisheet::access", "sign-in with a wrong token");
        return (
            StatusCode::UNAUTHORIZED,
            page("That is not this server's token."),
        )
            .into_response();
    };
    match app.sessions.start(role) {
        Ok(cookie) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_owned()),
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
