//! Prometheus metrics of the controller, served on its own admin port.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::metrics::encode;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabels {
    pub(crate) outcome: &'static str,
}

/// How one reconcile ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReconcileOutcome {
    /// The server is Ready.
    Ready,
    /// The server was reconciled and is not Ready (its status says why).
    NotReady,
    /// The reconcile failed and is retried with backoff.
    Error,
    /// This replica does not hold the leader lease.
    Skipped,
}

impl ReconcileOutcome {
    /// The snake_case metric label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            ReconcileOutcome::Ready => "ready",
            ReconcileOutcome::NotReady => "not_ready",
            ReconcileOutcome::Error => "error",
            ReconcileOutcome::Skipped => "skipped",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ErrorLabels {
    pub(crate) error: String,
}

/// Controller metrics, served on the controller's own metrics port.
pub struct ControllerMetrics {
    registry: Registry,
    /// Reconciles by outcome: `ready`, `not_ready`, `error` or `skipped` (not leading).
    pub(crate) reconciles: Family<OutcomeLabels, Counter>,
    pub(crate) reconcile_duration: Histogram,
    /// Failed reconciles by the error's metric label.
    pub(crate) failures: Family<ErrorLabels, Counter>,
    /// 1 while this replica holds the leader lease.
    pub(crate) leader: Gauge,
}

impl Default for ControllerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for ControllerMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ControllerMetrics")
    }
}

impl ControllerMetrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("atomicwork_mcp_controller");
        let reconciles = Family::<OutcomeLabels, Counter>::default();
        registry.register("reconciles", "Reconciles by outcome", reconciles.clone());
        let reconcile_duration =
            Histogram::new([0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0]);
        registry.register(
            "reconcile_duration_seconds",
            "Time one reconcile takes, API calls included",
            reconcile_duration.clone(),
        );
        let failures = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_failures",
            "Failed reconciles by error",
            failures.clone(),
        );
        let leader = Gauge::default();
        registry.register(
            "leader",
            "1 while this replica holds the leader lease",
            leader.clone(),
        );
        ControllerMetrics {
            registry,
            reconciles,
            reconcile_duration,
            failures,
            leader,
        }
    }

    pub(crate) fn reconciled(&self, outcome: ReconcileOutcome) {
        self.reconciles
            .get_or_create(&OutcomeLabels {
                outcome: outcome.label(),
            })
            .inc();
    }

    pub(crate) fn failed(&self, error: &str) {
        self.failures
            .get_or_create(&ErrorLabels {
                error: error.to_string(),
            })
            .inc();
    }

    /// The text exposition format.
    pub(crate) fn encode(&self) -> String {
        encode(&self.registry)
    }
}
