//! Every tool of the built-in catalog against a real HTTP server: the exact method, path,
//! query, headers and body a representative call produces.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{KEY, args, b64, builtin, file_arg, parse_multipart, target, tool, upstream};
use crate::upstream::{OutcomeClass, USER_AGENT};

/// (part name, file name, content type, bytes).
type ExpectedPart = (
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    Vec<u8>,
);

enum Body {
    None,
    Json(Value),
    /// The parts, in order.
    Multipart(Vec<ExpectedPart>),
}

struct Case {
    tool: &'static str,
    args: Value,
    method: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    workspace: &'static str,
    body: Body,
}

fn filter(attribute: &str, value: &str) -> Value {
    json!([{"attribute": attribute, "operator": "IS_ANY_OF", "values": [{"value": value}]}])
}

fn cases() -> Vec<Case> {
    use Body::{Json, Multipart, None as NoBody};
    let png = vec![0x89, b'P', b'N', b'G', 0, 1, 2];
    vec![
        Case {
            tool: "list_all_atomicwork_audit_logs",
            args: json!({"search_key": "login failed", "per_page": 50}),
            method: "GET",
            path: "/api/v1/audit-logs",
            query: Some("per_page=50&search_key=login%20failed&page=1"),
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "create_a_atomicwork_change_management_change",
            args: json!({"subject": "Upgrade DB", "change_template": 3, "priority": "HIGH", "requester": 42,
                         "tags": [1, 2], "custom_fields": {"risk": "low"}, "problem_display_id": "PRB-7",
                         "workspace_id": 9}),
            method: "POST",
            path: "/api/v1/change-management/changes",
            query: Some("problem_display_id=PRB-7"),
            workspace: "9",
            body: Json(
                json!({"subject": "Upgrade DB", "change_template": 3, "priority": "HIGH", "requester": 42,
                              "tags": [1, 2], "custom_fields": {"risk": "low"}, "workspace_id": 9}),
            ),
        },
        Case {
            tool: "list_all_atomicwork_assets_search",
            args: json!({"search_key": "macbook", "body": filter("status", "AVAILABLE")}),
            method: "POST",
            path: "/api/v1/assets/list",
            query: Some("search_key=macbook&page=1"),
            workspace: "7",
            body: Json(filter("status", "AVAILABLE")),
        },
        Case {
            tool: "get_single_atomicwork_requests_id_by_id",
            args: json!({"id": 1234}),
            method: "GET",
            path: "/api/v1/requests/1234",
            query: None,
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "create_a_atomicwork_request_activity_note",
            args: json!({"display_id": "ITREQ-12", "description": "<p>Restarted</p>", "is_private": true,
                         "source": "API"}),
            method: "POST",
            path: "/api/v1/requests/ITREQ-12/activity-notes",
            query: None,
            workspace: "7",
            body: Json(
                json!({"description": "<p>Restarted</p>", "is_private": true, "source": "API"}),
            ),
        },
        Case {
            tool: "list_all_atomicwork_service_catalog_categories",
            args: json!({"category_type": "INCIDENT"}),
            method: "GET",
            path: "/api/v1/workspaces/7/catalogue/categories",
            query: Some("category_type=INCIDENT&page=1"),
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "list_all_atomicwork_forms_requests",
            args: json!({"request_type": "INCIDENT", "service_item_ids": [5, 6], "workspace_id": 3}),
            method: "GET",
            path: "/api/v1/forms/requests",
            query: Some(
                "request_type=INCIDENT&workspace_id=3&service_item_ids=5&service_item_ids=6",
            ),
            workspace: "3",
            body: NoBody,
        },
        Case {
            tool: "create_a_atomicwork_request",
            args: json!({"subject": "Laptop broken", "request_type": "INCIDENT", "requester": 42,
                         "cc_emails": ["a@example.com"]}),
            method: "POST",
            path: "/api/v1/requests",
            query: None,
            workspace: "7",
            body: Json(
                json!({"subject": "Laptop broken", "request_type": "INCIDENT", "requester": 42,
                              "cc_emails": ["a@example.com"]}),
            ),
        },
        Case {
            tool: "list_all_atomicwork_assessment_forms",
            args: json!({"display_id": "PRB-7"}),
            method: "GET",
            path: "/api/v1/problems/PRB-7/assessment-form",
            query: None,
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "create_a_atomicwork_assessment_form",
            args: json!({"display_id": "PRB-7", "form_fields": {"root_cause": "disk full"}}),
            method: "POST",
            path: "/api/v1/problems/PRB-7/assessment-form",
            query: None,
            workspace: "7",
            body: Json(json!({"form_fields": {"root_cause": "disk full"}})),
        },
        Case {
            tool: "list_all_atomicwork_assets",
            args: json!({"per_page": 10, "sort_order": "NAME_ASC"}),
            method: "POST",
            path: "/api/v1/assets/list",
            query: Some("per_page=10&sort_order=NAME_ASC&page=1"),
            workspace: "7",
            body: Json(json!([])),
        },
        Case {
            tool: "create_a_atomicwork_asset",
            args: json!({"asset_type_id": 4, "form_fields": {"name": "MBP-1"}}),
            method: "POST",
            path: "/api/v1/assets",
            query: None,
            workspace: "7",
            body: Json(json!({"asset_type_id": 4, "form_fields": {"name": "MBP-1"}})),
        },
        Case {
            tool: "list_all_atomicwork_workspaces",
            args: json!({"is_member_of": true, "page": 2}),
            method: "GET",
            path: "/api/v1/workspaces",
            query: Some("page=2&is_member_of=true"),
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "list_all_atomicwork_requester_entities",
            args: json!({"request_id": "ITREQ-12", "search_key": "ann"}),
            method: "GET",
            path: "/api/v1/forms/REQUEST/requester/entities",
            query: Some("request_id=ITREQ-12&search_key=ann&page=1"),
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "list_all_atomicwork_workspace_members",
            args: json!({"workspace_id": 5, "search_key": "bob"}),
            method: "GET",
            path: "/api/v1/workspaces/5/members",
            query: Some("search_key=bob&page=1"),
            workspace: "5",
            body: NoBody,
        },
        Case {
            tool: "update_a_atomicwork_workspace_member_by_id",
            args: json!({"id": 77, "type": "EMPLOYEE", "org_roles": [3], "extra_field": "x"}),
            method: "PATCH",
            path: "/api/v1/workspaces/7/members/77",
            query: None,
            workspace: "7",
            body: Json(json!({"type": "EMPLOYEE", "org_roles": [3], "extra_field": "x"})),
        },
        Case {
            tool: "list_all_atomicwork_service_catalog_items",
            args: json!({"category_id": 11, "is_published": false}),
            method: "GET",
            path: "/api/v1/workspaces/7/catalogue/items",
            query: Some("category_id=11&is_published=false&page=1"),
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "get_single_atomicwork_requests_number_by_id",
            args: json!({"id": "ITREQ-12"}),
            method: "GET",
            path: "/api/v1/requests/ITREQ-12",
            query: None,
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "atomicwork_requests_number_partial_update",
            args: json!({"id": "ITREQ-12", "status": "RESOLVED", "resolution_notes": "fixed"}),
            method: "PATCH",
            path: "/api/v1/requests/ITREQ-12",
            query: None,
            workspace: "7",
            body: Json(json!({"status": "RESOLVED", "resolution_notes": "fixed"})),
        },
        Case {
            tool: "delete_a_atomicwork_requests_number_by_id",
            args: json!({"id": "ITREQ-12"}),
            method: "DELETE",
            path: "/api/v1/requests/ITREQ-12",
            query: None,
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "create_a_atomicwork_requests_v_2",
            args: json!({"subject": "VPN down", "request_source": "API", "workspace_id": 9}),
            method: "POST",
            path: "/api/v1/requests/create",
            query: None,
            workspace: "9",
            body: Json(json!({"subject": "VPN down", "request_source": "API", "workspace_id": 9})),
        },
        Case {
            tool: "list_all_atomicwork_requests_search",
            args: json!({"sort_order": "CREATED_AT_DESC", "body": filter("status", "OPEN")}),
            method: "POST",
            path: "/api/v1/workspaces/7/requests/list",
            query: Some("filter_name=all&sort_order=CREATED_AT_DESC&page=1"),
            workspace: "7",
            body: Json(filter("status", "OPEN")),
        },
        Case {
            tool: "list_all_atomicwork_requests_count",
            args: json!({"filter_name": "open", "body": filter("type", "INCIDENT")}),
            method: "POST",
            path: "/api/v1/workspaces/7/requests/count",
            query: Some("filter_name=open"),
            workspace: "7",
            body: Json(filter("type", "INCIDENT")),
        },
        Case {
            tool: "list_all_atomicwork_request_views",
            args: json!({}),
            method: "GET",
            path: "/api/v1/views/REQUEST",
            query: None,
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "list_all_atomicwork_request_priority_options",
            args: json!({"workspace_id": 12}),
            method: "GET",
            path: "/api/v1/workspaces/12/requests/priority-options",
            query: None,
            workspace: "12",
            body: NoBody,
        },
        Case {
            tool: "list_all_atomicwork_request_trash",
            args: json!({"per_page": 5}),
            method: "POST",
            path: "/api/v1/workspaces/7/requests/list",
            query: Some("per_page=5&filter_name=trash&page=1"),
            workspace: "7",
            body: Json(json!([])),
        },
        Case {
            tool: "list_all_atomicwork_user_lists",
            args: json!({"types": ["EMPLOYEE", "EXTERNAL"], "user_status": "ACTIVE"}),
            method: "GET",
            path: "/api/v1/users/list",
            query: Some("user_status=ACTIVE&types=EMPLOYEE&types=EXTERNAL&page=1"),
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "update_a_atomicwork_problem_task_by_id",
            args: json!({"display_id": "PRB-7", "id": 3, "status": "COMPLETE"}),
            method: "PUT",
            path: "/api/v1/problems/PRB-7/tasks/3",
            query: None,
            workspace: "7",
            body: Json(json!({"status": "COMPLETE"})),
        },
        Case {
            tool: "get_single_atomicwork_assets_id_by_id",
            args: json!({"id": 55, "source": "JAMF"}),
            method: "GET",
            path: "/api/v1/assets/55",
            query: Some("source=JAMF"),
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "update_a_atomicwork_assets_id_by_id",
            args: json!({"id": 55, "asset_type_id": 4, "form_fields": {"name": "MBP-2"}}),
            method: "PUT",
            path: "/api/v1/assets/55",
            query: None,
            workspace: "7",
            body: Json(json!({"asset_type_id": 4, "form_fields": {"name": "MBP-2"}})),
        },
        Case {
            tool: "get_single_atomicwork_change_management_changes_number_by_id",
            args: json!({"id": "CHG-3"}),
            method: "GET",
            path: "/api/v1/change-management/changes/CHG-3",
            query: None,
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "atomicwork_change_management_changes_number_partial_update",
            args: json!({"id": "CHG-3", "impact": "LOW"}),
            method: "PATCH",
            path: "/api/v1/change-management/changes/CHG-3",
            query: None,
            workspace: "7",
            body: Json(json!({"impact": "LOW"})),
        },
        Case {
            tool: "create_a_atomicwork_change_management_changes_create_with_file",
            args: json!({"subject": "Patch", "priority": "HIGH", "requester": 42,
                         "attachments": [file_arg("plan.txt", Some("text/plain"), b"rollout plan"),
                                         file_arg("diagram.png", None, &png)]}),
            method: "POST",
            path: "/api/v1/change-management/changes/create-with-files",
            query: None,
            workspace: "7",
            body: Multipart(vec![
                ("priority", None, None, b"HIGH".to_vec()),
                ("requester", None, None, b"42".to_vec()),
                ("subject", None, None, b"Patch".to_vec()),
                (
                    "attachments",
                    Some("plan.txt"),
                    Some("text/plain"),
                    b"rollout plan".to_vec(),
                ),
                (
                    "attachments",
                    Some("diagram.png"),
                    Some("application/octet-stream"),
                    png.clone(),
                ),
            ]),
        },
        Case {
            tool: "create_a_atomicwork_change_trash",
            args: json!({"display_id": "CHG-3"}),
            method: "PUT",
            path: "/api/v1/change-management/changes/CHG-3/trash",
            query: None,
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "list_all_atomicwork_change_activity_notes",
            args: json!({"display_id": "CHG-3", "next_page_token": "abc=="}),
            method: "GET",
            path: "/api/v1/change-management/changes/CHG-3/activity-notes",
            query: Some("next_page_token=abc%3D%3D&page=1"),
            workspace: "7",
            body: NoBody,
        },
        Case {
            tool: "create_a_atomicwork_user",
            args: json!({"email": "ann@example.com", "first_name": "Ann", "workspaces": [{"id": 3, "roles": [12]}],
                         "send_email": true}),
            method: "POST",
            path: "/api/v1/users",
            query: Some("send_email=true"),
            workspace: "7",
            body: Json(json!({"email": "ann@example.com", "first_name": "Ann",
                              "workspaces": [{"id": 3, "roles": [12]}]})),
        },
        Case {
            tool: "create_a_atomicwork_attachment",
            args: json!({"file": {"filename": "log.txt", "content_base64": b64(b"hello")}}),
            method: "POST",
            path: "/api/v1/attachments",
            query: None,
            workspace: "7",
            body: Multipart(vec![(
                "file",
                Some("log.txt"),
                Some("application/octet-stream"),
                b"hello".to_vec(),
            )]),
        },
    ]
}

#[test]
fn the_table_covers_every_built_in_tool_with_valid_arguments() {
    let covered: BTreeSet<&str> = cases().iter().map(|c| c.tool).collect();
    let catalog: BTreeSet<&str> = builtin().tools().iter().map(|t| t.name()).collect();
    assert_eq!(covered, catalog);
    assert_eq!(cases().len(), catalog.len(), "one case per tool");
    for c in cases() {
        let tool = tool(c.tool);
        assert_eq!(tool.validate(&args(c.args.clone())), Ok(()), "{}", c.tool);
        assert_eq!(tool.source.http.as_str(), c.method, "{}", c.tool);
    }
}

#[tokio::test]
async fn every_tool_sends_the_expected_request() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"data": [], "total_count": 0})),
        )
        .mount(&server)
        .await;
    let up = upstream();
    let target = target(&server.uri());
    for (i, case) in cases().into_iter().enumerate() {
        let outcome = up
            .call(&tool(case.tool), &args(case.args.clone()), &target)
            .await;
        assert_eq!(
            outcome.class,
            OutcomeClass::Ok,
            "{}: {:?}",
            case.tool,
            outcome.result
        );
        assert!(!outcome.result.is_error, "{}", case.tool);
        let received = server.received_requests().await.expect("recording is on");
        assert_eq!(received.len(), i + 1, "{}: exactly one request", case.tool);
        check(&case, &received[i]);
    }
}

fn header<'a>(r: &'a wiremock::Request, name: &str) -> Option<&'a str> {
    r.headers.get(name).and_then(|v| v.to_str().ok())
}

fn check(case: &Case, r: &wiremock::Request) {
    let t = case.tool;
    assert_eq!(r.method.as_str(), case.method, "{t}: method");
    assert_eq!(r.url.path(), case.path, "{t}: path");
    assert_eq!(r.url.query(), case.query, "{t}: query");
    assert_eq!(header(r, "x-api-key"), Some(KEY), "{t}: X-Api-Key");
    assert_eq!(
        header(r, "x-workspace-id"),
        Some(case.workspace),
        "{t}: X-Workspace-Id"
    );
    assert_eq!(header(r, "accept"), Some("application/json"), "{t}: Accept");
    assert_eq!(header(r, "user-agent"), Some(USER_AGENT), "{t}: User-Agent");
    assert!(
        header(r, "accept-encoding").is_some_and(|v| v.contains("gzip")),
        "{t}: gzip offered"
    );
    let content_type = header(r, "content-type");
    match &case.body {
        Body::None => {
            assert!(r.body.is_empty(), "{t}: no body");
            assert_eq!(content_type, None, "{t}: no content type");
        }
        Body::Json(expected) => {
            assert_eq!(content_type, Some("application/json"), "{t}: content type");
            let got: Value = serde_json::from_slice(&r.body).expect("body is JSON");
            assert_eq!(&got, expected, "{t}: body");
        }
        Body::Multipart(expected) => {
            let ct = content_type.expect("multipart content type");
            let parts = parse_multipart(ct, &r.body);
            let got: Vec<_> = parts
                .iter()
                .map(|p| {
                    (
                        p.name.as_str(),
                        p.filename.as_deref(),
                        p.content_type.as_deref(),
                        p.body.clone(),
                    )
                })
                .collect();
            let want: Vec<_> = expected
                .iter()
                .map(|(n, f, c, b)| (*n, *f, *c, b.clone()))
                .collect();
            assert_eq!(got, want, "{t}: multipart parts");
        }
    }
}
