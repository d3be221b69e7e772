//! The PostgreSQL backend against the whole conformance suite, on the
//! server `cargo xtask test` starts (`INFINISHEET_POSTGRES_URL` names its
//! database). Every test works on logs of its own, under random names.
//! Built only with the `postgres-tests` feature.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_postgres::{PostgresDatabase, PostgresEventLog, PostgresOptions};

fn url() -> String {
    std::env::var("INFINISHEET_POSTGRES_URL")
        .expect("the PostgreSQL tests need the server `cargo xtask test` starts")
}

async fn database(options: PostgresOptions) -> PostgresDatabase {
    PostgresDatabase::connect(&url(), options).await.unwrap()
}

fn fresh_name() -> String {
    format!("log-{:016x}", fastrand::u64(..))
}

async fn log(options: PostgresOptions) -> PostgresEventLog {
    database(options)
        .await
        .create_log(&fresh_name())
        .await
        .unwrap()
}

/// The same log through a new pool, as another process would open it.
async fn again(log: &PostgresEventLog) -> PostgresEventLog {
    let options = PostgresOptions::default();
    database(options).await.open_log(log.name()).await.unwrap()
}

infinisheet_conformance::event_log_tests!(
    mod postgres_event_log,
    || log(PostgresOptions::default()),
    reopen = |log: PostgresEventLog| async move {
        let name = log.name().to_owned();
        drop(log);
        database(PostgresOptions::default())
            .await
            .open_log(&name)
            .await
            .unwrap()
    },
    open_again = |log: &PostgresEventLog| {
        let log = log.clone();
        async move { again(&log).await }
    },
);

// Small pages: queries page by count, and by bytes.
infinisheet_conformance::event_log_tests!(
    mod small_pages,
    || log(PostgresOptions::default().query_page_entries(3).query_page_bytes(64)),
    reopen = |log: PostgresEventLog| async move {
        let name = log.name().to_owned();
        drop(log);
        database(PostgresOptions::default().query_page_entries(3))
            .await
            .open_log(&name)
            .await
            .unwrap()
    },
    open_again = |log: &PostgresEventLog| {
        let log = log.clone();
        async move { again(&log).await }
    },
);

infinisheet_conformance::log_store_tests!(mod postgres_logs, || database(
    PostgresOptions::default()
));
