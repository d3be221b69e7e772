//! Test runs that go at once: each a `cargo test` with its own environment
//! and its own log in the target directory, printed whole as it ends.
//!
//! The test binaries spend much of their time waiting (on moto, Azurite,
//! child processes, fsync), so running the local tests, the S3 shards and
//! the Azure tests side by side keeps both cores busy where one after the
//! other left one idle.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Instant;

/// One `cargo` run among several at once.
pub(crate) struct Job {
    /// Names the job in the summary and its log (`target/NAME.log`).
    pub(crate) name: String,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(&'static str, String)>,
}

impl Job {
    pub(crate) fn new(name: &str, args: &[&str], env: Vec<(&'static str, String)>) -> Self {
        Job {
            name: name.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env,
        }
    }

    fn start(&self) -> Result<(Child, PathBuf)> {
        let log_path = crate::target_dir().join(format!("{}.log", self.name));
        let log = std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        eprintln!(
            "$ cargo {}  ({}, output in {})",
            self.args.join(" "),
            self.name,
            log_path.display()
        );
        let child = Command::new("cargo")
            // The tests' PostgreSQL is the one INFINISHEET_POSTGRES_URL
            // names, whatever a developer's TLS settings say.
            .env_remove("PGSSLMODE")
            .env_remove("PGSSLROOTCERT")
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.name))?;
        Ok((child, log_path))
    }
}

/// Starts every job, waits for all, prints each one's output with its
/// status and time as it ends, and fails naming those that failed.
pub(crate) fn run_all(jobs: &[Job]) -> Result<()> {
    let started = Instant::now();
    let mut children = Vec::new();
    for job in jobs {
        match job.start() {
            Ok(child) => children.push(child),
            Err(err) => {
                for (mut child, _) in children {
                    let _ = child.kill();
                    let _ = child.wait();
                }
                return Err(err);
            }
        }
    }
    // One thread waits on each child and says when it ended.
    let (ended, endings) = std::sync::mpsc::channel();
    let mut logs = Vec::new();
    for (i, (mut child, log_path)) in children.into_iter().enumerate() {
        let ended = ended.clone();
        std::thread::spawn(move || {
            let _ = ended.send((i, child.wait()));
        });
        logs.push(log_path);
    }
    drop(ended);
    let mut failed = Vec::new();
    let mut times = Vec::new();
    for (i, status) in endings {
        let job = &jobs[i];
        let output = std::fs::read_to_string(&logs[i]).unwrap_or_default();
        let took = started.elapsed().as_secs_f64();
        // A child that cannot be waited for counts as failed; the others
        // still run to their end.
        let (said, success) = match status {
            Ok(status) => (status.to_string(), status.success()),
            Err(err) => (format!("cannot be waited for: {err}"), false),
        };
        eprintln!("--- {} ({said}, {took:.1}s) ---\n{output}", job.name);
        times.push(format!("{} {took:.0}s", job.name));
        if !success {
            failed.push(job.name.clone());
        }
    }
    eprintln!("  (at once: {})", times.join(", "));
    if !failed.is_empty() {
        bail!("the tests failed in {}", failed.join(", "));
    }
    Ok(())
}
