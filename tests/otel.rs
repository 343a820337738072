//! OpenTelemetry traces, end to end: the real `atomicwork-mcp local` process exports to an
//! OTLP receiver run in this test (HTTP/protobuf, and gRPC), which decodes what arrives
//! with the official OTLP protobuf types; the tenant is a wiremock server that records the
//! `traceparent` it was sent.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::LocalProcess;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode as SpanStatus;
use prost::Message as _;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

/// Values that must never appear in anything exported.
const API_KEY: &str = "otel-test-api-key-5f3a9c1e7b";
const BEARER: &str = "otel-client-bearer-8d2e4f6a0c";
const ARGUMENT: &str = "ITREQ-ARGVALUE-4417";
const RESULT_TEXT: &str = "result-body-marker-9b7c5d3e";

/// The client's own span, sent in `params._meta`.
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

const TOOL: &str = "get_single_atomicwork_requests_id_by_id";

/// One exported span, flattened with its service name.
#[derive(Debug, Clone)]
struct Exported {
    service: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: i32,
    status: i32,
    start_ns: u64,
    end_ns: u64,
    attributes: BTreeMap<String, String>,
}

impl Exported {
    fn attr(&self, key: &str) -> Option<&str> {
        self.attributes.get(key).map(String::as_str)
    }
}

fn any_text(v: &Option<opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match v.as_ref().and_then(|v| v.value.as_ref()) {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn flatten(req: ExportTraceServiceRequest) -> Vec<Exported> {
    let mut out = Vec::new();
    for rs in req.resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .map(|kv| any_text(&kv.value))
            .unwrap_or_default();
        for ss in rs.scope_spans {
            for s in ss.spans {
                out.push(Exported {
                    service: service.clone(),
                    trace_id: hex(&s.trace_id),
                    span_id: hex(&s.span_id),
                    parent_span_id: hex(&s.parent_span_id),
                    name: s.name.clone(),
                    kind: s.kind,
                    status: s.status.as_ref().map_or(0, |st| st.code),
                    start_ns: s.start_time_unix_nano,
                    end_ns: s.end_time_unix_nano,
                    attributes: s
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), any_text(&kv.value)))
                        .collect(),
                });
            }
        }
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// How the receiver answers.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Mode {
    Accept,
    /// Waits this long before accepting.
    Slow(Duration),
}

/// An OTLP/HTTP trace receiver: decodes each export with the official protobuf types.
#[derive(Clone)]
struct Receiver {
    spans: Arc<Mutex<Vec<Exported>>>,
    raw: Arc<Mutex<Vec<u8>>>,
    mode: Arc<Mutex<Mode>>,
    exports: Arc<Mutex<u64>>,
}

impl Receiver {
    fn new() -> Receiver {
        Receiver {
            spans: Arc::default(),
            raw: Arc::default(),
            mode: Arc::new(Mutex::new(Mode::Accept)),
            exports: Arc::default(),
        }
    }

    fn accept(&self, req: ExportTraceServiceRequest, raw: &[u8]) {
        self.raw.lock().unwrap().extend_from_slice(raw);
        *self.exports.lock().unwrap() += 1;
        self.spans.lock().unwrap().extend(flatten(req));
    }

    fn spans(&self) -> Vec<Exported> {
        self.spans.lock().unwrap().clone()
    }

    /// Waits until spans named by `want` have all arrived.
    async fn wait_for(&self, want: &[&str]) -> Vec<Exported> {
        for _ in 0..200 {
            let spans = self.spans();
            if want.iter().all(|w| spans.iter().any(|s| s.name == *w)) {
                return spans;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("spans {want:?} never arrived; got {:#?}", self.spans());
    }

    /// Serves OTLP/HTTP on a loopback port; returns the base endpoint.
    async fn serve_http(&self) -> (String, tokio::task::JoinHandle<()>) {
        async fn traces(
            State(r): State<Receiver>,
            headers: HeaderMap,
            body: Bytes,
        ) -> (StatusCode, Vec<u8>) {
            assert_eq!(
                headers.get("content-type").and_then(|v| v.to_str().ok()),
                Some("application/x-protobuf")
            );
            let mode = *r.mode.lock().unwrap();
            if let Mode::Slow(d) = mode {
                tokio::time::sleep(d).await;
            }
            let req = ExportTraceServiceRequest::decode(body.as_ref()).expect("OTLP protobuf");
            r.accept(req, &body);
            (
                StatusCode::OK,
                ExportTraceServiceResponse::default().encode_to_vec(),
            )
        }
        let app = axum::Router::new()
            .route("/v1/traces", post(traces))
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        (format!("http://{addr}"), task)
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let req = request.into_inner();
        let raw = req.encode_to_vec();
        self.accept(req, &raw);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// The tenant: answers the request tool, recording each request's headers.
async fn tenant(seen: Arc<Mutex<Vec<HeaderMap>>>, fail_first: bool) -> MockServer {
    let server = MockServer::start().await;
    let answer = move |req: &Request| {
        let mut seen = seen.lock().unwrap();
        seen.push(req.headers.clone());
        if fail_first && seen.len() == 1 {
            return ResponseTemplate::new(503).insert_header("retry-after", "0");
        }
        ResponseTemplate::new(200).set_body_json(json!({"id": ARGUMENT, "subject": RESULT_TEXT}))
    };
    Mock::given(method("GET"))
        .and(path(format!("/api/v1/requests/{ARGUMENT}")))
        .respond_with(answer)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/api/v1/requests/ITREQ-MISSING"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "not found"})))
        .mount(&server)
        .await;
    server
}

fn manifest(base_url: &str, extra: &str) -> String {
    format!(
        "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: traced, namespace: it-ops}}\nspec:\n  atomicwork:\n    baseUrl: {base_url}\n    apiKeySecretRef: {{name: atomicwork-api}}\n    workspaceId: \"1\"\n  methods: [read]\n  requireApiTokenAuth: true\n  apiTokenSecretRef: {{name: mcp-clients}}\n{extra}---\napiVersion: v1\nkind: Secret\nmetadata: {{name: atomicwork-api, namespace: it-ops}}\nstringData: {{apiKey: {API_KEY}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: mcp-clients, namespace: it-ops}}\nstringData: {{alice: {BEARER}}}\n"
    )
}

/// Starts local mode serving `manifest` with `env`; returns the process and the URL.
async fn start(
    dir: &tempfile::TempDir,
    manifest: &str,
    env: &[(&str, &str)],
) -> (LocalProcess, String) {
    let manifests = dir.path().join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(manifests.join("server.yaml"), manifest).unwrap();
    let state = dir.path().join("state");
    let log = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
    let mut env: Vec<(&str, &str)> = env.to_vec();
    env.push(("LOG_FORMAT", "json"));
    env.push(("OTEL_BSP_SCHEDULE_DELAY", "100"));
    let mut p = LocalProcess::spawn_args(&manifests, &state, log.into(), &env, &[]);
    let urls = p.read_summary().await;
    let url = urls.get("it-ops/traced").cloned().expect("served");
    (p, url)
}

/// Calls a tool with the client's trace context in `_meta` (2025-11-25 request style).
async fn call(url: &str, id: &str, meta_traceparent: Option<&str>) -> Value {
    let mut params = json!({"name": TOOL, "arguments": {"id": id}});
    if let Some(tp) = meta_traceparent {
        params["_meta"] = json!({"traceparent": tp, "tracestate": "vendor=opaque"});
    }
    let body = json!({"jsonrpc": "2.0", "id": "req-7", "method": "tools/call", "params": params});
    let auth = format!("Bearer {BEARER}");
    let resp = common::post(
        url,
        &body.to_string(),
        &[
            ("authorization", auth.as_str()),
            ("mcp-protocol-version", "2025-11-25"),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

async fn metrics(url: &str) -> String {
    let base = url.split("/mcp/").next().unwrap();
    reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The value of one sample line of the exposition, or 0 when it is absent.
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

/// Asserts none of the secrets, argument values or result text is in `haystack`.
fn assert_clean(haystack: &str, what: &str, url_token: &str) {
    for secret in [API_KEY, BEARER, ARGUMENT, RESULT_TEXT, url_token] {
        assert!(!haystack.contains(secret), "{what} carries {secret:?}");
    }
}

#[tokio::test]
async fn one_trace_runs_from_the_client_through_the_data_plane_into_atomicwork() {
    let receiver = Receiver::new();
    let (endpoint, _rx) = receiver.serve_http().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = tenant(seen.clone(), true).await;
    let dir = tempfile::tempdir().unwrap();
    let retry = "  retry: {maxAttempts: 2, maxBackoffSeconds: 1}\n";
    let (mut p, url) = start(
        &dir,
        &manifest(&upstream.uri(), retry),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_SERVICE_NAME", "mcp-gateway-test"),
        ],
    )
    .await;
    let token = url.rsplit('/').next().unwrap().to_string();

    let parent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let answer = call(&url, ARGUMENT, Some(&parent)).await;
    assert_eq!(answer["result"]["isError"], json!(false), "{answer}");

    let server_name = format!("tools/call {TOOL}");
    let client_name = "GET /api/v1/requests/{id}";
    let spans = receiver.wait_for(&[&server_name, client_name]).await;
    let server = spans.iter().find(|s| s.name == server_name).unwrap();
    let attempts: Vec<&Exported> = spans.iter().filter(|s| s.name == client_name).collect();

    // One trace: the client's, with the server span under the client's span.
    assert_eq!(server.trace_id, CLIENT_TRACE);
    assert_eq!(server.parent_span_id, CLIENT_SPAN);
    assert_eq!(server.kind, SpanKind::Server as i32);
    assert_eq!(server.service, "mcp-gateway-test");
    assert_eq!(server.attr("mcp.method.name"), Some("tools/call"));
    assert_eq!(server.attr("gen_ai.tool.name"), Some(TOOL));
    assert_eq!(server.attr("gen_ai.operation.name"), Some("execute_tool"));
    assert_eq!(server.attr("mcp.protocol.version"), Some("2025-11-25"));
    assert_eq!(server.attr("jsonrpc.request.id"), Some("req-7"));
    assert_eq!(server.attr("network.transport"), Some("tcp"));
    assert_eq!(
        server.attr("atomicwork_mcp.server.namespace"),
        Some("it-ops")
    );
    assert_eq!(server.attr("atomicwork_mcp.server.name"), Some("traced"));
    assert_eq!(server.attr("error.type"), None);
    assert_ne!(server.status, SpanStatus::Error as i32);

    // Each attempt is its own client span under the server span; the retry says so.
    assert_eq!(attempts.len(), 2, "{attempts:#?}");
    for a in &attempts {
        assert_eq!(a.trace_id, CLIENT_TRACE);
        assert_eq!(a.parent_span_id, server.span_id);
        assert_eq!(a.kind, SpanKind::Client as i32);
        assert_eq!(a.attr("http.request.method"), Some("GET"));
        assert_eq!(a.attr("url.template"), Some("/api/v1/requests/{id}"));
        assert_eq!(a.attr("server.address"), Some("127.0.0.1"));
    }
    let first = attempts
        .iter()
        .find(|a| a.attr("http.request.resend_count").is_none())
        .unwrap();
    let retry = attempts
        .iter()
        .find(|a| a.attr("http.request.resend_count") == Some("1"))
        .unwrap();
    assert_eq!(first.attr("http.response.status_code"), Some("503"));
    assert_eq!(first.attr("error.type"), Some("503"));
    assert_eq!(first.status, SpanStatus::Error as i32);
    assert_eq!(retry.attr("http.response.status_code"), Some("200"));
    assert_eq!(retry.attr("error.type"), None);

    // Atomicwork was told each attempt's span, and never the client's baggage or state
    // beyond the trace context.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    for (headers, span) in seen.iter().zip([first, retry]) {
        let tp = headers["traceparent"].to_str().unwrap();
        assert_eq!(tp, format!("00-{CLIENT_TRACE}-{}-01", span.span_id));
        assert_eq!(headers["tracestate"].to_str().unwrap(), "vendor=opaque");
        assert!(headers.get("baggage").is_none());
    }

    // The log lines of the call name the trace.
    let log = std::fs::read_to_string(dir.path().join("stderr.log")).unwrap();
    let audit = log
        .lines()
        .find(|l| l.contains("\"tool call\""))
        .unwrap_or_else(|| panic!("no audit line: {log}"));
    assert!(
        audit.contains(CLIENT_TRACE) && audit.contains(&server.span_id),
        "{audit}"
    );
    let access = log
        .lines()
        .find(|l| l.contains("atomicwork_mcp::access") && l.contains(CLIENT_TRACE))
        .unwrap_or_else(|| panic!("no access line with the trace: {log}"));
    assert!(access.contains(&server.span_id), "{access}");

    // The semantic-conventions histogram counted the call.
    let m = metrics(&url).await;
    let count = sample(
        &m,
        &format!(
            "mcp_server_operation_duration_seconds_count{{mcp_method_name=\"tools/call\",gen_ai_tool_name=\"{TOOL}\",gen_ai_operation_name=\"execute_tool\",error_type=\"\",mcp_protocol_version=\"2025-11-25\",network_transport=\"tcp\"}}"
        ),
    );
    assert_eq!(count, 1.0, "{m}");

    // Nothing secret in any exported byte: not the API key, the bearer, the URL token,
    // the argument value or the result text.
    let raw = String::from_utf8_lossy(&receiver.raw.lock().unwrap()).into_owned();
    assert_clean(&raw, "the OTLP export", &token);
    for s in receiver.spans() {
        assert_clean(&format!("{s:?}"), &s.name, &token);
    }
    assert_clean(&log, "the log", &token);
    p.child.kill().await.unwrap();
}

#[tokio::test]
async fn errors_are_typed_and_headers_carry_the_parent_when_meta_does_not() {
    let receiver = Receiver::new();
    let (endpoint, _rx) = receiver.serve_http().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = tenant(seen, false).await;
    let dir = tempfile::tempdir().unwrap();
    let traces_endpoint = format!("{endpoint}/v1/traces");
    let (mut p, url) = start(
        &dir,
        &manifest(&upstream.uri(), ""),
        &[(
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            traces_endpoint.as_str(),
        )],
    )
    .await;

    // A tool error result (the tenant answers 404), parent from the HTTP header.
    let header_trace = "0af7651916cd43dd8448eb211c80319c";
    let body = json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call",
        "params": {"name": TOOL, "arguments": {"id": "ITREQ-MISSING"}}});
    let auth = format!("Bearer {BEARER}");
    let traceparent = format!("00-{header_trace}-b7ad6b7169203331-01");
    let resp = common::post(
        &url,
        &body.to_string(),
        &[
            ("authorization", auth.as_str()),
            ("traceparent", traceparent.as_str()),
        ],
    )
    .await;
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(answer["result"]["isError"], json!(true), "{answer}");

    // A JSON-RPC error: an unknown method, which is recorded as _OTHER.
    let body = json!({"jsonrpc": "2.0", "id": 10, "method": "tools/evil", "params": {}});
    common::post(&url, &body.to_string(), &[("authorization", auth.as_str())]).await;

    let spans = receiver
        .wait_for(&[&format!("tools/call {TOOL}"), "_OTHER"])
        .await;
    let call = spans
        .iter()
        .find(|s| s.name == format!("tools/call {TOOL}"))
        .unwrap();
    assert_eq!(call.trace_id, header_trace);
    assert_eq!(call.parent_span_id, "b7ad6b7169203331");
    assert_eq!(call.attr("error.type"), Some("tool_error"));
    assert_eq!(call.attr("jsonrpc.request.id"), Some("9"));
    assert_eq!(call.status, SpanStatus::Error as i32);
    let client = spans
        .iter()
        .find(|s| s.kind == SpanKind::Client as i32)
        .unwrap();
    assert_eq!(client.attr("error.type"), Some("404"));
    assert_eq!(client.parent_span_id, call.span_id);

    let other = spans.iter().find(|s| s.name == "_OTHER").unwrap();
    assert_eq!(other.attr("mcp.method.name"), Some("_OTHER"));
    assert_eq!(other.attr("error.type"), Some("-32601"));
    assert_eq!(other.attr("rpc.response.status_code"), Some("-32601"));
    // No parent given: a new trace.
    assert_eq!(other.parent_span_id, "");
    assert_eq!(other.service, "atomicwork-mcp");
    p.child.kill().await.unwrap();
}

#[tokio::test]
async fn a_stopped_or_slow_collector_never_fails_a_call_and_drops_are_counted() {
    let receiver = Receiver::new();
    *receiver.mode.lock().unwrap() = Mode::Slow(Duration::from_secs(30));
    let (endpoint, _rx) = receiver.serve_http().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = tenant(seen.clone(), false).await;
    let dir = tempfile::tempdir().unwrap();
    let (mut p, url) = start(
        &dir,
        &manifest(&upstream.uri(), ""),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "4"),
            ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "2"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
            ("OTEL_BSP_EXPORT_TIMEOUT", "500"),
        ],
    )
    .await;
    // A slow collector: every call still succeeds, and spans beyond the queue are dropped.
    for _ in 0..20 {
        let answer = call(&url, ARGUMENT, None).await;
        assert_eq!(answer["result"]["isError"], json!(false), "{answer}");
    }
    assert_eq!(seen.lock().unwrap().len(), 20);
    let full = "atomicwork_mcp_trace_spans_dropped_total{reason=\"queue_full\"}";
    let m = metrics(&url).await;
    assert!(sample(&m, full) > 0.0, "{m}");

    // A stopped collector: an address nothing listens on. Calls succeed; failed exports
    // are counted.
    p.child.kill().await.unwrap();
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", l.local_addr().unwrap())
    };
    let dir = tempfile::tempdir().unwrap();
    let (mut p, url) = start(
        &dir,
        &manifest(&upstream.uri(), ""),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", closed.as_str()),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "500"),
        ],
    )
    .await;
    for _ in 0..3 {
        let answer = call(&url, ARGUMENT, None).await;
        assert_eq!(answer["result"]["isError"], json!(false), "{answer}");
    }
    let failed = "atomicwork_mcp_trace_spans_dropped_total{reason=\"export_failed\"}";
    let mut dropped = 0.0;
    for _ in 0..100 {
        dropped = sample(&metrics(&url).await, failed);
        if dropped >= 6.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Three calls, each a server span and a client span.
    assert_eq!(dropped, 6.0);
    p.child.kill().await.unwrap();
}

#[tokio::test]
async fn spans_are_exported_over_grpc_when_asked() {
    let receiver = Receiver::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let service = TraceServiceServer::new(receiver.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tokio_stream_of(listener))
            .await
            .unwrap();
    });
    let seen = Arc::new(Mutex::new(Vec::new()));
    let upstream = tenant(seen, false).await;
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://{addr}");
    let (mut p, url) = start(
        &dir,
        &manifest(&upstream.uri(), ""),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ],
    )
    .await;
    let parent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    call(&url, ARGUMENT, Some(&parent)).await;
    let spans = receiver
        .wait_for(&[&format!("tools/call {TOOL}"), "GET /api/v1/requests/{id}"])
        .await;
    assert!(
        spans.iter().all(|s| s.trace_id == CLIENT_TRACE),
        "{spans:#?}"
    );
    p.child.kill().await.unwrap();
}

#[tokio::test]
async fn an_unusable_setting_stops_the_start_with_the_variable_named() {
    let dir = tempfile::tempdir().unwrap();
    let manifests = dir.path().join("m");
    std::fs::create_dir_all(&manifests).unwrap();
    std::fs::write(
        manifests.join("s.yaml"),
        manifest("https://t.atomicwork.com", ""),
    )
    .unwrap();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_atomicwork-mcp"))
        .args(["local", "--listen", "127.0.0.1:0", "--manifests"])
        .arg(&manifests)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_TRACES_SAMPLER", "half_of_them")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("OTEL_TRACES_SAMPLER") && stderr.contains("half_of_them"),
        "{stderr}"
    );
}

/// A 2026-07-28 `tools/call` of a deletion, by a client that can ask a person, with the
/// client's trace context and `extra` params in the request.
async fn delete_call(url: &str, traceparent: &str, extra: Value) -> Value {
    let tool = "delete_a_atomicwork_requests_number_by_id";
    let mut params = json!({
        "name": tool,
        "arguments": {"id": "ITREQ-12"},
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientCapabilities": {"elicitation": {"form": {}}},
            "io.modelcontextprotocol/clientInfo": {"name": "otel-test", "version": "1"},
            "traceparent": traceparent,
        }
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        params[k] = v.clone();
    }
    let body = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": params});
    let resp = common::post(
        url,
        &body.to_string(),
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", tool),
        ],
    )
    .await;
    resp.json().await.unwrap()
}

#[tokio::test]
async fn a_persons_approval_is_a_span_from_the_question_to_the_answer() {
    let receiver = Receiver::new();
    let (endpoint, _rx) = receiver.serve_http().await;
    let upstream = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/api/v1/requests/ITREQ-12"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&upstream)
        .await;
    let manifest = format!(
        "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: traced, namespace: it-ops}}\nspec:\n  atomicwork:\n    baseUrl: {}\n    apiKeySecretRef: {{name: atomicwork-api}}\n    workspaceId: \"1\"\n  confirm: {{tools: destructive}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: atomicwork-api, namespace: it-ops}}\nstringData: {{apiKey: {API_KEY}}}\n",
        upstream.uri()
    );
    let dir = tempfile::tempdir().unwrap();
    let (mut p, url) = start(
        &dir,
        &manifest,
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str())],
    )
    .await;

    let asking = "0123456789abcdef0123456789abcdef";
    let answering = "fedcba9876543210fedcba9876543210";
    let asked = delete_call(&url, &format!("00-{asking}-1111111111111111-01"), json!({})).await;
    assert_eq!(asked["result"]["resultType"], "input_required", "{asked}");
    let state = asked["result"]["requestState"]
        .as_str()
        .unwrap()
        .to_string();
    let done = delete_call(
        &url,
        &format!("00-{answering}-2222222222222222-01"),
        json!({"requestState": state, "inputResponses": {"approval": {"action": "accept", "content": {"approve": true}}}}),
    )
    .await;
    assert_eq!(done["result"]["isError"], json!(false), "{done}");

    let spans = receiver.wait_for(&["DELETE /api/v1/requests/{id}"]).await;
    let approvals: Vec<&Exported> = spans
        .iter()
        .filter(|s| s.name.starts_with("approval "))
        .collect();
    assert_eq!(approvals.len(), 2, "{spans:#?}");
    let server_of = |trace: &str| {
        spans
            .iter()
            .find(|s| s.trace_id == trace && s.kind == SpanKind::Server as i32)
            .unwrap()
    };
    let question = approvals.iter().find(|s| s.trace_id == asking).unwrap();
    assert_eq!(question.attr("atomicwork_mcp.approval.step"), Some("asked"));
    assert_eq!(question.parent_span_id, server_of(asking).span_id);
    assert_eq!(question.kind, SpanKind::Internal as i32);
    let approved = approvals.iter().find(|s| s.trace_id == answering).unwrap();
    assert_eq!(
        approved.attr("atomicwork_mcp.approval.step"),
        Some("approved")
    );
    let answer_span = server_of(answering);
    assert_eq!(approved.parent_span_id, answer_span.span_id);
    // The approval span runs from when the person was asked (to the second) until the
    // answer came back: it starts no later than the answering request.
    assert!(
        approved.start_ns <= answer_span.start_ns,
        "{approved:#?} {answer_span:#?}"
    );
    assert!(approved.start_ns + 2_000_000_000 >= question.start_ns);
    assert!(approved.end_ns >= approved.start_ns);
    // The deletion ran once, under the answering request.
    let delete = spans
        .iter()
        .find(|s| s.name == "DELETE /api/v1/requests/{id}")
        .unwrap();
    assert_eq!(delete.trace_id, answering);
    assert_eq!(upstream.received_requests().await.unwrap().len(), 1);
    assert!(!String::from_utf8_lossy(&receiver.raw.lock().unwrap()).contains(&state));
    p.child.kill().await.unwrap();
}

/// The accepted connections of `listener`, as tonic's server takes them.
fn tokio_stream_of(
    listener: tokio::net::TcpListener,
) -> impl futures::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    futures::stream::unfold(listener, |l| async move {
        let conn = l.accept().await.map(|(s, _)| s);
        Some((conn, l))
    })
}
