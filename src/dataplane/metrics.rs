//! Prometheus metrics of the data plane, in one explicit registry.

use std::sync::Arc;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::mcp::Outcome;
use crate::metrics::encode;

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

/// Data-plane metrics.
pub struct Metrics {
    registry: Registry,
    pub(crate) requests: Family<RequestLabels, Counter>,
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
        let mut registry = Registry::with_prefix("atomicwork_mcp");
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
            registry,
            requests,
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

    /// The text exposition format.
    pub fn encode(&self) -> String {
        encode(&self.registry)
    }
}
