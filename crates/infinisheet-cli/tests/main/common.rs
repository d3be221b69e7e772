//! What the tests share: the command on a home, and its output.

use assert_cmd::Command;
use serde_json::Value;
use std::path::Path;

/// The command on the embedded storage in `home`.
pub(crate) fn cli(home: &Path) -> Command {
    let mut command = Command::cargo_bin("infinisheet").unwrap();
    command
        .arg("--home")
        .arg(home)
        .env_remove("INFINISHEET_HOME");
    command
}

/// The command on no storage of its own: give `--logs` and `--blobs`.
pub(crate) fn bare() -> Command {
    let mut command = Command::cargo_bin("infinisheet").unwrap();
    command
        .env_remove("INFINISHEET_HOME")
        .env_remove("INFINISHEET_LOGS")
        .env_remove("INFINISHEET_BLOBS");
    command
}

/// The lines `reader` gives (a child's output, a socket), as they come, on
/// a thread of their own.
pub(crate) fn lines_of(
    reader: impl std::io::Read + Send + 'static,
) -> std::sync::mpsc::Receiver<String> {
    use std::io::BufRead;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs a command that must succeed; returns its standard output.
pub(crate) fn ok(home: &Path, args: &[&str]) -> String {
    let out = cli(home).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a command that must fail with one line on standard error, no
/// panic and no backtrace; returns that line.
pub(crate) fn fails(mut command: Command, args: &[&str]) -> String {
    let out = command.args(args).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "{args:?} succeeded: {stderr}");
    assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?} printed {stderr:?}");
    assert!(lines[0].starts_with("error: "), "{stderr:?}");
    assert!(!stderr.contains("panicked") && !stderr.contains("backtrace"));
    lines[0].to_owned()
}

pub(crate) fn get_json(home: &Path, sheet: &str, range: &str) -> Value {
    serde_json::from_str(&ok(home, &["get", sheet, range, "--json"])).unwrap()
}
