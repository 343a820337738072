//! The data plane: the HTTP face (here: routing, access control, limits, health, metrics
//! and logs around [`crate::mcp`]), its accept loop (`connections`), the lock-free
//! [`registry`] of served servers and what keeps it current in a cluster ([`feed`]; local
//! mode feeds it from manifest files instead). Stateless; every replica serves every
//! server.

mod auth;
pub(crate) mod connections;
pub mod feed;
pub(crate) mod metrics;
pub mod registry;
pub(crate) mod replicas;

use std::borrow::Cow;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{MatchedPath, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use futures::{FutureExt as _, StreamExt as _};
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::core::base_url::BaseUrl;
use crate::core::catalog::Tool;
use crate::core::server::{Caller, Refusal, ServerView};
use crate::dataplane::metrics::{CallLabels, Metrics, ToolLabels};
use crate::dataplane::registry::Registry;
use crate::mcp::{self, CallGate, Outcome, Reply, ServerIdentity, ToolRunner, code};
use crate::metrics::OPENMETRICS_CONTENT_TYPE;
use crate::oauth::Verifier;
use crate::telemetry::{TraceIds, Tracing};
use crate::upstream::{CallOutcome, Upstream};
pub(crate) use connections::ConnectionLimits;

/// Every permission the data plane needs, all in its own namespace: it watches the
/// runtime records and its own Service's EndpointSlices there, and reads nothing else.
pub fn api_calls() -> Vec<crate::k8s::scope::ApiCall> {
    feed::API_CALLS
        .iter()
        .chain(replicas::API_CALLS)
        .copied()
        .collect()
}

/// Largest request body by default: room for the file tools' base64 uploads.
pub(crate) const DEFAULT_MAX_BODY_BYTES: usize = 40 * 1024 * 1024;
/// Longest a request may take by default (Claude waits up to 300 s for a tool).
pub(crate) const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(300);
/// Longest a client may take by default to send a request's headers.
pub(crate) const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a client may take by default to send a request's body once its headers are in.
pub(crate) const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a connection may stay open by default with no request on it. Longer than the
/// 60 s idle timeout of common load balancers and the 90 s pool idle timeout of common
/// HTTP clients, so they close first and never reuse a connection the data plane is
/// closing.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Most client connections served at once by default.
pub(crate) const DEFAULT_MAX_CONNECTIONS: usize = 4096;

/// Deployment settings of the data plane.
#[derive(Debug, Clone)]
pub struct DataplaneConfig {
    /// Origins browsers may call from (`scheme://host[:port]`); `*` allows any. Requests
    /// without an Origin header are always allowed.
    pub allowed_origins: Vec<String>,
    /// Host header values accepted (host or host:port); empty = any host. Guards a
    /// loopback-bound server against DNS rebinding.
    pub allowed_hosts: Vec<String>,
    /// Largest request body accepted; a larger one gets 413 before it is read.
    pub max_body_bytes: usize,
    /// Longest a request may take, from its headers to its answer, body upload and
    /// upstream calls included.
    pub request_timeout: Duration,
    /// Connection limits and timeouts below the requests.
    pub connections: ConnectionLimits,
    /// How OAuth servers' access tokens are checked (fetch timeout, refetch floor,
    /// cache size).
    pub oauth: crate::oauth::Options,
}

impl Default for DataplaneConfig {
    fn default() -> Self {
        DataplaneConfig {
            allowed_origins: vec!["https://claude.ai".into(), "https://claude.com".into()],
            allowed_hosts: Vec::new(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            connections: ConnectionLimits::default(),
            oauth: crate::oauth::Options::default(),
        }
    }
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
        }
    }
}

impl DataplaneConfig {
    /// Adds the origin and host of the public URL, so the deployment's own address is
    /// never refused.
    pub fn allow_public_url(&mut self, public_url: &BaseUrl) {
        let origin = public_url.origin().to_string();
        if !self.allowed_origins.contains(&origin) {
            self.allowed_origins.push(origin);
        }
        if !self.allowed_hosts.is_empty() {
            for h in [public_url.host(), public_url.authority()] {
                if !self.allowed_hosts.iter().any(|a| a == h) {
                    self.allowed_hosts.push(h.to_string());
                }
            }
        }
    }

    /// Loopback defaults for a server bound to this machine only.
    pub fn loopback() -> Self {
        DataplaneConfig {
            allowed_origins: vec![
                "https://claude.ai".into(),
                "https://claude.com".into(),
                "http://localhost".into(),
                "http://127.0.0.1".into(),
            ],
            allowed_hosts: vec!["localhost".into(), "127.0.0.1".into(), "[::1]".into()],
            ..Default::default()
        }
    }

    /// Loopback defaults when bound to this machine only, otherwise the cluster defaults.
    pub(crate) fn for_listen(addr: SocketAddr) -> Self {
        if addr.ip().is_loopback() {
            Self::loopback()
        } else {
            Self::default()
        }
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|allowed| {
            allowed == "*"
                || allowed.eq_ignore_ascii_case(origin)
                // A port-less loopback entry allows that host on any port.
                || (matches!(allowed.as_str(), "http://localhost" | "http://127.0.0.1")
                    && origin
                        .strip_prefix(allowed.as_str())
                        .is_some_and(|rest| rest.starts_with(':') && rest[1..].chars().all(|c| c.is_ascii_digit())))
        })
    }

    fn host_allowed(&self, host: &str) -> bool {
        if self.allowed_hosts.is_empty() {
            return true;
        }
        let bare = strip_port(host);
        self.allowed_hosts
            .iter()
            .any(|h| h.eq_ignore_ascii_case(host) || h.eq_ignore_ascii_case(bare))
    }
}

fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    }
}

/// Shared state of the data plane.
pub struct Dataplane {
    pub(crate) registry: Arc<Registry>,
    pub(crate) upstream: Upstream,
    pub metrics: Metrics,
    pub(crate) config: DataplaneConfig,
    pub(crate) identity: ServerIdentity,
    /// Checks OAuth servers' access tokens.
    pub verifier: Verifier,
    /// Exports traces, when configured.
    pub(crate) tracing: Option<Arc<Tracing>>,
}

impl std::fmt::Debug for Dataplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dataplane")
            .field("registry", &self.registry)
            .finish()
    }
}

impl Dataplane {
    pub fn new(registry: Arc<Registry>, upstream: Upstream, config: DataplaneConfig) -> Self {
        Dataplane {
            registry,
            upstream,
            metrics: Metrics::new(),
            verifier: Verifier::new(config.oauth),
            config,
            identity: ServerIdentity::default(),
            tracing: None,
        }
    }

    /// Traces every MCP request with `tracing` (and every Atomicwork request, through
    /// the upstream client), and exposes its drop counter with the other metrics.
    pub fn with_tracing(mut self, tracing: Option<Arc<Tracing>>) -> Self {
        if let Some(t) = &tracing {
            self.metrics.register_span_drops(t.drops());
            self.upstream = self.upstream.with_tracing(t.clone());
        }
        self.tracing = tracing;
        self
    }
}

impl ToolRunner for Dataplane {
    async fn run(
        &self,
        view: &Arc<ServerView>,
        tool: &Arc<Tool>,
        args: Map<String, Value>,
    ) -> CallOutcome {
        self.upstream.call(tool, &args, &view.target).await
    }
}

impl CallGate for Dataplane {
    fn admit_call(&self, view: &ServerView) -> Result<(), u64> {
        match &view.limiter {
            Some(bucket) => bucket.try_acquire(),
            None => Ok(()),
        }
    }

    fn admit_user_call(&self, view: &ServerView, user: &str) -> Result<(), u64> {
        match &view.user_limiter {
            Some(buckets) => buckets.try_acquire(user),
            None => Ok(()),
        }
    }
}

/// The MCP endpoint's route.
const MCP_ROUTE: &str = "/mcp/{token}";
/// Paths below an endpoint, answered 404.
const BELOW_MCP_ROUTES: [&str; 2] = ["/mcp/{token}/", "/mcp/{token}/{*rest}"];

/// The data plane's routes. Only the MCP endpoint reads a request body, and only after
/// the request has passed every check that needs no body.
pub(crate) fn router(dp: Arc<Dataplane>) -> Router {
    let timeout = dp.config.request_timeout;
    Router::new()
        .route(MCP_ROUTE, any(mcp_endpoint))
        .route(BELOW_MCP_ROUTES[0], any(not_found))
        .route(BELOW_MCP_ROUTES[1], any(not_found))
        .route(auth::METADATA_ROUTE, get(auth::protected_resource))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(dp.clone(), host_check))
        .layer(middleware::from_fn_with_state(timeout, deadline))
        .layer(middleware::from_fn(access_log))
        .with_state(dp)
}

/// Serves until `shutdown` resolves, then lets in-flight requests finish, within the
/// configured connection cap and timeouts.
pub async fn serve(
    listener: tokio::net::TcpListener,
    dp: Arc<Dataplane>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = dp.config.connections;
    let front = Front {
        router: router(dp.clone()),
        dp,
    };
    crate::dataplane::connections::serve(listener, front, limits, shutdown).await
}

/// The data plane's requests: a POST to an MCP endpoint whose path needs no decoding goes
/// straight to the endpoint, with the same host check, deadline and access log line the
/// router's layers give; everything else goes through the router.
#[derive(Clone)]
struct Front {
    dp: Arc<Dataplane>,
    router: Router,
}

impl connections::App for Front {
    fn call(&self, req: Request) -> impl Future<Output = Response> + Send + 'static {
        let direct = (req.method() == Method::POST)
            .then(|| plain_token(req.uri().path()))
            .flatten()
            .map(str::to_string);
        let (dp, router) = (self.dp.clone(), self.router.clone());
        async move {
            match direct {
                Some(token) => mcp_direct(dp, token, req).await,
                None => connections::App::call(&router, req).await,
            }
        }
    }
}

/// The token of an MCP endpoint path that the router would match with `MCP_ROUTE` and
/// hand over unchanged: one non-empty segment after `/mcp/`, with nothing to decode.
fn plain_token(path: &str) -> Option<&str> {
    let token = path.strip_prefix("/mcp/")?;
    (!token.is_empty() && !token.contains(['/', '%'])).then_some(token)
}

/// The MCP endpoint without the router: the layers of [`router`], in their order (access
/// log, deadline, host check), written out.
async fn mcp_direct(dp: Arc<Dataplane>, token: String, req: Request) -> Response {
    let started = Instant::now();
    let resp = if host_allowed(&dp, &req) {
        let guard = started + dp.config.request_timeout + DEADLINE_GRACE;
        mcp_answer(&dp, token, req, started, Some(guard)).await
    } else {
        host_refused()
    };
    log_request(&Method::POST, "/mcp/[token]", &resp, started);
    resp
}

/// When a request started, so the MCP handler can stop at the request's deadline with an
/// answer for its id.
#[derive(Clone, Copy)]
struct Started(Instant);

/// Extra time the outer guard gives the MCP handler to answer its own deadline first.
const DEADLINE_GRACE: Duration = Duration::from_secs(1);

/// Bounds every request, body upload included. The MCP handler answers its own deadline
/// with a JSON-RPC error for the request's id; this guard is the backstop for everything
/// else, and also answers with a JSON-RPC error rather than an empty body.
async fn deadline(State(timeout): State<Duration>, mut req: Request, next: Next) -> Response {
    req.extensions_mut().insert(Started(Instant::now()));
    match tokio::time::timeout(timeout + DEADLINE_GRACE, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => deadline_passed(timeout),
    }
}

/// The deadline guard's answer.
fn deadline_passed(timeout: Duration) -> Response {
    json_error(
        StatusCode::GATEWAY_TIMEOUT,
        code::REQUEST_TIMEOUT,
        &mcp::timeout_message(timeout),
    )
}

async fn not_found() -> Response {
    json_error(StatusCode::NOT_FOUND, code::UNKNOWN_ENDPOINT, "not found")
}

async fn readyz(State(dp): State<Arc<Dataplane>>) -> Response {
    if dp.registry.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "registry not loaded yet\n").into_response()
    }
}

async fn metrics(State(dp): State<Arc<Dataplane>>) -> Response {
    dp.metrics.registry_servers.set(dp.registry.len() as i64);
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        dp.metrics.encode(),
    )
        .into_response()
}

fn json_error(status: StatusCode, c: i64, message: &str) -> Response {
    let body = mcp::error_body(None, c, message, None);
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn host_check(State(dp): State<Arc<Dataplane>>, req: Request, next: Next) -> Response {
    if !host_allowed(&dp, &req) {
        return host_refused();
    }
    next.run(req).await
}

fn host_allowed(dp: &Dataplane, req: &Request) -> bool {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or_default();
    dp.config.host_allowed(host)
}

fn host_refused() -> Response {
    json_error(
        StatusCode::FORBIDDEN,
        code::FORBIDDEN_ORIGIN,
        "Host header not allowed; add it to --allowed-hosts",
    )
}

/// The MCP endpoint. Everything that can refuse a request without its body (token,
/// Origin, expiry, suspension, bearer, method, content type, announced length) is checked
/// before a byte of the body is read, so an unauthenticated client cannot make the server
/// buffer anything.
async fn mcp_endpoint(
    State(dp): State<Arc<Dataplane>>,
    Path(token): Path<String>,
    req: Request,
) -> Response {
    let started = req
        .extensions()
        .get::<Started>()
        .map_or_else(Instant::now, |s| s.0);
    // The deadline layer around this handler bounds the body read.
    mcp_answer(&dp, token, req, started, None).await
}

/// Answers a request to an MCP endpoint that arrived at `started`. `guard` is the
/// deadline layer's limit when no such layer runs around this call: the waits before the
/// handler's own deadline (an OAuth check, the body read) are bounded by it and answered
/// as that layer would.
async fn mcp_answer(
    dp: &Dataplane,
    token: String,
    req: Request,
    started: Instant,
    guard: Option<Instant>,
) -> Response {
    let (parts, body) = req.into_parts();
    let (method, headers) = (parts.method, parts.headers);
    // A refusal sent before the body is read ends the connection (the unread body is not
    // skipped), so it says so: a client that reused the connection for its next request,
    // as an OAuth client does right after a 401, would find it closed.
    let early = |resp: Response| {
        if announces_body(&headers) {
            closing(resp)
        } else {
            resp
        }
    };
    let Some(view) = dp.registry.lookup(&token) else {
        dp.metrics.request(None, Outcome::UnknownToken);
        return early(json_error(
            StatusCode::NOT_FOUND,
            code::UNKNOWN_ENDPOINT,
            "unknown or revoked MCP endpoint; get the current URL from the resource status",
        ));
    };
    let server = Some(&view.id_label);
    if let Some(origin) = headers.get(header::ORIGIN) {
        let allowed = origin.to_str().is_ok_and(|o| dp.config.origin_allowed(o));
        if !allowed {
            dp.metrics.request(server, Outcome::ForbiddenOrigin);
            return early(json_error(
                StatusCode::FORBIDDEN,
                code::FORBIDDEN_ORIGIN,
                "Origin not allowed",
            ));
        }
    }
    if let Err(refusal) = view.admit(Timestamp::now(), bearer(&headers)) {
        dp.metrics.request(server, refusal_outcome(refusal));
        return early(refusal_response(&view, refusal));
    }
    // An OAuth server's access token, checked before anything else is looked at.
    let caller: Option<Caller> = match view.oauth.as_deref() {
        Some(oauth) => {
            let mut checked = pin!(auth::authenticate(dp, &view, oauth, &token, &headers));
            let checked = match (checked.as_mut().now_or_never(), guard) {
                (Some(done), _) => done,
                // A check that has to wait (for the issuer's keys) is bounded like the
                // body read.
                (None, Some(g)) => match tokio::time::timeout_at(g.into(), checked).await {
                    Ok(done) => done,
                    Err(_) => return deadline_passed(dp.config.request_timeout),
                },
                (None, None) => checked.await,
            };
            match checked {
                Ok(caller) => Some(caller),
                Err((resp, outcome)) => {
                    dp.metrics.request(server, outcome);
                    return early(resp);
                }
            }
        }
        None => None,
    };
    if method != Method::POST {
        dp.metrics.request(server, Outcome::MethodNotAllowed);
        let mut resp = json_error(
            StatusCode::METHOD_NOT_ALLOWED,
            code::INVALID_REQUEST,
            "this endpoint takes POST only (no SSE stream, no sessions)",
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return early(resp);
    }
    if let Some(resp) = check_content_type(&headers) {
        dp.metrics.request(server, Outcome::UnsupportedMediaType);
        return early(resp);
    }
    let body = match read_body(&dp.config, &headers, body, guard).await {
        Ok(body) => body,
        Err(BodyRefusal::Guard) => return deadline_passed(dp.config.request_timeout),
        Err(BodyRefusal::Answer(resp, outcome)) => {
            dp.metrics.request(server, outcome);
            return resp;
        }
    };
    let handled = mcp::handle(
        mcp::Request {
            view: &view,
            headers: &headers,
            body: &body,
            identity: &dp.identity,
            caller: caller.as_ref(),
            trace: dp.tracing.as_deref().map(|tracing| mcp::TraceStart {
                tracing,
                received: started,
                http_version: parts.version,
            }),
        },
        dp,
        dp,
    );
    let timeout = dp.config.request_timeout;
    let mut reply = tokio::time::timeout_at((started + timeout).into(), handled)
        .await
        .unwrap_or_else(|_| mcp::timed_out_operation(&body, &headers, &view, timeout));
    let user = caller.as_ref().and_then(|c| c.user.as_deref());
    record(dp, &view.id_label, user, started, &mut reply);
    into_response(reply, &headers)
}

/// Why a body was not had.
enum BodyRefusal {
    /// The answer to give, and the outcome to count.
    Answer(Response, Outcome),
    /// The request's guard deadline passed first.
    Guard,
}

/// Reads a request body of at most `max_body_bytes` within the body-read timeout (and
/// before `guard`, when given). A body announced larger than the limit is refused before
/// any of it is read; every refusal closes the connection, since the rest of the body is
/// never read. A body that is already in (the usual case) is taken without setting a
/// timer.
async fn read_body(
    config: &DataplaneConfig,
    headers: &HeaderMap,
    body: Body,
    guard: Option<Instant>,
) -> Result<Bytes, BodyRefusal> {
    let limit = config.max_body_bytes;
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        let (resp, outcome) = body_too_large(limit);
        return Err(BodyRefusal::Answer(resp, outcome));
    }
    let timeout = config.connections.body_read_timeout;
    let mut collect = pin!(collect_body(body, limit));
    let collected = match collect.as_mut().now_or_never() {
        Some(done) => Ok(done),
        None => {
            let body_deadline = Instant::now() + timeout;
            match guard.filter(|g| *g < body_deadline) {
                Some(g) => match tokio::time::timeout_at(g.into(), collect).await {
                    Ok(done) => Ok(done),
                    Err(_) => return Err(BodyRefusal::Guard),
                },
                None => tokio::time::timeout_at(body_deadline.into(), collect).await,
            }
        }
    };
    let refusal = match collected {
        Ok(Ok(bytes)) => return Ok(bytes),
        Ok(Err(BodyError::TooLarge)) => body_too_large(limit),
        Ok(Err(BodyError::Unreadable)) => (
            closing(json_error(
                StatusCode::BAD_REQUEST,
                code::INVALID_REQUEST,
                "the request body could not be read",
            )),
            Outcome::BodyUnreadable,
        ),
        Err(_) => (
            closing(json_error(
                StatusCode::REQUEST_TIMEOUT,
                code::INVALID_REQUEST,
                &format!(
                    "the request body did not arrive within {}s of its headers; send the whole request at once",
                    timeout.as_secs_f64()
                ),
            )),
            Outcome::BodyTimeout,
        ),
    };
    Err(BodyRefusal::Answer(refusal.0, refusal.1))
}

/// Why a body could not be had.
enum BodyError {
    /// More than the limit arrived.
    TooLarge,
    /// The body broke off or was malformed (a bad chunk, a reset connection).
    Unreadable,
}

/// Collects a body of at most `limit` bytes. A body that arrives in one piece is kept as
/// it is, without a copy; nothing is allocated ahead of what actually arrives.
async fn collect_body(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut chunks = body.into_data_stream();
    let mut first: Option<Bytes> = None;
    let mut joined: Vec<u8> = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| BodyError::Unreadable)?;
        let so_far = first.as_ref().map_or(joined.len(), Bytes::len);
        if so_far + chunk.len() > limit {
            return Err(BodyError::TooLarge);
        }
        match first.take() {
            None if joined.is_empty() => first = Some(chunk),
            None => joined.extend_from_slice(&chunk),
            Some(f) => {
                joined.reserve(f.len() + chunk.len());
                joined.extend_from_slice(&f);
                joined.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| Bytes::from(joined)))
}

/// 413, as a JSON-RPC error naming the limit.
fn body_too_large(limit: usize) -> (Response, Outcome) {
    let message = format!(
        "the request body is larger than this MCP server accepts ({limit} bytes, set by --max-body-bytes)"
    );
    (
        closing(json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::INVALID_REQUEST,
            &message,
        )),
        Outcome::BodyTooLarge,
    )
}

/// Marks an answer as the last on its connection.
fn closing(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Whether a request has a body: a `Transfer-Encoding`, or a `Content-Length` other than 0.
fn announces_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.to_str().map_or(true, |n| n.trim() != "0"))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn refusal_outcome(r: Refusal) -> Outcome {
    match r {
        Refusal::Expired => Outcome::Expired,
        Refusal::Suspended => Outcome::Suspended,
        Refusal::BearerMissing | Refusal::BearerInvalid => Outcome::Unauthorized,
    }
}

fn refusal_response(view: &ServerView, r: Refusal) -> Response {
    match r {
        Refusal::Expired => {
            let at = view.expires_at.map(|t| t.to_string()).unwrap_or_default();
            json_error(
                StatusCode::FORBIDDEN,
                code::EXPIRED,
                &format!("this MCP server expired at {at}; ask its owner to extend spec.expiresAt"),
            )
        }
        Refusal::Suspended => json_error(
            StatusCode::FORBIDDEN,
            code::SUSPENDED,
            "this MCP server is suspended (spec.suspend is true)",
        ),
        Refusal::BearerMissing | Refusal::BearerInvalid => {
            let (challenge, message) = if r == Refusal::BearerMissing {
                (
                    r#"Bearer realm="atomicwork-mcp""#,
                    "this MCP server requires Authorization: Bearer <token>",
                )
            } else {
                (
                    r#"Bearer realm="atomicwork-mcp", error="invalid_token""#,
                    "the bearer token is not accepted by this MCP server",
                )
            };
            let mut resp = json_error(StatusCode::UNAUTHORIZED, code::UNAUTHORIZED, message);
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
            resp
        }
    }
}

fn check_content_type(headers: &HeaderMap) -> Option<Response> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = ct.split(';').next().unwrap_or_default().trim();
    if essence.eq_ignore_ascii_case("application/json") {
        None
    } else {
        Some(json_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::INVALID_REQUEST,
            "Content-Type must be application/json",
        ))
    }
}

/// Counts the request and, for a tool call, takes its record for the call metrics and the
/// audit log (which names the OAuth caller's user; metrics never do); the tool name moves
/// from the record to the labels without a copy.
fn record(
    dp: &Dataplane,
    server: &Arc<str>,
    user: Option<&str>,
    started: Instant,
    reply: &mut Reply,
) {
    dp.metrics.request(Some(server), reply.outcome);
    let trace = reply.op.as_ref().and_then(|op| op.trace);
    if let Some(op) = &reply.op {
        dp.metrics.operation(op, started.elapsed().as_secs_f64());
    }
    let Some(call) = reply.call.take() else {
        return;
    };
    let labels = CallLabels {
        server: server.clone(),
        tool: call.tool,
        outcome: call.outcome.label(),
    };
    dp.metrics.tool_calls.get_or_create(&labels).inc();
    let tool = ToolLabels { tool: labels.tool };
    if call.attempts > 0 {
        dp.metrics
            .upstream_latency
            .get_or_create(&tool)
            .observe(call.upstream_latency.as_secs_f64());
    }
    tracing::info!(
        target: "atomicwork_mcp::audit",
        server = %server,
        tool = %tool.tool,
        outcome = call.outcome.label(),
        upstream_status = call.upstream_status,
        upstream_latency_ms = call.upstream_latency.as_millis() as u64,
        attempts = call.attempts,
        client = call.client.as_deref().unwrap_or(""),
        user = user.unwrap_or(""),
        // Written only when the request is traced.
        trace_id = trace.map(|t| tracing::field::display(t.trace_id)),
        span_id = trace.map(|t| tracing::field::display(t.span_id)),
        "tool call"
    );
}

/// JSON unless the client accepts only an event stream, then one SSE event.
fn into_response(reply: Reply, request_headers: &HeaderMap) -> Response {
    let trace = reply.op.as_ref().and_then(|op| op.trace);
    let Reply {
        status,
        mut headers,
        body,
        ..
    } = reply;
    let accept = request_headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("*/*");
    let wants_sse_only = accept.contains("text/event-stream")
        && !accept.contains("application/json")
        && !accept.contains("*/*");
    let body = match body {
        Some(bytes) if wants_sse_only => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/event-stream"),
            );
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            let mut framed = Vec::with_capacity(bytes.len() + 24);
            framed.extend_from_slice(b"event: message\ndata: ");
            framed.extend_from_slice(&bytes);
            framed.extend_from_slice(b"\n\n");
            Body::from(framed)
        }
        Some(bytes) => Body::from(bytes),
        None => Body::empty(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().extend(headers);
    if let Some(ids) = trace {
        // For the access log line.
        resp.extensions_mut().insert(ids);
    }
    resp
}

/// One line per request; the URL token is never written.
async fn access_log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = logged_path(&req);
    let started = Instant::now();
    let resp = next.run(req).await;
    log_request(&method, &path, &resp, started);
    resp
}

/// The access log line of one request.
fn log_request(method: &Method, path: &str, resp: &Response, started: Instant) {
    let trace = resp.extensions().get::<TraceIds>();
    tracing::info!(
        target: "atomicwork_mcp::access",
        method = %method,
        path = %path,
        status = resp.status().as_u16(),
        latency_ms = started.elapsed().as_millis() as u64,
        // Written only when the request is traced.
        trace_id = trace.map(|t| tracing::field::display(t.trace_id)),
        span_id = trace.map(|t| tracing::field::display(t.span_id)),
        "request"
    );
}

/// The path as logged: the template of the route it matched, with `[token]` for the URL
/// token, and never the query. A path that matched no route is logged only by its
/// length, since any part of it could be a token in a form no rule foresees.
fn logged_path(req: &Request) -> Cow<'static, str> {
    match req
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str)
    {
        Some(MCP_ROUTE) => Cow::Borrowed("/mcp/[token]"),
        Some(auth::METADATA_ROUTE) => {
            Cow::Borrowed("/.well-known/oauth-protected-resource/mcp/[token]")
        }
        Some(route) if BELOW_MCP_ROUTES.contains(&route) => Cow::Borrowed("/mcp/[token]/[…]"),
        // The other routes are fixed paths.
        Some(route) => Cow::Owned(route.to_string()),
        None => {
            let length = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
            Cow::Owned(format!("[no route; {length} bytes]"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a path the router would hand to the endpoint unchanged takes the direct way:
    /// one non-empty segment after `/mcp/`, with nothing to percent-decode.
    #[test]
    fn only_plain_endpoint_paths_skip_the_router() {
        assert_eq!(plain_token("/mcp/abc-DEF_123"), Some("abc-DEF_123"));
        for path in [
            "/mcp/",
            "/mcp",
            "/mcp/abc/",
            "/mcp/abc/tools",
            "/mcp/a%62c",
            "/healthz",
            "/metrics",
            "/MCP/abc",
            "//mcp/abc",
        ] {
            assert_eq!(plain_token(path), None, "{path}");
        }
    }
}
