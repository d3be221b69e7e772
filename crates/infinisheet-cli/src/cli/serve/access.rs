//! The access log: one line per request (method, path, status, duration,
//! client, host) under the target `infinisheet::access`, at info, and at
//! warn for refusals (401, 403, 421, 429); `--log-format json` makes each
//! a JSON object for a log shipper.

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;
use std::time::Instant;

/// Logs `request` once it is answered.
pub(super) async fn log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = shown_uri(request.uri());
    let host = request.headers().get(axum::http::header::HOST).map_or_else(
        || "-".to_owned(),
        |h| escaped(&String::from_utf8_lossy(h.as_bytes())),
    );
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "-".to_owned(), |info| info.0.to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    // Milliseconds to a tenth.
    let ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    if matches!(status, 401 | 403 | 421 | 429) {
        tracing::warn!(target: "infinisheet::access", %method, %path, status, ms, %client, %host);
    } else {
        tracing::info!(target: "infinisheet::access", %method, %path, status, ms, %client, %host);
    }
    response
}

/// The query parameters whose values the log shows; every other value
/// (a token, whatever a client sends) is hidden, however its name is
/// spelled or encoded.
const SHOWN: [&str; 4] = ["sheet", "range", "at", "from"];

/// The path and query of `uri` as logged: values of parameters other
/// than [`SHOWN`] hidden, and nothing that could move a terminal's
/// cursor or fake a line.
fn shown_uri(uri: &axum::http::Uri) -> String {
    let path = escaped(uri.path());
    let Some(query) = uri.query() else {
        return path;
    };
    let parts: Vec<String> = query
        // As the server's query parser splits: on `&` only.
        .split('&')
        .map(|part| match part.split_once('=') {
            // Names as the server reads them (`%73heet` is `sheet`), so
            // an encoded name hides no sheet from the log.
            Some((name, value)) => {
                let name = decoded(name);
                if SHOWN.contains(&name.as_str()) {
                    format!("{}={}", escaped(&name), escaped(&decoded(value)))
                } else {
                    format!("{}=…", escaped(&name))
                }
            }
            None => escaped(part),
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

/// A query parameter's name or value as a form decoder reads it (`+` a
/// space, `%XX` a byte).
fn decoded(name: &str) -> String {
    let spaced = name.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// `text` with control characters and everything beyond ASCII written as
/// escapes.
fn escaped(text: &str) -> String {
    text.chars()
        .flat_map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                vec![c]
            } else {
                c.escape_unicode().collect()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_never_reach_the_log() {
        for (asked, logged) in [
            (
                "/api/cells?sheet=a&token=sesame&TOKEN=x",
                "/api/cells?sheet=a&token=…&TOKEN=…",
            ),
            ("/x?%74oken=sesame&tok%65n=sesame", "/x?token=…&token=…"),
            ("/x?a=1;token=sesame&+token=sesame", "/x?a=…& token=…"),
            (
                "/api/cells?x=1;sheet=decoy&sheet=%61",
                "/api/cells?x=…&sheet=a",
            ),
            (
                "/api/cells?%73heet=big&r%61nge=A1",
                "/api/cells?sheet=big&range=A1",
            ),
            ("/x?sesame", "/x?sesame"),
            ("/api/events?sheet=b&from=3", "/api/events?sheet=b&from=3"),
        ] {
            let uri: axum::http::Uri = asked.parse().unwrap_or_default();
            assert_eq!(super::shown_uri(&uri), logged, "{asked}");
        }
        assert_eq!(super::escaped("a\u{202e}b\nc"), "a\\u{202e}b\\u{a}c");
    }
}
