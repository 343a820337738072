//! The built-in catalog and the filter semantics of `spec.methods`, `spec.tags` and
//! `spec.tools`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;

use atomicwork_mcp::core::catalog::{Catalog, FilterError, Location, ToolFilter, filter};
use serde_json::{Value, json};

fn catalog() -> Catalog {
    Catalog::builtin().expect("built-in catalog loads")
}

fn names(c: &Catalog, f: &ToolFilter) -> Vec<String> {
    filter(c, f)
        .expect("filter is valid")
        .iter()
        .map(|t| t.name().to_string())
        .collect()
}

fn methods(m: &[&str]) -> ToolFilter {
    ToolFilter {
        methods: Some(m.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

fn tags(t: &[&str]) -> ToolFilter {
    ToolFilter {
        tags: Some(t.iter().map(|s| s.to_string()).collect()),
        ..Default::default()
    }
}

#[test]
fn has_the_37_tools_with_unique_names() {
    let c = catalog();
    assert_eq!(c.len(), 37);
    let unique: BTreeSet<_> = c.tools().iter().map(|t| t.name()).collect();
    assert_eq!(unique.len(), 37);
    for expected in [
        "list_all_atomicwork_audit_logs",
        "create_a_atomicwork_change_management_change",
        "create_a_atomicwork_change_management_changes_create_with_file",
        "atomicwork_requests_number_partial_update",
        "create_a_atomicwork_attachment",
    ] {
        assert!(c.get(expected).is_some(), "{expected} missing");
    }
}

#[test]
fn every_input_schema_is_a_valid_object_schema() {
    for tool in catalog().tools() {
        let schema = &tool.input_schema;
        assert_eq!(schema["type"], "object", "{}", tool.name());
        if let Err(e) = jsonschema::meta::validate(schema) {
            panic!("{}: schema fails the meta-schema: {e}", tool.name());
        }
        assert!(!tool.source.title.is_empty() && !tool.source.description.is_empty());
    }
}

#[test]
fn every_path_placeholder_is_a_declared_path_parameter() {
    for tool in catalog().tools() {
        let path = &tool.source.path;
        assert!(path.starts_with("/api/v1/"), "{}: {path}", tool.name());
        let mut rest = path.as_str();
        while let Some(start) = rest.find('{') {
            let end = rest[start..].find('}').expect("closed placeholder") + start;
            let name = &rest[start + 1..end];
            let p = tool
                .param(name)
                .unwrap_or_else(|| panic!("{}: {{{name}}} undeclared", tool.name()));
            assert_eq!(p.location, Location::Path, "{}: {name}", tool.name());
            rest = &rest[end + 1..];
        }
    }
}

#[test]
fn annotations_follow_the_method() {
    let c = catalog();
    for tool in c.tools() {
        let a = tool.annotations;
        assert!(!a.open_world_hint, "{}", tool.name());
        match tool.source.method.as_str() {
            "list" | "get" => {
                assert!(a.read_only_hint && a.idempotent_hint && !a.destructive_hint)
            }
            "update" | "delete" => {
                assert!(!a.read_only_hint && a.destructive_hint && a.idempotent_hint)
            }
            "create" if tool.name() != "create_a_atomicwork_change_trash" => {
                assert!(!a.read_only_hint && !a.destructive_hint, "{}", tool.name())
            }
            _ => assert!(!a.read_only_hint),
        }
    }
    // Moving a change to the trash is a create that destroys.
    let trash = c
        .get("create_a_atomicwork_change_trash")
        .expect("trash tool");
    assert!(trash.annotations.destructive_hint);
}

#[test]
fn dependent_arguments_are_refused_with_the_valid_combinations() {
    let c = catalog();
    let tool = c
        .get("list_all_atomicwork_requester_entities")
        .expect("tool");
    let err = tool
        .validate(json!({"workspace_id": "1"}).as_object().expect("object"))
        .expect_err("workspace_id alone is not enough");
    let text = err.join(" ");
    assert!(text.contains("request_id"), "{text}");
    assert!(text.contains("workspace_id + request_form_type"), "{text}");
    for ok in [
        json!({"request_id": "ITREQ-1"}),
        json!({"service_item_ids": [3]}),
        json!({"workspace_id": "1", "request_form_type": "REQUEST"}),
    ] {
        tool.validate(ok.as_object().expect("object"))
            .unwrap_or_else(|e| panic!("{ok} refused: {e:?}"));
    }
}

#[test]
fn argument_validation_names_the_bad_argument() {
    let c = catalog();
    let tool = c
        .get("get_single_atomicwork_assets_id_by_id")
        .expect("tool");
    let missing = tool
        .validate(&serde_json::Map::new())
        .expect_err("id is required");
    assert!(missing.join(" ").contains("id"), "{missing:?}");
    let unknown = tool
        .validate(json!({"id": 3, "bogus": 1}).as_object().expect("object"))
        .expect_err("unknown argument");
    assert!(unknown.join(" ").contains("bogus"), "{unknown:?}");
}

#[test]
fn bare_array_bodies_are_exposed_as_a_body_argument() {
    let c = catalog();
    let tool = c.get("list_all_atomicwork_assets").expect("tool");
    assert_eq!(tool.input_schema["properties"]["body"]["type"], "array");
    let good = json!({"body": [{"attribute": "status", "operator": "EQUALS", "values": [{"value": "IN_USE"}]}]});
    tool.validate(good.as_object().expect("object"))
        .expect("valid filter");
    let bad = json!({"body": [{"attribute": "status", "operator": "LIKE"}]});
    assert!(tool.validate(bad.as_object().expect("object")).is_err());
}

/// The filter operators Atomicwork's published API lists for its filter-array list
/// endpoints (`POST /api/v1/assets/list`, `POST /api/v1/workspaces/{workspace_id}/requests/list`).
const PUBLISHED_OPERATORS: [&str; 23] = [
    "EQUALS",
    "NOT_EQUALS",
    "CONTAINS",
    "NOT_CONTAINS",
    "IN",
    "NOT_IN",
    "GREATER_THAN",
    "LESS_THAN",
    "GREATER_THAN_EQUALS",
    "LESS_THAN_EQUALS",
    "IS_BETWEEN",
    "IS_NULL",
    "IS_NOT_NULL",
    "STARTS_WITH",
    "ENDS_WITH",
    "TEXT_CONTAINS",
    "TEXT_DOES_NOT_CONTAINS",
    "IS_ANY_OF",
    "IS_NOT_ANY_OF",
    "IS_EXACTLY",
    "IS_ON_OR_BEFORE",
    "IS_ON_OR_AFTER",
    "IS_WITHIN",
];

#[test]
fn filter_tools_accept_every_published_operator_and_a_refusal_names_them_all() {
    let c = catalog();
    let filter_tools: Vec<_> = c
        .tools()
        .iter()
        .filter(|t| t.param("body").is_some_and(|p| p.kind.is_some()))
        .collect();
    assert_eq!(filter_tools.len(), 5, "{filter_tools:?}");
    for tool in filter_tools {
        let schema = &tool.input_schema["properties"]["body"]["items"]["properties"]["operator"];
        let listed: BTreeSet<&str> = schema["enum"]
            .as_array()
            .expect("an operator enum")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            listed,
            PUBLISHED_OPERATORS.into_iter().collect(),
            "{}",
            tool.name()
        );
        for op in PUBLISHED_OPERATORS {
            let a = json!({"body": [{"attribute": "created_at", "operator": op, "values": [{"value": "P7D"}]}]});
            let checked = tool.validate(a.as_object().expect("object"));
            assert!(checked.is_ok(), "{} refuses {op}: {checked:?}", tool.name());
        }
        let bad =
            json!({"body": [{"attribute": "status", "operator": "SOUNDS_LIKE", "values": []}]});
        let problems = tool
            .validate(bad.as_object().expect("object"))
            .expect_err("an unknown operator is refused")
            .join("; ");
        for op in PUBLISHED_OPERATORS {
            assert!(
                problems.contains(&format!("\"{op}\"")),
                "{op} missing from {problems}"
            );
        }
    }
}

#[test]
fn filter_semantics() {
    let c = catalog();
    let all: Vec<_> = c.tools().to_vec();
    let method_of = |n: &str| c.get(n).expect("tool").source.method.clone();

    let read = names(&c, &methods(&["read"]));
    assert_eq!(read.len(), 21);
    let expected_read: Vec<_> = {
        let mut v: Vec<_> = all
            .iter()
            .filter(|t| matches!(t.source.method.as_str(), "list" | "get"))
            .map(|t| t.name().to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(read, expected_read);

    let write = names(&c, &methods(&["write"]));
    assert_eq!(write.len(), 14);
    assert!(
        write
            .iter()
            .all(|n| !matches!(method_of(n).as_str(), "list" | "get"))
    );

    assert_eq!(
        names(&c, &methods(&["custom"])),
        vec![
            "atomicwork_change_management_changes_number_partial_update",
            "atomicwork_requests_number_partial_update"
        ]
    );
    assert_eq!(names(&c, &methods(&["partial_update"])).len(), 2);
    assert_eq!(names(&c, &methods(&["read", "write", "custom"])).len(), 37);
    assert_eq!(names(&c, &ToolFilter::default()).len(), 37);
    assert_eq!(names(&c, &methods(&[])).len(), 37, "empty list means all");

    let assets = names(&c, &tags(&["assets"]));
    assert_eq!(
        assets,
        vec![
            "create_a_atomicwork_asset",
            "get_single_atomicwork_assets_id_by_id",
            "list_all_atomicwork_assets",
            "list_all_atomicwork_assets_search",
            "update_a_atomicwork_assets_id_by_id",
        ]
    );

    // methods AND tags
    let read_assets = names(
        &c,
        &ToolFilter {
            methods: Some(vec!["read".into()]),
            tags: Some(vec!["assets".into()]),
            ..Default::default()
        },
    );
    assert_eq!(
        read_assets,
        vec![
            "get_single_atomicwork_assets_id_by_id",
            "list_all_atomicwork_assets",
            "list_all_atomicwork_assets_search",
        ]
    );
    // tags OR within the list
    let audit_or_assets = names(&c, &tags(&["audit", "assets"]));
    assert_eq!(audit_or_assets.len(), 6);

    // allow then deny
    let allowed = names(
        &c,
        &ToolFilter {
            methods: Some(vec!["read".into()]),
            allow: vec![
                "list_all_atomicwork_assets".into(),
                "create_a_atomicwork_asset".into(),
            ],
            ..Default::default()
        },
    );
    assert_eq!(
        allowed,
        vec!["list_all_atomicwork_assets"],
        "allow applies after methods"
    );
    let denied = names(
        &c,
        &ToolFilter {
            tags: Some(vec!["assets".into()]),
            deny: vec!["create_a_atomicwork_asset".into()],
            ..Default::default()
        },
    );
    assert_eq!(denied.len(), 4);
    assert!(!denied.contains(&"create_a_atomicwork_asset".to_string()));
}

#[test]
fn filter_typos_are_errors_listing_valid_values() {
    let c = catalog();
    match filter(&c, &methods(&["reed"])) {
        Err(FilterError::UnknownMethod { value, valid }) => {
            assert_eq!(value, "reed");
            assert!(
                valid.contains("read") && valid.contains("partial_update"),
                "{valid}"
            );
        }
        other => panic!("expected UnknownMethod, got {other:?}"),
    }
    match filter(&c, &tags(&["asset"])) {
        Err(FilterError::UnknownTag { valid, .. }) => assert!(valid.contains("assets")),
        other => panic!("expected UnknownTag, got {other:?}"),
    }
    let typo_tool = ToolFilter {
        deny: vec!["delete_request".into()],
        ..Default::default()
    };
    let err = filter(&c, &typo_tool).expect_err("unknown tool");
    assert_eq!(err.field(), "spec.tools.deny");
}

#[test]
fn tool_sets_with_the_same_tools_are_shared() {
    let c = catalog();
    let a = c.tool_set(&[
        "list_all_atomicwork_assets".into(),
        "list_all_atomicwork_audit_logs".into(),
    ]);
    let b = c.tool_set(&[
        "list_all_atomicwork_audit_logs".into(),
        "list_all_atomicwork_assets".into(),
    ]);
    assert!(std::sync::Arc::ptr_eq(&a, &b));
    let listing: Value = serde_json::from_str(a.listing().get()).expect("listing is JSON");
    assert_eq!(listing[0]["name"], "list_all_atomicwork_assets");
    assert_eq!(listing[1]["annotations"]["readOnlyHint"], true);
}

#[test]
fn overrides_replace_fields_and_add_tools() {
    let yaml = r#"
tools:
  - name: delete_a_atomicwork_requests_number_by_id
    http: PUT
    path: /api/v1/requests/{id}/trash
  - name: list_all_atomicwork_problems
    title: List problems
    description: Lists problems in a workspace.
    method: list
    tags: [problems]
    http: GET
    path: /api/v1/problems
    pageDefault: true
    params:
      - name: page
        in: query
        schema: {type: integer, minimum: 1}
"#;
    let c = Catalog::with_overrides(yaml, "test.yaml").expect("override applies");
    assert_eq!(c.len(), 38);
    let del = c
        .get("delete_a_atomicwork_requests_number_by_id")
        .expect("tool");
    assert_eq!(del.source.path, "/api/v1/requests/{id}/trash");
    assert_eq!(del.source.http.as_str(), "PUT");
    assert_eq!(del.source.method, "delete", "fields not given are kept");
    assert!(
        c.get("list_all_atomicwork_problems")
            .expect("added")
            .is_read()
    );
}

#[test]
fn bad_overrides_name_the_tool_and_field() {
    let cases = [
        (
            "tools:\n  - name: list_all_atomicwork_assets\n    path: /api/v1/assets/{asset_id}\n",
            "list_all_atomicwork_assets",
            "path",
        ),
        (
            "tools:\n  - name: brand_new_tool\n    title: X\n",
            "brand_new_tool",
            "description",
        ),
        (
            "tools:\n  - name: list_all_atomicwork_assets\n    http: FETCH\n",
            "",
            "",
        ),
    ];
    for (yaml, tool, field) in cases {
        let err = Catalog::with_overrides(yaml, "bad.yaml")
            .expect_err("bad override")
            .to_string();
        assert!(err.contains(tool), "{err}");
        assert!(err.contains(field), "{err}");
        if tool.is_empty() {
            assert!(err.contains("bad.yaml"), "{err}");
        }
    }
}

#[test]
fn tools_command_previews_read_tools_as_json() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atomicwork-mcp"))
        .args(["tools", "--methods", "read", "--format", "json"])
        .output()
        .expect("run binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tools: Vec<Value> = serde_json::from_slice(&out.stdout).expect("json array");
    assert_eq!(tools.len(), 21);
    assert!(
        tools
            .iter()
            .all(|t| t["annotations"]["readOnlyHint"] == true)
    );
}

#[test]
fn tools_command_rejects_typos_with_valid_values() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atomicwork-mcp"))
        .args(["tools", "--tags", "asset"])
        .output()
        .expect("run binary");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown tag \"asset\"") && stderr.contains("assets"),
        "{stderr}"
    );
}

#[test]
fn a_filter_argument_names_its_operators_and_only_it_may() {
    let with = |param: &str| {
        format!(
            "tools:\n  - name: list_all_atomicwork_assets\n    params:\n      - name: body\n        in: body\n{param}"
        )
    };
    let missing = Catalog::with_overrides(&with("        kind: filters\n"), "o.yaml")
        .expect_err("a filter argument without operators");
    assert!(missing.to_string().contains("operators"), "{missing}");
    let lower = with("        kind: filters\n        operators: [equals]\n");
    let lower = Catalog::with_overrides(&lower, "o.yaml").expect_err("lower-case operator");
    assert!(lower.to_string().contains("\"equals\""), "{lower}");
    let given = with("        kind: filters\n        operators: [EQUALS, LIKE]\n");
    let c = Catalog::with_overrides(&given, "o.yaml").expect("operators of the override");
    let tool = c.get("list_all_atomicwork_assets").expect("tool");
    let like =
        json!({"body": [{"attribute": "name", "operator": "LIKE", "values": [{"value": "mac"}]}]});
    assert!(tool.validate(like.as_object().expect("object")).is_ok());
    let stray = "tools:\n  - name: list_all_atomicwork_workspaces\n    params:\n      - name: page\n        in: query\n        schema: {type: integer}\n        operators: [EQUALS]\n";
    let stray =
        Catalog::with_overrides(stray, "o.yaml").expect_err("operators on a plain argument");
    assert!(stray.to_string().contains("kind: filters"), "{stray}");
}
