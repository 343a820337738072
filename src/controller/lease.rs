//! Leader election on a `coordination.k8s.io/v1` Lease: every controller replica runs
//! this, the holder of the lease reconciles, the others stand by and take over when the
//! lease is released or expires.

use std::future::Future;
use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::ApiCall;

/// The calls the lease manager makes, in the lease's namespace only.
pub const API_CALLS: &[ApiCall] = &[
    ("coordination.k8s.io", "leases", "get"),
    ("coordination.k8s.io", "leases", "create"),
    ("coordination.k8s.io", "leases", "patch"),
];

/// Default name of the Lease.
pub const DEFAULT_LEASE_NAME: &str = "atomicwork-mcp-controller";

/// Where the lease lives and how long a claim lasts.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    pub namespace: String,
    pub name: String,
    /// This replica's identity; unique per process.
    pub identity: String,
    /// How long a claim is valid without renewal, in seconds.
    pub duration_seconds: u64,
    /// How long before expiry the holder renews, in seconds.
    pub grace_seconds: u64,
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
        }
    }
}

/// Runs `term` each time this replica becomes leader, until `stop` is cancelled. The
/// token `term` gets is cancelled when leadership is lost (or on `stop`); `term` should
/// then wind down. `on_change` is told each change of leadership. The lease is released
/// on the way out so a standby takes over at once.
pub async fn while_leading<F, Fut>(
    client: Client,
    settings: &LeaseSettings,
    stop: CancellationToken,
    on_change: impl Fn(bool),
    mut term: F,
) where
    F: FnMut(CancellationToken) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut retry = Duration::from_secs(1);
    while !stop.is_cancelled() {
        let Some(manager) = build(&client, settings, &stop, &mut retry).await else {
            break;
        };
        let (mut leader, task) = manager.watch().await;
        tracing::info!(lease = %settings.name, identity = %settings.identity, "standing by for the leader lease");
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                became = leader.wait_for(|l| *l) => if became.is_err() { break },
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
        // With the receiver gone the manager releases the lease and ends.
        match tokio::time::timeout(Duration::from_secs(5), task).await {
            Ok(Ok(Ok(_))) => tracing::info!(lease = %settings.name, "released the leader lease"),
            Ok(Ok(Err(e))) => tracing::warn!(error = %e, "releasing the leader lease failed"),
            Ok(Err(e)) => tracing::warn!(error = %e, "the lease task failed"),
            Err(_) => tracing::warn!("releasing the leader lease timed out"),
        }
    }
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
