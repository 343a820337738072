//! The controller: turns `AtomicworkMcpServer` resources into token Secrets, runtime
//! records, status and Events. It never serves MCP; the data plane reads the runtime
//! records it writes in the operator's own namespace, and nothing else.
//!
//! One reconcile runs the pipeline dereference → desire → apply: `apply::dereference`
//! reads the Secrets a server names, its token Secret and its runtime record,
//! [`reconcile::desired`] decides (pure, unit-tested), `apply::apply` writes with
//! server-side apply. `records` removes the records of servers that are gone. Only the
//! holder of the leader lease ([`lease`]) runs controllers; `health` serves its admin
//! port.

pub(crate) mod apply;
pub(crate) mod conditions;
pub mod confirm_key;
pub(crate) mod health;
pub mod lease;
pub mod metrics;
pub mod reconcile;
pub(crate) mod records;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::controller::metrics::{ControllerMetrics, ReconcileOutcome};
use crate::core::catalog::Catalog;
use crate::core::server::ServerId;
use crate::k8s::crd::{AtomicworkMcpServer, GROUP};
use crate::k8s::scope::{ApiCall, SECRET_FIELD_SELECTOR, Scope};
use crate::oauth::IssuerChecker;

pub use reconcile::Settings;

/// Field manager of every server-side apply, and the Event reporter.
pub(crate) const FIELD_MANAGER: &str = "atomicwork-mcp-operator";

/// The controller's watches (see [`controller_for`]).
pub(crate) const API_CALLS: &[ApiCall] = &[
    (GROUP, "atomicworkmcpservers", "list"),
    (GROUP, "atomicworkmcpservers", "watch"),
    ("", "secrets", "list"),
    ("", "secrets", "watch"),
];

/// Every permission the controller needs in the servers' namespaces (cluster-wide, or in
/// each watched namespace); the lease's are in [`lease::API_CALLS`] and the runtime
/// records' in [`record_api_calls`], both in the operator's own namespace.
pub fn controller_api_calls() -> Vec<ApiCall> {
    API_CALLS.iter().chain(apply::API_CALLS).copied().collect()
}

/// Every permission the controller needs in the operator's own namespace: its runtime
/// records and the approval key.
pub fn record_api_calls() -> Vec<ApiCall> {
    let mut calls: Vec<ApiCall> = apply::RECORD_API_CALLS
        .iter()
        .chain(records::API_CALLS)
        .chain(confirm_key::API_CALLS)
        .copied()
        .collect();
    calls.sort();
    calls.dedup();
    calls
}

/// Why a reconcile failed. Never carries a secret value.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{op} failed: {source}")]
    Kube {
        op: Op,
        #[source]
        source: kube::Error,
    },
    #[error("reading the OS random number generator failed: {0}")]
    Random(#[source] getrandom::Error),
    #[error("the resource has no {0}")]
    Incomplete(&'static str),
}

/// The API call that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    GetSecret,
    ApplySecret,
    DeleteSecret,
    GetRecord,
    ApplyRecord,
    DeleteRecord,
    ListRecords,
    ApplyStatus,
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Op::GetSecret => "reading a Secret",
            Op::ApplySecret => "applying the token Secret",
            Op::DeleteSecret => "deleting the token Secret",
            Op::GetRecord => "reading the runtime record",
            Op::ApplyRecord => "applying the runtime record",
            Op::DeleteRecord => "deleting the runtime record",
            Op::ListRecords => "listing the runtime records",
            Op::ApplyStatus => "applying the status",
        })
    }
}

impl Error {
    /// Low-cardinality label for the failures metric.
    pub(crate) fn metric_label(&self) -> &'static str {
        match self {
            Error::Kube { op, .. } => match op {
                Op::GetSecret => "get_secret",
                Op::ApplySecret => "apply_secret",
                Op::DeleteSecret => "delete_secret",
                Op::GetRecord => "get_record",
                Op::ApplyRecord => "apply_record",
                Op::DeleteRecord => "delete_record",
                Op::ListRecords => "list_records",
                Op::ApplyStatus => "apply_status",
            },
            Error::Random(_) => "random",
            Error::Incomplete(_) => "incomplete_object",
        }
    }
}

/// What every reconcile shares.
pub struct Context {
    pub(crate) client: Client,
    /// One recorder for all reconciles, so repeated Events aggregate into series.
    pub(crate) recorder: Recorder,
    pub(crate) metrics: Arc<ControllerMetrics>,
    pub(crate) catalog: Arc<Catalog>,
    pub(crate) settings: Settings,
    /// False once the lease is lost: in-flight reconciles stop writing.
    leading: AtomicBool,
    /// Consecutive failures per server, for the error backoff; reset on success.
    failures: Mutex<HashMap<(String, String), u32>>,
    /// Checks the OAuth authorization servers that servers name, for `AuthReady`.
    pub(crate) issuers: IssuerChecker,
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Context {
    pub fn new(
        client: Client,
        catalog: Arc<Catalog>,
        settings: Settings,
        metrics: Arc<ControllerMetrics>,
    ) -> Self {
        let reporter = Reporter {
            controller: FIELD_MANAGER.to_string(),
            instance: std::env::var("POD_NAME").ok().filter(|n| !n.is_empty()),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            catalog,
            settings,
            leading: AtomicBool::new(true),
            failures: Mutex::new(HashMap::new()),
            issuers: IssuerChecker::default(),
        }
    }

    pub(crate) fn is_leading(&self) -> bool {
        self.leading.load(Ordering::Acquire)
    }

    pub(crate) fn set_leading(&self, leading: bool) {
        self.leading.store(leading, Ordering::Release);
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), u32>> {
        match self.failures.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// Counts one more failure and returns how many in a row.
    fn record_failure(&self, key: (String, String)) -> u32 {
        let mut map = self.failures();
        let n = map.entry(key).or_insert(0);
        *n = n.saturating_add(1);
        *n
    }

    fn reset_failures(&self, key: &(String, String)) {
        self.failures().remove(key);
    }
}

fn key(server: &AtomicworkMcpServer) -> (String, String) {
    (
        server.metadata.namespace.clone().unwrap_or_default(),
        server.metadata.name.clone().unwrap_or_default(),
    )
}

/// Reconciles one server: read, decide, write. Records metrics and resets the failure
/// count on success.
pub async fn reconcile(
    server: Arc<AtomicworkMcpServer>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let started = Instant::now();
    let result = reconcile_once(&server, &ctx).await;
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    match &result {
        Ok((outcome, _)) => {
            ctx.reset_failures(&key(&server));
            ctx.metrics.reconciled(*outcome);
        }
        Err(e) => {
            ctx.metrics.reconciled(ReconcileOutcome::Error);
            ctx.metrics.failed(e.metric_label());
        }
    }
    result.map(|(_, action)| action)
}

async fn reconcile_once(
    server: &AtomicworkMcpServer,
    ctx: &Context,
) -> Result<(ReconcileOutcome, Action), Error> {
    if !ctx.is_leading() {
        return Ok((ReconcileOutcome::Skipped, Action::await_change()));
    }
    let observed = apply::dereference(
        &ctx.client,
        server,
        &ctx.settings.runtime_namespace,
        &ctx.issuers,
    )
    .await?;
    let desired = reconcile::desired(
        &observed.view(server),
        &ctx.catalog,
        &ctx.settings,
        Timestamp::now(),
        &crate::core::secret::mint_token,
    )?;
    if !ctx.is_leading() {
        return Ok((ReconcileOutcome::Skipped, Action::await_change()));
    }
    apply::apply(ctx, server, &observed, &desired).await?;
    let outcome = if desired.ready.is_ready() {
        ReconcileOutcome::Ready
    } else {
        ReconcileOutcome::NotReady
    };
    Ok((outcome, Action::requeue(desired.requeue)))
}

/// Retries a failed server with exponential backoff: 2 s, 4 s, 8 s … up to 5 minutes.
pub(crate) fn error_policy(
    server: Arc<AtomicworkMcpServer>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let key = key(&server);
    let failures = ctx.record_failure(key.clone());
    let delay = backoff(failures);
    tracing::warn!(
        server = %format!("{}/{}", key.0, key.1),
        error = %error,
        failures,
        retry_in_s = delay.as_secs(),
        "reconcile failed"
    );
    Action::requeue(delay)
}

/// The delay after `failures` consecutive failures.
pub(crate) fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(8);
    Duration::from_secs(2u64 << exp).min(Duration::from_secs(300))
}

/// The servers a Secret event concerns: its owner, and every server in the store that
/// names it (API key, client tokens) or whose token Secret it is.
pub(crate) fn servers_for_secret(
    store: &Store<AtomicworkMcpServer>,
    secret: &K8sSecret,
) -> Vec<ObjectRef<AtomicworkMcpServer>> {
    let (Some(ns), Some(name)) = (
        secret.metadata.namespace.as_deref(),
        secret.metadata.name.as_deref(),
    ) else {
        return Vec::new();
    };
    let owned_by = name.strip_suffix(crate::core::token::TOKEN_SECRET_SUFFIX);
    let mut refs: Vec<_> = store
        .state_filter(|s| {
            s.metadata.namespace.as_deref() == Some(ns)
                && (names_secret(s, name) || s.metadata.name.as_deref() == owned_by)
        })
        .iter()
        .map(|s| ObjectRef::from_obj(s.as_ref()))
        .collect();
    let owners = secret.metadata.owner_references.iter().flatten();
    for owner in owners.filter(|o| {
        o.kind == "AtomicworkMcpServer" && o.api_version.starts_with(&format!("{GROUP}/"))
    }) {
        let r = ObjectRef::new(&owner.name).within(ns);
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    refs
}

/// True when the server reads this Secret.
pub(crate) fn names_secret(server: &AtomicworkMcpServer, name: &str) -> bool {
    let spec = &server.spec;
    spec.atomicwork.api_key_secret_ref.name == name
        || spec
            .api_token_secret_ref
            .as_ref()
            .is_some_and(|r| r.name == name)
}

/// A controller for one `Api` (one namespace, or all): the servers, plus every Secret
/// mapped back to the servers it concerns.
fn controller_for(
    servers: Api<AtomicworkMcpServer>,
    secrets: Api<K8sSecret>,
) -> Controller<AtomicworkMcpServer> {
    let controller = Controller::new(servers, watcher::Config::default().any_semantic());
    let store = controller.store();
    controller.watches(
        secrets,
        watcher::Config::default()
            .any_semantic()
            .fields(SECRET_FIELD_SELECTOR),
        move |secret| servers_for_secret(&store, &secret),
    )
}

/// Runs the controllers for `scope` until `stop` is cancelled; in-flight reconciles finish.
/// Alongside them, removes the runtime records of deleted servers (see [`records`]).
pub(crate) async fn run(ctx: Arc<Context>, scope: &Scope, stop: CancellationToken) {
    let servers = scope.apis::<AtomicworkMcpServer>(&ctx.client);
    let secrets = scope.apis::<K8sSecret>(&ctx.client);
    let side_tasks = CancellationToken::new();
    let deletions: Vec<_> = scope
        .apis::<PartialObjectMeta<AtomicworkMcpServer>>(&ctx.client)
        .into_iter()
        .map(|api| {
            tokio::spawn(records::forget_deleted(
                ctx.clone(),
                api,
                side_tasks.clone(),
            ))
        })
        .collect();
    let mut stores = Vec::new();
    let streams: Vec<_> = servers
        .into_iter()
        .zip(secrets)
        .map(|(servers, secrets)| {
            let stop = stop.clone();
            let controller = controller_for(servers, secrets);
            stores.push(controller.store());
            controller
                .graceful_shutdown_on(async move { stop.cancelled().await })
                .run(reconcile, error_policy, ctx.clone())
                .boxed()
        })
        .collect();
    let sweeper = tokio::spawn(records::sweep_while_running(
        ctx.clone(),
        stores,
        side_tasks.clone(),
    ));
    futures::stream::select_all(streams)
        .for_each(|result| {
            let ctx = ctx.clone();
            async move {
                match result {
                    Ok((obj, _)) => tracing::debug!(server = %obj, "reconciled"),
                    Err(e) => {
                        if let kube::runtime::controller::Error::ObjectNotFound(gone) = &e {
                            let ns = gone.namespace.clone().unwrap_or_default();
                            records::forget(&ctx, &ServerId::new(ns, &gone.name)).await;
                        }
                        if routine(&e) {
                            tracing::debug!(error = %e, "controller");
                        } else {
                            tracing::warn!(error = %e, "controller");
                        }
                    }
                }
            }
        })
        .await;
    side_tasks.cancel();
    for task in deletions.into_iter().chain(std::iter::once(sweeper)) {
        let _ = task.await;
    }
}

/// True for controller errors that need no one's attention: a failed reconcile (already
/// logged by [`error_policy`], which retries it) and a trigger for a server that is gone.
/// The latter follows every deletion: garbage collection deletes the token Secret after
/// its owner, and the Secret's event maps back to the deleted server.
pub(crate) fn routine(e: &kube::runtime::controller::Error<Error, watcher::Error>) -> bool {
    use kube::runtime::controller::Error as E;
    matches!(e, E::ReconcilerFailed(..) | E::ObjectNotFound(_))
}
