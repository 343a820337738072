//! Security properties as tests: no secret ever reaches the logs, no path or framing trick
//! reaches a server whose exact URL was not used, a read-only server runs no write tool by
//! any route, and no client without a usable URL can make the server read a body or hold
//! a connection beyond the configured limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use atomicwork_mcp::dataplane::DataplaneConfig;
use common::*;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

const READ_CALL: &str = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"list_all_atomicwork_workspaces","arguments":{}}}"#;

fn call(name: &str, args: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {"name": name, "arguments": args}})
        .to_string()
}

// ---------------------------------------------------------------------------------------
// Secrets never logged

const API_KEY_VALUE: &str = "awk-live-key-Zx81Qp4mT0-never-logged";
const CLIENT_TOKEN: &str = "client-bearer-Hq27vLw9-never-logged";
const WRONG_BEARER: &str = "client-bearer-wrong-Pp03-never-logged";
const UNKNOWN_TOKEN: &str = "Vd3kQ9zLmP0aXr7TyB2nW5eH8uJ1cF4gK6sD0oI9qZx";

const BEARER_SERVER: &str = "apiVersion: v1
kind: Secret
metadata: {name: mcp-client-tokens, namespace: it-ops}
stringData: {alice: client-bearer-Hq27vLw9-never-logged}
---
apiVersion: mcp.atomicwork.dev/v1alpha1
kind: AtomicworkMcpServer
metadata: {name: bearer-desk, namespace: it-ops}
spec:
  atomicwork: {baseUrl: https://acme.atomicwork.com, apiKeySecretRef: {name: atomicwork-api}, workspaceId: \"1\"}
  methods: [read]
  requireApiTokenAuth: true
  apiTokenSecretRef: {name: mcp-client-tokens}
";

/// `atomicwork-mcp local` with logs at trace level, as JSON, into a file.
fn start_local(manifests: &Path, state: &Path, log: &Path) -> LocalProcess {
    let stderr = std::fs::File::create(log).expect("log file");
    LocalProcess::spawn(
        manifests,
        state,
        Stdio::from(stderr),
        &[("RUST_LOG", "trace"), ("LOG_FORMAT", "json")],
    )
}

fn token_of(url: &str) -> String {
    url.rsplit('/').next().unwrap_or_default().to_string()
}

/// Copies the example manifests with a distinctive API key, plus a bearer-protected server.
fn write_manifests(dir: &Path) {
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local");
    for entry in std::fs::read_dir(examples).expect("examples").flatten() {
        let text = std::fs::read_to_string(entry.path()).expect("example");
        let text = text.replace("sandbox-placeholder-key", API_KEY_VALUE);
        std::fs::write(dir.join(entry.file_name()), text).expect("copy");
    }
    std::fs::write(dir.join("bearer.yaml"), BEARER_SERVER).expect("bearer manifest");
}

async fn status_of(url: &str, body: &str, headers: &[(&str, &str)]) -> u16 {
    post(url, body, headers).await.status().as_u16()
}

/// Successful and failing calls on every kind of server.
async fn exercise(urls: &BTreeMap<String, String>) {
    let readonly = &urls["it-ops/service-desk-readonly"];
    let ops = &urls["it-ops/change-ops"];
    let audit = &urls["it-ops/asset-audit"];
    let bearer = &urls["it-ops/bearer-desk"];
    assert_eq!(status_of(readonly, READ_CALL, &[]).await, 200);
    let missing = call(
        "get_single_atomicwork_requests_number_by_id",
        json!({"id": "ITREQ-999999"}),
    );
    assert_eq!(status_of(readonly, &missing, &[]).await, 200);
    let invalid = call(
        "get_single_atomicwork_requests_number_by_id",
        json!({"id": {}}),
    );
    assert_eq!(status_of(readonly, &invalid, &[]).await, 200);
    let write = call(
        "create_a_atomicwork_request",
        json!({"subject": "Printer on fire"}),
    );
    assert_eq!(status_of(readonly, &write, &[]).await, 200);
    assert_eq!(status_of(ops, &write, &[]).await, 200);
    let search = call("search_tools", json!({"query": "audit"}));
    assert_eq!(status_of(audit, &search, &[]).await, 200);
    assert_eq!(status_of(bearer, READ_CALL, &[]).await, 401);
    let wrong = format!("Bearer {WRONG_BEARER}");
    assert_eq!(
        status_of(bearer, READ_CALL, &[("authorization", &wrong)]).await,
        401
    );
    let right = format!("Bearer {CLIENT_TOKEN}");
    assert_eq!(
        status_of(bearer, READ_CALL, &[("authorization", &right)]).await,
        200
    );
    let unknown = readonly.replace(&token_of(readonly), UNKNOWN_TOKEN);
    assert_eq!(status_of(&unknown, LIST, &[]).await, 404);
    assert_eq!(
        status_of(&format!("{readonly}/extra"), LIST, &[]).await,
        404
    );
    let origin = [("origin", "https://evil.example")];
    assert_eq!(status_of(readonly, LIST, &origin).await, 403);
    let bad_json = r#"{"jsonrpc":"2.0","id":1,"method":"#;
    assert_eq!(status_of(readonly, bad_json, &[]).await, 400);
}

/// Sets the rotate annotation on `change-ops` and returns the URLs after the reload.
async fn rotate(local: &mut LocalProcess, manifests: &Path) -> BTreeMap<String, String> {
    let path = manifests.join("change-ops.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    let rotated = text.replacen(
        "  namespace: it-ops\n",
        "  namespace: it-ops\n  annotations:\n    mcp.atomicwork.dev/rotate-token: \"2026-rotation-1\"\n",
        1,
    );
    assert_ne!(rotated, text, "annotation added");
    std::fs::write(&path, rotated).expect("write");
    local.read_summary().await
}

/// Every token the run handed out or was shown: printed URLs and the state file.
fn known_tokens(stdout: &[String], state: &Path) -> Vec<String> {
    let mut tokens: Vec<String> = stdout
        .iter()
        .filter_map(|l| l.trim().strip_prefix("url: "))
        .map(token_of)
        .collect();
    let state: Value = serde_json::from_str(
        &std::fs::read_to_string(state.join("tokens.json")).expect("state file"),
    )
    .expect("state JSON");
    for server in state["servers"].as_object().expect("servers").values() {
        tokens.push(server["token"].as_str().expect("token").to_string());
    }
    tokens.sort();
    tokens.dedup();
    tokens
}

#[tokio::test]
async fn tokens_and_api_keys_never_reach_the_logs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    write_manifests(&manifests);
    let (state, log) = (dir.path().join("state"), dir.path().join("stderr.log"));
    let mut local = start_local(&manifests, &state, &log);
    let before = local.read_summary().await;
    assert_eq!(before.len(), 4, "{before:#?}");
    exercise(&before).await;

    let after = rotate(&mut local, &manifests).await;
    let (old, new) = (&before["it-ops/change-ops"], &after["it-ops/change-ops"]);
    assert_ne!(old, new, "rotation mints a new URL");
    assert_eq!(status_of(old, LIST, &[]).await, 404);
    assert_eq!(status_of(new, READ_CALL, &[]).await, 200);
    exercise(&after).await;
    let _ = local.child.kill().await;

    let logs = std::fs::read_to_string(&log).expect("logs");
    assert!(logs.contains(r#""level":"TRACE""#), "trace level is on");
    assert!(logs.contains("tool call") && logs.contains("/mcp/[token]"));
    let mut secrets = known_tokens(&local.output, &state);
    assert!(
        secrets.len() >= 5,
        "4 servers and a rotated token: {secrets:?}"
    );
    secrets.extend([API_KEY_VALUE, CLIENT_TOKEN, WRONG_BEARER, UNKNOWN_TOKEN].map(String::from));
    for secret in &secrets {
        assert_no_piece_of(&logs, secret);
    }
}

/// Fails when `logs` hold any 16 characters in a row of `secret`, which would already say
/// too much.
fn assert_no_piece_of(logs: &str, secret: &str) {
    let chars: Vec<char> = secret.chars().collect();
    for window in chars.windows(16) {
        let piece: String = window.iter().collect();
        assert!(
            !logs.contains(&piece),
            "logs contain {piece:?} of {secret:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Path tricks and HTTP framing

const TOKEN_A: &str = "tok-a-security-000000000001";
const TOKEN_B: &str = "tok-b-security-000000000002";

/// Two servers, each with its own upstream that records what reaches it.
async fn two_servers() -> (Plane, MockServer, MockServer) {
    let (up_a, up_b) = (MockServer::start().await, MockServer::start().await);
    for up in [&up_a, &up_b] {
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
            .mount(up)
            .await;
    }
    let plane = Plane::start(DataplaneConfig::default()).await;
    for (token, name, up) in [(TOKEN_A, "server-a", &up_a), (TOKEN_B, "server-b", &up_b)] {
        let spec = format!("  displayName: Display {name}\n");
        plane.serve(token, name, &spec, &up.uri());
    }
    (plane, up_a, up_b)
}

async fn received(up: &MockServer) -> usize {
    up.received_requests().await.map_or(0, |r| r.len())
}

fn raw_post(path: &str, body: &str, extra_headers: &str) -> String {
    format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{extra_headers}\r\n{body}",
        body.len()
    )
}

/// Writes `request` on one connection and reads every response until the server closes.
async fn exchange(plane: &Plane, request: &[u8]) -> Vec<(u16, String)> {
    exchange_at(plane.base.trim_start_matches("http://"), request).await
}

/// Writes `request` to `addr` on one connection and reads every response until the
/// server closes.
async fn exchange_at(addr: &str, request: &[u8]) -> Vec<(u16, String)> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut bytes = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes));
    let _ = read.await.expect("the server closes the connection");
    parse_responses(&bytes)
}

/// Splits HTTP/1.1 responses with `content-length` bodies (all the data plane sends).
fn parse_responses(mut bytes: &[u8]) -> Vec<(u16, String)> {
    let mut out = Vec::new();
    while let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let length = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|n| n.trim().parse::<usize>().ok())
            .unwrap_or(0);
        let body_end = (end + 4 + length).min(bytes.len());
        out.push((
            status,
            String::from_utf8_lossy(&bytes[end + 4..body_end]).into_owned(),
        ));
        bytes = &bytes[body_end..];
    }
    out
}

#[tokio::test]
async fn path_tricks_never_reach_a_server() {
    let (plane, up_a, up_b) = two_servers().await;
    let (a, b) = (TOKEN_A, TOKEN_B);
    let tricks = [
        format!("/mcp/{a}/{b}"),
        format!("/mcp/{a}/"),
        format!("/mcp//{b}"),
        format!("//mcp/{b}"),
        format!("/MCP/{b}"),
        format!("/mcp/{a}%2F{b}"),
        format!("/mcp/{a}%2f..%2f{b}"),
        format!("/mcp/{a}/../{b}"),
        format!("/mcp/{a}/..%2F{b}"),
        format!("/mcp/./{b}"),
        format!("/mcp/{b}/."),
        format!("/mcp/{b}/.."),
        format!("/mcp/{b}/%2e"),
        format!("/mcp/%2e%2e/mcp/{b}"),
        format!("/mcp/{b}%00"),
        format!("/mcp/%20{b}"),
        format!("/mcp/{b}%20"),
        format!("/mcp/{b};x"),
        format!("/mcp/{b}%2F"),
        format!("/api/../mcp/{b}"),
        format!("/api/../mcp/{b}/x"),
    ];
    for path in &tricks {
        let request = raw_post(path, READ_CALL, "Connection: close\r\n");
        let answers = exchange(&plane, request.as_bytes()).await;
        assert_eq!(answers.len(), 1, "{path}: {answers:?}");
        assert!(matches!(answers[0].0, 400 | 404), "{path}: {answers:?}");
    }
    assert_eq!((received(&up_a).await, received(&up_b).await), (0, 0));
    // The exact URL still works: the tricks failed for the right reason.
    let exact = raw_post(&format!("/mcp/{a}"), READ_CALL, "Connection: close\r\n");
    assert_eq!(exchange(&plane, exact.as_bytes()).await[0].0, 200);
    assert_eq!((received(&up_a).await, received(&up_b).await), (1, 0));
}

/// A chunked request to A whose `Content-Length` covers a second request to B.
fn smuggling(te_first: bool) -> String {
    let inner = raw_post(&format!("/mcp/{TOKEN_B}"), READ_CALL, "");
    let chunked = format!("{:x}\r\n{READ_CALL}\r\n0\r\n\r\n", READ_CALL.len());
    let (te, cl) = (
        "Transfer-Encoding: chunked\r\n".to_string(),
        format!("Content-Length: {}\r\n", chunked.len() + inner.len()),
    );
    let framing = if te_first { te + &cl } else { cl + &te };
    format!(
        "POST /mcp/{TOKEN_A} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\n{chunked}{inner}"
    )
}

#[tokio::test]
async fn conflicting_framing_never_smuggles_a_request() {
    let (plane, up_a, up_b) = two_servers().await;
    for te_first in [true, false] {
        let answers = exchange(&plane, smuggling(te_first).as_bytes()).await;
        assert!(answers.len() <= 1, "one request at most: {answers:?}");
    }
    let body = READ_CALL;
    let twice = format!(
        "POST /mcp/{TOKEN_A} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nContent-Length: 1\r\n\r\n{body}",
        body.len()
    );
    let answers = exchange(&plane, twice.as_bytes()).await;
    assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), vec![400]);
    let http10 = format!(
        "POST /mcp/{TOKEN_A} HTTP/1.0\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    );
    let answers = exchange(&plane, http10.as_bytes()).await;
    assert_eq!(answers.iter().map(|a| a.0).collect::<Vec<_>>(), vec![400]);
    assert_eq!(received(&up_b).await, 0, "nothing reached server B");
    assert!(received(&up_a).await <= 2);
}

#[tokio::test]
async fn pipelined_requests_are_each_answered_by_their_own_server() {
    let (plane, up_a, up_b) = two_servers().await;
    let init = r#"{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;
    let pipelined = [
        raw_post(&format!("/mcp/{TOKEN_A}"), init, ""),
        raw_post(&format!("/mcp/{TOKEN_A}"), READ_CALL, ""),
        raw_post(&format!("/mcp/{TOKEN_B}"), init, ""),
        raw_post(&format!("/mcp/{UNKNOWN_TOKEN}"), READ_CALL, ""),
        // A refusal sent before its body is read ends the connection (it says
        // `Connection: close`), so nothing after it is answered on this connection.
        raw_post(&format!("/mcp/{TOKEN_A}"), READ_CALL, ""),
    ]
    .concat();
    let answers = exchange(&plane, pipelined.as_bytes()).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    assert_eq!(statuses, vec![200, 200, 200, 404], "{answers:?}");
    let title = |body: &str| -> String {
        serde_json::from_str::<Value>(body).expect("json")["result"]["serverInfo"]["title"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(title(&answers[0].1), "Display server-a");
    assert_eq!(title(&answers[2].1), "Display server-b");
    assert_eq!((received(&up_a).await, received(&up_b).await), (1, 0));
}

// ---------------------------------------------------------------------------------------
// Write tools on a read-only server

const WRITE: &str = "create_a_atomicwork_request";

/// An upstream that answers reads and must never see a write. (No read call made here
/// uses POST, so any POST is a write.)
async fn guarded_upstream() -> MockServer {
    let up = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"data": []})))
        .mount(&up)
        .await;
    for verb in ["POST", "PUT", "PATCH", "DELETE"] {
        Mock::given(method(verb))
            .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
            .named(format!("write endpoint ({verb})"))
            .expect(0)
            .mount(&up)
            .await;
    }
    up
}

/// True when the answer refuses the call: an HTTP or JSON-RPC error, or an error result
/// saying the tool is unknown.
async fn refused(resp: reqwest::Response) -> bool {
    let status = resp.status();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    if status.is_client_error() || body.get("error").is_some() {
        return true;
    }
    body["result"]["isError"] == true
        && body["result"]["content"][0]["text"]
            .as_str()
            .is_some_and(|t| t.contains("Unknown tool") || t.contains("tool_names"))
}

fn stateless(name_in_body: &str, args: Value) -> String {
    json!({"jsonrpc": "2.0", "id": 9, "method": "tools/call", "params": {
        "name": name_in_body, "arguments": args,
        "_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
                  "io.modelcontextprotocol/clientCapabilities": {}}}})
    .to_string()
}

/// A URL, a body and the headers to send with it.
type Attempt<'a> = (&'a str, String, Vec<(&'static str, String)>);

const READ_NAME: &str = "list_all_atomicwork_workspaces";

fn via_call_tool(name: &str, args: &Value) -> String {
    call("call_tool", json!({"tool_name": name, "arguments": args}))
}

/// The 2026-07-28 routing headers, naming `name`.
fn routing_headers(name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("mcp-protocol-version", "2026-07-28".to_string()),
        ("mcp-method", "tools/call".to_string()),
        ("mcp-name", name.to_string()),
    ]
}

/// Every route by which a write tool might be named on the two read-only servers.
fn write_attempts<'a>(direct: &'a str, discovery: &'a str) -> Vec<Attempt<'a>> {
    let subject = json!({"subject": "x"});
    let variants = [
        WRITE.to_string(),
        WRITE.to_uppercase(),
        "Create_A_Atomicwork_Request".to_string(),
        format!(" {WRITE}"),
        format!("{WRITE} "),
        format!("{WRITE}\n"),
        format!("{WRITE}\u{0}"),
        format!("{WRITE}\u{200b}"),
    ];
    let mut attempts: Vec<Attempt> = Vec::new();
    for name in &variants {
        attempts.push((direct, call(name, subject.clone()), vec![]));
        attempts.push((discovery, call(name, subject.clone()), vec![]));
        attempts.push((discovery, via_call_tool(name, &subject), vec![]));
    }
    let schema = call("get_tool_schema", json!({"tool_names": [WRITE]}));
    let deletion = call(
        "delete_a_atomicwork_requests_number_by_id",
        json!({"id": "ITREQ-1"}),
    );
    let escaped = READ_CALL.replace(READ_NAME, r"\u0063reate_a_atomicwork_request");
    let batch = format!("[{READ_CALL},{}]", call(WRITE, subject.clone()));
    let lone_batch = format!("[{}]", call(WRITE, subject.clone()));
    attempts.push((discovery, schema, vec![]));
    attempts.push((direct, deletion, vec![]));
    attempts.push((direct, escaped, vec![]));
    attempts.push((direct, batch, vec![]));
    attempts.push((direct, lone_batch, vec![]));
    // Mcp-Name claims a read tool (plainly or base64-encoded) while the body names a write.
    let write_body = stateless(WRITE, subject);
    let encoded = "=?base64?bGlzdF9hbGxfYXRvbWljd29ya193b3Jrc3BhY2Vz?=";
    let duplicate =
        write_body.replacen(r#""name":"#, &format!(r#""name":"{READ_NAME}","name":"#), 1);
    attempts.push((direct, write_body.clone(), routing_headers(READ_NAME)));
    attempts.push((direct, write_body, routing_headers(encoded)));
    attempts.push((direct, duplicate.clone(), routing_headers(READ_NAME)));
    attempts.push((direct, duplicate, routing_headers(WRITE)));
    attempts
}

#[tokio::test]
async fn write_tools_are_unreachable_on_a_read_only_server() {
    let up = guarded_upstream().await;
    let plane = Plane::start(DataplaneConfig::default()).await;
    let direct = plane.serve(
        "tok-readonly-writes-01",
        "ro",
        "  methods: [read]\n",
        &up.uri(),
    );
    let spec = "  methods: [read]\n  toolExposure: discovery\n";
    let discovery = plane.serve("tok-readonly-writes-02", "ro-d", spec, &up.uri());
    let attempts = write_attempts(&direct, &discovery);
    for (url, body, headers) in &attempts {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert!(
            refused(post(url, body, &headers).await).await,
            "not refused: {body}"
        );
    }
    // The same routes do run a read tool, so the refusals are about the tool.
    let read_headers = routing_headers(READ_NAME);
    let read_headers: Vec<(&str, &str)> =
        read_headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for (url, body, headers) in [
        (&direct, READ_CALL.to_string(), vec![]),
        (&discovery, via_call_tool(READ_NAME, &json!({})), vec![]),
        (&direct, stateless(READ_NAME, json!({})), read_headers),
    ] {
        let ok: Value = post(url, &body, &headers).await.json().await.expect("json");
        assert_eq!(ok["result"]["isError"], false, "{ok}");
    }
    up.verify().await;
    let requests = up.received_requests().await.unwrap_or_default();
    assert_eq!(requests.len(), 3);
    assert!(requests.iter().all(|r| r.method.as_str() == "GET"));
}

// ---------------------------------------------------------------------------------------
// The access log, request bodies and connections, against the real binary

/// How long any answer or close may take in these tests: several times every timeout
/// configured here, so only a server that never answers or never closes fails.
const BOUND: Duration = Duration::from_secs(10);

/// The real binary in local mode with the example manifests and the bearer server,
/// `env` set and `args` added, stderr in `<dir>/stderr.log`; its first summary read.
async fn local_in(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> (LocalProcess, PathBuf) {
    let manifests = dir.join("manifests");
    std::fs::create_dir_all(&manifests).expect("mkdir");
    write_manifests(&manifests);
    let log = dir.join("stderr.log");
    let stderr = std::fs::File::create(&log).expect("log file");
    let mut local = LocalProcess::spawn_args(
        &manifests,
        &dir.join("state"),
        Stdio::from(stderr),
        env,
        args,
    );
    local.read_summary().await;
    (local, log)
}

/// The first complete response in `bytes` (`content-length` framed), if one is there.
fn complete_response(bytes: &[u8]) -> Option<(u16, String)> {
    let end = bytes.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    if bytes.len() < end + 4 + length {
        return None;
    }
    parse_responses(&bytes[..end + 4 + length])
        .into_iter()
        .next()
}

/// Reads one response from `stream`; `None` when none is complete within `within` or the
/// connection ends first.
async fn read_response(stream: &mut TcpStream, within: Duration) -> Option<(u16, String)> {
    let deadline = tokio::time::Instant::now() + within;
    let mut bytes = Vec::new();
    loop {
        if let Some(response) = complete_response(&bytes) {
            return Some(response);
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => bytes.extend_from_slice(&chunk[..n]),
            _ => return None,
        }
    }
}

/// True when the server closes `stream` (end of stream or a reset) within `within`;
/// anything it sends first is read and dropped.
async fn closes_within<R: tokio::io::AsyncRead + Unpin>(stream: &mut R, within: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    let mut chunk = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => {}
            Err(_) => return false,
        }
    }
}

/// Opens a connection to `addr` and writes `request` on it, leaving it open.
async fn send(addr: &str, request: &str) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    stream
}

/// The JSON-RPC error of a response body.
fn rpc_error(body: &str) -> Value {
    serde_json::from_str::<Value>(body).unwrap_or_else(|e| panic!("{e}: {body}"))["error"].clone()
}

/// Paths that are not served routes, each carrying the token where a redaction of the
/// first segment after `/mcp/` would miss it.
fn unrouted(token: &str) -> Vec<String> {
    vec![
        format!("/mcp//{token}"),
        format!("//mcp/{token}"),
        format!("/MCP/{token}"),
        format!("/mcp/x/../{token}"),
        format!("/mcp/{token}/extra"),
        format!("/mcp/{token}/"),
        format!("/mcp/x/{token}"),
        format!("/{token}"),
        format!("/mcp%2F{token}"),
        format!("/api/mcp/{token}"),
        format!("/healthz/{token}"),
        format!("/mcp/x?token={token}"),
        format!("/nothing?{token}"),
    ]
}

#[tokio::test]
async fn url_tokens_never_reach_the_access_log_by_any_path() {
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = [("RUST_LOG", "trace"), ("LOG_FORMAT", format)];
        let (mut local, log) = local_in(dir.path(), &env, &["--sandbox"]).await;
        let token = token_of(&local.url("it-ops/service-desk-readonly"));
        let addr = local.addr();
        let mut paths = unrouted(&token);
        // Served routes, the token in the query as well.
        paths.push(format!("/mcp/{token}?token={token}"));
        paths.push(format!("/mcp/{token}?{token}"));
        paths.push(format!("/healthz?{token}"));
        for path in &paths {
            let request = raw_post(path, READ_CALL, "Connection: close\r\n");
            let answers = exchange_at(&addr, request.as_bytes()).await;
            assert_eq!(answers.len(), 1, "{format} {path}: {answers:?}");
        }
        let _ = local.child.kill().await;
        let logs = std::fs::read_to_string(&log).expect("logs");
        let access = logs
            .lines()
            .filter(|l| l.contains("atomicwork_mcp::access"))
            .count();
        assert_eq!(access, paths.len(), "{format}: one access line per request");
        assert!(logs.contains("/mcp/[token]"), "{format}: {logs}");
        assert_no_piece_of(&logs, &token);
    }
}

#[tokio::test]
async fn refused_requests_are_answered_before_their_body_is_read() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (local, _) = local_in(dir.path(), &[], &["--sandbox"]).await;
    let addr = local.addr();
    let readonly = format!(
        "/mcp/{}",
        token_of(&local.url("it-ops/service-desk-readonly"))
    );
    let bearer = format!("/mcp/{}", token_of(&local.url("it-ops/bearer-desk")));
    // Headers announcing 39 MB of body, then only a few bytes of it.
    let announced = |path: &str, length: usize, extra: &str| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n{{\"jsonrpc\""
        )
    };
    // Ten unknown-token uploads at once: each is answered, and its connection closed,
    // without the server waiting for the body.
    let unknown = format!("/mcp/{UNKNOWN_TOKEN}");
    let mut uploads = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (addr, request) = (addr.clone(), announced(&unknown, 39_000_000, ""));
        uploads.spawn(async move {
            let mut stream = send(&addr, &request).await;
            let answer = read_response(&mut stream, BOUND).await;
            (answer, closes_within(&mut stream, BOUND).await)
        });
    }
    while let Some(joined) = uploads.join_next().await {
        let (answer, closed) = joined.expect("upload task");
        let (status, body) = answer.expect("an answer without the body");
        assert_eq!(status, 404, "{body}");
        assert_eq!(rpc_error(&body)["code"], -31000, "{body}");
        assert!(closed, "the connection is closed rather than drained");
    }
    // Every other refusal comes before the body too.
    let cases = [
        (readonly.as_str(), "Origin: https://evil.example\r\n", 403),
        (readonly.as_str(), "Host: evil.example\r\n", 403),
        (bearer.as_str(), "", 401),
        (bearer.as_str(), "Authorization: Bearer wrong\r\n", 401),
    ];
    for (path, extra, expected) in cases {
        let request = announced(path, 39_000_000, extra).replacen(
            "Host: 127.0.0.1\r\n",
            if extra.starts_with("Host") {
                ""
            } else {
                "Host: 127.0.0.1\r\n"
            },
            1,
        );
        let mut stream = send(&addr, &request).await;
        let answer = read_response(&mut stream, BOUND).await;
        assert_eq!(answer.map(|a| a.0), Some(expected), "{extra}");
    }
    // A body announced larger than the limit is refused at once, as JSON-RPC.
    let mut stream = send(&addr, &announced(&readonly, 50_000_000, "")).await;
    let (status, body) = read_response(&mut stream, BOUND)
        .await
        .expect("an answer without the body");
    assert_eq!(status, 413, "{body}");
    let error = rpc_error(&body);
    assert_eq!(error["code"], -32600, "{body}");
    assert!(
        error["message"]
            .as_str()
            .is_some_and(|m| m.contains("41943040")),
        "{body}"
    );
    // The server still answers the exact URL with its body.
    let request = raw_post(&readonly, READ_CALL, "Connection: close\r\n");
    assert_eq!(exchange_at(&addr, request.as_bytes()).await[0].0, 200);
}

#[tokio::test]
async fn slow_idle_and_stalled_connections_are_closed() {
    let dir = tempfile::tempdir().expect("tempdir");
    let env = [
        ("HEADER_READ_TIMEOUT_SECONDS", "1"),
        ("BODY_READ_TIMEOUT_SECONDS", "1"),
        ("IDLE_TIMEOUT_SECONDS", "1"),
    ];
    let (local, _) = local_in(dir.path(), &env, &["--sandbox"]).await;
    let addr = local.addr();

    // A connection that never sends anything.
    let mut silent = TcpStream::connect(&addr).await.expect("connect");
    assert!(
        closes_within(&mut silent, BOUND).await,
        "a silent connection"
    );

    // Headers sent a byte at a time, for longer than the bound.
    let (mut read, mut write) = TcpStream::connect(&addr)
        .await
        .expect("connect")
        .into_split();
    let drip = tokio::spawn(async move {
        let head = "POST /mcp/x HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nX-Padding: ";
        let bytes = head.bytes().chain(std::iter::repeat(b'a'));
        for byte in bytes.take(200) {
            if write.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    assert!(closes_within(&mut read, BOUND).await, "slow headers");
    drip.abort();

    // A keep-alive connection left idle after its answer.
    let mut idle = send(&addr, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await;
    let answer = read_response(&mut idle, BOUND).await;
    assert_eq!(answer.map(|a| a.0), Some(200));
    assert!(closes_within(&mut idle, BOUND).await, "an idle connection");

    // A body announced as 100 bytes of which one arrives.
    let readonly = format!(
        "/mcp/{}",
        token_of(&local.url("it-ops/service-desk-readonly"))
    );
    let stalled = format!(
        "POST {readonly} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
    );
    let mut stream = send(&addr, &stalled).await;
    let (status, body) = read_response(&mut stream, BOUND)
        .await
        .expect("an answer to a stalled body");
    assert_eq!(status, 408, "{body}");
    assert_eq!(rpc_error(&body)["code"], -32600, "{body}");
    assert!(closes_within(&mut stream, BOUND).await, "a stalled body");
}

#[tokio::test]
async fn connections_over_the_cap_wait_for_a_free_slot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (local, _) = local_in(dir.path(), &[("MAX_CONNECTIONS", "2")], &["--sandbox"]).await;
    let addr = local.addr();
    let health = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut first = send(&addr, health).await;
    let mut second = send(&addr, health).await;
    for stream in [&mut first, &mut second] {
        assert_eq!(read_response(stream, BOUND).await.map(|a| a.0), Some(200));
    }
    // Both slots are held by open keep-alive connections: a third waits.
    let mut third = send(&addr, health).await;
    assert_eq!(
        read_response(&mut third, Duration::from_secs(1)).await,
        None,
        "answered over the cap"
    );
    drop(first);
    assert_eq!(
        read_response(&mut third, BOUND).await.map(|a| a.0),
        Some(200)
    );
    second.write_all(health.as_bytes()).await.expect("write");
    assert_eq!(
        read_response(&mut second, BOUND).await.map(|a| a.0),
        Some(200)
    );
}

#[tokio::test]
async fn the_request_deadline_and_body_limit_are_flags() {
    let up = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(60)))
        .mount(&up)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    let manifest = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: atomicwork-api, namespace: it-ops}}\nstringData: {{apiKey: {API_KEY_VALUE}}}\n---\napiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: slow, namespace: it-ops}}\nspec:\n  atomicwork: {{baseUrl: \"{}\", apiKeySecretRef: {{name: atomicwork-api}}, timeoutSeconds: 120}}\n  methods: [read]\n",
        up.uri()
    );
    std::fs::write(manifests.join("slow.yaml"), manifest).expect("manifest");
    let env = [("REQUEST_TIMEOUT_SECONDS", "1"), ("MAX_BODY_BYTES", "2000")];
    let mut local = LocalProcess::spawn_args(
        &manifests,
        &dir.path().join("state"),
        Stdio::null(),
        &env,
        &[],
    );
    local.read_summary().await;
    let url = local.url("it-ops/slow");

    let client = reqwest::Client::builder()
        .timeout(BOUND)
        .build()
        .expect("client");
    let resp = client
        .post(&url)
        .header("content-type", "application/json")
        .body(READ_CALL)
        .send()
        .await
        .expect("an answer at the deadline");
    assert_eq!(resp.status(), 504);
    let answer: Value = resp.json().await.expect("JSON");
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(answer["error"]["code"], -31006, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("(1s)")),
        "{answer}"
    );

    let padded = format!(
        r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{}"}}}}"#,
        "x".repeat(3000)
    );
    let resp = client
        .post(&url)
        .header("content-type", "application/json")
        .body(padded)
        .send()
        .await
        .expect("an answer");
    assert_eq!(resp.status(), 413);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let answer: Value = resp.json().await.expect("JSON");
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("2000 bytes")),
        "{answer}"
    );
}

#[tokio::test]
async fn local_origin_and_host_flags_add_to_the_loopback_defaults() {
    let dir = tempfile::tempdir().expect("tempdir");
    let args = [
        "--sandbox",
        "--allowed-origins",
        "https://app.example",
        "--allowed-hosts",
        "mcp.internal",
    ];
    let (local, _) = local_in(dir.path(), &[], &args).await;
    let url = local.url("it-ops/service-desk-readonly");
    for (origin, expected) in [
        ("https://app.example", 200),
        ("http://localhost:6274", 200),
        ("http://127.0.0.1:6274", 200),
        ("https://claude.ai", 200),
        ("https://evil.example", 403),
    ] {
        let status = status_of(&url, LIST, &[("origin", origin)]).await;
        assert_eq!(status, expected, "{origin}");
    }
    let addr = local.addr();
    let path = format!("/mcp/{}", token_of(&url));
    let port = addr.rsplit(':').next().expect("port").to_string();
    for (host, expected) in [
        ("mcp.internal".to_string(), 200),
        (format!("mcp.internal:{port}"), 200),
        (format!("localhost:{port}"), 200),
        (addr.clone(), 200),
        ("evil.example".to_string(), 403),
    ] {
        let request = raw_post(&path, LIST, "Connection: close\r\n").replacen(
            "Host: 127.0.0.1",
            &format!("Host: {host}"),
            1,
        );
        let answers = exchange_at(&addr, request.as_bytes()).await;
        assert_eq!(answers.len(), 1, "{host}: {answers:?}");
        assert_eq!(answers[0].0, expected, "{host}: {answers:?}");
        if expected == 403 {
            let message = rpc_error(&answers[0].1)["message"].clone();
            assert!(
                message
                    .as_str()
                    .is_some_and(|m| m.contains("--allowed-hosts")),
                "{message}"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// Results, errors and arguments through the real binary, against a recording upstream

/// The API key of the servers below; the upstream echoes whatever key it receives.
const ECHOED_KEY: &str = "awk-live-echo-Rt5Wq8Zn2Lp0-cut";

/// Answers `GET …/requests/{kind}-{offset}` with the received API key starting `offset`
/// characters into the text that is cut: `object`, a JSON object cut at the result cap;
/// `text`, a plain-text answer; `snippet`, a 500 whose body is quoted in the error.
struct EchoKey;

impl wiremock::Respond for EchoKey {
    fn respond(&self, request: &wiremock::Request) -> ResponseTemplate {
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
        let tail = pad(5_000);
        match kind {
            "object" => {
                let head = r#"{"description":""#.len();
                let s = format!("{}{key}{tail}", pad(offset.saturating_sub(head)));
                ResponseTemplate::new(200).set_body_json(json!({ "description": s }))
            }
            "text" => ResponseTemplate::new(200)
                .insert_header("content-type", "text/plain")
                .set_body_string(format!("{}{key}{tail}", pad(offset))),
            _ => ResponseTemplate::new(500)
                .insert_header("content-type", "text/plain")
                .set_body_string(format!("{}{key}{tail}", pad(offset))),
        }
    }
}

/// The key's Secret and two read-only servers calling `upstream`: `cut-small` with the
/// smallest result cap, `cut-default` with the default one.
fn echo_manifests(dir: &Path, upstream: &str) {
    let secret = format!(
        "apiVersion: v1\nkind: Secret\nmetadata: {{name: atomicwork-api, namespace: it-ops}}\nstringData: {{apiKey: {ECHOED_KEY}}}\n"
    );
    let server = |name: &str, extra: &str| {
        format!(
            "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: {name}, namespace: it-ops}}\nspec:\n  atomicwork: {{baseUrl: \"{upstream}\", apiKeySecretRef: {{name: atomicwork-api}}, workspaceId: \"1\"}}\n  methods: [read]\n{extra}"
        )
    };
    let text = [
        secret,
        server("cut-small", "  maxResultChars: 1000\n"),
        server("cut-default", ""),
    ]
    .join("---\n");
    std::fs::write(dir.join("servers.yaml"), text).expect("manifest");
}

/// Local mode serving [`echo_manifests`] against `upstream`, with its URLs.
async fn echo_local(dir: &Path, upstream: &str) -> (LocalProcess, BTreeMap<String, String>) {
    let manifests = dir.join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    echo_manifests(&manifests, upstream);
    let mut local = LocalProcess::spawn_upstream(&manifests, &dir.join("state"), Stdio::null());
    let urls = local.read_summary().await;
    assert_eq!(urls.len(), 2, "{:#?}", local.output);
    (local, urls)
}

const GET_BY_ID: &str = "get_single_atomicwork_requests_number_by_id";

#[tokio::test]
async fn no_part_of_the_api_key_survives_a_cut_result_or_error_snippet() {
    let upstream = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(EchoKey)
        .mount(&upstream)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_local, urls) = echo_local(dir.path(), &upstream.uri()).await;
    let pieces: Vec<&str> = (0..=ECHOED_KEY.len() - 8)
        .map(|i| &ECHOED_KEY[i..i + 8])
        .collect();
    let mut redacted = 0;
    for (server, kind, limit) in [
        ("it-ops/cut-small", "object", 1_000),
        ("it-ops/cut-small", "text", 1_000),
        ("it-ops/cut-small", "snippet", 1_000),
        ("it-ops/cut-default", "snippet", 2_000),
    ] {
        for offset in limit - ECHOED_KEY.len() - 4..=limit + 4 {
            let body = call(GET_BY_ID, json!({"id": format!("{kind}-{offset}")}));
            let resp = post(&urls[server], &body, &[]).await;
            assert_eq!(resp.status(), 200);
            let text = resp.text().await.expect("body");
            assert!(text.contains("[Result truncated]") || text.contains("(cut)"));
            for piece in &pieces {
                assert!(
                    !text.contains(piece),
                    "{server} {kind} at {offset}: {piece:?} of the key in the answer"
                );
            }
            redacted += usize::from(text.contains("[redact"));
        }
    }
    assert!(
        redacted > 0,
        "the echoed key was redacted, not only cut away"
    );
}

#[tokio::test]
async fn over_long_arguments_and_names_get_short_errors_and_send_nothing() {
    let upstream = MockServer::start().await;
    Mock::given(wiremock::matchers::any())
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": 1})))
        .expect(0)
        .mount(&upstream)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let (_local, urls) = echo_local(dir.path(), &upstream.uri()).await;
    let url = &urls["it-ops/cut-default"];
    let huge_id = "I".repeat(1_000_000);
    let many_keys: serde_json::Map<String, Value> = (0..10_000)
        .map(|i| (format!("unknown_argument_{i}"), json!(i)))
        .collect();
    let cases = [
        // A path argument over its limit: refused before any URL is built.
        (
            call(GET_BY_ID, json!({"id": huge_id})),
            vec!["invalid arguments", "`id`", "1000000 characters", "256"],
        ),
        // An id with a slash.
        (
            call(GET_BY_ID, json!({"id": "ITREQ-1/../2"})),
            vec!["invalid arguments", "`id`", "\"/\""],
        ),
        // A query argument over its limit.
        (
            call(
                "list_all_atomicwork_audit_logs",
                json!({"search_key": "s".repeat(100_000)}),
            ),
            vec!["invalid arguments", "`search_key`", "2048"],
        ),
        // Ten thousand unknown arguments: a few are named, the rest counted.
        (
            call(GET_BY_ID, json!(many_keys)),
            vec!["Invalid arguments", "unknown_argument_0", "more"],
        ),
        // A value of the wrong type quoted by the schema check.
        (
            call(GET_BY_ID, json!({"id": ["x".repeat(200_000)]})),
            vec!["Invalid arguments", "id"],
        ),
    ];
    for (body, needles) in &cases {
        let resp = post(url, body, &[]).await;
        assert_eq!(resp.status(), 200);
        let answer: Value = resp.json().await.expect("json");
        assert_eq!(answer["result"]["isError"], true, "{answer}");
        let text: String = answer["result"]["content"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|c| c["text"].as_str())
            .collect();
        let head = &text[..text.len().min(300)];
        for needle in needles {
            assert!(text.contains(needle), "{needle:?} missing from {head}");
        }
        assert!(
            text.chars().count() <= 4_000,
            "{} characters: {head}",
            text.chars().count()
        );
        assert!(!text.contains("Retry"), "not worth retrying: {head}");
    }
    // A tool name of 200,000 characters: the protocol error quoting it is capped too.
    let resp = post(url, &call(&"n".repeat(200_000), json!({})), &[]).await;
    let answer: Value = resp.json().await.expect("json");
    let message = answer["error"]["message"].as_str().unwrap_or_default();
    assert!(message.starts_with("Unknown tool"), "{answer}");
    assert!(
        message.chars().count() <= 1_000,
        "{} characters",
        message.len()
    );
    upstream.verify().await;
}

/// A body that stalls when the request deadline comes before the body-read timeout: the
/// request is answered at the deadline (504, the deadline's JSON-RPC error), however the
/// request reached the endpoint, and a POST whose token is percent-encoded in the path is
/// served as the decoded token.
#[tokio::test]
async fn the_request_deadline_also_bounds_a_stalled_body() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (local, _) = local_in(
        dir.path(),
        &[("REQUEST_TIMEOUT_SECONDS", "1")],
        &["--sandbox"],
    )
    .await;
    let addr = local.addr();
    let token = token_of(&local.url("it-ops/service-desk-readonly"));
    let encoded: String = token.bytes().map(|b| format!("%{b:02X}")).collect();
    let call = r#"{"jsonrpc":"2.0","id":7,"method":"tools/list"}"#;
    for path in [format!("/mcp/{token}"), format!("/mcp/{encoded}")] {
        let whole = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{call}",
            call.len()
        );
        let mut stream = send(&addr, &whole).await;
        let (status, body) = read_response(&mut stream, BOUND)
            .await
            .unwrap_or_else(|| panic!("{path}: no answer"));
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains(r#""id":7"#), "{path}: {body}");

        let stalled = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        );
        let started = std::time::Instant::now();
        let mut stream = send(&addr, &stalled).await;
        let (status, body) = read_response(&mut stream, BOUND)
            .await
            .unwrap_or_else(|| panic!("{path}: no answer to a stalled body"));
        assert_eq!(status, 504, "{path}: {body}");
        assert_eq!(rpc_error(&body)["code"], -31006, "{path}: {body}");
        assert!(
            started.elapsed() >= Duration::from_secs(1),
            "{path}: answered before the deadline"
        );
    }
}
