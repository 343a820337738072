//! The I/O edges of a reconcile: reading what a server refers to, and writing the desired
//! state with server-side apply under one field manager.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions};
use kube::runtime::events::{Event, EventType};
use kube::{Api, Client, Resource};

use crate::k8s::crd::{AtomicworkMcpServer, GROUP};
use crate::k8s::resolve::SecretData;

use super::conditions::Reason;
use super::reconcile::{Desired, Observed, RecordPlan, TokenPlan};
use super::{Context, Error, FIELD_MANAGER, Op};
use crate::core::oauth::IssuerCheck;
use crate::core::server::ServerId;
use crate::core::token::token_secret_name;
use crate::k8s::resolve::secret_data;
use crate::k8s::runtime_record::record_secret_name;
use crate::k8s::scope::ApiCall;
use crate::oauth::IssuerChecker;

/// The calls made here in the servers' namespaces.
pub(crate) const API_CALLS: &[ApiCall] = &[
    ("", "secrets", "get"),
    // A server-side apply that creates the Secret is authorised as create as well.
    ("", "secrets", "create"),
    ("", "secrets", "patch"),
    ("", "secrets", "delete"),
    (GROUP, "atomicworkmcpservers/status", "patch"),
    ("events.k8s.io", "events", "create"),
    // The recorder patches an Event to count repeats.
    ("events.k8s.io", "events", "patch"),
];

/// The calls made here on runtime records, in the operator's own namespace.
pub(crate) const RECORD_API_CALLS: &[ApiCall] = &[
    ("", "secrets", "get"),
    ("", "secrets", "create"),
    ("", "secrets", "patch"),
    ("", "secrets", "delete"),
];

/// What was read for one server.
#[derive(Debug, Default)]
pub(crate) struct Fetched {
    /// Referenced Secrets by (namespace, name); absent ones are simply missing.
    pub(crate) secrets: BTreeMap<(String, String), SecretData>,
    pub(crate) token_secret: Option<K8sSecret>,
    /// The server's runtime record in the operator's namespace.
    pub(crate) runtime_record: Option<K8sSecret>,
    /// For a server with `spec.auth.oauth`: its authorization server, as last checked.
    pub(crate) issuer: Option<IssuerCheck>,
}

impl Fetched {
    /// The observation the pure reconcile works from.
    pub(crate) fn view<'a>(&'a self, server: &'a AtomicworkMcpServer) -> Observed<'a> {
        Observed {
            server,
            secrets: &self.secrets,
            token_secret: self.token_secret.as_ref(),
            issuer: self.issuer.as_ref(),
            runtime_record: self.runtime_record.as_ref(),
        }
    }
}

/// The server's namespace and name; a server read from the API server has both.
fn namespace_and_name(server: &AtomicworkMcpServer) -> Result<(&str, &str), Error> {
    let ns = server
        .metadata
        .namespace
        .as_deref()
        .ok_or(Error::Incomplete("metadata.namespace"))?;
    let name = server
        .metadata
        .name
        .as_deref()
        .ok_or(Error::Incomplete("metadata.name"))?;
    Ok((ns, name))
}

/// Reads the Secrets the server names, its token Secret and its runtime record (in
/// `runtime_namespace`).
pub(crate) async fn dereference(
    client: &Client,
    server: &AtomicworkMcpServer,
    runtime_namespace: &str,
    issuers: &IssuerChecker,
) -> Result<Fetched, Error> {
    let (ns, name) = namespace_and_name(server)?;
    let api: Api<K8sSecret> = Api::namespaced(client.clone(), ns);
    let mut fetched = Fetched::default();
    for secret in referenced(server) {
        if fetched
            .secrets
            .contains_key(&(ns.to_string(), secret.clone()))
        {
            continue;
        }
        if let Some(found) = get(&api, &secret).await? {
            fetched
                .secrets
                .insert((ns.to_string(), secret), secret_data(&found));
        }
    }
    let token_name = token_secret_name(name);
    if is_object_name(&token_name) {
        fetched.token_secret = get(&api, &token_name).await?;
    }
    let records: Api<K8sSecret> = Api::namespaced(client.clone(), runtime_namespace);
    fetched.runtime_record = records
        .get_opt(&record_secret_name(&ServerId::new(ns, name)))
        .await
        .map_err(|source| Error::Kube {
            op: Op::GetRecord,
            source,
        })?;
    // The data plane fetches the keys itself; this check only reports, in the status,
    // whether the authorization server can be used (results are reused for a while).
    if let Some(oauth) = server.spec.auth.as_ref().and_then(|a| a.oauth.as_ref()) {
        fetched.issuer = Some(issuers.check(&oauth.issuer).await);
    }
    Ok(fetched)
}

/// The Secret names the server reads, in a fixed order.
fn referenced(server: &AtomicworkMcpServer) -> Vec<String> {
    let spec = &server.spec;
    let mut names = vec![spec.atomicwork.api_key_secret_ref.name.clone()];
    if spec.require_api_token_auth
        && let Some(r) = &spec.api_token_secret_ref
    {
        names.push(r.name.clone());
    }
    // A name that is not a valid object name cannot exist; resolve reports it missing.
    names.retain(|n| is_object_name(n));
    names
}

/// A DNS subdomain name, as Secret names are.
fn is_object_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name.ends_with(|c: char| c.is_ascii_alphanumeric())
}

async fn get(api: &Api<K8sSecret>, name: &str) -> Result<Option<K8sSecret>, Error> {
    api.get_opt(name).await.map_err(|source| Error::Kube {
        op: Op::GetSecret,
        source,
    })
}

/// Writes the desired state: the token Secret, then the runtime record (so the data
/// plane serves the token before the status announces its URL), then the status (only
/// when it changed), then Events (best effort: a failed Event is logged, not retried).
pub(crate) async fn apply(
    ctx: &Context,
    server: &AtomicworkMcpServer,
    observed: &Fetched,
    desired: &Desired,
) -> Result<(), Error> {
    let (ns, name) = namespace_and_name(server)?;
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let secrets: Api<K8sSecret> = Api::namespaced(ctx.client.clone(), ns);
    match &desired.token {
        TokenPlan::Unchanged => {}
        TokenPlan::Apply(secret) => {
            secrets
                .patch(
                    &token_secret_name(name),
                    &params,
                    &Patch::Apply(secret.as_ref()),
                )
                .await
                .map_err(|source| Error::Kube {
                    op: Op::ApplySecret,
                    source,
                })?;
        }
        TokenPlan::Delete => {
            let uid = observed
                .token_secret
                .as_ref()
                .and_then(|s| s.metadata.uid.clone());
            delete_secret(&secrets, &token_secret_name(name), uid, Op::DeleteSecret).await?;
        }
    }
    let records: Api<K8sSecret> =
        Api::namespaced(ctx.client.clone(), &ctx.settings.runtime_namespace);
    let record_name = record_secret_name(&ServerId::new(ns, name));
    match &desired.runtime {
        RecordPlan::Unchanged => {}
        RecordPlan::Apply(secret) => {
            records
                .patch(&record_name, &params, &Patch::Apply(secret.as_ref()))
                .await
                .map_err(|source| Error::Kube {
                    op: Op::ApplyRecord,
                    source,
                })?;
        }
        RecordPlan::Delete => delete_secret(&records, &record_name, None, Op::DeleteRecord).await?,
    }
    if desired.status_changed {
        let servers: Api<AtomicworkMcpServer> = Api::namespaced(ctx.client.clone(), ns);
        let body = serde_json::json!({
            "apiVersion": AtomicworkMcpServer::api_version(&()),
            "kind": AtomicworkMcpServer::kind(&()),
            "status": desired.status,
        });
        servers
            .patch_status(name, &params, &Patch::Apply(&body))
            .await
            .map_err(|source| Error::Kube {
                op: Op::ApplyStatus,
                source,
            })?;
    }
    log_changes(ns, name, desired);
    publish(ctx, server, desired).await;
    Ok(())
}

/// One line per reconcile that wrote something; never the token.
fn log_changes(ns: &str, name: &str, desired: &Desired) {
    let token = match &desired.token {
        TokenPlan::Unchanged => "kept",
        TokenPlan::Apply(_) => "applied",
        TokenPlan::Delete => "revoked",
    };
    let record = match &desired.runtime {
        RecordPlan::Unchanged => "kept",
        RecordPlan::Apply(_) => "applied",
        RecordPlan::Delete => "deleted",
    };
    if token == "kept" && record == "kept" && !desired.status_changed {
        return;
    }
    tracing::info!(
        server = %format!("{ns}/{name}"),
        token_secret = token,
        runtime_record = record,
        ready = desired.ready.is_ready(),
        reason = desired.ready.reason(),
        tools = desired.status.tool_count,
        "reconciled"
    );
}

/// Deletes the Secret `name` (only the one with `uid`, when given, not a newer one); gone
/// already is fine. `op` names the step in a failure.
pub(crate) async fn delete_secret(
    api: &Api<K8sSecret>,
    name: &str,
    uid: Option<String>,
    op: Op,
) -> Result<(), Error> {
    let params = DeleteParams {
        preconditions: uid.map(|uid| Preconditions {
            uid: Some(uid),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match api.delete(name, &params).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.is_not_found() => Ok(()),
        Err(source) => Err(Error::Kube { op, source }),
    }
}

async fn publish(ctx: &Context, server: &AtomicworkMcpServer, desired: &Desired) {
    let reference = server.object_ref(&());
    for notice in &desired.events {
        let event = Event {
            type_: if notice.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: notice.reason.to_string(),
            note: Some(notice.note.clone()),
            action: notice.action.to_string(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&event, &reference).await {
            tracing::warn!(
                server = %format!("{}/{}", reference.namespace.as_deref().unwrap_or_default(), reference.name.as_deref().unwrap_or_default()),
                reason = notice.reason,
                error = %e,
                "publishing an Event failed"
            );
        }
    }
}
