//! Shared test harness: a real data plane on a loopback port, fed through the same
//! resolution as the controller, with a real upstream (the sandbox or a wiremock server).
#![allow(dead_code)]

pub mod oidc;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use atomicwork_mcp::core::base_url::BaseUrl;
use atomicwork_mcp::core::catalog::Catalog;
use atomicwork_mcp::core::secret::TokenHash;
use atomicwork_mcp::core::server::{ServerId, ServerView};
use atomicwork_mcp::dataplane::registry::Registry;
use atomicwork_mcp::dataplane::{self, Dataplane, DataplaneConfig};
use atomicwork_mcp::k8s::crd::AtomicworkMcpServer;
use atomicwork_mcp::k8s::resolve::{self, ResolveOptions, SecretData};
use atomicwork_mcp::upstream::{Upstream, UpstreamOptions};
use jiff::Timestamp;
use rmcp::model::{
    CallToolResult, ClientCapabilities, ClientConfig, Implementation, ProtocolVersion,
};
use rmcp::service::{RoleClient, RunningService};
use rmcp::transport::StreamableHttpClientTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::{ClientLifecycleMode, ClientServiceExt, ServiceExt};
use serde_json::Value;

pub const API_KEY: &str = "test-api-key-5f0c9a";

pub fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::builtin().expect("catalog"))
}

/// A server manifest with the given extra spec lines (YAML, indented by two spaces).
pub fn server_yaml(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: {name}, namespace: it-ops}}\nspec:\n  atomicwork:\n    baseUrl: https://acme.atomicwork.com\n    apiKeySecretRef: {{name: atomicwork-api}}\n    workspaceId: \"1\"\n{extra_spec}"
    )
}

pub fn secrets() -> BTreeMap<(String, String), SecretData> {
    let mut m = BTreeMap::new();
    m.insert(
        ("it-ops".to_string(), "atomicwork-api".to_string()),
        BTreeMap::from([("apiKey".to_string(), API_KEY.as_bytes().to_vec())]),
    );
    m.insert(
        ("it-ops".to_string(), "mcp-client-tokens".to_string()),
        BTreeMap::from([
            ("alice".to_string(), b"client-token-alice".to_vec()),
            ("bob".to_string(), b"client-token-bob".to_vec()),
        ]),
    );
    m
}

/// Resolves a manifest into a served view pointing at `upstream`.
pub fn view(catalog: &Catalog, yaml: &str, upstream: &str) -> ServerView {
    let server: AtomicworkMcpServer = serde_saphyr::from_str(yaml).expect("manifest parses");
    let opts = ResolveOptions {
        base_url_override: Some(BaseUrl::parse(upstream).expect("a test base URL")),
        notice: None,
        public_url: None,
        confirm_key: None,
    };
    resolve::resolve(&server, &secrets(), catalog, Timestamp::now(), &opts)
        .view
        .expect("server resolves")
}

/// A running data plane.
pub struct Plane {
    pub base: String,
    pub registry: Arc<Registry>,
    pub catalog: Arc<Catalog>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Plane {
    pub async fn start(config: DataplaneConfig) -> Plane {
        let registry = Arc::new(Registry::new());
        registry.mark_ready();
        let upstream = Upstream::new(UpstreamOptions::default()).expect("upstream client");
        let dp = Arc::new(Dataplane::new(registry.clone(), upstream, config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = dataplane::serve(listener, dp, async {
                let _ = rx.await;
            })
            .await;
        });
        Plane {
            base: format!("http://{addr}"),
            registry,
            catalog: catalog(),
            shutdown: Some(tx),
        }
    }

    /// Adds a server under a token and returns its endpoint URL.
    pub fn add(&self, token: &str, view: ServerView) -> String {
        let id: ServerId = view.id.clone();
        self.registry
            .upsert(&id, Some((TokenHash::of(token), view)));
        self.url(token)
    }

    /// Resolves the manifest `server_yaml(name, spec)` against `upstream`, serves it under
    /// `token` and returns its endpoint URL.
    pub fn serve(&self, token: &str, name: &str, spec: &str, upstream: &str) -> String {
        self.add(
            token,
            view(&self.catalog, &server_yaml(name, spec), upstream),
        )
    }

    pub fn url(&self, token: &str) -> String {
        format!("{}/mcp/{token}", self.base)
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub type Client = RunningService<RoleClient, ClientConfig>;

fn transport(
    url: &str,
    bearer: Option<&str>,
    headers: HashMap<http::HeaderName, http::HeaderValue>,
) -> StreamableHttpClientTransport<reqwest::Client> {
    let mut cfg =
        StreamableHttpClientTransportConfig::with_uri(url.to_string()).custom_headers(headers);
    if let Some(b) = bearer {
        cfg = cfg.auth_header(b.to_string());
    }
    StreamableHttpClientTransport::from_config(cfg)
}

fn client_info(version: ProtocolVersion) -> ClientConfig {
    ClientConfig::new(
        ClientCapabilities::default(),
        Implementation::new("it-test", "1.0"),
    )
    .with_protocol_version(version)
}

/// An MCP client speaking `version`: the initialize handshake for the older revisions,
/// `server/discover` and per-request metadata for 2026-07-28.
pub async fn connect(url: &str, version: &str, bearer: Option<&str>) -> Result<Client, String> {
    connect_with(url, version, bearer, HashMap::new()).await
}

pub async fn connect_with(
    url: &str,
    version: &str,
    bearer: Option<&str>,
    headers: HashMap<http::HeaderName, http::HeaderValue>,
) -> Result<Client, String> {
    let t = transport(url, bearer, headers);
    let result = match version {
        "2026-07-28" => {
            client_info(ProtocolVersion::V_2026_07_28)
                .serve_with_lifecycle(
                    t,
                    ClientLifecycleMode::Discover {
                        preferred_versions: vec![ProtocolVersion::V_2026_07_28],
                    },
                )
                .await
        }
        "2025-11-25" => client_info(ProtocolVersion::V_2025_11_25).serve(t).await,
        "2025-06-18" => client_info(ProtocolVersion::V_2025_06_18).serve(t).await,
        "2025-03-26" => client_info(ProtocolVersion::V_2025_03_26).serve(t).await,
        other => return Err(format!("no client for {other}")),
    };
    result.map_err(|e| format!("{e:?}"))
}

/// A `tools/list` request with id 1.
pub const LIST: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;

/// A `tools/call` of the workspace listing, with id 1 and no arguments.
pub const WORKSPACES_CALL: &str = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_all_atomicwork_workspaces","arguments":{}}}"#;

/// A JSON object as tool arguments.
pub fn args(v: Value) -> serde_json::Map<String, Value> {
    v.as_object().cloned().expect("object")
}

/// The text items of a tool result's content, in order.
pub fn texts(result: &CallToolResult) -> Vec<String> {
    serde_json::to_value(&result.content)
        .ok()
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|c| c.get("text").and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// The text items of a tool result's content, one per line.
pub fn text_of(result: &CallToolResult) -> String {
    texts(result).join("\n")
}

pub const VERSIONS: [&str; 4] = ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"];

/// A raw JSON-RPC POST for the cases an SDK client never produces.
pub async fn post(url: &str, body: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .body(body.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.expect("request sent")
}

/// The real `atomicwork-mcp local --sandbox` process, read through its printed summaries.
pub struct LocalProcess {
    pub child: tokio::process::Child,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
    /// Every stdout line read so far.
    pub output: Vec<String>,
    /// Server id → connector URL, from the latest summary.
    pub urls: BTreeMap<String, String>,
}

impl LocalProcess {
    /// Starts local mode on a free loopback port, polling manifests every 0.2 s.
    pub fn spawn(
        manifests: &std::path::Path,
        state: &std::path::Path,
        stderr: std::process::Stdio,
        env: &[(&str, &str)],
    ) -> LocalProcess {
        Self::spawn_args(manifests, state, stderr, env, &["--sandbox"])
    }

    /// Starts local mode on a free loopback port, polling manifests every 0.2 s, with
    /// `args` added to the command line.
    pub fn spawn_args(
        manifests: &std::path::Path,
        state: &std::path::Path,
        stderr: std::process::Stdio,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> LocalProcess {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_atomicwork-mcp"))
            .args(["local", "--listen", "127.0.0.1:0", "--poll-seconds", "0.2"])
            .args(args)
            .arg("--manifests")
            .arg(manifests)
            .arg("--state-dir")
            .arg(state)
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .expect("start atomicwork-mcp local");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        LocalProcess {
            child,
            lines,
            output: Vec::new(),
            urls: BTreeMap::new(),
        }
    }

    /// Reads the next `servers (N):` summary and returns its URLs.
    pub async fn read_summary(&mut self) -> BTreeMap<String, String> {
        let mut expected: Option<usize> = None;
        let mut current: Option<String> = None;
        let mut done = 0;
        loop {
            let line = tokio::time::timeout(std::time::Duration::from_secs(20), self.lines.recv())
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| panic!("no summary; output so far: {:#?}", self.output));
            self.output.push(line.clone());
            if let Some(n) = line
                .strip_prefix("servers (")
                .and_then(|r| r.strip_suffix("):"))
            {
                expected = n.parse().ok();
                self.urls.clear();
                continue;
            }
            let Some(want) = expected else { continue };
            let trimmed = line.trim();
            if let Some(url) = trimmed.strip_prefix("url: ") {
                if let Some(id) = current.take() {
                    self.urls.insert(id, url.to_string());
                }
                done += 1;
            } else if trimmed.contains("NOT SERVING") {
                done += 1;
            } else if line.starts_with("  ") && !line.starts_with("    ") {
                current = trimmed.split_whitespace().next().map(str::to_string);
            }
            if done == want {
                return self.urls.clone();
            }
        }
    }

    /// Reads stdout up to the first line containing `needle` and returns that line.
    pub async fn wait_for(&mut self, needle: &str) -> String {
        loop {
            let line = tokio::time::timeout(std::time::Duration::from_secs(20), self.lines.recv())
                .await
                .ok()
                .flatten()
                .unwrap_or_else(|| {
                    panic!("no line with {needle:?}; output so far: {:#?}", self.output)
                });
            self.output.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    pub fn url(&self, id: &str) -> String {
        self.urls
            .get(id)
            .cloned()
            .unwrap_or_else(|| panic!("{id} not served: {:#?}", self.output))
    }

    /// The `host:port` the process listens on, from its `listening on` line.
    pub fn addr(&self) -> String {
        self.output
            .iter()
            .find_map(|l| l.strip_prefix("listening on http://"))
            .map(str::to_string)
            .unwrap_or_else(|| panic!("no listening line: {:#?}", self.output))
    }
}

impl LocalProcess {
    /// `atomicwork-mcp local` without the sandbox, so each server calls the `baseUrl` of
    /// its manifest; otherwise as [`LocalProcess::spawn`].
    pub fn spawn_upstream(
        manifests: &std::path::Path,
        state: &std::path::Path,
        stderr: std::process::Stdio,
    ) -> LocalProcess {
        Self::spawn_args(manifests, state, stderr, &[], &[])
    }
}
