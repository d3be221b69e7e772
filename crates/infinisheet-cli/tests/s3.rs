//! The `infinisheet` command on the S3-compatible server `cargo xtask test`
//! starts (the `AWS_*` environment names it). Built only with the
//! `s3-tests` feature.

#![allow(clippy::unwrap_used)]

use assert_cmd::Command;

/// The command with logs and blobs under `logs` and `blobs` of the bucket.
fn cli(logs: &str, blobs: &str) -> Command {
    assert!(
        std::env::var_os("INFINISHEET_S3").is_some(),
        "this test needs the S3 server `cargo xtask test` starts"
    );
    let bucket = std::env::var("AWS_BUCKET").unwrap();
    let mut command = Command::cargo_bin("infinisheet").unwrap();
    command
        .args(["--logs", &format!("s3://{bucket}/{logs}")])
        .args(["--blobs", &format!("s3://{bucket}/{blobs}")])
        .env_remove("INFINISHEET_HOME");
    command
}

fn run(logs: &str, blobs: &str, args: &[&str]) -> (bool, String, String) {
    let out = cli(logs, blobs).args(args).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A mistyped log prefix is an error, never a new empty log: reading says
/// the log is missing, and an import through it writes nothing anywhere,
/// so the real sheet keeps its own cells and snapshot.
#[test]
fn a_mistyped_log_prefix_is_an_error_and_touches_no_sheet() {
    let run_id = format!("{:016x}", fastrand::u64(..));
    let (logs, typo, blobs) = (
        format!("cli-{run_id}/logs"),
        format!("cli-{run_id}/logz"),
        format!("cli-{run_id}/sheets"),
    );
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.csv");
    let fake = dir.path().join("fake.csv");
    let rows = |word: &str| {
        (1..=150)
            .map(|i| format!("{word}{i}\n"))
            .collect::<String>()
    };
    std::fs::write(&real, rows("REAL")).unwrap();
    std::fs::write(&fake, rows("FAKE")).unwrap();

    let (ok, _, err) = run(&logs, &blobs, &["new", "t/s"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(
        &logs,
        &blobs,
        &["import", "t/s", real.to_str().unwrap(), "--batch", "1"],
    );
    assert!(ok, "{err}");

    let (ok, out, err) = run(&typo, &blobs, &["get", "t/s", "A1"]);
    assert!(
        !ok,
        "reading through a mistyped log prefix succeeded: {out}"
    );
    assert!(err.contains("no such log"), "{err}");
    let (ok, out, _) = run(
        &typo,
        &blobs,
        &["import", "t/s", fake.to_str().unwrap(), "--batch", "1"],
    );
    assert!(
        !ok,
        "importing through a mistyped log prefix succeeded: {out}"
    );

    let (ok, out, err) = run(&logs, &blobs, &["get", "t/s", "A1:A3"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("REAL1") && out.contains("REAL3") && !out.contains("FAKE"),
        "{out}"
    );
    let (ok, out, err) = run(&logs, &blobs, &["check"]);
    assert!(ok && out.contains("t/s: healthy"), "{out}{err}");
}

/// The issue's sequence 3 on S3: with the catalog at the top of a prefix
/// whose `logs` part holds the logs, `rm logs` (and `rm -r logs`) removes
/// nothing: the catalog did not make that directory.
#[test]
fn rm_never_removes_what_the_catalog_did_not_make() {
    let run_id = format!("{:016x}", fastrand::u64(..));
    let (logs, blobs) = (format!("rm-{run_id}/logs"), format!("rm-{run_id}"));
    let (ok, _, err) = run(&logs, &blobs, &["new", "s"]);
    assert!(ok, "{err}");
    let (ok, _, err) = run(&logs, &blobs, &["set", "s", "A1", "kept"]);
    assert!(ok, "{err}");
    for args in [&["rm", "logs"][..], &["rm", "-r", "logs"][..]] {
        let (ok, out, err) = run(&logs, &blobs, args);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(err.contains("neither a sheet nor a folder"), "{err}");
    }
    let (ok, out, err) = run(&logs, &blobs, &["get", "s", "A1"]);
    assert!(ok && out.contains("kept"), "{out}{err}");
    let (ok, out, err) = run(&logs, &blobs, &["check"]);
    assert!(ok && out.contains("s: healthy"), "{out}{err}");
}

/// A server's error comes as its code and message, not its XML body.
#[test]
fn a_missing_bucket_is_said_in_words_not_xml() {
    assert!(
        std::env::var_os("INFINISHEET_S3").is_some(),
        "this test needs the S3 server `cargo xtask test` starts"
    );
    let bucket = format!("no-such-bucket-{:08x}", fastrand::u32(..));
    let out = Command::cargo_bin("infinisheet")
        .unwrap()
        .args(["--logs", &format!("s3://{bucket}/logs")])
        .args(["--blobs", &format!("s3://{bucket}/sheets")])
        .env_remove("INFINISHEET_HOME")
        .arg("ls")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(
            "the server answered 404 Not Found: NoSuchBucket: The specified bucket does not exist"
        ),
        "{err}"
    );
    assert!(!err.contains("<?xml") && !err.contains("<Error>"), "{err}");
}

/// `serve` on S3 follows its sheets through the catalog's `.live/`
/// markers, not by polling each log: an edit by another process reaches
/// both streams of its sheet well before the tail's five-minute safety
/// net (it takes a listing, a second), and removing the sheet ends them.
#[test]
fn serve_on_s3_streams_another_process_edit_and_a_removal() {
    use std::io::{BufRead, Write};
    use std::time::{Duration, Instant};
    let run_id = fastrand::u64(..);
    let (logs, blobs) = (
        &format!("serve-live-{run_id:x}/logs"),
        &format!("serve-live-{run_id:x}/blobs"),
    );
    let (ok, _, err) = run(logs, blobs, &["new", "s"]);
    assert!(ok, "{err}");
    let bucket = std::env::var("AWS_BUCKET").unwrap();
    let mut server = std::process::Command::new(assert_cmd::cargo::cargo_bin("infinisheet"))
        .args(["--logs", &format!("s3://{bucket}/{logs}")])
        .args(["--blobs", &format!("s3://{bucket}/{blobs}")])
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env_remove("INFINISHEET_HOME")
        .env_remove("INFINISHEET_TOKEN")
        .env_remove("INFINISHEET_READ_TOKEN")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(server.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let addr = first
        .trim()
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("serve said {first:?}"))
        .to_owned();
    // Two streams, their lines through a channel each.
    let streams: Vec<_> = (0..2)
        .map(|_| {
            let mut socket = std::net::TcpStream::connect(&addr).unwrap();
            write!(
                socket,
                "GET /api/events?sheet=s HTTP/1.1\r\nHost: {addr}\r\n\r\n"
            )
            .unwrap();
            let (tx, rx) = std::sync::mpsc::channel::<String>();
            let reader = socket.try_clone().unwrap();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(reader).lines() {
                    let Ok(line) = line else { return };
                    if tx.send(line).is_err() {
                        return;
                    }
                }
            });
            (socket, rx)
        })
        .collect();
    let wait_for = |rx: &std::sync::mpsc::Receiver<String>, want: &str| loop {
        let line = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("no line with {want:?}"));
        if line.contains(want) {
            return line;
        }
    };
    for (_, rx) in &streams {
        wait_for(rx, "event: caught-up");
    }
    let edited = Instant::now();
    let (ok, _, err) = run(logs, blobs, &["set", "s", "A1", "5"]);
    assert!(ok, "{err}");
    for (_, rx) in &streams {
        wait_for(rx, "event: entries");
    }
    let heard = edited.elapsed();
    println!(
        "<!-- serve on S3: another process's edit reached both streams {heard:?} after `set` began -->"
    );
    assert!(
        heard < Duration::from_secs(60),
        "{heard:?}: the safety net, not a marker"
    );
    let removed = Instant::now();
    let (ok, _, err) = run(logs, blobs, &["rm", "s"]);
    assert!(ok, "{err}");
    for (_, rx) in &streams {
        wait_for(rx, "event: gone");
    }
    let gone = removed.elapsed();
    println!("<!-- serve on S3: the removal ended both streams {gone:?} after `rm` began -->");
    assert!(gone < Duration::from_secs(60), "{gone:?}");
    let _ = server.kill();
    let _ = server.wait();
}
