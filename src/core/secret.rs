//! A string that must never reach a log line, an Event, an error or a status field.

use std::fmt;
use std::sync::Arc;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// An API key or token. `Debug` and `Display` print `[redacted]`; the value is read only
/// through [`Secret::expose`], which makes every use easy to find.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Arc<str>);

impl Secret {
    pub fn new(value: impl Into<Arc<str>>) -> Self {
        Secret(value.into())
    }

    /// The secret value. Call only where it is sent (an HTTP header) or stored (a Secret).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 digest, the form in which tokens are indexed and compared.
    pub(crate) fn digest(&self) -> TokenHash {
        TokenHash::of(self.expose())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// SHA-256 of a token. Lookups go by digest, so a guessed token is never compared with a
/// real one byte by byte, and the time a lookup takes says nothing about the real token.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    pub fn of(token: &str) -> Self {
        TokenHash(Sha256::digest(token.as_bytes()).into())
    }

    /// Constant-time equality, for comparing against a list of accepted digests.
    pub(crate) fn ct_eq(&self, other: &TokenHash) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash({:02x}{:02x}..)", self.0[0], self.0[1])
    }
}

/// A new URL token: 256 bits from the OS CSPRNG, base64url without padding (43 characters).
pub fn mint_token() -> Result<Secret, getrandom::Error> {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(Secret::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let s = Secret::new("sk-live-123");
        assert_eq!(format!("{s:?} {s}"), "[redacted] [redacted]");
        assert_eq!(s.expose(), "sk-live-123");
    }

    #[test]
    fn minted_tokens_are_long_url_safe_and_distinct() {
        let a = mint_token().expect("os rng");
        let b = mint_token().expect("os rng");
        assert_eq!(a.expose().len(), 43);
        assert!(
            a.expose()
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        );
        assert_ne!(a, b);
    }

    #[test]
    fn digests_compare_by_value() {
        assert!(TokenHash::of("x").ct_eq(&TokenHash::of("x")));
        assert!(!TokenHash::of("x").ct_eq(&TokenHash::of("y")));
    }
}
