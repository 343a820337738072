//! The official MCP Python SDK's OAuth client against local mode: the real binary with
//! `--sandbox` serving an `auth.oauth` server whose issuer is the test authorization server
//! (`oidc-provider`, tests/common/oidc.rs), and `tests/python/oauth_client.py` connecting to
//! the connector URL it prints. The SDK does the discovery (401, protected resource
//! metadata, authorization server metadata), registers itself, signs a person in through
//! the authorization code flow with PKCE, lists the tools and calls one.
//!
//! Needs python3 3.11 or newer with pip access: `tests/python/venv` installs the pinned SDK
//! into a virtualenv under the target directory on first use (`.ci/run` does it up front).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use atomicwork_mcp::core::catalog::{Catalog, ToolFilter, filter};
use common::LocalProcess;
use common::oidc::Oidc;
use serde_json::{Value, json};
use tokio::io::AsyncReadExt;

const READ: &str = "atomicwork.read";
const WRITE: &str = "atomicwork.write";

/// The person the SDK's redirect handler signs in as; the token's `email` follows from it.
const LOGIN: &str = "grace";
const EMAIL: &str = "grace@example.test";

/// A read tool, and the sandbox record it reads.
const READ_TOOL: &str = "get_single_atomicwork_requests_number_by_id";
const REQUEST_ID: &str = "ITREQ-3";

/// A write tool, and the subject of the request it creates.
const WRITE_TOOL: &str = "create_a_atomicwork_request";
const SUBJECT: &str = "Projector in room 4 flickers";

/// How long one run of the script may take.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(180);

/// The target directory: the binary under test lives in its profile directory.
fn target_dir() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_atomicwork-mcp"))
        .parent()
        .and_then(Path::parent)
        .expect("the binary lives in <target>/<profile>/")
        .to_path_buf()
}

/// The python of the SDK's virtualenv, made by `tests/python/venv` when missing or stale.
/// Test processes running at once take turns through a lock file.
fn sdk_python() -> PathBuf {
    let target = target_dir();
    let venv = target.join("python-sdk-venv");
    let lock_path = target.join("python-sdk-venv.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
    lock.lock()
        .unwrap_or_else(|e| panic!("lock {}: {e}", lock_path.display()));
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/venv");
    let out = std::process::Command::new("bash")
        .arg(&script)
        .arg(&venv)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run bash {}: {e}", script.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the Python SDK test needs python3 3.11 or newer with pip, to install the pinned MCP \
         Python SDK into {}: `{}` failed ({}):\n{stderr}",
        venv.display(),
        script.display(),
        out.status,
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let python = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    assert!(
        python.is_file(),
        "{} printed no python: {stdout}\n{stderr}",
        script.display()
    );
    python
}

/// A local-mode process with the OAuth server `it-ops/desk` and its stderr (JSON logs).
struct Local {
    process: LocalProcess,
    stderr: Arc<Mutex<String>>,
    drain: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Local {
    /// Starts `atomicwork-mcp local --sandbox` with one server whose issuer is `oidc`'s,
    /// read and write scopes as the defaults, and `email` as the user claim.
    async fn start(oidc: &Oidc) -> Local {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifests = dir.path().join("manifests");
        std::fs::create_dir(&manifests).expect("mkdir");
        let server = common::server_yaml(
            "desk",
            &format!(
                "  tags: [workspaces, requests]\n  auth:\n    oauth:\n      issuer: {}\n      scopes:\n        read: [{READ}]\n        write: [{WRITE}]\n        custom: [{WRITE}]\n      userClaim: email\n",
                oidc.issuer()
            ),
        );
        let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: atomicwork-api, namespace: it-ops}\nstringData: {apiKey: sandbox-key}\n";
        std::fs::write(
            manifests.join("desk.yaml"),
            format!("{server}---\n{secret}"),
        )
        .expect("write");
        let mut process = LocalProcess::spawn(
            &manifests,
            &dir.path().join("state"),
            Stdio::piped(),
            &[("LOG_FORMAT", "json"), ("RUST_LOG", "info")],
        );
        let mut pipe = process.child.stderr.take().expect("stderr piped");
        let stderr = Arc::new(Mutex::new(String::new()));
        let into = stderr.clone();
        let drain = tokio::spawn(async move {
            let mut buf = [0u8; 8192];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                into.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        process.read_summary().await;
        Local {
            process,
            stderr,
            drain,
            _dir: dir,
        }
    }

    /// The connector URL of `it-ops/desk`.
    fn url(&self) -> String {
        self.process.url("it-ops/desk")
    }

    /// Ends the process and returns the audit lines of its log, in order.
    async fn stop(mut self) -> Vec<Value> {
        let _ = self.process.child.kill().await;
        tokio::time::timeout(Duration::from_secs(20), self.drain)
            .await
            .expect("stderr closes when the process ends")
            .expect("drain task");
        let text = self.stderr.lock().unwrap().clone();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["target"] == "atomicwork_mcp::audit")
            .map(|l| l["fields"].clone())
            .collect()
    }
}

/// Runs `tests/python/oauth_client.py` against `url`, signing in as [`LOGIN`] and calling
/// `tool` with `arguments`; returns its exit status and its JSON summary.
async fn run_client(
    python: &Path,
    url: &str,
    tool: &str,
    arguments: Value,
) -> (std::process::ExitStatus, Value, String) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/oauth_client.py");
    let child = tokio::process::Command::new(python)
        .arg(&script)
        .args(["--url", url, "--login", LOGIN, "--tool", tool])
        .arg("--arguments")
        .arg(arguments.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python.display(), script.display()));
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} did not end within {SCRIPT_TIMEOUT:?}", script.display()))
        .expect("script output");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let summary: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "the script's stdout is not one JSON object ({e}), status {}:\n{stdout}\nstderr:\n{stderr}",
            out.status
        )
    });
    (out.status, summary, stderr)
}

/// The tools of `it-ops/desk` (tags workspaces and requests) a read-scoped token may use.
fn read_tools() -> BTreeSet<String> {
    let catalog = Catalog::builtin().expect("catalog");
    let tools = filter(
        &catalog,
        &ToolFilter {
            tags: Some(vec!["workspaces".into(), "requests".into()]),
            ..ToolFilter::default()
        },
    )
    .expect("filter");
    let reads: BTreeSet<String> = tools
        .iter()
        .filter(|t| t.is_read())
        .map(|t| t.name().to_string())
        .collect();
    assert!(
        tools.len() > reads.len() && !reads.is_empty(),
        "the server has read and write tools"
    );
    reads
}

/// The `(method, url, status, bearer)` of each HTTP exchange in a summary.
fn exchanges(summary: &Value) -> Vec<(String, String, u64, bool)> {
    summary["http"]
        .as_array()
        .unwrap_or_else(|| panic!("no http in {summary:#}"))
        .iter()
        .map(|e| {
            (
                e["method"].as_str().expect("method").to_string(),
                e["url"].as_str().expect("url").to_string(),
                e["status"].as_u64().expect("status"),
                e["bearer"].as_bool().expect("bearer"),
            )
        })
        .collect()
}

/// The scopes of the `scope` claim of a token in a summary.
fn scopes_of(token: &Value) -> BTreeSet<String> {
    token["claims"]["scope"]
        .as_str()
        .unwrap_or_else(|| panic!("no scope claim: {token:#}"))
        .split(' ')
        .map(str::to_string)
        .collect()
}

/// The `(server, tool, outcome, user)` of each audit line.
fn audited(audit: &[Value]) -> Vec<(String, String, String, String)> {
    audit
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (s("server"), s("tool"), s("outcome"), s("user"))
        })
        .collect()
}

/// An audit line of `it-ops/desk` for [`EMAIL`].
fn desk_line(tool: &str, outcome: &str) -> (String, String, String, String) {
    (
        "it-ops/desk".to_string(),
        tool.to_string(),
        outcome.to_string(),
        EMAIL.to_string(),
    )
}

/// The protected resource metadata URL of a connector URL: the well-known path before
/// its path.
fn metadata_url(url: &str) -> String {
    let parsed = reqwest::Url::parse(url).expect("connector URL");
    format!(
        "{}/.well-known/oauth-protected-resource{}",
        parsed.origin().ascii_serialization(),
        parsed.path()
    )
}

#[tokio::test]
async fn python_sdk_discovers_signs_in_and_calls_a_read_tool() {
    let python = tokio::task::spawn_blocking(sdk_python)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let oidc = Oidc::start().await;
    let local = Local::start(&oidc).await;
    let url = local.url();
    let issuer = oidc.issuer();

    let (status, summary, stderr) =
        run_client(&python, &url, READ_TOOL, json!({ "id": REQUEST_ID })).await;
    assert!(
        status.success() && summary["ok"] == true,
        "the SDK client failed ({status}): {summary:#}\nstderr:\n{stderr}"
    );

    // Discovery as the SDK did it: the call without a token gets 401, whose challenge leads
    // to the resource's metadata, which names the issuer, whose metadata names the
    // registration and token endpoints; then the same call with the token.
    let http = exchanges(&summary);
    let steps: Vec<(String, String, u64, bool)> = http.iter().take(6).cloned().collect();
    assert_eq!(
        steps,
        [
            ("POST".into(), url.clone(), 401, false),
            ("GET".into(), metadata_url(&url), 200, false),
            (
                "GET".into(),
                format!("{issuer}/.well-known/oauth-authorization-server"),
                200,
                false
            ),
            ("POST".into(), oidc.url("/reg"), 201, false),
            ("POST".into(), oidc.url("/token"), 200, false),
            ("POST".into(), url.clone(), 200, true),
        ],
        "{summary:#}"
    );
    assert_eq!(
        summary["http"][0]["www_authenticate"],
        format!(
            "Bearer resource_metadata=\"{}\", scope=\"{READ}\"",
            metadata_url(&url)
        )
        .as_str(),
        "{summary:#}"
    );
    // Everything after went to the server with the token, and was let in.
    for (method, to, status, bearer) in &http[6..] {
        assert!(
            to == &url && *bearer && (200..300).contains(status),
            "{method} {to}: {status} (bearer: {bearer}) after the sign-in: {summary:#}"
        );
    }
    assert!(http.len() >= 8, "tools/list and tools/call: {summary:#}");

    let prm = &summary["resource_metadata"];
    assert_eq!(prm["resource"], url.as_str(), "{prm:#}");
    assert_eq!(prm["authorization_servers"], json!([issuer]), "{prm:#}");
    assert_eq!(prm["scopes_supported"], json!([READ, WRITE]), "{prm:#}");
    assert_eq!(
        prm["bearer_methods_supported"],
        json!(["header"]),
        "{prm:#}"
    );
    let asm = &summary["authorization_server"];
    assert_eq!(asm["issuer"], issuer, "{asm:#}");
    assert_eq!(asm["registration_endpoint"], oidc.url("/reg"), "{asm:#}");
    let registration = &summary["registration"];
    assert!(
        registration["client_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty()),
        "{registration:#}"
    );
    assert_eq!(registration["token_endpoint_auth_method"], "none");
    assert_eq!(registration["issuer"], issuer, "{registration:#}");
    // The redirect named the issuer (RFC 9207), which the SDK checked.
    assert_eq!(
        summary["redirect"],
        json!({"state": true, "iss": issuer}),
        "{summary:#}"
    );

    // The token: for this server's URL, from the issuer, for the person who signed in, with
    // the scope the 401 asked for and not the write scope.
    let token = &summary["token"];
    let claims = &token["claims"];
    assert_eq!(claims["iss"], issuer, "{token:#}");
    assert_eq!(claims["aud"], url.as_str(), "{token:#}");
    assert_eq!(claims["sub"], LOGIN, "{token:#}");
    assert_eq!(claims["email"], EMAIL, "{token:#}");
    let scopes = scopes_of(token);
    assert!(
        scopes.contains(READ) && !scopes.contains(WRITE),
        "{token:#}"
    );
    assert_eq!(
        summary["token_after_call"], *token,
        "no new token for a read"
    );

    // tools/list: exactly the server's read tools, each hinted read-only.
    let tools = summary["tools"].as_array().expect("tools");
    let names: BTreeSet<String> = tools
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect();
    assert_eq!(names, read_tools(), "{summary:#}");
    assert!(tools.iter().all(|t| t["read_only"] == true), "{summary:#}");

    // The call reached the sandbox and read its record.
    let call = &summary["call"];
    assert_eq!(call["is_error"], false, "{call:#}");
    let text = call["text"].as_str().expect("text");
    assert!(text.contains("SIMULATED"), "{text}");
    assert!(text.contains(REQUEST_ID), "{text}");

    // The audit line of the call names the person, by the configured claim.
    let audit = local.stop().await;
    assert_eq!(audited(&audit), [desk_line(READ_TOOL, "ok")], "{audit:#?}");
}

#[tokio::test]
async fn a_write_with_the_read_token_is_refused_for_its_scope_and_audited() {
    let python = tokio::task::spawn_blocking(sdk_python)
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    let oidc = Oidc::start().await;
    let local = Local::start(&oidc).await;
    let url = local.url();

    let (status, summary, stderr) =
        run_client(&python, &url, WRITE_TOOL, json!({ "subject": SUBJECT })).await;
    assert_eq!(
        status.code(),
        Some(1),
        "the script fails when its call does: {summary:#}\nstderr:\n{stderr}"
    );
    assert_eq!(summary["ok"], false, "{summary:#}");

    // The sign-in asked for what the 401 named: the read scope; tools/list showed no write.
    let token = &summary["token"];
    assert!(
        scopes_of(token).contains(READ) && !scopes_of(token).contains(WRITE),
        "{token:#}"
    );
    assert!(
        summary["tools"]
            .as_array()
            .expect("tools")
            .iter()
            .all(|t| t["name"] != WRITE_TOOL && t["read_only"] == true),
        "{summary:#}"
    );
    // The write with that token: 403 with the scopes to step up to.
    let refused: Vec<&Value> = summary["http"]
        .as_array()
        .expect("http")
        .iter()
        .filter(|e| e["status"] == 403)
        .collect();
    assert_eq!(refused.len(), 1, "{summary:#}");
    assert_eq!(refused[0]["url"], url.as_str());
    assert_eq!(refused[0]["bearer"], true);
    assert_eq!(
        refused[0]["www_authenticate"],
        format!(
            "Bearer error=\"insufficient_scope\", scope=\"{READ} {WRITE}\", resource_metadata=\"{}\"",
            metadata_url(&url)
        )
        .as_str(),
    );
    // The SDK steps up: it sends the person to the authorization server again, asking for
    // the write scope as well. The test authorization server holds a dynamically
    // registered client to the scopes it registered with, and the SDK registered with the
    // scopes of the first challenge, so the step-up ends there: the call never succeeds.
    let error = summary["error"].as_str().expect("error");
    assert!(
        error.contains("invalid_scope") && error.contains(WRITE),
        "{summary:#}"
    );
    assert_eq!(summary.get("call"), None, "{summary:#}");

    // Nothing reached the sandbox; the refusal is audited with the person.
    let audit = local.stop().await;
    assert_eq!(
        audited(&audit),
        [desk_line(WRITE_TOOL, "insufficient_scope")],
        "{audit:#?}"
    );
}

/// Runs `tests/python/approval_client.py`: asks on `ask`, answers `decision` as the person,
/// retries on `retry`; returns its JSON summary.
async fn run_approval(
    python: &Path,
    ask: &str,
    retry: &str,
    change: &str,
    decision: &str,
) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/approval_client.py");
    let child = tokio::process::Command::new(python)
        .arg(&script)
        .args(["--ask", ask, "--retry", retry, "--tool", TRASH_TOOL])
        .arg("--arguments")
        .arg(json!({"display_id": change}).to_string())
        .args(["--decision", decision])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python.display(), script.display()));
    let out = tokio::time::timeout(SCRIPT_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} did not end within {SCRIPT_TIMEOUT:?}", script.display()))
        .expect("script output");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let summary: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "not one JSON object ({e}):\n{stdout}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "{summary}");
    summary
}

/// The destructive tool the approval test calls.
const TRASH_TOOL: &str = "create_a_atomicwork_change_trash";

/// The official MCP Python SDK in 2026-07-28 mode, with an elicitation callback, against
/// two local-mode processes started from one state directory (so they share the URL token
/// and the approval key): the approval is asked by one process and the retried call lands
/// on the other. Approved, the tenant receives exactly one request; declined, none.
#[tokio::test]
async fn python_sdk_approves_on_one_process_and_the_call_runs_once_on_the_other() {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    let python = sdk_python();
    let tenant = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"trashed": true})))
        .mount(&tenant)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    let server = format!(
        "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: changes, namespace: it-ops}}\nspec:\n  atomicwork:\n    baseUrl: {}\n    apiKeySecretRef: {{name: atomicwork-api}}\n    workspaceId: \"1\"\n  tags: [changes]\n  confirm: {{tools: destructive}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {{name: atomicwork-api, namespace: it-ops}}\nstringData: {{apiKey: approval-test-key-0123}}\n",
        tenant.uri()
    );
    std::fs::write(manifests.join("changes.yaml"), server).expect("write");
    let state_a = dir.path().join("state-a");
    let mut a = LocalProcess::spawn_args(&manifests, &state_a, Stdio::null(), &[], &[]);
    a.read_summary().await;
    let url_a = a.url("it-ops/changes");
    // The second process starts from a copy of the first one's state directory.
    let state_b = dir.path().join("state-b");
    std::fs::create_dir(&state_b).expect("mkdir");
    for file in ["tokens.json", "confirm.key"] {
        std::fs::copy(state_a.join(file), state_b.join(file)).expect("copy state");
    }
    let mut b = LocalProcess::spawn_args(&manifests, &state_b, Stdio::null(), &[], &[]);
    b.read_summary().await;
    let url_b = b.url("it-ops/changes");
    assert_ne!(url_a, url_b, "two processes on two ports");
    let puts = |reqs: &[wiremock::Request], change: &str| {
        reqs.iter()
            .filter(|r| {
                r.method.as_str() == "PUT"
                    && r.url.path() == format!("/api/v1/change-management/changes/{change}/trash")
            })
            .count()
    };

    let approved = run_approval(&python, &url_a, &url_b, "CHG-2", "approve").await;
    let message = approved["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("PUT /api/v1/change-management/changes/CHG-2/trash"),
        "{approved}"
    );
    assert!(!message.contains("approval-test-key-0123"), "{approved}");
    assert_eq!(approved["is_error"], false, "{approved}");
    let reqs = tenant.received_requests().await.unwrap_or_default();
    assert_eq!(puts(&reqs, "CHG-2"), 1, "exactly one request upstream");

    let declined = run_approval(&python, &url_a, &url_b, "CHG-1", "decline").await;
    assert_eq!(declined["is_error"], true, "{declined}");
    assert!(
        declined["texts"][0]
            .as_str()
            .is_some_and(|t| t.contains("declined") && t.contains("Nothing was sent")),
        "{declined}"
    );
    let reqs = tenant.received_requests().await.unwrap_or_default();
    assert_eq!(puts(&reqs, "CHG-1"), 0, "nothing upstream when declined");
    assert_eq!(reqs.len(), 1, "only the approved call reached the tenant");
}
