//! URL-token lifecycle, shared by the controller and local mode: a token lives until it is
//! rotated (the rotate annotation changes) or its resource is deleted. At `expiresAt` it
//! stops granting access but is kept, so its URL answers 403 "expired" (a client always
//! learns why); moving `expiresAt` into the future afterwards mints a new token.

use jiff::Timestamp;

use crate::core::base_url::BaseUrl;
use crate::core::secret::Secret;

/// Suffix of the Secret that holds a server's token: `<name>-mcp-token`.
pub(crate) const TOKEN_SECRET_SUFFIX: &str = "-mcp-token";

/// The name of the Secret holding a server's token.
pub(crate) fn token_secret_name(server_name: &str) -> String {
    format!("{server_name}{TOKEN_SECRET_SUFFIX}")
}

/// A stored token value, if it is one this project could have minted: at least 32
/// characters and no whitespace inside.
pub(crate) fn usable_token(bytes: &[u8]) -> Option<Secret> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    (text.len() >= 32 && !text.contains(char::is_whitespace)).then(|| Secret::new(text))
}

/// A stored token, the rotate-annotation value it was minted under and the `expiresAt` it
/// was last kept under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TokenRecord {
    pub(crate) token: Secret,
    pub(crate) rotation: Option<String>,
    /// The resource's `expiresAt` when the token was last minted or kept. Once that instant
    /// has passed the token never grants access again: the URL answers 403 until the
    /// resource is deleted, the token rotated, or a later `expiresAt` mints a new token.
    pub(crate) expires_at: Option<Timestamp>,
}

impl TokenRecord {
    /// The instant this token stops (or stopped) granting access, given the resource's
    /// current `expiresAt`: the earlier of that and the expiry the token was kept under.
    /// Serving by this instant means a token whose expiry has passed is never served
    /// again, even before a reconcile has replaced it.
    pub(crate) fn valid_until(&self, spec_expires_at: Option<Timestamp>) -> Option<Timestamp> {
        match (self.expires_at, spec_expires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// True when the expiry the token was kept under has passed.
    fn has_expired(&self, now: Timestamp) -> bool {
        self.expires_at.is_some_and(|at| now >= at)
    }
}

/// What to do with a server's token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenAction {
    /// Keep the stored token (the normal case: reconciles and restarts never change it).
    /// An expired server keeps its token too, so its URL keeps answering 403 "expired".
    Keep,
    /// Mint a new token (none yet, rotation was asked for, or `expiresAt` moved into the
    /// future after the token had expired).
    Mint,
    /// Drop the stored token: rotation was asked for while the server is expired, so the
    /// old URL goes (404) and a new token waits until `expiresAt` is in the future.
    Revoke,
    /// Nothing stored and nothing to store.
    None,
}

/// Decides from the stored record, the current rotate annotation and the resource's
/// `expiresAt` at `now`.
pub(crate) fn decide(
    existing: Option<&TokenRecord>,
    rotation: Option<&str>,
    expires_at: Option<Timestamp>,
    now: Timestamp,
) -> TokenAction {
    let expired = expires_at.is_some_and(|at| now >= at);
    match existing {
        None if expired => TokenAction::None,
        None => TokenAction::Mint,
        Some(r) if r.rotation.as_deref() != rotation => {
            if expired {
                TokenAction::Revoke
            } else {
                TokenAction::Mint
            }
        }
        Some(_) if expired => TokenAction::Keep,
        Some(r) if r.has_expired(now) => TokenAction::Mint,
        Some(_) => TokenAction::Keep,
    }
}

/// The record a server should have after [`decide`]: the stored one kept (noting the
/// current `expiresAt`), a new one from `mint` for the current rotate-annotation value, or
/// none. A new token is minted only for a server that can be served (`servable`); until
/// then a rotation (or a re-mint after expiry) waits and the stored record is kept as is.
pub(crate) fn next(
    existing: Option<&TokenRecord>,
    rotation: Option<&str>,
    expires_at: Option<Timestamp>,
    now: Timestamp,
    servable: bool,
    mint: impl FnOnce() -> Result<Secret, getrandom::Error>,
) -> Result<Option<TokenRecord>, getrandom::Error> {
    Ok(match decide(existing, rotation, expires_at, now) {
        TokenAction::Keep => existing.map(|r| TokenRecord {
            expires_at,
            ..r.clone()
        }),
        TokenAction::Mint if servable => Some(TokenRecord {
            token: mint()?,
            rotation: rotation.map(str::to_string),
            expires_at,
        }),
        TokenAction::Mint => existing.cloned(),
        TokenAction::Revoke | TokenAction::None => None,
    })
}

/// The connector URL for a token.
pub(crate) fn connector_url(public_url: &BaseUrl, token: &Secret) -> String {
    format!("{public_url}/mcp/{}", token.expose())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(rotation: Option<&str>) -> TokenRecord {
        TokenRecord {
            token: Secret::new("t"),
            rotation: rotation.map(str::to_string),
            expires_at: None,
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).expect("instant")
    }

    /// A record kept under `expires_at`.
    fn kept_until(expires_at: i64) -> TokenRecord {
        TokenRecord {
            expires_at: Some(at(expires_at)),
            ..rec(None)
        }
    }

    #[test]
    fn lifecycle_table() {
        let now = at(0);
        let past = Some(at(-5));
        let future = Some(at(600));
        let cases = [
            (None, None, None, TokenAction::Mint),
            (Some(rec(None)), None, None, TokenAction::Keep),
            (Some(rec(Some("1"))), Some("1"), None, TokenAction::Keep),
            (Some(rec(Some("1"))), Some("2"), None, TokenAction::Mint),
            (Some(rec(None)), Some("1"), None, TokenAction::Mint),
            (Some(rec(Some("1"))), None, None, TokenAction::Mint),
            // Expiry keeps the token (its URL answers 403); only rotation drops it.
            (Some(rec(None)), None, past, TokenAction::Keep),
            (Some(kept_until(-5)), None, past, TokenAction::Keep),
            (Some(rec(Some("1"))), Some("2"), past, TokenAction::Revoke),
            (None, None, past, TokenAction::None),
            // A later expiresAt: kept while the token is valid, a new one once it expired.
            (Some(kept_until(60)), None, future, TokenAction::Keep),
            (Some(kept_until(-5)), None, future, TokenAction::Mint),
            (Some(kept_until(-5)), None, None, TokenAction::Mint),
        ];
        for (existing, rotation, expires_at, want) in cases {
            assert_eq!(
                decide(existing.as_ref(), rotation, expires_at, now),
                want,
                "{existing:?} {rotation:?} {expires_at:?}"
            );
        }
    }

    #[test]
    fn an_expired_token_is_kept_and_never_valid_again() {
        let now = at(0);
        let mint = || Ok(Secret::new("new"));
        let valid = kept_until(600);
        let expired = next(Some(&valid), None, Some(at(-5)), now, true, mint)
            .expect("no randomness needed")
            .expect("the token is kept at expiry");
        assert_eq!(expired.token, valid.token);
        assert_eq!(expired.expires_at, Some(at(-5)));
        assert_eq!(expired.valid_until(Some(at(-5))), Some(at(-5)));
        // Seen again with a later expiresAt before a new token is minted: still expired.
        assert_eq!(expired.valid_until(Some(at(3600))), Some(at(-5)));
        let renewed = next(Some(&expired), None, Some(at(3600)), now, true, mint)
            .expect("minted")
            .expect("a record");
        assert_eq!(renewed.token, Secret::new("new"));
        assert_eq!(renewed.valid_until(Some(at(3600))), Some(at(3600)));
        // Not servable yet: the expired record waits, unchanged.
        let waiting = next(Some(&expired), None, Some(at(3600)), now, false, mint)
            .expect("no randomness needed");
        assert_eq!(waiting.as_ref(), Some(&expired));
    }

    #[test]
    fn moving_expiry_while_valid_keeps_the_token() {
        let now = at(0);
        let kept = next(
            Some(&kept_until(60)),
            None,
            Some(at(7200)),
            now,
            true,
            || panic!("no new token"),
        )
        .expect("kept")
        .expect("a record");
        assert_eq!(kept.token, Secret::new("t"));
        assert_eq!(kept.expires_at, Some(at(7200)));
    }

    #[test]
    fn urls_join_cleanly() {
        let t = Secret::new("abc");
        assert_eq!(
            connector_url(
                &BaseUrl::parse("https://mcp.example.com/").expect("a test base URL"),
                &t
            ),
            "https://mcp.example.com/mcp/abc"
        );
    }
}
