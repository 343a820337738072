//! One test per failure class, plus the special success bodies and dry runs.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{any, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{call_with, closed_port_url, file_arg};
use crate::upstream::{CallOutcome, OutcomeClass};

const READ: &str = "get_single_atomicwork_requests_number_by_id";
const WRITE: &str = "create_a_atomicwork_request";

async fn answered(template: ResponseTemplate, tool_name: &str, a: Value) -> CallOutcome {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(template)
        .expect(1)
        .mount(&server)
        .await;
    call_with(&server.uri(), tool_name, a, |_| {}).await
}

async fn read_answered(template: ResponseTemplate) -> CallOutcome {
    answered(template, READ, json!({"id": "ITREQ-12"})).await
}

/// A server that fails the test if any request reaches it.
async fn must_receive_nothing() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200))
        .expect(0)
        .mount(&server)
        .await;
    server
}

fn text(o: &CallOutcome) -> String {
    o.result.content.join("\n")
}

fn assert_error(o: &CallOutcome, class: OutcomeClass, status: Option<u16>, needles: &[&str]) {
    assert!(o.result.is_error, "{o:?}");
    assert_eq!(o.class, class, "{o:?}");
    assert_eq!(o.upstream_status, status, "{o:?}");
    let t = text(o);
    for n in needles {
        assert!(t.contains(n), "{n:?} missing from: {t}");
    }
}

#[tokio::test]
async fn bad_request_with_envelope() {
    let o = answered(
        ResponseTemplate::new(400)
            .set_body_json(json!({"error": "subject is required", "code": "INVALID_REQUEST"})),
        WRITE,
        json!({"subject": "x"}),
    )
    .await;
    assert_error(
        &o,
        OutcomeClass::ClientError,
        Some(400),
        &[
            "HTTP 400",
            "POST /api/v1/requests",
            "\"subject is required\"",
            "INVALID_REQUEST",
            "fix the arguments",
        ],
    );
    assert_eq!(
        o.result.content.len(),
        1,
        "a bare envelope is not repeated: {o:?}"
    );
    assert_eq!(o.attempts, 1);
}

#[tokio::test]
async fn bad_request_with_details_keeps_the_body() {
    let body = json!({"error": "validation failed", "code": "INVALID", "fields": {"priority": "unknown value"}});
    let o = answered(
        ResponseTemplate::new(400).set_body_json(body),
        WRITE,
        json!({"subject": "x"}),
    )
    .await;
    assert_error(
        &o,
        OutcomeClass::ClientError,
        Some(400),
        &["validation failed", "unknown value"],
    );
}

#[tokio::test]
async fn unauthorized() {
    let o = read_answered(ResponseTemplate::new(401).set_body_json(
        json!({"error": "Access Token X-Api-Key is missing/invalid", "code": "UNAUTHORIZED"}),
    ))
    .await;
    assert_error(
        &o,
        OutcomeClass::ClientError,
        Some(401),
        &["HTTP 401", "API key", "Secret", "Retrying will not help"],
    );
}

#[tokio::test]
async fn forbidden() {
    let o = read_answered(
        ResponseTemplate::new(403)
            .set_body_json(json!({"error": "no access", "code": "FORBIDDEN"})),
    )
    .await;
    assert_error(
        &o,
        OutcomeClass::ClientError,
        Some(403),
        &[
            "HTTP 403",
            "not allowed",
            "workspace 7",
            "retrying will not help",
        ],
    );
}

#[tokio::test]
async fn not_found() {
    let o = read_answered(
        ResponseTemplate::new(404)
            .set_body_json(json!({"error": "Request not found", "code": "NOT_FOUND"})),
    )
    .await;
    assert_error(
        &o,
        OutcomeClass::ClientError,
        Some(404),
        &[
            "HTTP 404",
            "Request not found",
            "/api/v1/requests/ITREQ-12",
            "list or search tool",
        ],
    );
}

#[tokio::test]
async fn method_not_allowed() {
    let o = read_answered(ResponseTemplate::new(405)).await;
    assert_error(
        &o,
        OutcomeClass::ClientError,
        Some(405),
        &["HTTP 405", "does not accept GET", "catalog override"],
    );
}

#[tokio::test]
async fn conflict() {
    let o = answered(
        ResponseTemplate::new(409)
            .set_body_json(json!({"error": "already closed", "code": "CONFLICT"})),
        "atomicwork_requests_number_partial_update",
        json!({"id": "ITREQ-1", "status": "OPEN"}),
    )
    .await;
    assert_error(
        &o,
        OutcomeClass::ClientError,
        Some(409),
        &["HTTP 409", "already closed", "Fetch the record again"],
    );
}

#[tokio::test]
async fn server_error_on_a_write_warns_it_may_have_applied() {
    let o = answered(
        ResponseTemplate::new(500)
            .set_body_json(json!({"error": "internal", "code": "SERVER_ERROR"})),
        WRITE,
        json!({"subject": "x"}),
    )
    .await;
    assert_error(
        &o,
        OutcomeClass::ServerError,
        Some(500),
        &[
            "HTTP 500",
            "Retry later",
            "may or may not have been applied",
        ],
    );
}

#[tokio::test]
async fn bad_gateway_says_retry_later() {
    let o =
        read_answered(ResponseTemplate::new(502).set_body_string("<html>Bad Gateway</html>")).await;
    assert_error(
        &o,
        OutcomeClass::ServerError,
        Some(502),
        &[
            "HTTP 502",
            "unavailable",
            "Retry in a little while",
            "Response body: <html>Bad Gateway</html>",
        ],
    );
    assert!(
        !text(&o).contains("may or may not"),
        "read tools do not warn about writes"
    );
}

#[tokio::test]
async fn rate_limited_without_retry_says_when() {
    let o = read_answered(
        ResponseTemplate::new(429)
            .insert_header("retry-after", "30")
            .insert_header("x-ratelimit-limit", "100")
            .insert_header("x-ratelimit-remaining", "0")
            .set_body_json(json!({"error": "Too many requests", "code": "RATE_LIMITED"})),
    )
    .await;
    assert_error(
        &o,
        OutcomeClass::RateLimited,
        Some(429),
        &["HTTP 429", "rate limited", "Retry after 30 seconds"],
    );
    let rl = o.rate_limit.expect("rate limit info");
    assert_eq!(
        (rl.retry_after, rl.remaining, rl.limit.as_deref()),
        (Some(30), Some(0), Some("100"))
    );
    assert_eq!(o.attempts, 1);
}

#[tokio::test]
async fn rate_limited_with_only_retry_after_gets_a_reset() {
    let secs = read_answered(ResponseTemplate::new(429).insert_header("retry-after", "12")).await;
    let rl = secs.rate_limit.expect("rate limit info");
    assert_eq!((rl.retry_after, rl.reset), (Some(12), Some(12)));

    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(120);
    let date = jiff::fmt::rfc2822::DateTimePrinter::new()
        .timestamp_to_rfc9110_string(&at)
        .expect("an HTTP date");
    let dated =
        read_answered(ResponseTemplate::new(429).insert_header("retry-after", date.as_str())).await;
    let rl = dated.rate_limit.expect("rate limit info");
    let reset = rl.reset.expect("a reset derived from the date");
    assert!((110..=121).contains(&reset), "{reset} from {date}");
    assert_eq!(rl.reset, rl.retry_after);

    // Only a 429 is about a quota: a 503's Retry-After says nothing about one.
    let busy = read_answered(ResponseTemplate::new(503).insert_header("retry-after", "12")).await;
    let rl = busy.rate_limit.expect("rate limit info");
    assert_eq!((rl.retry_after, rl.reset), (Some(12), None));
}

#[tokio::test]
async fn success_object_is_text_and_structured() {
    let body = json!({"id": 12, "display_id": "ITREQ-12", "subject": "VPN"});
    let o = read_answered(
        ResponseTemplate::new(200)
            .insert_header("ratelimit-remaining", "99")
            .set_body_json(body.clone()),
    )
    .await;
    assert_eq!(o.class, OutcomeClass::Ok);
    assert!(!o.result.is_error);
    assert_eq!(o.result.structured_value().as_ref(), Some(&body));
    let parsed: Value = serde_json::from_str(&o.result.content[0]).expect("text is JSON");
    assert_eq!(parsed, body);
    assert_eq!(o.rate_limit.and_then(|r| r.remaining), Some(99));
    let wire = o.result.to_json();
    assert_eq!(wire["isError"], json!(false));
    assert_eq!(wire["content"][0]["type"], json!("text"));
    assert_eq!(wire["structuredContent"], body);
}

#[tokio::test]
async fn success_array_is_text_only() {
    let o = read_answered(ResponseTemplate::new(200).set_body_json(json!([{"id": 1}, {"id": 2}])))
        .await;
    assert_eq!(o.class, OutcomeClass::Ok);
    assert_eq!(o.result.structured_value(), None);
    assert_eq!(o.result.content, vec![r#"[{"id":1},{"id":2}]"#.to_string()]);
    assert!(o.result.to_json().get("structuredContent").is_none());
}

#[tokio::test]
async fn empty_success_body_is_acknowledged() {
    let o = answered(
        ResponseTemplate::new(204),
        "delete_a_atomicwork_requests_number_by_id",
        json!({"id": "ITREQ-1"}),
    )
    .await;
    assert_eq!(o.class, OutcomeClass::Ok);
    assert!(!o.result.is_error);
    assert_eq!(
        o.result.content,
        vec![r#"{"ok":true,"status":204}"#.to_string()]
    );
    assert_eq!(
        o.result.structured_value(),
        Some(json!({"ok": true, "status": 204}))
    );
    assert_eq!(o.upstream_status, Some(204));
}

#[tokio::test]
async fn non_json_success_body_is_returned_as_text() {
    let o = read_answered(ResponseTemplate::new(200).set_body_string("plain words")).await;
    assert_eq!(o.class, OutcomeClass::Ok);
    assert!(!o.result.is_error);
    assert_eq!(o.result.content, vec!["plain words".to_string()]);
    assert_eq!(o.result.structured_value(), None);
}

#[tokio::test]
async fn non_json_success_body_is_cut_to_the_cap() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_string("é".repeat(50)))
        .mount(&server)
        .await;
    let o = call_with(&server.uri(), READ, json!({"id": "X"}), |t| {
        t.max_result_chars = 10
    })
    .await;
    assert_eq!(o.result.content[0], "é".repeat(10));
    assert!(o.result.content[1].contains("[Result truncated]"), "{o:?}");
}

#[tokio::test]
async fn timeout_from_a_slow_answer() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let o = call_with(&server.uri(), WRITE, json!({"subject": "x"}), |t| {
        t.timeout = Some(Duration::from_millis(100));
    })
    .await;
    assert_error(
        &o,
        OutcomeClass::Timeout,
        None,
        &[
            "did not answer POST /api/v1/requests within 0.1 s",
            "may or may not have been applied",
        ],
    );
}

#[tokio::test]
async fn connection_refused_on_a_closed_port() {
    let url = closed_port_url();
    let o = call_with(&url, READ, json!({"id": "X"}), |_| {}).await;
    let host = url.trim_start_matches("http://");
    assert_error(
        &o,
        OutcomeClass::Connect,
        None,
        &[
            &format!("could not reach Atomicwork at {host}"),
            "refused",
            "spec.atomicwork.baseUrl",
        ],
    );
    assert_eq!(o.attempts, 1);
}

#[tokio::test]
async fn tls_failure_against_a_plain_http_server() {
    let server = MockServer::start().await;
    let https = server.uri().replace("http://", "https://");
    let o = call_with(&https, READ, json!({"id": "X"}), |_| {}).await;
    assert_error(
        &o,
        OutcomeClass::Tls,
        None,
        &["TLS", "retrying will not help"],
    );
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/requests/X"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", "https://elsewhere.example/steal"),
        )
        .expect(1)
        .mount(&server)
        .await;
    let o = call_with(&server.uri(), READ, json!({"id": "X"}), |_| {}).await;
    assert_error(
        &o,
        OutcomeClass::Protocol,
        Some(302),
        &[
            "Redirects are not followed",
            "https://elsewhere.example/steal",
        ],
    );
}

#[tokio::test]
async fn invalid_arguments_send_nothing() {
    let server = must_receive_nothing().await;
    let o = call_with(&server.uri(), READ, json!({"id": ".."}), |_| {}).await;
    assert_error(
        &o,
        OutcomeClass::InvalidArguments,
        None,
        &["invalid arguments", "`id`", "Fix the arguments"],
    );
    assert_eq!(o.attempts, 0);
}

#[tokio::test]
async fn missing_api_key_is_a_config_error() {
    let server = must_receive_nothing().await;
    let o = call_with(&server.uri(), READ, json!({"id": "X"}), |t| {
        t.api_key = crate::core::secret::Secret::new("  ");
    })
    .await;
    assert_error(
        &o,
        OutcomeClass::Config,
        None,
        &["no Atomicwork API key", "apiKeySecretRef"],
    );
}

#[tokio::test]
async fn dry_run_sends_nothing_for_writes() {
    let server = must_receive_nothing().await;
    let o = call_with(
        &server.uri(),
        "atomicwork_requests_number_partial_update",
        json!({"id": "ITREQ-9", "status": "RESOLVED"}),
        |t| t.dry_run = true,
    )
    .await;
    assert_eq!(o.class, OutcomeClass::DryRun);
    assert!(!o.result.is_error);
    assert_eq!(o.attempts, 0);
    let view = o.result.structured_value().expect("structured view");
    let req = &view["request"];
    assert_eq!(req["method"], json!("PATCH"));
    assert_eq!(req["path"], json!("/api/v1/requests/ITREQ-9"));
    assert_eq!(req["workspace"], json!("7"));
    assert_eq!(req["headers"]["X-Api-Key"], json!("[redacted]"));
    assert_eq!(req["body"], json!({"status": "RESOLVED"}));
    let shown: Value = serde_json::from_str(&o.result.content[0]).expect("text is JSON");
    assert_eq!(shown, view);
}

#[tokio::test]
async fn dry_run_of_a_multipart_write_lists_files_without_bytes() {
    let server = must_receive_nothing().await;
    let o = call_with(
        &server.uri(),
        "create_a_atomicwork_attachment",
        json!({"file": file_arg("notes.txt", Some("text/plain"), b"top secret bytes")}),
        |t| t.dry_run = true,
    )
    .await;
    assert_eq!(o.class, OutcomeClass::DryRun);
    let view = o.result.structured_value().expect("view");
    let files = &view["request"]["body"]["multipart/form-data"]["files"];
    assert_eq!(
        files,
        &json!([{"field": "file", "filename": "notes.txt", "content_type": "text/plain", "size_bytes": 16}])
    );
    assert!(!text(&o).contains("top secret bytes") && !text(&o).contains("dG9wIHNlY3JldCBieXRlcw"));
}

#[tokio::test]
async fn dry_run_still_runs_read_tools() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .expect(1)
        .mount(&server)
        .await;
    let o = call_with(&server.uri(), READ, json!({"id": "ITREQ-1"}), |t| {
        t.dry_run = true
    })
    .await;
    assert_eq!(o.class, OutcomeClass::Ok);
    assert_eq!(o.result.structured_value(), Some(json!({"id": 1})));
}

#[tokio::test]
async fn notice_is_the_first_block_of_every_result() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({"error": "nope"})))
        .mount(&server)
        .await;
    let notice: Arc<str> = Arc::from("SANDBOX: data is synthetic.");
    for (tool_name, a, dry) in [
        (READ, json!({"id": "X"}), false),
        (WRITE, json!({"subject": "s"}), true),
        (READ, json!({"id": "."}), false),
    ] {
        let o = call_with(&server.uri(), tool_name, a, |t| {
            t.notice = Some(notice.clone());
            t.dry_run = dry;
        })
        .await;
        assert_eq!(o.result.content[0], "SANDBOX: data is synthetic.", "{o:?}");
        assert!(o.result.content.len() >= 2, "{o:?}");
    }
}

#[tokio::test]
async fn injected_id_reaches_the_server_as_one_segment() {
    let server = MockServer::start().await;
    Mock::given(path("/api/v1/requests/..%252Fadmin%3Fx%3D1%23y"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": 1})))
        .expect(1)
        .mount(&server)
        .await;
    let o = call_with(
        &server.uri(),
        READ,
        json!({"id": "..%2Fadmin?x=1#y"}),
        |_| {},
    )
    .await;
    assert_eq!(o.class, OutcomeClass::Ok, "{o:?}");
}

/// A gzip member holding `data` in one stored (uncompressed) deflate block.
fn gzip_stored(data: &[u8]) -> Vec<u8> {
    let len = u16::try_from(data.len()).expect("small payload");
    let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    out.push(1); // final block, stored
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&(!len).to_le_bytes());
    out.extend_from_slice(data);
    out.extend_from_slice(&crc32(data).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[tokio::test]
async fn gzip_answers_are_decoded() {
    let body = json!({"id": 5, "subject": "compressed"});
    let o = read_answered(
        ResponseTemplate::new(200)
            .insert_header("content-encoding", "gzip")
            .set_body_raw(gzip_stored(body.to_string().as_bytes()), "application/json"),
    )
    .await;
    assert_eq!(o.class, OutcomeClass::Ok, "{o:?}");
    assert_eq!(o.result.structured_value(), Some(body));
}
