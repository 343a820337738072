//! `atomicwork-mcp`: one binary, subcommands select the role.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = atomicwork_mcp::cli::Cli::parse();
    match atomicwork_mcp::cli::run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
