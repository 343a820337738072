//! Command-line interface. Parsing and wiring only; each subcommand's work lives in its
//! module.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

mod json_log;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use kube::CustomResourceExt;

use crate::core::base_url::BaseUrl;
use crate::core::catalog::{Catalog, Tool, ToolFilter, ToolSetKind, filter};
use crate::dataplane::{self, ConnectionLimits, DataplaneConfig};
use crate::k8s::crd::AtomicworkMcpServer;

/// Serve filtered Atomicwork ITSM tools to AI clients over MCP, from Kubernetes resources
/// or local manifest files.
#[derive(Debug, Parser)]
#[command(name = "atomicwork-mcp", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the AtomicworkMcpServer CustomResourceDefinition as YAML.
    Crd,
    /// Preview the tools a server with these filters would expose.
    Tools(ToolsArgs),
    /// Serve MCP servers from manifest files, no cluster needed.
    Local(LocalArgs),
    /// Reconcile AtomicworkMcpServer resources into token Secrets and status
    /// (leader-elected; standby replicas wait for the lease).
    Controller(ControllerArgs),
    /// Serve MCP for the runtime records the controller writes (read-only access to
    /// them alone).
    Dataplane(DataplaneArgs),
    /// The controller and the data plane in one process.
    Run(RunArgs),
}

/// Where the cluster commands hand over runtime records.
#[derive(Debug, Args)]
pub(crate) struct ClusterArgs {
    /// The operator's own namespace: the controller writes one runtime record (a
    /// labelled Secret) per server there, and the data plane reads them from there and
    /// reads nothing else.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub(crate) runtime_namespace: String,
}

/// Flags of the controller role.
#[derive(Debug, Args)]
pub(crate) struct ControllerFlags {
    /// Namespaces whose AtomicworkMcpServer resources the controller serves
    /// (comma-separated); every namespace when not given.
    #[arg(long, env = "WATCH_NAMESPACES", value_delimiter = ',')]
    pub(crate) namespaces: Vec<String>,
    /// Base URL MCP clients reach the data plane at, e.g. https://mcp.example.com;
    /// connector URLs are <public-url>/mcp/<token>.
    #[arg(long, env = "PUBLIC_URL")]
    pub(crate) public_url: String,
    /// Leave the connector URL out of status.url (it stays in the token Secret's `url`
    /// key), for clusters where status is widely readable.
    #[arg(long, env = "REDACT_STATUS_URL")]
    pub(crate) redact_status_url: bool,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub(crate) metrics_listen: std::net::SocketAddr,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub(crate) lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = crate::controller::lease::DEFAULT_LEASE_NAME)]
    pub(crate) lease_name: String,
    /// The controller's own Deployment, in the Lease's namespace: the Lease is then
    /// owned by it, so deleting the Deployment (an uninstall) deletes the Lease too.
    #[arg(long, env = "LEASE_OWNER_DEPLOYMENT")]
    pub(crate) lease_owner_deployment: Option<String>,
}

/// Flags of the data plane role.
#[derive(Debug, Args)]
pub(crate) struct DataplaneFlags {
    /// Address to serve MCP (and /healthz, /readyz, /metrics) on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// Origins browsers may call from (comma-separated; `*` for any). Defaults to
    /// https://claude.ai and https://claude.com; the public URL's origin is always allowed.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub(crate) allowed_origins: Vec<String>,
    /// Host header values accepted (comma-separated); any host when not given.
    #[arg(long, env = "ALLOWED_HOSTS", value_delimiter = ',')]
    pub(crate) allowed_hosts: Vec<String>,
    /// The data plane's own Service, in --runtime-namespace: each replica enforces
    /// rate limit / (its ready endpoints), so the replicas together allow the configured
    /// rate. Without it (or while none is ready) a replica enforces every limit in full.
    #[arg(long, env = "SERVICE_NAME")]
    pub(crate) service_name: Option<String>,
    #[command(flatten)]
    pub(crate) limits: LimitsArgs,
}

/// Help heading of the limit and timeout flags.
const LIMITS: &str = "Limits and timeouts";

/// Limits and timeouts of the data plane's HTTP server, shared by `dataplane`, `run` and
/// `local`.
#[derive(Debug, Args)]
pub(crate) struct LimitsArgs {
    /// Largest request body accepted, in bytes; a larger one is answered 413 before it
    /// is read.
    #[arg(long, help_heading = LIMITS, env = "MAX_BODY_BYTES", default_value_t = dataplane::DEFAULT_MAX_BODY_BYTES, value_parser = body_bytes)]
    pub(crate) max_body_bytes: usize,
    /// Longest a request may take, body and upstream calls included, in seconds; then it
    /// is answered 504.
    #[arg(long, help_heading = LIMITS, env = "REQUEST_TIMEOUT_SECONDS", default_value = "300", value_parser = seconds)]
    pub(crate) request_timeout_seconds: Duration,
    /// Longest a client may take to send a request's headers, from their first byte, in
    /// seconds; then the connection is closed.
    #[arg(long, help_heading = LIMITS, env = "HEADER_READ_TIMEOUT_SECONDS", default_value = "10", value_parser = seconds)]
    pub(crate) header_read_timeout_seconds: Duration,
    /// Longest a client may take to send a request's body after its headers, in seconds;
    /// then it is answered 408.
    #[arg(long, help_heading = LIMITS, env = "BODY_READ_TIMEOUT_SECONDS", default_value = "60", value_parser = seconds)]
    pub(crate) body_read_timeout_seconds: Duration,
    /// Longest a connection may stay open with no request on it, in seconds; then it is
    /// closed. Keep it above the idle timeout of load balancers and client pools.
    #[arg(long, help_heading = LIMITS, env = "IDLE_TIMEOUT_SECONDS", default_value = "120", value_parser = seconds)]
    pub(crate) idle_timeout_seconds: Duration,
    /// Most client connections served at once; further connections wait until one
    /// closes. Keep it below the open-file limit.
    #[arg(long, help_heading = LIMITS, env = "MAX_CONNECTIONS", default_value_t = dataplane::DEFAULT_MAX_CONNECTIONS, value_parser = connection_count)]
    pub(crate) max_connections: usize,
}

impl LimitsArgs {
    /// Sets the limits and timeouts of `config`.
    pub(crate) fn apply(&self, config: &mut DataplaneConfig) {
        config.max_body_bytes = self.max_body_bytes;
        config.request_timeout = self.request_timeout_seconds;
        config.connections = ConnectionLimits {
            max_connections: self.max_connections,
            header_read_timeout: self.header_read_timeout_seconds,
            body_read_timeout: self.body_read_timeout_seconds,
            idle_timeout: self.idle_timeout_seconds,
        };
    }
}

/// Longest timeout accepted: a day.
const MAX_TIMEOUT_SECONDS: f64 = 86_400.0;

/// A number of seconds, fractions allowed, above zero and at most a day.
fn seconds(text: &str) -> Result<Duration, String> {
    let value: f64 = text
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(value > 0.0 && value <= MAX_TIMEOUT_SECONDS) {
        return Err(format!(
            "{text} is out of range: give more than 0 and at most {MAX_TIMEOUT_SECONDS} seconds"
        ));
    }
    Ok(Duration::from_secs_f64(value))
}

/// A body size in bytes, at least 1 KiB (room for any JSON-RPC request but an upload).
fn body_bytes(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n >= 1024 => Ok(n),
        Ok(_) => Err(format!("{text} is too small: give at least 1024 bytes")),
        Err(_) => Err(format!("{text:?} is not a number of bytes")),
    }
}

/// A connection cap from 1 to [`crate::dataplane::connections::MAX_CONNECTIONS_LIMIT`].
fn connection_count(text: &str) -> Result<usize, String> {
    let max = crate::dataplane::connections::MAX_CONNECTIONS_LIMIT;
    match text.trim().parse::<usize>() {
        Ok(n) if (1..=max).contains(&n) => Ok(n),
        _ => Err(format!(
            "{text:?} is not a connection count from 1 to {max}"
        )),
    }
}

#[derive(Debug, Args)]
pub(crate) struct ControllerArgs {
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    #[command(flatten)]
    pub(crate) controller: ControllerFlags,
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    #[command(flatten)]
    pub(crate) log: LogArgs,
}

#[derive(Debug, Args)]
pub(crate) struct DataplaneArgs {
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    #[command(flatten)]
    pub(crate) dataplane: DataplaneFlags,
    /// Base URL MCP clients reach this service at; its origin and host are allowed.
    #[arg(long, env = "PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    #[command(flatten)]
    pub(crate) log: LogArgs,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) cluster: ClusterArgs,
    #[command(flatten)]
    pub(crate) controller: ControllerFlags,
    #[command(flatten)]
    pub(crate) dataplane: DataplaneFlags,
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    #[command(flatten)]
    pub(crate) log: LogArgs,
}

/// Logging flags shared by the serving commands.
#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// Log format; `json` for log collectors.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub(crate) log_format: LogFormat,
    /// Log filter, e.g. `info` or `atomicwork_mcp=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub(crate) log_level: String,
}

impl LogArgs {
    /// Installs the global tracing subscriber (logs go to stderr, coloured only on a
    /// terminal and when `NO_COLOR` is unset).
    pub(crate) fn init(&self) {
        use std::io::IsTerminal as _;
        let filter = tracing_subscriber::EnvFilter::try_new(&self.log_level)
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
        let ansi = use_colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR").as_deref(),
        );
        let builder = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .with_writer(std::io::stderr);
        let _ = match self.log_format {
            LogFormat::Json => builder
                .json()
                .event_format(json_log::FastJson::new())
                .try_init(),
            LogFormat::Text => builder.try_init(),
        };
    }
}

/// Whether log lines get ANSI colours: only on a terminal, and never when `NO_COLOR` is
/// set to a non-empty value (<https://no-color.org>).
pub(crate) fn use_colour(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// An error and its causes as one line, `outer: cause: cause`, leaving out a cause whose
/// text an earlier message already carries (some libraries put their source into their
/// own message, which would otherwise print the same chain several times).
pub fn error_chain(error: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if text.is_empty() || out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[derive(Debug, Args)]
pub(crate) struct LocalArgs {
    /// A manifest file or a directory of them (AtomicworkMcpServer and Secret, multi-document YAML).
    #[arg(long)]
    pub(crate) manifests: PathBuf,
    /// Address to serve MCP on. Loopback unless you say otherwise.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub(crate) listen: std::net::SocketAddr,
    /// Base of the connector URLs printed, e.g. an HTTPS tunnel in front of this port.
    #[arg(long)]
    pub(crate) public_url: Option<String>,
    /// Point every server at a built-in simulated Atomicwork tenant with sample data.
    #[arg(long)]
    pub(crate) sandbox: bool,
    /// Where tokens are kept across restarts (tokens.json, mode 0600).
    #[arg(long, default_value_os_t = crate::local::default_state_dir())]
    pub(crate) state_dir: PathBuf,
    /// Seconds between checks of the manifest files for changes.
    #[arg(long, default_value_t = 1.0)]
    pub(crate) poll_seconds: f64,
    /// Origins allowed to call from a browser (comma-separated; `*` for any), in addition
    /// to https://claude.ai, https://claude.com and, on a loopback address,
    /// http://localhost and http://127.0.0.1 on any port.
    #[arg(long, value_delimiter = ',')]
    pub(crate) allowed_origins: Vec<String>,
    /// Host header values accepted (comma-separated), in addition to localhost,
    /// 127.0.0.1 and [::1] on a loopback address; on another address any host is
    /// accepted unless this is given.
    #[arg(long, value_delimiter = ',')]
    pub(crate) allowed_hosts: Vec<String>,
    #[command(flatten)]
    pub(crate) limits: LimitsArgs,
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
    #[command(flatten)]
    pub(crate) log: LogArgs,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum LogFormat {
    Text,
    Json,
}

/// The `--tool-set` values of `tools`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum ToolSetArg {
    /// The hand-written tools for everyday ITSM work.
    Curated,
    /// One tool per operation of Atomicwork's published API.
    Complete,
}

impl From<ToolSetArg> for ToolSetKind {
    fn from(arg: ToolSetArg) -> Self {
        match arg {
            ToolSetArg::Curated => ToolSetKind::Curated,
            ToolSetArg::Complete => ToolSetKind::Complete,
        }
    }
}

/// Output format of `tools`.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub(crate) enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct CatalogArgs {
    /// YAML file that overrides built-in tools (method, path, description, parameters) or
    /// adds tools.
    #[arg(long, env = "ATOMICWORK_MCP_CATALOG")]
    pub(crate) catalog: Option<PathBuf>,
}

impl CatalogArgs {
    pub(crate) fn load(&self) -> anyhow::Result<Catalog> {
        Ok(match &self.catalog {
            Some(path) => Catalog::with_overrides_file(path)?,
            None => Catalog::builtin()?,
        })
    }
}

#[derive(Debug, Args)]
pub(crate) struct ToolsArgs {
    /// The built-in tool set to pick from (spec.toolSet).
    #[arg(long, value_enum, default_value_t = ToolSetArg::Curated)]
    pub(crate) tool_set: ToolSetArg,
    /// read, write, custom or exact method names (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub(crate) methods: Vec<String>,
    /// Tags; a tool matches when any of its tags is listed.
    #[arg(long, value_delimiter = ',')]
    pub(crate) tags: Vec<String>,
    /// Only these tool names.
    #[arg(long, value_delimiter = ',')]
    pub(crate) allow: Vec<String>,
    /// Never these tool names.
    #[arg(long, value_delimiter = ',')]
    pub(crate) deny: Vec<String>,
    /// Output format: a table to read, or JSON with each tool's description.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub(crate) format: OutputFormat,
    #[command(flatten)]
    pub(crate) catalog: CatalogArgs,
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
        Command::Controller(args) => cluster_command(
            &args.log,
            &args.catalog,
            &args.cluster,
            Some(&args.controller),
            None,
        ),
        Command::Dataplane(args) => cluster_command(
            &args.log,
            &args.catalog,
            &args.cluster,
            None,
            Some((&args.dataplane, args.public_url.as_deref())),
        ),
        Command::Run(args) => cluster_command(
            &args.log,
            &args.catalog,
            &args.cluster,
            Some(&args.controller),
            Some((&args.dataplane, Some(args.controller.public_url.as_str()))),
        ),
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
    let dataplane = Some(local_config(&args));
    let opts = crate::local::LocalOptions {
        manifests: args.manifests,
        listen: args.listen,
        public_url: args.public_url,
        sandbox: args.sandbox,
        state_dir: args.state_dir,
        poll_interval: std::time::Duration::from_secs_f64(args.poll_seconds.clamp(0.05, 60.0)),
        dataplane,
    };
    runtime()?.block_on(crate::local::run(opts, catalog))?;
    Ok(ExitCode::SUCCESS)
}

/// The data plane settings of `local`: the defaults for its listen address, with the
/// origins and hosts given added to them, and the limits given.
fn local_config(args: &LocalArgs) -> DataplaneConfig {
    let mut config = DataplaneConfig::for_listen(args.listen);
    add_new(&mut config.allowed_origins, &args.allowed_origins);
    add_new(&mut config.allowed_hosts, &args.allowed_hosts);
    args.limits.apply(&mut config);
    config
}

/// Appends the values of `more` that `list` does not hold yet.
fn add_new(list: &mut Vec<String>, more: &[String]) {
    for value in more {
        let value = value.trim();
        if !value.is_empty() && !list.iter().any(|v| v.eq_ignore_ascii_case(value)) {
            list.push(value.to_string());
        }
    }
}

/// Runs the controller, the data plane or both against the cluster kube's default
/// configuration names (KUBECONFIG, ~/.kube/config or the in-cluster service account),
/// until SIGTERM or Ctrl-C.
fn cluster_command(
    log: &LogArgs,
    catalog: &CatalogArgs,
    cluster: &ClusterArgs,
    controller: Option<&ControllerFlags>,
    dataplane: Option<(&DataplaneFlags, Option<&str>)>,
) -> anyhow::Result<ExitCode> {
    log.init();
    let catalog = std::sync::Arc::new(catalog.load()?);
    let controller_opts = controller
        .map(|flags| controller_options(flags, cluster))
        .transpose()?;
    let dataplane_opts = dataplane
        .map(|(flags, public_url)| dataplane_options(flags, public_url, cluster))
        .transpose()?;
    runtime()?.block_on(crate::runtime::cluster(
        catalog,
        controller_opts,
        dataplane_opts,
    ))?;
    Ok(ExitCode::SUCCESS)
}

fn check_public_url(url: &str) -> anyhow::Result<BaseUrl> {
    BaseUrl::parse(url).map_err(|e| {
        anyhow::anyhow!("--public-url {url:?} {e}; use the URL clients reach the data plane at, e.g. https://mcp.example.com")
    })
}

/// A namespace name as given, checked.
fn runtime_namespace(cluster: &ClusterArgs) -> anyhow::Result<String> {
    let ns = cluster.runtime_namespace.trim();
    if ns.is_empty() {
        anyhow::bail!("--runtime-namespace must name a namespace");
    }
    Ok(ns.to_string())
}

fn controller_options(
    flags: &ControllerFlags,
    cluster: &ClusterArgs,
) -> anyhow::Result<(crate::runtime::ControllerOptions, std::net::SocketAddr)> {
    let scope = crate::k8s::scope::Scope::from_list(flags.namespaces.clone());
    let settings = crate::controller::Settings {
        public_url: check_public_url(&flags.public_url)?,
        redact_status_url: flags.redact_status_url,
        resolve: Default::default(),
        runtime_namespace: runtime_namespace(cluster)?,
        record_owner: None,
    };
    let mut lease =
        crate::controller::lease::LeaseSettings::new(&flags.lease_namespace, &flags.lease_name);
    lease.owner_deployment = flags
        .lease_owner_deployment
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let opts = crate::runtime::ControllerOptions {
        settings,
        scope,
        lease: Some(lease),
    };
    Ok((opts, flags.metrics_listen))
}

fn dataplane_options(
    flags: &DataplaneFlags,
    public_url: Option<&str>,
    cluster: &ClusterArgs,
) -> anyhow::Result<(crate::runtime::DataplaneOptions, std::net::SocketAddr)> {
    let mut config = DataplaneConfig::default();
    if !flags.allowed_origins.is_empty() {
        config.allowed_origins = flags.allowed_origins.clone();
    }
    config.allowed_hosts = flags.allowed_hosts.clone();
    flags.limits.apply(&mut config);
    if let Some(url) = public_url {
        config.allow_public_url(&check_public_url(url)?);
    }
    let opts = crate::runtime::DataplaneOptions {
        runtime_namespace: runtime_namespace(cluster)?,
        service_name: flags
            .service_name
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        config,
    };
    Ok((opts, flags.listen))
}

/// The CRD as YAML, exactly as committed under `crds/`.
pub fn crd_yaml() -> anyhow::Result<String> {
    serde_saphyr::to_string(&AtomicworkMcpServer::crd()).context("serialising the CRD")
}

fn tools(args: ToolsArgs) -> anyhow::Result<ExitCode> {
    let catalog = args.catalog.load()?;
    let f = ToolFilter {
        set: args.tool_set.into(),
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
pub(crate) fn tools_json(tools: &[std::sync::Arc<Tool>]) -> serde_json::Value {
    serde_json::Value::Array(
        tools
            .iter()
            .map(|t| {
                serde_json::json!({
                    "name": t.name(),
                    "title": t.source.title,
                    "method": t.source.method,
                    "class": t.method_class().as_str(),
                    "tags": t.source.tags,
                    "http": format!("{} {}", t.source.http, t.source.path),
                    "annotations": t.annotations,
                    "description": t.source.description,
                    "inputSchema": t.input_schema,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Command {
        let argv = std::iter::once("atomicwork-mcp").chain(args.iter().copied());
        match Cli::try_parse_from(argv) {
            Ok(cli) => cli.command,
            Err(e) => panic!("{args:?}: {e}"),
        }
    }

    #[test]
    fn cluster_commands_have_the_documented_defaults() {
        let Command::Run(run) = parse(&["run", "--public-url", "https://mcp.example.com"]) else {
            panic!("run")
        };
        assert_eq!(run.dataplane.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(run.controller.metrics_listen.to_string(), "0.0.0.0:9090");
        assert_eq!(run.controller.lease_name, "atomicwork-mcp-controller");
        assert!(!run.controller.redact_status_url);
        let (opts, _) = controller_options(&run.controller, &run.cluster).expect("options");
        assert_eq!(opts.settings.public_url, "https://mcp.example.com");
        assert_eq!(opts.scope, crate::k8s::scope::Scope::All);

        let Command::Controller(c) = parse(&[
            "controller",
            "--public-url",
            "https://mcp.example.com",
            "--namespaces",
            "a, b,a",
            "--runtime-namespace",
            "awmcp",
        ]) else {
            panic!("controller")
        };
        let (opts, _) = controller_options(&c.controller, &c.cluster).expect("options");
        assert_eq!(
            opts.scope,
            crate::k8s::scope::Scope::Namespaces(vec!["a".into(), "b".into()])
        );
        assert_eq!(opts.settings.runtime_namespace, "awmcp");

        let Command::Dataplane(dp) = parse(&["dataplane", "--allowed-hosts", "mcp.example.com"])
        else {
            panic!("dataplane")
        };
        let (opts, _) = dataplane_options(&dp.dataplane, None, &dp.cluster).expect("options");
        assert_eq!(opts.config.allowed_hosts, ["mcp.example.com"]);
        assert_eq!(opts.service_name, None);
        let Command::Dataplane(dp) = parse(&[
            "dataplane",
            "--service-name",
            "atomicwork-mcp-dataplane",
            "--runtime-namespace",
            "awmcp",
        ]) else {
            panic!("dataplane")
        };
        let (opts, _) = dataplane_options(&dp.dataplane, None, &dp.cluster).expect("options");
        assert_eq!(
            opts.service_name.as_deref(),
            Some("atomicwork-mcp-dataplane")
        );
        assert_eq!(opts.runtime_namespace, "awmcp");
    }

    #[test]
    fn colour_follows_the_terminal_and_no_color() {
        use std::ffi::OsStr;
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))));
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
        assert!(!use_colour(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn error_chain_names_each_cause_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("failed to read kubeconfig: {0}")]
        struct Inner(#[source] std::io::Error);
        #[derive(Debug, thiserror::Error)]
        #[error("failed to infer config: ({0})")]
        struct Outer(#[source] Inner);
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(Outer(Inner(io))).context("connecting to the cluster");
        assert_eq!(
            error_chain(&e),
            "connecting to the cluster: failed to infer config: (failed to read kubeconfig: no such file)"
        );
        let plain = anyhow::anyhow!("inner").context("outer");
        assert_eq!(error_chain(&plain), "outer: inner");
    }

    #[test]
    fn the_controller_needs_a_usable_public_url() {
        assert!(Cli::try_parse_from(["atomicwork-mcp", "controller"]).is_err());
        let Command::Controller(c) = parse(&["controller", "--public-url", "mcp.example.com"])
        else {
            panic!("controller")
        };
        assert!(controller_options(&c.controller, &c.cluster).is_err());
        let Command::Controller(c) = parse(&[
            "controller",
            "--public-url",
            "https://mcp.example.com/",
            "--redact-status-url",
        ]) else {
            panic!("controller")
        };
        let (opts, _) = controller_options(&c.controller, &c.cluster).expect("options");
        assert_eq!(opts.settings.public_url, "https://mcp.example.com");
        assert!(opts.settings.redact_status_url);
    }

    /// Every flag of every command has help text, and `local --state-dir` shows where
    /// tokens go when it is not given.
    #[test]
    fn every_flag_says_what_it_does() {
        use clap::CommandFactory;
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            for arg in sub.get_arguments() {
                assert!(
                    arg.get_help().is_some(),
                    "{} --{} has no help text",
                    sub.get_name(),
                    arg.get_id()
                );
            }
        }
        let mut cli = Cli::command();
        let local = cli.find_subcommand_mut("local").expect("local");
        let state_dir = local
            .get_arguments()
            .find(|a| a.get_id() == "state_dir")
            .expect("--state-dir");
        assert_eq!(
            state_dir.get_default_values(),
            [crate::local::default_state_dir().as_os_str()]
        );
        let help = local.render_help().to_string();
        let shown = help
            .split("--state-dir")
            .nth(1)
            .and_then(|rest| rest.split("\n  -").next())
            .unwrap_or_default();
        assert!(shown.contains("[default: "), "{help}");
    }

    /// The limit and timeout flags, by default and set, reach the data plane's settings
    /// the same way in `dataplane`, `run` and `local`.
    #[test]
    fn limits_and_timeouts_reach_the_data_plane_in_every_serving_command() {
        fn configs(extra: &[&str]) -> Vec<DataplaneConfig> {
            let with = |base: &[&'static str]| -> Vec<&str> {
                base.iter().chain(extra).copied().collect()
            };
            let Command::Dataplane(dp) = parse(&with(&["dataplane"])) else {
                panic!("dataplane")
            };
            let Command::Run(run) = parse(&with(&["run", "--public-url", "https://m.example"]))
            else {
                panic!("run")
            };
            let Command::Local(local) = parse(&with(&["local", "--manifests", "m"])) else {
                panic!("local")
            };
            vec![
                dataplane_options(&dp.dataplane, None, &dp.cluster)
                    .expect("options")
                    .0
                    .config,
                dataplane_options(&run.dataplane, Some("https://m.example"), &run.cluster)
                    .expect("options")
                    .0
                    .config,
                local_config(&local),
            ]
        }
        for config in configs(&[]) {
            assert_eq!(config.max_body_bytes, 40 * 1024 * 1024);
            assert_eq!(config.request_timeout, Duration::from_secs(300));
            assert_eq!(config.connections, ConnectionLimits::default());
        }
        let set = [
            "--max-body-bytes",
            "2048",
            "--request-timeout-seconds",
            "1.5",
            "--header-read-timeout-seconds",
            "2",
            "--body-read-timeout-seconds",
            "3",
            "--idle-timeout-seconds",
            "4",
            "--max-connections",
            "5",
        ];
        for config in configs(&set) {
            assert_eq!(config.max_body_bytes, 2048);
            assert_eq!(config.request_timeout, Duration::from_millis(1500));
            assert_eq!(
                config.connections,
                ConnectionLimits {
                    max_connections: 5,
                    header_read_timeout: Duration::from_secs(2),
                    body_read_timeout: Duration::from_secs(3),
                    idle_timeout: Duration::from_secs(4),
                }
            );
        }
        for (flag, bad) in [
            ("--request-timeout-seconds", "0"),
            ("--idle-timeout-seconds", "-1"),
            ("--header-read-timeout-seconds", "NaN"),
            ("--body-read-timeout-seconds", "1e9"),
            ("--max-connections", "0"),
            ("--max-connections", "2000000"),
            ("--max-body-bytes", "10"),
        ] {
            let argv = ["atomicwork-mcp", "dataplane", flag, bad];
            assert!(Cli::try_parse_from(argv).is_err(), "{flag} {bad}");
        }
    }

    /// `local --allowed-origins` and `--allowed-hosts` add to the defaults of its listen
    /// address rather than replacing them.
    #[test]
    fn local_origins_and_hosts_add_to_the_defaults() {
        let Command::Local(args) = parse(&[
            "local",
            "--manifests",
            "m",
            "--allowed-origins",
            "https://app.example,http://localhost",
            "--allowed-hosts",
            "mcp.internal",
        ]) else {
            panic!("local")
        };
        let config = local_config(&args);
        let loopback = DataplaneConfig::loopback();
        let mut origins = loopback.allowed_origins.clone();
        origins.push("https://app.example".into());
        assert_eq!(config.allowed_origins, origins);
        let mut hosts = loopback.allowed_hosts.clone();
        hosts.push("mcp.internal".into());
        assert_eq!(config.allowed_hosts, hosts);

        let Command::Local(args) =
            parse(&["local", "--manifests", "m", "--listen", "0.0.0.0:8080"])
        else {
            panic!("local")
        };
        let config = local_config(&args);
        assert!(config.allowed_hosts.is_empty(), "any host off loopback");
        assert_eq!(
            config.allowed_origins,
            DataplaneConfig::default().allowed_origins
        );
    }
}
