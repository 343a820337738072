//! The deployment's approval key (`spec.confirm`): one Secret in the operator's own
//! namespace, created once by whichever controller replica starts first and read by every
//! later one. Each server's sealing key is derived from it and handed to the data plane
//! in the server's runtime record, so every replica opens what any other sealed.

use k8s_openapi::api::core::v1::Secret as K8sSecret;
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use crate::core::confirm;
use crate::core::secret::Secret;
use crate::k8s::scope::ApiCall;

/// The Secret's name.
pub const CONFIRM_KEY_SECRET: &str = "atomicwork-mcp-confirm-key";
/// The key inside it.
const DATA_KEY: &str = "key";

/// What reading (and, the first time, creating) the key takes.
pub(crate) const API_CALLS: &[ApiCall] = &[("", "secrets", "get"), ("", "secrets", "create")];

/// The approval key: read from its Secret in `namespace`, or made and stored there when
/// there is none yet. When two replicas race to create it, the loser reads the winner's.
pub(crate) async fn load_or_create(client: &Client, namespace: &str) -> anyhow::Result<Secret> {
    let api: Api<K8sSecret> = Api::namespaced(client.clone(), namespace);
    for _ in 0..3 {
        if let Some(found) = api.get_opt(CONFIRM_KEY_SECRET).await? {
            return key_of(&found).ok_or_else(|| {
                anyhow::anyhow!(
                    "Secret {namespace}/{CONFIRM_KEY_SECRET} holds no usable approval key under {DATA_KEY:?}; delete it and the controller makes a new one (pending approval requests then lapse)"
                )
            });
        }
        let key = confirm::mint_key().map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
        let secret: K8sSecret = serde_json::from_value(serde_json::json!({
            "metadata": {
                "name": CONFIRM_KEY_SECRET,
                "labels": {
                    "app.kubernetes.io/part-of": "atomicwork-mcp",
                    "app.kubernetes.io/managed-by": super::FIELD_MANAGER
                }
            },
            "type": "Opaque",
            "stringData": {DATA_KEY: key.expose()}
        }))?;
        match api.create(&PostParams::default(), &secret).await {
            Ok(created) => {
                tracing::info!(
                    secret = %format!("{namespace}/{}", created.name_any()),
                    "created the approval key"
                );
                return Ok(key);
            }
            // Another replica created it first: read theirs.
            Err(kube::Error::Api(s)) if s.code == 409 => continue,
            Err(e) => return Err(e.into()),
        }
    }
    anyhow::bail!("could not read or create Secret {namespace}/{CONFIRM_KEY_SECRET}")
}

fn key_of(secret: &K8sSecret) -> Option<Secret> {
    let bytes = secret.data.as_ref()?.get(DATA_KEY)?;
    let text = std::str::from_utf8(&bytes.0).ok()?;
    let key = Secret::new(text.trim());
    confirm::key_bytes(&key).map(|_| key)
}
