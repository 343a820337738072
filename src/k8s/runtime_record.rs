//! The runtime record as a Secret in the operator's own namespace: one per server, named
//! from the server's namespace and name, labelled so the data plane can watch exactly
//! these Secrets and nothing else. The controller writes them; the data plane reads them.
//!
//! Layout: the JSON of [`RuntimeRecord`] under [`RECORD_KEY`], its format under
//! [`FORMAT_KEY`], the label [`RECORD_LABEL`]=[`RECORD_LABEL_VALUE`] and annotations
//! naming the source server (a Secret cannot be owned across namespaces, so these say
//! where it comes from).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as K8sSecret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use sha2::{Digest, Sha256};

use crate::core::runtime_record::{RecordError, RuntimeRecord};
use crate::core::server::ServerId;

/// Label on every runtime-record Secret; the data plane watches only Secrets carrying it.
pub const RECORD_LABEL: &str = "mcp.atomicwork.dev/runtime-record";
/// Value of [`RECORD_LABEL`] for records of this layout.
pub const RECORD_LABEL_VALUE: &str = "v1";
/// The label selector of the record watch and list.
pub const RECORD_SELECTOR: &str = "mcp.atomicwork.dev/runtime-record=v1";
/// Annotation naming the namespace of the record's server.
pub const SOURCE_NAMESPACE_ANNOTATION: &str = "mcp.atomicwork.dev/server-namespace";
/// Annotation naming the record's server.
pub const SOURCE_NAME_ANNOTATION: &str = "mcp.atomicwork.dev/server-name";
/// Secret key of the record's JSON.
pub const RECORD_KEY: &str = "record.json";
/// Secret key of the record's format.
pub const FORMAT_KEY: &str = "format";

/// Prefix of every record Secret's name.
const NAME_PREFIX: &str = "awmcp-";
/// Hex digits of the name hash: 64 bits, so two servers never share a record.
const HASH_DIGITS: usize = 16;
/// Longest Secret name.
const MAX_NAME: usize = 253;

/// Why a Secret is not a record to serve.
#[derive(Debug, thiserror::Error)]
pub enum Unreadable {
    #[error("no {0:?} key")]
    Missing(&'static str),
    #[error(transparent)]
    Record(#[from] RecordError),
    #[error("the record is for another server than the Secret's name says")]
    Misplaced,
}

/// The record Secret's name for a server: readable, DNS-safe and unique, e.g.
/// `awmcp-it-ops-change-ops-3f2a9c0d51b7e846`. The hash covers the exact namespace and
/// name, so servers whose readable parts are cut or read alike never collide.
pub fn record_secret_name(id: &ServerId) -> String {
    let exact = format!("{}/{}", id.namespace, id.name);
    let hash: String = Sha256::digest(exact.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()
        .chars()
        .take(HASH_DIGITS)
        .collect();
    let readable: String = format!("{}-{}", id.namespace, id.name)
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .take(MAX_NAME - NAME_PREFIX.len() - HASH_DIGITS - 1)
        .collect();
    format!("{NAME_PREFIX}{}-{hash}", readable.trim_matches('-'))
}

/// The record as the Secret that carries it, in `namespace`.
pub fn record_secret(record: &RuntimeRecord, namespace: &str) -> K8sSecret {
    let id = record.id();
    K8sSecret {
        metadata: ObjectMeta {
            name: Some(record_secret_name(&id)),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                RECORD_LABEL.to_string(),
                RECORD_LABEL_VALUE.to_string(),
            )])),
            annotations: Some(BTreeMap::from([
                (SOURCE_NAMESPACE_ANNOTATION.to_string(), id.namespace),
                (SOURCE_NAME_ANNOTATION.to_string(), id.name),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([
            (
                FORMAT_KEY.to_string(),
                ByteString(record.format().as_bytes().to_vec()),
            ),
            (RECORD_KEY.to_string(), ByteString(record.to_json())),
        ])),
        ..K8sSecret::default()
    }
}

/// The server a record Secret says it is for, from its annotations.
pub fn source_of(secret: &K8sSecret) -> Option<ServerId> {
    let annotations = secret.metadata.annotations.as_ref()?;
    Some(ServerId::new(
        annotations.get(SOURCE_NAMESPACE_ANNOTATION)?,
        annotations.get(SOURCE_NAME_ANNOTATION)?,
    ))
}

/// The record a Secret carries. Refused when a key is missing, the format is not this
/// code's, the JSON is damaged, or the record names a server other than the one the
/// Secret's name is derived from.
pub fn record_of(secret: &K8sSecret) -> Result<RuntimeRecord, Unreadable> {
    let data = secret
        .data
        .as_ref()
        .ok_or(Unreadable::Missing(RECORD_KEY))?;
    let format = data
        .get(FORMAT_KEY)
        .ok_or(Unreadable::Missing(FORMAT_KEY))?;
    let json = data
        .get(RECORD_KEY)
        .ok_or(Unreadable::Missing(RECORD_KEY))?;
    let record = RuntimeRecord::from_json(&String::from_utf8_lossy(&format.0), &json.0)?;
    if secret.metadata.name.as_deref() != Some(record_secret_name(&record.id()).as_str()) {
        return Err(Unreadable::Misplaced);
    }
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::secret::{Secret, TokenHash};

    fn record(ns: &str, name: &str) -> RuntimeRecord {
        RuntimeRecord {
            namespace: ns.into(),
            name: name.into(),
            display_name: name.into(),
            generation: Some(1),
            token_digest: TokenHash::of("t"),
            base_url: crate::core::base_url::BaseUrl::parse("https://acme.atomicwork.com")
                .expect("a test base URL"),
            api_key: Secret::new("k"),
            workspace_id: None,
            tools: vec!["list_all_atomicwork_audit_logs".into()],
            tool_set: Default::default(),
            tool_overrides: Default::default(),
            exposure: Default::default(),
            expires_at: None,
            suspended: false,
            dry_run: false,
            rate_limit: None,
            retry: None,
            timeout_millis: None,
            max_result_chars: 1000,
            client_token_digests: None,
            oauth: None,
            confirm: None,
        }
    }

    /// A DNS subdomain of at most 253 characters.
    fn is_dns_subdomain(name: &str) -> bool {
        name.len() <= 253
            && name.split('.').all(|label| {
                !label.is_empty()
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && label.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && label.ends_with(|c: char| c.is_ascii_alphanumeric())
            })
    }

    #[test]
    fn names_are_readable_dns_safe_and_distinct() {
        let short = record_secret_name(&ServerId::new("it-ops", "change-ops"));
        assert!(short.starts_with("awmcp-it-ops-change-ops-"), "{short}");
        assert!(is_dns_subdomain(&short), "{short}");
        assert_eq!(
            short,
            record_secret_name(&ServerId::new("it-ops", "change-ops"))
        );

        // Namespace and name split differently read alike, and long names are cut.
        let long = "a".repeat(253);
        let ids = [
            ServerId::new("a-b", "c"),
            ServerId::new("a", "b-c"),
            ServerId::new("a", "b.c"),
            ServerId::new("x".repeat(63), long.clone()),
            ServerId::new("x".repeat(63), format!("{}b", &long[..252])),
            ServerId::new("ns", "name.with.dots."),
        ];
        let names: Vec<String> = ids.iter().map(record_secret_name).collect();
        for n in &names {
            assert!(is_dns_subdomain(n), "{n}");
        }
        let distinct: std::collections::BTreeSet<&String> = names.iter().collect();
        assert_eq!(distinct.len(), names.len(), "{names:#?}");
    }

    #[test]
    fn a_record_round_trips_through_its_secret() {
        let r = record("it-ops", "change-ops");
        let secret = record_secret(&r, "atomicwork-mcp");
        assert_eq!(secret.metadata.namespace.as_deref(), Some("atomicwork-mcp"));
        assert_eq!(
            secret
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get(RECORD_LABEL)),
            Some(&RECORD_LABEL_VALUE.to_string())
        );
        assert_eq!(
            RECORD_SELECTOR,
            format!("{RECORD_LABEL}={RECORD_LABEL_VALUE}")
        );
        assert_eq!(source_of(&secret), Some(r.id()));
        // Through JSON, as the API server hands it back.
        let json = serde_json::to_value(&secret).expect("JSON");
        let back: K8sSecret = serde_json::from_value(json).expect("Secret");
        assert_eq!(record_of(&back).expect("readable"), r);
    }

    #[test]
    fn a_damaged_or_misplaced_record_is_refused() {
        let r = record("it-ops", "change-ops");
        let mut no_format = record_secret(&r, "op");
        if let Some(d) = no_format.data.as_mut() {
            d.remove(FORMAT_KEY);
        }
        assert!(matches!(
            record_of(&no_format),
            Err(Unreadable::Missing(FORMAT_KEY))
        ));
        let mut misplaced = record_secret(&r, "op");
        misplaced.metadata.name = Some(record_secret_name(&ServerId::new("it-ops", "other")));
        assert!(matches!(record_of(&misplaced), Err(Unreadable::Misplaced)));
        let mut newer = record_secret(&r, "op");
        if let Some(d) = newer.data.as_mut() {
            d.insert(FORMAT_KEY.into(), ByteString(b"5".to_vec()));
        }
        assert!(matches!(record_of(&newer), Err(Unreadable::Record(_))));
    }
}
