//! The database layout, its recorded version, and the checks on open that
//! refuse files this backend did not make (without changing them).

use crate::checksum;
use crate::error::{OpenError, is_not_a_database, storage};
use infinisheet_event_log::EntryMetadata;
use infinisheet_event_log::StorageError;
use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use std::path::Path;
use std::time::{Duration, Instant};

/// `PRAGMA application_id` of an Infinisheet database: "ISHT".
const APPLICATION_ID: i64 = 0x4953_4854;

/// The schema version this code writes and reads (`PRAGMA user_version`).
pub const SCHEMA_VERSION: i64 = 4;

/// The oldest schema version a read-only open reads without upgrading it.
const READABLE_FROM: i64 = 3;

const CREATE: &str = "
CREATE TABLE infinisheet_meta (
    key TEXT PRIMARY KEY,
    value ANY
) STRICT;
CREATE TABLE logs (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    start_seq INTEGER NOT NULL,
    end_seq INTEGER NOT NULL,
    crc INTEGER NOT NULL
) STRICT;
CREATE TABLE blob_stores (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    crc INTEGER NOT NULL
) STRICT;
CREATE TABLE blobs (
    store INTEGER NOT NULL REFERENCES blob_stores(id),
    path TEXT NOT NULL,
    content BLOB NOT NULL,
    crc INTEGER NOT NULL,
    PRIMARY KEY (store, path)
) STRICT;
";

/// What version 3 added: the token of each batch appended with one (by the
/// id of its first entry), so a retry can be told from a conflict; and a
/// second index of blob paths, so a lookup that misses in the primary
/// key's index (damaged pages make a b-tree search go astray; SQLite does
/// not check an index against its table) is asked again of independent
/// pages before a blob is called absent; and a second index of the entries
/// carrying a snapshot, checked against the first on every lookup of the
/// newest snapshot. Both second indexes cover their lookups (hold every
/// column asked for), so they answer without the table's pages: a damaged
/// table page that makes a lookup by key miss is caught too. (The
/// entries' second index is made with their table now, [`CREATE_ENTRIES`].)
const CREATE_V3: &str = "
CREATE TABLE append_tokens (
    log INTEGER NOT NULL REFERENCES logs(id),
    seq INTEGER NOT NULL,
    token BLOB NOT NULL,
    count INTEGER NOT NULL,
    crc INTEGER NOT NULL,
    PRIMARY KEY (log, seq)
) STRICT, WITHOUT ROWID;
CREATE INDEX blobs_by_path ON blobs (path, store);
";

/// The entries, as version 4 lays them out: a table keyed by row id, its
/// payload the last column. Versions 1 to 3 kept them in a table without
/// row ids, whose b-tree compares whole rows as keys: every seek (each
/// append, each page of a query) read the whole payloads of the entries
/// it stepped past, an entry of a few hundred KiB a dozen times over.
/// Here a seek reads the small index of `(log, seq)` and the one row it
/// finds, and a read of the metadata alone stops before the payload.
const CREATE_ENTRIES: &str = "
CREATE TABLE entries (
    log INTEGER NOT NULL REFERENCES logs(id),
    seq INTEGER NOT NULL,
    snapshot TEXT,
    history TEXT,
    pending TEXT,
    crc INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (log, seq)
) STRICT;
CREATE INDEX entries_with_snapshot ON entries (log, seq) WHERE snapshot IS NOT NULL;
CREATE INDEX entries_with_snapshot_too ON entries (log, seq, snapshot) WHERE snapshot IS NOT NULL;
";
/// Switches the database to WAL mode (nothing to do if it is in it). Two
/// connections switching a new file at once meet SQLite's deadlock guard:
/// one gets `SQLITE_BUSY` at once, without its busy timeout. It tries again
/// until that timeout has passed, as a busy statement would.
fn switch_to_wal(connection: &Connection, busy_timeout: Duration) -> Result<(), StorageError> {
    let started = Instant::now();
    let mut wait = Duration::from_millis(1);
    loop {
        match connection.pragma_update(None, "journal_mode", "WAL") {
            Ok(()) => return Ok(()),
            Err(err)
                if matches!(
                    err.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && started.elapsed() < busy_timeout =>
            {
                std::thread::sleep(wait);
                wait = (wait * 2).min(Duration::from_millis(50));
            }
            Err(err) => return Err(storage("switching to WAL mode", err)),
        }
    }
}

/// Refuses a file that is not SQLite, or is another application's database,
/// reading only: the header first, so a file that is not SQLite fails before
/// anything (such as switching to WAL) could write to it.
pub(crate) fn refuse_foreign(connection: &Connection, path: &Path) -> Result<(), OpenError> {
    let not_a_database = |err: rusqlite::Error| {
        if is_not_a_database(&err) {
            OpenError::NotADatabase {
                path: path.to_owned(),
            }
        } else {
            OpenError::Storage(storage("reading the database header", err))
        }
    };
    // Both read in one transaction, so from one state of the file: read
    // apart, a database another process creates meanwhile looks like its
    // tables without its application id — another application's.
    let snapshot = connection
        .unchecked_transaction()
        .map_err(|err| OpenError::Storage(storage("reading the database header", err)))?;
    let application_id: i64 = snapshot
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(not_a_database)?;
    let tables: i64 = snapshot
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(not_a_database)?;
    drop(snapshot); // read only: nothing to commit
    if application_id != APPLICATION_ID && !(application_id == 0 && tables == 0) {
        return Err(OpenError::ForeignDatabase {
            path: path.to_owned(),
        });
    }
    Ok(())
}

/// Checks that the database behind `connection` is an Infinisheet database
/// of a version this code reads, creating the schema in an empty one.
/// Returns the database's random instance id (it scopes continuation
/// tokens). A file that fails the checks is not written to.
pub(crate) fn check_or_create(
    connection: &mut Connection,
    path: &Path,
    busy_timeout: Duration,
) -> Result<u64, OpenError> {
    refuse_foreign(connection, path)?;
    switch_to_wal(connection, busy_timeout)?;

    let tx = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|err| {
            storage(
                "locking the database to check its schema (another process may be \
                 upgrading it; try again once it is done)",
                err,
            )
        })?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|err| storage("reading the schema version", err))?;
    let application_id: i64 = tx
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(|err| storage("reading the application id", err))?;
    if application_id == 0 {
        // Empty, and still empty now that we hold the write lock: create.
        let instance = fastrand::u64(..);
        tx.execute_batch(CREATE)
            .and_then(|()| tx.execute_batch(CREATE_V3))
            .and_then(|()| tx.execute_batch(CREATE_ENTRIES))
            .map_err(|err| storage("creating the schema", err))?;
        tx.execute(
            "INSERT INTO infinisheet_meta (key, value) VALUES ('instance', ?1)",
            [instance.to_string()],
        )
        .map_err(|err| storage("recording the instance id", err))?;
        tx.execute_batch(&format!(
            "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
        ))
        .map_err(|err| storage("recording the schema version", err))?;
        record_schema(&tx).map_err(|err| storage("recording the schema's checksum", err))?;
    } else if version > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    } else if (1..SCHEMA_VERSION).contains(&version) {
        // A release of that version wrote these tables: a later version's
        // objects already there mean the recorded version is damaged
        // (migrating would fail half-way on "duplicate column").
        let later = match version {
            1 => "SELECT count(*) FROM pragma_table_info('logs') WHERE name = 'crc'",
            2 => "SELECT count(*) FROM sqlite_schema WHERE name = 'append_tokens'",
            // Version 4's entries have row ids, so an index of their key.
            _ => "SELECT count(*) FROM sqlite_schema WHERE name = 'sqlite_autoindex_entries_1'",
        };
        let found: i64 = tx
            .query_row(later, [], |row| row.get(0))
            .map_err(|err| storage("reading the schema", err))?;
        if found > 0 {
            return Err(OpenError::Storage(crate::error::corrupt(format!(
                "{} records schema version {version}, but holds a later version's tables: \
                 its version is damaged",
                path.display()
            ))));
        }
        enough_room_to_move(path)?;
        tracing::warn!(
            path = %path.display(),
            from = version,
            to = SCHEMA_VERSION,
            "upgrading the database's schema (its entries are moved once)"
        );
        if version == 1 {
            migrate_from_1(&tx)
                .map_err(|err| storage("adding checksums (schema version 1 to 2)", err))?;
        }
        if version <= 2 {
            migrate_from_2(&tx).map_err(|err| {
                storage(
                    "adding append tokens and an index (schema version 2 to 3)",
                    err,
                )
            })?;
        }
        migrate_from_3(&tx)
            .and_then(|()| record_schema(&tx))
            .map_err(|err| {
                storage(
                    "moving the entries to a table with row ids (schema version 3 to 4)",
                    err,
                )
            })?;
    } else if version < SCHEMA_VERSION {
        return Err(OpenError::Storage(crate::error::corrupt(format!(
            "{} records schema version {version}, which no release wrote",
            path.display()
        ))));
    }
    let instance = checked_instance(&tx, path)?;
    tx.commit()
        .map_err(|err| storage("committing the schema", err))?;
    if (1..SCHEMA_VERSION).contains(&version) {
        // The upgrade's copy of the entries leaves the WAL as large as
        // they are: back into the file now, as far as readers allow,
        // without waiting for them (a waiting checkpoint keeps writers
        // out); the WAL is cut back when it restarts (`journal_size_limit`).
        let _ = connection.execute_batch("PRAGMA wal_checkpoint(PASSIVE);");
    }
    Ok(instance)
}

/// Refuses to start moving the entries (to version 4) on a disk with
/// less free space than the move's WAL takes (about the file's size): the
/// move would fail at its end, or commit and leave a WAL no checkpoint
/// could empty, and a disk too full for edits.
fn enough_room_to_move(path: &Path) -> Result<(), OpenError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let Ok(size) = std::fs::metadata(path).map(|m| m.len()) else {
        return Ok(());
    };
    // Unknown (a file system that does not say): try.
    let Ok(stat) = rustix::fs::statvfs(dir) else {
        return Ok(());
    };
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    let needed = size + size / 10 + (16 << 20);
    if free < needed {
        return Err(OpenError::Storage(StorageError::new(
            crate::BACKEND,
            format!(
                "{} needs its schema upgraded (to version {SCHEMA_VERSION}), which needs about \
                 {} MB free beside it for the move; {} MB are free",
                path.display(),
                needed >> 20,
                free >> 20
            ),
        )));
    }
    Ok(())
}

/// Checks, reading only, that the database behind `connection` is an
/// Infinisheet database of this code's schema version, whose schema
/// matches its checksum; returns its instance id.
pub(crate) fn check_read_only(connection: &Connection, path: &Path) -> Result<u64, OpenError> {
    refuse_foreign(connection, path)?;
    let tx = connection
        .unchecked_transaction()
        .map_err(|err| storage("starting a read of the schema", err))?;
    let version: i64 = tx
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(|err| storage("reading the schema version", err))?;
    let application_id: i64 = tx
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(|err| storage("reading the application id", err))?;
    if application_id == 0 {
        return Err(OpenError::Missing {
            path: path.to_owned(),
        });
    }
    if version > SCHEMA_VERSION {
        return Err(OpenError::SchemaTooNew {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    // Version 3 holds the same tables and columns as version 4, laid out
    // less well (see `CREATE_ENTRIES`): a reader reads it as it is, and the
    // first writer to open it moves the entries.
    if version < READABLE_FROM {
        return Err(OpenError::NeedsUpgrade {
            path: path.to_owned(),
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    checked_instance(&tx, path)
}

/// Checks the schema against its recorded checksum (read with the tables'
/// own definitions: if those are damaged, the read fails, and that too is
/// a schema that fails its checksum) and returns the instance id.
fn checked_instance(tx: &rusqlite::Transaction<'_>, path: &Path) -> Result<u64, OpenError> {
    let recorded: Option<i64> = tx
        .query_row(
            "SELECT value FROM infinisheet_meta WHERE key = 'schema'",
            [],
            |row| row.get(0),
        )
        .optional()
        .unwrap_or(None);
    let actual = schema_checksum(tx).map_err(|err| storage("reading the schema", err))?;
    if recorded != Some(actual) {
        return Err(OpenError::Storage(crate::error::corrupt(format!(
            "{}: the schema (its tables and indexes) does not match its checksum",
            path.display()
        ))));
    }
    let instance: String = tx
        .query_row(
            "SELECT value FROM infinisheet_meta WHERE key = 'instance'",
            [],
            |row| row.get(0),
        )
        .map_err(|err| storage("reading the instance id", err))?;
    instance.parse().map_err(|_| {
        OpenError::Storage(crate::error::corrupt(format!(
            "{} holds an unreadable instance id",
            path.display()
        )))
    })
}

/// The checksum of the tables and indexes as SQLite records them.
fn schema_checksum(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<i64> {
    let mut select =
        tx.prepare("SELECT type, name, tbl_name, sql FROM sqlite_schema ORDER BY type, name")?;
    let mut rows = select.query([])?;
    let mut crc = 0u32;
    while let Some(row) = rows.next()? {
        for column in 0..4 {
            let text: Option<String> = row.get(column)?;
            let text = text.unwrap_or_default();
            crc = crc32c::crc32c_append(crc, &(text.len() as u64).to_le_bytes());
            crc = crc32c::crc32c_append(crc, text.as_bytes());
        }
    }
    Ok(i64::from(crc))
}

/// Records the schema's checksum, checked on every open: a damaged table
/// definition would otherwise surface as "no such table" or, worse, as a
/// working table of another shape.
fn record_schema(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    let crc = schema_checksum(tx)?;
    tx.execute(
        "INSERT INTO infinisheet_meta (key, value) VALUES ('schema', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [crc],
    )?;
    Ok(())
}

/// Version 1 had no checksums: add the columns and compute every row's.
fn migrate_from_1(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE logs ADD COLUMN crc INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE entries ADD COLUMN crc INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE blobs ADD COLUMN crc INTEGER NOT NULL DEFAULT 0;
         ALTER TABLE blob_stores ADD COLUMN crc INTEGER NOT NULL DEFAULT 0;",
    )?;
    let logs: Vec<(i64, String, i64, i64)> = tx
        .prepare("SELECT id, name, start_seq, end_seq FROM logs")?
        .query_map([], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
        })?
        .collect::<rusqlite::Result<_>>()?;
    for (id, name, start, end) in logs {
        tx.execute(
            "UPDATE logs SET crc = ?1 WHERE id = ?2",
            params![checksum::log(id, &name, start, end), id],
        )?;
    }
    let stores: Vec<(i64, String)> = tx
        .prepare("SELECT id, name FROM blob_stores")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, name) in stores {
        tx.execute(
            "UPDATE blob_stores SET crc = ?1 WHERE id = ?2",
            params![checksum::store(id, &name), id],
        )?;
    }
    {
        let mut select =
            tx.prepare("SELECT log, seq, payload, snapshot, history, pending FROM entries")?;
        let mut update = tx.prepare("UPDATE entries SET crc = ?1 WHERE log = ?2 AND seq = ?3")?;
        let mut rows = select.query([])?;
        while let Some(row) = rows.next()? {
            let (log, seq): (i64, i64) = (row.get(0)?, row.get(1)?);
            let metadata = EntryMetadata {
                snapshot: row.get(3)?,
                history: row.get(4)?,
                pending: row.get(5)?,
            };
            let payload = row.get_ref(2)?.as_blob()?;
            update.execute(params![
                checksum::entry(log, seq, payload, &metadata),
                log,
                seq
            ])?;
        }
    }
    let mut select = tx.prepare("SELECT store, path, content FROM blobs")?;
    let mut update = tx.prepare("UPDATE blobs SET crc = ?1 WHERE store = ?2 AND path = ?3")?;
    let mut rows = select.query([])?;
    while let Some(row) = rows.next()? {
        let (store, path): (i64, String) = (row.get(0)?, row.get(1)?);
        let content = row.get_ref(2)?.as_blob()?;
        update.execute(params![checksum::blob(store, &path, content), store, path])?;
    }
    tx.execute_batch("PRAGMA user_version = 2;")
}

/// Version 2 kept no append tokens and one index each of blob paths and
/// snapshots: add the tokens' table (empty: no append of an older release
/// carried one) and the blob paths' second index.
fn migrate_from_2(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    // The entries' second index comes with version 4's table.
    tx.execute_batch(CREATE_V3)?;
    tx.execute_batch("PRAGMA user_version = 3;")
}

/// Versions 1 to 3 kept the entries without row ids (see
/// [`CREATE_ENTRIES`]): copy them into version 4's table, in one
/// transaction with the rest of the upgrade. The old table goes, its
/// indexes with it.
fn migrate_from_3(tx: &rusqlite::Transaction<'_>) -> rusqlite::Result<()> {
    tx.execute_batch(
        "ALTER TABLE entries RENAME TO entries_v3;
         DROP INDEX IF EXISTS entries_with_snapshot;
         DROP INDEX IF EXISTS entries_with_snapshot_too;",
    )?;
    tx.execute_batch(CREATE_ENTRIES)?;
    // A few entries at a time, each batch deleted from the old table once
    // copied: the pages it frees take the next batch, so the file grows
    // by a batch, not by all the entries (it doubled, and needed as much
    // free space again as the entries take). The transaction's log (the
    // WAL) still holds a copy until it is checkpointed, just after.
    {
        let mut copy = tx.prepare(
            "INSERT INTO entries (log, seq, snapshot, history, pending, crc, payload) \
             SELECT log, seq, snapshot, history, pending, crc, payload FROM entries_v3 \
             ORDER BY log, seq LIMIT 4",
        )?;
        let mut delete = tx.prepare(
            "DELETE FROM entries_v3 WHERE (log, seq) IN \
             (SELECT log, seq FROM entries_v3 ORDER BY log, seq LIMIT 4)",
        )?;
        while copy.execute([])? > 0 {
            delete.execute([])?;
        }
    }
    tx.execute_batch("DROP TABLE entries_v3;")?;
    tx.execute_batch(&format!("PRAGMA user_version = {SCHEMA_VERSION};"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// The second lookups read their index alone: SQLite plans them as
    /// covering, so a damaged table page cannot hide a row from them too.
    #[test]
    fn the_second_lookups_never_read_the_tables() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(CREATE).unwrap();
        conn.execute_batch(CREATE_V3).unwrap();
        conn.execute_batch(CREATE_ENTRIES).unwrap();
        let plan = |query: &str, args: &[&dyn rusqlite::ToSql]| -> String {
            conn.query_row(&format!("EXPLAIN QUERY PLAN {query}"), args, |row| {
                row.get(3)
            })
            .unwrap()
        };
        let snapshot = plan(crate::event_log::SECOND_SNAPSHOT_LOOKUP, &[&1]);
        assert!(
            snapshot.contains("COVERING INDEX entries_with_snapshot_too"),
            "{snapshot}"
        );
        let blob = plan(crate::blob_store::SECOND_BLOB_LOOKUP, &[&1, &"a"]);
        assert!(blob.contains("COVERING INDEX blobs_by_path"), "{blob}");
    }
}
