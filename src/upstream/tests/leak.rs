//! The API key never appears in a result, in Debug output or in a log line, even when the
//! upstream echoes it back.

use std::time::Duration;

use serde_json::{Map, Value, json};
use wiremock::matchers::{any, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use super::{KEY, args, closed_port_url, file_arg, target, tool, upstream};
use crate::core::server::{RetryPolicy, Target};
use crate::upstream::OutcomeClass;

/// Answers with every request header in the body (and the key in a response header).
struct EchoHeaders(u16);

impl Respond for EchoHeaders {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let headers: Map<String, Value> = request
            .headers
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v.to_str().unwrap_or_default())))
            .collect();
        let key = request
            .headers
            .get("x-api-key")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        ResponseTemplate::new(self.0)
            .insert_header("x-echo-key", key.as_str())
            .set_body_json(json!({"error": format!("bad key {key}"), "code": "UNAUTHORIZED", "headers": headers}))
    }
}

#[tokio::test]
async fn api_key_never_leaks_into_results_debug_or_logs() {
    let (captured, _guard) = crate::test_support::Captured::install(tracing::Level::TRACE);

    let server = MockServer::start().await;
    Mock::given(path("/api/v1/requests/UNAUTH"))
        .respond_with(EchoHeaders(401))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/requests/BROKEN"))
        .respond_with(EchoHeaders(500))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/requests/SLOW"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    Mock::given(path("/api/v1/workspaces"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "0"))
        .mount(&server)
        .await;
    Mock::given(any())
        .respond_with(EchoHeaders(200))
        .mount(&server)
        .await;

    let up = upstream();
    let base = target(&server.uri());
    let closed = closed_port_url();
    let with = |f: &dyn Fn(&mut Target)| {
        let mut t = base.clone();
        f(&mut t);
        t
    };
    let get = "get_single_atomicwork_requests_number_by_id";
    let calls: Vec<(&str, Value, Target, OutcomeClass)> = vec![
        (get, json!({"id": "OK"}), base.clone(), OutcomeClass::Ok),
        (
            get,
            json!({"id": "UNAUTH"}),
            base.clone(),
            OutcomeClass::ClientError,
        ),
        (
            get,
            json!({"id": "BROKEN"}),
            base.clone(),
            OutcomeClass::ServerError,
        ),
        (
            get,
            json!({"id": "SLOW"}),
            with(&|t| t.timeout = Some(Duration::from_millis(100))),
            OutcomeClass::Timeout,
        ),
        (
            get,
            json!({"id": "x"}),
            with(&|t| {
                t.base_url =
                    crate::core::base_url::BaseUrl::parse(&closed).expect("a test base URL")
            }),
            OutcomeClass::Connect,
        ),
        (
            get,
            json!({"id": ".."}),
            base.clone(),
            OutcomeClass::InvalidArguments,
        ),
        (
            "list_all_atomicwork_workspaces",
            json!({}),
            with(&|t| {
                t.retry = Some(RetryPolicy {
                    max_attempts: 2,
                    max_backoff: Duration::from_millis(10),
                })
            }),
            OutcomeClass::RateLimited,
        ),
        (
            "create_a_atomicwork_request",
            json!({"subject": "s"}),
            with(&|t| t.dry_run = true),
            OutcomeClass::DryRun,
        ),
        (
            "create_a_atomicwork_attachment",
            json!({"file": file_arg("a.txt", None, b"abc")}),
            base.clone(),
            OutcomeClass::Ok,
        ),
    ];
    let mut echoed = 0;
    for (name, a, t, class) in calls {
        tracing::callsite::rebuild_interest_cache();
        let outcome = up.call(&tool(name), &args(a), &t).await;
        assert_eq!(outcome.class, class, "{name}: {outcome:?}");
        let json = outcome.result.to_json().to_string();
        assert!(!json.contains(KEY), "{name}: key in result {json}");
        assert!(
            !format!("{outcome:?}").contains(KEY),
            "{name}: key in Debug"
        );
        assert!(
            !format!("{t:?}").contains(KEY),
            "{name}: key in Target Debug"
        );
        echoed += usize::from(json.contains("[redacted]"));
    }
    assert!(
        echoed >= 4,
        "the echoing answers were redacted, not dropped"
    );
    let logs = captured.text();
    assert!(
        logs.contains("upstream call finished"),
        "the subscriber captured the calls: {logs}"
    );
    assert!(
        logs.contains("retrying upstream call"),
        "retries are logged"
    );
    assert!(!logs.contains(KEY), "key in logs:\n{logs}");
}
