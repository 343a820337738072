//! A JSON answer within the cap reaches the result as it came, without whitespace, and
//! escapes that could hide text are normalised first.

use serde_json::{Value, json};
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{KEY, call_with, success_for, tool};
use crate::core::tool_result::ToolResult;

fn answer(body: &str, max_chars: usize) -> ToolResult {
    success_for(
        &tool("list_all_atomicwork_workspaces"),
        &[],
        max_chars,
        body.as_bytes(),
    )
}

#[test]
fn pretty_json_loses_only_whitespace_between_tokens() {
    let body = "{\n  \"data\": [ {\"id\": 1, \"name\": \"two  spaces\\tand a tab\"} ],\n  \"total_count\": 1\r\n}\n";
    let r = answer(body, 10_000);
    assert_eq!(
        r.content,
        vec![r#"{"data":[{"id":1,"name":"two  spaces\tand a tab"}],"total_count":1}"#]
    );
    let expected: Value = serde_json::from_str(body).expect("fixture is JSON");
    assert_eq!(r.structured_value(), Some(expected));
    assert!(!r.is_error);
}

#[test]
fn the_upstream_key_order_is_kept() {
    let r = answer(r#"{"zeta":1,"alpha":{"y":2,"b":3}}"#, 10_000);
    assert_eq!(r.content[0], r#"{"zeta":1,"alpha":{"y":2,"b":3}}"#);
    assert_eq!(
        r.structured.as_deref().map(|s| s.get()),
        Some(r#"{"zeta":1,"alpha":{"y":2,"b":3}}"#)
    );
}

#[test]
fn quotes_and_backslashes_inside_strings_do_not_end_them() {
    let body = r#"{"a": "x \" y \\", "b" : [ 1 , 2 ]}"#;
    let r = answer(body, 10_000);
    assert_eq!(r.content[0], r#"{"a":"x \" y \\","b":[1,2]}"#);
    assert_eq!(
        r.structured_value(),
        Some(json!({"a": "x \" y \\", "b": [1, 2]}))
    );
}

#[test]
fn unicode_and_slash_escapes_are_normalised() {
    let r = answer(r#"{"city": "Z\u00fcrich", "path": "a\/b"}"#, 10_000);
    let text: Value = serde_json::from_str(&r.content[0]).expect("text is JSON");
    assert_eq!(text, json!({"city": "Zürich", "path": "a/b"}));
    assert!(r.content[0].contains("Zürich"), "{}", r.content[0]);
    assert!(r.content[0].contains("a/b"), "{}", r.content[0]);
}

#[test]
fn arrays_and_scalars_are_text_without_structured_content() {
    for body in ["[1, 2, 3]", "\"just text\"", "42", "null"] {
        let r = answer(body, 10_000);
        assert!(!r.is_error, "{body}");
        assert!(r.structured.is_none(), "{body}");
        let reparsed: Value = serde_json::from_str(&r.content[0]).expect("text is JSON");
        assert_eq!(
            reparsed,
            serde_json::from_str::<Value>(body).expect("fixture is JSON")
        );
    }
}

#[test]
fn invalid_json_is_shown_as_text() {
    let r = answer("{\"data\": [1, 2", 10_000);
    assert!(!r.is_error);
    assert_eq!(r.content, vec!["{\"data\": [1, 2"]);
    assert!(r.structured.is_none());
}

#[test]
fn the_cap_counts_characters_of_the_minified_text() {
    // 12 characters once minified, many more bytes before.
    let body = "{ \"k\" :   \"ééé\" }";
    let r = answer(body, 12);
    assert_eq!(r.content, vec![r#"{"k":"ééé"}"#]);
    let r = answer(body, 10);
    assert_eq!(r.content.len(), 2, "over the cap gets the truncation note");
    assert!(r.structured.is_none());
}

/// The key echoed back is found whether the upstream writes it plainly or with escapes.
#[tokio::test]
async fn an_echoed_key_is_redacted_in_every_spelling() {
    let escaped: String = KEY
        .chars()
        .map(|c| format!("\\u{:04x}", c as u32))
        .collect();
    for echo in [KEY.to_string(), escaped, KEY.replace('-', "\\u002d")] {
        let server = MockServer::start().await;
        let body = format!("{{\"note\": \"your key is {echo}\", \"{echo}\": [\"x{echo}\"]}}");
        Mock::given(any())
            .respond_with(
                ResponseTemplate::new(200)
                    .insert_header("content-type", "application/json")
                    .set_body_string(body.clone()),
            )
            .mount(&server)
            .await;
        let o = call_with(
            &server.uri(),
            "list_all_atomicwork_workspaces",
            json!({}),
            |_| {},
        )
        .await;
        let everything = format!(
            "{} {}",
            o.result.content.join(" "),
            o.result
                .structured
                .as_deref()
                .map(|s| s.get())
                .unwrap_or("")
        );
        assert!(!everything.contains(KEY), "{body} -> {everything}");
        assert_eq!(
            o.result.structured_value(),
            Some(json!({"note": "your key is [redacted]", "[redacted]": ["x[redacted]"]})),
            "{body}"
        );
    }
}

#[test]
fn compact_json_with_spaces_inside_strings_is_unchanged() {
    let body = r#"{"name":"a b  c","q":"say \"hi there\"","n":[1,2]}"#;
    let r = answer(body, 10_000);
    assert_eq!(r.content, vec![body]);
    assert_eq!(r.structured.as_deref().map(|s| s.get()), Some(body));
}
