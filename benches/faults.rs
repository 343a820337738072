//! Fault injection under load: many concurrent MCP clients call the data plane while the
//! upstream answers 429s, 500s, 503s, slow and stalled responses, oversized bodies and cut
//! connections, and the registry is re-applied underneath every few milliseconds.
//!
//! `cargo bench --bench faults` — loopback only, bounded in requests and time. Exits
//! non-zero unless every request got a well-formed JSON-RPC answer carrying its own id, no
//! task panicked, and resident memory after the run (and a short settle) is within
//! [`RSS_TOLERANCE_KIB`] of the baseline taken after a warm-up at the same concurrency.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use atomicwork_mcp::core::catalog::Catalog;
use atomicwork_mcp::core::secret::TokenHash;
use atomicwork_mcp::core::server::ServerView;
use atomicwork_mcp::dataplane::registry::Registry;
use atomicwork_mcp::dataplane::{Dataplane, DataplaneConfig};
use atomicwork_mcp::k8s::resolve::SecretData;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use common::{
    api_key_secrets, memory_kib, percentile, resolve_at, serve_app, server, start_dataplane,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const CLIENTS: usize = 64;
/// Requests per client in the measured run; `FAULTS_PER_CLIENT` overrides it.
const PER_CLIENT: usize = 40;
const WARMUP_PER_CLIENT: usize = 8;
/// The whole measured run must finish within this.
const DEADLINE: Duration = Duration::from_secs(240);
/// The data plane's own request timeout; the `stall` upstream outlasts it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the registry is rebuilt and re-applied during the run.
const CHURN_EVERY: Duration = Duration::from_millis(5);
/// Allowed growth of resident memory over the post-warm-up baseline. Allocators keep some
/// freed memory for reuse, so this is a leak detector, not an exact balance.
const RSS_TOLERANCE_KIB: u64 = 20 * 1024;
/// Body of the `big` upstream: far over the result cap of its server.
const BIG_BODY_BYTES: usize = 2 * 1024 * 1024;

/// One served server: its name, its upstream path (fault mode) and extra spec lines.
const SERVERS: [(&str, &str, &str); 11] = [
    ("ok", "ok", ""),
    ("ratelimited", "429", ""),
    ("failing", "500", ""),
    ("slow", "slow", ""),
    ("timeout", "slow-2s", "    timeoutSeconds: 1\n"),
    ("stall", "stall", "    timeoutSeconds: 30\n"),
    ("big", "big", "  maxResultChars: 20000\n"),
    ("reset", "reset", ""),
    (
        "flaky",
        "flaky",
        "  retry: {maxAttempts: 3, maxBackoffSeconds: 1}\n",
    ),
    (
        "limited",
        "ok",
        "  rateLimit: {requestsPerMinute: 600, burst: 5}\n",
    ),
    ("discovery", "ok", "  toolExposure: discovery\n"),
];

static PANICS: AtomicUsize = AtomicUsize::new(0);

fn main() -> ExitCode {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        default_hook(info);
    }));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    if rt.block_on(run()) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

// ---------------------------------------------------------------------------------------
// The faulty upstream

/// The in-process upstream: `/{mode}/api/v1/...` answers according to `mode`.
async fn upstream() -> String {
    let big = Arc::new(big_body());
    let flaky = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new().route(
        "/{mode}/api/v1/{*rest}",
        axum::routing::any(move |Path((mode, _)): Path<(String, String)>| {
            let big = big.clone();
            let flaky = flaky.clone();
            async move { answer(&mode, &big, &flaky).await }
        }),
    );
    serve_app(app).await
}

async fn answer(mode: &str, big: &bytes::Bytes, flaky: &AtomicUsize) -> Response {
    let ok = || axum::Json(json!({"data": [{"id": 1, "name": "IT"}], "total_count": 1}));
    match mode {
        "ok" => ok().into_response(),
        "429" => (
            StatusCode::TOO_MANY_REQUESTS,
            [
                ("retry-after", "1"),
                ("x-ratelimit-limit", "100"),
                ("x-ratelimit-remaining", "0"),
            ],
            axum::Json(json!({"error": "Too many requests"})),
        )
            .into_response(),
        "500" => (
            StatusCode::INTERNAL_SERVER_ERROR,
            axum::Json(json!({"error": "database unavailable"})),
        )
            .into_response(),
        "slow" => {
            tokio::time::sleep(Duration::from_millis(250)).await;
            ok().into_response()
        }
        "slow-2s" => {
            tokio::time::sleep(Duration::from_secs(2)).await;
            ok().into_response()
        }
        "stall" => {
            tokio::time::sleep(REQUEST_TIMEOUT * 2).await;
            ok().into_response()
        }
        "big" => (
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            big.clone(),
        )
            .into_response(),
        "flaky" if flaky.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"error": "try again"})),
        )
            .into_response(),
        "flaky" => ok().into_response(),
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

fn big_body() -> bytes::Bytes {
    let item = json!({"id": 1, "subject": "x".repeat(200), "description": "y".repeat(800)});
    let mut items = Vec::new();
    let mut size = 0;
    while size < BIG_BODY_BYTES {
        size += item.to_string().len() + 1;
        items.push(item.clone());
    }
    bytes::Bytes::from(json!({"data": items}).to_string())
}

/// A raw listener that reads each request, then either closes at once or sends the start
/// of an answer and closes mid-body.
async fn resetting_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind reset upstream");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut n = 0usize;
        while let Ok((mut stream, _)) = listener.accept().await {
            n += 1;
            let mid_body = n.is_multiple_of(2);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 16 * 1024];
                let mut seen = Vec::new();
                while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(k) => seen.extend_from_slice(&buf[..k]),
                    }
                }
                if mid_body {
                    let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{\"data\":[";
                    let _ = stream.write_all(head.as_bytes()).await;
                }
            });
        }
    });
    format!("http://{addr}/reset")
}

// ---------------------------------------------------------------------------------------
// The registry and the data plane

fn secrets() -> BTreeMap<(String, String), SecretData> {
    api_key_secrets("faults", "key", b"faults-api-key-0123")
}

fn token(name: &str) -> String {
    format!("faults-token-{name}-0123456789abcdef0123456789")
}

/// Every server, resolved like the cluster feed does; `generation` flips one filter so
/// that re-applying really changes something.
fn entries(
    catalog: &Catalog,
    upstream: &str,
    reset: &str,
    generation: usize,
) -> Vec<(TokenHash, ServerView)> {
    SERVERS
        .iter()
        .map(|(name, mode, extra)| {
            let methods = if *name == "ok" && generation % 2 == 1 {
                "  methods: [read]\n"
            } else {
                ""
            };
            let server = server("faults", name, &format!("{extra}{methods}"));
            let base = if *mode == "reset" {
                reset.to_string()
            } else {
                format!("{upstream}/{mode}")
            };
            let view = resolve_at(&server, &secrets(), catalog, &base);
            (TokenHash::of(&token(name)), view)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// The clients

/// What the clients saw.
#[derive(Default)]
struct Tally {
    sent: usize,
    answered: usize,
    well_formed: usize,
    by_status: BTreeMap<u16, usize>,
    tool_errors: usize,
    latencies: Vec<Duration>,
    problems: Vec<String>,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.sent += other.sent;
        self.answered += other.answered;
        self.well_formed += other.well_formed;
        for (k, v) in other.by_status {
            *self.by_status.entry(k).or_default() += v;
        }
        self.tool_errors += other.tool_errors;
        self.latencies.extend(other.latencies);
        self.problems.extend(other.problems);
    }
}

/// The JSON-RPC body of request `i` to `server`: mostly tool calls, some listings and
/// handshakes.
fn body_for(server: &str, i: usize) -> String {
    let call = if server == "discovery" {
        r#"{"name":"call_tool","arguments":{"tool_name":"list_all_atomicwork_workspaces","arguments":{}}}"#
    } else {
        r#"{"name":"list_all_atomicwork_workspaces","arguments":{}}"#
    };
    match i % 10 {
        0 => format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/list"}}"#),
        1 => format!(
            r#"{{"jsonrpc":"2.0","id":{i},"method":"initialize","params":{{"protocolVersion":"2025-11-25","capabilities":{{}},"clientInfo":{{"name":"faults","version":"1"}}}}}}"#
        ),
        _ => format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"tools/call","params":{call}}}"#),
    }
}

/// A valid JSON-RPC response to request `id`: the same id, exactly one of result and error.
fn well_formed(body: &[u8], id: usize) -> Result<bool, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON ({e})"))?;
    if v["jsonrpc"] != "2.0" {
        return Err(format!("no jsonrpc 2.0: {v}"));
    }
    // Refusals before the body is read (unknown token, rate limit) carry a null id.
    let own_id = v["id"] == json!(id);
    match (v.get("result"), v.get("error")) {
        (Some(r), None) if own_id => Ok(r["isError"] == true),
        (None, Some(e)) if (own_id || v["id"].is_null()) && e["code"].is_i64() => Ok(false),
        _ => Err(format!("malformed response to id {id}: {v}")),
    }
}

async fn client(base: String, task: usize, count: usize) -> Tally {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let mut t = Tally::default();
    for i in 0..count {
        let (name, _, _) = SERVERS[(task + i) % SERVERS.len()];
        let id = task * 100_000 + i;
        t.sent += 1;
        let started = Instant::now();
        let sent = http
            .post(format!("{base}/mcp/{}", token(name)))
            .header("content-type", "application/json")
            .body(body_for(name, id))
            .send()
            .await;
        let resp = match sent {
            Ok(r) => r,
            Err(e) => {
                t.problems.push(format!("{name}: no answer: {e}"));
                continue;
            }
        };
        let status = resp.status().as_u16();
        let Ok(body) = resp.bytes().await else {
            t.problems.push(format!("{name}: body cut"));
            continue;
        };
        t.latencies.push(started.elapsed());
        t.answered += 1;
        *t.by_status.entry(status).or_default() += 1;
        match well_formed(&body, id) {
            Ok(tool_error) => {
                t.well_formed += 1;
                t.tool_errors += usize::from(tool_error);
            }
            Err(p) => t.problems.push(format!("{name}: HTTP {status}: {p}")),
        }
    }
    t
}

async fn load(base: &str, per_client: usize) -> Tally {
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|task| tokio::spawn(client(base.to_string(), task, per_client)))
        .collect();
    let mut all = Tally::default();
    for t in tasks {
        match t.await {
            Ok(tally) => all.merge(tally),
            Err(e) => all.problems.push(format!("client task failed: {e}")),
        }
    }
    all
}

// ---------------------------------------------------------------------------------------
// Measuring

/// Tool-call outcome classes as the data plane counted them, from its metrics.
fn outcome_classes(dp: &Dataplane) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for line in dp.metrics.encode().lines() {
        let Some(rest) = line.strip_prefix("atomicwork_mcp_tool_calls_total{") else {
            continue;
        };
        let outcome = rest
            .split("outcome=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("?");
        let n: u64 = rest
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        *out.entry(outcome.to_string()).or_default() += n;
    }
    out
}

async fn run() -> bool {
    let catalog = Arc::new(Catalog::builtin().expect("catalog"));
    let upstream_url = upstream().await;
    let reset_url = resetting_upstream().await;
    let registry = Arc::new(Registry::new());
    registry.replace_all(entries(&catalog, &upstream_url, &reset_url, 0));
    registry.mark_ready();
    let config = DataplaneConfig {
        request_timeout: REQUEST_TIMEOUT,
        ..DataplaneConfig::default()
    };
    let (base, dp) = start_dataplane(registry.clone(), config).await;

    let warm = load(&base, WARMUP_PER_CLIENT).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (baseline, _) = memory_kib();

    let stop = Arc::new(AtomicBool::new(false));
    let churn = tokio::spawn(churn(
        registry.clone(),
        catalog.clone(),
        upstream_url.clone(),
        reset_url.clone(),
        stop.clone(),
    ));
    let classes_before = outcome_classes(&dp);
    let started = Instant::now();
    let measured = tokio::time::timeout(DEADLINE, load(&base, per_client())).await;
    let elapsed = started.elapsed();
    stop.store(true, Ordering::SeqCst);
    let updates = churn.await.unwrap_or(0);
    let Ok(mut tally) = measured else {
        println!("FAIL: the run did not finish within {DEADLINE:?}");
        return false;
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (after, peak) = memory_kib();
    let mut classes = outcome_classes(&dp);
    for (class, n) in classes_before {
        classes.entry(class).and_modify(|c| *c -= n);
    }
    let run = Run {
        elapsed,
        updates,
        classes,
        memory: (baseline, after, peak),
    };
    report(&mut tally, &warm, &run)
}

fn per_client() -> usize {
    std::env::var("FAULTS_PER_CLIENT")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(PER_CLIENT)
}

/// What the measured run did, besides the clients' tally.
struct Run {
    elapsed: Duration,
    updates: usize,
    classes: BTreeMap<String, u64>,
    /// Baseline, after-run and peak resident memory, in KiB.
    memory: (u64, u64, u64),
}

/// Re-applies the whole registry every [`CHURN_EVERY`] until told to stop; returns how
/// many updates were applied.
async fn churn(
    registry: Arc<Registry>,
    catalog: Arc<Catalog>,
    upstream: String,
    reset: String,
    stop: Arc<AtomicBool>,
) -> usize {
    let mut generation = 0;
    while !stop.load(Ordering::SeqCst) {
        generation += 1;
        registry.replace_all(entries(&catalog, &upstream, &reset, generation));
        tokio::time::sleep(CHURN_EVERY).await;
    }
    generation
}

/// Distinct problems with how often each was seen.
fn summary(problems: &[String]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for p in problems {
        *counts.entry(p.as_str()).or_default() += 1;
    }
    format!("{counts:#?}")
}

fn report(t: &mut Tally, warm: &Tally, run: &Run) -> bool {
    let (baseline, after, peak) = run.memory;
    t.latencies.sort();
    println!(
        "\n{CLIENTS} clients x {} requests over {} servers with injected faults; registry re-applied {} times",
        per_client(),
        SERVERS.len(),
        run.updates
    );
    println!(
        "elapsed                {:>10.1} s",
        run.elapsed.as_secs_f64()
    );
    println!("requests sent          {:>10}", t.sent);
    println!("answered               {:>10}", t.answered);
    println!("well-formed answers    {:>10}", t.well_formed);
    println!("tool results isError   {:>10}", t.tool_errors);
    println!(
        "latency p50 / p99      {:>10.1} / {:.1} ms",
        percentile(&t.latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&t.latencies, 0.99).as_secs_f64() * 1e3
    );
    let statuses: HashMap<_, _> = t.by_status.iter().collect();
    println!("HTTP statuses          {statuses:?}");
    println!("tool-call outcomes     {:?}", run.classes);
    println!(
        "RSS baseline / after / peak   {} / {} / {} MiB (tolerance {} MiB)",
        baseline / 1024,
        after / 1024,
        peak / 1024,
        RSS_TOLERANCE_KIB / 1024
    );
    let panics = PANICS.load(Ordering::SeqCst);
    let mut ok = true;
    let mut fail = |why: String| {
        println!("FAIL: {why}");
        ok = false;
    };
    if warm.well_formed != warm.sent {
        fail(format!("warm-up: {}", summary(&warm.problems)));
    }
    if t.well_formed != t.sent || t.answered != t.sent {
        fail(format!(
            "{} of {} requests lacked a well-formed answer: {}",
            t.sent - t.well_formed,
            t.sent,
            summary(&t.problems)
        ));
    }
    if panics > 0 {
        fail(format!("{panics} panics"));
    }
    if after > baseline + RSS_TOLERANCE_KIB {
        fail(format!(
            "resident memory grew by {} MiB",
            (after - baseline) / 1024
        ));
    }
    if ok {
        println!("PASS");
    }
    ok
}
