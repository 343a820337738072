//! URL-token lifecycle, shared by the controller and local mode: a token lives until it is
//! rotated (the rotate annotation changes) or revoked (the server expires).

use crate::secret::Secret;

/// Suffix of the Secret that holds a server's token: `<name>-mcp-token`.
pub const TOKEN_SECRET_SUFFIX: &str = "-mcp-token";

/// The name of the Secret holding a server's token.
pub fn token_secret_name(server_name: &str) -> String {
    format!("{server_name}{TOKEN_SECRET_SUFFIX}")
}

/// A stored token value, if it is one this project could have minted: at least 32
/// characters and no whitespace inside.
pub fn usable_token(bytes: &[u8]) -> Option<Secret> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    (text.len() >= 32 && !text.contains(char::is_whitespace)).then(|| Secret::new(text))
}

/// A stored token and the rotate-annotation value it was minted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    pub token: Secret,
    pub rotation: Option<String>,
}

/// What to do with a server's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenAction {
    /// Keep the stored token (the normal case: reconciles and restarts never change it).
    Keep,
    /// Mint a new token (none yet, or rotation was asked for).
    Mint,
    /// Delete the stored token (the server expired).
    Revoke,
    /// Nothing stored and nothing to store.
    None,
}

/// Decides from the stored record, the current rotate annotation and whether the server
/// has expired.
pub fn decide(
    existing: Option<&TokenRecord>,
    rotation: Option<&str>,
    expired: bool,
) -> TokenAction {
    match (existing, expired) {
        (Some(_), true) => TokenAction::Revoke,
        (None, true) => TokenAction::None,
        (None, false) => TokenAction::Mint,
        (Some(r), false) if r.rotation.as_deref() != rotation => TokenAction::Mint,
        (Some(_), false) => TokenAction::Keep,
    }
}

/// The record a server should have after [`decide`]: the stored one kept, a new one from
/// `mint` for the current rotate-annotation value, or none (revoked at expiry). A new
/// token is minted only for a server that can be served (`servable`); until then a
/// rotation waits and the stored token is kept.
pub fn next(
    existing: Option<&TokenRecord>,
    rotation: Option<&str>,
    expired: bool,
    servable: bool,
    mint: impl FnOnce() -> Result<Secret, getrandom::Error>,
) -> Result<Option<TokenRecord>, getrandom::Error> {
    Ok(match decide(existing, rotation, expired) {
        TokenAction::Keep => existing.cloned(),
        TokenAction::Mint if servable => Some(TokenRecord {
            token: mint()?,
            rotation: rotation.map(str::to_string),
        }),
        TokenAction::Mint => existing.cloned(),
        TokenAction::Revoke | TokenAction::None => None,
    })
}

/// The connector URL for a token.
pub fn connector_url(public_url: &str, token: &Secret) -> String {
    format!(
        "{}/mcp/{}",
        public_url.trim_end_matches('/'),
        token.expose()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(rotation: Option<&str>) -> TokenRecord {
        TokenRecord {
            token: Secret::new("t"),
            rotation: rotation.map(str::to_string),
        }
    }

    #[test]
    fn lifecycle_table() {
        let cases = [
            (None, None, false, TokenAction::Mint),
            (Some(rec(None)), None, false, TokenAction::Keep),
            (Some(rec(Some("1"))), Some("1"), false, TokenAction::Keep),
            (Some(rec(Some("1"))), Some("2"), false, TokenAction::Mint),
            (Some(rec(None)), Some("1"), false, TokenAction::Mint),
            (Some(rec(Some("1"))), None, false, TokenAction::Mint),
            (Some(rec(None)), None, true, TokenAction::Revoke),
            (None, None, true, TokenAction::None),
        ];
        for (existing, rotation, expired, want) in cases {
            assert_eq!(
                decide(existing.as_ref(), rotation, expired),
                want,
                "{existing:?} {rotation:?} {expired}"
            );
        }
    }

    #[test]
    fn urls_join_cleanly() {
        let t = Secret::new("abc");
        assert_eq!(
            connector_url("https://mcp.example.com/", &t),
            "https://mcp.example.com/mcp/abc"
        );
    }
}
