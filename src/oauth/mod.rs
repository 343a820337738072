//! The OAuth 2.1 resource server's checks of an access token: the issuer's metadata
//! (RFC 8414 or OpenID Connect discovery), its signing keys (JWKS, cached per issuer and
//! fetched again only for a key it has not seen, never more often than a floor), the
//! signature (asymmetric algorithms only, matched to the key's type), and the claims
//! (`iss` exactly, `aud` containing the server's resource, `exp`/`nbf` with a small skew,
//! the granted scopes and the user claim). A token that passed is remembered until it
//! expires, under a digest of the token, so the same token is not verified twice.
//!
//! Nothing here writes a token into an error, a log line or a metric.

mod cache;
mod discovery;
mod keys;
mod token;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::core::oauth::AuthError;
use crate::core::oauth::{IssuerCheck, OAuthSettings};

pub(crate) use cache::VerifiedCache;
use keys::Issuers;

/// Longest a metadata or JWKS request may take.
pub(crate) const DEFAULT_FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Shortest time between two fetches of one issuer's keys (or metadata).
pub(crate) const DEFAULT_REFETCH_FLOOR: Duration = Duration::from_secs(30);
/// Keys older than this are fetched again when next needed, so a key the issuer
/// withdrew stops being accepted.
pub(crate) const DEFAULT_KEYS_MAX_AGE: Duration = Duration::from_secs(3600);
/// Most verified tokens remembered at once.
pub(crate) const DEFAULT_CACHE_CAPACITY: usize = 10_000;
/// Clock skew allowed on `exp` and `nbf`, in seconds.
pub(crate) const LEEWAY_SECONDS: u64 = 60;
/// Largest metadata or JWKS document read.
pub(crate) const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;

/// Settings of token verification.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Longest a metadata or JWKS request may take.
    pub fetch_timeout: Duration,
    /// Shortest time between two fetches for one issuer.
    pub refetch_floor: Duration,
    /// Age after which an issuer's keys are fetched again when next needed.
    pub keys_max_age: Duration,
    /// Most verified tokens remembered.
    pub cache_capacity: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            fetch_timeout: DEFAULT_FETCH_TIMEOUT,
            refetch_floor: DEFAULT_REFETCH_FLOOR,
            keys_max_age: DEFAULT_KEYS_MAX_AGE,
            cache_capacity: DEFAULT_CACHE_CAPACITY,
        }
    }
}

/// What a verified access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Verified {
    /// The scopes granted (`scope` or `scp`).
    pub(crate) scopes: Vec<String>,
    /// The value of the server's user claim, when present.
    pub(crate) user: Option<Arc<str>>,
    /// `exp`, in seconds since the Unix epoch.
    pub(crate) expires_at: u64,
}

/// Verifies access tokens for every OAuth server of a data plane.
#[derive(Debug)]
pub struct Verifier {
    issuers: Issuers,
    verified: VerifiedCache,
}

impl Verifier {
    /// A verifier fetching issuers' metadata and keys with its own HTTP client.
    pub fn new(options: Options) -> Self {
        Verifier {
            issuers: Issuers::new(options),
            verified: VerifiedCache::new(options.cache_capacity),
        }
    }

    /// Checks `token` for a server with `settings` reached through `url_token` (whose
    /// connector URL is the resource, unless the settings name an audience).
    pub(crate) async fn verify(
        &self,
        settings: &OAuthSettings,
        url_token: &str,
        token: &str,
    ) -> Result<Arc<Verified>, AuthError> {
        let key = cache::key(
            &settings.issuer,
            settings.resource_parts(url_token),
            &settings.user_claim,
            token,
        );
        let now = token::now_seconds();
        if let Some(hit) = self.verified.get(&key, now) {
            return Ok(hit);
        }
        let header = token::header(token)?;
        let signing_key = self
            .issuers
            .get(&settings.issuer)
            .key(header.kid.as_deref(), header.alg)
            .await?;
        let verified = Arc::new(token::check(
            token,
            header.alg,
            &signing_key,
            &settings.issuer,
            &settings.resource(url_token),
            &settings.user_claim,
        )?);
        self.verified.insert(key, verified.clone(), now);
        Ok(verified)
    }

    /// How many times keys (with the metadata, when needed) were fetched, per issuer.
    pub fn key_fetches(&self, issuer: &str) -> u64 {
        self.issuers.fetches(issuer)
    }
}

/// Checks authorization servers for the controller's `AuthReady` condition: discovery and
/// one JWKS fetch per issuer, remembered for a while (longer when it worked), so that many
/// servers naming one issuer cost one check, and a reconcile never waits on an issuer it
/// checked a moment ago.
#[derive(Debug)]
pub struct IssuerChecker {
    issuers: Issuers,
    /// Last result per issuer, with when it was taken.
    last: Mutex<HashMap<String, (Instant, IssuerCheck)>>,
    /// How long a good result is reused.
    ready_for: Duration,
    /// How long a failed result is reused.
    failed_for: Duration,
}

/// How long a successful issuer check is reused.
pub(crate) const CHECK_READY_FOR: Duration = Duration::from_secs(300);
/// How long a failed issuer check is reused (the controller looks again after it).
pub(crate) const CHECK_FAILED_FOR: Duration = Duration::from_secs(30);

impl Default for IssuerChecker {
    fn default() -> Self {
        IssuerChecker::new(Options::default(), CHECK_READY_FOR, CHECK_FAILED_FOR)
    }
}

impl IssuerChecker {
    /// A checker fetching with `options`, reusing results for the given times.
    pub fn new(options: Options, ready_for: Duration, failed_for: Duration) -> Self {
        IssuerChecker {
            issuers: Issuers::new(options),
            last: Mutex::new(HashMap::new()),
            ready_for,
            failed_for,
        }
    }

    /// The state of `issuer`: a recent result, or a new check.
    pub async fn check(&self, issuer: &str) -> IssuerCheck {
        let now = Instant::now();
        if let Some((at, result)) = self.lock().get(issuer) {
            let keep = match result {
                IssuerCheck::Ready { .. } => self.ready_for,
                _ => self.failed_for,
            };
            if now.duration_since(*at) < keep {
                return result.clone();
            }
        }
        let result = self.issuers.get(issuer).check_now().await;
        self.lock()
            .insert(issuer.to_string(), (Instant::now(), result.clone()));
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, IssuerCheck)>> {
        match self.last.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::oauth::{ClassScopes, OAuthSettings};

    fn settings() -> OAuthSettings {
        OAuthSettings {
            // Nothing listens here: any key fetch would fail.
            issuer: "https://127.0.0.1:1".into(),
            audience: None,
            public_url: crate::core::base_url::BaseUrl::parse("https://mcp.example.com")
                .expect("a test URL"),
            scopes: ClassScopes::default(),
            user_claim: "sub".into(),
            per_user: None,
        }
    }

    #[tokio::test]
    async fn a_remembered_token_is_not_verified_again_until_it_expires() {
        let v = Verifier::new(Options::default());
        let s = settings();
        let remembered = Arc::new(Verified {
            scopes: vec!["atomicwork.read".into()],
            user: Some(Arc::from("alice")),
            expires_at: token::now_seconds() + 60,
        });
        let key = cache::key(&s.issuer, s.resource_parts("tok"), &s.user_claim, "opaque");
        v.verified
            .insert(key, remembered.clone(), token::now_seconds());
        assert_eq!(v.verify(&s, "tok", "opaque").await, Ok(remembered.clone()));
        // Not for another resource, issuer or user claim: those are checked afresh.
        assert_eq!(
            v.verify(&s, "other", "opaque").await,
            Err(AuthError::Malformed)
        );
        let mut by_email = s.clone();
        by_email.user_claim = "email".into();
        assert_eq!(
            v.verify(&by_email, "tok", "opaque").await,
            Err(AuthError::Malformed)
        );
        // An expired entry is no longer used.
        let old = Arc::new(Verified {
            expires_at: token::now_seconds().saturating_sub(1),
            ..(*remembered).clone()
        });
        v.verified.insert(key, old, 0);
        assert_eq!(
            v.verify(&s, "tok", "opaque").await,
            Err(AuthError::Malformed)
        );
        assert_eq!(v.key_fetches(&s.issuer), 0);
    }

    #[test]
    fn labels_are_distinct_and_errors_never_carry_a_token() {
        let all = [
            AuthError::Malformed,
            AuthError::DisallowedAlg,
            AuthError::UnknownKey,
            AuthError::BadSignature,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::WrongIssuer,
            AuthError::WrongAudience,
            AuthError::IssuerUnreachable,
        ];
        let labels: std::collections::BTreeSet<&str> = all.iter().map(|e| e.label()).collect();
        assert_eq!(labels.len(), all.len());
        assert!(labels.iter().all(|l| l.starts_with("oauth_")));
        // The type holds no data: there is nowhere a token could go.
        assert_eq!(std::mem::size_of::<AuthError>(), 1);
    }
}
