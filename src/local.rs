//! Local mode: the data plane fed from manifest files instead of a cluster, optionally
//! against the built-in sandbox tenant. Same resolution and filters as the controller.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::dataplane::{self, Dataplane, DataplaneConfig};
use crate::manifest::{self, Manifests};
use crate::registry::{Registry, ServerId, ServerView};
use crate::resolve::{self, ResolveOptions};
use crate::secret::{Secret, TokenHash};
use crate::token::{self, TokenRecord};
use crate::upstream::{Upstream, UpstreamOptions};

/// Settings of `atomicwork-mcp local`.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    pub manifests: PathBuf,
    pub listen: SocketAddr,
    /// Base of the printed connector URLs; defaults to `http://<listen address>`.
    pub public_url: Option<String>,
    pub sandbox: bool,
    pub state_dir: PathBuf,
    /// How often manifest files are checked for changes.
    pub poll_interval: Duration,
    pub dataplane: Option<DataplaneConfig>,
}

/// The default state directory: `$XDG_STATE_HOME/atomicwork-mcp`, else
/// `~/.local/state/atomicwork-mcp`, else `.atomicwork-mcp` here.
pub fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("atomicwork-mcp");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/state/atomicwork-mcp");
    }
    PathBuf::from(".atomicwork-mcp")
}

/// Tokens kept across restarts, in `<state-dir>/tokens.json` (mode 0600).
#[derive(Debug, Default, Serialize, Deserialize)]
struct TokenFile {
    #[serde(default)]
    servers: BTreeMap<String, StoredToken>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredToken {
    token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotation: Option<String>,
    /// The `expiresAt` the token was last kept under (see [`TokenRecord::expires_at`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    expires_at: Option<Timestamp>,
}

struct TokenStore {
    path: PathBuf,
    file: TokenFile,
}

impl TokenStore {
    fn open(dir: &Path) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating state directory {}", dir.display()))?;
        let path = dir.join("tokens.json");
        let file = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .with_context(|| format!("{} is not a token file; move it away", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => TokenFile::default(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(TokenStore { path, file })
    }

    fn get(&self, id: &ServerId) -> Option<TokenRecord> {
        self.file.servers.get(&id.to_string()).map(|s| TokenRecord {
            token: Secret::new(s.token.as_str()),
            rotation: s.rotation.clone(),
            expires_at: s.expires_at,
        })
    }

    fn set(&mut self, id: &ServerId, record: Option<&TokenRecord>) {
        match record {
            Some(r) => self.file.servers.insert(
                id.to_string(),
                StoredToken {
                    token: r.token.expose().to_string(),
                    rotation: r.rotation.clone(),
                    expires_at: r.expires_at,
                },
            ),
            None => self.file.servers.remove(&id.to_string()),
        };
    }

    fn save(&self) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(&self.file)?;
        let tmp = self.path.with_extension("json.tmp");
        write_private(&tmp, text.as_bytes())?;
        std::fs::rename(&tmp, &self.path)
            .with_context(|| format!("writing {}", self.path.display()))?;
        Ok(())
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// One server's state after a load, for the printed summary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLine {
    pub id: ServerId,
    pub tools: usize,
    pub expires: Option<Timestamp>,
    /// The connector URL, or why the server is not serving.
    pub outcome: Result<String, String>,
    pub suspended: bool,
}

impl std::fmt::Display for ServerLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let expires = self
            .expires
            .map(|t| t.to_string())
            .unwrap_or_else(|| "never".into());
        match &self.outcome {
            Ok(url) => write!(
                f,
                "  {}  tools={}  expires={}{}\n    url: {url}",
                self.id,
                self.tools,
                expires,
                if self.suspended { "  SUSPENDED" } else { "" }
            ),
            Err(why) => write!(f, "  {}  NOT SERVING: {why}", self.id),
        }
    }
}

/// Registry entries, the printed summary and what was read.
type Loaded = (Vec<(TokenHash, ServerView)>, Vec<ServerLine>, Manifests);

/// Loads manifests, reconciles tokens and returns the registry entries plus a summary.
struct Loader {
    catalog: Arc<Catalog>,
    manifests: PathBuf,
    public_url: String,
    resolve: ResolveOptions,
    store: TokenStore,
}

impl Loader {
    fn load(&mut self, now: Timestamp) -> anyhow::Result<Loaded> {
        let m = manifest::load(&self.manifests);
        let mut entries = Vec::new();
        let mut lines = Vec::new();
        let mut seen = Vec::new();
        for server in &m.servers {
            let res = resolve::resolve(server, &m, &self.catalog, now, &self.resolve);
            seen.push(res.id.to_string());
            let existing = self.token_for(&res.id, &m);
            let record = token::next(
                existing.as_ref(),
                server.rotation(),
                res.expires_at,
                now,
                res.view.is_ok(),
                crate::secret::mint_token,
            )
            .context("reading the OS random number generator")?;
            self.store.set(&res.id, record.as_ref());
            // An expired server keeps its token and answers 403 "expired" until the
            // manifest is removed, the token rotated or expiresAt moved into the future.
            let until = record.as_ref().and_then(|r| r.valid_until(res.expires_at));
            let expired_at = until.filter(|at| now >= *at);
            let outcome = match (res.view, &record, expired_at) {
                (_, Some(r), Some(at)) => {
                    let view = ServerView::expired(res.id.clone(), server.display_name(), at);
                    entries.push((r.token.digest(), view));
                    Err(format!(
                        "Expired: expired at {at}; its URL answers 403 (expired); move spec.expiresAt into the future to mint a new token"
                    ))
                }
                (Ok(mut view), Some(r), None) => {
                    view.expires_at = until;
                    let url = token::connector_url(&self.public_url, &r.token);
                    let suspended = view.suspended;
                    entries.push((r.token.digest(), view));
                    lines.push(ServerLine {
                        id: res.id,
                        tools: res.tools.len(),
                        expires: res.expires_at,
                        outcome: Ok(url),
                        suspended,
                    });
                    continue;
                }
                (Ok(_), None, _) => Err("no token could be minted".to_string()),
                (Err(p), _, _) => Err(format!("{}: {p}", p.reason())),
            };
            lines.push(ServerLine {
                id: res.id,
                tools: res.tools.len(),
                expires: res.expires_at,
                outcome,
                suspended: false,
            });
        }
        lines.sort_by(|a, b| a.id.cmp(&b.id));
        self.store.file.servers.retain(|k, _| seen.contains(k));
        self.store.save()?;
        Ok((entries, lines, m))
    }

    /// A `<name>-mcp-token` Secret among the manifests wins over the state file.
    fn token_for(&self, id: &ServerId, m: &Manifests) -> Option<TokenRecord> {
        let from_manifest = m
            .secrets
            .get(&(id.namespace.clone(), token::token_secret_name(&id.name)))
            .and_then(|d| d.get("token"))
            .and_then(|t| token::usable_token(t));
        match from_manifest {
            Some(token) => {
                let stored = self.store.get(id);
                Some(TokenRecord {
                    token,
                    rotation: stored.as_ref().and_then(|r| r.rotation.clone()),
                    expires_at: stored.and_then(|r| r.expires_at),
                })
            }
            None => self.store.get(id),
        }
    }
}

fn print_summary(out: &mut impl Write, lines: &[ServerLine], m: &Manifests) {
    if !m.errors.is_empty() {
        let _ = writeln!(out, "manifest errors ({}), skipped:", m.errors.len());
        for e in &m.errors {
            let _ = writeln!(out, "  {e}");
        }
    }
    let _ = writeln!(out, "servers ({}):", lines.len());
    for line in lines {
        let _ = writeln!(out, "{line}");
    }
    let _ = out.flush();
}

/// Fingerprint of the manifest files, to notice edits, additions and removals.
fn fingerprint(path: &Path) -> Vec<(PathBuf, Option<SystemTime>, u64)> {
    manifest::manifest_files(path)
        .unwrap_or_default()
        .into_iter()
        .map(|p| {
            let meta = std::fs::metadata(&p).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map(|m| m.len()).unwrap_or(0);
            (p, modified, len)
        })
        .collect()
}

/// Runs local mode until Ctrl-C or SIGTERM.
pub async fn run(opts: LocalOptions, catalog: Arc<Catalog>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("binding {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let public_url = opts
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let mut out = std::io::stdout();
    let mut resolve = ResolveOptions::default();
    if opts.sandbox {
        let (base, _task) = crate::sandbox::spawn_local(crate::sandbox::Sandbox::seeded())
            .await
            .context("starting the sandbox tenant")?;
        let _ = writeln!(out, "sandbox: {}", crate::sandbox::SANDBOX_NOTICE);
        let _ = writeln!(
            out,
            "sandbox: every server below calls the simulated tenant at {base}"
        );
        resolve.base_url_override = Some(base);
        resolve.notice = Some(Arc::from(crate::sandbox::SANDBOX_NOTICE));
    }
    let mut loader = Loader {
        catalog,
        manifests: opts.manifests.clone(),
        public_url: public_url.clone(),
        resolve,
        store: TokenStore::open(&opts.state_dir)?,
    };
    let registry = Arc::new(Registry::new());
    let mut config = opts
        .dataplane
        .clone()
        .unwrap_or_else(|| DataplaneConfig::for_listen(addr));
    config.allow_public_url(&public_url);
    let upstream = Upstream::new(UpstreamOptions::default())?;
    let dp = Arc::new(Dataplane::new(registry.clone(), upstream, config));

    let (entries, lines, m) = loader.load(Timestamp::now())?;
    registry.replace_all(entries);
    registry.mark_ready();
    let _ = writeln!(out, "listening on http://{addr}");
    print_summary(&mut out, &lines, &m);

    let watch = tokio::spawn(watch_loop(
        loader,
        registry,
        opts.manifests.clone(),
        opts.poll_interval,
        lines,
    ));
    let served = dataplane::serve(listener, dp, shutdown_signal()).await;
    watch.abort();
    served.context("serving")
}

async fn watch_loop(
    mut loader: Loader,
    registry: Arc<Registry>,
    path: PathBuf,
    every: Duration,
    mut last_lines: Vec<ServerLine>,
) {
    let mut last = fingerprint(&path);
    let mut next_expiry = earliest_expiry(&last_lines);
    loop {
        tokio::time::sleep(every).await;
        let now = Timestamp::now();
        let current = fingerprint(&path);
        let expiry_passed = next_expiry.is_some_and(|t| now >= t);
        if current == last && !expiry_passed {
            continue;
        }
        last = current;
        match loader.load(now) {
            Ok((entries, lines, m)) => {
                registry.replace_all(entries);
                if lines != last_lines || !m.errors.is_empty() {
                    let mut out = std::io::stdout();
                    let _ = writeln!(out, "reloaded manifests");
                    print_summary(&mut out, &lines, &m);
                }
                next_expiry = earliest_expiry(&lines);
                last_lines = lines;
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "reloading manifests failed; keeping the previous state")
            }
        }
    }
}

fn earliest_expiry(lines: &[ServerLine]) -> Option<Timestamp> {
    lines
        .iter()
        .filter(|l| l.outcome.is_ok())
        .filter_map(|l| l.expires)
        .min()
}

/// Resolves on the first Ctrl-C (SIGINT) or SIGTERM, which starts a graceful shutdown:
/// in-flight requests drain. A second signal during the drain ends the process at once
/// with a non-zero code (128 + the signal number), so nobody has to wait out a long
/// request or reach for SIGKILL.
pub async fn shutdown_signal() {
    let mut signals = Signals::new();
    let first = signals.next().await;
    tracing::info!(
        signal = first.name(),
        "shutting down: draining in-flight requests; send the signal again to exit at once"
    );
    tokio::spawn(async move {
        let second = signals.next().await;
        tracing::warn!(
            signal = second.name(),
            "second signal: exiting at once without waiting for in-flight requests"
        );
        std::process::exit(second.exit_code());
    });
}

/// A shutdown signal received.
#[derive(Debug, Clone, Copy)]
enum Signal {
    Interrupt,
    Terminate,
}

impl Signal {
    fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
        }
    }

    /// The shell convention for a process ended by this signal.
    fn exit_code(self) -> i32 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
        }
    }
}

/// SIGINT and SIGTERM listeners, registered once so that no signal between the first
/// and the second is missed (once registered, the default action no longer ends the
/// process: a signal nobody listens for is lost).
struct Signals {
    #[cfg(unix)]
    interrupt: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    terminate: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            let listen = |kind: SignalKind, name: &str| match signal(kind) {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!(signal = name, error = %e, "cannot listen for the signal");
                    None
                }
            };
            Signals {
                interrupt: listen(SignalKind::interrupt(), "SIGINT"),
                terminate: listen(SignalKind::terminate(), "SIGTERM"),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    /// The next signal.
    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = recv(&mut self.interrupt) => Signal::Interrupt,
                _ = recv(&mut self.terminate) => Signal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}
