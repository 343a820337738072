//! The API key never survives a cut: wherever a result or an error text is shortened, the
//! key is redacted first, so a key that straddles the cut does not come back minus its
//! last characters. Each cut path is tried with the key at every offset around its limit.

use serde_json::{Value, json};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate, matchers::any};

use super::{KEY, args, call_with, target, tool, upstream};
use crate::core::tool_result::ToolResult;
use crate::upstream::CallOutcome;
use crate::upstream::response::MAX_ERROR_TEXT_CHARS;

/// The result cap used for the result paths below.
const LIMIT: usize = 300;
/// Upstream text quoted in an error result is cut to this many characters.
const SNIPPET: usize = 2_000;

/// Answers `GET /api/v1/requests/{kind}-{offset}` with a body built for that cut path,
/// the key of the request placed so that it starts `offset` characters into the text the
/// cut applies to.
struct Echo;

impl Respond for Echo {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let key = request
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let last = request.url.path().rsplit('/').next().unwrap_or_default();
        let (kind, offset) = last.rsplit_once('-').unwrap_or(("", "0"));
        let offset: usize = offset.parse().unwrap_or(0);
        let pad = |n: usize| "x".repeat(n);
        let tail = pad(SNIPPET * 2);
        match kind {
            // Plain text: cut by characters at the result cap.
            "text" => ResponseTemplate::new(200)
                .insert_header("content-type", "text/plain")
                .set_body_string(format!("{}{key}{tail}", pad(offset))),
            // A JSON object without `data`: its text is cut at the result cap.
            "object" => {
                let head = r#"{"description":""#.len();
                let s = format!("{}{key}{tail}", pad(offset.saturating_sub(head)));
                ResponseTemplate::new(200).set_body_json(json!({ "description": s }))
            }
            // Pretty-printed (not compact) JSON, cut the same way.
            "pretty" => {
                // The cut applies to the compact text, which starts `{"description":"`.
                let head = r#"{"description":""#.len();
                let s = format!("{}{key}{tail}", pad(offset.saturating_sub(head)));
                let body = format!("{{\n  \"description\": \"{s}\"\n}}\n");
                ResponseTemplate::new(200)
                    .insert_header("content-type", "application/json")
                    .set_body_string(body)
            }
            // A page whose items are dropped to fit: the key sits in one of the items.
            "page" => {
                let item = |i: usize| json!({"id": i, "note": format!("{}{key}", pad(i % 7))});
                let data: Vec<Value> = (0..offset % 40 + 20).map(item).collect();
                ResponseTemplate::new(200).set_body_json(json!({"data": data}))
            }
            // An error whose body is quoted, cut at the snippet length.
            "snippet" => ResponseTemplate::new(500)
                .insert_header("content-type", "text/plain")
                .set_body_string(format!("{}{key}{tail}", pad(offset))),
            // An error whose JSON body is not only an error envelope, quoted the same way.
            "snippet_json" => {
                let head = r#"{"detail":""#.len();
                let s = format!("{}{key}{tail}", pad(offset.saturating_sub(head)));
                ResponseTemplate::new(400).set_body_json(json!({ "detail": s }))
            }
            // Atomicwork's error envelope with a very long message: the error text is cut.
            _ => {
                let s = format!("{}{key}{}", pad(offset), pad(20_000));
                ResponseTemplate::new(404).set_body_json(json!({"error": s, "code": "NOT_FOUND"}))
            }
        }
    }
}

/// Every piece of eight characters of the key, the shortest prefix that must never show.
fn pieces() -> Vec<&'static str> {
    (0..=KEY.len() - 8).map(|i| &KEY[i..i + 8]).collect()
}

fn assert_no_key(what: &str, offset: usize, o: &CallOutcome) {
    let all = o.result.to_json().to_string();
    for piece in pieces() {
        assert!(
            !all.contains(piece),
            "{what} at offset {offset}: {piece:?} of the key is in {}",
            &all[..all.len().min(600)]
        );
    }
}

/// Calls the echo server for `kind` with the key starting at each offset from
/// `limit - key - 8` to `limit + 8`, with a result cap of `max_chars`.
async fn sweep(server: &MockServer, kind: &str, limit: usize, max_chars: usize) -> usize {
    let (up, get) = (
        upstream(),
        tool("get_single_atomicwork_requests_number_by_id"),
    );
    let mut t = target(&server.uri());
    t.max_result_chars = max_chars;
    let mut redacted = 0;
    for offset in limit.saturating_sub(KEY.len() + 8)..=limit + 8 {
        let a = args(json!({"id": format!("{kind}-{offset}")}));
        let o = up.call(&get, &a, &t).await;
        assert_no_key(kind, offset, &o);
        redacted += usize::from(o.result.to_json().to_string().contains("[redact"));
    }
    redacted
}

async fn echo_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any()).respond_with(Echo).mount(&server).await;
    server
}

#[tokio::test]
async fn text_results_cut_at_the_cap_never_show_part_of_the_key() {
    let server = echo_server().await;
    for kind in ["text", "object", "pretty"] {
        let shown = sweep(&server, kind, LIMIT, LIMIT).await;
        assert!(shown > 0, "{kind}: the key was redacted, not only cut away");
    }
}

#[tokio::test]
async fn pages_cut_to_fewer_items_never_show_the_key() {
    let server = echo_server().await;
    sweep(&server, "page", LIMIT, LIMIT).await;
}

#[tokio::test]
async fn error_body_snippets_never_show_part_of_the_key() {
    let server = echo_server().await;
    for kind in ["snippet", "snippet_json"] {
        // The snippet's own limit, and a result cap below it.
        let shown = sweep(&server, kind, SNIPPET, 150_000).await;
        assert!(shown > 0, "{kind}: the key was redacted, not only cut away");
        sweep(&server, kind, LIMIT, LIMIT).await;
    }
}

#[tokio::test]
async fn long_error_messages_are_quoted_in_part_without_the_key_and_keep_the_advice() {
    let server = echo_server().await;
    let first = call_with(
        &server.uri(),
        "get_single_atomicwork_requests_number_by_id",
        json!({"id": "envelope-0"}),
        |_| {},
    )
    .await;
    let text = &first.result.content[0];
    assert!(text.contains("(cut)"), "{text}");
    assert!(
        text.contains("Nothing was found at"),
        "the advice after the message survives"
    );
    assert!(text.chars().count() <= SNIPPET + 500, "{text}");
    let shown = sweep(&server, "envelope", SNIPPET, 150_000).await;
    assert!(shown > 0, "the key was redacted, not only cut away");
}

#[test]
fn error_texts_cut_to_the_error_cap_never_show_part_of_the_key() {
    let cap = MAX_ERROR_TEXT_CHARS;
    let mut shown = 0;
    for offset in cap - 100 - KEY.len()..=cap + 8 {
        let mut r = ToolResult::error(format!("{}{KEY}{}", "x".repeat(offset), "x".repeat(9_000)));
        r.cap_error_text(KEY);
        let text = &r.content[0];
        assert!(
            text.chars().count() <= cap,
            "{offset}: {} characters",
            text.chars().count()
        );
        assert!(
            text.ends_with(&format!(
                "[cut: the text was {} characters]",
                offset + KEY.len() + 9_000
            )) || text.ends_with(&format!(
                "[cut: the text was {} characters]",
                offset + "[redacted]".len() + 9_000
            )),
            "{offset}: {}",
            &text[text.len() - 60..]
        );
        for piece in pieces() {
            assert!(
                !text.contains(piece),
                "{offset}: {piece:?} in the capped text"
            );
        }
        shown += usize::from(text.contains("[redact"));
    }
    assert!(shown > 0, "the key was redacted, not only cut away");
    let mut ok = ToolResult::ok(vec!["y".repeat(cap * 2)], None);
    ok.cap_error_text(KEY);
    assert_eq!(
        ok.content[0].len(),
        cap * 2,
        "results that are not errors keep their own cap"
    );
}
