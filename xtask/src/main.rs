//! Developer and CI tasks for Infinisheet, run as `cargo xtask <task>`.
//!
//! * `test`: every test of the workspace (unit, integration, conformance,
//!   doctests), with the S3-compatible server (moto, see `s3.rs`), Azure's
//!   emulator (Azurite, see `azure.rs`), a GCS emulator (fake-gcs-server,
//!   see `gcs.rs`) and PostgreSQL (see `postgres.rs`) running. Everything
//!   is built once, with the server tests' features on, and each step runs
//!   its part of that build: the tests without a server, those named `s3`
//!   with moto, `azure` with Azurite, `gcs` with fake-gcs-server and
//!   `postgres` with PostgreSQL, all at once (see `jobs.rs`); then the
//!   doctests, the example programs, and the page `infinisheet serve`
//!   serves, in Chromium (see `browser.rs`).
//! * `conformance`: the conformance suite against every backend.
//! * `ci`: what CI runs: rustfmt check, clippy `-D warnings`, `cargo
//!   publish --workspace --dry-run`, `test`, docs with `-D warnings`,
//!   and the offline `cargo deny` checks.
//! * `bench`: the criterion benchmarks (with the S3 server running, and
//!   the release build of the command for those of `serve`); extra
//!   arguments go to criterion.
//! * `browser`: the browser test of `infinisheet serve`'s page alone
//!   (`test` runs it too).
//! * `multihost`: the multi-host test (network namespaces, as root) with
//!   its self-check; `test` runs it without the self-check when root.
//! * `sweep`: the crash-point sweep and the damage sweep over every point,
//!   printing their counts (`test` runs them too, quietly: the damage
//!   sweep whole, of the crash points each kind's first and last and a
//!   random half of the rest).
//!
//! Plain std on purpose: it must build fast on a fresh machine.

mod azure;
mod browser;
mod gcs;
mod jobs;
mod postgres;
mod readme;
mod s3;

use anyhow::{Context, Result, bail};
use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const USAGE: &str = "usage: cargo xtask <test | conformance | ci | sweep | multihost | browser | readme | bench [criterion args...]>";

fn main() -> Result<()> {
    let mut args = env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = workspace_root()?;
    env::set_current_dir(&root).with_context(|| format!("entering {}", root.display()))?;
    TARGET
        .set(find_target_dir()?)
        .map_err(|_| anyhow::anyhow!("the target directory was looked up twice"))?;
    match task.as_str() {
        "test" => test(),
        "conformance" => conformance(),
        "ci" => ci(),
        "bench" => bench(&rest),
        "sweep" => sweep(),
        "multihost" => multihost(),
        "browser" => {
            run("cargo", &["build", "--package", "infinisheet-cli"], &[])?;
            browser::test(Path::new("."))
        }
        "readme" => {
            run("cargo", &["build", "--package", "infinisheet-cli"], &[])?;
            readme::run(Path::new("."))
        }
        "" | "help" | "-h" | "--help" => {
            println!("{USAGE}");
            Ok(())
        }
        other => bail!("unknown task {other:?}\n{USAGE}"),
    }
}

/// Where cargo puts what it builds, found once at start ([`target_dir`]).
static TARGET: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Where cargo puts what it builds: `target/` unless `CARGO_TARGET_DIR`
/// or a cargo config says otherwise. Everything `xtask` writes (logs,
/// servers' data, the browser test's output) goes there too.
fn target_dir() -> &'static Path {
    TARGET.get().map_or(Path::new("target"), PathBuf::as_path)
}

/// Asks cargo for the target directory (`cargo metadata`'s
/// `target_directory`).
fn find_target_dir() -> Result<PathBuf> {
    let output = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("running cargo metadata")?;
    if !output.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("reading cargo metadata")?;
    let dir = metadata["target_directory"]
        .as_str()
        .context("cargo metadata names no target_directory")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {dir}"))?;
    Ok(PathBuf::from(dir))
}

/// The root of the workspace cargo runs in, asked of cargo at run time (a
/// path fixed at compile time would name another checkout when several
/// share a target directory).
fn workspace_root() -> Result<PathBuf> {
    let output = Command::new(env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["locate-project", "--workspace", "--message-format", "plain"])
        .output()
        .context("running cargo locate-project")?;
    if !output.status.success() {
        bail!(
            "cargo locate-project failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let manifest = PathBuf::from(String::from_utf8(output.stdout)?.trim());
    manifest
        .parent()
        .map(Path::to_path_buf)
        .context("the workspace manifest has no directory")
}

/// Runs `program args...`, echoing it, and fails if it fails.
fn run(program: &str, args: &[&str], envs: &[(&str, &str)]) -> Result<()> {
    let owned: Vec<(&str, String)> = envs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    run_with(program, args, &owned)
}

/// [`run`] with owned environment values.
fn run_with(program: &str, args: &[&str], envs: &[(&str, String)]) -> Result<()> {
    eprintln!("$ {program} {}", args.join(" "));
    let started = Instant::now();
    let status = Command::new(program)
        // As in the jobs: the tests' PostgreSQL, not a developer's TLS.
        .env_remove("PGSSLMODE")
        .env_remove("PGSSLROOTCERT")
        .args(args)
        .envs(envs.iter().map(|(k, v)| (*k, v.as_str())))
        .status()
        .with_context(|| format!("starting {program}"))?;
    if !status.success() {
        bail!("`{program} {}` failed with {status}", args.join(" "));
    }
    eprintln!("  ({:.1}s)", started.elapsed().as_secs_f64());
    Ok(())
}

/// Whether `program args...` runs and succeeds (output discarded).
fn works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The features that build the tests needing the S3 server.
const S3_FEATURES: &str = "infinisheet-object-store/s3-tests,infinisheet-process-tests/s3-tests,\
                           infinisheet-snapshot-workflow/s3-tests,infinisheet-cli/s3-tests";

/// The features that build the tests needing Azure's emulator.
const AZURE_FEATURES: &str = "infinisheet-object-store/azure-tests,infinisheet/azure-tests";

/// The features that build the tests needing a GCS emulator.
const GCS_FEATURES: &str = "infinisheet-object-store/gcs-tests";

/// The features that build the tests needing PostgreSQL.
const POSTGRES_FEATURES: &str = "infinisheet-postgres/postgres-tests,infinisheet/postgres-tests,\
                                 infinisheet-process-tests/postgres-tests";

/// The features that build the multi-host test (network namespaces).
const MULTIHOST_FEATURES: &str = "infinisheet-process-tests/multihost-tests";

/// The test targets that need a server (or root, for the multi-host
/// test): built with the features above, run in steps of their own with
/// the server's environment.
const SERVER_TESTS: [&str; 5] = ["s3", "azure", "gcs", "postgres", "multihost"];

/// Every feature `test` builds with: the server tests' too, so each step
/// (the tests without a server, S3's, Azure's, the doctests, the examples
/// run afterwards) reuses one build instead of rebuilding the crates whose
/// features changed.
fn all_features() -> String {
    format!(
        "{S3_FEATURES},{AZURE_FEATURES},{GCS_FEATURES},{POSTGRES_FEATURES},{MULTIHOST_FEATURES}"
    )
}

/// The names of the workspace's integration-test targets, from its crates'
/// `tests/` directories (`NAME.rs` and `NAME/main.rs`), but those that need
/// a server.
fn local_test_targets(root: &Path) -> Result<Vec<String>> {
    let mut names = std::collections::BTreeSet::new();
    let mut dirs = vec![root.join("crates"), root.join("examples")];
    while let Some(dir) = dirs.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))?
        {
            let path = entry?.path();
            if !path.is_dir() {
                continue;
            }
            if path.join("Cargo.toml").is_file() {
                let tests = path.join("tests");
                if let Ok(found) = std::fs::read_dir(&tests) {
                    for test in found {
                        let test = test?.path();
                        let name = if test.extension().is_some_and(|e| e == "rs") {
                            test.file_stem()
                        } else if test.join("main.rs").is_file() {
                            test.file_name()
                        } else {
                            None
                        };
                        if let Some(name) = name.and_then(|n| n.to_str()) {
                            names.insert(name.to_owned());
                        }
                    }
                }
            } else {
                dirs.push(path);
            }
        }
    }
    Ok(names
        .into_iter()
        .filter(|name| !SERVER_TESTS.contains(&name.as_str()))
        .collect())
}

/// Runs a program `cargo` built (an example, a binary) from the target
/// directory, as it was built by `test`'s one build.
fn run_built(kind: &str, name: &str, args: &[&str], envs: &[(&str, String)]) -> Result<()> {
    let dir = target_dir();
    let path = match kind {
        "example" => dir.join("debug").join("examples").join(name),
        _ => dir.join("debug").join(name),
    };
    if !path.is_file() {
        bail!("{} was not built", path.display());
    }
    run_with(&path.to_string_lossy(), args, envs)
}

/// Installs `strace` (the crash-point sweep's fault injector) from Debian's
/// packages when it is missing.
fn ensure_strace() -> Result<()> {
    if works("strace", &["-V"]) {
        return Ok(());
    }
    apt_install(&["strace"])
}

/// Installs `packages` from Debian's packages (as root, as on CI).
fn apt_install(packages: &[&str]) -> Result<()> {
    run("apt-get", &["update", "-qq"], &[])?;
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend(packages);
    run("apt-get", &args, &[("DEBIAN_FRONTEND", "noninteractive")])
        .with_context(|| format!("installing {} (needs root, as on CI)", packages.join(", ")))
}

/// The multi-host test (`crates/process-tests/tests/multihost.rs`): hosts
/// made of network namespaces (as root; `iproute2` installed if missing),
/// the storage server on one of them (the S3 server, `infinisheet serve`,
/// PostgreSQL), partitions while three hosts append. Its runs and its
/// self-check (creates that overwrite must fail it), one after the other.
fn multihost() -> Result<()> {
    if !is_root()? {
        bail!("the multi-host test makes network namespaces: run it as root");
    }
    ensure_ip()?;
    if !can_make_namespaces() {
        bail!(
            "the multi-host test makes network namespaces, and `ip netns add` fails here \
             (a container without CAP_SYS_ADMIN?)"
        );
    }
    let features = all_features();
    run(
        "cargo",
        &["build", "--workspace", "--features", &features, "--bins"],
        &[],
    )?;
    run_with(
        "cargo",
        &[
            "test",
            "--workspace",
            "--features",
            &features,
            "--test",
            "multihost",
            "--",
            "--test-threads",
            "1",
            "--nocapture",
        ],
        &multihost_env()?,
    )
}

/// In `test`: the multi-host test's normal runs (S3, `serve`, PostgreSQL;
/// 3 hosts x 2 writers x 20 appends and a sheet's 20 edits per host, three
/// partitions each — half the full form's requests, for CI's time; the
/// full form and its self-check run in `multihost`), as a job beside the
/// others — or, for a user who is not root, a note.
fn multihost_job() -> Result<Option<jobs::Job>> {
    if !is_root()? {
        eprintln!(
            "NOTE: the multi-host test (network namespaces) needs root: not run; \
             `cargo xtask multihost` as root runs it"
        );
        return Ok(None);
    }
    ensure_ip()?;
    if !can_make_namespaces() {
        eprintln!(
            "NOTE: the multi-host test needs network namespaces, and `ip netns add` fails \
             here: not run"
        );
        return Ok(None);
    }
    Ok(Some(jobs::Job::new(
        "multihost",
        &[
            "test",
            "--workspace",
            "--features",
            &all_features(),
            "--test",
            "multihost",
            "--",
            "three_hosts_",
            "--test-threads",
            "3",
            "--nocapture",
        ],
        {
            let mut env = multihost_env()?;
            env.push(("INFINISHEET_MULTIHOST", "2x20".to_owned()));
            env
        },
    )))
}

/// Where the multi-host test finds the S3 server's launcher and the
/// `infinisheet` command (built by `test`'s build, or by `multihost`).
fn multihost_env() -> Result<Vec<(&'static str, String)>> {
    let (python, launcher) = s3::launcher()?;
    let command = target_dir().join("debug").join("infinisheet");
    Ok(vec![
        (
            "INFINISHEET_PG_BIN",
            postgres::programs()?.to_string_lossy().into_owned(),
        ),
        (
            "INFINISHEET_BIN",
            std::fs::canonicalize(&command)
                .with_context(|| format!("{} is not built", command.display()))?
                .to_string_lossy()
                .into_owned(),
        ),
        (
            "INFINISHEET_MOTO_PYTHON",
            python.to_string_lossy().into_owned(),
        ),
        (
            "INFINISHEET_MOTO_LAUNCHER",
            launcher.to_string_lossy().into_owned(),
        ),
    ])
}

fn is_root() -> Result<bool> {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .context("running id")?;
    Ok(uid.stdout == b"0\n")
}

/// Whether this process may make a network namespace (root in a
/// container may not).
fn can_make_namespaces() -> bool {
    let name = format!("infinisheet-probe-{}", std::process::id());
    let made = works("ip", &["netns", "add", &name]);
    if made {
        let _ = works("ip", &["netns", "del", &name]);
    }
    made
}

/// `ip` (Debian's `iproute2`), installed if missing.
fn ensure_ip() -> Result<()> {
    if works("ip", &["-V"]) {
        return Ok(());
    }
    apt_install(&["iproute2"])
}

fn sweep() -> Result<()> {
    ensure_strace()?;
    run(
        "cargo",
        &[
            "test",
            "--package",
            "infinisheet-process-tests",
            "--test",
            "main",
            "--",
            "crash_points::",
            "damage::",
            "--nocapture",
        ],
        &[("INFINISHEET_SWEEP_EVERY", "1")],
    )
}

/// Every test: one build, then the local tests, the S3 shards and the Azure
/// tests at once (see `jobs.rs`), then the doctests and the programs.
fn test() -> Result<()> {
    ensure_strace()?;
    let skips = SkipLog::new()?;
    let features = all_features();
    // One build of everything, the server tests included.
    run(
        "cargo",
        &[
            "test",
            "--workspace",
            "--all-targets",
            "--features",
            &features,
            "--no-run",
        ],
        &[],
    )?;
    // The programs run after the tests (examples, the host app), with the
    // same features: only linking.
    run(
        "cargo",
        &[
            "build",
            "--workspace",
            "--features",
            &features,
            "--bins",
            "--examples",
        ],
        &[],
    )?;
    let s3_servers = s3_servers()?;
    let azure = azure::AzureServer::start()?;
    let gcs = gcs::GcsServer::start_if_supported()?;
    let postgres = postgres::PostgresServer::start(postgres::Durability::Unsynced)?;
    let mut tests = local_jobs(&features, &skips, &postgres)?;
    tests.extend(s3_jobs(&s3_servers, &skips));
    tests.push(server_job("azure", azure.env(), &skips));
    tests.extend(gcs.as_ref().map(|gcs| server_job("gcs", gcs.env(), &skips)));
    tests.push(server_job("postgres", postgres.env(), &skips));
    tests.extend(multihost_job()?);
    jobs::run_all(&tests)?;
    // The tests that restart the server, alone once the others are done.
    let mut restart = postgres.env();
    restart.push(skips.env());
    run_with(
        "cargo",
        &[
            "test",
            "--workspace",
            "--features",
            &all_features(),
            "--test",
            "postgres",
            "--",
            "--ignored",
        ],
        &restart,
    )?;
    drop(postgres);
    drop(gcs);
    drop(azure);
    run_built("example", "mixed_backends", &[], &s3_servers[0].env())?;
    drop(s3_servers);
    run(
        "cargo",
        &["test", "--workspace", "--doc", "--features", &features],
        &[],
    )?;
    host_app()?;
    browser::test(Path::new("."))?;
    readme::run(Path::new("."))?;
    skips.check(Path::new("."))?;
    Ok(())
}

/// Where the conformance suite records its skips during `test`
/// (`INFINISHEET_SKIP_LOG`, see `infinisheet_conformance::SKIP_LOG`), and
/// the check of them against `xtask/expected-skips.txt`: a case that starts
/// being skipped, or stops, fails the run until the list says so.
struct SkipLog {
    path: PathBuf,
}

impl SkipLog {
    fn new() -> Result<Self> {
        // Absolute: the tests run in their packages' directories.
        let path = std::fs::canonicalize(target_dir())?.join("conformance-skips.log");
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("removing {}", path.display())),
        }
        Ok(SkipLog { path })
    }

    fn env(&self) -> (&'static str, String) {
        (
            "INFINISHEET_SKIP_LOG",
            self.path.to_string_lossy().into_owned(),
        )
    }

    fn check(&self, root: &Path) -> Result<()> {
        let recorded = std::fs::read_to_string(&self.path).unwrap_or_default();
        let mut seen: Vec<&str> = recorded.lines().collect();
        seen.sort_unstable();
        seen.dedup();
        let expected_path = root.join("xtask").join("expected-skips.txt");
        let expected_text = std::fs::read_to_string(&expected_path)
            .with_context(|| format!("reading {}", expected_path.display()))?;
        let expected: Vec<&str> = expected_text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .collect();
        let new: Vec<&&str> = seen.iter().filter(|l| !expected.contains(l)).collect();
        let gone: Vec<&&str> = expected.iter().filter(|l| !seen.contains(l)).collect();
        eprintln!(
            "conformance skips: {} (each a case whose capability its backend does not declare; \
             listed in {}), as {} expects",
            seen.len(),
            self.path.display(),
            expected_path.display()
        );
        if new.is_empty() && gone.is_empty() {
            return Ok(());
        }
        for line in &new {
            eprintln!("  skipped, not in {}: {line}", expected_path.display());
        }
        for line in &gone {
            eprintln!("  in {} but not skipped: {line}", expected_path.display());
        }
        bail!(
            "the conformance skips differ from {} ({} new, {} gone)",
            expected_path.display(),
            new.len(),
            gone.len()
        )
    }
}

/// The tests that need no server, as two runs of the one build (the same
/// targets and features, so nothing is built again): the unit tests,
/// examples and benchmarks (run once each), and the integration tests.
/// Every test binary runs even when one fails, so a run shows every
/// failure.
fn local_jobs(
    features: &str,
    skips: &SkipLog,
    postgres: &postgres::PostgresServer,
) -> Result<Vec<jobs::Job>> {
    let targets = local_test_targets(Path::new("."))?;
    let units = vec![
        "test",
        "--no-fail-fast",
        "--workspace",
        "--features",
        features,
        "--lib",
        "--bins",
        "--examples",
        "--benches",
    ];
    let mut integration = vec![
        "test",
        "--no-fail-fast",
        "--workspace",
        "--features",
        features,
    ];
    for name in &targets {
        integration.extend(["--test", name]);
    }
    Ok(vec![
        // The benchmarks run once each as tests, the PostgreSQL one on
        // the test server.
        jobs::Job::new("local-units", &units, {
            let mut env = postgres.env();
            env.push(skips.env());
            env
        }),
        // Half the crash points, a different half each run (the test
        // prints its offset); `cargo xtask sweep` runs them all.
        jobs::Job::new(
            "local-integration",
            &integration,
            vec![skips.env(), ("INFINISHEET_SWEEP_EVERY", "2".to_owned())],
        ),
    ])
}

/// How the tests named `s3` are shared among servers, as test-name
/// filters: moto handles one request at a time (see `s3.rs`), so one
/// server is the bottleneck. The event log's suite holds most of the
/// requests (its racing writers), the two blob store suites most of the
/// rest, and the other crates' S3 tests (whole programs, four clients over
/// a lossy proxy) mostly wait.
const S3_SHARDS: [(&str, &[&str]); 3] = [
    ("s3-log", &["s3_event_log::"]),
    ("s3-blobs", &["s3_blob_store::", "s3_paged_blob_store::"]),
    (
        "s3-rest",
        &[
            "--skip",
            "s3_event_log::",
            "--skip",
            "s3_blob_store::",
            "--skip",
            "s3_paged_blob_store::",
        ],
    ),
];

/// One S3 server per shard, each with its own log in `target/`.
fn s3_servers() -> Result<Vec<s3::S3Server>> {
    S3_SHARDS
        .iter()
        .map(|(shard, _)| s3::S3Server::start(shard))
        .collect()
}

/// The tests that need the S3 server, each shard against its own server
/// (`servers`, from [`s3_servers`]). The tests wait on the server most of
/// their time, so each shard runs eight at a time rather than one per core.
fn s3_jobs(servers: &[s3::S3Server], skips: &SkipLog) -> Vec<jobs::Job> {
    let features = all_features();
    S3_SHARDS
        .iter()
        .zip(servers)
        .map(|((shard, filters), server)| {
            let mut args = vec![
                "test",
                "--no-fail-fast",
                "--workspace",
                "--features",
                &features,
                "--test",
                "s3",
                "--",
                "--test-threads",
                "8",
            ];
            args.extend(filters.iter());
            let mut env = server.env();
            env.push(skips.env());
            jobs::Job::new(shard, &args, env)
        })
        .collect()
}

/// The tests named `test` (`azure`, `postgres`), against the server
/// whose environment is `env`: Azure's emulator (the conformance suite
/// on `az://` and the catalog on it by URL; one thread per core, as
/// Azurite is one Node process and more requests at once only queue
/// there: eight threads took 302 s rather than 175 s, and timed out a
/// 16 MiB upload), or PostgreSQL (the conformance suite on its logs, the
/// catalog on it by URL, processes sharing one log).
fn server_job(test: &str, mut env: Vec<(&'static str, String)>, skips: &SkipLog) -> jobs::Job {
    env.push(skips.env());
    jobs::Job::new(
        test,
        &[
            "test",
            "--no-fail-fast",
            "--workspace",
            "--features",
            &all_features(),
            "--test",
            test,
        ],
        env,
    )
}

/// The host-app example (a program on the facade alone), on a fresh
/// directory, then the custom-backend guide's program: each fails if any
/// step of its session does.
fn host_app() -> Result<()> {
    let dir = target_dir().join("host-app-run");
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("removing {}", dir.display())),
    }
    run_built(
        "bin",
        "infinisheet-example-host-app",
        &[&dir.to_string_lossy()],
        &[],
    )?;
    // The custom-backend guide's program: a sheet on the guide's own log.
    run_built("example", "custom_backend", &[], &[])
}

fn conformance() -> Result<()> {
    let skips = SkipLog::new()?;
    let s3_servers = s3_servers()?;
    let azure = azure::AzureServer::start()?;
    let mut tests = vec![jobs::Job::new(
        "local-conformance",
        &[
            "test",
            "--workspace",
            "--features",
            &all_features(),
            "--test",
            "main",
            "--",
            "conformance::",
        ],
        vec![skips.env()],
    )];
    let gcs = gcs::GcsServer::start_if_supported()?;
    let postgres = postgres::PostgresServer::start(postgres::Durability::Unsynced)?;
    tests.extend(s3_jobs(&s3_servers, &skips));
    tests.push(server_job("azure", azure.env(), &skips));
    tests.extend(gcs.as_ref().map(|gcs| server_job("gcs", gcs.env(), &skips)));
    tests.push(server_job("postgres", postgres.env(), &skips));
    jobs::run_all(&tests)
}

fn ensure_component(tool: &str, component: &str) -> Result<()> {
    if !works("cargo", &[tool, "--version"]) {
        run("rustup", &["component", "add", component], &[])?;
    }
    Ok(())
}

/// `cargo install cargo-deny` running in the background when it is
/// missing, its output in `target/cargo-deny-install.log`.
struct DenyInstall {
    child: Option<(std::process::Child, PathBuf, Instant)>,
}

impl DenyInstall {
    fn start() -> Result<Self> {
        if works("cargo", &["deny", "--version"]) {
            return Ok(DenyInstall { child: None });
        }
        let log = target_dir().join("cargo-deny-install.log");
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        eprintln!(
            "$ cargo install --locked cargo-deny  (in the background, output in {})",
            log.display()
        );
        let child = Command::new("cargo")
            .args(["install", "--locked", "cargo-deny"])
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting cargo install cargo-deny")?;
        Ok(DenyInstall {
            child: Some((child, log, Instant::now())),
        })
    }

    /// Waits for the install, failing (with its output) if it failed.
    fn finish(mut self) -> Result<()> {
        let Some((mut child, log, started)) = self.child.take() else {
            return Ok(());
        };
        let status = child
            .wait()
            .context("waiting for cargo install cargo-deny")?;
        if !status.success() {
            let output = std::fs::read_to_string(&log).unwrap_or_default();
            bail!("`cargo install --locked cargo-deny` failed with {status}:\n{output}");
        }
        eprintln!(
            "  (cargo-deny installed, {:.1}s since it started)",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }
}

impl Drop for DenyInstall {
    fn drop(&mut self) {
        // A run that failed first does not leave the build behind.
        if let Some((child, _, _)) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `cargo publish --workspace --dry-run` of every crate not marked
/// `publish = false`, in dependency order (cargo puts each one packaged
/// first into a local registry for the next), so a dependency that only a
/// path could satisfy (an internal dependency without a version, a cycle)
/// fails CI, not the first real `cargo publish`. Without compiling each
/// package again (`--no-verify`: verifying takes about nine minutes here,
/// and the workspace build checks the same code).
fn package() -> Result<()> {
    run(
        "cargo",
        &[
            "publish",
            "--workspace",
            "--dry-run",
            "--no-verify",
            "--allow-dirty",
        ],
        &[],
    )
}

fn ci() -> Result<()> {
    ensure_component("fmt", "rustfmt")?;
    ensure_component("clippy", "clippy")?;
    // cargo-deny, when missing, builds from source (minutes on two cores)
    // beside clippy and the build rather than beside the tests, whose
    // waits it would stretch.
    let deny = DenyInstall::start()?;
    run("cargo", &["fmt", "--all", "--", "--check"], &[])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--features",
            &all_features(),
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    // The facade with no backend but memory, and with each local one
    // alone, builds without a warning (the workspace build turns every
    // feature on). The cloud features only add URL schemes; checking each
    // alone would rebuild object_store three more times.
    for features in [
        "",
        "sqlite",
        "filesystem",
        "object-store",
        "http",
        "postgres",
    ] {
        run(
            "cargo",
            &[
                "clippy",
                "--package",
                "infinisheet",
                "--lib",
                "--no-default-features",
                "--features",
                features,
                "--",
                "-D",
                "warnings",
            ],
            &[],
        )?;
    }
    package()?;
    test()?;
    run(
        "cargo",
        &[
            "doc",
            "--workspace",
            "--no-deps",
            "--features",
            &all_features(),
        ],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    // And the facade as a host app gets it, with its default features: a
    // link to an item of a feature left off is broken there.
    run(
        "cargo",
        &["doc", "--package", "infinisheet", "--no-deps"],
        &[("RUSTDOCFLAGS", "-D warnings")],
    )?;
    deny.finish()?;
    // The advisories check needs a network database CI cannot reach.
    run(
        "cargo",
        &["deny", "check", "bans", "licenses", "sources"],
        &[],
    )
}

fn bench(extra: &[String]) -> Result<()> {
    // The benchmarks of `infinisheet serve` run its release build.
    run(
        "cargo",
        &["build", "--release", "--package", "infinisheet-cli"],
        &[],
    )?;
    let server = s3::S3Server::start("server")?;
    // Durable: the appends' figures are against the disk.
    let postgres = postgres::PostgresServer::start(postgres::Durability::Synced)?;
    let mut args = vec!["bench", "--package", "infinisheet-benches"];
    if !extra.is_empty() {
        args.push("--");
        args.extend(extra.iter().map(String::as_str));
    }
    let mut env = server.env();
    env.extend(postgres.env());
    // DuckDB, the bulk import's second reference (`bulk/scale`).
    let duckdb = s3::pip_install("duckdb-2.0.1", &["duckdb==2.0.1"])?;
    env.push((
        "INFINISHEET_DUCKDB_PYTHON",
        duckdb
            .join("bin")
            .join("python")
            .to_string_lossy()
            .into_owned(),
    ));
    run_with("cargo", &args, &env)
}
