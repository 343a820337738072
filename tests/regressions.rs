//! Defects found by fuzzing, fault injection, the scale runs and the Python SDK test, each
//! pinned by a test.
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

/// Found by the Python SDK test: a refusal answered before the request's body had arrived
/// (an OAuth 401, an unknown token) closed the connection without `Connection: close`, so
/// a client reusing it for its next request (the SDK fetching the resource metadata right
/// after the 401) failed with "server disconnected". The body is held back here until
/// the answer is in.
#[tokio::test]
async fn a_refusal_before_the_body_arrived_says_the_connection_closes() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let plane = Plane::start(DataplaneConfig::default()).await;
    let spec = "  auth:\n    oauth:\n      issuer: http://127.0.0.1:9\n";
    let server: atomicwork_mcp::k8s::crd::AtomicworkMcpServer =
        serde_saphyr::from_str(&server_yaml("early", spec)).expect("manifest parses");
    let opts = atomicwork_mcp::k8s::resolve::ResolveOptions {
        base_url_override: None,
        notice: None,
        public_url: Some(
            atomicwork_mcp::core::base_url::BaseUrl::parse(&plane.base).expect("plane URL"),
        ),
        confirm_key: None,
    };
    let view = atomicwork_mcp::k8s::resolve::resolve(
        &server,
        &secrets(),
        &plane.catalog,
        jiff::Timestamp::now(),
        &opts,
    )
    .view
    .expect("server resolves");
    let oauth = plane.add("tok-early-refusal-0001", view);
    let addr = plane.base.trim_start_matches("http://").to_string();

    /// Sends the head of a POST to `path` (a body announced by `length`), reads the whole
    /// answer, then sends the body; returns the answer's head and whether the server then
    /// closed the connection.
    async fn refused(addr: &str, path: &str, length: &str) -> (String, bool) {
        let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\n{length}\r\n"
        );
        stream.write_all(head.as_bytes()).await.expect("write head");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        let answer = loop {
            let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
                .await
                .expect("an answer before the body")
                .expect("read");
            assert!(n > 0, "closed without an answer");
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length: usize = text[..end]
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|n| n.trim().parse().ok())
                    .expect("content-length");
                if got.len() >= end + 4 + length {
                    break text[..end].to_string();
                }
            }
        };
        let _ = stream.write_all(LIST.as_bytes()).await;
        let closed = matches!(
            tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        );
        (answer, closed)
    }

    let length = format!("Content-Length: {}\r\n", LIST.len());
    for (path, status) in [
        (
            oauth.strip_prefix(&plane.base).expect("on the plane"),
            "401",
        ),
        ("/mcp/tok-unknown-000000000001", "404"),
    ] {
        let (head, closed) = refused(&addr, path, &length).await;
        assert!(head.starts_with(&format!("http/1.1 {status}")), "{head}");
        assert!(head.contains("\r\nconnection: close"), "{path}: {head}");
        assert!(closed, "{path}: the connection is closed after the answer");
    }
    // A request without a body leaves nothing unread: its refusal keeps the connection.
    let (head, _) = refused(
        &addr,
        oauth.strip_prefix(&plane.base).expect("on the plane"),
        "Content-Length: 0\r\n",
    )
    .await;
    assert!(head.starts_with("http/1.1 401"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
}
