//! The PostgreSQL backend of Infinisheet: [`PostgresEventLog`], event logs
//! that many processes on many machines share through one database, on
//! `tokio-postgres` with a `deadpool-postgres` pool.
//!
//! One database ([`PostgresDatabase`]) holds any number of named logs, in
//! tables this backend creates on first open and checks on every open
//! (their layout carries a version; a newer one is refused). The database
//! is a [`LogStore`](infinisheet_event_log::LogStore): a catalog keeps one
//! log per sheet there.
//!
//! # How it keeps the contract
//!
//! * An append is one statement, so one round trip: a function in the
//!   database updates the log's row only if its end is still the id the
//!   append asks for. The row lock orders racing appenders, and each checks
//!   the end again after the one before it commits: exactly one wins each
//!   id, and a loser is told the real end. A batch is one statement, all
//!   or nothing.
//! * An append with a token records it beside its first id, in the same
//!   statement; a retry that finds its own token there succeeds without
//!   writing, so an append whose reply was lost lands once.
//! * A query reads the bounds, the newest snapshot and the entries in one
//!   read-only repeatable-read transaction: one consistent moment.
//! * Tails are pushed, not polled: one connection per database `LISTEN`s
//!   on the channel every append (and every published snapshot) notifies
//!   when it commits, and wakes this process's tails on that log; the
//!   notification is a wake-up, never the data. When that connection drops
//!   every tail reads again and polls until it is back, and an idle tail
//!   still reads every [`pushed_wait`](infinisheet_event_log::TailOptions::pushed_wait),
//!   so a lost notification costs a delay, never an entry.
//! * A lost connection, a server restarting, a serialization failure or a
//!   deadlock are retryable [`StorageError`](infinisheet_event_log::StorageError)s;
//!   damage the server reports (`XX001`, `XX002`) is corruption; anything
//!   else is permanent (`error.rs` decides, in one place).
//!
//! # What it needs from the server
//!
//! PostgreSQL 12 or newer (identity columns, `pg_notify`), and a role that
//! may create tables and functions in the connection's current schema on
//! first open (afterwards: select, insert, update and delete on them, and
//! execute on the two functions).
//!
//! # Layout
//!
//! `database.rs` (connecting, the pool, logs by name), `event_log.rs` (the
//! log), `schema.rs` (the tables and functions), `password.rs` (a
//! password from `PGPASSWORD` or the password file), `error.rs` (the only
//! place PostgreSQL's errors are inspected), `logs.rs` (the [`LogStore`](infinisheet_event_log::LogStore)).

mod database;
mod error;
mod event_log;
mod listen;
mod logs;
mod password;
mod schema;
mod tls;

pub use database::{PostgresDatabase, PostgresOptions, redact};
pub use error::{BACKEND, OpenError};
pub use event_log::PostgresEventLog;
