//! [`PostgresDatabase`]: a pool of connections to one database, and the
//! logs in it by name.

use crate::error::{self, OpenError};
use crate::event_log::PostgresEventLog;
use crate::listen::Listener;
use crate::password;
use crate::schema;
use crate::tls;
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::NoTls;
use tokio_postgres::config::SslMode;

/// How a [`PostgresDatabase`] connects and pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PostgresOptions {
    /// The most connections the pool opens; 16 unless set.
    pub max_connections: usize,
    /// How long a call waits for a connection to come free, or for a new
    /// one to be made, before it fails as retryable; 30 s unless set.
    pub connect_timeout: Duration,
    /// The most entries a query returns; 10,000 unless set.
    pub query_page_entries: usize,
    /// A query stops adding entries once their payloads and metadata reach
    /// this many bytes (it always returns at least one); 16 MiB unless set.
    pub query_page_bytes: usize,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            connect_timeout: Duration::from_secs(30),
            query_page_entries: 10_000,
            query_page_bytes: 16 * 1024 * 1024,
        }
    }
}

impl PostgresOptions {
    /// Sets [`max_connections`](PostgresOptions::max_connections) (at
    /// least 1).
    #[must_use]
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// Sets [`query_page_entries`](PostgresOptions::query_page_entries)
    /// (at least 1).
    #[must_use]
    pub fn query_page_entries(mut self, entries: usize) -> Self {
        self.query_page_entries = entries.max(1);
        self
    }

    /// Sets [`query_page_bytes`](PostgresOptions::query_page_bytes).
    #[must_use]
    pub fn query_page_bytes(mut self, bytes: usize) -> Self {
        self.query_page_bytes = bytes;
        self
    }
}

/// A database holding any number of named event logs: a pool of
/// connections (made as calls need them), shared by clones. Other
/// processes, on this machine or others, may open the same database; every
/// handle of a log agrees with every other.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use infinisheet_postgres::{PostgresDatabase, PostgresOptions};
///
/// let db = PostgresDatabase::connect("postgres://app@db.internal/sheets", PostgresOptions::default()).await?;
/// let log = db.open_or_create_log("budget").await?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct PostgresDatabase {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) pool: Pool,
    /// The URL without its password: how messages name the database.
    pub(crate) url: String,
    pub(crate) options: PostgresOptions,
    /// How to connect, for the listening connection.
    config: tokio_postgres::Config,
    /// TLS, when the URL asks for it.
    tls: Option<tls::Connector>,
    /// The listening connection, started by the first tail that waits
    /// (again if the runtime it ran on is gone).
    listener: std::sync::Mutex<Option<Arc<Listener>>>,
}

impl PostgresDatabase {
    /// Connects to the database `url` names (`postgres://user@host:port/db`,
    /// or libpq's `key=value` form), creates this backend's tables if the
    /// database has none, and checks their version.
    ///
    /// The password comes from the URL, else `PGPASSWORD`, else the
    /// password file (`PGPASSFILE`, or `~/.pgpass`) as libpq reads it.
    /// `sslmode=require`, `verify-full` and `verify-ca` connect with TLS,
    /// checking the server's certificate against the roots in the PEM
    /// file `sslrootcert` names (or the Mozilla set built in), and its
    /// host name but for `verify-ca`; `disable`, `allow` and `prefer`
    /// (the default) connect without TLS.
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidUrl`] for a URL that names no database (or
    /// holds an unencoded `@` in its password);
    /// [`OpenError::Tls`] for a root file that cannot be read;
    /// [`OpenError::Storage`] if the server cannot be reached or refuses
    /// the login (retryable when it may come back);
    /// [`OpenError::SchemaTooNew`] and [`OpenError::Layout`] for tables
    /// this code does not read.
    pub async fn connect(url: &str, options: PostgresOptions) -> Result<Self, OpenError> {
        Self::connect_as(url, options, false).await
    }

    /// Connects for reading only: every transaction is read-only
    /// (`default_transaction_read_only`), and nothing is created — a
    /// database without this backend's tables is [`OpenError::NoTables`].
    ///
    /// # Errors
    ///
    /// As [`connect`](PostgresDatabase::connect), and
    /// [`OpenError::NoTables`].
    pub async fn connect_read_only(url: &str, options: PostgresOptions) -> Result<Self, OpenError> {
        Self::connect_as(url, options, true).await
    }

    async fn connect_as(
        url: &str,
        options: PostgresOptions,
        read_only: bool,
    ) -> Result<Self, OpenError> {
        let shown = redact(url);
        let (rest, tls) = tls::take(url, env).map_err(|refused| match refused {
            tls::Refused::Invalid(problem) => OpenError::InvalidUrl {
                url: shown.clone(),
                problem,
            },
            tls::Refused::Unsupported(what) => OpenError::Unsupported {
                url: shown.clone(),
                what,
            },
        })?;
        let mut config: tokio_postgres::Config =
            rest.parse()
                .map_err(|err: tokio_postgres::Error| OpenError::InvalidUrl {
                    url: shown.clone(),
                    problem: if rest.contains("://") {
                        err.to_string()
                    } else {
                        // The client's message echoes a word, which a
                        // mistyped URL may hold a password in.
                        "the client reads no key=value pairs there (give a postgres:// URL)".into()
                    },
                })?;
        if host_holds_at(&config) {
            // `user:pa@ss@host`: the client takes `ss@host` for the host.
            return Err(OpenError::InvalidUrl {
                url: shown,
                problem: "a host name holds `@`: percent-encode `@` in the password as %40 \
                          (and `:`, `/`, `?`, `#` and `%` as %3A, %2F, %3F, %23 and %25)"
                    .into(),
            });
        }
        if tls == tls::Tls::Off && config.get_ssl_mode() == SslMode::Require {
            // Never a silent downgrade: TLS asked for in a way not read
            // above is refused, not dropped.
            return Err(OpenError::InvalidUrl {
                url: shown,
                problem: "sslmode=require was not read where it was looked for: write it in \
                          the URL's query (?sslmode=require) or as a bare key=value, and \
                          percent-encode `?`, `@`, `/` and `#` in the user name and password"
                    .into(),
            });
        }
        let connector = tls::connector(&tls).map_err(|problem| OpenError::Tls {
            url: shown.clone(),
            problem,
        })?;
        config.ssl_mode(if connector.is_some() {
            SslMode::Require
        } else {
            SslMode::Disable
        });
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .map_err(|_| OpenError::InvalidUrl {
                    url: shown.clone(),
                    problem: "it names no user (and neither PGUSER nor USER is set)".into(),
                })?;
            config.user(&user);
        }
        if config.get_password().is_none()
            && let Some(password) = password::find(&config)
        {
            config.password(password);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        // A connection a network cut left half-open is found within a
        // minute, not the two hours of the system's default.
        let idle = config.get_keepalives_idle().min(Duration::from_secs(30));
        config
            .keepalives(true)
            .keepalives_idle(idle)
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        if config.get_application_name().is_none() {
            config.application_name("infinisheet");
        }
        if read_only {
            let mut given = config.get_options().unwrap_or_default().to_owned();
            given.push_str(" -c default_transaction_read_only=on");
            config.options(given.trim_start());
        }
        let recycling = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &connector {
            Some(connector) => Manager::from_config(config.clone(), connector.0.clone(), recycling),
            None => Manager::from_config(config.clone(), NoTls, recycling),
        };
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .wait_timeout(Some(options.connect_timeout))
            .create_timeout(Some(options.connect_timeout))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .build()
            .map_err(|err| OpenError::InvalidUrl {
                url: shown.clone(),
                problem: err.to_string(),
            })?;
        let mut client = pool
            .get()
            .await
            .map_err(|err| OpenError::from_storage(&shown, error::pool("connecting", err)))?;
        if read_only {
            schema::check(&client, &shown).await?;
        } else {
            schema::ensure(&mut client, &shown).await?;
        }
        drop(client);
        Ok(PostgresDatabase {
            shared: Arc::new(Shared {
                pool,
                url: shown,
                options,
                config,
                tls: connector,
                listener: std::sync::Mutex::new(None),
            }),
        })
    }

    /// The database's URL without its password.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// Creates the log `name`.
    ///
    /// # Errors
    ///
    /// [`OpenError::AlreadyExists`], [`OpenError::InvalidName`],
    /// [`OpenError::Storage`].
    pub async fn create_log(&self, name: &str) -> Result<PostgresEventLog, OpenError> {
        self.named(name, Mode::Create).await
    }

    /// Opens the existing log `name`.
    ///
    /// # Errors
    ///
    /// [`OpenError::NotFound`], [`OpenError::InvalidName`],
    /// [`OpenError::Storage`].
    pub async fn open_log(&self, name: &str) -> Result<PostgresEventLog, OpenError> {
        self.named(name, Mode::Open).await
    }

    /// Opens the log `name`, creating it if it does not exist.
    ///
    /// # Errors
    ///
    /// [`OpenError::InvalidName`], [`OpenError::Storage`].
    pub async fn open_or_create_log(&self, name: &str) -> Result<PostgresEventLog, OpenError> {
        self.named(name, Mode::OpenOrCreate).await
    }

    async fn named(&self, name: &str, mode: Mode) -> Result<PostgresEventLog, OpenError> {
        let url = &self.shared.url;
        if let Err(problem) = check_name(name) {
            return Err(OpenError::InvalidName {
                url: url.clone(),
                name: name.to_owned(),
                problem,
            });
        }
        let failed = |err| OpenError::storage(url, "opening the log", err);
        let client = self
            .shared
            .pool
            .get()
            .await
            .map_err(|err| OpenError::from_storage(url, error::pool("opening the log", err)))?;
        let created = if mode == Mode::Open {
            false
        } else {
            let insert = client
                .prepare_cached(
                    "INSERT INTO infinisheet_logs (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
                )
                .await
                .map_err(failed)?;
            client.execute(&insert, &[&name]).await.map_err(failed)? == 1
        };
        if mode == Mode::Create && !created {
            return Err(OpenError::AlreadyExists {
                url: url.clone(),
                name: name.to_owned(),
            });
        }
        let select = client
            .prepare_cached("SELECT id FROM infinisheet_logs WHERE name = $1")
            .await
            .map_err(failed)?;
        match client.query_opt(&select, &[&name]).await.map_err(failed)? {
            Some(row) => Ok(PostgresEventLog::new(
                self.clone(),
                row.try_get(0).map_err(failed)?,
                name,
            )),
            None => Err(OpenError::NotFound {
                url: url.clone(),
                name: name.to_owned(),
            }),
        }
    }

    /// The listening connection (started on first use, on the runtime of
    /// the caller).
    pub(crate) fn listener(&self) -> Arc<Listener> {
        let mut listener = self
            .shared
            .listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*listener {
            Some(running) if running.is_running() => running.clone(),
            _ => {
                let started = Arc::new(Listener::start(
                    self.shared.config.clone(),
                    self.shared.tls.clone(),
                    self.shared.url.clone(),
                ));
                *listener = Some(started.clone());
                started
            }
        }
    }

    /// A connection from the pool; a failure is a storage error saying it
    /// happened while `doing`.
    pub(crate) async fn client(
        &self,
        doing: &str,
    ) -> Result<deadpool_postgres::Object, infinisheet_event_log::StorageError> {
        self.shared
            .pool
            .get()
            .await
            .map_err(|err| error::pool(doing, err))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Create,
    Open,
    OpenOrCreate,
}

/// A log's name: 1 to 255 bytes, no control characters.
fn check_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > 255 {
        return Err("it is longer than 255 bytes");
    }
    if name.chars().any(char::is_control) {
        return Err("it holds a control character");
    }
    Ok(())
}

/// How messages and [`PostgresDatabase::url`] name the database `url`
/// names: `postgres://USER@HOST:PORT/DB` (and its `options`, where a
/// schema is chosen), built from what the client parsed, so never a
/// password however the URL spelled it; a URL the client cannot parse, or
/// whose host holds `@` (an unencoded `@` in a password), with its secrets
/// hidden.
pub fn redact(url: &str) -> String {
    let Ok((rest, tls)) = tls::take(url, env) else {
        return infinisheet_storage_error::redact_url(url);
    };
    match rest.parse::<tokio_postgres::Config>() {
        Ok(config) if !host_holds_at(&config) => {
            let mut shown = display(&config);
            if let Some(tls) = tls.shown() {
                shown.push(if shown.contains('?') { '&' } else { '?' });
                shown.push_str(&tls);
            }
            shown
        }
        _ => infinisheet_storage_error::redact_url(url),
    }
}

/// A variable of the environment (`PGSSLMODE`, `PGSSLROOTCERT`).
fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Whether a host name holds `@`: the client splits a URL's user part at
/// its first `@`, so `user:pa@ss@host` has the host `ss@host` — the end of
/// a password.
fn host_holds_at(config: &tokio_postgres::Config) -> bool {
    config
        .get_hosts()
        .iter()
        .any(|host| matches!(host, tokio_postgres::config::Host::Tcp(name) if name.contains('@')))
}

fn display(config: &tokio_postgres::Config) -> String {
    use tokio_postgres::config::Host;
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("[{}]:{port}", dir.display()),
            }
        })
        .collect();
    let user = config
        .get_user()
        .map(|user| format!("{user}@"))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or_default();
    let mut shown = format!("postgres://{user}{}/{db}", hosts.join(","));
    // A schema chosen with `options` tells two catalogs in one database
    // apart; options hold no password.
    if let Some(options) = config.get_options().filter(|o| !o.is_empty()) {
        shown.push_str("?options=");
        shown.push_str(&options.replace(' ', "%20").replace('=', "%3D"));
    }
    shown
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        for (given, shown) in [
            (
                "postgres://app:secret@db/sheets",
                "postgres://app@db:5432/sheets",
            ),
            (
                "postgres://app@db:6432/sheets",
                "postgres://app@db:6432/sheets",
            ),
            (
                "postgres://app:secret@h1:5432,h2:5433/x",
                "postgres://app@h1:5432,h2:5433/x",
            ),
            (
                "postgres://app@db/x?password=secret",
                "postgres://app@db:5432/x",
            ),
            (
                "host=db user=app password=secret dbname=x",
                "postgres://app@db:5432/x",
            ),
            (
                "host=db user=app password='a b c' dbname=x",
                "postgres://app@db:5432/x",
            ),
            (
                "postgres://app@db/x?options=-c%20search_path%3Dmine",
                "postgres://app@db:5432/x?options=-c%20search_path%3Dmine",
            ),
        ] {
            assert_eq!(redact(given), shown, "{given}");
        }
        // What the client cannot parse still hides its secrets.
        for bad in [
            "postgres://app:se/cret@db:notaport/x",
            "postgres://app@db:notaport/x?password=secret",
            "postgres://app:abc@secret@db/x",
        ] {
            assert!(!redact(bad).contains("secret"), "{bad}: {}", redact(bad));
        }
    }

    #[test]
    fn log_names() {
        assert!(check_name("budget/2026").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name(&"x".repeat(256)).is_err());
        assert!(check_name("a\nb").is_err());
    }
}
