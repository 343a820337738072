//! One access token: its header read (without trusting it), then its signature and claims
//! checked with `jsonwebtoken` against the issuer's key.

use std::sync::Arc;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Map, Value};

use super::{AuthError, LEEWAY_SECONDS, Verified};

/// The algorithms accepted: asymmetric ones only. `none` and HMAC are never accepted
/// (a public key used as an HMAC secret would let anyone sign).
pub(crate) const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];

/// Longest user claim value kept for the audit log, in characters.
const MAX_USER_CHARS: usize = 256;

/// What the header of a token asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
}

/// Seconds since the Unix epoch.
pub(crate) fn now_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads the header of a compact JWS (three base64url parts) and checks its algorithm
/// against the allow-list.
pub(crate) fn header(token: &str) -> Result<Header, AuthError> {
    let mut parts = token.split('.');
    let (Some(head), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .map_err(|_| AuthError::Malformed)?;
    let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(AuthError::Malformed);
    };
    let alg = fields
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(AuthError::Malformed)?;
    let alg = ALLOWED
        .iter()
        .copied()
        .find(|a| name(*a) == alg)
        .ok_or(AuthError::DisallowedAlg)?;
    // A header that asks for extensions the verifier must understand is not accepted.
    if fields.contains_key("crit") {
        return Err(AuthError::Malformed);
    }
    let kid = match fields.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(AuthError::Malformed),
    };
    Ok(Header { alg, kid })
}

/// The name of an algorithm as JOSE writes it.
pub(crate) fn name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
        _ => "",
    }
}

/// Verifies the signature with `key` and checks the claims: `iss` is `issuer` exactly,
/// `aud` (a string or a list) contains `resource`, `exp` has not passed and `nbf` has
/// come, both within the skew. Returns the granted scopes and the user claim.
pub(crate) fn check(
    token: &str,
    alg: Algorithm,
    key: &DecodingKey,
    issuer: &str,
    resource: &str,
    user_claim: &str,
) -> Result<Verified, AuthError> {
    let mut validation = Validation::new(alg);
    validation.leeway = LEEWAY_SECONDS;
    validation.validate_exp = true;
    validation.validate_nbf = true;
    validation.validate_aud = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[resource]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, key, &validation)
        .map_err(|e| refusal(e.kind()))?;
    let claims = data.claims;
    let expires_at = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or(AuthError::Malformed)?;
    Ok(Verified {
        scopes: scopes(&claims),
        user: user(&claims, user_claim).or_else(|| user(&claims, "sub")),
        expires_at,
    })
}

/// The refusal for a `jsonwebtoken` error.
fn refusal(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "iss" => AuthError::WrongIssuer,
            "aud" => AuthError::WrongAudience,
            _ => AuthError::Malformed,
        },
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => AuthError::DisallowedAlg,
        ErrorKind::InvalidEcdsaKey
        | ErrorKind::InvalidEddsaKey
        | ErrorKind::InvalidRsaKey(_)
        | ErrorKind::InvalidKeyFormat
        | ErrorKind::UnsupportedAlgorithm => AuthError::UnknownKey,
        _ => AuthError::Malformed,
    }
}

/// The granted scopes: `scope` as a space-separated string (RFC 9068) or `scp` as a
/// list or a string (Okta, Entra ID); both are read when both are there.
fn scopes(claims: &Map<String, Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for claim in ["scope", "scp"] {
        let words: Vec<&str> = match claims.get(claim) {
            Some(Value::String(s)) => s.split_whitespace().collect(),
            Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for w in words {
            if !out.iter().any(|s| s == w) {
                out.push(w.to_string());
            }
        }
    }
    out
}

/// The user claim's value for the audit log: a string or number, without control
/// characters, cut to a bounded length.
fn user(claims: &Map<String, Value>, claim: &str) -> Option<Arc<str>> {
    let text = match claims.get(claim)? {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_USER_CHARS)
        .collect();
    (!clean.is_empty()).then(|| Arc::from(clean))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(header: Value) -> String {
        let b64 = |v: &Value| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string().as_bytes())
        };
        format!("{}.{}.c2ln", b64(&header), b64(&json!({"sub": "x"})))
    }

    #[test]
    fn headers_name_an_allowed_algorithm_and_maybe_a_key() {
        assert_eq!(
            header(&encode(
                json!({"alg": "RS256", "kid": "k1", "typ": "at+jwt"})
            )),
            Ok(Header {
                alg: Algorithm::RS256,
                kid: Some("k1".into())
            })
        );
        assert_eq!(
            header(&encode(json!({"alg": "EdDSA"}))).map(|h| h.kid),
            Ok(None)
        );
        for alg in ["none", "None", "HS256", "HS512", "RSA-OAEP", ""] {
            assert_eq!(
                header(&encode(json!({"alg": alg}))),
                Err(AuthError::DisallowedAlg),
                "{alg}"
            );
        }
        for bad in [
            String::new(),
            "abc".to_string(),
            "a.b".to_string(),
            "a.b.c.d.e".to_string(),
            "!!.e30.c2ln".to_string(),
            encode(json!([1, 2])),
            encode(json!({"kid": "k"})),
            encode(json!({"alg": 5})),
            encode(json!({"alg": "RS256", "kid": 7})),
            encode(json!({"alg": "RS256", "crit": ["exp"]})),
        ] {
            assert_eq!(header(&bad), Err(AuthError::Malformed), "{bad}");
        }
    }

    #[test]
    fn every_allowed_algorithm_is_asymmetric() {
        for alg in ALLOWED {
            assert!(!name(alg).starts_with("HS"), "{alg:?}");
            assert!(!name(alg).is_empty(), "{alg:?}");
        }
    }

    #[test]
    fn scopes_come_from_scope_or_scp() {
        let claims = |v: Value| v.as_object().cloned().unwrap_or_default();
        assert_eq!(
            scopes(&claims(json!({"scope": "a  b\tc"}))),
            ["a", "b", "c"]
        );
        assert_eq!(scopes(&claims(json!({"scp": ["a", "b", 3]}))), ["a", "b"]);
        assert_eq!(scopes(&claims(json!({"scp": "a b"}))), ["a", "b"]);
        assert_eq!(
            scopes(&claims(json!({"scope": "a b", "scp": ["b", "c"]}))),
            ["a", "b", "c"]
        );
        assert!(scopes(&claims(json!({"scope": 5}))).is_empty());
        assert!(scopes(&claims(json!({}))).is_empty());
    }

    #[test]
    fn the_user_claim_is_cleaned_and_bounded() {
        let claims = |v: Value| v.as_object().cloned().unwrap_or_default();
        let c = claims(
            json!({"sub": "u-1", "email": "a\nb@x", "n": 42, "o": {}, "e": "", "long": "x".repeat(1000)}),
        );
        assert_eq!(user(&c, "sub").as_deref(), Some("u-1"));
        assert_eq!(user(&c, "email").as_deref(), Some("ab@x"));
        assert_eq!(user(&c, "n").as_deref(), Some("42"));
        assert_eq!(user(&c, "o"), None);
        assert_eq!(user(&c, "e"), None);
        assert_eq!(user(&c, "missing"), None);
        assert_eq!(user(&c, "long").map(|u| u.len()), Some(MAX_USER_CHARS));
    }

    #[test]
    fn library_errors_map_to_refusals() {
        assert_eq!(
            refusal(&ErrorKind::InvalidSignature),
            AuthError::BadSignature
        );
        assert_eq!(refusal(&ErrorKind::ExpiredSignature), AuthError::Expired);
        assert_eq!(
            refusal(&ErrorKind::ImmatureSignature),
            AuthError::NotYetValid
        );
        assert_eq!(refusal(&ErrorKind::InvalidIssuer), AuthError::WrongIssuer);
        assert_eq!(
            refusal(&ErrorKind::InvalidAudience),
            AuthError::WrongAudience
        );
        assert_eq!(
            refusal(&ErrorKind::MissingRequiredClaim("aud".into())),
            AuthError::WrongAudience
        );
        assert_eq!(
            refusal(&ErrorKind::MissingRequiredClaim("iss".into())),
            AuthError::WrongIssuer
        );
        assert_eq!(
            refusal(&ErrorKind::MissingRequiredClaim("exp".into())),
            AuthError::Malformed
        );
        assert_eq!(
            refusal(&ErrorKind::InvalidAlgorithm),
            AuthError::DisallowedAlg
        );
        assert_eq!(refusal(&ErrorKind::InvalidToken), AuthError::Malformed);
    }
}
