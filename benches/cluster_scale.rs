//! The controller at scale on a real API server: 1,000 `AtomicworkMcpServer` resources.
//!
//! `AWMCP_E2E=1 KUBECONFIG=... cargo bench --bench cluster_scale` (the e2e suite's gate:
//! it changes the cluster KUBECONFIG names; without the gate it says so and does nothing).
//! It installs the CRD, creates the servers and their API-key Secret in a fresh namespace,
//! starts the controller in this process with a client that counts every request it makes,
//! and reports:
//!
//! - the time until every server is Ready with a URL in its status, and the API requests
//!   the controller made meanwhile, by verb;
//! - after a controller restart, the time until the new controller has reconciled every
//!   server again, and the requests it made: a restart must write nothing.
//!
//! Targets (exit status 1 when missed): all Ready within 60 s; zero writes on restart.
//! `AWMCP_SCALE_SERVERS` changes the number of servers. The namespaces are deleted at the
//! end.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use atomicwork_mcp::controller::Settings;
use atomicwork_mcp::core::base_url::BaseUrl;
use atomicwork_mcp::core::catalog::Catalog;
use atomicwork_mcp::k8s::crd::AtomicworkMcpServer;
use atomicwork_mcp::k8s::resolve::ResolveOptions;
use atomicwork_mcp::k8s::scope::Scope;
use atomicwork_mcp::runtime::{self, ControllerOptions};
use futures::StreamExt;
use k8s_openapi::api::core::v1::{Namespace, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::client::ClientBuilder;
use kube::{Client, Config, CustomResourceExt};
use serde_json::json;
use tokio_util::sync::CancellationToken;

const TARGET_READY: Duration = Duration::from_secs(60);
/// Longest wait for either phase before the run is called failed.
const GIVE_UP: Duration = Duration::from_secs(300);

/// Requests by verb: `get`, `list`, `watch`, `create`, `patch`, `update`, `delete`.
#[derive(Default, Clone)]
struct Counts(Arc<Mutex<BTreeMap<&'static str, u64>>>);

impl Counts {
    fn record<B>(&self, req: &http::Request<B>) {
        let query = req.uri().query().unwrap_or_default();
        let verb = match *req.method() {
            http::Method::GET if query.contains("watch=true") || query.contains("watch=1") => {
                "watch"
            }
            // A GET of a collection ends with the plural; of one object, with its name.
            http::Method::GET if is_collection(req.uri().path()) => "list",
            http::Method::GET => "get",
            http::Method::POST => "create",
            http::Method::PATCH => "patch",
            http::Method::PUT => "update",
            http::Method::DELETE => "delete",
            _ => "other",
        };
        *self.0.lock().unwrap().entry(verb).or_default() += 1;
    }

    fn take(&self) -> BTreeMap<&'static str, u64> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// True for the path of a collection (`/api/v1/namespaces/ns/secrets`,
/// `/apis/g/v/namespaces/ns/plural`, `/api/v1/namespaces`), as opposed to one object
/// (`.../secrets/name`, `/api/v1/namespaces/ns`) or a subresource (`.../name/status`).
fn is_collection(path: &str) -> bool {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    // /api/v1/<plural> | /api/v1/namespaces/<ns>/<plural>
    // /apis/<group>/<version>/<plural> | /apis/<group>/<version>/namespaces/<ns>/<plural>
    let base = if parts.first() == Some(&"api") { 2 } else { 3 };
    let rest = parts.len().saturating_sub(base);
    match parts.get(base) {
        Some(&"namespaces") => rest == 3 || rest == 1,
        _ => rest == 1,
    }
}

fn writes(counts: &BTreeMap<&'static str, u64>) -> u64 {
    ["create", "patch", "update", "delete", "other"]
        .iter()
        .map(|v| counts.get(v).copied().unwrap_or(0))
        .sum()
}

fn show(counts: &BTreeMap<&'static str, u64>) -> String {
    let total: u64 = counts.values().sum();
    let parts: Vec<String> = counts.iter().map(|(v, n)| format!("{v} {n}")).collect();
    format!("{total} ({})", parts.join(", "))
}

/// A client whose every request is counted in `counts`.
async fn counting_client(counts: Counts) -> Client {
    let config = Config::infer().await.expect("a cluster from KUBECONFIG");
    let layer = tower::util::MapRequestLayer::new(move |req: http::Request<kube::client::Body>| {
        counts.record(&req);
        req
    });
    ClientBuilder::try_from(config)
        .expect("a client from KUBECONFIG")
        .with_layer(&layer)
        .build()
}

fn main() -> ExitCode {
    if std::env::var("AWMCP_E2E").as_deref() != Ok("1") {
        println!(
            "cluster_scale: not run. It changes the cluster KUBECONFIG names; set AWMCP_E2E=1 (and KUBECONFIG) to run it."
        );
        return ExitCode::SUCCESS;
    }
    let servers: usize = std::env::var("AWMCP_SCALE_SERVERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run(servers))
}

async fn run(servers: usize) -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let admin = Client::try_default()
        .await
        .expect("a cluster from KUBECONFIG");
    install_crd(&admin).await;
    let id = format!("{:x}", std::process::id());
    let ns = format!("awmcp-scale-{id}");
    let opns = format!("awmcp-scale-{id}-op");
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for name in [&ns, &opns] {
        let namespace: Namespace =
            serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
        namespaces
            .create(&PostParams::default(), &namespace)
            .await
            .expect("create a namespace");
    }
    let outcome = measure(&admin, &ns, &opns, servers).await;
    for name in [&ns, &opns] {
        let _ = namespaces.delete(name, &DeleteParams::default()).await;
    }
    outcome
}

async fn measure(admin: &Client, ns: &str, opns: &str, servers: usize) -> ExitCode {
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), ns);
    let key: Secret = serde_json::from_value(json!({
        "metadata": {"name": "atomicwork-api"},
        "stringData": {"apiKey": "scale-bench-api-key"}
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &key)
        .await
        .expect("create the API key Secret");
    let api: Api<AtomicworkMcpServer> = Api::namespaced(admin.clone(), ns);
    let started = Instant::now();
    futures::stream::iter(0..servers)
        .map(|i| {
            let api = api.clone();
            async move {
                let tags = ["changes", "requests", "assets", "audit"][i % 4];
                let server: AtomicworkMcpServer = serde_json::from_value(json!({
                    "apiVersion": "mcp.atomicwork.dev/v1alpha1",
                    "kind": "AtomicworkMcpServer",
                    "metadata": {"name": format!("s{i:04}")},
                    "spec": {
                        "atomicwork": {
                            "baseUrl": "https://acme.atomicwork.com",
                            "apiKeySecretRef": {"name": "atomicwork-api"},
                            "workspaceId": "1"
                        },
                        "tags": [tags]
                    }
                }))
                .expect("server");
                api.create(&PostParams::default(), &server)
                    .await
                    .expect("create a server");
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<()>>()
        .await;
    println!(
        "created {servers} AtomicworkMcpServer resources in {:.1} s (before the controller starts)",
        started.elapsed().as_secs_f64()
    );

    let catalog = Arc::new(Catalog::builtin().expect("catalog"));
    let counts = Counts::default();
    let opts = || ControllerOptions {
        settings: Settings {
            public_url: BaseUrl::parse("https://mcp.example.com").expect("URL"),
            redact_status_url: false,
            resolve: ResolveOptions::default(),
            runtime_namespace: opns.to_string(),
            record_owner: None,
        },
        scope: Scope::Namespaces(vec![ns.to_string()]),
        lease: None,
    };

    // Phase 1: from nothing to every server Ready.
    let stop = CancellationToken::new();
    let client = counting_client(counts.clone()).await;
    let task = tokio::spawn(runtime::controller(
        client,
        catalog.clone(),
        opts(),
        None,
        stop.clone(),
    ));
    let started = Instant::now();
    let ready = wait_all_ready(&api, servers, started).await;
    let first = counts.take();
    let mut ok = true;
    match ready {
        Some(took) => {
            println!(
                "all {servers} Ready with a URL after {:.1} s (target {} s); controller requests: {}",
                took.as_secs_f64(),
                TARGET_READY.as_secs(),
                show(&first)
            );
            if took > TARGET_READY {
                println!(
                    "MISSED: Ready took longer than {} s",
                    TARGET_READY.as_secs()
                );
                ok = false;
            }
        }
        None => {
            println!(
                "MISSED: not every server was Ready within {} s; controller requests: {}",
                GIVE_UP.as_secs(),
                show(&first)
            );
            stop.cancel();
            let _ = task.await;
            return ExitCode::FAILURE;
        }
    }
    // Let the first controller finish what it started, then stop it.
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    let _ = task.await;
    counts.take();

    // Phase 2: a restart must converge without writing anything.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let metrics = format!("http://{}/metrics", listener.local_addr().expect("address"));
    let stop = CancellationToken::new();
    let client = counting_client(counts.clone()).await;
    let started = Instant::now();
    let task = tokio::spawn(runtime::controller(
        client,
        catalog,
        opts(),
        Some(listener),
        stop.clone(),
    ));
    let converged = wait_reconciled(&metrics, servers, started).await;
    // Anything still in flight would show up here.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = counts.take();
    stop.cancel();
    let _ = task.await;
    let wrote = writes(&second);
    match converged {
        Some(took) => println!(
            "restart: every server reconciled after {:.1} s; controller requests: {}; writes: {wrote} (target 0)",
            took.as_secs_f64(),
            show(&second)
        ),
        None => {
            println!(
                "MISSED: after a restart not every server was reconciled within {} s; requests: {}",
                GIVE_UP.as_secs(),
                show(&second)
            );
            ok = false;
        }
    }
    if wrote > 0 {
        println!("MISSED: a restart wrote {wrote} times");
        ok = false;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// Waits until every server has `Ready=True` and a URL; the time it took.
async fn wait_all_ready(
    api: &Api<AtomicworkMcpServer>,
    servers: usize,
    started: Instant,
) -> Option<Duration> {
    loop {
        let list = api.list(&ListParams::default()).await.ok()?;
        let ready = list
            .items
            .iter()
            .filter(|s| {
                s.status.as_ref().is_some_and(|st| {
                    st.url.is_some()
                        && st
                            .conditions
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True")
                })
            })
            .count();
        if ready >= servers {
            return Some(started.elapsed());
        }
        if started.elapsed() > GIVE_UP {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Waits until the controller's own metrics count a reconcile per server.
async fn wait_reconciled(metrics: &str, servers: usize, started: Instant) -> Option<Duration> {
    let http = reqwest::Client::new();
    loop {
        if let Ok(resp) = http.get(metrics).send().await
            && let Ok(text) = resp.text().await
        {
            let done: f64 = text
                .lines()
                .filter(|l| l.starts_with("atomicwork_mcp_controller_reconciles_total{"))
                .filter(|l| l.contains("outcome=\"ready\"") || l.contains("outcome=\"not_ready\""))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum();
            if done >= servers as f64 {
                return Some(started.elapsed());
            }
        }
        if started.elapsed() > GIVE_UP {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Applies the CRD and waits until it is established.
async fn install_crd(client: &Client) {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = AtomicworkMcpServer::crd();
    let name = crd.metadata.name.clone().expect("a CRD name");
    crds.patch(
        &name,
        &PatchParams::apply("atomicwork-mcp-scale-bench").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply the CRD");
    let established = kube::runtime::wait::await_condition(
        crds,
        &name,
        kube::runtime::wait::conditions::is_crd_established(),
    );
    let _ = tokio::time::timeout(Duration::from_secs(30), established).await;
}
