//! Shutdown of the real binary: the first SIGTERM drains in-flight requests, a second one
//! ends the process at once with a non-zero code and says so in the log.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![cfg(unix)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc::UnboundedReceiver;

/// An upstream that accepts connections and reads them but never answers; the count of
/// accepted connections goes to the returned channel.
async fn stalled_upstream() -> (String, UnboundedReceiver<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
            let _ = tx.send(());
        }
    });
    (format!("http://{addr}"), rx)
}

/// Lines of a child's pipe, as they come.
fn lines_of(pipe: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> UnboundedReceiver<String> {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut reader = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Reads lines until one satisfies `want`; returns it.
async fn line_where(
    lines: &mut UnboundedReceiver<String>,
    seen: &mut Vec<String>,
    want: impl Fn(&str) -> bool,
) -> String {
    loop {
        let line = tokio::time::timeout(Duration::from_secs(20), lines.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no such line; seen: {seen:#?}"));
        seen.push(line.clone());
        if want(&line) {
            return line;
        }
    }
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid}");
}

#[tokio::test]
async fn a_second_sigterm_ends_a_draining_process_at_once() {
    let (upstream, mut accepted) = stalled_upstream().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    // The call may take up to 300 s upstream; the data plane's deadline is as long.
    std::fs::write(
        manifests.join("slow.yaml"),
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: atomicwork-api, namespace: it-ops}}\nstringData: {{apiKey: test-key}}\n---\napiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: slow, namespace: it-ops}}\nspec:\n  atomicwork:\n    baseUrl: {upstream}\n    apiKeySecretRef: {{name: atomicwork-api}}\n    workspaceId: \"1\"\n    timeoutSeconds: 300\n"
        ),
    )
    .expect("write");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_atomicwork-mcp"))
        .args(["local", "--listen", "127.0.0.1:0", "--poll-seconds", "0.2"])
        .arg("--manifests")
        .arg(&manifests)
        .arg("--state-dir")
        .arg(dir.path().join("state"))
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start atomicwork-mcp local");
    let pid = child.id().expect("pid");
    let mut stdout = lines_of(child.stdout.take().expect("stdout"));
    let mut stderr = lines_of(child.stderr.take().expect("stderr"));
    let mut out_seen = Vec::new();
    let url = line_where(&mut stdout, &mut out_seen, |l| {
        l.trim().starts_with("url: ")
    })
    .await;
    let url = url.trim().trim_start_matches("url: ").to_string();

    // A tool call that is stuck upstream.
    let call = tokio::spawn(async move {
        reqwest::Client::new()
            .post(&url)
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"list_all_atomicwork_workspaces","arguments":{}}}"#)
            .send()
            .await
    });
    tokio::time::timeout(Duration::from_secs(20), accepted.recv())
        .await
        .expect("the call reaches the upstream")
        .expect("upstream running");

    // The first SIGTERM starts draining: the process waits for the call.
    signal(pid, "TERM");
    let mut err_seen = Vec::new();
    line_where(&mut stderr, &mut err_seen, |l| l.contains("draining")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        child.try_wait().expect("wait").is_none(),
        "the first SIGTERM drains instead of exiting: {err_seen:#?}"
    );

    // The second one ends it at once (the call would otherwise hold it for 300 s).
    signal(pid, "TERM");
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .unwrap_or_else(|_| panic!("still running after a second SIGTERM: {err_seen:#?}"))
        .expect("exit status");
    assert!(!status.success(), "{status:?}");
    assert_eq!(status.code(), Some(143), "{status:?}");
    line_where(&mut stderr, &mut err_seen, |l| {
        l.contains("second signal") && l.contains("SIGTERM")
    })
    .await;
    assert!(
        call.await.expect("call task").is_err(),
        "the stuck call is cut, not answered"
    );
}
