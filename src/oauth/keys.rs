//! Each issuer's signing keys: discovered and fetched when first needed, kept, and
//! fetched again only when a token names a key not among them (a rotation) or they have
//! grown old, and never more often than the refetch floor. One fetch at a time per
//! issuer: requests that need keys meanwhile wait for it and share its result.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde_json::Value;

use super::discovery::{self, BadMetadata};
use super::token::name;
use super::{AuthError, MAX_DOCUMENT_BYTES, Options};
use crate::core::oauth::IssuerCheck;

/// One usable verification key of an issuer.
#[derive(Clone)]
struct Key {
    kid: Option<String>,
    /// The `alg` the issuer fixed for the key, if any.
    alg: Option<String>,
    family: Family,
    key: DecodingKey,
}

/// What a key can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Family {
    /// True when a key of this family verifies `alg`.
    fn fits(self, alg: Algorithm) -> bool {
        matches!(
            (self, alg),
            (
                Family::Rsa,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ) | (Family::P256, Algorithm::ES256)
                | (Family::P384, Algorithm::ES384)
                | (Family::Ed25519, Algorithm::EdDSA)
        )
    }
}

/// An issuer's keys as last fetched.
struct KeySet {
    keys: Vec<Key>,
    fetched: Instant,
}

/// What a key set holds for a token's header.
enum Lookup {
    /// The key to verify with.
    Found(DecodingKey),
    /// The named key is there but does not fit the algorithm.
    Unfit,
    /// No key by that id (or, without an id, not exactly one key that fits).
    Missing,
}

impl KeySet {
    /// The key of the set for a token naming `kid` (if any) and signed with `alg`.
    fn lookup(&self, kid: Option<&str>, alg: Algorithm) -> Lookup {
        let fits = |k: &Key| k.family.fits(alg) && k.alg.as_deref().is_none_or(|a| a == name(alg));
        match kid {
            Some(kid) => {
                let named: Vec<&Key> = self
                    .keys
                    .iter()
                    .filter(|k| k.kid.as_deref() == Some(kid))
                    .collect();
                match named.iter().find(|k| fits(k)) {
                    Some(k) => Lookup::Found(k.key.clone()),
                    None if named.is_empty() => Lookup::Missing,
                    None => Lookup::Unfit,
                }
            }
            None => {
                let mut fitting = self.keys.iter().filter(|k| fits(k));
                match (fitting.next(), fitting.next()) {
                    (Some(k), None) => Lookup::Found(k.key.clone()),
                    _ => Lookup::Missing,
                }
            }
        }
    }
}

/// Why keys could not be had.
#[derive(Debug)]
enum FetchError {
    /// A request failed or was answered with an error status.
    Http(String),
    /// No metadata document was usable.
    Metadata(BadMetadata),
    /// The JWKS held no usable signing key.
    NoKeys,
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Http(e) => f.write_str(e),
            FetchError::Metadata(e) => e.fmt(f),
            FetchError::NoKeys => f.write_str("the JWKS holds no usable signing key"),
        }
    }
}

/// Where a fetch stands, guarded so that one fetch runs at a time.
#[derive(Default)]
struct FetchState {
    /// Found by discovery; forgotten when fetching from it fails.
    jwks_uri: Option<String>,
    /// When the last fetch started.
    last: Option<Instant>,
}

/// One issuer's keys.
pub(crate) struct IssuerKeys {
    issuer: String,
    http: reqwest::Client,
    options: Options,
    keys: RwLock<Option<Arc<KeySet>>>,
    fetch: tokio::sync::Mutex<FetchState>,
    fetches: AtomicU64,
}

impl std::fmt::Debug for IssuerKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuerKeys")
            .field("issuer", &self.issuer)
            .field("fetches", &self.fetches())
            .finish()
    }
}

impl IssuerKeys {
    /// The keys held now, if any.
    fn current(&self) -> Option<Arc<KeySet>> {
        match self.keys.read() {
            Ok(g) => g.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Holds `set` from now on.
    fn store(&self, set: Arc<KeySet>) {
        match self.keys.write() {
            Ok(mut g) => *g = Some(set),
            Err(poisoned) => *poisoned.into_inner() = Some(set),
        }
    }

    /// How many fetches of keys have started.
    pub(crate) fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// The key that verifies a token with this header: from the keys held while they
    /// have it and are not too old, else after one fetch (unless the last one started
    /// less than the floor ago).
    pub(crate) async fn key(
        &self,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<DecodingKey, AuthError> {
        let fresh = |set: &KeySet| set.fetched.elapsed() < self.options.keys_max_age;
        let held = self.current();
        if let Some(set) = held.as_deref().filter(|s| fresh(s)) {
            match set.lookup(kid, alg) {
                Lookup::Found(k) => return Ok(k),
                Lookup::Unfit => return Err(AuthError::DisallowedAlg),
                Lookup::Missing => {}
            }
        }
        let mut state = self.fetch.lock().await;
        // Another request may have fetched while this one waited.
        let before = held;
        let held = self.current();
        if let Some(set) = held.as_deref() {
            let just_fetched = match &before {
                Some(old) => !std::ptr::eq(old.as_ref(), set),
                None => true,
            };
            if fresh(set) || just_fetched {
                match set.lookup(kid, alg) {
                    Lookup::Found(k) => return Ok(k),
                    Lookup::Unfit => return Err(AuthError::DisallowedAlg),
                    Lookup::Missing => {}
                }
            }
        }
        let too_soon = state
            .last
            .is_some_and(|t| t.elapsed() < self.options.refetch_floor);
        if too_soon {
            return match held.as_deref().map(|s| s.lookup(kid, alg)) {
                // Old keys still serve until the next fetch is allowed.
                Some(Lookup::Found(k)) => Ok(k),
                Some(Lookup::Unfit) => Err(AuthError::DisallowedAlg),
                Some(Lookup::Missing) => Err(AuthError::UnknownKey),
                None => Err(AuthError::IssuerUnreachable),
            };
        }
        state.last = Some(Instant::now());
        self.fetches.fetch_add(1, Ordering::Relaxed);
        match self.fetch_keys(&mut state).await {
            Ok(set) => {
                tracing::info!(
                    target: "atomicwork_mcp::oauth",
                    issuer = %self.issuer,
                    keys = set.keys.len(),
                    "fetched the issuer's signing keys"
                );
                let set = Arc::new(set);
                self.store(set.clone());
                match set.lookup(kid, alg) {
                    Lookup::Found(k) => Ok(k),
                    Lookup::Unfit => Err(AuthError::DisallowedAlg),
                    Lookup::Missing => Err(AuthError::UnknownKey),
                }
            }
            Err(e) => {
                tracing::warn!(
                    target: "atomicwork_mcp::oauth",
                    issuer = %self.issuer,
                    error = %e,
                    "cannot fetch the issuer's signing keys"
                );
                // Keys held from before still serve while the issuer cannot be reached.
                match held.as_deref().map(|s| s.lookup(kid, alg)) {
                    Some(Lookup::Found(k)) => Ok(k),
                    Some(Lookup::Unfit) => Err(AuthError::DisallowedAlg),
                    _ => Err(AuthError::IssuerUnreachable),
                }
            }
        }
    }

    /// Discovers the issuer and fetches its keys now, outside the serving state (neither
    /// the keys held nor the fetch count change), for a status report.
    pub(crate) async fn check_now(&self) -> IssuerCheck {
        let mut state = FetchState::default();
        match self.fetch_keys(&mut state).await {
            Ok(set) => IssuerCheck::Ready {
                keys: set.keys.len(),
            },
            Err(FetchError::Http(e)) => IssuerCheck::Unreachable(e),
            Err(FetchError::Metadata(e)) => IssuerCheck::BadMetadata(e.to_string()),
            Err(FetchError::NoKeys) => IssuerCheck::NoKeys,
        }
    }

    /// Discovers the JWKS URI if it is not known, then fetches the keys.
    async fn fetch_keys(&self, state: &mut FetchState) -> Result<KeySet, FetchError> {
        let uri = match state.jwks_uri.clone() {
            Some(uri) => uri,
            None => {
                let uri = self.discover().await?;
                state.jwks_uri = Some(uri.clone());
                uri
            }
        };
        let result = async {
            let body = self.get(&uri).await?;
            let keys = parse_jwks(&body);
            if keys.is_empty() {
                return Err(FetchError::NoKeys);
            }
            Ok(KeySet {
                keys,
                fetched: Instant::now(),
            })
        }
        .await;
        if result.is_err() {
            state.jwks_uri = None;
        }
        result
    }

    /// The `jwks_uri` of the first well-known metadata document that names this issuer.
    async fn discover(&self) -> Result<String, FetchError> {
        let mut last = FetchError::Http("no metadata URL".into());
        for url in discovery::metadata_urls(&self.issuer) {
            match self.get(&url).await {
                Ok(body) => match discovery::jwks_uri(&body, &self.issuer) {
                    Ok(uri) => return Ok(uri),
                    Err(e) => last = FetchError::Metadata(e),
                },
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// GETs a JSON document of at most [`MAX_DOCUMENT_BYTES`].
    async fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let mut resp = self
            .http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .map_err(|e| FetchError::Http(format!("GET {url}: {}", without_url(&e))))?;
        if !resp.status().is_success() {
            return Err(FetchError::Http(format!(
                "GET {url}: HTTP {}",
                resp.status().as_u16()
            )));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| FetchError::Http(format!("GET {url}: {}", without_url(&e))))?
        {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(FetchError::Http(format!(
                    "GET {url}: larger than {MAX_DOCUMENT_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// A reqwest error's text without the URL it repeats.
fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "the answer broke off"
    } else {
        "request failed"
    };
    kind.to_string()
}

/// The usable signing keys of a JWKS document: RSA, P-256, P-384 and Ed25519 keys not
/// marked for another use. Keys that cannot be read are skipped, not fatal.
fn parse_jwks(body: &[u8]) -> Vec<Key> {
    let Ok(Value::Object(doc)) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let Some(Value::Array(items)) = doc.get("keys") else {
        return Vec::new();
    };
    items.iter().filter_map(usable_key).collect()
}

/// One JWK as a usable signing key: an asymmetric key for signatures whose parameters
/// read; `None` for any other.
fn usable_key(raw: &Value) -> Option<Key> {
    let fields = raw.as_object()?;
    if fields.get("use").is_some_and(|u| u != "sig") {
        return None;
    }
    if let Some(ops) = fields.get("key_ops")
        && !ops
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o == "verify"))
    {
        return None;
    }
    let jwk: Jwk = serde_json::from_value(raw.clone()).ok()?;
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Family::Rsa,
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => Family::P256,
            EllipticCurve::P384 => Family::P384,
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Family::Ed25519
        }
        // Symmetric (`oct`) and other keys never verify here.
        _ => return None,
    };
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    Some(Key {
        kid: fields
            .get("kid")
            .and_then(Value::as_str)
            .map(str::to_string),
        alg: fields
            .get("alg")
            .and_then(Value::as_str)
            .map(str::to_string),
        family,
        key,
    })
}

/// Every issuer's keys, made when first asked for.
#[derive(Debug)]
pub(crate) struct Issuers {
    http: reqwest::Client,
    options: Options,
    by_issuer: Mutex<HashMap<String, Arc<IssuerKeys>>>,
}

impl Issuers {
    /// No issuer yet; keys are fetched with one HTTP client bounded by `options`.
    pub(crate) fn new(options: Options) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(concat!("atomicwork-mcp/", env!("CARGO_PKG_VERSION")))
            .timeout(options.fetch_timeout)
            .connect_timeout(options.fetch_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default();
        Issuers {
            http,
            options,
            by_issuer: Mutex::new(HashMap::new()),
        }
    }

    /// The issuers known so far.
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<IssuerKeys>>> {
        match self.by_issuer.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    /// The keys of `issuer`.
    pub(crate) fn get(&self, issuer: &str) -> Arc<IssuerKeys> {
        let mut map = self.map();
        if let Some(keys) = map.get(issuer) {
            return keys.clone();
        }
        let keys = Arc::new(IssuerKeys {
            issuer: issuer.to_string(),
            http: self.http.clone(),
            options: self.options,
            keys: RwLock::new(None),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
            fetches: AtomicU64::new(0),
        });
        map.insert(issuer.to_string(), keys.clone());
        keys
    }

    /// How many key fetches have started for `issuer`.
    pub(crate) fn fetches(&self, issuer: &str) -> u64 {
        self.map().get(issuer).map_or(0, |k| k.fetches())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Public keys as issuers publish them (RFC 7517 and RFC 8037 examples).
    const RSA_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    const EC_X: &str = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU";
    const EC_Y: &str = "x_FEzRjmu8tjGuaW1HJ8vZyF5AjYYrUWZOvlKoUiT-w";
    const ED_X: &str = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";

    fn jwks() -> Vec<u8> {
        serde_json::json!({"keys": [
            {"kty": "RSA", "kid": "rsa-1", "use": "sig", "alg": "RS256", "n": RSA_N, "e": "AQAB"},
            {"kty": "RSA", "kid": "rsa-2", "n": RSA_N, "e": "AQAB"},
            {"kty": "RSA", "kid": "enc", "use": "enc", "n": RSA_N, "e": "AQAB"},
            {"kty": "RSA", "kid": "wrap", "key_ops": ["wrapKey"], "n": RSA_N, "e": "AQAB"},
            {"kty": "EC", "kid": "ec-1", "crv": "P-256", "x": EC_X, "y": EC_Y},
            {"kty": "OKP", "kid": "ed-1", "crv": "Ed25519", "x": ED_X},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken"},
            {"kty": "XYZ", "kid": "other"},
            "not a key"
        ]})
        .to_string()
        .into_bytes()
    }

    fn set() -> KeySet {
        KeySet {
            keys: parse_jwks(&jwks()),
            fetched: Instant::now(),
        }
    }

    fn kids(set: &KeySet) -> Vec<&str> {
        set.keys.iter().filter_map(|k| k.kid.as_deref()).collect()
    }

    use std::time::Duration;
    use wiremock::matchers::{method, path};
    use wiremock::{Mock, MockServer, ResponseTemplate};

    fn options(floor: Duration) -> Options {
        Options {
            refetch_floor: floor,
            ..Options::default()
        }
    }

    /// An issuer at `server` with `suffix` as its path, publishing its metadata at
    /// `metadata_path` and `keys` at /jwks.
    async fn publish(
        server: &MockServer,
        suffix: &str,
        metadata_path: &str,
        keys: Value,
    ) -> String {
        let issuer = format!("{}{suffix}", server.uri());
        Mock::given(method("GET"))
            .and(path(metadata_path))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"issuer": issuer, "jwks_uri": format!("{}/jwks", server.uri())}),
            ))
            .mount(server)
            .await;
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(ResponseTemplate::new(200).set_body_json(keys))
            .mount(server)
            .await;
        issuer
    }

    fn rsa(kid: &str) -> Value {
        serde_json::json!({"kty": "RSA", "kid": kid, "n": RSA_N, "e": "AQAB"})
    }

    async fn jwks_hits(server: &MockServer) -> usize {
        server
            .received_requests()
            .await
            .unwrap_or_default()
            .iter()
            .filter(|r| r.url.path() == "/jwks")
            .count()
    }

    #[tokio::test]
    async fn keys_are_discovered_once_and_refetched_only_for_an_unknown_key_past_the_floor() {
        let server = MockServer::start().await;
        // An issuer with a path whose RFC 8414 document is missing: the OpenID Connect
        // one (path inserted) is used.
        let issuer = publish(
            &server,
            "/realms/it",
            "/.well-known/openid-configuration/realms/it",
            serde_json::json!({"keys": [rsa("k1")]}),
        )
        .await;
        let issuers = Issuers::new(options(Duration::from_secs(1)));
        let keys = issuers.get(&issuer);
        for _ in 0..50 {
            assert!(keys.key(Some("k1"), Algorithm::RS256).await.is_ok());
        }
        assert_eq!(issuers.fetches(&issuer), 1);
        assert_eq!(jwks_hits(&server).await, 1);
        // An unknown key right after a fetch: refused without another fetch.
        assert_eq!(
            keys.key(Some("k2"), Algorithm::RS256).await.err(),
            Some(AuthError::UnknownKey)
        );
        assert_eq!(jwks_hits(&server).await, 1);
        // Past the floor, an unknown key is looked for once more.
        tokio::time::sleep(Duration::from_millis(1100)).await;
        assert_eq!(
            keys.key(Some("k2"), Algorithm::RS256).await.err(),
            Some(AuthError::UnknownKey)
        );
        assert_eq!(jwks_hits(&server).await, 2);
        assert_eq!(
            keys.key(Some("k2"), Algorithm::RS256).await.err(),
            Some(AuthError::UnknownKey)
        );
        assert_eq!(jwks_hits(&server).await, 2);
        // A known key still works, without a fetch; one that does not fit is refused.
        assert!(keys.key(Some("k1"), Algorithm::PS256).await.is_ok());
        assert_eq!(
            keys.key(Some("k1"), Algorithm::ES256).await.err(),
            Some(AuthError::DisallowedAlg)
        );
        assert_eq!(issuers.fetches(&issuer), 2);
        assert_eq!(issuers.fetches("https://other.example.com"), 0);
    }

    #[tokio::test]
    async fn requests_waiting_for_keys_share_one_fetch() {
        let server = MockServer::start().await;
        let issuer = publish(
            &server,
            "",
            "/.well-known/oauth-authorization-server",
            serde_json::json!({"keys": [rsa("k1")]}),
        )
        .await;
        let issuers = Issuers::new(options(Duration::from_secs(30)));
        let keys = issuers.get(&issuer);
        let waiting: Vec<_> = (0..32)
            .map(|_| {
                let keys = keys.clone();
                tokio::spawn(async move { keys.key(Some("k1"), Algorithm::RS256).await.is_ok() })
            })
            .collect();
        for w in waiting {
            assert!(w.await.expect("task"));
        }
        assert_eq!(jwks_hits(&server).await, 1);
    }

    #[tokio::test]
    async fn rotation_is_picked_up_from_the_same_jwks_uri() {
        let server = MockServer::start().await;
        let issuer = server.uri();
        Mock::given(method("GET"))
            .and(path("/.well-known/oauth-authorization-server"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"issuer": issuer, "jwks_uri": format!("{}/jwks", server.uri())}),
            ))
            .expect(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"keys": [rsa("old")]})),
            )
            .up_to_n_times(1)
            .mount(&server)
            .await;
        Mock::given(method("GET"))
            .and(path("/jwks"))
            .respond_with(
                ResponseTemplate::new(200).set_body_json(serde_json::json!({"keys": [rsa("new")]})),
            )
            .mount(&server)
            .await;
        let issuers = Issuers::new(options(Duration::ZERO));
        let keys = issuers.get(&issuer);
        assert!(keys.key(Some("old"), Algorithm::RS256).await.is_ok());
        assert!(keys.key(Some("new"), Algorithm::RS256).await.is_ok());
        assert_eq!(jwks_hits(&server).await, 2);
        // The issuer withdrew the old key: it is no longer accepted.
        assert_eq!(
            keys.key(Some("old"), Algorithm::RS256).await.err(),
            Some(AuthError::UnknownKey)
        );
        assert!(keys.key(Some("new"), Algorithm::RS256).await.is_ok());
    }

    #[tokio::test]
    async fn old_keys_are_fetched_again_and_serve_while_the_issuer_is_down() {
        let server = MockServer::start().await;
        let issuer = publish(
            &server,
            "",
            "/.well-known/oauth-authorization-server",
            serde_json::json!({"keys": [rsa("k1")]}),
        )
        .await;
        let issuers = Issuers::new(Options {
            keys_max_age: Duration::from_millis(100),
            ..options(Duration::ZERO)
        });
        let keys = issuers.get(&issuer);
        assert!(keys.key(Some("k1"), Algorithm::RS256).await.is_ok());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(keys.key(Some("k1"), Algorithm::RS256).await.is_ok());
        assert_eq!(jwks_hits(&server).await, 2, "old keys are fetched again");
        tokio::time::sleep(Duration::from_millis(150)).await;
        server.reset().await;
        assert!(
            keys.key(Some("k1"), Algorithm::RS256).await.is_ok(),
            "held keys serve while the issuer is down"
        );
        assert_eq!(
            keys.key(Some("k9"), Algorithm::RS256).await.err(),
            Some(AuthError::IssuerUnreachable)
        );
    }

    #[tokio::test]
    async fn an_issuer_that_cannot_be_used_is_unreachable_and_not_hammered() {
        let server = MockServer::start().await;
        // The metadata names another issuer.
        Mock::given(method("GET"))
            .respond_with(ResponseTemplate::new(200).set_body_json(
                serde_json::json!({"issuer": "https://evil.example.com", "jwks_uri": format!("{}/jwks", server.uri())}),
            ))
            .mount(&server)
            .await;
        let issuers = Issuers::new(options(Duration::from_secs(30)));
        let keys = issuers.get(&server.uri());
        for _ in 0..5 {
            assert_eq!(
                keys.key(Some("k1"), Algorithm::RS256).await.err(),
                Some(AuthError::IssuerUnreachable)
            );
        }
        let requests = server.received_requests().await.unwrap_or_default();
        assert_eq!(
            requests.len(),
            2,
            "both well-known URIs, once: {requests:?}"
        );
        assert_eq!(jwks_hits(&server).await, 0);
        // Nothing listens here.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr")
        };
        let down = issuers.get(&format!("http://{closed}"));
        assert_eq!(
            down.key(Some("k1"), Algorithm::RS256).await.err(),
            Some(AuthError::IssuerUnreachable)
        );
    }

    #[tokio::test]
    async fn an_empty_or_oversized_jwks_is_no_keys() {
        let server = MockServer::start().await;
        let issuer = publish(
            &server,
            "",
            "/.well-known/oauth-authorization-server",
            serde_json::json!({"keys": [{"kty": "oct", "kid": "k1", "k": "c2VjcmV0"}]}),
        )
        .await;
        let issuers = Issuers::new(options(Duration::ZERO));
        assert_eq!(
            issuers
                .get(&issuer)
                .key(Some("k1"), Algorithm::RS256)
                .await
                .err(),
            Some(AuthError::IssuerUnreachable),
            "an HMAC key is no signing key here"
        );
        let big = MockServer::start().await;
        let issuer = publish(
            &big,
            "",
            "/.well-known/oauth-authorization-server",
            serde_json::json!({"keys": [rsa("k1")], "pad": "x".repeat(MAX_DOCUMENT_BYTES)}),
        )
        .await;
        assert_eq!(
            issuers
                .get(&issuer)
                .key(Some("k1"), Algorithm::RS256)
                .await
                .err(),
            Some(AuthError::IssuerUnreachable)
        );
    }

    #[test]
    fn only_asymmetric_signing_keys_are_kept() {
        assert_eq!(kids(&set()), ["rsa-1", "rsa-2", "ec-1", "ed-1"]);
        assert!(parse_jwks(b"{}").is_empty());
        assert!(parse_jwks(b"{\"keys\": 5}").is_empty());
        assert!(parse_jwks(b"nonsense").is_empty());
    }

    #[test]
    fn a_key_must_fit_the_algorithm() {
        let s = set();
        let found = |kid: Option<&str>, alg| matches!(s.lookup(kid, alg), Lookup::Found(_));
        assert!(found(Some("rsa-1"), Algorithm::RS256));
        // The key's own `alg` is binding.
        assert!(matches!(
            s.lookup(Some("rsa-1"), Algorithm::PS256),
            Lookup::Unfit
        ));
        assert!(found(Some("rsa-2"), Algorithm::PS384));
        assert!(found(Some("ec-1"), Algorithm::ES256));
        assert!(matches!(
            s.lookup(Some("ec-1"), Algorithm::ES384),
            Lookup::Unfit
        ));
        assert!(matches!(
            s.lookup(Some("ec-1"), Algorithm::RS256),
            Lookup::Unfit
        ));
        assert!(found(Some("ed-1"), Algorithm::EdDSA));
        assert!(matches!(
            s.lookup(Some("hmac"), Algorithm::RS256),
            Lookup::Missing
        ));
        assert!(matches!(
            s.lookup(Some("nope"), Algorithm::RS256),
            Lookup::Missing
        ));
        // Without a key id: only when exactly one key fits.
        assert!(found(None, Algorithm::ES256));
        assert!(found(None, Algorithm::EdDSA));
        assert!(matches!(s.lookup(None, Algorithm::RS512), Lookup::Found(_)));
        assert!(matches!(s.lookup(None, Algorithm::ES384), Lookup::Missing));
        assert!(
            matches!(s.lookup(None, Algorithm::RS256), Lookup::Missing),
            "two RSA keys fit RS256"
        );
    }
}
