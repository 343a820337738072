//! End to end against a real cluster: the controller and two data-plane replicas run in
//! this process against the cluster KUBECONFIG names; every test works in a fresh
//! namespace for its servers and another as the operator's own, and calls tools through
//! the connector URL in the resource's status, against the sandbox tenant. The data
//! planes run as the data plane's ServiceAccount would (the client impersonates it), with
//! only the permissions deploy/rbac.yaml gives it: its Role in the operator's namespace. Every test is ignored by default (an unrun test never counts as passed); run
//! them with `AWMCP_E2E=1 KUBECONFIG=... cargo test --test e2e -- --ignored
//! --test-threads=1`.
//!
//! Uses only APIs that are GA in Kubernetes 1.24.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use atomicwork_mcp::controller::Settings;
use atomicwork_mcp::controller::lease::LeaseSettings;
use atomicwork_mcp::core::base_url::BaseUrl;
use atomicwork_mcp::core::catalog::Catalog;
use atomicwork_mcp::dataplane::DataplaneConfig;
use atomicwork_mcp::k8s::crd::{AtomicworkMcpServer, ROTATE_ANNOTATION};
use atomicwork_mcp::k8s::resolve::ResolveOptions;
use atomicwork_mcp::k8s::runtime_record::RECORD_SELECTOR;
use atomicwork_mcp::k8s::scope::Scope;
use atomicwork_mcp::runtime::{self, ControllerOptions, DataplaneOptions};
use atomicwork_mcp::sandbox::{self, Sandbox};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    Api, DeleteParams, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams, PostParams,
};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, CustomResourceExt, ResourceExt};
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

const MANAGER: &str = "atomicwork-mcp-e2e";
const TOOL: &str = "list_all_atomicwork_audit_logs";
const WAIT: Duration = Duration::from_secs(60);
const LEASE: &str = "atomicwork-mcp-e2e";
/// The data plane's ServiceAccount, Role and RoleBinding, as deploy/rbac.yaml names them.
const DATAPLANE: &str = "atomicwork-mcp-dataplane";
/// How long a change to a server may take to reach every data-plane replica.
const PROPAGATION: Duration = Duration::from_secs(2);

/// Refuses to touch a cluster unless asked to: the tests create a CRD and namespaces in
/// whatever cluster KUBECONFIG names.
fn require_cluster() {
    assert_eq!(
        std::env::var("AWMCP_E2E").as_deref(),
        Ok("1"),
        "the end-to-end tests change the cluster KUBECONFIG names; set AWMCP_E2E=1 to run them"
    );
}

/// The operator running in-process against one fresh namespace for servers and one for
/// the operator itself.
struct Env {
    client: Client,
    /// The servers' namespace.
    ns: String,
    /// The operator's own namespace: runtime records, the data plane's Role.
    opns: String,
    /// The base URL of the first data plane, which connector URLs name.
    public_url: String,
    /// The base URL of every data plane.
    planes: Vec<String>,
    /// A client acting as the data plane's ServiceAccount.
    dataplane_client: Client,
    /// The sandbox tenant every server calls.
    upstream: String,
    catalog: Arc<Catalog>,
    stop: CancellationToken,
    controller: Option<(CancellationToken, JoinHandle<()>)>,
    http: reqwest::Client,
}

impl Env {
    async fn start() -> Env {
        let (upstream, _sandbox) = sandbox::spawn_local(Sandbox::seeded())
            .await
            .expect("sandbox");
        Env::start_with(upstream).await
    }

    /// The operator with every server calling `upstream`.
    async fn start_with(upstream: String) -> Env {
        require_cluster();
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        let client = Client::try_default()
            .await
            .expect("a cluster from KUBECONFIG");
        install_crds(&client).await;
        let id = suffix();
        let ns = format!("awmcp-e2e-{id}");
        let opns = format!("awmcp-e2e-{id}-op");
        let namespaces: Api<Namespace> = Api::all(client.clone());
        for name in [&ns, &opns] {
            let namespace: Namespace =
                serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
            namespaces
                .create(&PostParams::default(), &namespace)
                .await
                .expect("create a test namespace");
        }
        let dataplane_client = dataplane_identity(&client, &opns).await;
        let catalog = Arc::new(Catalog::builtin().expect("catalog"));
        let mut env = Env {
            client,
            ns,
            opns,
            public_url: String::new(),
            planes: Vec::new(),
            dataplane_client,
            upstream,
            catalog,
            stop: CancellationToken::new(),
            controller: None,
            http: reqwest::Client::new(),
        };
        env.public_url = env.spawn_dataplane().await;
        env.spawn_dataplane().await;
        env.start_controller();
        env
    }

    /// One more data-plane replica, acting as the data plane's ServiceAccount; returns
    /// its base URL.
    async fn spawn_dataplane(&mut self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let mut config = DataplaneConfig::loopback();
        config.allow_public_url(&BaseUrl::parse(&base).expect("the data plane's URL"));
        let opts = DataplaneOptions {
            runtime_namespace: self.opns.clone(),
            // No such Service here: the replica says so and enforces limits in full,
            // after listing EndpointSlices with its own permissions.
            service_name: Some(DATAPLANE.into()),
            config,
        };
        tokio::spawn(runtime::dataplane(
            self.dataplane_client.clone(),
            self.catalog.clone(),
            opts,
            listener,
            self.stop.clone(),
        ));
        self.planes.push(base.clone());
        base
    }

    fn start_controller(&mut self) {
        let controller = self.spawn_controller(LeaseSettings::new(&self.ns, LEASE));
        self.controller = Some(controller);
    }

    /// One more controller replica with these lease settings, stopped by the returned
    /// token (or with the environment).
    fn spawn_controller(&self, lease: LeaseSettings) -> (CancellationToken, JoinHandle<()>) {
        let stop = self.stop.child_token();
        let opts = ControllerOptions {
            settings: Settings {
                public_url: BaseUrl::parse(&self.public_url).expect("the data plane's URL"),
                redact_status_url: false,
                resolve: ResolveOptions {
                    base_url_override: Some(
                        BaseUrl::parse(&self.upstream).expect("the fake tenant's URL"),
                    ),
                    notice: None,
                    public_url: None,
                    confirm_key: None,
                },
                runtime_namespace: self.opns.clone(),
                record_owner: None,
            },
            scope: Scope::Namespaces(vec![self.ns.clone()]),
            lease: Some(lease),
        };
        let run = runtime::controller(
            self.client.clone(),
            self.catalog.clone(),
            opts,
            None,
            stop.clone(),
        );
        let task = tokio::spawn(async move {
            if let Err(e) = run.await {
                eprintln!("controller stopped: {e:#}");
            }
        });
        (stop, task)
    }

    fn leases(&self) -> Api<Lease> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    /// Waits for the Lease `name` to satisfy `check`.
    async fn wait_lease(&self, name: &str, what: &str, check: impl Fn(Option<&Lease>) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let lease = self.leases().get_opt(name).await.expect("read the Lease");
            if check(lease.as_ref()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}: {lease:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the controller (releasing its lease) and starts a new one.
    async fn restart_controller(&mut self) {
        if let Some((stop, task)) = self.controller.take() {
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        self.start_controller();
    }

    async fn finish(self) {
        self.stop.cancel();
        if let Some((_, task)) = self.controller {
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        for ns in [&self.ns, &self.opns] {
            let _ = namespaces.delete(ns, &DeleteParams::default()).await;
        }
    }

    /// Stops the controller (releasing its lease), leaving the data planes running.
    async fn stop_controller(&mut self) {
        if let Some((stop, task)) = self.controller.take() {
            stop.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(30), task).await;
        }
    }

    /// `url` (a connector URL on the first data plane) on each data plane.
    fn on_every_plane(&self, url: &str) -> Vec<String> {
        let path = url.strip_prefix(&self.public_url).unwrap_or(url);
        self.planes.iter().map(|p| format!("{p}{path}")).collect()
    }

    /// Waits until every data plane answers `url` with `status`; fails when one still
    /// does not [`PROPAGATION`] after `since` (the moment the change was made). Returns
    /// the last answer of each.
    async fn every_plane_within(
        &self,
        url: &str,
        bearer: Option<&str>,
        status: u16,
        since: tokio::time::Instant,
    ) -> Vec<Value> {
        let mut answers = Vec::new();
        for plane_url in self.on_every_plane(url) {
            loop {
                let (got, body) = self.call(&plane_url, bearer).await;
                if got == status {
                    answers.push(body);
                    break;
                }
                assert!(
                    since.elapsed() < PROPAGATION,
                    "{plane_url} still answered {got}, not {status}, {:?} after the change: {body}",
                    since.elapsed()
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        answers
    }

    fn servers(&self) -> Api<AtomicworkMcpServer> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    fn secrets(&self) -> Api<Secret> {
        Api::namespaced(self.client.clone(), &self.ns)
    }

    async fn apply_secret(&self, name: &str, data: Value) {
        let body = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": name, "namespace": self.ns},
            "stringData": data,
        });
        self.secrets()
            .patch(
                name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .expect("apply Secret");
    }

    /// Applies a server reading the `atomicwork-api` Secret with `extra` spec fields.
    async fn apply_server(&self, name: &str, annotations: Value, extra: Value) {
        let mut spec = json!({
            "atomicwork": {
                "baseUrl": "https://e2e.atomicwork.invalid",
                "apiKeySecretRef": {"name": "atomicwork-api"},
                "workspaceId": "1",
            },
            "methods": ["read"],
            "tags": ["audit"],
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        let body = json!({
            "apiVersion": "mcp.atomicwork.dev/v1alpha1", "kind": "AtomicworkMcpServer",
            "metadata": {"name": name, "namespace": self.ns, "annotations": annotations},
            "spec": spec,
        });
        self.servers()
            .patch(
                name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .expect("apply AtomicworkMcpServer");
    }

    /// Polls the server until `check` holds.
    async fn wait_for(
        &self,
        name: &str,
        what: &str,
        check: impl Fn(&AtomicworkMcpServer) -> bool,
    ) -> AtomicworkMcpServer {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(Some(s)) = self.servers().get_opt(name).await
                && check(&s)
            {
                return s;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{name}: timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Waits (past the usual timeout) for the Expired condition.
    async fn wait_for_long(&self, name: &str) -> AtomicworkMcpServer {
        loop {
            if let Ok(Some(s)) = self.servers().get_opt(name).await
                && condition(&s, "Expired").is_some_and(|c| c.status == "True")
            {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn wait_ready(&self, name: &str) -> String {
        let s = self
            .wait_for(name, "Ready", |s| {
                ready_reason(s).as_deref() == Some("Serving") && url(s).is_some()
            })
            .await;
        url(&s).unwrap_or_default()
    }

    /// Calls the tool; returns the HTTP status and the JSON body.
    async fn call(&self, url: &str, bearer: Option<&str>) -> (u16, Value) {
        let mut req = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&json!({
                "jsonrpc": "2.0", "id": 1, "method": "tools/call",
                "params": {"name": TOOL, "arguments": {}},
            }));
        if let Some(b) = bearer {
            req = req.bearer_auth(b);
        }
        let resp = req.send().await.expect("data plane reachable");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls the endpoint until it answers with `status`.
    async fn wait_status(&self, url: &str, bearer: Option<&str>, status: u16) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (got, body) = self.call(url, bearer).await;
            if got == status {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "endpoint answered {got}, not {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn token(&self, server: &str) -> Option<String> {
        let s = self
            .secrets()
            .get_opt(&format!("{server}-mcp-token"))
            .await
            .ok()??;
        let bytes = s.data?.get("token")?.0.clone();
        String::from_utf8(bytes).ok()
    }

    /// The name of the runtime record of `server`, read as the operator.
    async fn record_name(&self, server: &str) -> String {
        let records = Api::<Secret>::namespaced(self.client.clone(), &self.opns)
            .list(&ListParams::default().labels(RECORD_SELECTOR))
            .await
            .expect("list runtime records");
        records
            .items
            .iter()
            .find(|r| {
                r.annotations()
                    .get("mcp.atomicwork.dev/server-name")
                    .is_some_and(|n| n == server)
            })
            .map(|r| r.name_any())
            .unwrap_or_else(|| panic!("no runtime record for {server}"))
    }

    async fn event_reasons(&self, server: &str) -> Vec<String> {
        let events: Api<Event> = Api::namespaced(self.client.clone(), &self.ns);
        let list = events.list(&Default::default()).await.expect("list Events");
        list.items
            .into_iter()
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(server))
            .filter_map(|e| e.reason)
            .collect()
    }
}

/// Sets up the data plane's ServiceAccount, Role and RoleBinding in `opns` from
/// deploy/rbac.yaml, and returns a client that impersonates that ServiceAccount.
async fn dataplane_identity(admin: &Client, opns: &str) -> Client {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/rbac.yaml");
    let text = std::fs::read_to_string(path).expect("deploy/rbac.yaml");
    let docs: Vec<Value> = atomicwork_mcp::local::manifest::documents(&text)
        .iter()
        .map(|d| serde_saphyr::from_str::<Value>(d).expect("YAML"))
        .filter(|v| !v.is_null())
        .collect();
    let find = |kind: &str| {
        let mut doc = docs
            .iter()
            .find(|d| d["kind"] == kind && d["metadata"]["name"] == DATAPLANE)
            .unwrap_or_else(|| panic!("{kind} {DATAPLANE} in deploy/rbac.yaml"))
            .clone();
        doc["metadata"]["namespace"] = json!(opns);
        doc
    };
    let role = find("Role");
    let mut binding = find("RoleBinding");
    binding["subjects"][0]["namespace"] = json!(opns);
    let account = find("ServiceAccount");
    let params = PatchParams::apply(MANAGER).force();
    Api::<ServiceAccount>::namespaced(admin.clone(), opns)
        .patch(DATAPLANE, &params, &Patch::Apply(&account))
        .await
        .expect("the data plane's ServiceAccount");
    Api::<Role>::namespaced(admin.clone(), opns)
        .patch(DATAPLANE, &params, &Patch::Apply(&role))
        .await
        .expect("the data plane's Role");
    Api::<RoleBinding>::namespaced(admin.clone(), opns)
        .patch(DATAPLANE, &params, &Patch::Apply(&binding))
        .await
        .expect("the data plane's RoleBinding");
    let mut config = kube::Config::infer().await.expect("KUBECONFIG");
    config.auth_info.impersonate = Some(format!("system:serviceaccount:{opns}:{DATAPLANE}"));
    config.auth_info.impersonate_groups = Some(vec![
        "system:serviceaccounts".into(),
        format!("system:serviceaccounts:{opns}"),
        "system:authenticated".into(),
    ]);
    let client = Client::try_from(config).expect("impersonating client");
    // RBAC takes effect within moments; wait until the Role answers.
    let deadline = tokio::time::Instant::now() + WAIT;
    while Api::<Secret>::namespaced(client.clone(), opns)
        .list(&ListParams::default())
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the data plane's Role never took effect"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    client
}

/// Applies crds/ the way `kubectl apply -f crds/` does: every `.yaml`, `.yml` and `.json`
/// file, every document in it an object of a kind the API server knows (anything else
/// fails, as it fails kubectl). Then waits until each CRD is established.
async fn install_crds(client: &Client) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("crds/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "crds/ holds no manifest");
    let mut crd_names = Vec::new();
    for file in files {
        let what = file.display().to_string();
        let text = std::fs::read_to_string(&file).expect("read a file in crds/");
        for doc in atomicwork_mcp::local::manifest::documents(&text) {
            let value: Value = serde_saphyr::from_str(&doc).expect("YAML");
            if value.is_null() {
                continue;
            }
            let object: DynamicObject = serde_json::from_value(value)
                .unwrap_or_else(|e| panic!("{what}: not a Kubernetes object: {e}"));
            let types = object
                .types
                .clone()
                .unwrap_or_else(|| panic!("{what}: a document without apiVersion and kind"));
            let gvk = GroupVersionKind::try_from(&types).unwrap_or_else(|e| panic!("{what}: {e}"));
            let (resource, _) = kube::discovery::pinned_kind(client, &gvk)
                .await
                .unwrap_or_else(|e| {
                    panic!("{what}: `kubectl apply -f crds/` would fail on {types:?}: {e}")
                });
            let api: Api<DynamicObject> = Api::all_with(client.clone(), &resource);
            let name = object.name_any();
            api.patch(
                &name,
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&object),
            )
            .await
            .unwrap_or_else(|e| panic!("{what}: applying {name}: {e}"));
            if types.kind == "CustomResourceDefinition" {
                crd_names.push(name);
            }
        }
    }
    assert!(
        crd_names.contains(&AtomicworkMcpServer::crd_name().to_string()),
        "crds/ holds the AtomicworkMcpServer CRD: {crd_names:?}"
    );
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for name in crd_names {
        tokio::time::timeout(
            WAIT,
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .expect("CRD established in time")
        .expect("watching the CRD");
    }
}

fn suffix() -> String {
    let mut bytes = [0u8; 4];
    getrandom::fill(&mut bytes).expect("OS random");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ready_reason(s: &AtomicworkMcpServer) -> Option<String> {
    condition(s, "Ready").map(|c| c.reason.clone())
}

fn condition<'a>(
    s: &'a AtomicworkMcpServer,
    type_: &str,
) -> Option<&'a k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    s.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
}

fn url(s: &AtomicworkMcpServer) -> Option<String> {
    s.status.as_ref()?.url.clone()
}

fn annotation(key: &str, value: &str) -> Value {
    Value::Object(serde_json::Map::from_iter([(
        key.to_string(),
        json!(value),
    )]))
}

fn is_tool_result(body: &Value) -> bool {
    body["result"]["isError"] == false
}

#[tokio::test]
#[ignore = "needs a real cluster: run with AWMCP_E2E=1 KUBECONFIG=... cargo test --test e2e -- --ignored --test-threads=1"]
async fn serves_tools_and_keeps_the_token_across_a_controller_restart() {
    let mut env = Env::start().await;
    env.apply_secret("atomicwork-api", json!({"apiKey": "sandbox-key"}))
        .await;
    env.apply_server("ops", json!({}), json!({})).await;
    let first = env.wait_ready("ops").await;
    assert!(first.starts_with(&format!("{}/mcp/", env.public_url)));
    let (status, body) = env.call(&first, None).await;
    assert_eq!(status, 200, "{body}");
    assert!(is_tool_result(&body), "{body}");
    let token = env.token("ops").await.expect("token Secret");
    assert!(token.len() >= 43);

    env.restart_controller().await;
    env.apply_server("ops", annotation("e2e.atomicwork.dev/poke", "1"), json!({}))
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let s = env
        .wait_for("ops", "Ready", |s| {
            ready_reason(s).as_deref() == Some("Serving")
        })
        .await;
    assert_eq!(
        url(&s),
        Some(first.clone()),
        "a restart never changes the token"
    );
    assert_eq!(env.token("ops").await, Some(token));
    let (status, _) = env.call(&first, None).await;
    assert_eq!(status, 200);
    env.finish().await;
}

#[tokio::test]
#[ignore = "needs a real cluster: run with AWMCP_E2E=1 KUBECONFIG=... cargo test --test e2e -- --ignored --test-threads=1"]
async fn rotation_stops_the_old_url_at_once() {
    let env = Env::start().await;
    env.apply_secret("atomicwork-api", json!({"apiKey": "sandbox-key"}))
        .await;
    env.apply_server("ops", json!({}), json!({})).await;
    let old = env.wait_ready("ops").await;
    env.every_plane_within(&old, None, 200, tokio::time::Instant::now())
        .await;
    let old_token = env.token("ops").await.expect("token Secret");
    let since = tokio::time::Instant::now();
    env.apply_server("ops", annotation(ROTATE_ANNOTATION, "1"), json!({}))
        .await;
    // The old URL is refused by every replica at once; the new one is served.
    env.every_plane_within(&old, None, 404, since).await;
    let mut new_token = env.token("ops").await;
    while new_token.as_deref() == Some(old_token.as_str()) {
        assert!(since.elapsed() < PROPAGATION, "no new token in time");
        tokio::time::sleep(Duration::from_millis(25)).await;
        new_token = env.token("ops").await;
    }
    let new = format!("{}/mcp/{}", env.public_url, new_token.unwrap_or_default());
    for body in env.every_plane_within(&new, None, 200, since).await {
        assert!(is_tool_result(&body), "{body}");
    }
    let status = env
        .wait_for("ops", "the new URL", |s| url(s).is_some_and(|u| u != old))
        .await;
    assert_eq!(url(&status), Some(new));
    assert!(
        env.event_reasons("ops")
            .await
            .contains(&"TokenRotated".to_string())
    );
    env.finish().await;
}

#[tokio::test]
#[ignore = "needs a real cluster: run with AWMCP_E2E=1 KUBECONFIG=... cargo test --test e2e -- --ignored --test-threads=1"]
async fn an_expired_url_answers_403_until_extending_expiry_mints_a_new_one() {
    let env = Env::start().await;
    env.apply_secret("atomicwork-api", json!({"apiKey": "sandbox-key"}))
        .await;
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(75);
    env.apply_server("ops", json!({}), json!({"expiresAt": at.to_string()}))
        .await;
    let old = env.wait_ready("ops").await;
    let token = env.token("ops").await.expect("token Secret");
    env.every_plane_within(&old, None, 200, tokio::time::Instant::now())
        .await;
    // Every replica refuses from the instant of expiry.
    let wait = Duration::try_from(at.duration_since(jiff::Timestamp::now())).unwrap_or_default();
    tokio::time::sleep(wait).await;
    env.every_plane_within(&old, None, 403, tokio::time::Instant::now())
        .await;
    let expired = tokio::time::timeout(Duration::from_secs(150), env.wait_for_long("ops"))
        .await
        .expect("Expired in time");
    assert_eq!(ready_reason(&expired).as_deref(), Some("Expired"));
    assert_eq!(url(&expired), None);
    assert_eq!(
        env.token("ops").await,
        Some(token),
        "the token Secret is kept, so the URL can say it expired"
    );
    // Past every reconcile: still 403 "expired", from every replica.
    tokio::time::sleep(Duration::from_secs(5)).await;
    for body in env
        .every_plane_within(&old, None, 403, tokio::time::Instant::now())
        .await
    {
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("expired at")),
            "{body}"
        );
    }

    let later = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    env.apply_server("ops", json!({}), json!({"expiresAt": later.to_string()}))
        .await;
    let new = env.wait_ready("ops").await;
    assert_ne!(new, old);
    let now = tokio::time::Instant::now();
    env.every_plane_within(&new, None, 200, now).await;
    env.every_plane_within(&old, None, 404, now).await;
    assert!(
        env.event_reasons("ops")
            .await
            .contains(&"TokenMinted".to_string())
    );
    env.finish().await;
}

#[tokio::test]
#[ignore = "needs a real cluster: run with AWMCP_E2E=1 KUBECONFIG=... cargo test --test e2e -- --ignored --test-threads=1"]
async fn a_secret_created_late_is_picked_up_without_a_restart() {
    let env = Env::start().await;
    env.apply_server("ops", json!({}), json!({})).await;
    env.wait_for("ops", "SecretNotFound", |s| {
        ready_reason(s).as_deref() == Some("SecretNotFound")
    })
    .await;
    env.apply_secret("atomicwork-api", json!({"apiKey": "sandbox-key"}))
        .await;
    let url = env.wait_ready("ops").await;
    env.wait_status(&url, None, 200).await;
    env.finish().await;
}

#[tokio::test]
#[ignore = "needs a real cluster: run with AWMCP_E2E=1 KUBECONFIG=... cargo test --test e2e -- --ignored --test-threads=1"]
async fn changed_client_tokens_reach_the_data_plane() {
    let env = Env::start().await;
    env.apply_secret("atomicwork-api", json!({"apiKey": "sandbox-key"}))
        .await;
    env.apply_secret("mcp-clients", json!({"alice": "client-token-one"}))
        .await;
    let auth = json!({"requireApiTokenAuth": true, "apiTokenSecretRef": {"name": "mcp-clients"}});
    env.apply_server("ops", json!({}), auth).await;
    let url = env.wait_ready("ops").await;
    env.wait_status(&url, Some("client-token-one"), 200).await;
    let (status, _) = env.call(&url, None).await;
    assert_eq!(status, 401);
    let since = tokio::time::Instant::now();
    env.apply_secret("mcp-clients", json!({"alice": "client-token-two"}))
        .await;
    env.every_plane_within(&url, Some("client-token-one"), 401, since)
        .await;
    env.every_plane_within(&url, Some("client-token-two"), 200, since)
        .await;
    env.finish().await;
}

#[tokio::test]
#[ignore = "needs a real cluster: run with AWMCP_E2E=1 KUBECONFIG=... cargo test --test e2e -- --ignored --test-threads=1"]
async fn deleting_the_server_stops_its_endpoint_and_cascades_to_the_token_secret() {
    let env = Env::start().await;
    env.apply_secret("atomicwork-api", json!({"apiKey": "sandbox-key"}))
        .await;
    env.apply_server("ops", json!({}), json!({})).await;
    let url = env.wait_ready("ops").await;
    let secret = env
        .secrets()
        .get("ops-mcp-token")
        .await
        .expect("token Secret");
    let owner = secret
        .owner_references()
        .first()
        .cloned()
        .expect("owner reference");
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("AtomicworkMcpServer", Some(true))
    );

    let record = Api::<Secret>::namespaced(env.client.clone(), &env.opns)
        .list(&ListParams::default().labels(RECORD_SELECTOR))
        .await
        .expect("list runtime records");
    assert_eq!(
        record.items.len(),
        1,
        "one runtime record, in the operator's namespace"
    );
    env.every_plane_within(&url, None, 200, tokio::time::Instant::now())
        .await;

    let since = tokio::time::Instant::now();
    env.servers()
        .delete("ops", &DeleteParams::background())
        .await
        .expect("delete the server");
    env.every_plane_within(&url, None, 404, since).await;
    let records = Api::<Secret>::namespaced(env.client.clone(), &env.opns)
        .list(&ListParams::default().labels(RECORD_SELECTOR))
        .await
        .expect("list runtime records");
    assert!(
        records.items.is_empty(),
        "the runtime record went with its server"
    );

    // Garbage collection (kube-controller-manager) removes the Secret; a test cluster
    // without it still stops the endpoint, as checked above.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while env.token("ops").await.is_some() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if env.token("ops").await.is_some() {
        println!("note: the token Secret outlived its owner; is garbage collection running?");
    }
    env.finish().await;
}

#[tokio::test]
#[ignore = "needs a real cluster: run with AWMCP_E2E=1 KUBECONFIG=... cargo test --test e2e -- --ignored --test-threads=1"]
async fn suspending_and_resuming_reach_every_replica() {
    let env = Env::start().await;
    env.apply_secret("atomicwork-api", json!({"apiKey": "sandbox-key"}))
        .await;
    env.apply_server("ops", json!({}), json!({})).await;
    let url = env.wait_ready("ops").await;
    env.every_plane_within(&url, None, 200, tokio::time::Instant::now())
        .await;
    let since = tokio::time::Instant::now();
    env.apply_server("ops", json!({}), json!({"suspend": true}))
        .await;
    for body in env.every_plane_within(&url, None, 403, since).await {
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("suspended")),
            "{body}"
        );
    }
    let since = tokio::time::Instant::now();
    env.apply_server("ops", json!({}), json!({"suspend": false}))
        .await;
    for body in env.every_plane_within(&url, None, 200, since).await {
        assert!(is_tool_result(&body), "{body}");
    }
    env.finish().await;
}

/// The text of a tool result.
fn result_text(body: &Value) -> String {
    body["result"]["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
#[ignore = "needs a real cluster: run with AWMCP_E2E=1 KUBECONFIG=... cargo test --test e2e -- --ignored --test-threads=1"]
async fn a_changed_api_key_reaches_every_replica() {
    use wiremock::matchers::header;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    // A tenant that answers each key with its own marker.
    let tenant = MockServer::start().await;
    for key in ["key-one", "key-two"] {
        Mock::given(header("x-api-key", key))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(json!({"items": [], "marker": key})),
            )
            .mount(&tenant)
            .await;
    }
    let env = Env::start_with(tenant.uri()).await;
    env.apply_secret("atomicwork-api", json!({"apiKey": "key-one"}))
        .await;
    env.apply_server("ops", json!({}), json!({})).await;
    let url = env.wait_ready("ops").await;
    for body in env
        .every_plane_within(&url, None, 200, tokio::time::Instant::now())
        .await
    {
        assert!(result_text(&body).contains("key-one"), "{body}");
    }
    let since = tokio::time::Instant::now();
    env.apply_secret("atomicwork-api", json!({"apiKey": "key-two"}))
        .await;
    for plane_url in env.on_every_plane(&url) {
        loop {
            let (status, body) = env.call(&plane_url, None).await;
            if status == 200 && result_text(&body).contains("key-two") {
                break;
            }
            assert!(
                since.elapsed() < PROPAGATION,
                "{plane_url} still used the old key {:?} after the change: {body}",
                since.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
    env.finish().await;
}

#[tokio::test]
#[ignore = "needs a real cluster: run with AWMCP_E2E=1 KUBECONFIG=... cargo test --test e2e -- --ignored --test-threads=1"]
async fn the_data_plane_reads_only_its_records_and_serves_without_the_controller() {
    let mut env = Env::start().await;
    env.apply_secret("atomicwork-api", json!({"apiKey": "sandbox-key"}))
        .await;
    env.apply_server("ops", json!({}), json!({})).await;
    let url = env.wait_ready("ops").await;
    env.every_plane_within(&url, None, 200, tokio::time::Instant::now())
        .await;

    // Its identity: the records and EndpointSlices of its own namespace, nothing else.
    let dp = env.dataplane_client.clone();
    Api::<Secret>::namespaced(dp.clone(), &env.opns)
        .list(&ListParams::default().labels(RECORD_SELECTOR))
        .await
        .expect("its own namespace's records");
    Api::<EndpointSlice>::namespaced(dp.clone(), &env.opns)
        .list(&ListParams::default())
        .await
        .expect("its own namespace's EndpointSlices");
    let forbidden = |result: Result<(), kube::Error>, what: &str| match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403, got {other:?}"),
    };
    let servers_ns: Api<Secret> = Api::namespaced(dp.clone(), &env.ns);
    forbidden(
        servers_ns.get("atomicwork-api").await.map(drop),
        "reading a Secret in another namespace",
    );
    forbidden(
        servers_ns.list(&ListParams::default()).await.map(drop),
        "listing Secrets in another namespace",
    );
    forbidden(
        Api::<Secret>::all(dp.clone())
            .list(&ListParams::default())
            .await
            .map(drop),
        "listing Secrets cluster-wide",
    );
    forbidden(
        Api::<AtomicworkMcpServer>::namespaced(dp.clone(), &env.ns)
            .list(&ListParams::default())
            .await
            .map(drop),
        "listing AtomicworkMcpServers",
    );
    forbidden(
        Api::<Secret>::namespaced(dp.clone(), &env.opns)
            .get(&env.record_name("ops").await)
            .await
            .map(drop),
        "getting a record by name (the data plane only lists and watches)",
    );

    // A replica that starts while the controller is down serves the records already
    // there.
    env.stop_controller().await;
    let third = env.spawn_dataplane().await;
    let path = url
        .strip_prefix(&env.public_url)
        .unwrap_or(&url)
        .to_string();
    let since = tokio::time::Instant::now();
    loop {
        let (status, body) = env.call(&format!("{third}{path}"), None).await;
        if status == 200 {
            assert!(is_tool_result(&body), "{body}");
            break;
        }
        assert!(
            since.elapsed() < WAIT,
            "the new replica never served: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    env.finish().await;
}

fn holder(lease: Option<&Lease>) -> Option<String> {
    lease?.spec.as_ref()?.holder_identity.clone()
}

fn transitions(lease: Option<&Lease>) -> Option<i32> {
    lease?.spec.as_ref()?.lease_transitions
}

/// Lease settings for a second election in the test namespace, with a claim that lasts a
/// minute: a standby that only looked again when the claim expired would wait that long.
fn long_claim(ns: &str, name: &str) -> LeaseSettings {
    let mut lease = LeaseSettings::new(ns, name);
    lease.duration_seconds = 60;
    lease.grace_seconds = 10;
    lease
}

#[tokio::test]
#[ignore = "needs a real cluster: run with AWMCP_E2E=1 KUBECONFIG=... cargo test --test e2e -- --ignored --test-threads=1"]
async fn a_standby_takes_over_as_soon_as_the_leader_releases_the_lease() {
    let env = Env::start().await;
    let name = "awmcp-e2e-takeover";
    let first = long_claim(&env.ns, name);
    let second = long_claim(&env.ns, name);
    let a = env.spawn_controller(first.clone());
    env.wait_lease(name, "the first replica to lead", |l| {
        holder(l).as_deref() == Some(first.identity.as_str())
    })
    .await;
    let b = env.spawn_controller(second.clone());
    // The second replica stands by (the claim is held for a minute), and the first
    // keeps its one claim.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let lease = env.leases().get_opt(name).await.expect("Lease");
    assert_eq!(holder(lease.as_ref()), Some(first.identity.clone()));
    assert_eq!(transitions(lease.as_ref()), Some(1), "{lease:?}");

    a.0.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), a.1).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let now = holder(env.leases().get_opt(name).await.expect("Lease").as_ref());
        if now.as_deref() == Some(second.identity.as_str()) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the standby did not claim the released lease (holder {now:?}); the old claim ran for 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.0.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), b.1).await;
    env.finish().await;
}

#[tokio::test]
#[ignore = "needs a real cluster: run with AWMCP_E2E=1 KUBECONFIG=... cargo test --test e2e -- --ignored --test-threads=1"]
async fn the_lease_is_deleted_with_the_controller_deployment() {
    let env = Env::start().await;
    let deployments: Api<Deployment> = Api::namespaced(env.client.clone(), &env.ns);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "awmcp-e2e-controller"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "awmcp-e2e-controller"}},
            "template": {
                "metadata": {"labels": {"app": "awmcp-e2e-controller"}},
                "spec": {"containers": [{"name": "controller", "image": "atomicwork-mcp:e2e"}]},
            },
        },
    }))
    .expect("Deployment");
    let created = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create the Deployment");
    let uid = created.metadata.uid.clone().expect("uid");
    let name = "awmcp-e2e-owned";
    let mut lease = LeaseSettings::new(&env.ns, name);
    lease.owner_deployment = Some("awmcp-e2e-controller".into());
    let replica = env.spawn_controller(lease.clone());
    env.wait_lease(name, "a held Lease owned by the Deployment", |l| {
        let owned = l
            .and_then(|l| l.metadata.owner_references.as_ref())
            .is_some_and(|o| o.iter().any(|o| o.uid == uid && o.kind == "Deployment"));
        owned && holder(l).as_deref() == Some(lease.identity.as_str())
    })
    .await;

    // An uninstall: the Deployment goes (and with it, through garbage collection, the
    // Lease), whatever the replica manages to do on its way out.
    deployments
        .delete("awmcp-e2e-controller", &DeleteParams::background())
        .await
        .expect("delete the Deployment");
    replica.0.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(30), replica.1).await;
    env.wait_lease(name, "the Lease to be garbage-collected", |l| l.is_none())
        .await;
    env.finish().await;
}
