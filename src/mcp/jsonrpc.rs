//! JSON-RPC 2.0 framing: the message as read, the HTTP answer as written, error objects
//! and their codes, and the answer to a request the data plane's timeout cut short.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;

use super::outcome::Outcome;
use crate::upstream::OutcomeClass;

/// JSON-RPC error codes used here.
pub(crate) mod code {
    pub(crate) const PARSE_ERROR: i64 = -32700;
    pub(crate) const INVALID_REQUEST: i64 = -32600;
    pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
    pub(crate) const INVALID_PARAMS: i64 = -32602;
    pub(crate) const INTERNAL_ERROR: i64 = -32603;
    pub(crate) const HEADER_MISMATCH: i64 = -32020;
    pub(crate) const UNSUPPORTED_PROTOCOL_VERSION: i64 = -32022;
    /// Application codes (outside the reserved range) for access refusals.
    pub(crate) const UNKNOWN_ENDPOINT: i64 = -31000;
    pub(crate) const EXPIRED: i64 = -31001;
    pub(crate) const SUSPENDED: i64 = -31002;
    pub(crate) const UNAUTHORIZED: i64 = -31003;
    /// The caller's OAuth token lacks the scopes a tool needs (HTTP 403).
    pub(crate) const INSUFFICIENT_SCOPE: i64 = -31004;
    pub(crate) const FORBIDDEN_ORIGIN: i64 = -31005;
    pub(crate) const REQUEST_TIMEOUT: i64 = -31006;
}

/// An HTTP answer to one MCP POST.
#[derive(Debug)]
pub struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub body: Option<Bytes>,
    /// What happened, for metrics and the access log.
    pub(crate) outcome: Outcome,
    /// Set for `tools/call`: what the call did, for the audit log.
    pub(crate) call: Option<CallRecord>,
    /// The JSON-RPC error code, when the answer is an error response.
    pub(crate) rpc_error: Option<i64>,
    /// Set once the message is understood as an MCP request or notification: what the
    /// operation metric and the trace name it by.
    pub(crate) op: Option<super::operation::Operation>,
}

/// One tool call, as the audit log and metrics see it (no argument values).
#[derive(Debug, Clone)]
pub(crate) struct CallRecord {
    pub(crate) tool: String,
    pub(crate) outcome: OutcomeClass,
    pub(crate) upstream_status: Option<u16>,
    pub(crate) upstream_latency: std::time::Duration,
    pub(crate) attempts: u32,
    pub(crate) client: Option<String>,
}

impl Reply {
    pub(super) fn json(status: StatusCode, body: Vec<u8>, outcome: Outcome) -> Self {
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
            rpc_error: None,
            op: None,
        }
    }

    /// 202 Accepted with no body (notifications and client responses).
    pub(crate) fn accepted() -> Self {
        Reply {
            status: StatusCode::ACCEPTED,
            headers: HeaderMap::new(),
            body: None,
            outcome: Outcome::Accepted,
            call: None,
            rpc_error: None,
            op: None,
        }
    }

    /// A 400 "invalid request" JSON-RPC error.
    pub(super) fn invalid_request(id: Option<&RawValue>, message: &str) -> Self {
        Reply::error(
            StatusCode::BAD_REQUEST,
            id,
            code::INVALID_REQUEST,
            message,
            None,
            Outcome::InvalidRequest,
        )
    }

    /// A JSON-RPC error response.
    pub(crate) fn error(
        status: StatusCode,
        id: Option<&RawValue>,
        code: i64,
        message: &str,
        data: Option<Value>,
        outcome: Outcome,
    ) -> Self {
        let mut reply = Reply::json(status, error_body(id, code, message, data), outcome);
        reply.rpc_error = Some(code);
        reply
    }
}

/// Longest `message` of a JSON-RPC error, in characters. Messages quote what the client
/// sent (a tool name, a method, a header), which can be arbitrarily long; a longer message
/// is cut with a note, and `data` longer than this is left out.
pub(crate) const MAX_ERROR_MESSAGE_CHARS: usize = 1_000;

/// Serialises a JSON-RPC error object, its message cut to [`MAX_ERROR_MESSAGE_CHARS`].
pub(crate) fn error_body(
    id: Option<&RawValue>,
    code: i64,
    message: &str,
    data: Option<Value>,
) -> Vec<u8> {
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
pub(super) struct Message<'a> {
    #[serde(default)]
    pub(super) jsonrpc: Option<&'a str>,
    /// `None` only when the member is absent (a notification); `"id": null` is kept as a
    /// raw `null`, an id this server refuses.
    #[serde(default, borrow, deserialize_with = "present")]
    pub(super) id: Option<&'a RawValue>,
    #[serde(default)]
    pub(super) method: Option<String>,
    #[serde(default, borrow)]
    pub(super) params: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub(super) result: Option<&'a RawValue>,
    #[serde(default, borrow)]
    pub(super) error: Option<&'a RawValue>,
}

/// Deserialises a member that is present, `null` included, as `Some`.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&'de RawValue as serde::Deserialize<'de>>::deserialize(d).map(Some)
}

/// What a client is told when the data plane's request timeout ends its request.
pub(crate) fn timeout_message(timeout: std::time::Duration) -> String {
    format!(
        "the request took longer than this MCP server allows ({}s) and was abandoned; a write may still have been applied, so check before retrying",
        timeout.as_secs_f64()
    )
}

/// The answer to a request cut short by the data plane's request timeout: a JSON-RPC
/// error for the request's id when the body names a usable one.
pub(crate) fn timed_out(body: &[u8], timeout: std::time::Duration) -> Reply {
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
        Outcome::Timeout,
    )
}

/// JSON-RPC ids are strings or numbers. Anything else is refused rather than echoed, so an
/// answer never carries a structure (or a number out of any parser's range) the client
/// could not have meant as an id.
pub(super) fn is_valid_id(id: &RawValue) -> bool {
    matches!(
        serde_json::from_str::<Value>(id.get()),
        Ok(Value::String(_) | Value::Number(_))
    )
}

/// True for a raw JSON `null`.
pub(super) fn is_null(id: &RawValue) -> bool {
    id.get() == "null"
}

pub(super) fn parse(body: &[u8]) -> Result<Message<'_>, Box<Reply>> {
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
                Outcome::InvalidRequest,
            )
        } else {
            (
                code::PARSE_ERROR,
                "body is not valid JSON",
                Outcome::ParseError,
            )
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
