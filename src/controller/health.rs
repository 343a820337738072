//! The controller's admin port: `/healthz` (the process runs), `/readyz` (it has joined
//! leader election, as leader or standby) and `/metrics`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::metrics::OPENMETRICS_CONTENT_TYPE;

use crate::controller::metrics::ControllerMetrics;

/// Shared state of the admin port.
#[derive(Debug, Default)]
pub(crate) struct Health {
    ready: AtomicBool,
    pub(crate) metrics: Arc<ControllerMetrics>,
}

impl Health {
    pub(crate) fn new(metrics: Arc<ControllerMetrics>) -> Self {
        Health {
            ready: AtomicBool::new(false),
            metrics,
        }
    }

    pub(crate) fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

pub(crate) fn router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(health)
}

/// Serves the admin port until `shutdown` resolves.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    health: Arc<Health>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(health))
        .with_graceful_shutdown(shutdown)
        .await
}

async fn readyz(State(h): State<Arc<Health>>) -> Response {
    if h.is_ready() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not started yet\n").into_response()
    }
}

async fn metrics(State(h): State<Arc<Health>>) -> Response {
    (
        [(header::CONTENT_TYPE, OPENMETRICS_CONTENT_TYPE)],
        h.metrics.encode(),
    )
        .into_response()
}
