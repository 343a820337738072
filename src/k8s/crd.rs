//! The `AtomicworkMcpServer` custom resource (`mcp.atomicwork.dev/v1alpha1`).
//!
//! Doc comments on fields become the CRD's field descriptions (`kubectl explain awmcp.spec`),
//! so they are written for the person writing a manifest.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// API group of the custom resource.
pub(crate) const GROUP: &str = "mcp.atomicwork.dev";
/// Annotation whose value change mints a new URL token.
pub const ROTATE_ANNOTATION: &str = "mcp.atomicwork.dev/rotate-token";
/// Default key of the API-key Secret.
pub(crate) const DEFAULT_API_KEY_KEY: &str = "apiKey";

/// CEL rule on the spec: OAuth access tokens and static bearer tokens exclude each other.
/// `k8s::spec_check::check_rules` applies the same rule wherever a resource is resolved,
/// for API servers without CEL (before 1.25) and for local mode.
pub(crate) const OAUTH_OR_BEARER_RULE: &str = "!(has(self.auth) && has(self.auth.oauth) && has(self.requireApiTokenAuth) && self.requireApiTokenAuth)";
/// The API server's answer when [`OAUTH_OR_BEARER_RULE`] fails.
pub(crate) const OAUTH_OR_BEARER_MESSAGE: &str = "spec.auth.oauth and spec.requireApiTokenAuth cannot both be set: use OAuth access tokens or static bearer tokens, not both";
/// CEL rule on the spec: a per-user rate limit needs OAuth, which names the users.
pub(crate) const PER_USER_NEEDS_OAUTH_RULE: &str = "!(has(self.rateLimit) && has(self.rateLimit.perUser)) || (has(self.auth) && has(self.auth.oauth))";
/// The API server's answer when [`PER_USER_NEEDS_OAUTH_RULE`] fails.
pub(crate) const PER_USER_NEEDS_OAUTH_MESSAGE: &str =
    "spec.rateLimit.perUser needs spec.auth.oauth: only OAuth access tokens tell the users apart";

/// One MCP endpoint that gives an AI client a filtered set of Atomicwork tools.
#[derive(CustomResource, Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "mcp.atomicwork.dev",
    version = "v1alpha1",
    kind = "AtomicworkMcpServer",
    doc = "An MCP endpoint that gives an AI client a filtered set of Atomicwork ITSM tools. The connector URL appears in status.url once Ready.",
    plural = "atomicworkmcpservers",
    shortname = "awmcp",
    category = "atomicwork",
    namespaced,
    status = "AtomicworkMcpServerStatus",
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Tools","type":"integer","jsonPath":".status.toolCount"}"#,
    printcolumn = r#"{"name":"Expires","type":"string","jsonPath":".status.expiresAt"}"#,
    printcolumn = r#"{"name":"Reason","type":"string","priority":1,"jsonPath":".status.conditions[?(@.type==\"Ready\")].reason"}"#,
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {"rule": OAUTH_OR_BEARER_RULE, "message": OAUTH_OR_BEARER_MESSAGE},
    {"rule": PER_USER_NEEDS_OAUTH_RULE, "message": PER_USER_NEEDS_OAUTH_MESSAGE},
]))]
pub struct AtomicworkMcpServerSpec {
    /// Title shown to MCP clients as the server name. Defaults to the resource name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) display_name: Option<String>,

    /// The Atomicwork tenant and the credentials used to call it.
    pub atomicwork: AtomicworkConnection,

    /// Which built-in tool set the filters below pick from: `curated` (the default: 37
    /// hand-written tools for everyday ITSM work) or `complete` (one tool per operation
    /// of Atomicwork's published API, about 130). methods, tags and tools apply to either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_set: Option<ToolSetName>,

    /// Which tool methods to expose: `read` (list and get), `write` (create, update,
    /// delete), `custom` (any other method, e.g. partial_update) or an exact method name.
    /// Omitted or empty: every method. Combined with `tags` by AND.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,

    /// Which tool tags to expose (requests, changes, assets, audit, catalog, workspaces,
    /// users, problems, attachments). A tool matches when any of its tags is listed.
    /// Omitted or empty: every tag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,

    /// Tool-name filters applied after `methods` and `tags`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) tools: Option<ToolNameFilter>,

    /// Per-tool shaping for this server, keyed by the tool's catalog name (one of the
    /// server's tools after methods, tags and tools): the name, title, description and
    /// annotations clients see, argument defaults, and fixed arguments the caller cannot
    /// change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_overrides: Option<std::collections::BTreeMap<String, ToolOverrideSpec>>,

    /// `all` lists every tool with its full schema; `discovery` lists only search_tools,
    /// get_tool_schema and call_tool, which reach the same filtered set on demand and keep
    /// the client's context small. When unset: `all`, except a `complete` server that
    /// would list more than 60 tools, which uses `discovery`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_exposure: Option<ToolExposure>,

    /// RFC 3339 instant after which the endpoint answers every request with 403
    /// (expired) for as long as the resource keeps this value. Must be at least 60
    /// seconds ahead when set. Moving it into the future after it passed mints a new
    /// token (a new URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,

    /// When true, clients must also send `Authorization: Bearer <token>` with one of the
    /// tokens in `apiTokenSecretRef`. Claude.ai custom connectors cannot send static
    /// bearer tokens; use this for Claude Code, SDK agents and other header-capable clients.
    /// Cannot be combined with `auth.oauth`.
    #[serde(default)]
    pub require_api_token_auth: bool,

    /// Secret whose every value is an accepted client bearer token. Required when
    /// `requireApiTokenAuth` is true.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_token_secret_ref: Option<SecretRef>,

    /// When true, write tools validate their arguments and return the request they would
    /// send (API key redacted) without sending it. Read tools still run.
    #[serde(default)]
    pub dry_run: bool,

    /// A person approves calls before they run. MCP 2026-07-28 clients that declare the
    /// elicitation capability show the person a form with exactly what will be sent and
    /// retry the call with the answer; other clients follow `legacyClients`. With
    /// `dryRun`, nothing is sent and nothing is asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<Confirm>,

    /// Request rate limit for this server, enforced by each data plane replica.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,

    /// How people authenticate beyond the URL token. With `oauth`, every request needs an
    /// OAuth 2.1 access token from the issuer, and the token's scopes decide which tools
    /// its holder may see and call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth: Option<Auth>,

    /// Opt-in retries of read tools on rate limiting and upstream failures. Write tools
    /// are never retried.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) retry: Option<RetryPolicy>,

    /// Largest tool result, in characters, returned to the client; longer results are
    /// cut with a note on how to page. Defaults to 150000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1000, max = 10000000))]
    pub(crate) max_result_chars: Option<u32>,

    /// When true, the endpoint refuses calls (HTTP 403) but keeps its token.
    #[serde(default)]
    pub(crate) suspend: bool,
}

/// Which calls need a person's approval, and what clients that cannot ask get.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Confirm {
    /// `none` (default), `destructive` (tools annotated destructiveHint: deletes, moves to
    /// the trash) or `writes` (every tool that is not a read).
    #[serde(default)]
    pub tools: ConfirmToolsSpec,
    /// For clients that cannot ask a person (the initialize-based revisions up to
    /// 2025-11-25, and 2026-07-28 clients without the elicitation capability): `refuse`
    /// (default) answers such a call with an error result saying it needs approval;
    /// `allow` runs it without approval.
    #[serde(default)]
    pub legacy_clients: LegacyClientsSpec,
    /// Seconds an approval request stays valid, 30-3600 (default 300).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 30, max = 3600))]
    pub ttl_seconds: Option<u32>,
}

/// `spec.confirm.tools`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum ConfirmToolsSpec {
    /// No call needs approval.
    #[default]
    None,
    /// Tools annotated destructiveHint need approval.
    Destructive,
    /// Every tool that is not a read needs approval.
    Writes,
}

/// `spec.confirm.legacyClients`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum LegacyClientsSpec {
    /// Refuse calls that need approval.
    #[default]
    Refuse,
    /// Run them without approval.
    Allow,
}

/// Where the Atomicwork tenant is and how to authenticate to it.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AtomicworkConnection {
    /// Tenant base URL, e.g. https://acme.atomicwork.com (API paths under /api/v1 are added).
    #[schemars(regex(pattern = r"^https?://[^\s/?#]+(/[^\s?#]*)?$"))]
    pub(crate) base_url: String,

    /// Secret key holding the Atomicwork API key (sent as X-Api-Key).
    pub api_key_secret_ref: SecretKeyRef,

    /// Default workspace id, used when a call does not name one (X-Workspace-Id and
    /// `{workspace_id}` in paths).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) workspace_id: Option<String>,

    /// Timeout of one upstream call in seconds. Defaults to 30.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 300))]
    pub(crate) timeout_seconds: Option<u32>,
}

/// A key in a Secret in the resource's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretKeyRef {
    /// Secret name.
    #[schemars(length(min = 1))]
    pub(crate) name: String,
    /// Key in the Secret. Defaults to `apiKey`.
    #[serde(default = "default_api_key_key")]
    pub key: String,
}

fn default_api_key_key() -> String {
    DEFAULT_API_KEY_KEY.to_string()
}

/// A Secret in the resource's namespace.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SecretRef {
    /// Secret name.
    #[schemars(length(min = 1))]
    pub(crate) name: String,
}

/// Tool-name filters.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToolNameFilter {
    /// When non-empty, only these tools (of those matching methods and tags).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) allow: Vec<String>,
    /// Tools never exposed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) deny: Vec<String>,
}

/// Which built-in tool set the filters pick from: `curated` (the default: 37 hand-written
/// tools for everyday ITSM work) or `complete` (one tool per operation of Atomicwork's
/// published API, about 130). methods, tags and tools apply to either.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolSetName {
    /// The hand-written tools for everyday ITSM work.
    #[default]
    Curated,
    /// One tool per operation of Atomicwork's published API.
    Complete,
}

/// `all` lists every tool with its full schema; `discovery` lists only search_tools,
/// get_tool_schema and call_tool, which reach the same filtered set on demand and keep the
/// client's context small. When unset: `all`, except a `complete` server that would list
/// more than 60 tools, which uses `discovery`.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ToolExposure {
    /// Every tool, with its schema, in tools/list.
    #[default]
    All,
    /// Only the search_tools, get_tool_schema and call_tool meta-tools.
    Discovery,
}

/// How this server shows one tool.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolOverrideSpec {
    /// The name clients list and call the tool by; the catalog name is then unknown to
    /// them. 1-128 letters, digits, '_', '-' or '.', unique among the server's tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The title clients see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The description clients see (say when to use the tool and which ids it needs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// MCP hints that replace the tool's own; those not given stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub annotations: Option<ToolAnnotationsSpec>,
    /// Argument values used when the caller leaves the argument out, e.g.
    /// `{per_page: 50}`; shown as the argument's default. Each must fit the argument.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "argument_values_schema")]
    pub defaults: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    /// Argument values the caller cannot change, e.g. `{workspace_id: 3}` to pin the
    /// server to one workspace: hidden from the schema clients see, and a value the
    /// caller sends anyway is replaced. Each must fit the argument.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "argument_values_schema")]
    pub fixed: Option<std::collections::BTreeMap<String, serde_json::Value>>,
}

/// MCP tool annotations; unset hints keep the tool's own.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ToolAnnotationsSpec {
    /// The tool only reads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) read_only_hint: Option<bool>,
    /// The tool may change or remove data irreversibly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) destructive_hint: Option<bool>,
    /// Repeating the call has no further effect.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) idempotent_hint: Option<bool>,
    /// The tool reaches beyond the Atomicwork tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) open_world_hint: Option<bool>,
}

/// Argument values by argument name: any JSON value each.
fn argument_values_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Argument values by argument name (any JSON value each).",
        "type": "object",
        "additionalProperties": {"x-kubernetes-preserve-unknown-fields": true}
    })
}

/// A token bucket: `requestsPerMinute` sustained, `burst` at once.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RateLimit {
    /// Sustained MCP requests per minute.
    #[schemars(range(min = 1, max = 1000000))]
    pub(crate) requests_per_minute: u32,
    /// Requests allowed at once above the sustained rate. Defaults to requestsPerMinute/6,
    /// at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub burst: Option<u32>,
    /// A bucket for each person, beside the server's, keyed by the OAuth user claim.
    /// Needs `auth.oauth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user: Option<PerUserRateLimit>,
}

/// A token bucket per person (the OAuth user claim), beside the server's bucket.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PerUserRateLimit {
    /// Sustained MCP tool calls per minute for each person.
    #[schemars(range(min = 1, max = 1000000))]
    pub(crate) requests_per_minute: u32,
    /// Calls each person may make at once above the sustained rate. Defaults to
    /// requestsPerMinute/6, at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 1000000))]
    pub burst: Option<u32>,
}

/// How people authenticate beyond the URL token.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Auth {
    /// OAuth 2.1: the endpoint becomes a resource server (RFC 9728 metadata, RFC 8707
    /// audience) that accepts only access tokens from `issuer`. Cannot be combined with
    /// `requireApiTokenAuth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuth>,
}

/// An OAuth 2.1 authorization server whose access tokens the endpoint accepts.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuth {
    /// Issuer identifier of the authorization server, exactly as it appears in its tokens'
    /// `iss` claim, e.g. https://idp.example.com/realms/it. Its metadata is discovered at
    /// /.well-known/oauth-authorization-server or /.well-known/openid-configuration (RFC
    /// 8414, OpenID Connect Discovery). Must be https; http is accepted only for
    /// localhost, 127.0.0.1 and [::1].
    #[schemars(regex(
        pattern = r"^(https://[^\s/?#@]+|http://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?)(/[^\s?#]*)?$"
    ))]
    pub(crate) issuer: String,

    /// The audience (`aud`) every access token must contain, also published as the
    /// protected resource metadata's `resource`. Defaults to the server's connector URL
    /// (the RFC 8707 resource indicator MCP clients send); set it only when the
    /// authorization server cannot issue tokens for that URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) audience: Option<String>,

    /// The scopes a token needs for each tool class; a token may use a class when it
    /// holds every scope listed for it (write does not imply read unless the lists say
    /// so). Defaults: read `atomicwork.read`, write and custom `atomicwork.write`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) scopes: Option<OAuthScopes>,

    /// The token claim that names the user: recorded in the audit log line of each call
    /// and the key of `rateLimit.perUser`, e.g. `email` or `preferred_username`.
    /// Defaults to `sub`, which is also used when a token lacks this claim.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub(crate) user_claim: Option<String>,
}

/// Scopes needed per tool class. An omitted class takes its default; an empty list lets
/// every valid token use the class.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuthScopes {
    /// Scopes needed for read tools (list and get). Defaults to [atomicwork.read].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = r"^[!#-\[\]-~]+$"), length(min = 1, max = 256)))]
    pub(crate) read: Option<Vec<String>>,
    /// Scopes needed for write tools (create, update, delete). Defaults to
    /// [atomicwork.write].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = r"^[!#-\[\]-~]+$"), length(min = 1, max = 256)))]
    pub(crate) write: Option<Vec<String>>,
    /// Scopes needed for custom tools (any other method, e.g. partial_update). Defaults
    /// to [atomicwork.write].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(inner(regex(pattern = r"^[!#-\[\]-~]+$"), length(min = 1, max = 256)))]
    pub(crate) custom: Option<Vec<String>>,
}

/// Bounded, jittered retries for read tools.
#[derive(Deserialize, Serialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RetryPolicy {
    /// Total attempts including the first, 1-5.
    #[schemars(range(min = 1, max = 5))]
    pub(crate) max_attempts: u32,
    /// Longest wait between attempts, in seconds (a longer Retry-After is not waited for).
    /// Defaults to 10.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 120))]
    pub(crate) max_backoff_seconds: Option<u32>,
}

/// Observed state, written by the controller.
#[derive(Deserialize, Serialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AtomicworkMcpServerStatus {
    /// The connector URL to paste into the MCP client. Treat it as a secret: it carries
    /// the token. Empty while not Ready, or when the controller redacts it (then read it
    /// from the token Secret's `url` key).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The Secret holding the token (`token` and `url` keys).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) token_secret_ref: Option<SecretRef>,
    /// Number of tools the endpoint exposes.
    #[serde(default)]
    pub(crate) tool_count: u32,
    /// Names of the tools the endpoint exposes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub(crate) tools: Vec<String>,
    /// When the token stops working (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) expires_at: Option<String>,
    /// The spec generation this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) observed_generation: Option<i64>,
    /// Ready, CredentialsResolved and Expired, plus Reconciling and Stalled for kstatus
    /// (Flux, `kstatus`-based tools).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

impl AtomicworkMcpServerStatus {
    /// The condition of this type, if present.
    pub(crate) fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.type_ == type_)
    }
}

fn conditions_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "description": "Ready, CredentialsResolved and Expired, plus Reconciling and Stalled for kstatus (Flux, kstatus-based tools).",
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": {"type": "string", "description": "Condition type."},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"]},
                "observedGeneration": {"type": "integer", "format": "int64"},
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "reason": {"type": "string", "description": "CamelCase reason."},
                "message": {"type": "string", "description": "What happened and what to do."}
            }
        }
    })
}

/// The value of the rotate-token annotation on an object, if set: on a server the value
/// asked for, on its token Secret the value the token was minted under.
pub(crate) fn rotation_of(meta: &ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(ROTATE_ANNOTATION))
        .map(String::as_str)
}

impl AtomicworkMcpServer {
    /// The value of the rotate-token annotation, if set.
    pub(crate) fn rotation(&self) -> Option<&str> {
        rotation_of(&self.metadata)
    }

    /// The display name shown to clients.
    pub(crate) fn display_name(&self) -> String {
        self.spec
            .display_name
            .clone()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| self.metadata.name.clone())
            .unwrap_or_else(|| "atomicwork".to_string())
    }
}
