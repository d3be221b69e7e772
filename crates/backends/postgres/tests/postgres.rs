//! The PostgreSQL backend against the whole conformance suite, on the
//! server `cargo xtask test` starts (`INFINISHEET_POSTGRES_URL` names its
//! database). Every test works on logs of its own, under random names.
//! Built only with the `postgres-tests` feature.

#![allow(clippy::unwrap_used)] // tests fail by panicking

use infinisheet_event_log::raw::Bounds;
use infinisheet_event_log::{
    AddEntryError, EventLog, EventLogExt, KnownSnapshot, LogEntry, MetadataUpdate, QueryEnd,
    QueryStart, TailEvent, TailOptions,
};
use infinisheet_postgres::{OpenError, PostgresDatabase, PostgresEventLog, PostgresOptions};

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

/// The log `log` names, opened anew with `options` once it is dropped.
async fn reopened(log: PostgresEventLog, options: PostgresOptions) -> PostgresEventLog {
    let name = log.name().to_owned();
    drop(log);
    database(options).await.open_log(&name).await.unwrap()
}

/// Pages of 3 entries and 64 bytes: queries page by count, and by bytes.
fn small_pages() -> PostgresOptions {
    PostgresOptions::default()
        .query_page_entries(3)
        .query_page_bytes(64)
}

infinisheet_conformance::event_log_tests!(
    mod postgres_event_log,
    || log(PostgresOptions::default()),
    reopen = |log: PostgresEventLog| reopened(log, PostgresOptions::default()),
    open_again = |log: &PostgresEventLog| {
        let log = log.clone();
        async move { again(&log).await }
    },
);

infinisheet_conformance::event_log_tests!(
    mod small_pages,
    || log(small_pages()),
    reopen = |log: PostgresEventLog| reopened(log, small_pages()),
    open_again = |log: &PostgresEventLog| {
        let log = log.clone();
        async move { again(&log).await }
    },
);

infinisheet_conformance::log_store_tests!(mod postgres_logs, || database(
    PostgresOptions::default()
));

/// A client of the test database, for what the backend does not do
/// (making schemas, damaging a table).
async fn raw_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// A new, empty schema, and the test database's URL with `search_path`
/// set to it: the backend's tables there are this test's own.
async fn fresh_schema() -> (String, String) {
    let schema = format!("s{:016x}", fastrand::u64(..));
    raw_client()
        .await
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let url = format!("{}?options=-c%20search_path%3D{schema}", url());
    (schema, url)
}

async fn tables_in(schema: &str) -> i64 {
    raw_client()
        .await
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reading_creates_nothing_and_writes_nothing() {
    let (schema, url) = fresh_schema().await;
    let err = PostgresDatabase::connect_read_only(&url, PostgresOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, OpenError::NoTables { .. }), "{err}");
    assert_eq!(tables_in(&schema).await, 0, "reading created tables");

    let db = PostgresDatabase::connect(&url, PostgresOptions::default())
        .await
        .unwrap();
    let log = db.create_log("kept").await.unwrap();
    log.add_entry(LogEntry::new("one"), 0, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    let reader = PostgresDatabase::connect_read_only(&url, PostgresOptions::default())
        .await
        .unwrap();
    let read = reader.open_log("kept").await.unwrap();
    assert_eq!(read.bounds().await.unwrap(), Bounds::new(0, 1));
    let err = read
        .add_entry(LogEntry::new("two"), 1, KnownSnapshot::NotTracked)
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains("read-only"), "{err}");
    assert!(reader.create_log("new").await.is_err());
    assert_eq!(log.bounds().await.unwrap(), Bounds::new(0, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn newer_tables_are_refused() {
    let (schema, url) = fresh_schema().await;
    PostgresDatabase::connect(&url, PostgresOptions::default())
        .await
        .unwrap();
    raw_client()
        .await
        .batch_execute(&format!(
            "UPDATE {schema}.infinisheet_schema SET version = 99"
        ))
        .await
        .unwrap();
    let err = PostgresDatabase::connect(&url, PostgresOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            OpenError::SchemaTooNew {
                found: 99,
                known: 1,
                ..
            }
        ),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn processes_opening_a_new_database_at_once_create_its_tables_once() {
    let (schema, url) = fresh_schema().await;
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                PostgresDatabase::connect(&url, PostgresOptions::default()).await
            })
        })
        .collect();
    for open in opens {
        open.await.unwrap().unwrap();
    }
    assert_eq!(tables_in(&schema).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_names_and_servers_are_clear_errors() {
    for bad in ["postgres://host:notaport/db", "postgres://a b"] {
        let err = PostgresDatabase::connect(bad, PostgresOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, OpenError::InvalidUrl { .. }), "{bad}: {err}");
    }
    let refused = |query: &str| {
        let url = format!("{}?{query}", url());
        async move {
            PostgresDatabase::connect(&url, PostgresOptions::default())
                .await
                .unwrap_err()
        }
    };
    let err = refused("sslmode=require&sslcert=/client.pem").await;
    assert!(matches!(err, OpenError::Unsupported { .. }), "{err}");
    assert!(err.to_string().contains("client certificates"), "{err}");
    let err = refused("sslmode=verify").await;
    assert!(matches!(err, OpenError::InvalidUrl { .. }), "{err}");
    // A search_path whose schema does not exist: says what to do.
    let missing = format!("s{:016x}", fastrand::u64(..));
    let err = refused(&format!("options=-c%20search_path%3D{missing}")).await;
    assert!(!err.is_retryable(), "{err}");
    assert!(chain(&err).contains("CREATE SCHEMA"), "{}", chain(&err));

    // An unencoded `@` in a password would send the rest to DNS as a host.
    let err = PostgresDatabase::connect(
        "postgres://app:abc@secret@127.0.0.1:1/db",
        PostgresOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OpenError::InvalidUrl { .. }), "{err}");
    assert!(err.to_string().contains("%40"), "{err}");
    assert!(!format!("{err:?}").contains("secret"), "{err:?}");

    // Nothing listens there: retryable, the server may come up.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = PostgresDatabase::connect(
        &format!("postgres://nobody:secret@127.0.0.1:{port}/db"),
        PostgresOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    assert!(!format!("{err:?}").contains("secret"), "{err:?}");

    // A database that does not exist: asking again will not help.
    let missing = url().rsplit_once('/').unwrap().0.to_owned() + "/no_such_database";
    let err = PostgresDatabase::connect(&missing, PostgresOptions::default())
        .await
        .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(format!("{err:?}").contains("no_such_database"), "{err:?}");

    // An append far past the end (where id + count passes the largest
    // id) is a conflict naming the end, as any stale append is.
    let log = log(PostgresOptions::default()).await;
    let far = u64::try_from(i64::MAX).unwrap();
    for at in [far, far + 1, u64::MAX] {
        let err = log
            .add_entry(LogEntry::new("x"), at, KnownSnapshot::NotTracked)
            .await
            .unwrap_err();
        assert!(
            matches!(err, AddEntryError::Conflict { next: 0, .. }),
            "{at}: {err}"
        );
    }

    let db = database(PostgresOptions::default()).await;
    for name in ["", "a\u{0}b", &"x".repeat(300)] {
        assert!(
            matches!(
                db.create_log(name).await,
                Err(OpenError::InvalidName { .. })
            ),
            "{name:?}"
        );
    }
    let name = fresh_name();
    assert!(matches!(
        db.open_log(&name).await,
        Err(OpenError::NotFound { .. })
    ));
    db.create_log(&name).await.unwrap();
    assert!(matches!(
        db.create_log(&name).await,
        Err(OpenError::AlreadyExists { .. })
    ));
}

/// Appends `payload` at `seq` to the log `name` as another program would:
/// through the database alone, unknown to this process's tails.
async fn append_elsewhere(client: &tokio_postgres::Client, name: &str, seq: i64, payload: &str) {
    let row = client
        .query_one(
            "SELECT won FROM infinisheet_append(\
                 (SELECT id FROM infinisheet_logs WHERE name = $1), $2, \
                 ARRAY[$3::bytea], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::text], \
                 NULL, false)",
            &[&name, &seq, &payload.as_bytes()],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(0), "the append at {seq} lost");
}

/// Waits (up to a minute, which only a failure reaches) for the tail's
/// next entries.
async fn next_entries(
    tail: &mut infinisheet_event_log::Tail<'_, PostgresEventLog>,
) -> (u64, Vec<String>) {
    loop {
        match tokio::time::timeout(std::time::Duration::from_secs(60), tail.next())
            .await
            .expect("the tail heard nothing for a minute")
            .unwrap()
        {
            TailEvent::Entries { start, entries } => {
                let texts = entries
                    .iter()
                    .map(|e| String::from_utf8(e.payload.to_vec()).unwrap())
                    .collect();
                return (start, texts);
            }
            _ => continue,
        }
    }
}

/// An append by another program wakes a tail here through the database's
/// notification: at once, not at the tail's next read — which, for a log
/// that pushes, is a minute away here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_from_elsewhere_wake_tails_at_once() {
    let log = log(PostgresOptions::default()).await;
    assert!(log.capabilities().wakes_across_processes);
    let options = TailOptions::default().pushed_wait(std::time::Duration::from_secs(3600));
    let mut tail = log.tail_with(0, options);
    assert!(matches!(
        tail.next().await.unwrap(),
        TailEvent::CaughtUp { end: 0 }
    ));
    let client = raw_client().await;
    for seq in 0..3 {
        // The tail is waiting (or about to): only the notification ends
        // a wait of an hour.
        let (waited, appended) = tokio::join!(next_entries(&mut tail), async {
            tokio::task::yield_now().await;
            append_elsewhere(&client, log.name(), seq, &format!("elsewhere {seq}")).await;
        });
        let () = appended;
        assert_eq!(waited, (seq as u64, vec![format!("elsewhere {seq}")]));
    }
}

/// The listening connection killed mid-stream, appends made while it is
/// down: the tail still gets every entry, in order, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_listen_connection_loses_no_entry() {
    let log = log(PostgresOptions::default()).await;
    let mut tail = log.tail(0);
    assert!(matches!(
        tail.next().await.unwrap(),
        TailEvent::CaughtUp { end: 0 }
    ));
    // The first wait starts the database's listening connection.
    log.wait_for_entries(0, std::time::Duration::from_millis(1))
        .await;
    let client = raw_client().await;
    append_elsewhere(&client, log.name(), 0, "before").await;
    assert_eq!(
        next_entries(&mut tail).await,
        (0, vec!["before".to_owned()])
    );
    let mut seen = vec!["before".to_owned()];
    let mut seq = 1;
    for round in 0..3 {
        // Once this process listens again, kill every listening connection
        // (this test's and any other's: each must come back), then append
        // while they are down.
        // (A listener seen may be another test's that ends before the
        // kill: then wait for one again.)
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            listening_again(&client).await;
            let killed: i64 = client
                .query_one(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                     WHERE application_name = 'infinisheet listen' AND query LIKE 'LISTEN%'",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if killed >= 1 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "round {round}: no listening connection to kill"
            );
        }
        for _ in 0..3 {
            append_elsewhere(
                &client,
                log.name(),
                seq,
                &format!("round {round} entry {seq}"),
            )
            .await;
            seq += 1;
        }
        while seen.len() < seq as usize {
            let (start, entries) = next_entries(&mut tail).await;
            assert_eq!(start as usize, seen.len(), "a gap or a repeat");
            seen.extend(entries);
        }
    }
    let want: Vec<String> = std::iter::once("before".to_owned())
        .chain((1..seq).map(|s| format!("round {} entry {s}", (s - 1) / 3)))
        .collect();
    assert_eq!(seen, want);
}

/// Returns once a listening connection is up (within a minute; it comes
/// back within its backoff, at most 5 s).
async fn listening_again(client: &tokio_postgres::Client) {
    until_activity(
        client,
        "infinisheet listen",
        "query LIKE 'LISTEN%'",
        "no listening connection came back within a minute",
    )
    .await;
}

/// Returns once a connection named `application` shows `condition` in
/// `pg_stat_activity`, failing with `never` after a minute.
async fn until_activity(
    client: &tokio_postgres::Client,
    application: &str,
    condition: &str,
    never: &str,
) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let query = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND {condition}"
    );
    loop {
        let seen: i64 = client
            .query_one(&query, &[&application])
            .await
            .unwrap()
            .get(0);
        if seen > 0 {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "{never}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// Returns once a connection named `application` waits on a lock (within
/// a minute).
async fn blocked_on_a_lock(client: &tokio_postgres::Client, application: &str) {
    until_activity(
        client,
        application,
        "wait_event_type = 'Lock'",
        "the call never waited for the open append",
    )
    .await;
}

/// Another writer's append of id 0 is open (not committed) while this
/// handle appends at id 1 and sets id 0's metadata: each waits for it,
/// then acts on the log as that append left it — never a conflict naming
/// an end that was about to move, never a "damaged log".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_racing_an_open_append_wait_for_it() {
    // Connections of their own name, told apart from other tests'.
    let application = format!("race{:016x}", fastrand::u64(..));
    let log = PostgresDatabase::connect(
        &format!("{}?application_name={application}", url()),
        PostgresOptions::default(),
    )
    .await
    .unwrap()
    .create_log(&fresh_name())
    .await
    .unwrap();
    let mut other = raw_client().await;
    let open = other.transaction().await.unwrap();
    open.query_one(
        "SELECT won FROM infinisheet_append(\
             (SELECT id FROM infinisheet_logs WHERE name = $1), 0, \
             ARRAY['first'::bytea], ARRAY[NULL::text], ARRAY[NULL::text], ARRAY[NULL::text], \
             NULL, false)",
        &[&log.name()],
    )
    .await
    .unwrap();
    let watcher = raw_client().await;

    let appender = log.clone();
    let append = tokio::spawn(async move {
        appender
            .add_entry(LogEntry::new("second"), 1, KnownSnapshot::NotTracked)
            .await
    });
    blocked_on_a_lock(&watcher, &application).await;
    let setter = log.clone();
    let publish = tokio::spawn(async move {
        setter
            .set_metadata(0, MetadataUpdate::publish_snapshot("snap".to_owned()))
            .await
    });
    open.commit().await.unwrap();

    append.await.unwrap().unwrap();
    publish.await.unwrap().unwrap();
    let all = log
        .query_all(QueryStart::Start, QueryEnd::End, KnownSnapshot::NotTracked)
        .await
        .unwrap();
    let payloads: Vec<&[u8]> = all.entries.iter().map(|e| &e.payload[..]).collect();
    assert_eq!(payloads, [&b"first"[..], &b"second"[..]]);
    assert_eq!(all.entries[0].metadata.snapshot.as_deref(), Some("snap"));
}

/// An error and its sources, as the command prints them.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The URL asks for TLS: with the run's certificate authority as
/// `sslrootcert`, through `localhost` (the one name the server's
/// certificate holds), every connection is encrypted, the listening one
/// included (a tail hears an append from elsewhere at once). The
/// certificate is checked: through `127.0.0.1` only `verify-ca` (no name
/// check) connects; without the authority nothing does; and neither
/// refusal is retryable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_when_the_url_asks_for_it_with_the_certificate_checked() {
    let ca = std::env::var("INFINISHEET_POSTGRES_CA")
        .expect("this test needs the certificate authority `cargo xtask test` makes");
    let by_address = url();
    let by_name = by_address.replacen("@127.0.0.1:", "@localhost:", 1);
    assert_ne!(by_name, by_address, "the test server's URL names 127.0.0.1");
    let application = format!("tls-{:016x}", fastrand::u64(..));
    let tls =
        format!("{by_name}?sslmode=verify-full&sslrootcert={ca}&application_name={application}");
    let db = PostgresDatabase::connect(&tls, PostgresOptions::default())
        .await
        .unwrap();
    assert!(
        db.url()
            .ends_with(&format!("sslmode=verify-full&sslrootcert={ca}")),
        "{}",
        db.url()
    );
    let log = db.create_log(&fresh_name()).await.unwrap();
    let options = TailOptions::default().pushed_wait(std::time::Duration::from_secs(3600));
    let mut tail = log.tail_with(0, options);
    assert!(matches!(
        tail.next().await.unwrap(),
        TailEvent::CaughtUp { end: 0 }
    ));
    let client = raw_client().await;
    let (waited, ()) = tokio::join!(next_entries(&mut tail), async {
        tokio::task::yield_now().await;
        append_elsewhere(&client, log.name(), 0, "over TLS").await;
    });
    assert_eq!(waited, (0, vec!["over TLS".to_owned()]));
    let row = client
        .query_one(
            "SELECT count(*), count(*) FILTER (WHERE s.ssl) FROM pg_stat_activity a \
             JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = $1",
            &[&application],
        )
        .await
        .unwrap();
    let (all, encrypted): (i64, i64) = (row.get(0), row.get(1));
    assert!(
        all > 0 && encrypted == all,
        "{encrypted} of {all} connections use TLS"
    );

    // Through the address, the name does not match: only verify-ca connects.
    let ca_only = format!("{by_address}?sslmode=verify-ca&sslrootcert={ca}");
    PostgresDatabase::connect(&ca_only, PostgresOptions::default())
        .await
        .unwrap();
    for mode in ["require", "verify-full"] {
        let url = format!("{by_address}?sslmode={mode}&sslrootcert={ca}");
        let err = PostgresDatabase::connect(&url, PostgresOptions::default())
            .await
            .unwrap_err();
        assert!(!err.is_retryable(), "{mode}: {err:?}");
        assert!(
            chain(&err).contains("TLS refused"),
            "{mode}: {}",
            chain(&err)
        );
    }
    // Not signed by a root it knows (the built-in set).
    let err = PostgresDatabase::connect(
        &format!("{by_name}?sslmode=require"),
        PostgresOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(!err.is_retryable(), "{err}");
    assert!(chain(&err).contains("sslrootcert"), "{}", chain(&err));
    // A root file that is not there.
    let err = PostgresDatabase::connect(
        &format!("{by_name}?sslmode=require&sslrootcert=/no/such/ca.pem"),
        PostgresOptions::default(),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, OpenError::Tls { .. }), "{err}");
}
