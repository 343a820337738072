//! Prometheus metrics of the data plane, in one explicit registry.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::mcp::{Operation, Outcome};
use crate::metrics::encode;
use crate::telemetry::SpanDrops;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    /// `None` (written as an empty value) when the token matched no server.
    pub(crate) server: Option<Arc<str>>,
    pub(crate) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct CallLabels {
    pub(crate) server: Arc<str>,
    pub(crate) tool: String,
    pub(crate) outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ToolLabels {
    pub(crate) tool: String,
}

/// The labels of `mcp.server.operation.duration`, named as the OpenTelemetry semantic
/// conventions for MCP name its attributes (dots written as underscores). Every value
/// comes from a bounded set (see `mcp::Operation`).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OperationLabels {
    pub(crate) mcp_method_name: &'static str,
    pub(crate) gen_ai_tool_name: Option<String>,
    pub(crate) gen_ai_operation_name: Option<&'static str>,
    pub(crate) error_type: Option<String>,
    pub(crate) mcp_protocol_version: Option<&'static str>,
    pub(crate) network_transport: &'static str,
}

/// The bucket boundaries the conventions advise for `mcp.server.operation.duration`, in
/// seconds.
const OPERATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];

/// Data-plane metrics.
pub struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
    /// `mcp_server_operation_duration_seconds`: from a request's arrival to its answer.
    pub(crate) operations: Family<OperationLabels, Histogram>,
    pub(crate) tool_calls: Family<CallLabels, Counter>,
    pub(crate) upstream_latency: Family<ToolLabels, Histogram>,
    pub(crate) registry_servers: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    pub(crate) fn new() -> Self {
        let mut root = Registry::default();
        let operations = Family::<OperationLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(OPERATION_BUCKETS)
        });
        // The conventions' own name, beside this program's prefixed metrics.
        root.register_with_unit(
            "mcp_server_operation_duration",
            "MCP request duration as observed on the server, from the request's arrival until its answer (OpenTelemetry semantic conventions for MCP)",
            prometheus_client::registry::Unit::Seconds,
            operations.clone(),
        );
        let registry = root.sub_registry_with_prefix("atomicwork_mcp");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "mcp_requests",
            "MCP requests by server and outcome",
            requests.clone(),
        );
        let tool_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "tool_calls",
            "Tool calls by server, tool and outcome",
            tool_calls.clone(),
        );
        let upstream_latency = Family::<ToolLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
        });
        registry.register(
            "upstream_latency_seconds",
            "Atomicwork API call latency by tool",
            upstream_latency.clone(),
        );
        let registry_servers = Gauge::default();
        registry.register(
            "registry_servers",
            "MCP servers currently served",
            registry_servers.clone(),
        );
        Metrics {
            registry: root,
            requests,
            operations,
            tool_calls,
            upstream_latency,
            registry_servers,
        }
    }

    /// Counts one request; `server` is `None` when the token matched no server.
    pub(crate) fn request(&self, server: Option<&Arc<str>>, outcome: Outcome) {
        self.requests
            .get_or_create(&RequestLabels {
                server: server.cloned(),
                outcome: outcome.label(),
            })
            .inc();
    }

    /// Observes one MCP operation that took `seconds`.
    pub(crate) fn operation(&self, op: &Operation, seconds: f64) {
        self.operations
            .get_or_create(&OperationLabels {
                mcp_method_name: op.method,
                gen_ai_tool_name: op.tool.clone(),
                gen_ai_operation_name: op.gen_ai_operation(),
                error_type: op.error.map(|e| e.label()),
                mcp_protocol_version: op.protocol_version,
                network_transport: "tcp",
            })
            .observe(seconds);
    }

    /// Exposes the count of trace spans dropped instead of exported, as
    /// `atomicwork_mcp_trace_spans_dropped_total{reason}`.
    pub(crate) fn register_span_drops(&mut self, drops: &SpanDrops) {
        self.registry
            .sub_registry_with_prefix("atomicwork_mcp")
            .register(
                "trace_spans_dropped",
                "Trace spans dropped instead of exported, by reason (queue_full: the export queue was full; export_failed: the collector refused, was unreachable or too slow)",
                drops.family(),
            );
    }

    /// The text exposition format.
    pub fn encode(&self) -> String {
        encode(&self.registry)
    }
}
