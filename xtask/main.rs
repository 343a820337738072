//! Development tasks, run as `cargo xtask TASK` (an alias in `.cargo/config.toml`).
//!
//! `catalog`: regenerates the complete tool set's committed data.
//!
//! - `cargo xtask catalog --spec FILE` reduces Atomicwork's OpenAPI document to
//!   `src/core/catalog/complete/operations.json`, then builds
//!   `src/core/catalog/complete/tools.json` from it and the curation.
//! - `cargo xtask catalog` (no document) rebuilds `tools.json` from the committed
//!   `operations.json`, e.g. after editing `curation.yaml`.
//! - `--check` writes nothing and fails when a committed file differs from what the
//!   generator makes.
//!
//! The document's path may also come from `AWMCP_OPENAPI_SPEC`.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use atomicwork_mcp::core::catalog::generate;

/// What to do with a generated file.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Write,
    Check,
}

fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Vec<String>) -> Result<(), String> {
    let mut args = args.into_iter();
    match args.next().as_deref() {
        Some("catalog") => {}
        Some(other) => return Err(format!("unknown task {other:?}; tasks: catalog")),
        None => return Err("usage: cargo xtask catalog [--spec FILE] [--check]".into()),
    }
    let mut mode = Mode::Write;
    let mut spec: Option<PathBuf> = std::env::var_os("AWMCP_OPENAPI_SPEC")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--check" => mode = Mode::Check,
            "--spec" => {
                let path = args.next().ok_or("--spec needs a file")?;
                spec = Some(PathBuf::from(path));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let operations_path = root.join(generate::OPERATIONS_PATH);
    let operations = match &spec {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            let operations = generate::operations_from_spec(&text).map_err(|e| e.to_string())?;
            settle(&operations_path, &operations, mode)?;
            operations
        }
        None => std::fs::read_to_string(&operations_path)
            .map_err(|e| format!("cannot read {}: {e}", operations_path.display()))?,
    };
    let tools = generate::complete_from(&operations).map_err(|e| e.to_string())?;
    settle(&root.join(generate::TOOLS_PATH), &tools, mode)
}

/// Writes `text` to `path`, or in check mode compares it with what is there.
fn settle(path: &Path, text: &str, mode: Mode) -> Result<(), String> {
    let current = std::fs::read_to_string(path).unwrap_or_default();
    match mode {
        Mode::Check if current == text => {
            println!("{} is up to date", path.display());
            Ok(())
        }
        Mode::Check => Err(format!(
            "{} differs from what the generator makes; run `cargo xtask catalog` and commit",
            path.display()
        )),
        Mode::Write if current == text => {
            println!("{} unchanged", path.display());
            Ok(())
        }
        Mode::Write => {
            std::fs::write(path, text)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
            println!("wrote {}", path.display());
            Ok(())
        }
    }
}
