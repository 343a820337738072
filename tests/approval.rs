//! A person approves destructive calls (`spec.confirm`), through two real data planes
//! sharing one deployment key: the approval is asked on one replica and the retried call
//! lands on the other. The upstream is a wiremock tenant that counts what reaches it; every
//! refusal asserts that nothing did.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use atomicwork_mcp::core::base_url::BaseUrl;
use atomicwork_mcp::core::secret::Secret;
use atomicwork_mcp::dataplane::DataplaneConfig;
use atomicwork_mcp::k8s::crd::AtomicworkMcpServer;
use atomicwork_mcp::k8s::resolve::{self, ResolveOptions};
use common::{Plane, post, secrets, server_yaml};
use jiff::Timestamp;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOOL: &str = "delete_a_atomicwork_requests_number_by_id";
const TOKEN: &str = "approval-test-token-0123456789abcdefghijklmno";
/// The deployment's approval key both replicas share.
const KEY: &str = "c2hhcmVkLWRlcGxveW1lbnQta2V5LWZvci10ZXN0cy0wMTIzNDU2Nzg5";

/// A tenant that answers the deletion and counts it.
async fn tenant() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/api/v1/requests/ITREQ-12"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&server)
        .await;
    server
}

async fn deletions(server: &MockServer) -> usize {
    server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() == "DELETE")
        .count()
}

/// Two data planes serving the server `spec` (under one URL token), resolved with the
/// same deployment key (`key`, per plane).
async fn planes(spec: &str, upstream: &str, keys: [&str; 2]) -> (Plane, Plane, [String; 2]) {
    let mut urls = Vec::new();
    let mut planes = Vec::new();
    for key in keys {
        let plane = Plane::start(DataplaneConfig::loopback()).await;
        let server: AtomicworkMcpServer =
            serde_saphyr::from_str(&server_yaml("desk", spec)).expect("manifest parses");
        let opts = ResolveOptions {
            base_url_override: Some(BaseUrl::parse(upstream).expect("URL")),
            notice: None,
            public_url: None,
            confirm_key: Some(Secret::new(key)),
        };
        let view = resolve::resolve(&server, &secrets(), &plane.catalog, Timestamp::now(), &opts)
            .view
            .expect("server resolves");
        urls.push(plane.add(TOKEN, view));
        planes.push(plane);
    }
    let b = planes.pop().expect("two");
    let a = planes.pop().expect("two");
    let [u1, u2]: [String; 2] = urls.try_into().expect("two");
    (a, b, [u1, u2])
}

const CONFIRM: &str = "  confirm: {tools: destructive}\n";

/// `_meta` of a 2026-07-28 request, with or without the elicitation capability.
fn meta(elicitation: bool) -> Value {
    let caps = if elicitation {
        json!({"elicitation": {"form": {}}})
    } else {
        json!({})
    };
    json!({
        "io.modelcontextprotocol/protocolVersion": "2026-07-28",
        "io.modelcontextprotocol/clientCapabilities": caps,
        "io.modelcontextprotocol/clientInfo": {"name": "approval-test", "version": "1"}
    })
}

/// A 2026-07-28 `tools/call` of the deletion, with `extra` params merged in.
async fn call(url: &str, args: Value, elicitation: bool, extra: Value) -> Value {
    let mut params = json!({"name": TOOL, "arguments": args, "_meta": meta(elicitation)});
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            p.insert(k.clone(), v.clone());
        }
    }
    let body = json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params});
    let resp = post(
        url,
        &body.to_string(),
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", TOOL),
        ],
    )
    .await;
    assert_eq!(resp.status(), 200);
    resp.json::<Value>().await.expect("JSON")
}

fn ticket() -> Value {
    json!({"id": "ITREQ-12"})
}

/// Asks for approval on `url`; the input request and the sealed state.
async fn ask(url: &str) -> (Value, String) {
    let answer = call(url, ticket(), true, json!({})).await;
    let result = &answer["result"];
    assert_eq!(result["resultType"], "input_required", "{answer}");
    let state = result["requestState"].as_str().expect("state").to_string();
    (result["inputRequests"]["approval"].clone(), state)
}

fn answer(action: &str, approve: Option<bool>) -> Value {
    let mut response = json!({"action": action});
    if let Some(a) = approve {
        response["content"] = json!({"approve": a});
    }
    json!({"approval": response})
}

fn text_of(answer: &Value) -> String {
    answer["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn an_approved_call_runs_once_on_the_other_replica() {
    let tenant = tenant().await;
    let (_a, _b, [first, second]) = planes(CONFIRM, &tenant.uri(), [KEY, KEY]).await;
    let (request, state) = ask(&first).await;
    assert_eq!(deletions(&tenant).await, 0, "asking sends nothing");
    // The person sees what will be sent, and is asked one yes/no question.
    assert_eq!(request["method"], "elicitation/create");
    let message = request["params"]["message"].as_str().expect("message");
    assert!(message.contains("Delete a request"), "{message}");
    assert!(
        message.contains("DELETE /api/v1/requests/ITREQ-12"),
        "{message}"
    );
    assert!(!message.contains(common::API_KEY), "{message}");
    assert_eq!(request["params"]["mode"], "form");
    assert_eq!(
        request["params"]["requestedSchema"]["properties"]["approve"]["type"],
        "boolean"
    );
    assert!(!state.contains(common::API_KEY) && !state.contains(KEY));

    let done = call(
        &second,
        ticket(),
        true,
        json!({"requestState": state, "inputResponses": answer("accept", Some(true))}),
    )
    .await;
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert_ne!(done["result"]["isError"], true, "{done}");
    assert_eq!(deletions(&tenant).await, 1, "exactly one request upstream");
}

#[tokio::test]
async fn declined_cancelled_changed_forged_or_foreign_approvals_send_nothing() {
    let tenant = tenant().await;
    let (_a, _b, [first, second]) = planes(CONFIRM, &tenant.uri(), [KEY, KEY]).await;
    let (_, state) = ask(&first).await;
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        (
            "declined in the form",
            ticket(),
            json!({"requestState": state, "inputResponses": answer("accept", Some(false))}),
            "declined",
        ),
        (
            "declined",
            ticket(),
            json!({"requestState": state, "inputResponses": answer("decline", None)}),
            "declined",
        ),
        (
            "cancelled",
            ticket(),
            json!({"requestState": state, "inputResponses": answer("cancel", None)}),
            "dismissed",
        ),
        (
            "no answer",
            ticket(),
            json!({"requestState": state}),
            "no answer",
        ),
        (
            "changed arguments",
            json!({"id": "ITREQ-13"}),
            json!({"requestState": state, "inputResponses": answer("accept", Some(true))}),
            "arguments differ",
        ),
        (
            "forged",
            ticket(),
            json!({"requestState": format!("{state}x"), "inputResponses": answer("accept", Some(true))}),
            "not issued by this server",
        ),
        (
            "garbage",
            ticket(),
            json!({"requestState": "not-a-state", "inputResponses": answer("accept", Some(true))}),
            "not one this server issued",
        ),
    ];
    for (what, args, extra, says) in cases {
        let done = call(&second, args, true, extra).await;
        assert_eq!(done["result"]["isError"], true, "{what}: {done}");
        let text = text_of(&done);
        assert!(text.contains(says), "{what}: {text}");
        assert!(text.contains("Nothing was sent"), "{what}: {text}");
    }
    assert_eq!(deletions(&tenant).await, 0, "nothing reached the tenant");

    // A state sealed by a deployment with another key does not open here.
    let other = tenant_planes_with_other_key(&tenant).await;
    let (_, foreign) = ask(&other.2[0]).await;
    let done = call(
        &first,
        ticket(),
        true,
        json!({"requestState": foreign, "inputResponses": answer("accept", Some(true))}),
    )
    .await;
    assert_eq!(done["result"]["isError"], true, "{done}");
    assert_eq!(deletions(&tenant).await, 0);
}

async fn tenant_planes_with_other_key(tenant: &MockServer) -> (Plane, Plane, [String; 2]) {
    let other = "b3RoZXItZGVwbG95bWVudC1rZXktZm9yLXRlc3RzLTAxMjM0NTY3ODk";
    planes(CONFIRM, &tenant.uri(), [other, other]).await
}

#[tokio::test]
async fn clients_that_cannot_ask_follow_the_legacy_policy() {
    let tenant = tenant().await;
    // refuse (the default): a 2026-07-28 client without elicitation, and a
    // handshake-era client.
    let (_a, _b, [url, _]) = planes(CONFIRM, &tenant.uri(), [KEY, KEY]).await;
    let done = call(&url, ticket(), false, json!({})).await;
    assert_eq!(done["result"]["isError"], true, "{done}");
    assert!(text_of(&done).contains("cannot ask for it"), "{done}");
    let legacy = json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": TOOL, "arguments": ticket()}});
    let resp = post(&url, &legacy.to_string(), &[]).await;
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(body["result"]["isError"], true, "{body}");
    assert!(
        body["result"].get("resultType").is_none(),
        "no 2026-07-28 fields for an older client: {body}"
    );
    assert_eq!(deletions(&tenant).await, 0);

    // allow: the call runs without approval.
    let allow = "  confirm: {tools: destructive, legacyClients: allow}\n";
    let (_c, _d, [url, _]) = planes(allow, &tenant.uri(), [KEY, KEY]).await;
    let resp = post(&url, &legacy.to_string(), &[]).await;
    let body: Value = resp.json().await.expect("JSON");
    assert_ne!(body["result"]["isError"], true, "{body}");
    assert_eq!(deletions(&tenant).await, 1);
}

#[tokio::test]
async fn reads_and_dry_runs_are_never_held_for_approval() {
    let tenant = tenant().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&tenant)
        .await;
    let writes = "  confirm: {tools: writes}\n";
    let (_a, _b, [url, _]) = planes(writes, &tenant.uri(), [KEY, KEY]).await;
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
        "params": {"name": "list_all_atomicwork_workspaces", "arguments": {}, "_meta": meta(true)}});
    let resp = post(
        &url,
        &body.to_string(),
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "list_all_atomicwork_workspaces"),
        ],
    )
    .await;
    let read: Value = resp.json().await.expect("JSON");
    assert_eq!(read["result"]["resultType"], "complete", "{read}");

    let dry = "  dryRun: true\n  confirm: {tools: destructive}\n";
    let (_c, _d, [url, _]) = planes(dry, &tenant.uri(), [KEY, KEY]).await;
    let done = call(&url, ticket(), true, json!({})).await;
    assert_eq!(done["result"]["resultType"], "complete", "{done}");
    assert!(text_of(&done).contains("Dry run"), "{done}");
    assert_eq!(deletions(&tenant).await, 0);
}
