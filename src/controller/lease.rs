//! Leader election on a `coordination.k8s.io/v1` Lease: every controller replica runs
//! this, the holder of the lease reconciles, the others stand by and take over when the
//! lease is released (seen at once through a watch of the Lease) or expires.
//!
//! The Lease can be owned by the controller's Deployment, so deleting the Deployment
//! (`helm uninstall`, `kubectl delete -k`) deletes the Lease too, whatever the leader
//! manages to release on its way out.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Client, Resource};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::k8s::scope::ApiCall;

/// The calls leader election makes, in the lease's namespace only: the lease manager's
/// reads and writes, the watch that notices a release, and reading the owning
/// Deployment.
pub const API_CALLS: &[ApiCall] = &[
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "patch"),
    ("coordination.k8s.io", "leases", "list"),
    ("coordination.k8s.io", "leases", "watch"),
    ("apps", "deployments", "get"),
];

/// Default name of the Lease.
pub(crate) const DEFAULT_LEASE_NAME: &str = "atomicwork-mcp-controller";

/// Where the lease lives and how long a claim lasts.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub(crate) namespace: String,
    pub(crate) name: String,
    /// This replica's identity; unique per process.
    pub identity: String,
    /// How long a claim is valid without renewal, in seconds.
    pub duration_seconds: u64,
    /// How long before expiry the holder renews, in seconds.
    pub grace_seconds: u64,
    /// The Deployment (in `namespace`) the controller runs as. When set, the Lease is
    /// created with an owner reference to it, so it is deleted with the Deployment.
    pub owner_deployment: Option<String>,
}

impl LeaseSettings {
    /// Settings with a fresh identity: the pod name (or host name) plus a random suffix,
    /// so two processes never share one.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        let host = std::env::var("POD_NAME")
            .or_else(|_| std::env::var("HOSTNAME"))
            .ok()
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "atomicwork-mcp".to_string());
        let mut bytes = [0u8; 4];
        let suffix = match getrandom::fill(&mut bytes) {
            Ok(()) => bytes.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            Err(_) => format!("{}", std::process::id()),
        };
        LeaseSettings {
            namespace: namespace.into(),
            name: name.into(),
            identity: format!("{host}-{suffix}"),
            duration_seconds: 15,
            grace_seconds: 5,
            owner_deployment: None,
        }
    }
}

/// Runs `term` each time this replica becomes leader, until `stop` is cancelled. The
/// token `term` gets is cancelled when leadership is lost (or on `stop`); `term` should
/// then wind down. `on_change` is told each change of leadership. The lease is released
/// on the way out, and a standby that sees the release claims the lease at once.
pub(crate) async fn while_leading<F, Fut>(
    client: Client,
    settings: &LeaseSettings,
    stop: CancellationToken,
    on_change: impl Fn(bool),
    mut term: F,
) where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let (released_tx, mut released) = watch::channel(0u64);
    let watch_task = tokio::spawn(watch_releases(
        client.clone(),
        settings.clone(),
        released_tx,
    ));
    let mut watching = true;
    let mut owned = settings.owner_deployment.is_none();
    let mut retry = Duration::from_secs(1);
    while !stop.is_cancelled() {
        if !owned {
            owned = ensure_owned_lease(&client, settings).await;
        }
        // A new lease manager reads the Lease afresh: releases seen so far are old news.
        released.mark_unchanged();
        let Some(manager) = build(&client, settings, &stop, &mut retry).await else {
            break;
        };
        let (mut leader, task) = manager.watch().await;
        tracing::info!(lease = %settings.name, identity = %settings.identity, "standing by for the leader lease");
        let mut claim_now = false;
        loop {
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                became = leader.wait_for(|l| *l) => if became.is_err() { break },
                // The lease manager would look again only when the holder's claim
                // expires; a released lease is free now.
                changed = released.changed(), if watching => {
                    if changed.is_ok() {
                        claim_now = true;
                        break;
                    }
                    watching = false;
                }
            }
            tracing::info!(lease = %settings.name, "leading: reconciling");
            on_change(true);
            lead_one_term(&mut leader, &stop, &mut term).await;
            on_change(false);
            if stop.is_cancelled() {
                break;
            }
            tracing::warn!(lease = %settings.name, "lost the leader lease; standing by");
        }
        drop(leader);
        // With the receiver gone the manager releases the lease (if it holds it) and ends.
        let ended = tokio::time::timeout(Duration::from_secs(5), task).await;
        if claim_now {
            tracing::info!(lease = %settings.name, "the leader lease was released; claiming it");
            continue;
        }
        match ended {
            Ok(Ok(Ok(_))) => tracing::info!(lease = %settings.name, "released the leader lease"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "releasing the leader lease failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "the lease task failed"),
            Err(_) => tracing::warn!("releasing the leader lease timed out"),
        }
    }
    watch_task.abort();
}

/// Watches the Lease and counts, in `released`, each time another replica's claim ends
/// with the Lease left without a holder: that leader stepped down, and a standby can
/// claim the lease now. This replica's own releases and a Lease that was free from the
/// start are not counted (the lease manager finds those itself).
async fn watch_releases(client: Client, settings: LeaseSettings, released: watch::Sender<u64>) {
    let api: Api<Lease> = Api::namespaced(client, &settings.namespace);
    let config = watcher::Config::default().fields(&format!("metadata.name={}", settings.name));
    let mut leases = watcher(api, config)
        .default_backoff()
        .applied_objects()
        .boxed();
    let mut last_holder: Option<String> = None;
    while let Some(event) = leases.next().await {
        match event {
            Ok(lease) => {
                let now = holder(&lease).map(str::to_string);
                let stepped_down = last_holder
                    .as_deref()
                    .is_some_and(|h| h != settings.identity);
                if now.is_none() && stepped_down {
                    released.send_modify(|n| *n = n.wrapping_add(1));
                }
                last_holder = now;
            }
            Err(e) => tracing::debug!(error = %e, "watching the leader lease; retrying"),
        }
    }
}

/// The Lease's holder, if any.
fn holder(lease: &Lease) -> Option<&str> {
    lease
        .spec
        .as_ref()?
        .holder_identity
        .as_deref()
        .filter(|h| !h.is_empty())
}

/// Makes the Lease owned by the controller's Deployment: creates it with that owner, or
/// adds the owner to a Lease that lacks it. Returns false when that could not be done
/// yet (it is tried again before the next claim); leader election works either way,
/// only an uninstall would then leave the Lease behind.
async fn ensure_owned_lease(client: &Client, settings: &LeaseSettings) -> bool {
    let Some(deployment) = settings.owner_deployment.as_deref() else {
        return true;
    };
    let at = format!("{}/{}", settings.namespace, settings.name);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &settings.namespace);
    let owner = match deployments.get(deployment).await {
        Ok(d) => match owner_reference(&d) {
            Some(owner) => owner,
            None => return false,
        },
        Err(e) => {
            tracing::warn!(lease = %at, deployment, error = %e, "cannot read the Deployment that should own the leader lease; the lease will outlive an uninstall");
            return false;
        }
    };
    let leases: Api<Lease> = Api::namespaced(client.clone(), &settings.namespace);
    // Twice: when another replica creates the Lease first, add the owner to theirs.
    for _ in 0..2 {
        match own_lease(&leases, &settings.name, &owner).await {
            Ok(true) => {
                tracing::info!(lease = %at, deployment, "the leader lease is owned by the controller's Deployment");
                return true;
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(lease = %at, error = %e, "cannot make the Deployment own the leader lease; the lease will outlive an uninstall");
                return false;
            }
        }
    }
    false
}

/// The owner reference of the Deployment `name` in `namespace`, for objects that should
/// go when it goes. None (with a warning) when it cannot be read.
pub(crate) async fn deployment_owner(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Option<OwnerReference> {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    match deployments.get(name).await {
        Ok(d) => owner_reference(&d),
        Err(e) => {
            tracing::warn!(namespace, deployment = name, error = %e, "cannot read the controller's Deployment; runtime records will outlive an uninstall");
            None
        }
    }
}

/// One attempt of [`ensure_owned_lease`]: false when the Lease appeared meanwhile.
async fn own_lease(
    leases: &Api<Lease>,
    name: &str,
    owner: &OwnerReference,
) -> Result<bool, kube::Error> {
    match leases.get_opt(name).await? {
        Some(lease)
            if lease
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.uid == owner.uid) =>
        {
            Ok(true)
        }
        Some(_) => {
            // A strategic merge adds the owner and keeps any other.
            let patch = serde_json::json!({"metadata": {"ownerReferences": [owner]}});
            leases
                .patch(name, &PatchParams::default(), &Patch::Strategic(&patch))
                .await?;
            Ok(true)
        }
        None => {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(name.to_string()),
                    owner_references: Some(vec![owner.clone()]),
                    ..ObjectMeta::default()
                },
                spec: Some(Default::default()),
            };
            match leases.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(e),
            }
        }
    }
}

/// A non-controlling owner reference to the Deployment (garbage collection deletes the
/// Lease once the Deployment is gone; nothing blocks the Deployment's deletion).
fn owner_reference(deployment: &Deployment) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: Deployment::api_version(&()).to_string(),
        kind: Deployment::kind(&()).to_string(),
        name: deployment.metadata.name.clone()?,
        uid: deployment.metadata.uid.clone()?,
        controller: None,
        block_owner_deletion: None,
    })
}

async fn lead_one_term<F, Fut>(
    leader: &mut watch::Receiver<bool>,
    stop: &CancellationToken,
    term: &mut F,
) where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let end = stop.child_token();
    let work = term(end.clone());
    tokio::pin!(work);
    tokio::select! {
        _ = &mut work => return,
        _ = leader.wait_for(|l| !*l) => {}
    }
    end.cancel();
    work.await;
}

/// Builds the lease manager, retrying (with backoff) until it works or `stop`.
async fn build(
    client: &Client,
    settings: &LeaseSettings,
    stop: &CancellationToken,
    retry: &mut Duration,
) -> Option<LeaseManager> {
    loop {
        let built = LeaseManagerBuilder::new(client.clone(), &settings.name)
            .with_namespace(&settings.namespace)
            .with_identity(&settings.identity)
            .with_duration(settings.duration_seconds)
            .with_grace(settings.grace_seconds)
            .build()
            .await;
        match built {
            Ok(manager) => {
                *retry = Duration::from_secs(1);
                return Some(manager);
            }
            Err(e) => {
                tracing::warn!(
                    lease = %format!("{}/{}", settings.namespace, settings.name),
                    error = %e,
                    retry_in_s = retry.as_secs(),
                    "cannot use the leader lease"
                );
                tokio::select! {
                    _ = stop.cancelled() => return None,
                    _ = tokio::time::sleep(*retry) => {}
                }
                *retry = (*retry * 2).min(Duration::from_secs(60));
            }
        }
    }
}
