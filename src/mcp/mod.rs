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
mod outcome;

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use eras::{HEADER_PROTOCOL_VERSION, STATELESS_VERSION, header_str};
use handlers::Ctx;
use jsonrpc::{Message, is_null, is_valid_id};
pub(crate) use jsonrpc::{Reply, code, error_body, timed_out, timeout_message};
pub(crate) use outcome::Outcome;

use crate::core::catalog::Tool;
use crate::core::server::{Caller, ServerView};
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
    let era = match eras::era(method, &params, req.headers) {
        Ok(era) => era,
        Err((status, c, message, data)) => {
            return Reply::error(status, msg.id, c, &message, data, Outcome::ProtocolError);
        }
    };
    let Some(id) = msg.id else {
        // A notification: nothing to answer.
        return Reply::accepted();
    };
    let ctx = Ctx { req: &req, era, id };
    handlers::dispatch(&ctx, method, params, runner, gate).await
}
