//! The binary's own output on stderr, read from the real process: log lines follow the
//! terminal (no colour codes into a pipe or file) and an error is printed once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Stdio;

use common::LocalProcess;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn logs_into_a_pipe_carry_no_colour_codes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let manifests = dir.path().join("manifests");
    std::fs::create_dir(&manifests).expect("mkdir");
    std::fs::write(
        manifests.join("server.yaml"),
        common::server_yaml("piped", "  methods: [read]\n")
            + "---\napiVersion: v1\nkind: Secret\nmetadata: {name: atomicwork-api, namespace: it-ops}\nstringData: {apiKey: k}\n",
    )
    .expect("write");
    // No NO_COLOR: the decision must come from stderr not being a terminal.
    let mut local = LocalProcess::spawn(
        &manifests,
        &dir.path().join("state"),
        Stdio::piped(),
        &[("RUST_LOG", "info")],
    );
    local.read_summary().await;
    // An access-log line for a request, on top of the sandbox's startup line.
    let url = local.url("it-ops/piped");
    let base = url.split("/mcp/").next().unwrap_or_default();
    let gone = common::post(&format!("{base}/mcp/unknown-token"), common::LIST, &[]).await;
    assert_eq!(gone.status(), 404);
    let _ = local.child.kill().await;
    let mut stderr = String::new();
    local
        .child
        .stderr
        .take()
        .expect("stderr piped")
        .read_to_string(&mut stderr)
        .await
        .expect("read stderr");
    assert!(
        stderr.contains("SIMULATED"),
        "the sandbox logs at startup: {stderr}"
    );
    assert!(stderr.contains("INFO"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "colour codes written into a pipe: {stderr:?}"
    );
}

#[test]
fn run_without_a_cluster_prints_the_error_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let missing = dir.path().join("no-such-kubeconfig");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_atomicwork-mcp"))
        .args([
            "run",
            "--public-url",
            "http://127.0.0.1:8080",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .env("KUBECONFIG", &missing)
        .env("HOME", dir.path())
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBERNETES_SERVICE_PORT")
        .stdin(Stdio::null())
        .output()
        .expect("run the binary");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: connecting to the cluster"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    let path = missing.display().to_string();
    assert_eq!(
        stderr.matches(path.as_str()).count(),
        1,
        "the missing kubeconfig is named once: {stderr}"
    );
    assert_eq!(
        stderr.matches("os error 2").count(),
        1,
        "the cause is printed once: {stderr}"
    );
    assert!(!stderr.contains('\u{1b}'), "{stderr:?}");
}
