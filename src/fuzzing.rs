//! What each fuzz target in `fuzz/` does with one input, shared with `tests/fuzz_corpus.rs`
//! so that `cargo test` replays the kept corpus through exactly the same code. Each function
//! takes arbitrary bytes, must not panic on any of them, and panics itself when an answer
//! breaks a rule the data plane relies on. Compiled only with the `fuzzing` feature, which
//! the fuzz package and this crate's own tests enable and no binary does.

use std::sync::{Arc, OnceLock};

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::core::base_url::BaseUrl;
use crate::core::catalog::{Catalog, Tool};
use crate::core::secret::Secret;
use crate::core::server::ServerView;
use crate::core::server::Target;
use crate::core::tool_result::ToolResult;
use crate::k8s::crd::AtomicworkMcpServer;
use crate::k8s::resolve::{self, ResolveOptions, SecretLookup};
use crate::local::manifest::{self, Manifests};
use crate::mcp::{self, CallGate, ServerIdentity, ToolRunner};
use crate::upstream::{self, CallOutcome, OutcomeClass, RateLimitInfo};

/// 2025-01-01T00:00:00Z: a fixed clock keeps every run reproducible.
const FIXED_NOW: i64 = 1_735_689_600;

struct Fixture {
    catalog: Catalog,
    /// Read-only servers: every tool exposed, and discovery exposure.
    views: Vec<Arc<ServerView>>,
    identity: ServerIdentity,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let catalog = Catalog::builtin().unwrap_or_else(|e| panic!("built-in catalog: {e}"));
        let views = [("\"1\"", "all"), ("null", "discovery")]
            .iter()
            .map(|(workspace, exposure)| Arc::new(read_only_view(&catalog, workspace, exposure)))
            .collect();
        Fixture {
            catalog,
            views,
            identity: ServerIdentity::default(),
        }
    })
}

fn read_only_view(catalog: &Catalog, workspace: &str, exposure: &str) -> ServerView {
    let text = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: key, namespace: fuzz}}\nstringData: {{apiKey: fuzz-api-key-0123456789}}\n---\napiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: fuzz, namespace: fuzz}}\nspec:\n  atomicwork:\n    baseUrl: https://fuzz.atomicwork.com\n    apiKeySecretRef: {{name: key}}\n    workspaceId: {workspace}\n  methods: [read]\n  toolExposure: {exposure}\n"
    );
    let mut m = Manifests::default();
    manifest::parse_into(&text, "fixture.yaml", &mut m);
    let server = m
        .servers
        .first()
        .unwrap_or_else(|| panic!("{:?}", m.errors));
    resolve::resolve(server, &m, catalog, now(), &ResolveOptions::default())
        .view
        .unwrap_or_else(|p| panic!("fixture server: {p}"))
}

fn now() -> Timestamp {
    Timestamp::from_second(FIXED_NOW).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// Builds the request a call would send and answers with a canned result; never touches
/// the network. A tool outside the server's filter reaching it is a bug.
struct CannedRunner;

impl ToolRunner for CannedRunner {
    async fn run(
        &self,
        view: &Arc<ServerView>,
        tool: &Arc<Tool>,
        args: Map<String, Value>,
    ) -> CallOutcome {
        assert!(
            view.tools.get(tool.name()).is_some() && tool.is_read(),
            "{} ran on a read-only server",
            tool.name()
        );
        let built = upstream::build_request(tool, &args, &view.target).is_ok();
        CallOutcome {
            result: ToolResult::ok_structured(
                vec![format!("canned answer, request built: {built}")],
                &serde_json::json!({"data": []}),
            ),
            upstream_status: Some(200),
            rate_limit: Some(RateLimitInfo {
                limit: Some("100;w=60".into()),
                remaining: Some(99),
                reset: Some(60),
                retry_after: None,
            }),
            class: OutcomeClass::Ok,
            attempts: 1,
            upstream_latency: std::time::Duration::ZERO,
        }
    }
}

struct OpenGate;

impl CallGate for OpenGate {
    fn admit_call(&self, _view: &ServerView) -> Result<(), u64> {
        Ok(())
    }
}

/// `name: value` lines, then an empty line, then the body; without an empty line the
/// whole input is the body. Lines that are not valid headers are skipped.
fn split_headers(data: &[u8]) -> (HeaderMap, &[u8]) {
    let Some(at) = data.windows(2).position(|w| w == b"\n\n") else {
        return (HeaderMap::new(), data);
    };
    (header_lines(&data[..at]), &data[at + 2..])
}

fn header_lines(data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in data.split(|&b| b == b'\n') {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let name = HeaderName::from_bytes(line[..colon].trim_ascii());
        let value = HeaderValue::from_bytes(line[colon + 1..].trim_ascii());
        if let (Ok(n), Ok(v)) = (name, value) {
            headers.append(n, v);
        }
    }
    headers
}

/// One POSTed JSON-RPC message (optional header lines first) against each read-only server.
pub fn mcp_message(data: &[u8]) {
    let fx = fixture();
    let (headers, body) = split_headers(data);
    for view in &fx.views {
        let request = mcp::Request {
            view,
            headers: &headers,
            body,
            identity: &fx.identity,
            caller: None,
            trace: None,
        };
        let reply = futures::executor::block_on(mcp::handle(request, &CannedRunner, &OpenGate));
        check_reply(&reply);
    }
}

/// A reply is 202 without a body, or one JSON-RPC response object.
fn check_reply(reply: &mcp::Reply) {
    let Some(body) = &reply.body else {
        assert_eq!(reply.status, StatusCode::ACCEPTED, "a bodiless answer");
        return;
    };
    let v: Value = serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {body:?}"));
    assert_eq!(v["jsonrpc"], "2.0", "{v}");
    assert!(v.get("id").is_some(), "no id: {v}");
    match (v.get("result"), v.get("error")) {
        (Some(Value::Object(_)), None) => {}
        (None, Some(e)) => {
            assert!(e["code"].is_i64() && e["message"].is_string(), "{v}");
        }
        _ => panic!("not exactly one of result and error: {v}"),
    }
}

/// One JSON argument object through every catalog tool's validation and request building,
/// with and without a default workspace.
pub fn tool_arguments(data: &[u8]) {
    let Ok(Value::Object(args)) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let fx = fixture();
    let key = Secret::new("fuzz-api-key-0123456789");
    let Ok(base) = BaseUrl::parse("https://fuzz.atomicwork.com") else {
        panic!("the fuzz base URL is a valid base URL");
    };
    let mut with_workspace = Target::new(base.clone(), key.clone());
    with_workspace.workspace_id = Some("7".into());
    let targets = [Target::new(base, key), with_workspace];
    for tool in fx.catalog.tools() {
        let _ = tool.validate(&args);
        for target in &targets {
            if let Ok(request) = upstream::build_request(tool, &args, target) {
                check_request(tool, &request);
            }
        }
    }
}

/// Arguments never add a path segment, leave the API prefix or change the host.
fn check_request(tool: &Tool, request: &upstream::PreparedRequest) {
    let url = reqwest::Url::parse(&request.url)
        .unwrap_or_else(|e| panic!("{}: unparsable URL {:?}: {e}", tool.name(), request.url));
    assert_eq!(
        url.host_str(),
        Some("fuzz.atomicwork.com"),
        "{}",
        request.url
    );
    assert_eq!(url.path(), request.path, "{}: path normalised", tool.name());
    assert!(request.path.starts_with("/api/v1/"), "{}", request.path);
    assert_eq!(
        request.path.matches('/').count(),
        tool.source.path.matches('/').count(),
        "{}: {} has a different number of segments",
        tool.name(),
        request.path
    );
    assert!(url.fragment().is_none(), "{}", request.url);
    assert!(
        !request.path.contains("%2F"),
        "{}: a slash in an argument reached the path {}",
        tool.name(),
        request.path
    );
    assert!(
        request.url.len() <= upstream::MAX_URL_BYTES,
        "{}: a URL of {} bytes",
        tool.name(),
        request.url.len()
    );
}

/// One manifest file in local mode, then every server in it resolved as local mode does.
pub fn manifest(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut m = Manifests::default();
    manifest::parse_into(&text, "fuzz.yaml", &mut m);
    let documents = manifest::documents(&text).len();
    for e in &m.errors {
        assert!(e.document >= 1 && e.document <= documents, "{e}");
    }
    let fx = fixture();
    for server in &m.servers {
        check_resolution(server, &m, &fx.catalog);
    }
}

fn check_resolution(server: &AtomicworkMcpServer, secrets: &dyn SecretLookup, catalog: &Catalog) {
    assert!(
        server
            .metadata
            .name
            .as_deref()
            .is_some_and(|n| !n.is_empty())
    );
    let res = resolve::resolve(server, secrets, catalog, now(), &ResolveOptions::default());
    if let Ok(view) = &res.view {
        assert!(!view.tools.is_empty(), "a served server with no tools");
        assert_eq!(view.id, res.id);
    }
}

/// Rate-limit headers as `name: value` lines, read at three clocks. What is passed on
/// must be sendable as headers and read back the same.
pub fn rate_limit_headers(data: &[u8]) {
    let headers = header_lines(data);
    for now in [now(), Timestamp::MIN, Timestamp::MAX] {
        let Some(info) = RateLimitInfo::from_headers(&headers, now) else {
            continue;
        };
        let _ = info.wait_seconds();
        let mut echoed = HeaderMap::new();
        for (name, value) in info.headers() {
            let value = HeaderValue::from_str(&value)
                .unwrap_or_else(|e| panic!("{name}: {value:?} is not a header value: {e}"));
            echoed.insert(name, value);
        }
        let again = RateLimitInfo::from_headers(&echoed, now).unwrap_or_default();
        assert_eq!(again.limit, info.limit, "limit changes when passed on");
        assert_eq!(again.remaining, info.remaining, "remaining changes");
        assert_eq!(again.retry_after, info.retry_after, "retry-after changes");
    }
}
