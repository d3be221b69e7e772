//! Accepting connections: at most so many at once (more wait in the
//! kernel's queue), and a quarter of them from one address; each over TLS
//! when the server has a certificate, with deadlines for the handshake,
//! for a request's head and for a write the client will not read,
//! `TCP_NODELAY` (a reply is one small write), and a graceful end at
//! Ctrl-C or SIGTERM.

use anyhow::Context;
use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// How long a TLS handshake may take.
const HANDSHAKE: Duration = Duration::from_secs(10);

/// How long a client may take to send a request's head (on a new
/// connection, or an idle kept-alive one).
const HEAD: Duration = Duration::from_secs(30);

/// How long connections get to finish at a graceful end.
const DRAIN: Duration = Duration::from_secs(10);

/// How long a write may wait for a client that reads nothing (a reader
/// of pipelined requests that never takes their replies, an event stream
/// nobody reads) before the connection is closed.
const WRITE_STALL: Duration = Duration::from_secs(30);

/// A connection whose writes fail once one has waited [`WRITE_STALL`]
/// for the client to read.
struct Timed<I> {
    io: I,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<I> Timed<I> {
    fn new(io: I) -> Timed<I> {
        Timed { io, stalled: None }
    }

    /// `Ready` as the inner write was, or an error once it has been
    /// pending too long.
    fn judge<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::future::Future;
        use std::task::Poll;
        match polled {
            Poll::Ready(done) => {
                self.stalled = None;
                Poll::Ready(done)
            }
            Poll::Pending => {
                let stalled = self
                    .stalled
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL)));
                match stalled.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the client read nothing for 30 s",
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Timed<I> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Timed<I> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        self.judge(cx, polled)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.judge(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_flush(cx);
        self.judge(cx, polled)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_shutdown(cx);
        self.judge(cx, polled)
    }
}

/// The TLS settings of a server with the certificate chain and key in
/// these PEM files (rustls on ring).
pub(super) fn tls_config(cert: &Path, key: &Path) -> anyhow::Result<TlsAcceptor> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .with_context(|| format!("reading the certificates in --tls-cert {}", cert.display()))?;
    if chain.is_empty() {
        anyhow::bail!("--tls-cert {} holds no certificate", cert.display());
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .with_context(|| format!("reading the private key in --tls-key {}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .context("setting up TLS")?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .context("--tls-cert and --tls-key do not make a certificate and its key")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `router` on `listener` until `stop` turns true, then lets the
/// connections in hand finish (for at most [`DRAIN`]).
pub(super) async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    router: Router,
    most: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let permits = Arc::new(tokio::sync::Semaphore::new(most));
    let most_per_client = (most / 4).max(1);
    let per_client = super::replies::PerClient::new(most_per_client);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = async {
                // A permit first: past the cap, connections wait in the
                // kernel's queue rather than being read.
                let permit = permits.clone().acquire_owned().await;
                (permit, listener.accept().await)
            } => accepted,
            _ = stop.wait_for(|stopping| *stopping) => break,
        };
        let (Ok(permit), accepted) = accepted else {
            break;
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors, or a connection reset before it
                // was accepted: go on after a breath.
                tracing::warn!("accepting a connection: {err}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(counted) = per_client.try_take(peer.ip()) else {
            tracing::warn!(target: "infinisheet::access", client = %peer, "refused a connection: {most_per_client} are open from this address already");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<_>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let watcher = graceful.watcher();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _held = (permit, counted);
            match tls {
                None => connection(TokioIo::new(Timed::new(tcp)), service, watcher, peer).await,
                Some(acceptor) => match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await
                {
                    Ok(Ok(stream)) => {
                        connection(TokioIo::new(Timed::new(stream)), service, watcher, peer).await;
                    }
                    Ok(Err(err)) => {
                        tracing::info!(target: "infinisheet::access", client = %peer, "TLS handshake failed: {err}")
                    }
                    Err(_) => {
                        tracing::info!(target: "infinisheet::access", client = %peer, "TLS handshake timed out")
                    }
                },
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("connections still open after {DRAIN:?}: closing them");
    }
    Ok(())
}

/// Serves one connection's requests (HTTP/1.1, kept alive); a
/// connection that ends in an error (a request that is not HTTP, a head
/// too slow, a client that reads nothing) gets a line in the access log.
async fn connection<I, S>(
    io: TokioIo<I>,
    service: S,
    watcher: hyper_util::server::graceful::Watcher,
    peer: std::net::SocketAddr,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: hyper::service::Service<
            hyper::Request<hyper::body::Incoming>,
            Response = axum::response::Response,
            Error = std::convert::Infallible,
        > + Send
        + 'static,
    S::Future: Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEAD)
        .keep_alive(true);
    let connection = builder.serve_connection(io, service);
    if let Err(err) = watcher.watch(connection).await {
        let why = crate::cli::one_line(&anyhow::Error::from(err));
        tracing::info!(target: "infinisheet::access", client = %peer, "connection closed: {why}");
    }
}
