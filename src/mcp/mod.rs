//! MCP over Streamable HTTP for one server's request: JSON-RPC parsing, protocol revision
//! handling (initialize-based 2025-03-26 … 2025-11-25 and stateless 2026-07-28), and the
//! methods a tools-only server answers. Nothing is remembered between requests, so any
//! replica can answer any request.

mod approval;
mod call;
mod discovery;
mod eras;
mod escape;
mod handlers;
mod jsonrpc;
mod operation;
mod outcome;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use http::{HeaderMap, StatusCode};
use opentelemetry::KeyValue;
use opentelemetry::trace::SpanKind;
use serde_json::{Map, Value};

use eras::{HEADER_PROTOCOL_VERSION, STATELESS_VERSION, header_str};
use handlers::Ctx;
use jsonrpc::{Message, is_null, is_valid_id};
pub(crate) use jsonrpc::{Reply, code, error_body, timed_out, timeout_message};
pub(crate) use operation::{ErrorType, Operation};
pub(crate) use outcome::Outcome;

use crate::core::catalog::Tool;
use crate::core::server::{Caller, ServerView};
use crate::telemetry::{self, FutureExt as _, TraceIds, Tracing, attr};
use crate::upstream::CallOutcome;

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
    pub(crate) name: &'static str,
    pub(crate) version: &'static str,
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
    /// For an OAuth server: who is calling and which tool classes they may use.
    pub caller: Option<&'a Caller<'a>>,
    /// When traces are exported: the tracer, and when the request arrived (its span
    /// starts there, so the body read is inside it).
    pub trace: Option<TraceStart<'a>>,
}

/// What a traced request's server span starts from.
#[derive(Clone, Copy)]
pub struct TraceStart<'a> {
    /// Starts and exports the spans.
    pub tracing: &'a Tracing,
    /// When the request arrived.
    pub received: Instant,
    /// The HTTP version the request came over (`network.protocol.version`).
    pub http_version: http::Version,
}

/// Rate limiting for tool calls, checked after the request is understood.
pub trait CallGate {
    /// `Err(seconds)` when the server's budget is spent.
    fn admit_call(&self, view: &ServerView) -> Result<(), u64>;

    /// `Err(seconds)` when the budget of `user` (an OAuth caller's user claim; empty
    /// when the token names none) on the server is spent. Checked before the server's.
    fn admit_user_call(&self, view: &ServerView, user: &str) -> Result<(), u64> {
        let _ = (view, user);
        Ok(())
    }
}

/// Handles one POSTed JSON-RPC message.
pub async fn handle<R: ToolRunner, G: CallGate>(req: Request<'_>, runner: &R, gate: &G) -> Reply {
    let msg: Message<'_> = match jsonrpc::parse(req.body) {
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
                Outcome::ParseError,
            );
        }
    };
    let mut op = Operation::of(method, &params, req.headers, req.view);
    let mut reply = match req.trace {
        None => answer(&req, msg.id, method, params, None, runner, gate).await,
        Some(start) => {
            let cx = server_span(start, &req, &op, msg.id, &params);
            op.trace = TraceIds::of(&cx);
            // Ended with a timeout error if the request's deadline drops this future.
            let guard = telemetry::SpanGuard::new(cx.clone(), code::REQUEST_TIMEOUT.to_string());
            let reply = answer(&req, msg.id, method, params, op.trace, runner, gate)
                .with_context(cx)
                .await;
            let error = ErrorType::of(&reply);
            let mut more = Vec::new();
            if let Some(code) = reply.rpc_error {
                more.push(KeyValue::new(
                    attr::RPC_RESPONSE_STATUS_CODE,
                    code.to_string(),
                ));
            }
            if let Some(call) = &reply.call {
                more.push(KeyValue::new(attr::CALL_OUTCOME, call.outcome.label()));
            }
            guard.finish(error.map(ErrorType::label), more);
            reply
        }
    };
    op.error = ErrorType::of(&reply);
    reply.op = Some(op);
    reply
}

/// Answers an understood message: checks its revision, then dispatches a request (a
/// notification gets 202).
async fn answer<R: ToolRunner, G: CallGate>(
    req: &Request<'_>,
    id: Option<&serde_json::value::RawValue>,
    method: &str,
    params: Value,
    trace: Option<TraceIds>,
    runner: &R,
    gate: &G,
) -> Reply {
    let era = match eras::era(method, &params, req.headers) {
        Ok(era) => era,
        Err((status, c, message, data)) => {
            return Reply::error(status, id, c, &message, data, Outcome::ProtocolError);
        }
    };
    let Some(id) = id else {
        // A notification: nothing to answer.
        return Reply::accepted();
    };
    let ctx = Ctx {
        req,
        era,
        id,
        trace,
    };
    handlers::dispatch(&ctx, method, params, runner, gate).await
}

/// The answer to a request that ran past its deadline, with its operation named from
/// the body (for the operation metric).
pub(crate) fn timed_out_operation(
    body: &[u8],
    headers: &HeaderMap,
    view: &ServerView,
    timeout: std::time::Duration,
) -> Reply {
    #[derive(serde::Deserialize)]
    struct MethodOnly {
        method: Option<String>,
        #[serde(default)]
        params: Value,
    }
    let mut reply = timed_out(body, timeout);
    let op = serde_json::from_slice::<MethodOnly>(body)
        .ok()
        .and_then(|m| Some((m.method?, m.params)))
        .map(|(method, params)| {
            let mut op = Operation::of(&method, &params, headers, view);
            op.error = ErrorType::of(&reply);
            op
        });
    reply.op = op;
    reply
}

/// Starts the server span of a request: under the trace context of its `_meta` or its
/// headers, named and labelled as the MCP semantic conventions say. No argument value
/// is ever an attribute.
fn server_span(
    start: TraceStart<'_>,
    req: &Request<'_>,
    op: &Operation,
    id: Option<&serde_json::value::RawValue>,
    params: &Value,
) -> opentelemetry::Context {
    let meta = params.get("_meta").and_then(Value::as_object);
    let parent = start.tracing.extract(meta, req.headers);
    let mut attributes = Vec::with_capacity(10);
    attributes.push(KeyValue::new(attr::MCP_METHOD_NAME, op.method));
    if let Some(v) = op.protocol_version {
        attributes.push(KeyValue::new(attr::MCP_PROTOCOL_VERSION, v));
    }
    if let Some(id) = id {
        attributes.push(KeyValue::new(attr::JSONRPC_REQUEST_ID, request_id(id)));
    }
    if let Some(tool) = &op.tool {
        attributes.push(KeyValue::new(attr::GEN_AI_TOOL_NAME, tool.clone()));
    }
    if let Some(name) = op.gen_ai_operation() {
        attributes.push(KeyValue::new(attr::GEN_AI_OPERATION_NAME, name));
    }
    attributes.push(KeyValue::new(attr::NETWORK_TRANSPORT, "tcp"));
    attributes.push(KeyValue::new(attr::NETWORK_PROTOCOL_NAME, "http"));
    attributes.push(KeyValue::new(
        attr::NETWORK_PROTOCOL_VERSION,
        http_version(start.http_version),
    ));
    attributes.push(KeyValue::new(
        attr::SERVER_NAMESPACE,
        req.view.id.namespace.clone(),
    ));
    attributes.push(KeyValue::new(attr::SERVER_NAME, req.view.id.name.clone()));
    let since = start.received.elapsed();
    let received = SystemTime::now()
        .checked_sub(since)
        .unwrap_or_else(SystemTime::now);
    start.tracing.start_span(
        &parent,
        SpanKind::Server,
        op.span_name(),
        Some(received),
        attributes,
    )
}

/// The longest request id recorded on a span, in bytes.
const MAX_RECORDED_ID: usize = 128;

/// A JSON-RPC id as `jsonrpc.request.id` records it: a string id unquoted, a number as
/// written; cut to [`MAX_RECORDED_ID`] bytes.
fn request_id(id: &serde_json::value::RawValue) -> String {
    let mut text = match serde_json::from_str::<Value>(id.get()) {
        Ok(Value::String(s)) => s,
        _ => id.get().to_string(),
    };
    if text.len() > MAX_RECORDED_ID {
        let mut cut = MAX_RECORDED_ID;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// `network.protocol.version` of an HTTP version.
fn http_version(v: http::Version) -> &'static str {
    match v {
        http::Version::HTTP_09 => "0.9",
        http::Version::HTTP_10 => "1.0",
        http::Version::HTTP_2 => "2",
        http::Version::HTTP_3 => "3",
        _ => "1.1",
    }
}
