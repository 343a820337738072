//! The token Secret as the controller writes and reads it: which resource controls it,
//! and the token record it holds.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret as K8sSecret;

use crate::core::token::{TokenRecord, usable_token};
use crate::k8s::crd::{AtomicworkMcpServer, rotation_of};

/// Annotation on a token Secret: the `expiresAt` the token was last kept under (RFC 3339).
/// Once that instant has passed the token never grants access again, whatever the
/// resource says later; the data plane keeps its URL answering 403 "expired".
pub(crate) const TOKEN_EXPIRES_ANNOTATION: &str = "mcp.atomicwork.dev/token-expires-at";

/// True when the Secret is controlled by this very resource (same UID).
pub(crate) fn is_controlled_by(secret: &K8sSecret, server: &AtomicworkMcpServer) -> bool {
    let Some(uid) = server.metadata.uid.as_deref() else {
        return false;
    };
    secret
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| o.controller == Some(true) && o.uid == uid)
}

/// The usable token in a token Secret, if any, with the rotate-token value it was minted
/// under and the expiry it was kept under.
pub(crate) fn record_of(secret: &K8sSecret) -> Option<TokenRecord> {
    Some(TokenRecord {
        token: usable_token(&secret.data.as_ref()?.get("token")?.0)?,
        rotation: rotation_of(&secret.metadata).map(str::to_string),
        expires_at: token_expiry_of(secret),
    })
}

/// The [`TOKEN_EXPIRES_ANNOTATION`] of a token Secret. A value that is not an instant
/// reads as the earliest one, so a damaged annotation can only end a token, never extend
/// it.
pub(crate) fn token_expiry_of(secret: &K8sSecret) -> Option<Timestamp> {
    let text = secret
        .metadata
        .annotations
        .as_ref()?
        .get(TOKEN_EXPIRES_ANNOTATION)?;
    Some(text.trim().parse().unwrap_or(Timestamp::MIN))
}
