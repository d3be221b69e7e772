//! The browser test of `infinisheet serve`'s page: Debian's Chromium
//! (installed with `apt-get` when missing) driven by playwright-core (from
//! the npm registry, into the cache directory), running
//! `xtask/browser/page.mjs` against a server on a free loopback port.

use anyhow::{Context, Result, bail};
use std::io::BufRead;
use std::path::Path;
use std::process::{Command, Stdio};

/// What gets installed from npm, pinned.
const PACKAGES: [&str; 1] = ["playwright-core@1.64.1"];

/// Installs Chromium from Debian's packages when it is missing.
fn ensure_chromium() -> Result<()> {
    if Path::new("/usr/bin/chromium").is_file() {
        return Ok(());
    }
    crate::apt_install(&["chromium"])
}

/// A `serve` process, stopped with SIGTERM when dropped.
struct Serve(std::process::Child);

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

/// Runs the page test; the screenshot goes to `target/browser/page.png`.
pub(crate) fn test(root: &Path) -> Result<()> {
    ensure_chromium()?;
    let modules = crate::azure::npm_install("browser-1", &PACKAGES)?.join("node_modules");
    let target = crate::target_dir();
    let binary = std::fs::canonicalize(target.join("debug").join("infinisheet"))
        .context("the infinisheet binary is not built")?;
    let out = target.join("browser");
    match std::fs::remove_dir_all(&out) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
        Err(err) => return Err(err).with_context(|| format!("removing {}", out.display())),
    }
    std::fs::create_dir_all(&out)?;
    let out = std::fs::canonicalize(&out)?;
    let home = out.join("home");
    let cli = |args: &[&str]| -> Result<()> {
        let status = Command::new(&binary)
            .arg("--home")
            .arg(&home)
            .args(args)
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!("infinisheet {} failed with {status}", args.join(" "));
        }
        Ok(())
    };
    cli(&["new", "s"])?;
    cli(&["set", "s", "A1", "42"])?;
    cli(&["set", "s", "A5000", "far"])?;
    // The demo's sheet, in a folder of the same catalog: the picker lists
    // it, and the screenshot is of it.
    let demo = Command::new(&binary)
        .arg("demo")
        .arg("--dir")
        .arg(&home)
        .args(["--rows", "2000", "--columns", "8"])
        .stdout(Stdio::null())
        .status()?;
    if !demo.success() {
        bail!("infinisheet demo failed with {demo}");
    }
    let listed = Command::new(&binary)
        .arg("--home")
        .arg(&home)
        .args(["ls", "demo"])
        .output()?;
    let demo = String::from_utf8(listed.stdout)?;
    let demo = match demo.lines().collect::<Vec<_>>()[..] {
        [name] => format!("demo/{}", name.trim()),
        _ => bail!("the demo folder holds {demo:?}"),
    };
    let log = out.join("serve.log");
    let (server, url) = serve(&binary, &home, &[], &log)?;
    // The same catalog behind a token, for the sign-in.
    const TOKEN: &str = "browser-test-token";
    let (tokened, token_url) = serve(
        &binary,
        &home,
        &["--token", TOKEN],
        &out.join("serve-token.log"),
    )?;
    let script = root.join("xtask").join("browser").join("page.mjs");
    let screenshot = out.join("page.png");
    crate::run_with(
        "node",
        &[
            &script.to_string_lossy(),
            &url,
            &binary.to_string_lossy(),
            &home.to_string_lossy(),
            &screenshot.to_string_lossy(),
            &log.to_string_lossy(),
            &token_url,
            TOKEN,
            &demo,
        ],
        &[("PLAYWRIGHT_MODULES", modules.to_string_lossy().into_owned())],
    )?;
    drop(server);
    drop(tokened);
    Ok(())
}

/// Starts `infinisheet serve` on `home` with `extra` arguments, its
/// stderr (the access log) into `log`: the process and its URL.
fn serve(binary: &Path, home: &Path, extra: &[&str], log: &Path) -> Result<(Serve, String)> {
    let mut child = Command::new(binary)
        .arg("--home")
        .arg(home)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(extra)
        .env_remove("INFINISHEET_TOKEN")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?)
        .spawn()
        .context("starting infinisheet serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let server = Serve(child);
    let mut line = String::new();
    std::io::BufReader::new(stdout).read_line(&mut line)?;
    let Some(url) = line.trim().strip_prefix("listening on ") else {
        bail!("infinisheet serve said {line:?}");
    };
    Ok((server, url.to_owned()))
}
