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
    /// Serve MCP servers from manifest files, no cluster needed.
    Local(LocalArgs),
}

/// Logging flags shared by the serving commands.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log format; `json` for log collectors.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, e.g. `info` or `atomicwork_mcp=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_level: String,
}

impl LogArgs {
    /// Installs the global tracing subscriber (logs go to stderr).
    pub fn init(&self) {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr);
        let _ = match self.log_format {
            LogFormat::Json => builder.json().try_init(),
            LogFormat::Text => builder.try_init(),
        };
    }
}

#[derive(Debug, Args)]
pub struct LocalArgs {
    /// A manifest file or a directory of them (AtomicworkMcpServer and Secret, multi-document YAML).
    #[arg(long)]
    pub manifests: PathBuf,
    /// Address to serve MCP on. Loopback unless you say otherwise.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Base of the connector URLs printed, e.g. an HTTPS tunnel in front of this port.
    #[arg(long)]
    pub public_url: Option<String>,
    /// Point every server at a built-in simulated Atomicwork tenant with sample data.
    #[arg(long)]
    pub sandbox: bool,
    /// Where tokens are kept across restarts.
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// Seconds between checks of the manifest files for changes.
    #[arg(long, default_value_t = 1.0)]
    pub poll_seconds: f64,
    /// Origins allowed to call from a browser (comma-separated; `*` for any).
    #[arg(long, value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub log: LogArgs,
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
        Command::Local(args) => local(args),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // One TLS provider for every client in the process.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn local(args: LocalArgs) -> anyhow::Result<ExitCode> {
    args.log.init();
    let catalog = std::sync::Arc::new(args.catalog.load()?);
    if !args.manifests.exists() {
        anyhow::bail!("{} does not exist", args.manifests.display());
    }
    let mut dataplane = None;
    if !args.allowed_origins.is_empty() {
        let mut config = if args.listen.ip().is_loopback() {
            crate::dataplane::DataplaneConfig::loopback()
        } else {
            crate::dataplane::DataplaneConfig::default()
        };
        config.allowed_origins = args.allowed_origins.clone();
        dataplane = Some(config);
    }
    let opts = crate::local::LocalOptions {
        manifests: args.manifests,
        listen: args.listen,
        public_url: args.public_url,
        sandbox: args.sandbox,
        state_dir: args
            .state_dir
            .unwrap_or_else(crate::local::default_state_dir),
        poll_interval: std::time::Duration::from_secs_f64(args.poll_seconds.clamp(0.05, 60.0)),
        dataplane,
    };
    runtime()?.block_on(crate::local::run(opts, catalog))?;
    Ok(ExitCode::SUCCESS)
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
