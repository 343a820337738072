//! The data plane over real HTTP: an MCP SDK client for each protocol revision, raw
//! requests for what a well-behaved client never sends, and a real upstream.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use atomicwork_mcp::dataplane::DataplaneConfig;
use atomicwork_mcp::sandbox::{Sandbox, spawn_local};
use common::*;
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

async fn sandbox() -> String {
    spawn_local(Sandbox::seeded()).await.expect("sandbox").0
}

#[tokio::test]
async fn every_protocol_revision_lists_and_calls_filtered_tools() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve(
        "tok-readonly-0001",
        "readonly",
        "  methods: [read]\n",
        &upstream,
    );
    for version in VERSIONS {
        let client = connect(&url, version, None)
            .await
            .unwrap_or_else(|e| panic!("{version}: {e}"));
        let info = client.peer_info().expect("server info");
        assert_eq!(
            info.server_info.as_ref().map(|s| s.name.as_str()),
            Some("atomicwork-mcp"),
            "{version}"
        );
        assert!(
            info.instructions
                .as_deref()
                .unwrap_or_default()
                .contains("workspace"),
            "{version}"
        );
        let tools = client
            .list_tools(None)
            .await
            .unwrap_or_else(|e| panic!("{version}: {e:?}"));
        assert_eq!(tools.tools.len(), 21, "{version}");
        let names: Vec<_> = tools.tools.iter().map(|t| t.name.to_string()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted, "{version}: deterministic order");
        assert!(
            tools
                .tools
                .iter()
                .all(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true))
        );
        let result = client
            .call_tool(
                CallToolRequestParams::new("list_all_atomicwork_workspaces")
                    .with_arguments(args(json!({}))),
            )
            .await
            .unwrap_or_else(|e| panic!("{version}: {e:?}"));
        assert_ne!(
            result.is_error,
            Some(true),
            "{version}: {}",
            text_of(&result)
        );
        assert!(text_of(&result).contains("IT Service Desk"), "{version}");
        let answer: Value = serde_json::from_str(&text_of(&result))
            .unwrap_or_else(|e| panic!("{version}: the text is the JSON answer: {e}"));
        assert_eq!(
            result.structured_content.as_ref(),
            Some(&answer),
            "{version}: structured content is the same answer"
        );
        let _ = client.cancel().await;
    }
}

#[tokio::test]
async fn a_tool_outside_the_filter_is_unknown_whatever_the_client_knows() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve(
        "tok-readonly-0002",
        "readonly",
        "  methods: [read]\n",
        &upstream,
    );
    for version in ["2025-11-25", "2026-07-28"] {
        let client = connect(&url, version, None).await.expect("connect");
        let err = client
            .call_tool(
                CallToolRequestParams::new("create_a_atomicwork_request")
                    .with_arguments(args(json!({"subject": "x"}))),
            )
            .await
            .expect_err("write tool refused");
        let text = format!("{err:?}");
        assert!(
            text.contains("-32602")
                || text.contains("InvalidParams")
                || text.contains("Unknown tool"),
            "{version}: {text}"
        );
        let _ = client.cancel().await;
    }
}

#[tokio::test]
async fn arguments_are_validated_before_anything_is_sent() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(json!({})))
        .expect(0)
        .mount(&server)
        .await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-validate-0001", "v", "", &server.uri());
    let client = connect(&url, "2025-11-25", None).await.expect("connect");
    let result = client
        .call_tool(
            CallToolRequestParams::new("get_single_atomicwork_assets_id_by_id")
                .with_arguments(args(json!({"idd": 3}))),
        )
        .await
        .expect("tool error, not a protocol error");
    assert_eq!(result.is_error, Some(true));
    let text = text_of(&result);
    assert!(
        text.contains("Invalid arguments") && text.contains("id"),
        "{text}"
    );
    let _ = client.cancel().await;
}

#[tokio::test]
async fn expiry_is_checked_by_the_clock_at_each_request() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let mut v = view(&plane.catalog, &server_yaml("short", ""), &upstream);
    v.expires_at = Some(jiff::Timestamp::now() + jiff::SignedDuration::from_millis(1500));
    let url = plane.add("tok-expiring-0001", v);
    let before = post(&url, LIST, &[]).await;
    assert_eq!(before.status(), 200);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let after = post(&url, LIST, &[]).await;
    assert_eq!(after.status(), 403);
    let body: Value = after.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn suspended_servers_refuse_with_a_reason() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-suspended-001", "s", "  suspend: true\n", &upstream);
    let resp = post(&url, LIST, &[]).await;
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.expect("json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("suspended"),
        "{body}"
    );
    assert!(connect(&url, "2025-11-25", None).await.is_err());
}

#[tokio::test]
async fn bearer_auth_missing_wrong_and_right() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let spec = "  requireApiTokenAuth: true\n  apiTokenSecretRef: {name: mcp-client-tokens}\n";
    let url = plane.serve("tok-bearer-000001", "b", spec, &upstream);
    let missing = post(&url, LIST, &[]).await;
    assert_eq!(missing.status(), 401);
    assert!(
        missing.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .starts_with("Bearer")
    );
    let wrong = post(&url, LIST, &[("authorization", "Bearer nope")]).await;
    assert_eq!(wrong.status(), 401);
    assert!(
        wrong.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .contains("invalid_token")
    );
    let right = post(&url, LIST, &[("authorization", "Bearer client-token-bob")]).await;
    assert_eq!(right.status(), 200);
    for version in ["2025-06-18", "2026-07-28"] {
        assert!(
            connect(&url, version, Some("wrong")).await.is_err(),
            "{version}"
        );
        let client = connect(&url, version, Some("client-token-alice"))
            .await
            .expect("right token");
        assert!(
            !client
                .list_tools(None)
                .await
                .expect("list")
                .tools
                .is_empty()
        );
        let _ = client.cancel().await;
    }
}

#[tokio::test]
async fn foreign_origins_are_refused() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-origin-000001", "o", "", &upstream);
    assert_eq!(
        post(&url, LIST, &[("origin", "https://evil.example")])
            .await
            .status(),
        403
    );
    assert_eq!(
        post(&url, LIST, &[("origin", "https://claude.ai")])
            .await
            .status(),
        200
    );
    assert_eq!(post(&url, LIST, &[]).await.status(), 200);
    let headers = HashMap::from([(
        http::HeaderName::from_static("origin"),
        http::HeaderValue::from_static("https://evil.example"),
    )]);
    assert!(
        connect_with(&url, "2025-11-25", None, headers)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn malformed_and_unknown_requests_get_json_rpc_errors() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig {
        max_body_bytes: 64 * 1024,
        ..Default::default()
    })
    .await;
    let url = plane.serve("tok-errors-000001", "e", "", &upstream);

    let parse = post(&url, "{not json", &[]).await;
    assert_eq!(parse.status(), 400);
    assert_eq!(
        parse.json::<Value>().await.expect("json")["error"]["code"],
        -32700
    );

    let unknown = post(
        &url,
        r#"{"jsonrpc":"2.0","id":7,"method":"sampling/createMessage","params":{}}"#,
        &[],
    )
    .await;
    assert_eq!(unknown.status(), 200);
    let body: Value = unknown.json().await.expect("json");
    assert_eq!(body["error"]["code"], -32601);
    assert_eq!(body["id"], 7);

    let stateless_unknown = post(
        &url,
        r#"{"jsonrpc":"2.0","id":8,"method":"nope/x","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}"#,
        &[("mcp-protocol-version", "2026-07-28"), ("mcp-method", "nope/x")],
    )
    .await;
    assert_eq!(stateless_unknown.status(), 404);
    assert_eq!(
        stateless_unknown.json::<Value>().await.expect("json")["error"]["code"],
        -32601
    );

    let big = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{}"}}}}"#,
        "x".repeat(100 * 1024)
    );
    let too_big = post(&url, &big, &[]).await;
    assert_eq!(too_big.status(), 413);
    assert_eq!(too_big.headers()["content-type"], "application/json");
    let body: Value = too_big.json().await.expect("json");
    assert_eq!(body["error"]["code"], -32600);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("65536 bytes")),
        "{body}"
    );
    // Sent in chunks, with no length announced, the limit holds the same way.
    let chunks = futures::stream::iter(
        big.into_bytes()
            .chunks(8 * 1024)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    let streamed = reqwest::Client::new()
        .post(&url)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .expect("post");
    assert_eq!(streamed.status(), 413);
    let body: Value = streamed.json().await.expect("json");
    assert_eq!(body["error"]["code"], -32600, "{body}");

    let batch = post(
        &url,
        r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"}]"#,
        &[],
    )
    .await;
    assert_eq!(batch.status(), 400);
    assert_eq!(
        batch.json::<Value>().await.expect("json")["error"]["code"],
        -32600
    );

    let client = reqwest::Client::new();
    assert_eq!(client.get(&url).send().await.expect("get").status(), 405);
    assert_eq!(
        client.delete(&url).send().await.expect("delete").status(),
        405
    );
    let wrong_type = client
        .post(&url)
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .expect("post");
    assert_eq!(wrong_type.status(), 415);

    let notification = post(
        &url,
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        &[],
    )
    .await;
    assert_eq!(notification.status(), 202);
}

/// A message with `"id": null` is a request with an invalid id, not a notification: only a
/// message without an `id` member is one.
#[tokio::test]
async fn a_null_id_is_refused_not_taken_for_a_notification() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-null-id-000001", "n", "", &upstream);
    for body in [
        r#"{"jsonrpc":"2.0","id":null,"method":"tools/list"}"#,
        r#"{"jsonrpc":"2.0","id":null,"method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","method":"tools/list","params":{},"id":null}"#,
    ] {
        let resp = post(&url, body, &[]).await;
        assert_eq!(resp.status(), 400, "{body}");
        let answer: Value = resp.json().await.expect("json");
        assert_eq!(answer["error"]["code"], -32600, "{body}");
        assert_eq!(answer["id"], Value::Null, "{body}");
    }
    let notification = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
    assert_eq!(post(&url, notification, &[]).await.status(), 202);
    // A client's error answer to a request it could not read carries a null id.
    let response = r#"{"jsonrpc":"2.0","id":null,"error":{"code":-32700,"message":"parse error"}}"#;
    assert_eq!(post(&url, response, &[]).await.status(), 202);
}

#[tokio::test]
async fn stateless_header_rules_are_enforced() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-headers-00001", "h", "", &upstream);
    let meta = r#""_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}"#;
    let call = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"list_all_atomicwork_workspaces","arguments":{{}},{meta}}}}}"#
    );
    let missing_name = post(
        &url,
        &call,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
        ],
    )
    .await;
    assert_eq!(missing_name.status(), 400);
    assert_eq!(
        missing_name.json::<Value>().await.expect("json")["error"]["code"],
        -32020
    );
    let wrong_name = post(
        &url,
        &call,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "other"),
        ],
    )
    .await;
    assert_eq!(wrong_name.status(), 400);
    let ok = post(
        &url,
        &call,
        &[
            ("mcp-protocol-version", "2026-07-28"),
            ("mcp-method", "tools/call"),
            ("mcp-name", "list_all_atomicwork_workspaces"),
        ],
    )
    .await;
    assert_eq!(ok.status(), 200);
    let body: Value = ok.json().await.expect("json");
    assert_eq!(body["result"]["resultType"], "complete");
    assert_eq!(
        body["result"]["_meta"]["io.modelcontextprotocol/serverInfo"]["name"],
        "atomicwork-mcp"
    );

    let old = r#"{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"1999-01-01","io.modelcontextprotocol/clientCapabilities":{}}}}"#;
    let unsupported = post(
        &url,
        old,
        &[
            ("mcp-protocol-version", "1999-01-01"),
            ("mcp-method", "tools/list"),
        ],
    )
    .await;
    assert_eq!(unsupported.status(), 400);
    let body: Value = unsupported.json().await.expect("json");
    assert_eq!(body["error"]["code"], -32022);
    assert!(
        body["error"]["data"]["supported"]
            .as_array()
            .is_some_and(|a| a.contains(&json!("2026-07-28")))
    );

    let bad_legacy_header = post(
        &url,
        r#"{"jsonrpc":"2.0","id":3,"method":"tools/list"}"#,
        &[("mcp-protocol-version", "2030-01-01")],
    )
    .await;
    assert_eq!(bad_legacy_header.status(), 400);
}

#[tokio::test]
async fn unknown_tokens_and_path_tricks_never_reach_a_server() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-paths-0000001", "p", "", &upstream);
    assert_eq!(
        post(&plane.url("no-such-token"), LIST, &[]).await.status(),
        404
    );
    for tricky in [
        format!("{url}/extra"),
        format!("{url}/"),
        format!("{}/mcp//tok-paths-0000001", plane.base),
        format!("{}/mcp/tok-paths-0000001%2Fx", plane.base),
        format!("{}/mcp/x%2F..%2Ftok-paths-0000001", plane.base),
        format!("{}/mcp/../mcp/tok-paths-0000001x", plane.base),
    ] {
        let status = post(&tricky, LIST, &[]).await.status();
        assert_eq!(status, 404, "{tricky}");
    }
}

#[tokio::test]
async fn upstream_rate_limits_pass_through_with_headers() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(
            wiremock::ResponseTemplate::new(429)
                .insert_header("retry-after", "7")
                .insert_header("x-ratelimit-limit", "100")
                .insert_header("x-ratelimit-remaining", "0")
                .set_body_json(json!({"error": "Too many requests", "code": "RATE_LIMITED"})),
        )
        .mount(&server)
        .await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-ratelimit-001", "r", "", &server.uri());
    let resp = post(&url, WORKSPACES_CALL, &[]).await;
    assert_eq!(resp.headers()["retry-after"], "7");
    assert_eq!(resp.headers()["ratelimit-limit"], "100");
    assert_eq!(resp.headers()["ratelimit-remaining"], "0");
    let body: Value = resp.json().await.expect("json");
    assert_eq!(body["result"]["isError"], true);
    let text = body["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_lowercase();
    assert!(text.contains("rate limit") && text.contains('7'), "{text}");
    assert_eq!(
        server.received_requests().await.map(|r| r.len()),
        Some(1),
        "no silent retries"
    );
}

#[tokio::test]
async fn upstream_429_with_only_retry_after_passes_on_a_reset() {
    let server = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(429).insert_header("retry-after", "9"))
        .mount(&server)
        .await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-ratelimit-002", "r2", "", &server.uri());
    let resp = post(&url, WORKSPACES_CALL, &[]).await;
    assert_eq!(resp.headers()["retry-after"], "9");
    assert_eq!(resp.headers()["ratelimit-reset"], "9");
}

#[tokio::test]
async fn per_server_rate_limit_answers_429() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let spec = "  rateLimit: {requestsPerMinute: 60, burst: 2}\n";
    let url = plane.serve("tok-limited-00001", "l", spec, &upstream);
    assert_eq!(post(&url, WORKSPACES_CALL, &[]).await.status(), 200);
    assert_eq!(post(&url, WORKSPACES_CALL, &[]).await.status(), 200);
    let limited = post(&url, WORKSPACES_CALL, &[]).await;
    assert_eq!(limited.status(), 429);
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await.expect("json");
    assert_eq!(body["result"]["isError"], true);
}

#[tokio::test]
async fn discovery_mode_end_to_end() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let spec = "  methods: [read]\n  tags: [assets, audit]\n  toolExposure: discovery\n";
    let url = plane.serve("tok-discovery-001", "d", spec, &upstream);
    let client = connect(&url, "2025-11-25", None).await.expect("connect");
    let tools = client.list_tools(None).await.expect("list");
    let names: Vec<_> = tools.tools.iter().map(|t| t.name.to_string()).collect();
    assert_eq!(names, vec!["search_tools", "get_tool_schema", "call_tool"]);

    let found = client
        .call_tool(
            CallToolRequestParams::new("search_tools")
                .with_arguments(args(json!({"query": "audit logs", "limit": 3}))),
        )
        .await
        .expect("search");
    let hits: Value = serde_json::from_str(&text_of(&found)).expect("json hits");
    assert_eq!(hits[0]["name"], "list_all_atomicwork_audit_logs");

    let schema = client
        .call_tool(
            CallToolRequestParams::new("get_tool_schema").with_arguments(args(
                json!({"tool_names": ["list_all_atomicwork_audit_logs"]}),
            )),
        )
        .await
        .expect("schema");
    assert!(text_of(&schema).contains("inputSchema"));

    let outside = client
        .call_tool(
            CallToolRequestParams::new("get_tool_schema")
                .with_arguments(args(json!({"tool_names": ["create_a_atomicwork_asset"]}))),
        )
        .await
        .expect("tool error");
    assert_eq!(outside.is_error, Some(true));

    let called = client
        .call_tool(CallToolRequestParams::new("call_tool").with_arguments(args(
            json!({"tool_name": "list_all_atomicwork_audit_logs", "arguments": {}}),
        )))
        .await
        .expect("call_tool");
    assert_ne!(called.is_error, Some(true), "{}", text_of(&called));

    let blocked = client
        .call_tool(CallToolRequestParams::new("call_tool").with_arguments(args(json!({"tool_name": "create_a_atomicwork_asset", "arguments": {"asset_type_id": 1, "form_fields": {}}}))))
        .await
        .expect("tool error");
    assert_eq!(
        blocked.is_error,
        Some(true),
        "writes stay unreachable through call_tool"
    );

    let direct = client
        .call_tool(
            CallToolRequestParams::new("list_all_atomicwork_audit_logs")
                .with_arguments(args(json!({}))),
        )
        .await
        .expect_err("direct call refused");
    assert!(format!("{direct:?}").contains("search_tools"));
    let _ = client.cancel().await;
}

#[tokio::test]
async fn discovery_meta_tools_refuse_arguments_outside_their_schemas() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let spec = "  methods: [read]\n  toolExposure: discovery\n";
    let url = plane.serve("tok-discovery-002", "d2", spec, &upstream);
    let direct = plane.serve("tok-discovery-003", "d3", "  methods: [read]\n", &upstream);
    let call = |name: &str, arguments: Value| {
        json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call",
               "params": {"name": name, "arguments": arguments}})
        .to_string()
    };
    // A real tool with an ill-typed argument: the shape every invalid-arguments error has.
    let shape: Value = post(
        &direct,
        &call("list_all_atomicwork_audit_logs", json!({"page": "x"})),
        &[],
    )
    .await
    .json()
    .await
    .expect("json");
    let shape_text = shape["result"]["content"][0]["text"]
        .as_str()
        .unwrap_or_default();
    assert!(
        shape_text.starts_with("Invalid arguments for list_all_atomicwork_audit_logs: "),
        "{shape}"
    );
    for (name, arguments, needle) in [
        ("call_tool", json!({}), "tool_name"),
        (
            "call_tool",
            json!({"tool_name": ["list_all_atomicwork_audit_logs"]}),
            "tool_name",
        ),
        ("search_tools", json!({"limit": 3}), "query"),
        (
            "get_tool_schema",
            json!({"tool_names": "list_all_atomicwork_audit_logs"}),
            "tool_names",
        ),
    ] {
        let resp = post(&url, &call(name, arguments.clone()), &[]).await;
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.expect("json");
        assert_eq!(
            body["result"]["isError"], true,
            "{name} {arguments}: {body}"
        );
        let text = body["result"]["content"][0]["text"]
            .as_str()
            .unwrap_or_default();
        assert!(
            text.starts_with(&format!("Invalid arguments for {name}: ")),
            "{name} {arguments}: {text}"
        );
        assert!(text.contains(needle), "{text}");
        let tail = |t: &str| t.rsplit(". ").next().unwrap_or_default().to_string();
        assert_eq!(
            tail(text),
            tail(shape_text),
            "same closing advice as other tools"
        );
    }
}

#[tokio::test]
async fn every_published_filter_operator_reaches_the_tenant() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-operators-001", "ops", "  methods: [read]\n", &upstream);
    for (op, value) in [
        ("GREATER_THAN", json!(3008)),
        ("LESS_THAN", json!(3002)),
        ("GREATER_THAN_EQUALS", json!(3010)),
        ("LESS_THAN_EQUALS", json!(3001)),
        ("NOT_IN", json!(3001)),
        ("NOT_CONTAINS", json!("300")),
        ("TEXT_DOES_NOT_CONTAINS", json!("x")),
        ("IS_EXACTLY", json!(3004)),
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 4, "method": "tools/call", "params": {
            "name": "list_all_atomicwork_assets",
            "arguments": {"body": [{"attribute": "id", "operator": op, "values": [{"value": value}]}]}}});
        let answer: Value = post(&url, &body.to_string(), &[])
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(answer["result"]["isError"], false, "{op}: {answer}");
        assert!(
            answer["result"]["structuredContent"]["data"].is_array(),
            "{op}: {answer}"
        );
    }
    let within = json!({"jsonrpc": "2.0", "id": 5, "method": "tools/call", "params": {
        "name": "list_all_atomicwork_requests_search",
        "arguments": {"body": [{"attribute": "updated_at", "operator": "IS_WITHIN", "values": [{"value": "P5D"}]}]}}});
    let answer: Value = post(&url, &within.to_string(), &[])
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer["result"]["isError"], false, "{answer}");
}

#[tokio::test]
async fn registry_updates_under_load_never_tear() {
    let upstream = sandbox().await;
    let plane = Arc::new(Plane::start(DataplaneConfig::default()).await);
    let read = view(
        &plane.catalog,
        &server_yaml("flip", "  methods: [read]\n"),
        &upstream,
    );
    let url = plane.add("tok-flipping-0001", read);
    let plane2 = plane.clone();
    let upstream2 = upstream.clone();
    let flipper = tokio::spawn(async move {
        for i in 0..200 {
            let spec = if i % 2 == 0 {
                "  methods: [write]\n"
            } else {
                "  methods: [read]\n"
            };
            let v = view(&plane2.catalog, &server_yaml("flip", spec), &upstream2);
            plane2.add("tok-flipping-0001", v);
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    });
    let mut callers = Vec::new();
    for _ in 0..8 {
        let url = url.clone();
        callers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for _ in 0..40 {
                let resp = post(&url, LIST, &[]).await;
                assert_eq!(resp.status(), 200);
                let body: Value = resp.json().await.expect("json");
                seen.push(
                    body["result"]["tools"]
                        .as_array()
                        .map(Vec::len)
                        .unwrap_or(0),
                );
            }
            seen
        }));
    }
    for c in callers {
        for n in c.await.expect("caller") {
            assert!(n == 21 || n == 14, "a torn tool list of {n} tools");
        }
    }
    flipper.await.expect("flipper");
}

#[tokio::test]
async fn health_readiness_and_metrics() {
    let upstream = sandbox().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-metrics-00001", "m", "", &upstream);
    assert_eq!(post(&url, WORKSPACES_CALL, &[]).await.status(), 200);
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(format!("{}/healthz", plane.base))
            .send()
            .await
            .expect("h")
            .status(),
        200
    );
    assert_eq!(
        client
            .get(format!("{}/readyz", plane.base))
            .send()
            .await
            .expect("r")
            .status(),
        200
    );
    let metrics = client
        .get(format!("{}/metrics", plane.base))
        .send()
        .await
        .expect("m")
        .text()
        .await
        .expect("text");
    assert!(metrics.contains("atomicwork_mcp_tool_calls_total{server=\"it-ops/m\",tool=\"list_all_atomicwork_workspaces\",outcome=\"ok\"} 1"), "{metrics}");
    assert!(metrics.contains("atomicwork_mcp_registry_servers 1"));
    assert!(!metrics.contains("tok-metrics"), "no token in metrics");
}

/// Shutting down finishes the requests in progress, closes at once the connections that
/// have none (idle, or halfway through a request's headers) and accepts no new ones.
#[tokio::test]
async fn shutdown_finishes_requests_in_progress_and_closes_the_rest() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"data": []}))
                .set_delay(Duration::from_secs(1)),
        )
        .mount(&up)
        .await;
    let mut config = DataplaneConfig::default();
    config.connections.header_read_timeout = Duration::from_secs(300);
    config.connections.idle_timeout = Duration::from_secs(300);
    let plane = Plane::start(config).await;
    let url = plane.serve("tok-shutdown-00001", "s", "", &up.uri());
    let addr = plane.base.trim_start_matches("http://").to_string();

    let mut half = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    half.write_all(b"GET /heal").await.expect("write");
    let mut idle = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut answer = [0u8; 12];
    idle.read_exact(&mut answer).await.expect("an answer");
    assert_eq!(&answer, b"HTTP/1.1 200");
    let call = tokio::spawn(async move { post(&url, WORKSPACES_CALL, &[]).await.status() });
    // The call is in progress once the upstream has it.
    for _ in 0..200 {
        if up.received_requests().await.is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(up.received_requests().await.map(|r| r.len()), Some(1));

    drop(plane);
    for (name, stream) in [("half-sent headers", &mut half), ("idle", &mut idle)] {
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest));
        assert!(closed.await.is_ok(), "{name} connection left open");
    }
    assert_eq!(call.await.expect("call task"), 200);
    assert!(tokio::net::TcpStream::connect(&addr).await.is_err());
}

/// HTTP clients open spare connections for their pools and use them later: a new
/// connection is idle until its first byte, and the header timeout runs from there.
#[tokio::test]
async fn a_new_connection_is_idle_until_its_first_byte() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut config = DataplaneConfig::default();
    config.connections.header_read_timeout = Duration::from_millis(500);
    config.connections.idle_timeout = Duration::from_secs(60);
    let plane = Plane::start(config).await;
    let addr = plane.base.trim_start_matches("http://").to_string();

    let mut spare = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let mut slow = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    tokio::time::sleep(Duration::from_secs(2)).await;
    spare
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let mut answer = [0u8; 12];
    spare
        .read_exact(&mut answer)
        .await
        .expect("an answer on a connection left unused past the header timeout");
    assert_eq!(&answer, b"HTTP/1.1 200");

    slow.write_all(b"GET /heal").await.expect("write");
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(10), slow.read_to_end(&mut rest));
    assert!(closed.await.is_ok(), "headers begun and never finished");
}
