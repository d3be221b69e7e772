//! The crash-point sweep: a workload of durable operations runs in a child
//! process (`infinisheet-crashpoint`) under `strace`, which kills it
//! (SIGKILL) or fails one call (`ENOSPC`, `EIO`) at the N-th `write`,
//! `pwrite64`, `fsync`, `fdatasync`, `rename`, `openat`, `ftruncate` or
//! `unlink` it makes, for every N. After each point the store is opened
//! afresh and checked: it opens, it holds exactly the state after the
//! acknowledged operations, or after those and the one in flight (never
//! anything half done or different), and it takes a write again.
//!
//! The workloads are the same list of operations for the child and the
//! checker ([`log_ops`], [`blob_ops`]); their results are models applied
//! operation by operation.

mod check;
mod workload;

pub use check::Tally;
use check::{Problem, check_blobs, check_log};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
pub use workload::*;

/// How a point stops or fails the child.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL on entering the call.
    Kill,
    /// The call fails with this errno, once; later calls succeed (space
    /// was freed, the device recovered).
    Fail(&'static str),
}

impl Fault {
    /// The system calls this fault is injected into.
    pub fn syscalls(self) -> &'static [&'static str] {
        match self {
            Fault::Kill => &[
                "write",
                "pwrite64",
                "fsync",
                "fdatasync",
                "rename",
                "renameat",
                "renameat2",
                "openat",
                "ftruncate",
                "unlink",
                "unlinkat",
            ],
            Fault::Fail("ENOSPC") => &[
                "write",
                "pwrite64",
                "openat",
                "ftruncate",
                "rename",
                "renameat",
                "renameat2",
            ],
            Fault::Fail(_) => &["write", "pwrite64", "fsync", "fdatasync"],
        }
    }

    fn inject(self, syscall: &str, n: usize) -> String {
        match self {
            Fault::Kill => format!("inject={syscall}:signal=SIGKILL:when={n}"),
            Fault::Fail(errno) => format!("inject={syscall}:error={errno}:when={n}"),
        }
    }
}

/// The faults every sweep tries.
pub const FAULTS: [Fault; 3] = [Fault::Kill, Fault::Fail("ENOSPC"), Fault::Fail("EIO")];

/// The traced calls the workload makes in the child binary `child`
/// (`CARGO_BIN_EXE_infinisheet-crashpoint`) after it says `begin`, per system
/// call: `(calls before begin, calls in all)` on the child's main thread.
/// Also returns how many such calls other threads made after `begin`
/// (points there are not reachable by a per-thread counter).
pub fn count_calls(
    child: &Path,
    workload: Workload,
    base: &Path,
) -> (BTreeMap<String, (usize, usize)>, usize) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    copy_tree(base, &dir);
    let trace = scratch.path().join("trace");
    let all = FAULTS
        .iter()
        .flat_map(|f| f.syscalls().iter().copied())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(",");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-s", "16", "-e"])
        .arg(format!("trace={all}"))
        .arg("-o")
        .arg(&trace)
        .arg(child)
        .arg(workload.name())
        .arg(&dir)
        .stdout(Stdio::null())
        .status()
        .expect("strace runs (cargo xtask installs it)");
    assert!(status.success(), "the workload fails without faults");
    let text = std::fs::read_to_string(&trace).unwrap();
    let mut main_pid = None;
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    let mut begun = false;
    let mut elsewhere = 0;
    for line in text.lines() {
        let Some((pid, rest)) = line.split_once(' ') else {
            continue;
        };
        let rest = rest.trim_start();
        let Some(name) = rest.split('(').next().filter(|n| !n.contains(' ')) else {
            continue; // a resumed or exit line
        };
        if rest.starts_with("<...") || rest.starts_with("+++") || rest.starts_with("---") {
            continue;
        }
        let main = *main_pid.get_or_insert(pid);
        if pid != main {
            if begun {
                elsewhere += 1;
            }
            continue;
        }
        let count = counts.entry(name.to_owned()).or_default();
        count.1 += 1;
        if !begun {
            count.0 += 1;
        }
        if name == "write" && rest.starts_with("write(1, \"begin\\n\"") {
            begun = true;
        }
    }
    assert!(begun, "the child said begin");
    (counts, elsewhere)
}

/// Copies the files of `from` to `to` (directories recursively).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Runs the workload with `fault` at the `n`-th `syscall` of its main
/// thread, then checks the store. Returns the tally of this one point and,
/// if it failed, why.
pub async fn run_point(
    child: &Path,
    workload: Workload,
    base: &Path,
    fault: Fault,
    syscall: &str,
    n: usize,
) -> (Tally, Option<String>) {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path().join("store");
    copy_tree(base, &dir);
    let output = Command::new("strace")
        .args(["-f", "-qq", "-o", "/dev/null", "-e"])
        .arg(format!("trace={syscall}"))
        .arg("-e")
        .arg(fault.inject(syscall, n))
        .arg(child)
        .arg(workload.name())
        .arg(&dir)
        .stderr(Stdio::piped())
        .output()
        .expect("strace runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let acked = stdout.lines().filter(|l| l.starts_with("ack ")).count();
    let finished = stdout.lines().any(|l| l == "done");
    let mut tally = Tally {
        points: 1,
        ..Tally::default()
    };
    let mut why = None;
    let label = format!("{} {fault:?} at {syscall} #{n}", workload.name());
    // An injected error must leave the child's own handle working: it
    // retries the call and goes on to the end (unless the error hit the
    // very line it reports with, when it stops).
    let reported = !String::from_utf8_lossy(&output.stderr).contains("cannot report");
    if matches!(fault, Fault::Fail(_)) && !finished && reported {
        tally.unrecovered += 1;
        why = Some(format!(
            "{label}: the child did not recover: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let checked = if workload.is_log() {
        check_log(workload, &dir, acked).await
    } else {
        check_blobs(workload, &dir, acked).await
    };
    if let Err((problem, message)) = checked {
        match problem {
            Problem::Unopenable => tally.unopenable += 1,
            Problem::Lost => tally.lost += 1,
            Problem::Wrong => tally.wrong += 1,
            Problem::Stuck => tally.stuck += 1,
        }
        why = Some(format!(
            "{label} ({acked} acknowledged): {problem:?}: {message}"
        ));
    }
    (tally, why)
}

/// Every point of a workload: each fault at each call after `begin`. With
/// `every > 1`, a sample: the first and the last call of each fault and
/// system call always (a single `rename`, `fsync` or `unlink` is often
/// where an operation commits), and of the calls between, every
/// `every`-th (offset by `offset`).
pub fn points(
    counts: &BTreeMap<String, (usize, usize)>,
    every: usize,
    offset: usize,
) -> Vec<(Fault, String, usize)> {
    let mut all = Vec::new();
    let mut position = 0;
    for fault in FAULTS {
        for syscall in fault.syscalls() {
            if let Some((before, total)) = counts.get(*syscall) {
                let (first, last) = (before + 1, *total);
                for n in first..=last {
                    let sampled =
                        every <= 1 || n == first || n == last || position % every == offset % every;
                    if n != first && n != last {
                        position += 1;
                    }
                    if sampled {
                        all.push((fault, (*syscall).to_owned(), n));
                    }
                }
            }
        }
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_keeps_each_kinds_first_and_last_call_and_every_other_between() {
        let counts: BTreeMap<String, (usize, usize)> =
            [("fsync".to_owned(), (2, 8)), ("rename".to_owned(), (0, 1))].into();
        let all = points(&counts, 1, 0);
        let (half, other_half) = (points(&counts, 2, 0), points(&counts, 2, 1));
        for fault in FAULTS {
            let calls = |points: &[(Fault, String, usize)], syscall: &str| -> Vec<usize> {
                points
                    .iter()
                    .filter(|(f, s, _)| *f == fault && s == syscall)
                    .map(|(_, _, n)| *n)
                    .collect()
            };
            if !fault.syscalls().contains(&"fsync") {
                continue;
            }
            assert_eq!(calls(&all, "fsync"), [3, 4, 5, 6, 7, 8]);
            for sample in [&half, &other_half] {
                let sampled = calls(sample, "fsync");
                assert!(sampled.contains(&3) && sampled.contains(&8), "{sampled:?}");
                assert_eq!(sampled.len(), 4, "{sampled:?}");
            }
            // The two halves cover every call between.
            let mut both = calls(&half, "fsync");
            both.extend(calls(&other_half, "fsync"));
            both.sort_unstable();
            both.dedup();
            assert_eq!(both, calls(&all, "fsync"));
            if fault.syscalls().contains(&"rename") {
                assert_eq!(calls(&half, "rename"), [1]);
            }
        }
    }
}
