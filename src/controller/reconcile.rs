//! The pure half of a reconcile: from what was observed (the resource, the Secrets it
//! names, its token Secret and runtime record) to what should be (the token Secret, the
//! runtime record the data plane serves from, the status, Events and when to look
//! again). No I/O, no clock, no randomness of its own, so every scenario is
//! a plain unit test.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as K8sSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, ObjectMeta, OwnerReference, Time};
use kube::Resource;

use crate::core::base_url::BaseUrl;
use crate::core::catalog::Catalog;
use crate::core::oauth::IssuerCheck;
use crate::core::runtime_record::RuntimeRecord;
use crate::core::secret::Secret;
use crate::core::server::ServerView;
use crate::core::token::{self, TOKEN_SECRET_SUFFIX, TokenRecord, token_secret_name};
use crate::k8s::crd::{
    AtomicworkMcpServer, AtomicworkMcpServerStatus, ROTATE_ANNOTATION, SecretRef, rotation_of,
};
use crate::k8s::resolve::{self, Problem, Resolution, ResolveOptions, SecretLookup};
use crate::k8s::runtime_record::{self, record_secret};
use crate::k8s::token_secret::{
    TOKEN_EXPIRES_ANNOTATION, is_controlled_by, record_of, token_expiry_of,
};

use super::Error;
use super::conditions::{
    AuthReason, ConditionType, CredentialsReason, ExpiryReason, ReadyReason, Reason, condition,
    kstatus,
};

/// `app.kubernetes.io/managed-by` value on every object the controller writes: the
/// operator's name, as in its field manager.
pub(crate) const MANAGED_BY: &str = super::FIELD_MANAGER;
/// `app.kubernetes.io/part-of` value on every object the controller writes.
pub(crate) const PART_OF: &str = "atomicwork-mcp";
/// Label naming the server a token Secret belongs to.
pub(crate) const SERVER_LABEL: &str = "mcp.atomicwork.dev/server";
/// Look again this often even when nothing changes, for eventual consistency.
pub(crate) const RESYNC: Duration = Duration::from_secs(15 * 60);

/// Deployment settings of the controller.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Base URL clients reach the data plane at, e.g. `https://mcp.example.com`.
    pub public_url: BaseUrl,
    /// Keep the connector URL out of `status.url` (it stays in the token Secret).
    pub redact_status_url: bool,
    pub resolve: ResolveOptions,
    /// The operator's own namespace, where runtime records are written for the data
    /// plane.
    pub runtime_namespace: String,
    /// The controller's own Deployment (in `runtime_namespace`), named as the owner of
    /// every runtime record so that removing the operator removes the records, and the
    /// API keys they hold, with it. None leaves the records unowned.
    pub record_owner: Option<OwnerReference>,
}

/// What the controller read for one server.
pub struct Observed<'a> {
    pub server: &'a AtomicworkMcpServer,
    /// The Secrets the server names (API key, client tokens).
    pub secrets: &'a dyn SecretLookup,
    /// The server's token Secret, if it exists.
    pub token_secret: Option<&'a K8sSecret>,
    /// The server's runtime-record Secret, if it exists.
    pub runtime_record: Option<&'a K8sSecret>,
    /// For a server with `spec.auth.oauth`: what the last check of its authorization
    /// server found; `None` when not checked.
    pub issuer: Option<&'a IssuerCheck>,
}

/// What should be done with the token Secret.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenPlan {
    /// It is as it should be (or must not be touched).
    Unchanged,
    /// Server-side apply this Secret.
    Apply(Box<K8sSecret>),
    /// Delete it: the token is revoked.
    Delete,
}

/// What should be done with the server's runtime record (the data plane's copy).
#[derive(Debug, Clone, PartialEq)]
pub enum RecordPlan {
    /// It is as it should be (or there is none and should be none).
    Unchanged,
    /// Server-side apply this Secret.
    Apply(Box<K8sSecret>),
    /// Delete it: the server must not be served.
    Delete,
}

/// An Event to publish about the server. Notes never carry a token or key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Notice {
    pub(crate) warning: bool,
    pub(crate) reason: &'static str,
    pub(crate) action: &'static str,
    pub(crate) note: String,
}

/// The desired state for one server.
#[derive(Debug, Clone, PartialEq)]
pub struct Desired {
    pub token: TokenPlan,
    pub runtime: RecordPlan,
    pub status: AtomicworkMcpServerStatus,
    /// False when the observed status already equals `status` (no write needed).
    pub status_changed: bool,
    /// Why the server is, or is not, Ready (the Ready condition's reason).
    pub(crate) ready: ReadyReason,
    pub(crate) events: Vec<Notice>,
    pub(crate) requeue: Duration,
}

/// Why the token Secret cannot be managed at all.
enum Blocker {
    /// A Secret of that name exists that this controller did not create.
    Foreign(String),
    /// The resource name leaves no room for the token Secret's name.
    NameTooLong,
}

/// The token Secret as found, judged by who owns it.
enum Stored {
    Absent,
    /// Ours and for this very resource; `None` when its token is unusable.
    Ours(Option<TokenRecord>),
    /// Ours, but for an earlier resource of the same name (or without an owner).
    Stale,
    Foreign,
}

/// Computes the desired state. `mint` is called only when a new token is needed.
pub fn desired(
    observed: &Observed<'_>,
    catalog: &Catalog,
    settings: &Settings,
    now: Timestamp,
    mint: &dyn Fn() -> Result<Secret, getrandom::Error>,
) -> Result<Desired, Error> {
    let server = observed.server;
    let name = server
        .metadata
        .name
        .as_deref()
        .ok_or(Error::Incomplete("metadata.name"))?;
    // OAuth servers' tokens name the connector URL, whose base is the public URL.
    let with_public_url;
    let opts = match settings.resolve.public_url {
        Some(_) => &settings.resolve,
        None => {
            with_public_url = ResolveOptions {
                public_url: Some(settings.public_url.clone()),
                ..settings.resolve.clone()
            };
            &with_public_url
        }
    };
    let res = resolve::resolve(server, observed.secrets, catalog, now, opts);
    let expired = res.expires_at.is_some_and(|at| now >= at);
    let rotation = server.rotation();
    let secret_name = token_secret_name(name);
    let stored = judge(server, observed.token_secret);
    let blocker = match &stored {
        _ if secret_name.len() > 253 => Some(Blocker::NameTooLong),
        Stored::Foreign => Some(Blocker::Foreign(secret_name.clone())),
        _ => None,
    };
    let existing = match &stored {
        Stored::Ours(record) => record.clone(),
        _ => None,
    };
    let record = match blocker {
        Some(_) => None,
        None => token::next(
            existing.as_ref(),
            rotation,
            res.expires_at,
            now,
            res.view.is_ok(),
            mint,
        )
        .map_err(Error::Random)?,
    };
    let url = record
        .as_ref()
        .map(|r| token::connector_url(&settings.public_url, &r.token));
    let token = match (&blocker, &record, &url) {
        (Some(_), _, _) => TokenPlan::Unchanged,
        (None, Some(r), Some(url)) => {
            let want = token_secret(server, &secret_name, r, url)?;
            match observed.token_secret {
                Some(have) if secret_matches(have, &want) => TokenPlan::Unchanged,
                _ => TokenPlan::Apply(Box::new(want)),
            }
        }
        _ if matches!(stored, Stored::Ours(_) | Stored::Stale) => TokenPlan::Delete,
        _ => TokenPlan::Unchanged,
    };
    let facts = Facts {
        res: &res,
        blocker: blocker.as_ref(),
        url: url.as_deref(),
        has_token: record.is_some() && blocker.is_none(),
        secret_name: &secret_name,
        expired,
    };
    let auth = auth_state(server, &res.view, observed.issuer);
    let (status, ready, message) = status_of(server, &facts, auth.as_ref(), settings, now);
    let previous = server.status.clone().unwrap_or_default();
    let mut events = token_events(
        existing.as_ref(),
        record.as_ref(),
        &token,
        rotation,
        &secret_name,
    );
    events.extend(ready_event(&previous, ready, &message));
    if let Some((reason, message)) = &auth {
        events.extend(auth_event(&previous, *reason, message));
    }
    let served = match blocker {
        Some(_) => None,
        None => record.as_ref(),
    };
    let runtime = runtime_plan(
        served_record(server, &res, served, now),
        observed.runtime_record,
        &settings.runtime_namespace,
        settings.record_owner.as_ref(),
    );
    Ok(Desired {
        token,
        runtime,
        status_changed: status != previous,
        status,
        ready,
        events,
        requeue: match &auth {
            // Look at the authorization server again soon while it is not usable.
            Some((reason, _)) if reason.status() != Some(true) => {
                requeue(res.expires_at, now).min(AUTH_RECHECK)
            }
            _ => requeue(res.expires_at, now),
        },
    })
}

/// How soon a server whose authorization server is not usable is looked at again.
pub(crate) const AUTH_RECHECK: Duration = Duration::from_secs(30);

/// The `AuthReady` condition's reason and message, for a server with `spec.auth.oauth`.
fn auth_state(
    server: &AtomicworkMcpServer,
    view: &Result<ServerView, Problem>,
    check: Option<&IssuerCheck>,
) -> Option<(AuthReason, String)> {
    let issuer = &server.spec.auth.as_ref()?.oauth.as_ref()?.issuer;
    Some(match (view, check) {
        (Err(Problem::InvalidSpec(_)), _) => (
            AuthReason::InvalidSpec,
            "not checked until the spec is valid; see the Ready condition".into(),
        ),
        (_, None) => (
            AuthReason::NotChecked,
            format!("the authorization server {issuer} has not been checked yet"),
        ),
        (_, Some(IssuerCheck::Ready { keys })) => (
            AuthReason::IssuerReady,
            format!(
                "discovered the authorization server {issuer} and fetched its signing keys ({keys} usable)"
            ),
        ),
        (_, Some(IssuerCheck::Unreachable(why))) => (
            AuthReason::IssuerUnreachable,
            format!(
                "cannot fetch the metadata or keys of the authorization server {issuer} ({why}); until the data plane can, calls are refused with 503"
            ),
        ),
        (_, Some(IssuerCheck::BadMetadata(why))) => (
            AuthReason::IssuerMetadataInvalid,
            format!("the authorization server {issuer} cannot be used: {why}"),
        ),
        (_, Some(IssuerCheck::NoKeys)) => (
            AuthReason::NoSigningKeys,
            format!(
                "the JWKS of the authorization server {issuer} holds no usable signing key (RSA, EC P-256/P-384 or Ed25519; HMAC keys are never used)"
            ),
        ),
    })
}

/// An Event when `AuthReady` changes reason: a Warning unless the issuer is ready.
fn auth_event(
    previous: &AtomicworkMcpServerStatus,
    reason: AuthReason,
    message: &str,
) -> Option<Notice> {
    let before = previous.condition(ConditionType::AuthReady.as_str());
    if before.is_some_and(|b| b.reason == reason.reason()) {
        return None;
    }
    // Not checked is no news, and a server that starts out fine needs no Event beyond
    // Ready's.
    if reason.status().is_none() || (before.is_none() && reason == AuthReason::IssuerReady) {
        return None;
    }
    Some(Notice {
        warning: reason.status() == Some(false),
        reason: reason.reason(),
        action: "CheckIssuer",
        note: message.to_string(),
    })
}

/// The runtime record the data plane should serve the server from, given the token it
/// keeps: none while the resource is being deleted, without a token, or with a token
/// minted under another rotate-token value; an expiry-only record once the token's
/// expiry has passed (its URL answers 403 "expired", whatever else is wrong with the
/// server); otherwise the resolved server, if it resolves.
fn served_record(
    server: &AtomicworkMcpServer,
    res: &Resolution,
    token: Option<&TokenRecord>,
    now: Timestamp,
) -> Option<RuntimeRecord> {
    if server.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let token = token.filter(|t| t.rotation.as_deref() == server.rotation())?;
    let generation = server.metadata.generation;
    let digest = token.token.digest();
    let until = token.valid_until(res.expires_at);
    let view = match until {
        Some(at) if now >= at => ServerView::expired(res.id.clone(), server.display_name(), at),
        _ => {
            let view = res.view.as_ref().ok()?;
            return Some(RuntimeRecord {
                expires_at: until,
                ..RuntimeRecord::from_view(view, digest, generation)
            });
        }
    };
    Some(RuntimeRecord::from_view(&view, digest, generation))
}

/// How to bring the stored record Secret to `want`, owned by `owner` when given.
fn runtime_plan(
    want: Option<RuntimeRecord>,
    have: Option<&K8sSecret>,
    namespace: &str,
    owner: Option<&OwnerReference>,
) -> RecordPlan {
    match (want, have) {
        (None, None) => RecordPlan::Unchanged,
        (None, Some(_)) => RecordPlan::Delete,
        (Some(record), have) => {
            let mut want = record_secret(&record, namespace);
            if let Some(labels) = want.metadata.labels.as_mut() {
                labels.insert(
                    "app.kubernetes.io/managed-by".to_string(),
                    MANAGED_BY.to_string(),
                );
                labels.insert("app.kubernetes.io/part-of".to_string(), PART_OF.to_string());
            }
            want.metadata.owner_references = owner.map(|o| vec![o.clone()]);
            let current = have.filter(|h| {
                runtime_record::record_of(h).is_ok_and(|r| r == record)
                    && owner.is_none_or(|o| {
                        h.metadata
                            .owner_references
                            .iter()
                            .flatten()
                            .any(|have| have.uid == o.uid)
                    })
                    && subset(&want.metadata.labels, &h.metadata.labels)
                    && subset(&want.metadata.annotations, &h.metadata.annotations)
                    && h.type_ == want.type_
            });
            match current {
                Some(_) => RecordPlan::Unchanged,
                None => RecordPlan::Apply(Box::new(want)),
            }
        }
    }
}

/// True when `have` carries every key of `want` with the same value.
fn subset(
    want: &Option<BTreeMap<String, String>>,
    have: &Option<BTreeMap<String, String>>,
) -> bool {
    want.iter()
        .flatten()
        .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
}

/// What the status is computed from.
struct Facts<'a> {
    res: &'a Resolution,
    blocker: Option<&'a Blocker>,
    url: Option<&'a str>,
    has_token: bool,
    secret_name: &'a str,
    expired: bool,
}

fn status_of(
    server: &AtomicworkMcpServer,
    facts: &Facts<'_>,
    auth: Option<&(AuthReason, String)>,
    settings: &Settings,
    now: Timestamp,
) -> (AtomicworkMcpServerStatus, ReadyReason, String) {
    let res = facts.res;
    let (ready, message) = ready_state(
        &res.view,
        facts.blocker,
        res.tools.len(),
        settings,
        facts.secret_name,
    );
    let [reconciling, stalled] = kstatus(ready, &message);
    let mut conditions = vec![
        condition(
            ConditionType::Ready,
            Some(ready.is_ready()),
            ready,
            message.clone(),
        ),
        credentials_condition(&res.view),
        expired_condition(res.expires_at, facts.expired),
        reconciling,
        stalled,
    ];
    if let Some((reason, message)) = auth {
        conditions.push(condition(
            ConditionType::AuthReady,
            reason.status(),
            *reason,
            message.clone(),
        ));
    }
    let previous = server
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let generation = server.metadata.generation;
    let serving = res.view.is_ok() && facts.has_token && !settings.redact_status_url;
    let status = AtomicworkMcpServerStatus {
        url: facts.url.filter(|_| serving).map(str::to_string),
        token_secret_ref: facts.has_token.then(|| SecretRef {
            name: facts.secret_name.to_string(),
        }),
        tool_count: u32::try_from(res.tools.len()).unwrap_or(u32::MAX),
        tools: res.tools.names(),
        expires_at: res.expires_at.map(|t| t.to_string()),
        observed_generation: generation,
        conditions: merge_conditions(previous, conditions, generation, now),
    };
    (status, ready, message)
}

fn judge(server: &AtomicworkMcpServer, secret: Option<&K8sSecret>) -> Stored {
    let Some(secret) = secret else {
        return Stored::Absent;
    };
    if is_controlled_by(secret, server) {
        return Stored::Ours(record_of(secret));
    }
    let managed = secret
        .metadata
        .labels
        .as_ref()
        .and_then(|l| l.get("app.kubernetes.io/managed-by"))
        .is_some_and(|v| v == MANAGED_BY);
    if managed {
        Stored::Stale
    } else {
        Stored::Foreign
    }
}

/// The token Secret as it should be.
fn token_secret(
    server: &AtomicworkMcpServer,
    name: &str,
    record: &TokenRecord,
    url: &str,
) -> Result<K8sSecret, Error> {
    let owner = server
        .controller_owner_ref(&())
        .ok_or(Error::Incomplete("metadata.uid"))?;
    let server_name = server.metadata.name.as_deref().unwrap_or_default();
    let labels = BTreeMap::from([
        (
            "app.kubernetes.io/managed-by".to_string(),
            MANAGED_BY.to_string(),
        ),
        ("app.kubernetes.io/part-of".to_string(), PART_OF.to_string()),
        (SERVER_LABEL.to_string(), label_value(server_name)),
    ]);
    let annotations: BTreeMap<String, String> = [
        record
            .rotation
            .as_ref()
            .map(|r| (ROTATE_ANNOTATION.to_string(), r.clone())),
        record
            .expires_at
            .map(|at| (TOKEN_EXPIRES_ANNOTATION.to_string(), at.to_string())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let annotations = (!annotations.is_empty()).then_some(annotations);
    Ok(K8sSecret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: server.metadata.namespace.clone(),
            labels: Some(labels),
            annotations,
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (
                "token".to_string(),
                ByteString(record.token.expose().as_bytes().to_vec()),
            ),
            ("url".to_string(), ByteString(url.as_bytes().to_vec())),
        ])),
        ..K8sSecret::default()
    })
}

/// A resource name as a label value (at most 63 characters, alphanumeric at both ends).
fn label_value(name: &str) -> String {
    let cut: String = name.chars().take(63).collect();
    cut.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

/// True when `have` already carries everything `want` sets.
fn secret_matches(have: &K8sSecret, want: &K8sSecret) -> bool {
    let owners_ok = want.metadata.owner_references.iter().flatten().all(|w| {
        have.metadata
            .owner_references
            .iter()
            .flatten()
            .any(|h| h.uid == w.uid && h.controller == w.controller && h.kind == w.kind)
    });
    have.data == want.data
        && have.type_ == want.type_
        && subset(&want.metadata.labels, &have.metadata.labels)
        && rotation_of(&have.metadata) == rotation_of(&want.metadata)
        && token_expiry_of(have) == token_expiry_of(want)
        && owners_ok
}

/// Whether the server is Ready, and why, in words for the status.
fn ready_state(
    view: &Result<crate::core::server::ServerView, Problem>,
    blocker: Option<&Blocker>,
    tools: usize,
    settings: &Settings,
    secret_name: &str,
) -> (ReadyReason, String) {
    match (blocker, view) {
        (Some(Blocker::Foreign(name)), _) => (
            ReadyReason::TokenSecretConflict,
            format!(
                "Secret {name} exists but was not created for this server; delete or rename it so the controller can store the token there"
            ),
        ),
        (Some(Blocker::NameTooLong), _) => (
            ReadyReason::InvalidSpec,
            format!(
                "metadata.name is too long: the token Secret name must be at most 253 characters; use a name of at most {} characters",
                253 - TOKEN_SECRET_SUFFIX.len()
            ),
        ),
        (None, Err(problem)) => (ReadyReason::of(problem), problem.to_string()),
        (None, Ok(view)) if view.suspended => (
            ReadyReason::Suspended,
            "spec.suspend is true: the endpoint refuses calls (HTTP 403) and keeps its token; set it to false to resume".into(),
        ),
        (None, Ok(_)) => {
            let where_ = if settings.redact_status_url {
                format!("the connector URL is in Secret {secret_name}, key url")
            } else {
                "the connector URL is in status.url".to_string()
            };
            (
                ReadyReason::Serving,
                format!("serving {tools} tools; {where_}"),
            )
        }
    }
}

fn credentials_condition(view: &Result<crate::core::server::ServerView, Problem>) -> Condition {
    let (reason, ok, message) = match view {
        Err(p @ Problem::SecretNotFound { .. }) => (
            CredentialsReason::SecretNotFound,
            Some(false),
            p.to_string(),
        ),
        Err(p @ Problem::SecretKeyMissing { .. }) => (
            CredentialsReason::SecretKeyMissing,
            Some(false),
            p.to_string(),
        ),
        Err(Problem::InvalidSpec(_)) => (
            CredentialsReason::InvalidSpec,
            None,
            "not checked until the spec is valid; see the Ready condition".into(),
        ),
        _ => (
            CredentialsReason::Resolved,
            Some(true),
            "the API key (and client tokens, when required) were read from their Secrets".into(),
        ),
    };
    condition(ConditionType::CredentialsResolved, ok, reason, message)
}

fn expired_condition(expires_at: Option<Timestamp>, expired: bool) -> Condition {
    match expires_at {
        Some(at) if expired => condition(
            ConditionType::Expired,
            Some(true),
            ExpiryReason::Expired,
            format!(
                "expired at {at}; the URL answers 403 (expired) while spec.expiresAt stays as it is; move spec.expiresAt into the future to mint a new token"
            ),
        ),
        Some(at) => condition(
            ConditionType::Expired,
            Some(false),
            ExpiryReason::NotExpired,
            format!("the token stops working at {at}"),
        ),
        None => condition(
            ConditionType::Expired,
            Some(false),
            ExpiryReason::NoExpiry,
            "spec.expiresAt is not set".into(),
        ),
    }
}

/// Fills in generation and transition times; a condition whose status did not change
/// keeps its previous transition time, so an unchanged server gets an identical status.
fn merge_conditions(
    previous: &[Condition],
    fresh: Vec<Condition>,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    let now = Time(Timestamp::from_second(now.as_second()).unwrap_or(now));
    fresh
        .into_iter()
        .map(|mut c| {
            c.observed_generation = generation;
            c.last_transition_time = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == c.status)
                .map(|p| p.last_transition_time.clone())
                .unwrap_or_else(|| now.clone());
            c
        })
        .collect()
}

fn token_events(
    before: Option<&TokenRecord>,
    after: Option<&TokenRecord>,
    plan: &TokenPlan,
    rotation: Option<&str>,
    secret_name: &str,
) -> Vec<Notice> {
    let minted =
        matches!((before, after), (_, Some(a)) if before.is_none_or(|b| b.token != a.token));
    match (minted, before, plan) {
        (true, None, _) => vec![Notice {
            warning: false,
            reason: "TokenMinted",
            action: "MintToken",
            note: format!("minted a URL token, stored in Secret {secret_name}"),
        }],
        (true, Some(b), _) if b.rotation.as_deref() == rotation => vec![Notice {
            warning: false,
            reason: "TokenMinted",
            action: "MintToken",
            note: format!(
                "minted a new URL token, stored in Secret {secret_name}: spec.expiresAt moved into the future after the previous token expired; the previous URL no longer works"
            ),
        }],
        (true, Some(_), _) => vec![Notice {
            warning: false,
            reason: "TokenRotated",
            action: "RotateToken",
            note: format!(
                "minted a new URL token for rotate-token {:?}; the previous URL stopped working",
                rotation.unwrap_or("")
            ),
        }],
        (false, _, TokenPlan::Delete) => vec![Notice {
            warning: false,
            reason: "TokenRevoked",
            action: "RevokeToken",
            note: format!("deleted Secret {secret_name}; its URL no longer works"),
        }],
        _ => Vec::new(),
    }
}

/// An Event when Ready changes status or reason.
fn ready_event(
    previous: &AtomicworkMcpServerStatus,
    ready: ReadyReason,
    message: &str,
) -> Option<Notice> {
    let status = if ready.is_ready() { "True" } else { "False" };
    let before = previous.condition(ConditionType::Ready.as_str());
    if before.is_some_and(|b| b.status == status && b.reason == ready.reason()) {
        return None;
    }
    Some(Notice {
        warning: ready.is_warning(),
        reason: ready.reason(),
        action: "Reconcile",
        note: message.to_string(),
    })
}

/// Look again at expiry, or after the resync period, whichever comes first.
fn requeue(expires_at: Option<Timestamp>, now: Timestamp) -> Duration {
    match expires_at {
        Some(at) if at > now => {
            let left = Duration::try_from(at.duration_since(now)).unwrap_or(RESYNC);
            (left + Duration::from_millis(100)).min(RESYNC)
        }
        _ => RESYNC,
    }
}
