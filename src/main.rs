//! `atomicwork-mcp`: one binary, subcommands select the role.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of the system allocator: the data plane allocates per request from
/// every worker thread, where glibc's malloc costs more time and holds on to more memory.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = atomicwork_mcp::cli::Cli::parse();
    match atomicwork_mcp::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", atomicwork_mcp::cli::error_chain(&e));
            ExitCode::FAILURE
        }
    }
}
