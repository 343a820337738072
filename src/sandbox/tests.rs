//! End-to-end tests: a real sandbox server on a local port, driven over HTTP.

use std::collections::BTreeSet;

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use super::{SANDBOX_HEADER, Sandbox, spawn_local};

/// A client for one freshly seeded sandbox server.
struct Tenant {
    base: String,
    http: reqwest::Client,
    _task: tokio::task::JoinHandle<()>,
}

/// Status, body and whether the simulated header was present.
struct Reply {
    status: u16,
    body: Value,
    marked: bool,
}

impl Tenant {
    async fn start() -> Self {
        let started = spawn_local(Sandbox::seeded()).await;
        let (base, task) = match started {
            Ok(v) => v,
            Err(e) => panic!("sandbox did not start: {e}"),
        };
        Self {
            base,
            http: reqwest::Client::new(),
            _task: task,
        }
    }

    fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("X-Api-Key", "sandbox-test-key")
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> Reply {
        let response = match builder.send().await {
            Ok(r) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = response.status().as_u16();
        let marked = response
            .headers()
            .get(SANDBOX_HEADER)
            .is_some_and(|v| v == "simulated");
        let text = response.text().await.unwrap_or_default();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply {
            status,
            body,
            marked,
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        let mut builder = self.request(method, path);
        if let Some(body) = body {
            builder = builder.json(&body);
        }
        self.send(builder).await
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, path, Some(body)).await
    }

    async fn multipart(&self, path: &str, form: Form) -> Reply {
        self.send(self.request(Method::POST, path).multipart(form))
            .await
    }

    /// `display_id`s of the workspace request list for a filter body.
    async fn request_ids(&self, ws: u64, query: &str, filters: Value) -> Vec<String> {
        let path = format!("/api/v1/workspaces/{ws}/requests/list?page=1&per_page=100&{query}");
        let reply = self.post(&path, filters).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        display_ids(&reply.body)
    }
}

fn display_ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["data"]
        .as_array()
        .map(|d| {
            d.iter()
                .filter_map(|r| r["display_id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

fn filter(attribute: &str, operator: &str, values: &[Value]) -> Value {
    let values: Vec<Value> = values.iter().map(|v| json!({"value": v})).collect();
    json!({"attribute": attribute, "operator": operator, "values": values})
}

fn file(name: &str, mime: &str, bytes: &'static [u8]) -> Part {
    match Part::bytes(bytes).file_name(name.to_owned()).mime_str(mime) {
        Ok(p) => p,
        Err(e) => panic!("bad mime type: {e}"),
    }
}

#[tokio::test]
async fn sandbox_requires_an_api_key() {
    let t = Tenant::start().await;
    let url = format!("{}/api/v1/workspaces?page=1", t.base);
    for key in [None, Some(""), Some("  ")] {
        let mut builder = t.http.get(&url);
        if let Some(key) = key {
            builder = builder.header("X-Api-Key", key);
        }
        let reply = t.send(builder).await;
        assert_eq!(reply.status, 401);
        assert!(reply.marked);
        assert_eq!(
            reply.body,
            json!({"error": "Access Token X-Api-Key is missing/invalid", "code": "UNAUTHORIZED"})
        );
    }
    assert_eq!(t.get("/api/v1/workspaces?page=1").await.status, 200);
}

/// How one table row's body is sent.
enum Send {
    Empty,
    Json(Value),
    Files(fn() -> Form),
}

/// One representative call per tool: (tool number, method, path, body, status,
/// JSON pointer that must hold `expected`, or be non-null when `expected` is null).
type Row = (u8, Method, &'static str, Send, u16, &'static str, Value);

fn change_form() -> Form {
    Form::new()
        .text("subject", "Replace Berlin VPN gateway power supply")
        .text("priority", "HIGH")
        .part(
            "attachments",
            file("psu-quote.pdf", "application/pdf", b"%PDF-1.7 quote"),
        )
}

fn upload_form() -> Form {
    Form::new().part("file", file("router.log", "text/plain", b"tunnel down\n"))
}

#[rustfmt::skip]
fn rows() -> Vec<Row> {
    use Method as M;
    let list = || Send::Json(json!([]));
    vec![
        (1, M::GET, "/api/v1/audit-logs?page=1", Send::Empty, 200, "/total_count", json!(12)),
        (2, M::POST, "/api/v1/change-management/changes", Send::Json(json!({"subject": "Rotate VPN certificates"})), 201, "/display_id", json!("CHG-3")),
        (3, M::POST, "/api/v1/assets/list?page=1&search_key=laptop", list(), 200, "/total_count", json!(4)),
        (4, M::GET, "/api/v1/requests/5003", Send::Empty, 200, "/display_id", json!("ITREQ-3")),
        (5, M::POST, "/api/v1/requests/ITREQ-1/activity-notes", Send::Json(json!({"description": "<p>Imaging done.</p>"})), 201, "/author/id", json!(101)),
        (6, M::GET, "/api/v1/workspaces/1/catalogue/categories?page=1", Send::Empty, 200, "/total_count", json!(3)),
        (7, M::GET, "/api/v1/forms/requests?workspace_id=1&request_type=INCIDENT", Send::Empty, 200, "/data/0/id", json!(52)),
        (8, M::POST, "/api/v1/requests", Send::Json(json!({"subject": "Badge reader broken", "request_type": "INCIDENT"})), 201, "/display_id", json!("ITREQ-10")),
        (9, M::GET, "/api/v1/problems/PRB-1/assessment-form", Send::Empty, 200, "/form_fields/risk_level", json!("HIGH")),
        (10, M::POST, "/api/v1/problems/PRB-1/assessment-form", Send::Json(json!({"form_fields": {"root_cause": "IPsec rekey bug in 7.1.9"}})), 201, "/form_fields/root_cause", json!("IPsec rekey bug in 7.1.9")),
        (11, M::POST, "/api/v1/assets/list?page=1&sort_order=NAME_DESC", list(), 200, "/data/0/id", json!(3010)),
        (12, M::POST, "/api/v1/assets", Send::Json(json!({"asset_type_id": 2, "form_fields": {"name": "MN-0060 24-inch monitor"}})), 201, "/id", json!(3011)),
        (13, M::GET, "/api/v1/workspaces?page=1", Send::Empty, 200, "/total_count", json!(2)),
        (14, M::GET, "/api/v1/forms/REQUEST/requester/entities?page=1&workspace_id=2&request_form_type=SERVICE_REQUEST", Send::Empty, 200, "/total_count", json!(4)),
        (15, M::GET, "/api/v1/workspaces/1/members?page=1", Send::Empty, 200, "/total_count", json!(8)),
        (16, M::PATCH, "/api/v1/workspaces/1/members/102", Send::Json(json!({"org_roles": ["Service Desk Agent", "Change Approver"]})), 200, "/org_roles/1", json!("Change Approver")),
        (17, M::GET, "/api/v1/workspaces/1/catalogue/items?page=1&is_published=true", Send::Empty, 200, "/total_count", json!(7)),
        (18, M::GET, "/api/v1/requests/ITREQ-1", Send::Empty, 200, "/requester/name", json!("Hannah Becker")),
        (19, M::PATCH, "/api/v1/requests/ITREQ-6", Send::Json(json!({"status": "IN_PROGRESS", "assignee": 103})), 200, "/assignee/name", json!("Priya Raman")),
        (20, M::DELETE, "/api/v1/requests/ITREQ-7", Send::Empty, 200, "/deleted", json!(true)),
        (21, M::POST, "/api/v1/requests/create", Send::Json(json!({"subject": "VPN down for me too", "request_type": "INCIDENT", "request_source": "PORTAL", "requester": 107, "workspace_id": 1, "agent_group": 202})), 201, "/agent_group/name", json!("Network Operations")),
        (22, M::POST, "/api/v1/workspaces/2/requests/list?filter_name=all&page=1", list(), 200, "/total_count", json!(3)),
        (23, M::POST, "/api/v1/workspaces/1/requests/count?filter_name=open_incidents", list(), 200, "/count", json!(7)),
        (24, M::GET, "/api/v1/views/REQUEST", Send::Empty, 200, "/data/0/filter_name", json!("all")),
        (25, M::GET, "/api/v1/workspaces/1/requests/priority-options", Send::Empty, 200, "/data/0/value", json!("URGENT")),
        (26, M::POST, "/api/v1/workspaces/1/requests/list?filter_name=trash&page=1", list(), 200, "/data/0/display_id", json!("ITREQ-9")),
        (27, M::GET, "/api/v1/users/list?page=1&types[]=EXTERNAL", Send::Empty, 200, "/data/0/email", json!("aiko.tanaka@example.com")),
        (28, M::PUT, "/api/v1/problems/PRB-1/tasks/802", Send::Json(json!({"status": "IN_PROGRESS"})), 200, "/status", json!("IN_PROGRESS")),
        (29, M::GET, "/api/v1/assets/3001?source=MDM", Send::Empty, 200, "/assigned_to/id", json!(101)),
        (30, M::PUT, "/api/v1/assets/3006", Send::Json(json!({"asset_type_id": 2, "form_fields": {"name": "MN-0051 27-inch 4K monitor", "assigned_to": 106}})), 200, "/status", json!("IN_USE")),
        (31, M::GET, "/api/v1/change-management/changes/CHG-1", Send::Empty, 200, "/problem_display_id", json!("PRB-1")),
        (32, M::PATCH, "/api/v1/change-management/changes/CHG-2", Send::Json(json!({"priority": "MEDIUM"})), 200, "/priority", json!("MEDIUM")),
        (33, M::POST, "/api/v1/change-management/changes/create-with-files", Send::Files(change_form), 201, "/attachments/0/file_name", json!("psu-quote.pdf")),
        (34, M::PUT, "/api/v1/change-management/changes/CHG-2/trash", Send::Empty, 200, "/trashed", json!(true)),
        (35, M::GET, "/api/v1/change-management/changes/CHG-1/activity-notes?page=1", Send::Empty, 200, "/total_count", json!(3)),
        (36, M::POST, "/api/v1/users?send_email=true", Send::Json(json!({"email": "noor.haddad@example.com", "first_name": "Noor", "last_name": "Haddad", "workspaces": [1]})), 201, "/user_status", json!("INVITED")),
        (37, M::POST, "/api/v1/attachments", Send::Files(upload_form), 201, "/content_type", json!("text/plain")),
    ]
}

fn is_list(body: &Value) -> bool {
    body["data"].is_array() && body["total_count"].is_u64() && body["total_pages"].is_u64()
}

#[tokio::test]
async fn sandbox_answers_every_catalog_route() {
    let t = Tenant::start().await;
    let rows = rows();
    let tools: BTreeSet<u8> = rows.iter().map(|r| r.0).collect();
    assert_eq!(
        tools,
        (1..=37).collect::<BTreeSet<u8>>(),
        "one row per tool"
    );
    for (tool, method, path, body, status, pointer, expected) in rows {
        let is_read = method == Method::GET || path.contains("/list") || path.contains("/count");
        let builder = t.request(method, path).header("X-Workspace-Id", "1");
        let builder = match body {
            Send::Empty => builder,
            Send::Json(v) => builder.json(&v),
            Send::Files(form) => builder.multipart(form()),
        };
        let reply = t.send(builder).await;
        assert_eq!(reply.status, status, "tool {tool} {path}: {}", reply.body);
        assert!(reply.marked, "tool {tool}: no simulated marker");
        let found = reply.body.pointer(pointer);
        match expected {
            Value::Null => assert!(
                found.is_some_and(|v| !v.is_null()),
                "tool {tool}: {pointer}"
            ),
            want => assert_eq!(
                found,
                Some(&want),
                "tool {tool}: {pointer} in {}",
                reply.body
            ),
        }
        let list_shaped = path.contains("page=")
            || path.ends_with("/REQUEST")
            || path.ends_with("/priority-options");
        if is_read && list_shaped {
            assert!(
                is_list(&reply.body),
                "tool {tool}: not a list envelope: {}",
                reply.body
            );
        }
    }
}

#[tokio::test]
async fn sandbox_pages_lists() {
    let t = Tenant::start().await;
    let page = |n: u32| format!("/api/v1/assets/list?page={n}&per_page=4");
    let first = t.post(&page(1), json!([])).await;
    assert_eq!(
        (
            first.body["total_count"].as_u64(),
            first.body["total_pages"].as_u64()
        ),
        (Some(10), Some(3))
    );
    let second = t.post(&page(2), json!([])).await;
    assert_eq!(second.body["data"][0]["id"], json!(3005));
    let third = t.post(&page(3), json!([])).await;
    assert_eq!(third.body["data"].as_array().map(Vec::len), Some(2));
    let past = t.post(&page(9), json!([])).await;
    assert_eq!(
        (past.status, past.body["data"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    for bad in [
        "page=1&per_page=0",
        "page=1&per_page=101",
        "page=0",
        "page=x",
        "per_page=5",
    ] {
        let reply = t
            .post(&format!("/api/v1/assets/list?{bad}"), json!([]))
            .await;
        assert_eq!(reply.status, 400, "{bad}");
        assert_eq!(reply.body["code"], json!("BAD_REQUEST"));
    }
    let missing = t.get("/api/v1/users/list").await;
    assert_eq!(
        missing.body,
        json!({"error": "page is required", "code": "BAD_REQUEST"})
    );
    let default = t.get("/api/v1/users/list?page=1").await;
    assert_eq!(default.body["total_pages"], json!(1));
}

#[tokio::test]
async fn sandbox_follows_next_page_tokens() {
    let t = Tenant::start().await;
    let mut seen = Vec::new();
    let mut reply = t.get("/api/v1/audit-logs?page=1&per_page=5").await;
    loop {
        let data = reply.body["data"].as_array().cloned().unwrap_or_default();
        seen.extend(data.iter().filter_map(|e| e["id"].as_u64()));
        match reply.body["next_page_token"].as_str() {
            Some(token) => {
                let path = format!("/api/v1/audit-logs?page=1&per_page=5&next_page_token={token}");
                reply = t.get(&path).await;
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 12);
    assert_eq!(seen.first(), Some(&9012), "newest first");
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 12);

    let notes = t
        .get("/api/v1/change-management/changes/CHG-1/activity-notes?page=1&per_page=2")
        .await;
    let token = notes.body["next_page_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!token.is_empty());
    let rest = t.get(&format!("/api/v1/change-management/changes/CHG-1/activity-notes?page=1&per_page=2&next_page_token={token}")).await;
    assert_eq!(rest.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(rest.body["next_page_token"], Value::Null);
    let bad = t
        .get("/api/v1/audit-logs?page=1&next_page_token=garbage")
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn sandbox_filters_requests_and_assets() {
    let t = Tenant::start().await;
    let outage = json!([
        filter("type", "EQUALS", &[json!("INCIDENT")]),
        filter("tags", "CONTAINS", &[json!("vpn")]),
    ]);
    assert_eq!(
        t.request_ids(1, "filter_name=all", outage).await,
        ["ITREQ-3", "ITREQ-4", "ITREQ-5"]
    );
    let done = json!([filter(
        "status",
        "IS_ANY_OF",
        &[json!("RESOLVED"), json!("CLOSED")]
    )]);
    assert_eq!(
        t.request_ids(1, "filter_name=all", done).await,
        ["ITREQ-2", "ITREQ-7"]
    );
    let unassigned = json!([
        filter("assignee", "IS_NULL", &[]),
        filter("request_type", "NOT_EQUALS", &[json!("PROBLEM")]),
    ]);
    assert_eq!(
        t.request_ids(1, "filter_name=all", unassigned).await,
        ["ITREQ-3", "ITREQ-4", "ITREQ-5"]
    );
    let by_requester = json!([filter("requester_id", "IN", &[json!(104)])]);
    assert_eq!(
        t.request_ids(1, "filter_name=all", by_requester).await,
        ["ITREQ-2", "ITREQ-4"]
    );
    assert_eq!(
        t.request_ids(1, "search_key=GATEWAY", json!([])).await,
        ["CHG-1", "ITREQ-3", "ITREQ-4", "ITREQ-5", "PRB-1"]
    );
    assert_eq!(
        t.request_ids(2, "filter_name=all", json!([])).await,
        ["HRREQ-1", "HRREQ-2", "HRREQ-3"]
    );
    assert_eq!(
        t.request_ids(1, "filter_name=open_incidents", json!([]))
            .await,
        ["ITREQ-3", "ITREQ-4", "ITREQ-5", "ITREQ-6", "ITREQ-8"]
    );

    let tenant = &t;
    let assets = |body: Value| async move {
        let reply = tenant.post("/api/v1/assets/list?page=1", body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["data"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|a| a["id"].as_u64())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        assets(json!([filter("status", "EQUALS", &[json!("AVAILABLE")])])).await,
        [3004, 3006, 3008, 3010]
    );
    assert_eq!(
        assets(json!([filter(
            "asset_type",
            "EQUALS",
            &[json!("Software License")]
        )]))
        .await,
        [3009, 3010]
    );
    let not_hw = json!([filter(
        "asset_type_id",
        "IS_NOT_ANY_OF",
        &[json!(1), json!(2), json!(3)]
    )]);
    assert_eq!(assets(not_hw).await, [3009, 3010]);
    assert_eq!(
        assets(json!([
            filter("assigned_to", "IS_NOT_NULL", &[]),
            filter("location", "TEXT_CONTAINS", &[json!("berlin")])
        ]))
        .await,
        [3003, 3007]
    );
}

#[tokio::test]
async fn sandbox_rejects_bad_filters() {
    let t = Tenant::start().await;
    let cases = [
        (
            json!([filter("status", "SOUNDS_LIKE", &[json!("OPEN")])]),
            "unknown filter operator 'SOUNDS_LIKE'",
        ),
        (json!({"status": "OPEN"}), "must be a JSON array"),
        (
            json!([filter("colour", "EQUALS", &[json!("red")])]),
            "unknown filter attribute 'colour'",
        ),
        (
            json!([filter("status", "EQUALS", &[])]),
            "needs exactly 1 value",
        ),
    ];
    for (body, message) in cases {
        for path in [
            "/api/v1/workspaces/1/requests/list?page=1",
            "/api/v1/assets/list?page=1",
        ] {
            let reply = t.post(path, body.clone()).await;
            assert_eq!(reply.status, 400, "{path} {body}");
            let error = reply.body["error"].as_str().unwrap_or_default();
            assert!(error.contains(message), "{error}");
        }
    }
    let bad_view = t
        .post(
            "/api/v1/workspaces/1/requests/list?page=1&filter_name=nope",
            json!([]),
        )
        .await;
    assert_eq!(bad_view.status, 400);
}

/// The operators the catalog lets a filter tool send, for every filter tool.
fn catalog_operators() -> BTreeSet<String> {
    let catalog = match crate::core::catalog::Catalog::builtin() {
        Ok(c) => c,
        Err(e) => panic!("catalog: {e}"),
    };
    catalog
        .tools()
        .iter()
        .flat_map(|t| t.source.params.iter())
        .filter_map(|p| p.operators.clone())
        .flatten()
        .collect()
}

#[tokio::test]
async fn sandbox_accepts_every_operator_the_catalog_sends() {
    let t = Tenant::start().await;
    let operators = catalog_operators();
    assert_eq!(operators.len(), 23, "{operators:?}");
    for op in &operators {
        let values: Vec<Value> = match op.as_str() {
            "IS_NULL" | "IS_NOT_NULL" => vec![],
            "IS_BETWEEN" => vec![json!("2026-01-01"), json!("2026-03-31")],
            "IS_WITHIN" => vec![json!("P30D")],
            _ => vec![json!("2026-03-01")],
        };
        for path in [
            "/api/v1/workspaces/1/requests/list?page=1",
            "/api/v1/workspaces/1/requests/count",
            "/api/v1/assets/list?page=1",
        ] {
            let body = json!([filter("created_at", op, &values)]);
            let reply = t.post(path, body).await;
            assert_eq!(reply.status, 200, "{path} {op}: {}", reply.body);
        }
    }
}

#[tokio::test]
async fn sandbox_applies_the_comparison_and_negated_operators() {
    let t = Tenant::start().await;
    let tenant = &t;
    let assets = |body: Value| async move {
        let reply = tenant.post("/api/v1/assets/list?page=1", body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        reply.body["data"]
            .as_array()
            .map(|d| {
                d.iter()
                    .filter_map(|a| a["id"].as_u64())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    let above = json!([filter("id", "GREATER_THAN", &[json!(3008)])]);
    assert_eq!(assets(above).await, [3009, 3010]);
    let at_most = json!([filter("asset_type_id", "LESS_THAN_EQUALS", &[json!(1)])]);
    assert_eq!(assets(at_most).await, [3001, 3002, 3003, 3004]);
    let bought = json!([filter(
        "updated_at",
        "GREATER_THAN_EQUALS",
        &[json!("2026-02-20")]
    )]);
    assert_eq!(assets(bought).await, [3004, 3005, 3009]);
    let elsewhere = json!([
        filter("location", "NOT_CONTAINS", &[json!("stockroom")]),
        filter("location", "TEXT_DOES_NOT_CONTAINS", &[json!("berlin")]),
        filter("status", "NOT_IN", &[json!("AVAILABLE")]),
    ]);
    assert_eq!(assets(elsewhere).await, [3001, 3002, 3005, 3009]);
    let exactly = json!([filter("location", "IS_EXACTLY", &[json!("Berlin")])]);
    assert_eq!(assets(exactly).await, [3003, 3007]);
    let lower = json!([filter("location", "IS_EXACTLY", &[json!("berlin")])]);
    assert_eq!(assets(lower).await, Vec::<u64>::new());
    // The sandbox clock starts at 2026-03-14T09:00:00Z.
    let recent = json!([
        filter("updated_at", "IS_WITHIN", &[json!("P5D")]),
        filter(
            "type",
            "IS_ANY_OF",
            &[json!("INCIDENT"), json!("SERVICE_REQUEST")]
        ),
    ]);
    assert_eq!(
        t.request_ids(1, "filter_name=all", recent).await,
        ["ITREQ-8"]
    );
}

#[tokio::test]
async fn sandbox_reports_missing_things_in_the_envelope() {
    let t = Tenant::start().await;
    let missing = t.get("/api/v1/requests/ITREQ-999").await;
    assert_eq!(missing.status, 404);
    assert_eq!(
        missing.body,
        json!({"error": "Request ITREQ-999 not found", "code": "NOT_FOUND"})
    );
    for path in [
        "/api/v1/change-management/changes/CHG-99",
        "/api/v1/assets/9999",
        "/api/v1/problems/PRB-9/assessment-form",
        "/api/v1/workspaces/99/members?page=1",
        "/api/v1/change-management/changes/CHG-99/activity-notes?page=1",
    ] {
        let reply = t.get(path).await;
        assert_eq!(
            (reply.status, reply.body["code"].clone()),
            (404, json!("NOT_FOUND")),
            "{path}"
        );
    }
    let task = t
        .call(
            Method::PUT,
            "/api/v1/problems/PRB-1/tasks/999",
            Some(json!({"status": "OPEN"})),
        )
        .await;
    assert_eq!(task.status, 404);
    let header = t
        .send(
            t.request(Method::GET, "/api/v1/views/REQUEST")
                .header("X-Workspace-Id", "99"),
        )
        .await;
    assert_eq!(
        header.body,
        json!({"error": "Workspace 99 not found", "code": "NOT_FOUND"})
    );
    for (value, status) in [("99", 404), ("it-desk", 400), ("2", 200)] {
        let builder = t
            .request(Method::GET, "/api/v1/requests/ITREQ-1")
            .header("X-Workspace-Id", value);
        assert_eq!(
            t.send(builder).await.status,
            status,
            "X-Workspace-Id: {value}"
        );
    }

    let route = t.get("/api/v1/nothing-here").await;
    assert_eq!(
        (route.status, route.body["code"].clone(), route.marked),
        (404, json!("NOT_FOUND"), true)
    );
    let method = t.call(Method::PATCH, "/api/v1/assets/3001", None).await;
    assert_eq!(
        (method.status, method.body["code"].clone(), method.marked),
        (405, json!("METHOD_NOT_ALLOWED"), true)
    );
    // An operation of the published API that no curated handler serves gets a generic
    // answer, in the same envelope.
    let generic = t.get("/api/v1/tags?page=1&per_page=1").await;
    assert_eq!(generic.status, 200);
    assert_eq!(generic.body["total_count"], 2);
    assert_eq!(generic.body["data"].as_array().map(Vec::len), Some(1));
    assert!(generic.marked);
    let deleted = t.call(Method::DELETE, "/api/v1/assets/3001", None).await;
    assert_eq!(deleted.status, 200);
    assert_eq!(t.get("/api/v1/assets/3001").await.status, 404);
    let bad_id = t.get("/api/v1/assets/laptop").await;
    assert_eq!(bad_id.status, 400);
}

#[tokio::test]
async fn sandbox_requires_the_tables_required_fields() {
    let t = Tenant::start().await;
    let subject = t
        .post("/api/v1/requests", json!({"description": "no subject"}))
        .await;
    assert_eq!(
        subject.body,
        json!({"error": "subject is required", "code": "BAD_REQUEST"})
    );
    let cases = [
        ("/api/v1/requests/create", json!({}), "subject is required"),
        (
            "/api/v1/change-management/changes",
            json!({"priority": "HIGH"}),
            "subject is required",
        ),
        (
            "/api/v1/requests/ITREQ-3/activity-notes",
            json!({"is_private": true}),
            "description is required",
        ),
        (
            "/api/v1/assets",
            json!({"form_fields": {"name": "x"}}),
            "asset_type_id is required",
        ),
        (
            "/api/v1/assets",
            json!({"asset_type_id": 1}),
            "form_fields is required",
        ),
        (
            "/api/v1/assets",
            json!({"asset_type_id": 1, "form_fields": {}}),
            "form_fields.name is required",
        ),
        (
            "/api/v1/users",
            json!({"first_name": "No"}),
            "email is required",
        ),
        (
            "/api/v1/problems/PRB-1/assessment-form",
            json!({}),
            "form_fields is required",
        ),
        (
            "/api/v1/requests",
            json!({"subject": "x", "priority": "SOON"}),
            "priority must be one of",
        ),
        (
            "/api/v1/users",
            json!({"email": "dana.whitfield@example.com"}),
            "already exists",
        ),
    ];
    for (path, body, message) in cases {
        let reply = t.post(path, body).await;
        assert!((400..500).contains(&reply.status), "{path}");
        let error = reply.body["error"].as_str().unwrap_or_default();
        assert!(error.contains(message), "{path}: {error}");
    }
    let raw = t
        .send(
            t.request(Method::POST, "/api/v1/requests")
                .header("content-type", "application/json")
                .body("{\"subject\": "),
        )
        .await;
    assert_eq!(raw.status, 400);
    assert!(
        raw.body["error"]
            .as_str()
            .unwrap_or_default()
            .starts_with("malformed JSON")
    );
    let patch = t
        .call(
            Method::PATCH,
            "/api/v1/requests/ITREQ-3",
            Some(json!({"display_id": "X-1"})),
        )
        .await;
    assert_eq!(patch.status, 400);
}

#[tokio::test]
async fn sandbox_keeps_a_created_change() {
    let t = Tenant::start().await;
    let body = json!({
        "subject": "Emergency: fail Berlin VPN over to the Frankfurt gateway",
        "change_template": 2, "priority": "URGENT", "impact": "HIGH", "urgency": "HIGH",
        "requester": 103, "assignee": 103, "agent_group": 202,
        "planned_change_start_date": "2026-03-14T10:00:00Z",
        "planned_change_completion_date": "2026-03-14T11:00:00Z",
        "linked_requests": ["ITREQ-3", "itreq-4", "ITREQ-5"], "tags": ["vpn"],
    });
    let created = t
        .post(
            "/api/v1/change-management/changes?problem_display_id=PRB-1",
            body,
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["display_id"], json!("CHG-3"));
    assert_eq!(
        created.body["change_type"],
        json!("EMERGENCY"),
        "from the template"
    );
    assert_eq!(created.body["created_at"], json!("2026-03-14T09:00:00Z"));
    assert_eq!(
        created.body["linked_requests"],
        json!(["ITREQ-3", "ITREQ-4", "ITREQ-5"])
    );

    let read = t.get("/api/v1/change-management/changes/CHG-3").await;
    assert_eq!(read.body, created.body);
    let changes = json!([filter("type", "EQUALS", &[json!("CHANGE")])]);
    assert_eq!(
        t.request_ids(1, "filter_name=all", changes).await,
        ["CHG-1", "CHG-2", "CHG-3"]
    );
    let incident = t.get("/api/v1/requests/ITREQ-4").await;
    assert_eq!(incident.body["linked_changes"], json!(["CHG-3"]));

    let patched = t
        .call(
            Method::PATCH,
            "/api/v1/change-management/changes/CHG-3",
            Some(json!({"status": "IMPLEMENTING", "custom_fields": {"bridge": "line-2"}})),
        )
        .await;
    assert_eq!(
        (
            patched.body["status"].clone(),
            patched.body["custom_fields"]["bridge"].clone()
        ),
        (json!("IMPLEMENTING"), json!("line-2"))
    );
    assert_eq!(
        t.get("/api/v1/change-management/changes/CHG-3").await.body["status"],
        json!("IMPLEMENTING")
    );
    let backwards = t
        .call(
            Method::PATCH,
            "/api/v1/change-management/changes/CHG-3",
            Some(json!({"planned_change_completion_date": "2026-03-13T00:00:00Z"})),
        )
        .await;
    assert_eq!(backwards.status, 400);
    let unknown_link = t
        .post(
            "/api/v1/change-management/changes",
            json!({"subject": "x", "linked_requests": ["ITREQ-404"]}),
        )
        .await;
    assert_eq!(unknown_link.status, 400);
}

#[tokio::test]
async fn sandbox_keeps_activity_notes_on_requests() {
    let t = Tenant::start().await;
    let before = t.get("/api/v1/requests/ITREQ-4").await;
    assert_eq!(before.body["notes_count"], json!(0));
    let note = json!({"description": "<p>Linked to the Berlin gateway outage.</p>", "is_private": true, "source": "slack", "mentions": [103]});
    let created = t
        .post("/api/v1/requests/ITREQ-4/activity-notes", note)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(
        (
            created.body["source"].clone(),
            created.body["mentions"][0]["id"].clone()
        ),
        (json!("SLACK"), json!(103))
    );
    let after = t.get("/api/v1/requests/ITREQ-4").await;
    assert_eq!(after.body["notes_count"], json!(1));
    assert_eq!(
        after.body["activity_notes"][0]["description"],
        json!("<p>Linked to the Berlin gateway outage.</p>")
    );
    assert_eq!(after.body["updated_at"], created.body["created_at"]);
    let by_id = t.get("/api/v1/requests/5004").await;
    assert_eq!(by_id.body, after.body);
    let bad_source = t
        .post(
            "/api/v1/requests/ITREQ-4/activity-notes",
            json!({"description": "x", "source": "FAX"}),
        )
        .await;
    assert_eq!(bad_source.status, 400);
}

#[tokio::test]
async fn sandbox_takes_multipart_uploads() {
    let t = Tenant::start().await;
    let uploaded = t.multipart("/api/v1/attachments", upload_form()).await;
    assert_eq!(uploaded.status, 201, "{}", uploaded.body);
    assert_eq!(
        uploaded.body,
        json!({"id": 4002, "file_name": "router.log", "content_type": "text/plain", "size": 12})
    );

    let form = Form::new()
        .text("subject", "Swap Berlin gateway power supply")
        .text("change_type", "EMERGENCY")
        .text("requester", "103")
        .text("tags", "vpn")
        .text("tags", "hardware")
        .text("attachments", "4002")
        .text("linked_requests[]", "ITREQ-3")
        .text(
            "data_json",
            r#"{"impact": "HIGH", "custom_fields": {"vendor_ticket": "RMA-88"}}"#,
        )
        .part(
            "attachments",
            file("psu-quote.pdf", "application/pdf", b"%PDF-1.7 quote"),
        )
        .part(
            "attachments",
            file("rack.jpg", "image/jpeg", b"\xFF\xD8\xFF"),
        );
    let created = t
        .multipart("/api/v1/change-management/changes/create-with-files", form)
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let c = &created.body;
    assert_eq!(
        (
            c["display_id"].clone(),
            c["change_type"].clone(),
            c["impact"].clone()
        ),
        (json!("CHG-3"), json!("EMERGENCY"), json!("HIGH"))
    );
    assert_eq!(c["tags"], json!(["vpn", "hardware"]));
    assert_eq!(c["custom_fields"]["vendor_ticket"], json!("RMA-88"));
    assert_eq!(c["linked_requests"], json!(["ITREQ-3"]));
    assert_eq!(
        c["attachments"],
        json!([
            {"id": 4002, "file_name": "router.log", "content_type": "text/plain", "size": 12},
            {"id": 4003, "file_name": "psu-quote.pdf", "content_type": "application/pdf", "size": 14},
            {"id": 4004, "file_name": "rack.jpg", "content_type": "image/jpeg", "size": 3},
        ])
    );
    assert_eq!(
        t.get("/api/v1/change-management/changes/CHG-3").await.body["attachments"],
        c["attachments"]
    );

    let no_file = t
        .multipart("/api/v1/attachments", Form::new().text("name", "x"))
        .await;
    assert_eq!(no_file.status, 400);
    let no_subject = t
        .multipart(
            "/api/v1/change-management/changes/create-with-files",
            Form::new().text("priority", "LOW"),
        )
        .await;
    assert_eq!(
        no_subject.body,
        json!({"error": "subject is required", "code": "BAD_REQUEST"})
    );
    let not_multipart = t.post("/api/v1/attachments", json!({"file": "x"})).await;
    assert_eq!(
        (not_multipart.status, not_multipart.body["code"].clone()),
        (400, json!("BAD_REQUEST"))
    );
    let bad_id = t
        .post(
            "/api/v1/change-management/changes",
            json!({"subject": "x", "attachments": [9999]}),
        )
        .await;
    assert_eq!(bad_id.status, 400);
}

#[tokio::test]
async fn sandbox_trashes_changes_and_deletes_requests() {
    let t = Tenant::start().await;
    let trashed = t
        .call(
            Method::PUT,
            "/api/v1/change-management/changes/CHG-1/trash",
            None,
        )
        .await;
    assert_eq!(
        (trashed.status, trashed.body["trashed"].clone()),
        (200, json!(true))
    );
    let read = t.get("/api/v1/change-management/changes/CHG-1").await;
    assert_eq!(read.body["trashed"], json!(true));
    let patch = t
        .call(
            Method::PATCH,
            "/api/v1/change-management/changes/CHG-1",
            Some(json!({"status": "CANCELLED"})),
        )
        .await;
    assert_eq!(
        (patch.status, patch.body["code"].clone()),
        (409, json!("CONFLICT"))
    );
    assert_eq!(
        t.request_ids(1, "filter_name=trash", json!([])).await,
        ["CHG-1", "ITREQ-9"]
    );
    assert!(
        !t.request_ids(1, "filter_name=all", json!([]))
            .await
            .contains(&"CHG-1".to_owned())
    );
    let again = t
        .call(
            Method::PUT,
            "/api/v1/change-management/changes/CHG-1/trash",
            None,
        )
        .await;
    assert_eq!(again.body["trashed_at"], trashed.body["trashed_at"]);

    let deleted = t
        .call(Method::DELETE, "/api/v1/requests/ITREQ-2", None)
        .await;
    assert_eq!(
        deleted.body,
        json!({"display_id": "ITREQ-2", "deleted": true})
    );
    assert_eq!(t.get("/api/v1/requests/ITREQ-2").await.status, 404);
    assert_eq!(
        t.call(Method::DELETE, "/api/v1/requests/ITREQ-2", None)
            .await
            .status,
        404
    );
    let next = t
        .post("/api/v1/requests", json!({"subject": "after a delete"}))
        .await;
    assert_eq!(
        next.body["display_id"],
        json!("ITREQ-10"),
        "numbers are not reused"
    );
}

#[tokio::test]
async fn sandbox_seed_supports_the_asset_audit_cross_check() {
    let t = Tenant::start().await;
    let asset = t.get("/api/v1/assets/3003").await;
    assert_eq!(asset.body["assigned_to_id"], json!(104));
    let log = t
        .get("/api/v1/audit-logs?page=1&per_page=100&search_key=LT-0163")
        .await;
    let latest = &log.body["data"][0];
    assert_eq!(
        (
            latest["id"].clone(),
            latest["changes"]["assigned_to"]["new"].clone()
        ),
        (json!(9008), json!(107))
    );

    let fixed = json!({"asset_type_id": 1, "form_fields": {"name": "LT-0163 Laptop Air 13", "assigned_to": 107, "serial_number": "C02GL7BBQ6L4"}});
    let put = t
        .call(Method::PUT, "/api/v1/assets/3003", Some(fixed))
        .await;
    assert_eq!(
        (
            put.body["assigned_to"]["name"].clone(),
            put.body["model"].clone()
        ),
        (json!("Tomás Rivera"), Value::Null)
    );
    let newest = t.get("/api/v1/audit-logs?page=1&per_page=1").await;
    assert_eq!(
        newest.body["data"][0]["changes"]["assigned_to"],
        json!({"old": 104, "new": 107})
    );
}

#[tokio::test]
async fn sandbox_is_deterministic() {
    let one = Tenant::start().await;
    let two = Tenant::start().await;
    for t in [&one, &two] {
        t.post("/api/v1/requests", json!({"subject": "same"})).await;
    }
    let a = one.get("/api/v1/requests/ITREQ-10").await.body;
    let b = two.get("/api/v1/requests/ITREQ-10").await.body;
    assert_eq!(a, b);
    assert_eq!(a["created_at"], json!("2026-03-14T09:00:00Z"));
}

#[tokio::test]
async fn sandbox_answers_500_when_its_state_is_poisoned() {
    let sandbox = Sandbox::seeded();
    let db = sandbox.db.clone();
    let poisoner = std::thread::spawn(move || {
        let _guard = db.lock();
        panic!("poisoning the sandbox state on purpose");
    });
    assert!(poisoner.join().is_err());
    let (base, _task) = match spawn_local(sandbox).await {
        Ok(v) => v,
        Err(e) => panic!("sandbox did not start: {e}"),
    };
    let reply = reqwest::Client::new()
        .get(format!("{base}/api/v1/workspaces?page=1"))
        .header("X-Api-Key", "k")
        .send()
        .await;
    let status = reply.map(|r| r.status().as_u16()).unwrap_or_default();
    assert_eq!(status, 500);
}
