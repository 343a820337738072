//! The process runtime: which roles run (the controller, the cluster-fed data plane, or
//! both for `run`), on which listeners, and how they stop together: the first SIGTERM or
//! Ctrl-C drains, a second one ends the process at once. Local mode uses the same
//! signals.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;
use kube::Client;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::controller::health::{self, Health};
use crate::controller::lease::{self, LeaseSettings};
use crate::controller::metrics::ControllerMetrics;
use crate::controller::{self, Context, Settings};
use crate::core::catalog::Catalog;
use crate::dataplane::feed;
use crate::dataplane::registry::Registry;
use crate::dataplane::{self, Dataplane, DataplaneConfig};
use crate::k8s::scope::Scope;
use crate::telemetry::Tracing;
use crate::upstream::{Upstream, UpstreamOptions};

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
    /// The operator's own namespace: the only place the data plane reads from (the
    /// runtime records there).
    pub runtime_namespace: String,
    /// The data plane's own Service, whose ready endpoints share the rate limits; `None`
    /// enforces every limit in full.
    pub service_name: Option<String>,
    pub config: DataplaneConfig,
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
    let mut settings = opts.settings;
    // The records live beside the controller's Deployment: owned by it, an uninstall
    // takes them (and the API keys they hold) away with it.
    if let Some(lease_settings) = &opts.lease
        && let Some(deployment) = lease_settings.owner_deployment.as_deref()
        && lease_settings.namespace == settings.runtime_namespace
    {
        settings.record_owner =
            lease::deployment_owner(&client, &lease_settings.namespace, deployment).await;
    }
    // The approval key every server's sealing key derives from (spec.confirm). Without
    // it the controller still runs; servers asking for approval are then InvalidSpec,
    // saying so.
    if settings.resolve.confirm_key.is_none() {
        match crate::controller::confirm_key::load_or_create(&client, &settings.runtime_namespace)
            .await
        {
            Ok(key) => settings.resolve.confirm_key = Some(key),
            Err(e) => tracing::warn!(
                error = %format!("{e:#}"),
                "no approval key: servers with spec.confirm cannot be served until the controller can read or create it"
            ),
        }
    }
    let ctx = Arc::new(Context::new(
        client.clone(),
        catalog,
        settings,
        metrics.clone(),
    ));
    match &opts.lease {
        None => {
            health.set_ready(true);
            metrics.leader.set(1);
            controller::run(ctx, &opts.scope, stop.clone()).await;
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
                controller::run(ctx_for_terms.clone(), scope, end)
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

/// Runs the data plane on `listener` until `stop`, fed from the runtime records in its
/// own namespace.
pub async fn dataplane(
    client: Client,
    catalog: Arc<Catalog>,
    opts: DataplaneOptions,
    listener: TcpListener,
    stop: CancellationToken,
) -> anyhow::Result<()> {
    let registry = Arc::new(Registry::new());
    let tracing = Tracing::from_env().context("starting OpenTelemetry tracing")?;
    let upstream = Upstream::new(UpstreamOptions::default()).context("building the HTTP client")?;
    let dp = Arc::new(
        Dataplane::new(registry.clone(), upstream, opts.config).with_tracing(tracing.clone()),
    );
    let replicas = tokio::spawn({
        let (client, replicas, stop) = (client.clone(), registry.replicas().clone(), stop.clone());
        let (namespace, service) = (opts.runtime_namespace.clone(), opts.service_name.clone());
        async move {
            dataplane::replicas::run(client, &namespace, service.as_deref(), replicas, stop).await;
        }
    });
    let namespace = opts.runtime_namespace.clone();
    let feed_stop = stop.clone();
    let feed = tokio::spawn(async move {
        feed::run(client, &namespace, registry, catalog, feed_stop).await;
    });
    let served = dataplane::serve(listener, dp, async move { stop.cancelled().await }).await;
    feed.abort();
    replicas.abort();
    if let Some(t) = tracing {
        t.shutdown(crate::telemetry::SHUTDOWN_TIMEOUT).await;
    }
    served.context("serving MCP")
}

/// Runs the roles given (the controller with its admin listen address, the data plane
/// with its MCP listen address) against the cluster kube's default configuration names
/// (KUBECONFIG, ~/.kube/config or the in-cluster service account), until SIGTERM or
/// Ctrl-C. When one role ends, the other is stopped too.
pub(crate) async fn cluster(
    catalog: Arc<Catalog>,
    controller: Option<(ControllerOptions, SocketAddr)>,
    dataplane: Option<(DataplaneOptions, SocketAddr)>,
) -> anyhow::Result<()> {
    let client = Client::try_default()
        .await
        .context("connecting to the cluster (KUBECONFIG, ~/.kube/config or in-cluster)")?;
    let stop = CancellationToken::new();
    cancel_on_signal(stop.clone());
    let run_controller = async {
        let Some((opts, listen)) = controller else {
            return Ok(());
        };
        let admin = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        let result = self::controller(
            client.clone(),
            catalog.clone(),
            opts,
            Some(admin),
            stop.clone(),
        )
        .await;
        stop.cancel();
        result
    };
    let run_dataplane = async {
        let Some((opts, listen)) = dataplane else {
            return Ok(());
        };
        let listener = TcpListener::bind(listen)
            .await
            .with_context(|| format!("binding {listen}"))?;
        tracing::info!(listen = %listen, "serving MCP");
        let result = self::dataplane(
            client.clone(),
            catalog.clone(),
            opts,
            listener,
            stop.clone(),
        )
        .await;
        stop.cancel();
        result
    };
    let (c, d) = tokio::join!(run_controller, run_dataplane);
    c.and(d)
}

/// Cancels `stop` on Ctrl-C or SIGTERM.
pub(crate) fn cancel_on_signal(stop: CancellationToken) {
    tokio::spawn(async move {
        shutdown_signal().await;
        stop.cancel();
    });
}

/// Resolves on the first Ctrl-C (SIGINT) or SIGTERM, which starts a graceful shutdown:
/// in-flight requests drain. A second signal during the drain ends the process at once
/// with a non-zero code (128 + the signal number), so nobody has to wait out a long
/// request or reach for SIGKILL.
pub(crate) async fn shutdown_signal() {
    let mut signals = Signals::new();
    let first = signals.next().await;
    tracing::info!(
        signal = first.name(),
        "shutting down: draining in-flight requests; send the signal again to exit at once"
    );
    tokio::spawn(async move {
        let second = signals.next().await;
        tracing::warn!(
            signal = second.name(),
            "second signal: exiting at once without waiting for in-flight requests"
        );
        std::process::exit(second.exit_code());
    });
}

/// A shutdown signal received.
#[derive(Debug, Clone, Copy)]
enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The shell convention for a process ended by this signal.
    fn exit_code(self) -> i32 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// SIGINT and SIGTERM listeners, registered once so that no signal between the first
/// and the second is missed (once registered, the default action no longer ends the
/// process: a signal nobody listens for is lost).
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(signal = name, error = %e, "cannot listen for the signal");
                    None
                }
            };
            Signals {
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
                terminate: listen(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal.
    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = recv(&mut self.interrupt) => Signal::Interrupt,
                _ = recv(&mut self.terminate) => Signal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}
