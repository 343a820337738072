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
    /// Reconcile AtomicworkMcpServer resources into token Secrets and status
    /// (leader-elected; standby replicas wait for the lease).
    Controller(ControllerArgs),
    /// Serve MCP for the AtomicworkMcpServer resources in the cluster (read-only access).
    Dataplane(DataplaneArgs),
    /// The controller and the data plane in one process.
    Run(RunArgs),
}

/// Which namespaces the cluster commands watch.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Namespaces to watch (comma-separated); every namespace when not given.
    #[arg(long, env = "WATCH_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
}

/// Flags of the controller role.
#[derive(Debug, Args)]
pub struct ControllerFlags {
    /// Base URL MCP clients reach the data plane at, e.g. https://mcp.example.com;
    /// connector URLs are <public-url>/mcp/<token>.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: String,
    /// Leave the connector URL out of status.url (it stays in the token Secret's `url`
    /// key), for clusters where status is widely readable.
    #[arg(long, env = "REDACT_STATUS_URL")]
    pub redact_status_url: bool,
    /// Address of /healthz, /readyz and /metrics.
    #[arg(long, default_value = "0.0.0.0:9090")]
    pub metrics_listen: std::net::SocketAddr,
    /// Namespace of the leader-election Lease.
    #[arg(long, env = "POD_NAMESPACE", default_value = "default")]
    pub lease_namespace: String,
    /// Name of the leader-election Lease.
    #[arg(long, default_value = crate::controller::lease::DEFAULT_LEASE_NAME)]
    pub lease_name: String,
    /// The controller's own Deployment, in the Lease's namespace: the Lease is then
    /// owned by it, so deleting the Deployment (an uninstall) deletes the Lease too.
    #[arg(long, env = "LEASE_OWNER_DEPLOYMENT")]
    pub lease_owner_deployment: Option<String>,
}

/// Flags of the data plane role.
#[derive(Debug, Args)]
pub struct DataplaneFlags {
    /// Address to serve MCP (and /healthz, /readyz, /metrics) on.
    #[arg(long, default_value = "0.0.0.0:8080")]
    pub listen: std::net::SocketAddr,
    /// Origins browsers may call from (comma-separated; `*` for any). Defaults to
    /// https://claude.ai and https://claude.com; the public URL's origin is always allowed.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Host header values accepted (comma-separated); any host when not given.
    #[arg(long, env = "ALLOWED_HOSTS", value_delimiter = ',')]
    pub allowed_hosts: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ControllerArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub controller: ControllerFlags,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct DataplaneArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub dataplane: DataplaneFlags,
    /// Base URL MCP clients reach this service at; its origin and host are allowed.
    #[arg(long, env = "PUBLIC_URL")]
    pub public_url: Option<String>,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub cluster: ClusterArgs,
    #[command(flatten)]
    pub controller: ControllerFlags,
    #[command(flatten)]
    pub dataplane: DataplaneFlags,
    #[command(flatten)]
    pub catalog: CatalogArgs,
    #[command(flatten)]
    pub log: LogArgs,
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
    let mut dataplane = None;
    if !args.allowed_origins.is_empty() {
        let mut config = crate::dataplane::DataplaneConfig::for_listen(args.listen);
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
    use crate::controller::runtime;
    log.init();
    let catalog = std::sync::Arc::new(catalog.load()?);
    let scope = crate::controller::Scope::from_list(cluster.namespaces.clone());
    let controller_opts = controller
        .map(|flags| controller_options(flags, &scope))
        .transpose()?;
    let dataplane_opts = dataplane
        .map(|(flags, public_url)| dataplane_options(flags, public_url, &scope))
        .transpose()?;
    runtime()?.block_on(async move {
        let client = kube::Client::try_default()
            .await
            .context("connecting to the cluster (KUBECONFIG, ~/.kube/config or in-cluster)")?;
        let stop = tokio_util::sync::CancellationToken::new();
        runtime::cancel_on_signal(stop.clone());
        let run_controller = async {
            let Some((opts, listen)) = controller_opts else {
                return Ok(());
            };
            let admin = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            let result = runtime::controller(
                client.clone(),
                catalog.clone(),
                opts,
                Some(admin),
                stop.clone(),
            )
            .await;
            stop.cancel();
            result
        };
        let run_dataplane = async {
            let Some((opts, listen)) = dataplane_opts else {
                return Ok(());
            };
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            tracing::info!(listen = %listen, "serving MCP");
            let result = runtime::dataplane(
                client.clone(),
                catalog.clone(),
                opts,
                listener,
                stop.clone(),
            )
            .await;
            stop.cancel();
            result
        };
        let (c, d) = tokio::join!(run_controller, run_dataplane);
        c.and(d)
    })?;
    Ok(ExitCode::SUCCESS)
}

fn check_public_url(url: &str) -> anyhow::Result<String> {
    let parsed = reqwest::Url::parse(url.trim())
        .with_context(|| format!("--public-url {url:?} is not a URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        anyhow::bail!("--public-url {url:?} must be an http(s) URL with a host");
    }
    Ok(url.trim().trim_end_matches('/').to_string())
}

fn controller_options(
    flags: &ControllerFlags,
    scope: &crate::controller::Scope,
) -> anyhow::Result<(
    crate::controller::runtime::ControllerOptions,
    std::net::SocketAddr,
)> {
    let settings = crate::controller::Settings {
        public_url: check_public_url(&flags.public_url)?,
        redact_status_url: flags.redact_status_url,
        resolve: Default::default(),
    };
    let mut lease =
        crate::controller::lease::LeaseSettings::new(&flags.lease_namespace, &flags.lease_name);
    lease.owner_deployment = flags
        .lease_owner_deployment
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string);
    let opts = crate::controller::runtime::ControllerOptions {
        settings,
        scope: scope.clone(),
        lease: Some(lease),
    };
    Ok((opts, flags.metrics_listen))
}

fn dataplane_options(
    flags: &DataplaneFlags,
    public_url: Option<&str>,
    scope: &crate::controller::Scope,
) -> anyhow::Result<(
    crate::controller::runtime::DataplaneOptions,
    std::net::SocketAddr,
)> {
    let mut config = crate::dataplane::DataplaneConfig::default();
    if !flags.allowed_origins.is_empty() {
        config.allowed_origins = flags.allowed_origins.clone();
    }
    config.allowed_hosts = flags.allowed_hosts.clone();
    if let Some(url) = public_url {
        config.allow_public_url(&check_public_url(url)?);
    }
    let opts = crate::controller::runtime::DataplaneOptions {
        scope: scope.clone(),
        config,
        resolve: Default::default(),
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
        let (opts, _) =
            controller_options(&run.controller, &crate::controller::Scope::All).expect("options");
        assert_eq!(opts.settings.public_url, "https://mcp.example.com");

        let Command::Dataplane(dp) = parse(&[
            "dataplane",
            "--namespaces",
            "a, b,a",
            "--allowed-hosts",
            "mcp.example.com",
        ]) else {
            panic!("dataplane")
        };
        let scope = crate::controller::Scope::from_list(dp.cluster.namespaces.clone());
        assert_eq!(
            scope,
            crate::controller::Scope::Namespaces(vec!["a".into(), "b".into()])
        );
        let (opts, _) = dataplane_options(&dp.dataplane, None, &scope).expect("options");
        assert_eq!(opts.config.allowed_hosts, ["mcp.example.com"]);
    }

    #[test]
    fn the_controller_needs_a_usable_public_url() {
        assert!(Cli::try_parse_from(["atomicwork-mcp", "controller"]).is_err());
        let Command::Controller(c) = parse(&["controller", "--public-url", "mcp.example.com"])
        else {
            panic!("controller")
        };
        assert!(controller_options(&c.controller, &crate::controller::Scope::All).is_err());
        let Command::Controller(c) = parse(&[
            "controller",
            "--public-url",
            "https://mcp.example.com/",
            "--redact-status-url",
        ]) else {
            panic!("controller")
        };
        let (opts, _) =
            controller_options(&c.controller, &crate::controller::Scope::All).expect("options");
        assert_eq!(opts.settings.public_url, "https://mcp.example.com");
        assert!(opts.settings.redact_status_url);
    }
}
