//! The data plane's cluster feed: watches the servers and Secrets (read-only), resolves
//! every server with the same code as the controller and local mode, and keeps the
//! registry current. A server is served only with the token from its own token Secret,
//! so a deleted resource, a deleted token Secret or a pending rotation stops its endpoint
//! at once, whatever the controller is doing. An expired server stays registered under
//! its token and answers 403 "expired" for as long as the resource exists.

use std::sync::Arc;
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::Client;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::registry::Registry;
use crate::core::catalog::Catalog;
use crate::core::secret::TokenHash;
use crate::core::server::ServerView;
use crate::core::token::{TokenRecord, token_secret_name};
use crate::k8s::crd::{AtomicworkMcpServer, GROUP, ROTATE_ANNOTATION};
use crate::k8s::resolve::{self, ResolveOptions, SecretData, SecretLookup, secret_data};
use crate::k8s::scope::{ApiCall, SECRET_FIELD_SELECTOR, Scope};
use crate::k8s::token_secret::{TOKEN_EXPIRES_ANNOTATION, is_controlled_by, record_of};

/// The calls the feed makes: watches only, of the same servers and Secrets the controller
/// watches.
pub const API_CALLS: &[ApiCall] = &[
    (GROUP, "atomicworkmcpservers", "list"),
    (GROUP, "atomicworkmcpservers", "watch"),
    ("", "secrets", "list"),
    ("", "secrets", "watch"),
];

/// How long changes are gathered before the registry is rebuilt once for all of them.
pub(crate) const DEBOUNCE: Duration = Duration::from_millis(50);
/// Rebuild this often anyway, so entries whose expiry passed become expiry-only entries.
const RESYNC: Duration = Duration::from_secs(300);

/// What the feed resolves with.
#[derive(Debug, Clone)]
pub struct FeedOptions {
    pub catalog: Arc<Catalog>,
    pub resolve: ResolveOptions,
}

/// Finds a Secret by namespace and name.
pub(crate) type SecretSource<'a> = &'a dyn Fn(&str, &str) -> Option<Arc<K8sSecret>>;

struct Lookup<'a>(SecretSource<'a>);

impl SecretLookup for Lookup<'_> {
    fn secret(&self, namespace: &str, name: &str) -> Option<SecretData> {
        (self.0)(namespace, name).map(|s| secret_data(&s))
    }
}

/// The registry entries for these servers at `now`: every server that has a current token
/// in a token Secret it controls and either resolves, or has expired (then only to answer
/// 403 "expired", whatever else is wrong with it).
pub fn entries<'a>(
    servers: impl IntoIterator<Item = &'a AtomicworkMcpServer>,
    secrets: SecretSource<'_>,
    opts: &FeedOptions,
    now: Timestamp,
) -> Vec<(TokenHash, ServerView)> {
    let lookup = Lookup(secrets);
    servers
        .into_iter()
        .filter(|s| s.metadata.deletion_timestamp.is_none())
        .filter_map(|server| {
            let record = current_record(server, secrets)?;
            let res = resolve::resolve(server, &lookup, &opts.catalog, now, &opts.resolve);
            let until = record.valid_until(res.expires_at);
            let view = match until {
                Some(at) if now >= at => ServerView::expired(res.id, server.display_name(), at),
                _ => {
                    let mut view = res.view.ok()?;
                    view.expires_at = until;
                    view
                }
            };
            Some((record.token.digest(), view))
        })
        .collect()
}

/// The server's token record, unless its token Secret is missing, not its own, or minted
/// under another rotate-token value (a rotation the controller has yet to apply).
fn current_record(server: &AtomicworkMcpServer, secrets: SecretSource<'_>) -> Option<TokenRecord> {
    let ns = server.metadata.namespace.as_deref()?;
    let name = server.metadata.name.as_deref()?;
    let secret = secrets(ns, &token_secret_name(name))?;
    if !is_controlled_by(&secret, server) {
        return None;
    }
    let record = record_of(&secret)?;
    (record.rotation.as_deref() == server.rotation()).then_some(record)
}

/// The watched state: one store per watched namespace (one in all for `All`).
struct Stores {
    servers: Vec<Store<AtomicworkMcpServer>>,
    secrets: Vec<Store<K8sSecret>>,
}

impl Stores {
    fn secret(&self, ns: &str, name: &str) -> Option<Arc<K8sSecret>> {
        let key = ObjectRef::new(name).within(ns);
        self.secrets.iter().find_map(|s| s.get(&key))
    }

    fn servers(&self) -> Vec<Arc<AtomicworkMcpServer>> {
        self.servers.iter().flat_map(|s| s.state()).collect()
    }

    async fn wait_until_ready(&self) -> bool {
        let servers =
            futures::future::try_join_all(self.servers.iter().map(|s| s.wait_until_ready()));
        let secrets =
            futures::future::try_join_all(self.secrets.iter().map(|s| s.wait_until_ready()));
        servers.await.is_ok() && secrets.await.is_ok()
    }
}

/// Keeps `registry` current until `stop` is cancelled; marks it ready after the first
/// complete sync.
pub(crate) async fn run(
    client: Client,
    scope: &Scope,
    registry: Arc<Registry>,
    opts: FeedOptions,
    stop: CancellationToken,
) {
    let changed = Arc::new(Notify::new());
    let (stores, events) = watch(&client, scope);
    let driver = tokio::spawn(drive(events, changed.clone(), stop.clone()));
    tokio::select! {
        _ = stop.cancelled() => {}
        synced = stores.wait_until_ready() => {
            if synced {
                rebuild(&stores, &registry, &opts);
                registry.mark_ready();
                tracing::info!(servers = registry.len(), "cluster feed synced");
                keep_current(&stores, &registry, &opts, &changed, &stop).await;
            } else {
                tracing::error!("the cluster feed stopped before its first sync; not ready");
            }
        }
    }
    driver.abort();
}

async fn keep_current(
    stores: &Stores,
    registry: &Registry,
    opts: &FeedOptions,
    changed: &Notify,
    stop: &CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = changed.notified() => {}
            _ = tokio::time::sleep(RESYNC) => {}
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(DEBOUNCE) => {}
        }
        rebuild(stores, registry, opts);
    }
}

fn rebuild(stores: &Stores, registry: &Registry, opts: &FeedOptions) {
    let servers = stores.servers();
    let lookup = |ns: &str, name: &str| stores.secret(ns, name);
    let next = entries(
        servers.iter().map(Arc::as_ref),
        &lookup,
        opts,
        Timestamp::now(),
    );
    tracing::debug!(
        watched = servers.len(),
        served = next.len(),
        "registry rebuilt"
    );
    registry.replace_all(next);
}

type EventStream = futures::stream::BoxStream<'static, Result<(), watcher::Error>>;

/// Starts one reflector per kind and namespace; returns the stores and their events.
fn watch(client: &Client, scope: &Scope) -> (Stores, Vec<EventStream>) {
    let mut stores = Stores {
        servers: Vec::new(),
        secrets: Vec::new(),
    };
    let mut events: Vec<EventStream> = Vec::new();
    for api in scope.apis::<AtomicworkMcpServer>(client) {
        let (reader, writer) = reflector::store();
        stores.servers.push(reader);
        let stream = watcher(api, watcher::Config::default().any_semantic())
            .default_backoff()
            .modify(|s: &mut AtomicworkMcpServer| s.metadata.managed_fields = None)
            .reflect(writer)
            .map_ok(|_| ());
        events.push(stream.boxed());
    }
    for api in scope.apis::<K8sSecret>(client) {
        let (reader, writer) = reflector::store();
        stores.secrets.push(reader);
        let config = watcher::Config::default()
            .any_semantic()
            .fields(SECRET_FIELD_SELECTOR);
        let stream = watcher(api, config)
            .default_backoff()
            .modify(slim_secret)
            .reflect(writer)
            .map_ok(|_| ());
        events.push(stream.boxed());
    }
    (stores, events)
}

/// Keeps in memory only what resolving needs.
fn slim_secret(secret: &mut K8sSecret) {
    secret.metadata.managed_fields = None;
    if let Some(annotations) = secret.metadata.annotations.as_mut() {
        annotations.retain(|k, _| k == ROTATE_ANNOTATION || k == TOKEN_EXPIRES_ANNOTATION);
    }
}

/// Polls every watch; each event (or error, logged) wakes the rebuild loop.
async fn drive(events: Vec<EventStream>, changed: Arc<Notify>, stop: CancellationToken) {
    let mut merged = futures::stream::select_all(events);
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => return,
            next = merged.next() => next,
        };
        match next {
            Some(Ok(())) => changed.notify_one(),
            Some(Err(e)) => tracing::warn!(error = %e, "watch failed; retrying"),
            None => return,
        }
    }
}
