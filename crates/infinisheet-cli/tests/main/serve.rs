//! `infinisheet serve`, through its HTTP API and as an attacker meets it.

use crate::common::{bare, cli, fails, lines_of, ok};
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

/// A running `infinisheet serve`, stopped (SIGTERM) when dropped.
struct Server {
    child: std::process::Child,
    addr: String,
    /// What it writes on stderr (its access log), line by line.
    log: std::sync::mpsc::Receiver<String>,
}

/// An event stream's lines, and its connection, shut when dropped (the
/// thread reading the lines would hold it open).
struct Events {
    lines: std::sync::mpsc::Receiver<String>,
    socket: std::net::TcpStream,
}

impl Drop for Events {
    fn drop(&mut self) {
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
    }
}

/// An answer: its status, its head (status line and headers) and body.
struct Reply {
    status: u16,
    head: String,
    body: String,
}

impl Server {
    fn start(home: &Path, extra: &[&str]) -> Server {
        Server::start_with(home, extra, &[])
    }

    /// With `envs` set for the server.
    fn start_with(home: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Server {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("infinisheet"))
            .arg("--home")
            .arg(home)
            .arg("serve")
            .args(
                (!extra.contains(&"--listen"))
                    .then_some(["--listen", "127.0.0.1:0"])
                    .into_iter()
                    .flatten(),
            )
            .args(extra)
            .env_remove("INFINISHEET_HOME")
            .env_remove("INFINISHEET_TOKEN")
            .env_remove("INFINISHEET_READ_TOKEN")
            .env_remove("RUST_LOG")
            .envs(envs.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let rx = lines_of(child.stdout.take().unwrap());
        let log = lines_of(child.stderr.take().unwrap());
        let line = rx.recv_timeout(Duration::from_secs(60)).unwrap();
        let addr = line
            .strip_prefix("listening on http://")
            .or_else(|| line.strip_prefix("listening on https://"))
            .unwrap_or_else(|| panic!("serve said {line:?}"))
            .to_owned();
        Server { child, addr, log }
    }

    /// One HTTP/1.1 request naming the server's own address as its host.
    fn call(&self, method: &str, path: &str, headers: &[&str], body: &[u8]) -> Reply {
        self.call_as(&self.addr, method, path, headers, body)
    }

    /// One HTTP/1.1 request naming `host`.
    fn call_as(
        &self,
        host: &str,
        method: &str,
        path: &str,
        headers: &[&str],
        body: &[u8],
    ) -> Reply {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        bytes.extend_from_slice(body);
        stream.write_all(&bytes).unwrap();
        let mut reply = Vec::new();
        stream.read_to_end(&mut reply).unwrap();
        parse_reply(&reply)
    }

    /// [`call`](Server::call) with a text body: the status and the body.
    fn request(&self, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
        let reply = self.call(method, path, headers, body.as_bytes());
        (reply.status, reply.body)
    }

    fn json(&self, path: &str) -> Value {
        self.json_with(path, &[])
    }

    fn json_with(&self, path: &str, headers: &[&str]) -> Value {
        let (status, body) = self.request("GET", path, headers, "");
        assert_eq!(status, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// An event stream: its lines as they come; closed when dropped.
    fn events(&self, path: &str, headers: &[&str]) -> Events {
        use std::io::Write;
        let mut stream = std::net::TcpStream::connect(&self.addr).unwrap();
        let socket = stream.try_clone().unwrap();
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n", self.addr);
        for header in headers {
            request.push_str(header);
            request.push_str("\r\n");
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        Events {
            lines: lines_of(stream),
            socket,
        }
    }

    /// A field of the server's `/proc/PID/status` (`VmRSS`, `VmHWM` in
    /// KiB, `Threads`).
    fn status(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in {status}"))
    }

    /// Waits for a line of the server's stderr holding every one of
    /// `want`; returns it.
    fn logged(&self, want: &[&str]) -> String {
        loop {
            let line = self
                .log
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("the server logged no line with {want:?}"));
            if want.iter().all(|w| line.contains(w)) {
                return line;
            }
        }
    }
}

/// An HTTP/1.1 answer's bytes, read.
fn parse_reply(reply: &[u8]) -> Reply {
    let text = String::from_utf8_lossy(reply);
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP reply: {text:?}"));
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    Reply {
        status,
        head: head.to_owned(),
        body,
    }
}

/// A chunked body's data.
fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

impl Server {
    /// Stops the server (SIGTERM) and returns the lines it wrote on
    /// stderr that were not read yet, to its last.
    fn stop(mut self) -> Vec<String> {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{status:?}");
        let mut lines = Vec::new();
        while let Ok(line) = self.log.recv_timeout(Duration::from_secs(60)) {
            lines.push(line);
        }
        lines
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return; // already ended
        }
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// Waits for an event-stream line holding `want`; returns the `data:` line.
fn event_with(events: &Events, want: &str) -> String {
    loop {
        let line = events
            .lines
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no event with {want:?}"));
        if line.starts_with("data:") && line.contains(want) {
            return line;
        }
    }
}

/// `serve`: JSON to list, read and set; an event stream that pushes the
/// edits of another process (`infinisheet set`) and resumes after the
/// last id a client saw; the page; clear errors; exit 0 on SIGTERM.
#[test]
fn serve_reads_sets_and_streams_edits_live() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "team/s"]);
    ok(home, &["set", "team/s", "A1", "42"]);
    let server = Server::start(home, &[]);
    assert_eq!(
        server.json("/api/sheets")["sheets"],
        serde_json::json!(["team/s"])
    );
    let cells = server.json("/api/cells?sheet=team/s&range=A1:B2");
    assert_eq!(cells["rows"][0][0]["value"], 42.0);
    assert_eq!(cells["end"], 2);
    // Live: an edit by another process reaches the stream.
    let live = server.events("/api/events?sheet=team/s", &[]);
    event_with(&live, "\"end\":2");
    ok(home, &["set", "team/s", "B2", "5", "--no-worker"]);
    let line = event_with(&live, "\"cell\":\"B2\"");
    assert!(
        line.contains("\"start\":2,") || line.contains("\"start\":2}"),
        "{line}"
    );
    // A read that asks for the entries the stream announced (`at`) holds
    // them, however far the server's own view of the sheet lags (it
    // follows the log on its own; each round is a fresh race with it).
    let cells = server.json("/api/cells?sheet=team/s&range=B2&at=3");
    assert_eq!(cells["rows"][0][0]["value"], 5.0, "{cells}");
    for round in 0..10 {
        ok(
            home,
            &["set", "team/s", "E1", &round.to_string(), "--no-worker"],
        );
        let end = 4 + round;
        event_with(&live, &format!("\"end\":{end}"));
        let cells = server.json(&format!("/api/cells?sheet=team/s&range=E1&at={end}"));
        assert_eq!(cells["rows"][0][0]["value"], f64::from(round), "{cells}");
        assert_eq!(cells["end"], end);
    }
    // Set through the server; read back, and seen by the stream.
    let (status, body) = server.request(
        "POST",
        "/api/cells?sheet=team/s",
        &["Content-Type: application/json"],
        r#"{"C3": "hi", "D4": "TRUE"}"#,
    );
    assert_eq!(status, 200, "{body}");
    event_with(&live, "\"cell\":\"C3\"");
    let cells = server.json("/api/cells?sheet=team/s");
    assert_eq!(cells["range"], "A1:E4");
    assert_eq!(cells["rows"][1][1]["value"], 5.0);
    assert_eq!(cells["rows"][2][2]["value"], "hi");
    assert_eq!(cells["rows"][3][3]["value"], true);
    // A snapshot published by another process is news on the stream.
    ok(home, &["snapshot", "team/s"]);
    let line = event_with(&live, "\"sequence_id\":14");
    assert!(line.contains("\"blob_id\""), "{line}");
    // A reconnecting client resumes after the last id it saw: entry 13's
    // batch (C3, D4) only, not the edits before.
    let resumed = server.events("/api/events?sheet=team/s", &["Last-Event-ID: 13"]);
    let line = event_with(&resumed, "\"start\":13");
    assert!(!line.contains("B2") && line.contains("C3"), "{line}");
    // The page and its script.
    let (status, page) = server.request("GET", "/", &[], "");
    assert!(
        status == 200 && page.contains("<script src=\"/app.js\">"),
        "{page}"
    );
    let (status, script) = server.request("GET", "/app.js", &[], "");
    assert!(status == 200 && script.contains("EventSource"));
    // Errors are JSON with a status.
    let (status, body) = server.request("GET", "/api/cells?sheet=nope", &[], "");
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("nope does not exist"), "{body}");
    let (status, body) = server.request("GET", "/api/cells?sheet=team/s&range=A0", &[], "");
    assert_eq!(status, 400, "{body}");
    let (status, _) = server.request(
        "POST",
        "/api/cells?sheet=team/s",
        &["Content-Type: application/json"],
        r#"{"nowhere": "1"}"#,
    );
    assert_eq!(status, 400);
    // A paste: rows from a cell are one block entry (`""` an empty cell,
    // null a cell left as it is); a range with null is one clear, done
    // before the sets of the same request.
    let json = ["Content-Type: application/json"];
    let end = |server: &Server| server.json("/api/cells?sheet=team/s&range=A1")["end"].clone();
    let before = end(&server).as_u64().unwrap();
    let (status, body) = server.request(
        "POST",
        "/api/cells?sheet=team/s",
        &json,
        r#"{"B10": [["x", 1, ""], ["y", null, true]]}"#,
    );
    assert_eq!(status, 200, "{body}");
    let landed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (landed["start"].as_u64(), landed["end"].as_u64()),
        (Some(before), Some(before + 1))
    );
    let cells = server.json(&format!(
        "/api/cells?sheet=team/s&range=B10:D11&at={}",
        before + 1
    ));
    assert_eq!(
        cells["rows"],
        serde_json::json!([[{"value": "x"}, {"value": 1}, {"value": null}], [{"value": "y"}, null, {"value": true}]])
    );
    let (status, body) = server.request(
        "POST",
        "/api/cells?sheet=team/s",
        &json,
        r#"{"B10:C11": null, "C10": "kept"}"#,
    );
    assert_eq!(status, 200, "{body}");
    let landed: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(landed["end"].as_u64(), Some(before + 3));
    let cells = server.json(&format!(
        "/api/cells?sheet=team/s&range=B10:D11&at={}",
        before + 3
    ));
    assert_eq!(
        cells["rows"],
        serde_json::json!([[null, {"value": "kept"}, {"value": null}], [null, null, {"value": true}]])
    );
    for bad in [
        r#"{"B2:C3": "x"}"#,
        r#"{"B2": [1, 2]}"#,
        r#"{"B2": [[{"a": 1}]]}"#,
        r#"{"B2": [[]]}"#,
        r#"{"A4294967297": [["x"]]}"#,
        r#"{"A4294967296": [["x"], ["y"]]}"#,
    ] {
        let (status, body) = server.request("POST", "/api/cells?sheet=team/s", &json, bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }
    assert_eq!(end(&server).as_u64(), Some(before + 3));
    // Objects: typed input with a format, a value exactly as `get --json`
    // prints it (text that reads as a boolean stays text), an error value.
    // Sets go in the order of their cells whatever the keys' order (A9's
    // block before A10's cell), and one place given twice is refused.
    let (status, body) = server.request(
        "POST",
        "/api/cells?sheet=team/s",
        &json,
        r##"{"A10": "last", "A9": [["first"], ["overwritten"]], "B12": {"input": "1300", "format": "0.00"}, "C12": {"value": "TRUE", "format": null, "shown": "TRUE"}, "D12": {"error": "#N/A"}}"##,
    );
    assert_eq!(status, 200, "{body}");
    let cells = server.json(&format!(
        "/api/cells?sheet=team/s&range=A9:D12&at={}",
        before + 8
    ));
    assert_eq!(cells["rows"][0][0]["value"], "first");
    assert_eq!(cells["rows"][1][0]["value"], "last");
    assert_eq!(
        cells["rows"][3],
        serde_json::json!([null, {"value": 1300, "format": "0.00", "shown": "1300.00"}, {"value": "TRUE"}, {"error": "#N/A"}])
    );
    let before = end(&server).as_u64().unwrap();
    for bad in [
        r#"{"a1": 1, "A1": 2}"#,
        r#"{"A1": 1, "A1": 2}"#,
        r#"{"B2": {"value": 1, "format": "0.0"}, "B2": 3}"#,
        r#"{"B2": {"input": "1", "value": 1}}"#,
        r#"{"B2": {"value": [1]}}"#,
        r##"{"B2": {"error": "#NOPE"}}"##,
        r#"{"B2": {"value": 1, "colour": "red"}}"#,
        r#"{"B2": {"format": 7, "value": 1}}"#,
    ] {
        let (status, body) = server.request("POST", "/api/cells?sheet=team/s", &json, bad);
        assert_eq!(status, 400, "{bad}: {body}");
    }
    // A block whose rectangle is over a call's cells is refused before it
    // is built, however few cells its JSON names.
    let tall = format!(
        r#"{{"A1": [[{}]{}]}}"#,
        "0,".repeat(999) + "0",
        ",[]".repeat(300)
    );
    let (status, body) = server.request("POST", "/api/cells?sheet=team/s", &json, &tall);
    assert!(
        status == 400 && body.contains("at most 262144 cells"),
        "{status} {body}"
    );
    assert_eq!(end(&server).as_u64(), Some(before));
    // SIGTERM: a clean stop.
    let mut server = server;
    std::process::Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let status = server.child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
}

/// `serve` shares its storage: another process opens the same catalog by
/// `--logs http://… --blobs http://…` (with the server's token), reads
/// and edits its sheets, creates one, and what it did is in the server's
/// storage; without the token, or on a port nothing serves, it fails with
/// one clear line.
#[test]
fn serve_shares_its_storage_over_http() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "team/s"]);
    ok(home, &["set", "team/s", "A1", "42"]);
    let server = Server::start(home, &["--token", "sesame"]);
    let url = format!("http://{}", server.addr);
    let remote = || {
        let mut command = bare();
        command
            .args(["--logs", &url, "--blobs", &url])
            .env("INFINISHEET_TOKEN", "sesame");
        command
    };
    let run = |args: &[&str]| {
        let out = remote().args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(run(&["get", "team/s", "A1", "--raw"]).trim(), "42");
    run(&["set", "team/s", "B1", "7", "--no-worker"]);
    assert_eq!(ok(home, &["get", "team/s", "B1", "--raw"]).trim(), "7");
    // The server's own view has it too (asked for the new entry).
    let cells = server.json_with(
        "/api/cells?sheet=team/s&range=B1&at=3",
        &["Authorization: Bearer sesame"],
    );
    assert_eq!(cells["rows"][0][0]["value"], 7.0, "{cells}");
    run(&["new", "remote/t"]);
    run(&["set", "remote/t", "C3", "from afar"]);
    assert_eq!(
        ok(home, &["get", "remote/t", "C3", "--raw"]).trim(),
        "from afar"
    );
    let listed: Value = serde_json::from_str(&run(&["ls", "remote", "--json"])).unwrap();
    assert_eq!(listed, serde_json::json!([{"name": "t", "kind": "sheet"}]));
    // No token: refused, and said so.
    let mut untokened = bare();
    untokened
        .args(["--logs", &url, "--blobs", &url])
        .env_remove("INFINISHEET_TOKEN");
    let err = fails(untokened, &["ls"]);
    assert!(err.contains("needs its token"), "{err}");
    drop(server);
    // Nothing listening there now.
    let err = fails(remote(), &["ls"]);
    assert!(err.contains("cannot connect"), "{err}");
}

/// A storage call that removes everything under the top of the blob
/// store (`Request::Blob { dir: [], op: RemoveAll }` in postcard): the
/// three bytes that wiped a catalog from another origin's page.
const REMOVE_ALL: &[u8] = &[3, 0, 5];

/// A storage call asking the server's version (`Request::Hello`).
const HELLO: &[u8] = &[0];

/// The catalog of `home` is whole: both sheets listed, and A1 as set.
fn assert_untouched(home: &Path) {
    let listed: Value = serde_json::from_str(&ok(home, &["ls", "budget", "--json"])).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{"name": "2026", "kind": "sheet"}])
    );
    assert_eq!(
        ok(home, &["get", "budget/2026", "A1", "--raw"]).trim(),
        "42"
    );
    ok(home, &["check"]);
}

/// Issue 33, item 1: a page of another origin changes nothing. Each
/// "simple" request a browser sends without asking first (text/plain,
/// form-encoded, multipart, `Origin: null`, a fetch from another port of
/// this host) is refused before its body is read, and the catalog is
/// whole afterwards; the server's own clients (no origin, or its own,
/// with the media type of the route) still work.
#[test]
fn pages_of_other_origins_change_nothing() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "budget/2026"]);
    ok(home, &["set", "budget/2026", "A1", "42"]);
    let server = Server::start(home, &[]);
    let other_port = "Origin: http://127.0.0.1:1";
    for (route, headers, body) in [
        (
            "/api/storage",
            &["Content-Type: text/plain", "Origin: http://evil.example"][..],
            REMOVE_ALL,
        ),
        (
            "/api/storage",
            &[
                "Content-Type: application/x-www-form-urlencoded",
                "Origin: http://evil.example",
            ],
            REMOVE_ALL,
        ),
        (
            "/api/storage",
            &[
                "Content-Type: multipart/form-data; boundary=x",
                "Origin: http://evil.example",
            ],
            REMOVE_ALL,
        ),
        (
            "/api/storage",
            &["Content-Type: text/plain", "Origin: null"],
            REMOVE_ALL,
        ),
        (
            "/api/storage",
            &[
                "Content-Type: application/x-infinisheet-storage",
                other_port,
            ],
            REMOVE_ALL,
        ),
        (
            "/api/storage",
            &["Content-Type: text/plain", "Sec-Fetch-Site: cross-site"],
            REMOVE_ALL,
        ),
        (
            "/api/storage",
            &["Content-Type: text/plain", "Sec-Fetch-Site: same-site"],
            REMOVE_ALL,
        ),
        (
            "/api/cells?sheet=budget/2026",
            &["Content-Type: text/plain", "Origin: http://evil.example"],
            br#"{"A1":"pwned"}"#,
        ),
        (
            "/api/cells?sheet=budget/2026",
            &["Content-Type: application/json", other_port],
            br#"{"A1":"pwned"}"#,
        ),
        (
            "/login",
            &[
                "Content-Type: application/x-www-form-urlencoded",
                "Origin: http://evil.example",
            ],
            b"token=x",
        ),
    ] {
        let reply = server.call("POST", route, headers, body);
        assert_eq!(reply.status, 403, "{route} {headers:?}: {}", reply.body);
        assert!(reply.body.contains("refused"), "{}", reply.body);
    }
    // Without an origin, a body of another type is refused by its type:
    // an old browser's form could not carry a call either.
    for (route, body) in [
        ("/api/storage", REMOVE_ALL),
        ("/api/cells?sheet=budget/2026", &br#"{"A1":"pwned"}"#[..]),
    ] {
        let reply = server.call("POST", route, &["Content-Type: text/plain"], body);
        assert_eq!(reply.status, 415, "{route}: {}", reply.body);
    }
    // Reads of another origin's page are refused too.
    let reply = server.call("GET", "/api/sheets", &["Sec-Fetch-Site: cross-site"], b"");
    assert_eq!(reply.status, 403);
    assert!(!reply.body.contains("budget"), "{}", reply.body);
    assert_untouched(home);
    // The server's own page and clients.
    let own = format!("Origin: http://{}", server.addr);
    let reply = server.call(
        "POST",
        "/api/cells?sheet=budget/2026",
        &[
            "Content-Type: application/json",
            &own,
            "Sec-Fetch-Site: same-origin",
        ],
        br#"{"B1":"mine"}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = server.call(
        "POST",
        "/api/storage",
        &["Content-Type: application/x-infinisheet-storage"],
        HELLO,
    );
    assert_eq!(
        (reply.status, reply.body.as_bytes().first()),
        (200, Some(&0))
    );
    assert_eq!(
        ok(home, &["get", "budget/2026", "B1", "--raw"]).trim(),
        "mine"
    );
}

/// Issue 33, item 2: a request naming another host (a page whose name
/// was rebound to 127.0.0.1) gets an error and no data; loopback names,
/// the listen address and `--allow-host` names are answered.
#[test]
fn requests_for_other_hosts_get_nothing() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "secret-plans"]);
    // A name for clients beyond loopback, so a long token (behind a proxy
    // adding TLS).
    let token = "0123456789abcdef0123456789abcdef";
    let server = Server::start(
        home,
        &[
            "--allow-host",
            "sheets.example.org",
            "--token",
            token,
            "--plain-http",
        ],
    );
    let bearer = format!("Authorization: Bearer {token}");
    let port = server.addr.rsplit_once(':').unwrap().1.to_owned();
    for host in [
        format!("evil.example:{port}"),
        "evil.example".into(),
        "sheets.example.org.evil".into(),
        "10.1.2.3".into(),
    ] {
        for path in ["/api/sheets", "/", "/app.js"] {
            let reply = server.call_as(&host, "GET", path, &[&bearer], b"");
            assert_eq!(reply.status, 421, "{host} {path}: {}", reply.body);
            assert!(
                !reply.body.contains("secret-plans") && !reply.body.contains("<html"),
                "{}",
                reply.body
            );
        }
        let reply = server.call_as(
            &host,
            "POST",
            "/api/storage",
            &["Content-Type: application/x-infinisheet-storage", &bearer],
            REMOVE_ALL,
        );
        assert_eq!(reply.status, 421);
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        "sheets.example.org".into(),
        "SHEETS.example.org:443".into(),
    ] {
        let reply = server.call_as(&host, "GET", "/api/sheets", &[&bearer], b"");
        assert_eq!(reply.status, 200, "{host}: {}", reply.body);
        assert!(reply.body.contains("secret-plans"));
    }
    assert_eq!(ok(home, &["ls"]).trim(), "secret-plans");
}

/// Issue 33, item 3: no empty token ever, tokens only in headers (or the
/// page's session cookie), a read-only token that changes nothing, and
/// TLS or an explicit `--plain-http` beyond loopback.
#[test]
fn tokens_are_whole_kept_out_of_urls_and_read_only_when_asked() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    ok(home, &["set", "s", "A1", "42"]);
    let empty_file = home.join("empty-token");
    std::fs::write(&empty_file, "\n").unwrap();
    for args in [
        &["serve", "--listen", "127.0.0.1:0", "--token", ""][..],
        &["serve", "--listen", "0.0.0.0:0", "--token", ""],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            empty_file.to_str().unwrap(),
        ],
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token",
            "a",
            "--read-token",
            "",
        ],
    ] {
        let err = fails(cli(home), args);
        assert!(err.contains("is empty"), "{args:?}: {err}");
    }
    let mut from_env = cli(home);
    from_env.env("INFINISHEET_TOKEN", "");
    let err = fails(from_env, &["serve", "--listen", "0.0.0.0:0"]);
    assert!(err.contains("is empty"), "{err}");
    let err = fails(
        cli(home),
        &["serve", "--listen", "127.0.0.1:0", "--read-token", "r"],
    );
    assert!(err.contains("needs --token"), "{err}");
    let err = fails(cli(home), &["serve", "--listen", "0.0.0.0:0"]);
    assert!(err.contains("needs a token"), "{err}");
    let err = fails(
        cli(home),
        &["serve", "--listen", "0.0.0.0:0", "--token", "t"],
    );
    assert!(err.contains("at least 16 characters"), "{err}");
    // A name given with --allow-host brings clients beyond loopback: the
    // same rules.
    let err = fails(
        cli(home),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-host",
            "sheets.example",
        ],
    );
    assert!(
        err.contains("--allow-host sheets.example") && err.contains("needs a token"),
        "{err}"
    );
    let err = fails(
        cli(home),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-host",
            "sheets.example",
            "--token",
            "abc",
        ],
    );
    assert!(err.contains("at least 16 characters"), "{err}");
    let long = "0123456789abcdef0123";
    let err = fails(
        cli(home),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--allow-host",
            "sheets.example",
            "--token",
            long,
        ],
    );
    assert!(err.contains("needs TLS"), "{err}");
    let err = fails(
        cli(home),
        &["serve", "--listen", "0.0.0.0:0", "--token", long],
    );
    assert!(
        err.contains("needs TLS") && err.contains("--plain-http"),
        "{err}"
    );
    let err = fails(
        cli(home),
        &["serve", "--listen", "127.0.0.1:0", "--token", "sésame"],
    );
    assert!(err.contains("beyond ASCII"), "{err}");
    let err = fails(
        cli(home),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--token-file",
            empty_file.to_str().unwrap(),
        ],
    );
    assert!(err.contains("empty-token"), "{err}");

    let token_file = home.join("token");
    std::fs::write(&token_file, "sesame\n").unwrap();
    let server = Server::start(
        home,
        &[
            "--token-file",
            token_file.to_str().unwrap(),
            "--read-token",
            "viewer",
        ],
    );
    let bearer = "Authorization: Bearer sesame";
    let viewer = "Authorization: Bearer viewer";
    // The scheme's name in any case (RFC 9110).
    let reply = server.call("GET", "/api/sheets", &["Authorization: bearer sesame"], b"");
    assert_eq!(reply.status, 200, "{}", reply.body);
    // No token, a wrong one, or one in the URL: refused.
    for (path, headers) in [
        ("/api/sheets", &[][..]),
        ("/api/sheets", &["Authorization: Bearer wrong"]),
        ("/api/sheets", &["Authorization: Bearer "]),
        ("/api/sheets", &["Authorization: sesame"]),
        ("/api/sheets?token=sesame", &[]),
        ("/api/events?sheet=s&token=sesame", &[]),
    ] {
        let reply = server.call("GET", path, headers, b"");
        assert_eq!(reply.status, 401, "{path} {headers:?}: {}", reply.body);
    }
    assert_eq!(
        server.json_with("/api/sheets", &[bearer])["access"],
        "write"
    );
    // The read-only token reads and follows; it changes nothing.
    let listed = server.json_with("/api/sheets", &[viewer]);
    assert_eq!(
        (listed["sheets"].clone(), listed["access"].clone()),
        (serde_json::json!(["s"]), "read".into())
    );
    assert_eq!(
        server.json_with("/api/cells?sheet=s&range=A1", &[viewer])["rows"][0][0]["value"],
        42.0
    );
    let live = server.events("/api/events?sheet=s", &[viewer]);
    event_with(&live, "\"end\":2");
    let reply = server.call(
        "POST",
        "/api/cells?sheet=s",
        &[viewer, "Content-Type: application/json"],
        br#"{"A1":"no"}"#,
    );
    assert_eq!(reply.status, 403, "{}", reply.body);
    assert!(reply.body.contains("read-only"), "{}", reply.body);
    let url = format!("http://{}", server.addr);
    let remote = |token: &str| {
        let mut command = bare();
        command
            .args(["--logs", &url, "--blobs", &url])
            .env("INFINISHEET_TOKEN", token);
        command
    };
    let out = remote("viewer")
        .args(["get", "s", "A1", "--raw"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42", "{out:?}");
    let err = fails(remote("viewer"), &["set", "s", "A1", "7", "--no-worker"]);
    assert!(err.contains("read-only"), "{err}");
    let err = fails(remote("viewer"), &["rm", "s"]);
    assert!(err.contains("read-only"), "{err}");
    let reply = server.call(
        "POST",
        "/api/storage",
        &[viewer, "Content-Type: application/x-infinisheet-storage"],
        REMOVE_ALL,
    );
    // A reply of the protocol: Err(Forbidden(..)).
    assert_eq!(
        (reply.status, &reply.body.as_bytes()[..2]),
        (200, &[1u8, 9][..])
    );
    assert_eq!(ok(home, &["get", "s", "A1", "--raw"]).trim(), "42");
    assert_eq!(ok(home, &["ls"]).trim(), "s");

    // The page signs in with a form and rides on a cookie no script can
    // read; a wrong token gets the form again; signing out ends it.
    assert_eq!(server.call("GET", "/login", &[], b"").status, 200);
    let form = "Content-Type: application/x-www-form-urlencoded";
    let reply = server.call("POST", "/login", &[form], b"token=wrong");
    assert_eq!(reply.status, 401);
    assert!(!reply.head.to_ascii_lowercase().contains("set-cookie"));
    let own = format!("Origin: http://{}", server.addr);
    let reply = server.call("POST", "/login", &[form, &own], b"token=sesame");
    assert_eq!(reply.status, 303, "{}", reply.body);
    let set_cookie = reply
        .head
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .unwrap_or_else(|| panic!("no cookie: {}", reply.head))
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("sesame"), "{set_cookie}");
    let cookie = format!("Cookie: {}", set_cookie.split(';').next().unwrap());
    assert_eq!(
        server.json_with("/api/sheets", &[&cookie])["access"],
        "write"
    );
    let reply = server.call(
        "POST",
        "/api/cells?sheet=s",
        &[&cookie, &own, "Content-Type: application/json"],
        br#"{"B1":"from the page"}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = server.call("POST", "/logout", &[&cookie, &own], b"");
    assert_eq!(reply.status, 303);
    assert_eq!(
        server.call("GET", "/api/sheets", &[&cookie], b"").status,
        401
    );
    let reply = server.call("POST", "/login", &[form, &own], b"token=viewer");
    assert_eq!(reply.status, 303);
    drop(server);

    // Beyond loopback, plain HTTP only when asked for.
    let server = Server::start(
        home,
        &["--listen", "0.0.0.0:0", "--token", long, "--plain-http"],
    );
    let port = server.addr.rsplit_once(':').unwrap().1.to_owned();
    let bearer = format!("Authorization: Bearer {long}");
    let reply = server.call_as(
        &format!("127.0.0.1:{port}"),
        "GET",
        "/api/sheets",
        &[&bearer],
        b"",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// HTTPS with a self-signed certificate, end to end: the command on
/// another "machine" trusts it through `SSL_CERT_FILE` and reads and
/// writes; without that trust, and in plain HTTP, it gets nowhere.
#[test]
fn https_with_a_self_signed_certificate() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".into(), "localhost".into()]).unwrap();
    let cert = home.join("cert.pem");
    let key = home.join("key.pem");
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.signing_key.serialize_pem()).unwrap();
    let server = Server::start(
        home,
        &[
            "--token",
            "sesame",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let url = format!("https://{}", server.addr);
    let remote = |trust: bool| {
        let mut command = bare();
        command
            .args(["--logs", &url, "--blobs", &url])
            .env("INFINISHEET_TOKEN", "sesame");
        if trust {
            command.env("SSL_CERT_FILE", &cert);
        } else {
            command.env("SSL_CERT_FILE", home.join("no-such-file"));
        }
        command
    };
    let out = remote(true)
        .args(["set", "s", "A1", "over TLS", "--no-worker"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(ok(home, &["get", "s", "A1", "--raw"]).trim(), "over TLS");
    let err = fails(remote(false), &["ls"]);
    assert!(err.to_ascii_lowercase().contains("certificate"), "{err}");
    // Plain HTTP on the TLS port is no request at all.
    let mut plain = bare();
    plain
        .args([
            "--logs",
            &format!("http://{}", server.addr),
            "--blobs",
            &format!("http://{}", server.addr),
        ])
        .env("INFINISHEET_TOKEN", "sesame");
    fails(plain, &["ls"]);
    // A key that is not the certificate's is a clear error at start.
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    let wrong_key = home.join("wrong-key.pem");
    std::fs::write(&wrong_key, other.signing_key.serialize_pem()).unwrap();
    let err = fails(
        cli(home),
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            wrong_key.to_str().unwrap(),
        ],
    );
    assert!(err.contains("--tls-key"), "{err}");
}

/// Issue 33, item 4: however a path is spelled, one sheet is opened once:
/// 2,000 spellings of one sheet cost the server no more memory or threads
/// than one; and past `--max-open-sheets` the least recently used close.
#[test]
fn one_sheet_is_opened_once_however_spelled() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "big"]);
    let csv = home.join("big.csv");
    let rows: Vec<String> = (0..2_000)
        .map(|r| {
            (0..10)
                .map(|c| format!("r{r}c{c}"))
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    std::fs::write(&csv, rows.join("\n")).unwrap();
    ok(home, &["import", "big", csv.to_str().unwrap()]);
    for n in 0..6 {
        ok(home, &["new", &format!("small/{n}")]);
    }
    let server = Server::start_with(
        home,
        &["--max-open-sheets", "3"],
        &[("RUST_LOG", "infinisheet::cli::serve=debug")],
    );
    assert_eq!(
        server.json("/api/cells?sheet=big&range=A1")["rows"][0][0]["value"],
        "r0c0"
    );
    let rss = server.status("VmRSS");
    let threads = server.status("Threads");
    for i in 0..2_000 {
        let spelling = format!("{}big{}", "/".repeat(i % 45), "/".repeat(i / 45));
        let spelling = if i % 2 == 0 {
            spelling.replace('/', "%2F")
        } else {
            spelling
        };
        let reply = server.call(
            "GET",
            &format!("/api/cells?sheet={spelling}&range=B2"),
            &[],
            b"",
        );
        assert_eq!(reply.status, 200, "{spelling}: {}", reply.body);
    }
    let grown = server.status("VmRSS").saturating_sub(rss);
    assert!(grown < 64 * 1024, "2,000 spellings took {grown} KiB more");
    assert!(
        server.status("Threads") <= threads + 4,
        "{} threads",
        server.status("Threads")
    );
    let reply = server.call("GET", "/api/cells?sheet=big//x", &[], b"");
    assert_eq!(reply.status, 400, "{}", reply.body);
    // Past the cap, sheets close: never more than three open.
    for round in 0..2 {
        for n in 0..6 {
            let reply = server.call("GET", &format!("/api/cells?sheet=small/{n}"), &[], b"");
            assert_eq!(reply.status, 200, "round {round}: {}", reply.body);
        }
    }
    let line = server.logged(&["opened small/5", "closed to make room"]);
    assert!(line.contains("3 sheet(s) open"), "{line}");
}

/// Issue 33, item 5: a path is the sheet the catalog says it is now.
/// After another process removes a sheet and makes a new one of the same
/// name, an edit lands in the new one (never a 200 into the removed
/// one's log); a moved sheet no longer answers under its old name; a
/// removed sheet's event stream ends saying why.
#[test]
fn edits_follow_the_catalog_never_a_removed_sheet() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "a"]);
    ok(home, &["set", "a", "A1", "old"]);
    let server = Server::start(home, &[]);
    assert_eq!(
        server.json("/api/cells?sheet=a&range=A1")["rows"][0][0]["value"],
        "old"
    );
    let live = server.events("/api/events?sheet=a", &[]);
    event_with(&live, "\"end\":2");
    ok(home, &["rm", "a"]);
    ok(home, &["new", "a"]);
    ok(home, &["set", "a", "A1", "x"]);
    let json = ["Content-Type: application/json"];
    let (status, body) = server.request("POST", "/api/cells?sheet=a", &json, r#"{"B1":"late"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ok(home, &["get", "a", "A1:B1", "--output", "csv"]).trim(),
        "x,late"
    );
    assert_eq!(
        server.json("/api/cells?sheet=a&range=A1:B1")["rows"][0][1]["value"],
        "late"
    );
    // The stream of the removed sheet ends, and says why.
    let line = event_with(&live, "was replaced");
    assert!(line.contains("another sheet has that name now"), "{line}");
    // Moved: the old name is gone for reads and writes alike.
    ok(home, &["mv", "a", "b"]);
    let (status, body) = server.request("POST", "/api/cells?sheet=a", &json, r#"{"C1":"lost?"}"#);
    assert_eq!(status, 404, "{body}");
    assert_eq!(server.request("GET", "/api/cells?sheet=a", &[], "").0, 404);
    assert_eq!(
        server.json("/api/cells?sheet=b&range=A1")["rows"][0][0]["value"],
        "x"
    );
    let (status, body) = server.request("POST", "/api/cells?sheet=b", &json, r#"{"C1":"here"}"#);
    assert_eq!(status, 200, "{body}");
    assert_eq!(ok(home, &["get", "b", "C1", "--raw"]).trim(), "here");
    // Removed: its stream ends saying so.
    let live = server.events("/api/events?sheet=b", &[]);
    event_with(&live, "\"end\"");
    ok(home, &["rm", "b"]);
    let line = event_with(&live, "no longer there");
    assert!(line.contains("removed or moved"), "{line}");
    assert_eq!(
        server
            .request("POST", "/api/cells?sheet=b", &json, r#"{"A1":"1"}"#)
            .0,
        404
    );
}

/// Issue 33, item 6: credentials and limits are decided before a body
/// byte is read. A 600 MB body without the token is refused as soon as
/// its head arrives (three at once too), one over the limit with the
/// token likewise, and an append claiming ten million entries in 40 MB
/// is refused as it is decoded: the server's peak memory stays within
/// 64 MiB of what it was idle.
#[test]
fn bodies_are_judged_before_they_are_read() {
    use std::io::{Read, Write};
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let server = Server::start(home, &["--token", "sesame", "--max-body-mib", "64"]);
    server.json_with("/api/sheets", &["Authorization: Bearer sesame"]);
    let idle = server.status("VmRSS");
    // The head alone gets the answer: nothing waits for the body.
    let head_only = |headers: &str| {
        let mut stream = std::net::TcpStream::connect(&server.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(
            stream,
            "POST /api/storage HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-infinisheet-storage\r\nContent-Length: 629145600\r\n{headers}\r\n",
            server.addr
        )
        .unwrap();
        let mut reply = Vec::new();
        let _ = stream.read_to_end(&mut reply);
        parse_reply(&reply).status
    };
    assert_eq!(head_only(""), 401);
    assert_eq!(head_only("Authorization: Bearer sesame\r\n"), 413);
    // Three 600 MB bodies at once, sent whole (as far as the server lets).
    let addr = server.addr.clone();
    let senders: Vec<_> = (0..3)
        .map(|_| {
            let addr = addr.clone();
            std::thread::spawn(move || {
                let mut stream = std::net::TcpStream::connect(&addr).unwrap();
                let _ = write!(
                    stream,
                    "POST /api/storage HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/x-infinisheet-storage\r\nContent-Length: 629145600\r\n\r\n"
                );
                let chunk = vec![0u8; 1 << 20];
                for _ in 0..600 {
                    if stream.write_all(&chunk).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    for sender in senders {
        sender.join().unwrap();
    }
    // Ten million empty entries: 4 bytes each on the wire.
    let mut call = vec![2, 1, b'x', 0];
    let mut count: u32 = 10_000_000;
    while count >= 0x80 {
        call.push((count as u8 & 0x7f) | 0x80);
        count >>= 7;
    }
    call.push(count as u8);
    call.resize(call.len() + 40_000_000, 0);
    call.extend([0, 0, 0]);
    let reply = server.call(
        "POST",
        "/api/storage",
        &[
            "Authorization: Bearer sesame",
            "Content-Type: application/x-infinisheet-storage",
        ],
        &call,
    );
    // A reply of the protocol: Err(BadRequest(..)).
    assert_eq!(
        (reply.status, reply.body.as_bytes().get(..2)),
        (200, Some(&[1u8, 8][..]))
    );
    let peak = server.status("VmHWM");
    assert!(
        peak.saturating_sub(idle) < 64 * 1024,
        "peak {peak} KiB against {idle} KiB idle"
    );
}

/// Issue 33, item 7: a line per request, with the status, the client and
/// the time it took; refusals at warn; never a token; JSON when asked.
#[test]
fn every_request_is_logged() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let server = Server::start(home, &["--token", "sesame"]);
    server.json_with("/api/sheets", &["Authorization: Bearer sesame"]);
    let line = server.logged(&["GET", "/api/sheets", "status=200"]);
    assert!(
        line.contains("INFO") && line.contains("client=127.0.0.1:") && line.contains("ms="),
        "{line}"
    );
    server.call("GET", "/api/cells?sheet=s&token=sesame", &[], b"");
    let line = server.logged(&["status=401"]);
    assert!(
        line.contains("WARN") && line.contains("token=…") && !line.contains("sesame"),
        "{line}"
    );
    drop(server);
    let server = Server::start(home, &["--log-format", "json"]);
    server.json("/api/sheets");
    let line = server.logged(&["/api/sheets"]);
    let entry: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(entry["fields"]["status"], 200, "{entry}");
    assert_eq!(entry["fields"]["method"], "GET", "{entry}");
    assert_eq!(entry["target"], "infinisheet::access", "{entry}");
    // `-q`: nothing at all, refusals included.
    drop(server);
    let server = Server::start(home, &["-q"]);
    server.json("/api/sheets");
    server.call("GET", "/api/sheets", &["Sec-Fetch-Site: cross-site"], b"");
    assert_eq!(server.stop(), Vec::<String>::new());
}

/// Guessing the token is hopeless: after 20 wrong ones from an address
/// (as bearer tokens or at /login) that address is refused for a minute
/// without its tokens being looked at, the right one included; another
/// address is not.
#[test]
fn guessing_the_token_is_cut_short() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let server = Server::start(home, &["--token", "sesame"]);
    let form = "Content-Type: application/x-www-form-urlencoded";
    for guess in 0..20 {
        let reply = if guess % 2 == 0 {
            let bearer = format!("Authorization: Bearer guess{guess}");
            server.call("GET", "/api/sheets", &[&bearer], b"")
        } else {
            let body = format!("token=guess{guess}");
            server.call("POST", "/login", &[form], body.as_bytes())
        };
        assert_eq!(reply.status, 401, "guess {guess}: {}", reply.body);
    }
    for (method, path, headers, body) in [
        (
            "GET",
            "/api/sheets",
            &["Authorization: Bearer sesame"][..],
            &b""[..],
        ),
        ("POST", "/login", &[form], b"token=sesame"),
    ] {
        let reply = server.call(method, path, headers, body);
        assert_eq!(reply.status, 429, "{}", reply.body);
        assert!(
            reply.body.contains("too many wrong tokens"),
            "{}",
            reply.body
        );
    }
    // Another address of this host is another client.
    let reply = call_from(
        "127.0.0.2",
        &server.addr,
        "GET /api/sheets HTTP/1.1\r\nAuthorization: Bearer sesame\r\n",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// One request from `source` (a loopback address of this host) to
/// `addr`: `head` is the request line and headers but `Host`.
fn call_from(source: &str, addr: &str, head: &str) -> Reply {
    use std::io::{Read, Write};
    let mut stream = connect_from(source, addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(stream, "{head}Host: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).unwrap();
    parse_reply(&reply)
}

/// [`call_from`], or `None` if the server refused the connection
/// (closed it unread: a reset, or no reply at all).
fn try_call_from(source: &str, addr: &str, head: &str) -> Option<Reply> {
    use std::io::{Read, Write};
    let mut stream = connect_from(source, addr);
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(stream, "{head}Host: {addr}\r\nConnection: close\r\n\r\n").ok()?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).ok()?;
    (!reply.is_empty()).then(|| parse_reply(&reply))
}

/// A connection to `addr` from the loopback address `source`.
fn connect_from(source: &str, addr: &str) -> std::net::TcpStream {
    connect_with(source, addr, None)
}

/// A connection to `addr` from the loopback address `source`, with a
/// receive buffer of `receive` bytes if given.
fn connect_with(source: &str, addr: &str, receive: Option<usize>) -> std::net::TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    if let Some(size) = receive {
        socket.set_recv_buffer_size(size).unwrap();
    }
    let from: std::net::SocketAddr = format!("{source}:0").parse().unwrap();
    socket.bind(&from.into()).unwrap();
    let to: std::net::SocketAddr = addr.parse().unwrap();
    socket.connect(&to.into()).unwrap();
    socket.into()
}

/// A client that pipelines requests and reads no reply holds nothing for
/// long: each address has a quarter of the connections, so others are
/// served meanwhile, and a write the client will not read ends its
/// connection after 30 s. An event stream's slot is free as soon as its
/// client goes, however quiet the sheet.
#[test]
fn clients_that_read_nothing_hold_nothing() {
    use std::io::Write;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let server = Server::start(
        home,
        &["--max-connections", "8", "--max-event-streams", "1"],
    );
    // Two connections from 127.0.0.2, stuffed with requests, never read.
    let request = format!("GET /app.js HTTP/1.1\r\nHost: {}\r\n\r\n", server.addr).repeat(64);
    let mut stuffed: Vec<std::net::TcpStream> = (0..2)
        .map(|_| {
            let stream = connect_from("127.0.0.2", &server.addr);
            stream.set_nonblocking(true).unwrap();
            stream
        })
        .collect();
    let until = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < until {
        for stream in &mut stuffed {
            let _ = stream.write(request.as_bytes());
        }
    }
    // Another address is served meanwhile; a third connection from the
    // stuffing address is refused.
    let reply = call_from("127.0.0.1", &server.addr, "GET /api/sheets HTTP/1.1\r\n");
    assert_eq!(reply.status, 200, "{}", reply.body);
    drop(connect_from("127.0.0.2", &server.addr));
    server.logged(&["refused a connection", "127.0.0.2"]);
    // The stuffed connections end once a write has waited 30 s.
    let line = server.logged(&["connection closed", "127.0.0.2", "read nothing"]);
    assert!(line.contains("30 s"), "{line}");
    drop(stuffed);

    // A stream's slot is free as soon as its client goes.
    for _ in 0..3 {
        let live = server.events("/api/events?sheet=s", &[]);
        event_with(&live, "\"end\"");
        drop(live);
        // The next may start once the server has seen the last one go:
        // asked until it has (each 503 is immediate). Until it has, the
        // gone stream's connection may still count against the address's
        // two, and a probe past them is refused (closed unread): asked
        // again too.
        let started = std::time::Instant::now();
        loop {
            let probe = "GET /api/events?sheet=nope HTTP/1.1\r\n";
            let Some(reply) = try_call_from("127.0.0.1", &server.addr, probe) else {
                assert!(
                    started.elapsed() < Duration::from_secs(30),
                    "connections stayed refused"
                );
                continue;
            };
            if reply.status == 404 {
                break;
            }
            assert_eq!(reply.status, 503, "{}", reply.body);
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the slot stayed taken"
            );
        }
    }
}

/// Wrong tokens lock an address out only where a token could be guessed
/// (one shorter than 16 characters, loopback only): with long tokens,
/// twenty wrong ones from an address — every client behind a proxy shares
/// one — leave the right one working.
#[test]
fn long_tokens_lock_nobody_out() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let token = "0123456789abcdef0123456789abcdef";
    let server = Server::start(home, &["--token", token]);
    for guess in 0..25 {
        let bearer = format!("Authorization: Bearer guess{guess}");
        let reply = server.call("GET", "/api/sheets", &[&bearer], b"");
        assert_eq!(reply.status, 401, "guess {guess}: {}", reply.body);
    }
    let bearer = format!("Authorization: Bearer {token}");
    let reply = server.call("GET", "/api/sheets", &[&bearer], b"");
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// Clients that send slowly hold nothing others need: four cell edits
/// and two storage calls whose bodies never come leave reads, edits and
/// storage calls of others answered (a body holds work and budget only
/// once it has come).
#[test]
fn slow_senders_hold_nothing_of_others() {
    use std::io::Write;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    ok(home, &["set", "s", "A1", "42"]);
    let server = Server::start(home, &[]);
    let mut slow = Vec::new();
    for i in 0..4 {
        let mut stream = connect_from(&format!("127.0.0.{}", 2 + i), &server.addr);
        write!(
            stream,
            "POST /api/cells?sheet=s HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: 100\r\n\r\n{{",
            server.addr
        )
        .unwrap();
        slow.push(stream);
    }
    for i in 0..2 {
        let mut stream = connect_from(&format!("127.0.0.{}", 6 + i), &server.addr);
        write!(
            stream,
            "POST /api/storage HTTP/1.1\r\nHost: {}\r\nContent-Type: \
             application/x-infinisheet-storage\r\nContent-Length: 33554432\r\n\r\nx",
            server.addr
        )
        .unwrap();
        slow.push(stream);
    }
    // Each answered long before the slow ones' 30 s: a read, an edit, and
    // the storage calls of a command on the server's catalog.
    let quick = |head: &str, body: &str| {
        use std::io::Read;
        let mut stream = connect_from("127.0.1.1", &server.addr);
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        write!(
            stream,
            "{head}Host: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            server.addr,
            body.len()
        )
        .unwrap();
        let mut reply = Vec::new();
        stream
            .read_to_end(&mut reply)
            .unwrap_or_else(|err| panic!("{head}: no answer while slow senders wait: {err}"));
        parse_reply(&reply)
    };
    let read = quick("GET /api/cells?sheet=s&range=A1 HTTP/1.1\r\n", "");
    assert_eq!(read.status, 200, "{}", read.body);
    let edit = quick("POST /api/cells?sheet=s HTTP/1.1\r\n", r#"{"B1": "7"}"#);
    assert_eq!(edit.status, 200, "{}", edit.body);
    let url = format!("http://{}", server.addr);
    let mut remote = bare();
    remote.args(["--logs", &url, "--blobs", &url, "get", "s", "B1", "--raw"]);
    let started = std::time::Instant::now();
    let out = remote.output().unwrap();
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "7",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "storage calls waited on slow senders for {:?}",
        started.elapsed()
    );
    drop(slow);
}

/// One address follows at most a quarter of the event streams: the rest
/// stay for others.
#[test]
fn one_address_follows_a_quarter_of_the_streams() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let server = Server::start(home, &["--max-event-streams", "8"]);
    let path = "GET /api/events?sheet=s HTTP/1.1\r\n";
    let held: Vec<_> = (0..2)
        .map(|_| stalled("127.0.0.2", &server.addr, path, "event: caught-up"))
        .collect();
    let (_, refused) = stalled("127.0.0.2", &server.addr, path, "\r\n\r\n");
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    let other = stalled("127.0.0.3", &server.addr, path, "event: caught-up");
    drop((held, other));
}

/// A connection from `source` with a small receive buffer that sends
/// `head` and reads only until its reply holds `until`, then no more.
fn stalled(source: &str, addr: &str, head: &str, until: &str) -> (std::net::TcpStream, String) {
    use std::io::{Read, Write};
    let mut stream = connect_with(source, addr, Some(4096));
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(stream, "{head}Host: {addr}\r\n\r\n").unwrap();
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while !String::from_utf8_lossy(&seen).contains(until) {
        let n = stream.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "closed before {until:?}: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&buf[..n]);
    }
    (stream, String::from_utf8_lossy(&seen).into_owned())
}

/// Clients that take their replies slowly, or never, hold no more than a
/// share of a fixed budget: eight event streams from the start of a sheet
/// of large cells and eight reads of all of them, none read past its
/// first bytes, leave the server's memory within bounds (each stream
/// holds an event and a page; reads past the budget get 503 at once, and
/// a read larger than 16 MiB is refused), and others are answered
/// meanwhile.
#[test]
fn slow_readers_hold_only_a_share() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "fat"]);
    let server = Server::start(home, &[]);
    let cell = "x".repeat(900_000);
    let json = "Content-Type: application/json";
    for row in 1..=30 {
        let body = format!(r#"{{"A{row}": "{cell}"}}"#);
        let reply = server.call("POST", "/api/cells?sheet=fat", &[json], body.as_bytes());
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // A read larger than a reply may be is refused, saying so.
    let reply = server.call("GET", "/api/cells?sheet=fat&range=A1:A30", &[], b"");
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply.body.contains("read a smaller range"),
        "{}",
        reply.body
    );
    let before = server.status("VmHWM");
    let streams: Vec<_> = (0..8)
        .map(|i| {
            stalled(
                &format!("127.0.0.{}", 2 + i),
                &server.addr,
                "GET /api/events?sheet=fat&from=0 HTTP/1.1\r\n",
                "event: entries",
            )
        })
        .collect();
    let reads: Vec<_> = (0..8)
        .map(|i| {
            stalled(
                &format!("127.0.1.{}", 2 + i),
                &server.addr,
                "GET /api/cells?sheet=fat&range=A1:A15 HTTP/1.1\r\n",
                "\r\n",
            )
        })
        .collect();
    let statuses: Vec<&str> = reads
        .iter()
        .map(|(_, seen)| seen.split(' ').nth(1).unwrap_or(""))
        .collect();
    assert!(
        statuses.iter().all(|s| ["200", "503"].contains(s))
            && statuses.contains(&"200")
            && statuses.contains(&"503"),
        "{statuses:?}"
    );
    // Others are answered meanwhile.
    let reply = call_from(
        "127.0.2.1",
        &server.addr,
        "GET /api/cells?sheet=fat&range=B1 HTTP/1.1\r\n",
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
    let grown = server.status("VmHWM").saturating_sub(before);
    assert!(
        grown < 300 << 10,
        "slow readers took the server {} MiB past its peak",
        grown >> 10
    );
    drop((streams, reads));
}

/// A request's host is read strictly: a URL naming another host than
/// its `Host`, a user part, a port that is not one, or two `Host`s, are
/// refused, and nothing is answered.
#[test]
fn hosts_are_read_strictly() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let server = Server::start(home, &[]);
    let port = server.addr.rsplit_once(':').unwrap().1.to_owned();
    for (target, host) in [
        (
            format!("http://127.0.0.1:{port}/api/sheets"),
            "evil.example".to_owned(),
        ),
        (
            "/api/sheets".to_owned(),
            "127.0.0.1:80@evil.example".to_owned(),
        ),
        (
            "/api/sheets".to_owned(),
            "localhost:evil.example".to_owned(),
        ),
        ("/api/sheets".to_owned(), "[::1]evil.example".to_owned()),
    ] {
        let reply = server.call_as(&host, "GET", &target, &[], b"");
        assert!(
            matches!(reply.status, 400 | 421),
            "{target} {host}: {} {}",
            reply.status,
            reply.body
        );
        assert!(!reply.body.contains("\"s\""), "{}", reply.body);
    }
    let reply = server.call("GET", "/api/sheets", &["Host: evil.example"], b"");
    assert_eq!(reply.status, 400, "{}", reply.body);
}

/// Cells over the API: strings as `set` reads them, numbers and booleans
/// as they are, null to clear; every refusal is JSON.
#[test]
fn cells_take_json_values_and_refusals_are_json() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    ok(home, &["set", "s", "B1", "gone soon"]);
    let server = Server::start(home, &[]);
    let json = "Content-Type: application/json";
    let (status, body) = server.request(
        "POST",
        "/api/cells?sheet=s",
        &[json],
        r#"{"A1": 42, "B1": null, "C1": true, "D1": "07"}"#,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        ok(home, &["get", "s", "A1:D1", "--output", "csv"]).trim(),
        "42,,TRUE,07"
    );
    let cells = server.json("/api/cells?sheet=s&range=B1");
    assert_eq!(cells["rows"], serde_json::json!([[null]]), "{cells}");
    for (headers, body, status) in [
        (&["Content-Type: text/plain"][..], r#"{"A1": "1"}"#, 415),
        (
            &["Content-Type: application/vnd.evil+json"],
            r#"{"A1": "1"}"#,
            415,
        ),
        (&[json, "Content-Type: text/plain"], r#"{"A1": "1"}"#, 415),
        (&[json], r#"{"A1": [1]}"#, 400),
        (&[json], r#"not json"#, 400),
        (&[json], r#"{"ZZZZZZZZ9": "1"}"#, 400),
    ] {
        let reply = server.call("POST", "/api/cells?sheet=s", headers, body.as_bytes());
        assert_eq!(reply.status, status, "{headers:?} {body}: {}", reply.body);
        let error: Value =
            serde_json::from_str(&reply.body).unwrap_or_else(|e| panic!("{e}: {}", reply.body));
        assert!(error["error"].is_string(), "{error}");
    }
    let big = format!(r#"{{"A1": "{}"}}"#, "x".repeat(2 << 20));
    let reply = server.call("POST", "/api/cells?sheet=s", &[json], big.as_bytes());
    assert_eq!(reply.status, 413);
    assert!(
        serde_json::from_str::<Value>(&reply.body).is_ok(),
        "{}",
        reply.body
    );
    let reply = server.call("GET", "/api/cells?sheet=s&at=x", &[], b"");
    assert_eq!(reply.status, 400);
    assert!(
        serde_json::from_str::<Value>(&reply.body).is_ok(),
        "{}",
        reply.body
    );
    // A read asked to hold entries the log does not have says so.
    let reply = server.call("GET", "/api/cells?sheet=s&at=500", &[], b"");
    assert_eq!(reply.status, 400, "{}", reply.body);
    let error: Value = serde_json::from_str(&reply.body).unwrap();
    assert!(
        error["error"].as_str().unwrap().contains("at=500"),
        "{error}"
    );
}
