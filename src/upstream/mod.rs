//! The upstream client: one tool call becomes one Atomicwork REST call (or a few, for read
//! tools with an opt-in retry policy), and the answer becomes an MCP tool result.
//!
//! `Upstream::call` never fails: arguments that cannot form a request, rate limits,
//! upstream errors and network trouble all become error results whose text tells the model
//! what happened and what to do next. The API key is attached only when the request is
//! sent, and any echo of it in an answer is replaced by `[redacted]` before anything is
//! cut to a size limit.

pub mod client;
mod multipart;
mod ratelimit;
mod redact;
mod request;
mod response;
#[cfg(test)]
mod tests;
mod trace;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_TYPE, LOCATION};
use http::{HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use serde_json::{Map, Value, json};

pub(crate) use crate::core::catalog::HttpMethod;
use crate::core::catalog::Tool;
use crate::core::secret::Secret;
use crate::core::server::{RetryPolicy, Target};
use crate::core::tool_result::ToolResult;
pub(crate) use ratelimit::RateLimitInfo;
/// The longest request URL, which the fuzz harness holds every built request to.
#[cfg(any(test, feature = "fuzzing"))]
pub(crate) use request::MAX_URL_BYTES;
pub(crate) use request::{BuildError, PreparedBody, PreparedRequest, build_request};

/// Cuts `text` to at most `max_chars` characters, ending with a note that says how long
/// it was (for texts that hold no API key, such as protocol error messages).
pub(crate) fn cap_text(text: &mut String, max_chars: usize) {
    response::cap_text(text, max_chars, Redactor::default());
}
use client::{ClientError, ClientSettings, HttpClient};
use redact::Redactor;
use response::{CallContext, Paging, TransportKind};

/// The header that carries the API key.
const X_API_KEY: http::HeaderName = http::HeaderName::from_static("x-api-key");
/// The header that names the workspace of a request.
const X_WORKSPACE_ID: http::HeaderName = http::HeaderName::from_static("x-workspace-id");
/// `Accept` and `Content-Type` of JSON requests.
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// `User-Agent` of every upstream request.
pub(crate) const USER_AGENT: &str = concat!("atomicwork-mcp-operator/", env!("CARGO_PKG_VERSION"));
/// [`USER_AGENT`] as a header value.
const USER_AGENT_VALUE: HeaderValue = HeaderValue::from_static(USER_AGENT);

/// First step of the exponential backoff between retries.
const BACKOFF_BASE: Duration = Duration::from_millis(200);

/// Process-wide limits of the upstream client.
#[derive(Debug, Clone)]
pub struct UpstreamOptions {
    /// Timeout of one call when the target sets none.
    pub(crate) default_timeout: Duration,
    /// Largest single uploaded file, in bytes.
    pub(crate) max_file_bytes: usize,
    /// Largest total of uploaded files in one call, in bytes.
    pub(crate) max_upload_bytes: usize,
}

impl Default for UpstreamOptions {
    fn default() -> Self {
        UpstreamOptions {
            default_timeout: Duration::from_secs(30),
            max_file_bytes: 10 * 1024 * 1024,
            max_upload_bytes: 25 * 1024 * 1024,
        }
    }
}

/// The result of one tool call plus what the data plane records about it.
#[derive(Debug, Clone)]
pub struct CallOutcome {
    pub(crate) result: ToolResult,
    /// HTTP status of the last upstream answer, if one arrived.
    pub(crate) upstream_status: Option<u16>,
    /// Normalised rate-limit headers of the last answer, for the data plane's response.
    pub(crate) rate_limit: Option<RateLimitInfo>,
    pub(crate) class: OutcomeClass,
    /// Requests sent (0 when nothing was sent).
    pub(crate) attempts: u32,
    /// Time spent waiting for Atomicwork, summed over attempts (backoff sleeps excluded).
    pub(crate) upstream_latency: Duration,
}

/// How a call ended, for metrics and audit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum OutcomeClass {
    Ok,
    DryRun,
    /// The arguments could not form a request; nothing was sent.
    InvalidArguments,
    /// The server's own settings (base URL, API key) are unusable; nothing was sent.
    Config,
    /// The caller's OAuth token lacks the scopes the tool needs; nothing was sent.
    InsufficientScope,
    RateLimited,
    /// Any other 4xx.
    ClientError,
    /// 5xx.
    ServerError,
    Timeout,
    Connect,
    Tls,
    /// Unreadable answer, redirect or unexpected status.
    Protocol,
    /// The call needed a person's approval and did not get it; nothing was sent.
    NotApproved,
}

impl OutcomeClass {
    /// The snake_case metric label.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            OutcomeClass::Ok => "ok",
            OutcomeClass::DryRun => "dry_run",
            OutcomeClass::InvalidArguments => "invalid_arguments",
            OutcomeClass::Config => "config",
            OutcomeClass::InsufficientScope => "insufficient_scope",
            OutcomeClass::RateLimited => "rate_limited",
            OutcomeClass::ClientError => "client_error",
            OutcomeClass::ServerError => "server_error",
            OutcomeClass::Timeout => "timeout",
            OutcomeClass::Connect => "connect",
            OutcomeClass::Tls => "tls",
            OutcomeClass::Protocol => "protocol",
            OutcomeClass::NotApproved => "not_approved",
        }
    }

    fn of_status(status: u16) -> Self {
        match status {
            200..=299 => OutcomeClass::Ok,
            429 => OutcomeClass::RateLimited,
            400..=499 => OutcomeClass::ClientError,
            500..=599 => OutcomeClass::ServerError,
            _ => OutcomeClass::Protocol,
        }
    }

    fn of_transport(kind: TransportKind) -> Self {
        match kind {
            TransportKind::Timeout => OutcomeClass::Timeout,
            TransportKind::Connect { .. } => OutcomeClass::Connect,
            TransportKind::Tls => OutcomeClass::Tls,
            TransportKind::Protocol => OutcomeClass::Protocol,
        }
    }
}

/// The upstream client could not be created.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot create the HTTP client: {0}")]
    Client(String),
}

/// The shared upstream client: one connection pool for every server and call.
#[derive(Debug, Clone)]
pub struct Upstream {
    client: HttpClient,
    opts: UpstreamOptions,
    /// Traces each HTTP request, when traces are exported.
    tracing: Option<std::sync::Arc<crate::telemetry::Tracing>>,
}

impl Upstream {
    /// Builds the shared client: pooled connections, HTTP/2 when the server offers it
    /// (ALPN), gzip, a connect timeout, and no redirects (a redirect would carry the API
    /// key to wherever it points).
    pub fn new(opts: UpstreamOptions) -> Result<Self, UpstreamError> {
        Self::with_client(opts, &ClientSettings::default())
    }

    /// [`Upstream::new`] with other client settings (proxies, trusted roots).
    pub(crate) fn with_client(
        opts: UpstreamOptions,
        settings: &ClientSettings,
    ) -> Result<Self, UpstreamError> {
        let client =
            HttpClient::new(settings).map_err(|e| UpstreamError::Client(root_cause(&e)))?;
        Ok(Upstream {
            client,
            opts,
            tracing: None,
        })
    }

    /// Gives each HTTP request a client span under the current trace context, and sends
    /// Atomicwork its `traceparent`.
    pub(crate) fn with_tracing(
        mut self,
        tracing: std::sync::Arc<crate::telemetry::Tracing>,
    ) -> Self {
        self.tracing = Some(tracing);
        self
    }

    /// Runs one tool call. Never fails: every problem becomes an error result with an
    /// actionable message.
    pub(crate) async fn call(
        &self,
        tool: &Tool,
        args: &Map<String, Value>,
        target: &Target,
    ) -> CallOutcome {
        let mut outcome = self.run(tool, args, target).await;
        let key = target.api_key.expose();
        outcome.result.redact(key);
        outcome.result.cap_error_text(key);
        if let Some(notice) = &target.notice {
            outcome.result.content.insert(0, notice.to_string());
        }
        tracing::debug!(
            tool = tool.name(),
            class = outcome.class.label(),
            status = ?outcome.upstream_status,
            attempts = outcome.attempts,
            latency_ms = outcome.upstream_latency.as_millis() as u64,
            "upstream call finished"
        );
        outcome
    }

    async fn run(&self, tool: &Tool, args: &Map<String, Value>, target: &Target) -> CallOutcome {
        let prepared = build_request(tool, args, target)
            .and_then(|p| multipart::check_limits(&p.body, &self.opts).map(|()| p));
        let prepared = match prepared {
            Ok(p) => p,
            Err(e) => return not_sent(tool, &e),
        };
        if target.dry_run && !tool.is_read() {
            return dry_run(&prepared);
        }
        let key = match api_key_header(&target.api_key) {
            Ok(k) => k,
            Err(message) => return local_failure(tool, OutcomeClass::Config, message),
        };
        self.execute(tool, &prepared, target, &key).await
    }

    async fn execute(
        &self,
        tool: &Tool,
        prepared: &PreparedRequest,
        target: &Target,
        key: &HeaderValue,
    ) -> CallOutcome {
        let timeout = target.timeout.unwrap_or(self.opts.default_timeout);
        let policy = target.retry.filter(|_| tool.is_read());
        let max_attempts = policy.map_or(1, |p| p.max_attempts.max(1));
        let mut attempts = 0;
        let mut latency = Duration::ZERO;
        loop {
            attempts += 1;
            let started = Instant::now();
            let attempt = match self.tracing.as_deref() {
                None => self.send(prepared, key, timeout, &[]).await,
                Some(t) => {
                    let (span, headers) = trace::start_attempt(t, tool, prepared, target, attempts);
                    let attempt = self.send(prepared, key, timeout, &headers).await;
                    trace::end_attempt(span, attempt.status(), attempt.failure());
                    attempt
                }
            };
            latency += started.elapsed();
            let wait = policy
                .filter(|_| attempts < max_attempts)
                .and_then(|p| retry_wait(&attempt, p, attempts));
            if let Some(wait) = wait {
                tracing::info!(
                    tool = tool.name(),
                    attempt = attempts,
                    wait_ms = wait.as_millis() as u64,
                    reason = attempt.describe(),
                    "retrying upstream call"
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            let ctx = CallContext {
                tool,
                method: prepared.method,
                path: &prepared.path,
                workspace: prepared.workspace.as_deref(),
                paging: Paging::of(tool, &prepared.query),
                max_chars: target.max_result_chars.max(1),
                attempts,
                timeout,
                redactor: Redactor::new(target.api_key.expose()),
            };
            let mut outcome = finish(&ctx, attempt, target.base_url.authority());
            outcome.attempts = attempts;
            outcome.upstream_latency = latency;
            return outcome;
        }
    }

    /// One HTTP exchange, body included: one attempt of a call; `extra` are further
    /// headers (trace context).
    async fn send(
        &self,
        p: &PreparedRequest,
        key: &HeaderValue,
        timeout: Duration,
        extra: &[(http::HeaderName, HeaderValue)],
    ) -> Attempt {
        let req = match http_request(p, key, extra) {
            Ok(r) => r,
            Err(Unsendable::Invalid(e)) => return Attempt::Failed(e),
            Err(Unsendable::Body(e)) => return Attempt::NotSent(e),
        };
        match self.client.send(req, timeout).await {
            Err(e) => Attempt::Failed(e),
            Ok(answer) => {
                let status = answer.status.as_u16();
                let rate =
                    RateLimitInfo::from_response(status, &answer.headers, jiff::Timestamp::now());
                Attempt::Answered {
                    status,
                    headers: answer.headers,
                    rate,
                    body: answer.body,
                }
            }
        }
    }
}

/// Why a prepared request could not become an HTTP request.
enum Unsendable {
    /// The HTTP layer refuses the URL or a header value.
    Invalid(ClientError),
    /// The body could not be encoded.
    Body(BuildError),
}

/// The HTTP request of one attempt, with the API key.
fn http_request(
    p: &PreparedRequest,
    key: &HeaderValue,
    extra: &[(http::HeaderName, HeaderValue)],
) -> Result<Request<Full<Bytes>>, Unsendable> {
    let uri = Uri::try_from(p.url.as_str())
        .map_err(|e| Unsendable::Invalid(ClientError::invalid_request(e.into())))?;
    let (content_type, body) = match &p.body {
        PreparedBody::None => (None, Bytes::new()),
        PreparedBody::Json(v) => (Some(APPLICATION_JSON), Bytes::from(v.to_string())),
        PreparedBody::Multipart { fields, files } => {
            let (ct, bytes) = multipart::encode(fields, files).map_err(Unsendable::Body)?;
            (Some(ct), bytes)
        }
    };
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = http_method(p.method);
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    headers.insert(http::header::USER_AGENT, USER_AGENT_VALUE);
    headers.insert(X_API_KEY, key.clone());
    headers.insert(ACCEPT, APPLICATION_JSON);
    if let Some(ws) = &p.workspace {
        let value = HeaderValue::from_str(ws)
            .map_err(|e| Unsendable::Invalid(ClientError::invalid_request(e.into())))?;
        headers.insert(X_WORKSPACE_ID, value);
    }
    if let Some(ct) = content_type {
        headers.insert(CONTENT_TYPE, ct);
    }
    for (name, value) in extra {
        headers.insert(name, value.clone());
    }
    Ok(req)
}

/// What one send produced.
enum Attempt {
    Answered {
        status: u16,
        headers: http::HeaderMap,
        /// Rate-limit headers, read when the answer arrived.
        rate: Option<RateLimitInfo>,
        body: Result<Bytes, ClientError>,
    },
    Failed(ClientError),
    NotSent(BuildError),
}

impl Attempt {
    /// The answer's status, when one came.
    fn status(&self) -> Option<u16> {
        match self {
            Attempt::Answered { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// What went wrong in transport, as a trace's `error.type` names it.
    fn failure(&self) -> Option<&'static str> {
        match self {
            Attempt::Answered { body: Err(_), .. } => Some("protocol"),
            Attempt::Answered { .. } => None,
            Attempt::Failed(e) => Some(match classify(e) {
                TransportKind::Timeout => "timeout",
                TransportKind::Connect { .. } => "connect",
                TransportKind::Tls => "tls",
                TransportKind::Protocol => "protocol",
            }),
            Attempt::NotSent(_) => Some("not_sent"),
        }
    }

    fn describe(&self) -> String {
        match self {
            Attempt::Answered {
                status,
                body: Ok(_),
                ..
            } => format!("HTTP {status}"),
            Attempt::Answered {
                status,
                body: Err(e),
                ..
            } => {
                format!("HTTP {status}, body unreadable: {}", root_cause(e))
            }
            Attempt::Failed(e) => root_cause(e),
            Attempt::NotSent(e) => e.to_string(),
        }
    }
}

/// The wait before the next attempt, or `None` to stop. Retries 429, 502, 503 and 504
/// answers, timeouts and connection failures; `Retry-After` is honoured, and one longer
/// than `max_backoff` stops the retries.
fn retry_wait(attempt: &Attempt, policy: RetryPolicy, attempt_no: u32) -> Option<Duration> {
    let retryable = match attempt {
        Attempt::Answered {
            status,
            body: Ok(_),
            ..
        } => matches!(status, 429 | 502 | 503 | 504),
        Attempt::Answered { body: Err(e), .. } => e.is_timeout(),
        Attempt::Failed(e) => matches!(
            classify(e),
            TransportKind::Timeout | TransportKind::Connect { .. }
        ),
        Attempt::NotSent(_) => false,
    };
    if !retryable {
        return None;
    }
    if let Attempt::Answered {
        rate: Some(rate), ..
    } = attempt
        && let Some(secs) = rate.wait_seconds()
    {
        let wait = Duration::from_secs(secs);
        return (wait <= policy.max_backoff).then_some(wait);
    }
    Some(backoff(attempt_no, policy.max_backoff))
}

/// Full jitter: a uniform wait in `[0, min(max, base * 2^(n-1))]`.
fn backoff(attempt_no: u32, max: Duration) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt_no.saturating_sub(1).min(16));
    let cap_ms = exp.min(max).as_millis() as u64;
    let jitter = match getrandom::u64() {
        Ok(r) => r % (cap_ms + 1),
        Err(_) => cap_ms / 2,
    };
    Duration::from_millis(jitter)
}

/// Turns the last attempt into the call's outcome.
fn finish(ctx: &CallContext<'_>, attempt: Attempt, host: &str) -> CallOutcome {
    match attempt {
        Attempt::NotSent(e) => not_sent(ctx.tool, &e),
        Attempt::Failed(e) => {
            let kind = classify(&e);
            let result = response::transport_failure(ctx, kind, host, &root_cause(&e));
            outcome(result, OutcomeClass::of_transport(kind), None, None)
        }
        Attempt::Answered {
            status,
            headers,
            rate,
            body,
        } => {
            let body = match body {
                Ok(b) => b,
                Err(e) => {
                    let kind = if e.is_timeout() {
                        TransportKind::Timeout
                    } else {
                        TransportKind::Protocol
                    };
                    let result = response::transport_failure(ctx, kind, host, &root_cause(&e));
                    return outcome(result, OutcomeClass::of_transport(kind), Some(status), rate);
                }
            };
            let result = if (200..300).contains(&status) {
                let content_type = header_text(&headers, CONTENT_TYPE);
                response::success(ctx, status, content_type, &body)
            } else {
                let location = headers.get(LOCATION).and_then(|v| v.to_str().ok());
                response::http_failure(ctx, status, &body, rate.as_ref(), location)
            };
            outcome(result, OutcomeClass::of_status(status), Some(status), rate)
        }
    }
}

fn outcome(
    result: ToolResult,
    class: OutcomeClass,
    upstream_status: Option<u16>,
    rate_limit: Option<RateLimitInfo>,
) -> CallOutcome {
    CallOutcome {
        result,
        upstream_status,
        rate_limit,
        class,
        attempts: 0,
        upstream_latency: Duration::ZERO,
    }
}

fn local_failure(tool: &Tool, class: OutcomeClass, message: String) -> CallOutcome {
    let text = format!(
        "{} failed: nothing was sent to Atomicwork: {message}",
        tool.name()
    );
    outcome(ToolResult::error(text), class, None, None)
}

/// A request the arguments could not form: only the caller can fix it.
fn not_sent(tool: &Tool, e: &BuildError) -> CallOutcome {
    let message = format!("invalid arguments: {e}. Fix the arguments and call again.");
    local_failure(tool, OutcomeClass::InvalidArguments, message)
}

/// Longest body summary shown in an approval request, in characters.
const APPROVAL_BODY_CHARS: usize = 1_500;

/// What a person approving a call is shown: the HTTP method and path, the query and a
/// summary of the body, exactly as the call would send them, with the API key redacted
/// (should an argument hold it) and file contents left out (names, types and sizes only).
/// `Err` says why the call could not be built; the caller then runs it to report that.
pub(crate) fn approval_summary(
    tool: &Tool,
    args: &Map<String, Value>,
    target: &Target,
) -> Result<String, String> {
    let p = build_request(tool, args, target).map_err(|e| e.to_string())?;
    let mut text = format!("{} {}", p.method.as_str(), p.path);
    if !p.query.is_empty() {
        let query: Vec<String> = p.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        text.push_str(&format!("\nQuery: {}", query.join("&")));
    }
    if let Some(ws) = &p.workspace {
        text.push_str(&format!("\nWorkspace: {ws}"));
    }
    let body = match &p.body {
        PreparedBody::None => None,
        PreparedBody::Json(v) => Some(serde_json::to_string_pretty(v).unwrap_or_default()),
        PreparedBody::Multipart { fields, files } => Some(
            serde_json::to_string_pretty(&multipart::describe(fields, files)).unwrap_or_default(),
        ),
    };
    // The key is removed before the body is cut, so no part of it survives the cut.
    let redactor = Redactor::new(target.api_key.expose());
    let mut text = redactor.text(&text).into_owned();
    if let Some(body) = body {
        let mut body = redactor.text(&body).into_owned();
        response::cap_text(&mut body, APPROVAL_BODY_CHARS, redactor);
        text.push_str("\nBody:\n");
        text.push_str(&body);
    }
    Ok(text)
}

/// The request a write would send, with the API key redacted and file bytes left out.
fn dry_run(p: &PreparedRequest) -> CallOutcome {
    let mut headers = Map::new();
    headers.insert("X-Api-Key".into(), json!("[redacted]"));
    headers.insert("Accept".into(), json!("application/json"));
    headers.insert("User-Agent".into(), json!(USER_AGENT));
    if let Some(ws) = &p.workspace {
        headers.insert("X-Workspace-Id".into(), json!(ws));
    }
    let body = match &p.body {
        PreparedBody::None => Value::Null,
        PreparedBody::Json(v) => {
            headers.insert("Content-Type".into(), json!("application/json"));
            v.clone()
        }
        PreparedBody::Multipart { fields, files } => {
            headers.insert("Content-Type".into(), json!("multipart/form-data"));
            multipart::describe(fields, files)
        }
    };
    let query: Vec<Value> = p.query.iter().map(|(k, v)| json!([k, v])).collect();
    let view = json!({
        "dry_run": true,
        "message": "Dry run: nothing was sent to Atomicwork. This is the request that would have been sent.",
        "request": {
            "method": p.method.as_str(),
            "url": p.url,
            "path": p.path,
            "query": query,
            "workspace": p.workspace,
            "headers": headers,
            "body": body,
        }
    });
    let text = view.to_string();
    let structured = response::json_copy(&text);
    let result = ToolResult::ok(vec![text], structured);
    outcome(result, OutcomeClass::DryRun, None, None)
}

fn api_key_header(key: &Secret) -> Result<HeaderValue, String> {
    let value = key.expose().trim();
    if value.is_empty() {
        return Err("no Atomicwork API key is configured for this server; the operator must set the API key Secret \
                    (spec.atomicwork.apiKeySecretRef)"
            .into());
    }
    let mut header = HeaderValue::from_str(value).map_err(|_| {
        "the Atomicwork API key contains characters that cannot be sent in an HTTP header; the operator must fix the \
         API key Secret (spec.atomicwork.apiKeySecretRef)"
            .to_string()
    })?;
    header.set_sensitive(true);
    Ok(header)
}

fn http_method(m: HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::GET,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
    }
}

fn header_text(h: &http::HeaderMap, name: http::HeaderName) -> &str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

fn classify(e: &ClientError) -> TransportKind {
    if e.is_timeout() {
        return TransportKind::Timeout;
    }
    if is_tls(e) {
        return TransportKind::Tls;
    }
    match e.kind() {
        client::ErrorKind::Connect => TransportKind::Connect { sent: false },
        client::ErrorKind::Request => TransportKind::Connect { sent: true },
        client::ErrorKind::Timeout => TransportKind::Timeout,
        client::ErrorKind::Body | client::ErrorKind::Decode | client::ErrorKind::Builder => {
            TransportKind::Protocol
        }
    }
}

fn is_tls(e: &ClientError) -> bool {
    client::chain(e).iter().any(|err| {
        err.downcast_ref::<rustls::Error>().is_some() || {
            let text = err.to_string().to_ascii_lowercase();
            text.contains("certificate") || text.contains("tls handshake")
        }
    })
}

/// The innermost cause, which names the actual problem (e.g. "Connection refused").
fn root_cause(e: &ClientError) -> String {
    client::chain(e)
        .last()
        .map(|err| err.to_string())
        .unwrap_or_else(|| e.to_string())
}
