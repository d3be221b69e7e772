//! `FaultProxy`: an HTTP/1.1 proxy between S3 clients and the S3 server
//! that loses replies after the server acted, turns replies into `503`s
//! and adds latency, each at a seeded rate; and `TcpFaultProxy`, which
//! loses replies of any TCP protocol (PostgreSQL's) by cutting the
//! connection instead of passing a reply on.
//!
//! Every request goes to the server on a connection of its own, with
//! `Connection: close`, and the whole reply is read before the proxy
//! decides what the client gets: the reply as it is (after a random
//! delay), a `503 Service Unavailable`, or nothing at all (the connection
//! is closed). In the last two cases the server *did* act: a `PUT` landed,
//! a `DELETE` removed. That is the fault a client library's retry turns
//! into a duplicate unless the caller can tell its own landed write from
//! another writer's.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

/// How often each fault strikes.
#[derive(Clone, Copy, Debug)]
pub struct FaultRates {
    /// Share of replies lost after the server acted (0.0 to 1.0).
    pub lost_reply: f64,
    /// Share of replies turned into `503 Service Unavailable` after the
    /// server acted.
    pub unavailable: f64,
    /// Every reply is delayed by a random time up to this.
    pub max_latency: Duration,
    /// Seeds the generator that decides.
    pub seed: u64,
}

/// What the proxy did so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Requests forwarded to the server.
    pub requests: u64,
    /// Replies lost after the server acted.
    pub lost: u64,
    /// Replies turned into `503`.
    pub unavailable: u64,
}

#[derive(Debug, Default)]
struct Counters {
    requests: AtomicU64,
    lost: AtomicU64,
    unavailable: AtomicU64,
}

/// A running proxy; stops accepting when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    address: SocketAddr,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

/// The longest request or reply head the proxy reads.
const MAX_HEAD: usize = 64 * 1024;

impl FaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream`, on
    /// the current tokio runtime.
    ///
    /// # Errors
    ///
    /// If no port can be bound.
    pub async fn start(upstream: SocketAddr, rates: FaultRates) -> std::io::Result<Self> {
        Self::start_at(([127, 0, 0, 1], 0).into(), upstream, None, rates).await
    }

    /// Starts a proxy listening on `listen` in front of `upstream`,
    /// connecting to it from the address `source` if one is given (so the
    /// server's host can tell, and cut off, this proxy's clients).
    ///
    /// # Errors
    ///
    /// If `listen` cannot be bound.
    pub async fn start_at(
        listen: SocketAddr,
        upstream: SocketAddr,
        source: Option<IpAddr>,
        rates: FaultRates,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let shared = counters.clone();
        let rng = Arc::new(std::sync::Mutex::new(fastrand::Rng::with_seed(rates.seed)));
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (shared, rng) = (shared.clone(), rng.clone());
                tokio::spawn(async move {
                    // A client that hangs up mid-request is no fault of the
                    // proxy's; the client sees it as the error it made.
                    let _ = serve(client, upstream, source, rates, &shared, &rng).await;
                });
            }
        });
        Ok(FaultProxy {
            address,
            counters,
            task,
        })
    }

    /// The URL clients use instead of the server's.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// What the proxy did so far.
    pub fn counts(&self) -> FaultCounts {
        FaultCounts {
            requests: self.counters.requests.load(Ordering::SeqCst),
            lost: self.counters.lost.load(Ordering::SeqCst),
            unavailable: self.counters.unavailable.load(Ordering::SeqCst),
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The server's address from an `http://host:port` endpoint.
///
/// # Panics
///
/// If the endpoint is not of that form.
pub fn upstream_address(endpoint: &str) -> SocketAddr {
    let rest = endpoint
        .strip_prefix("http://")
        .unwrap_or_else(|| panic!("not an http:// endpoint: {endpoint}"));
    let host_port = rest.trim_end_matches('/');
    std::net::ToSocketAddrs::to_socket_addrs(host_port)
        .unwrap_or_else(|err| panic!("resolving {host_port}: {err}"))
        .next()
        .unwrap_or_else(|| panic!("{host_port} resolves to nothing"))
}

enum Fate {
    Deliver(Duration),
    Lose,
    Unavailable,
}

fn decide(rates: &FaultRates, rng: &std::sync::Mutex<fastrand::Rng>) -> Fate {
    let mut rng = rng
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let draw = rng.f64();
    if draw < rates.lost_reply {
        Fate::Lose
    } else if draw < rates.lost_reply + rates.unavailable {
        Fate::Unavailable
    } else {
        let micros = rates.max_latency.as_micros() as u64;
        Fate::Deliver(Duration::from_micros(rng.u64(0..=micros)))
    }
}

/// Reads a head (up to and including the blank line); `None` at a clean
/// end of stream before any byte.
async fn read_head<R: AsyncBufReadExt + Unpin>(reader: &mut R) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        let n = reader.read_until(b'\n', &mut head).await?;
        if n == 0 {
            return if head.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        if &head[before..] == b"\r\n" {
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Err(std::io::Error::other("head too long"));
        }
    }
}

/// The request head with its `Connection` header replaced by `close`, and
/// the body length its `Content-Length` gives.
fn rewrite(head: &[u8]) -> std::io::Result<(Vec<u8>, usize)> {
    let text = std::str::from_utf8(head).map_err(std::io::Error::other)?;
    let mut out = String::with_capacity(text.len() + 20);
    let mut length = 0;
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        let lower = line.to_ascii_lowercase();
        if lower.starts_with("connection:") {
            continue;
        }
        if lower.starts_with("transfer-encoding:") {
            return Err(std::io::Error::other(
                "the proxy does not forward chunked requests",
            ));
        }
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().map_err(std::io::Error::other)?;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    Ok((out.into_bytes(), length))
}

/// The reply with its head saying `Connection: close`, so the client
/// never reuses a connection the proxy closes.
fn closing(reply: &[u8]) -> Vec<u8> {
    let Some(split) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        return reply.to_vec();
    };
    let (head, body) = (&reply[..split], &reply[split + 4..]);
    let mut out = Vec::with_capacity(reply.len() + 20);
    for line in head.split(|b| *b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let lower = line.to_ascii_lowercase();
        if lower.starts_with(b"connection:") || lower.starts_with(b"keep-alive:") {
            continue;
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"Connection: close\r\n\r\n");
    out.extend_from_slice(body);
    out
}

/// A connection to `upstream`, from `source` if one is given.
async fn connect(upstream: SocketAddr, source: Option<IpAddr>) -> std::io::Result<TcpStream> {
    let Some(source) = source else {
        return TcpStream::connect(upstream).await;
    };
    let socket = match source {
        IpAddr::V4(_) => TcpSocket::new_v4()?,
        IpAddr::V6(_) => TcpSocket::new_v6()?,
    };
    socket.bind(SocketAddr::new(source, 0))?;
    socket.connect(upstream).await
}

/// The longest the proxy waits on the server for one request: a server
/// cut off by a partition never answers, and the proxy's task for that
/// request then ends rather than lingering.
const UPSTREAM_DEADLINE: Duration = Duration::from_secs(60);

async fn serve(
    client: TcpStream,
    upstream: SocketAddr,
    source: Option<IpAddr>,
    rates: FaultRates,
    counters: &Counters,
    rng: &std::sync::Mutex<fastrand::Rng>,
) -> std::io::Result<()> {
    let mut client = BufReader::new(client);
    let Some(head) = read_head(&mut client).await? else {
        return Ok(());
    };
    let (head, length) = rewrite(&head)?;
    let mut body = vec![0; length];
    client.read_exact(&mut body).await?;
    let exchange = async {
        let mut server = connect(upstream, source).await?;
        server.write_all(&head).await?;
        server.write_all(&body).await?;
        let mut reply = Vec::new();
        server.read_to_end(&mut reply).await?;
        Ok::<_, std::io::Error>(reply)
    };
    let reply = tokio::time::timeout(UPSTREAM_DEADLINE, exchange)
        .await
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let client = client.get_mut();
    match decide(&rates, rng) {
        Fate::Lose => {
            counters.lost.fetch_add(1, Ordering::SeqCst);
            // Dropping the connection without a byte of reply.
            Ok(())
        }
        Fate::Unavailable => {
            counters.unavailable.fetch_add(1, Ordering::SeqCst);
            client
                .write_all(
                    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await?;
            client.shutdown().await
        }
        Fate::Deliver(delay) => {
            tokio::time::sleep(delay).await;
            client.write_all(&closing(&reply)).await?;
            client.shutdown().await
        }
    }
}

/// A TCP proxy for protocols other than HTTP (PostgreSQL's): bytes from
/// the client reach the server as they are; each piece of a reply the
/// server sends is, at a seeded rate, not passed on but the connection
/// closed instead. The server acted on what it replies to (an append
/// committed), and the client sees a connection lost without the reply:
/// the fault a retry must not turn into a duplicate.
#[derive(Debug)]
pub struct TcpFaultProxy {
    address: SocketAddr,
    counters: Arc<Counters>,
    task: tokio::task::JoinHandle<()>,
}

impl TcpFaultProxy {
    /// Starts a proxy on a free loopback port in front of `upstream`,
    /// losing a share `lost_reply` (0.0 to 1.0) of the pieces of replies,
    /// decided by a generator seeded with `seed`.
    ///
    /// # Errors
    ///
    /// If no port can be bound.
    pub async fn start(upstream: SocketAddr, lost_reply: f64, seed: u64) -> std::io::Result<Self> {
        Self::start_at(([127, 0, 0, 1], 0).into(), upstream, None, lost_reply, seed).await
    }

    /// [`start`](Self::start), listening on `listen` and connecting to
    /// `upstream` from the address `source` if one is given.
    ///
    /// # Errors
    ///
    /// If `listen` cannot be bound.
    pub async fn start_at(
        listen: SocketAddr,
        upstream: SocketAddr,
        source: Option<IpAddr>,
        lost_reply: f64,
        seed: u64,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let counters = Arc::new(Counters::default());
        let shared = counters.clone();
        let task = tokio::spawn(async move {
            // Dropped with this task: no relay outlives the proxy.
            let mut relays = tokio::task::JoinSet::new();
            let mut connection = 0u64;
            while let Ok((client, _)) = listener.accept().await {
                connection += 1;
                let rng = fastrand::Rng::with_seed(seed ^ connection);
                let shared = shared.clone();
                relays.spawn(async move {
                    let _ = relay(client, upstream, source, lost_reply, rng, &shared).await;
                });
                while relays.try_join_next().is_some() {}
            }
        });
        Ok(TcpFaultProxy {
            address,
            counters,
            task,
        })
    }

    /// The address clients connect to instead of the server's.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Connections relayed (`requests`) and replies lost so far.
    pub fn counts(&self) -> FaultCounts {
        FaultCounts {
            requests: self.counters.requests.load(Ordering::SeqCst),
            lost: self.counters.lost.load(Ordering::SeqCst),
            unavailable: 0,
        }
    }
}

impl Drop for TcpFaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Relays one connection until either side closes it or a reply is lost;
/// dropping both sockets then closes the other side too.
async fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    source: Option<IpAddr>,
    lost_reply: f64,
    mut rng: fastrand::Rng,
    counters: &Counters,
) -> std::io::Result<()> {
    let mut server = connect(upstream, source).await?;
    counters.requests.fetch_add(1, Ordering::SeqCst);
    let (mut from_client, mut to_client) = client.split();
    let (mut from_server, mut to_server) = server.split();
    let requests = tokio::io::copy(&mut from_client, &mut to_server);
    let replies = async {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let n = from_server.read(&mut buffer).await?;
            if n == 0 {
                return Ok::<(), std::io::Error>(());
            }
            if rng.f64() < lost_reply {
                counters.lost.fetch_add(1, Ordering::SeqCst);
                return Ok(());
            }
            to_client.write_all(&buffer[..n]).await?;
        }
    };
    tokio::select! {
        _ = requests => {}
        _ = replies => {}
    }
    Ok(())
}
