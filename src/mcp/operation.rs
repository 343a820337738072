//! One MCP operation as the OpenTelemetry semantic conventions for MCP name it: the
//! method, the tool, the protocol revision and how it failed. The `mcp.server.operation.
//! duration` metric and the server span are both labelled from it, and every value is
//! bounded: a method or tool name a client makes up is never a label or a span name.

use http::HeaderMap;
use serde_json::Value;

use super::eras::{HEADER_PROTOCOL_VERSION, META_PROTOCOL_VERSION, SUPPORTED_VERSIONS};
use super::jsonrpc::Reply;
use crate::core::catalog::meta_tools::is_meta_tool;
use crate::core::server::ServerView;
use crate::telemetry::{TOOL_ERROR, TraceIds};
use crate::upstream::OutcomeClass;

/// The method name a client's unknown method is recorded as.
pub(crate) const OTHER_METHOD: &str = "_OTHER";

/// MCP methods (requests and notifications, both directions) recorded by name.
const KNOWN_METHODS: [&str; 24] = [
    "initialize",
    "ping",
    "server/discover",
    "tools/list",
    "tools/call",
    "resources/list",
    "resources/templates/list",
    "resources/read",
    "resources/subscribe",
    "resources/unsubscribe",
    "prompts/list",
    "prompts/get",
    "completion/complete",
    "logging/setLevel",
    "roots/list",
    "sampling/createMessage",
    "elicitation/create",
    "notifications/initialized",
    "notifications/cancelled",
    "notifications/progress",
    "notifications/message",
    "notifications/roots/list_changed",
    "notifications/tools/list_changed",
    "notifications/resources/updated",
];

/// How an operation failed, as `error.type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorType {
    /// A tool call answered with an error result (`isError: true`).
    ToolError,
    /// A JSON-RPC error response with this code.
    Rpc(i64),
}

impl ErrorType {
    /// The `error.type` value: `tool_error`, or the JSON-RPC error code.
    pub(crate) fn label(self) -> String {
        match self {
            ErrorType::ToolError => TOOL_ERROR.to_string(),
            ErrorType::Rpc(code) => code.to_string(),
        }
    }

    /// How `reply` failed, if it did.
    pub(crate) fn of(reply: &Reply) -> Option<ErrorType> {
        if let Some(code) = reply.rpc_error {
            return Some(ErrorType::Rpc(code));
        }
        reply
            .call
            .as_ref()
            .filter(|c| !matches!(c.outcome, OutcomeClass::Ok | OutcomeClass::DryRun))
            .map(|_| ErrorType::ToolError)
    }
}

/// One understood MCP message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Operation {
    /// The method, or [`OTHER_METHOD`].
    pub(crate) method: &'static str,
    /// For `tools/call`: the tool, when the server has one of that name.
    pub(crate) tool: Option<String>,
    /// The revision the request names (in `_meta`, the header, or `initialize`'s params),
    /// when it is one this server speaks.
    pub(crate) protocol_version: Option<&'static str>,
    /// How it failed.
    pub(crate) error: Option<ErrorType>,
    /// The request's span, when it is traced.
    pub(crate) trace: Option<TraceIds>,
}

impl Operation {
    /// The operation of a message with `method` and `params`, sent to `view`.
    pub(crate) fn of(
        method: &str,
        params: &Value,
        headers: &HeaderMap,
        view: &ServerView,
    ) -> Operation {
        let method = KNOWN_METHODS
            .iter()
            .find(|m| **m == method)
            .copied()
            .unwrap_or(OTHER_METHOD);
        let tool = (method == "tools/call")
            .then(|| params.get("name").and_then(Value::as_str))
            .flatten()
            .filter(|name| view.tools.get(name).is_some() || is_meta_tool(name))
            .map(str::to_string);
        // Only a revision this server speaks is recorded, and those are ASCII: the
        // header is compared as it came, nothing is copied.
        let named = params
            .get("_meta")
            .and_then(|m| m.get(META_PROTOCOL_VERSION))
            .and_then(Value::as_str)
            .or_else(|| {
                headers
                    .get(HEADER_PROTOCOL_VERSION)
                    .and_then(|v| v.to_str().ok())
            })
            .or_else(|| {
                (method == "initialize")
                    .then(|| params.get("protocolVersion").and_then(Value::as_str))
                    .flatten()
            });
        let protocol_version =
            named.and_then(|v| SUPPORTED_VERSIONS.iter().find(|s| **s == v.trim()).copied());
        Operation {
            method,
            tool,
            protocol_version,
            error: None,
            trace: None,
        }
    }

    /// The span name: `{method} {tool}`, or the method alone.
    pub(crate) fn span_name(&self) -> String {
        match &self.tool {
            Some(tool) => format!("{} {tool}", self.method),
            None => self.method.to_string(),
        }
    }

    /// `gen_ai.operation.name`: `execute_tool` for a tool call.
    pub(crate) fn gen_ai_operation(&self) -> Option<&'static str> {
        (self.method == "tools/call").then_some("execute_tool")
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use http::HeaderValue;
    use serde_json::json;

    use super::*;
    use crate::mcp::Outcome;

    fn view() -> Arc<ServerView> {
        let text = "apiVersion: v1\nkind: Secret\nmetadata: {name: key, namespace: t}\nstringData: {apiKey: test-api-key-0123456789}\n---\napiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {name: s, namespace: t}\nspec:\n  atomicwork:\n    baseUrl: https://t.atomicwork.com\n    apiKeySecretRef: {name: key}\n  methods: [read]\n";
        crate::test_support::resolve_view(text)
    }

    #[test]
    fn names_come_from_bounded_sets_only() {
        let view = view();
        let tool = view
            .tools
            .tools()
            .first()
            .expect("a tool")
            .name()
            .to_string();
        let h = HeaderMap::new();
        let op = Operation::of("tools/call", &json!({"name": tool}), &h, &view);
        assert_eq!(op.span_name(), format!("tools/call {tool}"));
        assert_eq!(op.gen_ai_operation(), Some("execute_tool"));
        // A tool the server does not have, or a made-up method, never names anything.
        let op = Operation::of("tools/call", &json!({"name": "drop_tables_x"}), &h, &view);
        assert_eq!(
            (op.tool.clone(), op.span_name()),
            (None, "tools/call".to_string())
        );
        let op = Operation::of("tools/evil/{}", &json!({}), &h, &view);
        assert_eq!((op.method, op.gen_ai_operation()), (OTHER_METHOD, None));
        assert_eq!(op.span_name(), OTHER_METHOD);
    }

    #[test]
    fn the_protocol_version_is_read_from_meta_header_or_initialize_and_only_if_known() {
        let view = view();
        let mut h = HeaderMap::new();
        let meta = json!({"_meta": {META_PROTOCOL_VERSION: "2026-07-28"}});
        assert_eq!(
            Operation::of("tools/list", &meta, &h, &view).protocol_version,
            Some("2026-07-28")
        );
        h.insert(
            HEADER_PROTOCOL_VERSION,
            HeaderValue::from_static("2025-06-18"),
        );
        assert_eq!(
            Operation::of("tools/list", &json!({}), &h, &view).protocol_version,
            Some("2025-06-18")
        );
        let init = json!({"protocolVersion": "2025-11-25"});
        assert_eq!(
            Operation::of("initialize", &init, &HeaderMap::new(), &view).protocol_version,
            Some("2025-11-25")
        );
        let made_up = json!({"protocolVersion": "1999-01-01"});
        assert_eq!(
            Operation::of("initialize", &made_up, &HeaderMap::new(), &view).protocol_version,
            None
        );
    }

    #[test]
    fn error_types_are_the_rpc_code_or_tool_error() {
        let err = Reply::error(
            http::StatusCode::OK,
            None,
            -32602,
            "bad",
            None,
            Outcome::InvalidParams,
        );
        assert_eq!(ErrorType::of(&err), Some(ErrorType::Rpc(-32602)));
        assert_eq!(ErrorType::Rpc(-32602).label(), "-32602");
        assert_eq!(ErrorType::ToolError.label(), "tool_error");
        let mut ok = Reply::accepted();
        assert_eq!(ErrorType::of(&ok), None);
        for (class, failed) in [
            (OutcomeClass::Ok, false),
            (OutcomeClass::DryRun, false),
            (OutcomeClass::ServerError, true),
            (OutcomeClass::NotApproved, true),
            (OutcomeClass::InvalidArguments, true),
        ] {
            ok.call = Some(super::super::jsonrpc::CallRecord {
                tool: "t".into(),
                outcome: class,
                upstream_status: None,
                upstream_latency: std::time::Duration::ZERO,
                attempts: 0,
                client: None,
            });
            assert_eq!(ErrorType::of(&ok).is_some(), failed, "{class:?}");
        }
    }
}
