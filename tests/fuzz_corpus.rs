//! Replays the kept fuzz corpus (`fuzz/corpus/<target>/`) through the same functions the
//! fuzz targets call, so every seed and every past find stays covered by `cargo test`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use atomicwork_mcp::fuzzing;

/// Feeds every file of one target's corpus to `run`; a panic names the file.
fn replay(target: &str, run: fn(&[u8])) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{target}: only {} seeds", files.len());
    for file in files {
        let data = std::fs::read(&file).expect("corpus file");
        let outcome = std::panic::catch_unwind(|| run(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", file.display());
    }
}

#[test]
fn mcp_message_corpus() {
    replay("mcp_message", fuzzing::mcp_message);
}

#[test]
fn tool_arguments_corpus() {
    replay("tool_arguments", fuzzing::tool_arguments);
}

#[test]
fn manifest_corpus() {
    replay("manifest", fuzzing::manifest);
}

#[test]
fn rate_limit_headers_corpus() {
    replay("rate_limit_headers", fuzzing::rate_limit_headers);
}
