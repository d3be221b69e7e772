//! `SqliteDatabase`: one database file, its shared connection, and the named
//! logs and blob stores inside it.

use crate::checksum;
use crate::connection::SharedConnection;
use crate::error::{OpenError, storage};
use crate::options::{Durability, SqliteOptions};
use crate::schema;
use crate::write_queue::WriteQueue;
use infinisheet_event_log::StorageError;
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// An open Infinisheet database file. One file holds any number of named
/// event logs and named blob stores (a host app can keep every spreadsheet
/// of a user in one file). Clones share one connection, on which calls take
/// turns; other processes may open the same file at the same time.
///
/// ```
/// use infinisheet_event_log::{EventLog, EventLogExt, KnownSnapshot, LogEntry};
/// use infinisheet_sqlite::{SqliteDatabase, SqliteOptions};
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let dir = tempfile::tempdir()?;
/// let db = SqliteDatabase::open(dir.path().join("sheets.db"), SqliteOptions::default()).await?;
/// let log = db.create_log("budget").await?;
/// log.add_entry(LogEntry::new("A1 = 1"), 0, KnownSnapshot::NotTracked).await?;
/// let store = db.blob_store("files").await?;
/// # drop((log, store));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct SqliteDatabase {
    pub(crate) shared: Arc<Shared>,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) connection: SharedConnection,
    pub(crate) path: PathBuf,
    /// `sqlite:PATH`, how a [`LogStore`](infinisheet_event_log::LogStore)
    /// names it.
    pub(crate) url: String,
    pub(crate) options: SqliteOptions,
    /// Random id recorded in the file; scopes continuation tokens.
    pub(crate) instance: u64,
    /// Keeps the directory of a temporary database alive.
    pub(crate) temporary: Option<Arc<tempfile::TempDir>>,
    /// Blob writes waiting to be committed together.
    pub(crate) blob_writes: WriteQueue,
    /// The database file's device and inode: with a log's row id, what
    /// names the log's waiting tails in this process, whatever connection
    /// opened it.
    pub(crate) file: (u64, u64),
    /// Wake-ups from the other processes appending to the file (`None`:
    /// its tails poll them).
    pub(crate) push: Option<infinisheet_event_log::raw::FilePush>,
    /// Woken when any process touches the file: an append to one of its
    /// logs (which one, a tail finds by reading).
    pub(crate) touched: Arc<infinisheet_event_log::raw::Waiters>,
}

/// The longest log or blob store name, in characters.
const MAX_NAME_CHARS: usize = 200;

fn check_name(kind: &'static str, name: &str) -> Result<(), OpenError> {
    let reason = if name.is_empty() {
        Some("a name cannot be empty")
    } else if name.chars().count() > MAX_NAME_CHARS {
        Some("a name is at most 200 characters")
    } else if name.chars().any(char::is_control) {
        Some("a name cannot contain control characters")
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(OpenError::InvalidName {
            kind,
            name: name.to_owned(),
            reason,
        }),
    }
}

impl SqliteDatabase {
    /// Opens the database at `path`, creating the file and the schema if the
    /// file does not exist or is empty.
    ///
    /// # Errors
    ///
    /// * [`OpenError::NotADatabase`] if the file is not SQLite, and
    ///   [`OpenError::ForeignDatabase`] if it is another application's
    ///   database; neither file is changed.
    /// * [`OpenError::SchemaTooNew`] if a newer version wrote the file.
    /// * [`OpenError::Storage`] if the file cannot be opened or read.
    pub async fn open(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, OpenError> {
        Self::open_inner(path.as_ref().to_owned(), options, None, open_connection).await
    }

    /// A database in a new temporary directory, removed when the last handle
    /// to it is dropped. For tests and samples.
    ///
    /// # Errors
    ///
    /// [`OpenError::Storage`] if the directory or the database cannot be
    /// created.
    pub async fn temporary(options: SqliteOptions) -> Result<Self, OpenError> {
        let dir = tempfile::tempdir().map_err(|err| {
            StorageError::new(crate::BACKEND, "cannot create a temporary directory")
                .with_source(err)
        })?;
        let path = dir.path().join("infinisheet.db");
        Self::open_inner(path, options, Some(Arc::new(dir)), open_connection).await
    }

    /// Opens an existing database for reading only: creates nothing and
    /// changes nothing (not even the journal mode), and works on a file
    /// and directory the process may not write to. Every write through it
    /// fails with a storage error.
    ///
    /// # Errors
    ///
    /// [`OpenError::Missing`] if there is no database file at `path`;
    /// [`OpenError::NeedsUpgrade`] if it has a schema older than version 3
    /// (open it for writing once to upgrade it; version 3 is read as it
    /// is); otherwise as [`open`](SqliteDatabase::open).
    pub async fn open_read_only(
        path: impl AsRef<Path>,
        options: SqliteOptions,
    ) -> Result<Self, OpenError> {
        Self::open_inner(path.as_ref().to_owned(), options, None, open_read_only).await
    }

    async fn open_inner(
        path: PathBuf,
        options: SqliteOptions,
        temporary: Option<Arc<tempfile::TempDir>>,
        connect: Connect,
    ) -> Result<Self, OpenError> {
        let opening = path.clone();
        // Opening syncs and may wait for another process's lock, like any
        // call; outside tokio it runs in place.
        let (connection, instance) =
            infinisheet_event_log::raw::blocking(crate::BACKEND, move || {
                connect(&opening, options)
            })
            .await??;
        let (file, push) = {
            use std::os::unix::fs::MetadataExt;
            match std::fs::metadata(&path) {
                Ok(meta) => {
                    let file = (meta.dev(), meta.ino());
                    let wake = move || crate::event_log::file_waiters().wake(&file);
                    (file, infinisheet_event_log::raw::FilePush::new(&path, wake))
                }
                Err(_) => ((0, instance), None),
            }
        };
        let touched = crate::event_log::file_waiters().get(file);
        Ok(SqliteDatabase {
            shared: Arc::new(Shared {
                connection: SharedConnection::new(connection),
                url: format!("sqlite:{}", path.display()),
                path,
                options,
                instance,
                temporary,
                blob_writes: WriteQueue::default(),
                file,
                push,
                touched,
            }),
        })
    }

    /// Opens the same file again with a new connection, keeping a temporary
    /// database's directory alive. Dropping the old handle and reopening is
    /// what the persistence tests do.
    ///
    /// # Errors
    ///
    /// As [`open`](SqliteDatabase::open).
    pub async fn reopen(&self) -> Result<Self, OpenError> {
        Self::open_inner(
            self.shared.path.clone(),
            self.shared.options,
            self.shared.temporary.clone(),
            open_connection,
        )
        .await
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.shared.path
    }

    /// The options the database was opened with.
    pub fn options(&self) -> SqliteOptions {
        self.shared.options
    }

    /// The names of the logs in the database, in name order.
    ///
    /// # Errors
    ///
    /// [`OpenError::Storage`] if the database cannot be read.
    pub async fn log_names(&self) -> Result<Vec<String>, OpenError> {
        let names = self
            .shared
            .connection
            .call(false, |conn| {
                let mut statement = conn.prepare_cached("SELECT name FROM logs ORDER BY name")?;
                let names = statement.query_map([], |row| row.get(0))?;
                names.collect::<Result<Vec<String>, _>>()
            })
            .await?
            .map_err(|err| storage("listing logs", err))?;
        Ok(names)
    }

    pub(crate) async fn named(
        &self,
        kind: &'static str,
        table: &'static str,
        name: &str,
        mode: Mode,
    ) -> Result<i64, OpenError> {
        check_name(kind, name)?;
        let owned = name.to_owned();
        let found = self
            .shared
            .connection
            .call(false, move |conn| -> rusqlite::Result<Named> {
                let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
                let existing: Option<i64> = tx
                    .query_row(
                        &format!("SELECT id FROM {table} WHERE name = ?1"),
                        [&owned],
                        |row| row.get(0),
                    )
                    .optional()?;
                // The id comes from the index of names (it covers the
                // lookup): a damaged index page can point the name at
                // another row, or at none, while every page reads clean.
                // The row it names must carry the name and its checksum.
                let misled = match existing {
                    Some(id) => misled_row(&tx, table, id, &owned)?,
                    None => None,
                };
                let result = match (existing, mode) {
                    _ if let Some(damaged) = misled => Named::Damaged(damaged),
                    (Some(_), Mode::Create) => Named::Exists,
                    (Some(id), _) => Named::Found(id),
                    // Before saying "missing" (or making a new one), check
                    // that no row's name was damaged into another.
                    (None, _) if let Some(damaged) = damaged_row(&tx, table, &owned)? => {
                        Named::Damaged(damaged)
                    }
                    (None, Mode::Open) => Named::Missing,
                    (None, _) => {
                        let id: i64 = tx.query_row(
                            &format!("SELECT coalesce(max(id), 0) + 1 FROM {table}"),
                            [],
                            |row| row.get(0),
                        )?;
                        if table == "logs" {
                            tx.execute(
                                "INSERT INTO logs (id, name, start_seq, end_seq, crc) \
                                 VALUES (?1, ?2, 0, 0, ?3)",
                                params![id, &owned, checksum::log(id, &owned, 0, 0)],
                            )?;
                        } else {
                            tx.execute(
                                "INSERT INTO blob_stores (id, name, crc) VALUES (?1, ?2, ?3)",
                                params![id, &owned, checksum::store(id, &owned)],
                            )?;
                        }
                        Named::Found(id)
                    }
                };
                tx.commit()?;
                Ok(result)
            })
            .await?
            .map_err(|err| storage(&format!("opening {kind} {name:?}"), err))?;
        match found {
            Named::Exists => Err(OpenError::AlreadyExists {
                kind,
                name: name.to_owned(),
            }),
            Named::Found(id) => Ok(id),
            Named::Missing => Err(OpenError::NotFound {
                kind,
                name: name.to_owned(),
            }),
            Named::Damaged(what) => Err(OpenError::Storage(StorageError::corrupt(
                crate::BACKEND,
                format!("{}: {what}", self.path().display()),
            ))),
        }
    }
}

/// What looking a log or blob store up by name found.
enum Named {
    Found(i64),
    /// Found, but it was to be created.
    Exists,
    Missing,
    /// A row of the table fails its checksum.
    Damaged(String),
}

/// Why the row `id` of `logs` or `blob_stores`, which the index of names
/// gave for `name`, is not that name's whole row, if it is not: the row is
/// missing, holds another name, or fails its checksum. Read from the table
/// by id, not through the index.
fn misled_row(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    id: i64,
    name: &str,
) -> rusqlite::Result<Option<String>> {
    let logs = table == "logs";
    let (sql, what) = if logs {
        (
            "SELECT name, crc, start_seq, end_seq FROM logs WHERE id = ?1",
            "log",
        )
    } else {
        (
            "SELECT name, crc, 0, 0 FROM blob_stores WHERE id = ?1",
            "blob store",
        )
    };
    let row: Option<(String, i64, i64, i64)> = tx
        .query_row(sql, [id], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })
        .optional()?;
    let Some((found, crc, start, end)) = row else {
        return Ok(Some(format!(
            "the index of {what} names points {name:?} at {what} {id}, which does not exist"
        )));
    };
    if found != name {
        return Ok(Some(format!(
            "the index of {what} names points {name:?} at {what} {id}, which is {found:?}"
        )));
    }
    let expected = if logs {
        checksum::log(id, name, start, end)
    } else {
        checksum::store(id, name)
    };
    Ok((crc != expected).then(|| format!("the row of {what} {id} ({name:?}) fails its checksum")))
}

/// The first row of `logs` or `blob_stores` whose checksum fails, or whose
/// name is `looked_for` although the lookup by name missed it (a damaged
/// index), if any. The rows are read from the table, not the index.
fn damaged_row(
    tx: &rusqlite::Transaction<'_>,
    table: &str,
    looked_for: &str,
) -> rusqlite::Result<Option<String>> {
    let logs = table == "logs";
    let (sql, what) = if logs {
        (
            "SELECT id, name, crc, start_seq, end_seq FROM logs NOT INDEXED",
            "log",
        )
    } else {
        (
            "SELECT id, name, crc FROM blob_stores NOT INDEXED",
            "blob store",
        )
    };
    let mut select = tx.prepare(sql)?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let (id, name, crc): (i64, String, i64) = (row.get(0)?, row.get(1)?, row.get(2)?);
        if name == looked_for {
            return Ok(Some(format!(
                "the index of {what} names misses {what} {id} ({name:?})"
            )));
        }
        let expected = if logs {
            checksum::log(id, &name, row.get(3)?, row.get(4)?)
        } else {
            checksum::store(id, &name)
        };
        if crc != expected {
            return Ok(Some(format!(
                "the row of {what} {id} ({name:?}) fails its checksum"
            )));
        }
    }
    Ok(None)
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    Create,
    Open,
    OpenOrCreate,
}

/// Refuses a file shorter than its own header says while no WAL could hold
/// the rest: SQLite reads pages past the end of a cut file as missing rows,
/// not as damage. (With frames in a WAL the main file may lag its header
/// after a checkpoint that died; recovery completes it.)
fn refuse_cut_file(path: &Path) -> Result<(), OpenError> {
    use std::io::Read;
    let wal = PathBuf::from(format!("{}-wal", path.display()));
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0) {
        return Ok(());
    }
    let Ok(mut file) = std::fs::File::open(path) else {
        return Ok(()); // missing: created below; unreadable: the open says why
    };
    let mut header = [0u8; 100];
    if file.read_exact(&mut header).is_err() || &header[..16] != b"SQLite format 3\0" {
        return Ok(()); // empty, or not SQLite: the checks below say which
    }
    let word = |at: usize| {
        u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]])
    };
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        size => u64::from(size),
    };
    // The page count is valid only when written by the same change.
    if word(24) != word(92) {
        return Ok(());
    }
    let expected = page_size * u64::from(word(28));
    let actual = file.metadata().map(|m| m.len()).unwrap_or(expected);
    if actual < expected {
        return Err(OpenError::Storage(StorageError::corrupt(
            crate::BACKEND,
            format!(
                "{} is {actual} bytes, but its header says {expected}: the file was cut",
                path.display()
            ),
        )));
    }
    Ok(())
}

/// A read-only connection to the existing database at `path`, checked as
/// [`open_connection`] checks one, writing nothing.
fn open_read_only(path: &Path, options: SqliteOptions) -> Result<(Connection, u64), OpenError> {
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0) {
        return Err(OpenError::Missing {
            path: path.to_owned(),
        });
    }
    refuse_cut_file(path)?;
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let open = |target: &str, flags| -> Result<(Connection, u64), OpenError> {
        let connection = Connection::open_with_flags(target, flags)
            .map_err(|err| storage(&format!("opening {} to read", path.display()), err))?;
        connection
            .busy_timeout(options.busy_timeout)
            .map_err(|err| storage("setting the busy timeout", err))?;
        let instance = schema::check_read_only(&connection, path)?;
        Ok((connection, instance))
    };
    let text = path.display().to_string();
    match open(&text, flags) {
        Ok(opened) => Ok(opened),
        // A WAL database needs its `-shm` index beside it, which a reader
        // cannot make in a directory it may not write to. If no write is
        // waiting in a WAL, the file alone holds the whole database: read
        // it as immutable (no locks, no index).
        Err(OpenError::Storage(_)) if !wal_holds_writes(path) => {
            let uri = format!(
                "file:{}?immutable=1",
                text.replace('%', "%25")
                    .replace('?', "%3f")
                    .replace('#', "%23")
            );
            open(&uri, flags | OpenFlags::SQLITE_OPEN_URI)
        }
        Err(err) => Err(err),
    }
}

/// A way to open the database file: its connection and instance id.
type Connect = fn(&Path, SqliteOptions) -> Result<(Connection, u64), OpenError>;

/// Whether the WAL beside the database at `path` holds anything.
fn wal_holds_writes(path: &Path) -> bool {
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    std::fs::metadata(wal).is_ok_and(|m| m.len() > 0)
}

fn open_connection(path: &Path, options: SqliteOptions) -> Result<(Connection, u64), OpenError> {
    refuse_cut_file(path)?;
    // An existing file is first looked at through a read-only connection:
    // a read-write connection to another application's database would
    // checkpoint its WAL into it (and delete the WAL) when it closes, even
    // after only reading. A read-only one changes neither file (SQLite may
    // create the `-shm` index beside them).
    if std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if let Ok(reader) = Connection::open_with_flags(path, flags) {
            schema::refuse_foreign(&reader, path)?;
        }
    }
    let mut connection = Connection::open(path)
        .map_err(|err| storage(&format!("opening {}", path.display()), err))?;
    // SQLite falls back to reading only when the file cannot be opened for
    // writing (permissions, or a failed open on a full disk); such a handle
    // would refuse every write for good, so the open fails instead.
    let read_only = connection
        .is_readonly(rusqlite::MAIN_DB)
        .map_err(|err| storage("checking the database is writable", err))?;
    if read_only {
        return Err(OpenError::Storage(StorageError::new(
            crate::BACKEND,
            format!("{} cannot be opened for writing", path.display()),
        )));
    }
    connection
        .busy_timeout(options.busy_timeout)
        .map_err(|err| storage("setting the busy timeout", err))?;
    // A WAL that grew large (a schema upgrade's copy, a big import's
    // burst) is cut back to this when it next restarts, not kept at its
    // largest for as long as a process runs.
    connection
        .pragma_update(None, "journal_size_limit", 64_i64 << 20)
        .map_err(|err| storage("limiting the WAL's size", err))?;
    let instance = schema::check_or_create(&mut connection, path, options.busy_timeout)?;
    let synchronous = match options.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    connection
        .pragma_update(None, "synchronous", synchronous)
        .map_err(|err| storage("setting the durability", err))?;
    connection
        .pragma_update(None, "foreign_keys", "ON")
        .map_err(|err| storage("enabling foreign keys", err))?;
    Ok((connection, instance))
}
