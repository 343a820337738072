//! MCP over Streamable HTTP for one server's request: JSON-RPC parsing, protocol revision
//! handling (initialize-based 2025-03-26 … 2025-11-25 and stateless 2026-07-28), and the
//! methods a tools-only server answers. Nothing is remembered between requests, so any
//! replica can answer any request.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use crate::core::catalog::Tool;
use crate::core::server::{Exposure, ServerView};
use crate::core::tool_result::ToolResult;
use crate::discovery;
use crate::upstream::{CallOutcome, OutcomeClass, RateLimitInfo};

/// Revisions answered through `initialize`, oldest first.
pub const LEGACY_VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The stateless revision.
pub const STATELESS_VERSION: &str = "2026-07-28";
/// Every revision served, oldest first.
pub const SUPPORTED_VERSIONS: [&str; 5] = [
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    STATELESS_VERSION,
];
/// Assumed when a legacy client sends no `MCP-Protocol-Version` header.
pub const DEFAULT_LEGACY_VERSION: &str = "2025-03-26";

pub const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

pub const HEADER_PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub const HEADER_METHOD: &str = "mcp-method";
pub const HEADER_NAME: &str = "mcp-name";

/// JSON-RPC error codes used here.
pub mod code {
    pub const PARSE_ERROR: i64 = -32700;
    pub const INVALID_REQUEST: i64 = -32600;
    pub const METHOD_NOT_FOUND: i64 = -32601;
    pub const INVALID_PARAMS: i64 = -32602;
    pub const INTERNAL_ERROR: i64 = -32603;
    pub const HEADER_MISMATCH: i64 = -32020;
    pub const MISSING_CLIENT_CAPABILITY: i64 = -32021;
    pub const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// Application codes (outside the reserved range) for access refusals.
    pub const UNKNOWN_ENDPOINT: i64 = -31000;
    pub const EXPIRED: i64 = -31001;
    pub const SUSPENDED: i64 = -31002;
    pub const UNAUTHORIZED: i64 = -31003;
    pub const RATE_LIMITED: i64 = -31004;
    pub const FORBIDDEN_ORIGIN: i64 = -31005;
    pub const REQUEST_TIMEOUT: i64 = -31006;
}

/// An HTTP answer to one MCP POST.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Option<Bytes>,
    /// What happened, for metrics and the access log.
    pub outcome: &'static str,
    /// Set for `tools/call`: what the call did, for the audit log.
    pub call: Option<CallRecord>,
}

/// One tool call, as the audit log and metrics see it (no argument values).
#[derive(Debug, Clone)]
pub struct CallRecord {
    pub tool: String,
    pub outcome: &'static str,
    pub upstream_status: Option<u16>,
    pub upstream_latency: std::time::Duration,
    pub attempts: u32,
    pub client: Option<String>,
}

impl Reply {
    fn json(status: StatusCode, body: Vec<u8>, outcome: &'static str) -> Self {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        Reply {
            status,
            headers,
            body: Some(Bytes::from(body)),
            outcome,
            call: None,
        }
    }

    /// 202 Accepted with no body (notifications and client responses).
    pub fn accepted() -> Self {
        Reply {
            status: StatusCode::ACCEPTED,
            headers: HeaderMap::new(),
            body: None,
            outcome: "accepted",
            call: None,
        }
    }

    /// A 400 "invalid request" JSON-RPC error.
    fn invalid_request(id: Option<&RawValue>, message: &str) -> Self {
        Reply::error(
            StatusCode::BAD_REQUEST,
            id,
            code::INVALID_REQUEST,
            message,
            None,
            "invalid_request",
        )
    }

    /// A JSON-RPC error response.
    pub fn error(
        status: StatusCode,
        id: Option<&RawValue>,
        code: i64,
        message: &str,
        data: Option<Value>,
        outcome: &'static str,
    ) -> Self {
        Reply::json(status, error_body(id, code, message, data), outcome)
    }
}

/// Longest `message` of a JSON-RPC error, in characters. Messages quote what the client
/// sent (a tool name, a method, a header), which can be arbitrarily long; a longer message
/// is cut with a note, and `data` longer than this is left out.
pub const MAX_ERROR_MESSAGE_CHARS: usize = 1_000;

/// Serialises a JSON-RPC error object, its message cut to [`MAX_ERROR_MESSAGE_CHARS`].
pub fn error_body(id: Option<&RawValue>, code: i64, message: &str, data: Option<Value>) -> Vec<u8> {
    let mut capped = String::new();
    let message = if message.len() > MAX_ERROR_MESSAGE_CHARS {
        capped.push_str(message);
        crate::upstream::cap_text(&mut capped, MAX_ERROR_MESSAGE_CHARS);
        capped.as_str()
    } else {
        message
    };
    let data = data.filter(|d| d.to_string().len() <= MAX_ERROR_MESSAGE_CHARS);
    #[derive(Serialize)]
    struct ErrorObj<'a> {
        code: i64,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        data: Option<Value>,
    }
    #[derive(Serialize)]
    struct Envelope<'a> {
        jsonrpc: &'static str,
        id: Option<&'a RawValue>,
        error: ErrorObj<'a>,
    }
    serde_json::to_vec(&Envelope {
        jsonrpc: "2.0",
        id,
        error: ErrorObj {
            code,
            message,
            data,
        },
    })
    .unwrap_or_else(|_| {
        br#"{"jsonrpc":"2.0","id":null,"error":{"code":-32603,"message":"internal error"}}"#
            .to_vec()
    })
}

/// The parts of a JSON-RPC message this server reads. `id` and `params` stay raw until
/// needed, so large arguments are parsed once.
#[derive(Debug, serde::Deserialize)]
struct Message<'a> {
    #[serde(default)]
    jsonrpc: Option<&'a str>,
    /// `None` only when the member is absent (a notification); `"id": null` is kept as a
    /// raw `null`, an id this server refuses.
    #[serde(default, borrow, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default, borrow)]
    params: Option<&'a RawValue>,
    #[serde(default, borrow)]
    result: Option<&'a RawValue>,
    #[serde(default, borrow)]
    error: Option<&'a RawValue>,
}

/// Deserialises a member that is present, `null` included, as `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue as serde::Deserialize<'de>>::deserialize(d).map(Some)
}

/// Which revision a request is handled under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Era {
    /// Initialize-based revisions, 2024-11-05 to 2025-11-25.
    Legacy,
    /// 2026-07-28: per-request `_meta`, no handshake.
    Stateless,
}

/// What the upstream side of a tool call needs; implemented by the data plane.
pub trait ToolRunner: Send + Sync {
    fn run(
        &self,
        view: &Arc<ServerView>,
        tool: &Arc<Tool>,
        args: Map<String, Value>,
    ) -> impl std::future::Future<Output = CallOutcome> + Send;
}

/// Fixed facts about this deployment shown to clients.
#[derive(Debug, Clone)]
pub struct ServerIdentity {
    pub name: &'static str,
    pub version: &'static str,
}

impl Default for ServerIdentity {
    fn default() -> Self {
        ServerIdentity {
            name: "atomicwork-mcp",
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

/// A POST to a server's endpoint, after access control.
pub struct Request<'a> {
    pub view: &'a Arc<ServerView>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
    pub identity: &'a ServerIdentity,
}

/// Rate limiting for tool calls, checked after the request is understood.
pub trait CallGate {
    /// `Err(seconds)` when the server's budget is spent.
    fn admit_call(&self, view: &ServerView) -> Result<(), u64>;
}

/// Handles one POSTed JSON-RPC message.
pub async fn handle<R: ToolRunner, G: CallGate>(req: Request<'_>, runner: &R, gate: &G) -> Reply {
    let msg: Message<'_> = match parse(req.body) {
        Ok(m) => m,
        Err(reply) => return *reply,
    };
    // A client's error answer to a message it could not read carries a null id; any
    // other null id is refused, never taken for a notification.
    let null_id_error = msg.method.is_none() && msg.error.is_some() && msg.id.is_some_and(is_null);
    if msg.id.is_some_and(|id| !is_valid_id(id)) && !null_id_error {
        return Reply::invalid_request(None, "id must be a string or a number");
    }
    if msg.jsonrpc != Some("2.0") {
        return Reply::invalid_request(msg.id, "jsonrpc must be \"2.0\"");
    }
    let Some(method) = msg.method.as_deref() else {
        if msg.id.is_some() && (msg.result.is_some() || msg.error.is_some()) {
            if header_str(req.headers, HEADER_PROTOCOL_VERSION).as_deref()
                == Some(STATELESS_VERSION)
            {
                return Reply::invalid_request(
                    msg.id,
                    "a stateless server does not accept JSON-RPC responses",
                );
            }
            return Reply::accepted();
        }
        return Reply::invalid_request(msg.id, "a request needs a method");
    };
    let params = match msg.params.map(|p| serde_json::from_str::<Value>(p.get())) {
        None => Value::Object(Map::new()),
        Some(Ok(v @ Value::Object(_))) => v,
        Some(Ok(_)) => {
            return Reply::invalid_request(msg.id, "params must be an object");
        }
        Some(Err(_)) => {
            return Reply::error(
                StatusCode::BAD_REQUEST,
                msg.id,
                code::PARSE_ERROR,
                "params are not valid JSON",
                None,
                "parse_error",
            );
        }
    };
    let era = match era(method, &params, req.headers) {
        Ok(era) => era,
        Err((status, c, message, data)) => {
            return Reply::error(status, msg.id, c, &message, data, "protocol_error");
        }
    };
    let Some(id) = msg.id else {
        // A notification: nothing to answer.
        return Reply::accepted();
    };
    let ctx = Ctx { req: &req, era, id };
    dispatch(&ctx, method, params, runner, gate).await
}

/// What a client is told when the data plane's request timeout ends its request.
pub fn timeout_message(timeout: std::time::Duration) -> String {
    format!(
        "the request took longer than this MCP server allows ({}s) and was abandoned; a write may still have been applied, so check before retrying",
        timeout.as_secs_f64()
    )
}

/// The answer to a request cut short by the data plane's request timeout: a JSON-RPC
/// error for the request's id when the body names a usable one.
pub fn timed_out(body: &[u8], timeout: std::time::Duration) -> Reply {
    #[derive(serde::Deserialize)]
    struct IdOnly<'a> {
        #[serde(default, borrow)]
        id: Option<&'a RawValue>,
    }
    let id = serde_json::from_slice::<IdOnly<'_>>(body)
        .ok()
        .and_then(|m| m.id)
        .filter(|id| is_valid_id(id));
    Reply::error(
        StatusCode::GATEWAY_TIMEOUT,
        id,
        code::REQUEST_TIMEOUT,
        &timeout_message(timeout),
        None,
        "timeout",
    )
}

/// JSON-RPC ids are strings or numbers. Anything else is refused rather than echoed, so an
/// answer never carries a structure (or a number out of any parser's range) the client
/// could not have meant as an id.
fn is_valid_id(id: &RawValue) -> bool {
    matches!(
        serde_json::from_str::<Value>(id.get()),
        Ok(Value::String(_) | Value::Number(_))
    )
}

/// True for a raw JSON `null`.
fn is_null(id: &RawValue) -> bool {
    id.get() == "null"
}

fn parse(body: &[u8]) -> Result<Message<'_>, Box<Reply>> {
    let trimmed = body.trim_ascii_start();
    if trimmed.first() == Some(&b'[') {
        return Err(Box::new(Reply::invalid_request(
            None,
            "JSON-RPC batches are not supported; send one message per request",
        )));
    }
    serde_json::from_slice::<Message<'_>>(body).map_err(|e| {
        let (c, what, outcome) = if e.is_data() {
            (
                code::INVALID_REQUEST,
                "not a JSON-RPC message",
                "invalid_request",
            )
        } else {
            (code::PARSE_ERROR, "body is not valid JSON", "parse_error")
        };
        Box::new(Reply::error(
            StatusCode::BAD_REQUEST,
            None,
            c,
            &format!("{what}: {e}"),
            None,
            outcome,
        ))
    })
}

type EraError = (StatusCode, i64, String, Option<Value>);

/// Picks the revision: `initialize` and requests without `_meta` protocol version are
/// legacy; a `_meta` protocol version selects the stateless revision and its header rules.
fn era(method: &str, params: &Value, headers: &HeaderMap) -> Result<Era, EraError> {
    let meta_version = params
        .get("_meta")
        .and_then(|m| m.get(META_PROTOCOL_VERSION))
        .and_then(Value::as_str);
    let header_version = header_str(headers, HEADER_PROTOCOL_VERSION);
    if method == "initialize" {
        if let Some(h) = &header_version
            && h != STATELESS_VERSION
            && !LEGACY_VERSIONS.contains(&h.as_str())
        {
            return Err(unsupported(h));
        }
        return Ok(Era::Legacy);
    }
    if let Some(v) = meta_version {
        if header_version.as_deref() == Some(STATELESS_VERSION) || v == STATELESS_VERSION {
            check_stateless_headers(method, params, headers)?;
        }
        match header_version.as_deref() {
            Some(h) if h == v => {}
            Some(h) => {
                return Err(mismatch(format!(
                    "MCP-Protocol-Version header ({h}) does not match request _meta protocolVersion ({v})"
                )));
            }
            None => {
                return Err(mismatch(
                    "request _meta protocolVersion requires MCP-Protocol-Version header".into(),
                ));
            }
        }
        if LEGACY_VERSIONS.contains(&v) {
            return Ok(Era::Legacy);
        }
        if v != STATELESS_VERSION {
            return Err(unsupported(v));
        }
        if params
            .get("_meta")
            .and_then(|m| m.get(META_CLIENT_CAPABILITIES))
            .is_none_or(|c| !c.is_object())
        {
            return Err(missing_meta(META_CLIENT_CAPABILITIES));
        }
        return Ok(Era::Stateless);
    }
    match header_version.as_deref() {
        None => Ok(Era::Legacy),
        Some(h) if LEGACY_VERSIONS.contains(&h) => Ok(Era::Legacy),
        Some(h) if h == STATELESS_VERSION => Err(missing_meta(META_PROTOCOL_VERSION)),
        Some(h) => Err(unsupported(h)),
    }
}

/// The 2026-07-28 rule that `Mcp-Method` (and `Mcp-Name` where a method names a target)
/// repeat the body, so intermediaries can route without parsing it.
fn check_stateless_headers(
    method: &str,
    params: &Value,
    headers: &HeaderMap,
) -> Result<(), EraError> {
    let mut values = headers.get_all(HEADER_METHOD).iter();
    match (values.next().and_then(|v| v.to_str().ok()), values.next()) {
        (Some(h), None) if h == method => {}
        (None, _) => return Err(mismatch("Mcp-Method header is required".into())),
        (Some(h), None) => {
            return Err(mismatch(format!(
                "Header mismatch: Mcp-Method header value '{h}' does not match body value '{method}'"
            )));
        }
        _ => return Err(mismatch("Mcp-Method header given more than once".into())),
    }
    let source = match method {
        "tools/call" | "prompts/get" => "name",
        "resources/read" => "uri",
        _ => return Ok(()),
    };
    let body_value = params
        .get(source)
        .and_then(Value::as_str)
        .unwrap_or_default();
    match header_str(headers, HEADER_NAME) {
        Some(h) if h == body_value => Ok(()),
        Some(h) => Err(mismatch(format!(
            "Header mismatch: Mcp-Name header value '{h}' does not match body value '{body_value}'"
        ))),
        None => Err(mismatch(format!(
            "Mcp-Name header is required for {method}"
        ))),
    }
}

fn missing_meta(key: &str) -> EraError {
    (
        StatusCode::BAD_REQUEST,
        code::INVALID_PARAMS,
        format!("request _meta is missing or has malformed required fields: {key}"),
        None,
    )
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(decode_header)
}

/// Header values may be sent as `=?base64?…?=` when they are not plain ASCII.
fn decode_header(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?.trim();
    if let Some(inner) = text
        .strip_prefix("=?base64?")
        .and_then(|t| t.strip_suffix("?="))
    {
        use base64::Engine;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(inner)
            .ok()?;
        return String::from_utf8(bytes).ok();
    }
    Some(text.to_string())
}

fn unsupported(version: &str) -> EraError {
    (
        StatusCode::BAD_REQUEST,
        code::UNSUPPORTED_PROTOCOL_VERSION,
        format!("unsupported protocol version {version:?}"),
        Some(json!({"supported": SUPPORTED_VERSIONS, "requested": version})),
    )
}

fn mismatch(message: String) -> EraError {
    (
        StatusCode::BAD_REQUEST,
        code::HEADER_MISMATCH,
        message,
        None,
    )
}

struct Ctx<'a, 'b> {
    req: &'a Request<'b>,
    era: Era,
    id: &'a RawValue,
}

impl Ctx<'_, '_> {
    /// Writes a result object, adding what the stateless revision requires: `resultType`
    /// and the server's `_meta`. Keys come out in the map's (sorted) order; `_meta` goes
    /// first, where sorting puts it before the lowercase keys of every result here.
    fn ok(&self, mut result: Map<String, Value>, outcome: &'static str) -> Reply {
        let stateless = self.era == Era::Stateless;
        if stateless {
            result
                .entry("resultType")
                .or_insert_with(|| json!("complete"));
        }
        debug_assert!(result.keys().all(|k| k.as_str() > "_meta"));
        let mut out = self.head(512);
        out.push(b'{');
        if stateless {
            self.push_meta(&mut out);
        }
        for (i, (key, value)) in result.iter().enumerate() {
            if stateless || i > 0 {
                out.push(b',');
            }
            push_json_str(&mut out, key);
            out.push(b':');
            if serde_json::to_writer(&mut out, value).is_err() {
                return self.err(code::INTERNAL_ERROR, "could not serialise the result", None);
            }
        }
        out.extend_from_slice(b"}}");
        Reply::json(StatusCode::OK, out, outcome)
    }

    /// A success response up to its result, `{"jsonrpc":"2.0","id":…,"result":`, with room
    /// for `capacity` more bytes.
    fn head(&self, capacity: usize) -> Vec<u8> {
        const OPEN: &[u8] = br#"{"jsonrpc":"2.0","id":"#;
        const RESULT: &[u8] = br#","result":"#;
        let id = self.id.get().as_bytes();
        let mut out = Vec::with_capacity(OPEN.len() + id.len() + RESULT.len() + capacity);
        out.extend_from_slice(OPEN);
        out.extend_from_slice(id);
        out.extend_from_slice(RESULT);
        out
    }

    /// Appends the stateless revision's `"_meta":{"io.modelcontextprotocol/serverInfo":…}`,
    /// the same object as [`Ctx::server_info`].
    fn push_meta(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(br#""_meta":{"#);
        push_json_str(out, META_SERVER_INFO);
        out.extend_from_slice(br#":{"name":"#);
        push_json_str(out, self.req.identity.name);
        out.extend_from_slice(br#","title":"#);
        push_json_str(out, &self.req.view.display_name);
        out.extend_from_slice(br#","version":"#);
        push_json_str(out, self.req.identity.version);
        out.extend_from_slice(b"}}");
    }

    fn err(&self, c: i64, message: &str, data: Option<Value>) -> Reply {
        let status = if c == code::METHOD_NOT_FOUND && self.era == Era::Stateless {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::OK
        };
        let outcome = match c {
            code::METHOD_NOT_FOUND => "method_not_found",
            code::INVALID_PARAMS => "invalid_params",
            _ => "error",
        };
        Reply::error(status, Some(self.id), c, message, data, outcome)
    }

    fn server_info(&self) -> Value {
        json!({
            "name": self.req.identity.name,
            "title": self.req.view.display_name,
            "version": self.req.identity.version,
        })
    }

    fn instructions(&self) -> String {
        instructions(self.req.view)
    }

    fn capabilities(&self) -> Value {
        json!({"tools": {"listChanged": false}})
    }
}

/// Short guidance for the model using this server.
pub fn instructions(view: &ServerView) -> String {
    let mut text = format!(
        "{} gives access to Atomicwork ITSM (requests, changes, assets, audit logs, service catalog, workspaces, users). ",
        view.display_name
    );
    match &view.target.workspace_id {
        Some(ws) => text.push_str(&format!(
            "Most tools act in one workspace; this server defaults to workspace {ws}, pass workspace_id to use another (list_all_atomicwork_workspaces lists them). "
        )),
        None => text.push_str(
            "Most tools need a workspace_id: get one from list_all_atomicwork_workspaces first. ",
        ),
    }
    text.push_str("Lists are paged with page (from 1) and per_page (at most 100). Requests and changes are addressed by display ids such as ITREQ-12 or CHG-3.");
    if view.exposure == Exposure::Discovery {
        text.push_str(" Tools are not listed individually: use search_tools to find one, get_tool_schema for its arguments, then call_tool.");
    }
    if view.target.dry_run {
        text.push_str(
            " Dry-run mode: write tools return the request they would send and change nothing.",
        );
    }
    text
}

async fn dispatch<R: ToolRunner, G: CallGate>(
    ctx: &Ctx<'_, '_>,
    method: &str,
    params: Value,
    runner: &R,
    gate: &G,
) -> Reply {
    match method {
        "initialize" => initialize(ctx, &params),
        "ping" if ctx.era != Era::Stateless => ctx.ok(Map::new(), "ok"),
        "server/discover" => discover(ctx),
        "tools/list" => tools_list(ctx, &params),
        "tools/call" => tools_call(ctx, params, runner, gate).await,
        "resources/list" | "resources/templates/list" | "prompts/list" => ctx.err(
            code::METHOD_NOT_FOUND,
            &format!("{method} is not offered: this server has tools only"),
            None,
        ),
        _ => ctx.err(
            code::METHOD_NOT_FOUND,
            &format!("method {method:?} not found"),
            None,
        ),
    }
}

fn initialize(ctx: &Ctx<'_, '_>, params: &Value) -> Reply {
    let requested = params
        .get("protocolVersion")
        .and_then(Value::as_str)
        .unwrap_or(DEFAULT_LEGACY_VERSION);
    let version = LEGACY_VERSIONS
        .iter()
        .find(|v| **v == requested)
        .copied()
        .unwrap_or(LEGACY_VERSIONS[LEGACY_VERSIONS.len() - 1]);
    let mut result = Map::new();
    result.insert("protocolVersion".into(), json!(version));
    result.insert("capabilities".into(), ctx.capabilities());
    result.insert("serverInfo".into(), ctx.server_info());
    result.insert("instructions".into(), json!(ctx.instructions()));
    ctx.ok(result, "ok")
}

fn discover(ctx: &Ctx<'_, '_>) -> Reply {
    let mut result = Map::new();
    let newest_first: Vec<&str> = SUPPORTED_VERSIONS.iter().rev().copied().collect();
    result.insert("supportedVersions".into(), json!(newest_first));
    result.insert("capabilities".into(), ctx.capabilities());
    result.insert("instructions".into(), json!(ctx.instructions()));
    result.insert("ttlMs".into(), json!(0));
    result.insert("cacheScope".into(), json!("private"));
    ctx.ok(result, "ok")
}

fn tools_list(ctx: &Ctx<'_, '_>, params: &Value) -> Reply {
    if params.get("cursor").is_some_and(|c| !c.is_null()) {
        return ctx.err(
            code::INVALID_PARAMS,
            "invalid cursor: this server returns every tool in one page",
            None,
        );
    }
    let view = ctx.req.view;
    let tools: &RawValue = match view.exposure {
        Exposure::All => view.tools.listing(),
        Exposure::Discovery => view.tools.discovery_listing(),
    };
    // The listing was serialised once for the tool set; only the envelope is written here.
    let mut body = ctx.head(tools.get().len() + 256);
    body.extend_from_slice(br#"{"tools":"#);
    body.extend_from_slice(tools.get().as_bytes());
    if ctx.era == Era::Stateless {
        body.extend_from_slice(br#","resultType":"complete","ttlMs":0,"cacheScope":"private","#);
        ctx.push_meta(&mut body);
    }
    body.extend_from_slice(b"}}");
    Reply::json(StatusCode::OK, body, "ok")
}

async fn tools_call<R: ToolRunner, G: CallGate>(
    ctx: &Ctx<'_, '_>,
    params: Value,
    runner: &R,
    gate: &G,
) -> Reply {
    let Value::Object(mut params) = params else {
        return ctx.err(code::INVALID_PARAMS, "params must be an object", None);
    };
    let arguments = params.remove("arguments");
    let Some(name) = params.get("name").and_then(Value::as_str) else {
        return ctx.err(
            code::INVALID_PARAMS,
            "params.name (the tool name) is required",
            None,
        );
    };
    let args = match arguments {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return ctx.err(
                code::INVALID_PARAMS,
                "params.arguments must be an object",
                None,
            );
        }
    };
    let client = client_name(ctx, &params);
    let view = ctx.req.view;
    let (tool, mut args) = match view.exposure {
        Exposure::All => match view.tools.get(name) {
            Some(t) => (t.clone(), args),
            None => return unknown_tool(ctx, name, false),
        },
        Exposure::Discovery => {
            if !crate::core::catalog::meta_tools::is_meta_tool(name) {
                return unknown_tool(ctx, name, true);
            }
            match discovery::meta_call(&view.tools, name, args) {
                discovery::MetaOutcome::Done(result) => {
                    return finish_call(ctx, name, client, local_outcome(result));
                }
                discovery::MetaOutcome::Call(tool, args) => (tool, args),
            }
        }
    };
    fill_default_workspace(&tool, &mut args, view);
    // The schema validator reads a JSON value: the map is wrapped for it and unwrapped
    // again at once.
    let args = Value::Object(args);
    if let Err(problems) = tool.validate_value(&args) {
        let text = crate::core::catalog::invalid_arguments_text(tool.name(), &problems);
        let mut out = local_outcome(ToolResult::error(text));
        out.class = OutcomeClass::InvalidArguments;
        return finish_call(ctx, tool.name(), client, out);
    }
    let Value::Object(args) = args else {
        unreachable!("the arguments were wrapped as an object just above");
    };
    if let Err(wait) = gate.admit_call(view) {
        let text = format!(
            "Rate limited: this MCP server allows {} tool calls per minute. Wait {wait} seconds, then retry.",
            view.rate_limit.map(|r| r.per_minute).unwrap_or_default()
        );
        let mut out = local_outcome(ToolResult::error(text));
        out.class = OutcomeClass::RateLimited;
        out.rate_limit = Some(RateLimitInfo {
            limit: view.rate_limit.map(|r| format!("{};w=60", r.per_minute)),
            remaining: Some(0),
            reset: Some(wait),
            retry_after: Some(wait),
        });
        let mut reply = finish_call(ctx, tool.name(), client, out);
        reply.status = StatusCode::TOO_MANY_REQUESTS;
        reply.outcome = "rate_limited";
        return reply;
    }
    let outcome = runner.run(view, &tool, args).await;
    finish_call(ctx, tool.name(), client, outcome)
}

fn unknown_tool(ctx: &Ctx<'_, '_>, name: &str, discovery_mode: bool) -> Reply {
    let message = if discovery_mode {
        format!(
            "Unknown tool: {name}. This server uses discovery: call search_tools to find tools, get_tool_schema for their arguments and call_tool to run them"
        )
    } else {
        format!("Unknown tool: {name}")
    };
    let mut reply = ctx.err(code::INVALID_PARAMS, &message, None);
    reply.outcome = "unknown_tool";
    reply
}

fn local_outcome(result: ToolResult) -> CallOutcome {
    let class = if result.is_error {
        OutcomeClass::InvalidArguments
    } else {
        OutcomeClass::Ok
    };
    CallOutcome {
        result,
        upstream_status: None,
        rate_limit: None,
        class,
        attempts: 0,
        upstream_latency: std::time::Duration::ZERO,
    }
}

fn finish_call(
    ctx: &Ctx<'_, '_>,
    tool: &str,
    client: Option<String>,
    mut out: CallOutcome,
) -> Reply {
    // Every error text is capped here, whichever part of the server wrote it.
    out.result
        .cap_error_text(ctx.req.view.target.api_key.expose());
    let body = call_result_body(ctx, &out.result);
    let mut reply = Reply::json(StatusCode::OK, body, out.class.label());
    if let Some(rl) = &out.rate_limit {
        for (name, value) in rl.headers() {
            if let Ok(v) = HeaderValue::from_str(&value) {
                reply.headers.insert(name, v);
            }
        }
    }
    reply.call = Some(CallRecord {
        tool: tool.to_string(),
        outcome: out.class.label(),
        upstream_status: out.upstream_status,
        upstream_latency: out.upstream_latency,
        attempts: out.attempts,
        client,
    });
    reply
}

/// A `tools/call` result as MCP wants it, written straight from the tool result: the
/// upstream answer is the bulk of it, embedded once as escaped text and once verbatim as
/// structured content, and never parsed or copied on the way.
fn call_result_body(ctx: &Ctx<'_, '_>, result: &ToolResult) -> Vec<u8> {
    let stateless = ctx.era == Era::Stateless;
    let text_len: usize = result.content.iter().map(|t| t.len() + 32).sum();
    let raw_len = result.structured.as_ref().map_or(0, |s| s.get().len());
    let mut out = ctx.head(text_len + raw_len + 160);
    out.extend_from_slice(br#"{"content":["#);
    for (i, text) in result.content.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(br#"{"type":"text","text":"#);
        push_json_str(&mut out, text);
        out.push(b'}');
    }
    out.push(b']');
    // Before the stateless revision structuredContent must be an object.
    if let Some(structured) = result
        .structured
        .as_deref()
        .filter(|s| stateless || s.get().starts_with('{'))
    {
        out.extend_from_slice(br#","structuredContent":"#);
        out.extend_from_slice(structured.get().as_bytes());
    }
    out.extend_from_slice(if result.is_error {
        br#","isError":true"#
    } else {
        br#","isError":false"#
    });
    if stateless {
        out.extend_from_slice(br#","resultType":"complete","#);
        ctx.push_meta(&mut out);
    }
    out.extend_from_slice(b"}}");
    out
}

/// Appends `s` as a JSON string literal. Eight bytes are checked at a time for a quote, a
/// backslash or a control character, so the long plain runs of a JSON text being wrapped
/// are copied whole.
pub fn push_json_str(out: &mut Vec<u8>, s: &str) {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    /// Non-zero when some byte of `word` equals `byte` (may also flag a byte after a hit,
    /// which only sends that word to the slow path).
    fn has(word: u64, byte: u8) -> u64 {
        let x = word ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS
    }
    fn needs_escape(b: u8) -> bool {
        b < 0x20 || b == b'"' || b == b'\\'
    }
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let (mut copied, mut i) = (0, 0);
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let word = u64::from_ne_bytes(word);
            // A control byte is one below 0x20: subtracting 0x20 sets its high bit (bytes
            // of 0x80 and above are excluded by `!word`).
            let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
            if control | has(word, b'"') | has(word, b'\\') == 0 {
                i += 8;
                continue;
            }
        }
        let end = (i + 8).min(bytes.len());
        for (j, &b) in bytes.iter().enumerate().take(end).skip(i) {
            if !needs_escape(b) {
                continue;
            }
            out.extend_from_slice(&bytes[copied..j]);
            match b {
                b'"' => out.extend_from_slice(b"\\\""),
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                b'\r' => out.extend_from_slice(b"\\r"),
                b'\t' => out.extend_from_slice(b"\\t"),
                0x08 => out.extend_from_slice(b"\\b"),
                0x0c => out.extend_from_slice(b"\\f"),
                _ => {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(b"\\u00");
                    out.push(HEX[usize::from(b >> 4)]);
                    out.push(HEX[usize::from(b & 0xf)]);
                }
            }
            copied = j + 1;
        }
        i = end;
    }
    out.extend_from_slice(&bytes[copied..]);
    out.push(b'"');
}

fn client_name(ctx: &Ctx<'_, '_>, params: &Map<String, Value>) -> Option<String> {
    params
        .get("_meta")
        .and_then(|m| m.get(META_CLIENT_INFO))
        .and_then(|c| c.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .or_else(|| header_str(ctx.req.headers, "user-agent"))
        .map(|s| s.chars().filter(|c| !c.is_control()).take(64).collect())
}

/// Puts the server's default workspace into `workspace_id` when the call names none, so
/// argument checks that need a workspace see it, typed as the tool's schema wants.
fn fill_default_workspace(tool: &Tool, args: &mut Map<String, Value>, view: &ServerView) {
    let Some(ws) = &view.target.workspace_id else {
        return;
    };
    if args
        .get(crate::core::catalog::WORKSPACE_ARG)
        .is_some_and(|v| !v.is_null())
    {
        return;
    }
    let Some(param) = tool.param(crate::core::catalog::WORKSPACE_ARG) else {
        return;
    };
    let wants_integer = param
        .schema
        .as_ref()
        .and_then(|s| s.get("type"))
        .is_some_and(|t| t == "integer");
    let value = match ws.parse::<i64>() {
        Ok(n) if wants_integer => json!(n),
        _ => json!(ws),
    };
    args.insert(crate::core::catalog::WORKSPACE_ARG.into(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::catalog::Catalog;
    use crate::k8s::resolve::{self, ResolveOptions};
    use crate::local::manifest::{self, Manifests};

    /// A served view whose display name needs escaping.
    fn view() -> Arc<ServerView> {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: key, namespace: t}\nstringData: {apiKey: test-api-key-0123456789}\n---\napiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {name: s, namespace: t}\nspec:\n  displayName: \"Ops \\\"desk\\\" \\u00e9\\t\\u2028\"\n  atomicwork:\n    baseUrl: https://t.atomicwork.com\n    apiKeySecretRef: {name: key}\n  methods: [read]\n";
        let mut m = Manifests::default();
        manifest::parse_into(text, "t.yaml", &mut m);
        let server = m.servers.first().expect("a server");
        let catalog = Catalog::builtin().expect("catalog");
        let view = resolve::resolve(
            server,
            &m,
            &catalog,
            jiff::Timestamp::now(),
            &ResolveOptions::default(),
        )
        .view
        .expect("resolves");
        Arc::new(view)
    }

    /// Results and `_meta` written by hand are the bytes serde_json writes for the same
    /// objects: a response envelope around the sorted result map.
    #[test]
    fn results_are_written_as_serde_json_writes_them() {
        let view = view();
        assert!(view.display_name.contains('"'), "{}", view.display_name);
        let headers = HeaderMap::new();
        let identity = ServerIdentity::default();
        let req = Request {
            view: &view,
            headers: &headers,
            body: b"",
            identity: &identity,
        };
        let id = RawValue::from_string("\"a-1\"".into()).expect("id");
        for era in [Era::Legacy, Era::Stateless] {
            let ctx = Ctx {
                req: &req,
                era,
                id: &id,
            };
            let mut result = Map::new();
            result.insert("supportedVersions".into(), json!(["x"]));
            result.insert("instructions".into(), json!(ctx.instructions()));
            result.insert("ttlMs".into(), json!(0));
            let mut expected = result.clone();
            if era == Era::Stateless {
                expected.insert("resultType".into(), json!("complete"));
                expected.insert(
                    "_meta".into(),
                    json!({ META_SERVER_INFO: ctx.server_info() }),
                );
            }
            let expected = format!(
                r#"{{"jsonrpc":"2.0","id":"a-1","result":{}}}"#,
                Value::Object(expected)
            );
            let body = ctx.ok(result, "ok").body.expect("a body");
            assert_eq!(std::str::from_utf8(&body), Ok(expected.as_str()), "{era:?}");

            let meta = format!(
                r#","_meta":{}}}}}"#,
                json!({ META_SERVER_INFO: ctx.server_info() })
            );
            let listed = tools_list(&ctx, &json!({})).body.expect("a body");
            let called = call_result_body(&ctx, &ToolResult::error("no"));
            for written in [&listed[..], &called[..]] {
                let written = std::str::from_utf8(written).expect("UTF-8");
                assert!(written.starts_with(r#"{"jsonrpc":"2.0","id":"a-1","result":{"#));
                assert_eq!(written.ends_with(&meta), era == Era::Stateless, "{written}");
            }
        }
    }

    fn escaped(s: &str) -> String {
        let mut out = Vec::new();
        push_json_str(&mut out, s);
        String::from_utf8(out).expect("UTF-8 in, UTF-8 out")
    }

    /// Every ASCII character and a few wider ones, at every offset within an eight-byte
    /// word and across word boundaries, escape exactly as serde_json escapes them.
    #[test]
    fn strings_escape_as_serde_json_escapes_them() {
        let specials: Vec<char> = (0u8..0x80)
            .map(char::from)
            .chain(['é', '€', '𝄞', '\u{7f}', '\u{2028}'])
            .collect();
        for c in specials {
            for pad in 0..17 {
                let s = format!("{}{c}{}{c}", "a".repeat(pad), "b".repeat(pad % 5));
                let expected = serde_json::to_string(&s).expect("serialises");
                assert_eq!(escaped(&s), expected, "{s:?}");
                let back: String = serde_json::from_str(&escaped(&s)).expect("valid JSON");
                assert_eq!(back, s);
            }
        }
    }

    #[test]
    fn generated_strings_round_trip() {
        // A fixed linear congruential sequence: the same strings every run.
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) as u32
        };
        let alphabet: Vec<char> = "ab \"\\/\n\t\r\u{0}\u{1f}é€{}[]:,".chars().collect();
        for _ in 0..2_000 {
            let len = (next() % 64) as usize;
            let s: String = (0..len)
                .map(|_| alphabet[next() as usize % alphabet.len()])
                .collect();
            assert_eq!(
                escaped(&s),
                serde_json::to_string(&s).expect("serialises"),
                "{s:?}"
            );
        }
        assert_eq!(escaped(""), "\"\"");
    }
}
