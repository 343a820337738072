//! Data-plane latency and throughput against the same calls made straight to the upstream.
//!
//! `cargo bench --bench dataplane` — client, data plane and upstream all run on this machine,
//! so the figures are ratios from one run, not absolute capacities.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use atomicwork_mcp::catalog::Catalog;
use atomicwork_mcp::crd::AtomicworkMcpServer;
use atomicwork_mcp::dataplane::{self, Dataplane, DataplaneConfig};
use atomicwork_mcp::registry::Registry;
use atomicwork_mcp::resolve::{self, ResolveOptions, SecretData};
use atomicwork_mcp::upstream::{Upstream, UpstreamOptions};
use axum::routing::get;
use serde_json::json;

const CONCURRENCY: usize = 32;
const PER_CLIENT: usize = 250;

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn upstream() -> String {
    let body = json!({
        "data": (1..=10).map(|i| json!({"id": i, "name": format!("Workspace {i}"), "description": "A workspace of the benchmark tenant", "is_member": true})).collect::<Vec<_>>(),
        "total_count": 10,
        "total_pages": 1
    });
    let app = axum::Router::new().route(
        "/api/v1/workspaces",
        get(move || {
            let body = body.clone();
            async move { axum::Json(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

fn server(name: &str, extra: &str) -> AtomicworkMcpServer {
    let yaml = format!(
        "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: {name}, namespace: bench}}\nspec:\n  atomicwork:\n    baseUrl: https://acme.atomicwork.com\n    apiKeySecretRef: {{name: key}}\n    workspaceId: \"1\"\n{extra}"
    );
    serde_saphyr::from_str(&yaml).expect("manifest")
}

fn secrets() -> BTreeMap<(String, String), SecretData> {
    BTreeMap::from([(
        ("bench".to_string(), "key".to_string()),
        BTreeMap::from([("apiKey".to_string(), b"bench-key".to_vec())]),
    )])
}

struct Stats {
    label: &'static str,
    requests: usize,
    elapsed: Duration,
    p50: Duration,
    p99: Duration,
}

impl Stats {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

async fn drive(
    label: &'static str,
    make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
) -> Stats {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client");
    let make = Arc::new(make);
    // Warm up connections.
    for _ in 0..CONCURRENCY {
        let _ = make(&client)
            .send()
            .await
            .and_then(|r| r.error_for_status());
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let client = client.clone();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(PER_CLIENT);
            for _ in 0..PER_CLIENT {
                let t = Instant::now();
                let resp = make(&client).send().await.expect("send");
                assert!(resp.status().is_success(), "{label}: {}", resp.status());
                let _ = resp.bytes().await.expect("body");
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all[((all.len() as f64 * p) as usize).min(all.len() - 1)];
    Stats {
        label,
        requests: all.len(),
        elapsed,
        p50: pct(0.50),
        p99: pct(0.99),
    }
}

async fn run() {
    let upstream_url = upstream().await;
    let catalog = Catalog::builtin().expect("catalog");
    let registry = Arc::new(Registry::new());
    let opts = ResolveOptions {
        base_url_override: Some(upstream_url.clone()),
        notice: None,
    };
    let view = resolve::resolve(
        &server("bench", ""),
        &secrets(),
        &catalog,
        jiff::Timestamp::now(),
        &opts,
    )
    .view
    .expect("resolves");
    let token = "bench-token-0123456789abcdef0123456789abcdef";
    registry.upsert(
        &view.id.clone(),
        Some((atomicwork_mcp::secret::TokenHash::of(token), view)),
    );
    registry.mark_ready();
    let dp = Arc::new(Dataplane::new(
        registry.clone(),
        Upstream::new(UpstreamOptions::default()).expect("upstream"),
        DataplaneConfig::default(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = dataplane::serve(listener, dp, std::future::pending()).await;
    });
    let mcp_url = format!("http://{addr}/mcp/{token}");

    let direct_url = format!("{upstream_url}/api/v1/workspaces?page=1");
    let direct = drive("direct upstream GET", move |c| {
        c.get(&direct_url).header("x-api-key", "bench-key")
    })
    .await;
    let call_url = mcp_url.clone();
    let call = drive("tools/call via data plane", move |c| {
        c.post(&call_url)
            .header("content-type", "application/json")
            .header("mcp-protocol-version", "2025-11-25")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_all_atomicwork_workspaces","arguments":{}}}"#)
    })
    .await;
    let list_url = mcp_url.clone();
    let list_body = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let list = drive("tools/list via data plane, 1 server", move |c| {
        c.post(&list_url)
            .header("content-type", "application/json")
            .body(list_body)
    })
    .await;

    // The same tools/list with 10,000 servers in the registry.
    let mut entries = Vec::new();
    let filters = [
        "  methods: [read]\n",
        "  tags: [changes]\n",
        "  tags: [assets, audit]\n",
        "",
    ];
    for i in 0..10_000 {
        let s = server(&format!("s{i}"), filters[i % filters.len()]);
        let v = resolve::resolve(&s, &secrets(), &catalog, jiff::Timestamp::now(), &opts)
            .view
            .expect("resolves");
        entries.push((
            atomicwork_mcp::secret::TokenHash::of(&format!("token-{i}")),
            v,
        ));
    }
    let first = registry.lookup(token).expect("bench server");
    drop(first);
    let view = resolve::resolve(
        &server("bench", ""),
        &secrets(),
        &catalog,
        jiff::Timestamp::now(),
        &opts,
    )
    .view
    .expect("resolves");
    entries.push((atomicwork_mcp::secret::TokenHash::of(token), view));
    registry.replace_all(entries);
    let list_url = mcp_url.clone();
    let list_many = drive("tools/list via data plane, 10,001 servers", move |c| {
        c.post(&list_url)
            .header("content-type", "application/json")
            .body(list_body)
    })
    .await;

    println!(
        "\n{} clients x {} requests each; client, data plane and upstream on one machine\n",
        CONCURRENCY, PER_CLIENT
    );
    println!(
        "{:<42} {:>10} {:>10} {:>10}",
        "scenario", "req/s", "p50 ms", "p99 ms"
    );
    for s in [&direct, &call, &list, &list_many] {
        println!(
            "{:<42} {:>10.0} {:>10.3} {:>10.3}",
            s.label,
            s.throughput(),
            s.p50.as_secs_f64() * 1e3,
            s.p99.as_secs_f64() * 1e3
        );
    }
    println!();
    println!(
        "tools/call throughput / direct throughput: {:.2}x",
        call.throughput() / direct.throughput()
    );
    println!(
        "tools/call added latency: p50 {:+.3} ms, p99 {:+.3} ms",
        (call.p50.as_secs_f64() - direct.p50.as_secs_f64()) * 1e3,
        (call.p99.as_secs_f64() - direct.p99.as_secs_f64()) * 1e3
    );
    println!(
        "tools/list p50 with 10,001 servers / with 1 server: {:.2}x",
        list_many.p50.as_secs_f64() / list.p50.as_secs_f64()
    );
}
