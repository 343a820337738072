//! Reconcile scenarios against a mocked API server (every request checked, in order), the
//! pure decision function, and the data plane feed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::runtime::controller::Action;
use serde_json::Value;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::fixtures::*;
use super::reconcile::{self, Desired, Observed, RecordPlan, TokenPlan};
use super::{Context, Error, backoff, error_policy, reconcile as run_reconcile};
use crate::k8s::crd::AtomicworkMcpServer;
use crate::k8s::resolve::SecretData;

// ---------------------------------------------------------------------------------------
// helpers

/// Runs one reconcile against the mocked API server driven by `scenario`; fails when the
/// reconcile makes an unexpected call, too few calls, or hangs.
async fn reconcile_with<T: Send + 'static>(
    server: &AtomicworkMcpServer,
    ctx: Arc<Context>,
    scenario: impl Future<Output = T> + Send + 'static,
) -> (Result<Action, Error>, T) {
    let scenario = tokio::spawn(scenario);
    let result = tokio::time::timeout(
        Duration::from_secs(2),
        run_reconcile(Arc::new(server.clone()), ctx),
    )
    .await
    .expect("the reconcile waited for an answer to a call the scenario does not expect");
    (result, finish(scenario).await)
}

fn secrets_with(list: &[K8sSecret]) -> std::collections::BTreeMap<(String, String), SecretData> {
    list.iter()
        .map(|s| {
            (
                (NS.to_string(), s.metadata.name.clone().unwrap_or_default()),
                crate::k8s::resolve::secret_data(s),
            )
        })
        .collect()
}

fn fixed_mint() -> Result<crate::core::secret::Secret, getrandom::Error> {
    Ok(crate::core::secret::Secret::new(
        "NEWTOKENNEWTOKENNEWTOKENNEWTOKENNEWTOKEN123",
    ))
}

/// The pure reconcile at `now`.
fn decide(
    server: &AtomicworkMcpServer,
    referenced: &[K8sSecret],
    token: Option<&K8sSecret>,
) -> Desired {
    decide_with(server, referenced, token, &settings())
}

fn decide_with(
    server: &AtomicworkMcpServer,
    referenced: &[K8sSecret],
    token: Option<&K8sSecret>,
    settings: &reconcile::Settings,
) -> Desired {
    decide_all(server, referenced, token, None, settings)
}

/// The pure reconcile at `now`, with the stored runtime record.
fn decide_all(
    server: &AtomicworkMcpServer,
    referenced: &[K8sSecret],
    token: Option<&K8sSecret>,
    record: Option<&K8sSecret>,
    settings: &reconcile::Settings,
) -> Desired {
    let secrets = secrets_with(referenced);
    let observed = Observed {
        server,
        secrets: &secrets,
        token_secret: token,
        runtime_record: record,
        issuer: None,
    };
    reconcile::desired(
        &observed,
        &catalog(),
        settings,
        Timestamp::now(),
        &fixed_mint,
    )
    .expect("desired state")
}

/// The runtime record a reconcile of `server` keeping `token` writes, as stored.
fn stored_record(server: &AtomicworkMcpServer, token: &K8sSecret) -> K8sSecret {
    match decide(server, &[api_secret()], Some(token)).runtime {
        RecordPlan::Apply(secret) => *secret,
        other => panic!("a served server has a runtime record: {other:?}"),
    }
}

/// The runtime record in an applied Secret body.
fn record_in(body: &Value) -> crate::core::runtime_record::RuntimeRecord {
    let secret: K8sSecret = serde_json::from_value(body.clone()).expect("a Secret");
    crate::k8s::runtime_record::record_of(&secret).expect("a readable record")
}

/// The server as it looks after a reconcile that kept `token`: status written.
fn settled(server: AtomicworkMcpServer, token: &K8sSecret) -> AtomicworkMcpServer {
    let d = decide(&server, &[api_secret()], Some(token));
    server.with_status_of(&d.status)
}

fn condition<'a>(status: &'a Value, type_: &str) -> &'a Value {
    status["status"]["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == type_))
        .unwrap_or_else(|| panic!("condition {type_} in {status}"))
}

fn decoded(secret_body: &Value, key: &str) -> String {
    let b64 = secret_body["data"][key].as_str().expect("data key");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64");
    String::from_utf8(bytes).expect("utf-8")
}

/// No Event note may carry a token or the API key.
fn assert_no_secrets_in(events: &[super::fixtures::Seen], secrets: &[&str]) {
    for e in events {
        let text = e.body.to_string();
        for s in secrets.iter().chain([&API_KEY]) {
            assert!(
                !text.contains(s),
                "a secret value leaked into an Event: {text}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// scenarios against the mocked API server

#[tokio::test]
async fn first_reconcile_mints_a_token_secret_and_writes_status() {
    let (ctx, mut api) = context();
    let server = server("change-ops");
    let s = server.clone();
    let (result, (secret, record, status, events)) =
        reconcile_with(&server, ctx.clone(), async move {
            api.get_secret(API_SECRET, Some(&api_secret())).await;
            api.get_secret("change-ops-mcp-token", None).await;
            api.get_record("change-ops", None).await;
            let secret = api.apply_secret("change-ops-mcp-token").await;
            let record = api.apply_record("change-ops").await;
            let status = api.apply_status(&s).await;
            let events = vec![api.event().await, api.event().await];
            (secret, record, status, events)
        })
        .await;
    assert!(result.is_ok(), "{result:?}");

    let token = decoded(&secret.body, "token");
    assert!(token.len() >= 43, "at least 256 bits, base64url");
    assert_eq!(
        decoded(&secret.body, "url"),
        format!("{PUBLIC_URL}/mcp/{token}")
    );
    let meta = &secret.body["metadata"];
    assert_eq!(
        meta["labels"]["app.kubernetes.io/managed-by"],
        "atomicwork-mcp-operator"
    );
    assert_eq!(
        meta["labels"]["app.kubernetes.io/part-of"],
        "atomicwork-mcp"
    );
    assert_eq!(meta["labels"]["mcp.atomicwork.dev/server"], "change-ops");
    assert_eq!(meta["ownerReferences"][0]["uid"], "uid-change-ops");
    assert_eq!(meta["ownerReferences"][0]["controller"], true);
    assert_eq!(meta["ownerReferences"][0]["kind"], "AtomicworkMcpServer");

    let st = &status.body["status"];
    assert_eq!(status.body["kind"], "AtomicworkMcpServer");
    assert_eq!(st["url"], format!("{PUBLIC_URL}/mcp/{token}"));
    assert_eq!(st["tokenSecretRef"]["name"], "change-ops-mcp-token");
    assert_eq!(st["observedGeneration"], 1);
    let tools = st["tools"].as_array().expect("tools");
    assert!(!tools.is_empty());
    assert_eq!(st["toolCount"], tools.len());
    assert_eq!(condition(&status.body, "Ready")["status"], "True");
    assert_eq!(condition(&status.body, "Ready")["reason"], "Serving");
    assert_eq!(condition(&status.body, "Ready")["observedGeneration"], 1);
    assert_eq!(condition(&status.body, "Stalled")["status"], "False");
    assert_eq!(
        condition(&status.body, "CredentialsResolved")["status"],
        "True"
    );
    assert_eq!(condition(&status.body, "Expired")["status"], "False");

    let reasons: Vec<_> = events.iter().map(|e| e.body["reason"].clone()).collect();
    assert_eq!(reasons, ["TokenMinted", "Serving"]);
    assert_eq!(
        events[0].body["reportingController"],
        "atomicwork-mcp-operator"
    );
    assert_no_secrets_in(&events, &[&token]);

    // The runtime record: in the operator's namespace, labelled for the data plane,
    // naming its server, holding what the data plane serves and only the token's digest.
    let meta = &record.body["metadata"];
    assert_eq!(meta["namespace"], RUNTIME_NS);
    assert_eq!(meta["labels"]["mcp.atomicwork.dev/runtime-record"], "v1");
    assert_eq!(
        meta["labels"]["app.kubernetes.io/managed-by"],
        "atomicwork-mcp-operator"
    );
    assert_eq!(
        meta["annotations"]["mcp.atomicwork.dev/server-namespace"],
        NS
    );
    assert_eq!(
        meta["annotations"]["mcp.atomicwork.dev/server-name"],
        "change-ops"
    );
    assert!(
        meta.get("ownerReferences").is_none(),
        "no owner across namespaces"
    );
    let served = record_in(&record.body);
    assert_eq!(
        served.token_digest,
        crate::core::secret::TokenHash::of(&token)
    );
    assert_eq!(served.api_key.expose(), API_KEY);
    assert_eq!(served.base_url, "https://acme.atomicwork.com");
    assert_eq!(served.generation, Some(1));
    assert_eq!(Value::from(served.tools.clone()), st["tools"]);
    assert!(!served.suspended && served.expires_at.is_none());
    let raw = String::from_utf8(served.to_json()).expect("UTF-8");
    assert!(
        !raw.contains(&token),
        "the record never holds the URL token"
    );
}

#[tokio::test]
async fn a_second_reconcile_writes_nothing() {
    let server = server("change-ops");
    let token = token_secret(&server, OLD_TOKEN, None);
    let server = settled(server, &token);
    let (ctx, mut api) = context();
    let record = stored_record(&server, &token);
    let (result, mut api) = reconcile_with(&server, ctx, async move {
        api.get_secret(API_SECRET, Some(&api_secret())).await;
        api.get_secret("change-ops-mcp-token", Some(&token)).await;
        api.get_record("change-ops", Some(&record)).await;
        api
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    api.assert_idle().await;
}

#[tokio::test]
async fn a_missing_api_key_secret_is_reported_and_no_token_is_minted() {
    let (ctx, mut api) = context();
    let server = server("change-ops");
    let s = server.clone();
    let (result, (status, event)) = reconcile_with(&server, ctx, async move {
        api.get_secret(API_SECRET, None).await;
        api.get_secret("change-ops-mcp-token", None).await;
        api.get_record("change-ops", None).await;
        (api.apply_status(&s).await, api.event().await)
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    let ready = condition(&status.body, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "SecretNotFound");
    assert_eq!(
        condition(&status.body, "Reconciling")["status"],
        "True",
        "kstatus waits for the Secret"
    );
    assert_eq!(condition(&status.body, "Stalled")["status"], "False");
    let message = ready["message"].as_str().unwrap_or_default();
    assert!(message.contains(API_SECRET) && message.contains("spec.atomicwork.apiKeySecretRef"));
    assert_eq!(
        condition(&status.body, "CredentialsResolved")["reason"],
        "SecretNotFound"
    );
    assert!(status.body["status"].get("url").is_none());
    assert!(status.body["status"].get("tokenSecretRef").is_none());
    assert_eq!(event.body["type"], "Warning");
    assert_eq!(event.body["reason"], "SecretNotFound");
}

#[tokio::test]
async fn a_missing_key_is_reported() {
    let (ctx, mut api) = context();
    let server = server("change-ops");
    let s = server.clone();
    let wrong = secret(API_SECRET, &[("api-key", API_KEY)]);
    let (result, (status, event)) = reconcile_with(&server, ctx, async move {
        api.get_secret(API_SECRET, Some(&wrong)).await;
        api.get_secret("change-ops-mcp-token", None).await;
        api.get_record("change-ops", None).await;
        (api.apply_status(&s).await, api.event().await)
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    let ready = condition(&status.body, "Ready");
    assert_eq!(ready["reason"], "SecretKeyMissing");
    assert!(
        ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("\"apiKey\"")
    );
    assert_eq!(
        condition(&status.body, "CredentialsResolved")["status"],
        "False"
    );
    assert_no_secrets_in(&[event], &[]);
}

#[tokio::test]
async fn a_filter_matching_no_tool_gets_no_url() {
    let (ctx, mut api) = context();
    let server = server("change-ops").edit(|s| {
        s.spec.tools = Some(crate::k8s::crd::ToolNameFilter {
            allow: vec!["create_a_atomicwork_change_management_change".into()],
            deny: vec![],
        })
    });
    let s = server.clone();
    let (result, (status, _event)) = reconcile_with(&server, ctx, async move {
        api.get_secret(API_SECRET, Some(&api_secret())).await;
        api.get_secret("change-ops-mcp-token", None).await;
        api.get_record("change-ops", None).await;
        (api.apply_status(&s).await, api.event().await)
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(condition(&status.body, "Ready")["reason"], "NoToolsMatched");
    assert_eq!(
        condition(&status.body, "Stalled")["status"],
        "True",
        "kstatus reads this as failed"
    );
    assert_eq!(status.body["status"]["toolCount"], 0);
    assert!(status.body["status"].get("url").is_none());
    assert_eq!(
        condition(&status.body, "CredentialsResolved")["status"],
        "True"
    );
}

/// The token Secret as a reconcile before expiry left it: the token kept under the
/// server's current `expiresAt`.
fn kept_under_expiry(server: &AtomicworkMcpServer, token: &str) -> K8sSecret {
    let mut secret = token_secret(server, token, None);
    if let Some(at) = &server.spec.expires_at {
        secret
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(
                crate::k8s::token_secret::TOKEN_EXPIRES_ANNOTATION.into(),
                at.clone(),
            );
    }
    secret
}

#[tokio::test]
async fn at_expiry_the_token_secret_is_kept_and_the_status_says_expired() {
    let server = server("change-ops").expires_in(-5);
    let token = kept_under_expiry(&server, OLD_TOKEN);
    let previous = settled(server.clone().expires_in(600), &token);
    let before = stored_record(&previous, &token);
    let server = server.with_status_of(previous.status.as_ref().expect("status"));
    let (ctx, mut api) = context();
    let s = server.clone();
    let t = token.clone();
    let (result, (record, status, events)) = reconcile_with(&server, ctx, async move {
        api.get_secret(API_SECRET, Some(&api_secret())).await;
        api.get_secret("change-ops-mcp-token", Some(&t)).await;
        api.get_record("change-ops", Some(&before)).await;
        // No write to the token Secret: its URL keeps answering 403 "expired". Its
        // runtime record becomes an expiry-only one: no tools, no API key.
        let record = api.apply_record("change-ops").await;
        let status = api.apply_status(&s).await;
        let events = vec![api.event().await];
        api.assert_idle().await;
        (record, status, events)
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    let served = record_in(&record.body);
    assert_eq!(
        served.token_digest,
        crate::core::secret::TokenHash::of(OLD_TOKEN)
    );
    assert_eq!(
        served.expires_at.map(|t| t.to_string()),
        server.spec.expires_at
    );
    assert!(served.tools.is_empty() && served.api_key.expose().is_empty());
    assert_eq!(condition(&status.body, "Expired")["status"], "True");
    assert_eq!(condition(&status.body, "Ready")["reason"], "Expired");
    assert!(status.body["status"].get("url").is_none());
    assert_eq!(
        status.body["status"]["tokenSecretRef"]["name"],
        "change-ops-mcp-token"
    );
    let reasons: Vec<_> = events.iter().map(|e| e.body["reason"].clone()).collect();
    assert_eq!(reasons, ["Expired"]);
    assert_no_secrets_in(&events, &[OLD_TOKEN]);
}

#[tokio::test]
async fn a_new_rotate_annotation_value_mints_a_new_token() {
    let server = server("change-ops").rotated("1");
    let token = token_secret(&server, OLD_TOKEN, Some("1"));
    let server = settled(server, &token);
    let before = stored_record(&server, &token);
    let server = server.rotated("2");
    let (ctx, mut api) = context();
    let s = server.clone();
    let (result, (secret, record, status, events)) = reconcile_with(&server, ctx, async move {
        api.get_secret(API_SECRET, Some(&api_secret())).await;
        api.get_secret("change-ops-mcp-token", Some(&token)).await;
        api.get_record("change-ops", Some(&before)).await;
        let secret = api.apply_secret("change-ops-mcp-token").await;
        let record = api.apply_record("change-ops").await;
        let status = api.apply_status(&s).await;
        (secret, record, status, vec![api.event().await])
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    let new_token = decoded(&secret.body, "token");
    assert_ne!(new_token, OLD_TOKEN);
    assert_eq!(
        record_in(&record.body).token_digest,
        crate::core::secret::TokenHash::of(&new_token),
        "the data plane serves the new token only"
    );
    assert_eq!(
        secret.body["metadata"]["annotations"]["mcp.atomicwork.dev/rotate-token"],
        "2"
    );
    assert_eq!(
        status.body["status"]["url"],
        format!("{PUBLIC_URL}/mcp/{new_token}")
    );
    assert_eq!(events[0].body["reason"], "TokenRotated");
    assert_no_secrets_in(&events, &[OLD_TOKEN, &new_token]);
}

#[tokio::test]
async fn suspend_keeps_the_token_and_reports_suspended() {
    let server = server("change-ops");
    let token = token_secret(&server, OLD_TOKEN, None);
    let server = settled(server, &token);
    let before = stored_record(&server, &token);
    let server = server.suspended();
    let (ctx, mut api) = context();
    let s = server.clone();
    let (result, (record, status, event)) = reconcile_with(&server, ctx, async move {
        api.get_secret(API_SECRET, Some(&api_secret())).await;
        api.get_secret("change-ops-mcp-token", Some(&token)).await;
        api.get_record("change-ops", Some(&before)).await;
        let record = api.apply_record("change-ops").await;
        (record, api.apply_status(&s).await, api.event().await)
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    assert!(
        record_in(&record.body).suspended,
        "the data plane answers 403"
    );
    let ready = condition(&status.body, "Ready");
    assert_eq!(ready["status"], "False");
    assert_eq!(ready["reason"], "Suspended");
    assert_eq!(
        status.body["status"]["tokenSecretRef"]["name"],
        "change-ops-mcp-token"
    );
    assert_eq!(event.body["reason"], "Suspended");
    assert_eq!(event.body["type"], "Normal");
}

#[tokio::test]
async fn client_token_auth_reads_the_client_token_secret() {
    let (ctx, mut api) = context();
    let server = server("change-ops").client_tokens();
    let s = server.clone();
    let clients = secret(CLIENT_SECRET, &[("claude-code", "bearer-one")]);
    let (result, status) = reconcile_with(&server, ctx, async move {
        api.get_secret(API_SECRET, Some(&api_secret())).await;
        api.get_secret(CLIENT_SECRET, Some(&clients)).await;
        api.get_secret("change-ops-mcp-token", None).await;
        api.get_record("change-ops", None).await;
        api.apply_secret("change-ops-mcp-token").await;
        let record = api.apply_record("change-ops").await;
        let status = api.apply_status(&s).await;
        let events = vec![api.event().await, api.event().await];
        assert_no_secrets_in(&events, &["bearer-one"]);
        (status, record)
    })
    .await;
    let (status, record) = status;
    assert!(result.is_ok(), "{result:?}");
    assert_eq!(condition(&status.body, "Ready")["status"], "True");
    let served = record_in(&record.body);
    assert_eq!(
        served.client_token_digests,
        Some(vec![crate::core::secret::TokenHash::of("bearer-one")])
    );
    assert!(!record.body.to_string().contains("bearer-one"));
}

#[tokio::test]
async fn a_missing_client_token_secret_is_reported() {
    let (ctx, mut api) = context();
    let server = server("change-ops").client_tokens();
    let s = server.clone();
    let (result, status) = reconcile_with(&server, ctx, async move {
        api.get_secret(API_SECRET, Some(&api_secret())).await;
        api.get_secret(CLIENT_SECRET, None).await;
        api.get_secret("change-ops-mcp-token", None).await;
        api.get_record("change-ops", None).await;
        let status = api.apply_status(&s).await;
        api.event().await;
        status
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    let ready = condition(&status.body, "Ready");
    assert_eq!(ready["reason"], "SecretNotFound");
    assert!(
        ready["message"]
            .as_str()
            .unwrap_or_default()
            .contains("spec.apiTokenSecretRef")
    );
}

#[tokio::test]
async fn an_api_failure_fails_the_reconcile_and_backs_off() {
    let (ctx, mut api) = context();
    let server = server("change-ops");
    let (result, ()) = reconcile_with(&server, ctx.clone(), async move {
        let path = format!("/api/v1/namespaces/{NS}/secrets/{API_SECRET}");
        api.expect(
            http::Method::GET,
            &path,
            http::StatusCode::INTERNAL_SERVER_ERROR,
            |_| {
                serde_json::json!({"apiVersion": "v1", "kind": "Status", "status": "Failure",
                "message": "etcd unavailable", "reason": "InternalError", "code": 500})
            },
        )
        .await;
    })
    .await;
    let error = result.expect_err("the read failed");
    assert_eq!(error.metric_label(), "get_secret");
    let server = Arc::new(server);
    assert_eq!(
        error_policy(server.clone(), &error, ctx.clone()),
        Action::requeue(Duration::from_secs(2))
    );
    assert_eq!(
        error_policy(server.clone(), &error, ctx.clone()),
        Action::requeue(Duration::from_secs(4))
    );
    ctx.reset_failures(&super::key(&server));
    assert_eq!(
        error_policy(server, &error, ctx.clone()),
        Action::requeue(Duration::from_secs(2))
    );
    let metrics = ctx.metrics.encode();
    assert!(
        metrics.contains("reconcile_failures_total{error=\"get_secret\"} 1"),
        "{metrics}"
    );
}

#[test]
fn backoff_doubles_up_to_five_minutes() {
    let delays: Vec<u64> = (1..=10).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(delays, [2, 4, 8, 16, 32, 64, 128, 256, 300, 300]);
}

// ---------------------------------------------------------------------------------------
// the pure decision

#[test]
fn the_desired_state_is_a_fixed_point() {
    let server = server("change-ops").expires_in(3600).rotated("a");
    let first = decide(&server, &[api_secret()], None);
    let TokenPlan::Apply(secret) = &first.token else {
        panic!("first reconcile applies the token Secret")
    };
    let RecordPlan::Apply(record) = &first.runtime else {
        panic!("first reconcile applies the runtime record")
    };
    let server = server.with_status_of(&first.status);
    let second = decide_all(
        &server,
        &[api_secret()],
        Some(secret),
        Some(record),
        &settings(),
    );
    assert_eq!(second.token, TokenPlan::Unchanged);
    assert_eq!(second.runtime, RecordPlan::Unchanged);
    assert!(!second.status_changed);
    assert!(second.events.is_empty());
    assert_eq!(second.status, first.status);
}

#[test]
fn transition_times_change_only_with_the_status() {
    let server = server("change-ops");
    let token = token_secret(&server, OLD_TOKEN, None);
    let old = Timestamp::from_second(1_700_000_000).expect("time");
    let mut status = decide(&server, &[api_secret()], Some(&token)).status;
    for c in &mut status.conditions {
        c.last_transition_time = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(old);
    }
    let server = server.with_status_of(&status).suspended();
    let next = decide(&server, &[api_secret()], Some(&token)).status;
    let time_of = |t: &str| next.condition(t).map(|c| c.last_transition_time.0);
    assert_ne!(time_of("Ready"), Some(old), "Ready went from True to False");
    assert_eq!(time_of("CredentialsResolved"), Some(old));
    assert_eq!(time_of("Expired"), Some(old));
}

#[test]
fn the_requeue_lands_at_expiry() {
    let server = server("change-ops").expires_in(120);
    let d = decide(&server, &[api_secret()], None);
    assert!(d.requeue <= Duration::from_millis(120_100));
    assert!(d.requeue >= Duration::from_secs(118));
    let d = decide(&super::fixtures::server("other"), &[api_secret()], None);
    assert_eq!(d.requeue, reconcile::RESYNC);
}

#[test]
fn moving_expiry_into_the_future_mints_a_new_token() {
    let server = server("change-ops").expires_in(-5);
    let token = kept_under_expiry(&server, OLD_TOKEN);
    let expired = decide(&server, &[api_secret()], Some(&token));
    assert_eq!(expired.token, TokenPlan::Unchanged, "kept at expiry");
    let server = server.with_status_of(&expired.status).expires_in(3600);
    let d = decide(&server, &[api_secret()], Some(&token));
    let TokenPlan::Apply(secret) = &d.token else {
        panic!("a new token Secret: {:?}", d.token)
    };
    let record = crate::k8s::token_secret::record_of(secret).expect("a token");
    assert_ne!(record.token.expose(), OLD_TOKEN);
    assert_eq!(
        record.expires_at.map(|t| t.to_string()),
        server.spec.expires_at
    );
    assert!(d.events.iter().any(|e| e.reason == "TokenMinted"));
    assert!(d.status.url.is_some());
}

#[test]
fn moving_expiry_before_it_passes_keeps_the_token() {
    let server = server("change-ops").expires_in(600);
    let token = kept_under_expiry(&server, OLD_TOKEN);
    let server = settled(server, &token).expires_in(7200);
    let d = decide(&server, &[api_secret()], Some(&token));
    let TokenPlan::Apply(secret) = &d.token else {
        panic!("the new expiry is noted on the token Secret: {:?}", d.token)
    };
    let record = crate::k8s::token_secret::record_of(secret).expect("a token");
    assert_eq!(record.token.expose(), OLD_TOKEN);
    assert_eq!(
        record.expires_at.map(|t| t.to_string()),
        server.spec.expires_at
    );
    assert!(d.events.iter().all(|e| e.reason != "TokenMinted"));
}

#[test]
fn a_token_secret_without_an_expiry_note_is_kept_and_noted_at_expiry() {
    // A token Secret written before expiries were noted on it.
    let server = server("change-ops").expires_in(-5);
    let token = token_secret(&server, OLD_TOKEN, None);
    let d = decide(&server, &[api_secret()], Some(&token));
    let TokenPlan::Apply(secret) = &d.token else {
        panic!("the expiry is noted: {:?}", d.token)
    };
    let record = crate::k8s::token_secret::record_of(secret).expect("a token");
    assert_eq!(record.token.expose(), OLD_TOKEN);
    assert_eq!(
        record.expires_at.map(|t| t.to_string()),
        server.spec.expires_at
    );
}

#[tokio::test]
async fn rotating_an_expired_server_deletes_its_token_secret() {
    let server = server("change-ops").rotated("1").expires_in(-5);
    let mut token = kept_under_expiry(&server, OLD_TOKEN);
    token
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert(crate::k8s::crd::ROTATE_ANNOTATION.into(), "1".into());
    let before = stored_record(&server, &token);
    let server = server.rotated("2");
    let (ctx, mut api) = context();
    let s = server.clone();
    let (result, events) = reconcile_with(&server, ctx, async move {
        api.get_secret(API_SECRET, Some(&api_secret())).await;
        api.get_secret("change-ops-mcp-token", Some(&token)).await;
        api.get_record("change-ops", Some(&before)).await;
        let deleted = api.delete_secret("change-ops-mcp-token").await;
        assert_eq!(
            deleted.body["preconditions"]["uid"],
            "uid-secret-change-ops-mcp-token"
        );
        // The old URL goes (404) from every data-plane replica.
        api.delete_record("change-ops").await;
        api.apply_status(&s).await;
        let events = vec![api.event().await, api.event().await];
        api.assert_idle().await;
        events
    })
    .await;
    assert!(result.is_ok(), "{result:?}");
    let reasons: Vec<_> = events.iter().map(|e| e.body["reason"].clone()).collect();
    assert_eq!(reasons, ["TokenRevoked", "Expired"]);
    assert_no_secrets_in(&events, &[OLD_TOKEN]);
}

#[test]
fn a_changed_api_key_is_projected_and_an_unchanged_one_is_not() {
    let server = server("change-ops");
    let token = token_secret(&server, OLD_TOKEN, None);
    let record = stored_record(&server, &token);
    let same = decide_all(
        &server,
        &[api_secret()],
        Some(&token),
        Some(&record),
        &settings(),
    );
    assert_eq!(same.runtime, RecordPlan::Unchanged);
    let rotated_key = secret(API_SECRET, &[("apiKey", "sk-rotated-key")]);
    let changed = decide_all(
        &server,
        &[rotated_key],
        Some(&token),
        Some(&record),
        &settings(),
    );
    let RecordPlan::Apply(secret) = &changed.runtime else {
        panic!("a new API key is projected: {:?}", changed.runtime)
    };
    let served = crate::k8s::runtime_record::record_of(secret).expect("record");
    assert_eq!(served.api_key.expose(), "sk-rotated-key");
    assert_eq!(changed.token, TokenPlan::Unchanged, "the URL stays");
}

#[test]
fn a_server_that_must_not_be_served_loses_its_record() {
    let server = server("change-ops");
    let token = token_secret(&server, OLD_TOKEN, None);
    let record = stored_record(&server, &token);
    let decide_with_record = |s: &AtomicworkMcpServer, referenced: &[K8sSecret]| {
        decide_all(s, referenced, Some(&token), Some(&record), &settings()).runtime
    };
    let no_tools = server.clone().edit(|s| {
        s.spec.tools = Some(crate::k8s::crd::ToolNameFilter {
            allow: vec!["create_a_atomicwork_change_management_change".into()],
            deny: vec![],
        })
    });
    assert_eq!(
        decide_with_record(&no_tools, &[api_secret()]),
        RecordPlan::Delete
    );
    assert_eq!(
        decide_with_record(&server, &[]),
        RecordPlan::Delete,
        "no API key"
    );
    let deleting = server.clone().edit(|s| {
        s.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            Timestamp::now(),
        ))
    });
    assert_eq!(
        decide_with_record(&deleting, &[api_secret()]),
        RecordPlan::Delete
    );
    // A rotation that waits (nothing servable to mint for) serves nothing meanwhile.
    let pending = no_tools.clone().rotated("2");
    assert_eq!(
        decide_with_record(&pending, &[api_secret()]),
        RecordPlan::Delete
    );
    // Without a record stored, nothing to do.
    assert_eq!(
        decide(&no_tools, &[api_secret()], Some(&token)).runtime,
        RecordPlan::Unchanged
    );
}

#[test]
fn an_expiry_under_a_minute_after_creation_is_invalid() {
    let server = server("change-ops").edit(|s| {
        let created = Timestamp::now();
        s.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            created,
        ));
        s.spec.expires_at = Some((created + jiff::SignedDuration::from_secs(30)).to_string());
    });
    let d = decide(&server, &[api_secret()], None);
    let ready = d.status.condition("Ready").expect("Ready");
    assert_eq!(ready.reason, "InvalidSpec");
    assert_eq!(d.token, TokenPlan::Unchanged);
}

#[test]
fn a_redacted_status_keeps_the_url_in_the_secret_only() {
    let mut redacted = settings();
    redacted.redact_status_url = true;
    let d = decide_with(&server("change-ops"), &[api_secret()], None, &redacted);
    assert_eq!(d.status.url, None);
    let TokenPlan::Apply(secret) = d.token else {
        panic!("token Secret applied")
    };
    let url = secret
        .data
        .as_ref()
        .and_then(|d| d.get("url"))
        .expect("url key");
    assert!(String::from_utf8_lossy(&url.0).starts_with(PUBLIC_URL));
    let ready = d.status.condition("Ready").expect("Ready");
    assert!(ready.message.contains("key url"));
}

#[test]
fn a_foreign_secret_of_the_token_name_is_never_touched() {
    let server = server("change-ops");
    let foreign = secret("change-ops-mcp-token", &[("token", "someone-elses")]);
    let d = decide(&server, &[api_secret()], Some(&foreign));
    assert_eq!(d.token, TokenPlan::Unchanged);
    let ready = d.status.condition("Ready").expect("Ready");
    assert_eq!(ready.reason, "TokenSecretConflict");
    assert_eq!(d.status.url, None);
}

#[test]
fn a_token_secret_left_by_an_earlier_resource_is_replaced() {
    let server = server("change-ops");
    let mut stale = token_secret(&server, OLD_TOKEN, None);
    if let Some(owners) = stale.metadata.owner_references.as_mut() {
        owners[0].uid = "uid-of-a-deleted-resource".into();
    }
    let d = decide(&server, &[api_secret()], Some(&stale));
    let TokenPlan::Apply(secret) = d.token else {
        panic!("a fresh token Secret")
    };
    let token = secret
        .data
        .as_ref()
        .and_then(|d| d.get("token"))
        .expect("token");
    assert_ne!(token.0, OLD_TOKEN.as_bytes());
}

#[test]
fn a_broken_server_keeps_its_token_through_expiry() {
    let server = server("change-ops").expires_in(600);
    let token = kept_under_expiry(&server, OLD_TOKEN);
    let d = decide(&server, &[], Some(&token));
    assert_eq!(
        d.token,
        TokenPlan::Unchanged,
        "the token survives a missing API key"
    );
    let server = server.expires_in(-5);
    let token = kept_under_expiry(&server, OLD_TOKEN);
    let d = decide(&server, &[], Some(&token));
    assert_eq!(
        d.token,
        TokenPlan::Unchanged,
        "expiry keeps the token so its URL says it expired"
    );
}

// ---------------------------------------------------------------------------------------
// what the data plane is handed: the runtime record

mod projection {
    use super::*;
    use crate::core::runtime_record::RuntimeRecord;
    use crate::core::secret::TokenHash;
    use crate::core::server::Refusal;

    /// The record a first look at `server` would write, with nothing stored yet but
    /// `token`.
    fn projected(
        server: &AtomicworkMcpServer,
        referenced: &[K8sSecret],
        token: Option<&K8sSecret>,
    ) -> Option<RuntimeRecord> {
        match decide(server, referenced, token).runtime {
            RecordPlan::Apply(secret) => {
                Some(crate::k8s::runtime_record::record_of(&secret).expect("record"))
            }
            _ => None,
        }
    }

    #[test]
    fn a_served_server_is_projected_under_the_token_it_keeps() {
        let s = server("a");
        let t = token_secret(&s, OLD_TOKEN, None);
        let r = projected(&s, &[api_secret()], Some(&t)).expect("a record");
        assert_eq!(r.token_digest, TokenHash::of(OLD_TOKEN));
        assert_eq!(r.id().to_string(), "it-ops/a");
    }

    #[test]
    fn a_token_secret_not_made_for_this_server_is_never_projected() {
        let s = server("a");
        let mut other = token_secret(&s, OLD_TOKEN, None);
        if let Some(o) = other.metadata.owner_references.as_mut() {
            o[0].uid = "uid-of-another".into();
        }
        let r = projected(&s, &[api_secret()], Some(&other)).expect("a new token's record");
        assert_ne!(r.token_digest, TokenHash::of(OLD_TOKEN));
    }

    #[test]
    fn an_expired_server_keeps_an_expiry_only_record_to_answer_403() {
        let s = server("a").expires_in(-5);
        let t = super::kept_under_expiry(&s, OLD_TOKEN);
        // Whatever else is wrong with it (here: its API key Secret is gone).
        let r = projected(&s, &[], Some(&t)).expect("an expiry-only record");
        assert_eq!(r.token_digest, TokenHash::of(OLD_TOKEN));
        assert!(r.tools.is_empty() && r.api_key.expose().is_empty());
        assert_eq!(r.expires_at.map(|t| t.to_string()), s.spec.expires_at);
        let (_, view, _) = r.to_entry(&catalog());
        assert_eq!(view.admit(Timestamp::now(), None), Err(Refusal::Expired));
    }

    #[test]
    fn a_token_past_its_noted_expiry_is_never_served_again() {
        // expiresAt moved into the future, but nothing can be served to mint a new
        // token for: the old one still only answers 403.
        let expired = server("a").expires_in(-5);
        let t = super::kept_under_expiry(&expired, OLD_TOKEN);
        let extended = expired.clone().expires_in(3600);
        let r = projected(&extended, &[], Some(&t)).expect("an expiry-only record");
        assert_eq!(r.token_digest, TokenHash::of(OLD_TOKEN));
        assert_eq!(r.expires_at.map(|t| t.to_string()), expired.spec.expires_at);
        assert!(r.tools.is_empty());
    }

    #[test]
    fn secret_events_map_to_the_servers_concerned() {
        use kube::runtime::reflector;
        use kube::runtime::watcher;
        let (reader, mut writer) = reflector::store();
        let a = server("a");
        let b = server("b").client_tokens();
        let c = server("c").edit(|s| s.spec.atomicwork.api_key_secret_ref.name = "other".into());
        for s in [&a, &b, &c] {
            writer.apply_watcher_event(&watcher::Event::Apply(s.clone()));
        }
        let names = |secret: &K8sSecret| {
            let mut n: Vec<String> = crate::controller::servers_for_secret(&reader, secret)
                .into_iter()
                .map(|r| r.name)
                .collect();
            n.sort();
            n
        };
        assert_eq!(names(&api_secret()), ["a", "b"]);
        assert_eq!(names(&secret(CLIENT_SECRET, &[])), ["b"]);
        assert_eq!(names(&token_secret(&c, OLD_TOKEN, None)), ["c"]);
        assert!(names(&secret("unrelated", &[])).is_empty());
    }
}

// ---------------------------------------------------------------------------------------
// the watch-driven loops, against an in-memory API server

async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits until the cluster holds a status written for the server `name`.
async fn status_written(what: &str, cluster: &FakeCluster, name: &str) {
    eventually(what, || {
        cluster
            .statuses
            .lock()
            .expect("statuses")
            .contains_key(name)
    })
    .await;
}

/// Runs the controllers on `client` for the test namespace until the returned token is
/// cancelled.
fn run_controllers(client: kube::Client) -> (CancellationToken, JoinHandle<()>) {
    let ctx = context_on(client, settings());
    let stop = CancellationToken::new();
    let task = {
        let stop = stop.clone();
        tokio::spawn(async move { super::run(ctx, &scope(), stop).await })
    };
    (stop, task)
}

/// Cancels `stop` and waits up to `within` for `task` to end; fails when it does not
/// stop or panicked.
async fn stop_and_join<T>(
    stop: &CancellationToken,
    task: JoinHandle<T>,
    within: Duration,
    what: &str,
) -> T {
    stop.cancel();
    tokio::time::timeout(within, task)
        .await
        .unwrap_or_else(|_| panic!("{what} stops on cancel"))
        .unwrap_or_else(|e| panic!("{what} task: {e}"))
}

/// A real cluster deletes a server first and its token Secret after (garbage
/// collection); the Secret's event then names a server the controller no longer has.
/// That is routine and logged at debug, never as a warning on every deletion.
#[tokio::test]
async fn a_token_secret_outliving_its_server_is_no_warning() {
    let (captured, _guard) = crate::test_support::Captured::install(tracing::Level::DEBUG);

    let deleted = server("deleted");
    let (client, _cluster) = FakeCluster::start(
        vec![server("change-ops")],
        &[api_secret(), token_secret(&deleted, "left-behind", None)],
    );
    let (stop, task) = run_controllers(client);
    eventually("the trigger for the deleted server", || {
        captured
            .text()
            .contains("deleted.it-ops that was not found")
    })
    .await;
    stop_and_join(&stop, task, Duration::from_secs(10), "the controller loop").await;
    let logs = captured.text();
    let warnings: Vec<&str> = logs.lines().filter(|l| l.contains(" WARN ")).collect();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

#[tokio::test]
async fn the_controller_loop_reconciles_what_it_watches() {
    let (client, cluster) = FakeCluster::start(vec![server("change-ops")], &[api_secret()]);
    let (stop, task) = run_controllers(client);
    status_written("the status write", &cluster, "change-ops").await;
    let status = cluster.statuses.lock().expect("statuses")["change-ops"].clone();
    assert!(
        status["url"]
            .as_str()
            .is_some_and(|u| u.starts_with(PUBLIC_URL))
    );
    assert!(
        cluster
            .secrets
            .lock()
            .expect("secrets")
            .contains_key("change-ops-mcp-token")
    );
    let seen = cluster.seen.lock().expect("log").clone();
    assert!(
        seen.iter()
            .any(|r| r.contains("/namespaces/it-ops/secrets?") && r.contains("fieldSelector=type")),
        "the Secret watch leaves out unrelated Secret types: {seen:?}"
    );
    stop_and_join(&stop, task, Duration::from_secs(5), "the controller loop").await;
}

/// True when the cluster holds a Secret of this name.
fn holds_secret(cluster: &FakeCluster, name: &str) -> bool {
    cluster.secrets.lock().expect("secrets").contains_key(name)
}

#[tokio::test]
async fn a_deleted_server_loses_its_runtime_record_at_once() {
    let (client, cluster) = FakeCluster::start(vec![server("change-ops")], &[api_secret()]);
    let (stop, task) = run_controllers(client);
    let record = record_name("change-ops");
    eventually("the runtime record", || holds_secret(&cluster, &record)).await;
    // The controller's watch and the deletion watch.
    eventually("both watches of the servers", || {
        cluster.server_watch_count() >= 2
    })
    .await;
    cluster.delete_server("change-ops");
    eventually("the record's deletion", || !holds_secret(&cluster, &record)).await;
    let seen = cluster.seen.lock().expect("log").clone();
    assert!(
        seen.iter().any(|r| r.starts_with(&format!(
            "DELETE /api/v1/namespaces/{RUNTIME_NS}/secrets/{record}"
        ))),
        "{seen:#?}"
    );
    stop_and_join(&stop, task, Duration::from_secs(10), "the controller loop").await;
}

#[tokio::test]
async fn records_of_servers_that_are_gone_are_swept_at_start() {
    let kept = server("kept");
    let gone = server("gone");
    let kept_record = stored_record(&kept, &token_secret(&kept, OLD_TOKEN, None));
    let gone_record = stored_record(&gone, &token_secret(&gone, OLD_TOKEN, None));
    let mut unrelated = secret("unrelated", &[("x", "y")]);
    unrelated.metadata.namespace = Some(RUNTIME_NS.into());
    let (client, cluster) = FakeCluster::start(
        vec![kept],
        &[api_secret(), kept_record, gone_record, unrelated],
    );
    let (stop, task) = run_controllers(client);
    eventually("the orphan's removal", || {
        !holds_secret(&cluster, &record_name("gone"))
    })
    .await;
    status_written("the kept server's status", &cluster, "kept").await;
    stop_and_join(&stop, task, Duration::from_secs(10), "the controller loop").await;
    assert!(holds_secret(&cluster, &record_name("kept")));
    assert!(
        holds_secret(&cluster, "unrelated"),
        "only labelled records are swept"
    );
    let seen = cluster.seen.lock().expect("log").clone();
    let deletes: Vec<&String> = seen.iter().filter(|r| r.starts_with("DELETE")).collect();
    assert_eq!(deletes.len(), 1, "{deletes:#?}");
    assert!(
        seen.iter().any(|r| r
            .starts_with(&format!("GET /api/v1/namespaces/{RUNTIME_NS}/secrets?"))
            && r.contains("labelSelector=mcp.atomicwork.dev%2Fruntime-record%3Dv1")),
        "the sweep lists labelled records in the operator's namespace: {seen:#?}"
    );
}

mod leader {
    use super::*;
    use crate::controller::lease::LeaseSettings;
    use crate::runtime::{self, ControllerOptions};

    fn options() -> ControllerOptions {
        ControllerOptions {
            settings: settings(),
            scope: scope(),
            lease: Some(LeaseSettings::new(NS, "atomicwork-mcp-controller")),
        }
    }

    fn lease_held_by(holder: &str) -> Value {
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(Timestamp::now());
        serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "atomicwork-mcp-controller", "namespace": NS, "resourceVersion": "1"},
            "spec": {"holderIdentity": holder, "leaseDurationSeconds": 3600,
                     "acquireTime": now, "renewTime": now},
        })
    }

    fn holder_of(cluster: &FakeCluster) -> Option<String> {
        cluster
            .lease
            .lock()
            .expect("lease")
            .as_ref()
            .and_then(|l| l["spec"]["holderIdentity"].as_str().map(str::to_string))
    }

    /// A leader that steps down clears the Lease's holder; the standby sees that through
    /// its watch and claims the lease at once, not when the old claim would have expired
    /// (an hour here), so a freshly started replacement of the old leader cannot win it
    /// first.
    #[tokio::test]
    async fn a_standby_claims_a_released_lease_at_once() {
        let (client, cluster) = FakeCluster::start(vec![server("change-ops")], &[api_secret()]);
        *cluster.lease.lock().expect("lease") = Some(lease_held_by("another-replica"));
        let opts = options();
        let identity = opts.lease.as_ref().expect("lease").identity.clone();
        let stop = CancellationToken::new();
        let task = tokio::spawn(runtime::controller(
            client,
            catalog(),
            opts,
            None,
            stop.clone(),
        ));
        // Let the standby settle: its lease manager waits for the claim to expire.
        let settle = tokio::time::Instant::now() + Duration::from_secs(2);
        while !cluster.lease_watched() && tokio::time::Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(cluster.statuses.lock().expect("statuses").is_empty());

        cluster.release_lease();
        eventually("the standby claims the released lease", || {
            holder_of(&cluster).as_deref() == Some(identity.as_str())
        })
        .await;
        status_written("a reconcile by the new leader", &cluster, "change-ops").await;
        stop_and_join(&stop, task, Duration::from_secs(10), "the controller")
            .await
            .expect("clean stop");
    }

    fn deployment() -> Value {
        serde_json::json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "atomicwork-mcp-controller", "namespace": NS,
                         "uid": "uid-deployment", "resourceVersion": "3"},
        })
    }

    fn owned_options() -> ControllerOptions {
        let mut opts = options();
        if let Some(lease) = opts.lease.as_mut() {
            lease.owner_deployment = Some("atomicwork-mcp-controller".into());
        }
        opts
    }

    fn lease_owners(cluster: &FakeCluster) -> Value {
        cluster
            .lease
            .lock()
            .expect("lease")
            .as_ref()
            .expect("lease")["metadata"]["ownerReferences"]
            .clone()
    }

    /// The Lease goes with the controller's Deployment (garbage collection), so an
    /// uninstall that deletes the Deployment and the lease RBAC in one pass leaves no
    /// Lease with a stale holder behind.
    #[tokio::test]
    async fn the_lease_is_owned_by_the_controller_deployment() {
        let expected = serde_json::json!([{
            "apiVersion": "apps/v1", "kind": "Deployment",
            "name": "atomicwork-mcp-controller", "uid": "uid-deployment",
        }]);
        for existing in [None, Some(lease_held_by("another-replica"))] {
            let (client, cluster) = FakeCluster::start(vec![server("change-ops")], &[api_secret()]);
            cluster
                .deployments
                .lock()
                .expect("deployments")
                .insert("atomicwork-mcp-controller".into(), deployment());
            let created = existing.is_none();
            *cluster.lease.lock().expect("lease") = existing;
            let stop = CancellationToken::new();
            let task = tokio::spawn(runtime::controller(
                client,
                catalog(),
                owned_options(),
                None,
                stop.clone(),
            ));
            eventually("the owner on the lease", || {
                cluster
                    .lease
                    .lock()
                    .expect("lease")
                    .as_ref()
                    .is_some_and(|l| l["metadata"]["ownerReferences"].is_array())
            })
            .await;
            assert_eq!(lease_owners(&cluster), expected, "created: {created}");
            stop_and_join(&stop, task, Duration::from_secs(10), "the controller")
                .await
                .expect("clean stop");
            let seen = cluster.seen.lock().expect("log").clone();
            assert_eq!(
                seen.iter()
                    .any(|r| r.starts_with("POST") && r.contains("/leases")),
                created,
                "{seen:?}"
            );
        }
    }

    #[tokio::test]
    async fn the_elected_replica_reconciles_and_releases_the_lease_on_stop() {
        let (client, cluster) = FakeCluster::start(vec![server("change-ops")], &[api_secret()]);
        let stop = CancellationToken::new();
        let task = tokio::spawn(runtime::controller(
            client,
            catalog(),
            options(),
            None,
            stop.clone(),
        ));
        status_written("a reconcile by the leader", &cluster, "change-ops").await;
        // One claim, kept: the replica does not churn on its own claim of a free lease.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let holder = cluster
            .lease
            .lock()
            .expect("lease")
            .clone()
            .expect("lease created");
        assert!(holder["spec"]["holderIdentity"].is_string());
        assert_eq!(holder["spec"]["leaseTransitions"], 1, "{holder}");
        stop_and_join(&stop, task, Duration::from_secs(10), "the controller")
            .await
            .expect("clean stop");
        let released = cluster.lease.lock().expect("lease").clone().expect("lease");
        assert!(
            released["spec"].get("holderIdentity").is_none(),
            "released: {released}"
        );
    }

    #[tokio::test]
    async fn a_standby_replica_writes_nothing_while_another_holds_the_lease() {
        let (client, cluster) = FakeCluster::start(vec![server("change-ops")], &[api_secret()]);
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(Timestamp::now());
        *cluster.lease.lock().expect("lease") = Some(serde_json::json!({
            "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
            "metadata": {"name": "atomicwork-mcp-controller", "namespace": NS, "resourceVersion": "1"},
            "spec": {"holderIdentity": "another-replica", "leaseDurationSeconds": 3600,
                     "acquireTime": now, "renewTime": now},
        }));
        let stop = CancellationToken::new();
        let task = tokio::spawn(runtime::controller(
            client,
            catalog(),
            options(),
            None,
            stop.clone(),
        ));
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert!(cluster.statuses.lock().expect("statuses").is_empty());
        assert!(
            !cluster
                .secrets
                .lock()
                .expect("secrets")
                .contains_key("change-ops-mcp-token")
        );
        stop_and_join(&stop, task, Duration::from_secs(10), "the controller")
            .await
            .expect("clean stop");
    }
}

/// With the controller's Deployment known, every runtime record names it as its owner,
/// so an uninstall removes the records and the API keys in them; a record stored
/// without that owner is applied again to gain it, and one that has it is left alone.
#[test]
fn runtime_records_are_owned_by_the_controller_deployment() {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    let owner = OwnerReference {
        api_version: "apps/v1".into(),
        kind: "Deployment".into(),
        name: "atomicwork-mcp-controller".into(),
        uid: "0d9c4f0e-1b7a-4c55-9a55-6a2f2b1f8e11".into(),
        controller: None,
        block_owner_deletion: None,
    };
    let mut owned = settings();
    owned.record_owner = Some(owner.clone());
    let server = server("owned");
    let token = token_secret(&server, OLD_TOKEN, None);
    let unowned = stored_record(&server, &token);
    assert_eq!(unowned.metadata.owner_references, None);
    let applied = match decide_all(
        &server,
        &[api_secret()],
        Some(&token),
        Some(&unowned),
        &owned,
    )
    .runtime
    {
        RecordPlan::Apply(secret) => *secret,
        other => panic!("a record without its owner is applied again: {other:?}"),
    };
    assert_eq!(applied.metadata.owner_references, Some(vec![owner]));
    let mut stored = applied.clone();
    stored.metadata.uid = Some("record-uid".into());
    assert_eq!(
        decide_all(
            &server,
            &[api_secret()],
            Some(&token),
            Some(&stored),
            &owned
        )
        .runtime,
        RecordPlan::Unchanged
    );
}

/// The pure reconcile of `server` with its authorization server checked as `issuer`.
fn decide_with_issuer(
    server: &AtomicworkMcpServer,
    issuer: Option<&crate::core::oauth::IssuerCheck>,
) -> Desired {
    let secrets = secrets_with(&[api_secret()]);
    let observed = Observed {
        server,
        secrets: &secrets,
        token_secret: None,
        runtime_record: None,
        issuer,
    };
    reconcile::desired(
        &observed,
        &catalog(),
        &settings(),
        Timestamp::now(),
        &fixed_mint,
    )
    .expect("desired state")
}

/// A server with `spec.auth.oauth` naming `issuer`.
fn oauth_server(issuer: &str) -> AtomicworkMcpServer {
    let mut s = server("change-ops");
    s.spec.auth = Some(
        serde_json::from_value(serde_json::json!({"oauth": {"issuer": issuer}}))
            .expect("auth block"),
    );
    s
}

#[test]
fn auth_ready_reports_the_authorization_server_and_looks_again_soon_when_it_is_not_usable() {
    use crate::core::oauth::IssuerCheck;
    let server = oauth_server("https://idp.example.com/realms/it");
    let cases = [
        (None, "Unknown", "NotChecked", "has not been checked yet"),
        (
            Some(IssuerCheck::Ready { keys: 2 }),
            "True",
            "IssuerReady",
            "2 usable",
        ),
        (
            Some(IssuerCheck::Unreachable(
                "GET https://idp.example.com/.well-known/openid-configuration: HTTP 503".into(),
            )),
            "False",
            "IssuerUnreachable",
            "HTTP 503",
        ),
        (
            Some(IssuerCheck::BadMetadata(
                "the metadata names issuer \"https://other\"".into(),
            )),
            "False",
            "IssuerMetadataInvalid",
            "https://other",
        ),
        (
            Some(IssuerCheck::NoKeys),
            "False",
            "NoSigningKeys",
            "no usable signing key",
        ),
    ];
    for (check, status, reason, says) in cases {
        let desired = decide_with_issuer(&server, check.as_ref());
        let status_json = serde_json::json!({"status": &desired.status});
        let auth = condition(&status_json, "AuthReady");
        assert_eq!(auth["status"], status, "{reason}: {auth}");
        assert_eq!(auth["reason"], reason, "{auth}");
        let message = auth["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{reason}: {message}");
        assert!(
            message.contains("https://idp.example.com/realms/it"),
            "{message}"
        );
        // Ready does not depend on the issuer: the data plane checks tokens itself.
        assert_eq!(
            condition(&status_json, "Ready")["status"],
            "True",
            "{reason}"
        );
        if status == "True" {
            assert_eq!(desired.requeue, reconcile::RESYNC, "{reason}");
        } else {
            assert!(desired.requeue <= reconcile::AUTH_RECHECK, "{reason}");
        }
        // A problem with the issuer is a Warning Event naming it; a first good check is
        // not an Event of its own.
        let auth_events: Vec<_> = desired
            .events
            .iter()
            .filter(|e| e.action == "CheckIssuer")
            .collect();
        match status {
            "False" => {
                assert_eq!(auth_events.len(), 1, "{reason}");
                assert!(auth_events[0].warning && auth_events[0].reason == reason);
            }
            _ => assert!(auth_events.is_empty(), "{reason}: {auth_events:?}"),
        }
    }
}

#[test]
fn auth_ready_is_absent_without_oauth_and_recovers_with_an_event() {
    use crate::core::oauth::IssuerCheck;
    let plain = decide_with_issuer(&server("change-ops"), None);
    let status_json = serde_json::json!({"status": &plain.status});
    assert!(
        status_json["status"]["conditions"]
            .as_array()
            .is_some_and(|c| c.iter().all(|c| c["type"] != "AuthReady")),
        "{status_json}"
    );
    // Unreachable, then reachable again: the recovery is a Normal Event.
    let server = oauth_server("https://idp.example.com");
    let down = decide_with_issuer(&server, Some(&IssuerCheck::Unreachable("timeout".into())));
    let server = server.with_status_of(&down.status);
    let up = decide_with_issuer(&server, Some(&IssuerCheck::Ready { keys: 1 }));
    let recovered: Vec<_> = up
        .events
        .iter()
        .filter(|e| e.action == "CheckIssuer")
        .collect();
    assert_eq!(recovered.len(), 1, "{:?}", up.events);
    assert!(!recovered[0].warning && recovered[0].reason == "IssuerReady");
    // And the same check again changes nothing.
    let server = server.with_status_of(&up.status);
    let again = decide_with_issuer(&server, Some(&IssuerCheck::Ready { keys: 1 }));
    assert!(again.events.iter().all(|e| e.action != "CheckIssuer"));
}

#[test]
fn an_invalid_spec_leaves_the_issuer_unchecked() {
    let mut server = oauth_server("https://idp.example.com");
    server.spec.require_api_token_auth = true;
    let desired = decide_with_issuer(&server, None);
    let status_json = serde_json::json!({"status": &desired.status});
    let auth = condition(&status_json, "AuthReady");
    assert_eq!(auth["status"], "Unknown", "{auth}");
    assert_eq!(auth["reason"], "InvalidSpec", "{auth}");
}
