//! Every command in the README's `sh` blocks is exercised: `atomicwork-mcp` command lines
//! must parse (and the quick ones run), and the curl requests are sent to a live local
//! server.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::Path;
use std::process::Stdio;

use clap::Parser;
use common::LocalProcess;
use serde_json::Value;

fn readme_commands() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let mut out = Vec::new();
    let mut in_sh = false;
    for line in text.lines() {
        if line.starts_with("```") {
            in_sh = !in_sh && line.trim() == "```sh";
            continue;
        }
        let t = line.trim();
        if in_sh && !t.is_empty() && !t.starts_with('#') {
            out.push(t.to_string());
        }
    }
    out
}

/// Splits a command line the way a shell would for the simple quoting the README uses.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut started = false;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                started = true;
            }
            (None, c) if c.is_whitespace() => {
                if started || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    started = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if started || !cur.is_empty() {
        out.push(cur);
    }
    out
}

#[test]
fn readme_has_the_two_setup_commands_first() {
    let cmds = readme_commands();
    assert_eq!(
        cmds[0],
        "cargo run -- local --manifests examples/local --sandbox"
    );
    assert_eq!(cmds[1], "cargo test");
}

#[test]
fn every_atomicwork_mcp_command_parses_and_quick_ones_run() {
    let mut checked = 0;
    for line in readme_commands() {
        let Some(rest) = line.strip_prefix("cargo run -- ") else {
            continue;
        };
        let mut argv = vec!["atomicwork-mcp".to_string()];
        argv.extend(words(rest));
        if let Err(e) = atomicwork_mcp::cli::Cli::try_parse_from(&argv) {
            panic!("README command does not parse: {line}\n{e}");
        }
        if matches!(argv[1].as_str(), "tools" | "crd") {
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_atomicwork-mcp"))
                .args(&argv[1..])
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .output()
                .expect("run");
            assert!(
                out.status.success(),
                "{line}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} commands found");
}

/// The `.gitignore` lines that name a directory, without leading or trailing slashes.
fn ignored_dirs() -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(".gitignore"))
        .unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .map(|l| l.trim_matches('/').to_string())
        .collect()
}

#[test]
fn state_directories_stay_out_of_the_checkout() {
    let ignored = ignored_dirs();
    // Without HOME or XDG_STATE_HOME, local mode keeps its tokens in ./.atomicwork-mcp.
    assert!(
        ignored.iter().any(|d| d == ".atomicwork-mcp"),
        ".gitignore must cover the fallback state directory: {ignored:?}"
    );
    let mut seen = 0;
    for line in readme_commands() {
        let w = words(&line);
        let Some(dir) = w
            .iter()
            .position(|x| x == "--state-dir")
            .and_then(|i| w.get(i + 1))
        else {
            continue;
        };
        seen += 1;
        let outside = dir.starts_with('/') || dir.starts_with('~') || dir.starts_with('$');
        let relative = dir.trim_start_matches("./").trim_end_matches('/');
        assert!(
            outside || ignored.iter().any(|d| d == relative),
            "{line}: tokens would be written into the checkout at {dir}"
        );
    }
    assert!(seen > 0, "the README shows --state-dir");
}

#[tokio::test]
async fn curl_examples_work_against_local_mode() {
    let state = tempfile::tempdir().expect("tempdir");
    let manifests = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/local");
    let mut local = LocalProcess::spawn(&manifests, state.path(), Stdio::null(), &[]);
    local.read_summary().await;
    let url = local.url("it-ops/service-desk-readonly");
    let client = reqwest::Client::new();
    let mut sent = 0;
    for line in readme_commands().iter().filter(|l| l.starts_with("curl ")) {
        let w = words(line);
        assert!(w.contains(&"$URL".to_string()), "{line}");
        let body = w
            .iter()
            .position(|x| x == "-d")
            .and_then(|i| w.get(i + 1))
            .unwrap_or_else(|| panic!("no -d body in {line}"));
        let resp = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), 200, "{line}");
        let json: Value = resp.json().await.expect("json");
        assert!(json.get("result").is_some(), "{line}: {json}");
        assert_ne!(json["result"]["isError"], true, "{line}: {json}");
        sent += 1;
    }
    assert_eq!(sent, 3);
}

/// The README's table of limits and timeouts lists every such flag of the serving
/// commands with its environment variable and its default, as the binary has them.
#[test]
fn the_limits_table_matches_the_flags() {
    use clap::CommandFactory;
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README");
    let table: Vec<&str> = text
        .split("### Limits and timeouts")
        .nth(1)
        .expect("a Limits and timeouts section")
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    let mut cli = atomicwork_mcp::cli::Cli::command();
    let mut flags = Vec::new();
    for name in ["dataplane", "run", "local"] {
        let sub = cli.find_subcommand_mut(name).expect("subcommand");
        let limits: Vec<(String, String, String)> = sub
            .get_arguments()
            .filter(|a| a.get_help_heading() == Some("Limits and timeouts"))
            .map(|a| {
                let flag = format!("`--{}`", a.get_long().expect("long flag"));
                let env = a.get_env().expect("env").to_string_lossy().into_owned();
                let default = a.get_default_values()[0].to_string_lossy().into_owned();
                (flag, format!("`{env}`"), default)
            })
            .collect();
        if name == "dataplane" {
            flags = limits.clone();
        }
        assert_eq!(limits, flags, "{name} has the same limits as dataplane");
    }
    assert_eq!(flags.len(), 6, "{flags:?}");
    assert_eq!(table.len(), flags.len() + 2, "one row per flag: {table:#?}");
    for (flag, env, default) in &flags {
        let row = table
            .iter()
            .find(|r| r.contains(flag.as_str()))
            .unwrap_or_else(|| panic!("no row for {flag}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        assert_eq!(cells[2], flag);
        assert_eq!(cells[3], env, "{flag}");
        assert!(cells[4].starts_with(default.as_str()), "{flag}: {row}");
    }
}
