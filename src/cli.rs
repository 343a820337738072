//! Command-line interface. Parsing and wiring only; each subcommand's work lives in its
//! module.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use kube::CustomResourceExt;

use crate::catalog::{Catalog, Tool, ToolFilter, filter};
use crate::crd::AtomicworkMcpServer;

/// Serve filtered Atomicwork ITSM tools to AI clients over MCP, from Kubernetes resources
/// or local manifest files.
#[derive(Debug, Parser)]
#[command(name = "atomicwork-mcp", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print the AtomicworkMcpServer CustomResourceDefinition as YAML.
    Crd,
    /// Preview the tools a server with these filters would expose.
    Tools(ToolsArgs),
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Output format of `tools`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct CatalogArgs {
    /// YAML file that overrides built-in tools (method, path, description, parameters) or
    /// adds tools.
    #[arg(long, env = "ATOMICWORK_MCP_CATALOG")]
    pub catalog: Option<PathBuf>,
}

impl CatalogArgs {
    pub fn load(&self) -> anyhow::Result<Catalog> {
        Ok(match &self.catalog {
            Some(path) => Catalog::with_overrides_file(path)?,
            None => Catalog::builtin()?,
        })
    }
}

#[derive(Debug, Args)]
pub struct ToolsArgs {
    /// read, write, custom or exact method names (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub methods: Vec<String>,
    /// Tags; a tool matches when any of its tags is listed.
    #[arg(long, value_delimiter = ',')]
    pub tags: Vec<String>,
    /// Only these tool names.
    #[arg(long, value_delimiter = ',')]
    pub allow: Vec<String>,
    /// Never these tool names.
    #[arg(long, value_delimiter = ',')]
    pub deny: Vec<String>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    #[command(flatten)]
    pub catalog: CatalogArgs,
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Crd => {
            print!("{}", crd_yaml()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Tools(args) => tools(args),
    }
}

/// The CRD as YAML, exactly as committed under `crds/`.
pub fn crd_yaml() -> anyhow::Result<String> {
    serde_saphyr::to_string(&AtomicworkMcpServer::crd()).context("serialising the CRD")
}

fn tools(args: ToolsArgs) -> anyhow::Result<ExitCode> {
    let catalog = args.catalog.load()?;
    let f = ToolFilter {
        methods: Some(args.methods),
        tags: Some(args.tags),
        allow: args.allow,
        deny: args.deny,
    };
    let selected = filter(&catalog, &f)?;
    let out = match args.format {
        OutputFormat::Json => serde_json::to_string_pretty(&tools_json(&selected))? + "\n",
        OutputFormat::Table => tools_table(&selected),
    };
    std::io::stdout().write_all(out.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The `tools --format json` document: one object per tool.
pub fn tools_json(tools: &[std::sync::Arc<Tool>]) -> serde_json::Value {
    serde_json::Value::Array(
        tools
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name(),
                    "title": t.source.title,
                    "method": t.source.method,
                    "tags": t.source.tags,
                    "http": format!("{} {}", t.source.http, t.source.path),
                    "annotations": t.annotations,
                    "description": t.source.description,
                })
            })
            .collect(),
    )
}

fn tools_table(tools: &[std::sync::Arc<Tool>]) -> String {
    let width = tools
        .iter()
        .map(|t| t.name().len())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!("{:<width$}  {:<15} {:<24} HTTP\n", "NAME", "METHOD", "TAGS");
    for t in tools {
        out.push_str(&format!(
            "{:<width$}  {:<15} {:<24} {} {}\n",
            t.name(),
            t.source.method,
            t.source.tags.join(","),
            t.source.http,
            t.source.path
        ));
    }
    out.push_str(&format!("{} tools\n", tools.len()));
    out
}
