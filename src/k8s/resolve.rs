//! From an `AtomicworkMcpServer` and the Secrets it names to the server the data plane
//! serves, or the reason it cannot be served. Pure: the controller (which hands the result
//! to the data plane as a runtime record) and local mode both call this, so a manifest
//! means the same thing everywhere.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret as K8sSecret;

use crate::core::base_url::BaseUrl;
use crate::core::catalog::{
    Catalog, ToolFilter, ToolOverride, ToolOverrides, ToolSet, ToolSetKind, filter,
};
use crate::core::confirm::{self, ConfirmPolicy, ConfirmTools, LegacyClients};
use crate::core::oauth::{ClassScopes, DEFAULT_USER_CLAIM, OAuthSettings};
use crate::core::secret::{Secret, TokenHash};
use crate::core::server::{DEFAULT_MAX_RESULT_CHARS, RetryPolicy, Target};
use crate::core::server::{Exposure, RateLimitSettings, ServerId, ServerView};
use crate::k8s::crd::{AtomicworkMcpServer, OAuth, ToolExposure, ToolSetName};

/// A `complete` server without `toolExposure` lists its tools in discovery exposure when
/// it would list more than this many.
pub(crate) const COMPLETE_DISCOVERY_ABOVE: usize = 60;

/// Shortest lifetime a server may be created with.
pub(crate) const MIN_LIFETIME: Duration = Duration::from_secs(60);

/// Secret data by key, as the API server returns it (already base64-decoded).
pub type SecretData = BTreeMap<String, Vec<u8>>;

/// A Secret's values as the API server would store them: `data` decoded, `stringData` on top.
pub(crate) fn secret_data(secret: &K8sSecret) -> SecretData {
    let mut out: SecretData = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        out.insert(k.clone(), v.clone().into_bytes());
    }
    out
}

/// Where Secrets are read from: the cluster cache or local manifests.
pub trait SecretLookup {
    fn secret(&self, namespace: &str, name: &str) -> Option<SecretData>;
}

impl SecretLookup for BTreeMap<(String, String), SecretData> {
    fn secret(&self, namespace: &str, name: &str) -> Option<SecretData> {
        self.get(&(namespace.to_string(), name.to_string()))
            .cloned()
    }
}

/// Settings that come from the deployment rather than the resource.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions {
    /// Replaces every server's tenant URL (local mode's sandbox).
    pub base_url_override: Option<BaseUrl>,
    /// Added to every tool result (local mode's sandbox label).
    pub notice: Option<Arc<str>>,
    /// Base of the connector URLs (`<public_url>/mcp/<token>`), which OAuth servers
    /// need: by default their tokens must be issued for that URL. The controller and
    /// local mode set it.
    pub public_url: Option<BaseUrl>,
    /// The deployment's approval key, from which each server's key for sealing approval
    /// requests is derived (`spec.confirm`). The controller and local mode set it.
    pub confirm_key: Option<Secret>,
}

/// Why a server is not served. Each maps to a condition reason and a message saying what
/// to fix; none carries a secret value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The spec cannot be served as written; the message starts with the path of the
    /// field at fault, e.g. `spec.maxResultChars: ...`.
    #[error("{0}")]
    InvalidSpec(String),
    #[error("Secret {namespace}/{name} ({purpose}) not found; create it or fix {field}")]
    SecretNotFound {
        namespace: String,
        name: String,
        purpose: &'static str,
        field: &'static str,
    },
    #[error(
        "Secret {namespace}/{name} has no usable value under key {key:?} ({purpose}); add it or fix {field}"
    )]
    SecretKeyMissing {
        namespace: String,
        name: String,
        key: String,
        purpose: &'static str,
        field: &'static str,
    },
    #[error(
        "no tool matches the filters (methods, tags, tools); widen them, e.g. preview with `atomicwork-mcp tools --methods ... --tags ...`"
    )]
    NoToolsMatched,
    #[error("expired at {0}; move spec.expiresAt into the future to mint a new token")]
    Expired(Timestamp),
}

impl Problem {
    /// The condition reason.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Problem::InvalidSpec(_) => "InvalidSpec",
            Problem::SecretNotFound { .. } => "SecretNotFound",
            Problem::SecretKeyMissing { .. } => "SecretKeyMissing",
            Problem::NoToolsMatched => "NoToolsMatched",
            Problem::Expired(_) => "Expired",
        }
    }

    /// The manifest field the problem is about, as a path such as `spec.rateLimit.burst`,
    /// when it is about one. `InvalidSpec` messages start with that path.
    pub(crate) fn field(&self) -> Option<&str> {
        match self {
            Problem::InvalidSpec(message) => {
                let end = message
                    .find(|c: char| {
                        !(c.is_ascii_alphanumeric() || matches!(c, '.' | '[' | ']' | '_' | '-'))
                    })
                    .unwrap_or(message.len());
                let path = message[..end].trim_end_matches('.');
                path.starts_with("spec").then_some(path)
            }
            Problem::SecretNotFound { field, .. } | Problem::SecretKeyMissing { field, .. } => {
                Some(field)
            }
            Problem::Expired(_) => Some("spec.expiresAt"),
            Problem::NoToolsMatched => None,
        }
    }
}

/// The outcome of resolving one resource.
#[derive(Debug)]
pub struct Resolution {
    pub(crate) id: ServerId,
    /// The filtered tools (empty when the filters are invalid).
    pub(crate) tools: Arc<ToolSet>,
    pub(crate) expires_at: Option<Timestamp>,
    /// The server to serve, or why not.
    pub view: Result<ServerView, Problem>,
}

/// Resolves a resource against the catalog and its Secrets at `now`.
pub fn resolve(
    server: &AtomicworkMcpServer,
    secrets: &dyn SecretLookup,
    catalog: &Catalog,
    now: Timestamp,
    opts: &ResolveOptions,
) -> Resolution {
    let id = ServerId::new(
        server
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into()),
        server.metadata.name.clone().unwrap_or_default(),
    );
    let expires_at = parse_expiry(server);
    let filtered = filter(catalog, &tool_filter(server))
        .map_err(|e| Problem::InvalidSpec(format!("{}: {e}", e.field())));
    let names: Vec<String> = filtered
        .as_ref()
        .map(|tools| tools.iter().map(|t| t.name().to_string()).collect())
        .unwrap_or_default();
    let shaped = catalog.shaped_tool_set(tool_set(server), &names, &tool_overrides_of(server));
    let (tools, shaping) = match shaped {
        Ok(set) => (set, Ok(())),
        Err(e) => (
            catalog.tool_set_of(tool_set(server), &names),
            Err(Problem::InvalidSpec(e.to_string())),
        ),
    };
    let view = filtered.and_then(|_| {
        shaping?;
        let expires_at = expires_at.clone()?;
        build_view(server, &id, &tools, expires_at, secrets, now, opts)
    });
    Resolution {
        id,
        tools,
        expires_at: expires_at.ok().flatten(),
        view,
    }
}

fn build_view(
    server: &AtomicworkMcpServer,
    id: &ServerId,
    tools: &Arc<ToolSet>,
    expires_at: Option<Timestamp>,
    secrets: &dyn SecretLookup,
    now: Timestamp,
    opts: &ResolveOptions,
) -> Result<ServerView, Problem> {
    let spec = &server.spec;
    crate::k8s::spec_check::check_rules(spec).map_err(Problem::InvalidSpec)?;
    crate::k8s::spec_check::check_bounds(spec).map_err(Problem::InvalidSpec)?;
    check_lifetime(server, expires_at)?;
    let base_url = match &opts.base_url_override {
        Some(url) => url.clone(),
        None => BaseUrl::parse(&spec.atomicwork.base_url).map_err(|e| {
            Problem::InvalidSpec(format!(
                "spec.atomicwork.baseUrl {:?} {e}; use e.g. https://acme.atomicwork.com",
                spec.atomicwork.base_url
            ))
        })?,
    };
    let rate_limit = spec.rate_limit.map(|r| RateLimitSettings {
        per_minute: r.requests_per_minute.max(1),
        burst: r.burst.unwrap_or((r.requests_per_minute / 6).max(1)).max(1),
    });
    if spec.require_api_token_auth && spec.api_token_secret_ref.is_none() {
        return Err(Problem::InvalidSpec(
            "spec.apiTokenSecretRef is required when spec.requireApiTokenAuth is true".into(),
        ));
    }
    let oauth = match spec.auth.as_ref().and_then(|a| a.oauth.as_ref()) {
        Some(o) => Some(Arc::new(oauth_settings(o, spec, opts)?)),
        None => None,
    };
    let confirm = confirm_policy(spec, id, opts)?;
    let api_key = api_key(server, &id.namespace, secrets)?;
    let client_tokens = client_tokens(server, &id.namespace, secrets)?;
    if tools.is_empty() {
        return Err(Problem::NoToolsMatched);
    }
    if let Some(at) = expires_at
        && now >= at
    {
        return Err(Problem::Expired(at));
    }
    Ok(ServerView {
        id: id.clone(),
        id_label: id.to_string().into(),
        display_name: server.display_name(),
        tools: tools.clone(),
        exposure: exposure(server, tools.len()),
        target: Target {
            base_url,
            api_key,
            workspace_id: spec
                .atomicwork
                .workspace_id
                .clone()
                .filter(|w| !w.trim().is_empty()),
            dry_run: spec.dry_run,
            retry: spec.retry.map(|r| RetryPolicy {
                max_attempts: r.max_attempts.clamp(1, 5),
                max_backoff: Duration::from_secs(u64::from(r.max_backoff_seconds.unwrap_or(10))),
            }),
            timeout: spec
                .atomicwork
                .timeout_seconds
                .map(|s| Duration::from_secs(u64::from(s.clamp(1, 300)))),
            max_result_chars: spec
                .max_result_chars
                .map(|c| c as usize)
                .unwrap_or(DEFAULT_MAX_RESULT_CHARS),
            notice: opts.notice.clone(),
        },
        expires_at,
        suspended: spec.suspend,
        client_tokens,
        rate_limit,
        limiter: None,
        confirm,
        oauth,
        user_limiter: None,
    })
}

/// The OAuth settings of a server, with their defaults filled in.
fn oauth_settings(
    o: &OAuth,
    spec: &crate::k8s::crd::AtomicworkMcpServerSpec,
    opts: &ResolveOptions,
) -> Result<OAuthSettings, Problem> {
    let public_url = opts.public_url.clone().ok_or_else(|| {
            Problem::InvalidSpec(
                "spec.auth.oauth needs the connector URL's base, and this deployment has no public URL; set --public-url".into(),
            )
        })?;
    let scopes = o.scopes.clone().unwrap_or_default();
    let defaults = ClassScopes::default();
    let list = |given: Option<Vec<String>>, default: Vec<String>| {
        given.map_or(default, |l| {
            let mut out: Vec<String> = Vec::new();
            for s in l.into_iter().map(|s| s.trim().to_string()) {
                if !s.is_empty() && !out.contains(&s) {
                    out.push(s);
                }
            }
            out
        })
    };
    Ok(OAuthSettings {
        issuer: o.issuer.trim().to_string(),
        audience: o
            .audience
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string),
        public_url,
        scopes: ClassScopes {
            read: list(scopes.read, defaults.read),
            write: list(scopes.write, defaults.write),
            custom: list(scopes.custom, defaults.custom),
        },
        user_claim: o
            .user_claim
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .unwrap_or(DEFAULT_USER_CLAIM)
            .to_string(),
        per_user: spec
            .rate_limit
            .and_then(|r| r.per_user)
            .map(|p| RateLimitSettings {
                per_minute: p.requests_per_minute.max(1),
                burst: p.burst.unwrap_or((p.requests_per_minute / 6).max(1)).max(1),
            }),
    })
}

/// The resource's `toolOverrides` in the catalog's terms.
pub fn tool_overrides_of(server: &AtomicworkMcpServer) -> ToolOverrides {
    let Some(specs) = &server.spec.tool_overrides else {
        return ToolOverrides::new();
    };
    specs
        .iter()
        .map(|(tool, o)| {
            let annotations = o
                .annotations
                .map(|a| crate::core::catalog::AnnotationOverrides {
                    read_only_hint: a.read_only_hint,
                    destructive_hint: a.destructive_hint,
                    idempotent_hint: a.idempotent_hint,
                    open_world_hint: a.open_world_hint,
                });
            let values = |m: &Option<BTreeMap<String, serde_json::Value>>| {
                m.iter()
                    .flatten()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            };
            let shaped = ToolOverride {
                name: o.name.clone(),
                title: o.title.clone(),
                description: o.description.clone(),
                annotations,
                defaults: values(&o.defaults),
                fixed: values(&o.fixed),
            };
            (tool.clone(), shaped)
        })
        .collect()
}

/// The built-in tool set the resource draws from.
pub(crate) fn tool_set(server: &AtomicworkMcpServer) -> ToolSetKind {
    match server.spec.tool_set.unwrap_or_default() {
        ToolSetName::Curated => ToolSetKind::Curated,
        ToolSetName::Complete => ToolSetKind::Complete,
    }
}

/// How the resource's `tool_count` tools are listed: `toolExposure` when set; else
/// discovery for a `complete` server with more than [`COMPLETE_DISCOVERY_ABOVE`] tools,
/// and every tool otherwise.
pub(crate) fn exposure(server: &AtomicworkMcpServer, tool_count: usize) -> Exposure {
    match server.spec.tool_exposure {
        Some(ToolExposure::All) => Exposure::All,
        Some(ToolExposure::Discovery) => Exposure::Discovery,
        None if tool_set(server) == ToolSetKind::Complete
            && tool_count > COMPLETE_DISCOVERY_ABOVE =>
        {
            Exposure::Discovery
        }
        None => Exposure::All,
    }
}

/// The resource's `toolSet`, `methods`, `tags` and `tools` as a catalog filter.
pub fn tool_filter(server: &AtomicworkMcpServer) -> ToolFilter {
    let spec = &server.spec;
    let names = spec.tools.clone().unwrap_or_default();
    ToolFilter {
        set: tool_set(server),
        methods: spec.methods.clone(),
        tags: spec.tags.clone(),
        allow: names.allow,
        deny: names.deny,
    }
}

/// `spec.expiresAt` as an instant.
pub(crate) fn parse_expiry(server: &AtomicworkMcpServer) -> Result<Option<Timestamp>, Problem> {
    match server.spec.expires_at.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text.parse::<Timestamp>().map(Some).map_err(|e| {
            Problem::InvalidSpec(format!(
                "spec.expiresAt {text:?} is not an RFC 3339 instant such as 2026-12-31T23:59:59Z: {e}"
            ))
        }),
    }
}

fn check_lifetime(
    server: &AtomicworkMcpServer,
    expires_at: Option<Timestamp>,
) -> Result<(), Problem> {
    let (Some(at), Some(created)) = (expires_at, server.metadata.creation_timestamp.as_ref())
    else {
        return Ok(());
    };
    let lifetime = at.duration_since(created.0);
    if lifetime < jiff::SignedDuration::from_secs(MIN_LIFETIME.as_secs() as i64) {
        return Err(Problem::InvalidSpec(format!(
            "spec.expiresAt {at} is less than {}s after the resource was created ({}); set it further ahead",
            MIN_LIFETIME.as_secs(),
            created.0
        )));
    }
    Ok(())
}

/// The server's approval policy with its own sealing key; `None` when no call needs
/// approval.
fn confirm_policy(
    spec: &crate::k8s::crd::AtomicworkMcpServerSpec,
    id: &ServerId,
    opts: &ResolveOptions,
) -> Result<Option<Arc<ConfirmPolicy>>, Problem> {
    use crate::k8s::crd::{ConfirmToolsSpec, LegacyClientsSpec};
    let Some(c) = &spec.confirm else {
        return Ok(None);
    };
    let tools = match c.tools {
        ConfirmToolsSpec::None => return Ok(None),
        ConfirmToolsSpec::Destructive => ConfirmTools::Destructive,
        ConfirmToolsSpec::Writes => ConfirmTools::Writes,
    };
    let master = opts
        .confirm_key
        .as_ref()
        .and_then(confirm::key_bytes)
        .ok_or_else(|| {
            Problem::InvalidSpec(
                "spec.confirm: this deployment has no approval key to seal approval requests with; the controller creates one at start (check its logs)".into(),
            )
        })?;
    Ok(Some(Arc::new(ConfirmPolicy {
        tools,
        legacy_clients: match c.legacy_clients {
            LegacyClientsSpec::Refuse => LegacyClients::Refuse,
            LegacyClientsSpec::Allow => LegacyClients::Allow,
        },
        ttl: Duration::from_secs(u64::from(
            c.ttl_seconds
                .unwrap_or(confirm::DEFAULT_TTL_SECONDS)
                .clamp(30, 3600),
        )),
        key: confirm::server_key(&master, &id.to_string()),
    })))
}

fn api_key(
    server: &AtomicworkMcpServer,
    namespace: &str,
    secrets: &dyn SecretLookup,
) -> Result<Secret, Problem> {
    let r = &server.spec.atomicwork.api_key_secret_ref;
    let data = secrets
        .secret(namespace, &r.name)
        .ok_or_else(|| Problem::SecretNotFound {
            namespace: namespace.into(),
            name: r.name.clone(),
            purpose: "Atomicwork API key",
            field: "spec.atomicwork.apiKeySecretRef",
        })?;
    let missing = || Problem::SecretKeyMissing {
        namespace: namespace.into(),
        name: r.name.clone(),
        key: r.key.clone(),
        purpose: "Atomicwork API key",
        field: "spec.atomicwork.apiKeySecretRef.key",
    };
    let value = data.get(&r.key).ok_or_else(missing)?;
    let text = std::str::from_utf8(value).map_err(|_| missing())?.trim();
    if text.is_empty() || text.contains(['\r', '\n']) {
        return Err(missing());
    }
    Ok(Secret::new(text))
}

fn client_tokens(
    server: &AtomicworkMcpServer,
    namespace: &str,
    secrets: &dyn SecretLookup,
) -> Result<Option<Arc<[TokenHash]>>, Problem> {
    let spec = &server.spec;
    let (true, Some(r)) = (
        spec.require_api_token_auth,
        spec.api_token_secret_ref.as_ref(),
    ) else {
        return Ok(None);
    };
    let data = secrets
        .secret(namespace, &r.name)
        .ok_or_else(|| Problem::SecretNotFound {
            namespace: namespace.into(),
            name: r.name.clone(),
            purpose: "client bearer tokens",
            field: "spec.apiTokenSecretRef",
        })?;
    let hashes: Vec<TokenHash> = data
        .values()
        .filter_map(|v| std::str::from_utf8(v).ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(TokenHash::of)
        .collect();
    if hashes.is_empty() {
        return Err(Problem::SecretKeyMissing {
            namespace: namespace.into(),
            name: r.name.clone(),
            key: "(any)".into(),
            purpose: "client bearer tokens",
            field: "spec.apiTokenSecretRef",
        });
    }
    Ok(Some(hashes.into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::oauth::ClassScopes;

    fn resolved(extra_spec: &str) -> Result<ServerView, Problem> {
        resolved_with(extra_spec, Some("https://mcp.example.com/"))
    }

    fn resolved_with(extra_spec: &str, public_url: Option<&str>) -> Result<ServerView, Problem> {
        let yaml = format!(
            "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {{name: s, namespace: n}}\nspec:\n  atomicwork:\n    baseUrl: https://acme.atomicwork.com\n    apiKeySecretRef: {{name: api}}\n{extra_spec}"
        );
        let server: AtomicworkMcpServer = serde_saphyr::from_str(&yaml).expect("manifest");
        let mut secrets = BTreeMap::new();
        secrets.insert(
            ("n".to_string(), "api".to_string()),
            BTreeMap::from([("apiKey".to_string(), b"key".to_vec())]),
        );
        let catalog = Catalog::builtin().expect("catalog");
        let opts = ResolveOptions {
            public_url: public_url.map(|u| BaseUrl::parse(u).expect("a test URL")),
            ..ResolveOptions::default()
        };
        resolve(&server, &secrets, &catalog, Timestamp::now(), &opts).view
    }

    #[test]
    fn oauth_settings_take_their_defaults() {
        let view = resolved("  auth:\n    oauth:\n      issuer: https://idp.example.com/realms/it\n      audience: \"\"\n")
            .expect("resolves");
        let o = view.oauth.as_deref().expect("oauth");
        assert_eq!(o.issuer, "https://idp.example.com/realms/it");
        assert_eq!(
            o.audience, None,
            "an empty audience means the connector URL"
        );
        assert_eq!(o.public_url, "https://mcp.example.com");
        assert_eq!(o.resource("tok"), "https://mcp.example.com/mcp/tok");
        assert_eq!(o.scopes, ClassScopes::default());
        assert_eq!(o.scopes.read, ["atomicwork.read"]);
        assert_eq!(o.scopes.write, ["atomicwork.write"]);
        assert_eq!(o.scopes.custom, ["atomicwork.write"]);
        assert_eq!(o.user_claim, "sub");
        assert_eq!(o.per_user, None);
        assert!(view.client_tokens.is_none());
        // Without it, a server has no OAuth settings.
        assert!(resolved("").expect("resolves").oauth.is_none());
    }

    #[test]
    fn oauth_settings_as_written() {
        let view = resolved(
            "  rateLimit:\n    requestsPerMinute: 600\n    perUser: {requestsPerMinute: 60}\n  auth:\n    oauth:\n      issuer: http://127.0.0.1:9000\n      audience: api://atomicwork\n      userClaim: email\n      scopes:\n        read: [aw.read, aw.read]\n        write: [aw.read, aw.write]\n        custom: []\n",
        )
        .expect("resolves");
        let o = view.oauth.as_deref().expect("oauth");
        assert_eq!(o.issuer, "http://127.0.0.1:9000");
        assert_eq!(o.audience.as_deref(), Some("api://atomicwork"));
        assert_eq!(o.resource("tok"), "api://atomicwork");
        assert_eq!(o.scopes.read, ["aw.read"], "listed once");
        assert_eq!(o.scopes.write, ["aw.read", "aw.write"]);
        assert!(o.scopes.custom.is_empty());
        assert_eq!(o.user_claim, "email");
        assert_eq!(
            o.per_user,
            Some(RateLimitSettings {
                per_minute: 60,
                burst: 10
            })
        );
        assert_eq!(view.rate_limit.map(|r| r.per_minute), Some(600));
    }

    #[test]
    fn oauth_refusals_name_their_fields() {
        const OAUTH: &str = "  auth:\n    oauth:\n      issuer: https://idp.example.com\n";
        let cases = [
            (
                format!("{OAUTH}  requireApiTokenAuth: true\n  apiTokenSecretRef: {{name: t}}\n"),
                "spec.auth.oauth",
                "spec.requireApiTokenAuth",
            ),
            (
                "  rateLimit:\n    requestsPerMinute: 60\n    perUser: {requestsPerMinute: 6}\n"
                    .to_string(),
                "spec.rateLimit.perUser",
                "spec.auth.oauth",
            ),
            (
                "  auth:\n    oauth:\n      issuer: http://idp.example.com\n".to_string(),
                "spec.auth.oauth.issuer",
                "localhost",
            ),
            (
                "  auth:\n    oauth:\n      issuer: https://idp.example.com?realm=it\n".to_string(),
                "spec.auth.oauth.issuer",
                "query",
            ),
            (
                format!("{OAUTH}      scopes: {{read: [\"a b\"]}}\n"),
                "spec.auth.oauth.scopes.read[0]",
                "does not match",
            ),
            (
                format!("{OAUTH}      scopes: {{write: ['say\"hi']}}\n"),
                "spec.auth.oauth.scopes.write[0]",
                "does not match",
            ),
            (
                format!("{OAUTH}      userClaim: \"\"\n"),
                "spec.auth.oauth.userClaim",
                "",
            ),
            (
                format!(
                    "{OAUTH}  rateLimit:\n    requestsPerMinute: 60\n    perUser: {{requestsPerMinute: 0}}\n"
                ),
                "spec.rateLimit.perUser.requestsPerMinute",
                "minimum",
            ),
        ];
        for (spec, field, mentions) in cases {
            let problem = resolved(&spec).expect_err(&spec);
            assert_eq!(problem.reason(), "InvalidSpec", "{spec}: {problem}");
            assert_eq!(problem.field(), Some(field), "{spec}: {problem}");
            assert!(problem.to_string().contains(mentions), "{spec}: {problem}");
        }
        // An OAuth server needs the connector URL's base.
        let problem = resolved_with(OAUTH, None).expect_err("no public URL");
        assert!(problem.to_string().contains("--public-url"), "{problem}");
    }

    #[test]
    fn the_crd_bounds_apply_when_resolving() {
        assert!(resolved("  maxResultChars: 1000\n").is_ok());
        for (spec, field) in [
            ("  maxResultChars: 0\n", "spec.maxResultChars"),
            (
                "  rateLimit: {requestsPerMinute: 0}\n",
                "spec.rateLimit.requestsPerMinute",
            ),
            (
                "    timeoutSeconds: 100000\n",
                "spec.atomicwork.timeoutSeconds",
            ),
            ("  retry: {maxAttempts: 9}\n", "spec.retry.maxAttempts"),
        ] {
            let problem = resolved(spec).expect_err(spec);
            assert_eq!(problem.reason(), "InvalidSpec", "{spec}: {problem}");
            assert_eq!(problem.field(), Some(field), "{spec}: {problem}");
        }
    }

    #[test]
    fn the_tool_set_decides_which_tools_the_filters_pick_from() {
        let curated = resolved("").expect("curated");
        assert_eq!(curated.tools.kind(), ToolSetKind::Curated);
        assert_eq!(curated.tools.len(), 37);
        let complete = resolved("  toolSet: complete\n").expect("complete");
        assert_eq!(complete.tools.kind(), ToolSetKind::Complete);
        assert!(complete.tools.len() > 100, "{}", complete.tools.len());
        // methods and tags apply the same way.
        let read_tags = resolved("  toolSet: complete\n  methods: [read]\n  tags: [tags]\n")
            .expect("read tags");
        assert_eq!(
            read_tags.tools.names(),
            [
                "get_single_atomicwork_tag_by_id",
                "list_all_atomicwork_tags"
            ]
        );
        // allow and deny name tools of the chosen set: a tool of the complete set alone is
        // unknown to a curated server, and the other way round.
        let problem = resolved("  tools: {allow: [list_all_atomicwork_tags]}\n")
            .expect_err("not a curated tool");
        assert_eq!(problem.field(), Some("spec.tools.allow"), "{problem}");
        let problem =
            resolved("  toolSet: complete\n  tools: {deny: [create_a_atomicwork_attachment]}\n")
                .expect_err("not a complete tool");
        assert_eq!(problem.field(), Some("spec.tools.deny"), "{problem}");
        assert!(problem.to_string().contains("complete"), "{problem}");
        let bad = "apiVersion: mcp.atomicwork.dev/v1alpha1\nkind: AtomicworkMcpServer\nmetadata: {name: s, namespace: n}\nspec:\n  atomicwork:\n    baseUrl: https://acme.atomicwork.com\n    apiKeySecretRef: {name: api}\n  toolSet: everything\n";
        let err = serde_saphyr::from_str::<AtomicworkMcpServer>(bad).expect_err("unknown set");
        assert!(err.to_string().contains("everything"), "{err}");
    }

    #[test]
    fn an_unset_exposure_is_discovery_only_for_a_large_complete_server() {
        let exposure = |spec: &str| resolved(spec).expect(spec).exposure;
        assert_eq!(exposure(""), Exposure::All);
        assert_eq!(exposure("  toolSet: curated\n"), Exposure::All);
        assert_eq!(exposure("  toolSet: complete\n"), Exposure::Discovery);
        assert_eq!(
            exposure("  toolSet: complete\n  toolExposure: all\n"),
            Exposure::All
        );
        assert_eq!(
            exposure("  toolSet: complete\n  tags: [tags]\n"),
            Exposure::All,
            "five tools: listed in full"
        );
        assert_eq!(
            exposure("  toolSet: complete\n  tags: [tags]\n  toolExposure: discovery\n"),
            Exposure::Discovery
        );
        assert_eq!(exposure("  toolExposure: discovery\n"), Exposure::Discovery);
        // Exactly at the threshold the server still lists every tool; one more and it
        // switches.
        let at = resolved("  toolSet: complete\n").expect("complete");
        let names: Vec<String> = at.tools.names();
        let allow = |n: usize| {
            format!(
                "  toolSet: complete\n  tools:\n    allow: [{}]\n",
                names[..n].join(", ")
            )
        };
        assert_eq!(exposure(&allow(COMPLETE_DISCOVERY_ABOVE)), Exposure::All);
        assert_eq!(
            exposure(&allow(COMPLETE_DISCOVERY_ABOVE + 1)),
            Exposure::Discovery
        );
    }

    #[test]
    fn tool_overrides_shape_the_served_tools_and_errors_name_the_field() {
        let view = resolved(
            "  toolSet: complete\n  tags: [tags]\n  toolOverrides:\n    list_all_atomicwork_tags:\n      name: list_labels\n      description: Lists the labels of the service desk.\n      defaults: {per_page: 50}\n      fixed: {context_type: REQUEST}\n      annotations: {openWorldHint: true}\n",
        )
        .expect("resolves");
        assert!(view.tools.get("list_labels").is_some());
        assert!(view.tools.get("list_all_atomicwork_tags").is_none());
        let tool = view.tools.get("list_labels").expect("renamed");
        assert!(tool.annotations.open_world_hint);
        assert!(
            tool.input_schema["properties"]
                .get("context_type")
                .is_none()
        );
        for (spec, field) in [
            (
                "  toolOverrides:\n    list_all_atomicwork_tags: {title: Labels}\n",
                "spec.toolOverrides.list_all_atomicwork_tags",
            ),
            (
                "  toolOverrides:\n    list_all_atomicwork_audit_logs: {name: 'no spaces'}\n",
                "spec.toolOverrides.list_all_atomicwork_audit_logs.name",
            ),
            (
                "  toolOverrides:\n    list_all_atomicwork_audit_logs: {fixed: {per_page: 0}}\n",
                "spec.toolOverrides.list_all_atomicwork_audit_logs.fixed.per_page",
            ),
        ] {
            let problem = resolved(spec).expect_err(spec);
            assert_eq!(problem.reason(), "InvalidSpec", "{problem}");
            assert_eq!(problem.field(), Some(field), "{problem}");
        }
    }

    #[test]
    fn problems_name_their_field() {
        let p = Problem::InvalidSpec("spec.methods: unknown method \"reed\"".into());
        assert_eq!(p.field(), Some("spec.methods"));
        let p = Problem::InvalidSpec("spec.atomicwork.baseUrl \"x\" is not a URL".into());
        assert_eq!(p.field(), Some("spec.atomicwork.baseUrl"));
        let p = Problem::InvalidSpec("spec.methods[2]: bad".into());
        assert_eq!(p.field(), Some("spec.methods[2]"));
        assert_eq!(Problem::InvalidSpec("something else".into()).field(), None);
        assert_eq!(Problem::NoToolsMatched.field(), None);
    }
}
