//! Reconcile cost: the pure decision per resource, the data plane's feed of runtime
//! records, and the time for 1,000 resources to converge against an in-memory API server
//! (the same HTTP requests a cluster would get, answered from maps).
//!
//! `cargo bench --bench reconcile` — one machine, one run: figures to compare between
//! changes, not capacities.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atomicwork_mcp::controller::metrics::ControllerMetrics;
use atomicwork_mcp::controller::reconcile::{self, Observed, RecordPlan, Settings, TokenPlan};
use atomicwork_mcp::controller::{Context, reconcile as run_reconcile};
use atomicwork_mcp::core::base_url::BaseUrl;
use atomicwork_mcp::core::catalog::Catalog;
use atomicwork_mcp::dataplane::feed::Feed;
use atomicwork_mcp::dataplane::registry::Registry;
use atomicwork_mcp::k8s::crd::{AtomicworkMcpServer, AtomicworkMcpServerStatus};
use futures::StreamExt;
use http::{Method, Request, Response, StatusCode};
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::client::Body;
use kube::runtime::watcher;
use serde_json::{Value, json};

const RESOURCES: usize = 1000;
const CONCURRENCY: usize = 16;
const NS: &str = "bench";

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let catalog = Arc::new(Catalog::builtin().expect("catalog"));
    pure(&catalog);
    rt.block_on(converge(catalog));
}

fn settings() -> Settings {
    Settings {
        public_url: BaseUrl::parse("https://mcp.example.com").expect("the bench's public URL"),
        redact_status_url: false,
        resolve: Default::default(),
        runtime_namespace: "bench-operator".into(),
        record_owner: None,
    }
}

fn server(i: usize) -> AtomicworkMcpServer {
    let tags = ["changes", "requests", "assets", "audit"][i % 4];
    let mut s: AtomicworkMcpServer = serde_json::from_value(json!({
        "apiVersion": "mcp.atomicwork.dev/v1alpha1",
        "kind": "AtomicworkMcpServer",
        "metadata": {
            "name": format!("server-{i}"), "namespace": NS, "uid": format!("uid-{i}"),
            "generation": 1, "resourceVersion": "1",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "spec": {
            "atomicwork": {"baseUrl": "https://acme.atomicwork.com", "apiKeySecretRef": {"name": "atomicwork-api"}},
            "methods": ["read"],
            "tags": [tags],
            "expiresAt": "2099-01-01T00:00:00Z",
        },
    }))
    .expect("server");
    s.status = None;
    s
}

fn api_secret() -> K8sSecret {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "atomicwork-api", "namespace": NS},
        "data": {"apiKey": "c2stYmVuY2g="},
    }))
    .expect("secret")
}

fn per_resource(total: Duration, n: usize) -> String {
    format!("{:.1} µs", total.as_secs_f64() * 1e6 / n as f64)
}

/// The pure reconcile: a first reconcile (mints) and a steady-state one (fixed point).
fn pure(catalog: &Arc<Catalog>) {
    let settings = settings();
    let secrets = common::api_key_secrets(NS, "atomicwork-api", b"sk-bench");
    let servers: Vec<_> = (0..RESOURCES).map(server).collect();
    let mint = atomicwork_mcp::core::secret::mint_token;
    let now = Timestamp::now();

    let started = Instant::now();
    let first: Vec<_> = servers
        .iter()
        .map(|s| {
            let observed = Observed {
                server: s,
                secrets: &secrets,
                token_secret: None,
                runtime_record: None,
                issuer: None,
            };
            reconcile::desired(&observed, catalog, &settings, now, &mint).expect("desired")
        })
        .collect();
    let first_cost = started.elapsed();

    let settled: Vec<(AtomicworkMcpServer, K8sSecret, K8sSecret)> = servers
        .iter()
        .zip(&first)
        .map(|(s, d)| {
            let TokenPlan::Apply(secret) = &d.token else {
                panic!("first reconcile mints")
            };
            let RecordPlan::Apply(record) = &d.runtime else {
                panic!("first reconcile writes the runtime record")
            };
            let mut s = s.clone();
            s.status = Some(d.status.clone());
            (s, secret.as_ref().clone(), record.as_ref().clone())
        })
        .collect();
    let rounds = 5;
    let started = Instant::now();
    for _ in 0..rounds {
        for (s, t, r) in &settled {
            let observed = Observed {
                server: s,
                secrets: &secrets,
                token_secret: Some(t),
                runtime_record: Some(r),
                issuer: None,
            };
            let d = reconcile::desired(&observed, catalog, &settings, now, &mint).expect("desired");
            assert!(
                !d.status_changed
                    && d.token == TokenPlan::Unchanged
                    && d.runtime == RecordPlan::Unchanged
            );
            std::hint::black_box(d);
        }
    }
    let steady_cost = started.elapsed();

    // The data plane's feed: the first list of every record, then one record changed.
    let registry = Arc::new(Registry::new());
    let mut feed = Feed::new(registry.clone(), catalog.clone());
    let started = Instant::now();
    feed.apply(watcher::Event::Init);
    for (_, _, record) in &settled {
        feed.apply(watcher::Event::InitApply(record.clone()));
    }
    feed.apply(watcher::Event::InitDone);
    let list_cost = started.elapsed();
    assert_eq!(registry.len(), RESOURCES);
    let started = Instant::now();
    for (_, _, record) in settled.iter().take(100) {
        feed.apply(watcher::Event::Apply(record.clone()));
    }
    let event_cost = started.elapsed();

    println!("pure reconcile, {RESOURCES} resources:");
    println!(
        "  first reconcile (mint a token): {} per resource",
        per_resource(first_cost, RESOURCES)
    );
    println!(
        "  steady state (nothing to do):   {} per resource",
        per_resource(steady_cost, RESOURCES * rounds)
    );
    println!(
        "data plane feed, first list:     {:.1} ms for {RESOURCES} records ({} per record)",
        list_cost.as_secs_f64() * 1e3,
        per_resource(list_cost, RESOURCES)
    );
    println!(
        "data plane feed, one record:     {} per event with {RESOURCES} served",
        per_resource(event_cost, 100)
    );
}

/// An API server kept in maps: Secrets, server status and Events.
#[derive(Default)]
struct FakeApi {
    secrets: Mutex<HashMap<String, Value>>,
    statuses: Mutex<HashMap<String, Value>>,
    requests: AtomicUsize,
    writes: AtomicUsize,
}

impl FakeApi {
    fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
        match m.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    async fn handle(self: Arc<Self>, req: Request<Body>) -> Response<Body> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let (parts, body) = req.into_parts();
        let bytes = body.collect_bytes().await.unwrap_or_default();
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let path = parts.uri.path().to_string();
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        let (status, reply) = match (&parts.method, segments.as_slice()) {
            (&Method::GET, ["api", "v1", "namespaces", _, "secrets", name]) => {
                if *name == "atomicwork-api" {
                    (
                        StatusCode::OK,
                        serde_json::to_value(api_secret()).unwrap_or_default(),
                    )
                } else {
                    match Self::lock(&self.secrets).get(*name) {
                        Some(s) => (StatusCode::OK, s.clone()),
                        None => (StatusCode::NOT_FOUND, not_found()),
                    }
                }
            }
            (&Method::PATCH, ["api", "v1", "namespaces", _, "secrets", name]) => {
                self.writes.fetch_add(1, Ordering::Relaxed);
                Self::lock(&self.secrets).insert(name.to_string(), body.clone());
                (StatusCode::OK, body)
            }
            (&Method::PATCH, [.., "atomicworkmcpservers", name, "status"]) => {
                self.writes.fetch_add(1, Ordering::Relaxed);
                let index: usize = name.trim_start_matches("server-").parse().unwrap_or(0);
                let mut object = serde_json::to_value(server(index)).unwrap_or_default();
                object["status"] = body["status"].clone();
                Self::lock(&self.statuses).insert(name.to_string(), body["status"].clone());
                (StatusCode::OK, object)
            }
            (&Method::POST, [.., "events"]) => (StatusCode::CREATED, body),
            _ => (StatusCode::NOT_FOUND, not_found()),
        };
        let mut resp = Response::new(Body::from(serde_json::to_vec(&reply).unwrap_or_default()));
        *resp.status_mut() = status;
        resp
    }

    fn status_of(&self, name: &str) -> Option<AtomicworkMcpServerStatus> {
        let value = Self::lock(&self.statuses).get(name).cloned()?;
        serde_json::from_value(value).ok()
    }
}

fn not_found() -> Value {
    json!({"apiVersion": "v1", "kind": "Status", "status": "Failure", "reason": "NotFound", "code": 404})
}

/// 1,000 resources from nothing to converged: one pass that creates every token Secret
/// and status, then a pass that must find nothing to write.
async fn converge(catalog: Arc<Catalog>) {
    let api = Arc::new(FakeApi::default());
    let service = {
        let api = api.clone();
        tower::service_fn(move |req: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, Infallible>(api.handle(req).await) }
        })
    };
    let client = kube::Client::new(service, NS);
    let ctx = Arc::new(Context::new(
        client,
        catalog,
        settings(),
        Arc::new(ControllerMetrics::new()),
    ));

    let run_pass = |servers: Vec<AtomicworkMcpServer>| {
        let ctx = ctx.clone();
        async move {
            let started = Instant::now();
            let failures = futures::stream::iter(servers)
                .map(|s| run_reconcile(Arc::new(s), ctx.clone()))
                .buffer_unordered(CONCURRENCY)
                .filter(|r| futures::future::ready(r.is_err()))
                .count()
                .await;
            assert_eq!(failures, 0, "every reconcile succeeds");
            started.elapsed()
        }
    };

    let first = run_pass((0..RESOURCES).map(server).collect()).await;
    let (requests, writes) = (
        api.requests.swap(0, Ordering::Relaxed),
        api.writes.swap(0, Ordering::Relaxed),
    );
    let settled: Vec<_> = (0..RESOURCES)
        .map(|i| {
            let mut s = server(i);
            s.status = api.status_of(&format!("server-{i}"));
            s
        })
        .collect();
    let second = run_pass(settled).await;
    let (requests2, writes2) = (
        api.requests.load(Ordering::Relaxed),
        api.writes.load(Ordering::Relaxed),
    );
    assert_eq!(writes2, 0, "converged: the second pass writes nothing");

    println!(
        "converge {RESOURCES} resources against the in-memory API server ({CONCURRENCY} at a time):"
    );
    println!(
        "  first pass:  {:.0} ms ({} per resource; {requests} requests, {writes} writes)",
        first.as_secs_f64() * 1e3,
        per_resource(first, RESOURCES)
    );
    println!(
        "  second pass: {:.0} ms ({} per resource; {requests2} requests, {writes2} writes)",
        second.as_secs_f64() * 1e3,
        per_resource(second, RESOURCES)
    );
}
