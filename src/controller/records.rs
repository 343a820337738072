//! Runtime records that outlive their server. A record lives in the operator's namespace
//! and its server in another, so it cannot be owned by the server and garbage collection
//! never removes it. The controller removes it instead: when the server's deletion is
//! seen (a watch of the servers' metadata, and a trigger for a server that is gone), and
//! by a sweep at start and every [`SWEEP_EVERY`] that deletes every record whose server
//! the controller no longer has (deleted while no controller ran, or outside the watched
//! namespaces).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::Api;
use kube::api::ListParams;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio_util::sync::CancellationToken;

use crate::core::server::ServerId;
use crate::k8s::crd::AtomicworkMcpServer;
use crate::k8s::runtime_record::{
    RECORD_LABEL, RECORD_LABEL_VALUE, RECORD_SELECTOR, record_of, record_secret_name, source_of,
};
use crate::k8s::scope::ApiCall;

use super::apply::delete_secret;
use super::{Context, Error, Op};

/// How often orphaned records are swept while leading.
pub(crate) const SWEEP_EVERY: Duration = Duration::from_secs(5 * 60);

/// The calls made here on runtime records, in the operator's namespace.
pub(crate) const API_CALLS: &[ApiCall] = &[("", "secrets", "list"), ("", "secrets", "delete")];

/// Deletes the runtime record of a server that is gone. Only while leading; a record
/// already gone is fine.
pub(crate) async fn forget(ctx: &Context, server: &ServerId) {
    if !ctx.is_leading() {
        return;
    }
    let api = records(ctx);
    let name = record_secret_name(server);
    match delete_secret(&api, &name, None, Op::DeleteRecord).await {
        Ok(()) => tracing::debug!(server = %server, "runtime record of a deleted server removed"),
        Err(e) => tracing::warn!(
            server = %server,
            error = %e,
            "removing the runtime record of a deleted server failed; the next sweep retries"
        ),
    }
}

/// Deletes every record whose server none of `stores` holds. Each record is deleted only
/// if it is still the one listed (same UID).
pub(crate) async fn sweep(
    ctx: &Context,
    stores: &[Store<AtomicworkMcpServer>],
) -> Result<usize, Error> {
    let api = records(ctx);
    let list = api
        .list(&ListParams::default().labels(RECORD_SELECTOR))
        .await
        .map_err(|source| Error::Kube {
            op: Op::ListRecords,
            source,
        })?;
    let mut removed = 0;
    for secret in list.items {
        let labelled = secret
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(RECORD_LABEL))
            .is_some_and(|v| v == RECORD_LABEL_VALUE);
        let Some(name) = secret.metadata.name.clone().filter(|_| labelled) else {
            continue;
        };
        let source = source_of(&secret).or_else(|| record_of(&secret).ok().map(|r| r.id()));
        let kept = source.as_ref().is_some_and(|id| {
            record_secret_name(id) == name && {
                let key = ObjectRef::new(&id.name).within(&id.namespace);
                stores.iter().any(|s| s.get(&key).is_some())
            }
        });
        if kept || !ctx.is_leading() {
            continue;
        }
        delete_secret(&api, &name, secret.metadata.uid.clone(), Op::DeleteRecord).await?;
        removed += 1;
        match &source {
            Some(id) => {
                tracing::info!(server = %id, "removed the runtime record of a server that is gone")
            }
            None => tracing::info!(record = %name, "removed a runtime record that names no server"),
        }
    }
    Ok(removed)
}

/// Sweeps once every store has its first complete list, then every [`SWEEP_EVERY`],
/// until `stop`.
pub(crate) async fn sweep_while_running(
    ctx: Arc<Context>,
    stores: Vec<Store<AtomicworkMcpServer>>,
    stop: CancellationToken,
) {
    tokio::select! {
        _ = stop.cancelled() => return,
        ready = all_ready(&stores) => if !ready { return },
    }
    loop {
        match sweep(&ctx, &stores).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                removed = n,
                "swept runtime records of servers that are gone"
            ),
            Err(e) => tracing::warn!(error = %e, "sweeping runtime records failed; retrying later"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(SWEEP_EVERY) => {}
        }
    }
}

/// Resolves once every store has its first complete list (false when one never will).
/// Polled again and again: a store wakes only the last task waiting for it, and the
/// controller's own runner waits for it too.
async fn all_ready(stores: &[Store<AtomicworkMcpServer>]) -> bool {
    loop {
        let ready = futures::future::try_join_all(stores.iter().map(|s| s.wait_until_ready()));
        match tokio::time::timeout(Duration::from_millis(200), ready).await {
            Ok(result) => return result.is_ok(),
            Err(_) => continue,
        }
    }
}

/// Watches the servers' metadata in `api` and forgets each deleted server's record at
/// once, until `stop`.
pub(crate) async fn forget_deleted(
    ctx: Arc<Context>,
    api: Api<PartialObjectMeta<AtomicworkMcpServer>>,
    stop: CancellationToken,
) {
    let events = watcher(api, watcher::Config::default().any_semantic()).default_backoff();
    let mut events = std::pin::pin!(events);
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => return,
            next = events.next() => next,
        };
        match next {
            Some(Ok(watcher::Event::Delete(meta))) => {
                let (Some(ns), Some(name)) = (meta.metadata.namespace, meta.metadata.name) else {
                    continue;
                };
                forget(&ctx, &ServerId::new(ns, name)).await;
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => tracing::warn!(error = %e, "server deletion watch failed; retrying"),
            None => return,
        }
    }
}

fn records(ctx: &Context) -> Api<K8sSecret> {
    Api::namespaced(ctx.client.clone(), &ctx.settings.runtime_namespace)
}
