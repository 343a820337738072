//! The data plane's cluster feed: a watch of the runtime records in the data plane's own
//! namespace (the Secrets labelled `mcp.atomicwork.dev/runtime-record=v1`, see
//! [`crate::k8s::runtime_record`]) and nothing else: no resources, no other Secrets, no
//! other namespace. The controller decides what is served; each record is one server.
//!
//! Each watch event changes one server in the registry (upsert or remove by the record's
//! name); nothing is rebuilt. A list (at start, or after a watch gap) is applied in one
//! step when complete, and removes the servers whose records it no longer finds. A record
//! that cannot be read is logged and its server is not served (its previous entry, if
//! any, is removed: a record the data plane cannot read may be a revocation); every other
//! server is untouched. Expiry and suspension are
//! checked on every request from the record's fields, so an expired record keeps its URL
//! answering 403 "expired" and needs no rebuild at the instant it expires.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::core::catalog::Catalog;
use crate::core::secret::TokenHash;
use crate::core::server::{ServerId, ServerView};
use crate::dataplane::registry::Registry;
use crate::k8s::runtime_record::{RECORD_SELECTOR, record_of};
use crate::k8s::scope::ApiCall;

/// The calls the feed makes, in the data plane's own namespace: a watch of the runtime
/// records.
pub const API_CALLS: &[ApiCall] = &[("", "secrets", "list"), ("", "secrets", "watch")];

/// Applies watch events of runtime-record Secrets to the registry, one server per event.
pub struct Feed {
    registry: Arc<Registry>,
    catalog: Arc<Catalog>,
    /// The server each record Secret (by name) is serving.
    serving: HashMap<String, ServerId>,
    /// The relist under way, if one is.
    relist: Option<Relist>,
}

/// A change to one server of the registry.
type Change = (ServerId, Option<(TokenHash, ServerView)>);

/// What a relist has found so far: applied to the registry at once when it is complete,
/// so a request sees the state before it or after it, and the list costs one copy of the
/// registry rather than one per record.
#[derive(Default)]
struct Relist {
    /// Record names listed.
    seen: HashSet<String>,
    changes: Vec<Change>,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed")
            .field("serving", &self.serving.len())
            .finish()
    }
}

impl Feed {
    /// A feed into `registry`, taking tools by name from `catalog`.
    pub fn new(registry: Arc<Registry>, catalog: Arc<Catalog>) -> Self {
        Feed {
            registry,
            catalog,
            serving: HashMap::new(),
            relist: None,
        }
    }

    /// Applies one watch event. The registry is marked ready at the end of the first
    /// complete list.
    pub fn apply(&mut self, event: watcher::Event<K8sSecret>) {
        match event {
            watcher::Event::Init => self.relist = Some(Relist::default()),
            watcher::Event::InitApply(secret) => {
                if let (Some(relist), Some(name)) =
                    (self.relist.as_mut(), secret.metadata.name.as_ref())
                {
                    relist.seen.insert(name.clone());
                }
                self.upsert(&secret);
            }
            watcher::Event::InitDone => {
                if let Some(relist) = self.relist.take() {
                    let gone: Vec<String> = self
                        .serving
                        .keys()
                        .filter(|name| !relist.seen.contains(*name))
                        .cloned()
                        .collect();
                    let mut changes = relist.changes;
                    for name in gone {
                        if let Some(id) = self.serving.remove(&name) {
                            changes.push((id, None));
                        }
                    }
                    self.registry.apply(changes);
                }
                if !self.registry.is_ready() {
                    self.registry.mark_ready();
                    tracing::info!(servers = self.registry.len(), "runtime records synced");
                }
            }
            watcher::Event::Apply(secret) => self.upsert(&secret),
            watcher::Event::Delete(secret) => {
                if let Some(name) = secret.metadata.name.as_deref() {
                    self.remove(name);
                }
            }
        }
    }

    /// Serves the record `secret` carries, in place of what its name served before.
    fn upsert(&mut self, secret: &K8sSecret) {
        let Some(name) = secret.metadata.name.as_deref() else {
            return;
        };
        let record = match record_of(secret) {
            Ok(record) => record,
            Err(e) => {
                tracing::warn!(
                    record = name,
                    error = %e,
                    "runtime record ignored: its server is not served until the controller rewrites it"
                );
                self.remove(name);
                return;
            }
        };
        let (digest, view, unknown) = record.to_entry(&self.catalog);
        if !unknown.is_empty() {
            tracing::warn!(
                server = %view.id,
                tools = %unknown.join(","),
                "runtime record names tools this data plane's catalog lacks; they are not served"
            );
        }
        let id = view.id.clone();
        if let Some(before) = self.serving.insert(name.to_string(), id.clone())
            && before != id
        {
            self.change((before, None));
        }
        tracing::debug!(server = %id, record = name, "runtime record applied");
        self.change((id, Some((digest, view))));
    }

    /// Stops serving what the record `name` served.
    fn remove(&mut self, name: &str) {
        if let Some(id) = self.serving.remove(name) {
            tracing::debug!(server = %id, record = name, "runtime record removed");
            self.change((id, None));
        }
    }

    /// Applies one change now, or with the rest of the relist under way.
    fn change(&mut self, change: Change) {
        match self.relist.as_mut() {
            Some(relist) => relist.changes.push(change),
            None => self.registry.apply([change]),
        }
    }
}

/// Keeps `registry` current from the runtime records in `namespace` until `stop` is
/// cancelled; the registry is ready after the first complete list.
pub async fn run(
    client: Client,
    namespace: &str,
    registry: Arc<Registry>,
    catalog: Arc<Catalog>,
    stop: CancellationToken,
) {
    let api: Api<K8sSecret> = Api::namespaced(client, namespace);
    let config = watcher::Config::default()
        .any_semantic()
        .labels(RECORD_SELECTOR);
    let events = watcher(api, config)
        .default_backoff()
        .modify(|s: &mut K8sSecret| s.metadata.managed_fields = None);
    let mut events = std::pin::pin!(events);
    let mut feed = Feed::new(registry, catalog);
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => return,
            next = events.next() => next,
        };
        match next {
            Some(Ok(event)) => feed.apply(event),
            Some(Err(e)) => tracing::warn!(error = %e, "runtime record watch failed; retrying"),
            None => return,
        }
    }
}

#[cfg(test)]
mod tests;
