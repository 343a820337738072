//! Local mode end to end: the real binary with `--sandbox` and the example manifests, driven
//! by an MCP client through the URLs it prints.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Stdio;

use common::{LocalProcess, args, connect, texts};
use rmcp::model::CallToolRequestParams;
use serde_json::{Value, json};

/// Local mode with the example manifests, its first summary read.
async fn start_local(manifests: &Path, state: &Path) -> LocalProcess {
    let mut local = LocalProcess::spawn(manifests, state, Stdio::null(), &[]);
    local.read_summary().await;
    local
}

fn copy_examples(to: &Path) {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local");
    for entry in std::fs::read_dir(from).expect("examples").flatten() {
        std::fs::copy(entry.path(), to.join(entry.file_name())).expect("copy");
    }
}

fn result_json(result: &rmcp::model::CallToolResult) -> Value {
    let texts = texts(result);
    assert!(
        texts.iter().any(|t| t.contains("SIMULATED")),
        "sandbox label missing: {texts:?}"
    );
    texts
        .iter()
        .find_map(|t| serde_json::from_str::<Value>(t).ok())
        .unwrap_or_else(|| panic!("no JSON content in {texts:?}"))
}

#[tokio::test]
async fn sandbox_walkthrough_and_hot_reload() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    copy_examples(&manifests);
    let state = dir.path().join("state");
    let mut local = start_local(&manifests, &state).await;
    assert!(
        local.output.iter().any(|l| l.contains("SIMULATED")),
        "startup says simulated"
    );

    // The read-only server lists exactly the read tools.
    let readonly = connect(
        &local.url("it-ops/service-desk-readonly"),
        "2025-11-25",
        None,
    )
    .await
    .expect("connect");
    let tools = readonly.list_tools(None).await.expect("list");
    assert_eq!(tools.tools.len(), 21);
    let _ = readonly.cancel().await;

    // Incident triage into an emergency change with notes, on the change server.
    let ops_url = local.url("it-ops/change-ops");
    let ops = connect(&ops_url, "2026-07-28", None)
        .await
        .expect("connect");
    let incidents = ops
        .call_tool(CallToolRequestParams::new("list_all_atomicwork_requests_search").with_arguments(args(json!({
            "body": [{"attribute": "status", "operator": "EQUALS", "values": [{"value": "OPEN"}]}]
        }))))
        .await
        .expect("search requests");
    let found = result_json(&incidents);
    assert!(found["total_count"].as_u64().unwrap_or(0) >= 3, "{found}");
    let created = ops
        .call_tool(
            CallToolRequestParams::new("create_a_atomicwork_change_management_change")
                .with_arguments(args(json!({
                    "subject": "Emergency: restore VPN gateway",
                    "change_template": 2,
                    "priority": "URGENT",
                    "linked_requests": ["ITREQ-3", "ITREQ-4", "ITREQ-5"]
                }))),
        )
        .await
        .expect("create change");
    assert_ne!(created.is_error, Some(true), "{:?}", created.content);
    let change = result_json(&created);
    let change_id = change["display_id"]
        .as_str()
        .expect("display id")
        .to_string();
    let read_back = ops
        .call_tool(
            CallToolRequestParams::new(
                "get_single_atomicwork_change_management_changes_number_by_id",
            )
            .with_arguments(args(json!({"id": change_id}))),
        )
        .await
        .expect("read change");
    assert_eq!(
        result_json(&read_back)["subject"],
        "Emergency: restore VPN gateway"
    );
    let note = ops
        .call_tool(
            CallToolRequestParams::new("create_a_atomicwork_request_activity_note").with_arguments(
                args(json!({
                    "display_id": "ITREQ-3",
                    "description": format!("Tracked in emergency change {change_id}"),
                    "is_private": false
                })),
            ),
        )
        .await
        .expect("add note");
    assert_ne!(note.is_error, Some(true), "{:?}", note.content);
    let request = ops
        .call_tool(
            CallToolRequestParams::new("get_single_atomicwork_requests_number_by_id")
                .with_arguments(args(json!({"id": "ITREQ-3"}))),
        )
        .await
        .expect("read request");
    assert!(
        result_json(&request).to_string().contains(&change_id),
        "the note or link shows the change"
    );
    let _ = ops.cancel().await;

    // Narrowing the methods in the manifest changes the listed tools without a restart.
    let path = manifests.join("change-ops.yaml");
    let text = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        text.replace(
            "  tags: [changes, requests]",
            "  methods: [read]\n  tags: [changes, requests]",
        ),
    )
    .expect("write");
    local.read_summary().await;
    assert_eq!(
        local.url("it-ops/change-ops"),
        ops_url,
        "the token survives an edit"
    );
    let narrowed = connect(&ops_url, "2025-11-25", None)
        .await
        .expect("connect");
    let tools = narrowed.list_tools(None).await.expect("list");
    assert!(!tools.tools.is_empty());
    assert!(
        tools
            .tools
            .iter()
            .all(|t| t.annotations.as_ref().and_then(|a| a.read_only_hint) == Some(true))
    );
    let _ = narrowed.cancel().await;

    // A broken manifest is reported by file and document; the others keep serving.
    std::fs::write(manifests.join("broken.yaml"), "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {name: broken, namespace: it-ops}\nspec:\n  toolExposure: sometimes\n").expect("write");
    local.read_summary().await;
    let report = local.output.join("\n");
    assert!(
        report.contains(
            "broken.yaml (document 1, line 5): AtomicworkMcpServer: unknown variant `sometimes`"
        ),
        "{report}"
    );
    assert_eq!(local.url("it-ops/change-ops"), ops_url);

    // Removing a manifest stops its endpoint.
    std::fs::remove_file(manifests.join("asset-audit.yaml")).expect("rm");
    let audit_url = local.url("it-ops/asset-audit");
    local.read_summary().await;
    assert!(!local.urls.contains_key("it-ops/asset-audit"));
    let gone = common::post(&audit_url, common::LIST, &[]).await;
    assert_eq!(gone.status(), 404);

    // Tokens survive a restart (kept in the state dir, mode 0600).
    let _ = local.child.kill().await;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(state.join("tokens.json"))
            .expect("state")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again = start_local(&manifests, &state).await;
    assert_eq!(
        again.url("it-ops/change-ops"),
        ops_url.replace(port_of(&ops_url), port_of(&again.url("it-ops/change-ops")))
    );
}

fn port_of(url: &str) -> &str {
    url.split("127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
}

/// A server manifest for the sandbox's `atomicwork-api` Secret, with extra spec lines.
fn sandbox_server(name: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: {name}, namespace: it-ops}}\nspec:\n  atomicwork:\n    baseUrl: https://acme.atomicwork.com\n    apiKeySecretRef: {{name: atomicwork-api}}\n{extra_spec}"
    )
}

/// Answers a tools/list at `url` with 200.
async fn answers(url: &str) -> bool {
    common::post(url, common::LIST, &[]).await.status() == 200
}

#[tokio::test]
async fn urls_survive_a_syntax_error_and_a_directory_renamed_away_and_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    copy_examples(&manifests);
    let state = dir.path().join("state");
    let mut local = start_local(&manifests, &state).await;
    let first = local.urls.clone();
    assert_eq!(first.len(), 3, "{first:?}");

    // A YAML syntax error, fixed a moment later: same URL.
    let path = manifests.join("change-ops.yaml");
    let good = std::fs::read_to_string(&path).expect("read");
    std::fs::write(
        &path,
        good.replace("  tags: [changes, requests]", "  tags: [changes, requests"),
    )
    .expect("write");
    local.read_summary().await;
    assert!(
        !local.urls.contains_key("it-ops/change-ops"),
        "not served while broken"
    );
    let report = local.output.join("\n");
    std::fs::write(&path, &good).expect("write");
    local.read_summary().await;
    assert_eq!(local.urls, first, "the URLs are the same after the fix");
    assert!(
        report.contains("change-ops.yaml (document 1, line 17): not valid YAML"),
        "{report}"
    );
    assert!(answers(&first["it-ops/change-ops"]).await);

    // The directory renamed away: the last good state keeps serving, and says so.
    let away = dir.path().join("away");
    std::fs::rename(&manifests, &away).expect("rename away");
    let notice = local.wait_for("cannot read the manifests").await;
    assert!(notice.contains("manifests"), "{notice}");
    local
        .wait_for("still serving the last good state (3 servers)")
        .await;
    for url in first.values() {
        assert!(answers(url).await, "{url} still served");
    }
    std::fs::rename(&away, &manifests).expect("rename back");
    local.read_summary().await;
    assert_eq!(
        local.urls, first,
        "the URLs are the same after the directory is back"
    );
    let tokens = std::fs::read_to_string(state.join("tokens.json")).expect("tokens");
    for id in first.keys() {
        assert!(tokens.contains(id.as_str()), "{id} kept in the state file");
    }
}

#[tokio::test]
async fn a_server_gone_for_good_loses_its_url() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    copy_examples(&manifests);
    let pair = |both: bool| {
        let mut text = sandbox_server("first", "  methods: [read]\n");
        if both {
            text += &format!("---\n{}", sandbox_server("second", "  methods: [read]\n"));
        }
        text
    };
    let file = manifests.join("pair.yaml");
    std::fs::write(&file, pair(true)).expect("write");
    let mut local = start_local(&manifests, &dir.path().join("state")).await;
    let first = local.urls.clone();
    assert_eq!(first.len(), 5, "{first:?}");

    // A document removed from a file that parses: stops answering, and once the next
    // pass confirms it, its URL is forgotten.
    std::fs::write(&file, pair(false)).expect("write");
    local.read_summary().await;
    assert_eq!(
        common::post(&first["it-ops/second"], common::LIST, &[])
            .await
            .status(),
        404
    );
    local
        .wait_for("it-ops/second: gone from the manifests")
        .await;
    local.read_summary().await;
    std::fs::write(&file, pair(true)).expect("write");
    local.read_summary().await;
    assert_ne!(
        local.url("it-ops/second"),
        first["it-ops/second"],
        "a new URL"
    );
    assert_eq!(local.url("it-ops/first"), first["it-ops/first"]);

    // A file deleted while the directory is readable: forgotten once still gone.
    std::fs::remove_file(manifests.join("asset-audit.yaml")).expect("rm");
    local.read_summary().await;
    local
        .wait_for("it-ops/asset-audit: gone from the manifests")
        .await;
    local.read_summary().await;
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local/asset-audit.yaml"),
        manifests.join("asset-audit.yaml"),
    )
    .expect("copy back");
    local.read_summary().await;
    assert_ne!(local.url("it-ops/asset-audit"), first["it-ops/asset-audit"]);
    assert_eq!(local.url("it-ops/change-ops"), first["it-ops/change-ops"]);
}

#[tokio::test]
async fn manifest_mistakes_are_reported_by_file_document_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    copy_examples(&manifests);
    // Each server's extra spec lines start on its 8th line; documents are separated by
    // `---` lines.
    let docs = [
        sandbox_server("typo", "  metods: [read]\n"),
        sandbox_server("zero-cap", "  maxResultChars: 0\n"),
        sandbox_server("zero-rate", "  rateLimit:\n    requestsPerMinute: 0\n"),
        sandbox_server("slow", "    timeoutSeconds: 100000\n"),
    ];
    std::fs::write(manifests.join("servers.yaml"), docs.join("---\n")).expect("write");
    #[cfg(unix)]
    std::os::unix::fs::symlink(".", manifests.join("loop")).expect("symlink");
    let local = start_local(&manifests, &dir.path().join("state")).await;
    let report = local.output.join("\n");

    // An unknown field is an error naming file, document, line and field; the server is
    // listed but not served.
    assert!(
        report.contains("servers.yaml (document 1, line 8): spec.metods is not a field of AtomicworkMcpServer; did you mean spec.methods?"),
        "{report}"
    );
    assert!(report.contains("it-ops/typo  NOT SERVING: "), "{report}");
    // Out-of-range values are refused with the CRD's bounds, at the file line.
    for (id, at, field) in [
        (
            "zero-cap",
            "document 2, line 17",
            "spec.maxResultChars: 0 is less than the minimum of 1000",
        ),
        (
            "zero-rate",
            "document 3, line 27",
            "spec.rateLimit.requestsPerMinute: 0 is less than the minimum of 1",
        ),
        (
            "slow",
            "document 4, line 36",
            "spec.atomicwork.timeoutSeconds: 100000 is greater than the maximum of 300",
        ),
    ] {
        let want = format!(
            "it-ops/{id}  NOT SERVING: {}servers.yaml ({at}): InvalidSpec: {field}",
            manifests.display().to_string() + "/"
        );
        assert!(report.contains(&want), "{want}\n{report}");
        assert!(!local.urls.contains_key(&format!("it-ops/{id}")));
    }
    // The examples still serve; a link loop is reported once and read no further.
    assert_eq!(local.urls.len(), 3, "{:?}", local.urls);
    #[cfg(unix)]
    {
        assert_eq!(report.matches("symbolic link loop").count(), 1, "{report}");
        assert!(!report.contains("defined twice"), "{report}");
    }
}

/// A server that expires in `seconds`, reading the example API-key Secret.
fn expiring_server(seconds: i64) -> String {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds);
    format!(
        "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: short, namespace: it-ops}}\nspec:\n  atomicwork:\n    baseUrl: https://acme.atomicwork.com\n    apiKeySecretRef: {{name: atomicwork-api}}\n  methods: [read]\n  expiresAt: \"{at}\"\n"
    )
}

/// Posts `tools/list` until the answer is not 200; returns its status and body.
async fn first_refusal(url: &str) -> (u16, Value) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let resp = common::post(url, common::LIST, &[]).await;
        let status = resp.status().as_u16();
        if status != 200 {
            return (status, resp.json().await.unwrap_or(Value::Null));
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{url} still serves past its expiry"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn assert_expired(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 403, "{what}: {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("expired at"), "{what}: {body}");
}

/// An expired server's URL answers 403 "expired" for as long as the manifest keeps that
/// expiresAt (across reloads and restarts); moving expiresAt later mints a new URL, and
/// only then does the old one answer 404.
#[tokio::test]
async fn an_expired_server_answers_403_until_its_expiry_moves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local/atomicwork-api-secret.yaml"),
        manifests.join("atomicwork-api-secret.yaml"),
    )
    .expect("copy");
    let server = manifests.join("short.yaml");
    std::fs::write(&server, expiring_server(3)).expect("write");
    let state = dir.path().join("state");
    let mut local = start_local(&manifests, &state).await;
    let url = local.url("it-ops/short");
    assert_eq!(common::post(&url, common::LIST, &[]).await.status(), 200);

    let (status, body) = first_refusal(&url).await;
    assert_expired(status, &body, "at expiry");
    // The reload at expiry (and every poll after it) keeps the answer.
    local.read_summary().await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let resp = common::post(&url, common::LIST, &[]).await;
    let status = resp.status().as_u16();
    assert_expired(status, &resp.json().await.expect("JSON"), "after reloads");

    // And a restart: the token is kept in the state directory.
    let _ = local.child.kill().await;
    let mut again = start_local(&manifests, &state).await;
    let port = again.output.iter().find_map(|l| {
        l.strip_prefix("listening on http://127.0.0.1:")
            .map(str::to_string)
    });
    let same_url = url.replace(port_of(&url), &port.expect("listening line"));
    let resp = common::post(&same_url, common::LIST, &[]).await;
    let status = resp.status().as_u16();
    assert_expired(status, &resp.json().await.expect("JSON"), "after a restart");

    // Moving expiresAt into the future mints a new URL; the old one is then unknown.
    std::fs::write(&server, expiring_server(3600)).expect("write");
    again.read_summary().await;
    let renewed = again.url("it-ops/short");
    assert_ne!(renewed, same_url);
    assert_eq!(
        common::post(&renewed, common::LIST, &[]).await.status(),
        200
    );
    assert_eq!(
        common::post(&same_url, common::LIST, &[]).await.status(),
        404
    );
}
