//! The transport every client handle shares: one `reqwest` client, the
//! server's base URL and its token; a call is one POST of a postcard
//! [`Request`] answered by a postcard `Result<Reply, WireError>`.

use crate::wire::{CONTENT_TYPE, PATH, Reply, Request, VERSION, WireError};
use crate::{BACKEND, ConnectError};
use infinisheet_storage_error::StorageError;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// How long a call may take before it fails as retryable (a wait takes
/// this beyond its own timeout).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// What a client knows of the server, shared by every handle opened from
/// it.
#[derive(Clone)]
pub(crate) struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    transport: Transport,
    /// What the server stores logs on (its log store's backend name).
    log_backend: String,
    blobs_persistent: bool,
    /// The most names the server's listing pages hold.
    blobs_page: usize,
}

/// How calls reach the server.
struct Transport {
    http: reqwest::Client,
    /// The service's URL (`{base}/api/storage`).
    endpoint: url::Url,
    /// The base URL as given, for messages.
    base: String,
    token: Option<String>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the token.
        f.debug_struct("Client")
            .field("base", &self.inner.transport.base)
            .field("log_backend", &self.inner.log_backend)
            .finish_non_exhaustive()
    }
}

/// A failure of one call: the server's answer, or the transport's.
#[derive(Debug)]
pub(crate) enum CallError {
    /// The server answered with this error.
    Wire(WireError),
    /// No answer to go by (unreachable, timed out, refused, malformed).
    Transport(StorageError),
}

impl Client {
    /// Reaches the server at `base` (`http://host:port`, or with a path
    /// below which the server answers) and checks it speaks this protocol.
    pub(crate) async fn connect(base: &str, token: Option<String>) -> Result<Client, ConnectError> {
        let mut url = url::Url::parse(base).map_err(|err| ConnectError::Url {
            url: base.to_owned(),
            problem: err.to_string(),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.cannot_be_a_base() {
            return Err(ConnectError::Url {
                url: base.to_owned(),
                problem: "it is not an http:// or https:// URL".to_owned(),
            });
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        let endpoint = url.join(PATH).map_err(|err| ConnectError::Url {
            url: base.to_owned(),
            problem: err.to_string(),
        })?;
        install_tls();
        let http = reqwest::Client::builder()
            .timeout(CALL_TIMEOUT)
            .build()
            .map_err(|err| ConnectError::Unreachable {
                url: base.to_owned(),
                source: StorageError::new(BACKEND, format!("cannot build an HTTP client: {err}")),
            })?;
        let transport = Transport {
            http,
            endpoint,
            base: base.to_owned(),
            token,
        };
        match transport.call(&Request::Hello, None).await {
            Ok(Reply::Hello {
                version,
                log_backend,
                blobs_persistent,
                blobs_page,
            }) => {
                if version != VERSION {
                    return Err(ConnectError::Version {
                        url: base.to_owned(),
                        server: version,
                        client: VERSION,
                    });
                }
                Ok(Client {
                    inner: Arc::new(Inner {
                        transport,
                        log_backend,
                        blobs_persistent,
                        blobs_page: usize::try_from(blobs_page).unwrap_or(usize::MAX),
                    }),
                })
            }
            Ok(other) => Err(ConnectError::Unreachable {
                url: base.to_owned(),
                source: unexpected(other.kind()),
            }),
            Err(err) => Err(ConnectError::Unreachable {
                url: base.to_owned(),
                source: storage(err),
            }),
        }
    }

    pub(crate) fn base(&self) -> &str {
        &self.inner.transport.base
    }

    pub(crate) fn log_backend(&self) -> &str {
        &self.inner.log_backend
    }

    pub(crate) fn blobs_persistent(&self) -> bool {
        self.inner.blobs_persistent
    }

    pub(crate) fn blobs_page(&self) -> usize {
        self.inner.blobs_page
    }

    /// One call; `timeout` replaces the usual one (a wait's).
    pub(crate) async fn call(
        &self,
        request: &Request,
        timeout: Option<Duration>,
    ) -> Result<Reply, CallError> {
        self.inner.transport.call(request, timeout).await
    }
}

impl Transport {
    async fn call(&self, request: &Request, timeout: Option<Duration>) -> Result<Reply, CallError> {
        let body = postcard::to_allocvec(request).map_err(|err| {
            CallError::Transport(StorageError::new(
                BACKEND,
                format!("cannot encode the request: {err}"),
            ))
        })?;
        let body_len = body.len();
        let mut call = self
            .http
            .post(self.endpoint.clone())
            .header(reqwest::header::CONTENT_TYPE, CONTENT_TYPE)
            .body(body);
        if let Some(token) = &self.token {
            call = call.bearer_auth(token);
        }
        if let Some(timeout) = timeout {
            call = call.timeout(timeout);
        }
        let reply = call.send().await.map_err(|err| self.transport(&err))?;
        let status = reply.status();
        let bytes = reply.bytes().await.map_err(|err| self.transport(&err))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            let text = text.trim();
            let message = match status.as_u16() {
                401 => format!(
                    "{} refused the call: it needs its token (INFINISHEET_TOKEN): {text}",
                    self.base
                ),
                403 => format!("{} refused the call: {text}", self.base),
                413 => format!(
                    "{} refused the call as too large ({} bytes; its limit is `serve \
                     --max-body-mib`): {text}",
                    self.base, body_len
                ),
                404 => format!(
                    "{} does not serve infinisheet storage (no {}): is it `infinisheet serve`?",
                    self.base, self.endpoint
                ),
                _ => format!("{} answered {status}: {text}", self.base),
            };
            let err = if status.is_server_error() || status.as_u16() == 429 {
                StorageError::retryable(BACKEND, message)
            } else {
                StorageError::new(BACKEND, message)
            };
            return Err(CallError::Transport(err));
        }
        match postcard::from_bytes::<Result<Reply, WireError>>(&bytes) {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(err)) => Err(CallError::Wire(err)),
            Err(err) => Err(CallError::Transport(StorageError::corrupt(
                BACKEND,
                format!("{} sent a reply this client cannot read: {err}", self.base),
            ))),
        }
    }

    /// A transport failure: retryable, since nothing says the server will
    /// not answer next time (an append may have landed: see the token).
    fn transport(&self, err: &reqwest::Error) -> CallError {
        let what = if err.is_timeout() {
            "timed out"
        } else if err.is_connect() {
            "cannot connect"
        } else {
            "the call failed"
        };
        let mut message = format!("{}: {what}", self.base);
        // reqwest's own text names the URL again: its sources say why.
        if let Some(source) = std::error::Error::source(err) {
            message.push_str(": ");
            message.push_str(&infinisheet_storage_error::one_line(source));
        }
        // A certificate this machine does not trust stays untrusted on a
        // retry: say how to trust one.
        if message.contains("CaUsedAsEndEntity") {
            message.push_str(
                " (the server's certificate is a CA certificate, which a client does not \
                 take as a server's: make it with `-addext basicConstraints=critical,CA:FALSE`, \
                 and trust it with SSL_CERT_FILE=ITS.pem)",
            );
            return CallError::Transport(StorageError::new(BACKEND, message));
        }
        if message.contains("invalid peer certificate") {
            message.push_str(
                " (the server's certificate is not trusted here; one of its own, self-signed \
                 or of a private CA, is trusted with SSL_CERT_FILE=ITS.pem)",
            );
            return CallError::Transport(StorageError::new(BACKEND, message));
        }
        CallError::Transport(StorageError::retryable(BACKEND, message))
    }
}

/// The error of a reply that does not answer the call.
pub(crate) fn unexpected(kind: &str) -> StorageError {
    StorageError::new(
        BACKEND,
        format!("the server answered with a {kind} reply, which does not answer the call"),
    )
}

/// A call's failure that is no answer the operation names, as a storage
/// error.
pub(crate) fn storage(err: CallError) -> StorageError {
    match err {
        CallError::Wire(err) => remote(err),
        CallError::Transport(err) => err,
    }
}

/// The server's error as a storage error of this backend, keeping whether
/// it may be retried and whether the data is corrupt.
pub(crate) fn remote(err: WireError) -> StorageError {
    match err {
        WireError::Storage {
            backend,
            message,
            retryable,
            corrupt,
        } => {
            let message = format!("on the server, {backend} backend: {message}");
            if corrupt {
                StorageError::corrupt(BACKEND, message)
            } else if retryable {
                StorageError::retryable(BACKEND, message)
            } else {
                StorageError::new(BACKEND, message)
            }
        }
        WireError::Forbidden(message) => {
            StorageError::new(BACKEND, format!("the server refused the call: {message}"))
        }
        WireError::BadRequest(message) => StorageError::new(
            BACKEND,
            format!("the server cannot read the call: {message}"),
        ),
        other => StorageError::new(BACKEND, format!("the server answered {other:?}")),
    }
}

/// Makes rustls on `ring` the process's TLS provider unless one is chosen
/// (reqwest needs one to build a client, for `https://`).
fn install_tls() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
