//! The access log: one line per request (method, path, status, duration,
//! client) under the target `infinisheet::access`, at info, and at warn
//! for refusals (401, 403, 421); `--log-format json` makes each a JSON
//! object for a log shipper.

use axum::extract::{ConnectInfo, Request};
use axum::middleware::Next;
use axum::response::Response;
use std::net::SocketAddr;
use std::time::Instant;

/// Logs `request` once it is answered.
pub(super) async fn log(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = redacted(request.uri());
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or_else(|| "-".to_owned(), |info| info.0.to_string());
    let response = next.run(request).await;
    let status = response.status().as_u16();
    // Milliseconds to a tenth.
    let ms = (started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0;
    if matches!(status, 401 | 403 | 421) {
        tracing::warn!(target: "infinisheet::access", %method, %path, status, ms, %client);
    } else {
        tracing::info!(target: "infinisheet::access", %method, %path, status, ms, %client);
    }
    response
}

/// The path and query of `uri` as logged: any `token` parameter's value
/// hidden, should a client send one.
fn redacted(uri: &axum::http::Uri) -> String {
    let path = uri.path();
    let Some(query) = uri.query() else {
        return path.to_owned();
    };
    let parts: Vec<String> = query
        .split('&')
        .map(|part| match part.split_once('=') {
            Some((name, _)) if name.eq_ignore_ascii_case("token") => format!("{name}=REDACTED"),
            _ => part.to_owned(),
        })
        .collect();
    format!("{path}?{}", parts.join("&"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn tokens_never_reach_the_log() {
        let uri: axum::http::Uri = "/api/cells?sheet=a&token=sesame&TOKEN=x"
            .parse()
            .unwrap_or_default();
        assert_eq!(
            super::redacted(&uri),
            "/api/cells?sheet=a&token=REDACTED&TOKEN=REDACTED"
        );
    }
}
