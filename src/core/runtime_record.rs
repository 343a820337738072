//! The runtime record: everything the data plane needs to serve one server, decided by
//! the controller and handed over as data. The data plane reads nothing else: not the
//! resource, not the Secrets it names. A record holds the digest of the URL token and of
//! each client token, never the tokens themselves; it does hold the Atomicwork API key,
//! which the data plane must send.
//!
//! The serialized form is JSON with camelCase fields, versioned by [`RECORD_FORMAT`]
//! (stored beside the JSON, not in it). Within one format fields are only ever added,
//! and a reader ignores fields it does not know; a change a reader must not ignore gets
//! a new format, which an older reader refuses. OAuth settings are such a change (a
//! reader that ignored them would serve the server without asking for a token), so a
//! record that has them is written as [`OAUTH_RECORD_FORMAT`]; so is an approval policy
//! (a reader that ignored it would run destructive calls without asking), as
//! [`CONFIRM_RECORD_FORMAT`]; and so are tools taken from the complete set or shaped by
//! `toolOverrides` (a reader that ignored the overrides would let callers choose the
//! arguments a server fixes), as [`TOOLS_RECORD_FORMAT`]. Every other record is still
//! written, and read, as [`RECORD_FORMAT`].

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::core::base_url::BaseUrl;
use crate::core::catalog::{Catalog, ToolOverrides, ToolSet, ToolSetKind};
use crate::core::confirm::{ConfirmPolicy, ConfirmTools, LegacyClients};
use crate::core::oauth::{ClassScopes, OAuthSettings};
use crate::core::secret::{Secret, TokenHash};
use crate::core::server::{Exposure, RateLimitSettings, RetryPolicy, ServerId, ServerView, Target};

/// The format of the serialized record this code writes and reads.
pub const RECORD_FORMAT: &str = "1";
/// The format of a record with OAuth settings, which readers of [`RECORD_FORMAT`] alone
/// refuse; this code writes and reads both.
pub const OAUTH_RECORD_FORMAT: &str = "2";
/// The format of a record with an approval policy (with or without OAuth settings),
/// which readers of the earlier formats refuse.
pub const CONFIRM_RECORD_FORMAT: &str = "3";
/// The format of a record whose tools come from the complete set or are shaped by tool
/// overrides (with or without the settings of the earlier formats), which readers of
/// the earlier formats refuse.
pub const TOOLS_RECORD_FORMAT: &str = "4";

/// What the data plane needs to serve one server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeRecord {
    /// Namespace of the resource the record comes from.
    pub namespace: String,
    /// Name of the resource the record comes from.
    pub name: String,
    /// Server title shown to clients.
    pub display_name: String,
    /// `metadata.generation` of the resource the record was made from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generation: Option<i64>,
    /// SHA-256 of the URL token, hex.
    #[serde(with = "hex_digest")]
    pub token_digest: TokenHash,
    /// Tenant base URL (catalog paths add `/api/v1`); empty for an expired server.
    pub base_url: BaseUrl,
    /// The Atomicwork API key; empty for an expired server.
    #[serde(with = "exposed")]
    pub api_key: Secret,
    /// Default workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_id: Option<String>,
    /// Names of the tools served, after every filter.
    #[serde(default)]
    pub tools: Vec<String>,
    /// The built-in set `tools` name tools of; absent for the curated set.
    #[serde(default, skip_serializing_if = "ToolSetKind::is_curated")]
    pub tool_set: ToolSetKind,
    /// How the server shows some of `tools` (`spec.toolOverrides`), by catalog name.
    #[serde(default, skip_serializing_if = "ToolOverrides::is_empty")]
    pub tool_overrides: ToolOverrides,
    /// How tools are listed.
    #[serde(default)]
    pub exposure: RecordExposure,
    /// From this instant every request is refused as expired.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
    /// Every request is refused as suspended.
    #[serde(default)]
    pub suspended: bool,
    /// Write tools return the request they would send.
    #[serde(default)]
    pub dry_run: bool,
    /// The server's rate limit, before it is shared between replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RecordRateLimit>,
    /// Retries of read tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RecordRetry>,
    /// Timeout of one upstream call, in milliseconds; the data plane's default when
    /// absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_millis: Option<u64>,
    /// Longest result text, in characters.
    pub max_result_chars: u64,
    /// SHA-256 of each accepted client bearer token, hex; present when a bearer token is
    /// required.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "hex_digests")]
    pub client_token_digests: Option<Vec<TokenHash>>,
    /// Present when every request needs an OAuth access token (format
    /// [`OAUTH_RECORD_FORMAT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<RecordOAuth>,
    /// Present when some calls need a person's approval (format
    /// [`CONFIRM_RECORD_FORMAT`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<RecordConfirm>,
}

/// [`ConfirmPolicy`] in the record, with the server's own sealing key.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordConfirm {
    /// Which calls need approval.
    pub tools: ConfirmTools,
    /// What clients that cannot ask a person get.
    pub legacy_clients: LegacyClients,
    /// Seconds an approval request stays valid.
    pub ttl_seconds: u64,
    /// The server's sealing key (base64url).
    #[serde(with = "exposed")]
    pub key: Secret,
}

impl std::fmt::Debug for RecordConfirm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordConfirm")
            .field("tools", &self.tools)
            .field("legacy_clients", &self.legacy_clients)
            .field("ttl_seconds", &self.ttl_seconds)
            .finish_non_exhaustive()
    }
}

/// [`OAuthSettings`] in the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordOAuth {
    /// Issuer identifier, compared exactly with each token's `iss`.
    pub issuer: String,
    /// The audience tokens must carry when it is not the connector URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// Base of the connector URL, as the controller publishes it.
    pub public_url: BaseUrl,
    /// Scopes per tool class.
    pub scopes: RecordScopes,
    /// Claim naming the user.
    pub user_claim: String,
    /// Each user's rate limit, before it is shared between replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub per_user_rate_limit: Option<RecordRateLimit>,
}

/// [`ClassScopes`] in the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordScopes {
    /// Scopes needed for read tools.
    #[serde(default)]
    pub read: Vec<String>,
    /// Scopes needed for write tools.
    #[serde(default)]
    pub write: Vec<String>,
    /// Scopes needed for custom tools.
    #[serde(default)]
    pub custom: Vec<String>,
}

impl RecordOAuth {
    /// The settings as the record holds them.
    fn from_settings(o: &OAuthSettings) -> Self {
        RecordOAuth {
            issuer: o.issuer.clone(),
            audience: o.audience.clone(),
            public_url: o.public_url.clone(),
            scopes: RecordScopes {
                read: o.scopes.read.clone(),
                write: o.scopes.write.clone(),
                custom: o.scopes.custom.clone(),
            },
            user_claim: o.user_claim.clone(),
            per_user_rate_limit: o.per_user.map(|r| RecordRateLimit {
                requests_per_minute: r.per_minute,
                burst: r.burst,
            }),
        }
    }

    /// The settings the record holds.
    fn to_settings(&self) -> OAuthSettings {
        OAuthSettings {
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
            public_url: self.public_url.clone(),
            scopes: ClassScopes {
                read: self.scopes.read.clone(),
                write: self.scopes.write.clone(),
                custom: self.scopes.custom.clone(),
            },
            user_claim: self.user_claim.clone(),
            per_user: self.per_user_rate_limit.map(|r| RateLimitSettings {
                per_minute: r.requests_per_minute,
                burst: r.burst,
            }),
        }
    }
}

/// [`Exposure`] in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RecordExposure {
    #[default]
    All,
    Discovery,
}

/// [`RateLimitSettings`] in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordRateLimit {
    pub requests_per_minute: u32,
    pub burst: u32,
}

/// [`RetryPolicy`] in the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordRetry {
    pub max_attempts: u32,
    pub max_backoff_millis: u64,
}

/// Why stored bytes are not a record this code can serve.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Written in a format this code does not read.
    #[error(
        "record format {found:?} is not a format this data plane reads ({RECORD_FORMAT:?}, {OAUTH_RECORD_FORMAT:?}, {CONFIRM_RECORD_FORMAT:?} or {TOOLS_RECORD_FORMAT:?})"
    )]
    Format { found: String },
    /// Not valid JSON of a record. The message names the position, never the content.
    #[error("the record is not valid: {0}")]
    Invalid(String),
}

impl RuntimeRecord {
    /// The record of a served (or expired, or suspended) server, under the digest of its
    /// URL token.
    pub fn from_view(view: &ServerView, token: TokenHash, generation: Option<i64>) -> Self {
        let target = &view.target;
        RuntimeRecord {
            namespace: view.id.namespace.clone(),
            name: view.id.name.clone(),
            display_name: view.display_name.clone(),
            generation,
            token_digest: token,
            base_url: target.base_url.clone(),
            api_key: target.api_key.clone(),
            workspace_id: target.workspace_id.clone(),
            tools: view.tools.catalog_names(),
            tool_set: view.tools.kind(),
            tool_overrides: view.tools.overrides().clone(),
            exposure: match view.exposure {
                Exposure::All => RecordExposure::All,
                Exposure::Discovery => RecordExposure::Discovery,
            },
            expires_at: view.expires_at,
            suspended: view.suspended,
            dry_run: target.dry_run,
            rate_limit: view.rate_limit.map(|r| RecordRateLimit {
                requests_per_minute: r.per_minute,
                burst: r.burst,
            }),
            retry: target.retry.map(|r| RecordRetry {
                max_attempts: r.max_attempts,
                max_backoff_millis: millis(r.max_backoff),
            }),
            timeout_millis: target.timeout.map(millis),
            max_result_chars: u64::try_from(target.max_result_chars).unwrap_or(u64::MAX),
            client_token_digests: view.client_tokens.as_ref().map(|d| d.to_vec()),
            oauth: view.oauth.as_deref().map(RecordOAuth::from_settings),
            confirm: view.confirm.as_deref().map(|c| RecordConfirm {
                tools: c.tools,
                legacy_clients: c.legacy_clients,
                ttl_seconds: c.ttl.as_secs(),
                key: c.key.clone(),
            }),
        }
    }

    /// The format this record is written in: [`TOOLS_RECORD_FORMAT`] for complete-set or
    /// shaped tools, else [`CONFIRM_RECORD_FORMAT`] with an approval policy, else
    /// [`OAUTH_RECORD_FORMAT`] with OAuth settings, else [`RECORD_FORMAT`].
    pub fn format(&self) -> &'static str {
        if !self.tool_set.is_curated() || !self.tool_overrides.is_empty() {
            TOOLS_RECORD_FORMAT
        } else if self.confirm.is_some() {
            CONFIRM_RECORD_FORMAT
        } else if self.oauth.is_some() {
            OAUTH_RECORD_FORMAT
        } else {
            RECORD_FORMAT
        }
    }

    /// The server the record comes from.
    pub fn id(&self) -> ServerId {
        ServerId::new(&self.namespace, &self.name)
    }

    /// The registry entry: the token digest and the server as served, its tools taken
    /// from `catalog` by name. Names the catalog does not know are left out (and
    /// returned, so the caller can say so).
    pub fn to_entry(&self, catalog: &Catalog) -> (TokenHash, ServerView, Vec<String>) {
        let mut unknown: Vec<String> = self
            .tools
            .iter()
            .filter(|n| catalog.get_in(self.tool_set, n).is_none())
            .cloned()
            .collect();
        // Overrides that no longer apply (the catalog changed under the record) leave
        // the server without tools rather than serve them unshaped: a fixed argument
        // must never become the caller's to choose.
        let tools: Arc<ToolSet> =
            match catalog.shaped_tool_set(self.tool_set, &self.tools, &self.tool_overrides) {
                Ok(set) => set,
                Err(e) => {
                    unknown.push(format!("toolOverrides ({e})"));
                    catalog.tool_set_of(self.tool_set, &[])
                }
            };
        let id = self.id();
        let view = ServerView {
            id_label: id.to_string().into(),
            id,
            display_name: self.display_name.clone(),
            tools,
            exposure: match self.exposure {
                RecordExposure::All => Exposure::All,
                RecordExposure::Discovery => Exposure::Discovery,
            },
            target: Target {
                base_url: self.base_url.clone(),
                api_key: self.api_key.clone(),
                workspace_id: self.workspace_id.clone(),
                dry_run: self.dry_run,
                retry: self.retry.map(|r| RetryPolicy {
                    max_attempts: r.max_attempts,
                    max_backoff: Duration::from_millis(r.max_backoff_millis),
                }),
                timeout: self.timeout_millis.map(Duration::from_millis),
                max_result_chars: usize::try_from(self.max_result_chars).unwrap_or(usize::MAX),
                notice: None,
            },
            expires_at: self.expires_at,
            suspended: self.suspended,
            client_tokens: self
                .client_token_digests
                .as_ref()
                .map(|d| Arc::from(d.as_slice())),
            rate_limit: self.rate_limit.map(|r| RateLimitSettings {
                per_minute: r.requests_per_minute,
                burst: r.burst,
            }),
            limiter: None,
            confirm: self.confirm.as_ref().map(|c| {
                Arc::new(ConfirmPolicy {
                    tools: c.tools,
                    legacy_clients: c.legacy_clients,
                    ttl: Duration::from_secs(c.ttl_seconds),
                    key: c.key.clone(),
                })
            }),
            oauth: self.oauth.as_ref().map(|o| Arc::new(o.to_settings())),
            user_limiter: None,
        };
        (self.token_digest, view, unknown)
    }

    /// The serialized form (in the format [`RuntimeRecord::format`] names).
    pub fn to_json(&self) -> Vec<u8> {
        // Serializing plain fields and strings cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a record written in `format`.
    pub fn from_json(format: &str, bytes: &[u8]) -> Result<Self, RecordError> {
        if !matches!(
            format.trim(),
            RECORD_FORMAT | OAUTH_RECORD_FORMAT | CONFIRM_RECORD_FORMAT | TOOLS_RECORD_FORMAT
        ) {
            return Err(RecordError::Format {
                found: format.chars().take(16).collect(),
            });
        }
        serde_json::from_slice(bytes).map_err(|e| {
            // serde_json's messages can quote a value; keep only where it failed.
            RecordError::Invalid(format!(
                "{:?} error at line {} column {}",
                e.classify(),
                e.line(),
                e.column()
            ))
        })
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A digest as 64 lowercase hex digits.
fn to_hex(digest: &TokenHash) -> String {
    digest.0.iter().map(|b| format!("{b:02x}")).collect()
}

/// A digest from 64 hex digits.
fn from_hex(text: &str) -> Option<TokenHash> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hex = std::str::from_utf8(pair).ok()?;
        out[i] = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(TokenHash(out))
}

/// Serde for one digest as hex.
mod hex_digest {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use crate::core::secret::TokenHash;

    pub fn serialize<S: Serializer>(d: &TokenHash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_hex(d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<TokenHash, D::Error> {
        let text = String::deserialize(d)?;
        super::from_hex(&text).ok_or_else(|| D::Error::custom("a digest is 64 hex digits"))
    }
}

/// Serde for an optional list of digests as hex.
mod hex_digests {
    use serde::{Deserialize, Deserializer, Serializer, de::Error, ser::SerializeSeq};

    use crate::core::secret::TokenHash;

    pub fn serialize<S: Serializer>(d: &Option<Vec<TokenHash>>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            None => s.serialize_none(),
            Some(list) => {
                let mut seq = s.serialize_seq(Some(list.len()))?;
                for digest in list {
                    seq.serialize_element(&super::to_hex(digest))?;
                }
                seq.end()
            }
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<TokenHash>>, D::Error> {
        let Some(list) = Option::<Vec<String>>::deserialize(d)? else {
            return Ok(None);
        };
        list.iter()
            .map(|t| {
                super::from_hex(t).ok_or_else(|| D::Error::custom("a digest is 64 hex digits"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// Serde for the API key: written as it is (the record lives in a Secret).
mod exposed {
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::core::secret::Secret;

    pub fn serialize<S: Serializer>(v: &Secret, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
        Ok(Secret::new(String::deserialize(d)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL_TOKEN: &str = "u9ygZfORRS_DJjHn6hew6zUZduzW6-nsRdB_oo6Jy1I";
    const CLIENT_TOKENS: [&str; 2] = ["client-token-one", "client-token-two"];

    fn catalog() -> Catalog {
        Catalog::builtin().expect("built-in catalog")
    }

    /// A server with every setting away from its default.
    fn view(catalog: &Catalog) -> ServerView {
        let names: Vec<String> = catalog
            .tools()
            .iter()
            .take(3)
            .map(|t| t.name().to_string())
            .collect();
        let id = ServerId::new("it-ops", "change-ops");
        ServerView {
            id_label: id.to_string().into(),
            id,
            display_name: "Change Ops".into(),
            tools: catalog.tool_set(&names),
            exposure: Exposure::Discovery,
            target: Target {
                base_url: crate::core::base_url::BaseUrl::parse("https://acme.atomicwork.com")
                    .expect("a test base URL"),
                api_key: Secret::new("sk-live-key"),
                workspace_id: Some("7".into()),
                dry_run: true,
                retry: Some(RetryPolicy {
                    max_attempts: 3,
                    max_backoff: Duration::from_secs(10),
                }),
                timeout: Some(Duration::from_secs(45)),
                max_result_chars: 5000,
                notice: None,
            },
            expires_at: Some(Timestamp::from_second(1_900_000_000).expect("instant")),
            suspended: true,
            client_tokens: Some(CLIENT_TOKENS.iter().map(|t| TokenHash::of(t)).collect()),
            rate_limit: Some(RateLimitSettings {
                per_minute: 120,
                burst: 20,
            }),
            limiter: None,
            confirm: None,
            oauth: Some(Arc::new(OAuthSettings {
                issuer: "https://idp.example.com/realms/it".into(),
                audience: Some("api://atomicwork".into()),
                public_url: BaseUrl::parse("https://mcp.example.com").expect("a test URL"),
                scopes: ClassScopes {
                    read: vec!["aw.read".into()],
                    write: vec!["aw.read".into(), "aw.write".into()],
                    custom: Vec::new(),
                },
                user_claim: "email".into(),
                per_user: Some(RateLimitSettings {
                    per_minute: 30,
                    burst: 5,
                }),
            })),
            user_limiter: None,
        }
    }

    fn record() -> RuntimeRecord {
        RuntimeRecord::from_view(&view(&catalog()), TokenHash::of(URL_TOKEN), Some(4))
    }

    #[test]
    fn a_record_round_trips_through_its_serialized_form() {
        let r = record();
        let back = RuntimeRecord::from_json(r.format(), &r.to_json()).expect("readable");
        assert_eq!(back, r);
        let minimal = RuntimeRecord {
            generation: None,
            workspace_id: None,
            tools: Vec::new(),
            expires_at: None,
            rate_limit: None,
            retry: None,
            timeout_millis: None,
            client_token_digests: None,
            oauth: None,
            ..r
        };
        let back = RuntimeRecord::from_json(RECORD_FORMAT, &minimal.to_json()).expect("readable");
        assert_eq!(back, minimal);
    }

    #[test]
    fn a_complete_set_server_keeps_its_set_through_the_record() {
        let catalog = catalog();
        let names = vec![
            "list_all_atomicwork_tags".to_string(),
            // In both sets, under the same name.
            "list_all_atomicwork_audit_logs".to_string(),
        ];
        let view = ServerView {
            tools: catalog.tool_set_of(ToolSetKind::Complete, &names),
            ..view(&catalog)
        };
        let record = RuntimeRecord::from_view(&view, TokenHash::of(URL_TOKEN), None);
        assert_eq!(record.tool_set, ToolSetKind::Complete);
        assert_eq!(
            record.format(),
            TOOLS_RECORD_FORMAT,
            "a reader of the earlier formats must not serve curated tools instead"
        );
        let json: serde_json::Value = serde_json::from_slice(&record.to_json()).expect("json");
        assert_eq!(json["toolSet"], "complete");
        let back = RuntimeRecord::from_json(record.format(), &record.to_json()).expect("readable");
        let (_, served, unknown) = back.to_entry(&catalog);
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(served.tools.kind(), ToolSetKind::Complete);
        let tags = served
            .tools
            .get("list_all_atomicwork_tags")
            .expect("served");
        assert!(std::sync::Arc::ptr_eq(
            tags,
            catalog
                .get_in(ToolSetKind::Complete, "list_all_atomicwork_tags")
                .expect("in the complete set")
        ));
        // A curated record leaves the field out, so older readers see nothing new, and a
        // record without it is curated.
        let curated: serde_json::Value =
            serde_json::from_slice(&record_curated().to_json()).expect("json");
        assert!(curated.get("toolSet").is_none(), "{curated}");
        // A complete-set name in a curated record is unknown, and reported.
        let mut wrong = back.clone();
        wrong.tool_set = ToolSetKind::Curated;
        let (_, served, unknown) = wrong.to_entry(&catalog);
        assert_eq!(unknown, ["list_all_atomicwork_tags"]);
        assert_eq!(served.tools.names(), ["list_all_atomicwork_audit_logs"]);
    }

    #[test]
    fn overrides_travel_in_the_record_and_shape_the_served_tools_again() {
        let catalog = catalog();
        let overrides: ToolOverrides = serde_json::from_value(serde_json::json!({
            "list_all_atomicwork_audit_logs": {"name": "audit_trail", "fixed": {"per_page": 10}}
        }))
        .expect("overrides");
        let names = vec!["list_all_atomicwork_audit_logs".to_string()];
        let tools = catalog
            .shaped_tool_set(ToolSetKind::Curated, &names, &overrides)
            .expect("shaped");
        let view = ServerView {
            tools,
            ..view(&catalog)
        };
        let record = RuntimeRecord::from_view(&view, TokenHash::of(URL_TOKEN), None);
        assert_eq!(record.tools, names, "the record lists catalog names");
        assert_eq!(
            record.format(),
            TOOLS_RECORD_FORMAT,
            "a reader that ignored the overrides would let callers pick fixed arguments"
        );
        assert_eq!(record.tool_overrides, overrides);
        let back = RuntimeRecord::from_json(record.format(), &record.to_json()).expect("readable");
        let (_, served, unknown) = back.to_entry(&catalog);
        assert!(unknown.is_empty(), "{unknown:?}");
        assert_eq!(served.tools.names(), ["audit_trail"]);
        // Overrides that no longer fit leave the server without tools, never unshaped.
        let mut stale = back.clone();
        stale.tool_overrides = serde_json::from_value(serde_json::json!({
            "list_all_atomicwork_audit_logs": {"fixed": {"gone": 1}}
        }))
        .expect("overrides");
        let (_, served, unknown) = stale.to_entry(&catalog);
        assert!(served.tools.is_empty());
        assert!(unknown[0].contains("toolOverrides"), "{unknown:?}");
    }

    fn record_curated() -> RuntimeRecord {
        record()
    }

    #[test]
    fn a_view_survives_the_trip_through_a_record() {
        let catalog = catalog();
        let original = view(&catalog);
        let (digest, served, unknown) = record().to_entry(&catalog);
        assert!(unknown.is_empty());
        assert_eq!(digest, TokenHash::of(URL_TOKEN));
        assert_eq!(served.id, original.id);
        assert_eq!(served.display_name, original.display_name);
        assert_eq!(served.tools.names(), original.tools.names());
        assert_eq!(served.exposure, original.exposure);
        assert_eq!(served.expires_at, original.expires_at);
        assert_eq!(served.suspended, original.suspended);
        assert_eq!(served.rate_limit, original.rate_limit);
        let (a, b) = (&served.target, &original.target);
        assert_eq!(a.base_url, b.base_url);
        assert_eq!(a.api_key, b.api_key);
        assert_eq!(a.workspace_id, b.workspace_id);
        assert_eq!(a.dry_run, b.dry_run);
        assert_eq!(a.timeout, b.timeout);
        assert_eq!(a.max_result_chars, b.max_result_chars);
        let retry = a.retry.expect("retry");
        assert_eq!(retry.max_attempts, 3);
        assert_eq!(retry.max_backoff, Duration::from_secs(10));
        assert_eq!(
            served.admit(Timestamp::UNIX_EPOCH, Some(CLIENT_TOKENS[1])),
            Err(crate::core::server::Refusal::Suspended)
        );
        let not_suspended = RuntimeRecord {
            suspended: false,
            ..record()
        };
        let (_, served, _) = not_suspended.to_entry(&catalog);
        assert_eq!(
            served.admit(Timestamp::UNIX_EPOCH, Some(CLIENT_TOKENS[1])),
            Ok(())
        );
        assert_eq!(
            served.admit(Timestamp::UNIX_EPOCH, Some("guess")),
            Err(crate::core::server::Refusal::BearerInvalid)
        );
    }

    #[test]
    fn a_record_never_holds_the_url_token_or_a_client_token() {
        let text = String::from_utf8(record().to_json()).expect("UTF-8");
        for raw in std::iter::once(URL_TOKEN).chain(CLIENT_TOKENS) {
            assert!(!text.contains(raw), "{raw} in {text}");
        }
        assert!(text.contains(&to_hex(&TokenHash::of(URL_TOKEN))));
        for t in CLIENT_TOKENS {
            assert!(text.contains(&to_hex(&TokenHash::of(t))));
        }
        assert!(!format!("{:?}", record()).contains("sk-live-key"));
    }

    #[test]
    fn the_serialized_form_is_stable() {
        let value: serde_json::Value = serde_json::from_slice(&record().to_json()).expect("JSON");
        let keys: Vec<&str> = value
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .collect();
        // Every field, by name (listed sorted, as the parsed object keeps them).
        assert_eq!(
            keys,
            [
                "apiKey",
                "baseUrl",
                "clientTokenDigests",
                "displayName",
                "dryRun",
                "expiresAt",
                "exposure",
                "generation",
                "maxResultChars",
                "name",
                "namespace",
                "oauth",
                "rateLimit",
                "retry",
                "suspended",
                "timeoutMillis",
                "tokenDigest",
                "tools",
                "workspaceId",
            ]
        );
        assert_eq!(value["exposure"], "discovery");
        assert_eq!(value["expiresAt"], "2030-03-17T17:46:40Z");
        assert_eq!(value["rateLimit"]["requestsPerMinute"], 120);
        assert_eq!(value["retry"]["maxBackoffMillis"], 10_000);
        assert_eq!(value["timeoutMillis"], 45_000);
        assert_eq!(value["tokenDigest"].as_str().map(str::len), Some(64));
        assert_eq!(
            value["oauth"],
            serde_json::json!({
                "issuer": "https://idp.example.com/realms/it",
                "audience": "api://atomicwork",
                "publicUrl": "https://mcp.example.com",
                "scopes": {"read": ["aw.read"], "write": ["aw.read", "aw.write"], "custom": []},
                "userClaim": "email",
                "perUserRateLimit": {"requestsPerMinute": 30, "burst": 5},
            })
        );
    }

    #[test]
    fn oauth_settings_survive_the_trip_and_need_the_newer_format() {
        let catalog = catalog();
        let original = view(&catalog);
        let r = record();
        assert_eq!(r.format(), OAUTH_RECORD_FORMAT);
        let back = RuntimeRecord::from_json(r.format(), &r.to_json()).expect("readable");
        let (_, served, _) = back.to_entry(&catalog);
        assert_eq!(served.oauth, original.oauth);
        // Without OAuth a record keeps the first format, which older readers read.
        let plain = RuntimeRecord {
            oauth: None,
            ..record()
        };
        assert_eq!(plain.format(), RECORD_FORMAT);
        let (_, served, _) = plain.to_entry(&catalog);
        assert!(served.oauth.is_none());
    }

    #[test]
    fn a_record_written_before_oauth_still_reads() {
        // The serialized form of a record as written before OAuth settings existed.
        let old = br#"{"namespace":"it-ops","name":"a","displayName":"A","tokenDigest":"0000000000000000000000000000000000000000000000000000000000000000","baseUrl":"https://acme.atomicwork.com","apiKey":"k","tools":["list_all_atomicwork_assets"],"exposure":"all","suspended":false,"dryRun":false,"maxResultChars":150000}"#;
        let r = RuntimeRecord::from_json(RECORD_FORMAT, old).expect("readable");
        assert!(r.oauth.is_none());
        assert_eq!(r.tools, ["list_all_atomicwork_assets"]);
        assert!(r.to_entry(&catalog()).1.oauth.is_none());
    }

    #[test]
    fn unknown_fields_are_ignored_and_other_formats_refused() {
        let mut value: serde_json::Value =
            serde_json::from_slice(&record().to_json()).expect("JSON");
        value["addedLater"] = serde_json::json!(true);
        let bytes = serde_json::to_vec(&value).expect("JSON");
        assert_eq!(
            RuntimeRecord::from_json(RECORD_FORMAT, &bytes).expect("readable"),
            record()
        );
        assert!(matches!(
            RuntimeRecord::from_json("5", &bytes),
            Err(RecordError::Format { .. })
        ));
    }

    #[test]
    fn damaged_records_are_refused_without_quoting_them() {
        let mut value: serde_json::Value =
            serde_json::from_slice(&record().to_json()).expect("JSON");
        value["tokenDigest"] = serde_json::json!("not-hex-sk-live-key");
        let bytes = serde_json::to_vec(&value).expect("JSON");
        let err = RuntimeRecord::from_json(RECORD_FORMAT, &bytes).expect_err("refused");
        assert!(!err.to_string().contains("sk-live-key"), "{err}");
        for bad in [&b"{"[..], b"[]", b"{\"namespace\": 1}"] {
            assert!(RuntimeRecord::from_json(RECORD_FORMAT, bad).is_err());
        }
    }

    /// The base URL is checked where the record is read, by the same rules as the
    /// manifest's, so the data plane never holds a URL it would have to re-check per call.
    #[test]
    fn a_record_with_an_unusable_base_url_is_refused() {
        for bad in [
            "ftp://acme.atomicwork.com",
            "https://u:p@acme.atomicwork.com",
            "acme",
        ] {
            let mut value: serde_json::Value =
                serde_json::from_slice(&record().to_json()).expect("JSON");
            value["baseUrl"] = serde_json::json!(bad);
            let bytes = serde_json::to_vec(&value).expect("JSON");
            let err = RuntimeRecord::from_json(RECORD_FORMAT, &bytes).expect_err(bad);
            assert!(matches!(err, RecordError::Invalid(_)), "{bad}: {err}");
        }
    }
}
