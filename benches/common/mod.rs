//! What the benches share: loopback servers, manifests resolved against an in-process
//! upstream, percentiles and resident memory.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use atomicwork_mcp::core::base_url::BaseUrl;
use atomicwork_mcp::core::catalog::Catalog;
use atomicwork_mcp::core::server::ServerView;
use atomicwork_mcp::dataplane::registry::Registry;
use atomicwork_mcp::dataplane::{self, Dataplane, DataplaneConfig};
use atomicwork_mcp::k8s::crd::AtomicworkMcpServer;
use atomicwork_mcp::k8s::resolve::{self, ResolveOptions, SecretData, SecretLookup};
use atomicwork_mcp::upstream::{Upstream, UpstreamOptions};

/// Serves `app` on a free loopback port and returns its base URL.
pub async fn serve_app(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

/// A data plane over `registry` on a free loopback port, served until the process ends:
/// its base URL and the data plane itself (for its metrics).
pub async fn start_dataplane(
    registry: Arc<Registry>,
    config: DataplaneConfig,
) -> (String, Arc<Dataplane>) {
    let upstream = Upstream::new(UpstreamOptions::default()).expect("upstream client");
    let dp = Arc::new(Dataplane::new(registry, upstream, config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind data plane");
    let addr = listener.local_addr().expect("addr");
    let served = dp.clone();
    tokio::spawn(async move {
        let _ = dataplane::serve(listener, served, std::future::pending()).await;
    });
    (format!("http://{addr}"), dp)
}

/// A server manifest in `namespace` whose API key is in the Secret `key`, with the given
/// extra spec lines (YAML, indented by two spaces).
pub fn server(namespace: &str, name: &str, extra: &str) -> AtomicworkMcpServer {
    let yaml = format!(
        "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: {name}, namespace: {namespace}}}\nspec:\n  atomicwork:\n    baseUrl: https://acme.atomicwork.com\n    apiKeySecretRef: {{name: key}}\n    workspaceId: \"1\"\n{extra}"
    );
    serde_saphyr::from_str(&yaml).expect("manifest")
}

/// One Secret, `namespace/name`, holding `apiKey`.
pub fn api_key_secrets(
    namespace: &str,
    name: &str,
    api_key: &[u8],
) -> BTreeMap<(String, String), SecretData> {
    BTreeMap::from([(
        (namespace.to_string(), name.to_string()),
        BTreeMap::from([("apiKey".to_string(), api_key.to_vec())]),
    )])
}

/// Resolves `server` as the controller does, its tenant URL replaced by `base_url`.
pub fn resolve_at(
    server: &AtomicworkMcpServer,
    secrets: &dyn SecretLookup,
    catalog: &Catalog,
    base_url: &str,
) -> ServerView {
    let opts = ResolveOptions {
        base_url_override: Some(BaseUrl::parse(base_url).expect("a bench base URL")),
        notice: None,
        public_url: None,
        confirm_key: None,
    };
    resolve::resolve(server, secrets, catalog, jiff::Timestamp::now(), &opts)
        .view
        .expect("server resolves")
}

/// The `p` quantile of sorted latencies; zero when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)]
}

/// `VmRSS` and `VmHWM` of this process, in KiB (zero where `/proc` does not say).
pub fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
