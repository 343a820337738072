//! Test helpers: servers and Secrets as the API server returns them, and a mocked API
//! server that checks each request a reconcile makes, in order, and answers it.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as K8sSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference, Time};
use kube::Client;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{self, Handle};

use crate::controller::metrics::ControllerMetrics;
use crate::core::catalog::Catalog;
use crate::k8s::crd::{
    AtomicworkConnection, AtomicworkMcpServer, AtomicworkMcpServerSpec, ROTATE_ANNOTATION,
    SecretKeyRef, SecretRef, ToolExposure,
};

use super::{Context, Settings};
use crate::k8s::scope::Scope;

pub(crate) const NS: &str = "it-ops";
/// The operator's own namespace, where runtime records go.
pub(crate) const RUNTIME_NS: &str = "atomicwork-mcp";
pub(crate) const PUBLIC_URL: &str = "https://mcp.example.com";
pub(crate) const API_SECRET: &str = "atomicwork-api";
pub(crate) const API_KEY: &str = "sk-test-key-123";
pub(crate) const CLIENT_SECRET: &str = "mcp-client-tokens";
/// A token as a previous reconcile stored it (43 characters, like a minted one).
pub(crate) const OLD_TOKEN: &str = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

pub(crate) fn settings() -> Settings {
    Settings {
        public_url: crate::core::base_url::BaseUrl::parse(PUBLIC_URL).expect("the test public URL"),
        redact_status_url: false,
        resolve: Default::default(),
        runtime_namespace: RUNTIME_NS.into(),
        record_owner: None,
    }
}

/// The name of the runtime-record Secret of the test server `name`.
pub(crate) fn record_name(name: &str) -> String {
    crate::k8s::runtime_record::record_secret_name(&crate::core::server::ServerId::new(NS, name))
}

pub(crate) fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::builtin().expect("built-in catalog"))
}

/// A server created an hour ago exposing the read tools tagged `changes`.
pub(crate) fn server(name: &str) -> AtomicworkMcpServer {
    let mut s = AtomicworkMcpServer::new(
        name,
        AtomicworkMcpServerSpec {
            display_name: None,
            atomicwork: AtomicworkConnection {
                base_url: "https://acme.atomicwork.com".into(),
                api_key_secret_ref: SecretKeyRef {
                    name: API_SECRET.into(),
                    key: "apiKey".into(),
                },
                workspace_id: None,
                timeout_seconds: None,
            },
            methods: Some(vec!["read".into()]),
            tags: Some(vec!["changes".into()]),
            tools: None,
            tool_exposure: Some(ToolExposure::All),
            tool_set: None,
            tool_overrides: None,
            expires_at: None,
            require_api_token_auth: false,
            api_token_secret_ref: None,
            dry_run: false,
            confirm: None,
            rate_limit: None,
            auth: None,
            retry: None,
            max_result_chars: None,
            suspend: false,
        },
    );
    s.metadata.namespace = Some(NS.into());
    s.metadata.uid = Some(format!("uid-{name}"));
    s.metadata.generation = Some(1);
    s.metadata.resource_version = Some("100".into());
    s.metadata.creation_timestamp =
        Some(Time(Timestamp::now() - jiff::SignedDuration::from_hours(1)));
    s
}

/// Builder-style changes to a test server.
pub(crate) trait ServerExt: Sized {
    fn edit(self, f: impl FnOnce(&mut AtomicworkMcpServer)) -> Self;

    fn annotated(self, key: &str, value: &str) -> Self {
        self.edit(|s| {
            s.metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
                .insert(key.into(), value.into());
        })
    }

    fn rotated(self, value: &str) -> Self {
        self.annotated(ROTATE_ANNOTATION, value)
    }

    fn expires_in(self, seconds: i64) -> Self {
        self.edit(|s| {
            let at = Timestamp::now() + jiff::SignedDuration::from_secs(seconds);
            s.spec.expires_at = Some(at.to_string());
        })
    }

    fn suspended(self) -> Self {
        self.edit(|s| s.spec.suspend = true)
    }

    fn client_tokens(self) -> Self {
        self.edit(|s| {
            s.spec.require_api_token_auth = true;
            s.spec.api_token_secret_ref = Some(SecretRef {
                name: CLIENT_SECRET.into(),
            });
        })
    }

    fn with_status_of(self, status: &crate::k8s::crd::AtomicworkMcpServerStatus) -> Self {
        let status = status.clone();
        self.edit(|s| s.status = Some(status))
    }
}

impl ServerExt for AtomicworkMcpServer {
    fn edit(mut self, f: impl FnOnce(&mut AtomicworkMcpServer)) -> Self {
        f(&mut self);
        self
    }
}

/// An Opaque Secret in the test namespace.
pub(crate) fn secret(name: &str, data: &[(&str, &str)]) -> K8sSecret {
    K8sSecret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            uid: Some(format!("uid-secret-{name}")),
            resource_version: Some("7".into()),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(
            data.iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.as_bytes().to_vec())))
                .collect(),
        ),
        ..K8sSecret::default()
    }
}

pub(crate) fn api_secret() -> K8sSecret {
    secret(API_SECRET, &[("apiKey", API_KEY)])
}

/// A token Secret as the controller wrote it for `server`.
pub(crate) fn token_secret(
    server: &AtomicworkMcpServer,
    token: &str,
    rotation: Option<&str>,
) -> K8sSecret {
    let name = server.metadata.name.clone().unwrap_or_default();
    let mut s = secret(
        &format!("{name}-mcp-token"),
        &[
            ("token", token),
            ("url", &format!("{PUBLIC_URL}/mcp/{token}")),
        ],
    );
    s.metadata.labels = Some(BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".into(),
            "atomicwork-mcp-operator".into(),
        ),
        ("app.kubernetes.io/part-of".into(), "atomicwork-mcp".into()),
        ("mcp.atomicwork.dev/server".into(), name.clone()),
    ]));
    s.metadata.annotations =
        rotation.map(|r| BTreeMap::from([(ROTATE_ANNOTATION.to_string(), r.to_string())]));
    s.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "mcp.atomicwork.dev/v1alpha1".into(),
        kind: "AtomicworkMcpServer".into(),
        name,
        uid: server.metadata.uid.clone().unwrap_or_default(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    s
}

/// A context whose client talks to the returned mocked API server.
pub(crate) fn context() -> (Arc<Context>, ApiServer) {
    context_with(settings())
}

pub(crate) fn context_with(settings: Settings) -> (Arc<Context>, ApiServer) {
    let (service, handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = Client::new(service, "default");
    (context_on(client, settings), ApiServer(handle))
}

/// A context on `client` with the built-in catalog and fresh metrics.
pub(crate) fn context_on(client: Client, settings: Settings) -> Arc<Context> {
    Arc::new(Context::new(
        client,
        catalog(),
        settings,
        Arc::new(ControllerMetrics::new()),
    ))
}

/// The test namespace, as the only watched one.
pub(crate) fn scope() -> Scope {
    Scope::Namespaces(vec![NS.into()])
}

/// One request as the mocked API server saw it.
#[derive(Debug)]
pub(crate) struct Seen {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) content_type: String,
    pub(crate) body: Value,
}

/// The mocked API server: each `expect_*` awaits the next request, checks it and answers.
pub(crate) struct ApiServer(Handle<Request<Body>, Response<Body>>);

impl ApiServer {
    /// Takes the next request, checks method and path, answers with `reply(body)`.
    pub(crate) async fn expect(
        &mut self,
        method: Method,
        path: &str,
        status: StatusCode,
        reply: impl FnOnce(&Value) -> Value,
    ) -> Seen {
        let (request, send) = self
            .0
            .next_request()
            .await
            .unwrap_or_else(|| panic!("expected {method} {path}, but no request came"));
        let (parts, body) = request.into_parts();
        let bytes = body.collect_bytes().await.expect("request body");
        let body: Value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON request body")
        };
        let seen = Seen {
            method: parts.method.clone(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or_default().to_string(),
            content_type: parts
                .headers
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string(),
            body,
        };
        assert_eq!(
            (&seen.method, seen.path.as_str()),
            (&method, path),
            "unexpected request"
        );
        let answer = serde_json::to_vec(&reply(&seen.body)).expect("JSON reply");
        send.send_response(
            Response::builder()
                .status(status)
                .body(Body::from(answer))
                .expect("response"),
        );
        seen
    }

    pub(crate) async fn get_secret(&mut self, name: &str, found: Option<&K8sSecret>) -> Seen {
        self.get_secret_in(NS, name, found).await
    }

    /// A read of the runtime record of the server `server`.
    pub(crate) async fn get_record(&mut self, server: &str, found: Option<&K8sSecret>) -> Seen {
        self.get_secret_in(RUNTIME_NS, &record_name(server), found)
            .await
    }

    /// A server-side apply of the runtime record of `server`; answers with the applied
    /// object.
    pub(crate) async fn apply_record(&mut self, server: &str) -> Seen {
        let path = format!(
            "/api/v1/namespaces/{RUNTIME_NS}/secrets/{}",
            record_name(server)
        );
        let seen = self
            .expect(Method::PATCH, &path, StatusCode::OK, |body| body.clone())
            .await;
        assert_ssa(&seen);
        seen
    }

    /// A deletion of the runtime record of `server`.
    pub(crate) async fn delete_record(&mut self, server: &str) -> Seen {
        self.delete_secret_in(RUNTIME_NS, &record_name(server))
            .await
    }

    async fn get_secret_in(&mut self, ns: &str, name: &str, found: Option<&K8sSecret>) -> Seen {
        let path = format!("/api/v1/namespaces/{ns}/secrets/{name}");
        match found {
            Some(secret) => {
                let value = serde_json::to_value(secret).expect("secret JSON");
                self.expect(Method::GET, &path, StatusCode::OK, |_| value)
                    .await
            }
            None => {
                self.expect(Method::GET, &path, StatusCode::NOT_FOUND, |_| {
                    not_found("secrets", name)
                })
                .await
            }
        }
    }

    /// A server-side apply of the token Secret; answers with the applied object.
    pub(crate) async fn apply_secret(&mut self, name: &str) -> Seen {
        let path = format!("/api/v1/namespaces/{NS}/secrets/{name}");
        let seen = self
            .expect(Method::PATCH, &path, StatusCode::OK, |body| body.clone())
            .await;
        assert_ssa(&seen);
        seen
    }

    /// A deletion of the token Secret `name`.
    pub(crate) async fn delete_secret(&mut self, name: &str) -> Seen {
        self.delete_secret_in(NS, name).await
    }

    /// A deletion of the Secret `ns/name`, answered with success.
    async fn delete_secret_in(&mut self, ns: &str, name: &str) -> Seen {
        let path = format!("/api/v1/namespaces/{ns}/secrets/{name}");
        self.expect(
            Method::DELETE,
            &path,
            StatusCode::OK,
            |_| json!({"apiVersion": "v1", "kind": "Status", "status": "Success", "code": 200}),
        )
        .await
    }

    /// A server-side apply of the status; answers with the server carrying it.
    pub(crate) async fn apply_status(&mut self, server: &AtomicworkMcpServer) -> Seen {
        let name = server.metadata.name.clone().unwrap_or_default();
        let path = format!(
            "/apis/mcp.atomicwork.dev/v1alpha1/namespaces/{NS}/atomicworkmcpservers/{name}/status"
        );
        let mut object = serde_json::to_value(server).expect("server JSON");
        let seen = self
            .expect(Method::PATCH, &path, StatusCode::OK, |body| {
                object["status"] = body["status"].clone();
                object
            })
            .await;
        assert_ssa(&seen);
        seen
    }

    /// Fails when another request is waiting.
    pub(crate) async fn assert_idle(&mut self) {
        let extra = tokio::time::timeout(Duration::from_millis(50), self.0.next_request()).await;
        if let Ok(Some((request, _))) = extra {
            panic!("unexpected call {} {}", request.method(), request.uri());
        }
    }

    /// An Event; answers with it as created.
    pub(crate) async fn event(&mut self) -> Seen {
        let path = format!("/apis/events.k8s.io/v1/namespaces/{NS}/events");
        self.expect(Method::POST, &path, StatusCode::CREATED, |body| {
            body.clone()
        })
        .await
    }
}

/// True when the object carries every `key=value` of the query's label selector.
fn selected(object: &Value, query: &str) -> bool {
    let Some(selector) = query
        .split('&')
        .find_map(|p| p.strip_prefix("labelSelector="))
    else {
        return true;
    };
    let selector = percent_encoding::percent_decode_str(selector).decode_utf8_lossy();
    selector.split(',').all(|term| match term.split_once('=') {
        Some((k, v)) => object["metadata"]["labels"][k] == v,
        None => false,
    })
}

fn assert_ssa(seen: &Seen) {
    assert_eq!(seen.content_type, "application/apply-patch+yaml");
    assert!(
        seen.query.contains("fieldManager=atomicwork-mcp-operator")
            && seen.query.contains("force=true"),
        "server-side apply with the fixed field manager: {}",
        seen.query
    );
}

fn not_found(resource: &str, name: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "message": format!("{resource} \"{name}\" not found"),
        "reason": "NotFound",
        "code": 404
    })
}

/// Waits for the scenario task; fails the test when it does not finish in time (the
/// reconcile made fewer calls than expected).
pub(crate) async fn finish<T>(scenario: tokio::task::JoinHandle<T>) -> T {
    tokio::time::timeout(Duration::from_secs(2), scenario)
        .await
        .expect("the reconcile made fewer API calls than the scenario expects")
        .expect("scenario task")
}

/// An in-memory API server for the watch-driven loops: answers lists from its objects,
/// holds every watch open, and serves Secret reads and writes from a map.
pub(crate) struct FakeCluster {
    pub(crate) servers: std::sync::Mutex<Vec<AtomicworkMcpServer>>,
    /// Open watches of the servers, answered by [`FakeCluster::delete_server`].
    server_watches: std::sync::Mutex<Vec<mock::SendResponse<Response<Body>>>>,
    pub(crate) secrets: std::sync::Mutex<BTreeMap<String, Value>>,
    pub(crate) statuses: std::sync::Mutex<BTreeMap<String, Value>>,
    /// The leader-election Lease, once created.
    pub(crate) lease: std::sync::Mutex<Option<Value>>,
    /// Open watches of the Lease, answered by [`FakeCluster::release_lease`].
    lease_watches: std::sync::Mutex<Vec<mock::SendResponse<Response<Body>>>>,
    /// Deployments by name, for reads.
    pub(crate) deployments: std::sync::Mutex<BTreeMap<String, Value>>,
    /// `METHOD path?query` of every request, in order.
    pub(crate) seen: std::sync::Mutex<Vec<String>>,
}

impl FakeCluster {
    /// A client talking to a new fake cluster holding these objects.
    pub(crate) fn start(
        servers: Vec<AtomicworkMcpServer>,
        secrets: &[K8sSecret],
    ) -> (Client, Arc<FakeCluster>) {
        let cluster = Arc::new(FakeCluster {
            servers: std::sync::Mutex::new(servers),
            server_watches: Default::default(),
            secrets: std::sync::Mutex::new(
                secrets
                    .iter()
                    .map(|s| {
                        let name = s.metadata.name.clone().unwrap_or_default();
                        (name, serde_json::to_value(s).expect("secret JSON"))
                    })
                    .collect(),
            ),
            statuses: Default::default(),
            lease: Default::default(),
            lease_watches: Default::default(),
            deployments: Default::default(),
            seen: Default::default(),
        });
        let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
        let served = cluster.clone();
        tokio::spawn(async move {
            let mut watches = Vec::new();
            while let Some((request, send)) = handle.next_request().await {
                let (parts, body) = request.into_parts();
                let query = parts.uri.query().unwrap_or_default().to_string();
                served.seen.lock().expect("log").push(format!(
                    "{} {}?{query}",
                    parts.method,
                    parts.uri.path()
                ));
                if query.contains("watch=true") {
                    if parts.uri.path().ends_with("/leases") {
                        served.lease_watches.lock().expect("watches").push(send);
                    } else if parts.uri.path().ends_with("/atomicworkmcpservers") {
                        served.server_watches.lock().expect("watches").push(send);
                    } else {
                        watches.push(send);
                    }
                    continue;
                }
                let bytes = body.collect_bytes().await.unwrap_or_default();
                let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
                let (status, reply) = served.answer(&parts.method, parts.uri.path(), &query, body);
                send.send_response(
                    Response::builder()
                        .status(status)
                        .body(Body::from(serde_json::to_vec(&reply).expect("JSON")))
                        .expect("response"),
                );
            }
        });
        (Client::new(service, "default"), cluster)
    }

    fn answer(&self, method: &Method, path: &str, query: &str, body: Value) -> (StatusCode, Value) {
        let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if segments.contains(&"leases") {
            return self.answer_lease(method, &segments, body);
        }
        if let (&Method::GET, [.., "deployments", name]) = (method, segments.as_slice()) {
            return match self.deployments.lock().expect("deployments").get(*name) {
                Some(d) => (StatusCode::OK, d.clone()),
                None => (StatusCode::NOT_FOUND, not_found("deployments", name)),
            };
        }
        let mut secrets = self.secrets.lock().expect("secrets");
        match (method, segments.as_slice()) {
            (&Method::GET, [.., "atomicworkmcpservers"]) => (
                StatusCode::OK,
                json!({"apiVersion": "mcp.atomicwork.dev/v1alpha1", "kind": "AtomicworkMcpServerList",
                    "metadata": {"resourceVersion": "10"}, "items": *self.servers.lock().expect("servers")}),
            ),
            (&Method::GET, [.., "secrets"]) => {
                let ns = match segments.as_slice() {
                    [.., "namespaces", ns, "secrets"] => Some(*ns),
                    _ => None,
                };
                let items: Vec<&Value> = secrets
                    .values()
                    .filter(|s| ns.is_none_or(|ns| s["metadata"]["namespace"] == ns))
                    .filter(|s| selected(s, query))
                    .collect();
                (
                    StatusCode::OK,
                    json!({"apiVersion": "v1", "kind": "SecretList",
                        "metadata": {"resourceVersion": "10"}, "items": items}),
                )
            }
            (&Method::GET, [.., "secrets", name]) => match secrets.get(*name) {
                Some(s) => (StatusCode::OK, s.clone()),
                None => (StatusCode::NOT_FOUND, not_found("secrets", name)),
            },
            (&Method::PATCH, [.., "secrets", name]) => {
                secrets.insert(name.to_string(), body.clone());
                (StatusCode::OK, body)
            }
            (&Method::DELETE, [.., "secrets", name]) => {
                secrets.remove(*name);
                (
                    StatusCode::OK,
                    json!({"apiVersion": "v1", "kind": "Status", "status": "Success"}),
                )
            }
            (&Method::PATCH, [.., "atomicworkmcpservers", name, "status"]) => {
                let servers = self.servers.lock().expect("servers");
                let server = servers
                    .iter()
                    .find(|s| s.metadata.name.as_deref() == Some(*name));
                let mut object = serde_json::to_value(server).expect("server JSON");
                object["status"] = body["status"].clone();
                self.statuses
                    .lock()
                    .expect("statuses")
                    .insert(name.to_string(), body["status"].clone());
                (StatusCode::OK, object)
            }
            (&Method::POST, [.., "events"]) => (StatusCode::CREATED, body),
            _ => (StatusCode::NOT_FOUND, not_found("path", path)),
        }
    }

    /// Create, list, read and patch (apply or merge: `spec` fields replaced, null
    /// removes; `metadata.ownerReferences` added).
    fn answer_lease(&self, method: &Method, segments: &[&str], body: Value) -> (StatusCode, Value) {
        let mut lease = self.lease.lock().expect("lease");
        if let (&Method::GET, [.., "leases"]) = (method, segments) {
            return (
                StatusCode::OK,
                json!({"apiVersion": "coordination.k8s.io/v1", "kind": "LeaseList",
                    "metadata": {"resourceVersion": "10"}, "items": lease.iter().collect::<Vec<_>>()}),
            );
        }
        match (method, segments, lease.as_mut()) {
            (&Method::POST, _, _) => {
                let mut created = body;
                created["metadata"]["resourceVersion"] = json!("1");
                *lease = Some(created.clone());
                (StatusCode::CREATED, created)
            }
            (&Method::GET, _, Some(current)) => (StatusCode::OK, current.clone()),
            (&Method::PATCH, _, Some(current)) => {
                if let Some(owners) = body["metadata"]["ownerReferences"].as_array() {
                    let mut merged = current["metadata"]["ownerReferences"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    merged.extend(owners.iter().cloned());
                    current["metadata"]["ownerReferences"] = Value::Array(merged);
                }
                if let Some(fields) = body["spec"].as_object() {
                    for (k, v) in fields {
                        match v {
                            Value::Null => {
                                if let Some(spec) = current["spec"].as_object_mut() {
                                    spec.remove(k);
                                }
                            }
                            v => current["spec"][k] = v.clone(),
                        }
                    }
                }
                (StatusCode::OK, current.clone())
            }
            _ => (
                StatusCode::NOT_FOUND,
                not_found("leases", segments.last().unwrap_or(&"")),
            ),
        }
    }

    /// What a leader stepping down does: clears the holder of the Lease; every open
    /// watch of the Lease gets the change.
    pub(crate) fn release_lease(&self) {
        let released = {
            let mut lease = self.lease.lock().expect("lease");
            let Some(current) = lease.as_mut() else {
                panic!("no lease to release")
            };
            if let Some(spec) = current["spec"].as_object_mut() {
                for field in [
                    "holderIdentity",
                    "acquireTime",
                    "renewTime",
                    "leaseDurationSeconds",
                ] {
                    spec.remove(field);
                }
            }
            current["metadata"]["resourceVersion"] = json!("2");
            current.clone()
        };
        let event = json!({"type": "MODIFIED", "object": released});
        let mut line = serde_json::to_vec(&event).expect("JSON");
        line.push(b'\n');
        for send in self.lease_watches.lock().expect("watches").drain(..) {
            send.send_response(
                Response::builder()
                    .status(StatusCode::OK)
                    .body(Body::from(line.clone()))
                    .expect("response"),
            );
        }
    }

    /// Deletes the server `name`: later lists leave it out, and every open watch of the
    /// servers gets the deletion.
    pub fn delete_server(&self, name: &str) {
        let deleted = {
            let mut servers = self.servers.lock().expect("servers");
            let index = servers
                .iter()
                .position(|s| s.metadata.name.as_deref() == Some(name))
                .unwrap_or_else(|| panic!("no server {name} to delete"));
            servers.remove(index)
        };
        let mut object = serde_json::to_value(&deleted).expect("server JSON");
        object["metadata"]["resourceVersion"] = json!("11");
        let event = json!({"type": "DELETED", "object": object});
        let mut line = serde_json::to_vec(&event).expect("JSON");
        line.push(b'\n');
        for send in self.server_watches.lock().expect("watches").drain(..) {
            send.send_response(
                Response::builder()
                    .status(StatusCode::OK)
                    .body(Body::from(line.clone()))
                    .expect("response"),
            );
        }
    }

    /// How many watches of the servers are open.
    pub fn server_watch_count(&self) -> usize {
        self.server_watches.lock().expect("watches").len()
    }

    /// True once something watches the Lease.
    pub(crate) fn lease_watched(&self) -> bool {
        !self.lease_watches.lock().expect("watches").is_empty()
    }
}
