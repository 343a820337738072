//! Local mode: the data plane fed from manifest files instead of a cluster, optionally
//! against the built-in sandbox tenant. Same resolution and filters as the controller.

pub mod manifest;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context as _;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::core::base_url::BaseUrl;
use crate::core::catalog::Catalog;
use crate::core::secret::{Secret, TokenHash};
use crate::core::server::{ServerId, ServerView};
use crate::core::token::{self, TokenRecord};
use crate::dataplane::registry::Registry;
use crate::dataplane::{self, Dataplane, DataplaneConfig};
use crate::k8s::resolve::{self, ResolveOptions};
use crate::telemetry::Tracing;
use crate::upstream::{Upstream, UpstreamOptions};
use manifest::{ManifestError, Manifests, ReadFile};

/// Settings of `atomicwork-mcp local`.
#[derive(Debug, Clone)]
pub(crate) struct LocalOptions {
    pub(crate) manifests: PathBuf,
    pub(crate) listen: SocketAddr,
    /// Base of the printed connector URLs; defaults to `http://<listen address>`.
    pub(crate) public_url: Option<String>,
    pub(crate) sandbox: bool,
    pub(crate) state_dir: PathBuf,
    /// How often manifest files are checked for changes.
    pub(crate) poll_interval: Duration,
    pub(crate) dataplane: Option<DataplaneConfig>,
}

/// The default state directory: `$XDG_STATE_HOME/atomicwork-mcp`, else
/// `~/.local/state/atomicwork-mcp`, else `.atomicwork-mcp` here.
pub(crate) fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("atomicwork-mcp");
    }
    if let Some(home) = std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(home).join(".local/state/atomicwork-mcp");
    }
    PathBuf::from(".atomicwork-mcp")
}

/// Tokens kept across restarts, in `<state-dir>/tokens.json` (mode 0600).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct TokenFile {
    #[serde(default)]
    servers: BTreeMap<String, StoredToken>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// The deployment's approval key (`spec.confirm`), kept in the state directory as
/// `confirm.key` (mode 0600) and made on first use, so processes sharing the directory (or
/// started from a copy of it) seal and open each other's approval requests.
fn confirm_key(dir: &Path) -> anyhow::Result<Secret> {
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating state directory {}", dir.display()))?;
    let path = dir.join("confirm.key");
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let key = Secret::new(text.trim());
            if crate::core::confirm::key_bytes(&key).is_none() {
                anyhow::bail!(
                    "{} is not an approval key; move it away and a new one is made",
                    path.display()
                );
            }
            Ok(key)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = crate::core::confirm::mint_key()
                .map_err(|e| anyhow::anyhow!("no randomness for an approval key: {e}"))?;
            // Written under another name and moved into place, so two processes starting
            // at once never read half a key; the first one's key wins.
            let tmp = dir.join(format!("confirm.key.{}.tmp", std::process::id()));
            write_private(&tmp, key.expose().as_bytes())?;
            match std::fs::hard_link(&tmp, &path) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&tmp);
                    Ok(key)
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let _ = std::fs::remove_file(&tmp);
                    confirm_key(dir)
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&tmp);
                    Err(e).with_context(|| format!("writing {}", path.display()))
                }
            }
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
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
pub(crate) struct ServerLine {
    pub(crate) id: ServerId,
    pub(crate) tools: usize,
    pub(crate) expires: Option<Timestamp>,
    /// The connector URL, or why the server is not serving.
    pub(crate) outcome: Result<String, String>,
    pub(crate) suspended: bool,
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

/// What one complete read of the manifests gives.
struct Loaded {
    /// Registry entries.
    entries: Vec<(TokenHash, ServerView)>,
    /// The printed summary, one line per server.
    lines: Vec<ServerLine>,
    /// What was read.
    manifests: Manifests,
    /// Servers whose stored token was dropped in this pass because they are gone.
    forgotten: Vec<String>,
}

/// The outcome of one pass over the manifests.
enum Pass {
    /// Everything was read: serve this.
    Loaded(Loaded),
    /// Something could not be read (listed): nothing changed, the last good state stays.
    Unreadable(Vec<ManifestError>),
}

/// Loads manifests, reconciles tokens and returns the registry entries plus a summary.
///
/// Tokens are user data: a stored token is dropped only when its server is gone from a
/// complete read of the manifests twice in a row (a file deleted or a document removed,
/// and still so at the next pass), never because something could not be read or parsed.
struct Loader {
    catalog: Arc<Catalog>,
    manifests: PathBuf,
    public_url: BaseUrl,
    resolve: ResolveOptions,
    store: TokenStore,
    /// Reads one manifest file (replaced in tests to inject read failures).
    read: Arc<ReadFile>,
    /// Servers with a stored token that were missing from the last complete read.
    missing: BTreeSet<String>,
}

impl Loader {
    fn new(
        catalog: Arc<Catalog>,
        manifests: PathBuf,
        public_url: BaseUrl,
        resolve: ResolveOptions,
        state_dir: &Path,
    ) -> anyhow::Result<Self> {
        let mut resolve = resolve;
        if resolve.confirm_key.is_none() {
            resolve.confirm_key = Some(confirm_key(state_dir)?);
        }
        Ok(Loader {
            catalog,
            manifests,
            public_url,
            resolve,
            store: TokenStore::open(state_dir)?,
            read: Arc::new(|p: &Path| std::fs::read_to_string(p)),
            missing: BTreeSet::new(),
        })
    }

    /// True when a server's token waits for the next pass to confirm it is gone.
    fn confirming(&self) -> bool {
        !self.missing.is_empty()
    }

    fn load(&mut self, now: Timestamp) -> anyhow::Result<Pass> {
        let m = manifest::load_with(&self.manifests, &*self.read);
        if !m.unreadable.is_empty() {
            return Ok(Pass::Unreadable(m.unreadable));
        }
        // The store changes only together with a successful save.
        let before = self.store.file.clone();
        let loaded = self.apply(now, m, &before);
        if loaded.is_err() {
            self.store.file = before;
        }
        loaded.map(Pass::Loaded)
    }

    /// Resolves what was read, updates the tokens and saves them if they changed from
    /// `before`.
    fn apply(
        &mut self,
        now: Timestamp,
        m: Manifests,
        before: &TokenFile,
    ) -> anyhow::Result<Loaded> {
        let mut entries = Vec::new();
        let mut lines = Vec::new();
        let mut seen = BTreeSet::new();
        for server in &m.servers {
            let res = resolve::resolve(server, &m, &self.catalog, now, &self.resolve);
            seen.insert(res.id.to_string());
            let existing = self.token_for(&res.id, &m);
            let record = token::next(
                existing.as_ref(),
                server.rotation(),
                res.expires_at,
                now,
                res.view.is_ok(),
                crate::core::secret::mint_token,
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
                (Err(p), _, _) => {
                    let place = m
                        .origins
                        .get(&res.id)
                        .map(|o| format!("{}: ", o.place(p.field())))
                        .unwrap_or_default();
                    Err(format!("{place}{}: {p}", p.reason()))
                }
            };
            lines.push(ServerLine {
                id: res.id,
                tools: res.tools.len(),
                expires: res.expires_at,
                outcome,
                suspended: false,
            });
        }
        // Servers whose document has errors exist: listed, not served, token kept.
        for (id, error) in &m.broken {
            if seen.insert(id.to_string()) {
                lines.push(ServerLine {
                    id: id.clone(),
                    tools: 0,
                    expires: None,
                    outcome: Err(format!(
                        "{} has errors (listed above); not served until they are fixed",
                        ManifestError {
                            line: None,
                            ..error.clone()
                        }
                        .place()
                    )),
                    suspended: false,
                });
            }
        }
        lines.sort_by(|a, b| a.id.cmp(&b.id));
        let (missing, forgotten) = self.gone(&seen, &m);
        if self.store.file != *before {
            self.store.save()?;
        }
        self.missing = missing;
        Ok(Loaded {
            entries,
            lines,
            manifests: m,
            forgotten,
        })
    }

    /// Stored tokens of servers absent from this read: those also absent from the last
    /// complete read are dropped (returned second), the others wait for the next pass
    /// (returned first). While some document could not be parsed far enough to tell what
    /// it defines, nothing is counted as gone.
    fn gone(&mut self, seen: &BTreeSet<String>, m: &Manifests) -> (BTreeSet<String>, Vec<String>) {
        let mut missing = BTreeSet::new();
        let mut forgotten = Vec::new();
        if m.unidentified > 0 {
            return (missing, forgotten);
        }
        let absent: Vec<String> = self
            .store
            .file
            .servers
            .keys()
            .filter(|k| !seen.contains(*k))
            .cloned()
            .collect();
        for key in absent {
            if self.missing.contains(&key) {
                self.store.file.servers.remove(&key);
                forgotten.push(key);
            } else {
                missing.insert(key);
            }
        }
        (missing, forgotten)
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

fn print_summary(out: &mut impl Write, lines: &[ServerLine], m: &Manifests, forgotten: &[String]) {
    for id in forgotten {
        let _ = writeln!(
            out,
            "{id}: gone from the manifests; its URL is forgotten (a new one is minted if it comes back)"
        );
    }
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

/// Each manifest file with its modification time and length (`None` while they cannot
/// be listed).
type Fingerprint = Option<Vec<(PathBuf, Option<SystemTime>, u64)>>;

/// Fingerprint of the manifest files, to notice edits, additions and removals.
fn fingerprint(path: &Path) -> Fingerprint {
    let files = manifest::manifest_files(path).ok()?;
    Some(
        files
            .into_iter()
            .map(|p| {
                let meta = std::fs::metadata(&p).ok();
                let modified = meta.as_ref().and_then(|m| m.modified().ok());
                let len = meta.map(|m| m.len()).unwrap_or(0);
                (p, modified, len)
            })
            .collect(),
    )
}

/// What was not read, on one line.
fn unreadable_notice(errors: &[ManifestError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Runs local mode until Ctrl-C or SIGTERM.
pub(crate) async fn run(opts: LocalOptions, catalog: Arc<Catalog>) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .with_context(|| format!("binding {}", opts.listen))?;
    let addr = listener.local_addr()?;
    let public_url = match &opts.public_url {
        Some(url) => BaseUrl::parse(url).map_err(|e| {
            anyhow::anyhow!("--public-url {url:?} {e}; use the URL clients reach this process at")
        })?,
        None => BaseUrl::parse(&format!("http://{addr}"))
            .with_context(|| format!("the listen address {addr} does not make a URL"))?,
    };
    let mut out = std::io::stdout();
    let mut resolve = ResolveOptions {
        public_url: Some(public_url.clone()),
        ..ResolveOptions::default()
    };
    if opts.sandbox {
        let (base, notice) = start_sandbox().await?;
        let _ = writeln!(out, "sandbox: {notice}");
        let _ = writeln!(
            out,
            "sandbox: every server below calls the simulated tenant at {base}"
        );
        resolve.base_url_override = Some(base);
        resolve.notice = Some(Arc::from(notice));
    }
    let mut loader = Loader::new(
        catalog,
        opts.manifests.clone(),
        public_url.clone(),
        resolve,
        &opts.state_dir,
    )?;
    let registry = Arc::new(Registry::new());
    let mut config = opts
        .dataplane
        .clone()
        .unwrap_or_else(|| DataplaneConfig::for_listen(addr));
    config.allow_public_url(&public_url);
    let tracing = Tracing::from_env().context("starting OpenTelemetry tracing")?;
    let upstream = Upstream::new(UpstreamOptions::default())?;
    let dp =
        Arc::new(Dataplane::new(registry.clone(), upstream, config).with_tracing(tracing.clone()));

    // Taken before the first read, so that an edit made while it runs is noticed.
    let files = fingerprint(&opts.manifests);
    let loaded = match loader.load(Timestamp::now())? {
        Pass::Loaded(loaded) => loaded,
        Pass::Unreadable(errors) => {
            anyhow::bail!("cannot read the manifests: {}", unreadable_notice(&errors))
        }
    };
    registry.replace_all(loaded.entries);
    registry.mark_ready();
    let _ = writeln!(out, "listening on http://{addr}");
    print_summary(
        &mut out,
        &loaded.lines,
        &loaded.manifests,
        &loaded.forgotten,
    );

    let watch = tokio::spawn(watch_loop(
        loader,
        registry,
        opts.manifests.clone(),
        opts.poll_interval,
        (files, loaded.lines),
    ));
    let served = dataplane::serve(listener, dp, crate::runtime::shutdown_signal()).await;
    watch.abort();
    if let Some(t) = tracing {
        t.shutdown(crate::telemetry::SHUTDOWN_TIMEOUT).await;
    }
    served.context("serving")
}

/// Starts the built-in sandbox tenant for the life of the process: its base URL and the
/// notice every result carries.
#[cfg(feature = "sandbox")]
async fn start_sandbox() -> anyhow::Result<(BaseUrl, &'static str)> {
    use crate::sandbox::{SANDBOX_NOTICE, Sandbox, spawn_local};
    // The tenant's task runs until the process ends; its handle is not needed.
    let (base, _task) = spawn_local(Sandbox::seeded())
        .await
        .context("starting the sandbox tenant")?;
    let base = BaseUrl::parse(&base).context("the sandbox tenant's address")?;
    Ok((base, SANDBOX_NOTICE))
}

/// A binary built without the `sandbox` feature (the container image) has no tenant to
/// start.
#[cfg(not(feature = "sandbox"))]
async fn start_sandbox() -> anyhow::Result<(BaseUrl, &'static str)> {
    anyhow::bail!(
        "--sandbox is not available: this binary was built without the sandbox feature (build with `cargo build`, whose default features include it)"
    )
}

/// Reloads the manifests whenever their files change (and when a pass left something to
/// retry or confirm) and swaps the registry. A pass that cannot read everything changes
/// nothing: the last good state keeps serving, and it says so once.
async fn watch_loop(
    mut loader: Loader,
    registry: Arc<Registry>,
    path: PathBuf,
    every: Duration,
    (mut last, mut last_lines): (Fingerprint, Vec<ServerLine>),
) {
    let mut next_expiry = earliest_expiry(&last_lines);
    let mut again = loader.confirming();
    // What could not be read at the last pass, while that lasts.
    let mut unreadable: Option<String> = None;
    loop {
        tokio::time::sleep(every).await;
        let now = Timestamp::now();
        let current = fingerprint(&path);
        let expiry_passed = next_expiry.is_some_and(|t| now >= t);
        if current == last && !expiry_passed && !again {
            continue;
        }
        last = current;
        let mut out = std::io::stdout();
        match loader.load(now) {
            Ok(Pass::Loaded(loaded)) => {
                registry.replace_all(loaded.entries);
                let recovered = unreadable.take().is_some();
                if recovered
                    || loaded.lines != last_lines
                    || !loaded.manifests.errors.is_empty()
                    || !loaded.forgotten.is_empty()
                {
                    if recovered {
                        tracing::info!("manifests readable again");
                    }
                    let _ = writeln!(out, "reloaded manifests");
                    print_summary(
                        &mut out,
                        &loaded.lines,
                        &loaded.manifests,
                        &loaded.forgotten,
                    );
                }
                next_expiry = earliest_expiry(&loaded.lines);
                last_lines = loaded.lines;
                again = loader.confirming();
            }
            Ok(Pass::Unreadable(errors)) => {
                let notice = unreadable_notice(&errors);
                if unreadable.as_deref() != Some(notice.as_str()) {
                    tracing::warn!(error = %notice, "cannot read the manifests; still serving the last good state");
                    let _ = writeln!(
                        out,
                        "cannot read the manifests: {notice}\nstill serving the last good state ({} servers); retrying",
                        last_lines.iter().filter(|l| l.outcome.is_ok()).count()
                    );
                    let _ = out.flush();
                }
                unreadable = Some(notice);
                again = true;
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "reloading manifests failed; keeping the previous state");
                again = true;
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

#[cfg(test)]
mod tests {

    /// The approval key is made once per state directory: a second process (or a copy of
    /// the directory) reads the same key, so either seals what the other opens; a damaged
    /// key file is reported, not replaced behind the user's back.
    #[test]
    fn the_approval_key_lives_in_the_state_directory() {
        let dir = tempfile::tempdir().expect("temp dir");
        let first = confirm_key(dir.path()).expect("made");
        let again = confirm_key(dir.path()).expect("read");
        assert_eq!(first.expose(), again.expose());
        let copy = tempfile::tempdir().expect("temp dir");
        std::fs::copy(
            dir.path().join("confirm.key"),
            copy.path().join("confirm.key"),
        )
        .expect("copied");
        assert_eq!(
            confirm_key(copy.path()).expect("read").expose(),
            first.expose()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("confirm.key"))
                .expect("key file")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(dir.path().join("confirm.key"), "damaged").expect("write");
        let err = confirm_key(dir.path()).expect_err("damaged key refused");
        assert!(err.to_string().contains("not an approval key"), "{err}");
    }

    use super::*;

    /// Without the sandbox feature, `--sandbox` fails at once and says why.
    #[cfg(not(feature = "sandbox"))]
    #[tokio::test]
    async fn without_the_sandbox_feature_the_sandbox_is_refused() {
        let e = start_sandbox().await.expect_err("no sandbox in this build");
        assert!(
            e.to_string().contains("built without the sandbox feature"),
            "{e}"
        );
    }

    const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: api, namespace: it-ops}\nstringData: {apiKey: k}\n";

    fn server(name: &str) -> String {
        format!(
            "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: {name}, namespace: it-ops}}\nspec:\n  atomicwork:\n    baseUrl: https://acme.atomicwork.com\n    apiKeySecretRef: {{name: api}}\n  methods: [read]\n"
        )
    }

    /// A loader over `<dir>/manifests` with its state in `<dir>/state`.
    fn loader(dir: &Path) -> Loader {
        let catalog = Arc::new(Catalog::builtin().expect("catalog"));
        Loader::new(
            catalog,
            dir.join("manifests"),
            BaseUrl::parse("http://127.0.0.1:1").expect("a test base URL"),
            ResolveOptions::default(),
            &dir.join("state"),
        )
        .expect("loader")
    }

    /// Server id → URL of the servers served by a complete pass.
    fn urls(pass: &Pass) -> BTreeMap<String, String> {
        let Pass::Loaded(loaded) = pass else {
            panic!("the manifests were not read")
        };
        loaded
            .lines
            .iter()
            .filter_map(|l| Some((l.id.to_string(), l.outcome.clone().ok()?)))
            .collect()
    }

    fn load(loader: &mut Loader) -> Pass {
        loader.load(Timestamp::now()).expect("load")
    }

    fn stored(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("state/tokens.json")).expect("token file")
    }

    fn setup() -> (tempfile::TempDir, Loader, BTreeMap<String, String>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let manifests = dir.path().join("manifests");
        std::fs::create_dir(&manifests).expect("mkdir");
        std::fs::write(
            manifests.join("a.yaml"),
            format!("{SECRET}---\n{}", server("a")),
        )
        .expect("write");
        std::fs::write(manifests.join("b.yaml"), server("b")).expect("write");
        let mut l = loader(dir.path());
        let first = urls(&load(&mut l));
        assert_eq!(first.len(), 2, "{first:?}");
        (dir, l, first)
    }

    #[test]
    fn a_read_failure_changes_nothing() {
        let (dir, mut l, first) = setup();
        let before = stored(dir.path());
        // EMFILE while reading one file: nothing is dropped, the store is untouched.
        l.read = Arc::new(|p: &Path| {
            if p.ends_with("b.yaml") {
                Err(std::io::Error::from_raw_os_error(24))
            } else {
                std::fs::read_to_string(p)
            }
        });
        for _ in 0..3 {
            let Pass::Unreadable(errors) = load(&mut l) else {
                panic!("a failed read is not a complete pass")
            };
            assert!(unreadable_notice(&errors).contains("b.yaml: cannot read"));
        }
        assert_eq!(stored(dir.path()), before);
        l.read = Arc::new(|p: &Path| std::fs::read_to_string(p));
        assert_eq!(urls(&load(&mut l)), first);
        assert_eq!(stored(dir.path()), before);
    }

    #[test]
    fn a_missing_manifest_directory_changes_nothing() {
        let (dir, mut l, first) = setup();
        let manifests = dir.path().join("manifests");
        let away = dir.path().join("away");
        std::fs::rename(&manifests, &away).expect("rename away");
        for _ in 0..3 {
            assert!(matches!(load(&mut l), Pass::Unreadable(_)));
        }
        std::fs::rename(&away, &manifests).expect("rename back");
        assert_eq!(urls(&load(&mut l)), first);
    }

    #[test]
    fn a_parse_failure_keeps_the_token() {
        let (dir, mut l, first) = setup();
        let b = dir.path().join("manifests/b.yaml");
        // Not YAML: nothing in the file can be told apart, so nothing is gone.
        std::fs::write(&b, "apiVersion: [\n").expect("write");
        for _ in 0..3 {
            let served = urls(&load(&mut l));
            assert!(!served.contains_key("it-ops/b"));
        }
        assert!(stored(dir.path()).contains("it-ops/b"));
        // An unknown field: the server is known to exist and is not served.
        std::fs::write(&b, server("b") + "  metods: [read]\n").expect("write");
        for _ in 0..3 {
            let pass = load(&mut l);
            let Pass::Loaded(loaded) = &pass else {
                panic!("read")
            };
            let line = loaded
                .lines
                .iter()
                .find(|line| line.id.name == "b")
                .expect("listed");
            let why = line.outcome.clone().expect_err("not served");
            assert!(why.contains("b.yaml (document 1)"), "{why}");
        }
        std::fs::write(&b, server("b")).expect("write");
        assert_eq!(urls(&load(&mut l)), first);
    }

    #[test]
    fn a_removed_document_drops_the_token_once_confirmed() {
        let (dir, mut l, first) = setup();
        let a = dir.path().join("manifests/a.yaml");
        // Removed for one pass only (a file rewritten in place): kept.
        std::fs::write(&a, SECRET).expect("write");
        let Pass::Loaded(loaded) = load(&mut l) else {
            panic!("read")
        };
        assert!(loaded.forgotten.is_empty());
        assert!(l.confirming());
        std::fs::write(&a, format!("{SECRET}---\n{}", server("a"))).expect("write");
        assert_eq!(urls(&load(&mut l)), first);
        assert!(!l.confirming());
        // Removed and still removed at the next pass: dropped.
        std::fs::write(&a, SECRET).expect("write");
        let _ = load(&mut l);
        let Pass::Loaded(loaded) = load(&mut l) else {
            panic!("read")
        };
        assert_eq!(loaded.forgotten, ["it-ops/a"]);
        assert!(!stored(dir.path()).contains("it-ops/a"));
        std::fs::write(&a, format!("{SECRET}---\n{}", server("a"))).expect("write");
        let again = urls(&load(&mut l));
        assert_ne!(again["it-ops/a"], first["it-ops/a"], "a new URL");
        assert_eq!(again["it-ops/b"], first["it-ops/b"]);
    }

    #[test]
    fn a_deleted_file_drops_the_token_once_confirmed() {
        let (dir, mut l, first) = setup();
        let b = dir.path().join("manifests/b.yaml");
        std::fs::remove_file(&b).expect("rm");
        let Pass::Loaded(loaded) = load(&mut l) else {
            panic!("read")
        };
        assert!(loaded.forgotten.is_empty());
        assert!(stored(dir.path()).contains("it-ops/b"));
        let Pass::Loaded(loaded) = load(&mut l) else {
            panic!("read")
        };
        assert_eq!(loaded.forgotten, ["it-ops/b"]);
        assert!(!stored(dir.path()).contains("it-ops/b"));
        assert_eq!(urls(&Pass::Loaded(loaded))["it-ops/a"], first["it-ops/a"]);
    }

    #[test]
    fn a_failed_save_leaves_the_store_as_it_was() {
        let (dir, mut l, _) = setup();
        let before = l.store.file.clone();
        std::fs::write(dir.path().join("manifests/c.yaml"), server("c")).expect("write");
        // The state directory cannot take the new file: a directory where the temporary
        // file would go.
        std::fs::create_dir(dir.path().join("state/tokens.json.tmp")).expect("mkdir");
        assert!(l.load(Timestamp::now()).is_err());
        assert_eq!(l.store.file, before, "the store changes only with a save");
    }
}
