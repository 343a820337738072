//! OAuth 2.1 servers end to end: the real data plane, a real authorization server
//! (`oidc-provider`, tests/common/oidc.rs) minting the tokens, and a wiremock tenant.
//! Valid tokens come only from the authorization server; invalid ones are derived from
//! them by its helpers, each with exactly one thing wrong.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use atomicwork_mcp::core::base_url::BaseUrl;
use atomicwork_mcp::dataplane::DataplaneConfig;
use atomicwork_mcp::k8s::crd::AtomicworkMcpServer;
use atomicwork_mcp::k8s::resolve::{self, ResolveOptions};
use common::oidc::{DEFAULT_USER, Oidc};
use common::{LIST, Plane, WORKSPACES_CALL, post, secrets, server_yaml};
use jiff::Timestamp;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const READ: &str = "atomicwork.read";
const WRITE: &str = "atomicwork.write";

/// A `tools/call` that creates a request: a write tool.
const WRITE_CALL: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"create_a_atomicwork_request","arguments":{"subject":"Printer on fire"}}}"#;

/// Every log line of this test binary, as JSON, from the first use on.
fn logs() -> &'static Captured {
    static LOGS: OnceLock<Captured> = OnceLock::new();
    LOGS.get_or_init(|| {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "info,atomicwork_mcp=trace",
            ))
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
        captured
    })
}

/// Log output gathered in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// A data plane with the given OAuth refetch floor.
async fn plane(floor: Duration) -> Plane {
    let mut config = DataplaneConfig::default();
    config.oauth.refetch_floor = floor;
    Plane::start(config).await
}

/// Serves `server_yaml(name, spec)` on `plane` under `token`, its connector URL based on
/// the plane's address (as the controller bases it on its public URL), calling `upstream`.
fn serve(plane: &Plane, token: &str, name: &str, spec: &str, upstream: &str) -> String {
    let server: AtomicworkMcpServer =
        serde_saphyr::from_str(&server_yaml(name, spec)).expect("manifest parses");
    let opts = ResolveOptions {
        base_url_override: Some(BaseUrl::parse(upstream).expect("the tenant's URL")),
        notice: None,
        public_url: Some(BaseUrl::parse(&plane.base).expect("the plane's URL")),
        confirm_key: None,
    };
    let view = resolve::resolve(&server, &secrets(), &plane.catalog, Timestamp::now(), &opts)
        .view
        .expect("server resolves");
    plane.add(token, view)
}

/// The spec of an OAuth server trusting `issuer`, exposing the workspace and request
/// tools (read, write and custom), plus `more` lines.
fn oauth_spec(issuer: &str, more: &str) -> String {
    format!("  tags: [workspaces, requests]\n  auth:\n    oauth:\n      issuer: {issuer}\n{more}")
}

/// A tenant answering the workspace listing and request creation, expecting `writes`
/// creations exactly.
async fn tenant(writes: u64) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/api/v1/workspaces"))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [{"id": 1, "name": "IT"}]})),
        )
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/api/v1/requests"))
        .respond_with(ResponseTemplate::new(201).set_body_json(json!({"display_id": "ITREQ-7"})))
        .expect(writes)
        .mount(&server)
        .await;
    server
}

/// POSTs `body` to `url` with `token` as the bearer; status, `WWW-Authenticate` and body.
async fn call(url: &str, token: Option<&str>, body: &str) -> (u16, Option<String>, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth
        .as_deref()
        .map(|a| vec![("authorization", a)])
        .unwrap_or_default();
    let resp = post(url, body, &headers).await;
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().expect("ASCII header").to_string());
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, challenge, value)
}

/// The names of the tools a `tools/list` answer lists.
fn listed(body: &Value) -> Vec<String> {
    body["result"]["tools"]
        .as_array()
        .unwrap_or_else(|| panic!("no tools: {body}"))
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect()
}

/// The metadata URL of a connector URL: the well-known path before its path.
fn metadata_url(plane: &Plane, url: &str) -> String {
    let path = url.strip_prefix(&plane.base).expect("on the plane");
    format!("{}/.well-known/oauth-protected-resource{path}", plane.base)
}

#[tokio::test]
async fn scopes_decide_which_tools_a_token_lists_and_calls() {
    logs();
    let oidc = Oidc::start().await;
    let upstream = tenant(1).await;
    let plane = plane(Duration::from_secs(30)).await;
    let url = serve(
        &plane,
        "scopes-token-0123456789abcdef0123456789ab",
        "scopes",
        &oauth_spec(oidc.issuer(), ""),
        &upstream.uri(),
    );
    let catalog = &plane.catalog;

    // A read-scoped token lists only the read tools, and calls them.
    let read = oidc.client_credentials(&url, &[READ]).await;
    let (status, _, body) = call(&url, Some(&read), LIST).await;
    assert_eq!(status, 200, "{body}");
    let reads = listed(&body);
    assert!(
        reads.contains(&"list_all_atomicwork_workspaces".to_string()),
        "{reads:?}"
    );
    assert!(
        reads
            .iter()
            .all(|n| catalog.get(n).expect("known").is_read()),
        "{reads:?}"
    );
    let (status, _, body) = call(&url, Some(&read), WORKSPACES_CALL).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["isError"], false, "{body}");

    // A write with it: 403 insufficient_scope naming every scope needed, nothing sent.
    let (status, challenge, body) = call(&url, Some(&read), WRITE_CALL).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], -31004, "{body}");
    assert_eq!(body["id"], 2, "{body}");
    assert_eq!(
        challenge.as_deref(),
        Some(
            format!(
                "Bearer error=\"insufficient_scope\", scope=\"{READ} {WRITE}\", resource_metadata=\"{}\"",
                metadata_url(&plane, &url)
            )
            .as_str()
        )
    );

    // A write-only token (a person through the authorization code flow): the write and
    // custom tools, not the reads.
    let write = oidc.authorization_code_pkce(&url, &[WRITE]).await;
    let (status, _, body) = call(&url, Some(&write), LIST).await;
    assert_eq!(status, 200, "{body}");
    let writes = listed(&body);
    assert!(
        writes.contains(&"create_a_atomicwork_request".to_string()),
        "{writes:?}"
    );
    assert!(
        writes
            .iter()
            .all(|n| !catalog.get(n).expect("known").is_read()),
        "{writes:?}"
    );
    let (status, challenge, _) = call(&url, Some(&write), WORKSPACES_CALL).await;
    assert_eq!(status, 403);
    assert!(
        challenge
            .expect("challenge")
            .contains(&format!("scope=\"{READ} {WRITE}\""))
    );
    // Its write reaches the tenant exactly once (the mock expects one).
    let (status, _, body) = call(&url, Some(&write), WRITE_CALL).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["isError"], false, "{body}");

    // Both scopes: every tool of the server.
    let both = oidc.client_credentials(&url, &[READ, WRITE]).await;
    let (_, _, body) = call(&url, Some(&both), LIST).await;
    let mut all = listed(&body);
    let mut expected: Vec<String> = reads.iter().chain(&writes).cloned().collect();
    all.sort();
    expected.sort();
    assert_eq!(all, expected);
    // The method/tag filter still applies first: a tool outside it is unknown, not 403.
    let outside = r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"list_all_atomicwork_assets","arguments":{}}}"#;
    let (status, _, body) = call(&url, Some(&read), outside).await;
    assert_eq!(status, 200);
    assert_eq!(body["error"]["code"], -32602, "{body}");
}

#[tokio::test]
async fn discovery_exposure_keeps_to_the_scopes_too() {
    logs();
    let oidc = Oidc::start().await;
    let upstream = tenant(0).await;
    let plane = plane(Duration::from_secs(30)).await;
    let spec = oauth_spec(oidc.issuer(), "  toolExposure: discovery\n");
    let url = serve(
        &plane,
        "discovery-token-0123456789abcdef01234567",
        "discovery",
        &spec,
        &upstream.uri(),
    );
    let read = oidc.client_credentials(&url, &[READ]).await;
    let meta = |name: &str, args: Value| {
        json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {"name": name, "arguments": args}}).to_string()
    };
    // search_tools finds only what the token may use.
    let (status, _, body) = call(
        &url,
        Some(&read),
        &meta(
            "search_tools",
            json!({"query": "create request", "limit": 50}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let hits = body["result"]["structuredContent"]["tools"]
        .as_array()
        .expect("hits")
        .clone();
    assert!(!hits.is_empty());
    assert!(hits.iter().all(|h| h["readOnly"] == true), "{hits:?}");
    // A write through call_tool, or its schema: 403 insufficient_scope.
    for request in [
        meta(
            "call_tool",
            json!({"tool_name": "create_a_atomicwork_request", "arguments": {"subject": "x"}}),
        ),
        meta(
            "get_tool_schema",
            json!({"tool_names": ["list_all_atomicwork_workspaces", "create_a_atomicwork_request"]}),
        ),
    ] {
        let (status, challenge, body) = call(&url, Some(&read), &request).await;
        assert_eq!(status, 403, "{request}: {body}");
        assert!(
            challenge
                .expect("challenge")
                .starts_with("Bearer error=\"insufficient_scope\"")
        );
    }
    let (status, _, body) = call(
        &url,
        Some(&read),
        &meta(
            "get_tool_schema",
            json!({"tool_names": ["list_all_atomicwork_workspaces"]}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["isError"], false, "{body}");
}

#[tokio::test]
async fn invalid_tokens_are_refused_with_the_challenge() {
    logs();
    let oidc = Oidc::start().await;
    let upstream = tenant(0).await;
    let plane = plane(Duration::from_secs(30)).await;
    let token = "invalid-token-0123456789abcdef0123456789ab";
    let url = serve(
        &plane,
        token,
        "invalid",
        &oauth_spec(oidc.issuer(), ""),
        &upstream.uri(),
    );
    let other = serve(
        &plane,
        "other-server-0123456789abcdef0123456789ab",
        "other",
        &oauth_spec(oidc.issuer(), ""),
        &upstream.uri(),
    );
    let metadata = metadata_url(&plane, &url);
    let challenge = format!("Bearer resource_metadata=\"{metadata}\", scope=\"{READ}\"");

    // No token: the challenge without an error.
    let (status, header, body) = call(&url, None, WRITE_CALL).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(header.as_deref(), Some(challenge.as_str()));

    let valid = oidc.client_credentials(&url, &[READ, WRITE]).await;
    let cases: Vec<(&str, String, &str)> = vec![
        ("expired", oidc.expired(&valid), "has expired"),
        ("not yet valid", oidc.not_yet_valid(&valid), "not valid yet"),
        (
            "another audience",
            oidc.wrong_audience(&valid, "https://api.example.com/"),
            "another resource",
        ),
        (
            "another issuer",
            oidc.wrong_issuer(&valid),
            "another authorization server",
        ),
        (
            "tampered signature",
            oidc.tampered_signature(&valid),
            "signature does not verify",
        ),
        (
            "alg none",
            oidc.alg_none(&valid),
            "algorithm is not accepted",
        ),
        (
            "HS256 with the public key",
            oidc.hs256_with_public_key(&valid),
            "algorithm is not accepted",
        ),
        (
            "unknown kid",
            oidc.unknown_kid(&valid),
            "key the issuer does not publish",
        ),
        (
            "another server's URL",
            oidc.client_credentials(&other, &[READ, WRITE]).await,
            "another resource",
        ),
        (
            "the bare origin",
            oidc.client_credentials(&plane.base, &[READ, WRITE]).await,
            "another resource",
        ),
        (
            "the origin with a slash",
            oidc.client_credentials(&format!("{}/", plane.base), &[READ, WRITE])
                .await,
            "another resource",
        ),
        (
            "not a JWT",
            "not-a-jwt".to_string(),
            "not a well-formed JWT",
        ),
    ];
    for (what, bad, why) in &cases {
        for request in [WRITE_CALL, LIST] {
            let (status, header, body) = call(&url, Some(bad), request).await;
            assert_eq!(status, 401, "{what}: {body}");
            let header = header.unwrap_or_else(|| panic!("{what}: no challenge"));
            assert!(
                header.starts_with(&format!(
                    "{challenge}, error=\"invalid_token\", error_description=\""
                )),
                "{what}: {header}"
            );
            assert!(header.contains(why), "{what}: {header}");
            assert!(
                body["error"]["message"]
                    .as_str()
                    .expect("message")
                    .contains(why),
                "{what}: {body}"
            );
            assert!(
                !body.to_string().contains(bad.as_str()),
                "{what}: the token is not echoed"
            );
        }
    }
    // The same valid token works, for this server only.
    assert_eq!(call(&url, Some(&valid), LIST).await.0, 200);
    assert_eq!(call(&other, Some(&valid), LIST).await.0, 401);
    // A basic credential is no bearer token.
    let resp = post(&url, LIST, &[("authorization", "Basic YWxpY2U6c2VjcmV0")]).await;
    assert_eq!(resp.status().as_u16(), 401);
}

#[tokio::test]
async fn a_refused_token_is_answered_before_the_body_arrives() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    logs();
    let oidc = Oidc::start().await;
    let plane = plane(Duration::from_secs(30)).await;
    let token = "early-token-0123456789abcdef0123456789abcd";
    let url = serve(
        &plane,
        token,
        "early",
        &oauth_spec(oidc.issuer(), ""),
        "http://127.0.0.1:9",
    );
    let expired = oidc.expired(&oidc.client_credentials(&url, &[READ]).await);
    let addr = plane.base.strip_prefix("http://").expect("http");
    for auth in [
        String::new(),
        format!("Authorization: Bearer {expired}\r\n"),
    ] {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST /mcp/{token} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 39000000\r\n{auth}\r\n{{\"jsonrpc\""
        );
        stream.write_all(head.as_bytes()).await.expect("write");
        let mut answer = vec![0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
            .await
            .expect("answered without the body")
            .expect("read");
        let text = String::from_utf8_lossy(&answer[..n]);
        assert!(text.starts_with("HTTP/1.1 401"), "{text}");
        assert!(
            text.to_ascii_lowercase()
                .contains("www-authenticate: bearer resource_metadata="),
            "{text}"
        );
    }
}

#[tokio::test]
async fn the_jwks_is_fetched_once_for_a_thousand_calls() {
    logs();
    let oidc = Oidc::start().await;
    let upstream = tenant(0).await;
    let plane = plane(Duration::from_secs(30)).await;
    let url = serve(
        &plane,
        "thousand-token-0123456789abcdef0123456789",
        "thousand",
        &oauth_spec(oidc.issuer(), ""),
        &upstream.uri(),
    );
    let token = oidc.client_credentials(&url, &[READ]).await;
    assert_eq!(oidc.jwks_fetches().await, 0);
    let client = reqwest::Client::new();
    for i in 0..1000 {
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(WORKSPACES_CALL)
            .send()
            .await
            .expect("sent");
        assert_eq!(resp.status().as_u16(), 200, "call {i}");
    }
    assert_eq!(oidc.jwks_fetches().await, 1);
    // Other tokens signed with the same key need no fetch either.
    for user in ["bob", "carol"] {
        let t = oidc.authorization_code_pkce_as(user, &url, &[READ]).await;
        assert_eq!(call(&url, Some(&t), LIST).await.0, 200);
    }
    assert_eq!(oidc.jwks_fetches().await, 1);
    let seen = upstream.received_requests().await.unwrap_or_default();
    assert_eq!(seen.len(), 1000);
}

#[tokio::test]
async fn key_rotation_is_picked_up_without_a_restart() {
    logs();
    let oidc = Oidc::start().await;
    let upstream = tenant(0).await;
    // Two data planes trusting the same issuer: one may fetch keys again at once, the
    // other not within 30 s of its last fetch.
    let quick = plane(Duration::ZERO).await;
    let slow = plane(Duration::from_secs(30)).await;
    let spec = oauth_spec(oidc.issuer(), "");
    let quick_url = serve(
        &quick,
        "rotation-quick-0123456789abcdef012345678",
        "rotation",
        &spec,
        &upstream.uri(),
    );
    let slow_url = serve(
        &slow,
        "rotation-slow-0123456789abcdef0123456789",
        "rotation",
        &spec,
        &upstream.uri(),
    );
    let first_kid = oidc.kid();
    let quick_before = oidc.client_credentials(&quick_url, &[READ]).await;
    let slow_before = oidc.client_credentials(&slow_url, &[READ]).await;
    assert_eq!(call(&quick_url, Some(&quick_before), LIST).await.0, 200);
    assert_eq!(call(&slow_url, Some(&slow_before), LIST).await.0, 200);
    assert_eq!(oidc.jwks_fetches().await, 2, "one fetch per data plane");

    let new_kid = oidc.rotate().await;
    assert_ne!(new_kid, first_kid);
    let quick_after = oidc.client_credentials(&quick_url, &[READ]).await;
    let slow_after = oidc.client_credentials(&slow_url, &[READ]).await;
    assert_eq!(
        common::oidc::jwt_parts(&quick_after).header["kid"],
        new_kid.as_str()
    );
    // Within the floor of its last fetch, a data plane does not look for the new key.
    let (status, header, _) = call(&slow_url, Some(&slow_after), LIST).await;
    assert_eq!(status, 401);
    assert!(header.expect("challenge").contains("does not publish"));
    assert_eq!(oidc.jwks_fetches().await, 2, "no fetch within the floor");
    // Past it, one fetch finds the new key, without a restart.
    assert_eq!(call(&quick_url, Some(&quick_after), LIST).await.0, 200);
    assert_eq!(oidc.jwks_fetches().await, 3);
    // The old key is still published, and served; new tokens need no more fetches.
    assert_eq!(call(&quick_url, Some(&quick_before), LIST).await.0, 200);
    assert_eq!(call(&slow_url, Some(&slow_before), LIST).await.0, 200);
    for _ in 0..20 {
        let fresh = oidc.client_credentials(&quick_url, &[READ]).await;
        assert_eq!(call(&quick_url, Some(&fresh), LIST).await.0, 200);
    }
    assert_eq!(oidc.jwks_fetches().await, 3);
}

#[tokio::test]
async fn the_audit_log_names_the_user_and_no_token_is_logged() {
    let logs = logs();
    let oidc = Oidc::start().await;
    let upstream = tenant(1).await;
    let plane = plane(Duration::from_secs(30)).await;
    let by_sub = serve(
        &plane,
        "audit-sub-token-0123456789abcdef012345678",
        "audit-by-sub",
        &oauth_spec(oidc.issuer(), ""),
        &upstream.uri(),
    );
    let by_email = serve(
        &plane,
        "audit-email-token-0123456789abcdef0123456",
        "audit-by-email",
        &oauth_spec(oidc.issuer(), "      userClaim: email\n"),
        &upstream.uri(),
    );
    let alice_sub = oidc
        .authorization_code_pkce(&by_sub, &["openid", READ])
        .await;
    let alice_email = oidc
        .authorization_code_pkce(&by_email, &["openid", "email", READ, WRITE])
        .await;
    let claims = common::oidc::jwt_parts(&alice_email).claims;
    let email = claims["email"]
        .as_str()
        .expect("the token carries the email")
        .to_string();
    assert_eq!(
        call(&by_sub, Some(&alice_sub), WORKSPACES_CALL).await.0,
        200
    );
    assert_eq!(call(&by_email, Some(&alice_email), WRITE_CALL).await.0, 200);
    // A refused write is audited too, with its user.
    assert_eq!(call(&by_sub, Some(&alice_sub), WRITE_CALL).await.0, 403);
    // And the metadata, for the access log.
    let metadata = metadata_url(&plane, &by_sub);
    assert_eq!(
        reqwest::get(&metadata)
            .await
            .expect("GET")
            .status()
            .as_u16(),
        200
    );
    let expired = oidc.expired(&alice_sub);
    assert_eq!(call(&by_sub, Some(&expired), LIST).await.0, 401);

    let text = logs.text();
    let audit: Vec<Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|l| l["target"] == "atomicwork_mcp::audit")
        .filter(|l| {
            l["fields"]["server"]
                .as_str()
                .is_some_and(|s| s.starts_with("it-ops/audit-by-"))
        })
        .collect();
    let lines: Vec<(String, String, String, String)> = audit
        .iter()
        .map(|l| {
            let f = &l["fields"];
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("server"), s("tool"), s("outcome"), s("user"))
        })
        .collect();
    assert_eq!(
        lines,
        [
            (
                "it-ops/audit-by-sub".into(),
                "list_all_atomicwork_workspaces".into(),
                "ok".into(),
                DEFAULT_USER.into()
            ),
            (
                "it-ops/audit-by-email".into(),
                "create_a_atomicwork_request".into(),
                "ok".into(),
                email.clone()
            ),
            (
                "it-ops/audit-by-sub".into(),
                "create_a_atomicwork_request".into(),
                "insufficient_scope".into(),
                DEFAULT_USER.into()
            ),
        ]
    );
    assert!(
        text.contains("/.well-known/oauth-protected-resource/mcp/[token]"),
        "the metadata route is logged by its template"
    );
    for secret in [
        alice_sub.as_str(),
        alice_email.as_str(),
        expired.as_str(),
        "audit-sub-token-0123456789abcdef012345678",
        "audit-email-token-0123456789abcdef0123456",
    ] {
        assert_no_piece_of(&text, secret);
        // Each of a JWT's parts on its own says too much as well.
        for part in secret.split('.').filter(|p| p.len() >= 16) {
            assert_no_piece_of(&text, part);
        }
    }
    // Metrics count refusals by reason, never by user.
    let metrics = reqwest::get(format!("{}/metrics", plane.base))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains(r#"outcome="oauth_expired""#), "{metrics}");
    assert!(
        metrics.contains(r#"outcome="insufficient_scope""#),
        "{metrics}"
    );
    assert!(
        !metrics.contains(DEFAULT_USER) && !metrics.contains(&email),
        "{metrics}"
    );
}

/// Fails when `logs` hold any 16 characters in a row of `secret`.
fn assert_no_piece_of(logs: &str, secret: &str) {
    let chars: Vec<char> = secret.chars().collect();
    for window in chars.windows(16) {
        let piece: String = window.iter().collect();
        assert!(
            !logs.contains(&piece),
            "{piece:?} of a secret is in the logs"
        );
    }
}

#[tokio::test]
async fn the_per_user_limit_holds_while_other_users_go_on() {
    logs();
    let oidc = Oidc::start().await;
    let upstream = tenant(0).await;
    let plane = plane(Duration::from_secs(30)).await;
    let spec = oauth_spec(
        oidc.issuer(),
        "  rateLimit:\n    requestsPerMinute: 600\n    perUser: {requestsPerMinute: 1, burst: 2}\n",
    );
    let url = serve(
        &plane,
        "per-user-token-0123456789abcdef0123456789",
        "per-user",
        &spec,
        &upstream.uri(),
    );
    let alice = oidc
        .authorization_code_pkce_as("alice", &url, &[READ])
        .await;
    let alice_again = oidc
        .authorization_code_pkce_as("alice", &url, &[READ])
        .await;
    let bob = oidc.authorization_code_pkce_as("bob", &url, &[READ]).await;
    for _ in 0..2 {
        assert_eq!(call(&url, Some(&alice), WORKSPACES_CALL).await.0, 200);
    }
    let (status, _, body) = call(&url, Some(&alice), WORKSPACES_CALL).await;
    assert_eq!(status, 429, "{body}");
    assert!(
        body["result"]["content"][0]["text"]
            .as_str()
            .expect("text")
            .contains("each user 1 tool calls per minute"),
        "{body}"
    );
    // Another token of the same person shares the bucket.
    assert_eq!(call(&url, Some(&alice_again), WORKSPACES_CALL).await.0, 429);
    // Another person is not affected.
    for _ in 0..2 {
        assert_eq!(call(&url, Some(&bob), WORKSPACES_CALL).await.0, 200);
    }
    assert_eq!(call(&url, Some(&bob), WORKSPACES_CALL).await.0, 429);
    // Listing is not a tool call and is not limited.
    assert_eq!(call(&url, Some(&alice), LIST).await.0, 200);
}

#[tokio::test]
async fn protected_resource_metadata_and_404s_elsewhere() {
    logs();
    let upstream = tenant(0).await;
    let plane = plane(Duration::from_secs(30)).await;
    let issuer = "https://idp.example.com/realms/it";
    let token = "metadata-token-0123456789abcdef0123456789";
    let url = serve(
        &plane,
        token,
        "metadata",
        &oauth_spec(
            issuer,
            "      scopes: {read: [aw.read], write: [aw.read, aw.write], custom: [aw.admin]}\n",
        ),
        &upstream.uri(),
    );
    let fixed = serve(
        &plane,
        "fixed-audience-0123456789abcdef0123456789",
        "fixed",
        &oauth_spec(issuer, "      audience: api://atomicwork\n"),
        &upstream.uri(),
    );
    let plain = serve(
        &plane,
        "plain-token-0123456789abcdef0123456789abc",
        "plain",
        "  tags: [workspaces]\n",
        &upstream.uri(),
    );

    let get = |u: String| async move {
        let resp = reqwest::get(&u).await.expect("GET");
        let status = resp.status().as_u16();
        let ct = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        (status, ct, resp.text().await.expect("body"))
    };
    // The 401's resource_metadata is where the document is.
    let (status, header, _) = call(&url, None, LIST).await;
    assert_eq!(status, 401);
    let header = header.expect("challenge");
    let from_header = header
        .split("resource_metadata=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("resource_metadata")
        .to_string();
    assert_eq!(from_header, metadata_url(&plane, &url));
    assert!(header.contains("scope=\"aw.read\""), "{header}");
    let (status, ct, body) = get(from_header).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(ct.as_deref(), Some("application/json"));
    assert_eq!(
        serde_json::from_str::<Value>(&body).expect("JSON"),
        json!({
            "resource": url,
            "authorization_servers": [issuer],
            "scopes_supported": ["aw.read", "aw.write", "aw.admin"],
            "bearer_methods_supported": ["header"],
            "resource_name": "metadata",
        })
    );
    // With an audience set, it is the resource.
    let (_, _, body) = get(metadata_url(&plane, &fixed)).await;
    let doc: Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(doc["resource"], "api://atomicwork");
    assert_eq!(doc["scopes_supported"], json!([READ, WRITE]));

    // A server without OAuth, an unknown token and every other well-known path: 404.
    let mut missing = vec![
        metadata_url(&plane, &plain),
        format!(
            "{}/.well-known/oauth-protected-resource/mcp/unknown-token-0123456789abcdef0123456789",
            plane.base
        ),
        format!("{}/.well-known/oauth-protected-resource", plane.base),
        format!("{}/.well-known/oauth-protected-resource/mcp", plane.base),
        format!("{}/.well-known/oauth-authorization-server", plane.base),
        format!("{}/.well-known/openid-configuration", plane.base),
        format!(
            "{}/.well-known/oauth-authorization-server/mcp/{token}",
            plane.base
        ),
        format!(
            "{}/.well-known/openid-configuration/mcp/{token}",
            plane.base
        ),
        format!(
            "{}/mcp/{token}/.well-known/openid-configuration",
            plane.base
        ),
        format!(
            "{}/.well-known/oauth-protected-resource/mcp/{token}/extra",
            plane.base
        ),
    ];
    missing.push(format!(
        "{}/.well-known/oauth-protected-resource{}",
        plane.base,
        plain.strip_prefix(&plane.base).expect("path")
    ));
    for u in missing {
        let (status, _, body) = get(u.clone()).await;
        assert_eq!(status, 404, "{u}: {body}");
    }
    // The server without OAuth still needs no token.
    let (status, header, _) = call(&plain, None, WORKSPACES_CALL).await;
    assert_eq!(status, 200);
    assert_eq!(header, None);
}

#[tokio::test]
async fn local_mode_serves_oauth_with_a_loopback_issuer_and_refuses_conflicts() {
    logs();
    let oidc = Oidc::start().await;
    let upstream = tenant(1).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: atomicwork-api, namespace: it-ops}\nstringData: {apiKey: local-oauth-key}\n";
    let server = |name: &str, more: &str| {
        server_yaml(name, &oauth_spec(oidc.issuer(), more))
            .replace("https://acme.atomicwork.com", &upstream.uri())
    };
    let text = format!(
        "{secret}---\n{}---\n{}",
        server("desk", ""),
        server(
            "conflict",
            "  requireApiTokenAuth: true\n  apiTokenSecretRef: {name: atomicwork-api}\n"
        )
    );
    std::fs::write(manifests.join("servers.yaml"), text).expect("write");
    let mut local = common::LocalProcess::spawn_upstream(
        &manifests,
        &dir.path().join("state"),
        std::process::Stdio::null(),
    );
    let urls = local.read_summary().await;
    let url = local.url("it-ops/desk");
    assert!(!urls.contains_key("it-ops/conflict"), "{urls:?}");
    let refused = local
        .output
        .iter()
        .find(|l| l.contains("it-ops/conflict"))
        .expect("the conflict is listed");
    assert!(
        refused.contains("NOT SERVING")
            && refused.contains("spec.auth.oauth and spec.requireApiTokenAuth"),
        "{refused}"
    );

    // The 401 leads to the metadata, the metadata to the issuer.
    let (status, header, _) = call(&url, None, WRITE_CALL).await;
    assert_eq!(status, 401);
    let base = format!("http://{}", local.addr());
    let metadata = format!(
        "{base}/.well-known/oauth-protected-resource{}",
        url.strip_prefix(&base)
            .expect("the printed URL is on the listen address")
    );
    assert!(
        header
            .expect("challenge")
            .starts_with(&format!("Bearer resource_metadata=\"{metadata}\"")),
    );
    let doc: Value = reqwest::get(&metadata)
        .await
        .expect("GET")
        .json()
        .await
        .expect("JSON");
    assert_eq!(doc["resource"], url.as_str());
    assert_eq!(doc["authorization_servers"], json!([oidc.issuer()]));
    let token = oidc.authorization_code_pkce(&url, &[READ, WRITE]).await;
    let (status, _, body) = call(&url, Some(&token), WRITE_CALL).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["result"]["isError"], false, "{body}");
    let _ = local.child.kill().await;
}

/// The controller's `AuthReady` check against the real authorization server: a reachable
/// issuer is ready with its keys counted, a second check within the reuse time fetches
/// nothing, an issuer nobody answers for is unreachable, and a document naming another
/// issuer is refused.
#[tokio::test]
async fn the_controller_checks_issuers_against_the_real_authorization_server() {
    use atomicwork_mcp::core::oauth::IssuerCheck;
    use atomicwork_mcp::oauth::{IssuerChecker, Options};
    let oidc = Oidc::start().await;
    let checker = IssuerChecker::new(
        Options::default(),
        Duration::from_secs(300),
        Duration::from_secs(30),
    );
    let before = oidc.jwks_fetches().await;
    let first = checker.check(oidc.issuer()).await;
    assert!(
        matches!(first, IssuerCheck::Ready { keys } if keys >= 1),
        "{first:?}"
    );
    assert_eq!(oidc.jwks_fetches().await, before + 1);
    assert_eq!(checker.check(oidc.issuer()).await, first);
    assert_eq!(
        oidc.jwks_fetches().await,
        before + 1,
        "the result is reused"
    );

    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let nobody = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let down = checker.check(&nobody).await;
    assert!(matches!(down, IssuerCheck::Unreachable(_)), "{down:?}");

    // The provider's metadata names its own issuer, not this path under it.
    let other = format!("{}/other-realm", oidc.issuer());
    let bad = checker.check(&other).await;
    assert!(
        matches!(
            &bad,
            IssuerCheck::Unreachable(_) | IssuerCheck::BadMetadata(_)
        ),
        "{bad:?}"
    );
}
