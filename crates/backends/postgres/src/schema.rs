//! The tables and functions this backend keeps in a database, created on
//! first open and checked on every open.
//!
//! Every name starts with `infinisheet_` and lives in the connection's
//! current schema (the first of its `search_path`), so a database can hold
//! other things, and several sets (one per schema) side by side.
//!
//! * `infinisheet_schema`: one row, the layout's version.
//! * `infinisheet_logs`: a row per log: its name, and `[start_seq,
//!   end_seq)`. An append wins its id with a conditional update of this
//!   row (`end_seq = the id it asks for`): the row lock orders racing
//!   appenders, and each re-checks the condition after the one before it
//!   commits, so exactly one wins each id.
//! * `infinisheet_entries`: a row per entry (payload and metadata), keyed
//!   by log and id; a partial index of those carrying a snapshot finds the
//!   newest one.
//! * `infinisheet_append_tokens`: the token and length of each batch
//!   appended with one, keyed by its first id; truncated with the entries.
//! * `infinisheet_append` and `infinisheet_set_metadata`: an append and a
//!   metadata change, each one statement, so one round trip. Each notifies
//!   `infinisheet_log` (payload: the log's row id) when it commits.

use crate::error::OpenError;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;

/// The layout this code reads and writes.
pub(crate) const VERSION: i32 = 1;

/// Taken while the tables are created, so two processes opening a new
/// database at once do not both create them ("infinisheet" in ASCII).
const CREATE_LOCK: i64 = 0x696e_6669_6e69_7368;

/// Version 1 of the layout.
const CREATE: &str = r#"
CREATE TABLE infinisheet_schema (
    version integer NOT NULL
);
INSERT INTO infinisheet_schema (version) VALUES (1);

CREATE TABLE infinisheet_logs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE,
    start_seq bigint NOT NULL DEFAULT 0 CHECK (start_seq >= 0),
    end_seq bigint NOT NULL DEFAULT 0 CHECK (end_seq >= start_seq)
);

CREATE TABLE infinisheet_entries (
    log bigint NOT NULL,
    seq bigint NOT NULL,
    payload bytea NOT NULL,
    snapshot text,
    history text,
    pending text,
    PRIMARY KEY (log, seq)
);
CREATE INDEX infinisheet_entries_with_snapshot
    ON infinisheet_entries (log, seq) WHERE snapshot IS NOT NULL;

CREATE TABLE infinisheet_append_tokens (
    log bigint NOT NULL,
    seq bigint NOT NULL,
    token bytea NOT NULL,
    count bigint NOT NULL,
    PRIMARY KEY (log, seq)
);

CREATE FUNCTION infinisheet_append(
    p_log bigint,
    p_seq bigint,
    p_payloads bytea[],
    p_snapshots text[],
    p_histories text[],
    p_pendings text[],
    p_token bytea,
    p_newest boolean,
    OUT won boolean,
    OUT start_seq bigint,
    OUT end_seq bigint,
    OUT snapshot_seq bigint,
    OUT snapshot_blob text,
    OUT stored_token bytea,
    OUT stored_count bigint
) LANGUAGE plpgsql AS $$
DECLARE
    n bigint := coalesce(cardinality(p_payloads), 0);
BEGIN
    -- The row lock first: it waits for a racing appender to commit and
    -- reads the row as that left it. (A conditional UPDATE alone would
    -- skip a row whose committed end differs without waiting, and a
    -- writer asking for an id past the end would read, a moment later,
    -- an end that is its id.)
    SELECT l.start_seq, l.end_seq INTO start_seq, end_seq
        FROM infinisheet_logs AS l WHERE l.id = p_log FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'infinisheet: event log % has no row', p_log
            USING ERRCODE = 'no_data_found';
    END IF;
    won := end_seq = p_seq;
    IF won THEN
        UPDATE infinisheet_logs AS l SET end_seq = l.end_seq + n WHERE l.id = p_log;
        end_seq := end_seq + n;
        IF n > 0 THEN
            INSERT INTO infinisheet_entries (log, seq, payload, snapshot, history, pending)
                SELECT p_log, p_seq + u.ord - 1, u.payload, u.snapshot, u.history, u.pending
                FROM unnest(p_payloads, p_snapshots, p_histories, p_pendings)
                    WITH ORDINALITY AS u (payload, snapshot, history, pending, ord);
            IF p_token IS NOT NULL THEN
                INSERT INTO infinisheet_append_tokens (log, seq, token, count)
                    VALUES (p_log, p_seq, p_token, n);
            END IF;
            PERFORM pg_notify('infinisheet_log', p_log::text);
        END IF;
    ELSE
        IF p_token IS NOT NULL THEN
            SELECT t.token, t.count INTO stored_token, stored_count
                FROM infinisheet_append_tokens AS t
                WHERE t.log = p_log AND t.seq = p_seq;
        END IF;
    END IF;
    IF p_newest THEN
        SELECT e.seq, e.snapshot INTO snapshot_seq, snapshot_blob
            FROM infinisheet_entries AS e
            WHERE e.log = p_log AND e.snapshot IS NOT NULL
            ORDER BY e.seq DESC LIMIT 1;
    END IF;
END
$$;

CREATE FUNCTION infinisheet_set_metadata(
    p_log bigint,
    p_seq bigint,
    p_snapshot_op smallint,
    p_snapshot text,
    p_history_op smallint,
    p_history text,
    p_pending_op smallint,
    p_pending text,
    OUT hit boolean,
    OUT start_seq bigint,
    OUT end_seq bigint
) LANGUAGE plpgsql AS $$
BEGIN
    -- A shared lock on the log's row first: it waits for an append (or a
    -- truncate) to commit, so the bounds read are final and the UPDATE
    -- below, a new statement, sees every entry inside them.
    SELECT l.start_seq, l.end_seq INTO start_seq, end_seq
        FROM infinisheet_logs AS l WHERE l.id = p_log FOR SHARE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'infinisheet: event log % has no row', p_log
            USING ERRCODE = 'no_data_found';
    END IF;
    hit := false;
    IF p_seq >= start_seq AND p_seq < end_seq THEN
        -- Each op: 0 keeps the field, 1 sets it, 2 clears it.
        UPDATE infinisheet_entries AS e SET
            snapshot = CASE p_snapshot_op WHEN 0 THEN e.snapshot WHEN 1 THEN p_snapshot END,
            history = CASE p_history_op WHEN 0 THEN e.history WHEN 1 THEN p_history END,
            pending = CASE p_pending_op WHEN 0 THEN e.pending WHEN 1 THEN p_pending END
            WHERE e.log = p_log AND e.seq = p_seq;
        hit := FOUND;
        IF hit AND p_snapshot_op = 1 THEN
            PERFORM pg_notify('infinisheet_log', p_log::text);
        END IF;
    END IF;
END
$$;
"#;

/// Makes sure the database holds this backend's tables at a version this
/// code knows: creates them if absent (once, under a lock), refuses a
/// newer layout.
pub(crate) async fn ensure(client: &mut Client, url: &str) -> Result<(), OpenError> {
    if let Some(version) = version(client, url).await? {
        return check_version(version, url);
    }
    let tx = client
        .transaction()
        .await
        .map_err(|err| OpenError::storage(url, "creating the tables", err))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CREATE_LOCK])
        .await
        .map_err(|err| OpenError::storage(url, "creating the tables", err))?;
    // Another process may have created them while this one waited.
    let exists: bool = tx
        .query_one("SELECT to_regclass('infinisheet_schema') IS NOT NULL", &[])
        .await
        .map_err(|err| OpenError::storage(url, "creating the tables", err))?
        .get(0);
    if !exists {
        tx.batch_execute(CREATE)
            .await
            .map_err(|err| OpenError::storage(url, "creating the tables", err))?;
    }
    tx.commit()
        .await
        .map_err(|err| OpenError::storage(url, "creating the tables", err))?;
    match version(client, url).await? {
        Some(version) => check_version(version, url),
        None => Err(OpenError::Layout {
            url: url.to_owned(),
            problem: "the tables were created but their version cannot be read".into(),
        }),
    }
}

/// Checks that the database holds this backend's tables at a version this
/// code knows, creating nothing.
pub(crate) async fn check(client: &Client, url: &str) -> Result<(), OpenError> {
    match version(client, url).await? {
        Some(version) => check_version(version, url),
        None => Err(OpenError::NoTables {
            url: url.to_owned(),
        }),
    }
}

/// The layout's version, or `None` when the database has no tables of
/// this backend yet.
async fn version(client: &Client, url: &str) -> Result<Option<i32>, OpenError> {
    match client
        .query("SELECT version FROM infinisheet_schema", &[])
        .await
    {
        Ok(rows) => match rows.as_slice() {
            [row] => Ok(Some(row.try_get(0).map_err(|err| {
                OpenError::storage(url, "reading the layout's version", err)
            })?)),
            _ => Err(OpenError::Layout {
                url: url.to_owned(),
                problem: format!(
                    "infinisheet_schema holds {} rows where it holds one",
                    rows.len()
                ),
            }),
        },
        Err(err) if err.code() == Some(&SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(err) => Err(OpenError::storage(url, "reading the layout's version", err)),
    }
}

fn check_version(version: i32, url: &str) -> Result<(), OpenError> {
    if version == VERSION {
        Ok(())
    } else if version > VERSION {
        Err(OpenError::SchemaTooNew {
            url: url.to_owned(),
            found: version,
            known: VERSION,
        })
    } else {
        Err(OpenError::Layout {
            url: url.to_owned(),
            problem: format!("unknown layout version {version}"),
        })
    }
}
