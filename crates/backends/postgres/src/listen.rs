//! Push wake-ups: one connection per database `LISTEN`s on the channel
//! the append and publish functions notify on commit, and wakes the
//! tails waiting in this process on the log a notification names. The
//! notification is only a wake-up, never the data: a woken tail reads the
//! log. When the connection drops (the server restarting, a network cut,
//! `pg_terminate_backend`) every waiting tail is woken to read again, and
//! waits are cut to a poll until the connection is back; so a lost
//! notification costs a poll's delay, never an entry.

use crate::event_log::waiters;
use crate::tls::Connector;
use infinisheet_event_log::raw::PushChannel;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::{AsyncMessage, NoTls};

/// The channel the database's functions notify (see `schema.rs`), with the
/// log's row id as payload.
pub(crate) const CHANNEL: &str = "infinisheet_log";

/// How `pg_stat_activity` names the listening connection.
pub(crate) const APPLICATION_NAME: &str = "infinisheet listen";

/// How often the listening connection proves it is alive (a query), and
/// how long the answer may take: a connection a network cut left
/// half-open would otherwise look live for hours, and every
/// notification would be lost without a word.
const HEARTBEAT: Duration = Duration::from_secs(15);
const HEARTBEAT_TIMEOUT: Duration = Duration::from_secs(10);

/// The listening connection of one database, kept up by a task that ends
/// when this is dropped (or when the runtime it runs on shuts down: see
/// [`Listener::is_running`]).
#[derive(Debug)]
pub(crate) struct Listener {
    state: Arc<PushChannel>,
    task: tokio::task::JoinHandle<()>,
}

/// Marks the connection down however the task ends, aborted or dropped
/// with its runtime included.
struct DownOnDrop(Arc<PushChannel>);

impl Drop for DownOnDrop {
    fn drop(&mut self) {
        self.0.set_live(false);
    }
}

impl Listener {
    /// Starts listening for the database `url` names (as messages name
    /// it: the waiters' key) through `config`, on the caller's runtime.
    pub(crate) fn start(
        config: tokio_postgres::Config,
        tls: Option<Connector>,
        url: String,
    ) -> Listener {
        let state = Arc::new(PushChannel::default());
        let task = tokio::spawn(keep_listening(config, tls, url, state.clone()));
        Listener { state, task }
    }

    /// Whether the task still runs (it does not outlive its runtime).
    pub(crate) fn is_running(&self) -> bool {
        !self.task.is_finished()
    }

    pub(crate) fn channel(&self) -> &PushChannel {
        &self.state
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn keep_listening(
    mut config: tokio_postgres::Config,
    tls: Option<Connector>,
    url: String,
    state: Arc<PushChannel>,
) {
    let _down = DownOnDrop(state.clone());
    config.application_name(APPLICATION_NAME);
    let mut backoff = Duration::from_millis(50);
    loop {
        match &tls {
            Some(tls) => {
                if let Ok((client, connection)) = config.connect(tls.0.clone()).await {
                    listen(&client, connection, &url, &state).await;
                }
            }
            None => {
                if let Ok((client, connection)) = config.connect(NoTls).await {
                    listen(&client, connection, &url, &state).await;
                }
            }
        }
        if state.is_live() {
            // It listened: come back quickly.
            backoff = Duration::from_millis(50);
        }
        // The tails read again, and poll until the connection is back.
        state.set_live(false);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

/// Listens on one connection until it fails (or stops answering).
async fn listen<S, T>(
    client: &tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<S, T>,
    url: &str,
    state: &PushChannel,
) where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let listen = async {
        if client
            .batch_execute(&format!("LISTEN {CHANNEL}"))
            .await
            .is_err()
        {
            return;
        }
        // Appends between the tails' last reads and now notified no one:
        // waking them (set_live) makes them read.
        state.set_live(true);
        loop {
            tokio::time::sleep(HEARTBEAT).await;
            let alive = tokio::time::timeout(HEARTBEAT_TIMEOUT, client.simple_query(""));
            if !matches!(alive.await, Ok(Ok(_))) {
                return;
            }
        }
    };
    let deliver = async {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let AsyncMessage::Notification(note) = message
                && note.channel() == CHANNEL
                && let Ok(log) = note.payload().parse::<i64>()
            {
                waiters().wake(&(url.to_owned(), log));
            }
        }
    };
    tokio::select! {
        () = listen => {}
        () = deliver => {}
    }
}
