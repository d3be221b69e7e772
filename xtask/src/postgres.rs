//! The PostgreSQL server the Postgres backend's tests run against: the
//! machine's PostgreSQL (Debian's `postgresql`, installed when missing),
//! as a cluster of its own in a fresh temporary directory, on a free
//! loopback port, with one database for the run; stopped and removed when
//! dropped.
//!
//! PostgreSQL refuses to run as root, so as root (as on CI) the cluster
//! belongs to the `postgres` user the package creates and every command
//! runs through `runuser`; the directory is then under `/tmp`, which that
//! user can reach wherever the checkout is.

use anyhow::{Context, Result, bail};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;

/// The database the tests use; they pick their own log names in it.
const DATABASE: &str = "infinisheet_tests";

/// The role the cluster is made with. It owns everything (a superuser can
/// run programs as the server's user), so it has a random password of
/// this run's own: the server listens on loopback, where any local user
/// could otherwise connect.
const ROLE: &str = "infinisheet";

/// Whether the server syncs its writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Durability {
    /// `fsync=off`: the tests check the backend, not the disk (a server
    /// killed by a test still loses nothing the OS holds).
    Unsynced,
    /// PostgreSQL's defaults: what the benchmarks measure against.
    Synced,
}

/// A running cluster; stopped and removed on drop.
pub(crate) struct PostgresServer {
    bin: PathBuf,
    /// The temporary directory: `data/` and the server's `log`.
    dir: PathBuf,
    /// `Some("postgres")` when commands run as that user (xtask as root).
    user: Option<&'static str>,
    port: u16,
    /// The role's password (hex, so the URL needs no encoding).
    password: String,
}

/// The directory of PostgreSQL's programs, installing it first if needed.
pub(crate) fn programs() -> Result<PathBuf> {
    match bin_dir() {
        Some(bin) => Ok(bin),
        None => {
            crate::apt_install(&["postgresql"])?;
            bin_dir().context("PostgreSQL was installed but its initdb is not found")
        }
    }
}

impl PostgresServer {
    /// Starts a new cluster (installing PostgreSQL first if needed).
    pub(crate) fn start(durability: Durability) -> Result<Self> {
        let bin = programs()?;
        let root = std::fs::metadata("/proc/self")
            .map(|m| m.uid() == 0)
            .unwrap_or(false);
        let user = root.then_some("postgres");
        // As root the cluster's user must reach the directory: under
        // /tmp, whatever TMPDIR says.
        let parent = if root {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = parent.join(format!(
            "infinisheet-postgres-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let port = crate::s3::free_port()?;
        let server = PostgresServer {
            bin,
            dir,
            user,
            port,
            password: random_hex()?,
        };
        // The password reaches initdb in a file only the cluster's user
        // may read, removed once read.
        let pwfile = server.dir.join("pwfile");
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&pwfile)
                .and_then(|mut file| writeln!(file, "{}", server.password))
                .with_context(|| format!("writing {}", pwfile.display()))?;
        }
        if root {
            server.give_to_postgres(&[&server.dir, &pwfile])?;
        }
        server.make_certificates()?;
        let data = server.dir.join("data");
        let log = server.dir.join("log");
        let initdb = server.run(
            "initdb",
            &[
                "--pgdata",
                &data.to_string_lossy(),
                "--username",
                ROLE,
                // The password in clear over loopback: SCRAM's hashing in
                // the tests' debug builds tripled the suite's time.
                "--auth",
                "password",
                "--pwfile",
                &pwfile.to_string_lossy(),
                "--encoding",
                "UTF8",
                "--no-sync",
            ],
        );
        std::fs::remove_file(&pwfile).with_context(|| format!("removing {}", pwfile.display()))?;
        initdb?;
        // Loopback TCP only: no Unix socket (whose path could be too long
        // or need quoting in pg_ctl's shell command).
        let fsync = match durability {
            Durability::Unsynced => "off",
            Durability::Synced => "on",
        };
        // TLS too, for the clients that ask for it (`INFINISHEET_POSTGRES_CA`).
        let options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories='' -c fsync={fsync} \
             -c max_connections=200 -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            server.port,
            server.dir.join("server.crt").display(),
            server.dir.join("server.key").display(),
        );
        server
            .run(
                "pg_ctl",
                &[
                    "--pgdata",
                    &data.to_string_lossy(),
                    "--log",
                    &log.to_string_lossy(),
                    "--options",
                    &options,
                    "--wait",
                    "--timeout",
                    "60",
                    "start",
                ],
            )
            .with_context(|| format!("starting PostgreSQL; see {}", log.display()))?;
        server.run(
            "createdb",
            &[
                "--host",
                "127.0.0.1",
                "--port",
                &server.port.to_string(),
                "--username",
                ROLE,
                DATABASE,
            ],
        )?;
        server.write_restart(&data, &log)?;
        eprintln!(
            "PostgreSQL on postgres://{ROLE}@127.0.0.1:{}/{DATABASE} (its password in \
             INFINISHEET_POSTGRES_URL), its log in {}",
            server.port,
            log.display()
        );
        Ok(server)
    }

    /// The database's URL, with the password.
    pub(crate) fn url(&self) -> String {
        format!(
            "postgres://{ROLE}:{}@127.0.0.1:{}/{DATABASE}",
            self.password, self.port
        )
    }

    /// A certificate authority of this run's own (`ca.crt`) and the
    /// server's certificate it signed (`server.crt`, `server.key`), for
    /// the host name `localhost` only: a client checking names accepts it
    /// through `localhost`, not through `127.0.0.1`.
    fn make_certificates(&self) -> Result<()> {
        if !crate::works("openssl", &["version"]) {
            crate::apt_install(&["openssl"])?;
        }
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        let openssl = |args: &[&str]| -> Result<()> {
            let output = Command::new("openssl")
                .args(args)
                .current_dir(&self.dir)
                .output()
                .context("starting openssl")?;
            if !output.status.success() {
                bail!(
                    "`openssl {}` failed: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&output.stderr).trim()
                );
            }
            Ok(())
        };
        let ca = [
            &[
                "req",
                "-x509",
                "-new",
                "-days",
                "2",
                "-subj",
                "/CN=infinisheet test CA",
            ][..],
            &ec,
            &["-addext", "basicConstraints=critical,CA:TRUE"],
            &["-addext", "keyUsage=critical,keyCertSign,cRLSign"],
            &["-keyout", "ca.key", "-out", "ca.crt"],
        ]
        .concat();
        openssl(&ca)?;
        let request = [
            &["req", "-new", "-subj", "/CN=localhost"][..],
            &ec,
            &["-keyout", "server.key", "-out", "server.csr"],
        ]
        .concat();
        openssl(&request)?;
        std::fs::write(
            self.dir.join("server.ext"),
            "subjectAltName=DNS:localhost\nbasicConstraints=CA:FALSE\n\
             keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
        )
        .context("writing server.ext")?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ])?;
        // No one signs anything else with it.
        std::fs::remove_file(self.dir.join("ca.key")).context("removing ca.key")?;
        let key = self.dir.join("server.key");
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
                .with_context(|| format!("making {} private", key.display()))?;
        }
        if self.user.is_some() {
            self.give_to_postgres(&[&key, &self.dir.join("server.crt")])?;
        }
        Ok(())
    }

    /// The environment naming the database to the tests, the program
    /// that restarts the server (`INFINISHEET_POSTGRES_RESTART`, for the
    /// test run alone after the others: see `write_restart`), and the
    /// certificate authority that signed the server's certificate
    /// (`INFINISHEET_POSTGRES_CA`).
    pub(crate) fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("INFINISHEET_POSTGRES_URL", self.url()),
            (
                "INFINISHEET_POSTGRES_RESTART",
                self.dir.join("restart").to_string_lossy().into_owned(),
            ),
            (
                "INFINISHEET_POSTGRES_CA",
                self.dir.join("ca.crt").to_string_lossy().into_owned(),
            ),
        ]
    }

    /// Writes `restart`, a program a test runs to restart the server
    /// (`pg_ctl restart --mode fast`: every session is cut, the server
    /// comes back on the same port with the same options).
    fn write_restart(&self, data: &std::path::Path, log: &std::path::Path) -> Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let quote = |path: &std::path::Path| format!("'{}'", path.display());
        let runuser = match self.user {
            Some(user) => format!("runuser -u {user} -- "),
            None => String::new(),
        };
        let script = format!(
            "#!/bin/sh\n# Restarts the PostgreSQL server of `cargo xtask test`.\n\
             exec {runuser}{} --pgdata {} --log {} --mode fast --wait --timeout 60 restart\n",
            quote(&self.bin.join("pg_ctl")),
            quote(data),
            quote(log),
        );
        let path = self.dir.join("restart");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)
            .and_then(|mut file| file.write_all(script.as_bytes()))
            .with_context(|| format!("writing {}", path.display()))
    }

    /// Runs one of the server's programs (as the cluster's user).
    fn run(&self, program: &str, args: &[&str]) -> Result<()> {
        let path = self.bin.join(program);
        let mut command = match self.user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(&path);
                command
            }
            None => Command::new(&path),
        };
        // A developer's PG* settings (PGSSLMODE, PGOPTIONS, ...) are not
        // this cluster's.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("PG") {
                command.env_remove(name);
            }
        }
        // For createdb (runuser keeps the environment).
        command.env("PGPASSWORD", &self.password);
        let output = command
            .args(args)
            .current_dir(&self.dir)
            .output()
            .with_context(|| format!("starting {}", path.display()))?;
        if !output.status.success() {
            bail!(
                "`{program} {}` failed with {}: {}",
                args.join(" "),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(())
    }

    /// Hands `paths` to the `postgres` user.
    fn give_to_postgres(&self, paths: &[&std::path::Path]) -> Result<()> {
        let passwd = std::fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
        let (uid, gid) = passwd
            .lines()
            .find_map(|line| {
                let fields: Vec<&str> = line.split(':').collect();
                (fields.first() == Some(&"postgres") && fields.len() > 3)
                    .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
                    .flatten()
            })
            .context("no `postgres` user (the postgresql package makes it)")?;
        for path in paths {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to postgres", path.display()))?;
        }
        Ok(())
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let stopped = self.run(
            "pg_ctl",
            &[
                "--pgdata",
                &data.to_string_lossy(),
                "--mode",
                "immediate",
                "--wait",
                "stop",
            ],
        );
        if let Err(err) = stopped {
            eprintln!("stopping PostgreSQL: {err:#}");
        }
        // Keep the server's log beside the others in the target directory.
        let _ = std::fs::copy(
            self.dir.join("log"),
            crate::target_dir().join("postgres.log"),
        );
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// 16 random bytes from the system, in hex.
fn random_hex() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The newest installed PostgreSQL's programs (Debian keeps each version
/// in `/usr/lib/postgresql/N/bin`), or those `pg_config` names.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    found.sort();
    if let Some((_, bin)) = found.pop() {
        return Some(bin);
    }
    let output = Command::new("pg_config").arg("--bindir").output().ok()?;
    let bin = PathBuf::from(String::from_utf8(output.stdout).ok()?.trim());
    bin.join("initdb").is_file().then_some(bin)
}
