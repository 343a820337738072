//! Tests of per-server tool shaping.

use serde_json::{Map, Value, json};

use super::*;
use crate::core::catalog::Catalog;

fn catalog() -> Catalog {
    Catalog::builtin().expect("catalog")
}

fn overrides(v: Value) -> ToolOverrides {
    serde_json::from_value(v).expect("overrides parse")
}

fn names(set: &ToolSet) -> Vec<String> {
    set.names()
}

const SEARCH: &str = "list_all_atomicwork_requests_search";
const AUDIT: &str = "list_all_atomicwork_audit_logs";

fn shaped(o: Value) -> Result<std::sync::Arc<ToolSet>, OverrideError> {
    catalog().shaped_tool_set(
        ToolSetKind::Curated,
        &[SEARCH.to_string(), AUDIT.to_string()],
        &overrides(o),
    )
}

#[test]
fn a_renamed_tool_is_listed_under_its_new_name_only() {
    let set = shaped(json!({SEARCH: {"name": "find_tickets", "title": "Find tickets", "description": "Finds tickets in the service desk."}}))
        .expect("applies");
    assert_eq!(names(&set), ["find_tickets", AUDIT]);
    assert!(set.get(SEARCH).is_none(), "the old name is unknown");
    let tool = set.get("find_tickets").expect("the new name");
    assert_eq!(tool.source.title, "Find tickets");
    let listing: Value = serde_json::from_str(set.listing().get()).expect("json");
    assert_eq!(listing[0]["name"], "find_tickets");
    assert_eq!(listing[0]["title"], "Find tickets");
    assert_eq!(
        listing[0]["description"],
        "Finds tickets in the service desk."
    );
    // The record keeps the catalog names, and the overrides to shape them again.
    assert_eq!(set.catalog_names(), [AUDIT, SEARCH]);
    assert_eq!(set.overrides().len(), 1);
    // The catalog's own tool is untouched.
    assert_eq!(catalog().get(SEARCH).expect("tool").name(), SEARCH);
}

#[test]
fn fixed_arguments_leave_the_schema_and_win_over_the_caller() {
    let set = shaped(json!({SEARCH: {"fixed": {"workspace_id": 3, "filter_name": "all"}, "defaults": {"per_page": 50}}}))
        .expect("applies");
    let tool = set.get(SEARCH).expect("tool");
    let props = tool.input_schema["properties"].as_object().expect("props");
    assert!(!props.contains_key("workspace_id"));
    assert!(!props.contains_key("filter_name"));
    assert_eq!(props["per_page"]["default"], 50);
    let mut args: Map<String, Value> = json!({"workspace_id": 9, "per_page": 10})
        .as_object()
        .cloned()
        .expect("object");
    tool.shape_args(&mut args);
    assert_eq!(args["workspace_id"], 3, "the fixed value wins");
    assert_eq!(args["filter_name"], "all");
    assert_eq!(args["per_page"], 10, "a default applies only when omitted");
    let mut omitted = Map::new();
    tool.shape_args(&mut omitted);
    assert_eq!(omitted["per_page"], 50);
    // A caller sending a fixed argument is not refused: the full schema still accepts
    // it, and the value sent is the fixed one.
    assert_eq!(tool.validate(&args), Ok(()));
}

#[test]
fn override_errors_name_the_field() {
    let cases = [
        (
            json!({"no_such_tool": {"title": "x"}}),
            "spec.toolOverrides.no_such_tool",
        ),
        (
            json!({SEARCH: {"name": "has space"}}),
            "spec.toolOverrides.list_all_atomicwork_requests_search.name",
        ),
        (
            json!({SEARCH: {"name": AUDIT}}),
            "spec.toolOverrides.list_all_atomicwork_requests_search.name",
        ),
        (
            json!({SEARCH: {"name": "call_tool"}}),
            "spec.toolOverrides.list_all_atomicwork_requests_search.name",
        ),
        (
            json!({SEARCH: {"title": " "}}),
            "spec.toolOverrides.list_all_atomicwork_requests_search.title",
        ),
        (
            json!({SEARCH: {"description": ""}}),
            "spec.toolOverrides.list_all_atomicwork_requests_search.description",
        ),
        (
            json!({SEARCH: {"fixed": {"nope": 1}}}),
            "spec.toolOverrides.list_all_atomicwork_requests_search.fixed.nope",
        ),
        (
            json!({SEARCH: {"defaults": {"per_page": 1000}}}),
            "spec.toolOverrides.list_all_atomicwork_requests_search.defaults.per_page",
        ),
        (
            json!({SEARCH: {"defaults": {"page": 2}, "fixed": {"page": 1}}}),
            "spec.toolOverrides.list_all_atomicwork_requests_search.defaults.page",
        ),
        (
            json!({SEARCH: {"fixed": {"sort_order": "SIDEWAYS"}}}),
            "spec.toolOverrides.list_all_atomicwork_requests_search.fixed.sort_order",
        ),
    ];
    for (o, field) in cases {
        let err = shaped(o.clone()).expect_err(&o.to_string());
        assert_eq!(err.field, field, "{o}: {err}");
    }
    // Two tools renamed to the same name.
    let err =
        shaped(json!({SEARCH: {"name": "same"}, AUDIT: {"name": "same"}})).expect_err("duplicate");
    assert!(
        err.field.ends_with(".name") && err.message.contains("unique"),
        "{err}"
    );
}

#[test]
fn annotations_are_replaced_field_by_field() {
    let set = shaped(json!({AUDIT: {"annotations": {"openWorldHint": true}}})).expect("applies");
    let tool = set.get(AUDIT).expect("tool");
    assert!(tool.annotations.open_world_hint);
    assert!(tool.annotations.read_only_hint, "the others stay");
    let listing: Value = serde_json::from_str(set.listing().get()).expect("json");
    assert_eq!(listing[0]["annotations"]["openWorldHint"], true);
}

#[test]
fn no_overrides_share_the_interned_set() {
    let c = catalog();
    let names = [SEARCH.to_string()];
    let a = c
        .shaped_tool_set(ToolSetKind::Curated, &names, &ToolOverrides::new())
        .expect("plain");
    let b = c.tool_set(&names);
    assert!(std::sync::Arc::ptr_eq(&a, &b));
}
