//! Tests of the upstream client. Wire tests run against a real HTTP server (wiremock).

mod build;
mod client;
mod cut;
mod failures;
mod leak;
mod passthrough;
mod retry;
mod truncate;
mod wire;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::Engine;
use serde_json::{Map, Value, json};

use super::redact::Redactor;
use super::response::{CallContext, Paging, success};
use super::{CallOutcome, Upstream, UpstreamOptions};
use crate::core::catalog::{Catalog, Tool, ToolSource};
use crate::core::secret::Secret;
use crate::core::server::Target;
use crate::core::tool_result::ToolResult;

pub(super) const KEY: &str = "awk-test-9f8e7d6c5b4a3210";

/// The built-in catalog, loaded once.
pub(super) fn builtin() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::builtin().expect("built-in catalog loads"))
}

pub(super) fn tool(name: &str) -> Arc<Tool> {
    builtin()
        .get(name)
        .unwrap_or_else(|| panic!("tool {name} is in the built-in catalog"))
        .clone()
}

/// A one-tool catalog from a JSON tool source.
pub(super) fn custom_tool(source: Value) -> Arc<Tool> {
    let source: ToolSource = serde_json::from_value(source).expect("tool source parses");
    let name = source.name.clone();
    let catalog = Catalog::from_sources(vec![source]).expect("tool source is valid");
    catalog.get(&name).expect("tool present").clone()
}

pub(super) fn args(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("arguments must be an object, got {other}"),
    }
}

pub(super) fn target(base_url: &str) -> Target {
    let base = crate::core::base_url::BaseUrl::parse(base_url).expect("a test base URL");
    let mut t = Target::new(base, Secret::new(KEY));
    t.workspace_id = Some("7".into());
    t
}

pub(super) fn upstream() -> Upstream {
    Upstream::new(UpstreamOptions::default()).expect("client builds")
}

/// A base URL on a local port nothing listens on.
pub(super) fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    format!("http://127.0.0.1:{port}")
}

/// One call of `tool_name` against `base_url`, the target changed by `adjust` first.
pub(super) async fn call_with(
    base_url: &str,
    tool_name: &str,
    a: Value,
    adjust: impl FnOnce(&mut Target),
) -> CallOutcome {
    let mut t = target(base_url);
    adjust(&mut t);
    upstream().call(&tool(tool_name), &args(a), &t).await
}

/// The result of a 2xx JSON answer `body` to a call of `tool` with `query`.
pub(super) fn success_for(
    tool: &Tool,
    query: &[(&str, &str)],
    max_chars: usize,
    body: &[u8],
) -> ToolResult {
    let query: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let ctx = CallContext {
        tool,
        method: tool.source.http,
        path: "/api/v1/x",
        workspace: None,
        paging: Paging::of(tool, &query),
        max_chars,
        attempts: 1,
        timeout: Duration::from_secs(30),
        redactor: Redactor::new(KEY),
    };
    success(&ctx, 200, "application/json", body)
}

pub(super) fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

pub(super) fn file_arg(filename: &str, content_type: Option<&str>, bytes: &[u8]) -> Value {
    let mut f = json!({"filename": filename, "content_base64": b64(bytes)});
    if let Some(ct) = content_type {
        f["content_type"] = json!(ct);
    }
    f
}

/// One part of a received multipart/form-data body.
#[derive(Debug, PartialEq)]
pub(super) struct Part {
    pub(crate) name: String,
    pub(crate) filename: Option<String>,
    pub(crate) content_type: Option<String>,
    pub(crate) body: Vec<u8>,
}

/// Parses a multipart/form-data body as the receiving server would.
pub(super) fn parse_multipart(content_type: &str, body: &[u8]) -> Vec<Part> {
    let boundary = content_type
        .split(';')
        .find_map(|p| p.trim().strip_prefix("boundary="))
        .expect("content type has a boundary")
        .trim_matches('"');
    assert!(
        content_type.starts_with("multipart/form-data"),
        "content type {content_type}"
    );
    let delimiter = format!("--{boundary}");
    let mut parts = Vec::new();
    let mut sections = split_bytes(body, delimiter.as_bytes());
    assert!(
        sections.remove(0).is_empty(),
        "body starts with the delimiter"
    );
    let last = sections.pop().expect("closing delimiter");
    assert!(
        last.starts_with(b"--"),
        "body ends with the closing delimiter"
    );
    for section in sections {
        let section = section
            .strip_prefix(b"\r\n")
            .and_then(|s| s.strip_suffix(b"\r\n"))
            .expect("part framed by CRLF");
        let split = find(section, b"\r\n\r\n").expect("part has a header block");
        let headers = String::from_utf8(section[..split].to_vec()).expect("ascii headers");
        let mut part = Part {
            name: String::new(),
            filename: None,
            content_type: None,
            body: section[split + 4..].to_vec(),
        };
        for line in headers.split("\r\n") {
            let (k, v) = line.split_once(':').expect("header line");
            match k.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    for attr in v.split(';').map(str::trim) {
                        if let Some(n) = attr.strip_prefix("name=") {
                            part.name = n.trim_matches('"').to_string();
                        } else if let Some(f) = attr.strip_prefix("filename=") {
                            part.filename = Some(f.trim_matches('"').to_string());
                        }
                    }
                }
                "content-type" => part.content_type = Some(v.trim().to_string()),
                _ => {}
            }
        }
        parts.push(part);
    }
    parts
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn split_bytes<'a>(mut hay: &'a [u8], needle: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    while let Some(i) = find(hay, needle) {
        out.push(&hay[..i]);
        hay = &hay[i + needle.len()..];
    }
    out.push(hay);
    out
}
