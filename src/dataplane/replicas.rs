//! How many data-plane replicas share the rate limits: the ready endpoints of the data
//! plane's own Service, read from its EndpointSlices in its own namespace. Each replica
//! enforces limit / replicas (see [`crate::core::server::share`]), so N replicas together
//! allow the configured rate, not N times it.
//!
//! Without a Service name, or while none of its endpoints is ready (or the slices cannot
//! be read), a replica counts itself alone and enforces each limit in full; it says so in
//! a log line.

use std::collections::BTreeSet;
use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

use crate::core::server::Replicas;
use crate::k8s::scope::ApiCall;

/// The calls made here, in the data plane's own namespace.
pub const API_CALLS: &[ApiCall] = &[
    ("discovery.k8s.io", "endpointslices", "list"),
    ("discovery.k8s.io", "endpointslices", "watch"),
];

/// The label every EndpointSlice of a Service carries, with the Service's name.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// The number of distinct ready endpoints in these slices. An endpoint counts once even
/// when several slices list it (one per address family); one whose readiness is unknown
/// counts as ready, as the API asks consumers to read it.
pub(crate) fn ready_endpoints<'a>(slices: impl IntoIterator<Item = &'a EndpointSlice>) -> usize {
    let mut ready = BTreeSet::new();
    for slice in slices {
        for endpoint in slice.endpoints.iter().flatten() {
            let is_ready = endpoint
                .conditions
                .as_ref()
                .and_then(|c| c.ready)
                .unwrap_or(true);
            if !is_ready {
                continue;
            }
            let key = match &endpoint.target_ref {
                Some(r) => format!(
                    "{}/{}/{}",
                    r.kind.as_deref().unwrap_or_default(),
                    r.namespace.as_deref().unwrap_or_default(),
                    r.uid.as_deref().or(r.name.as_deref()).unwrap_or_default()
                ),
                None => endpoint.addresses.join(","),
            };
            ready.insert(key);
        }
    }
    ready.len()
}

/// Keeps `replicas` equal to the ready endpoints of the Service `service` in `namespace`
/// until `stop`; with no Service, leaves it at one and says so.
pub async fn run(
    client: Client,
    namespace: &str,
    service: Option<&str>,
    replicas: Arc<Replicas>,
    stop: CancellationToken,
) {
    let Some(service) = service.map(str::trim).filter(|s| !s.is_empty()) else {
        replicas.set(1);
        tracing::info!(
            "no --service-name: this replica enforces every rate limit in full, as if it were the only one"
        );
        return;
    };
    let api: Api<EndpointSlice> = Api::namespaced(client, namespace);
    let config = watcher::Config::default()
        .any_semantic()
        .labels(&format!("{SERVICE_NAME_LABEL}={service}"));
    let (store, writer) = reflector::store();
    let events = watcher(api, config)
        .default_backoff()
        .modify(|s: &mut EndpointSlice| s.metadata.managed_fields = None)
        .reflect(writer);
    let mut events = std::pin::pin!(events);
    let mut known: Option<usize> = None;
    loop {
        let next = tokio::select! {
            _ = stop.cancelled() => return,
            next = events.next() => next,
        };
        match next {
            Some(Ok(watcher::Event::Init | watcher::Event::InitApply(_))) => {}
            Some(Ok(_)) => update(&store, service, &replicas, &mut known),
            Some(Err(e)) => tracing::warn!(
                service,
                error = %e,
                replicas = replicas.get(),
                "reading the data plane's EndpointSlices failed; keeping the last replica count"
            ),
            None => return,
        }
    }
}

/// Sets the count from the store; logs when it changes.
fn update(
    store: &Store<EndpointSlice>,
    service: &str,
    replicas: &Replicas,
    known: &mut Option<usize>,
) {
    let ready = ready_endpoints(store.state().iter().map(Arc::as_ref));
    replicas.set(ready);
    if *known == Some(ready) {
        return;
    }
    *known = Some(ready);
    if ready == 0 {
        tracing::info!(
            service,
            "no ready endpoint of the data plane's Service yet: this replica enforces every rate limit in full"
        );
    } else {
        tracing::info!(
            service,
            replicas = ready,
            "rate limits are shared between the ready data-plane replicas"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{Request, Response, StatusCode};
    use kube::client::Body;
    use serde_json::{Value, json};
    use std::time::Duration;
    use tower_test::mock;

    fn slice(name: &str, endpoints: Value) -> Value {
        json!({
            "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
            "metadata": {"name": name, "namespace": "awmcp", "resourceVersion": "3",
                "labels": {SERVICE_NAME_LABEL: "atomicwork-mcp-dataplane"}},
            "addressType": "IPv4",
            "endpoints": endpoints,
        })
    }

    fn endpoint(ip: &str, pod: &str, ready: Option<bool>) -> Value {
        let mut e = json!({"addresses": [ip],
            "targetRef": {"kind": "Pod", "namespace": "awmcp", "name": pod, "uid": format!("uid-{pod}")}});
        if let Some(r) = ready {
            e["conditions"] = json!({"ready": r});
        }
        e
    }

    fn typed(v: &Value) -> EndpointSlice {
        serde_json::from_value(v.clone()).expect("EndpointSlice")
    }

    #[test]
    fn ready_endpoints_are_counted_once_each() {
        let a = typed(&slice(
            "a",
            json!([
                endpoint("10.0.0.1", "p1", Some(true)),
                endpoint("10.0.0.2", "p2", None),
                endpoint("10.0.0.3", "p3", Some(false)),
            ]),
        ));
        // The same pods again in a second slice (another address family), and one pod
        // listed without a target.
        let b = typed(&slice(
            "b",
            json!([
                endpoint("fd00::1", "p1", Some(true)),
                {"addresses": ["10.0.0.9"], "conditions": {"ready": true}},
            ]),
        ));
        assert_eq!(
            ready_endpoints([&a]),
            2,
            "unknown readiness counts as ready"
        );
        assert_eq!(ready_endpoints([&a, &b]), 3);
        assert_eq!(ready_endpoints(std::iter::empty()), 0);
    }

    /// A mocked API server answering the slice list; holds watches open. Records each
    /// request as `METHOD path?query`.
    fn api_server(slices: Vec<Value>) -> (Client, Arc<std::sync::Mutex<Vec<String>>>) {
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                let query = request.uri().query().unwrap_or_default().to_string();
                log.lock().expect("log").push(format!(
                    "{} {}?{query}",
                    request.method(),
                    request.uri().path()
                ));
                if query.contains("watch=true") {
                    held.push(send);
                    continue;
                }
                let list = json!({"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSliceList",
                    "metadata": {"resourceVersion": "10"}, "items": slices});
                send.send_response(
                    Response::builder()
                        .status(StatusCode::OK)
                        .body(Body::from(serde_json::to_vec(&list).expect("JSON")))
                        .expect("response"),
                );
            }
        });
        (Client::new(service, "default"), seen)
    }

    #[tokio::test]
    async fn the_count_comes_from_the_services_slices_in_its_own_namespace() {
        let (captured, _guard) = crate::test_support::Captured::install(tracing::Level::INFO);
        let (client, seen) = api_server(vec![slice(
            "dp-1",
            json!([
                endpoint("10.0.0.1", "p1", Some(true)),
                endpoint("10.0.0.2", "p2", Some(true)),
                endpoint("10.0.0.3", "p3", Some(true)),
                endpoint("10.0.0.4", "p4", Some(false)),
            ]),
        )]);
        let replicas = Arc::new(Replicas::default());
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (replicas, stop) = (replicas.clone(), stop.clone());
            async move {
                run(
                    client,
                    "awmcp",
                    Some("atomicwork-mcp-dataplane"),
                    replicas,
                    stop,
                )
                .await
            }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while replicas.get() != 3 {
            assert!(tokio::time::Instant::now() < deadline, "the count");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("stops on cancel")
            .expect("task");
        let seen = seen.lock().expect("log").clone();
        assert!(!seen.is_empty());
        for request in &seen {
            assert!(
                request
                    .starts_with("GET /apis/discovery.k8s.io/v1/namespaces/awmcp/endpointslices?")
                    && request.contains(
                        "labelSelector=kubernetes.io%2Fservice-name%3Datomicwork-mcp-dataplane"
                    ),
                "only its own Service's slices, in its own namespace: {request}"
            );
        }
        assert!(
            captured.text().contains("replicas=3"),
            "{}",
            captured.text()
        );
    }

    #[tokio::test]
    async fn without_a_service_a_replica_counts_itself_alone_and_says_so() {
        let (captured, _guard) = crate::test_support::Captured::install(tracing::Level::INFO);
        let (client, seen) = api_server(Vec::new());
        let replicas = Arc::new(Replicas::default());
        replicas.set(4);
        run(
            client,
            "awmcp",
            None,
            replicas.clone(),
            CancellationToken::new(),
        )
        .await;
        assert_eq!(replicas.get(), 1);
        assert!(seen.lock().expect("log").is_empty(), "no call made");
        assert!(
            captured.text().contains("no --service-name"),
            "{}",
            captured.text()
        );
    }

    #[tokio::test]
    async fn no_ready_endpoint_yet_means_the_full_limit() {
        let (captured, _guard) = crate::test_support::Captured::install(tracing::Level::INFO);
        let (client, _seen) = api_server(vec![slice(
            "dp-1",
            json!([endpoint("10.0.0.1", "p1", Some(false))]),
        )]);
        let replicas = Arc::new(Replicas::default());
        replicas.set(5);
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let (replicas, stop) = (replicas.clone(), stop.clone());
            async move { run(client, "awmcp", Some("dp"), replicas, stop).await }
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !captured.text().contains("no ready endpoint") {
            assert!(tokio::time::Instant::now() < deadline, "the log line");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(replicas.get(), 1);
        stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(5), task).await;
    }
}
