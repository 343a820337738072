//! Data-plane throughput, CPU time per call and latency, against the same call made
//! straight to the upstream.
//!
//! `cargo bench --bench dataplane` — the load generator, the data plane and the upstream
//! share this machine's cores, so throughput and latency are ratios from one run, not
//! capacities. CPU time per call is the machine-independent figure: each server under test
//! runs as its own process, and its CPU time (user and system, every thread, from the
//! kernel's accounting of that process) over a saturated run is divided by the calls it
//! served. The load generator and the upstream run in this process and are never counted.
//!
//! The ways to the same upstream answer, measured in interleaved rounds so drifting machine
//! load hits them alike:
//! - `direct`: the client calls the upstream;
//! - `bare proxy`: the client calls a forwarder built from the same parts as the data plane
//!   (axum server, and the data plane's own upstream client, `upstream::client::HttpClient`:
//!   hyper's pooled client with the same TLS, gzip and timeout handling) that does nothing
//!   but pass the request on and the bytes back — the floor for any HTTP proxy on this
//!   stack. It is this bench binary run again as a child process;
//! - `tools/call`: the client calls the data plane — the real `atomicwork-mcp` binary in
//!   local mode, logging as deployed (JSON, `info`), fed a manifest that points at the
//!   upstream — which checks the token, parses and validates the JSON-RPC request, builds
//!   the Atomicwork request, calls the upstream and wraps the answer as an MCP result;
//! - `tools/call, baseline`: the same through another build of the binary, when
//!   `AWMCP_BENCH_BASELINE_BIN` names one, so a change is measured against the old build
//!   in one run. `AWMCP_BENCH_BIN` replaces the binary under test (by default the one
//!   this bench was built with);
//! - `tools/call, traced`: the same call through a second process of the binary under
//!   test with OpenTelemetry tracing on, every span sampled (`always_on`) and exported
//!   over OTLP/HTTP to a receiver in this bench that accepts each export at once: what
//!   tracing adds to a call's CPU time, export included. What tracing costs when it is
//!   off is the data plane against a baseline built before tracing existed;
//! - `tools/call, OAuth`: the same call to a server with `auth.oauth` (on the binary under
//!   test), every request carrying the same access token, minted by a real authorization
//!   server (`oidc-provider`, as the tests run it; needs Node.js, else this way is left
//!   out). The data plane checks the JWT on each call: its signature once, then from the
//!   cache of verified tokens until it expires.
//!
//! Throughput and CPU time come from 32 closed-loop clients. Latency is measured at fixed
//! offered loads (a quarter and a half of the data plane's saturated rate, 32 paced
//! clients) and with one client: at saturation any slowdown shows up as queueing (Little's
//! law) rather than as the time the data plane adds to a call.
//!
//! A new case is one more [`Way`] in `ways` (a label, the [`Call`] to make and the process
//! whose CPU time to count), plus whatever it needs in the manifest ([`manifest`]).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "../tests/common/oidc.rs"]
#[allow(dead_code)]
mod oidc;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use atomicwork_mcp::upstream::client::{ClientError, ClientSettings, HttpClient, Proxies};
use axum::http::{HeaderName, HeaderValue, Method};
use axum::routing::{get, post};
use common::{percentile, serve_app};
use http_body_util::Full;
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
/// Servers in the manifest of the `tools/list` scaling case (plus the bench's own).
const MANY_SERVERS: usize = 10_000;
const TOKEN: &str = "bench-token-0123456789abcdef0123456789abcdef";
const OAUTH_TOKEN: &str = "bench-oauth-0123456789abcdef0123456789abcdef";
const API_KEY: &str = "bench-key";
const CALL_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_all_atomicwork_workspaces","arguments":{}}}"#;
const LIST_BODY: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

/// Set in a child process of this bench to the role it plays.
const ROLE_ENV: &str = "AWMCP_BENCH_ROLE";
/// The upstream a bare-proxy child forwards to.
const UPSTREAM_ENV: &str = "AWMCP_BENCH_UPSTREAM";
/// The `atomicwork-mcp` binary under test (default: the one built with this bench).
const BIN_ENV: &str = "AWMCP_BENCH_BIN";
/// Another `atomicwork-mcp` binary to measure side by side (e.g. a build of main).
const BASELINE_ENV: &str = "AWMCP_BENCH_BASELINE_BIN";
/// Proxy settings the children must not inherit: every call here stays on loopback.
const PROXY_VARS: [&str; 6] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
];

fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("bare-proxy") => rt.block_on(bare_proxy_child()),
        Ok(other) => panic!("unknown {ROLE_ENV} {other:?}"),
        Err(_) => rt.block_on(run()),
    }
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

/// The bare forwarder, run as a child process: the same POST in (body read and dropped),
/// a GET to the upstream, the upstream's bytes back. Prints its address, then serves
/// until its standard input closes (when the bench ends, however it ends).
async fn bare_proxy_child() {
    let upstream_url = std::env::var(UPSTREAM_ENV).expect("the upstream to forward to");
    let client = HttpClient::new(&ClientSettings {
        proxies: Proxies::Off,
        ..ClientSettings::default()
    })
    .expect("client");
    let target: axum::http::Uri = format!("{upstream_url}/api/v1/workspaces?page=1")
        .parse()
        .expect("upstream URL");
    let app = axum::Router::new().route(
        "/forward",
        post(move |body: axum::body::Bytes| {
            let (client, target) = (client.clone(), target.clone());
            async move {
                drop(body);
                let mut req = axum::http::Request::new(Full::new(axum::body::Bytes::new()));
                *req.uri_mut() = target;
                req.headers_mut()
                    .insert("x-api-key", HeaderValue::from_static(API_KEY));
                let bad_gateway =
                    |e: ClientError| (axum::http::StatusCode::BAD_GATEWAY, e.to_string());
                let answer = client
                    .send(req, Duration::from_secs(30))
                    .await
                    .map_err(bad_gateway)?;
                let bytes = answer.body.map_err(bad_gateway)?;
                Ok::<_, (axum::http::StatusCode, String)>(bytes)
            }
        }),
    );
    let url = serve_app(app).await;
    println!("listening on {url}");
    let _ = std::io::stdout().flush();
    std::thread::spawn(|| {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        std::process::exit(0);
    });
    std::future::pending::<()>().await;
}

/// A server under test running as a child process; killed when dropped.
struct Proc {
    child: Child,
    /// `http://host:port` it listens on.
    base: String,
}

impl Proc {
    /// Starts `cmd` and waits for it to print `listening on http://…`; the rest of its
    /// standard output is read and dropped so it never blocks on a full pipe.
    fn start(mut cmd: Command, what: &str) -> Proc {
        for var in PROXY_VARS {
            cmd.env_remove(var);
        }
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(base) = line.trim().strip_prefix("listening on ")
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(base.to_string());
                }
            }
        });
        let base = rx
            .recv_timeout(Duration::from_secs(120))
            .unwrap_or_else(|_| panic!("{what} did not say where it listens"));
        Proc { child, base }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// This bench binary again, as the bare proxy in front of `upstream_url`.
fn start_bare_proxy(upstream_url: &str) -> Proc {
    let exe = std::env::current_exe().expect("this bench's path");
    let mut cmd = Command::new(exe);
    cmd.env(ROLE_ENV, "bare-proxy")
        .env(UPSTREAM_ENV, upstream_url);
    Proc::start(cmd, "the bare proxy")
}

/// `bin` in local mode over `manifests`, logging as deployed (JSON lines at `info` on
/// standard error, which goes nowhere here).
fn start_dataplane(bin: &Path, manifests: &Path, state_dir: &Path) -> Proc {
    start_dataplane_with(bin, manifests, state_dir, &[])
}

/// [`start_dataplane`] with `env` added.
fn start_dataplane_with(
    bin: &Path,
    manifests: &Path,
    state_dir: &Path,
    env: &[(&str, &str)],
) -> Proc {
    let mut cmd = Command::new(bin);
    cmd.envs(env.iter().copied());
    cmd.arg("local")
        .arg("--manifests")
        .arg(manifests)
        .arg("--state-dir")
        .arg(state_dir)
        .args(["--listen", "127.0.0.1:0", "--poll-seconds", "60"])
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("ATOMICWORK_MCP_CATALOG");
    for (name, _) in std::env::vars() {
        if name.starts_with("OTEL_") && !env.iter().any(|(n, _)| *n == name) {
            cmd.env_remove(name);
        }
    }
    Proc::start(cmd, &format!("{}", bin.display()))
}

/// The manifest: the API key Secret, the bench's server (its URL token fixed by a token
/// Secret), with an `issuer` the OAuth server trusting it, and `extra` more servers with
/// varied filters, all calling `upstream_url`.
fn manifest(upstream_url: &str, issuer: Option<&str>, extra: usize) -> String {
    let mut out = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: key, namespace: bench}}\nstringData: {{apiKey: {API_KEY}}}\n\
         ---\napiVersion: v1\nkind: Secret\nmetadata: {{name: bench-mcp-token, namespace: bench}}\nstringData: {{token: {TOKEN}}}\n"
    );
    let server = |out: &mut String, name: &str, spec: &str| {
        out.push_str(&format!(
            "---\napiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: {name}, namespace: bench}}\nspec:\n  atomicwork:\n    baseUrl: {upstream_url}\n    apiKeySecretRef: {{name: key}}\n    workspaceId: \"1\"\n{spec}"
        ));
    };
    server(&mut out, "bench", "");
    if let Some(issuer) = issuer {
        out.push_str(&format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata: {{name: bench-oauth-mcp-token, namespace: bench}}\nstringData: {{token: {OAUTH_TOKEN}}}\n"
        ));
        server(
            &mut out,
            "bench-oauth",
            &format!("  auth:\n    oauth:\n      issuer: {issuer}\n"),
        );
    }
    let filters = [
        "  methods: [read]\n",
        "  tags: [changes]\n",
        "  tags: [assets, audit]\n",
        "",
    ];
    for i in 0..extra {
        server(&mut out, &format!("s{i}"), filters[i % filters.len()]);
    }
    out
}

/// CPU time (user and system, all threads, living and exited) of process `pid` so far.
#[allow(unsafe_code)]
fn cpu_time(pid: u32) -> Duration {
    let mut clock: libc::clockid_t = 0;
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: both calls only write to the locals passed by pointer, which outlive them.
    let ok = unsafe {
        libc::clock_getcpuclockid(pid as libc::pid_t, &mut clock) == 0
            && libc::clock_gettime(clock, &mut ts) == 0
    };
    assert!(ok, "no CPU clock for process {pid}");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// One kind of request, made the same way by every client: a GET without a body, else a
/// JSON POST.
#[derive(Clone)]
struct Call {
    url: Arc<str>,
    body: Option<&'static str>,
    /// Extra request headers.
    headers: Vec<(HeaderName, HeaderValue)>,
}

impl Call {
    fn get(url: String) -> Self {
        Call {
            url: url.into(),
            body: None,
            headers: vec![(
                HeaderName::from_static("x-api-key"),
                HeaderValue::from_static(API_KEY),
            )],
        }
    }

    fn post(url: String, body: &'static str) -> Self {
        Call {
            url: url.into(),
            body: Some(body),
            headers: vec![(
                HeaderName::from_static("mcp-protocol-version"),
                HeaderValue::from_static("2025-11-25"),
            )],
        }
    }

    /// The call with this extra header.
    fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.push((name, value));
        self
    }

    fn request(&self, c: &reqwest::Client) -> reqwest::RequestBuilder {
        let mut rb = match self.body {
            None => c.request(Method::GET, self.url.as_ref()),
            Some(body) => c
                .request(Method::POST, self.url.as_ref())
                .header("content-type", "application/json")
                .body(body),
        };
        for (name, value) in &self.headers {
            rb = rb.header(name, value);
        }
        rb
    }
}

/// One way to the upstream answer.
struct Way {
    label: String,
    call: Call,
    /// The process serving it, whose CPU time per call is reported.
    pid: Option<u32>,
}

struct Stats {
    requests: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// CPU time the serving process spent over the run, when there is one.
    cpu: Option<Duration>,
}

impl Stats {
    fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    fn pct(&self, p: f64) -> Duration {
        percentile(&self.latencies, p)
    }

    /// CPU time of the serving process per request, in µs.
    fn cpu_us(&self) -> Option<f64> {
        self.cpu
            .map(|c| c.as_secs_f64() * 1e6 / self.requests as f64)
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .no_proxy()
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
/// every `interval` when given (latency is then measured from the actual send). The CPU
/// time of process `pid` is taken over the same span (connections are opened before).
async fn drive(
    call: &Call,
    clients: usize,
    per_client: usize,
    interval: Option<Duration>,
    pid: Option<u32>,
) -> Stats {
    let http = client();
    for _ in 0..clients {
        once(&http, call).await;
    }
    let cpu_before = pid.map(cpu_time);
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
    let cpu = pid.zip(cpu_before).map(|(p, before)| cpu_time(p) - before);
    latencies.sort();
    Stats {
        requests: latencies.len(),
        elapsed,
        latencies,
        cpu,
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A figure, or a dash when there is none.
fn or_dash(v: Option<f64>, decimals: usize) -> String {
    v.map_or_else(|| "-".into(), |v| format!("{v:.decimals$}"))
}

async fn run() {
    let upstream_url = upstream().await;
    let dir = tempfile::tempdir().expect("temporary directory");
    let oidc = oauth_server().await;
    let one = dir.path().join("one.yaml");
    let issuer = oidc.as_ref().map(oidc::Oidc::issuer);
    std::fs::write(&one, manifest(&upstream_url, issuer, 0)).expect("manifest");
    // The baseline may predate OAuth servers: it is given the bench's server alone.
    let plain = dir.path().join("plain.yaml");
    std::fs::write(&plain, manifest(&upstream_url, None, 0)).expect("manifest");
    let many = dir.path().join("many.yaml");
    std::fs::write(&many, manifest(&upstream_url, None, MANY_SERVERS)).expect("manifest");

    let bin: PathBuf = std::env::var_os(BIN_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_atomicwork-mcp").into());
    let baseline_bin = std::env::var_os(BASELINE_ENV).map(PathBuf::from);
    let bare = start_bare_proxy(&upstream_url);
    let dp = start_dataplane(&bin, &one, &dir.path().join("state"));
    let baseline = baseline_bin
        .as_ref()
        .map(|b| start_dataplane(b, &plain, &dir.path().join("state-baseline")));
    // The same binary exporting every span (always_on) to an OTLP/HTTP receiver in this
    // process, which accepts each export at once.
    let collector = serve_app(axum::Router::new().route(
        "/v1/traces",
        post(|| async {
            (
                [("content-type", "application/x-protobuf")],
                Vec::<u8>::new(),
            )
        }),
    ))
    .await;
    let traced = start_dataplane_with(
        &bin,
        &plain,
        &dir.path().join("state-traced"),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
            ("OTEL_TRACES_SAMPLER", "always_on"),
        ],
    );

    let mcp = |p: &Proc| format!("{}/mcp/{TOKEN}", p.base);
    let mut ways = vec![
        Way {
            label: "direct upstream GET".into(),
            call: Call::get(format!("{upstream_url}/api/v1/workspaces?page=1")),
            pid: None,
        },
        Way {
            label: "bare proxy (pass-through floor)".into(),
            call: Call::post(format!("{}/forward", bare.base), CALL_BODY),
            pid: Some(bare.pid()),
        },
        Way {
            label: "tools/call via data plane".into(),
            call: Call::post(mcp(&dp), CALL_BODY),
            pid: Some(dp.pid()),
        },
    ];
    const DIRECT: usize = 0;
    const BARE: usize = 1;
    const DATA_PLANE: usize = 2;
    let baseline_way = baseline.as_ref().map(|b| {
        ways.push(Way {
            label: "tools/call via baseline".into(),
            call: Call::post(mcp(b), CALL_BODY),
            pid: Some(b.pid()),
        });
        ways.len() - 1
    });
    ways.push(Way {
        label: "tools/call, traced (100% sampled)".into(),
        call: Call::post(mcp(&traced), CALL_BODY),
        pid: Some(traced.pid()),
    });
    let traced_way = ways.len() - 1;
    // The access token is for the server's connector URL, which local mode bases on the
    // address it listens on.
    let oauth_url = format!("{}/mcp/{OAUTH_TOKEN}", dp.base);
    let oauth_way = match &oidc {
        Some(oidc) => {
            let token = oidc
                .client_credentials_with_ttl(&oauth_url, &["atomicwork.read"], 3600)
                .await;
            let authorization =
                HeaderValue::from_str(&format!("Bearer {token}")).expect("a header value");
            ways.push(Way {
                label: "tools/call, OAuth (same JWT)".into(),
                call: Call::post(oauth_url, CALL_BODY)
                    .with_header(HeaderName::from_static("authorization"), authorization),
                pid: Some(dp.pid()),
            });
            Some(ways.len() - 1)
        }
        None => None,
    };

    // Throughput and CPU time at saturation, interleaved rounds.
    let mut rates = vec![Vec::new(); ways.len()];
    let mut cpu = vec![Vec::new(); ways.len()];
    let mut saturated: Vec<Option<Stats>> = ways.iter().map(|_| None).collect();
    for _ in 0..ROUNDS {
        for (i, way) in ways.iter().enumerate() {
            let s = drive(&way.call, CONCURRENCY, PER_CLIENT, None, way.pid).await;
            rates[i].push(s.throughput());
            if let Some(us) = s.cpu_us() {
                cpu[i].push(us);
            }
            saturated[i] = Some(s);
        }
    }
    let ratio = |i: usize| {
        median(
            (0..ROUNDS)
                .map(|r| rates[i][r] / rates[DIRECT][r])
                .collect(),
        )
    };
    let cpu_us = |i: usize| (!cpu[i].is_empty()).then(|| median(cpu[i].clone()));
    let call_rate = median(rates[DATA_PLANE].clone());

    // Latency at fixed offered loads every way can carry, and with one client.
    let loads: Vec<f64> = LOAD_SHARES
        .iter()
        .map(|share| (call_rate * share).max(100.0))
        .collect();
    let mut paced: Vec<Vec<Stats>> = loads.iter().map(|_| Vec::new()).collect();
    let mut single = Vec::new();
    for way in &ways {
        for (l, offered) in loads.iter().enumerate() {
            let interval = Duration::from_secs_f64(CONCURRENCY as f64 / offered);
            paced[l].push(
                drive(
                    &way.call,
                    CONCURRENCY,
                    PACED_PER_CLIENT,
                    Some(interval),
                    way.pid,
                )
                .await,
            );
        }
        single.push(drive(&way.call, 1, SINGLE_CLIENT_REQUESTS, None, way.pid).await);
    }

    // tools/list with 1 server, then with 10,001 (a second data plane).
    let list_call = Call::post(mcp(&dp), LIST_BODY);
    let list_one = drive(&list_call, CONCURRENCY, PER_CLIENT, None, Some(dp.pid())).await;
    drop(baseline);
    drop(traced);
    drop(dp);
    let dp_many = start_dataplane(&bin, &many, &dir.path().join("state-many"));
    let list_call = Call::post(mcp(&dp_many), LIST_BODY);
    let list_many = drive(
        &list_call,
        CONCURRENCY,
        PER_CLIENT,
        None,
        Some(dp_many.pid()),
    )
    .await;
    drop(dp_many);
    drop(bare);

    println!(
        "\nthroughput and CPU time per call: {CONCURRENCY} closed-loop clients x {PER_CLIENT} requests, median of {ROUNDS} interleaved rounds"
    );
    println!(
        "{:<36} {:>9} {:>9} {:>9} {:>9} {:>11}",
        "scenario", "req/s", "x direct", "p50 ms", "p99 ms", "CPU us/call"
    );
    for (i, way) in ways.iter().enumerate() {
        let s = saturated[i].as_ref().expect("measured");
        println!(
            "{:<36} {:>9.0} {:>9.2} {:>9.3} {:>9.3} {:>11}",
            way.label,
            median(rates[i].clone()),
            ratio(i),
            ms(s.pct(0.5)),
            ms(s.pct(0.99)),
            or_dash(cpu_us(i), 1)
        );
    }
    for (label, s) in [
        ("tools/list, 1 server", &list_one),
        ("tools/list, 10,001 servers", &list_many),
    ] {
        println!(
            "{:<36} {:>9.0} {:>9} {:>9.3} {:>9.3} {:>11}",
            label,
            s.throughput(),
            "",
            ms(s.pct(0.5)),
            ms(s.pct(0.99)),
            or_dash(s.cpu_us(), 1)
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
    for (i, way) in ways.iter().enumerate() {
        print!("{:<36}", way.label);
        for p in &paced {
            print!(" {:>9.3} {:>9.3}", ms(p[i].pct(0.5)), ms(p[i].pct(0.99)));
        }
        println!(
            " {:>9.3} {:>9.3}",
            ms(single[i].pct(0.5)),
            ms(single[i].pct(0.99))
        );
    }
    let added = |s: &[Stats], i: usize, p: f64| ms(s[i].pct(p)) - ms(s[DIRECT].pct(p));
    println!();
    println!(
        "tools/call throughput / direct: {:.2}x (bare proxy floor {:.2}x)",
        ratio(DATA_PLANE),
        ratio(BARE)
    );
    let (dp_cpu, bare_cpu) = (cpu_us(DATA_PLANE), cpu_us(BARE));
    if let (Some(d), Some(b)) = (dp_cpu, bare_cpu) {
        println!(
            "CPU per tools/call: data plane {d:.1} us, bare proxy {b:.1} us per forwarded call: {:.2}x the bare proxy",
            d / b
        );
    }
    if let (Some(d), Some(old), Some(path)) = (dp_cpu, baseline_way.and_then(cpu_us), &baseline_bin)
    {
        println!(
            "CPU per tools/call of the baseline ({}): {old:.1} us; data plane / baseline: {:.2}x",
            path.display(),
            d / old
        );
    }
    if let (Some(off), Some(on)) = (dp_cpu, cpu_us(traced_way)) {
        println!(
            "CPU per tools/call with every call traced and exported: {on:.1} us, untraced {off:.1} us: tracing adds {:.1} us ({:.2}x)",
            on - off,
            on / off
        );
    }
    for (i, way) in ways.iter().enumerate().skip(DATA_PLANE) {
        for (l, offered) in loads.iter().enumerate() {
            println!(
                "{} added latency at {offered:.0} req/s: p50 {:+.3} ms, p99 {:+.3} ms (bare proxy p50 {:+.3}, p99 {:+.3})",
                way.label,
                added(&paced[l], i, 0.5),
                added(&paced[l], i, 0.99),
                added(&paced[l], BARE, 0.5),
                added(&paced[l], BARE, 0.99)
            );
        }
        println!(
            "{} added latency, 1 client: p50 {:+.3} ms, p99 {:+.3} ms (bare proxy p50 {:+.3}, p99 {:+.3})",
            way.label,
            added(&single, i, 0.5),
            added(&single, i, 0.99),
            added(&single, BARE, 0.5),
            added(&single, BARE, 0.99)
        );
    }
    println!(
        "tools/list p50 with 10,001 servers / with 1 server: {:.2}x",
        list_many.pct(0.5).as_secs_f64() / list_one.pct(0.5).as_secs_f64()
    );
    match oauth_way {
        Some(o) => {
            println!(
                "tools/call throughput, OAuth (validated JWT) / URL token: {:.2}x (median of {ROUNDS} rounds)",
                median(
                    (0..ROUNDS)
                        .map(|r| rates[o][r] / rates[DATA_PLANE][r])
                        .collect()
                )
            );
            for (l, offered) in loads.iter().enumerate() {
                println!(
                    "OAuth tools/call latency over URL-token tools/call at {offered:.0} req/s: p50 {:+.3} ms, p99 {:+.3} ms",
                    ms(paced[l][o].pct(0.5)) - ms(paced[l][DATA_PLANE].pct(0.5)),
                    ms(paced[l][o].pct(0.99)) - ms(paced[l][DATA_PLANE].pct(0.99))
                );
            }
        }
        None => println!("tools/call, OAuth: not measured (no authorization server; see above)"),
    }
}

/// A real authorization server, or `None` (said why) when Node.js is not there to run it.
async fn oauth_server() -> Option<oidc::Oidc> {
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        println!("tools/call, OAuth: left out: Node.js is needed to run the authorization server");
        return None;
    }
    Some(oidc::Oidc::start().await)
}
