//! OpenTelemetry traces of the data plane: a server span per MCP request, a client span
//! per Atomicwork HTTP request, and a span for a person's approval, exported over OTLP
//! (HTTP/protobuf or gRPC) with the official `opentelemetry` crates.
//!
//! Tracing is off unless an OTLP endpoint is configured (see [`settings`]); when it is
//! off nothing here runs: the callers hold an `Option<Arc<Tracing>>` and skip all of it
//! on `None`. Trace context comes in as W3C `traceparent`/`tracestate`/`baggage`, from a
//! request's `params._meta` (as the MCP semantic conventions say) or else from its HTTP
//! headers, and goes out to Atomicwork as `traceparent`/`tracestate` only (baggage is
//! never sent to a third party).
//!
//! No attribute ever carries a token, an API key, a bearer value, an argument value or
//! a result body: the attributes are built only from the names in [`attr`], with values
//! that are method and tool names, protocol versions, request ids, status codes and the
//! upstream's host.

mod queue;
mod settings;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::propagation::{
    Extractor, Injector, TextMapCompositePropagator, TextMapPropagator,
};
use opentelemetry::trace::{SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

pub use opentelemetry::trace::FutureExt;
pub use queue::{DropReason, SpanDrops};
pub(crate) use settings::Protocol;
use settings::Settings;
pub use settings::SettingsError;

/// Attribute names used on spans (OpenTelemetry semantic conventions, and this
/// program's own under `atomicwork_mcp.`).
pub(crate) mod attr {
    pub(crate) const MCP_METHOD_NAME: &str = "mcp.method.name";
    pub(crate) const MCP_PROTOCOL_VERSION: &str = "mcp.protocol.version";
    pub(crate) const JSONRPC_REQUEST_ID: &str = "jsonrpc.request.id";
    pub(crate) const RPC_RESPONSE_STATUS_CODE: &str = "rpc.response.status_code";
    pub(crate) const GEN_AI_TOOL_NAME: &str = "gen_ai.tool.name";
    pub(crate) const GEN_AI_OPERATION_NAME: &str = "gen_ai.operation.name";
    pub(crate) const ERROR_TYPE: &str = "error.type";
    pub(crate) const NETWORK_TRANSPORT: &str = "network.transport";
    pub(crate) const NETWORK_PROTOCOL_NAME: &str = "network.protocol.name";
    pub(crate) const NETWORK_PROTOCOL_VERSION: &str = "network.protocol.version";
    pub(crate) const HTTP_REQUEST_METHOD: &str = "http.request.method";
    pub(crate) const HTTP_RESPONSE_STATUS_CODE: &str = "http.response.status_code";
    pub(crate) const HTTP_REQUEST_RESEND_COUNT: &str = "http.request.resend_count";
    pub(crate) const URL_TEMPLATE: &str = "url.template";
    pub(crate) const SERVER_ADDRESS: &str = "server.address";
    pub(crate) const SERVER_PORT: &str = "server.port";
    /// The namespace of the AtomicworkMcpServer a request is for.
    pub(crate) const SERVER_NAMESPACE: &str = "atomicwork_mcp.server.namespace";
    /// The name of the AtomicworkMcpServer a request is for.
    pub(crate) const SERVER_NAME: &str = "atomicwork_mcp.server.name";
    /// What became of the call, as the `atomicwork_mcp_tool_calls_total` label names it.
    pub(crate) const CALL_OUTCOME: &str = "atomicwork_mcp.call.outcome";
    /// The approval step: asked, approved, declined, cancelled, expired, rejected,
    /// refused or allowed_without_approval (the audit log's `approval` field).
    pub(crate) const APPROVAL_STEP: &str = "atomicwork_mcp.approval.step";
    /// Why a step ended as it did, when the audit log gives a detail.
    pub(crate) const APPROVAL_DETAIL: &str = "atomicwork_mcp.approval.detail";
}

/// The `error.type` of a tool call whose result is an error result (`isError: true`).
pub(crate) const TOOL_ERROR: &str = "tool_error";

/// The trace and span a request's log lines name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceIds {
    /// The trace the request belongs to (the caller's, when it sent one).
    pub trace_id: opentelemetry::TraceId,
    /// The request's server span.
    pub span_id: opentelemetry::SpanId,
}

impl TraceIds {
    /// The ids of the span in `cx`, when it has a valid one.
    pub(crate) fn of(cx: &Context) -> Option<TraceIds> {
        let span = cx.span();
        let sc = span.span_context();
        sc.is_valid().then(|| TraceIds {
            trace_id: sc.trace_id(),
            span_id: sc.span_id(),
        })
    }
}

/// How long a stopping process waits for its last spans to be exported.
pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// Traces of this process: the tracer, the propagators and the export task.
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    extract: TextMapCompositePropagator,
    inject: TraceContextPropagator,
    drops: SpanDrops,
    stop: CancellationToken,
    export_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    protocol: Protocol,
}

impl std::fmt::Debug for Tracing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracing")
            .field("protocol", &self.protocol)
            .finish()
    }
}

/// Tracing could not be started.
#[derive(Debug, thiserror::Error)]
pub enum TracingError {
    /// An `OTEL_*` variable has a value that cannot be used.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The official exporter refused its configuration (an endpoint it cannot parse, a
    /// compression it does not support).
    #[error("cannot create the OTLP exporter: {0}")]
    Exporter(String),
}

impl Tracing {
    /// Starts tracing as the process environment configures it; `Ok(None)` when it is
    /// off. Needs a Tokio runtime (the export task runs on it).
    pub fn from_env() -> Result<Option<Arc<Tracing>>, TracingError> {
        let Some(settings) = Settings::from_vars(|name| std::env::var(name).ok())? else {
            return Ok(None);
        };
        let builder = opentelemetry_otlp::SpanExporter::builder();
        let exporter = match settings.protocol {
            Protocol::HttpProtobuf => builder.with_http().build(),
            Protocol::Grpc => builder.with_tonic().build(),
        }
        .map_err(|e| TracingError::Exporter(e.to_string()))?;
        let tracing = Tracing::start(exporter, settings);
        tracing::info!(
            protocol = tracing.protocol().label(),
            "exporting traces over OTLP, as the OTEL_* environment variables configure"
        );
        Ok(Some(Arc::new(tracing)))
    }

    /// Starts tracing with `exporter`.
    fn start<E: opentelemetry_sdk::trace::SpanExporter + 'static>(
        mut exporter: E,
        settings: Settings,
    ) -> Tracing {
        let resource = Resource::builder_empty()
            .with_attributes(settings.resource)
            .build();
        exporter.set_resource(&resource);
        let drops = SpanDrops::default();
        let stop = CancellationToken::new();
        let (processor, task) = queue::start(exporter, settings.queue, drops.clone(), stop.clone());
        let provider = SdkTracerProvider::builder()
            .with_sampler(settings.sampler)
            .with_resource(resource)
            .with_span_processor(processor)
            .build();
        let tracer = provider.tracer(env!("CARGO_PKG_NAME"));
        Tracing {
            provider,
            tracer,
            extract: TextMapCompositePropagator::new(vec![
                Box::new(TraceContextPropagator::new()),
                Box::new(BaggagePropagator::new()),
            ]),
            inject: TraceContextPropagator::new(),
            drops,
            stop,
            export_task: Mutex::new(Some(task)),
            protocol: settings.protocol,
        }
    }

    /// The transport spans are exported with.
    fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Spans dropped instead of exported.
    pub fn drops(&self) -> &SpanDrops {
        &self.drops
    }

    /// The remote parent of a request: W3C trace context from the message's
    /// `params._meta` when it carries a `traceparent`, else from the HTTP headers.
    pub(crate) fn extract(
        &self,
        meta: Option<&Map<String, Value>>,
        headers: &HeaderMap,
    ) -> Context {
        match meta.filter(|m| m.get("traceparent").is_some_and(Value::is_string)) {
            Some(meta) => self.extract.extract(&MetaCarrier(meta)),
            None => self.extract.extract(&HeaderCarrier(headers)),
        }
    }

    /// Starts a span of `kind` under `parent` and returns the context holding it.
    pub(crate) fn start_span(
        &self,
        parent: &Context,
        kind: SpanKind,
        name: String,
        start: Option<SystemTime>,
        attributes: Vec<KeyValue>,
    ) -> Context {
        let mut builder = self
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_attributes(attributes);
        if let Some(start) = start {
            builder = builder.with_start_time(start);
        }
        let span = builder.start_with_context(&self.tracer, parent);
        parent.with_span(span)
    }

    /// The `traceparent` (and `tracestate`, when there is one) that names the span in
    /// `cx` to the next hop.
    pub(crate) fn outgoing(&self, cx: &Context) -> Vec<(HeaderName, HeaderValue)> {
        let mut out = OutgoingHeaders(Vec::with_capacity(2));
        self.inject.inject_context(cx, &mut out);
        out.0
    }

    /// Stops tracing: what is queued is exported (each export bounded by the export
    /// timeout), waiting at most `timeout` in all.
    pub async fn shutdown(&self, timeout: Duration) {
        self.stop.cancel();
        let task = self.export_task.lock().ok().and_then(|mut t| t.take());
        if let Some(task) = task
            && tokio::time::timeout(timeout, task).await.is_err()
        {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "trace export did not finish before shutdown; the rest is dropped"
            );
        }
        let _ = self.provider.shutdown();
    }
}

/// Ends the span in `cx`, marking it failed with `error_type` when given.
pub(crate) fn end_span(cx: &Context, error_type: Option<String>, more: Vec<KeyValue>) {
    let span = cx.span();
    if !span.is_recording() {
        return;
    }
    for kv in more {
        span.set_attribute(kv);
    }
    if let Some(e) = error_type {
        span.set_status(Status::error(e.clone()));
        span.set_attribute(KeyValue::new(attr::ERROR_TYPE, e));
    }
    span.end();
}

/// Ends a span exactly once: with [`SpanGuard::finish`], or, when the work it times is
/// dropped before finishing (a request's deadline passed), with the error given at start.
pub(crate) struct SpanGuard {
    cx: Option<Context>,
    on_drop: String,
}

impl SpanGuard {
    /// Guards the span in `cx`; `on_drop` is its `error.type` if it is never finished.
    pub(crate) fn new(cx: Context, on_drop: String) -> SpanGuard {
        SpanGuard {
            cx: Some(cx),
            on_drop,
        }
    }

    /// Ends the span, failed with `error_type` when given, with `more` attributes.
    pub(crate) fn finish(mut self, error_type: Option<String>, more: Vec<KeyValue>) {
        if let Some(cx) = self.cx.take() {
            end_span(&cx, error_type, more);
        }
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        if let Some(cx) = self.cx.take() {
            end_span(&cx, Some(std::mem::take(&mut self.on_drop)), Vec::new());
        }
    }
}

/// Reads trace context from a message's `params._meta`.
struct MetaCarrier<'a>(&'a Map<String, Value>);

impl Extractor for MetaCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(Value::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

/// Reads trace context from HTTP headers.
struct HeaderCarrier<'a>(&'a HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Collects the headers to send to the next hop.
struct OutgoingHeaders(Vec<(HeaderName, HeaderValue)>);

impl Injector for OutgoingHeaders {
    fn set(&mut self, key: &str, value: String) {
        // An empty `tracestate` says nothing; it is left out.
        if value.is_empty() {
            return;
        }
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.push((name, value));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Mutex as StdMutex;

    use opentelemetry_sdk::error::OTelSdkResult;
    use opentelemetry_sdk::trace::SpanData;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Clone, Default)]
    struct Collect(Arc<StdMutex<Vec<SpanData>>>);

    impl opentelemetry_sdk::trace::SpanExporter for Collect {
        async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
            self.0.lock().unwrap().extend(batch);
            Ok(())
        }
    }

    fn tracing(vars: &[(&str, &str)]) -> (Tracing, Collect) {
        let mut map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        map.insert(
            "OTEL_EXPORTER_OTLP_ENDPOINT".into(),
            "http://unused:4318".into(),
        );
        map.insert("OTEL_BSP_SCHEDULE_DELAY".into(), "10".into());
        let settings = Settings::from_vars(|n| map.get(n).cloned())
            .unwrap()
            .unwrap();
        let collect = Collect::default();
        (Tracing::start(collect.clone(), settings), collect)
    }

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[tokio::test]
    async fn meta_wins_over_headers_and_headers_are_the_fallback() {
        let (t, _) = tracing(&[]);
        let mut headers = HeaderMap::new();
        headers.insert(
            "traceparent",
            HeaderValue::from_static("00-11111111111111111111111111111111-2222222222222222-01"),
        );
        let meta = json!({"traceparent": PARENT, "tracestate": "rojo=00f067aa0ba902b7"});
        let cx = t.extract(meta.as_object(), &headers);
        let sc = cx.span().span_context().clone();
        assert_eq!(
            sc.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(sc.span_id().to_string(), "00f067aa0ba902b7");
        assert!(sc.is_remote() && sc.is_sampled());
        assert_eq!(sc.trace_state().get("rojo"), Some("00f067aa0ba902b7"));

        let no_trace_meta = json!({"progressToken": 1});
        let cx = t.extract(no_trace_meta.as_object(), &headers);
        assert_eq!(
            cx.span().span_context().trace_id().to_string(),
            "11111111111111111111111111111111"
        );
        // A malformed traceparent is no parent at all.
        let bad = json!({"traceparent": "00-zz-1-01"});
        let cx = t.extract(bad.as_object(), &HeaderMap::new());
        assert!(!cx.span().span_context().is_valid());
        t.shutdown(Duration::from_secs(1)).await;
    }

    #[tokio::test]
    async fn a_child_span_continues_the_trace_and_names_itself_to_the_next_hop() {
        let (t, collect) = tracing(&[]);
        let meta = json!({"traceparent": PARENT, "baggage": "user=alice"});
        let parent = t.extract(meta.as_object(), &HeaderMap::new());
        let server = t.start_span(
            &parent,
            SpanKind::Server,
            "tools/call x".into(),
            None,
            vec![],
        );
        let client = t.start_span(&server, SpanKind::Client, "GET".into(), None, vec![]);
        let out = t.outgoing(&client);
        let names: Vec<&str> = out.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["traceparent"], "baggage is never sent upstream");
        let sent = out[0].1.to_str().unwrap().to_string();
        let client_ids = TraceIds::of(&client).unwrap();
        assert_eq!(
            sent,
            format!("00-{}-{}-01", client_ids.trace_id, client_ids.span_id)
        );
        end_span(&client, Some("503".into()), vec![]);
        end_span(&server, None, vec![]);
        t.shutdown(Duration::from_secs(2)).await;
        let spans = collect.0.lock().unwrap();
        assert_eq!(spans.len(), 2);
        let client_span = spans.iter().find(|s| s.name == "GET").unwrap();
        let server_span = spans.iter().find(|s| s.name == "tools/call x").unwrap();
        assert_eq!(
            client_span.parent_span_id,
            server_span.span_context.span_id()
        );
        assert_eq!(
            server_span.parent_span_id.to_string(),
            "00f067aa0ba902b7",
            "the client's span is the server span's parent"
        );
        assert!(matches!(client_span.status, Status::Error { .. }));
        assert!(
            client_span
                .attributes
                .iter()
                .any(|kv| kv.key.as_str() == attr::ERROR_TYPE && kv.value.as_str() == "503")
        );
    }

    #[tokio::test]
    async fn a_span_whose_work_is_dropped_ends_with_the_error_given_at_start() {
        let (t, collect) = tracing(&[]);
        let cx = t.start_span(
            &Context::new(),
            SpanKind::Server,
            "cut".into(),
            None,
            vec![],
        );
        let work = {
            let guard = SpanGuard::new(cx, "-31006".into());
            async move {
                std::future::pending::<()>().await;
                guard.finish(None, vec![]);
            }
        };
        // The deadline passes: the future (and the guard in it) is dropped unfinished.
        assert!(
            tokio::time::timeout(Duration::from_millis(10), work)
                .await
                .is_err()
        );
        let finished = t.start_span(
            &Context::new(),
            SpanKind::Server,
            "done".into(),
            None,
            vec![],
        );
        SpanGuard::new(finished, "-31006".into()).finish(None, vec![]);
        t.shutdown(Duration::from_secs(2)).await;
        let spans = collect.0.lock().unwrap();
        let error_of = |name: &str| {
            let span = spans.iter().find(|s| s.name == name).unwrap();
            span.attributes
                .iter()
                .find(|kv| kv.key.as_str() == attr::ERROR_TYPE)
                .map(|kv| kv.value.to_string())
        };
        assert_eq!(error_of("cut").as_deref(), Some("-31006"));
        assert_eq!(
            error_of("done"),
            None,
            "a finished span is ended once, by finish"
        );
        assert_eq!(spans.len(), 2);
    }

    #[tokio::test]
    async fn an_unsampled_parent_is_honoured_by_the_default_sampler() {
        let (t, collect) = tracing(&[]);
        let meta =
            json!({"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"});
        let parent = t.extract(meta.as_object(), &HeaderMap::new());
        let server = t.start_span(&parent, SpanKind::Server, "ping".into(), None, vec![]);
        assert!(!server.span().is_recording());
        end_span(&server, None, vec![]);
        t.shutdown(Duration::from_secs(1)).await;
        assert!(collect.0.lock().unwrap().is_empty());
    }
}
