//! Many machines, one log: hosts made of network namespaces, joined
//! through a router that runs the project's fault proxy, with partitions
//! that come and go while every host appends.
//!
//! ```text
//!   client 1 (10.77.1.2) ─┐
//!   client 2 (10.77.2.2) ─┼─ router: a fault proxy per client ── storage (10.77.0.2):
//!   client 3 (10.77.3.2) ─┘  (10.77.N.1:8000 → 10.77.0.2:9000,       the S3 server
//!                              from 10.77.0.1N)                      `infinisheet serve`
//!                                                                    or PostgreSQL
//! ```
//!
//! Each client host runs three writer processes and a tail on one log —
//! in the S3 server's bucket, of an `infinisheet serve` (its SQLite logs,
//! reached by the HTTP log), or in PostgreSQL (through a TCP fault proxy
//! that cuts 1 % of replies); the router does not forward, so the proxies
//! (3 % lost replies, 3 % 503s, up to 5 ms delay) are the only way
//! between hosts, and no host has a route out of the namespaces. While
//! the writers run: client 1's link goes down for 4 s; then the storage
//! host drops every packet to clients 1 and 2 (a blackhole route to their
//! proxies' addresses) for 4 s; then client 3's link goes down for 4 s
//! (at 1 s, 5.5 s and 10 s; the writers pace themselves to work for 14 s,
//! and a partition that meets no writer at work is a failure).
//! On S3 and `serve`, each client host also edits one sheet of a catalog
//! on the same storage (its own column, each edit retried until it lands)
//! while `infinisheet worker` on client 2 snapshots it.
//! Afterwards a reader on every client host lists the log, and the test
//! checks: every acknowledged append is there exactly once and nothing
//! else is; all readers agree; every tail gave every entry once, in
//! order; `infinisheet check` finds nothing wrong with the sheet and every
//! acknowledged edit reads back from it opened cold; no process hung or
//! failed. A second run whose writers' creates
//! overwrite (the conditional write disabled) must fail the check.
//!
//! Needs root (network namespaces, veth pairs), the S3 server's launcher
//! (`INFINISHEET_MOTO_PYTHON`, `INFINISHEET_MOTO_LAUNCHER`), the
//! `infinisheet` command (`INFINISHEET_BIN`) and PostgreSQL's programs
//! (`INFINISHEET_PG_BIN`); `cargo xtask multihost` provides them and runs
//! this file alone.
//! Everything it makes is removed afterwards, also when it fails.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const WRITER: &str = env!("CARGO_BIN_EXE_infinisheet-writer");
const BUCKET: &str = "multihost";
const S3_PORT: u16 = 9000;
const PROXY_PORT: u16 = 8000;
const CLIENTS: u8 = 3;
const PARTITION: Duration = Duration::from_secs(4);
/// How long each writer spends appending, its appends spread evenly over
/// it: every backend's writers are still at work when the last partition
/// comes (PostgreSQL's would otherwise be done before the second).
const WRITING: Duration = Duration::from_secs(14);
/// The longest the writers may take, all told, before the run counts
/// them as hung.
const WRITERS_DEADLINE: Duration = Duration::from_secs(300);

/// The hosts: namespaces named `<tag>-…`, removed on drop (with every
/// process started in them).
struct Net {
    tag: String,
    children: Vec<Child>,
    made: Vec<String>,
    /// Commands that stop a server cleanly, run before the children are
    /// killed.
    stops: Vec<Command>,
}

fn ip(args: &[&str]) {
    let status = Command::new("ip")
        .args(args)
        .status()
        .unwrap_or_else(|err| panic!("running `ip {}`: {err}", args.join(" ")));
    assert!(status.success(), "`ip {}` failed", args.join(" "));
}

impl Net {
    fn build(tag: &str) -> Net {
        assert!(
            Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|out| out.stdout.starts_with(b"0\n")),
            "the multi-host test needs root (network namespaces); run `cargo xtask multihost`"
        );
        let mut net = Net {
            tag: tag.to_owned(),
            children: Vec::new(),
            made: Vec::new(),
            stops: Vec::new(),
        };
        remove_leftovers();
        for host in ["st", "rt", "c1", "c2", "c3"] {
            let name = net.ns(host);
            ip(&["netns", "add", &name]);
            net.made.push(name.clone());
            ip(&["-n", &name, "link", "set", "lo", "up"]);
        }
        let (st, rt) = (net.ns("st"), net.ns("rt"));
        ip(&[
            "link", "add", "s0", "netns", &st, "type", "veth", "peer", "name", "r0", "netns", &rt,
        ]);
        ip(&["-n", &st, "addr", "add", "10.77.0.2/24", "dev", "s0"]);
        ip(&["-n", &rt, "addr", "add", "10.77.0.1/24", "dev", "r0"]);
        for client in 1..=CLIENTS {
            // The address client N's proxy reaches the storage host from.
            let source = format!("10.77.0.1{client}/24");
            ip(&["-n", &rt, "addr", "add", &source, "dev", "r0"]);
        }
        ip(&["-n", &st, "link", "set", "s0", "up"]);
        ip(&["-n", &rt, "link", "set", "r0", "up"]);
        for client in 1..=CLIENTS {
            let c = net.ns(&format!("c{client}"));
            let router_end = format!("r{client}");
            ip(&[
                "link",
                "add",
                "c0",
                "netns",
                &c,
                "type",
                "veth",
                "peer",
                "name",
                &router_end,
                "netns",
                &rt,
            ]);
            ip(&[
                "-n",
                &c,
                "addr",
                "add",
                &format!("10.77.{client}.2/24"),
                "dev",
                "c0",
            ]);
            ip(&[
                "-n",
                &rt,
                "addr",
                "add",
                &format!("10.77.{client}.1/24"),
                "dev",
                &router_end,
            ]);
            ip(&["-n", &c, "link", "set", "c0", "up"]);
            ip(&["-n", &rt, "link", "set", &router_end, "up"]);
        }
        // The router passes nothing on by itself: the proxies are the only
        // way between hosts (a new namespace starts with forwarding off;
        // this says so).
        let forwarding = Command::new("ip")
            .args(["netns", "exec", &rt, "cat", "/proc/sys/net/ipv4/ip_forward"])
            .output()
            .unwrap();
        assert_eq!(forwarding.stdout, b"0\n", "the router forwards");
        // No host has a way out of the namespaces made here.
        for host in ["st", "rt", "c1", "c2", "c3"] {
            let routes = Command::new("ip")
                .args(["-n", &net.ns(host), "route", "show", "default"])
                .output()
                .unwrap();
            assert!(routes.stdout.is_empty(), "{host} has a default route");
        }
        net
    }

    fn ns(&self, host: &str) -> String {
        format!("{}-{host}", self.tag)
    }

    /// `program args` on `host`, its stdout piped.
    fn spawn(&mut self, host: &str, program: &str, args: &[&str], env: &[(&str, String)]) -> usize {
        self.spawn_logged(host, program, args, env, Stdio::inherit())
    }

    /// [`spawn`](Self::spawn), its stderr to `log`.
    fn spawn_logged(
        &mut self,
        host: &str,
        program: &str,
        args: &[&str],
        env: &[(&str, String)],
        log: Stdio,
    ) -> usize {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.ns(host), program])
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|err| panic!("starting {program} on {host}: {err}"));
        self.children.push(child);
        self.children.len() - 1
    }

    /// Runs the writer binary on `host` to the end; its stdout.
    fn run(&self, host: &str, args: &[&str], env: &[(&str, String)]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(host), WRITER])
            .args(args)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stderr(Stdio::inherit())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "`{}` on {host} failed",
            args.join(" ")
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

/// The scratch directories' prefix (then the test process's id).
const SCRATCH: &str = "infinisheet-multihost-";

/// Whether process `pid` is alive.
fn alive(pid: &str) -> bool {
    std::path::Path::new("/proc").join(pid).exists()
}

/// What runs killed before they could clean up left (a SIGKILL, a second
/// Ctrl-C): their namespaces, the processes still in them, and their
/// scratch directories — those of test processes no longer alive.
fn remove_leftovers() {
    let listed = Command::new("ip").args(["netns", "list"]).output().unwrap();
    for line in String::from_utf8_lossy(&listed.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some((tag, _host)) = name.split_once('-') else {
            continue;
        };
        let pid = tag.trim_start_matches(|c: char| c.is_ascii_lowercase());
        let ours = ["ism", "ish", "isp", "isb"]
            .iter()
            .any(|p| tag.starts_with(p));
        if !ours || pid.is_empty() || alive(pid) {
            continue;
        }
        let pids = Command::new("ip")
            .args(["netns", "pids", name])
            .output()
            .unwrap();
        for inside in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
            let _ = Command::new("kill").args(["-9", inside]).status();
        }
        let _ = Command::new("ip").args(["netns", "del", name]).status();
    }
    for entry in std::fs::read_dir("/tmp").unwrap().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(SCRATCH)
            && let Some((pid, _)) = rest.split_once('-')
            && !alive(pid)
        {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for stop in &mut self.stops {
            let _ = stop.stdout(Stdio::null()).stderr(Stdio::null()).status();
        }
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        for name in self.made.iter().rev() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// What one run saw.
#[derive(Debug, Default)]
struct Outcome {
    acknowledged: usize,
    /// Edits of the sheet acknowledged (runs with a catalog).
    sheet_edits: usize,
    /// Snapshots of the sheet `check` read whole.
    sheet_snapshots: usize,
    duplicates: usize,
    lost: usize,
    partitions: usize,
    longest_stall: Duration,
    proxied: [u64; 3],
    problems: Vec<String>,
}

/// A line from a child, or its end.
enum Event {
    Line(usize, String),
    End(usize),
}

fn read_lines(index: usize, child: &mut Child, events: &mpsc::Sender<Event>) {
    let stdout = child.stdout.take().unwrap();
    let events = events.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if events.send(Event::Line(index, line)).is_err() {
                return;
            }
        }
        let _ = events.send(Event::End(index));
    });
}

/// What the storage host serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    /// The S3 server; clients use the object-store log.
    S3,
    /// `infinisheet serve` (its SQLite logs); clients use the HTTP log.
    Serve,
    /// PostgreSQL; clients use its log, through a TCP fault proxy.
    Postgres,
}

/// The token the `serve` runs take.
const TOKEN: &str = "multihost-test-token-0123456789abcdef";

/// What a client host's processes need to reach the storage host through
/// its proxy.
fn client_env(backend: Backend, client: u8) -> Vec<(&'static str, String)> {
    let proxy = format!("http://10.77.{client}.1:{PROXY_PORT}");
    match backend {
        Backend::S3 => vec![
            ("INFINISHEET_LOGS", format!("s3://{BUCKET}/logs")),
            ("INFINISHEET_BLOBS", format!("s3://{BUCKET}/sheets")),
            ("AWS_ENDPOINT", proxy),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ACCESS_KEY_ID", "infinisheet".into()),
            ("AWS_SECRET_ACCESS_KEY", "infinisheet".into()),
            ("AWS_BUCKET", BUCKET.into()),
        ],
        Backend::Serve => vec![
            ("INFINISHEET_LOGS", proxy.clone()),
            ("INFINISHEET_BLOBS", proxy.clone()),
            ("INFINISHEET_SERVER", proxy),
            ("INFINISHEET_TOKEN", TOKEN.into()),
        ],
        Backend::Postgres => vec![(
            "INFINISHEET_POSTGRES_URL",
            format!(
                "postgres://infinisheet@10.77.{client}.1:{PROXY_PORT}/postgres?sslmode=disable"
            ),
        )],
    }
}

/// What a process on the storage host needs to reach its server directly
/// (no proxy, no faults): for the final check of the sheet.
fn storage_env(backend: Backend) -> Vec<(&'static str, String)> {
    let direct = format!("http://10.77.0.2:{S3_PORT}");
    let mut env = client_env(backend, 1);
    for (name, value) in &mut env {
        if matches!(*name, "AWS_ENDPOINT" | "INFINISHEET_SERVER")
            || (backend == Backend::Serve
                && name.starts_with("INFINISHEET_")
                && *name != "INFINISHEET_TOKEN")
        {
            value.clone_from(&direct);
        }
    }
    env
}

/// Runs `program args` as the `postgres` user (PostgreSQL refuses root),
/// to its end.
fn as_postgres(program: &std::path::Path, args: &[&str]) {
    let status = Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(program)
        .args(args)
        // The test's directory may be closed to that user.
        .current_dir("/tmp")
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(
        status.success(),
        "{} {} failed",
        program.display(),
        args.join(" ")
    );
}

/// Starts the storage host's server, its files and its log
/// (`server.log`) in `scratch`.
fn start_storage(net: &mut Net, backend: Backend, scratch: &std::path::Path) -> usize {
    let log = std::fs::File::create(scratch.join("server.log")).unwrap();
    match backend {
        Backend::S3 => {
            let python = std::env::var("INFINISHEET_MOTO_PYTHON")
                .expect("INFINISHEET_MOTO_PYTHON: run `cargo xtask multihost`");
            let launcher = std::env::var("INFINISHEET_MOTO_LAUNCHER")
                .expect("INFINISHEET_MOTO_LAUNCHER: run `cargo xtask multihost`");
            let server = net.spawn_logged(
                "st",
                &python,
                &[&launcher, "10.77.0.2", &S3_PORT.to_string()],
                &[],
                log.into(),
            );
            net.run(
                "st",
                &[
                    "http-put",
                    &format!("10.77.0.2:{S3_PORT}"),
                    &format!("/{BUCKET}"),
                ],
                &[],
            );
            server
        }
        Backend::Serve => {
            let program = std::env::var("INFINISHEET_BIN")
                .expect("INFINISHEET_BIN (the infinisheet command): run `cargo xtask multihost`");
            let token = scratch.join("token");
            std::fs::write(&token, TOKEN).unwrap();
            let home = scratch.join("home");
            net.spawn_logged(
                "st",
                &program,
                &[
                    "--home",
                    home.to_str().unwrap(),
                    "serve",
                    "--listen",
                    &format!("0.0.0.0:{S3_PORT}"),
                    "--token-file",
                    token.to_str().unwrap(),
                    // The proxy speaks plain HTTP; nothing leaves the
                    // namespaces.
                    "--plain-http",
                ],
                &[],
                log.into(),
            )
        }
        Backend::Postgres => {
            let bin = std::path::PathBuf::from(
                std::env::var("INFINISHEET_PG_BIN")
                    .expect("INFINISHEET_PG_BIN: run `cargo xtask multihost`"),
            );
            let status = Command::new("chown")
                .args(["postgres:", scratch.to_str().unwrap()])
                .status()
                .unwrap();
            assert!(status.success(), "chown postgres {}", scratch.display());
            let data = scratch.join("data");
            let data = data.to_str().unwrap();
            // Trust: the server is reachable from these namespaces only.
            as_postgres(
                &bin.join("initdb"),
                &[
                    "-D",
                    data,
                    "-U",
                    "infinisheet",
                    "--auth",
                    "trust",
                    "-E",
                    "UTF8",
                    "--no-sync",
                ],
            );
            // Clients arrive from the router's addresses.
            let hba = scratch.join("data").join("pg_hba.conf");
            let mut rules = std::fs::OpenOptions::new().append(true).open(&hba).unwrap();
            writeln!(rules, "host all infinisheet 10.77.0.0/24 trust").unwrap();
            let postgres = bin.join("postgres");
            let server = net.spawn_logged(
                "st",
                "setpriv",
                &[
                    "--reuid",
                    "postgres",
                    "--regid",
                    "postgres",
                    "--init-groups",
                    postgres.to_str().unwrap(),
                    "-D",
                    data,
                    "-c",
                    "listen_addresses=10.77.0.2",
                    "-p",
                    &S3_PORT.to_string(),
                    "-c",
                    "unix_socket_directories=",
                    "-c",
                    "fsync=off",
                    "-c",
                    "max_connections=200",
                ],
                &[],
                log.into(),
            );
            let mut stop = Command::new("runuser");
            stop.current_dir("/tmp")
                .args(["-u", "postgres", "--"])
                .arg(bin.join("pg_ctl"))
                .args(["-D", data, "stop", "-m", "immediate", "-w"]);
            net.stops.push(stop);
            server
        }
    }
}

/// A partition the run injects `at` after the writers started, cutting
/// off client `hosts`.
struct Partition {
    at: Duration,
    what: &'static str,
    hosts: Vec<u8>,
    cut: Vec<Vec<String>>,
    heal: Vec<Vec<String>>,
}

/// The partitions, one after another, each healed before the next: all
/// while every host's writers are at work (each writer spends at least
/// [`WRITING`], 14 s, appending).
fn partitions(net: &Net) -> Vec<Partition> {
    let (st, rt) = (net.ns("st"), net.ns("rt"));
    let link = |client: u8, state: &str| {
        vec![
            "-n".to_owned(),
            rt.clone(),
            "link".into(),
            "set".into(),
            format!("r{client}"),
            state.into(),
        ]
    };
    let blackhole = |client: u8, action: &str| {
        vec![
            "-n".to_owned(),
            st.clone(),
            "route".into(),
            action.into(),
            "blackhole".into(),
            format!("10.77.0.1{client}/32"),
        ]
    };
    vec![
        Partition {
            at: Duration::from_millis(1000),
            what: "client 1's link down",
            hosts: vec![1],
            cut: vec![link(1, "down")],
            heal: vec![link(1, "up")],
        },
        Partition {
            at: Duration::from_millis(5500),
            what: "storage cut off from clients 1 and 2",
            hosts: vec![1, 2],
            cut: vec![blackhole(1, "add"), blackhole(2, "add")],
            heal: vec![blackhole(1, "del"), blackhole(2, "del")],
        },
        Partition {
            at: Duration::from_millis(10_000),
            what: "client 3's link down",
            hosts: vec![3],
            cut: vec![link(3, "down")],
            heal: vec![link(3, "up")],
        },
    ]
}

fn ip_owned(args: &[String]) {
    ip(&args.iter().map(String::as_str).collect::<Vec<_>>());
}

/// One run: `writers` processes per client host, `each` appends apiece,
/// on `backend`; `ignore_create` makes the writers' creates overwrite.
fn run(backend: Backend, tag: &str, writers: u32, each: u64, ignore_create: bool) -> Outcome {
    // Under /tmp, which PostgreSQL's user can reach; made before the
    // hosts, so removed after their processes are gone.
    let scratch = tempfile::Builder::new()
        .prefix(&format!("{SCRATCH}{}-", std::process::id()))
        .tempdir_in("/tmp")
        .unwrap();
    let mut net = Net::build(tag);
    let mut outcome = Outcome::default();
    start_storage(&mut net, backend, scratch.path());
    let seed = fastrand::u64(..);
    eprintln!("multihost {tag}: proxy seeds from {seed}");
    let mut proxies = Vec::new();
    for client in 1..=CLIENTS {
        let kind = if backend == Backend::Postgres {
            "mh-tcp-proxy"
        } else {
            "mh-proxy"
        };
        let index = net.spawn(
            "rt",
            WRITER,
            &[
                kind,
                &format!("10.77.{client}.1:{PROXY_PORT}"),
                &format!("10.77.0.2:{S3_PORT}"),
                &format!("10.77.0.1{client}"),
                &(seed + u64::from(client)).to_string(),
            ],
            &[],
        );
        let stdout = net.children[index].stdout.as_mut().unwrap();
        let mut ready = String::new();
        BufReader::new(stdout).read_line(&mut ready).unwrap();
        assert_eq!(ready.trim(), "ready", "proxy {client} did not start");
        proxies.push(index);
    }
    let spec = match backend {
        Backend::S3 => format!("s3:{tag}-{:08x}", fastrand::u32(..)),
        Backend::Serve => format!("http:{tag}"),
        Backend::Postgres => format!("pg:{tag}"),
    };
    // The log exists before the writers race (through client 3's proxy;
    // this waits for the server to come up, too).
    let empty = net.run("c3", &["mh-list", &spec], &client_env(backend, 3));
    assert_eq!(empty.trim(), "bounds 0 0");

    // A sheet of a catalog on the same storage, edited from every client
    // host while a worker on client 2 snapshots it (not on PostgreSQL,
    // which holds logs only; not in the self-check).
    let with_sheet = backend != Backend::Postgres && !ignore_create;
    if with_sheet {
        net.run(
            "c3",
            &["mh-sheet-new", SHEET, &SHEET_INTERVAL.to_string()],
            &client_env(backend, 3),
        );
    }
    let total = (u64::from(CLIENTS) * u64::from(writers) * each) as usize;
    let pace = (WRITING / u32::try_from(each.max(1)).unwrap_or(u32::MAX))
        .as_millis()
        .to_string();
    let (events, received) = mpsc::channel();
    let mut writer_of = BTreeMap::new();
    let mut tails = BTreeMap::new();
    let mut sheet_writers = BTreeMap::new();
    let started = Instant::now();
    for client in 1..=CLIENTS {
        let env = client_env(backend, client);
        if with_sheet {
            let column = u32::from(client - 1);
            let index = net.spawn(
                &format!("c{client}"),
                WRITER,
                &[
                    "mh-sheet-writer",
                    SHEET,
                    &column.to_string(),
                    &each.to_string(),
                    &pace,
                ],
                &env,
            );
            read_lines(index, &mut net.children[index], &events);
            sheet_writers.insert(index, client);
        }
        for w in 0..writers {
            let id = u32::from(client - 1) * writers + w;
            let mut args = vec![
                "mh-writer".to_owned(),
                spec.clone(),
                id.to_string(),
                each.to_string(),
                pace.clone(),
            ];
            if ignore_create {
                args.push("--ignore-create".into());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let index = net.spawn(&format!("c{client}"), WRITER, &args, &env);
            read_lines(index, &mut net.children[index], &events);
            writer_of.insert(index, id);
        }
        let index = net.spawn(
            &format!("c{client}"),
            WRITER,
            &["mh-tail", &spec, &total.to_string()],
            &env,
        );
        read_lines(index, &mut net.children[index], &events);
        tails.insert(index, client);
    }
    let mut worker = None;
    if with_sheet {
        let program = std::env::var("INFINISHEET_BIN")
            .expect("INFINISHEET_BIN (the infinisheet command): run `cargo xtask multihost`");
        let index = net.spawn_logged(
            "c2",
            &program,
            &["-q", "worker", "--interval", "0.2"],
            &client_env(backend, 2),
            std::fs::File::create(scratch.path().join("worker.log"))
                .unwrap()
                .into(),
        );
        // Its stdout (nothing, with -q) is not read.
        drop(net.children[index].stdout.take());
        worker = Some(index);
    }
    let mut open_sheet_writers = sheet_writers.len();
    let mut sheet_acks: Vec<(u32, u64)> = Vec::new();

    let mut schedule = partitions(&net);
    schedule.reverse();
    let mut healing: Option<(Instant, Partition)> = None;
    let mut acks: BTreeMap<u64, Vec<(u32, u64)>> = BTreeMap::new();
    let mut acked = 0;
    let mut last_ack: BTreeMap<usize, Instant> = writer_of.keys().map(|i| (*i, started)).collect();
    let mut tail_lines: BTreeMap<u8, Vec<String>> = BTreeMap::new();
    let mut open_writers = writer_of.len();
    // Writers still at work on each client host.
    let mut running: BTreeMap<u8, usize> = (1..=CLIENTS)
        .map(|client| (client, writers as usize))
        .collect();
    let mut open_tails = tails.len();
    let mut writers_done = None;
    loop {
        if let Some((since, _)) = &healing
            && since.elapsed() >= PARTITION
        {
            let (_, partition) = healing.take().unwrap();
            for command in &partition.heal {
                ip_owned(command);
            }
            eprintln!("multihost {tag}: healed {} at {acked} acks", partition.what);
        }
        if healing.is_none() && schedule.last().is_some_and(|p| started.elapsed() >= p.at) {
            let partition = schedule.pop().unwrap();
            // It must meet writers at work, or it tests nothing.
            let working = partition
                .hosts
                .iter()
                .map(|host| running.get(host).copied().unwrap_or(0))
                .sum::<usize>();
            if working == 0 {
                outcome.problems.push(format!(
                    "{} came when the writers there had finished",
                    partition.what
                ));
            }
            for command in &partition.cut {
                ip_owned(command);
            }
            eprintln!(
                "multihost {tag}: {} at {acked} acks ({working} writers there at work)",
                partition.what
            );
            outcome.partitions += 1;
            healing = Some((Instant::now(), partition));
        }
        if open_writers == 0 && writers_done.is_none() {
            writers_done = Some(Instant::now());
        }
        let tails_deadline = if ignore_create {
            Duration::from_secs(15)
        } else {
            Duration::from_secs(120)
        };
        if open_writers == 0
            && open_sheet_writers == 0
            && healing.is_none()
            && (open_tails == 0 || writers_done.unwrap().elapsed() > tails_deadline)
        {
            break;
        }
        if started.elapsed() > WRITERS_DEADLINE && open_writers + open_sheet_writers > 0 {
            outcome.problems.push(format!(
                "{} writers hung past {WRITERS_DEADLINE:?}",
                open_writers + open_sheet_writers
            ));
            break;
        }
        match received.recv_timeout(Duration::from_millis(100)) {
            Ok(Event::Line(index, line)) => {
                if let Some(client) = tails.get(&index) {
                    tail_lines.entry(*client).or_default().push(line);
                } else if sheet_writers.contains_key(&index) {
                    let words: Vec<&str> = line.split(' ').collect();
                    match words[..] {
                        ["ack", column, n] => {
                            sheet_acks.push((column.parse().unwrap(), n.parse().unwrap()));
                        }
                        _ => panic!("bad sheet ack {line:?}"),
                    }
                } else {
                    let (seq, w, n) = infinisheet_process_tests::parse_ack(&line);
                    acks.entry(seq).or_default().push((w, n));
                    acked += 1;
                    let now = Instant::now();
                    let last = last_ack.insert(index, now).unwrap();
                    outcome.longest_stall = outcome.longest_stall.max(now - last);
                }
            }
            Ok(Event::End(index)) => {
                let status = net.children[index].wait().unwrap();
                if let Some(client) = sheet_writers.get(&index) {
                    open_sheet_writers -= 1;
                    if !status.success() {
                        outcome
                            .problems
                            .push(format!("client {client}'s sheet writer failed ({status})"));
                    }
                } else if let Some(client) = tails.get(&index) {
                    open_tails -= 1;
                    if !status.success() {
                        outcome
                            .problems
                            .push(format!("client {client}'s tail failed ({status})"));
                    }
                } else {
                    open_writers -= 1;
                    let writer = writer_of[&index];
                    let host = u8::try_from(writer / writers + 1).unwrap();
                    *running.get_mut(&host).unwrap() -= 1;
                    if !status.success() {
                        outcome
                            .problems
                            .push(format!("writer {writer} failed ({status})"));
                    }
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => unreachable!("the test holds a sender"),
        }
    }
    if let Some((_, partition)) = healing.take() {
        for command in &partition.heal {
            ip_owned(command);
        }
    }
    outcome.acknowledged = acked;
    if acked != total {
        outcome
            .problems
            .push(format!("{acked} of {total} appends acknowledged"));
    }
    for (client, lines) in (1..=CLIENTS).map(|c| (c, tail_lines.get(&c).map_or(0, Vec::len))) {
        if lines != total {
            outcome.problems.push(format!(
                "client {client}'s tail gave {lines} of {total} entries"
            ));
        }
    }

    if let Some(worker) = worker {
        check_the_sheet(&mut net, backend, worker, &sheet_acks, each, &mut outcome);
    }
    // Every host's reader, through its own proxy.
    let listings: Vec<String> = (1..=CLIENTS)
        .map(|client| {
            net.run(
                &format!("c{client}"),
                &["mh-list", &spec],
                &client_env(backend, client),
            )
        })
        .collect();
    for (i, listing) in listings.iter().enumerate().skip(1) {
        if listing != &listings[0] {
            outcome.problems.push(format!(
                "client {}'s reader disagrees with client 1's",
                i + 1
            ));
        }
    }
    let mut held: BTreeMap<u64, (u32, u64)> = BTreeMap::new();
    let mut bounds = (0, 0);
    for line in listings[0].lines() {
        let words: Vec<&str> = line.split(' ').collect();
        match words[..] {
            ["entry", seq, w, n] => {
                held.insert(
                    seq.parse().unwrap(),
                    (w.parse().unwrap(), n.parse().unwrap()),
                );
            }
            ["bounds", start, end] => bounds = (start.parse().unwrap(), end.parse().unwrap()),
            _ => panic!("bad listing line {line:?}"),
        }
    }
    if bounds != (0, held.len() as u64) {
        outcome.problems.push(format!(
            "the log holds {bounds:?} with {} entries",
            held.len()
        ));
    }
    let mut copies: BTreeMap<(u32, u64), usize> = BTreeMap::new();
    for claimed in held.values() {
        *copies.entry(*claimed).or_default() += 1;
    }
    outcome.duplicates = copies.values().map(|c| c - 1).sum();
    for (seq, claims) in &acks {
        for claim in claims {
            if held.get(seq) != Some(claim) {
                outcome.lost += 1;
            }
        }
        if claims.len() > 1 {
            outcome
                .problems
                .push(format!("id {seq} acknowledged to {} writers", claims.len()));
        }
    }
    let acked_entries: usize = acks.values().map(Vec::len).sum();
    if held.len() != acked_entries {
        outcome.problems.push(format!(
            "the log holds {} entries for {acked_entries} acknowledged",
            held.len()
        ));
    }
    if outcome.duplicates > 0 || outcome.lost > 0 {
        outcome.problems.push(format!(
            "{} duplicates, {} acknowledged entries lost",
            outcome.duplicates, outcome.lost
        ));
    }
    let expected: Vec<String> = held
        .iter()
        .map(|(seq, (w, n))| format!("entry {seq} {w} {n}"))
        .collect();
    for (client, lines) in &tail_lines {
        if lines[..] != expected[..lines.len().min(expected.len())] || lines.len() > expected.len()
        {
            outcome
                .problems
                .push(format!("client {client}'s tail differs from the log"));
        }
    }
    for (i, index) in proxies.iter().enumerate() {
        drop(net.children[*index].stdin.take());
        let stdout = net.children[*index].stdout.as_mut().unwrap();
        let mut counts = String::new();
        BufReader::new(stdout).read_line(&mut counts).unwrap();
        outcome.proxied[i] = counts
            .split(' ')
            .nth(1)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        eprintln!("multihost {tag}: proxy {} {}", i + 1, counts.trim());
        let status = net.children[*index].wait().unwrap();
        if !status.success() {
            outcome
                .problems
                .push(format!("proxy {} failed ({status})", i + 1));
        }
    }
    if !outcome.problems.is_empty() && !ignore_create {
        // The storage server's log and the worker's (why it ended, if it
        // did), kept in the scratch directory that goes with the test.
        for (whose, file) in [("server", "server.log"), ("worker", "worker.log")] {
            let log = std::fs::read_to_string(scratch.path().join(file)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            eprintln!(
                "multihost {tag}: the {whose}'s log ends:\n{}",
                lines[lines.len().saturating_sub(30)..].join("\n")
            );
        }
    }
    outcome
}

/// The sheet the catalog runs edit, and how often it is snapshotted.
const SHEET: &str = "multihost/sheet";
const SHEET_INTERVAL: u64 = 20;

/// Once the worker (child `worker`, still at work) has done every job
/// due, `infinisheet check` on the sheet, and every acknowledged edit read
/// back from it opened cold — from the storage host, past the proxies'
/// faults (a lost reply would be taken for damage).
fn check_the_sheet(
    net: &mut Net,
    backend: Backend,
    worker: usize,
    acks: &[(u32, u64)],
    each: u64,
    outcome: &mut Outcome,
) {
    outcome.sheet_edits = acks.len();
    let expected = u64::from(CLIENTS) * each;
    if acks.len() as u64 != expected {
        outcome.problems.push(format!(
            "{} of {expected} sheet edits acknowledged",
            acks.len()
        ));
    }
    let args = [
        "mh-sheet-check",
        SHEET,
        &CLIENTS.to_string(),
        &each.to_string(),
    ];
    let deadline = Instant::now() + Duration::from_secs(120);
    let checked = loop {
        let ended = net.children[worker].try_wait().ok().flatten();
        let checked = net.run("st", &args, &storage_env(backend));
        let done = checked.lines().any(|line| line == "pending 0");
        if let Some(status) = ended {
            outcome
                .problems
                .push(format!("the worker ended ({status})"));
            break checked;
        }
        if done || Instant::now() > deadline {
            if !done {
                outcome
                    .problems
                    .push("the worker left snapshot jobs due for two minutes".into());
            }
            break checked;
        }
        // The worker polls every 0.2 s: nothing to wait on but its work.
        std::thread::sleep(Duration::from_millis(500));
    };
    let mut cells = BTreeMap::new();
    for line in checked.lines() {
        if let Some(problem) = line.strip_prefix("problem ") {
            outcome
                .problems
                .push(format!("check of the sheet: {problem}"));
        } else if let Some(count) = line.strip_prefix("snapshots ") {
            outcome.sheet_snapshots = count.parse().unwrap();
        } else if line.starts_with("pending ") {
        } else if let Some(cell) = line.strip_prefix("cell ") {
            let words: Vec<&str> = cell.split(' ').collect();
            let column: u32 = words[0].parse().unwrap();
            let row: u64 = words[1].parse().unwrap();
            let value: f64 = words[2].parse().unwrap();
            cells.insert((column, row), value);
        } else {
            panic!("bad check line {line:?}");
        }
    }
    if outcome.sheet_snapshots == 0 {
        outcome.problems.push(format!(
            "the worker published no snapshot of the sheet ({} edits, one due every {SHEET_INTERVAL})",
            acks.len()
        ));
    }
    for (column, n) in acks {
        if cells.get(&(*column, *n)) != Some(&(*n as f64)) {
            outcome.problems.push(format!(
                "the sheet lost edit {n} of client {}: it reads {:?}",
                column + 1,
                cells.get(&(*column, *n))
            ));
        }
    }
}

fn report(tag: &str, outcome: &Outcome) {
    let mut out = std::io::stderr().lock();
    writeln!(
        out,
        "multihost {tag}: {} appends acknowledged, {} duplicates, {} lost, {} partitions, \
         longest stall {:.1} s, {} sheet edits acknowledged and checked ({} snapshots), \
         requests through the proxies {:?}; {} problems{}",
        outcome.acknowledged,
        outcome.duplicates,
        outcome.lost,
        outcome.partitions,
        outcome.longest_stall.as_secs_f64(),
        outcome.sheet_edits,
        outcome.sheet_snapshots,
        outcome.proxied,
        outcome.problems.len(),
        if outcome.problems.is_empty() {
            ""
        } else {
            ", the first:"
        }
    )
    .unwrap();
    for problem in outcome.problems.iter().take(8) {
        writeln!(out, "  {problem}").unwrap();
    }
}

/// Writers per client host and appends per writer, from
/// `INFINISHEET_MULTIHOST` (`WRITERSxEACH`; default 3x40).
fn size() -> (u32, u64) {
    let text = std::env::var("INFINISHEET_MULTIHOST").unwrap_or_else(|_| "3x40".into());
    let (writers, each) = text
        .split_once('x')
        .unwrap_or_else(|| panic!("INFINISHEET_MULTIHOST={text}: want WRITERSxEACH"));
    (writers.parse().unwrap(), each.parse().unwrap())
}

/// Names a run's hosts: `what` and this process's id.
fn tag(what: &str) -> String {
    format!("{what}{}", std::process::id())
}

#[test]
fn three_hosts_share_a_log_through_serve_through_partitions() {
    let (writers, each) = size();
    let outcome = run(Backend::Serve, &tag("ish"), writers, each, false);
    report("serve", &outcome);
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert_eq!(outcome.partitions, 3);
}

#[test]
fn three_hosts_share_a_log_on_postgres_through_partitions() {
    let (writers, each) = size();
    let outcome = run(Backend::Postgres, &tag("isp"), writers, each, false);
    report("postgres", &outcome);
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert_eq!(outcome.partitions, 3);
}

#[test]
fn three_hosts_share_a_log_on_s3_through_partitions() {
    let (writers, each) = size();
    let outcome = run(Backend::S3, &tag("ism"), writers, each, false);
    report("s3", &outcome);
    assert!(outcome.problems.is_empty(), "{:?}", outcome.problems);
    assert_eq!(outcome.partitions, 3);
}

#[test]
fn the_check_catches_a_store_whose_creates_overwrite() {
    let (writers, each) = size();
    let outcome = run(Backend::S3, &tag("isb"), writers, each, true);
    report("s3 with creates that overwrite", &outcome);
    // Caught by the exactly-once check itself, not by a side effect.
    assert!(
        outcome.lost > 0
            || outcome.duplicates > 0
            || outcome
                .problems
                .iter()
                .any(|p| p.contains("acknowledged to")),
        "a store letting two writers win one id passed the exactly-once check: {:?}",
        outcome.problems
    );
}
