//! The README's command block, run top to bottom as written: the first
//! `sh` block under "## The `infinisheet` command", each line in one bash
//! script (`set -euo pipefail`), with the built binary for `infinisheet`
//! (the block's first line, an alias to `cargo run --release`, is the one
//! line replaced) in a fresh directory holding a `data.csv` to import and
//! its own `HOME`, so the block cannot touch the user's.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::Command;

/// The heading the block follows.
const HEADING: &str = "## The `infinisheet` command";

/// The block's lines, from the README's text.
fn block(readme: &str) -> Result<Vec<&str>> {
    let after = readme
        .split_once(HEADING)
        .with_context(|| format!("README.md has no {HEADING:?}"))?
        .1;
    let start = after
        .split_once("```sh\n")
        .context("no ```sh block after the heading")?
        .1;
    let body = start
        .split_once("\n```")
        .context("the ```sh block does not end")?
        .0;
    Ok(body.lines().collect())
}

/// Runs the block; fails naming the line that failed.
pub(crate) fn run(root: &Path) -> Result<()> {
    let readme = std::fs::read_to_string(root.join("README.md")).context("reading README.md")?;
    let lines = block(&readme)?;
    let binary = std::fs::canonicalize(crate::target_dir().join("debug").join("infinisheet"))
        .context("the infinisheet binary is not built")?;
    let dir = crate::target_dir().join("readme-run");
    match std::fs::remove_dir_all(&dir) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("removing {}", dir.display())),
    }
    std::fs::create_dir_all(dir.join("home"))?;
    let dir = std::fs::canonicalize(&dir)?;
    std::fs::write(dir.join("data.csv"), "region;amount\nnorth;42\nsouth;7\n")?;
    let mut script = String::from("set -euo pipefail\n");
    // The binary's path comes in the environment, so no path (a quote or
    // a space in the checkout's) is ever read as shell code.
    script.push_str("infinisheet() { \"$INFINISHEET_README_BINARY\" \"$@\"; }\n");
    for (n, line) in lines.iter().enumerate() {
        if line.starts_with("alias infinisheet=") {
            continue;
        }
        // Each line says where it is, so a failure names it.
        script.push_str(&format!(
            "echo '+ README block line {}' >&2\n{line}\n",
            n + 1
        ));
    }
    let script_path = dir.join("block.sh");
    std::fs::write(&script_path, &script)?;
    eprintln!(
        "$ bash {}  (the README's command block, {} lines)",
        script_path.display(),
        lines.len()
    );
    let status = Command::new("bash")
        .arg(&script_path)
        .current_dir(&dir)
        .env("HOME", dir.join("home"))
        .env("INFINISHEET_README_BINARY", &binary)
        .env_remove("INFINISHEET_HOME")
        .env_remove("INFINISHEET_LOGS")
        .env_remove("INFINISHEET_BLOBS")
        .status()
        .context("starting bash")?;
    if !status.success() {
        bail!(
            "the README's command block failed ({status}); the last `+` line above names the line"
        );
    }
    Ok(())
}
