//! A person approves a tool call before it runs: which calls need approval, and the sealed
//! `requestState` that carries an approval request from one round trip to the next
//! (MCP 2026-07-28 multi-round-trip requests). Nothing is remembered between requests: the
//! state is sealed with a key every replica of the server shares (HMAC-SHA256), bound to
//! the server, the tool, a digest of the arguments and the time it was issued, and it
//! carries nothing secret in clear. Any replica can check it.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::core::catalog::Tool;
use crate::core::secret::Secret;

/// Default lifetime of an approval request, in seconds.
pub(crate) const DEFAULT_TTL_SECONDS: u32 = 300;
/// Bytes of a sealing key.
pub(crate) const KEY_BYTES: usize = 32;
/// Longest `requestState` accepted, in bytes (a real one is about 200).
pub(crate) const MAX_STATE_BYTES: usize = 2_048;
/// The key of the one input request the server sends, and of its response.
pub(crate) const INPUT_KEY: &str = "approval";
/// The form field that carries the person's decision.
pub(crate) const APPROVE_FIELD: &str = "approve";

/// Which tool calls need a person's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ConfirmTools {
    /// None.
    #[default]
    None,
    /// Tools annotated `destructiveHint`.
    Destructive,
    /// Every tool that is not a read.
    Writes,
}

/// What happens to a call needing approval from a client that cannot ask a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum LegacyClients {
    /// The call is refused with a result saying why.
    #[default]
    Refuse,
    /// The call runs without approval.
    Allow,
}

/// A server's approval policy with its sealing key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ConfirmPolicy {
    pub(crate) tools: ConfirmTools,
    pub(crate) legacy_clients: LegacyClients,
    pub(crate) ttl: Duration,
    /// This server's sealing key ([`KEY_BYTES`] bytes).
    pub(crate) key: Secret,
}

impl std::fmt::Debug for ConfirmPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfirmPolicy")
            .field("tools", &self.tools)
            .field("legacy_clients", &self.legacy_clients)
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl ConfirmPolicy {
    /// True when calling `tool` needs a person's approval.
    pub(crate) fn needs(&self, tool: &Tool) -> bool {
        match self.tools {
            ConfirmTools::None => false,
            ConfirmTools::Destructive => tool.annotations.destructive_hint,
            ConfirmTools::Writes => !tool.is_read(),
        }
    }
}

/// A server's own sealing key, derived from the deployment's key and the server's
/// identity, so a state sealed for one server never opens for another and a key read from
/// one server's record says nothing about another's.
pub(crate) fn server_key(master: &[u8], server: &str) -> Secret {
    let mut mac = keyed(master);
    mac.update(b"atomicwork-mcp confirm key v1\0");
    mac.update(server.as_bytes());
    Secret::new(URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()))
}

/// A fresh random key, as base64url text.
pub(crate) fn mint_key() -> Result<Secret, getrandom::Error> {
    let mut bytes = [0u8; KEY_BYTES];
    getrandom::fill(&mut bytes)?;
    Ok(Secret::new(URL_SAFE_NO_PAD.encode(bytes)))
}

/// The key bytes of a base64url key text, when it is one.
pub(crate) fn key_bytes(key: &Secret) -> Option<Vec<u8>> {
    let bytes = URL_SAFE_NO_PAD.decode(key.expose().trim()).ok()?;
    (bytes.len() >= KEY_BYTES).then_some(bytes)
}

/// The digest the state binds the arguments by: SHA-256 of their JSON text with keys in
/// order (serde_json's maps are sorted), so the same arguments give the same digest on
/// every replica.
pub(crate) fn arguments_digest(args: &serde_json::Map<String, serde_json::Value>) -> String {
    let text = serde_json::to_vec(args).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(Sha256::digest(&text))
}

/// What a sealed state says, in clear (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Claims {
    /// Format.
    v: u8,
    /// The server (`namespace/name`).
    s: String,
    /// The tool.
    t: String,
    /// Digest of the arguments.
    a: String,
    /// Issued, in seconds since the Unix epoch.
    i: u64,
}

/// Why a state was not accepted. Messages are for the model and the audit log: they never
/// quote the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum StateError {
    /// Not a state this server writes.
    #[error("the approval state is not one this server issued")]
    Malformed,
    /// Its seal does not verify: altered, or made without the key.
    #[error("the approval state has been altered or was not issued by this server")]
    Forged,
    /// Issued by another server.
    #[error("the approval state was issued by another MCP server")]
    OtherServer,
    /// Issued for another tool.
    #[error("the approval state was issued for another tool")]
    OtherTool,
    /// The arguments changed since the approval was asked for.
    #[error("the arguments differ from the ones the approval was asked for")]
    ChangedArguments,
    /// Older than its lifetime.
    #[error("the approval request has expired")]
    Expired,
}

impl StateError {
    /// The audit-log word for it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            StateError::Malformed => "malformed",
            StateError::Forged => "forged",
            StateError::OtherServer => "other_server",
            StateError::OtherTool => "other_tool",
            StateError::ChangedArguments => "changed_arguments",
            StateError::Expired => "expired",
        }
    }
}

fn keyed(key: &[u8]) -> Hmac<Sha256> {
    // HMAC takes a key of any length; this never fails.
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// Seals a state for `tool` with `args_digest` on `server`, issued at `now` (seconds).
pub(crate) fn seal(key: &[u8], server: &str, tool: &str, args_digest: &str, now: u64) -> String {
    let claims = Claims {
        v: 1,
        s: server.to_string(),
        t: tool.to_string(),
        a: args_digest.to_string(),
        i: now,
    };
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
    let mut mac = keyed(key);
    mac.update(payload.as_bytes());
    let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{payload}.{tag}")
}

/// Opens a state: its seal must verify with `key`, and it must have been issued by
/// `server` for `tool` with these arguments within `ttl` of `now`. Gives the time it was
/// issued (Unix seconds).
pub(crate) fn open(
    key: &[u8],
    state: &str,
    server: &str,
    tool: &str,
    args_digest: &str,
    now: u64,
    ttl: Duration,
) -> Result<u64, StateError> {
    if state.len() > MAX_STATE_BYTES {
        return Err(StateError::Malformed);
    }
    let (payload, tag) = state.split_once('.').ok_or(StateError::Malformed)?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag)
        .map_err(|_| StateError::Malformed)?;
    let claims: Claims = URL_SAFE_NO_PAD
        .decode(payload)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .ok_or(StateError::Malformed)?;
    if claims.s != server {
        return Err(StateError::OtherServer);
    }
    let mut mac = keyed(key);
    mac.update(payload.as_bytes());
    mac.verify_slice(&tag).map_err(|_| StateError::Forged)?;
    if claims.v != 1 {
        return Err(StateError::Malformed);
    }
    if claims.t != tool {
        return Err(StateError::OtherTool);
    }
    if claims.a != args_digest {
        return Err(StateError::ChangedArguments);
    }
    if claims.i > now.saturating_add(60) || now.saturating_sub(claims.i) > ttl.as_secs() {
        return Err(StateError::Expired);
    }
    Ok(claims.i)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: &str = "it-ops/service-desk";

    fn key() -> Vec<u8> {
        let master = [7u8; KEY_BYTES];
        key_bytes(&server_key(&master, SERVER)).expect("a key")
    }

    #[test]
    fn a_state_opens_only_for_its_server_tool_arguments_and_lifetime() {
        let key = key();
        let ttl = Duration::from_secs(300);
        let state = seal(&key, SERVER, "delete_a_request", "digest-1", 1_000);
        assert_eq!(
            open(
                &key,
                &state,
                SERVER,
                "delete_a_request",
                "digest-1",
                1_200,
                ttl
            ),
            Ok(1_000)
        );
        let cases = [
            (
                "it-ops/other",
                "delete_a_request",
                "digest-1",
                1_200,
                StateError::OtherServer,
            ),
            (
                SERVER,
                "update_a_request",
                "digest-1",
                1_200,
                StateError::OtherTool,
            ),
            (
                SERVER,
                "delete_a_request",
                "digest-2",
                1_200,
                StateError::ChangedArguments,
            ),
            (
                SERVER,
                "delete_a_request",
                "digest-1",
                1_301,
                StateError::Expired,
            ),
            (
                SERVER,
                "delete_a_request",
                "digest-1",
                100,
                StateError::Expired,
            ),
        ];
        for (server, tool, args, now, want) in cases {
            assert_eq!(
                open(&key, &state, server, tool, args, now, ttl),
                Err(want),
                "{server} {tool} {args} {now}"
            );
        }
    }

    #[test]
    fn a_state_sealed_with_another_key_or_altered_is_forged() {
        let key = key();
        let ttl = Duration::from_secs(300);
        let other = key_bytes(&server_key(&[8u8; KEY_BYTES], SERVER)).expect("a key");
        let state = seal(&other, SERVER, "t", "d", 1_000);
        assert_eq!(
            open(&key, &state, SERVER, "t", "d", 1_000, ttl),
            Err(StateError::Forged)
        );
        // The claims edited in clear (a later issue time), the tag kept.
        let good = seal(&key, SERVER, "t", "d", 1_000);
        let (_, tag) = good.split_once('.').expect("two parts");
        let later = seal(&key, SERVER, "t", "d", 5_000);
        let (payload, _) = later.split_once('.').expect("two parts");
        let spliced = format!("{payload}.{tag}");
        assert_eq!(
            open(&key, &spliced, SERVER, "t", "d", 5_000, ttl),
            Err(StateError::Forged)
        );
        for junk in ["", "abc", "a.b", &"x".repeat(MAX_STATE_BYTES + 1)] {
            assert_eq!(
                open(&key, junk, SERVER, "t", "d", 1_000, ttl),
                Err(StateError::Malformed),
                "{junk}"
            );
        }
    }

    #[test]
    fn servers_get_distinct_keys_and_states_carry_no_secret() {
        let master = [7u8; KEY_BYTES];
        let a = server_key(&master, "it-ops/a");
        let b = server_key(&master, "it-ops/b");
        assert_ne!(a.expose(), b.expose());
        assert_eq!(a.expose(), server_key(&master, "it-ops/a").expose());
        let key = key_bytes(&a).expect("a key");
        let state = seal(&key, "it-ops/a", "t", "d", 1);
        assert!(!state.contains(a.expose()));
        let text = String::from_utf8(
            URL_SAFE_NO_PAD
                .decode(state.split('.').next().unwrap_or_default())
                .expect("base64"),
        )
        .expect("utf-8");
        assert_eq!(text, r#"{"v":1,"s":"it-ops/a","t":"t","a":"d","i":1}"#);
    }

    #[test]
    fn argument_digests_ignore_key_order_and_see_every_value() {
        let a: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"id":"ITREQ-1","body":{"x":1,"y":2}}"#).expect("json");
        let b: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"body":{"y":2,"x":1},"id":"ITREQ-1"}"#).expect("json");
        let c: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(r#"{"body":{"y":2,"x":1},"id":"ITREQ-2"}"#).expect("json");
        assert_eq!(arguments_digest(&a), arguments_digest(&b));
        assert_ne!(arguments_digest(&a), arguments_digest(&c));
    }

    #[test]
    fn keys_must_be_long_enough() {
        assert!(key_bytes(&Secret::new("short")).is_none());
        let minted = mint_key().expect("random");
        assert_eq!(key_bytes(&minted).map(|k| k.len()), Some(KEY_BYTES));
    }
}
