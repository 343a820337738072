//! Defects found by fuzzing, fault injection and the scale runs, each pinned by a test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use atomicwork_mcp::dataplane::DataplaneConfig;
use common::*;
use serde_json::Value;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Found by fuzzing: an object, array or boolean id (or a number no parser can hold) was
/// echoed back, so the answer could not be read as a JSON-RPC response.
#[tokio::test]
async fn ids_that_are_not_strings_or_numbers_are_refused_not_echoed() {
    let plane = Plane::start(DataplaneConfig::default()).await;
    let url = plane.serve("tok-ids-000000000001", "ids", "", "http://127.0.0.1:9");
    for id in [r#"{"a":[1e400]}"#, "[1]", "true", "1e400"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
        let resp = post(&url, &body, &[]).await;
        assert_eq!(resp.status(), 400, "{id}");
        let answer: Value = resp.json().await.expect("answer parses as JSON");
        assert_eq!(answer["error"]["code"], -32600, "{id}");
        assert_eq!(answer["id"], Value::Null, "{id}");
    }
    let wrong_version = r#"{"jsonrpc":"1.0","id":{"a":[1e400]},"method":"tools/list"}"#;
    let answer: Value = post(&url, wrong_version, &[])
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(answer["id"], Value::Null);
    for id in ["1", "\"a\"", "-5", "1.5"] {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"tools/list"}}"#);
        assert_eq!(post(&url, &body, &[]).await.status(), 200, "{id}");
    }
}

/// Found by fault injection: a request cut by the data plane's request timeout got a 504
/// with an empty body instead of a JSON-RPC error naming the request.
#[tokio::test]
async fn a_request_timeout_is_answered_with_a_json_rpc_error_for_its_id() {
    let up = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(30)))
        .mount(&up)
        .await;
    let config = DataplaneConfig {
        request_timeout: Duration::from_millis(300),
        ..DataplaneConfig::default()
    };
    let plane = Plane::start(config).await;
    let url = plane.serve("tok-timeout-00000001", "slow", "", &up.uri());
    let call = r#"{"jsonrpc":"2.0","id":"call-7","method":"tools/call","params":{"name":"list_all_atomicwork_workspaces","arguments":{}}}"#;
    let resp = post(&url, call, &[]).await;
    assert_eq!(resp.status(), 504);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let answer: Value = resp.json().await.expect("a JSON body");
    assert_eq!(answer["jsonrpc"], "2.0");
    assert_eq!(answer["id"], "call-7");
    assert_eq!(answer["error"]["code"], -31006);
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("check before retrying")),
        "{answer}"
    );
}
