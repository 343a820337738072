//! Scale: 10,000 servers in the registry and in local mode's manifests.
//!
//! `cargo bench --bench scale` — reports memory per server, token lookup time (known,
//! unknown, and guesses sharing 0 or 40 leading characters with a real token), the time of
//! a full registry rebuild and `tools/list` latency with 10,000 servers against 1. Exits
//! non-zero when a target is missed: 10,000 servers in under 50 MB of extra resident memory,
//! a lookup under 1 µs, a full rebuild under 1 s. Figures come from a shared machine: read
//! them as orders of magnitude.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// The counting allocator below implements `GlobalAlloc`, which is unsafe by definition.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout};
use std::hint::black_box;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use atomicwork_mcp::core::catalog::{Catalog, Tool};
use atomicwork_mcp::core::secret::{TokenHash, mint_token};
use atomicwork_mcp::core::server::ServerView;
use atomicwork_mcp::dataplane::registry::Registry;
use atomicwork_mcp::k8s::crd::AtomicworkMcpServer;
use atomicwork_mcp::k8s::resolve::{self, ResolveOptions, SecretLookup};
use atomicwork_mcp::local::manifest::{self, Manifests};
use atomicwork_mcp::mcp::{self, CallGate, ServerIdentity, ToolRunner};
use atomicwork_mcp::upstream::CallOutcome;
use http::HeaderMap;
use serde_json::{Map, Value};

const SERVERS: usize = 10_000;
const LOOKUPS: usize = 1_000_000;
const LIST_CALLS: usize = 20_000;
const REBUILDS: usize = 5;
const MAX_EXTRA_BYTES: u64 = 50 * 1024 * 1024;
const MAX_LOOKUP: Duration = Duration::from_micros(1);
const MAX_REBUILD: Duration = Duration::from_secs(1);

/// Counts live heap bytes, to report memory per server next to the RSS delta.
struct Counting;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { mimalloc::MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE_BYTES.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        unsafe { mimalloc::MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn rss_bytes() -> u64 {
    common::memory_kib().0 * 1024
}

fn live_bytes() -> i64 {
    LIVE_BYTES.load(Ordering::Relaxed) as i64
}

/// Filters rotate so servers share some tool sets and not others, as in a real cluster.
const SPECS: [&str; 5] = [
    "  methods: [read]\n",
    "  tags: [changes]\n  rateLimit: {requestsPerMinute: 120}\n",
    "  tags: [assets, audit]\n  toolExposure: discovery\n",
    "  expiresAt: \"2099-01-01T00:00:00Z\"\n",
    "  requireApiTokenAuth: true\n  apiTokenSecretRef: {name: clients}\n",
];

fn manifest_text(i: usize) -> String {
    format!(
        "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: server-{i}, namespace: team-{}}}\nspec:\n  displayName: Team server {i}\n  atomicwork:\n    baseUrl: https://acme.atomicwork.com\n    apiKeySecretRef: {{name: key}}\n    workspaceId: \"{}\"\n{}",
        i % 100,
        i % 7 + 1,
        SPECS[i % SPECS.len()]
    )
}

fn secrets_text() -> String {
    (0..100)
        .map(|ns| {
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata: {{name: key, namespace: team-{ns}}}\nstringData: {{apiKey: key-of-team-{ns}}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: clients, namespace: team-{ns}}}\nstringData: {{a: client-a-{ns}, b: client-b-{ns}}}\n---\n"
            )
        })
        .collect()
}

/// Resolves every server like local mode and the cluster feed do, under fresh tokens.
fn resolve_all(
    servers: &[AtomicworkMcpServer],
    secrets: &dyn SecretLookup,
    catalog: &Catalog,
    tokens: &[String],
) -> Vec<(TokenHash, ServerView)> {
    let now = jiff::Timestamp::now();
    let opts = ResolveOptions::default();
    servers
        .iter()
        .zip(tokens)
        .map(|(s, t)| {
            let view = resolve::resolve(s, secrets, catalog, now, &opts)
                .view
                .unwrap_or_else(|p| panic!("{p}"));
            (TokenHash::of(t), view)
        })
        .collect()
}

fn main() -> ExitCode {
    let catalog = Catalog::builtin().expect("catalog");
    let mut ok = true;

    let (servers, secrets) = in_memory_manifests();
    let tokens: Vec<String> = (0..SERVERS)
        .map(|_| mint_token().expect("os rng").expose().to_string())
        .collect();
    let registry = Registry::new();
    let (rss0, heap0) = (rss_bytes(), live_bytes());
    registry.replace_all(resolve_all(&servers, &secrets, &catalog, &tokens));
    let (rss1, heap1) = (rss_bytes(), live_bytes());
    let rss_delta = rss1.saturating_sub(rss0);
    let heap_delta = (heap1 - heap0).max(0) as u64;
    println!("\n{SERVERS} servers; one shared machine, figures from one run\n");
    println!(
        "registry memory: +{:.1} MiB resident ({:.0} B/server), +{:.1} MiB heap ({:.0} B/server)",
        mib(rss_delta),
        rss_delta as f64 / SERVERS as f64,
        mib(heap_delta),
        heap_delta as f64 / SERVERS as f64
    );
    ok &= target(
        "10,000 servers under 50 MB extra",
        rss_delta.max(heap_delta) < MAX_EXTRA_BYTES,
    );

    ok &= lookups(&registry, &tokens);
    ok &= rebuilds(&registry, &servers, &secrets, &catalog, &tokens);
    tools_list(&registry, &servers, &secrets, &catalog, &tokens);
    local_mode(&catalog);
    if ok {
        println!("\nall targets met");
        ExitCode::SUCCESS
    } else {
        println!("\nFAIL: a target was missed");
        ExitCode::FAILURE
    }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn target(what: &str, met: bool) -> bool {
    println!("  target {what}: {}", if met { "met" } else { "MISSED" });
    met
}

fn in_memory_manifests() -> (Vec<AtomicworkMcpServer>, Manifests) {
    let mut m = Manifests::default();
    manifest::parse_into(&secrets_text(), "secrets.yaml", &mut m);
    for i in 0..SERVERS {
        manifest::parse_into(&manifest_text(i), "servers.yaml", &mut m);
    }
    assert!(m.errors.is_empty(), "{:?}", m.errors);
    (std::mem::take(&mut m.servers), m)
}

/// Average time of `rounds` lookups of `tokens`, in nanoseconds.
fn time_lookups(registry: &Registry, tokens: &[String], rounds: usize) -> f64 {
    let started = Instant::now();
    let mut found = 0usize;
    for i in 0..rounds {
        found += usize::from(
            registry
                .lookup(black_box(&tokens[i % tokens.len()]))
                .is_some(),
        );
    }
    black_box(found);
    started.elapsed().as_nanos() as f64 / rounds as f64
}

fn lookups(registry: &Registry, tokens: &[String]) -> bool {
    let unknown: Vec<String> = (0..SERVERS)
        .map(|_| mint_token().expect("os rng").expose().to_string())
        .collect();
    let known_ns = time_lookups(registry, tokens, LOOKUPS / 2);
    let unknown_ns = time_lookups(registry, &unknown, LOOKUPS / 2);
    println!(
        "token lookup: known {known_ns:.0} ns, unknown {unknown_ns:.0} ns (average of {} each)",
        LOOKUPS / 2
    );
    let real = &tokens[0];
    let far: Vec<String> = unknown
        .iter()
        .filter(|t| t.as_bytes()[0] != real.as_bytes()[0])
        .cloned()
        .collect();
    let near: Vec<String> = unknown
        .iter()
        .map(|t| format!("{}{}", &real[..40], &t[40..]))
        .filter(|t| t != real)
        .collect();
    // Interleaved rounds, so drift of a shared machine hits both sets alike.
    let (mut far_ns, mut near_ns) = (0.0, 0.0);
    for _ in 0..10 {
        far_ns += time_lookups(registry, &far, LOOKUPS / 10) / 10.0;
        near_ns += time_lookups(registry, &near, LOOKUPS / 10) / 10.0;
    }
    println!(
        "guesses sharing 0 / 40 leading characters with a real token: {far_ns:.0} / {near_ns:.0} ns (ratio {:.2})",
        near_ns / far_ns
    );
    target(
        "lookup under 1 µs",
        known_ns.max(unknown_ns) < MAX_LOOKUP.as_nanos() as f64,
    )
}

fn rebuilds(
    registry: &Registry,
    servers: &[AtomicworkMcpServer],
    secrets: &dyn SecretLookup,
    catalog: &Catalog,
    tokens: &[String],
) -> bool {
    let mut resolve_times = Vec::new();
    let mut apply_times = Vec::new();
    for _ in 0..REBUILDS {
        let started = Instant::now();
        let entries = resolve_all(servers, secrets, catalog, tokens);
        resolve_times.push(started.elapsed());
        let started = Instant::now();
        registry.replace_all(entries);
        apply_times.push(started.elapsed());
    }
    resolve_times.sort();
    apply_times.sort();
    let (resolve, apply) = (resolve_times[REBUILDS / 2], apply_times[REBUILDS / 2]);
    println!(
        "full rebuild (median of {REBUILDS}): resolve {:.0} ms + replace_all {:.0} ms = {:.0} ms",
        resolve.as_secs_f64() * 1e3,
        apply.as_secs_f64() * 1e3,
        (resolve + apply).as_secs_f64() * 1e3
    );
    assert_eq!(registry.len(), SERVERS);
    target("full rebuild under 1 s", resolve + apply < MAX_REBUILD)
}

struct NoCalls;

impl ToolRunner for NoCalls {
    async fn run(&self, _: &Arc<ServerView>, _: &Arc<Tool>, _: Map<String, Value>) -> CallOutcome {
        unreachable!("tools/list makes no calls")
    }
}

impl CallGate for NoCalls {
    fn admit_call(&self, _: &ServerView) -> Result<(), u64> {
        Ok(())
    }
}

/// Lookup plus `tools/list`, in process, averaged over [`LIST_CALLS`].
fn time_tools_list(registry: &Registry, token: &str) -> Duration {
    let headers = HeaderMap::new();
    let identity = ServerIdentity::default();
    let body = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let started = Instant::now();
    for _ in 0..LIST_CALLS {
        let view = registry.lookup(token).expect("served");
        let request = mcp::Request {
            view: &view,
            headers: &headers,
            body,
            identity: &identity,
            caller: None,
            trace: None,
        };
        let reply = futures::executor::block_on(mcp::handle(request, &NoCalls, &NoCalls));
        black_box(reply.body);
    }
    started.elapsed() / LIST_CALLS as u32
}

fn tools_list(
    many: &Registry,
    servers: &[AtomicworkMcpServer],
    secrets: &dyn SecretLookup,
    catalog: &Catalog,
    tokens: &[String],
) {
    let one = Registry::new();
    one.replace_all(resolve_all(&servers[..1], secrets, catalog, &tokens[..1]));
    let (single, full) = (
        time_tools_list(&one, &tokens[0]),
        time_tools_list(many, &tokens[0]),
    );
    println!(
        "tools/list in process: {:.1} µs with 1 server, {:.1} µs with {SERVERS} (ratio {:.2})",
        single.as_secs_f64() * 1e6,
        full.as_secs_f64() * 1e6,
        full.as_secs_f64() / single.as_secs_f64()
    );
}

/// Local mode: 10,000 manifest files on disk, loaded and resolved.
fn local_mode(catalog: &Catalog) {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("secrets.yaml"), secrets_text()).expect("write");
    for i in 0..SERVERS {
        std::fs::write(
            dir.path().join(format!("server-{i:05}.yaml")),
            manifest_text(i),
        )
        .expect("write");
    }
    let (rss0, heap0) = (rss_bytes(), live_bytes());
    let started = Instant::now();
    let m = manifest::load(dir.path());
    let loaded = started.elapsed();
    assert_eq!((m.servers.len(), m.errors.len()), (SERVERS, 0));
    let tokens: Vec<String> = (0..SERVERS).map(|i| format!("local-token-{i}")).collect();
    let started = Instant::now();
    let registry = Registry::new();
    registry.replace_all(resolve_all(&m.servers, &m, catalog, &tokens));
    let resolved = started.elapsed();
    let (rss1, heap1) = (rss_bytes(), live_bytes());
    println!(
        "local mode, {SERVERS} manifest files: manifest::load {:.0} ms, resolve + replace_all {:.0} ms; manifests and registry +{:.1} MiB resident, +{:.1} MiB heap",
        loaded.as_secs_f64() * 1e3,
        resolved.as_secs_f64() * 1e3,
        mib(rss1.saturating_sub(rss0)),
        mib((heap1 - heap0).max(0) as u64)
    );
}
