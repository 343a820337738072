//! The feed: one registry change per watch event, damaged records ignored without loss,
//! and a run against a mocked API server that sees only the records' namespace.

use std::time::Duration;

use http::{Request, Response, StatusCode};
use jiff::Timestamp;
use k8s_openapi::ByteString;
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock;

use super::*;
use crate::core::runtime_record::RuntimeRecord;
use crate::core::secret::{Secret, TokenHash};
use crate::core::server::Refusal;
use crate::k8s::runtime_record::{RECORD_KEY, record_secret};

const OPERATOR_NS: &str = "atomicwork-mcp";
const TOOL: &str = "list_all_atomicwork_audit_logs";

fn catalog() -> Arc<Catalog> {
    Arc::new(Catalog::builtin().expect("built-in catalog"))
}

/// The record of server `name` in `it-ops`, served under `token`.
fn record(name: &str, token: &str) -> RuntimeRecord {
    RuntimeRecord {
        namespace: "it-ops".into(),
        name: name.into(),
        display_name: name.into(),
        generation: Some(1),
        token_digest: TokenHash::of(token),
        base_url: crate::core::base_url::BaseUrl::parse("https://acme.atomicwork.com")
            .expect("a test base URL"),
        api_key: Secret::new("sk-key"),
        workspace_id: None,
        tools: vec![TOOL.into()],
        tool_set: Default::default(),
        tool_overrides: Default::default(),
        exposure: Default::default(),
        expires_at: None,
        suspended: false,
        dry_run: false,
        rate_limit: None,
        retry: None,
        timeout_millis: None,
        max_result_chars: 1000,
        client_token_digests: None,
        oauth: None,
        confirm: None,
    }
}

fn secret_of(record: &RuntimeRecord) -> K8sSecret {
    let mut s = record_secret(record, OPERATOR_NS);
    s.metadata.resource_version = Some("5".into());
    s
}

fn feed() -> (Feed, Arc<Registry>) {
    let registry = Arc::new(Registry::new());
    (Feed::new(registry.clone(), catalog()), registry)
}

/// The name of the server the token reaches, if any.
fn serves(registry: &Registry, token: &str) -> Option<String> {
    registry.lookup(token).map(|v| v.id.name.clone())
}

#[test]
fn each_event_changes_one_server() {
    let (mut feed, registry) = feed();
    feed.apply(watcher::Event::Init);
    feed.apply(watcher::Event::InitApply(secret_of(&record(
        "a", "token-a",
    ))));
    feed.apply(watcher::Event::InitApply(secret_of(&record(
        "b", "token-b",
    ))));
    assert!(
        !registry.is_ready(),
        "not ready before the list is complete"
    );
    feed.apply(watcher::Event::InitDone);
    assert!(registry.is_ready());
    assert_eq!(serves(&registry, "token-a").as_deref(), Some("a"));
    assert_eq!(serves(&registry, "token-b").as_deref(), Some("b"));
    let b_before = registry.lookup("token-b").expect("b");

    // Rotation: a's record now carries another digest; the old URL is unknown at once.
    feed.apply(watcher::Event::Apply(secret_of(&record("a", "token-a2"))));
    assert_eq!(serves(&registry, "token-a"), None);
    assert_eq!(serves(&registry, "token-a2").as_deref(), Some("a"));
    let b_after = registry.lookup("token-b").expect("b");
    assert!(
        Arc::ptr_eq(&b_before, &b_after),
        "b's entry was not rebuilt"
    );

    // Suspension and expiry come from the record and refuse with 403.
    let suspended = RuntimeRecord {
        suspended: true,
        ..record("a", "token-a2")
    };
    feed.apply(watcher::Event::Apply(secret_of(&suspended)));
    let view = registry.lookup("token-a2").expect("still known");
    assert_eq!(view.admit(Timestamp::now(), None), Err(Refusal::Suspended));
    let at = Timestamp::now() - jiff::SignedDuration::from_secs(5);
    let expired = RuntimeRecord {
        expires_at: Some(at),
        tools: Vec::new(),
        api_key: Secret::new(""),
        ..record("a", "token-a2")
    };
    feed.apply(watcher::Event::Apply(secret_of(&expired)));
    let view = registry.lookup("token-a2").expect("still known");
    assert_eq!(view.admit(Timestamp::now(), None), Err(Refusal::Expired));
    assert_eq!(view.expires_at, Some(at));

    // An API-key change reaches the served entry.
    let new_key = RuntimeRecord {
        api_key: Secret::new("sk-new"),
        ..record("b", "token-b")
    };
    feed.apply(watcher::Event::Apply(secret_of(&new_key)));
    let view = registry.lookup("token-b").expect("b");
    assert_eq!(view.target.api_key.expose(), "sk-new");

    // Deletion removes that server alone.
    feed.apply(watcher::Event::Delete(secret_of(&record("a", "token-a2"))));
    assert_eq!(serves(&registry, "token-a2"), None);
    assert_eq!(serves(&registry, "token-b").as_deref(), Some("b"));
    assert_eq!(registry.len(), 1);
}

#[test]
fn a_relist_drops_the_records_it_no_longer_finds() {
    let (mut feed, registry) = feed();
    feed.apply(watcher::Event::Init);
    feed.apply(watcher::Event::InitApply(secret_of(&record(
        "a", "token-a",
    ))));
    feed.apply(watcher::Event::InitApply(secret_of(&record(
        "b", "token-b",
    ))));
    feed.apply(watcher::Event::InitDone);
    // The watch broke while a was deleted; the relist finds only b.
    feed.apply(watcher::Event::Init);
    feed.apply(watcher::Event::InitApply(secret_of(&record(
        "b", "token-b",
    ))));
    assert_eq!(
        serves(&registry, "token-a").as_deref(),
        Some("a"),
        "kept until the relist is complete"
    );
    feed.apply(watcher::Event::InitDone);
    assert_eq!(serves(&registry, "token-a"), None);
    assert_eq!(serves(&registry, "token-b").as_deref(), Some("b"));
}

#[test]
fn a_damaged_record_is_logged_and_costs_no_other_server() {
    let (captured, _guard) = crate::test_support::Captured::install(tracing::Level::WARN);
    let (mut feed, registry) = feed();
    feed.apply(watcher::Event::Init);
    feed.apply(watcher::Event::InitApply(secret_of(&record(
        "a", "token-a",
    ))));
    feed.apply(watcher::Event::InitApply(secret_of(&record(
        "b", "token-b",
    ))));
    let mut broken = secret_of(&record("c", "token-c"));
    if let Some(data) = broken.data.as_mut() {
        data.insert(
            RECORD_KEY.into(),
            ByteString(b"{\"apiKey\": \"sk-key\"".to_vec()),
        );
    }
    feed.apply(watcher::Event::InitApply(broken));
    feed.apply(watcher::Event::InitDone);
    assert!(
        registry.is_ready(),
        "one damaged record does not block readiness"
    );
    assert_eq!(registry.len(), 2);
    assert_eq!(serves(&registry, "token-c"), None);

    // A record that was served and is then damaged is no longer served; the others stay.
    let mut damaged = secret_of(&record("a", "token-a"));
    if let Some(data) = damaged.data.as_mut() {
        data.insert("format".into(), ByteString(b"9".to_vec()));
    }
    feed.apply(watcher::Event::Apply(damaged));
    assert_eq!(serves(&registry, "token-a"), None);
    assert_eq!(serves(&registry, "token-b").as_deref(), Some("b"));

    let logs = captured.text();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("runtime record ignored"))
        .collect();
    assert_eq!(warnings.len(), 2, "{logs}");
    assert!(warnings[0].contains(&record_secret_name_of("c")), "{logs}");
    assert!(
        !logs.contains("sk-key"),
        "no record content in the log: {logs}"
    );
}

fn record_secret_name_of(name: &str) -> String {
    crate::k8s::runtime_record::record_secret_name(&ServerId::new("it-ops", name))
}

/// A mocked API server holding `records`: answers their list, and the first watch with
/// `event`; every later watch is held open. Records every request as `METHOD path?query`.
fn api_server(
    records: Vec<K8sSecret>,
    event: Value,
) -> (Client, Arc<std::sync::Mutex<Vec<String>>>) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        let mut event = Some(event);
        let mut held = Vec::new();
        while let Some((request, send)) = handle.next_request().await {
            let query = request.uri().query().unwrap_or_default().to_string();
            log.lock().expect("log").push(format!(
                "{} {}?{query}",
                request.method(),
                request.uri().path()
            ));
            let body = if !query.contains("watch=true") {
                json!({"apiVersion": "v1", "kind": "SecretList",
                    "metadata": {"resourceVersion": "10"}, "items": records})
            } else if let Some(e) = event.take() {
                e
            } else {
                held.push(send);
                continue;
            };
            let mut line = serde_json::to_vec(&body).expect("JSON");
            line.push(b'\n');
            send.send_response(
                Response::builder()
                    .status(StatusCode::OK)
                    .body(Body::from(line))
                    .expect("response"),
            );
        }
    });
    (Client::new(service, "default"), seen)
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A replica that starts while the controller is down serves the records already there,
/// then follows the watch; it reads only labelled Secrets in its own namespace.
#[tokio::test]
async fn a_new_replica_serves_the_records_already_there_and_follows_the_watch() {
    let a = secret_of(&record("a", "token-a"));
    let b = secret_of(&record("b", "token-b"));
    let mut deleted = serde_json::to_value(&a).expect("JSON");
    deleted["metadata"]["resourceVersion"] = json!("11");
    let (client, seen) = api_server(vec![a, b], json!({"type": "DELETED", "object": deleted}));
    let registry = Arc::new(Registry::new());
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let (registry, stop) = (registry.clone(), stop.clone());
        async move { run(client, OPERATOR_NS, registry, catalog(), stop).await }
    });
    eventually("the first sync", || registry.is_ready()).await;
    eventually("the deletion from the watch", || {
        registry.lookup("token-a").is_none()
    })
    .await;
    assert_eq!(serves(&registry, "token-b").as_deref(), Some("b"));
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the feed stops on cancel")
        .expect("feed task");

    let seen = seen.lock().expect("log").clone();
    assert!(seen.len() >= 2, "{seen:#?}");
    for request in &seen {
        assert!(
            request.starts_with(&format!("GET /api/v1/namespaces/{OPERATOR_NS}/secrets?"))
                && request.contains("labelSelector=mcp.atomicwork.dev%2Fruntime-record%3Dv1"),
            "only the labelled records of its own namespace: {request}"
        );
    }
}
