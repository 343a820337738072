//! Data-plane throughput and latency against the same call made straight to the upstream.
//!
//! `cargo bench --bench dataplane` — the load generator, the data plane and the upstream
//! share this machine's cores, so the figures are ratios from one run, not capacities.
//!
//! Three ways to the same upstream answer are measured in interleaved rounds, so drifting
//! machine load hits them alike:
//! - `direct`: the client calls the upstream;
//! - `bare proxy`: the client calls a forwarder built from the same parts as the data plane
//!   (axum server, pooled reqwest client) that does nothing but pass the request on and the
//!   bytes back — the floor for any HTTP proxy on this stack;
//! - `tools/call`: the client calls the data plane, which checks the token, parses and
//!   validates the JSON-RPC request, builds the Atomicwork request, calls the upstream and
//!   wraps the answer as an MCP result;
//! - `tools/call, OAuth`: the same call to a server with `auth.oauth`, every request
//!   carrying the same access token, minted by a real authorization server
//!   (`oidc-provider`, as the tests run it; needs Node.js, else this way is left out). The
//!   data plane checks the JWT on each call: its signature once, then from the cache of
//!   verified tokens until it expires.
//!
//! Throughput is measured with 32 closed-loop clients. Latency is measured at fixed offered
//! loads (a quarter and a half of the data plane's saturated rate, 32 paced clients) and
//! with one client: at saturation any slowdown shows up as queueing (Little's law) rather
//! than as the time the data plane adds to a call.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../tests/common/oidc.rs"]
#[allow(dead_code)]
mod oidc;

use std::sync::Arc;
use std::time::{Duration, Instant};

use atomicwork_mcp::core::base_url::BaseUrl;
use atomicwork_mcp::core::catalog::Catalog;
use atomicwork_mcp::dataplane::DataplaneConfig;
use atomicwork_mcp::dataplane::registry::Registry;
use axum::routing::{get, post};
use common::{api_key_secrets, percentile, resolve_at, serve_app, server, start_dataplane};
use serde_json::json;

/// The binary's allocator, so the figures are the deployed program's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const CONCURRENCY: usize = 32;
const PER_CLIENT: usize = 250;
const ROUNDS: usize = 3;
const PACED_PER_CLIENT: usize = 100;
/// Offered loads for the latency figures, as shares of the data plane's saturated rate.
const LOAD_SHARES: [f64; 2] = [0.25, 0.5];
const SINGLE_CLIENT_REQUESTS: usize = 1_000;
const TOKEN: &str = "bench-token-0123456789abcdef0123456789abcdef";
const OAUTH_TOKEN: &str = "bench-oauth-0123456789abcdef0123456789abcdef";
const CALL_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_all_atomicwork_workspaces","arguments":{}}}"#;
const LIST_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

/// The test upstream: a 1 KB JSON page of workspaces, built and serialised per request as
/// a JSON API would.
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
    serve_app(app).await
}

/// The bare forwarder: the same POST in (body read and dropped), a GET to the upstream, the
/// upstream's bytes back.
async fn bare_proxy(upstream_url: String) -> String {
    let client = reqwest::Client::new();
    let target = format!("{upstream_url}/api/v1/workspaces?page=1");
    let app = axum::Router::new().route(
        "/forward",
        post(move |body: axum::body::Bytes| {
            let (client, target) = (client.clone(), target.clone());
            async move {
                drop(body);
                let resp = client
                    .get(&target)
                    .header("x-api-key", "bench-key")
                    .send()
                    .await
                    .map_err(|e| (axum::http::StatusCode::BAD_GATEWAY, e.to_string()))?;
                let bytes = resp
                    .bytes()
                    .await
                    .map_err(|e| (axum::http::StatusCode::BAD_GATEWAY, e.to_string()))?;
                Ok::<_, (axum::http::StatusCode, String)>(bytes)
            }
        }),
    );
    serve_app(app).await
}

/// One kind of request, made the same way by every client.
#[derive(Clone)]
enum Call {
    Get(Arc<str>),
    Post(Arc<str>, &'static str),
    /// A POST with this `Authorization` header value (`Bearer <token>`).
    PostBearer(Arc<str>, &'static str, reqwest::header::HeaderValue),
}

impl Call {
    fn request(&self, c: &reqwest::Client) -> reqwest::RequestBuilder {
        match self {
            Call::Get(url) => c.get(url.as_ref()).header("x-api-key", "bench-key"),
            Call::Post(url, body) => c
                .post(url.as_ref())
                .header("content-type", "application/json")
                .header("mcp-protocol-version", "2025-11-25")
                .body(*body),
            Call::PostBearer(url, body, authorization) => c
                .post(url.as_ref())
                .header("content-type", "application/json")
                .header("mcp-protocol-version", "2025-11-25")
                .header("authorization", authorization.clone())
                .body(*body),
        }
    }
}

struct Stats {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Stats {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("client")
}

async fn once(client: &reqwest::Client, call: &Call) -> Duration {
    let t = Instant::now();
    let resp = call.request(client).send().await.expect("send");
    assert!(resp.status().is_success(), "{}", resp.status());
    let _ = resp.bytes().await.expect("body");
    t.elapsed()
}

/// `clients` tasks each send `per_client` requests, one after another, or paced at one
/// every `interval` when given (latency is then measured from the actual send).
async fn drive(
    call: &Call,
    clients: usize,
    per_client: usize,
    interval: Option<Duration>,
) -> Stats {
    let http = client();
    for _ in 0..clients {
        once(&http, call).await;
    }
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..clients {
        let (http, call) = (http.clone(), call.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_client);
            // Paced clients start spread over one interval.
            let offset = interval.map(|iv| iv.mul_f64(i as f64 / clients as f64));
            for n in 0..per_client {
                if let (Some(iv), Some(offset)) = (interval, offset) {
                    let due = started + offset + iv * n as u32;
                    tokio::time::sleep_until(due.into()).await;
                }
                lat.push(once(&http, &call).await);
            }
            lat
        }));
    }
    let mut latencies = Vec::new();
    for t in tasks {
        latencies.extend(t.await.expect("task"));
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Stats {
        requests: latencies.len(),
        elapsed,
        latencies,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn run() {
    let upstream_url = upstream().await;
    let proxy_url = bare_proxy(upstream_url.clone()).await;
    let catalog = Catalog::builtin().expect("catalog");
    let registry = Arc::new(Registry::new());
    let secrets = api_key_secrets("bench", "key", b"bench-key");
    let resolve_one = |name: &str, extra: &str| {
        resolve_at(
            &server("bench", name, extra),
            &secrets,
            &catalog,
            &upstream_url,
        )
    };
    let view = resolve_one("bench", "");
    registry.upsert(
        &view.id.clone(),
        Some((atomicwork_mcp::core::secret::TokenHash::of(TOKEN), view)),
    );
    registry.mark_ready();
    let (base, _) = start_dataplane(registry.clone(), DataplaneConfig::default()).await;
    let mcp_url: Arc<str> = format!("{base}/mcp/{TOKEN}").into();
    // The OAuth server's connector URL is based on the data plane's address, as the
    // controller bases it on its public URL.
    let oauth_url: Arc<str> = format!("{base}/mcp/{OAUTH_TOKEN}").into();
    let authorization = oauth_server(&oauth_url).await;
    if let Some((oidc, _)) = &authorization {
        let view = resolve_oauth(oidc.issuer(), &base, &secrets, &catalog, &upstream_url);
        registry.upsert(
            &view.id.clone(),
            Some((
                atomicwork_mcp::core::secret::TokenHash::of(OAUTH_TOKEN),
                view,
            )),
        );
    }

    let mut ways = vec![
        (
            "direct upstream GET",
            Call::Get(format!("{upstream_url}/api/v1/workspaces?page=1").into()),
        ),
        (
            "bare proxy (pass-through floor)",
            Call::Post(format!("{proxy_url}/forward").into(), CALL_BODY),
        ),
        (
            "tools/call via data plane",
            Call::Post(mcp_url.clone(), CALL_BODY),
        ),
    ];
    if let Some((_, token)) = &authorization {
        ways.push((
            "tools/call, OAuth (same JWT)",
            Call::PostBearer(oauth_url.clone(), CALL_BODY, token.clone()),
        ));
    }

    // Throughput at saturation, interleaved rounds.
    let mut rates = vec![Vec::new(); ways.len()];
    let mut saturated: Vec<Option<Stats>> = (0..ways.len()).map(|_| None).collect();
    for _ in 0..ROUNDS {
        for (i, (_, call)) in ways.iter().enumerate() {
            let s = drive(call, CONCURRENCY, PER_CLIENT, None).await;
            rates[i].push(s.throughput());
            saturated[i] = Some(s);
        }
    }
    let ratio = |i: usize| median((0..ROUNDS).map(|r| rates[i][r] / rates[0][r]).collect());
    let oauth_ratio =
        (ways.len() > 3).then(|| median((0..ROUNDS).map(|r| rates[3][r] / rates[2][r]).collect()));
    let call_rate = median(rates[2].clone());

    // Latency at fixed offered loads every way can carry, and with one client.
    let loads: Vec<f64> = LOAD_SHARES
        .iter()
        .map(|share| (call_rate * share).max(100.0))
        .collect();
    let mut paced: Vec<Vec<Stats>> = loads.iter().map(|_| Vec::new()).collect();
    let mut single = Vec::new();
    for (_, call) in &ways {
        for (l, offered) in loads.iter().enumerate() {
            let interval = Duration::from_secs_f64(CONCURRENCY as f64 / offered);
            paced[l].push(drive(call, CONCURRENCY, PACED_PER_CLIENT, Some(interval)).await);
        }
        single.push(drive(call, 1, SINGLE_CLIENT_REQUESTS, None).await);
    }

    // tools/list with 1 server, then with 10,001.
    let list_call = Call::Post(mcp_url.clone(), LIST_BODY);
    let list_one = drive(&list_call, CONCURRENCY, PER_CLIENT, None).await;
    let filters = [
        "  methods: [read]\n",
        "  tags: [changes]\n",
        "  tags: [assets, audit]\n",
        "",
    ];
    let mut entries: Vec<_> = (0..10_000)
        .map(|i| {
            (
                atomicwork_mcp::core::secret::TokenHash::of(&format!("token-{i}")),
                resolve_one(&format!("s{i}"), filters[i % filters.len()]),
            )
        })
        .collect();
    entries.push((
        atomicwork_mcp::core::secret::TokenHash::of(TOKEN),
        resolve_one("bench", ""),
    ));
    registry.replace_all(entries);
    let list_many = drive(&list_call, CONCURRENCY, PER_CLIENT, None).await;

    println!(
        "\nthroughput: {CONCURRENCY} closed-loop clients x {PER_CLIENT} requests, median of {ROUNDS} interleaved rounds"
    );
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9}",
        "scenario", "req/s", "x direct", "p50 ms", "p99 ms"
    );
    for (i, (label, _)) in ways.iter().enumerate() {
        let s = saturated[i].as_ref().expect("measured");
        println!(
            "{:<36} {:>9.0} {:>9.2} {:>9.3} {:>9.3}",
            label,
            median(rates[i].clone()),
            ratio(i),
            ms(s.pct(0.5)),
            ms(s.pct(0.99))
        );
    }
    for (label, s) in [
        ("tools/list, 1 server", &list_one),
        ("tools/list, 10,001 servers", &list_many),
    ] {
        println!(
            "{:<36} {:>9.0} {:>9} {:>9.3} {:>9.3}",
            label,
            s.throughput(),
            "",
            ms(s.pct(0.5)),
            ms(s.pct(0.99))
        );
    }
    println!(
        "\nlatency (ms): {CONCURRENCY} paced clients x {PACED_PER_CLIENT} at {} of the data plane's rate, and 1 client x {SINGLE_CLIENT_REQUESTS}",
        loads
            .iter()
            .map(|l| format!("{l:.0} req/s"))
            .collect::<Vec<_>>()
            .join(" and ")
    );
    print!("{:<36}", "scenario");
    for l in &loads {
        print!(" {:>9} {:>9}", format!("{l:.0} p50"), format!("{l:.0} p99"));
    }
    println!(" {:>9} {:>9}", "1 cl. p50", "1 cl. p99");
    for (i, (label, _)) in ways.iter().enumerate() {
        print!("{label:<36}");
        for p in &paced {
            print!(" {:>9.3} {:>9.3}", ms(p[i].pct(0.5)), ms(p[i].pct(0.99)));
        }
        println!(
            " {:>9.3} {:>9.3}",
            ms(single[i].pct(0.5)),
            ms(single[i].pct(0.99))
        );
    }
    let added = |s: &[Stats], i: usize, p: f64| ms(s[i].pct(p)) - ms(s[0].pct(p));
    println!();
    println!(
        "tools/call throughput / direct: {:.2}x (bare proxy floor {:.2}x)",
        ratio(2),
        ratio(1)
    );
    for (l, offered) in loads.iter().enumerate() {
        println!(
            "tools/call added latency at {offered:.0} req/s: p50 {:+.3} ms, p99 {:+.3} ms (bare proxy p50 {:+.3}, p99 {:+.3})",
            added(&paced[l], 2, 0.5),
            added(&paced[l], 2, 0.99),
            added(&paced[l], 1, 0.5),
            added(&paced[l], 1, 0.99)
        );
    }
    println!(
        "tools/call added latency, 1 client: p50 {:+.3} ms, p99 {:+.3} ms (bare proxy p50 {:+.3}, p99 {:+.3})",
        added(&single, 2, 0.5),
        added(&single, 2, 0.99),
        added(&single, 1, 0.5),
        added(&single, 1, 0.99)
    );
    println!(
        "tools/list p50 with 10,001 servers / with 1 server: {:.2}x",
        list_many.pct(0.5).as_secs_f64() / list_one.pct(0.5).as_secs_f64()
    );
    match oauth_ratio {
        Some(r) => {
            println!(
                "tools/call throughput, OAuth (validated JWT) / URL token: {r:.2}x (median of {ROUNDS} rounds)"
            );
            for (l, offered) in loads.iter().enumerate() {
                println!(
                    "OAuth tools/call latency over URL-token tools/call at {offered:.0} req/s: p50 {:+.3} ms, p99 {:+.3} ms",
                    ms(paced[l][3].pct(0.5)) - ms(paced[l][2].pct(0.5)),
                    ms(paced[l][3].pct(0.99)) - ms(paced[l][2].pct(0.99))
                );
            }
        }
        None => println!("tools/call, OAuth: not measured (no authorization server; see above)"),
    }
}

/// A real authorization server and an `Authorization` value with an access token from it
/// for `resource`, or `None`
/// (said why) when Node.js is not there to run it.
async fn oauth_server(resource: &str) -> Option<(oidc::Oidc, reqwest::header::HeaderValue)> {
    let node = std::process::Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        println!("tools/call, OAuth: left out: Node.js is needed to run the authorization server");
        return None;
    }
    let oidc = oidc::Oidc::start().await;
    let token = oidc
        .client_credentials_with_ttl(resource, &["atomicwork.read"], 3600)
        .await;
    let authorization =
        reqwest::header::HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
    Some((oidc, authorization))
}

/// The bench's OAuth server trusting `issuer`, resolved as the controller resolves it: its
/// connector URL based on `public_url`, its tenant URL replaced by `upstream_url`.
fn resolve_oauth(
    issuer: &str,
    public_url: &str,
    secrets: &dyn atomicwork_mcp::k8s::resolve::SecretLookup,
    catalog: &Catalog,
    upstream_url: &str,
) -> atomicwork_mcp::core::server::ServerView {
    let opts = atomicwork_mcp::k8s::resolve::ResolveOptions {
        base_url_override: Some(BaseUrl::parse(upstream_url).expect("the bench upstream")),
        notice: None,
        public_url: Some(BaseUrl::parse(public_url).expect("the bench data plane")),
        confirm_key: None,
    };
    let manifest = server(
        "bench",
        "bench-oauth",
        &format!("  auth:\n    oauth:\n      issuer: {issuer}\n"),
    );
    atomicwork_mcp::k8s::resolve::resolve(
        &manifest,
        secrets,
        catalog,
        jiff::Timestamp::now(),
        &opts,
    )
    .view
    .expect("the OAuth server resolves")
}
