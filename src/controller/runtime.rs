//! Wiring of the `controller`, `dataplane` and `run` commands: which tasks run, on which
//! listeners, and how they stop together.

use std::sync::Arc;

use anyhow::Context as _;
use kube::Client;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::core::catalog::Catalog;
use crate::dataplane::{self, Dataplane, DataplaneConfig};
use crate::k8s::resolve::ResolveOptions;
use crate::metrics::ControllerMetrics;
use crate::registry::Registry;
use crate::upstream::{Upstream, UpstreamOptions};

use super::feed::{self, FeedOptions};
use super::health::{self, Health};
use super::lease::{self, LeaseSettings};
use super::{Context, Settings};
use crate::k8s::scope::Scope;

/// Settings of the controller.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    pub settings: Settings,
    pub scope: Scope,
    /// `None` reconciles without leader election (a single replica, or tests).
    pub lease: Option<LeaseSettings>,
}

/// Settings of the data plane.
#[derive(Debug, Clone)]
pub struct DataplaneOptions {
    pub scope: Scope,
    pub config: DataplaneConfig,
    pub resolve: ResolveOptions,
}

/// Runs the controller until `stop`: leader election, then reconciling while leading.
/// With `admin`, serves /healthz, /readyz and /metrics there.
pub async fn controller(
    client: Client,
    catalog: Arc<Catalog>,
    opts: ControllerOptions,
    admin: Option<TcpListener>,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let metrics = Arc::new(ControllerMetrics::new());
    let health = Arc::new(Health::new(metrics.clone()));
    let admin_task = admin.map(|listener| {
        let health = health.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            health::serve(listener, health, async move { stop.cancelled().await }).await
        })
    });
    let ctx = Arc::new(Context::new(
        client.clone(),
        catalog,
        opts.settings,
        metrics.clone(),
    ));
    match &opts.lease {
        None => {
            health.set_ready(true);
            metrics.leader.set(1);
            super::run(ctx, &opts.scope, stop.clone()).await;
        }
        Some(lease_settings) => {
            ctx.set_leading(false);
            health.set_ready(true);
            let on_change = |leading: bool| {
                ctx.set_leading(leading);
                metrics.leader.set(i64::from(leading));
            };
            let scope = &opts.scope;
            let ctx_for_terms = ctx.clone();
            lease::while_leading(client, lease_settings, stop.clone(), on_change, |end| {
                super::run(ctx_for_terms.clone(), scope, end)
            })
            .await;
        }
    }
    if let Some(task) = admin_task {
        task.await
            .context("admin server task")?
            .context("serving the admin port")?;
    }
    Ok(())
}

/// Runs the data plane on `listener` until `stop`, fed from the cluster.
pub async fn dataplane(
    client: Client,
    catalog: Arc<Catalog>,
    opts: DataplaneOptions,
    listener: TcpListener,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let registry = Arc::new(Registry::new());
    let upstream = Upstream::new(UpstreamOptions::default()).context("building the HTTP client")?;
    let dp = Arc::new(Dataplane::new(registry.clone(), upstream, opts.config));
    let feed_opts = FeedOptions {
        catalog,
        resolve: opts.resolve,
    };
    let scope = opts.scope.clone();
    let feed_stop = stop.clone();
    let feed = tokio::spawn(async move {
        feed::run(client, &scope, registry, feed_opts, feed_stop).await;
    });
    let served = dataplane::serve(listener, dp, async move { stop.cancelled().await }).await;
    feed.abort();
    served.context("serving MCP")
}

/// Cancels `stop` on Ctrl-C or SIGTERM.
pub fn cancel_on_signal(stop: CancellationToken) {
    tokio::spawn(async move {
        crate::local::shutdown_signal().await;
        stop.cancel();
    });
}
