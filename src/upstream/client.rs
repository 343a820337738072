//! The HTTP client under [`super::Upstream`]: hyper's pooled client with only what the
//! upstream calls need.
//!
//! - HTTP/1.1 keep-alive, and HTTP/2 when the server offers it during the TLS handshake
//!   (ALPN);
//! - TLS by rustls with the process's crypto provider (aws-lc-rs unless another one is
//!   installed) and the operating system's certificate verifier;
//! - a connect timeout, and a timeout of the whole exchange (request, answer and body);
//! - no redirects: an answer is returned as it is;
//! - gzip: `Accept-Encoding: gzip` on every request, and a gzip answer decoded;
//! - proxies from the environment (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and
//!   `NO_PROXY`, upper or lower case): an `https` destination through an HTTP `CONNECT`
//!   tunnel, a plain `http` one as an absolute-form request to the proxy, each with the
//!   proxy URL's user and password as `Proxy-Authorization: Basic`.

use std::fmt;
use std::future::Future;
use std::io::Read as _;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, PROXY_AUTHORIZATION};
use http::{HeaderMap, HeaderValue, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::proxy::matcher::Matcher;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::time::Instant;

/// A boxed error from a lower layer.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `Accept-Encoding` of every request.
const GZIP: HeaderValue = HeaderValue::from_static("gzip");

/// How the client connects and how long it keeps connections.
#[derive(Debug, Clone)]
pub struct ClientSettings {
    /// Longest wait for a TCP connection (to the server or to the proxy).
    pub connect_timeout: Duration,
    /// How long an idle pooled connection is kept.
    pub pool_idle_timeout: Duration,
    /// TCP keep-alive probes' interval on every connection.
    pub tcp_keepalive: Duration,
    /// Where the proxy rules come from.
    pub proxies: Proxies,
    /// The most body bytes read from an answer (after gzip decoding); the rest is
    /// dropped.
    pub max_body_bytes: usize,
    /// Certificate authorities trusted besides the platform's (none in the binary).
    pub extra_roots: Vec<rustls::pki_types::CertificateDer<'static>>,
}

impl Default for ClientSettings {
    /// The upstream client's settings: 10 s to connect, idle connections kept 90 s, TCP
    /// keep-alive every 60 s, proxies from the environment, answers up to 32 MiB.
    fn default() -> Self {
        ClientSettings {
            connect_timeout: Duration::from_secs(10),
            pool_idle_timeout: Duration::from_secs(90),
            tcp_keepalive: Duration::from_secs(60),
            proxies: Proxies::FromEnv,
            max_body_bytes: 32 * 1024 * 1024,
            extra_roots: Vec::new(),
        }
    }
}

/// Which requests go through a proxy.
#[derive(Debug, Clone)]
pub enum Proxies {
    /// As `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` (upper or lower case)
    /// say when the client is built.
    FromEnv,
    /// None.
    Off,
    /// As these rules say.
    Rules(Arc<Matcher>),
}

/// The pooled HTTP client. Cheap to clone: clones share the pool.
#[derive(Clone)]
pub struct HttpClient {
    inner: hyper_util::client::legacy::Client<HttpsConnector<ProxyConnector>, Full<Bytes>>,
    proxy: Option<Arc<Matcher>>,
    max_body_bytes: usize,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("proxy", &self.proxy)
            .finish_non_exhaustive()
    }
}

/// The status, headers and body of one answer.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The body, decoded, at most `max_body_bytes` long; `Err` if it could not be read
    /// (status and headers had arrived).
    pub body: Result<Bytes, ClientError>,
}

impl HttpClient {
    /// Builds the client; fails only when the platform's certificate verifier cannot be
    /// set up.
    pub fn new(settings: &ClientSettings) -> Result<Self, ClientError> {
        let provider = rustls::crypto::CryptoProvider::get_default()
            .cloned()
            .unwrap_or_else(|| Arc::new(rustls::crypto::aws_lc_rs::default_provider()));
        let verifier = if settings.extra_roots.is_empty() {
            rustls_platform_verifier::Verifier::new(provider.clone())
        } else {
            rustls_platform_verifier::Verifier::new_with_extra_roots(
                settings.extra_roots.iter().cloned(),
                provider.clone(),
            )
        }
        .map_err(|e| ClientError::new(ErrorKind::Builder, Some(e.into())))?;
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| ClientError::new(ErrorKind::Builder, Some(e.into())))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth();
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(settings.connect_timeout));
        http.set_keepalive(Some(settings.tcp_keepalive));
        let proxy = match &settings.proxies {
            Proxies::FromEnv => proxy_env_set().then(|| Arc::new(Matcher::from_env())),
            Proxies::Off => None,
            Proxies::Rules(m) => Some(m.clone()),
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(ProxyConnector {
                http,
                proxy: proxy.clone(),
            });
        let inner = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(settings.pool_idle_timeout)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(HttpClient {
            inner,
            proxy,
            max_body_bytes: settings.max_body_bytes,
        })
    }

    /// Sends `req` and reads the answer, all within `timeout`. `Accept-Encoding: gzip` is
    /// added; a gzip body is decoded (and `Content-Encoding`, `Content-Length` dropped).
    pub async fn send(
        &self,
        mut req: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Answer, ClientError> {
        let deadline = Instant::now() + timeout;
        let headers = req.headers_mut();
        headers.insert(ACCEPT_ENCODING, GZIP);
        if let Some(proxy) = &self.proxy
            && req.uri().scheme() == Some(&http::uri::Scheme::HTTP)
            && let Some(auth) = proxy
                .intercept(req.uri())
                .and_then(|i| i.basic_auth().cloned())
        {
            req.headers_mut().insert(PROXY_AUTHORIZATION, auth);
        }
        let response = match tokio::time::timeout_at(deadline, self.inner.request(req)).await {
            Err(_) => return Err(ClientError::new(ErrorKind::Timeout, None)),
            Ok(Err(e)) => {
                let kind = if e.is_connect() {
                    ErrorKind::Connect
                } else {
                    ErrorKind::Request
                };
                return Err(ClientError::new(kind, Some(e.into())));
            }
            Ok(Ok(r)) => r,
        };
        let (parts, body) = response.into_parts();
        let mut headers = parts.headers;
        let body =
            match tokio::time::timeout_at(deadline, read_capped(body, self.max_body_bytes)).await {
                Err(_) => Err(ClientError::new(ErrorKind::Timeout, None)),
                Ok(Err(e)) => Err(ClientError::new(ErrorKind::Body, Some(e.into()))),
                Ok(Ok(raw)) => decode(&mut headers, raw, self.max_body_bytes),
            };
        Ok(Answer {
            status: parts.status,
            headers,
            body,
        })
    }
}

/// The variables that name a proxy; without any of them no request is proxied, and the
/// client does not look for a proxy at all.
const PROXY_VARS: [&str; 6] = [
    "ALL_PROXY",
    "all_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
];

/// Whether the environment names a proxy.
fn proxy_env_set() -> bool {
    PROXY_VARS
        .iter()
        .any(|v| std::env::var_os(v).is_some_and(|s| !s.is_empty()))
}

/// Reads a body, keeping at most `max` bytes.
async fn read_capped(mut body: hyper::body::Incoming, max: usize) -> Result<Bytes, hyper::Error> {
    let mut first: Option<Bytes> = None;
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame?.into_data() else {
            continue;
        };
        // A body in one chunk (the common case) is kept without a copy.
        if buf.is_empty() && first.is_none() {
            if chunk.len() >= max {
                return Ok(chunk.slice(..max));
            }
            first = Some(chunk);
            continue;
        }
        if let Some(f) = first.take() {
            buf.extend_from_slice(&f);
        }
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if chunk.len() >= room {
            break;
        }
    }
    Ok(match first {
        Some(f) => f,
        None => Bytes::from(buf),
    })
}

/// Decodes a gzip body (`Content-Encoding: gzip` or `x-gzip`), at most `max` bytes of it.
fn decode(headers: &mut HeaderMap, raw: Bytes, max: usize) -> Result<Bytes, ClientError> {
    let gzip = headers.get(CONTENT_ENCODING).is_some_and(|v| {
        v.as_bytes().eq_ignore_ascii_case(b"gzip") || v.as_bytes().eq_ignore_ascii_case(b"x-gzip")
    });
    if !gzip {
        return Ok(raw);
    }
    headers.remove(CONTENT_ENCODING);
    headers.remove(CONTENT_LENGTH);
    if raw.is_empty() {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::MultiGzDecoder::new(&raw[..])
        .take(max as u64)
        .read_to_end(&mut out)
        .map_err(|e| ClientError::new(ErrorKind::Decode, Some(e.into())))?;
    Ok(Bytes::from(out))
}

/// What went wrong, as far as the caller needs to tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client could not be set up.
    Builder,
    /// No connection could be made (nothing was sent).
    Connect,
    /// The connection failed after the request may have been sent.
    Request,
    /// The exchange did not finish within its timeout.
    Timeout,
    /// The answer's body could not be read.
    Body,
    /// The answer's body could not be decoded.
    Decode,
}

/// A failed exchange: its kind and the error underneath, if any.
#[derive(Debug)]
pub struct ClientError {
    kind: ErrorKind,
    source: Option<BoxError>,
}

impl ClientError {
    fn new(kind: ErrorKind, source: Option<BoxError>) -> Self {
        ClientError { kind, source }
    }

    /// A request that cannot be sent as built (e.g. a URL the HTTP layer refuses).
    pub(crate) fn invalid_request(source: BoxError) -> Self {
        ClientError::new(ErrorKind::Builder, Some(source))
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// A timeout: of the whole exchange, of the connect, or reported by a lower layer.
    pub fn is_timeout(&self) -> bool {
        self.kind == ErrorKind::Timeout
            || chain(self).iter().any(|e| {
                e.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
                    || e.downcast_ref::<hyper::Error>()
                        .is_some_and(hyper::Error::is_timeout)
            })
    }
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            ErrorKind::Builder => "cannot create the HTTP client",
            ErrorKind::Connect => "error trying to connect",
            ErrorKind::Request => "error sending request",
            ErrorKind::Timeout => "operation timed out",
            ErrorKind::Body => "error reading the answer's body",
            ErrorKind::Decode => "error decoding the answer's body",
        })
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Errors in the chain of `e`, looking inside `io::Error` wrappers too.
pub(crate) fn chain<'a>(
    e: &'a (dyn std::error::Error + 'static),
) -> Vec<&'a (dyn std::error::Error + 'static)> {
    let mut out = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        out.push(err);
        next = match err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => err.source(),
        };
        if out.len() > 16 {
            break;
        }
    }
    out
}

/// The TCP layer: straight to the destination, or to the proxy the environment names
/// for it (a `CONNECT` tunnel for `https`, a plain connection marked as proxied for
/// `http`, so the request goes out in absolute form).
#[derive(Clone)]
struct ProxyConnector {
    http: HttpConnector,
    proxy: Option<Arc<Matcher>>,
}

impl tower::Service<Uri> for ProxyConnector {
    type Response = ProxyStream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<ProxyStream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower::Service::<Uri>::poll_ready(&mut self.http, cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let intercept = self.proxy.as_ref().and_then(|m| m.intercept(&dst));
        let mut http = self.http.clone();
        Box::pin(async move {
            let Some(intercept) = intercept else {
                let io = tower::Service::call(&mut http, dst).await?;
                return Ok(ProxyStream { io, proxied: false });
            };
            let proxy = intercept.uri().clone();
            if proxy.scheme() != Some(&http::uri::Scheme::HTTP) {
                return Err(format!(
                    "the proxy {} is not supported: only http:// proxies are",
                    proxy.scheme_str().unwrap_or("without a scheme")
                )
                .into());
            }
            if dst.scheme() == Some(&http::uri::Scheme::HTTPS) {
                let mut tunnel = Tunnel::new(proxy, http);
                if let Some(auth) = intercept.basic_auth() {
                    tunnel = tunnel.with_auth(auth.clone());
                }
                let io = tower::Service::call(&mut tunnel, dst).await?;
                Ok(ProxyStream { io, proxied: false })
            } else {
                let io = tower::Service::call(&mut http, proxy).await?;
                Ok(ProxyStream { io, proxied: true })
            }
        })
    }
}

/// A TCP connection, and whether requests on it go to a proxy in absolute form.
struct ProxyStream {
    io: TokioIo<tokio::net::TcpStream>,
    proxied: bool,
}

impl Connection for ProxyStream {
    fn connected(&self) -> Connected {
        self.io.connected().proxy(self.proxied)
    }
}

impl Read for ProxyStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for ProxyStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
