//! The opt-in retry policy: read tools only, bounded, honouring Retry-After.

use std::time::Duration;

use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use super::{call_with, closed_port_url};
use crate::core::server::RetryPolicy;
use crate::upstream::OutcomeClass;

fn policy(max_attempts: u32, max_backoff_ms: u64) -> Option<RetryPolicy> {
    Some(RetryPolicy {
        max_attempts,
        max_backoff: Duration::from_millis(max_backoff_ms),
    })
}

/// A server that answers `first` once, then 200.
async fn flaky(first: ResponseTemplate) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(first)
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": [1]})))
        .mount(&server)
        .await;
    server
}

async fn requests(server: &MockServer) -> usize {
    server.received_requests().await.map_or(0, |r| r.len())
}

fn too_many(retry_after: &str) -> ResponseTemplate {
    ResponseTemplate::new(429)
        .insert_header("retry-after", retry_after)
        .set_body_json(json!({"error": "slow down", "code": "RATE_LIMITED"}))
}

#[tokio::test]
async fn read_tool_retries_a_429_then_succeeds() {
    let server = flaky(too_many("0")).await;
    let o = call_with(
        &server.uri(),
        "list_all_atomicwork_workspaces",
        json!({}),
        |t| t.retry = policy(3, 1_000),
    )
    .await;
    assert_eq!(o.class, OutcomeClass::Ok, "{o:?}");
    assert_eq!(o.attempts, 2);
    assert_eq!(o.result.structured_value(), Some(json!({"data": [1]})));
    assert_eq!(requests(&server).await, 2);
}

#[tokio::test]
async fn write_tool_is_never_retried() {
    let server = flaky(too_many("0")).await;
    let o = call_with(
        &server.uri(),
        "create_a_atomicwork_request",
        json!({"subject": "s"}),
        |t| t.retry = policy(3, 1_000),
    )
    .await;
    assert_eq!(o.class, OutcomeClass::RateLimited, "{o:?}");
    assert_eq!(o.attempts, 1);
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn custom_method_tool_is_never_retried() {
    let server = flaky(ResponseTemplate::new(503)).await;
    let o = call_with(
        &server.uri(),
        "atomicwork_requests_number_partial_update",
        json!({"id": "ITREQ-1", "status": "OPEN"}),
        |t| t.retry = policy(3, 10),
    )
    .await;
    assert_eq!(o.class, OutcomeClass::ServerError);
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn no_policy_means_no_retry() {
    let server = flaky(too_many("0")).await;
    let o = call_with(
        &server.uri(),
        "list_all_atomicwork_workspaces",
        json!({}),
        |t| t.retry = None,
    )
    .await;
    assert_eq!(o.class, OutcomeClass::RateLimited);
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn retry_after_longer_than_max_backoff_stops_and_returns_the_429() {
    let server = flaky(too_many("60")).await;
    let o = call_with(
        &server.uri(),
        "list_all_atomicwork_workspaces",
        json!({}),
        |t| t.retry = policy(3, 1_000),
    )
    .await;
    assert_eq!(o.class, OutcomeClass::RateLimited);
    assert_eq!(o.attempts, 1);
    assert!(
        o.result.content[0].contains("Retry after 60 seconds"),
        "{o:?}"
    );
    assert_eq!(requests(&server).await, 1);
}

#[tokio::test]
async fn gateway_errors_are_retried_with_backoff() {
    for status in [502, 503, 504] {
        let server = flaky(ResponseTemplate::new(status)).await;
        let o = call_with(
            &server.uri(),
            "list_all_atomicwork_workspaces",
            json!({}),
            |t| t.retry = policy(2, 20),
        )
        .await;
        assert_eq!(o.class, OutcomeClass::Ok, "{status}: {o:?}");
        assert_eq!(o.attempts, 2, "{status}");
    }
}

#[tokio::test]
async fn other_errors_are_not_retried() {
    for status in [400, 404, 500] {
        let server = flaky(ResponseTemplate::new(status)).await;
        let o = call_with(
            &server.uri(),
            "list_all_atomicwork_workspaces",
            json!({}),
            |t| t.retry = policy(3, 20),
        )
        .await;
        assert_eq!(o.attempts, 1, "{status}");
        assert_eq!(o.upstream_status, Some(status), "{status}");
    }
}

#[tokio::test]
async fn attempts_are_bounded() {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let o = call_with(
        &server.uri(),
        "list_all_atomicwork_workspaces",
        json!({}),
        |t| t.retry = policy(3, 10),
    )
    .await;
    assert_eq!(o.class, OutcomeClass::ServerError);
    assert_eq!(o.attempts, 3);
    assert!(o.result.content[0].contains("after 3 attempts"), "{o:?}");
    assert_eq!(requests(&server).await, 3);
}

#[tokio::test]
async fn timeouts_are_retried_for_reads() {
    let server = flaky(ResponseTemplate::new(200).set_delay(Duration::from_secs(5))).await;
    let o = call_with(
        &server.uri(),
        "list_all_atomicwork_workspaces",
        json!({}),
        |t| {
            t.retry = policy(2, 10);
            t.timeout = Some(Duration::from_millis(200));
        },
    )
    .await;
    assert_eq!(o.class, OutcomeClass::Ok, "{o:?}");
    assert_eq!(o.attempts, 2);
}

#[tokio::test]
async fn connection_errors_are_retried_up_to_the_bound() {
    let o = call_with(
        &closed_port_url(),
        "list_all_atomicwork_workspaces",
        json!({}),
        |t| t.retry = policy(2, 10),
    )
    .await;
    assert_eq!(o.class, OutcomeClass::Connect);
    assert_eq!(o.attempts, 2);
}

#[test]
fn backoff_stays_within_its_cap() {
    for attempt in 1..=20 {
        let cap =
            Duration::from_millis(200u64.saturating_mul(1 << (attempt - 1).min(16)).min(1_500));
        let wait = crate::upstream::backoff(attempt, Duration::from_millis(1_500));
        assert!(wait <= cap, "attempt {attempt}: {wait:?} > {cap:?}");
    }
}
