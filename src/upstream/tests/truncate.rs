//! The result size cap: cuts at JSON-safe boundaries with a note on how to page.

use serde_json::{Value, json};

use super::{success_for, tool};
use crate::core::catalog::Tool;
use crate::core::tool_result::ToolResult;

fn run(tool: &Tool, query: &[(&str, &str)], max_chars: usize, body: &Value) -> ToolResult {
    success_for(tool, query, max_chars, body.to_string().as_bytes())
}

fn page_of(n: usize) -> Value {
    let data: Vec<Value> = (0..n)
        .map(|i| json!({"id": i, "subject": format!("ticket number {i} with some text")}))
        .collect();
    json!({"data": data, "total_count": 1234, "total_pages": 13})
}

#[test]
fn data_array_is_cut_to_valid_json_with_a_paging_note() {
    let t = tool("list_all_atomicwork_user_lists");
    let r = run(
        &t,
        &[("page", "1"), ("per_page", "100")],
        1_000,
        &page_of(100),
    );
    assert!(!r.is_error);
    assert_eq!(r.content.len(), 2);
    assert!(r.content[0].chars().count() <= 1_000);
    let kept: Value = serde_json::from_str(&r.content[0]).expect("cut text is valid JSON");
    let items = kept["data"].as_array().expect("data array").len();
    assert!(items > 0 && items < 100, "{items}");
    assert_eq!(kept["total_count"], json!(1234));
    assert_eq!(r.structured_value().as_ref(), Some(&kept));
    let note = &r.content[1];
    assert!(
        note.contains(&format!("Kept the first {items} of 100 items")),
        "{note}"
    );
    assert!(note.contains(&format!("per_page={items}")), "{note}");
    assert!(note.contains("page=1, 2, 3"), "{note}");
    assert!(note.contains("total_count reports 1234"), "{note}");
}

#[test]
fn the_largest_prefix_that_fits_is_kept() {
    let t = tool("list_all_atomicwork_user_lists");
    let body = page_of(50);
    let r = run(&t, &[], 2_000, &body);
    let kept: Value = serde_json::from_str(&r.content[0]).expect("valid JSON");
    let n = kept["data"].as_array().map_or(0, Vec::len);
    let mut one_more = body.clone();
    if let Some(items) = one_more["data"].as_array_mut() {
        items.truncate(n + 1);
    }
    assert!(
        one_more.to_string().chars().count() > 2_000,
        "one more item would have fitted"
    );
}

#[test]
fn results_within_the_cap_are_untouched() {
    let t = tool("list_all_atomicwork_user_lists");
    let body = page_of(3);
    let r = run(&t, &[], 100_000, &body);
    assert_eq!(r.content, vec![body.to_string()]);
    assert_eq!(r.structured_value(), Some(body));
}

#[test]
fn top_level_array_is_cut_to_valid_json() {
    let t = tool("list_all_atomicwork_request_views");
    let body = Value::Array((0..100).map(|i| json!({"view": i})).collect());
    let r = run(&t, &[], 200, &body);
    let kept: Value = serde_json::from_str(&r.content[0]).expect("valid JSON");
    assert!(
        kept.as_array()
            .is_some_and(|a| !a.is_empty() && a.len() < 100)
    );
    assert_eq!(r.structured_value(), None);
    assert!(
        r.content[1].contains("Narrow the request"),
        "{}",
        r.content[1]
    );
}

#[test]
fn object_without_data_is_cut_at_a_char_boundary() {
    let t = tool("get_single_atomicwork_requests_number_by_id");
    let body = json!({"description": "ü".repeat(500)});
    let r = run(&t, &[], 100, &body);
    assert_eq!(r.content[0].chars().count(), 100);
    assert!(r.content[0].starts_with("{\"description\":\"üü"));
    assert_eq!(
        r.structured_value(),
        None,
        "a cut text has no structured twin"
    );
    assert!(r.content[1].contains("[Result truncated]") && r.content[1].contains("incomplete"));
}

#[test]
fn next_page_token_is_explained() {
    let t = tool("list_all_atomicwork_change_activity_notes");
    let mut body = page_of(60);
    body["next_page_token"] = json!("tok123");
    let r = run(&t, &[("page", "1")], 1_500, &body);
    let note = &r.content[1];
    assert!(note.contains("next_page_token"), "{note}");
    assert!(note.contains("per_page="), "{note}");
}

#[test]
fn page_only_tools_point_to_the_next_page() {
    let t = super::custom_tool(json!({
        "name": "paged", "title": "P", "description": "paged list", "method": "list",
        "tags": ["t"], "http": "GET", "path": "/api/v1/p", "pageDefault": true,
        "params": [{"name": "page", "in": "query", "schema": {"type": "integer"}}]
    }));
    let r = run(&t, &[("page", "4")], 500, &page_of(40));
    assert!(
        r.content[1].contains("Continue with page=5"),
        "{}",
        r.content[1]
    );
}

#[test]
fn redaction_covers_text_structured_values_and_keys() {
    let secret = "awk-live-0123456789";
    let mut r = ToolResult {
        content: vec![format!("echo {secret} here")],
        structured: serde_json::value::to_raw_value(
            &json!({"headers": {"x-api-key": secret}, secret: [format!("a{secret}b")]}),
        )
        .ok(),
        is_error: false,
    };
    r.redact(secret);
    let all = r.to_json().to_string();
    assert!(!all.contains(secret), "{all}");
    assert_eq!(r.content[0], "echo [redacted] here");
    assert_eq!(
        r.structured_value(),
        Some(json!({"headers": {"x-api-key": "[redacted]"}, "[redacted]": ["a[redacted]b"]}))
    );
}

/// A result built by any path (here by hand, as a discovery or sandbox answer might be)
/// comes out clean even when the key is spelled with `\u` escapes in its JSON text: the
/// final pass does not rely on an earlier one having normalised the escapes.
#[test]
fn redaction_sees_through_unicode_escapes_in_text_and_structured_content() {
    let secret = "awk-live-0123456789";
    let spelled: String = secret
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    let text = format!(r#"{{"headers":{{"x-api-key":"{spelled}"}}}}"#);
    let mut r = ToolResult {
        content: vec![text.clone()],
        structured: serde_json::value::RawValue::from_string(text).ok(),
        is_error: false,
    };
    r.redact(secret);
    let want = json!({"headers": {"x-api-key": "[redacted]"}});
    assert_eq!(r.structured_value(), Some(want.clone()));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&r.content[0]).ok(),
        Some(want)
    );
}
