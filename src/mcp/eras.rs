//! Protocol revisions ("eras"): which revision a request is handled under, from its
//! `_meta` and `MCP-Protocol-Version` header, and the stateless revision's rule that
//! `Mcp-Method` and `Mcp-Name` repeat the body.

use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::{Value, json};

use super::jsonrpc::code;

/// Revisions answered through `initialize`, oldest first.
pub(crate) const LEGACY_VERSIONS: [&str; 4] =
    ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// The stateless revision.
pub(crate) const STATELESS_VERSION: &str = "2026-07-28";
/// Every revision served, oldest first.
pub(crate) const SUPPORTED_VERSIONS: [&str; 5] = [
    "2024-11-05",
    "2025-03-26",
    "2025-06-18",
    "2025-11-25",
    STATELESS_VERSION,
];
/// Assumed when a legacy client sends no `MCP-Protocol-Version` header.
pub(crate) const DEFAULT_LEGACY_VERSION: &str = "2025-03-26";

pub(crate) const META_PROTOCOL_VERSION: &str = "io.modelcontextprotocol/protocolVersion";
pub(crate) const META_CLIENT_CAPABILITIES: &str = "io.modelcontextprotocol/clientCapabilities";
pub(crate) const META_CLIENT_INFO: &str = "io.modelcontextprotocol/clientInfo";
pub(crate) const META_SERVER_INFO: &str = "io.modelcontextprotocol/serverInfo";

pub(crate) const HEADER_PROTOCOL_VERSION: &str = "mcp-protocol-version";
pub(crate) const HEADER_METHOD: &str = "mcp-method";
pub(crate) const HEADER_NAME: &str = "mcp-name";

/// Which revision a request is handled under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Era {
    /// Initialize-based revisions, 2024-11-05 to 2025-11-25.
    Legacy,
    /// 2026-07-28: per-request `_meta`, no handshake.
    Stateless,
}

pub(super) type EraError = (StatusCode, i64, String, Option<Value>);

/// Picks the revision: `initialize` and requests without `_meta` protocol version are
/// legacy; a `_meta` protocol version selects the stateless revision and its header rules.
pub(super) fn era(method: &str, params: &Value, headers: &HeaderMap) -> Result<Era, EraError> {
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

pub(super) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
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
