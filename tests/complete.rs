//! The complete tool set end to end: the `tools` command lists every published operation
//! once; a real data plane serving a `complete` server sends, for every tool, exactly the
//! method, path, query and body the published operation describes to a recording
//! upstream; and the sandbox tenant answers every tool.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use atomicwork_mcp::core::catalog::generate::{OPERATIONS_JSON, Operation, Operations};
use atomicwork_mcp::core::catalog::{Catalog, Location, Tool, ToolSetKind};
use atomicwork_mcp::dataplane::DataplaneConfig;
use common::{Plane, args, connect, text_of};
use rmcp::model::CallToolRequestParams;
use serde_json::{Map, Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

fn operations() -> Vec<Operation> {
    serde_json::from_str::<Operations>(OPERATIONS_JSON)
        .expect("operations.json parses")
        .operations
}

/// `METHOD /path` with placeholders written `{}`.
fn wire_key(method: &str, path: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for c in path.chars() {
        match c {
            '{' => {
                inside = true;
                out.push('{');
            }
            '}' => {
                inside = false;
                out.push('}');
            }
            _ if inside => {}
            c => out.push(c),
        }
    }
    format!("{method} {out}")
}

#[test]
fn the_tools_command_lists_every_published_operation_once() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atomicwork-mcp"))
        .args(["tools", "--tool-set", "complete", "--format", "json"])
        .output()
        .expect("run binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tools: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a JSON array");
    let mut listed: BTreeMap<String, usize> = BTreeMap::new();
    for t in &tools {
        let http = t["http"].as_str().expect("http");
        let (method, path) = http.split_once(' ').expect("METHOD /path");
        *listed.entry(wire_key(method, path)).or_default() += 1;
        for field in ["name", "title", "description", "method"] {
            assert!(
                t[field].as_str().is_some_and(|s| !s.is_empty()),
                "{field} of {t}"
            );
        }
        assert!(
            ["read", "write", "custom"].contains(&t["class"].as_str().unwrap_or_default()),
            "{t}"
        );
        assert!(t["tags"].as_array().is_some_and(|a| !a.is_empty()), "{t}");
        assert_eq!(t["inputSchema"]["type"], "object", "{}", t["name"]);
    }
    let published: BTreeMap<String, usize> = operations()
        .iter()
        .map(|o| (wire_key(o.method.as_str(), &o.path), 1))
        .collect();
    assert_eq!(listed, published);

    // The filters apply to the complete set the same way.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atomicwork-mcp"))
        .args([
            "tools",
            "--tool-set",
            "complete",
            "--methods",
            "read",
            "--tags",
            "access",
            "--format",
            "json",
        ])
        .output()
        .expect("run binary");
    assert!(out.status.success());
    let read_access: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json");
    assert!(!read_access.is_empty());
    assert!(
        read_access
            .iter()
            .all(|t| t["class"] == "read"
                && t["tags"].as_array().unwrap().contains(&json!("access")))
    );
    // A curated-only tool is unknown in the complete set, and the error says which set.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atomicwork-mcp"))
        .args([
            "tools",
            "--tool-set",
            "complete",
            "--allow",
            "create_a_atomicwork_attachment",
        ])
        .output()
        .expect("run binary");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("create_a_atomicwork_attachment") && stderr.contains("complete"),
        "{stderr}"
    );
}

// ---------------------------------------------------------------------------------------
// Arguments built from a tool's schema.
// ---------------------------------------------------------------------------------------

/// A value that satisfies `schema`, distinct per argument name.
fn value_for(name: &str, schema: &Value, depth: usize) -> Value {
    if let Some(values) = schema.get("enum").and_then(Value::as_array)
        && let Some(first) = values.first()
    {
        return first.clone();
    }
    if let Some(default) = schema.get("default") {
        return default.clone();
    }
    let ty = match schema.get("type") {
        Some(Value::String(t)) => t.as_str(),
        Some(Value::Array(ts)) => ts.first().and_then(Value::as_str).unwrap_or("string"),
        _ => "string",
    };
    match ty {
        "integer" | "number" => {
            let min = schema.get("minimum").and_then(Value::as_i64).unwrap_or(0);
            json!(min.max(1) + (name.len() as i64 % 7))
        }
        "boolean" => json!(true),
        "array" => {
            let items = schema.get("items").cloned().unwrap_or(json!({}));
            if depth > 2 || items.get("oneOf").is_some() {
                return json!([]);
            }
            json!([value_for(name, &items, depth + 1)])
        }
        "object" => {
            let mut out = Map::new();
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, s) in props {
                    if required.contains(&k.as_str()) || depth == 0 {
                        out.insert(k.clone(), value_for(k, s, depth + 1));
                    }
                }
            }
            Value::Object(out)
        }
        _ => json!(format!("{name}-v")),
    }
}

/// Arguments for every parameter of the tool: path and query values, body fields and
/// files, each valid for its schema (optional ones whose made-up value the schema
/// rejects are left out).
fn arguments(tool: &Tool) -> Map<String, Value> {
    let mut out = Map::new();
    let required: Vec<&str> = tool.input_schema["required"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = tool.input_schema["properties"]
        .as_object()
        .expect("an object schema");
    for (name, schema) in properties {
        let location = tool.param(name).expect("a parameter per property").location;
        let value = match location {
            Location::Header => continue,
            Location::File => {
                let file = json!({"filename": format!("{name}.txt"), "content_base64": "aGVsbG8="});
                if schema["type"] == "array" {
                    json!([file])
                } else {
                    file
                }
            }
            Location::Path if name == "workspace_id" => json!(3),
            Location::Body
                if name == "body" && schema["items"]["properties"]["operator"].is_object() =>
            {
                let op = schema["items"]["properties"]["operator"]["enum"][0].clone();
                json!([{"attribute": "status", "operator": op, "values": [{"value": "OPEN"}]}])
            }
            _ => value_for(name, schema, 0),
        };
        let fits = jsonschema::validator_for(schema)
            .map(|v| v.is_valid(&value))
            .unwrap_or(false);
        if fits {
            out.insert(name.clone(), value);
        } else {
            assert!(
                !required.contains(&name.as_str()),
                "{}: no valid value made for required {name}",
                tool.name()
            );
        }
    }
    if tool.input_schema["additionalProperties"] == true {
        out.insert("note_for_test".into(), json!("extra"));
    }
    assert_eq!(
        tool.validate(&out),
        Ok(()),
        "{}: the arguments fit the schema",
        tool.name()
    );
    out
}

/// A query or form value as text.
fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The request the published operation describes for these arguments: method, path,
/// sorted query pairs, the JSON body (or the multipart part names), and the workspace.
struct Expected {
    method: String,
    path: String,
    query: Vec<(String, String)>,
    json: Option<Value>,
    parts: Vec<String>,
    workspace: String,
}

fn expected(op: &Operation, tool: &Tool, args: &Map<String, Value>) -> Expected {
    // Path placeholders in order: the tool's path arguments are the operation's
    // placeholders in the same order, whatever each is called.
    let tool_names: Vec<&str> = tool
        .source
        .path
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .collect();
    let mut path = String::new();
    let mut k = 0;
    for segment in op.path.split('/').filter(|s| !s.is_empty()) {
        path.push('/');
        if segment.starts_with('{') {
            path.push_str(&text(&args[tool_names[k]]));
            k += 1;
        } else {
            path.push_str(segment);
        }
    }
    let mut query = Vec::new();
    for p in op.params.iter().filter(|p| p.location == "query") {
        match args.get(&p.name) {
            Some(Value::Array(items)) => {
                query.extend(items.iter().map(|i| (p.name.clone(), text(i))))
            }
            Some(v) => query.push((p.name.clone(), text(v))),
            None => {}
        }
    }
    query.sort();
    let mut json = None;
    let mut parts = Vec::new();
    if let Some(body) = &op.body {
        let props: Vec<String> = body.schema["properties"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        if body.content_type == "multipart/form-data" {
            for name in &props {
                match args.get(name) {
                    Some(Value::Array(items)) => parts.extend(items.iter().map(|_| name.clone())),
                    Some(_) => parts.push(name.clone()),
                    None => {}
                }
            }
            parts.sort();
        } else if body.schema["type"] == "array" {
            json = Some(args.get("body").cloned().unwrap_or(json!([])));
        } else {
            let mut object = Map::new();
            for name in &props {
                if let Some(v) = args.get(name) {
                    object.insert(name.clone(), v.clone());
                }
            }
            if props.is_empty() {
                // A free-form body: every argument that is not a path or query one.
                for (k, v) in args {
                    if tool.param(k).is_none() {
                        object.insert(k.clone(), v.clone());
                    }
                }
            }
            json = Some(Value::Object(object));
        }
    }
    let workspace = args
        .get("workspace_id")
        .map(text)
        .unwrap_or_else(|| "1".to_string());
    Expected {
        method: op.method.as_str().to_string(),
        path,
        query,
        json,
        parts,
        workspace,
    }
}

/// The names of the parts of a multipart body, sorted.
fn part_names(body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let mut names: Vec<String> = text
        .split("Content-Disposition: form-data; name=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next().map(str::to_string))
        .collect();
    names.sort();
    names
}

fn complete_tool<'a>(catalog: &'a Catalog, op: &Operation) -> &'a std::sync::Arc<Tool> {
    let key = wire_key(op.method.as_str(), &op.path);
    catalog
        .tools_of(ToolSetKind::Complete)
        .iter()
        .find(|t| wire_key(t.source.http.as_str(), &t.source.path) == key)
        .unwrap_or_else(|| panic!("a tool for {key}"))
}

const COMPLETE_SPEC: &str = "  toolSet: complete\n  toolExposure: all\n";

#[tokio::test]
async fn every_complete_tool_sends_exactly_the_published_request() {
    let upstream = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [], "total_count": 0})),
        )
        .mount(&upstream)
        .await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve(
        "tok-complete-wire-01",
        "complete",
        COMPLETE_SPEC,
        &upstream.uri(),
    );
    let client = connect(&url, "2025-11-25", None).await.expect("connect");
    let catalog = Catalog::builtin().expect("catalog");
    let ops = operations();
    for (n, op) in ops.iter().enumerate() {
        let tool = complete_tool(&catalog, op);
        let arguments = arguments(tool);
        let want = expected(op, tool, &arguments);
        let result = client
            .call_tool(
                CallToolRequestParams::new(tool.name().to_string())
                    .with_arguments(arguments.clone()),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", tool.name()));
        assert_ne!(
            result.is_error,
            Some(true),
            "{}: {}",
            tool.name(),
            text_of(&result)
        );
        let received = upstream.received_requests().await.expect("recording");
        assert_eq!(
            received.len(),
            n + 1,
            "{}: exactly one request",
            tool.name()
        );
        let got = &received[n];
        let name = tool.name();
        assert_eq!(got.method.as_str(), want.method, "{name}");
        assert_eq!(got.url.path(), want.path, "{name}");
        let mut query: Vec<(String, String)> = got
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        query.sort();
        assert_eq!(query, want.query, "{name}: query");
        assert_eq!(
            got.headers
                .get("x-workspace-id")
                .and_then(|v| v.to_str().ok()),
            Some(want.workspace.as_str()),
            "{name}: workspace header"
        );
        match (&want.json, want.parts.is_empty()) {
            (Some(body), _) => {
                let sent: Value = serde_json::from_slice(&got.body)
                    .unwrap_or_else(|e| panic!("{name}: JSON body: {e}"));
                assert_eq!(&sent, body, "{name}: body");
            }
            (None, false) => assert_eq!(part_names(&got.body), want.parts, "{name}: parts"),
            (None, true) => assert!(got.body.is_empty(), "{name}: no body"),
        }
    }
    let _ = client.cancel().await;
}

#[tokio::test]
async fn a_complete_server_without_exposure_set_lists_the_discovery_tools() {
    let upstream = MockServer::start().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let cases = [
        (
            "  toolSet: complete\n",
            3,
            "complete, unset: discovery above 60 tools",
        ),
        (
            "  toolSet: complete\n  toolExposure: all\n",
            130,
            "explicit all wins",
        ),
        (
            "  toolSet: complete\n  tags: [tags]\n",
            5,
            "60 tools or fewer: every tool",
        ),
        ("", 37, "curated keeps listing every tool"),
    ];
    for (i, (spec, count, why)) in cases.iter().enumerate() {
        let url = plane.serve(
            &format!("tok-exposure-{i:04}"),
            &format!("exp{i}"),
            spec,
            &upstream.uri(),
        );
        let client = connect(&url, "2025-11-25", None).await.expect("connect");
        let tools = client.list_all_tools().await.expect("tools/list");
        let expected = if *count == 130 {
            operations().len()
        } else {
            *count
        };
        assert_eq!(tools.len(), expected, "{why}");
        if *count == 3 {
            let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
            assert!(
                names.contains(&"search_tools") && names.contains(&"call_tool"),
                "{names:?}"
            );
        }
        let _ = client.cancel().await;
    }
}

#[cfg(feature = "sandbox")]
#[tokio::test]
async fn the_sandbox_answers_every_complete_tool() {
    use atomicwork_mcp::sandbox::{Sandbox, spawn_local};
    let (base, _task) = spawn_local(Sandbox::seeded()).await.expect("sandbox");
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-complete-sandbox", "complete", COMPLETE_SPEC, &base);
    let client = connect(&url, "2025-11-25", None).await.expect("connect");
    let catalog = Catalog::builtin().expect("catalog");
    for tool in catalog.tools_of(ToolSetKind::Complete) {
        let mut arguments = arguments(tool);
        // The sandbox's sample tenant has workspaces 1 to 3.
        if arguments.contains_key("workspace_id") {
            arguments.insert("workspace_id".into(), json!(1));
        }
        let result = client
            .call_tool(
                CallToolRequestParams::new(tool.name().to_string()).with_arguments(arguments),
            )
            .await
            .unwrap_or_else(|e| panic!("{}: {e:?}", tool.name()));
        let text = text_of(&result);
        // The curated handlers check their inputs against the sample tenant (a made-up
        // id can be a 404); every answer is the API's own envelope, never a routing miss.
        assert!(!text.contains("No route for"), "{}: {text}", tool.name());
        assert!(
            !text.contains("is not allowed on"),
            "{}: {text}",
            tool.name()
        );
        if result.is_error != Some(true) && tool.source.method == "list" {
            assert!(
                text.contains("data") || text.contains('['),
                "{}: {text}",
                tool.name()
            );
        }
    }
    // A generic record written through one tool is read back through another.
    let created = client
        .call_tool(
            CallToolRequestParams::new("create_a_atomicwork_tag")
                .with_arguments(args(json!({"name": "vip", "color_code": "#ff0000"}))),
        )
        .await
        .expect("create");
    assert_ne!(created.is_error, Some(true), "{}", text_of(&created));
    let made: Value = serde_json::from_str(&text_of(&created)).expect("json");
    let id = made["id"].as_u64().expect("an id");
    let read = client
        .call_tool(
            CallToolRequestParams::new("get_single_atomicwork_tag_by_id")
                .with_arguments(args(json!({"id": id}))),
        )
        .await
        .expect("get");
    let got: Value = serde_json::from_str(&text_of(&read)).expect("json");
    assert_eq!(got["name"], "vip");
    let _ = client.cancel().await;
}

#[test]
fn arguments_are_built_for_every_tool_and_an_invalid_one_is_refused() {
    let catalog = Catalog::builtin().expect("catalog");
    for tool in catalog.tools_of(ToolSetKind::Complete) {
        arguments(tool);
    }
    let tool = catalog
        .get_in(ToolSetKind::Complete, "create_a_atomicwork_iga_grant")
        .expect("tool");
    let missing = tool
        .validate(&args(json!({"user_id": 4})))
        .expect_err("entitlement_id is required");
    assert!(
        missing.iter().any(|m| m.contains("entitlement_id")),
        "{missing:?}"
    );
}

#[tokio::test]
async fn local_mode_serves_a_complete_server_in_discovery_exposure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    std::fs::write(
        manifests.join("server.yaml"),
        common::server_yaml("everything", "  toolSet: complete\n  methods: [read]\n")
            + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: atomicwork-api, namespace: it-ops}\nstringData: {apiKey: k}\n",
    )
    .expect("write");
    let mut local = common::LocalProcess::spawn(
        &manifests,
        &dir.path().join("state"),
        std::process::Stdio::null(),
        &[],
    );
    local.read_summary().await;
    let client = connect(&local.url("it-ops/everything"), "2025-11-25", None)
        .await
        .expect("connect");
    let listed = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = listed.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["search_tools", "get_tool_schema", "call_tool"]);
    // A tool only the complete set has, found and called through the meta-tools.
    let found = client
        .call_tool(
            CallToolRequestParams::new("search_tools")
                .with_arguments(args(json!({"query": "business hour configurations"}))),
        )
        .await
        .expect("search");
    assert!(
        text_of(&found).contains("list_all_atomicwork_business_hour_configs"),
        "{}",
        text_of(&found)
    );
    let called = client
        .call_tool(
            CallToolRequestParams::new("call_tool").with_arguments(args(json!({
                "tool_name": "list_all_atomicwork_business_hour_configs",
                "arguments": {}
            }))),
        )
        .await
        .expect("call_tool");
    assert_ne!(called.is_error, Some(true), "{}", text_of(&called));
    let answer: Value = common::texts(&called)
        .iter()
        .find_map(|t| serde_json::from_str(t).ok())
        .unwrap_or_else(|| panic!("a JSON answer: {}", text_of(&called)));
    assert!(
        answer["data"].as_array().is_some_and(|d| !d.is_empty()),
        "{answer}"
    );
    // The read-only filter holds: a write tool of the complete set is out of reach.
    let blocked = client
        .call_tool(
            CallToolRequestParams::new("call_tool").with_arguments(args(json!({
                "tool_name": "create_a_atomicwork_tag",
                "arguments": {"name": "x"}
            }))),
        )
        .await
        .expect("tool error");
    assert_eq!(blocked.is_error, Some(true));
    let _ = client.cancel().await;
}

const SHAPED: &str = "  toolOverrides:\n    list_all_atomicwork_requests_search:\n      name: find_tickets\n      title: Find tickets\n      description: Finds tickets in the IT workspace.\n      defaults: {per_page: 50}\n      fixed: {workspace_id: 3, filter_name: open}\n";

#[tokio::test]
async fn overrides_rename_tools_fill_defaults_and_pin_fixed_arguments() {
    let upstream = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [], "total_count": 0})),
        )
        .mount(&upstream)
        .await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-shaped-000001", "shaped", SHAPED, &upstream.uri());
    let client = connect(&url, "2025-11-25", None).await.expect("connect");
    let tools = client.list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert!(names.contains(&"find_tickets"), "{names:?}");
    assert!(
        !names.contains(&"list_all_atomicwork_requests_search"),
        "{names:?}"
    );
    let shown = tools
        .iter()
        .find(|t| t.name == "find_tickets")
        .expect("listed");
    assert_eq!(shown.title.as_deref(), Some("Find tickets"));
    let props = shown
        .input_schema
        .get("properties")
        .and_then(Value::as_object)
        .expect("props");
    assert!(!props.contains_key("workspace_id") && !props.contains_key("filter_name"));
    assert_eq!(props["per_page"]["default"], 50);

    let call = |arguments: Value| {
        let client = &client;
        async move {
            client
                .call_tool(
                    CallToolRequestParams::new("find_tickets").with_arguments(args(arguments)),
                )
                .await
        }
    };
    // Omitted: the default and the fixed values are sent.
    let result = call(json!({})).await.expect("call");
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    // The caller tries to change the fixed arguments and gives its own page size.
    let result = call(json!({"workspace_id": 9, "filter_name": "all", "per_page": 5}))
        .await
        .expect("call");
    assert_ne!(result.is_error, Some(true), "{}", text_of(&result));
    let received = upstream.received_requests().await.expect("recording");
    assert_eq!(received.len(), 2);
    let query = |i: usize| {
        let mut q: Vec<(String, String)> = received[i]
            .url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        q.sort();
        q
    };
    for (i, per_page) in [(0, "50"), (1, "5")] {
        assert_eq!(received[i].url.path(), "/api/v1/workspaces/3/requests/list");
        assert_eq!(
            received[i]
                .headers
                .get("x-workspace-id")
                .and_then(|v| v.to_str().ok()),
            Some("3")
        );
        assert_eq!(
            query(i),
            [
                ("filter_name".to_string(), "open".to_string()),
                ("page".to_string(), "1".to_string()),
                ("per_page".to_string(), per_page.to_string()),
            ]
        );
    }
    // The catalog name is unknown to clients of this server.
    let err = client
        .call_tool(CallToolRequestParams::new(
            "list_all_atomicwork_requests_search",
        ))
        .await
        .expect_err("the old name is unknown");
    assert!(format!("{err:?}").contains("Unknown tool"), "{err:?}");
    assert_eq!(upstream.received_requests().await.map(|r| r.len()), Some(2));
    let _ = client.cancel().await;

    // Discovery exposure reaches the shaped tool by its new name only, with the same rules.
    let spec = format!("{SHAPED}  toolExposure: discovery\n");
    let url = plane.serve("tok-shaped-000002", "shaped-d", &spec, &upstream.uri());
    let client = connect(&url, "2025-11-25", None).await.expect("connect");
    let found = client
        .call_tool(
            CallToolRequestParams::new("search_tools")
                .with_arguments(args(json!({"query": "find tickets"}))),
        )
        .await
        .expect("search");
    assert!(
        text_of(&found).contains("find_tickets"),
        "{}",
        text_of(&found)
    );
    let old = client
        .call_tool(
            CallToolRequestParams::new("call_tool").with_arguments(args(json!({
                "tool_name": "list_all_atomicwork_requests_search", "arguments": {}
            }))),
        )
        .await
        .expect("tool error");
    assert_eq!(old.is_error, Some(true));
    let new = client
        .call_tool(
            CallToolRequestParams::new("call_tool").with_arguments(args(json!({
                "tool_name": "find_tickets", "arguments": {"workspace_id": 8}
            }))),
        )
        .await
        .expect("call_tool");
    assert_ne!(new.is_error, Some(true), "{}", text_of(&new));
    let received = upstream.received_requests().await.expect("recording");
    assert_eq!(received.len(), 3);
    assert_eq!(received[2].url.path(), "/api/v1/workspaces/3/requests/list");
    let _ = client.cancel().await;
}

#[test]
fn a_bad_override_is_refused_naming_the_field() {
    let catalog = Catalog::builtin().expect("catalog");
    let yaml = common::server_yaml(
        "bad",
        "  toolOverrides:\n    list_all_atomicwork_requests_search:\n      fixed: {per_page: 1000}\n",
    );
    let server: atomicwork_mcp::k8s::crd::AtomicworkMcpServer =
        serde_saphyr::from_str(&yaml).expect("manifest parses");
    let res = atomicwork_mcp::k8s::resolve::resolve(
        &server,
        &common::secrets(),
        &catalog,
        jiff::Timestamp::now(),
        &Default::default(),
    );
    let problem = res.view.expect_err("per_page 1000 does not fit");
    assert!(
        problem
            .to_string()
            .starts_with("spec.toolOverrides.list_all_atomicwork_requests_search.fixed.per_page:"),
        "{problem}"
    );
}
