//! The commands, each run as a user runs it.

use crate::common::{bare, cli, fails, get_json, lines_of, ok};
use assert_cmd::Command;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[test]
fn set_then_get_round_trips_every_kind_of_value() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "budget/2026"]);
    ok(
        home,
        &["set", "budget/2026", "A1", "42", "--format", "0.00"],
    );
    ok(home, &["set", "budget/2026", "B1", "hello, world"]);
    ok(home, &["set", "budget/2026", "A2", "TRUE"]);
    ok(home, &["set", "budget/2026", "B2", "#DIV/0!"]);
    ok(home, &["set", "budget/2026", "C2", "-1500"]);
    // Kept as typed: what a number would change stays text; an apostrophe
    // makes the rest text.
    ok(home, &["set", "budget/2026", "A3", "06"]);
    ok(home, &["set", "budget/2026", "B3", "'42"]);
    ok(home, &["set", "budget/2026", "C3", "true"]);
    let got = get_json(home, "budget/2026", "A1:C3");
    assert_eq!(got["range"], "A1:C3");
    let rows = &got["rows"];
    assert_eq!(rows[0][0]["value"], 42.0);
    assert_eq!(rows[0][0]["format"], "0.00");
    assert_eq!(rows[0][1]["value"], "hello, world");
    assert_eq!(rows[0][2], Value::Null);
    assert_eq!(rows[1][0]["value"], true);
    assert_eq!(rows[1][1]["error"], "#DIV/0!");
    assert_eq!(rows[1][2]["value"], -1500.0);
    assert_eq!(rows[2][0]["value"], "06");
    assert_eq!(rows[2][1]["value"], "42");
    assert_eq!(rows[2][2]["value"], "true");
    let table = ok(home, &["get", "budget/2026", "A1:C2"]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["A", "B", "C"]
    );
    assert!(lines[1].starts_with("1  42"), "{table}");
    assert!(
        lines[2].contains("TRUE") && lines[2].contains("#DIV/0!") && lines[2].contains("-1500")
    );
}

#[test]
fn a_csv_import_exports_identically() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let mut csv = String::new();
    for row in 0..300 {
        let fields = [
            format!("{row}"),
            format!("item {row}"),
            "\"quoted, with a comma\"".to_owned(),
            String::new(),
            if row % 2 == 0 { "TRUE" } else { "FALSE" }.to_owned(),
            "#N/A".to_owned(),
            format!("{}", f64::from(row) * 0.25),
        ];
        csv.push_str(&fields.join(","));
        csv.push('\n');
    }
    let input = home.join("in.csv");
    std::fs::write(&input, &csv).unwrap();
    ok(home, &["new", "imports/data"]);
    let said = ok(home, &["import", "imports/data", input.to_str().unwrap()]);
    assert!(
        said.starts_with("imported 2100 cells (300 rows, 7 columns)"),
        "{said}"
    );
    let output = home.join("out.csv");
    ok(home, &["export", "imports/data", output.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&output).unwrap(), csv);
    // Standard output too, and a range of it.
    let part = ok(home, &["export", "imports/data", "--range", "A2:B3"]);
    assert_eq!(part, "1,item 1\n2,item 2\n");
}

#[test]
fn bad_input_gives_one_clear_line_and_exit_code_1() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let line = fails(cli(home), &["set", "s", "A0", "1"]);
    assert!(line.contains("\"A0\""), "{line}");
    let line = fails(cli(home), &["get", "s", "B7:ZZZZZZZZZ9"]);
    assert!(line.contains("ZZZZZZZZZ9"), "{line}");
    let line = fails(cli(home), &["get", "nowhere", "A1"]);
    assert_eq!(line, "error: nowhere does not exist");
    let line = fails(cli(home), &["new", "s"]);
    assert_eq!(line, "error: s already exists");
    let line = fails(cli(home), &["new", "bad\\name"]);
    assert!(line.contains("not a valid path"), "{line}");
    let line = fails(cli(home), &["import", "s", "/no/such/file.csv"]);
    assert!(line.contains("/no/such/file.csv"), "{line}");

    // Damaged metadata, and metadata naming a backend this storage is not.
    let metadata = home.join("sheets/blobs/s/sheet.json");
    let good = std::fs::read_to_string(&metadata).unwrap();
    std::fs::write(&metadata, "{ not json").unwrap();
    let line = fails(cli(home), &["get", "s", "A1"]);
    assert!(line.contains("bad metadata"), "{line}");
    std::fs::write(&metadata, good.replace("\"sqlite\"", "\"cassandra\"")).unwrap();
    let line = fails(cli(home), &["get", "s", "A1"]);
    assert!(line.contains("cassandra"), "{line}");
    std::fs::write(&metadata, good).unwrap();
    ok(home, &["get", "s", "A1"]);

    // A log file that is not a database: an error, and nothing overwritten.
    let db = home.join("logs.db");
    std::fs::write(&db, vec![7u8; 4096]).unwrap();
    let line = fails(cli(home), &["ls"]);
    assert!(line.contains("not a SQLite database"), "{line}");
    assert_eq!(std::fs::read(&db).unwrap(), vec![7u8; 4096]);

    // Storage URLs: unknown, and an S3 endpoint nothing listens on.
    let blobs = format!("file:{}", home.join("sheets").display());
    let line = fails(bare(), &["--logs", "ftp://x", "--blobs", &blobs, "ls"]);
    assert!(line.contains("not a storage URL"), "{line}");
    let mut unreachable = bare();
    unreachable
        .env("AWS_ENDPOINT", "http://127.0.0.1:9")
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "x")
        .env("AWS_SECRET_ACCESS_KEY", "x");
    let line = fails(
        unreachable,
        &[
            "--logs",
            "s3://bucket/logs",
            "--blobs",
            "s3://bucket/sheets",
            "ls",
        ],
    );
    assert!(
        line.contains("127.0.0.1:9") || line.contains("connect"),
        "{line}"
    );
    // How soon it gives up is the facade's retry setting (2 retries), not
    // something a test on a shared machine can time.
}

#[test]
fn folders_and_sheets_move_and_go() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "--folder", "archive"]);
    ok(home, &["new", "work/q3"]);
    ok(home, &["set", "work/q3", "C3", "7"]);
    assert_eq!(ok(home, &["ls"]), "archive/\nwork/\n");
    ok(home, &["mv", "work/q3", "archive/2026/q3"]);
    assert_eq!(ok(home, &["ls", "archive/2026"]), "q3\n");
    assert_eq!(ok(home, &["ls", "work"]), "");
    assert_eq!(
        get_json(home, "archive/2026/q3", "C3")["rows"][0][0]["value"],
        7.0
    );
    let line = fails(cli(home), &["rm", "archive"]);
    assert_eq!(line, "error: folder archive is not empty");
    ok(home, &["rm", "-r", "archive"]);
    assert_eq!(ok(home, &["ls"]), "work/\n");
    let line = fails(cli(home), &["get", "archive/2026/q3", "A1"]);
    assert!(line.contains("does not exist"), "{line}");
}

#[test]
fn a_worker_process_snapshots_what_set_processes_write() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(
        home,
        &[
            "new",
            "shared",
            "--snapshot-interval",
            "5",
            "--tiles",
            "2x2",
        ],
    );
    let mut worker = std::process::Command::new(assert_cmd::cargo::cargo_bin("infinisheet"))
        .arg("--home")
        .arg(home)
        .args(["worker", "--interval", "0.05"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    for i in 0..7u32 {
        let cell = format!("{}{}", ["A", "B", "C"][(i % 3) as usize], i / 3 + 1);
        ok(
            home,
            &["set", "shared", &cell, &i.to_string(), "--no-worker"],
        );
    }
    // Entry 5 asked for a snapshot; wait for the worker to publish it.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let info = ok(home, &["info", "shared"]);
        if info.contains("newest on entry 5") && info.contains("pending    0") {
            break;
        }
        assert!(Instant::now() < deadline, "no snapshot appeared: {info}");
        std::thread::sleep(Duration::from_millis(50));
    }
    worker.kill().unwrap();
    worker.wait().unwrap();
    let log = ok(home, &["log", "shared"]);
    assert!(log.contains("snapshot=00000000000000000005"), "{log}");
    // A fresh reader opens from the snapshot and sees every cell.
    let rows = get_json(home, "shared", "A1:C3")["rows"].clone();
    let values: Vec<Value> = rows
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().clone())
        .map(|cell| cell["value"].clone())
        .collect();
    // Whole numbers are JSON integers.
    let want: Vec<Value> = (0..7)
        .map(Value::from)
        .chain([Value::Null, Value::Null])
        .collect();
    assert_eq!(values, want);
}

/// The markers an edit leaves for workers: one per job made due, cleared
/// by a worker's pass once it did the job, and cleared too when their
/// sheet is no more (else every pass would go over every sheet again).
#[test]
fn a_workers_pass_clears_the_markers_of_done_and_removed_sheets() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let markers = || {
        std::fs::read_dir(home.join("sheets").join("blobs").join(".due"))
            .map(|dir| dir.count())
            .unwrap_or(0)
    };
    for sheet in ["kept", "gone"] {
        ok(home, &["new", sheet, "--snapshot-interval", "2"]);
        for cell in ["A1", "A2"] {
            ok(home, &["set", sheet, cell, "1", "--no-worker"]);
        }
    }
    assert_eq!(markers(), 2);
    ok(home, &["rm", "gone"]);
    ok(home, &["worker", "--once"]);
    assert_eq!(markers(), 0);
    let info = ok(home, &["info", "kept"]);
    assert!(info.contains("pending    0"), "{info}");
}

#[test]
fn the_demo_runs() {
    let home = tempfile::tempdir().unwrap();
    let out = ok(
        home.path(),
        &[
            "demo",
            "--rows",
            "300",
            "--columns",
            "12",
            "--dir",
            home.path().join("demo").to_str().unwrap(),
        ],
    );
    assert!(out.contains("wrote 3600 edits"), "{out}");
    assert!(out.contains("reopened cold"), "{out}");
    assert!(out.contains("item 12"), "{out}");
    // Column B's format (0.00) shows: 2.5 as 2.50.
    assert!(out.contains("2.50"), "{out}");
    // It says where the sheet is kept and what to try; each suggestion runs.
    let tries: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("  infinisheet "))
        .collect();
    assert_eq!(tries.len(), 5, "{out}");
    for line in tries {
        let args: Vec<&str> = line.split_whitespace().collect();
        let run = bare().args(&args).output().unwrap();
        assert!(
            run.status.success(),
            "{line}: {}",
            String::from_utf8_lossy(&run.stderr)
        );
    }
    // Without --dir it says the storage is gone and how to keep it.
    let out = ok(home.path(), &["demo", "--rows", "20", "--columns", "4"]);
    assert!(out.contains("(temporary)"), "{out}");
    assert!(
        out.contains("removed now") && out.contains("infinisheet demo --dir DIR"),
        "{out}"
    );
}

/// A worker that outlives `mv`s follows the catalog: after `mv s/a s/b`
/// and `mv s/c s/a`, the jobs of s/b's log are done in s/b's folder, never
/// in the folder that now holds another sheet, and both sheets read back.
#[test]
fn a_long_running_worker_follows_sheets_across_moves() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let csv = |name: &str, word: &str, rows: u32| {
        let path = home.join(name);
        let text: String = (1..=rows).map(|i| format!("{word}{i}\n")).collect();
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let mut worker = std::process::Command::new(assert_cmd::cargo::cargo_bin("infinisheet"))
        .arg("--home")
        .arg(home)
        .args(["worker", "--interval", "0.05"])
        .env_remove("INFINISHEET_HOME")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = worker.stdout.take().unwrap();
    // Killed however the test ends, a failed assertion included.
    struct Killed(std::process::Child);
    impl Drop for Killed {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let worker = Killed(worker);
    let published = lines_of(stdout);
    // Waits for the worker to say it published on `entry`; returns the line.
    let wait_for = |entry: u32| -> String {
        let want = format!("published snapshot on entry {entry}");
        loop {
            let line = published
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("the worker published nothing on entry {entry}"));
            if line.ends_with(&want) {
                return line;
            }
        }
    };

    ok(home, &["new", "s/a"]);
    let a = csv("a.csv", "A", 250);
    ok(home, &["import", "s/a", &a, "--no-worker"]);
    // One block of 249 rows, then one of the last row, which asks for
    // the snapshot of everything before it.
    assert_eq!(wait_for(2), "s/a: published snapshot on entry 2");
    ok(home, &["mv", "s/a", "s/b"]);
    ok(home, &["new", "s/c"]);
    let c = csv("c.csv", "C", 250);
    ok(home, &["import", "s/c", &c, "--no-worker"]);
    assert_eq!(wait_for(2), "s/c: published snapshot on entry 2");
    ok(home, &["mv", "s/c", "s/a"]);
    let b2 = csv("b2.csv", "B", 100);
    ok(home, &["import", "s/b", &b2, "--at", "B1", "--no-worker"]);
    assert_eq!(
        wait_for(4),
        "s/b: published snapshot on entry 4",
        "the job of s/b's log was done for s/b"
    );
    // `rm` and `new` at the same path: the new sheet's jobs are done.
    ok(home, &["rm", "s/a"]);
    ok(home, &["new", "s/a"]);
    let d = csv("d.csv", "D", 250);
    ok(home, &["import", "s/a", &d, "--no-worker"]);
    assert_eq!(wait_for(2), "s/a: published snapshot on entry 2");
    drop(worker);
    let b = ok(home, &["get", "s/b", "A1:B2"]);
    assert!(b.contains("A1") && b.contains("B1"), "{b}");
    let a = ok(home, &["get", "s/a", "A1:A2"]);
    assert!(
        a.contains("D1") && !a.contains("A1") && !a.contains("C1"),
        "{a}"
    );
    // Every sheet the worker and the moves left behind is whole.
    let out = ok(home, &["check"]);
    assert_eq!(out.matches(": healthy").count(), 2, "{out}");
}

/// An import that stops on bad input says how much of the file is in the
/// sheet; one that leaves its snapshots to a worker says so.
#[test]
fn imports_report_what_they_committed_and_left() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let mut bytes: Vec<u8> = (1..=250)
        .flat_map(|i| format!("{i}\n").into_bytes())
        .collect();
    bytes.extend_from_slice(b"\xff\xfe not UTF-8\n");
    let bad = home.join("bad.csv");
    std::fs::write(&bad, bytes).unwrap();
    let line = fails(
        cli(home),
        &["import", "s", bad.to_str().unwrap(), "--batch", "100"],
    );
    assert!(
        line.contains("the first 200 rows (200 cells) were imported"),
        "{line}"
    );
    let good = home.join("good.csv");
    std::fs::write(&good, "1\n2\n").unwrap();
    let out = ok(
        home,
        &["import", "s", good.to_str().unwrap(), "--no-worker"],
    );
    assert!(out.contains("left to a `worker` process"), "{out}");
    assert!(!out.contains("snapshots done"), "{out}");
    // The next reading command says that jobs are pending.
    let out = cli(home).args(["get", "s", "A1"]).output().unwrap();
    assert!(out.status.success());
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("snapshot job(s) pending"), "{note}");
    // What the stopped import committed is a whole sheet.
    let out = ok(home, &["check", "s"]);
    assert!(out.contains("s: healthy"), "{out}");
}

/// An import from standard input that stops on bad input ends at once
/// although its input stays open (the read blocked on it is not waited
/// for); a wide first row above many empty lines imports in a few entries
/// within a block's limit.
#[test]
fn imports_end_on_open_input_and_take_wide_sparse_files() {
    use std::io::Write;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("infinisheet"))
        .arg("--home")
        .arg(home)
        .args(["import", "s", "-", "--batch", "2"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(b"a,b\n1,2\n\xff,3\n").unwrap();
    input.flush().unwrap();
    let (done, ended) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait_with_output());
    });
    let out = ended
        .recv_timeout(Duration::from_secs(60))
        .expect("the import ended while its input was open")
        .unwrap();
    drop(input);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains("the first 1 rows (2 cells) were imported"),
        "{said}"
    );

    let mut text = (1..=2000)
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(",");
    text.push_str(&"\n".repeat(200_001));
    text.push_str("x\n");
    let file = home.join("sparse.csv");
    std::fs::write(&file, &text).unwrap();
    ok(home, &["new", "sparse"]);
    ok(
        home,
        &["import", "sparse", file.to_str().unwrap(), "--no-worker"],
    );
    assert_eq!(ok(home, &["get", "sparse", "A200002", "--raw"]).trim(), "x");
    assert_eq!(ok(home, &["get", "sparse", "BXX1", "--raw"]).trim(), "2000");
    let info: Value = serde_json::from_str(&ok(home, &["info", "sparse", "--json"])).unwrap();
    assert!(info["entries"]["end"].as_u64().unwrap() <= 5, "{info}");
    // Rows between empty lines are not split into many entries either.
    let file = home.join("gappy.csv");
    std::fs::write(&file, "a\n\n\n\n".repeat(50_000)).unwrap();
    ok(home, &["new", "gappy"]);
    ok(
        home,
        &["import", "gappy", file.to_str().unwrap(), "--no-worker"],
    );
    let info: Value = serde_json::from_str(&ok(home, &["info", "gappy", "--json"])).unwrap();
    assert!(info["entries"]["end"].as_u64().unwrap() <= 5, "{info}");
    assert_eq!(ok(home, &["get", "gappy", "A199997", "--raw"]), "a\n");
}

/// CSV as people write it, through the command: a missing sheet is
/// named and not made (unless `--create`); a byte-order mark, CRLF and
/// numbers in their formats (`--types numbers`) come back through the
/// flags the import names; backslash escapes and comments; an open quote
/// refused, or taken with `--lenient`.
#[test]
fn import_reads_csv_as_people_write_it() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let file = home.join("in.csv");
    let text = b"\xEF\xBB\xBFid,code,amount,share\r\n1,06,\"1,234.50\",12.5%\r\n2,\"\",,-4.10\r\n";
    std::fs::write(&file, text).unwrap();
    let path = file.to_str().unwrap();
    let line = fails(cli(home), &["import", "books/q3", path]);
    assert!(
        line.contains("infinisheet new books/q3") && line.contains("--create"),
        "{line}"
    );
    assert_eq!(ok(home, &["ls"]), "", "a refused import made nothing");
    // Nor does one with --create whose file is refused before a row lands.
    let unclosed = home.join("unclosed.csv");
    std::fs::write(&unclosed, "a,\"never closed\nb\n").unwrap();
    let line = fails(
        cli(home),
        &["import", "refused", unclosed.to_str().unwrap(), "--create"],
    );
    assert!(line.contains("--lenient"), "{line}");
    assert_eq!(
        ok(home, &["ls"]),
        "",
        "a refused import with --create made nothing"
    );
    let out = cli(home)
        .args(["import", "books/q3", path, "--create", "--types", "numbers"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("`export --bom --crlf`"), "{note}");
    let back = cli(home)
        .args(["export", "books/q3", "--bom", "--crlf"])
        .output()
        .unwrap();
    assert_eq!(back.stdout, text);
    let cells = get_json(home, "books/q3", "B2:D3");
    assert_eq!(
        cells["rows"][0][0],
        serde_json::json!({"value": 6, "format": "00", "shown": "06"})
    );
    assert_eq!(cells["rows"][0][1]["value"], 1234.5);
    assert_eq!(
        cells["rows"][1][0],
        serde_json::json!({"value": ""}),
        "\"\" is empty text"
    );
    assert_eq!(
        cells["rows"][1][1],
        serde_json::json!({"value": null}),
        "an empty field"
    );

    let strange = home.join("strange.csv");
    std::fs::write(&strange, "# exported by hand\n\"a \\\"b\\\"\",c\n").unwrap();
    ok(home, &["new", "s"]);
    ok(
        home,
        &[
            "import",
            "s",
            strange.to_str().unwrap(),
            "--escape",
            "\\",
            "--comment",
            "#",
        ],
    );
    assert_eq!(ok(home, &["get", "s", "A1", "--raw"]), "a \"b\"\n");
    let open = home.join("open.csv");
    std::fs::write(&open, "a\nb,\"c\nd\n").unwrap();
    let line = fails(
        cli(home),
        &["import", "s", open.to_str().unwrap(), "--replace"],
    );
    assert!(
        line.contains("line 2") && line.contains("--lenient"),
        "{line}"
    );
    ok(
        home,
        &[
            "import",
            "s",
            open.to_str().unwrap(),
            "--replace",
            "--lenient",
        ],
    );
    assert_eq!(ok(home, &["get", "s", "B2", "--raw"]), "c\\nd\\n\n");
    // A `--replace` that fails after rows landed says the sheet was
    // cleared with them.
    let late = home.join("late.csv");
    std::fs::write(&late, "1\n2\n3\n\"open\n").unwrap();
    let line = fails(
        cli(home),
        &[
            "import",
            "s",
            late.to_str().unwrap(),
            "--replace",
            "--batch",
            "1",
        ],
    );
    assert!(line.contains("--replace cleared the sheet first"), "{line}");
    assert_eq!(ok(home, &["get", "s", "A2", "--raw"]), "2\n");
    assert_eq!(ok(home, &["get", "s", "B2", "--raw"]), "\n");
    // A file that quotes every field is named, and comes back so; one
    // whose lines end in more than one way is named.
    let all = home.join("all.csv");
    std::fs::write(&all, "\"a\",\"1\"\n\"\",\"b\"\n").unwrap();
    let out = cli(home)
        .args(["import", "s", all.to_str().unwrap(), "--replace"])
        .output()
        .unwrap();
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("quotes every field") && note.contains("`export --quote-all`"),
        "{note}"
    );
    let back = cli(home)
        .args(["export", "s", "--quote-all"])
        .output()
        .unwrap();
    assert_eq!(back.stdout, std::fs::read(&all).unwrap());
    let mixed = home.join("mixed.csv");
    std::fs::write(&mixed, "a\r\nb\nc\n").unwrap();
    let out = cli(home)
        .args(["import", "s", mixed.to_str().unwrap(), "--replace"])
        .output()
        .unwrap();
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(
        note.contains("more than one way (LF, CRLF)") && !note.contains("CR)"),
        "{note}"
    );
    // It cannot come back so: export writes one kind of line break.
    assert!(
        !note.contains("writes it back so") && note.contains("as closely as it can"),
        "{note}"
    );

    // Bytes that are not text in the encoding named, and a UTF-16 file
    // read as UTF-8, are refused saying what to do.
    let sjis = home.join("sjis.csv");
    std::fs::write(&sjis, b"ok\n\x82\xa0,\xff\xff\n").unwrap();
    let line = fails(
        cli(home),
        &[
            "import",
            "s",
            sjis.to_str().unwrap(),
            "--encoding",
            "shift_jis",
        ],
    );
    assert!(
        line.contains("line 2 holds bytes that are not Shift_JIS"),
        "{line}"
    );
    let utf16 = home.join("utf16.csv");
    std::fs::write(&utf16, b"\xff\xfea\x00,\x00b\x00\n\x00").unwrap();
    let line = fails(cli(home), &["import", "s", utf16.to_str().unwrap()]);
    assert!(line.contains("--encoding utf-16"), "{line}");
    ok(
        home,
        &[
            "import",
            "s",
            utf16.to_str().unwrap(),
            "--encoding",
            "utf-16",
            "--replace",
        ],
    );
    assert_eq!(ok(home, &["get", "s", "B1", "--raw"]), "b\n");

    // An export the encoding cannot hold names the cell, and leaves the
    // file it would have replaced as it was.
    ok(home, &["set", "s", "C2", "日本"]);
    let target = home.join("out.csv");
    std::fs::write(&target, "before\n").unwrap();
    let line = fails(
        cli(home),
        &[
            "export",
            "s",
            target.to_str().unwrap(),
            "--encoding",
            "latin1",
        ],
    );
    assert!(
        line.contains("'日' in C2") && line.contains("--encoding utf-8"),
        "{line}"
    );
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "before\n");
    let left: Vec<_> = std::fs::read_dir(home)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with(".infinisheet-export")
        })
        .collect();
    assert!(left.is_empty(), "a temporary file was left: {left:?}");
    ok(home, &["export", "s", target.to_str().unwrap()]);
    assert!(std::fs::read_to_string(&target).unwrap().contains("日本"));
}

/// The data directory of the only sheet in the catalog at `home`.
fn data_dir(home: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(home.join("sheets/blobs/.sheets"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.pop().unwrap()
}

/// Makes the sheet `t/s` (10x10 tiles) at `home` and imports 250 rows of
/// two cells into it, in blocks of 100 cells and two imports (so it has
/// two snapshots at least); returns the CSV text.
fn sheet_of_250_rows(home: &Path) -> String {
    ok(home, &["new", "t/s", "--tiles", "10x10"]);
    let text: String = (1..=250).map(|i| format!("{i},x{i}\n")).collect();
    // Two imports, so that the first one's snapshot (on its last entry,
    // waited for before it exits) is older than the second one's.
    let (first, second) = text.split_at(text.find("151,").unwrap());
    for (part, at) in [(first, "A1"), (second, "A151")] {
        let csv = home.join("rows.csv");
        std::fs::write(&csv, part).unwrap();
        ok(
            home,
            &[
                "import",
                "t/s",
                csv.to_str().unwrap(),
                "--batch",
                "100",
                "--at",
                at,
            ],
        );
    }
    text
}

/// `check` reads a sheet end to end and reports it healthy; after a tile
/// blob is damaged it names the snapshot and exits 1.
#[test]
fn check_finds_a_damaged_snapshot() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    sheet_of_250_rows(home);
    let out = ok(home, &["check"]);
    // The identity, then blocks of 50 rows, each import's last split 49 + 1.
    assert!(out.contains("t/s: healthy: entries 0..8"), "{out}");
    assert!(out.contains("snapshots whole"), "{out}");

    // Damage one tile of the snapshots (a byte in the middle of the file).
    let snapshots = data_dir(home).join("snapshots");
    let mut tiles = Vec::new();
    let mut dirs = vec![snapshots];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if !path.ends_with("index") {
                tiles.push(path);
            }
        }
    }
    tiles.sort();
    let tile = tiles.first().expect("a tile blob");
    let mut bytes = std::fs::read(tile).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(tile, bytes).unwrap();

    let out = cli(home).args(["check", "t/s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("is not whole"), "{stdout}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1 of 1 sheet has problems"),
        "{stdout}"
    );
}

/// A sheet whose newest snapshot went missing (the issue's dead end:
/// every command failed with `snapshot blob … is missing`) and whose
/// older snapshot has a damaged tile is rebuilt by `repair` from its log:
/// `check` reports it healthy again and it reads back whole.
#[test]
fn repair_rebuilds_missing_and_damaged_snapshots() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let text = sheet_of_250_rows(home);
    let snapshots = data_dir(home).join("snapshots");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&snapshots)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 2, "{dirs:?}");
    // The newest snapshot's directory goes; a tile of the oldest is damaged.
    std::fs::remove_dir_all(dirs.last().unwrap()).unwrap();
    let tile = dirs
        .iter()
        .map(|dir| dir.join("t0-0"))
        .find(|tile| tile.exists())
        .unwrap();
    let mut bytes = std::fs::read(&tile).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&tile, bytes).unwrap();

    let line = fails(cli(home), &["get", "t/s", "A1"]);
    assert!(line.contains("missing"), "{line}");
    let out = cli(home).args(["check", "t/s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));

    let out = ok(home, &["repair", "t/s"]);
    assert!(out.contains("rebuilt the snapshot on entry"), "{out}");
    assert!(out.contains("t/s: healthy"), "{out}");
    let out = ok(home, &["check", "t/s"]);
    assert!(out.contains("t/s: healthy: entries 0..8"), "{out}");
    assert_eq!(ok(home, &["export", "t/s"]), text);
    // Nothing left to do: a second repair rebuilds nothing.
    let out = ok(home, &["repair"]);
    assert!(!out.contains("rebuilt"), "{out}");
}

/// Every file and directory under `root` with its size and modification
/// time, so a test can tell that nothing was created or changed.
fn tree(root: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut found = Vec::new();
    let mut dirs = vec![root.to_owned()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let meta = std::fs::symlink_metadata(&path).unwrap();
            if meta.is_dir() {
                dirs.push(path.clone());
            }
            found.push((path, meta.len(), meta.modified().unwrap()));
        }
    }
    found.sort();
    found
}

/// Sets every file under `root` (and `root`) to `file` and every
/// directory to `dir` permissions.
fn chmod_tree(root: &Path, file: u32, dir: u32) {
    use std::os::unix::fs::PermissionsExt;
    for (path, _, _) in tree(root) {
        let mode = if path.is_dir() { dir } else { file };
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(dir)).unwrap();
}

/// The issue's sequence 4: with the catalog read-only (and, when the test
/// runs as root, the commands run as another user, who cannot write it),
/// `ls`, `get`, `export`, `info`, `log` and `check` work and change
/// nothing; reading a missing home, database or blob store is an error
/// that creates nothing.
#[test]
fn reading_commands_work_read_only_and_create_nothing() {
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::process::CommandExt;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let text = sheet_of_250_rows(home);
    let before = tree(home);
    chmod_tree(home, 0o444, 0o555);
    let as_root = std::fs::metadata(home.join("rows.csv")).unwrap().uid() == 0;
    // The checkout (and the binary in its target directory) may sit where
    // `nobody` cannot reach, such as root's home or a directory only root
    // may enter: `nobody` runs a copy in a directory of its own reach.
    let reachable = tempfile::tempdir().unwrap();
    let binary = if as_root {
        use std::os::unix::fs::PermissionsExt;
        let copy = reachable.path().join("infinisheet");
        // Copied by another process: a file this one held open for writing
        // would be inherited by a child another test forks meanwhile, and
        // running the copy would then fail with "Text file busy".
        let copied = std::process::Command::new("install")
            .args(["-m", "0755"])
            .arg(assert_cmd::cargo::cargo_bin("infinisheet"))
            .arg(&copy)
            .status()
            .unwrap();
        assert!(copied.success(), "install: {copied}");
        std::fs::set_permissions(reachable.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        copy
    } else {
        assert_cmd::cargo::cargo_bin("infinisheet")
    };
    let run = |args: &[&str]| -> std::process::Output {
        let mut command = std::process::Command::new(&binary);
        command
            .arg("--home")
            .arg(home)
            .args(args)
            .env_remove("INFINISHEET_HOME");
        if as_root {
            // `nobody` may read the catalog but write nothing in it.
            command.uid(65534).gid(65534);
        }
        command.output().unwrap()
    };
    let read = |args: &[&str]| -> String {
        let out = run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?} failed read-only: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    };
    let listed = read(&["ls", "t"]);
    assert!(listed.contains('s'), "{listed}");
    let got = read(&["get", "t/s", "A1:B2"]);
    assert!(got.contains("x1") && got.contains("x2"), "{got}");
    assert_eq!(read(&["export", "t/s"]), text);
    let info = read(&["info", "t/s"]);
    assert!(info.contains("pending"), "{info}");
    read(&["log", "t/s"]);
    assert!(read(&["check"]).contains("t/s: healthy"));
    // A write is refused, and changes nothing either.
    let out = run(&["set", "t/s", "A1", "9"]);
    assert_eq!(out.status.code(), Some(1), "a write to a read-only catalog");
    chmod_tree(home, 0o644, 0o755);
    assert_eq!(tree(home), before, "reading changed the catalog");

    // Missing places are errors, and reading makes none of them.
    let missing = home.join("no/such/home");
    let line = fails(cli(&missing), &["ls"]);
    assert!(line.contains("no such directory"), "{line}");
    assert!(!home.join("no").exists());
    let other_db = home.join("OTHER.db");
    let sheets = format!("file:{}", home.join("sheets").display());
    let mut command = Command::cargo_bin("infinisheet").unwrap();
    command.args(["--logs", &format!("sqlite:{}", other_db.display())]);
    command.args(["--blobs", &sheets]);
    let line = fails(command, &["get", "t/s", "A1"]);
    assert!(line.contains("no database"), "{line}");
    assert!(!other_db.exists());
    let other_blobs = home.join("OTHER");
    let mut command = Command::cargo_bin("infinisheet").unwrap();
    command.args([
        "--logs",
        &format!("sqlite:{}", home.join("logs.db").display()),
    ]);
    command.args(["--blobs", &format!("file:{}", other_blobs.display())]);
    let line = fails(command, &["ls"]);
    assert!(line.contains("no blob store"), "{line}");
    assert!(!other_blobs.exists());
}

/// `clear` blanks a range with one entry; `import --replace` leaves the
/// sheet holding the file and nothing else; the dialect flags and the
/// note that names them; bounded ranges are clear errors.
#[test]
fn clear_replace_and_dialects() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let first = home.join("first.csv");
    std::fs::write(&first, "a,b,c\nd,e,f\ng,h,i\n").unwrap();
    ok(home, &["import", "s", first.to_str().unwrap()]);
    let said = ok(home, &["clear", "s", "B1:C2"]);
    assert!(said.contains("B1:C2 cleared"), "{said}");
    assert_eq!(ok(home, &["export", "s"]), "a\nd\ng,h,i\n");
    let log = ok(home, &["log", "s"]);
    // The last row is a block of its own (the snapshot holds the rest).
    assert!(
        log.contains("block A1:C2 (6 cells)") && log.contains("clear B1:C2"),
        "{log}"
    );

    let second = home.join("second.csv");
    std::fs::write(&second, "06;x y;4.10\r\n;\"q;r\";TRUE").unwrap();
    let out = cli(home)
        .args([
            "import",
            "s",
            second.to_str().unwrap(),
            "--replace",
            "--delimiter",
            ";",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("--crlf --no-final-newline"), "{note}");
    let back = ok(
        home,
        &[
            "export",
            "s",
            "--delimiter",
            ";",
            "--crlf",
            "--no-final-newline",
        ],
    );
    assert_eq!(back, "06;x y;4.10\r\n;\"q;r\";TRUE");
    let got = get_json(home, "s", "A1:C2");
    assert_eq!(got["rows"][0][0]["value"], "06");
    assert_eq!(got["rows"][0][2]["value"], "4.10");
    assert_eq!(got["rows"][1][2]["value"], true);

    // (A1:A4294967296 is all of column A, cut to the rows in use.)
    let line = fails(cli(home), &["get", "s", "A1:A4294967295"]);
    assert!(line.contains("get prints at most 1000000"), "{line}");
    let line = fails(cli(home), &["export", "s", "--range", "A1:XFD1048576"]);
    assert!(line.contains("an export writes at most"), "{line}");
    let line = fails(cli(home), &["export", "s", "--delimiter", "ab"]);
    assert!(line.contains("delimiter"), "{line}");
    ok(home, &["clear", "s", "all"]);
    assert_eq!(ok(home, &["export", "s"]), "");
}

/// Output into a pipe whose reader has gone (`| head`) ends the command
/// quietly: exit 0, nothing on stderr, no panic (it was exit 101, or 1,
/// with "failed printing to stdout: Broken pipe").
#[test]
fn a_closed_pipe_is_a_quiet_end() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "folder/s"]);
    ok(home, &["set", "folder/s", "A1", "42"]);
    ok(home, &["set", "folder/s", "B2", "text"]);
    let binary = assert_cmd::cargo::cargo_bin("infinisheet");
    for args in [
        &["ls"][..],
        &["ls", "folder"],
        &["get", "folder/s"],
        &["get", "folder/s", "A1:B2", "--json"],
        &["export", "folder/s"],
        &["export", "folder/s", "-"],
        &["log", "folder/s"],
        &["info", "folder/s"],
        &["ls", "--json"],
        &["info", "folder/s", "--json"],
        &["log", "folder/s", "--json"],
        &["demo", "--rows", "10", "--columns", "2"],
        &["--help"],
        &["man"],
    ] {
        // The reader is closed before the command starts: its first write
        // fails, every time.
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = std::process::Command::new(&binary)
            .arg("--home")
            .arg(home)
            .args(args)
            .env_remove("INFINISHEET_HOME")
            .stdout(writer)
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {stderr}", out.status);
        assert!(stderr.is_empty(), "{args:?}: {stderr}");
    }
}

/// `export SHEET -` writes to standard output (as `import` reads `-` from
/// standard input), not to a file named `-`; whole columns and rows are
/// ranges of the cells in use.
#[test]
fn export_to_dash_and_whole_columns() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    ok(home, &["set", "s", "A1", "1"]);
    ok(home, &["set", "s", "B3", "x"]);
    let out = cli(home)
        .current_dir(home)
        .args(["export", "s", "-"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "1\n\n,x\n");
    assert!(!home.join("-").exists());
    let column = get_json(home, "s", "B:B");
    assert_eq!(column["range"], "B1:B3");
    assert_eq!(column["rows"][2][0]["value"], "x");
    let rows = get_json(home, "s", "3:3");
    assert_eq!(rows["range"], "A3:B3");
    // Columns past the last in use span the rows in use, blank.
    let blank = get_json(home, "s", "D:E");
    assert_eq!(blank["range"], "D1:E3", "{blank}");
    // On an empty sheet, whole columns hold nothing.
    ok(home, &["new", "empty"]);
    let none = get_json(home, "empty", "A:C");
    assert_eq!(none["rows"].as_array().map(Vec::len), Some(0), "{none}");
}

/// An import that stops part way keeps the rows that landed, and its own
/// worker writes their snapshot before the error is told, as after one
/// that went through. Before, the job was left pending for a `worker`.
#[test]
fn a_stopped_import_leaves_its_snapshot_written() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    let file = home.join("late.csv");
    std::fs::write(&file, b"1,a\n2,b\n3,c\n4,d\ncaf\xe9,e\n").unwrap();
    let said = fails(
        cli(home),
        &["import", "s", file.to_str().unwrap(), "--batch", "2"],
    );
    assert!(
        said.contains("not UTF-8") && said.contains("3 rows"),
        "{said}"
    );
    let info = ok(home, &["info", "s"]);
    assert!(info.contains("pending    0"), "{info}");
    assert!(!info.contains("snapshots  0"), "{info}");
    assert_eq!(ok(home, &["get", "s", "A3", "--raw"]).trim(), "3");
}

/// `export` into a named pipe (or a device: `/dev/null`) writes into it;
/// it used to rename its file over it, so `export s /dev/null` run as root
/// put a plain file where the device was. Through a symbolic link, the
/// file it names gets the export and the link stays a link.
#[test]
fn export_writes_into_pipes_and_through_links() {
    use std::os::unix::fs::FileTypeExt;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    ok(home, &["set", "s", "A1", "1"]);
    ok(home, &["set", "s", "B2", "x"]);
    let pipe = home.join("pipe");
    let made = std::process::Command::new("mkfifo")
        .arg(&pipe)
        .status()
        .unwrap();
    assert!(made.success());
    // The reader: opening a pipe waits for its writer.
    let reading = {
        let pipe = pipe.clone();
        std::thread::spawn(move || std::fs::read_to_string(pipe).unwrap())
    };
    ok(home, &["export", "s", pipe.to_str().unwrap()]);
    // Checked first: a replaced pipe leaves the reader waiting for ever.
    let kind = std::fs::symlink_metadata(&pipe).unwrap().file_type();
    assert!(kind.is_fifo(), "the pipe was replaced: {kind:?}");
    assert_eq!(reading.join().unwrap(), "1\n,x\n");

    let file = home.join("data.csv");
    std::fs::write(&file, "old\n").unwrap();
    let link = home.join("link.csv");
    std::os::unix::fs::symlink(&file, &link).unwrap();
    ok(home, &["export", "s", link.to_str().unwrap()]);
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "1\n,x\n");

    // `/dev/stdout` open on a file the shell appends to: written through.
    let appended = home.join("appended.csv");
    std::fs::write(&appended, "kept\n").unwrap();
    let out = std::fs::OpenOptions::new()
        .append(true)
        .open(&appended)
        .unwrap();
    let status = std::process::Command::new(assert_cmd::cargo::cargo_bin("infinisheet"))
        .arg("--home")
        .arg(home)
        .args(["-q", "export", "s", "/dev/stdout"])
        .env_remove("INFINISHEET_HOME")
        .stdout(out)
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(std::fs::read_to_string(&appended).unwrap(), "kept\n1\n,x\n");
}

/// An export over a file keeps its mode; through a dangling link it makes
/// the file the link names; a loop of links, and a device that fails the
/// write, are errors naming the path.
#[test]
fn export_keeps_modes_follows_dangling_links_and_names_failed_paths() {
    use std::os::unix::fs::PermissionsExt;
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    ok(home, &["set", "s", "A1", "1"]);
    let kept = home.join("kept.csv");
    std::fs::write(&kept, "old\n").unwrap();
    std::fs::set_permissions(&kept, std::fs::Permissions::from_mode(0o440)).unwrap();
    ok(home, &["export", "s", kept.to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(&kept).unwrap(), "1\n");
    let mode = std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o440, "{mode:o}");

    let dangling = home.join("dangling.csv");
    std::os::unix::fs::symlink("made/by/link.csv", &dangling).unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(home.join("made/by")).unwrap();
    ok(home, &["export", "s", dangling.to_str().unwrap()]);
    assert!(
        std::fs::symlink_metadata(&dangling)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(home.join("made/by/link.csv")).unwrap(),
        "1\n"
    );

    let (a, b) = (home.join("a.csv"), home.join("b.csv"));
    std::os::unix::fs::symlink(&b, &a).unwrap();
    std::os::unix::fs::symlink(&a, &b).unwrap();
    let err = fails(cli(home), &["export", "s", a.to_str().unwrap()]);
    assert!(err.contains("loop of symbolic links"), "{err}");
    assert!(
        std::fs::symlink_metadata(&a)
            .unwrap()
            .file_type()
            .is_symlink()
    );

    if std::path::Path::new("/dev/full").exists() {
        let err = fails(cli(home), &["export", "s", "/dev/full"]);
        assert!(err.contains("/dev/full"), "{err}");
    }
}

/// Where the storage is: `INFINISHEET_LOGS`/`INFINISHEET_BLOBS` as
/// `--logs`/`--blobs`; `--home` and URLs never both silently (the command
/// line wins over the environment, both at one level is an error); a
/// `--home` that is a file and `memory:` (gone when the command ends) are
/// clear errors.
#[test]
fn storage_from_the_environment_and_never_two_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let logs = format!("sqlite:{}", dir.join("urls.db").display());
    let blobs = format!("file:{}", dir.join("blobs").display());
    // From the environment.
    let out = bare()
        .env("INFINISHEET_LOGS", &logs)
        .env("INFINISHEET_BLOBS", &blobs)
        .args(["new", "from-env"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = bare()
        .args(["--logs", &logs, "--blobs", &blobs, "ls"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(listed.stdout).unwrap().trim(), "from-env");
    // A home in the environment yields to URLs on the command line.
    let out = bare()
        .env("INFINISHEET_HOME", dir.join("home"))
        .args(["--logs", &logs, "--blobs", &blobs, "ls"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap().trim(), "from-env");
    assert!(!dir.join("home").exists());
    // One from the environment, the other from the command line.
    for (variable, value, flag, given) in [
        ("INFINISHEET_BLOBS", &blobs, "--logs", &logs),
        ("INFINISHEET_LOGS", &logs, "--blobs", &blobs),
    ] {
        let out = bare()
            .env(variable, value)
            .args([flag, given, "ls"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8(out.stdout).unwrap().trim(),
            "from-env",
            "{variable} and {flag}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // One without the other, wherever it comes from: an error naming both.
    let out = bare()
        .env("INFINISHEET_LOGS", &logs)
        .arg("ls")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("--blobs") && said.contains("INFINISHEET_BLOBS"),
        "{said}"
    );
    let out = bare().args(["--blobs", &blobs, "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    // --blobs beside --home is refused, whatever the environment holds.
    let mut both = bare();
    both.env("INFINISHEET_LOGS", &logs)
        .arg("--home")
        .arg(dir.join("home"));
    let out = both.args(["--blobs", &blobs, "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one or the other"));
    // Both on the command line, or both in the environment: an error.
    let mut both = bare();
    both.arg("--home").arg(dir.join("home"));
    both.args(["--logs", &logs, "--blobs", &blobs]);
    let out = both.arg("ls").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("one or the other"));
    let out = bare()
        .env("INFINISHEET_HOME", dir.join("home"))
        .env("INFINISHEET_LOGS", &logs)
        .env("INFINISHEET_BLOBS", &blobs)
        .arg("ls")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("both set"));
    // A home that is a file.
    let file = dir.join("a-file");
    std::fs::write(&file, "").unwrap();
    let mut command = bare();
    command.arg("--home").arg(&file);
    let line = fails(command, &["ls"]);
    assert!(line.contains("is a file, not a directory"), "{line}");
    // memory: would lose what the command does.
    let line = fails(
        bare(),
        &["--logs", "memory:", "--blobs", &blobs, "new", "gone"],
    );
    assert!(line.contains("lasts only while one command runs"), "{line}");
}

/// `mv` into a folder that exists (or one named with a trailing `/`)
/// keeps the name, as `mv` does; counts are singular for one.
#[test]
fn mv_into_a_folder_and_counts_in_words() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "q3"]);
    ok(home, &["new", "--folder", "archive"]);
    assert_eq!(
        ok(home, &["mv", "q3", "archive"]).trim(),
        "moved q3 to archive/q3"
    );
    ok(home, &["new", "q4"]);
    assert_eq!(
        ok(home, &["mv", "q4", "later/"]).trim(),
        "moved q4 to later/q4"
    );
    assert_eq!(ok(home, &["ls", "archive"]).trim(), "q3");
    // Into the folder it is in already: said so (it said "is not a valid
    // path: it is inside archive/q3").
    let line = fails(cli(home), &["mv", "archive/q3", "archive"]);
    assert_eq!(line, "error: archive/q3 is in archive already");
    ok(home, &["new", "q5"]);
    let line = fails(cli(home), &["mv", "q5", "/"]);
    assert_eq!(line, "error: q5 is in / already");
    // Onto itself; and what is not there is said not to be.
    let line = fails(cli(home), &["mv", "q5", "q5"]);
    assert!(line.contains("it is where the item is already"), "{line}");
    let line = fails(cli(home), &["mv", "ghost", "/"]);
    assert!(
        line.contains("ghost") && line.contains("not exist"),
        "{line}"
    );
    let line = fails(cli(home), &["mv", "archive/ghost", "archive"]);
    assert!(line.contains("not exist"), "{line}");
    ok(home, &["set", "archive/q3", "A1", "1"]);
    let info = ok(home, &["info", "archive/q3"]);
    assert!(info.contains("1 row x 1 column;"), "{info}");
    let csv = home.join("one.csv");
    std::fs::write(&csv, "x\n").unwrap();
    let said = ok(home, &["import", "later/q4", csv.to_str().unwrap()]);
    assert!(
        said.starts_with("imported 1 cell (1 row, 1 column)"),
        "{said}"
    );
}

/// `snapshot` on a sheet whose last entry has its snapshot already says so
/// and rewrites nothing (it said "published" again and wrote it again).
#[test]
fn a_second_snapshot_says_there_is_one() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    ok(home, &["set", "s", "A1", "1", "--no-worker"]);
    ok(home, &["set", "s", "A2", "2", "--no-worker"]);
    let first = ok(home, &["snapshot", "s"]);
    assert!(first.contains("published"), "{first}");
    let listing = |home: &Path| {
        let mut names: Vec<PathBuf> = walk(&home.join("sheets"));
        names.sort();
        names
    };
    let before = listing(home);
    let second = ok(home, &["snapshot", "s"]);
    assert!(second.contains("nothing to do"), "{second}");
    assert!(!second.contains("published"), "{second}");
    assert_eq!(listing(home), before, "nothing was written");
}

/// Every file below `dir`, with its length and modification time.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            let meta = std::fs::metadata(&path).unwrap();
            found.push(path.join(format!("{}-{:?}", meta.len(), meta.modified().unwrap())));
        }
    }
    found
}

/// `get` shows what a spreadsheet shows: number formats applied in a table
/// (the stored value with `--unformatted`, `--raw`, CSV and JSON); cell
/// text is terminal-safe (an escape sequence or a line break is shown, not
/// obeyed) and columns align by display width (CJK takes two columns).
#[test]
fn get_shows_formats_safely_in_every_output() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    ok(
        home,
        &["set", "s", "A1", "42", "--format", "0.00", "--no-worker"],
    );
    ok(
        home,
        &["set", "s", "B1", "\u{1b}[31mRED\nnext", "--no-worker"],
    );
    ok(home, &["set", "s", "A2", "日本語", "--no-worker"]);
    ok(
        home,
        &["set", "s", "B2", "0.256", "--format", "0.0%", "--no-worker"],
    );
    ok(
        home,
        &[
            "set",
            "s",
            "A3",
            "1234567",
            "--format",
            "#,##0",
            "--no-worker",
        ],
    );

    let table = ok(home, &["get", "s"]);
    assert!(
        !table.contains('\u{1b}'),
        "an escape reached the terminal: {table:?}"
    );
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 4, "one line a row: {table:?}");
    assert_eq!(lines[1], "1  42.00      \\e[31mRED\\nnext");
    assert_eq!(lines[2], "2  日本語     25.6%");
    assert_eq!(lines[3], "3  1,234,567");
    let unformatted = ok(home, &["get", "s", "--unformatted"]);
    assert!(
        unformatted.lines().nth(1).unwrap().starts_with("1  42 "),
        "{unformatted}"
    );

    assert_eq!(ok(home, &["get", "s", "A1", "--raw"]), "42\n");
    assert_eq!(
        ok(home, &["get", "s", "A1:B2", "-o", "raw"]),
        "42\t\u{1b}[31mRED\\nnext\n日本語\t0.256\n"
    );
    assert_eq!(
        ok(home, &["get", "s", "A1:B2", "-o", "csv"]),
        "42,\"\u{1b}[31mRED\nnext\"\n日本語,0.256\n"
    );
    assert_eq!(
        ok(home, &["get", "s", "A2:B2", "-o", "tsv"]),
        "日本語\t0.256\n"
    );
    let markdown = ok(home, &["get", "s", "A1:B2", "-o", "markdown"]);
    assert_eq!(
        markdown,
        "| | A | B |\n|---|---|---|\n| 1 | 42.00 | \\e[31mRED<br>next |\n| 2 | 日本語 | 25.6% |\n"
    );
    let json: Value = serde_json::from_str(&ok(home, &["get", "s", "A1", "-o", "json"])).unwrap();
    assert_eq!(json["rows"][0][0]["value"], 42.0);
    assert_eq!(json["rows"][0][0]["format"], "0.00");
}

/// `log` shows a number as a number and text as quoted text, made
/// terminal-safe and cut with its size when long (it printed `A1 = "42"`
/// and a 50 MB cell on one line, escapes and all).
#[test]
fn log_shows_values_by_kind_and_long_text_cut() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    ok(home, &["set", "s", "A1", "42", "--no-worker"]);
    ok(home, &["set", "s", "A2", "'42", "--no-worker"]);
    let long = format!("\u{1b}[31m{}", "x".repeat(100_000));
    ok(home, &["set", "s", "A3", &long, "--no-worker"]);
    let log = ok(home, &["log", "s"]);
    let lines: Vec<&str> = log.lines().collect();
    assert!(lines[2].ends_with("  A1 = 42"), "{log}");
    assert!(lines[3].ends_with("  A2 = \"42\""), "{log}");
    assert!(!log.contains('\u{1b}'), "{log:?}");
    assert!(lines[4].contains("\\e[31mxxx"), "{log}");
    assert!(lines[4].contains("…\" (100005 bytes)"), "{log}");
    assert!(lines[4].len() < 200, "{}", lines[4].len());
}

/// Shell completions and a manual page from clap's own tools; `-q` keeps
/// notes and progress off stderr.
#[test]
fn completions_man_page_quiet_and_verbose() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(home, &["completions", shell]);
        assert!(script.contains("infinisheet"), "{shell}");
        assert!(script.contains("import"), "{shell}: the subcommands");
    }
    let man = ok(home, &["man"]);
    assert!(
        man.starts_with(".ie") || man.contains(".TH infinisheet"),
        "{}",
        &man[..80]
    );
    assert!(man.contains("INFINISHEET_HOME"));
    // One page: the commands listed in it, naming no page per command
    // (it named `infinisheet-new(1)` and others that do not exist).
    assert!(
        !man.contains("infinisheet-new(1)") && !man.contains("(1)\n"),
        "{man}"
    );
    for command in ["new", "import", "serve", "worker"] {
        assert!(
            man.contains(&format!("\\fBinfinisheet {command}\\fR")),
            "{command} missing from the page"
        );
    }
    assert!(man.contains("infinisheet import [OPTIONS]"), "usage lines");

    ok(home, &["new", "s"]);
    let csv = home.join("crlf.csv");
    std::fs::write(&csv, "a,b\r\n").unwrap();
    let loud = cli(home)
        .args(["import", "s", csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&loud.stderr).contains("note:"));
    let quiet = cli(home)
        .args(["-q", "import", "s", csv.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(quiet.status.success());
    assert!(
        quiet.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&quiet.stderr)
    );
}

/// SIGTERM (as `kill`, systemd and container runtimes send) and Ctrl-C
/// end a worker as litestream ends: the work in hand is finished, the exit
/// is 0. (It was killed by the signal, exit 143.)
#[test]
fn a_worker_stops_cleanly_on_sigterm_and_ctrl_c() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s", "--snapshot-interval", "5"]);
    for signal in ["-TERM", "-INT"] {
        let mut worker = std::process::Command::new(assert_cmd::cargo::cargo_bin("infinisheet"))
            .arg("--home")
            .arg(home)
            .args(["worker", "--interval", "0.05"])
            .env_remove("INFINISHEET_HOME")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = worker.stderr.take().unwrap();
        let said = lines_of(stderr);
        // The banner comes once the signals are the worker's to handle.
        let banner = said.recv_timeout(Duration::from_secs(60)).unwrap();
        assert!(banner.starts_with("worker: all sheets"), "{banner}");
        let killed = std::process::Command::new("kill")
            .args([signal, &worker.id().to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = worker.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = worker.kill();
                panic!("the worker did not stop on {signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(status.code(), Some(0), "{signal}: {status:?}");
        let rest: Vec<String> = said.try_iter().collect();
        assert!(
            rest.iter()
                .any(|l| l.contains("stopping after the work in hand")),
            "{rest:?}"
        );
    }
}

/// `worker --history N` archives an idle sheet's old entries on its first
/// pass (it waited for a new snapshot job), and `log --from 0` reads the
/// archived entries (it said "sequence id 0 is out of range").
#[test]
fn worker_history_on_an_idle_sheet_and_log_into_history() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s", "--snapshot-interval", "5"]);
    for i in 1..=12 {
        ok(home, &["set", "s", &format!("A{i}"), &i.to_string()]);
    }
    let info = ok(home, &["info", "s"]);
    assert!(info.contains("pending    0"), "{info}");
    let out = ok(home, &["worker", "--once", "--history", "1"]);
    assert!(
        out.contains("s: archived history; the log now starts at entry 10"),
        "{out}"
    );
    let log = ok(home, &["log", "s", "--from", "0", "--limit", "13"]);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        lines[0], "entries 0..13 (0..10 archived in history); showing 0..13",
        "{log}"
    );
    assert!(lines[1].contains("identity of sheet") && lines[1].ends_with("(archived)"));
    assert!(lines[2].ends_with("  A1 = 1  (archived)"), "{log}");
    assert!(lines[10].ends_with("  A9 = 9  (archived)"), "{log}");
    assert!(lines[11].contains("  A10 = 10  snapshot="), "{log}");
    assert!(!lines[11].contains("archived") && lines[11].contains("snapshot="));
    assert_eq!(lines.len(), 14, "{log}");
    // Past the end is a clear error.
    let err = fails(cli(home), &["log", "s", "--from", "99"]);
    assert!(err.contains("ends at entry 13"), "{err}");
}

/// `ls`, `info` and `log` speak JSON too, for scripts (only `get` and
/// `export` did).
#[test]
fn ls_info_and_log_print_json() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "f/s"]);
    ok(home, &["new", "f/sub", "--folder"]);
    ok(home, &["set", "f/s", "B2", "42", "--format", "0.00"]);
    ok(home, &["set", "f/s", "A1", "hi"]);
    let ls: Value = serde_json::from_str(&ok(home, &["ls", "f", "--json"])).unwrap();
    assert_eq!(
        ls,
        serde_json::json!([
            { "name": "s", "kind": "sheet" },
            { "name": "sub", "kind": "folder" }
        ])
    );
    let info: Value = serde_json::from_str(&ok(home, &["info", "f/s", "--json"])).unwrap();
    assert_eq!(info["sheet"], "f/s");
    assert_eq!(info["entries"]["end"], 3);
    assert_eq!(
        (info["rows"].clone(), info["columns"].clone()),
        (2.into(), 2.into())
    );
    assert_eq!(info["pending"], 0);
    let log: Value = serde_json::from_str(&ok(home, &["log", "f/s", "--json"])).unwrap();
    let entries = log["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(entries[0]["edit"]["kind"], "identity");
    assert_eq!(
        entries[1]["edit"],
        serde_json::json!({ "kind": "set", "cell": "B2", "value": 42, "format": "0.00", "shown": "42.00" })
    );
    assert_eq!(entries[2]["edit"]["value"], "hi");
    assert_eq!(entries[2]["seq"], 2);
}

/// `--help` groups the global options (storage, messages) and ends with
/// examples; every command's help has examples of its own that name it.
#[test]
fn help_groups_options_and_every_command_has_examples() {
    let out = bare().arg("--help").output().unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for heading in ["\nStorage:\n", "\nMessages:\n", "\nExamples:\n"] {
        assert!(help.contains(heading), "no {heading:?} in {help}");
    }
    let commands = [
        "new", "ls", "mv", "rm", "info", "check", "repair", "set", "clear", "get", "import",
        "export", "log", "snapshot", "worker", "demo",
    ];
    for command in commands {
        let out = bare().args([command, "--help"]).output().unwrap();
        assert!(out.status.success());
        let help = String::from_utf8(out.stdout).unwrap();
        let examples = help
            .split_once("\nExamples:\n")
            .map(|(_, examples)| examples)
            .unwrap_or_else(|| panic!("`{command} --help` has no examples: {help}"));
        assert!(
            examples
                .lines()
                .all(|l| l.contains(&format!("infinisheet {command}"))),
            "{command}: {examples}"
        );
    }
}

/// An error of the file system says what the OS said, not only what the
/// command was doing ("opening the lock file of X" alone).
#[test]
fn storage_errors_keep_the_os_reason() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs");
    let urls = [
        "--logs".to_owned(),
        format!("file:{}", logs.display()),
        "--blobs".to_owned(),
        format!("file:{}", dir.path().join("blobs").display()),
    ];
    let out = bare().args(&urls).args(["new", "s"]).output().unwrap();
    assert!(out.status.success());
    let log_dir = std::fs::read_dir(&logs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let lock = log_dir.join("LOCK");
    std::fs::remove_file(&lock).unwrap();
    std::fs::create_dir(&lock).unwrap();
    std::fs::write(lock.join("x"), "").unwrap();
    let mut command = bare();
    command.args(&urls);
    let err = fails(command, &["get", "s", "A1"]);
    assert!(err.contains("opening the lock file of"), "{err}");
    assert!(err.contains("Is a directory (os error 21)"), "{err}");
}

/// Without AWS credentials an `s3://` URL says so, and what to set: not
/// the timeout or refusal of the instance metadata service at
/// 169.254.169.254 that `object_store` asks last (pointed at a closed port
/// here, as off EC2 it answers nothing), and with
/// `AWS_EC2_METADATA_DISABLED=true` without asking it at all.
#[test]
fn missing_aws_credentials_say_what_to_set() {
    let s3 = || {
        let mut command = bare();
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("AWS_")) {
            command.env_remove(key);
        }
        command
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT", "http://127.0.0.1:1")
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_METADATA_ENDPOINT", "http://127.0.0.1:1")
            .args([
                "--logs",
                "s3://bucket/logs",
                "--blobs",
                "s3://bucket/sheets",
            ]);
        command
    };
    let err = fails(s3(), &["ls"]);
    assert!(
        err.contains("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{err}"
    );
    assert!(
        err.contains("the metadata service answered nothing"),
        "{err}"
    );
    assert!(!err.contains("latest/api/token"), "{err}");
    let mut disabled = s3();
    disabled.env("AWS_EC2_METADATA_DISABLED", "true");
    let err = fails(disabled, &["ls"]);
    assert!(err.contains("no AWS credentials"), "{err}");
    assert!(err.contains("was not asked"), "{err}");
}

/// Every entry says when it was made: `log` shows the time (UTC, to the
/// second) and `log --json` to the millisecond.
#[test]
fn log_entries_carry_their_time() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let before = std::time::SystemTime::now() - Duration::from_secs(1);
    ok(home, &["new", "s"]);
    ok(home, &["set", "s", "A1", "1", "--no-worker"]);
    let after = std::time::SystemTime::now() + Duration::from_secs(1);
    let log: Value = serde_json::from_str(&ok(home, &["log", "s", "--json"])).unwrap();
    for entry in log["entries"].as_array().unwrap() {
        let text = entry["time"]
            .as_str()
            .unwrap_or_else(|| panic!("no time: {entry}"));
        let at = humantime::parse_rfc3339(text).unwrap();
        assert!(before <= at && at <= after, "{text}");
    }
    let table = ok(home, &["log", "s"]);
    let line = table.lines().nth(2).unwrap();
    let shown = line.split_whitespace().nth(1).unwrap();
    let at = humantime::parse_rfc3339(shown).unwrap();
    assert!(
        before - Duration::from_secs(1) <= at && at <= after,
        "{line}"
    );
}

/// The catalog in `home`, for a test to do what a buggy host app or an
/// interrupted command would.
fn storage(home: &Path) -> (tokio::runtime::Runtime, infinisheet::Catalog) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let storage = runtime
        .block_on(infinisheet::Storage::embedded(home))
        .unwrap();
    (runtime, infinisheet::Catalog::new(storage))
}

/// An entry the sheet cannot read (a flipped byte, a client's garbage)
/// does not end the sheet: `get` and `set` say it is damaged and name the
/// repair, `check` names the entry, and `repair --rebuild` makes a new log
/// of every entry that can be read, reporting the one it dropped; the old
/// log is kept and a note in the sheet's data says so.
#[test]
fn a_damaged_entry_is_named_and_rebuilt_around() {
    use infinisheet::event_log::{EventLogExt, KnownSnapshot, LogEntry};
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    for (cell, value) in [("A1", "1"), ("A2", "2"), ("A3", "3")] {
        ok(home, &["set", "s", cell, value, "--no-worker"]);
    }
    let (runtime, catalog) = storage(home);
    let (old_log, damaged_at) = runtime.block_on(async {
        let sheet = catalog.open_sheet("s").await.unwrap();
        let log = sheet.log();
        let end = log.bounds().await.unwrap().end;
        log.add_entry(
            LogEntry::new(&b"\xff\x00garbage"[..]),
            end,
            KnownSnapshot::NotTracked,
        )
        .await
        .unwrap();
        (sheet.metadata().log_id.clone(), end)
    });
    for args in [
        &["get", "s", "A1"][..],
        &["set", "s", "A4", "4", "--no-worker"],
    ] {
        let err = fails(cli(home), args);
        assert!(
            err.contains("is damaged")
                && err.contains(&format!("log entry {damaged_at}"))
                && err.contains("repair --rebuild"),
            "{args:?}: {err}"
        );
    }
    let out = cli(home).args(["check", "s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("s: log entry {damaged_at} cannot be read"))
            || stdout.contains(&format!("log entry {damaged_at} cannot be read")),
        "{stdout}"
    );
    let repaired = ok(home, &["repair", "s", "--rebuild"]);
    assert!(
        repaired.contains(&format!("dropped entry {damaged_at}:"))
            && repaired.contains(&format!("the old log {old_log} is kept")),
        "{repaired}"
    );
    assert_eq!(
        ok(home, &["get", "s", "A1:A3", "--output", "csv"]).trim(),
        "1\n2\n3"
    );
    ok(home, &["set", "s", "A4", "4"]);
    assert_eq!(ok(home, &["get", "s", "A3", "--raw"]).trim(), "3");
    ok(home, &["check", "s"]);
    runtime.block_on(async {
        let sheet = catalog.open_sheet("s").await.unwrap();
        assert_ne!(sheet.metadata().log_id, old_log);
        let note = infinisheet::blob_store::BlobDirExt::open_dir(&*sheet.dir(), "replaced")
            .await
            .unwrap();
        let note = infinisheet::blob_store::BlobDirExt::open_dir(&*note, &old_log)
            .await
            .unwrap();
        let note = infinisheet::blob_store::BlobDirExt::read(&*note, "note")
            .await
            .unwrap();
        let note = String::from_utf8_lossy(&note);
        assert!(note.contains(&format!("entry {damaged_at}:")), "{note}");
        // The old log is kept, damage and all.
        let old = catalog.storage().logs.log(&old_log, false).await.unwrap();
        assert_eq!(old.bounds().await.unwrap().end, damaged_at + 1);
    });
}

/// Changes entry `seq` of the only log in `home`'s SQLite file behind
/// the backend's back, so that it fails its checksum.
fn fail_checksum(home: &Path, seq: i64) {
    let db = rusqlite::Connection::open(home.join("logs.db")).unwrap();
    let changed = db
        .execute(
            "UPDATE entries SET payload = CAST(payload || x'00' AS BLOB) WHERE seq = ?1",
            [seq],
        )
        .unwrap();
    assert_eq!(changed, 1);
}

/// `worker --once` whose pass fails on a sheet (here its log, damaged)
/// says so and exits 1 (it printed a warning and exited 0).
#[test]
fn a_worker_pass_with_a_failed_job_fails() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    for (cell, value) in [("A1", "1"), ("A2", "2")] {
        ok(home, &["set", "s", cell, value, "--no-worker"]);
    }
    ok(home, &["snapshot", "s", "--no-wait"]);
    fail_checksum(home, 1);
    let out = cli(home).args(["worker", "--once"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("warning: s: ")
            && err.contains("fails its checksum")
            && err.contains("error: 1 step of this pass failed"),
        "{err}"
    );
}

/// A byte flipped in the SQLite file under one entry: the backend's
/// checksum refuses it, `get` says the sheet is damaged and names the
/// repair, and `repair --rebuild` reads around that one entry, keeping the
/// rest.
#[test]
fn an_entry_failing_its_checksum_is_rebuilt_around() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    for (cell, value) in [("A1", "1"), ("A2", "2"), ("A3", "3")] {
        ok(home, &["set", "s", cell, value, "--no-worker"]);
    }
    // Entry 0 is the identity, 1 to 3 the cells: damage A2's.
    let damaged_at = 2;
    fail_checksum(home, damaged_at);
    let err = fails(cli(home), &["get", "s", "A1"]);
    assert!(
        err.contains("is damaged") && err.contains("repair --rebuild"),
        "{err}"
    );
    let out = cli(home).args(["check", "s"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&format!("entry {damaged_at}")), "{stdout}");
    let repaired = ok(home, &["repair", "s", "--rebuild"]);
    assert!(
        repaired.contains(&format!("dropped entry {damaged_at}:")),
        "{repaired}"
    );
    // A blank cell of a one-column range is an empty line, a row of no
    // fields (`""` would be empty text).
    assert_eq!(
        ok(home, &["get", "s", "A1:A3", "--output", "csv"]).trim(),
        "1\n\n3"
    );
    ok(home, &["check", "s"]);
}

/// Data no sheet names — a removal cut short, a snapshot written into a
/// sheet being removed — is listed by `check`, marked by `repair
/// --orphans`, and removed (with its log's entries) once marked for the
/// grace period; no sheet's data is touched.
#[test]
fn orphans_are_found_marked_and_swept() {
    use infinisheet::event_log::{EventLogExt, KnownSnapshot, LogEntry};
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "kept"]);
    ok(home, &["set", "kept", "A1", "here"]);
    ok(home, &["snapshot", "kept"]);
    let (runtime, catalog) = storage(home);
    let orphan = "0123456789abcdef0123456789abcdef";
    runtime.block_on(async {
        use infinisheet::blob_store::BlobDirExt;
        let data = catalog
            .storage()
            .blobs
            .root()
            .open_dir(infinisheet::DATA_DIR)
            .await
            .unwrap();
        let left = data.open_dir(orphan).await.unwrap();
        left.open_dir("snapshots")
            .await
            .unwrap()
            .write("late", "a snapshot that landed after rm")
            .await
            .unwrap();
        let log = catalog.storage().logs.log(orphan, true).await.unwrap();
        log.add_entry(LogEntry::new("x"), 0, KnownSnapshot::NotTracked)
            .await
            .unwrap();
    });
    let listed = ok(home, &["check"]);
    assert!(
        listed.contains(&format!("orphan: .sheets/{orphan}")) && listed.contains("kept: healthy"),
        "{listed}"
    );
    let marked = ok(home, &["repair", "--orphans"]);
    assert!(
        marked.contains(&format!("marked orphan .sheets/{orphan}")),
        "{marked}"
    );
    let again = ok(home, &["repair", "--orphans"]);
    assert!(
        again.contains("0 orphans removed, 0 marked, 1 waiting"),
        "{again}"
    );
    let swept = ok(home, &["repair", "--orphans", "--grace", "0s"]);
    assert!(
        swept.contains(&format!("removed orphan .sheets/{orphan}"))
            && swept.contains("1 orphan removed"),
        "{swept}"
    );
    let listed = ok(home, &["check"]);
    assert!(!listed.contains("orphan"), "{listed}");
    assert_eq!(ok(home, &["get", "kept", "A1", "--raw"]).trim(), "here");
    runtime.block_on(async {
        let log = catalog.storage().logs.log(orphan, false).await;
        if let Ok(log) = log {
            let bounds = log.bounds().await.unwrap();
            assert_eq!(bounds.start, bounds.end, "the orphan's log keeps entries");
        }
    });
    let err = fails(cli(home), &["repair", "kept", "--orphans"]);
    assert!(err.contains("name no sheets"), "{err}");
}

/// `-q` prints only errors and what a command was asked for: the commands
/// that change the catalog or a sheet print nothing, on either stream,
/// while `get`, `ls` and `export` to standard output still print their
/// data.
#[test]
fn quiet_commands_print_only_what_was_asked_for() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let csv = home.join("in.csv");
    std::fs::write(&csv, "a,b\r\nc,d").unwrap();
    let out_csv = home.join("out.csv");
    let silent = |args: &[&str]| {
        let out = cli(home).arg("-q").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            (
                String::from_utf8_lossy(&out.stdout).as_ref(),
                String::from_utf8_lossy(&out.stderr).as_ref()
            ),
            ("", ""),
            "-q {args:?} printed"
        );
    };
    silent(&["new", "--folder", "f"]);
    silent(&["new", "f/s"]);
    // The file's CRLF and missing final line break make a note without -q.
    silent(&["import", "f/s", csv.to_str().unwrap()]);
    silent(&["set", "f/s", "C1", "7"]);
    silent(&["clear", "f/s", "C1:C1"]);
    silent(&["export", "f/s", out_csv.to_str().unwrap()]);
    silent(&["snapshot", "f/s"]);
    silent(&["mv", "f/s", "f/t"]);
    let asked = |args: &[&str]| {
        let out = cli(home).arg("-q").args(args).output().unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(asked(&["ls", "f"]), "t\n");
    assert!(asked(&["get", "f/t", "A1:B2"]).contains('d'));
    assert_eq!(
        asked(&["export", "f/t", "--crlf", "--no-final-newline"]),
        "a,b\r\nc,d"
    );
    silent(&["rm", "f/t"]);
    assert_eq!(asked(&["ls", "f"]), "");
}

/// `worker --interval` takes 0.01 to 86,400 seconds: NaN, an infinity, a
/// negative number and 1e300 are refused by name (they were taken and
/// became one second), before any storage is touched.
#[test]
fn worker_intervals_out_of_range_are_refused() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    for bad in ["NaN", "inf", "-1", "0", "1e300", "soon"] {
        let out = cli(home)
            .args(["worker", "--once", &format!("--interval={bad}")])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "--interval {bad}: {stderr}");
        assert!(
            stderr.contains("--interval") && stderr.contains(bad),
            "--interval {bad}: {stderr}"
        );
    }
    assert!(
        std::fs::read_dir(home).unwrap().next().is_none(),
        "a refused worker created storage"
    );
}

/// Output for scripts says one thing one way: `--raw` escapes what would
/// split its fields or rows, `--output csv` gives every row of a range as
/// wide as the range, and JSON writes a whole number as an integer.
#[test]
fn script_output_is_unambiguous() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    ok(home, &["set", "s", "A1", "a\tb", "--no-worker"]);
    ok(
        home,
        &["set", "s", "B1", "line\nbreak \\ here", "--no-worker"],
    );
    ok(home, &["set", "s", "B2", "7610", "--no-worker"]);
    ok(home, &["set", "s", "A3", "2.5", "--no-worker"]);
    assert_eq!(
        ok(home, &["get", "s", "A1:B1", "--raw"]),
        "a\\tb\tline\\nbreak \\\\ here\n"
    );
    assert_eq!(
        ok(home, &["get", "s", "A2:C3", "--output", "csv"]),
        ",7610,\n2.5,,\n"
    );
    assert_eq!(
        ok(home, &["get", "s", "A2:C3", "--output", "tsv"]),
        "\t7610\t\n2.5\t\t\n"
    );
    let json = ok(home, &["get", "s", "B2:B3", "--json"]);
    assert!(json.contains("{\"value\":7610}"), "{json}");
    assert!(!json.contains("7610.0"), "{json}");
    let json = ok(home, &["get", "s", "A3", "--json"]);
    assert!(json.contains("{\"value\":2.5}"), "{json}");
    // Export still ends each row at its last cell in use.
    assert_eq!(
        ok(home, &["export", "s", "--range", "A2:C3"]),
        ",7610\n2.5\n"
    );
}

/// Nothing in use where `get` is asked: a sentence for a person (table,
/// markdown), no cells for a script (no lines for csv, tsv and raw, an
/// empty range for JSON however it is asked for), never a sentence a
/// script would take for a value; and -0 keeps its sign in JSON.
#[test]
fn get_of_nothing_prints_no_cells_for_scripts() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    ok(home, &["new", "s"]);
    assert!(ok(home, &["get", "s"]).contains("s is empty"));
    assert!(ok(home, &["get", "s", "A:C", "-o", "markdown"]).contains("A:C of s is empty"));
    for output in ["csv", "tsv", "raw"] {
        assert_eq!(ok(home, &["get", "s", "A:C", "-o", output]), "", "{output}");
    }
    assert_eq!(ok(home, &["get", "s", "--raw"]), "");
    for args in [
        &["get", "s", "A:C", "--json"][..],
        &["get", "s", "A:C", "-o", "json"],
    ] {
        let json: Value = serde_json::from_str(&ok(home, args)).unwrap();
        assert_eq!(json, serde_json::json!({ "range": "A:C", "rows": [] }));
    }
    let json: Value = serde_json::from_str(&ok(home, &["get", "s", "-o", "json"])).unwrap();
    assert_eq!(json, serde_json::json!({ "range": null, "rows": [] }));
    ok(home, &["set", "s", "A1", "--no-worker", "--", "-0"]);
    let json = ok(home, &["get", "s", "A1", "--json"]);
    assert!(json.contains("\"value\":-0.0"), "{json}");
}

/// A CSV of `rows` rows of ten fields (numbers and names) at `path`.
fn write_big_csv(path: &std::path::Path, rows: u32) {
    let mut csv = String::with_capacity(rows as usize * 80);
    for row in 0..rows {
        for column in 0..10u32 {
            if column > 0 {
                csv.push(',');
            }
            if column % 2 == 0 {
                csv.push_str(&(row.wrapping_mul(2_654_435_761) ^ column).to_string());
            } else {
                csv.push_str(&format!("name{}", (row + column) % 9_973));
            }
        }
        csv.push('\n');
    }
    std::fs::write(path, &csv).unwrap();
}

/// Runs the command with `args` on `home` under Python (which the
/// project's set-up needs), which reads the kernel's account of its one
/// child: its peak resident memory, in MiB. With `stop`, once `ready`
/// returns, a line on the wrapper's standard input ends the command with
/// SIGTERM (one that runs until told); without, the command runs to its
/// end.
fn peak_mib(
    home: &std::path::Path,
    args: &[&std::ffi::OsStr],
    stop: bool,
    ready: impl FnOnce(),
) -> u64 {
    use std::io::Write;
    const PEAK: &str = "import resource, subprocess, sys, threading\n\
        child = subprocess.Popen(sys.argv[1:])\n\
        def stop():\n    \
            if sys.stdin.readline():\n        \
                child.terminate()\n\
        threading.Thread(target=stop, daemon=True).start()\n\
        code = child.wait()\n\
        print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n\
        sys.exit(0 if code in (0, -15) else 1)";
    let mut wrapper = std::process::Command::new("python3")
        .args(["-c", PEAK])
        .arg(assert_cmd::cargo::cargo_bin("infinisheet"))
        .arg("--home")
        .arg(home)
        .args(args)
        .env_remove("INFINISHEET_HOME")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    ready();
    // A line stops the command; the pipe closed without one leaves it be.
    let mut stdin = wrapper.stdin.take().unwrap();
    if stop {
        let _ = stdin.write_all(b"stop\n");
    }
    drop(stdin);
    let output = wrapper.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "the command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let kib: u64 = String::from_utf8(output.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    kib / 1024
}

/// An import streams: its peak memory does not grow with the file. Ten
/// million cells (84 MB of CSV) through the command, its snapshots written
/// by its own worker as it goes: a sheet held whole takes about 90 bytes a
/// cell (900 MB here, twice that with the worker's copy); the import stays
/// within 256 MiB (140–175 MB measured, release and debug builds), read
/// from the kernel's account of the child.
#[test]
fn imports_hold_a_few_rows_not_the_file() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let input = home.join("big.csv");
    write_big_csv(&input, 1_000_000);
    ok(home, &["new", "big"]);
    let os = std::ffi::OsStr::new;
    let peak = peak_mib(
        home,
        &[os("-q"), os("import"), os("big"), input.as_os_str()],
        false,
        || {},
    );
    eprintln!("peak RSS of a 10M-cell import: {peak} MiB");
    assert!(peak < 256, "a 10M-cell import peaked at {peak} MiB");
    // Whole, and its snapshot written: the last row reads back, and the
    // sheet opens from a snapshot at the log's last entry.
    let last = get_json(home, "big", "A1000000:B1000000");
    let expected = (999_999u32.wrapping_mul(2_654_435_761)).to_string();
    assert!(last.to_string().contains(&expected), "{last}");
    let info = ok(home, &["info", "big"]);
    assert!(info.contains("snapshot"), "{info}");
}

/// A worker that has a sheet loaded from an earlier job does not take an
/// import's millions of cells into it for the next: past 262,144 cells
/// since its snapshot it writes streaming, as for its first job. Before,
/// a running `worker` took a 3M-cell import whole (over 300 MB).
#[test]
fn a_running_worker_streams_an_imports_snapshot() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path();
    let small = home.join("small.csv");
    std::fs::write(&small, "a,1\nb,2\n").unwrap();
    let input = home.join("big.csv");
    write_big_csv(&input, 300_000);
    ok(home, &["new", "big"]);
    ok(
        home,
        &["import", "big", small.to_str().unwrap(), "--no-worker"],
    );
    let os = std::ffi::OsStr::new;
    // Whether the sheet's snapshot jobs are all done.
    let done = |home: &std::path::Path| ok(home, &["info", "big"]).contains("pending    0");
    let wait_until_done = |home: &std::path::Path| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !done(home) {
            assert!(
                std::time::Instant::now() < deadline,
                "the worker did not run the job"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    let worker = [os("-q"), os("worker"), os("--interval"), os("0.05")];
    let peak = peak_mib(home, &worker, true, || {
        // Its first job (the small import) loads the sheet.
        wait_until_done(home);
        ok(
            home,
            &[
                "import",
                "big",
                input.to_str().unwrap(),
                "--at",
                "A3",
                "--no-worker",
            ],
        );
        wait_until_done(home);
    });
    eprintln!("peak RSS of a worker snapshotting a 3M-cell import: {peak} MiB");
    assert!(peak < 192, "the worker peaked at {peak} MiB");
    let last = get_json(home, "big", "A300002:B300002");
    let expected = (299_999u32.wrapping_mul(2_654_435_761)).to_string();
    assert!(last.to_string().contains(&expected), "{last}");
}
